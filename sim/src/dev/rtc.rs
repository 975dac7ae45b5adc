//! rtc (0x15000000): the time of day and a periodic timer on IP4, both in
//! simulated time (`CLOCK_HZ` cycles per second from a configurable epoch),
//! so runs are deterministic. GXemul follows the host's clock instead.

use super::{irq, Access, Device, CLOCK_HZ};

#[derive(Debug, Default)]
pub struct Rtc {
    /// Seconds since 1970 at cycle 0.
    epoch: u64,
    /// The cycle latched by the last access to register 0.
    latched: u64,
    hz: u64,
    /// Cycles between ticks (when `hz` > 0).
    period: u64,
    /// Cycle of the next timer tick (when `hz` > 0).
    next_tick: u64,
    /// Ticks raised and not yet acknowledged.
    pending: u64,
}

/// Register offsets (GXemul's `testmachine/rtc.h`).
mod reg {
    pub(super) const TRIGGER: u64 = 0x000;
    pub(super) const SEC: u64 = 0x010;
    pub(super) const USEC: u64 = 0x020;
    pub(super) const HZ: u64 = 0x100;
    pub(super) const INTERRUPT_ACK: u64 = 0x110;
}

impl Rtc {
    pub(crate) fn new(epoch: u64) -> Rtc {
        Rtc {
            epoch,
            ..Rtc::default()
        }
    }

    fn set_hz(&mut self, now: u64, hz: u64) {
        self.hz = hz;
        self.pending = 0;
        // Above CLOCK_HZ the timer ticks every cycle.
        self.period = CLOCK_HZ.checked_div(hz).unwrap_or(0).max(1);
        self.next_tick = now.saturating_add(self.period);
    }
}

impl Device for Rtc {
    fn advance(&mut self, now: u64) {
        if self.hz == 0 || now < self.next_tick {
            return;
        }
        // Every tick due by `now`, counted rather than looped over, so a
        // huge frequency or a long idle skip costs nothing.
        let ticks = (now - self.next_tick) / self.period + 1;
        self.pending = self.pending.saturating_add(ticks);
        self.next_tick = self
            .next_tick
            .saturating_add(ticks.saturating_mul(self.period));
    }

    fn read(&mut self, a: &mut Access<'_>, off: u64) -> Option<u64> {
        Some(match off {
            reg::TRIGGER => {
                self.latched = a.now;
                0
            }
            reg::SEC => self.epoch.saturating_add(self.latched / CLOCK_HZ),
            reg::USEC => (self.latched % CLOCK_HZ) / (CLOCK_HZ / 1_000_000),
            reg::HZ => self.hz,
            reg::INTERRUPT_ACK => {
                self.pending = self.pending.saturating_sub(1);
                0
            }
            _ => return None,
        })
    }

    fn write(&mut self, a: &mut Access<'_>, off: u64, value: u64) -> bool {
        match off {
            reg::TRIGGER => self.latched = a.now,
            reg::HZ => self.set_hz(a.now, value & 0xFFFF_FFFF),
            reg::INTERRUPT_ACK => self.pending = self.pending.saturating_sub(1),
            // The time registers are read-only: writes are ignored.
            reg::SEC | reg::USEC => {}
            _ => return false,
        }
        true
    }

    fn irq_lines(&self, cpu: usize) -> u32 {
        if cpu == 0 && self.pending > 0 {
            irq::RTC
        } else {
            0
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::dev::test_access::Bench;

    #[test]
    fn time_is_simulated_from_the_epoch() {
        let (mut r, mut b) = (Rtc::new(1_000_000_000), Bench::default());
        // 2.5 s and 1234 cycles (12 µs) of simulated time.
        let now = 2 * CLOCK_HZ + CLOCK_HZ / 2 + 1234;
        assert_eq!(b.read(&mut r, 0, now, reg::TRIGGER, 4), Some(0));
        assert_eq!(
            b.read(&mut r, 0, now + 999, reg::SEC, 4),
            Some(1_000_000_002)
        );
        assert_eq!(b.read(&mut r, 0, now + 999, reg::USEC, 4), Some(500_012));
        assert!(b.write(&mut r, 0, 5 * CLOCK_HZ, reg::TRIGGER, 4, 0));
        assert_eq!(b.read(&mut r, 0, 0, reg::SEC, 4), Some(1_000_000_005));
        assert_eq!(b.read(&mut r, 0, 0, reg::USEC, 4), Some(0));
    }

    #[test]
    fn the_timer_ticks_in_simulated_time_until_acknowledged() {
        let (mut r, mut b) = (Rtc::new(0), Bench::default());
        assert!(b.write(&mut r, 0, 1000, reg::HZ, 4, 100));
        assert_eq!(b.read(&mut r, 0, 0, reg::HZ, 4), Some(100));
        let period = CLOCK_HZ / 100;
        r.advance(1000 + period - 1);
        assert_eq!(r.irq_lines(0), 0);
        r.advance(1000 + period);
        assert_eq!(r.irq_lines(0), irq::RTC);
        assert_eq!(r.irq_lines(1), 0, "the rtc interrupts CPU 0 only");
        r.advance(1000 + 3 * period);
        assert_eq!(r.pending, 3);
        assert_eq!(b.read(&mut r, 0, 0, reg::INTERRUPT_ACK, 4), Some(0));
        assert!(b.write(&mut r, 0, 0, reg::INTERRUPT_ACK, 4, 0));
        assert!(b.write(&mut r, 0, 0, reg::INTERRUPT_ACK, 4, 0));
        assert!(b.write(&mut r, 0, 0, reg::INTERRUPT_ACK, 4, 0));
        assert_eq!(r.pending, 0);
        assert_eq!(r.irq_lines(0), 0);
        assert!(b.write(&mut r, 0, 0, reg::HZ, 4, 0));
        r.advance(u64::MAX);
        assert_eq!(r.pending, 0, "0 Hz stops the timer");
    }

    #[test]
    fn absurd_frequencies_and_times_are_safe() {
        let (mut r, mut b) = (Rtc::new(u64::MAX), Bench::default());
        assert!(b.write(&mut r, 0, 0, reg::HZ, 8, u64::MAX));
        r.advance(u64::MAX);
        assert_eq!(r.pending, u64::MAX);
        r.advance(u64::MAX);
        assert_eq!(b.read(&mut r, 0, u64::MAX, reg::TRIGGER, 4), Some(0));
        assert_eq!(b.read(&mut r, 0, 0, reg::SEC, 4), Some(u64::MAX));
        assert_eq!(b.read(&mut r, 0, 0, 0x120, 4), None);
        assert!(!b.write(&mut r, 0, 0, 0x8, 4, 1));
    }
}
