//! Tier 3 of the disco simulator: a small block IR ([`ir`]) compiled to
//! native code with Cranelift, and run over the caller's registers and
//! memory (docs/tiers.md). This crate holds the workspace's only `unsafe`
//! code; everything else in the workspace is `forbid(unsafe_code)`.
//!
//! # The safety argument
//!
//! Five things are unsafe here, and each is sound for the reasons below.
//!
//! 1. **Who owns the code memory.** Every function a [`Jit`] runs lives in
//!    that `Jit`'s one code module (a `JITModule` in a
//!    `compiler::Compiler`), which Cranelift maps executable when
//!    `finalize_definitions` returns. The module is the `Jit`'s own
//!    ([`Mode::Inline`]) or held for it by the compiler thread
//!    ([`Mode::Background`], `compiler.rs`), which compiles, finalizes
//!    and sends the function pointer back through a channel (the send
//!    happens before the receive; cranelift-jit's finalize flushes every
//!    thread's instruction pipeline where the host needs it). The
//!    function pointers are kept only in `Jit::funcs` and `Jit::entry`
//!    (per block, its own function or the loop it heads, compiled into
//!    the same module), never handed out: a caller holds a [`Code`]
//!    handle (an index and the module's epoch) and runs it through
//!    [`Jit::run`], which looks the pointer up in `entry` and refuses a
//!    handle of an older epoch or whose code has not arrived. The memory
//!    is freed only by [`Jit::reset`] or on drop, both of which take
//!    `&mut self` and clear `funcs` and `entry` first: no run (which
//!    borrows `&self`) can be under way, and no pointer survives the
//!    memory it points into. With the compiler thread, the `Jit` then
//!    sends it the request to free the module; the thread serves its
//!    messages in order, so every pointer it sent before was into that
//!    module and carries the old epoch, and [`Jit::poll`] drops it
//!    unused; later requests go to a new module.
//!    A handle that is stale or names another block is no memory hazard:
//!    every function this crate compiles touches only the memory listed in
//!    point 2, whatever block it was compiled from. The same holds for the
//!    function pointers in the link cells (`Jit::links`, point 5): they are
//!    copied only from `entry` or `funcs` of the same epoch, and the cells
//!    are freed with them, before the module's memory.
//! 2. **Why the function pointer's signature matches.** Every function is
//!    compiled from a Cranelift `Function` whose signature is
//!    `lower::block_signature` for the host ISA's default calling
//!    convention (the platform's C convention, the one Rust's `extern "C"`
//!    uses): three pointers, a 64-bit integer and a pointer in, a 32-bit
//!    integer out, which is `BlockFn`. The callouts are called with
//!    `lower::load_signature` and `lower::store_signature`, which match
//!    `LoadFn` and `StoreFn` in the same way. The generated code reads
//!    and writes only: the 32 `u64`s at `gpr` (constant offsets 0..256), the
//!    fields of the `#[repr(C)]` [`State`] at `state` (offsets from
//!    `offset_of!`), the `#[repr(C)]` `fast::Tables` at `tables`, what those
//!    tables point at (point 4), its own `#[repr(C)]` link cells (point 5)
//!    and an 8-byte stack slot of its own; everything else goes through the
//!    callouts. A chained call (point 5) passes its own five arguments on
//!    unchanged to a function of the same signature.
//! 3. **Why callouts cannot alias `&mut`.** [`Jit::run`] holds `&mut` to
//!    the registers and to the [`Memory`] for the whole call and passes the
//!    native code raw pointers to three disjoint objects: the registers, a
//!    `State` on its own stack, and a `&mut dyn Memory` on its own stack.
//!    The callouts receive only the last (and the stack slot for a load's
//!    value), so the `&mut dyn Memory` they rebuild is the only live
//!    reference to the memory, and nothing they can reach points at the
//!    registers or the state while the native code holds pointers to them.
//!    A panic in a callout cannot unwind into generated code: the callouts
//!    are `extern "C"`, so a panic there aborts the process.
//! 4. **Why the RAM fast path is sound.** `fast::Tables` is made in
//!    [`Jit::run`] from the [`fast::Fast`] the memory lends
//!    ([`Memory::fast`]): shared borrows of a translation cache, the RAM
//!    words, the code pages and the link mask, turned into pointers and
//!    lengths before the `&mut dyn Memory` for the callouts is made (or,
//!    where the memory lends nothing or forbids inline stores, pointers to
//!    `fast`'s statics, which live forever: a translation table no access
//!    hits and an atomic link mask that is never 0). The
//!    generated code reads a translation entry only at an index masked to
//!    [`fast::XLATE_SIZE`] (the array's length), a RAM word only in a page
//!    whose last word it found below `ram_words` and a code page only
//!    below `pages_len` (both compared before the access, or before the
//!    page was cached), and all its accesses are aligned. What it reads
//!    plainly, the translation entries, no one writes during the run: the
//!    memory lent them shared and nothing else can reach them (the callouts
//!    only read them; a miss leaves the refill to the caller's interpreter
//!    after the run). So a page the code looked up stays what it found for
//!    the whole run, and the code keeps the last page its loads and its
//!    stores went to (`lower/ram.rs`), with the host addresses it computed
//!    after those comparisons; what may change meanwhile (a page's code
//!    flag, the link mask) it still reads at every store. Everything a callout or another host thread may
//!    change is atomic (`AtomicU32` words, `AtomicBool` flags, an
//!    `AtomicU64` mask: shared mutability the callouts' `&mut` does not
//!    exclude), and the generated code accesses it only atomically: loads
//!    are Cranelift `atomic_load`s, and a word store is an `atomic_store`
//!    except on x86-64, where it is a plain aligned 32-bit `mov`, which is
//!    the instruction Rust itself emits for `AtomicU32::store(_, Release)`
//!    (x86-TSO gives it release order); Cranelift keeps it one instruction,
//!    in program order with the other memory accesses and calls, and its
//!    one transformation of such a store, dropping one that a later store
//!    to the same word overwrites with nothing reading in between, is one
//!    the memory model allows for atomic stores too. A narrow store reads,
//!    merges and writes its word only when the memory said no other thread
//!    stores to RAM (`Fast::concurrent` false); were that untrue, a
//!    neighbouring lane's update could be lost (as in the simulator's
//!    `Ram::write`), but every access is still atomic: no data race.
//! 5. **Why chained calls are sound.** Each compiled function has one
//!    boxed slice of `Link` cells, allocated before it is compiled (its
//!    address is a constant in the code, and a box's contents never move)
//!    and freed only in `Jit::free`, with `funcs`. The cells are written
//!    only by [`Jit::link`], [`Jit::unlink_all`] and [`Jit::close_loop`],
//!    which take `&mut self`, so never while generated code (which runs
//!    under `&self`) reads them; a cell's function is 0 or a pointer
//!    copied from `entry` (point 1), and the code calls it only if it is
//!    not 0, with
//!    `block_signature`, passing on the five arguments it was given (point
//!    2): the callee sees exactly what a run would give it. The generated
//!    code reads a page's generation only at an index it compared with
//!    `pages_len` (point 4), atomically. The stack: [`Jit::run`] sets
//!    `State::links` to [`MAX_CHAIN`], and a function calls on only after
//!    it has found it above 0 and decremented it, so at most `MAX_CHAIN +
//!    1` frames of generated code (each a fixed size of a few registers
//!    and the 8-byte slot) are ever on the stack. A loop (`region.rs`)
//!    is one function with the same signature whose members' code reads
//!    their own cells (boxes that live as long as the loop's code, until
//!    `Jit::free`); its jumps from one member to the next are jumps within
//!    the function, not calls, so the bound on frames is unchanged, and
//!    the generation cell it reads is the one the chain reads, read on
//!    entry only after the page index was found below `pages_len` (else
//!    the loop is stopped from the start) and at a jump only while it is
//!    not stopped and other threads store (`Fast::concurrent`). With one
//!    thread, the page's generation changes during a run only through
//!    this run's stores (`Memory` lends RAM for the run, and a device or
//!    other CPU writes it only between runs), and a store into a page
//!    with code goes to the callout, which stops the loop: so the jumps
//!    need not read it there.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(clippy::multiple_unsafe_ops_per_block)]

