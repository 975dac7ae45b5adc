//! The registry: which device answers at which physical address, and the
//! board that owns the devices.

use super::{
    map, width_mask, Access, BoardAction, BoardConfig, Console, Device, Disk, Halt, Mp, Rtc,
};

/// The devices of the board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceId {
    Console,
    Halt,
    Mp,
    Disk,
    Rtc,
}

/// The device map: (device, physical base, size of its register window).
/// An access that does not lie wholly inside one window is a bus error.
/// Sizes are GXemul's (`DEV_*_LENGTH`), except that the console's window
/// is split in two: its getchar/putchar half and the halt register.
pub const REGISTRY: &[(DeviceId, u64, u64)] = &[
    (DeviceId::Console, map::CONS, 0x10),
    (DeviceId::Halt, map::HALT, 0x10),
    (DeviceId::Mp, map::MP, 0x100),
    (DeviceId::Disk, map::DISK, 0x4200),
    (DeviceId::Rtc, map::RTC, 0x200),
];

/// The device whose window holds `[paddr, paddr + width)`, and the offset.
pub(crate) fn route(paddr: u64, width: u8) -> Option<(DeviceId, u64)> {
    REGISTRY.iter().find_map(|&(id, base, size)| {
        let off = paddr.checked_sub(base)?;
        let end = off.checked_add(u64::from(width))?;
        (end <= size).then_some((id, off))
    })
}

#[derive(Debug, Default)]
pub struct Board {
    pub ncpus: usize,
    pub console: Console,
    pub halt: Halt,
    pub mp: Mp,
    pub rtc: Rtc,
    pub disk: Disk,
    /// Console bytes written by the guest and not yet collected.
    pub console_out: Vec<u8>,
    actions: Vec<BoardAction>,
}

impl Board {
    /// A board for `ncpus` CPUs with 32 MB of RAM reported and no disk.
    pub fn new(ncpus: usize) -> Board {
        Board::with_config(BoardConfig {
            ncpus,
            ram_bytes: 32 << 20,
            ..BoardConfig::default()
        })
    }

    pub fn with_config(c: BoardConfig) -> Board {
        Board {
            ncpus: c.ncpus,
            console: Console::default(),
            halt: Halt,
            mp: Mp::new(c.ncpus, c.ram_bytes, c.seed),
            rtc: Rtc::new(c.epoch),
            disk: Disk::new(c.disk, c.disk_irq_latency),
            console_out: Vec::new(),
            actions: Vec::new(),
        }
    }

