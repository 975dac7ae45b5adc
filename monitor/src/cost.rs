//! The modelled cycle cost of each monitor handler, in one table
//! (documented in docs/timing.md).
//!
//! The monitor is Rust code standing in for a kernel-mode handler, so its
//! costs are those of the MIPS handler it stands for: figures are instruction
//! counts of such a handler at one cycle each, plus the hardware exception
//! entry (charged by the simulator) and an ERET. They are modelling choices,
//! sized after Disco's description of its handlers (Bugnion et al., 1997).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cost {
    /// Save state, read Cause, dispatch, restore, ERET: paid by every exit.
    pub exit: u64,
    /// Emulate one privileged instruction against the virtual CPU.
    pub emulate: u64,
    /// Deliver an exception to the guest: virtual EPC/Cause/BadVAddr/EXL.
    pub reflect: u64,
    /// Refill the real TLB from the L2TLB (hash probe + TLBWR).
    pub l2tlb_refill: u64,
    /// Compose a guest TLB entry: virtual TLB lookup, pmap, real TLB write.
    pub compose: u64,
    /// Shoot down composed entries when a guest TLB entry is replaced.
    pub shootdown: u64,
    /// Interpret one guest instruction in the emulation engine.
    pub engine_insn: u64,
    /// Follow a recognized vector trampoline straight into the window.
    pub trampoline: u64,
    /// Emulate one access to a virtual device register.
    pub vdev: u64,
    /// Switch a physical CPU to another virtual CPU.
    pub vcpu_switch: u64,
    /// Rewrite one guest MFC0/MTC0 into a commpage load/store (once per site).
    pub patch: u64,
    /// Coalesced I/O (`coalesce`): follow one guest instruction while
    /// scanning ahead of a device access (fetch, decode, a dry run).
    pub scan: u64,
    /// Hash one instruction word of a recorded block.
    pub hash: u64,
    /// Probe the per-address table at a device-access trap.
    pub lookup: u64,
    /// Queue one write-buffered device write in the ring (`coalesce=ring`).
    pub ring: u64,
    /// Install a guest TLB entry on pass-through memory as it is: virtual
    /// TLB lookup, a bound check of its frame, real TLB write.
    pub passthrough: u64,
    /// Sliding the monitor under a kernel and out again (`virt`, `remap`).
    pub virt: VirtCost,
    /// Binary translation (`bt`): translate one guest instruction, once.
    pub bt_translate: u64,
    /// An unchained block exit (indirect jump, entry): find the next block
    /// in the translation cache.
    pub bt_lookup: u64,
    /// An indirect exit whose target its inline cache held: compare, branch.
    pub bt_predict: u64,
    /// Leave translated code for a page that runs directly.
    pub bt_leave: u64,
    /// Inline MFC0: a load of the virtual register, beyond its issue cycle.
    pub bt_mfc0: u64,
    /// Inline MTC0 of a register with side effects (Status, Cause, EntryHi,
    /// Count, Compare, Wired): the check after the store.
    pub bt_mtc0: u64,
    /// Inline ERET: return to the guest at the virtual EPC in its mode.
    pub bt_eret: u64,
    /// Inline TLBR/TLBWI/TLBWR/TLBP: a call to the emulation function.
    pub bt_tlb: u64,
    /// A KSEG0/KSEG1 data access of translated code: the address rewritten
    /// into the monitor's kseg3 window (one add).
    pub bt_kseg: u64,
    /// A user's system call reflected straight into the guest's translated
    /// handler, in place of an exit and a reflection.
    pub bt_reflect: u64,
}

pub const COST: Cost = Cost {
    exit: 12,
    emulate: 10,
    reflect: 16,
    l2tlb_refill: 10,
    compose: 30,
    shootdown: 20,
    engine_insn: 20,
    trampoline: 4,
    vdev: 40,
    vcpu_switch: 150,
    patch: 40,
    scan: 10,
    hash: 2,
    lookup: 4,
    ring: 6,
    passthrough: 24,
    virt: VIRT,
    bt_translate: 40,
    bt_lookup: 10,
    bt_predict: 2,
    bt_leave: 6,
    bt_mfc0: 0,
    bt_mtc0: 3,
    bt_eret: 4,
    bt_tlb: 10,
    bt_kseg: 1,
    bt_reflect: 19,
};

