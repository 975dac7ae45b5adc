//! Handing a CPU's architectural state to a monitor and back: what runtime
//! virtualization (`monitor::virt`) captures from a bare-metal CPU to make
//! it a virtual CPU, and loads into it again when the monitor steps away.
//!
//! Only architectural state crosses: the registers, CP0 (with Count as
//! software reads it, so the timer keeps its phase), the TLB and whether
//! the CPU runs. Everything derived from it (translation caches, the timer
//! deadline, Random's origin) is rebuilt on [`Cpu::restore`], so a CPU
//! restored at a quantum boundary continues exactly as if it had never
//! stopped.

use crate::cpu::cp0::reg;
use crate::cpu::{Cp0, Cpu, Regs, RunState, Tlb};

/// One CPU's architectural state at a point where it is between
/// instructions.
#[derive(Clone, Debug)]
pub struct CpuState {
    pub regs: Regs,
    pub cp0: Cp0,
    pub tlb: Tlb,
    /// Count as software would read it at the capture.
    pub count: u32,
    pub state: RunState,
}

impl Cpu {
    /// The CPU's architectural state now.
    pub fn capture(&self) -> CpuState {
        CpuState {
            regs: self.regs.clone(),
            cp0: self.cp0.clone(),
            tlb: self.tlb.clone(),
            count: self.count(),
            state: self.state,
        }
    }

    /// Loads `s` into the CPU and rebuilds what derives from it: Count
    /// continues from `s.count` at this CPU's clock, the timer deadline
    /// follows Compare, and every cached translation is dropped.
    pub fn restore(&mut self, s: &CpuState) {
        self.regs = s.regs.clone();
        self.core.cp0 = s.cp0.clone();
        self.core.tlb = s.tlb.clone();
        self.core.state = s.state;
        // Through the register write: it sets the offset and reschedules
        // the timer from Compare.
        self.core.write_cp0(reg::COUNT, u64::from(s.count));
        self.core.flush_translations();
        self.core.context_changed();
        self.core.interrupts_changed();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cpu::cp0::reg;
    use crate::cpu::TlbEntry;

    #[test]
    fn a_restored_cpu_reads_the_captured_state_at_its_own_clock() {
        let mut a = Cpu::new(0);
        a.regs.set(crate::isa::Reg::SP, 0x1234);
        a.cycles = 1_000;
        a.write_cp0(reg::COUNT, 500);
        a.write_cp0(reg::COMPARE, 900);
        a.write_cp0(reg::WIRED, 3);
        let e = TlbEntry {
            page_mask: 0,
            vpn2: 0xC000_0000,
            asid: 0,
            global: true,
            lo: [0x1F, 0x5F],
        };
        a.tlb_write(2, e);
        let s = a.capture();
        let mut b = Cpu::new(1);
        b.cycles = 5_000;
        b.restore(&s);
        assert_eq!(b.regs, a.regs);
        assert_eq!(b.count(), 500);
        assert_eq!(b.cp0.compare, 900);
        assert_eq!(b.cp0.wired, 3);
        assert_eq!(b.tlb.read(2), e);
        b.cycles += 20;
        assert_eq!(b.count(), 510);
    }
}
