//! The board: GXemul testmips-compatible devices (board-testmips.md).
//!
//! The CPU reaches devices through [`Board::read`] and [`Board::write`] with a
//! physical address. Effects on other CPUs or on the machine as a whole
//! (starting a CPU, halting) are queued as [`BoardAction`]s for the machine
//! to apply between CPU steps, which keeps the interleaving deterministic.

/// Physical bases of the devices.
pub mod map {
    pub const CONS: u64 = 0x1000_0000;
    pub const MP: u64 = 0x1100_0000;
    pub const DISK: u64 = 0x1300_0000;
    pub const RTC: u64 = 0x1500_0000;
}

/// Something a device asks the machine to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BoardAction {
    /// Start a parked CPU at `pc` with `sp`.
    StartCpu { cpu: usize, pc: u64, sp: u64 },
    /// Power off with an exit status.
    Halt { status: u32 },
}

#[derive(Debug, Default)]
pub struct Board {
    pub ncpus: usize,
    /// Console bytes written by the guest and not yet collected.
    pub console_out: Vec<u8>,
    actions: Vec<BoardAction>,
}

impl Board {
    pub fn new(ncpus: usize) -> Board {
        Board {
            ncpus,
            ..Board::default()
        }
    }

    /// A device register read; `None` is a bus error.
    pub fn read(&mut self, cpu: usize, _now: u64, paddr: u64, _width: u8) -> Option<u64> {
        match paddr {
            p if p == map::CONS => Some(0),
            p if p == map::MP => Some(cpu as u64),
            p if p == map::MP + 0x10 => Some(self.ncpus as u64),
            _ => None,
        }
    }

    /// A device register write; `false` is a bus error.
    pub fn write(&mut self, _cpu: usize, _now: u64, paddr: u64, _width: u8, value: u64) -> bool {
        match paddr {
            p if p == map::CONS => {
                self.console_out.push(value as u8);
                true
            }
            p if p == map::CONS + 0x10 => {
                self.actions.push(BoardAction::Halt {
                    status: value as u32,
                });
                true
            }
            _ => false,
        }
    }

    /// Interrupt lines asserted towards `cpu`, as Cause.IP bits (IP2–IP6).
    pub fn irq_lines(&self, _cpu: usize) -> u32 {
        0
    }

    pub fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    pub fn take_actions(&mut self) -> Vec<BoardAction> {
        std::mem::take(&mut self.actions)
    }
}