mod compiler;
pub mod fast;
pub mod ir;
mod lower;
mod region;

use std::ffi::c_void;

pub use compiler::Mode;
use compiler::{Compiler, Job, Remote, What};
pub use fast::Fast;
pub use ir::Block;

/// The guest memory a compiled block reaches through its one load and one
/// store callout. Both may decline (`None`): the block then stops before
/// the access and the caller's interpreter does it (a fault, a device, a
/// translation miss).
pub trait Memory {
    /// A `width`-byte aligned load at `ea`, extended to 64 bits.
    fn load(&mut self, ea: u64, width: u8, signed: bool) -> Option<u64>;
    /// A `width`-byte store of the low bytes of `value`; `Some(stop)`: done,
    /// and whether the block must stop after it (asked only if `check`).
    fn store(&mut self, ea: u64, width: u8, value: u64, check: bool) -> Option<bool>;
    /// The tables compiled code may read and write itself for an aligned
    /// access that hits RAM (`None`: every access goes to the callouts).
    /// Whatever the fast path does must be what [`Memory::load`] and
    /// [`Memory::store`] would do for that access; see [`Fast`].
    fn fast(&self) -> Option<Fast<'_>> {
        None
    }
}

/// What a compiled block leaves besides the registers. The guest registers
/// are not here but passed in place, so a block costs no copy of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct State {
    /// Where the guest goes on (a leave), or the pending transfer's target
    /// (a resume in a taken transfer's slot).
    pub pc: u64,
    /// Cycles the block charged (see [`Exit`]).
    pub cycles: u64,
    /// Instructions run.
    pub at: u32,
    /// In and out: HI, LO and the cycle they are ready at.
    pub hi: u64,
    pub lo: u64,
    pub hilo_ready: u64,
    /// In: the cycle count at the block's start (a multiply's ready cycle
    /// and an MFHI's wait are absolute). Out: that of the block the run
    /// ended in (blocks chained), to which [`Exit`]'s cycles are relative.
    pub c0: u64,
    /// In: the cycle of the next event; a chained block runs only if its
    /// worst case ends before it ([`Jit::link`]).
    pub next_event: u64,
    /// In: the index in `Fast::pages` of the page the blocks are in, and
    /// the generation it must still be at for a chained block to run.
    pub page: u64,
    pub generation: u32,
    /// Out: the tag ([`ir::Block::tag`]) of the block the run ended in.
    pub tag: u32,
    /// Out: instructions retired by the blocks run before that one.
    pub retired: u64,
    /// Chained calls left in this run (set by [`Jit::run`]).
    pub links: u32,
}

