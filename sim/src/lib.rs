//! disco-sim: a cycle-approximate MIPS R4000 multiprocessor.
#![deny(clippy::unwrap_used, clippy::panic, clippy::todo, clippy::unimplemented)]

pub mod isa;
