//! What a host thread does with its part of a batch: its units' CPUs
//! quantum after quantum, and the boundaries of the VMs it settles.
//!
//! A VM whose CPUs are all on this thread is held by value, and nothing is
//! locked. A VM split over threads is held behind one lock (the "big
//! monitor lock" of that VM, `VmShared`), with its pmap outside it,
//! read-only. Each thread takes its CPUs' VCPUs out of the VM (their
//! boxes, swapped with placeholders) and keeps them out while they run on,
//! quantum after quantum; it puts one back for every part of a step it
//! runs under the lock (`Seat::enter_part`: virtual interrupts, translated
//! kernel code; `Seat::leave`: the exit's handling), and puts them back
//! for good when one of them cannot run on (it waits, its VM ended, the
//! scheduler wants its CPU), so the thread settling the VM's boundary sees
//! it, and at the batch's end. The guest's direct run and the engine's run
//! of its kernel code (`exec=direct`) go without the lock, the engine
//! taking it only for what is VM-wide (a device, a privileged instruction,
//! an exception: `guest::VmLock`). So user-mode work and kernel code that
//! computes run in parallel; exits, privileged instructions and translated
//! code one VCPU at a time.
//!
//! A split VM's threads do not meet at every quantum's end: as the bare
//! machine's threads, each runs on up to a lead of quanta ahead of the
//! last boundary settled, and whichever finishes quantum `k` last settles
//! the VM's boundaries up to it ([`Progress`]).

use std::collections::VecDeque;
use std::sync::Arc;

use sim::hv::{quantum_end, Bus, Cpu};

use super::sync::{Cut, Pace, Progress, Waker};
use super::Work;
use crate::engine::{self, EngineStop};
use crate::exit::Outcome;
use crate::guest::{FetchPage, GuestCtx, Shootdown, VmLock, Wide};
use crate::mem::Pmap;
use crate::obs::{MonEvent, Place, Trace};
use crate::seat::{self, Enter, Seat};
use crate::vcpu::{Vcpu, VcpuState};
use crate::vm::{Vm, VmHeld, VmShared};
use crate::{coalesce, commpage, cost, tlbctl};

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
    /// of (`tlbctl::catch_up`).
    pub(super) generation: u64,
    /// Of a split VM: its VCPU while this thread holds it (`out`: outside
    /// the VM's lock), else the placeholder standing in for it there
    /// ([`trade`]).
    pub(super) own: Option<Box<Vcpu>>,
    pub(super) out: bool,
}

impl Lent {
    /// The state of its VCPU, which this thread holds (`out`).
    fn state_out(&self) -> Option<VcpuState> {
        self.own.as_ref().filter(|_| self.out).map(|vc| vc.state)
    }
}

/// A VM split over threads: the VM behind its lock, its pmap, which no
/// one changes while the VM is split (only a remapping job does, and one
/// sends the monitor back to the deterministic mode before the next
/// batch: `Monitor::run_quantum`), and how far its threads are.
pub(super) struct Shared {
    pub(super) vm: VmShared,
    pub(super) pmap: Pmap,
    pub(super) progress: Progress,
}

/// A VM as a thread holds it: by value, or shared with the other threads
/// holding its CPUs.
pub(super) enum Held {
    Whole(Box<VmHeld>),
    Split(Part),
}

/// One thread's part of a split VM: the VM it shares, which part it is
/// ([`Progress`]), how far it may run ahead, and whether it is held back.
pub(super) struct Part {
    pub(super) shared: Arc<Shared>,
    index: usize,
    pace: Pace,
    held_back: bool,
}

impl Part {
    pub(super) fn new(shared: Arc<Shared>, index: usize) -> Part {
        Part {
            shared,
            index,
            pace: Pace::default(),
            held_back: false,
        }
    }
}

impl Held {
    /// Runs `f` on the VM, under its lock if it is split.
    fn with<R>(&mut self, f: impl FnOnce(&mut VmHeld) -> R) -> R {
        match self {
            Held::Whole(held) => f(held),
            Held::Split(part) => part.shared.vm.with(f),
        }
    }
}

