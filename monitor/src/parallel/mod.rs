//! The monitor in the parallel mode (docs/parallel.md): the physical CPUs
//! spread over host threads.
//!
//! At each of its boundaries the main thread schedules VCPUs onto physical
//! CPUs, as the deterministic mode does between its steps, then hands each
//! VM with seated VCPUs to a host thread by value, with those physical
//! CPUs: a *unit*; or, when one thread would get more than its share of
//! busy CPUs, splits the VM over threads, shared behind a lock (`run`). A
//! thread runs its units one after the other, each unit's CPUs in CPU
//! order, with a bus of its own (`Bus::for_monitor_thread`: the same
//! memory, its own decoded code and blocks), a trace buffer of its own and
//! a list of the shootdowns it did. VMs share nothing but the machine's
//! memory, and each touches only its own pages. What is machine-wide is
//! settled at the boundary, with the machine whole again: the units come
//! back, their traces are merged by cycle, their shootdowns reach the
//! other CPUs, the VCPUs their boards started join the run queue.
//!
//! Machine ASIDs are allocated per VM in this mode (each unit owns its
//! VM's allocator, a split VM's under its lock, so no machine-wide lock is
//! taken on an exit either), and a real TLB
//! holds the entries of one VM, of one generation of its ASIDs, at a time:
//! a CPU seated with a VCPU of another VM, or of a VM whose ASIDs rolled
//! over since, has its real TLB flushed first ([`Parallel::own_tlbs`]).
//! The deterministic mode keeps one machine-wide allocator and never
//! flushes on a switch.
//!
//! A hand-off costs about what a quantum of work does (tens of µs on a
//! busy 2-core host), so a boundary of the main thread comes only every
//! *batch* of quanta (at most [`BATCH_CYCLES`](crate::BATCH_CYCLES)): in
//! between, each thread settles its own units' VM-local boundary (the
//! VM's board, console, VCPUs it starts or wakes; for a split VM, the last
//! thread to finish the quantum does) and
//! goes on. A unit that needs the machine (a VCPU to seat, its VM ended, a
//! CPU whose VCPU waits or whose slice is over while another VCPU waits
//! for one) cuts the batch ([`Cut`]): every thread stops after the same
//! quantum, the last one any thread had begun.
//!
//! A VCPU that waits keeps its CPU, idle, while no other VCPU waits for
//! one; its VM's boundary wakes it. A VCPU whose VM ends leaves its CPU
//! idle until the boundary, where the scheduler seats another; a VCPU
//! whose slice ended is switched at the boundary too.

mod rotate;
mod run;
mod split;
mod sync;

use std::collections::VecDeque;
use std::sync::Arc;

use sim::hv::{quantum_end, Bus, Cpu, Pool};

use crate::guest::Shootdown;
use crate::mem::{Asids, Pmap};
use crate::obs::{Record, Trace};
use crate::vcpu::{Vcpu, VcpuState};
use crate::vm::{Vm, VmHeld, VmShared};
use crate::{cost, tlbctl};
use run::{run_job, Held, Job, Lent, Part, Shared, Unit};
pub use split::SplitPolicy;
use split::{worth_splitting, Work};
use sync::{Cut, Progress, Waker};

/// The monitor's host threads in the parallel mode.
pub(crate) struct Parallel {
    /// The threads other than this one: thread `t` > 0 is worker `t - 1`.
    pool: Pool<Job>,
    /// Per VM: its machine ASIDs.
    pub(crate) asids: Vec<Asids>,
    /// Per physical CPU: the VM and ASID generation its real TLB holds
    /// entries of.
    owner: Vec<Option<(usize, u64)>>,
    /// Per physical CPU: the thread (and so the bus) it last ran on.
    home: Vec<usize>,
    /// The monitor's VMs and CPUs during a batch, by number: those not
    /// lent to a unit wait here.
    vms: Vec<Option<Vm>>,
    cpus: Vec<Option<Cpu>>,
    /// Batches run, and those in which a VM ran on more than one thread.
    pub(crate) batches: u64,
    pub(crate) split_batches: u64,
    /// Quanta run by split VMs' parts, and how many of them began with a
    /// wait for another thread (`run::run_job`).
    pub(crate) part_quanta: u64,
    pub(crate) part_waits: u64,
    pub(crate) split: SplitPolicy,
    /// Per VM: its last batch that ran a VCPU ([`worth_splitting`]).
    work: Vec<Option<Work>>,
    /// What stands in a split VM for the VCPUs its threads hold
    /// (`Vcpu::placeholder`), kept from batch to batch. Boxes, as they are
    /// swapped with `Vm::vcpus`' boxes.
    #[allow(clippy::vec_box)]
    spares: Vec<Box<Vcpu>>,
}

