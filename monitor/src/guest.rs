//! The monitor's view of one VCPU running on one physical CPU (`GuestCtx`)
//! and the accesses every layer above shares: guest-virtual translation,
//! the VM's RAM through its pmap, cycle charging. The bottom of the guest
//! side: it depends on `sim`, `mem`, `vcpu`, `cost`, `obs` and the data of
//! `coalesce` and `bt`, and on nothing that takes a `GuestCtx`, so `tlbctl`,
//! `commpage`, `engine`, `exit`, `bt`, `coalesce`, `gdb` and `remap` sit above
//! it without a cycle. The engine's instruction semantics (`ExecContext`)
//! are `engine`'s, its data path (RAM, devices, LL/SC) `access`'s.

use sim::hv::isa::Insn;
use sim::hv::{
    cp0::Mode, Access, Board, Bus, Core, DebugControl, ExcCode, Exception, TlbEntry, PAGE_SHIFT,
    PAGE_SIZE,
};

use crate::cost::Cost;
use crate::mem::{Asids, GuestPhys, MachineAddr, Pmap};
use crate::obs::Trace;
use crate::vcpu::Vcpu;
use crate::vm::VmShared;

/// Whether code at `pc` can run directly on the real CPU for a guest in
/// `mode`: the guest kernel runs in real supervisor mode, so only suseg and
/// sseg; its user processes in real user mode.
pub fn directly_executable(pc: u64, mode: Mode) -> bool {
    // Low word: 32-bit addressing.
    let pc = pc as u32;
    match mode {
        Mode::User => pc < 0x8000_0000,
        _ => pc < 0x8000_0000 || (0xC000_0000..0xE000_0000).contains(&pc),
    }
}

/// Everything one engine run may touch, borrowed from the monitor. `W`
/// is how it reaches the VM-wide parts (board, ASIDs, coalescing, the
/// translator): held ([`VmParts`], the default: the deterministic mode, a
/// VM on one thread, and every exit) or behind the lock of a VM split over
/// threads ([`VmLock`]: only the engine runs with that, outside the lock,
/// taking it for what is VM-wide). The VCPU, the physical CPU and what
/// the thread owns are borrowed either way; the pmap is read-only while
/// the VM is split (docs/parallel.md).
pub struct GuestCtx<'a, W = VmParts<'a>> {
    pub vm: usize,
    pub vcpu: &'a mut Vcpu,
    pub pmap: &'a Pmap,
    pub wide: W,
    pub bus: &'a mut Bus,
    pub core: &'a mut Core,
    pub trace: &'a mut Trace,
    /// Composed entries dropped from one physical CPU's real TLB (the
    /// first field), of one address space (the second), which must leave
    /// the other CPUs' too.
    pub shootdowns: &'a mut Vec<(usize, usize, Shootdown)>,
    /// Machine time of this VCPU.
    pub now: u64,
    /// Set when the guest did something that stops its VM.
    pub stop: &'a mut Option<String>,
    /// The real TLB entry this physical CPU replaces next (round robin: the
    /// monitor's refills retire no instructions, so Random would not move
    /// between two refills and two pages could evict each other forever).
    pub tlb_cursor: &'a mut usize,
    /// The debugger's control of this VCPU, while it has anything set.
    pub debug: Option<&'a mut DebugControl>,
    /// The monitor's cost table (`--cost` may override entries).
    pub cost: Cost,
    /// The machine page the engine last fetched from (`engine::fetch`).
    pub fetch: FetchPage,
}

/// The VM-wide parts a guest context holds.
pub struct VmParts<'a> {
    pub board: &'a mut Board,
    pub asids: &'a mut Asids,
    /// The VM's coalesced-I/O state: per-address table, ring, counters.
    pub io: &'a mut crate::coalesce::state::VmIo,
    /// The VM's binary translator: policy, cache, regions (`bt`).
    pub bt: &'a mut crate::bt::state::Bt,
}

/// The VM-wide parts of a VM split over threads: its lock, the
/// generation of its machine ASIDs this physical CPU's real TLB holds
/// entries of (`tlbctl::catch_up`), and the cycles charged while the lock
/// was held (what the split policy counts as locked work).
pub struct VmLock<'a> {
    pub shared: &'a VmShared,
    pub generation: &'a mut u64,
    pub locked_cycles: &'a mut u64,
}

/// How a guest context reaches the VM-wide parts.
pub trait Wide<'a>: Sized {
    /// Runs `f` with the VM-wide parts at hand: at once if held, else under
    /// the VM's lock. (`f` cannot take it again: the context it gets holds
    /// the parts, and this one is borrowed meanwhile.)
    fn locked<R>(ctx: &mut GuestCtx<'a, Self>, f: impl FnOnce(&mut GuestCtx<'_>) -> R) -> R;

    /// Whether the engine must stop for the board: a device request (a
    /// halt, a VCPU start), or, for a split VM, its end.
    fn attention(ctx: &GuestCtx<'a, Self>) -> bool;
}

impl<'a> Wide<'a> for VmParts<'a> {
    #[inline]
    fn locked<R>(ctx: &mut GuestCtx<'a, Self>, f: impl FnOnce(&mut GuestCtx<'_>) -> R) -> R {
        f(ctx)
    }

    #[inline]
    fn attention(ctx: &GuestCtx<'a, Self>) -> bool {
        ctx.wide.board.has_actions()
    }
}