impl Default for Cost {
    fn default() -> Cost {
        COST
    }
}

impl Cost {
    /// The entries' names, as `--cost NAME=CYCLES` and the `[cost]` table
    /// spell them.
    pub const NAMES: [&'static str; 26] = [
        "exit",
        "emulate",
        "reflect",
        "l2tlb_refill",
        "compose",
        "shootdown",
        "engine_insn",
        "trampoline",
        "vdev",
        "vcpu_switch",
        "patch",
        "scan",
        "hash",
        "lookup",
        "ring",
        "passthrough",
        "bt_translate",
        "bt_lookup",
        "bt_predict",
        "bt_leave",
        "bt_mfc0",
        "bt_mtc0",
        "bt_eret",
        "bt_tlb",
        "bt_kseg",
        "bt_reflect",
    ];

    fn entry(&mut self, name: &str) -> Option<&mut u64> {
        Some(match name {
            "exit" => &mut self.exit,
            "emulate" => &mut self.emulate,
            "reflect" => &mut self.reflect,
            "l2tlb_refill" => &mut self.l2tlb_refill,
            "compose" => &mut self.compose,
            "shootdown" => &mut self.shootdown,
            "engine_insn" => &mut self.engine_insn,
            "trampoline" => &mut self.trampoline,
            "vdev" => &mut self.vdev,
            "vcpu_switch" => &mut self.vcpu_switch,
            "patch" => &mut self.patch,
            "scan" => &mut self.scan,
            "hash" => &mut self.hash,
            "lookup" => &mut self.lookup,
            "ring" => &mut self.ring,
            "passthrough" => &mut self.passthrough,
            "bt_translate" => &mut self.bt_translate,
            "bt_lookup" => &mut self.bt_lookup,
            "bt_predict" => &mut self.bt_predict,
            "bt_leave" => &mut self.bt_leave,
            "bt_mfc0" => &mut self.bt_mfc0,
            "bt_mtc0" => &mut self.bt_mtc0,
            "bt_eret" => &mut self.bt_eret,
            "bt_tlb" => &mut self.bt_tlb,
            "bt_kseg" => &mut self.bt_kseg,
            "bt_reflect" => &mut self.bt_reflect,
            _ => return self.virt.entry(name),
        })
    }

    /// The most cycles one entry may be set to: far beyond any handler, and
    /// small enough that sums of many charges cannot overflow.
    pub const MAX: u64 = 1_000_000;

    /// Overrides entry `name` (one of [`Cost::NAMES`] or [`VirtCost::NAMES`]).
    pub fn set(&mut self, name: &str, cycles: u64) -> Result<(), String> {
        if cycles > Cost::MAX {
            return Err(format!(
                "{name}={cycles}: at most {} cycles per entry",
                Cost::MAX
            ));
        }
        match self.entry(name) {
            Some(e) => {
                *e = cycles;
                Ok(())
            }
            None => Err(format!(
                "{name:?} is not an entry of the monitor's cost table ({}, {})",
                Cost::NAMES.join(", "),
                VirtCost::NAMES.join(", ")
            )),
        }
    }

    /// Applies one `NAME=CYCLES` override.
    pub fn apply(&mut self, spec: &str) -> Result<(), String> {
        let (name, v) = spec
            .split_once('=')
            .ok_or_else(|| format!("{spec:?} is not NAME=CYCLES"))?;
        let cycles = v
            .trim()
            .parse()
            .map_err(|_| format!("{spec:?}: {v:?} is not a number of cycles"))?;
        self.set(name.trim(), cycles)
    }
}