impl Parallel {
    /// `threads` host threads (at least one: this one) for a monitor of
    /// `vms` VMs, `spaces` address spaces and `pcpus` CPUs on `bus`.
    pub(crate) fn start(
        threads: usize,
        bus: &mut Bus,
        vms: usize,
        spaces: usize,
        pcpus: usize,
        split: SplitPolicy,
    ) -> Parallel {
        let work: Vec<_> = (1..threads.max(1))
            .map(|_| {
                let mut own = bus.for_monitor_thread();
                move |job: &mut Job| run_job(job, &mut own)
            })
            .collect();
        Parallel {
            pool: Pool::start("monitor", work),
            asids: (0..vms).map(|_| Asids::new(spaces)).collect(),
            owner: vec![None; pcpus],
            home: vec![0; pcpus],
            vms: Vec::new(),
            cpus: Vec::new(),
            batches: 0,
            split_batches: 0,
            part_quanta: 0,
            part_waits: 0,
            split,
            work: vec![None; vms],
            spares: Vec::new(),
        }
    }

    pub(crate) fn threads(&self) -> usize {
        self.pool.workers() + 1
    }

    /// Flushes the real TLB of every CPU about to run a VCPU of a VM other
    /// than the one its entries belong to, or of an older generation of
    /// that VM's ASIDs (`current`: per CPU, the seated (VM, VCPU)).
    pub(crate) fn own_tlbs(&mut self, cpus: &mut [Cpu], current: &[Option<(usize, usize)>]) {
        for (p, cpu) in cpus.iter_mut().enumerate() {
            let Some((v, _)) = current.get(p).copied().flatten() else {
                continue;
            };
            let want = self.asids.get(v).map(|a| (v, a.generation));
            if let Some(owner) = self.owner.get_mut(p) {
                if *owner != want {
                    tlbctl::flush_real_tlb(&mut cpu.core);
                    *owner = want;
                }
            }
        }
    }

    /// Drops what `shootdowns` name from every real TLB but the one that
    /// did each, with the ASIDs of the VM each TLB belongs to (which know
    /// no other VM's spaces, so the others' entries stay).
    pub(crate) fn shoot_down(
        &self,
        cpus: &mut [Cpu],
        shootdowns: impl Iterator<Item = (usize, usize, Shootdown)>,
    ) {
        for (done, space, what) in shootdowns {
            for (p, cpu) in cpus.iter_mut().enumerate() {
                let owner = self.owner.get(p).copied().flatten();
                let asids = owner.and_then(|(v, _)| self.asids.get(v));
                if let (true, Some(asids)) = (p != done, asids) {
                    tlbctl::shoot_down(&mut cpu.core, asids, space, what);
                }
            }
        }
    }
}

/// What a batch of the parallel mode needs from the monitor, lent to it.
pub(crate) struct Quantum<'a> {
    pub(crate) vms: &'a mut Vec<Vm>,
    pub(crate) cpus: &'a mut Vec<Cpu>,
    pub(crate) bus: &'a mut Bus,
    pub(crate) current: &'a mut [Option<(usize, usize)>],
    pub(crate) tlb_cursor: &'a mut [usize],
    /// Per physical CPU: where its slice ends, and whether a VCPU that may
    /// run there waits for a CPU (one no rotation holds).
    pub(crate) slice_end: &'a mut [u64],
    pub(crate) wanted: &'a [bool],
    /// Per physical CPU: the VMs of one VCPU that take turns there behind
    /// the seated one during the batch, next first ([`rotate`]), and how
    /// long a turn is.
    pub(crate) rotations: Vec<VecDeque<usize>>,
    pub(crate) slice: u64,
    pub(crate) trace: &'a mut Trace,
    pub(crate) runq: &'a mut VecDeque<(usize, usize)>,
    pub(crate) cost: cost::Cost,
    pub(crate) start: u64,
    pub(crate) quantum: u64,
    pub(crate) limit: Option<u64>,
    /// The most quanta the batch may run (at least one).
    pub(crate) quanta: u32,
}

