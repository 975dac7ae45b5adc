//! Monitor exits: what the simulator adds so a monitor can run "in kernel
//! mode" (`../shared/docs/design.md` §4).
//!
//! With exits on, a CPU that takes an exception does the hardware part of
//! exception entry (EPC, Cause, BadVAddr, Context, EntryHi, EXL) and then
//! returns [`RunExit::Exception`](crate::cpu::RunExit) from `run`, instead of
//! fetching from the vector: the monitor's Rust code is the kernel-mode
//! handler. It reads and writes CP0 and the TLB with kernel privilege through
//! the methods here, charges the modelled cost of its work, and resumes.
//!
//! This file is not all the monitor uses: `monitor/` is built on the
//! simulator's ordinary public types too. Its emulation engine runs the
//! interpreter (`cpu::execute`) against its own `ExecContext`; `cp0::Cp0`
//! and `tlb::Tlb` are its virtual CPU's registers and TLB; it reads and
//! writes the `Core`'s real CP0, TLB and cycle count, the `Bus`'s RAM and
//! LL links and the `Cpu`'s registers directly, runs one `dev::Board` per
//! VM, and uses the `Machine`, the loader, the disassembler and the GDB
//! stub. A change to any of those can break the monitor as surely as one
//! here.

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

    /// The CPU goes on with another bus (a monitor's host thread): what
    /// it cached of the old one's decoded code must not be used.
    pub fn bus_changed(&mut self) {
        self.context_changed();
    }

    /// Whether exits are on.
    pub fn hv_exits(&self) -> bool {
        self.hv_exits
    }
}

/// How a monitor's host threads wait for their next quantum, as the bare
/// machine's do in the parallel mode.
pub use crate::parallel::recv_soon;

/// Register-only instructions, pre-extracted, for the monitor's translated
/// blocks (`cpu/block/regop.rs`).
pub use crate::cpu::block::regop::RegOp;
