//! One R4000 CPU: registers, CP0, TLB, the translation caches and the
//! stepping loop.

pub(crate) mod block;
pub mod cp0;
mod exception;
pub(crate) mod exec;
mod native;
pub use native::RunExit;

pub mod tlb;

pub use cp0::{Cp0, Cp0Write, Mode};
pub use exception::{Access, ExcCode, Exception};
pub use exec::{execute, ExecContext, Flow, Regs};
pub use tlb::{Lookup, Tlb, TlbEntry, TLB_ENTRIES};

use crate::obs::Event;

/// Whether a CPU is executing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Not yet started through the mp device.
    Parked,
    Running,
    /// Idle on WAIT until an interrupt is pending.
    Waiting,
    /// Stopped for good (machine halted).
    Stopped,
}

/// A debugger's requests to one CPU.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DebugControl {
    /// Stop before executing an instruction at one of these addresses.
    pub breakpoints: Vec<u64>,
    /// Stop after the next instruction.
    pub stepping: bool,
    /// Execute the instruction at the PC even if it has a breakpoint (set
    /// when continuing from that breakpoint).
    pub resuming: bool,
    /// The machine runs its traced loop for the debugger.
    pub active: bool,
    /// Data watchpoints: virtual address, length, and whether loads and/or
    /// stores trigger them.
    pub watchpoints: Vec<Watchpoint>,
    /// The watchpoint the last instruction hit (address, was a store).
    pub watch_hit: Option<(u64, bool)>,
    /// A single step trapped to the hypervisor (`sim::hv`): stop before the
    /// next instruction, once the hypervisor has handled the trap.
    pub stop_on_entry: bool,
}

/// A debugger's data watchpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watchpoint {
    pub addr: u64,
    pub len: u64,
    pub on_load: bool,
    pub on_store: bool,
}

impl DebugControl {
    /// Notes a data access for the watchpoints (traced loop only).
    pub(crate) fn access(&mut self, vaddr: u64, width: u8, store: bool) {
        let lo = vaddr & 0xFFFF_FFFF;
        for w in &self.watchpoints {
            let wlo = w.addr & 0xFFFF_FFFF;
            let hit = lo < wlo + w.len && wlo < lo + u64::from(width);
            if hit && ((store && w.on_store) || (!store && w.on_load)) {
                self.watch_hit = Some((w.addr, store));
            }
        }
    }
}

/// Per-CPU statistics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuStats {
    pub exceptions: [u64; 32],
    pub tlb_refills: u64,
    pub interrupts: u64,
    pub wait_cycles: u64,
}

/// A software translation entry (tier 3's compiled code reads the table,
/// so the type is the compiler crate's).
use disco_jit::fast::XlateEntry;
const XLATE_SIZE: usize = disco_jit::fast::XLATE_SIZE;
const XLATE_INVALID: u32 = u32::MAX;
const FETCH_INVALID: u32 = u32::MAX;

/// One CPU: the registers every execution context shares, and the rest.
/// `Cpu` dereferences to its [`Core`], so `cpu.cp0()` reads naturally.
#[derive(Clone, Debug)]
pub struct Cpu {
    pub regs: Regs,
    pub core: Core,
}