    /// Runs `f` on device `id` with an [`Access`] for this access.
    fn with_device<R>(
        &mut self,
        id: DeviceId,
        cpu: usize,
        now: u64,
        width: u8,
        f: impl FnOnce(&mut dyn Device, &mut Access<'_>) -> R,
    ) -> R {
        let Board {
            console,
            halt,
            mp,
            rtc,
            disk,
            console_out,
            actions,
            ..
        } = self;
        let dev: &mut dyn Device = match id {
            DeviceId::Console => console,
            DeviceId::Halt => halt,
            DeviceId::Mp => mp,
            DeviceId::Disk => disk,
            DeviceId::Rtc => rtc,
        };
        let mut a = Access {
            cpu,
            now,
            width,
            actions,
            output: console_out,
        };
        f(dev, &mut a)
    }

    /// A device register read by `cpu` at cycle `now`; `None` is a bus
    /// error. The value is truncated to the access width.
    pub fn read(&mut self, cpu: usize, now: u64, paddr: u64, width: u8) -> Option<u64> {
        let (id, off) = route(paddr, width)?;
        let v = self.with_device(id, cpu, now, width, |d, a| {
            d.advance(now);
            d.read(a, off)
        })?;
        Some(v & width_mask(width))
    }

    /// A device register write; `false` is a bus error.
    pub fn write(&mut self, cpu: usize, now: u64, paddr: u64, width: u8, value: u64) -> bool {
        let Some((id, off)) = route(paddr, width) else {
            return false;
        };
        let value = value & width_mask(width);
        self.with_device(id, cpu, now, width, |d, a| {
            d.advance(now);
            d.write(a, off, value)
        })
    }

    /// Brings time-driven devices (the rtc timer) up to cycle `now`.
    pub fn advance(&mut self, now: u64) {
        self.console.advance(now);
        self.mp.advance(now);
        self.rtc.advance(now);
        self.disk.advance(now);
    }

    /// Interrupt lines asserted towards `cpu`, as Cause.IP bits (IP2–IP6).
    /// The console and the rtc interrupt CPU 0, as on GXemul's testmips.
    pub fn irq_lines(&self, cpu: usize) -> u32 {
        self.console.irq_lines(cpu)
            | self.mp.irq_lines(cpu)
            | self.rtc.irq_lines(cpu)
            | self.disk.irq_lines(cpu)
    }

    /// Whether `cpu` is paused through mp's pause_cpu (it keeps its state
    /// and does not run until unpaused).
    pub fn paused(&self, cpu: usize) -> bool {
        self.mp.paused(cpu)
    }

    /// Whether the machine has something to do before this CPU goes on:
    /// a queued action, or a change to which CPUs are paused.
    pub fn has_actions(&self) -> bool {
        !self.actions.is_empty() || self.mp.pause_changed
    }

    pub fn take_actions(&mut self) -> Vec<BoardAction> {
        self.mp.pause_changed = false;
        std::mem::take(&mut self.actions)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_routes_each_window_and_nothing_else() {
        assert_eq!(route(0x1000_0000, 1), Some((DeviceId::Console, 0)));
        assert_eq!(route(0x1000_0010, 4), Some((DeviceId::Halt, 0)));
        assert_eq!(route(0x1100_00d0, 8), Some((DeviceId::Mp, 0xd0)));
        assert_eq!(route(0x1300_41f8, 8), Some((DeviceId::Disk, 0x41f8)));
        assert_eq!(route(0x1500_0110, 4), Some((DeviceId::Rtc, 0x110)));
        // Straddling the end of a window, the framebuffer, the irqc, far away.
        assert_eq!(route(0x1300_41fc, 8), None);
        assert_eq!(route(0x1200_0000, 4), None);
        assert_eq!(route(0x1600_0000, 4), None);
        assert_eq!(route(u64::MAX, 8), None);
        // Windows do not overlap.
        for (i, &(_, a, asz)) in REGISTRY.iter().enumerate() {
            for &(_, b, _) in REGISTRY.iter().skip(i + 1) {
                assert!(b >= a + asz, "{a:#x} and {b:#x}");
            }
        }
    }

    #[test]
    fn hostile_mmio_never_panics() {
        let mut b = Board::with_config(BoardConfig {
            ncpus: 4,
            ram_bytes: 1 << 20,
            disk: Some(vec![0x5A; 4096].into()),
            ..BoardConfig::default()
        });
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let bases = [
            0x1000_0000,
            0x1100_0000,
            0x1300_0000,
            0x1300_4000,
            0x1500_0000,
        ];
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let base = bases[(x % 5) as usize];
            let off = (x >> 8) & 0x43FF;
            let width = [1u8, 2, 4, 8][((x >> 24) & 3) as usize];
            let cpu = ((x >> 28) % 70) as usize;
            let value = x.rotate_left(17);
            // Never the halt register: the run would simply stop.
            if base + off == map::HALT {
                continue;
            }
            if x & 1 == 0 {
                let _ = b.read(cpu, i, base + off, width);
            } else {
                let _ = b.write(cpu, i, base + off, width, value);
            }
            let _ = b.irq_lines(cpu);
            if i % 1000 == 0 {
                b.advance(i * 1000);
                b.take_actions();
            }
        }
    }

    #[test]
    fn reads_are_truncated_to_the_access_width() {
        let mut b = Board::new(2);
        assert_eq!(b.read(1, 0, map::MP, 1), Some(1));
        assert_eq!(b.read(0, 0, map::MP + 0x90, 8), Some(32 << 20));
        assert_eq!(
            b.read(0, 0x1_2345_6789, map::MP + 0xd0, 4),
            Some(0x2345_6789)
        );
    }

    #[test]
    fn pausing_other_cpus_is_reported_to_the_machine() {
        let mut b = Board::new(3);
        assert!(b.write(0, 0, map::MP + 0x50, 4, 0));
        assert!(b.has_actions());
        assert!(!b.paused(0) && b.paused(1) && b.paused(2));
        assert!(b.take_actions().is_empty());
        assert!(!b.has_actions());
        assert!(b.write(0, 0, map::MP + 0x60, 4, 2));
        assert!(b.paused(1) && !b.paused(2));
    }
}
