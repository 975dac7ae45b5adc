//! rtc (0x15000000): the time of day and a periodic timer on IP4, both in
//! simulated time (`CLOCK_HZ` cycles per second from a fixed epoch), so runs
//! are deterministic. GXemul follows the host's clock instead.

use super::CLOCK_HZ;

#[derive(Debug, Default)]
pub struct Rtc {
    epoch: u64,
    latched: u64,
    hz: u64,
    /// Cycle of the next timer tick (when `hz` > 0).
    next_tick: u64,
    /// Ticks raised and not yet acknowledged.
    pending: u64,
}

impl Rtc {
    pub(crate) fn new(epoch: u64) -> Rtc {
        Rtc {
            epoch,
            ..Rtc::default()
        }
    }

    pub(crate) fn interrupting(&self) -> bool {
        self.pending > 0
    }

    pub(crate) fn advance(&mut self, now: u64) {
        if self.hz == 0 {
            return;
        }
        let period = (CLOCK_HZ / self.hz).max(1);
        while self.next_tick <= now {
            self.pending = self.pending.saturating_add(1);
            self.next_tick += period;
        }
    }

    pub(crate) fn read(&mut self, now: u64, off: u64) -> Option<u64> {
        self.advance(now);
        Some(match off {
            0x00 => {
                self.latched = now;
                0
            }
            0x10 => self.epoch + self.latched / CLOCK_HZ,
            0x20 => (self.latched % CLOCK_HZ) / (CLOCK_HZ / 1_000_000),
            0x100 => self.hz,
            0x110 => {
                self.pending = self.pending.saturating_sub(1);
                0
            }
            _ => return None,
        })
    }

    pub(crate) fn write(&mut self, now: u64, off: u64, value: u64) -> bool {
        match off {
            0x00 => self.latched = now,
            0x100 => {
                self.hz = value & 0xFFFF_FFFF;
                self.pending = 0;
                if let Some(period) = CLOCK_HZ.checked_div(self.hz) {
                    self.next_tick = now + period.max(1);
                }
            }
            0x110 => self.pending = self.pending.saturating_sub(1),
            _ => return false,
        }
        true
    }
}
