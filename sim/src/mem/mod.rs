//! Physical memory: RAM shared by the machine's threads, LL/SC links, the
//! decoded-instruction cache that shadows RAM, and routing of everything
//! else to the board's devices.

mod bus;
mod links;
mod ram;

pub use bus::{Bus, PAGE_SHIFT, PAGE_SIZE};