impl std::ops::Deref for Cpu {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl std::ops::DerefMut for Cpu {
    fn deref_mut(&mut self) -> &mut Core {
        &mut self.core
    }
}

/// Everything of a CPU but its registers. Outside the crate the state is
/// read through shared views (`cp0()`, `tlb()`, `cycles()`, `stats()`, ...)
/// and changed only through methods, which keep the caches behind it
/// (translations, fetch page, timer deadline) coherent with what changed:
/// the fields are the crate's.
// `repr(C)` keeps `cycles` and `instret` apart: when they are neighbours the
// compiler bumps both with one 16-byte load and store, and that load cannot
// be forwarded from the 8-byte store of the previous instruction's `cycles`
// update: a stall on every instruction (the benchmark ran ~10% slower).
#[derive(Clone, Debug)]
#[repr(C)]
pub struct Core {
    pub(crate) id: usize,
    /// PCycles this CPU has executed (or idled).
    pub(crate) cycles: u64,
    pub(crate) cp0: Cp0,
    pub(crate) tlb: Tlb,
    pub(crate) state: RunState,
    /// Instructions retired.
    pub(crate) instret: u64,
    pub(crate) stats: CpuStats,
    /// Events recorded while tracing, each with the cycle it happened at;
    /// the machine drains them to its observers.
    pub(crate) events: Vec<(u64, Event)>,
    /// Count = (cycles / 2 + count_offset) mod 2^32.
    count_offset: u32,
    /// Instruction count at the last write to Wired (Random's origin).
    random_base: u64,
    /// External interrupt lines (Cause IP2–IP6 bits) as last set by the board.
    irq_lines: u32,
    /// The cycle at which `run` must look at timers, interrupts and its budget.
    next_event: u64,
    budget_end: u64,
    timer_due: u64,
    hilo_ready: u64,
    load_dest: u8,
    /// `(mode << 20) | (asid << 22)`, the context half of translation tags.
    xctx: u32,
    xlate: Box<[XlateEntry; XLATE_SIZE]>,
    /// Fetch cache: the virtual page base of `pc` (cleared whenever the
    /// translation context changes).
    fetch_page: u32,
    /// Where that page's decoded instructions start in the bus's code arena.
    fetch_base: usize,
    /// The physical base of that page.
    fetch_ppage: u64,
    /// The execution tier (`MachineConfig::tier`).
    tier: crate::machine::Tier,
    /// Set when a device asked the machine to act (halt, start a CPU).
    pub(crate) board_pending: bool,
    /// Hand every exception to the caller of `run` instead of continuing at
    /// the vector (the monitor's "exit"; see `sim::hv`).
    pub(crate) hv_exits: bool,
    pub(crate) hv_exit: Option<ExcCode>,
    /// What a debugger asked of this CPU (checked in the traced loop only).
    pub(crate) debug: DebugControl,
    /// Tags written by CACHE Index_Store_Tag, read back by Index_Load_Tag.
    cache_tags: Box<[u32; 4 * 1024]>,
    /// Times the TLB (or the watch registers) changed (`tlb_writes`).
    tlb_writes: u64,
}

impl Cpu {
    pub fn new(id: usize) -> Cpu {
        let mut core = Core {
            id,
            cp0: Cp0::default(),
            tlb: Tlb::default(),
            state: if id == 0 {
                RunState::Running
            } else {
                RunState::Parked
            },
            cycles: 0,
            instret: 0,
            stats: CpuStats::default(),
            events: Vec::new(),
            count_offset: 0,
            random_base: 0,
            irq_lines: 0,
            next_event: 0,
            budget_end: 0,
            timer_due: u64::MAX,
            hilo_ready: 0,
            load_dest: 0,
            xctx: 0,
            xlate: Box::new(
                [XlateEntry {
                    tag: XLATE_INVALID,
                    pbase: 0,
                    writable: false,
                }; XLATE_SIZE],
            ),
            fetch_page: FETCH_INVALID,
            fetch_base: 0,
            fetch_ppage: 0,
            tier: crate::machine::Tier::default(),
            board_pending: false,
            cache_tags: Box::new([0; 4 * 1024]),
            tlb_writes: 0,
            hv_exits: false,
            hv_exit: None,
            debug: DebugControl::default(),
        };
        core.context_changed();
        core.reschedule_timer();
        Cpu {
            regs: Regs::default(),
            core,
        }
    }

    /// The state a loaded ELF starts in, as GXemul's testmips leaves it:
    /// kernel mode, exceptions through the KSEG0 vectors (BEV = 0), ERL = 0,
    /// interrupts off.
    pub fn boot(&mut self, pc: u64, sp: u64) {
        self.cp0.status = 0;
        self.regs.jump_to(pc);
        self.regs.set(crate::isa::Reg::SP, sp);
        self.state = RunState::Running;
        self.context_changed();
        self.interrupts_changed();
    }

    /// Selects the execution tier (see `crate::machine::Tier`).
    pub(crate) fn set_tier(&mut self, tier: crate::machine::Tier) {
        self.core.tier = tier;
    }

    /// Writes PC as a debugger or the mp device would: no delay slot pending.
    pub fn set_pc(&mut self, pc: u64) {
        self.regs.jump_to(pc);
        self.core.fetch_page = FETCH_INVALID;
    }
}

impl Core {
    /// Records an event (traced loop only).
    pub(crate) fn emit(&mut self, e: Event) {
        self.events.push((self.cycles, e));
    }

    /// This CPU's number.
    pub fn id(&self) -> usize {
        self.id
    }

    /// PCycles this CPU has executed, idled or been charged.
    pub fn cycles(&self) -> u64 {
        self.cycles
    }

    /// Instructions retired.
    pub fn instret(&self) -> u64 {
        self.instret
    }

    /// Whether the CPU runs.
    pub fn run_state(&self) -> RunState {
        self.state
    }

    /// The real CP0, as the hardware left it (writes: `write_cp0`).
    pub fn cp0(&self) -> &Cp0 {
        &self.cp0
    }

    /// The real TLB, to read and probe (writes: [`Core::tlb_write`]).
    pub fn tlb(&self) -> &Tlb {
        &self.tlb
    }

    /// Counts the changes of the TLB (every write, a state loaded, a watch
    /// register written): what a caller found in the TLB holds while this
    /// is unchanged.
    pub fn tlb_writes(&self) -> u64 {
        self.tlb_writes
    }

