//! A virtual CPU: the guest's registers while descheduled, its virtual CP0
//! and virtual 48-entry TLB, its virtual timer and its L2TLB.

use sim::hv::{
    cp0::{self, Mode},
    Cp0, Cp0Write, Exception, Regs, Tlb,
};

use crate::l2tlb::L2Tlb;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcpuState {
    /// Not started yet (secondary VCPUs wait for the virtual mp device).
    Parked,
    Runnable,
    /// Idle on WAIT until a virtual interrupt is pending.
    Waiting,
    /// Its VM halted or was stopped.
    Stopped,
}

/// Per-VCPU counters for `--stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VcpuStats {
    /// Exits by the real ExcCode that caused them.
    pub exits: [u64; 32],
    /// Emulated privileged instructions by mnemonic index (see `EMULATED`).
    pub emulated: [u64; EMULATED.len()],
    pub reflected: u64,
    pub engine_insns: u64,
    pub vdev_accesses: u64,
    /// Address-error and TLB exits of guest-kernel accesses to its board's
    /// registers (KSEG1, or a device page it mapped: `device_exits_tlb`).
    pub device_exits: u64,
    pub device_exits_tlb: u64,
    /// The other address-error exits of guest-kernel data accesses: KSEG0
    /// (and KSEG1 RAM).
    pub kseg_exits: u64,
    /// Guest-kernel MFC0/MTC0 sites rewritten to use the commpage.
    pub patched: u64,
    /// Guest TLB entries installed in the real TLB: composed through the
    /// pmap, or passed through as they are (`crate::memstate`).
    pub composed: u64,
    pub passed_through: u64,
    pub monitor_cycles: u64,
    pub guest_cycles: u64,
    pub guest_insns: u64,
}

/// Names of the emulated-instruction counters.
pub const EMULATED: [&str; 9] = [
    "mfc0", "mtc0", "tlbr", "tlbwi", "tlbwr", "tlbp", "eret", "cache", "wait",
];

#[derive(Clone, Debug)]
pub struct Vcpu {
    pub index: usize,
    /// Machine-wide number of this VCPU's address space: machine ASIDs
    /// belong to (space, guest ASID), not (VM, guest ASID), because each
    /// VCPU has its own virtual TLB (kestrel's per-CPU page is a global
    /// entry that differs on every CPU), so entries composed for one VCPU
    /// must never be hit by another VCPU of the same VM.
    pub space: usize,
    /// Machine address of this VCPU's commpage (see `commpage`).
    pub commpage: u64,
    /// Whether the monitor may patch the guest kernel's MFC0/MTC0 sites to
    /// use the commpage. Off for a kernel virtualized at run time: it may
    /// be devirtualized, and then its code must be its own again
    /// (docs/devirtualization.md), so it is never patched and the page is
    /// never mapped into it.
    pub commpage_on: bool,
    /// The register values last copied into the commpage.
    pub commpage_shadow: [u32; 32],
    /// Whether the guest kernel may have written the commpage since.
    pub commpage_live: bool,
    /// Registers (bit per number) whose commpage word the guest wrote.
    pub commpage_stale: u32,
    /// The guest's registers; live in the physical CPU while scheduled.
    pub regs: Regs,
    pub cp0: Cp0,
    pub tlb: Tlb,
    pub state: VcpuState,
    pub l2tlb: L2Tlb,
    pub stats: VcpuStats,
    /// Virtual Count = machine cycles / 2 + this.
    count_offset: u32,
    /// Machine cycle at which virtual Count next equals Compare.
    pub timer_due: u64,
    /// Guest instructions at the last Wired write (virtual Random's origin).
    random_base: u64,
    /// The physical CPU running it, if any.
    pub on_pcpu: Option<usize>,
    /// The only physical CPU it may run on: a kernel virtualized at run
    /// time keeps VCPU i on CPU i, where devirtualization puts it back.
    pub pinned: Option<usize>,
    /// Set by whatever may let an interrupt in (an MTC0, an ERET, a device
    /// access); the engine looks for one to take when it finds it set.
    pub may_interrupt: bool,
    /// The cycle since which the VCPU has waited for a page being copied
    /// by concurrent remapping (`remap`), if it waits.
    pub remap_wait: Option<u64>,
    /// Set by an emulated store to such a page: the engine stops, and the
    /// store runs again once the copy is done.
    pub remap_blocked: bool,
    /// Writes of the virtual TLB so far (any path): translated code's
    /// remembered translations hold while it is unchanged (`bt`).
    pub tlb_writes: u64,
}

impl Vcpu {
    pub fn new(index: usize, space: usize, commpage: u64) -> Vcpu {
        Vcpu {
            index,
            space,
            commpage,
            commpage_on: true,
            commpage_shadow: [0; 32],
            commpage_live: false,
            commpage_stale: 0,
            regs: Regs::default(),
            cp0: Cp0::default(),
            tlb: Tlb::default(),
            state: VcpuState::Parked,
            l2tlb: L2Tlb::default(),
            stats: VcpuStats::default(),
            count_offset: 0,
            timer_due: u64::MAX,
            random_base: 0,
            on_pcpu: None,
            pinned: None,
            may_interrupt: false,
            remap_wait: None,
            remap_blocked: false,
            tlb_writes: 0,
        }
    }

    /// What stands in a VM's list for a VCPU a host thread has taken out
    /// of a split VM's lock (`parallel::run`): stopped, so that nothing
    /// settled under the lock meanwhile (a board's halt, a VCPU start,
    /// which only starts a parked VCPU) runs, wakes or starts it.
    pub fn placeholder() -> Vcpu {
        let mut v = Vcpu::new(usize::MAX, usize::MAX, 0);
        v.state = VcpuState::Stopped;
        v
    }

