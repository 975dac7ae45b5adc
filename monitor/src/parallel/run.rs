//! What a host thread does with its part of a batch: its units' CPUs
//! quantum after quantum, and the boundaries of the VMs it settles.
//!
//! A VM whose CPUs are all on this thread is held by value, and nothing is
//! locked. A VM split over threads is held behind one lock (the "big
//! monitor lock" of that VM): a step of a VCPU takes it for the monitor's
//! part before the guest runs directly (`Seat::enter`: virtual interrupts,
//! and kernel code under the engine or the translator) and for the exit's
//! handling after it (`Seat::leave`), never while the guest runs directly.
//! So the VCPUs' user-mode work runs in parallel, and their exits and
//! engine runs one at a time.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use sim::hv::{quantum_end, Bus, Cpu};

use super::sync::{Cut, Meet, Waker};
use super::Work;
use crate::exit::Outcome;
use crate::guest::Shootdown;
use crate::mem::Asids;
use crate::obs::{MonEvent, Place, Trace};
use crate::seat::{self, Seat};
use crate::vcpu::VcpuState;
use crate::vm::Vm;
use crate::{coalesce, cost, tlbctl};

/// A physical CPU lent to a unit, with the VCPU seated on it.
pub(super) struct Lent {
    pub(super) p: usize,
    pub(super) c: usize,
    pub(super) cpu: Cpu,
    pub(super) tlb_cursor: usize,
    /// Where its VCPU's slice ends, and whether another VCPU that may run
    /// here waits for a CPU (then the slice's end, or a wait, needs the
    /// scheduler).
    pub(super) slice_end: u64,
    pub(super) wanted: bool,
    /// The generation of its VM's machine ASIDs its real TLB holds entries
    /// of ([`catch_up`]).
    pub(super) generation: u64,
}

/// What of a VM the threads share: the VM and its machine ASIDs.
pub(super) struct VmHeld {
    pub(super) vm: Vm,
    pub(super) asids: Asids,
}

/// A VM split over threads: the VM behind its lock, and where the threads
/// meet at each quantum's end.
pub(super) struct Shared {
    pub(super) held: Mutex<VmHeld>,
    pub(super) meet: Meet,
}

/// A VM as a thread holds it: by value, or shared with the other threads
/// holding its CPUs.
pub(super) enum Held {
    Whole(Box<VmHeld>),
    Split(Arc<Shared>),
}

impl Held {
    /// Runs `f` on the VM, under its lock if it is split.
    fn with<R>(&mut self, f: impl FnOnce(&mut VmHeld) -> R) -> R {
        match self {
            Held::Whole(held) => f(held),
            Held::Split(shared) => f(&mut shared.held.lock()),
        }
    }
}

/// A VM and the physical CPUs of it one thread runs this batch: all of
/// them, or (split) a part.
pub(super) struct Unit {
    pub(super) v: usize,
    pub(super) held: Held,
    pub(super) cpus: Vec<Lent>,
    /// Whether this thread settled the last quantum's boundary of the VM.
    pub(super) settles: bool,
    /// Where its CPUs' VCPUs spent the batch (`super::worth_splitting`).
    pub(super) work: Work,
}

/// What one host thread runs in a batch, and what it gives back.
pub(super) struct Job {
    pub(super) units: Vec<Unit>,
    pub(super) trace: Trace,
    /// The batch's start, quantum and cycle limit (quantum `j` ends at the
    /// `j`th `quantum_end` from the start).
    pub(super) start: u64,
    pub(super) quantum: u64,
    pub(super) limit: Option<u64>,
    pub(super) cut: Arc<Cut>,
    pub(super) waker: Arc<Waker>,
    pub(super) cost: cost::Cost,
    /// VCPUs that need a CPU: started by their boards, or woken while not
    /// seated: (VM, VCPU).
    pub(super) started: VecDeque<(usize, usize)>,
    /// Shootdowns done: (physical CPU, address space, what).
    pub(super) shootdowns: Vec<(usize, usize, Shootdown)>,
}