    /// The mode the CPU runs in (KSU, EXL and ERL).
    pub fn mode(&self) -> Mode {
        self.cp0.mode()
    }

    /// Exceptions, refills, interrupts and waiting so far.
    pub fn stats(&self) -> &CpuStats {
        &self.stats
    }

    /// What a debugger asked of this CPU (the bare machine's GDB stub and
    /// tests set breakpoints and steps through it).
    pub fn debug_mut(&mut self) -> &mut DebugControl {
        &mut self.debug
    }

    /// Count as software reads it.
    pub fn count(&self) -> u32 {
        ((self.cycles >> 1) as u32).wrapping_add(self.count_offset)
    }

    fn set_count(&mut self, value: u32) {
        self.count_offset = value.wrapping_sub((self.cycles >> 1) as u32);
        self.reschedule_timer();
    }

    /// Random: counts down once per instruction from 47 to Wired, then wraps
    /// (the manual's per-instruction rule, computed from the instruction count).
    pub(crate) fn random(&self) -> u32 {
        let wired = u64::from(self.cp0.wired);
        if wired > 47 {
            return 47;
        }
        let span = 48 - wired;
        (47 - (self.instret.wrapping_sub(self.random_base) % span)) as u32
    }

    /// Recomputes when Count next equals Compare.
    fn reschedule_timer(&mut self) {
        let ticks = self.cp0.compare.wrapping_sub(self.count());
        let ticks = if ticks == 0 {
            1u64 << 32
        } else {
            u64::from(ticks)
        };
        self.timer_due = ((self.cycles >> 1) + ticks) << 1;
        self.next_event = 0;
    }

    /// Something that decides whether an interrupt is taken changed: look
    /// before the next instruction.
    pub(crate) fn interrupts_changed(&mut self) {
        self.next_event = 0;
    }

    /// Mode, ERL or ASID changed: translation tags change with them.
    pub(crate) fn context_changed(&mut self) {
        let mode = match (self.cp0.mode(), self.cp0.erl()) {
            (Mode::Kernel, true) => 3,
            (Mode::Kernel, false) => 0,
            (Mode::Supervisor, _) => 1,
            (Mode::User, _) => 2,
        };
        self.xctx = (mode << 20) | (u32::from(self.cp0.asid()) << 22);
        self.fetch_page = FETCH_INVALID;
    }

    /// The TLB or the watch registers changed: forget cached translations.
    pub(crate) fn flush_translations(&mut self) {
        self.tlb_writes = self.tlb_writes.wrapping_add(1);
        for e in self.xlate.iter_mut() {
            e.tag = XLATE_INVALID;
        }
        self.fetch_page = FETCH_INVALID;
    }

    /// Reads a CP0 register with Count and Random derived.
    pub(crate) fn read_cp0(&self, reg: u32) -> u64 {
        self.cp0.read(reg, self.count(), self.random())
    }

    /// Writes a CP0 register through its write mask, with side effects.
    /// `value` is the full register value (MTC0 passes it sign-extended).
    pub fn write_cp0(&mut self, reg: u32, value: u64) {
        match self.cp0.write(reg, value) {
            Cp0Write::Plain => {}
            Cp0Write::Count(v) => self.set_count(v),
            Cp0Write::Wired => self.random_base = self.instret,
            Cp0Write::Compare => self.reschedule_timer(),
            Cp0Write::Context => self.context_changed(),
            Cp0Write::Status => {
                self.context_changed();
                self.interrupts_changed();
            }
            Cp0Write::Interrupts => self.interrupts_changed(),
            Cp0Write::Watch => self.flush_translations(),
        }
    }

    /// Exception entry (`../shared/docs/r4000-reference.md` §4): EPC/BD unless EXL is
    /// already set, Cause, BadVAddr, Context and EntryHi for TLB faults,
    /// EXL, and the vector.
    pub(crate) fn take_exception<const TRACE: bool>(&mut self, regs: &mut Regs, e: Exception) {
        let from = self.cp0.mode();
        let pc = regs.pc;
        let exl = self.cp0.exl();
        let bd = regs.delay_slot;
        let vector = self.cp0.enter_exception(&e, pc, bd);
        if e.refill && e.badvaddr.is_some() {
            self.stats.tlb_refills += 1;
        }
        if let Some(n) = self.stats.exceptions.get_mut(e.code as usize) {
            *n += 1;
        }
        if TRACE {
            self.emit(Event::Exception {
                code: e.code,
                epc: self.cp0.epc,
                pc,
                vector,
                badvaddr: e.badvaddr,
                bd: bd && !exl,
                from,
                refill: e.refill && !exl,
            });
        }
        regs.jump_to(vector);
        if self.hv_exits {
            self.hv_exit = Some(e.code);
        }
        self.load_dest = 0;
        self.cycles += crate::timing::TIMING.exception;
        self.context_changed();
        self.interrupts_changed();
    }
}
