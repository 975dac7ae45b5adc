//! The board: GXemul testmips-compatible devices (`board-testmips.md`,
//! programming reference in docs/hardware.md). One file per device; this
//! file is the registry that routes physical addresses to them.
//!
//! Effects on other CPUs or on the machine as a whole (starting a CPU,
//! halting) are queued as [`BoardAction`]s for the machine to apply between
//! CPU runs, which keeps the interleaving deterministic. Interrupt lines are
//! polled by the CPUs through [`Board::irq_lines`].

mod console;
mod disk;
mod mp;
mod rtc;

pub use console::Console;
pub use disk::Disk;
pub use mp::Mp;
pub use rtc::Rtc;

/// Physical bases of the devices and the extent of each window.
pub mod map {
    pub const CONS: u64 = 0x1000_0000;
    pub const MP: u64 = 0x1100_0000;
    pub const DISK: u64 = 0x1300_0000;
    pub const RTC: u64 = 0x1500_0000;
    pub const WINDOW: u64 = 0x10_0000;
}

/// Cause.IP bits of the device lines (controller-less testmips wiring).
pub mod irq {
    pub const CONS: u32 = 1 << 10; // IP2
    pub const RTC: u32 = 1 << 12; // IP4
    pub const MP: u32 = 1 << 14; // IP6
}

/// The simulated PClock: 100 MHz, an R4000 on a 50 MHz MasterClock
/// (`r4000-reference.md` §6.2). Device time (rtc) is derived from it.
pub const CLOCK_HZ: u64 = 100_000_000;

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
    /// The disk image's contents (the host file is never written).
    pub disk: Option<Vec<u8>>,
    /// Seed of mp's hardware_random register.
    pub seed: u64,
    /// Seconds since 1970 the rtc reports at cycle 0.
    pub epoch: u64,
}

#[derive(Debug, Default)]
pub struct Board {
    pub ncpus: usize,
    pub console: Console,
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
            mp: Mp::new(c.ncpus, c.ram_bytes, c.seed),
            rtc: Rtc::new(c.epoch),
            disk: Disk::new(c.disk),
            console_out: Vec::new(),
            actions: Vec::new(),
        }
    }

    /// A device register read by `cpu` at cycle `now`; `None` is a bus error.
    pub fn read(&mut self, cpu: usize, now: u64, paddr: u64, width: u8) -> Option<u64> {
        let (base, off) = (paddr & !(map::WINDOW - 1), paddr & (map::WINDOW - 1));
        match base {
            map::CONS => self.console.read(off),
            map::MP => self.mp.read(cpu, now, off),
            map::DISK => self.disk.read(off, width),
            map::RTC => self.rtc.read(now, off),
            _ => None,
        }
    }

    /// A device register write; `false` is a bus error.
    pub fn write(&mut self, cpu: usize, now: u64, paddr: u64, width: u8, value: u64) -> bool {
        let (base, off) = (paddr & !(map::WINDOW - 1), paddr & (map::WINDOW - 1));
        match base {
            map::CONS => self
                .console
                .write(off, value, &mut self.console_out, &mut self.actions),
            map::MP => self.mp.write(cpu, off, width, value, &mut self.actions),
            map::DISK => self.disk.write(off, width, value),
            map::RTC => self.rtc.write(now, off, value),
            _ => false,
        }
    }

    /// Brings time-driven devices (the rtc timer) up to cycle `now`.
    pub fn advance(&mut self, now: u64) {
        self.rtc.advance(now);
    }

    /// Interrupt lines asserted towards `cpu`, as Cause.IP bits (IP2–IP6).
    /// The console and the rtc interrupt CPU 0, as on GXemul's testmips.
    pub fn irq_lines(&self, cpu: usize) -> u32 {
        let mut lines = 0;
        if cpu == 0 && self.console.interrupting() {
            lines |= irq::CONS;
        }
        if cpu == 0 && self.rtc.interrupting() {
            lines |= irq::RTC;
        }
        if self.mp.ipi_pending(cpu) {
            lines |= irq::MP;
        }
        lines
    }

    pub fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    pub fn take_actions(&mut self) -> Vec<BoardAction> {
        std::mem::take(&mut self.actions)
    }
}