impl Parallel {
    /// Runs one batch: every seated VCPU for at most `q.quanta` quanta on
    /// the threads, idle CPUs straight to the batch's end; then takes
    /// everything back and applies what the threads did that concerns the
    /// whole machine. Returns the batch's end.
    pub(crate) fn batch(&mut self, mut q: Quantum<'_>) -> u64 {
        self.own_tlbs(q.cpus, q.current);
        let (mut jobs, cut) = self.deal(&mut q);
        let mut mine = jobs.remove(0);
        let mut sent = 0;
        for (w, job) in jobs.into_iter().enumerate() {
            if !job.units.is_empty() {
                self.pool.send(w, job);
                sent += 1;
            }
        }
        run_job(&mut mine, q.bus);
        let mut back = vec![mine];
        for _ in 0..sent {
            back.push(self.pool.recv().1);
        }
        let mut end = q.start;
        for _ in 0..cut.last() {
            end = quantum_end(end, q.quantum, q.limit);
        }
        self.take_back(q, back, end);
        end
    }

    /// Takes the seated CPUs and their VMs out of the monitor's hands:
    /// each VM with a seated VCPU once, with its ASIDs and the CPUs lent to
    /// it. A CPU whose VM is already out elsewhere stays here.
    fn gather(&mut self, q: &mut Quantum<'_>) -> Vec<(usize, VmHeld, Vec<Lent>)> {
        self.vms.extend(q.vms.drain(..).map(Some));
        self.cpus.extend(q.cpus.drain(..).map(Some));
        let mut vms: Vec<(usize, VmHeld, Vec<Lent>)> = Vec::new();
        for (p, seat) in q.current.iter().enumerate() {
            let Some((v, c)) = *seat else { continue };
            let Some(cpu) = self.cpus.get_mut(p).and_then(Option::take) else {
                continue;
            };
            let mut lent = Lent {
                p,
                c,
                cpu,
                tlb_cursor: q.tlb_cursor.get(p).copied().unwrap_or(0),
                slice_end: q.slice_end.get(p).copied().unwrap_or(0),
                wanted: q.wanted.get(p).copied().unwrap_or(false),
                // `own_tlbs` just made it so.
                generation: self.asids.get(v).map_or(0, |a| a.generation),
                own: None,
                out: false,
            };
            if let Some(u) = vms.iter_mut().find(|u| u.0 == v) {
                // The VM's ASIDs have moved into the unit.
                lent.generation = u.1.asids.generation;
                u.2.push(lent);
            } else if let Some(vm) = self.vms.get_mut(v).and_then(Option::take) {
                let asids = self
                    .asids
                    .get_mut(v)
                    .map(std::mem::take)
                    .unwrap_or_default();
                vms.push((v, VmHeld { vm, asids }, vec![lent]));
            } else if let Some(slot) = self.cpus.get_mut(p) {
                *slot = Some(lent.cpu);
            }
        }
        vms
    }