/// Runs a thread's units quantum after quantum, all of them through one
/// quantum before the next, settling their VMs' boundaries in between,
/// until the batch's [`Cut`] says stop. The main thread settles the last
/// boundary.
///
/// A split VM's boundary is settled by the last thread to finish the
/// quantum with its CPUs ([`Meet`]). A thread arrives at all its split VMs
/// before it waits for any, so two threads holding parts of two split VMs
/// never wait for each other in a circle. All threads run the same quanta:
/// a claim that succeeded makes every later claim of the same quantum
/// succeed.
pub(super) fn run_job(job: &mut Job, bus: &mut Bus) {
    let mut units = std::mem::take(&mut job.units);
    let mut start = job.start;
    for j in 2.. {
        let q = j - 1;
        let end = quantum_end(start, job.quantum, job.limit);
        for u in &mut units {
            for i in 0..u.cpus.len() {
                run_lent(u, i, bus, job, start, end);
            }
        }
        if !job.cut.claim(j) {
            break;
        }
        let mut cut = false;
        for u in &mut units {
            u.settles = match &u.held {
                Held::Whole(_) => true,
                Held::Split(shared) => shared.meet.arrive(),
            };
        }
        for u in units.iter_mut().filter(|u| u.settles) {
            cut |= unit_boundary(u, end, job);
            if let Held::Split(shared) = &u.held {
                shared.meet.settled(q, &job.waker);
            }
        }
        for u in units.iter_mut().filter(|u| !u.settles) {
            if let Held::Split(shared) = &u.held {
                shared.meet.wait(q, &job.waker);
            }
            cut |= u.held.with(|h| must_cut(&h.vm, &u.cpus));
        }
        if cut {
            job.cut.cut();
        }
        start = end;
    }
    job.units = units;
}

/// A unit's VM at a boundary inside a batch, as the main thread's boundary
/// settles it (`vm_boundary`): its board reaches `end`, its console is
/// collected, its board's requests are applied and its waiting VCPUs with
/// an interrupt pending made runnable. Returns whether the batch must end:
/// a VCPU needs a CPU (started, or woken while not seated), or
/// [`must_cut`].
fn unit_boundary(u: &mut Unit, end: u64, job: &mut Job) -> bool {
    if let Some(l) = u.cpus.first() {
        job.trace.place = Place {
            pcpu: l.p,
            vm: u.v,
            vcpu: l.c,
        };
    }
    job.trace.now = end;
    let v = u.v;
    let cpus = &u.cpus;
    u.held.with(|h| {
        crate::sched::vm_boundary(&mut h.vm, v, end, &mut job.trace, &mut job.started);
        !job.started.is_empty() || must_cut(&h.vm, cpus)
    })
}

/// Whether the batch must end for `vm` or one of `cpus`, its CPUs on this
/// thread: the VM ended, or a CPU's VCPU waits or its slice is over while
/// another VCPU waits for a CPU.
fn must_cut(vm: &Vm, cpus: &[Lent]) -> bool {
    !vm.running()
        || cpus.iter().any(|l| {
            let runnable = vm
                .vcpus
                .get(l.c)
                .is_some_and(|vc| vc.state == VcpuState::Runnable);
            l.wanted && (!runnable || l.cpu.cycles() >= l.slice_end)
        })
}

/// What the monitor's part of a step decided.
enum Step {
    /// The VCPU cannot run (it waits, or its VM ended).
    Idle,
    /// Run the guest directly.
    Direct,
    Done(Outcome),
}