/// The modelled cost of sliding the monitor under a running kernel and
/// taking it out again (`virt`): what a MIPS handler doing the same work
/// would execute, at one cycle per instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtCost {
    /// Per CPU: rendezvous at the boundary, save 32 GPRs, HI/LO, PC and
    /// the 20-odd CP0 registers into the VCPU (or load them back).
    pub cpu_state: u64,
    /// Per TLB entry: TLBR (or TLBWI) and four loads or stores of
    /// EntryHi/EntryLo0/EntryLo1/PageMask.
    pub tlb_entry: u64,
    /// Per real TLB entry: invalidate it (EntryHi write + TLBWI).
    pub tlb_flush_entry: u64,
    /// Build or check a pmap range (a few words, whatever the size).
    pub pmap_range: u64,
    /// Move the board's state (timer, interrupt lines, IPI queues,
    /// console input, disk) between the machine and the VM: pointers.
    pub board: u64,
    /// Copy one 4K page to another machine page: 1,024 loads and stores.
    pub page_copy: u64,
    /// Update the pmap and the back map for one moved page.
    pub page_remap: u64,
    /// Write-protect one page for concurrent remapping: find its composed
    /// entries through the back map and clear their D bits.
    pub page_protect: u64,
    /// Per CPU and batch of concurrent remapping: take the shootdown IPI,
    /// probe the real TLB for the batch's pages and invalidate them.
    pub remap_shootdown: u64,
    /// Look at one pmap entry while searching for a machine page's user
    /// (`--remap-index search`, or `refcount` for a page in use).
    pub search_entry: u64,
}

pub const VIRT: VirtCost = VirtCost {
    cpu_state: 120,
    tlb_entry: 6,
    tlb_flush_entry: 3,
    pmap_range: 40,
    board: 60,
    page_copy: 2048,
    page_remap: 10,
    page_protect: 20,
    remap_shootdown: 200,
    search_entry: 2,
};

impl VirtCost {
    /// The steps' names for `--cost NAME=CYCLES`, after [`Cost::NAMES`].
    pub const NAMES: [&'static str; 10] = [
        "cpu_state",
        "tlb_entry",
        "tlb_flush_entry",
        "pmap_range",
        "board",
        "page_copy",
        "page_remap",
        "search_entry",
        "page_protect",
        "remap_shootdown",
    ];

    fn entry(&mut self, name: &str) -> Option<&mut u64> {
        Some(match name {
            "cpu_state" => &mut self.cpu_state,
            "tlb_entry" => &mut self.tlb_entry,
            "tlb_flush_entry" => &mut self.tlb_flush_entry,
            "pmap_range" => &mut self.pmap_range,
            "board" => &mut self.board,
            "page_copy" => &mut self.page_copy,
            "page_remap" => &mut self.page_remap,
            "search_entry" => &mut self.search_entry,
            "page_protect" => &mut self.page_protect,
            "remap_shootdown" => &mut self.remap_shootdown,
            _ => return None,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_an_entry_and_overrides_apply() {
        let mut c = COST;
        for (i, name) in Cost::NAMES.iter().enumerate() {
            c.set(name, 1000 + i as u64).unwrap();
        }
        assert_eq!(c.exit, 1000);
        assert_eq!(c.ring, 1014);
        assert_eq!(c.bt_kseg, 1024);
        for (i, name) in VirtCost::NAMES.iter().enumerate() {
            c.set(name, 2000 + i as u64).unwrap();
        }
        assert_eq!(c.virt.cpu_state, 2000);
        assert_eq!(c.virt.search_entry, 2007);
        assert_eq!(c.exit, 1000);
        c.apply("exit=100").unwrap();
        assert_eq!(c.exit, 100);
        assert!(c.apply("exits=1").unwrap_err().contains("not an entry"));
        assert!(c.apply("exit").is_err());
        assert!(c.apply("exit=lots").is_err());
        assert!(c.apply("exit=1000001").unwrap_err().contains("at most"));
    }
}