    /// Forms the units and deals them over the threads, the largest VM
    /// first to the least loaded; idle CPUs stay here. A VM whose CPUs,
    /// kept together, would load a thread beyond its share (the CPUs with
    /// work over the threads, rounded up) is split: its CPUs go one by one
    /// to the least loaded threads, and it is shared behind a lock
    /// (`run`). With no unit to run, the batch is one quantum.
    fn deal(&mut self, q: &mut Quantum<'_>) -> (Vec<Job>, Arc<Cut>) {
        let vms = self.gather(q);
        let quanta = if vms.is_empty() { 1 } else { q.quanta.max(1) };
        let cut = Arc::new(Cut::new(quanta));
        let threads = self.threads();
        let mut jobs = empty_jobs(q, threads, &cut);
        // A CPU whose VCPU waits costs a thread little: only CPUs with a
        // runnable VCPU count, and only they are spread.
        let busy_of = |h: &VmHeld, lents: &[Lent]| -> Vec<bool> {
            let runnable = |c: usize| {
                h.vm.running()
                    && h.vm
                        .vcpus
                        .get(c)
                        .is_some_and(|vc| vc.state == VcpuState::Runnable)
            };
            lents.iter().map(|l| runnable(l.c)).collect()
        };
        let mut vms: Vec<_> = vms
            .into_iter()
            .map(|(v, h, lents)| {
                let busy = busy_of(&h, &lents);
                (v, h, lents, busy)
            })
            .collect();
        let count = |busy: &[bool]| busy.iter().filter(|b| **b).count();
        vms.sort_by_key(|u| std::cmp::Reverse(count(&u.3)));
        let all: usize = vms.iter().map(|u| count(&u.3)).sum();
        let share = all.div_ceil(threads.max(1)).max(1);
        let mut load = vec![0usize; threads];
        let mut thread_of: Vec<Option<usize>> = vec![None; q.current.len()];
        let mut split = false;
        for (v, held, mut lents, busy) in vms {
            let last = self.work.get(v).copied().flatten();
            let share = if worth_splitting(self.split, last, count(&busy)) {
                share
            } else {
                usize::MAX
            };
            let places = place(&mut load, &busy, share);
            for (l, &t) in lents.iter_mut().zip(&places) {
                if let Some(slot) = thread_of.get_mut(l.p) {
                    *slot = Some(t);
                }
                if let Some(home) = self.home.get_mut(l.p) {
                    if *home != t {
                        // Its fetch cache points into the other bus's code.
                        *home = t;
                        l.cpu.core.bus_changed();
                    }
                }
            }
            let units = units_of(v, held, lents, &places, &mut self.spares);
            split |= units.len() > 1;
            for (t, u) in units {
                if let Some(job) = jobs.get_mut(t) {
                    job.units.push(u);
                }
            }
        }
        self.deal_rotations(q, &thread_of, &mut jobs);
        self.batches += 1;
        self.split_batches += u64::from(split);
        (jobs, cut)
    }

    /// Lends each rotation's VMs to the thread that holds its CPU, as
    /// units with no CPU ([`rotate`]).
    fn deal_rotations(
        &mut self,
        q: &mut Quantum<'_>,
        thread_of: &[Option<usize>],
        jobs: &mut [Job],
    ) {
        for (p, queued) in std::mem::take(&mut q.rotations).into_iter().enumerate() {
            let Some(job) = thread_of
                .get(p)
                .copied()
                .flatten()
                .and_then(|t| jobs.get_mut(t))
            else {
                // Not dealt: they wait in the run queue as before.
                q.runq.extend(queued.into_iter().map(|v| (v, 0)));
                continue;
            };
            let mut lent = VecDeque::new();
            for v in queued {
                let Some(vm) = self.vms.get_mut(v).and_then(Option::take) else {
                    q.runq.push_back((v, 0));
                    continue;
                };
                let asids = self
                    .asids
                    .get_mut(v)
                    .map(std::mem::take)
                    .unwrap_or_default();
                job.units.push(Unit {
                    v,
                    held: Held::Whole(Box::new(VmHeld { vm, asids })),
                    cpus: Vec::new(),
                    work: Work::default(),
                });
                lent.push_back(v);
            }
            if !lent.is_empty() {
                job.rotations.push(rotate::Rotation { p, queued: lent });
            }
        }
    }

