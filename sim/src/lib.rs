//! disco-sim: a cycle-approximate MIPS R4000 multiprocessor.
//!
//! Two APIs, for two kinds of callers, and test helpers:
//! - the simulator's user API, for the CLI (`src/`), tests, labs and
//!   benchmarks that build and run a bare machine: [`Machine`] and
//!   [`machine`], [`config`], [`loader`], [`workload`], the
//!   ISA's encoder, decoder and disassembler ([`isa`]), [`trace`] and
//!   [`obs`] (observing a run), [`dev`] (the board and its disk images),
//!   [`gdb`] (the GDB stub for the bare machine), and [`cpu`] for reading
//!   a CPU's registers, CP0, TLB and statistics after a run;
//! - the hypervisor API, [`hv`], for a monitor running guests on the
//!   machine (`monitor/`): the physical-CPU handle with typed exits, the
//!   CP0, TLB and guest-memory operations, and the virtual CPU types its
//!   engine emulates. The monitor names nothing outside it;
//! - test helpers, `testkit`, only with the `testkit` feature (the test
//!   targets of every crate in the workspace turn it on through their
//!   dev-dependencies; a normal build has no test helpers).
//!
//! Everything else (memory internals, timing, the stepping loops, the
//! block and translation caches, the parallel mode's threads) is private
//! to the crate.
#![deny(
    clippy::unwrap_used,
    clippy::panic,
    clippy::todo,
    clippy::unimplemented
)]

pub mod config;
pub mod cpu;
pub mod dev;
pub mod gdb;
pub mod hv;
pub mod isa;
pub mod loader;
pub mod machine;
mod mem;
pub mod obs;
mod parallel;
mod timing;
pub mod trace;
mod workers;

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod workload;

pub use cpu::{Cpu, DebugControl, ExcCode, Exception, Mode, RunState, Watchpoint};
/// Where tier 3 compiles its hot blocks (`Machine::set_compile_mode`).
pub use disco_jit::Mode as CompileMode;
pub use machine::{Exit, Machine, MachineConfig, MachineStats, Observer, Tier};
pub use mem::Bus;