/// Runs the VCPU on a unit's CPU `i` from `start` to `end`, as the
/// deterministic scheduler does (`Monitor::run_pcpu`), except that a VCPU
/// that waits or whose VM ended leaves the CPU idle until the quantum's end.
/// The VM is taken (locked, if split) for the monitor's parts of each step
/// and let go while the guest runs directly.
fn run_lent(u: &mut Unit, i: usize, bus: &mut Bus, job: &mut Job, start: u64, end: u64) {
    let v = u.v;
    let Unit {
        held, cpus, work, ..
    } = u;
    let Some(l) = cpus.get_mut(i) else { return };
    let Job {
        trace,
        shootdowns,
        started,
        cost,
        ..
    } = job;
    loop {
        let before = l.cpu.cycles();
        if before >= end {
            return;
        }
        let step = held.with(|h| {
            catch_up(h, l);
            let runnable = h.vm.running()
                && h.vm
                    .vcpus
                    .get(l.c)
                    .is_some_and(|vc| vc.state == VcpuState::Runnable);
            if !runnable {
                return Step::Idle;
            }
            let mut seat = seat_of(h, l, v, bus, trace, shootdowns, *cost);
            match seat.enter(end) {
                None => Step::Direct,
                Some(outcome) => Step::Done(settle(&mut seat, outcome, start, started)),
            }
        });
        let mut direct = 0;
        let outcome = match step {
            Step::Idle => {
                l.cpu.idle_until(end);
                return;
            }
            Step::Done(outcome) => outcome,
            Step::Direct => {
                let ran = seat::run_direct(&mut l.cpu, bus, None, v, l.c, end);
                direct = ran.cycles;
                held.with(|h| {
                    catch_up(h, l);
                    let mut seat = seat_of(h, l, v, bus, trace, shootdowns, *cost);
                    let outcome = seat.leave(ran, end);
                    settle(&mut seat, outcome, start, started)
                })
            }
        };
        let spent = l.cpu.cycles().saturating_sub(before);
        work.direct += direct;
        work.monitor += spent.saturating_sub(direct);
        match outcome {
            Outcome::Resume | Outcome::Board => {}
            Outcome::Wait => {
                trace.emit(MonEvent::Wait);
                l.cpu.idle_until(end);
                return;
            }
            Outcome::Budget | Outcome::Debug => return,
        }
    }
}

/// The VCPU on `l`, seated with this thread's bus, trace and shootdown list.
fn seat_of<'a>(
    h: &'a mut VmHeld,
    l: &'a mut Lent,
    v: usize,
    bus: &'a mut Bus,
    trace: &'a mut Trace,
    shootdowns: &'a mut Vec<(usize, usize, Shootdown)>,
    cost: cost::Cost,
) -> Seat<'a> {
    Seat {
        p: l.p,
        v,
        c: l.c,
        cpu: &mut l.cpu,
        bus,
        vm: &mut h.vm,
        asids: &mut h.asids,
        trace,
        shootdowns,
        tlb_cursor: &mut l.tlb_cursor,
        debug: None,
        cost,
    }
}

/// What the VM does after a step's part, as `Monitor::run_pcpu` does: the
/// end of a VCPU's turn delivers its VM's ring, board requests are applied.
fn settle(
    seat: &mut Seat<'_>,
    outcome: Outcome,
    start: u64,
    started: &mut VecDeque<(usize, usize)>,
) -> Outcome {
    match outcome {
        Outcome::Budget if !seat.vm.io.ring.is_empty() => {
            seat.with_ctx(|ctx, _| coalesce::ring::flush(ctx));
        }
        Outcome::Board => {
            crate::sched::vm_board_actions(seat.vm, seat.v, start, seat.trace, started);
        }
        _ => {}
    }
    outcome
}

/// Brings `l`'s real TLB to the current generation of its VM's machine
/// ASIDs, at the start of each part of a step that holds the VM.
///
/// Another CPU of the VM may have started a generation (its ASIDs ran
/// out) while this one ran the guest directly: until now this CPU used its
/// own entries under its old machine ASID, which still meant what they did
/// for it. Before it looks up or installs under a machine ASID of the new
/// generation (which may name another of its guest ASIDs), its TLB is
/// flushed and its real EntryHi takes the new ASID of the guest's current
/// one (its VPN2, which an exit may be about to read, stays).
///
/// Shootdowns need no such catching up: they name the shooting VCPU's own
/// address space (`engine::shoot_down`), whose machine ASIDs no other VCPU
/// uses, and a VCPU stays on one CPU for a whole batch, whose own TLB the
/// shootdown reaches at once. The other CPUs' stale entries of that space
/// can be hit only once the VCPU is seated there, after the main thread's
/// boundary, which first applies every shootdown of the batch to every CPU
/// (`Parallel::take_back`).
fn catch_up(h: &mut VmHeld, l: &mut Lent) {
    if h.asids.generation == l.generation {
        return;
    }
    tlbctl::flush_real_tlb(&mut l.cpu.core);
    if let Some(vc) = h.vm.vcpus.get(l.c) {
        tlbctl::retag(&mut l.cpu.core, &mut h.asids, vc.space, vc.cp0.asid());
    }
    l.generation = h.asids.generation;
}
