//! A virtual machine: its memory (pmap), its virtual CPUs and its board.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use parking_lot::Mutex;
use sim::hv::Board;

use crate::mem::{Asids, Pmap};
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
    /// Boxed so that a host thread running a VCPU of a VM split over
    /// threads can take it out of the VM's lock for a quantum by swapping
    /// pointers (`parallel::run`).
    pub vcpus: Vec<Box<Vcpu>>,
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

    /// Whether its VCPU `c` could run but no physical CPU holds it.
    pub fn waits_for_a_cpu(&self, c: usize) -> bool {
        self.running() && self.vcpus.get(c).is_some_and(|vc| vc.waits_for_a_cpu())
    }
}

/// A VM with its machine ASIDs, as the parallel mode holds it.
pub struct VmHeld {
    pub vm: Vm,
    pub asids: Asids,
}

/// A VM split over host threads: the VM-wide parts behind one lock
/// (docs/parallel.md, "Kernel-mode work off the lock"), and whether the
/// VM needs its VCPUs' attention: a board request (a halt, a VCPU start)
/// or its end. The engine polls the flag instead of the board, without
/// the lock, so another VCPU's halt stops it at its next instruction.
pub struct VmShared {
    held: Mutex<VmHeld>,
    attention: AtomicBool,
}

impl VmShared {
    pub fn new(held: VmHeld) -> VmShared {
        VmShared {
            held: Mutex::new(held),
            attention: AtomicBool::new(false),
        }
    }

    /// Runs `f` on the VM under its lock. Every change to the board or the
    /// VM's end is made under it, so the flag is set before the lock is let
    /// go. (`Relaxed`: what the flag asks for is then done under the lock,
    /// whose acquisition orders everything else.)
    ///
    /// A thread that finds the lock taken looks before it blocks
    /// (`sim::hv::look`): the other thread holds it for an exit or a
    /// boundary, tens of µs, and a parked thread's wake-up took that long
    /// again on this project's KVM hosts (docs/parallel.md, "Where a split VM's
    /// time goes").
    pub fn with<R>(&self, f: impl FnOnce(&mut VmHeld) -> R) -> R {
        let mut held = sim::hv::look(|| self.held.try_lock()).unwrap_or_else(|| self.held.lock());
        let r = f(&mut held);
        let wanted = held.vm.board.has_actions() || !held.vm.running();
        self.attention.store(wanted, Relaxed);
        r
    }

    /// Whether a board request is pending or the VM ended, as of the last
    /// time the lock was let go.
    pub fn attention(&self) -> bool {
        self.attention.load(Relaxed)
    }

    pub fn into_inner(self) -> VmHeld {
        self.held.into_inner()
    }
}