/// The machine page the engine fetches from and where the bus's decoded
/// copy of it starts: a fetch from the same page reads the copy without
/// asking the bus whether another thread changed the page (in the
/// parallel mode that look costs about 6% of the engine's host
/// instructions: docs/history/parallel.md, "Measured (the monitor in
/// parallel)"). Stores through this context's bus keep the copy
/// current; another thread's store to the page is seen when the engine
/// next enters the page or the next context is built, at the latest at
/// the quantum's end, as a CPU sees it (docs/parallel.md). In the
/// monitor's parallel mode only the CPUs of a VM split over threads store
/// to its pages from another thread; a context lasts one step.
#[derive(Clone, Copy, Debug)]
pub struct FetchPage {
    page: u64,
    base: usize,
}

impl Default for FetchPage {
    fn default() -> Self {
        FetchPage {
            page: u64::MAX,
            base: 0,
        }
    }
}

impl FetchPage {
    /// The decoded instruction at machine address `ma` (word-aligned, in
    /// RAM), through `bus`. `None` outside RAM.
    #[inline]
    pub fn decoded(&mut self, bus: &mut Bus, ma: u64) -> Option<Insn> {
        let page = ma >> PAGE_SHIFT;
        if page != self.page {
            self.base = bus.code_page(usize::try_from(page).ok()?)?;
            self.page = page;
        }
        bus.code(self.base + ((ma & (PAGE_SIZE - 1)) >> 2) as usize)
    }
}

impl<W> GuestCtx<'_, W> {
    /// Guest-virtual → guest-physical in the guest's current (virtual) mode.
    pub fn translate(&self, vaddr: u64, access: Access) -> Result<GuestPhys, Exception> {
        // The low word: 32-bit addressing.
        let t = sim::hv::tlb::translate(&self.vcpu.cp0, &self.vcpu.tlb, vaddr as u32, access)?;
        Ok(GuestPhys(t.pa))
    }

    /// The machine address and word of the guest instruction at `pc`, if it
    /// is in the VM's RAM and mapped.
    pub fn code_word(&self, pc: u64) -> Option<(u64, u32)> {
        let gpa = self.translate(pc, Access::Fetch).ok()?;
        let ma = self.pmap.translate(gpa)?;
        // A 4-byte read: exact.
        let w = self.bus.read_ram(ma.0, 4)? as u32;
        Some((ma.0, w))
    }

    pub fn bus_error(access: Access) -> Exception {
        Exception::new(if access == Access::Fetch {
            ExcCode::Ibe
        } else {
            ExcCode::Dbe
        })
    }

    /// A read of the VM's RAM at `gpa`, below the pmap's size.
    #[inline]
    pub fn read_ram(&self, gpa: GuestPhys, width: u8, access: Access) -> Result<u64, Exception> {
        let ma = self.pmap.translate(gpa).ok_or(Self::bus_error(access))?;
        self.read_machine(ma, width, access)
    }

    /// A read of machine RAM at `ma`, which the pmap gave for this VM.
    #[inline(always)]
    pub fn read_machine(
        &self,
        ma: MachineAddr,
        width: u8,
        access: Access,
    ) -> Result<u64, Exception> {
        self.bus
            .read_ram(ma.0, width)
            .ok_or(Self::bus_error(access))
    }

    /// A write to the VM's RAM at `gpa`, below the pmap's size.
    #[inline]
    pub fn write_ram(&mut self, gpa: GuestPhys, width: u8, value: u64) -> Result<(), Exception> {
        if self.pmap.write_protected(gpa) {
            self.vcpu.remap_blocked = true;
            return Err(Self::bus_error(Access::Store));
        }
        let ma = self
            .pmap
            .translate(gpa)
            .ok_or(Self::bus_error(Access::Store))?;
        self.write_machine(ma, width, value)
    }

    /// A write to machine RAM at `ma`, which the pmap gave for this VM
    /// at a guest page that is not write-protected.
    #[inline(always)]
    pub fn write_machine(
        &mut self,
        ma: MachineAddr,
        width: u8,
        value: u64,
    ) -> Result<(), Exception> {
        if self.bus.write_ram(self.core.id(), ma.0, width, value) {
            return Ok(());
        }
        Err(Self::bus_error(Access::Store))
    }

    pub fn charge(&mut self, cycles: u64) {
        self.core.charge(cycles);
        self.trace.now = self.core.cycles();
        self.vcpu.stats.monitor_cycles += cycles;
    }
}

/// Real-TLB entries of one address space that every physical CPU must drop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shootdown {
    /// Pairs whose VA lies in `first..=last`.
    Range { first: u32, last: u32 },
    /// Every entry of the space.
    Space,
}

impl Shootdown {
    /// The VAs a virtual TLB entry covers.
    pub fn covering(e: &TlbEntry) -> Shootdown {
        let first = e.vpn2 & e.vpn_mask();
        Shootdown::Range {
            first,
            last: first
                .wrapping_add(e.page_size().wrapping_mul(2))
                .wrapping_sub(1),
        }
    }

    /// The same VAs as L2TLB pair numbers (VA\[31:13\]), for `L2Tlb::drop_range`.
    pub fn pairs(&self) -> (u32, u32) {
        match *self {
            Shootdown::Range { first, last } => (first >> 13, last >> 13),
            Shootdown::Space => (0, u32::MAX >> 13),
        }
    }
}
