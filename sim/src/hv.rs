//! The hypervisor API: everything a monitor (`monitor/`) uses of the
//! simulator, in one place (`../shared/docs/design.md` §4, docs/hv.md).
//!
//! A monitor runs "in kernel mode" on the simulated machine. With exits
//! on ([`Cpu::set_hv_exits`]), a CPU that takes an exception does the
//! hardware part of exception entry (EPC, Cause, BadVAddr, Context,
//! EntryHi, EXL) and then returns [`RunExit::Exception`] from [`Cpu::run`]
//! instead of fetching from the vector: the monitor's Rust code is the
//! kernel-mode handler. It reads the real CP0 and TLB and writes them with
//! kernel privilege through the physical-CPU handle's methods
//! ([`pcpu`]), charges the modelled cost of its work, and resumes.
//!
//! The API has four parts, each item below with the reason the monitor
//! needs it:
//! - the physical CPU: [`Cpu`] (registers plus [`Core`]), the typed exits
//!   of [`Cpu::run`], [`Core`]'s read views (`cp0()`, `tlb()`, `cycles()`,
//!   ..., shared with the user API) and its methods in [`pcpu`]: real CP0
//!   writes, TLB write and probe, cycle charging. `Core`'s fields are
//!   private to the crate, so every change the monitor makes goes through
//!   a method that keeps the CPU's caches coherent;
//! - guest memory: [`Bus`] (RAM reads and writes that break other CPUs'
//!   LL links and keep decoded code current, LL links, code generations,
//!   the decoded copy of code pages, a bus per host thread);
//! - the virtual CPU the monitor's engine emulates: [`Cp0`], [`Tlb`],
//!   [`Regs`], the interpreter [`execute`] over an [`ExecContext`], and
//!   the vocabulary they share;
//! - the machine around them: one [`Board`] of devices per VM, the CPU
//!   hand-over of runtime virtualization, timing, and the simulator's user
//!   API modules the monitor builds on (machine, loader, config, ISA, GDB
//!   stub).
//!
//! Nothing in `monitor/src` names a `sim` path outside this module, so a
//! change to the simulator that keeps this module's items keeps the
//! monitor building.

mod handover;
pub mod pcpu;

// The physical CPU.

/// Everything of a physical CPU but its registers: the handle the
/// monitor's exit handlers hold, with the methods in [`pcpu`].
pub use crate::cpu::Core;
/// A physical CPU: the monitor runs its VCPUs on it (`run`), loads their
/// registers into it and takes them back.
pub use crate::cpu::Cpu;
/// A debugger's requests to one CPU: the monitor's GDB stub drives a VCPU
/// on the real CPU with them.
pub use crate::cpu::DebugControl;
/// Why [`Cpu::run`] returned: the typed exits (budget, board action,
/// exception, debugger stop).
pub use crate::cpu::RunExit;
/// Whether a physical CPU runs: the monitor starts, parks and resumes
/// CPUs it takes over or hands back.
pub use crate::cpu::RunState;

// The CP0 and TLB vocabulary, real and virtual.

/// CP0 register numbers, Status and Cause bits, `sext32`: the monitor
/// decodes exits and emulates MFC0/MTC0 with them.
pub use crate::cpu::cp0;
/// EntryLo bits and guest-virtual translation (`tlb::translate`) against a
/// virtual TLB.
pub use crate::cpu::tlb;
/// The virtual CPU's CP0 registers (each VCPU has one).
pub use crate::cpu::Cp0;
/// Which side effect a CP0 write has: the monitor's VCPU acts on it as the
/// real CPU does.
pub use crate::cpu::Cp0Write;
/// Kernel, supervisor or user: the guest's mode decides where it runs.
pub use crate::cpu::Mode;
/// The virtual CPU's TLB (each VCPU has one), and the entries the monitor
/// composes for the real one.
pub use crate::cpu::{Lookup, Tlb, TlbEntry, TLB_ENTRIES};

// The virtual CPU's interpreter.

/// Tier 2's block loop, generic over the CPU it runs on: the monitor's
/// translated blocks run through it against the virtual CPU
/// (`cpu/block/ctx.rs`, docs/translation.md).
pub use crate::cpu::block::ctx::{run_block, static_cycles, BlockCtx, Boundary};
/// Register-only instructions, aligned RAM loads and stores and the
/// HI/LO multiplications and reads, pre-extracted, for the monitor's translated blocks, which run them
/// without `execute` (`cpu/block/regop.rs`).
pub use crate::cpu::block::regop::{HiLoOp, MemOp, RegOp};
/// A block of tier 2's micro-ops and static costs, cut as a translator
/// cuts it (`BlockCode::straight`).
pub use crate::cpu::block::Block as BlockCode;
/// Which multiply/divide unit an instruction keeps busy: the monitor's
/// translator models its latency as the CPU does.
pub use crate::cpu::exec::MulDiv;
/// The interpreter the monitor's engine runs guest kernel code with.
pub use crate::cpu::execute;
/// What an instruction may touch besides its registers: the engine
/// implements it over the VM's memory and virtual CP0.
pub use crate::cpu::ExecContext;
/// How an instruction continues (next, branch, jump, exception).
pub use crate::cpu::Flow;
/// The general registers, HI/LO and PC of a CPU, real or virtual.
pub use crate::cpu::Regs;
/// Exceptions and their codes: the monitor reflects them to the guest.
pub use crate::cpu::{Access, ExcCode, Exception};

// Guest memory.

/// Machine memory and devices. The monitor uses its RAM operations
/// (`read_ram`, `write_ram`, `write_bytes`, `copy_out`, `in_ram`,
/// `ram_len`), LL links (`link`, `linked`, `unlink`), code generations and
/// decoded code (`code_gen`, `decoded`) and one bus per host thread
/// (`for_monitor_thread`).
pub use crate::mem::Bus;
/// The monitor maps guest memory in pages of this size.
pub use crate::mem::{PAGE_SHIFT, PAGE_SIZE};

// The machine around the CPUs.

/// Sizes, RAM limits and their parsing, shared with the bare machine's
/// configuration.
pub use crate::config;
/// Each VM has its own board of devices, which the monitor emulates.
pub use crate::dev::{map, Board, BoardAction, BoardConfig, DeviceId, DiskImage, REGISTRY};
/// The GDB stub, which serves VCPUs as it serves the bare machine's CPUs.
pub use crate::gdb;
/// Decoding, disassembly and the assembler the monitor's translator and
/// traces use.
pub use crate::isa;
/// Guest images and symbols.
pub use crate::loader;
/// Quantum boundaries and the CPU limit, shared with the bare machine.
pub use crate::machine::{quantum_end, BATCH_CYCLES, MAX_CPUS};
/// The CPU's cycle costs, which the monitor's translated code charges.
pub use crate::timing::{Timing, TIMING};
/// The machine the monitor runs on.
pub use crate::{Exit, Machine, MachineConfig, Tier};
/// A CPU's architectural state, captured from a bare-metal CPU and loaded
/// back when the monitor virtualizes a running machine and steps away.
pub use handover::CpuState;

/// A monitor's host threads, which wait for their next quantum as
/// the bare machine's do in the parallel mode.
pub use crate::workers::{look, Cut, Pace, Pool, Waker, LEAD, STALL_QUANTA};