/// Chained calls in one [`Jit::run`] at most: each is a native call (a
/// frame of generated code), so this bounds the stack (safety argument,
/// point 5); the run then returns to the caller's dispatch.
pub const MAX_CHAIN: u32 = 64;

/// One exit's link to the block it last led to (see [`Jit::link`]), read
/// by the generated code at that exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Link {
    /// The successor's address.
    pub(crate) pc: u64,
    /// The successor's `BlockFn`, or 0: not linked.
    pub(crate) func: usize,
    /// The most cycles the successor can take.
    pub(crate) max_cost: u64,
    /// Cycles paid on entering it (the carried load-use interlock).
    pub(crate) stall: u64,
    /// The successor's index in `Jit::funcs` (never read by generated
    /// code: it finds the loops [`Jit::link`] closes).
    pub(crate) to: u32,
}

impl Link {
    pub(crate) const NONE: Link = Link {
        pc: 0,
        func: 0,
        max_cost: 0,
        stall: 0,
        to: 0,
    };
}

/// How a compiled block ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It ran its first `done` instructions and goes on at `pc`; `cycles`
    /// is their static cost (the `end` of the last) plus the taken
    /// transfers. `whole`: it left through one of its exits; false: a store
    /// asked it to stop.
    Leave {
        done: usize,
        pc: u64,
        cycles: u64,
        whole: bool,
    },
    /// It ran its first `at` instructions and instruction `at` is the
    /// interpreter's (an [`ir::Op::Interp`], or an access the [`Memory`]
    /// declined). `target`: the transfer taken before it (`at` is its
    /// slot). `cycles`: the taken transfers only (the static cost up to
    /// `at` is the caller's to add).
    Resume {
        at: usize,
        target: Option<u64>,
        cycles: u64,
    },
}

