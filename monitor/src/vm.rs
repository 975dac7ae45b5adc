//! A virtual machine: its memory (pmap), its virtual CPUs and its board.

use sim::dev::Board;

use crate::mem::Pmap;
use crate::vcpu::Vcpu;

/// What to load into a VM: segments at guest-physical addresses and the
/// entry point (what `sim::loader` produces from an ELF).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VmImage {
    pub entry: u64,
    pub segments: Vec<(u64, Vec<u8>)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmConfig {
    pub name: String,
    pub image: VmImage,
    pub mem_bytes: u64,
    pub vcpus: usize,
}

/// Why a VM no longer runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmEnd {
    /// The guest wrote the halt register.
    Halted(u32),
    /// The monitor stopped it for misbehaviour (the diagnostic says why).
    Stopped(String),
}

pub struct Vm {
    pub id: usize,
    pub name: String,
    pub pmap: Pmap,
    pub vcpus: Vec<Vcpu>,
    pub board: Board,
    pub end: Option<VmEnd>,
    /// Console output not yet collected.
    pub console: Vec<u8>,
}

impl Vm {
    pub fn running(&self) -> bool {
        self.end.is_none()
    }
}