/// Swaps `l`'s box with the VM's slot of its VCPU: takes the VCPU out of
/// the VM (its placeholder goes in) or puts it back (see the module
/// comment). A VCPU put back into a VM that ended while it was out stops,
/// as `sched::vm_board_actions` stops the others. A pointer swap: nothing
/// is allocated.
fn trade(h: &mut VmHeld, l: &mut Lent) {
    let ended = !h.vm.running();
    if let (Some(own), Some(slot)) = (l.own.as_mut(), h.vm.vcpus.get_mut(l.c)) {
        std::mem::swap(own, slot);
        l.out = !l.out;
        if !l.out && ended {
            slot.state = VcpuState::Stopped;
        }
    }
}

/// Takes out (`out`) or puts back every VCPU of a split unit that is not
/// already there, under the VM's lock (taken only if one moves).
fn trade_all(u: &mut Unit, out: bool) {
    if let Held::Split(part) = &u.held {
        if u.cpus.iter().any(|l| l.out != out) {
            part.shared.vm.with(|h| {
                u.cpus
                    .iter_mut()
                    .filter(|l| l.out != out)
                    .for_each(|l| trade(h, l));
            });
        }
    }
}

/// Runs `f` on the VM with `l`'s VCPU in it, its real TLB caught up with
/// the VM's ASIDs: under the lock, with the pmap that is outside it, if
/// the VM is split.
fn locked<R>(
    held: &mut Held,
    l: &mut Lent,
    f: impl FnOnce(&mut VmHeld, &mut Lent, Option<&Pmap>) -> R,
) -> R {
    let run = |h: &mut VmHeld, l: &mut Lent, pmap: Option<&Pmap>| {
        if let Some(vc) = h.vm.vcpus.get(l.c) {
            tlbctl::catch_up(&mut l.cpu.core, &mut h.asids, vc, &mut l.generation);
        }
        f(h, l, pmap)
    };
    match held {
        Held::Whole(h) => run(h, l, None),
        Held::Split(part) => {
            let Shared { vm, pmap, .. } = &*part.shared;
            vm.with(|h| {
                let out = l.out;
                if out {
                    trade(h, l);
                }
                let r = run(h, l, Some(pmap));
                if out {
                    trade(h, l);
                }
                r
            })
        }
    }
}

/// A VM and the physical CPUs of it one thread runs this batch: all of
/// them, or (split) a part.
pub(super) struct Unit {
    pub(super) v: usize,
    pub(super) held: Held,
    pub(super) cpus: Vec<Lent>,
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
    /// Quanta this thread ran split VMs' parts through, and before how
    /// many of them it waited for another thread ([`Progress`]).
    pub(super) part_quanta: u64,
    pub(super) part_waits: u64,
    /// The CPUs whose VCPUs take turns in this batch, and the slice each
    /// turn lasts ([`super::rotate`]).
    pub(super) rotations: Vec<super::rotate::Rotation>,
    pub(super) slice: u64,
}