/// A compiled block: `(gpr, state, mem, vbase, tables) -> exit code`. See
/// the crate's safety argument, point 2.
pub(crate) type BlockFn =
    unsafe extern "C" fn(*mut u64, *mut State, *mut c_void, u64, *const fast::Tables) -> u32;
/// `(mem, ea, kind, out) -> ok`.
pub(crate) type LoadFn = unsafe extern "C" fn(*mut c_void, u64, u32, *mut u64) -> u32;
/// `(mem, ea, value, kind) -> 0 declined, 1 done, 2 done and stop`.
pub(crate) type StoreFn = unsafe extern "C" fn(*mut c_void, u64, u64, u32) -> u32;

/// A compiled block's handle (valid until [`Jit::reset`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Code {
    index: u32,
    epoch: u32,
}

/// Why a block could not be compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "compiling a block: {}", self.0)
    }
}

impl std::error::Error for Error {}

pub(crate) fn error(e: impl std::fmt::Display) -> Error {
    Error(e.to_string())
}

/// The compiler and the code it made.
pub struct Jit {
    backend: Backend,
    /// Per block, its own function; `None` while the compiler thread has
    /// not answered.
    funcs: Vec<Option<BlockFn>>,
    /// Per block, the function a run of it or a chained call to it enters:
    /// its own (`funcs`), or the loop it heads ([`Jit::close_loop`]).
    entry: Vec<Option<BlockFn>>,
    /// Per block, its IR (a loop is compiled from its members' IR) and the
    /// members of the loop it heads.
    blocks: Vec<Block>,
    loops: Vec<Option<Box<[u32]>>>,
    /// Loops compiled since the last reset.
    loops_compiled: usize,
    /// Loops compiled again since the last reset (`region::relink`).
    relinked: usize,
    /// Per loop head, the links between its members its compiles were
    /// made with: (from, exit, to).
    seen: Vec<Vec<(u32, u32, u32)>>,
    /// Loops sent to the compiler thread and not installed yet: id, head,
    /// members ([`Jit::forget`] drops those a dropped block is in).
    pending_loops: Vec<(u64, u32, Box<[u32]>)>,
    next_loop: u64,
    /// Requests sent to the compiler thread and not answered (any epoch).
    pending: usize,
    /// Functions installed (statistics and tests).
    installed: u64,
    /// Per compiled function, one link per instruction (an exit after
    /// `done` instructions uses entry `done - 1`); boxed so that the
    /// address compiled into the code never moves.
    links: Vec<Box<[Link]>>,
    epoch: u32,
}

/// Where the code is compiled ([`Mode`]).
pub(crate) enum Backend {
    /// On this thread; Cranelift set up on the first compile.
    Inline(Option<Box<Compiler>>),
    Remote(Remote),
}

impl std::fmt::Debug for Jit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jit")
            .field("compiled", &self.funcs.len())
            .field("pending", &self.pending)
            .field("epoch", &self.epoch)
            .finish()
    }
}

impl Jit {
    /// A compiler for the host that compiles on the caller's thread, or
    /// why there is none (an unsupported host).
    pub fn new() -> Result<Jit, Error> {
        Jit::with_mode(Mode::Inline)
    }

    /// A compiler for the host that compiles as `mode` says. Cranelift is
    /// set up only when the first block is compiled.
    pub fn with_mode(mode: Mode) -> Result<Jit, Error> {
        // Only whether the host has an ISA: cheap, unlike the set-up.
        cranelift_native::builder().map_err(error)?;
        let backend = match mode {
            Mode::Inline => Backend::Inline(None),
            Mode::Background => Backend::Remote(Remote::new(std::time::Duration::ZERO)),
            Mode::Delayed(d) => Backend::Remote(Remote::new(d)),
        };
        Ok(Jit {
            backend,
            funcs: Vec::new(),
            entry: Vec::new(),
            blocks: Vec::new(),
            loops: Vec::new(),
            loops_compiled: 0,
            relinked: 0,
            seen: Vec::new(),
            pending_loops: Vec::new(),
            next_loop: 0,
            pending: 0,
            installed: 0,
            links: Vec::new(),
            epoch: 0,
        })
    }

    /// Blocks sent to be compiled since the last reset, ready or not (a
    /// loop is not counted: there are at most as many). It depends only
    /// on what was asked, never on the compiler thread's timing.
    pub fn compiled(&self) -> usize {
        self.funcs.len()
    }

