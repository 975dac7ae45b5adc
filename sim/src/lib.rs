//! disco-sim: a cycle-approximate MIPS R4000 multiprocessor.
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
pub mod handover;
pub mod hv;
pub mod isa;
pub mod loader;
pub mod machine;
pub mod mem;
pub mod obs;
mod parallel;
pub mod timing;
pub mod trace;
mod workers;

pub mod testkit;
pub mod workload;

pub use cpu::{Cpu, DebugControl, ExcCode, Exception, Mode, RunState, Watchpoint};
pub use machine::{Exit, Machine, MachineConfig, MachineStats, Observer, Tier};
pub use mem::Bus;