    /// Puts the units back, merges the threads' traces by cycle (ties in
    /// CPU order, after what the boundary recorded), shoots down on the
    /// other CPUs what the units shot down on theirs, and queues the VCPUs
    /// that need a CPU. An idle CPU has spent the batch idle: time passes,
    /// nothing runs.
    fn take_back(&mut self, q: Quantum<'_>, back: Vec<Job>, end: u64) {
        for cpu in self.cpus.iter_mut().flatten() {
            cpu.idle_until(end);
        }
        let from = q.trace.records.len();
        let mut shootdowns = Vec::new();
        let mut shared = Vec::new();
        let mut work = vec![Work::default(); self.work.len()];
        let mut queued = Vec::new();
        for mut job in back {
            for u in job.units.drain(..) {
                if let Some(w) = work.get_mut(u.v) {
                    w.add(u.work);
                }
                for mut l in u.cpus {
                    self.spares.extend(l.own.take());
                    // A rotation may have seated another VCPU here.
                    if let Some(seat) = q.current.get_mut(l.p) {
                        *seat = Some((u.v, l.c));
                    }
                    if let Some(end) = q.slice_end.get_mut(l.p) {
                        *end = l.slice_end;
                    }
                    if let Some(cursor) = q.tlb_cursor.get_mut(l.p) {
                        *cursor = l.tlb_cursor;
                    }
                    if let Some(owner) = self.owner.get_mut(l.p) {
                        *owner = Some((u.v, l.generation));
                    }
                    if let Some(slot) = self.cpus.get_mut(l.p) {
                        *slot = Some(l.cpu);
                    }
                }
                match u.held {
                    Held::Whole(held) => self.put_back(u.v, *held),
                    Held::Split(part) => shared.push((u.v, part.shared)),
                }
            }
            self.part_quanta += job.part_quanta;
            self.part_waits += job.part_waits;
            q.trace.records.append(&mut job.trace.records);
            q.runq.append(&mut job.started);
            queued.extend(job.rotations.drain(..).flat_map(|r| r.queued));
            shootdowns.append(&mut job.shootdowns);
        }
        for (last, w) in self.work.iter_mut().zip(work) {
            if w != Work::default() {
                *last = Some(w);
            }
        }
        for (v, held) in shared {
            // The last of a split VM's parts gives the VM back.
            if let Ok(Shared { vm, pmap, .. }) = Arc::try_unwrap(held) {
                let mut held = vm.into_inner();
                held.vm.pmap = pmap;
                self.put_back(v, held);
            }
        }
        // What the rotations did not seat waits for a CPU again, as
        // `schedule_out` leaves a runnable VCPU.
        for v in queued {
            let waits = self
                .vms
                .get(v)
                .and_then(Option::as_ref)
                .is_some_and(|vm| vm.waits_for_a_cpu(0));
            if waits && !q.runq.contains(&(v, 0)) {
                q.runq.push_back((v, 0));
            }
        }
        if let Some(merged) = q.trace.records.get_mut(from..) {
            merged.sort_by_key(|r: &Record| (r.cycle, r.place.pcpu));
        }
        q.vms.extend(self.vms.drain(..).flatten());
        q.cpus.extend(self.cpus.drain(..).flatten());
        self.shoot_down(q.cpus, shootdowns.into_iter());
    }

    fn put_back(&mut self, v: usize, held: VmHeld) {
        if let Some(slot) = self.asids.get_mut(v) {
            *slot = held.asids;
        }
        if let Some(slot) = self.vms.get_mut(v) {
            *slot = Some(held.vm);
        }
    }
}

/// The threads one VM's CPUs go to, `busy` saying which have a runnable
/// VCPU: all to the least loaded thread if it keeps within `share` (or
/// at most one is busy), else the busy ones one by one to the least
/// loaded threads, and the others with the first of them.
fn place(load: &mut [usize], busy: &[bool], share: usize) -> Vec<usize> {
    let least = |load: &[usize]| (0..load.len()).min_by_key(|&t| load[t]).unwrap_or(0);
    let n = busy.iter().filter(|b| **b).count();
    let t = least(load);
    if let Some(l) = load.get_mut(t).filter(|l| n <= 1 || **l + n <= share) {
        *l += n;
        return vec![t; busy.len()];
    }
    let mut first = None;
    let places: Vec<Option<usize>> = busy
        .iter()
        .map(|&b| {
            b.then(|| {
                let t = least(load);
                if let Some(l) = load.get_mut(t) {
                    *l += 1;
                }
                first.get_or_insert(t);
                t
            })
        })
        .collect();
    places
        .into_iter()
        .map(|p| p.or(first).unwrap_or(t))
        .collect()
}