    /// Loops installed since the last reset.
    pub fn loops(&self) -> usize {
        self.loops_compiled
    }

    /// Loops compiled again and installed since the last reset: a link
    /// between two members came after the loop was compiled.
    pub fn relinked(&self) -> usize {
        self.relinked
    }

    /// Requests the compiler thread has not answered yet.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Compiles `b` (at least one instruction), or sends it to the
    /// compiler thread: the handle then runs nothing ([`Jit::run`] answers
    /// `None`) until [`Jit::poll`] installs its code.
    pub fn compile(&mut self, b: &Block) -> Result<Code, Error> {
        let index = u32::try_from(self.funcs.len()).map_err(error)?;
        let cells = vec![Link::NONE; b.insns.len().max(1)].into_boxed_slice();
        let at = cells.as_ptr() as usize as i64;
        let job = Job {
            members: vec![(b.clone(), at, Vec::new())],
            what: What::Block(index),
        };
        let f = self.submit(job)?;
        self.installed += u64::from(f.is_some());
        self.funcs.push(f);
        self.entry.push(f);
        self.blocks.push(b.clone());
        self.loops.push(None);
        self.seen.push(Vec::new());
        self.links.push(cells);
        Ok(Code {
            index,
            epoch: self.epoch,
        })
    }

    /// Functions installed since this compiler was made (blocks and
    /// loops, compiled here or on the compiler thread).
    pub fn installed(&self) -> u64 {
        self.installed
    }

    /// Runs compiled block `code` on the registers `gpr` and HI/LO in
    /// `state` (with `state.c0` set), in the page whose base address is
    /// `vbase`. `None`: the handle is stale (nothing ran).
    /// Generic over the memory so that lending its tables costs no call;
    /// the callouts reach it as `dyn Memory`.
    #[inline(always)]
    pub fn run<M: Memory>(
        &self,
        code: Code,
        gpr: &mut [u64; 32],
        state: &mut State,
        vbase: u64,
        mem: &mut M,
    ) -> Option<Exit> {
        if code.epoch != self.epoch {
            return None;
        }
        // `None` also while the compiler thread has not answered.
        let f = (*self.entry.get(code.index as usize)?)?;
        // Pointers from the memory's shared borrows, before its `&mut`
        // (point 4).
        let tables = mem
            .fast()
            .map_or(fast::Tables::NONE, |t| fast::Tables::new(&t));
        (state.links, state.retired) = (MAX_CHAIN, 0);
        let mut mem: &mut dyn Memory = mem;
        let mem_ptr = (&raw mut mem).cast::<c_void>();
        let (g, st) = (gpr.as_mut_ptr(), std::ptr::from_mut(state));
        // SAFETY: `f` is a live compiled block (point 1) with `BlockFn`'s
        // signature (point 2); `gpr` points at 32 writable `u64`s, `state` at
        // a `State`, and `mem_ptr` at a `&mut dyn Memory`, three disjoint
        // objects exclusively borrowed for the call (point 3); `tables` at
        // bounds and pointers the generated code keeps within (point 4).
        let exit = unsafe { f(g, st, mem_ptr, vbase, &raw const tables) };
        let at = state.at as usize;
        Some(if exit & 2 != 0 {
            Exit::Resume {
                at,
                target: (exit == lower::RESUME_TARGET).then_some(state.pc),
                cycles: state.cycles,
            }
        } else {
            Exit::Leave {
                done: at,
                pc: state.pc,
                cycles: state.cycles,
                whole: exit == lower::LEAVE,
            }
        })
    }

