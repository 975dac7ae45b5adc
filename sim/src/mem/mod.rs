//! Physical memory: RAM, the decoded-instruction cache that shadows it, and
//! routing of everything else to the board's devices.

mod bus;

pub use bus::{Bus, PAGE_SHIFT, PAGE_SIZE};