/// The units of VM `v` whose CPUs go to threads `places`: one, holding the
/// VM by value, if they all go to one thread; else one per thread, sharing
/// it, each CPU with a placeholder for its VCPU (from `spares`).
#[allow(clippy::vec_box)]
fn units_of(
    v: usize,
    mut held: VmHeld,
    lents: Vec<Lent>,
    places: &[usize],
    spares: &mut Vec<Box<Vcpu>>,
) -> Vec<(usize, Unit)> {
    let mut threads: Vec<usize> = Vec::new();
    for &t in places {
        if !threads.contains(&t) {
            threads.push(t);
        }
    }
    let mut parts: Vec<Vec<Lent>> = threads.iter().map(|_| Vec::new()).collect();
    for (l, t) in lents.into_iter().zip(places) {
        if let Some(part) = threads
            .iter()
            .position(|x| x == t)
            .and_then(|i| parts.get_mut(i))
        {
            part.push(l);
        }
    }
    if threads.len() <= 1 {
        let unit = Unit {
            v,
            held: Held::Whole(Box::new(held)),
            cpus: parts.into_iter().flatten().collect(),
            work: Work::default(),
        };
        return vec![(threads.first().copied().unwrap_or(0), unit)];
    }
    for l in parts.iter_mut().flatten() {
        l.own = Some(
            spares
                .pop()
                .unwrap_or_else(|| Box::new(Vcpu::placeholder())),
        );
    }
    let pmap = std::mem::replace(&mut held.vm.pmap, Pmap::new(Vec::new()));
    let shared = Arc::new(Shared {
        vm: VmShared::new(held),
        pmap,
        progress: Progress::new(threads.len()),
    });
    threads
        .into_iter()
        .zip(parts)
        .enumerate()
        .map(|(part, (t, cpus))| {
            let unit = Unit {
                v,
                held: Held::Split(Part::new(Arc::clone(&shared), part)),
                cpus,
                work: Work::default(),
            };
            (t, unit)
        })
        .collect()
}

/// One job a thread, with no unit yet: the batch's bounds, its cut and
/// its waker shared by all.
fn empty_jobs(q: &Quantum<'_>, threads: usize, cut: &Arc<Cut>) -> Vec<Job> {
    let waker = Arc::new(Waker::default());
    (0..threads)
        .map(|_| Job {
            units: Vec::new(),
            trace: Trace {
                enabled: q.trace.enabled,
                engine_insns: q.trace.engine_insns,
                ..Trace::default()
            },
            start: q.start,
            quantum: q.quantum,
            limit: q.limit,
            cut: Arc::clone(cut),
            waker: Arc::clone(&waker),
            cost: q.cost,
            started: VecDeque::new(),
            shootdowns: Vec::new(),
            part_quanta: 0,
            part_waits: 0,
            rotations: Vec::new(),
            slice: q.slice,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::place;

    #[test]
    fn a_vm_is_split_only_when_its_busy_cpus_exceed_a_threads_share() {
        // One VM of two busy VCPUs on two threads: split.
        assert_eq!(place(&mut [0, 0], &[true, true], 1), [0, 1]);
        // Two such VMs: each whole on a thread.
        let mut load = [0, 0];
        assert_eq!(place(&mut load, &[true, true], 2), [0, 0]);
        assert_eq!(place(&mut load, &[true, true], 2), [1, 1]);
        // Four on two threads: two and two; a waiting VCPU's CPU goes
        // with the first busy one.
        assert_eq!(
            place(&mut [0, 0], &[true, false, true, true, true], 2),
            [0, 0, 1, 0, 1]
        );
        // One busy VCPU is never split from its waiting siblings.
        assert_eq!(place(&mut [3, 0], &[false, true], 1), [1, 1]);
    }
}