    /// Whether it could run but no physical CPU holds it.
    pub fn waits_for_a_cpu(&self) -> bool {
        self.state == VcpuState::Runnable && self.on_pcpu.is_none()
    }

    /// Whether the scheduler may put it on physical CPU `p`.
    pub fn may_run_on(&self, p: usize) -> bool {
        self.pinned.is_none_or(|q| q == p)
    }

    /// Starts the VCPU at `pc` with `sp`, in the state a loaded ELF gets on
    /// the bare machine (see `sim::hv::Cpu::boot`).
    pub fn boot(&mut self, pc: u64, sp: u64, now: u64) {
        self.cp0.status = 0;
        self.regs.jump_to(pc);
        self.regs.set(sim::hv::isa::Reg::SP, sp);
        self.state = VcpuState::Runnable;
        self.reschedule_timer(now);
    }

    pub fn mode(&self) -> Mode {
        self.cp0.mode()
    }

    pub fn count(&self, now: u64) -> u32 {
        ((now >> 1) as u32).wrapping_add(self.count_offset)
    }

    pub fn random(&self) -> u32 {
        let wired = u64::from(self.cp0.wired);
        if wired > 47 {
            return 47;
        }
        let span = 48 - wired;
        // At most 47: exact.
        (47 - (self.stats.guest_insns.wrapping_sub(self.random_base) % span)) as u32
    }

    fn reschedule_timer(&mut self, now: u64) {
        let ticks = self.cp0.compare.wrapping_sub(self.count(now));
        let ticks = if ticks == 0 {
            1u64 << 32
        } else {
            u64::from(ticks)
        };
        self.timer_due = ((now >> 1) + ticks) << 1;
    }

    /// MFC0 against the virtual CP0.
    pub fn read_cp0(&self, reg: u32, now: u64) -> u64 {
        self.cp0.read(reg, self.count(now), self.random())
    }

    /// MTC0 against the virtual CP0.
    pub fn write_cp0(&mut self, reg: u32, value: u64, now: u64) -> Cp0Write {
        let effect = self.cp0.write(reg, value);
        match effect {
            Cp0Write::Count(v) => {
                self.count_offset = v.wrapping_sub((now >> 1) as u32);
                self.reschedule_timer(now);
            }
            Cp0Write::Compare => self.reschedule_timer(now),
            Cp0Write::Wired => self.random_base = self.stats.guest_insns,
            _ => {}
        }
        effect
    }

    /// Raises virtual IP7 if the virtual timer is due and folds in the
    /// virtual board's lines; returns the pending, enabled interrupts.
    pub fn update_interrupts(&mut self, now: u64, lines: u32) -> u32 {
        if now >= self.timer_due {
            self.cp0.cause |= cp0::cause::IP7;
            self.timer_due = self.timer_due.saturating_add(2 << 32);
        }
        self.set_lines(lines);
        self.cp0.pending_interrupts()
    }

    /// Makes virtual Cause's IP2..IP6 the virtual board's `lines` now.
    pub fn set_lines(&mut self, lines: u32) {
        self.cp0.cause = (self.cp0.cause & !0x7C00) | (lines & 0x7C00);
    }

    /// Delivers `e` to the guest exactly as the hardware would (virtual EPC,
    /// Cause, BadVAddr, Context, EntryHi, EXL) and moves `regs` to the
    /// guest's vector. `pc` is the faulting instruction, `bd` whether it sat
    /// in a delay slot. Returns the vector.
    // lab reflect: begin enter
    pub fn reflect(&mut self, regs: &mut Regs, e: &Exception, pc: u64, bd: bool) -> u64 {
        // Written out here rather than through the simulator's own
        // exception entry: this region is what the reflect lab's student
        // writes (labs/reflect/README.md), so the reference is the real thing.
        let c = &mut self.cp0;
        let nested = c.exl();
        // With EXL already set the hardware keeps EPC and BD: they still
        // name the instruction the outer handler returns to.
        if !nested {
            c.epc = if bd { pc.wrapping_sub(4) } else { pc };
            c.cause = if bd {
                c.cause | cp0::cause::BD
            } else {
                c.cause & !cp0::cause::BD
            };
        }
        c.cause = (c.cause & !(cp0::cause::EXC_MASK | cp0::cause::CE_MASK))
            | ((e.code as u32) << cp0::cause::EXC_SHIFT)
            | (u32::from(e.ce & 3) << cp0::cause::CE_SHIFT);
        if let Some(va) = e.badvaddr {
            c.bad_vaddr = va;
            if e.tlb {
                // The refill handler's inputs: BadVPN2 in Context and
                // XContext, the missing VPN2 with the current ASID in EntryHi.
                let va32 = va as u32;
                c.context = (c.context & !0x7F_FFF0) | u64::from((va32 >> 9) & 0x7F_FFF0);
                c.xcontext = (c.xcontext & !0x1_FFFF_FFF0) | ((va >> 9) & 0x7FFF_FFF0);
                c.entry_hi = cp0::sext32(u64::from(va32 & 0xFFFF_E000)) | u64::from(c.asid());
            }
        }
        c.status |= cp0::status::EXL;
        let base: u64 = if c.bev() {
            0xFFFF_FFFF_BFC0_0200
        } else {
            0xFFFF_FFFF_8000_0000
        };
        // Only a refill taken with EXL clear uses the refill vector.
        let vector = base + if e.refill && !nested { 0x000 } else { 0x180 };
        regs.jump_to(vector);
        self.stats.reflected += 1;
        vector
    }
    // lab reflect: end enter
}