/// Runs a thread's units quantum after quantum, all of them through one
/// quantum before the next, settling their VMs' boundaries in between,
/// until the batch's [`Cut`] says stop. The main thread settles the last
/// boundary.
///
/// A split VM's part may begin quantum `q` once the VM's boundary `q -
/// lead` is settled ([`Pace`], [`Progress`]); its boundaries are settled
/// by the part that finishes their quanta last. Every part publishes the
/// quantum it finished before it waits for anything, and a part waits only
/// for quanta every part of the VM had to finish, so the slowest thread
/// never waits and threads holding parts of several split VMs never wait
/// for each other in a circle. All threads run the same quanta: a claim
/// that succeeded makes every later claim of the same quantum succeed.
pub(super) fn run_job(job: &mut Job, bus: &mut Bus) {
    let mut units = std::mem::take(&mut job.units);
    let mut start = job.start;
    for q in 1.. {
        let end = quantum_end(start, job.quantum, job.limit);
        for u in &mut units {
            if let Held::Split(part) = &mut u.held {
                let p = &part.shared.progress;
                let lead = part.pace.lead(p.met(), p.holding_back());
                part.pace.ran();
                job.part_quanta += 1;
                if q > lead && p.met() < q - lead {
                    job.part_waits += 1;
                    p.wait(q - lead, &job.waker);
                }
                trade_all(u, true);
            }
            for i in 0..u.cpus.len() {
                run_lent(u, i, bus, job, start, end);
            }
        }
        if !job.cut.claim(q + 1) {
            break;
        }
        let mut cut = false;
        for u in &mut units {
            cut |= match &u.held {
                Held::Whole(_) => unit_boundary(u, end, job),
                Held::Split(_) => part_boundary(u, q, job),
            };
        }
        if cut {
            job.cut.cut();
        }
        super::rotate::rotate(&mut units, job, bus);
        start = end;
    }
    for u in &mut units {
        trade_all(u, false);
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
    place_trace(u.v, &u.cpus, job);
    job.trace.now = end;
    let v = u.v;
    let cpus = &u.cpus;
    u.held.with(|h| {
        crate::sched::vm_boundary(&mut h.vm, v, end, &mut job.trace, &mut job.started);
        !job.started.is_empty() || must_cut(&h.vm, cpus)
    })
}

/// A split VM's part at the end of its quantum `q`: puts its VCPUs back
/// if one cannot run on (then its part is held back, and the VM's boundary
/// sees them); publishes `q`, and settles the VM's boundaries every part
/// has reached. Returns whether the batch must end: the VM ended, a VCPU
/// needs a CPU, or a CPU of this part is wanted by the scheduler.
fn part_boundary(u: &mut Unit, q: u32, job: &mut Job) -> bool {
    let runnable = |l: &Lent| l.state_out() == Some(VcpuState::Runnable);
    let wanted = u
        .cpus
        .iter()
        .any(|l| l.wanted && (!runnable(l) || l.cpu.cycles() >= l.slice_end));
    let runs_on = !wanted && u.cpus.iter().all(runnable);
    if !runs_on {
        trade_all(u, false);
    }
    let Unit {
        v,
        held: Held::Split(part),
        cpus,
        ..
    } = u
    else {
        return false;
    };
    let p = &part.shared.progress;
    if part.held_back == runs_on {
        part.held_back = !runs_on;
        p.hold_back(part.held_back);
    }
    let Some(all) = p.finished(part.index, q) else {
        return wanted;
    };
    place_trace(*v, cpus, job);
    let v = *v;
    let ends = (job.start, job.quantum, job.limit);
    let cut = part.shared.vm.with(|h| {
        let mut k_end = ends.0;
        let mut k = 0;
        for settle in p.unsettled(all) {
            while k < settle {
                k_end = quantum_end(k_end, ends.1, ends.2);
                k += 1;
            }
            job.trace.now = k_end;
            crate::sched::vm_boundary(&mut h.vm, v, k_end, &mut job.trace, &mut job.started);
        }
        p.settled(all, &job.waker);
        !job.started.is_empty() || !h.vm.running()
    });
    cut || wanted
}

/// Records what VM `v`'s boundary emits at the first of `cpus`.
fn place_trace(v: usize, cpus: &[Lent], job: &mut Job) {
    if let Some(l) = cpus.first() {
        job.trace.place = Place {
            pcpu: l.p,
            vm: v,
            vcpu: l.c,
        };
    }
}

/// Whether the batch must end for `vm` or one of `cpus`, its CPUs on this
/// thread: the VM ended, or a CPU's VCPU waits or its slice is over while
/// another VCPU waits for a CPU.
fn must_cut(vm: &Vm, cpus: &[Lent]) -> bool {
    !vm.running() || cpus.iter().any(|l| l.wanted && turn_over(vm, l))
}

/// Whether the VCPU `l` runs for `vm` has had its turn: it cannot run, or
/// its slice is over.
pub(super) fn turn_over(vm: &Vm, l: &Lent) -> bool {
    let runnable = vm
        .vcpus
        .get(l.c)
        .is_some_and(|vc| vc.state == VcpuState::Runnable);
    !runnable || l.cpu.cycles() >= l.slice_end
}

/// What the monitor's part of a step decided.
enum Step {
    /// The VCPU cannot run (it waits, or its VM ended).
    Idle,
    /// Run the guest directly.
    Direct,
    /// Run the engine.
    Engine,
    Done(Outcome),
}

/// Runs the VCPU on a unit's CPU `i` from `start` to `end`, as the
/// deterministic scheduler does (`Monitor::run_pcpu`), except that a VCPU
/// that waits or whose VM ended leaves the CPU idle until the quantum's end.
/// The VM is taken (locked, if split) for the monitor's parts of each step
/// and let go while the guest runs directly or in the engine.
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
    let cost = *cost;
    loop {
        let before = l.cpu.cycles();
        if before >= end {
            return;
        }
        let step = locked(held, l, |h, l, pmap| {
            let runnable = h.vm.running()
                && h.vm
                    .vcpus
                    .get(l.c)
                    .is_some_and(|vc| vc.state == VcpuState::Runnable);
            if !runnable {
                return Step::Idle;
            }
            let mut seat = seat_of(h, l, v, pmap, bus, trace, shootdowns, cost);
            match seat.enter_part(end, false) {
                Enter::Direct => Step::Direct,
                Enter::Engine => Step::Engine,
                Enter::Done(outcome) => Step::Done(settle(&mut seat, outcome, start, started)),
            }
        });
        let mut free = 0;
        let outcome = match step {
            Step::Idle => {
                l.cpu.idle_until(end);
                return;
            }
            Step::Done(outcome) => outcome,
            Step::Direct => {
                let ran = seat::run_direct(&mut l.cpu, bus, None, v, l.c, end);
                free = ran.cycles;
                locked(held, l, |h, l, pmap| {
                    let mut seat = seat_of(h, l, v, pmap, bus, trace, shootdowns, cost);
                    let outcome = seat.leave(ran, end);
                    settle(&mut seat, outcome, start, started)
                })
            }
            Step::Engine => {
                let c0 = l.cpu.cycles();
                let (stopped, under_lock) = match held {
                    Held::Whole(h) => {
                        let mut seat = seat_of(h, l, v, None, bus, trace, shootdowns, cost);
                        let stopped = seat
                            .with_ctx(|ctx, regs| engine::run(ctx, regs, 0, end))
                            .map(|stop| (stop, None));
                        // Had it been split: device accesses and privileged
                        // instructions are few next to the code it computes.
                        (stopped, 0)
                    }
                    Held::Split(part) => {
                        let (stop, reason, under_lock) =
                            engine_unlocked(&part.shared, l, v, bus, trace, shootdowns, cost, end);
                        (Some((stop, reason)), under_lock)
                    }
                };
                free = l.cpu.cycles().saturating_sub(c0 + under_lock);
                locked(held, l, |h, l, pmap| {
                    let Some((stop, reason)) = stopped else {
                        return Outcome::Budget;
                    };
                    seat::stop_vm(reason, &mut h.vm.end, trace);
                    let mut seat = seat_of(h, l, v, pmap, bus, trace, shootdowns, cost);
                    settle(&mut seat, seat::engine_outcome(stop), start, started)
                })
            }
        };
        let spent = l.cpu.cycles().saturating_sub(before);
        work.free += free;
        work.locked += spent.saturating_sub(free);
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

/// Runs the engine for the VCPU `l` holds, of the split VM `shared`,
/// outside the VM's lock (`guest::VmLock` takes it for what is VM-wide):
/// how it stopped, why the VM must stop, if the guest made it, and the
/// cycles it charged holding the lock.
#[allow(clippy::too_many_arguments)]
fn engine_unlocked(
    shared: &Shared,
    l: &mut Lent,
    v: usize,
    bus: &mut Bus,
    trace: &mut Trace,
    shootdowns: &mut Vec<(usize, usize, Shootdown)>,
    cost: cost::Cost,
    end: u64,
) -> (EngineStop, Option<String>, u64) {
    let Lent {
        cpu,
        own,
        tlb_cursor,
        generation,
        ..
    } = l;
    let Some(vcpu) = own.as_deref_mut() else {
        return (EngineStop::Budget, None, 0);
    };
    let Cpu { regs, core } = cpu;
    let now = core.cycles();
    trace.now = now;
    let (mut reason, mut under_lock) = (None, 0);
    let mut ctx = GuestCtx {
        vm: v,
        vcpu,
        pmap: &shared.pmap,
        wide: VmLock {
            shared: &shared.vm,
            generation,
            locked_cycles: &mut under_lock,
        },
        bus,
        core,
        trace,
        shootdowns,
        now,
        stop: &mut reason,
        tlb_cursor,
        debug: None,
        cost,
        fetch: FetchPage::default(),
    };
    // As every context starts (`Seat::with_ctx`); the part of the step
    // before this one already took the page back, so this is seldom needed.
    if ctx.vcpu.commpage_live {
        VmLock::locked(&mut ctx, commpage::load);
    }
    let stop = engine::run(&mut ctx, regs, 0, end);
    (stop, reason, under_lock)
}

/// The VCPU on `l`, seated with this thread's bus, trace and shootdown list.
#[allow(clippy::too_many_arguments)]
fn seat_of<'a>(
    h: &'a mut VmHeld,
    l: &'a mut Lent,
    v: usize,
    pmap: Option<&'a Pmap>,
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
        pmap,
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