    /// Links the exit of block `from` after its first `done` instructions
    /// to block `to`, which starts at `pc`: when that exit is taken for
    /// `pc` again, the generated code calls `to` itself instead of
    /// returning, if the page is still at `State::generation`, no store
    /// went to the callout in `from` (which may have changed code or
    /// asked to stop), and `to`'s worst case (`max_cost`, counted from
    /// before the `stall` it pays on entry) ends before
    /// `State::next_event`. The caller links only what its dispatch
    /// would run there: `to` compiled from the same page at that
    /// generation, for the same virtual page, `stall` what the interlock
    /// carried from that exit costs `to`. True: the link is new (the
    /// exit was not linked so); false: it was, or a stale handle or no
    /// such exit.
    pub fn link(
        &mut self,
        (from, done): (Code, usize),
        (to, pc): (Code, u64),
        max_cost: u64,
        stall: u64,
    ) -> bool {
        if from.epoch != self.epoch || to.epoch != self.epoch {
            return false;
        }
        // A successor whose code is not ready is not linked (yet).
        let Some(&Some(f)) = self.entry.get(to.index as usize) else {
            return false;
        };
        let cell = self
            .links
            .get_mut(from.index as usize)
            .and_then(|c| c.get_mut(done.wrapping_sub(1)));
        let Some(cell) = cell else {
            return false;
        };
        let link = Link {
            pc,
            func: f as usize,
            max_cost,
            stall,
            to: to.index,
        };
        let new = *cell != link;
        *cell = link;
        new
    }

    /// Forgets every link (the caller dropped a block some link may lead
    /// to, and the tag it reports would name another).
    pub fn unlink_all(&mut self) {
        for cells in &mut self.links {
            cells.fill(Link::NONE);
        }
    }

    /// [`Jit::unlink_all`] for dropping block `gone`: the loops it is in
    /// are not entered any more (their code reports its tag).
    pub fn forget(&mut self, gone: Code) {
        self.unlink_all();
        if gone.epoch != self.epoch {
            return;
        }
        // A loop of it on its way is discarded when it arrives.
        self.pending_loops
            .retain(|(_, _, members)| !members.contains(&gone.index));
        let heads = self.loops.iter_mut().zip(&mut self.entry).zip(&self.funcs);
        for ((members, entry), &own) in heads {
            if members.as_ref().is_some_and(|m| m.contains(&gone.index)) {
                (*members, *entry) = (None, own);
            }
        }
    }

    /// Frees all compiled code; every handle goes stale.
    pub fn reset(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        self.free(Some(self.epoch));
    }

    /// Frees the code; the compiler goes on at epoch `next`, or not at all.
    fn free(&mut self, next: Option<u32>) {
        self.funcs.clear();
        self.entry.clear();
        self.blocks.clear();
        self.loops.clear();
        self.loops_compiled = 0;
        self.relinked = 0;
        self.seen.clear();
        self.pending_loops.clear();
        self.links.clear();
        // `&mut self`: no run is under way, and `funcs` and `entry`, the
        // only places the module's pointers were kept, are empty (point
        // 1). The compiler thread frees its module when it reads this, and
        // answers it sent before are of an epoch no one will run.
        match &mut self.backend {
            Backend::Inline(c) => *c = None,
            Backend::Remote(r) => r.free(next),
        }
    }
}

impl Drop for Jit {
    fn drop(&mut self) {
        self.free(None);
    }
}

/// The load callout. Declines with 0; the value goes to `out`.
///
/// # Safety
/// `mem` points at a live `&mut dyn Memory` no one else uses during the
/// call, and `out` at a writable `u64` (the generated code's stack slot).
pub(crate) unsafe extern "C" fn load_callout(
    mem: *mut c_void,
    ea: u64,
    kind: u32,
    out: *mut u64,
) -> u32 {
    // SAFETY: the caller's contract: `mem` is `Jit::run`'s `&mut dyn Memory`,
    // the only live reference to it (point 3).
    let m = unsafe { &mut *mem.cast::<&mut dyn Memory>() };
    match m.load(ea, (kind & 0xF) as u8, kind & lower::SIGNED != 0) {
        Some(v) => {
            // SAFETY: `out` is the generated code's own 8-byte stack slot.
            unsafe { out.write(v) };
            1
        }
        None => 0,
    }
}

/// The store callout: 0 declined, 1 done, 2 done and the block must stop.
///
/// # Safety
/// As [`load_callout`].
pub(crate) unsafe extern "C" fn store_callout(
    mem: *mut c_void,
    ea: u64,
    value: u64,
    kind: u32,
) -> u32 {
    // SAFETY: as in `load_callout`.
    let m = unsafe { &mut *mem.cast::<&mut dyn Memory>() };
    match m.store(ea, (kind & 0xF) as u8, value, kind & lower::CHECK != 0) {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    }
}

#[cfg(test)]
mod tests;
