//! The interface a monitor running "in kernel mode" uses (`../shared/docs/design.md` §4).
//!
//! With exits on, a CPU that takes an exception does the hardware part of
//! exception entry (EPC, Cause, BadVAddr, Context, EntryHi, EXL) and then
//! returns [`RunExit::Exception`](crate::cpu::RunExit) from `run`, instead of
//! fetching from the vector: the monitor's Rust code is the kernel-mode
//! handler. It reads and writes CP0 and the TLB with kernel privilege through
//! the methods here, charges the modelled cost of its work, and resumes.

use crate::cpu::{Core, Cpu, TlbEntry};

impl Cpu {
    /// Turns monitor exits on or off.
    pub fn set_hv_exits(&mut self, on: bool) {
        self.core.hv_exits = on;
        if !on {
            self.core.hv_exit = None;
        }
    }
}

impl Core {
    /// Charges `cycles` of modelled monitor work to this CPU.
    pub fn charge(&mut self, cycles: u64) {
        self.cycles += cycles;
    }

    /// Writes real TLB entry `index` (mod 48), as TLBWI would.
    pub fn tlb_write(&mut self, index: usize, entry: TlbEntry) {
        self.tlb.write(index, entry);
        self.flush_translations();
    }

    /// Whether exits are on.
    pub fn hv_exits(&self) -> bool {
        self.hv_exits
    }
}
