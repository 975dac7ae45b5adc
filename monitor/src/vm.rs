//! A virtual machine: its memory (pmap), its virtual CPUs and its board.

use sim::hv::Board;

use crate::mem::Pmap;
use crate::vcpu::Vcpu;

/// What to load into a VM: segments at guest-physical addresses and the
/// entry point, exactly what `sim::loader` produces from an ELF.
pub use sim::hv::loader::Image as VmImage;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmConfig {
    pub name: String,
    pub image: VmImage,
    pub mem_bytes: u64,
    pub vcpus: usize,
    /// The disk image, shared with the VMs that use the same file; each
    /// VM's writes stay its own (copy-on-write per 512-byte block).
    pub disk: Option<sim::hv::DiskImage>,
    /// The disk's completion interrupt latency in cycles (IP5, an
    /// extension of the board); `None`: no interrupt.
    pub disk_irq_latency: Option<u64>,
    /// Coalesced I/O: `--vm …,coalesce=POLICY,io-extent=N`.
    pub io: crate::coalesce::IoConfig,
    /// Whether the guest kernel's MFC0/MTC0 are patched to commpage loads
    /// and stores (`--vm …,commpage=off`: every one traps and is emulated).
    pub commpage: bool,
    /// Which guest-kernel code is translated (`--vm …,exec=POLICY`).
    pub exec: crate::bt::Exec,
}

impl VmConfig {
    /// A one-VCPU VM.
    pub fn new(name: &str, image: VmImage, mem_bytes: u64) -> VmConfig {
        VmConfig {
            name: name.to_string(),
            image,
            mem_bytes,
            vcpus: 1,
            disk: None,
            disk_irq_latency: None,
            io: crate::coalesce::IoConfig::default(),
            commpage: true,
            exec: crate::bt::Exec::default(),
        }
    }
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
    /// Coalesced I/O: the per-address table and the ring.
    pub io: crate::coalesce::VmIo,
    /// Binary translation of its kernel code.
    pub bt: crate::bt::Bt,
}

impl Vm {
    pub fn running(&self) -> bool {
        self.end.is_none()
    }
}
