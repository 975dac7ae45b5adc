//! The board: GXemul testmips-compatible devices (`../shared/docs/board-testmips.md`,
//! programming reference in docs/hardware.md). One file per device behind
//! the small [`Device`] trait, and one registry (`board`) that routes
//! physical addresses to them, System/161 style.
//!
//! Effects on the machine as a whole (starting a CPU, halting) are queued as
//! [`BoardAction`]s for the machine to apply between CPU runs, which keeps
//! the interleaving deterministic. Interrupt lines are polled by the CPUs
//! through [`Board::irq_lines`]; device time advances at quantum boundaries
//! ([`Board::advance`]) and whenever a device is read.

mod board;
mod console;
mod disk;
mod halt;
mod mp;
mod rtc;

pub use board::{Board, DeviceId, REGISTRY};
pub use console::Console;
pub use disk::{Disk, DiskImage};
pub use halt::Halt;
pub use mp::Mp;
pub use rtc::Rtc;

/// Physical bases of the devices and the extent of each window.
pub mod map {
    pub const CONS: u64 = 0x1000_0000;
    /// The halt register, in the console's window (cons + 0x10).
    pub const HALT: u64 = 0x1000_0010;
    pub const MP: u64 = 0x1100_0000;
    pub const DISK: u64 = 0x1300_0000;
    pub const RTC: u64 = 0x1500_0000;
    pub const WINDOW: u64 = 0x10_0000;
}

/// Cause.IP bits of the device lines (controller-less testmips wiring).
pub mod irq {
    pub const CONS: u32 = 1 << 10; // IP2
    pub const RTC: u32 = 1 << 12; // IP4
    /// The disk's completion interrupt: a disco extension, off unless the
    /// board is built with `disk_irq_latency` (GXemul's disk has none).
    pub const DISK: u32 = 1 << 13; // IP5
    pub const MP: u32 = 1 << 14; // IP6
}

/// The simulated PClock: 100 MHz, an R4000 on a 50 MHz MasterClock
/// (`../shared/docs/r4000-reference.md` §6.2). The one place that turns cycles into
/// seconds: device time (rtc) is derived from it.
pub(crate) const CLOCK_HZ: u64 = 100_000_000;

/// Something a device asks the machine to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BoardAction {
    /// Start a parked CPU at `pc` with `sp`.
    StartCpu { cpu: usize, pc: u64, sp: u64 },
    /// Power off with an exit status.
    Halt { status: u32 },
}

/// What the board is built from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BoardConfig {
    pub ncpus: usize,
    pub ram_bytes: u64,
    /// The disk image, shared with other boards that use the same file
    /// (each board's writes stay its own; the host file is only written
    /// back if the user asks, by whoever built this config).
    pub disk: Option<DiskImage>,
    /// With `Some(cycles)` the disk raises IP5 that many cycles after each
    /// operation starts, until the guest writes its status register; the
    /// transfer itself still happens at once. `None`: no interrupt, as on
    /// GXemul.
    pub disk_irq_latency: Option<u64>,
    /// Seed of mp's hardware_random register.
    pub seed: u64,
    /// Seconds since 1970 the rtc reports at cycle 0.
    pub epoch: u64,
}

/// What a device sees of the access and of the board around it.
#[derive(Debug)]
pub struct Access<'a> {
    /// The CPU making the access.
    pub cpu: usize,
    /// That CPU's cycle counter (simulated time).
    pub now: u64,
    /// Access width in bytes: 1, 2, 4 or 8.
    pub width: u8,
    /// Requests for the machine.
    pub actions: &'a mut Vec<BoardAction>,
    /// Console bytes on their way to the host.
    pub output: &'a mut Vec<u8>,
}

/// One device on the board. `off` is the offset inside the device's
/// window. Devices never panic on guest input: a register that does not
/// exist is `None` / `false`, which the CPU turns into a bus error.
pub trait Device {
    /// A register read; `None` is a bus error.
    fn read(&mut self, a: &mut Access<'_>, off: u64) -> Option<u64>;
    /// A register write of `value` (already truncated to the width); `false`
    /// is a bus error.
    fn write(&mut self, a: &mut Access<'_>, off: u64, value: u64) -> bool;
    /// Brings time-driven state up to cycle `now`.
    fn advance(&mut self, _now: u64) {}
    /// Interrupt lines the device asserts towards `cpu`, as Cause.IP bits.
    fn irq_lines(&self, _cpu: usize) -> u32 {
        0
    }
}

/// The bits of a value of `width` bytes.
pub(crate) fn width_mask(width: u8) -> u64 {
    match width {
        1 => 0xFF,
        2 => 0xFFFF,
        4 => 0xFFFF_FFFF,
        _ => u64::MAX,
    }
}

/// Test helpers for the device unit tests.
#[cfg(test)]
pub(crate) mod test_access {
    use super::{Access, BoardAction, Device};

    /// Scratch state an [`Access`] borrows.
    #[derive(Default)]
    pub(crate) struct Bench {
        pub(crate) actions: Vec<BoardAction>,
        pub(crate) output: Vec<u8>,
    }

    impl Bench {
        pub(crate) fn read<D: Device>(
            &mut self,
            d: &mut D,
            cpu: usize,
            now: u64,
            off: u64,
            width: u8,
        ) -> Option<u64> {
            let mut a = Access {
                cpu,
                now,
                width,
                actions: &mut self.actions,
                output: &mut self.output,
            };
            d.read(&mut a, off)
        }

        pub(crate) fn write<D: Device>(
            &mut self,
            d: &mut D,
            cpu: usize,
            now: u64,
            off: u64,
            width: u8,
            value: u64,
        ) -> bool {
            let mut a = Access {
                cpu,
                now,
                width,
                actions: &mut self.actions,
                output: &mut self.output,
            };
            d.write(&mut a, off, value)
        }
    }
}
