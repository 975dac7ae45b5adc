//! The physical-CPU handle: what a monitor does to a real CPU besides
//! running it. Reads go through the shared views every user of a CPU has
//! (`Core::cp0`, `Core::tlb`, `Core::cycles`, ... in `crate::cpu`); every
//! write goes through a method here (or `Core::write_cp0`) that keeps the
//! CPU's caches (translations, fetch page, timer) coherent with what
//! changed.

use crate::cpu::{Core, Cpu, DebugControl, RunState, TlbEntry};

impl Cpu {
    /// Turns monitor exits on or off.
    pub fn set_hv_exits(&mut self, on: bool) {
        self.core.hv_exits = on;
        if !on {
            self.core.hv_exit = None;
        }
    }

    /// Exchanges the CPU's debugger requests with `ctl`: the monitor's GDB
    /// stub lends a VCPU's requests to the real CPU for one run.
    pub fn swap_debug(&mut self, ctl: &mut DebugControl) {
        std::mem::swap(&mut self.core.debug, ctl);
    }

    /// Drops the events the traced loop recorded (the monitor traces its
    /// guests itself).
    pub fn discard_events(&mut self) {
        self.core.events.clear();
    }
}

impl Core {
    /// Charges `cycles` of modelled monitor work to this CPU.
    pub fn charge(&mut self, cycles: u64) {
        self.cycles += cycles;
    }

    /// Moves this CPU's clock on to `cycle` if it is behind (it waited).
    pub fn idle_until(&mut self, cycle: u64) {
        self.cycles = self.cycles.max(cycle);
    }

    /// Starts, parks or stops the CPU.
    pub fn set_run_state(&mut self, state: RunState) {
        self.state = state;
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
