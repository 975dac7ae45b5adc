//! The monitor in the parallel mode (docs/parallel.md): the physical CPUs
//! spread over host threads, one VM's at a time.
//!
//! At each of its boundaries the main thread schedules VCPUs onto physical
//! CPUs, as the deterministic mode does between its steps, then hands each
//! VM with seated VCPUs to a host thread by value, with those physical
//! CPUs: a *unit*. A thread runs its units one after the other, each unit's
//! CPUs in CPU order, with a bus of its own (`Bus::for_monitor_thread`: the
//! same memory, its own decoded code and blocks), a trace buffer of its own
//! and a list of the shootdowns it did. Since a VM is wholly on one thread
//! during a batch, its board, binary translator, coalescing state and
//! VCPUs need no lock; VMs share nothing but the machine's memory, and each
//! touches only its own pages. What is machine-wide is settled at the
//! boundary, with the machine whole again: the units come back, their traces
//! are merged by cycle, their shootdowns reach the other CPUs, the VCPUs
//! their boards started join the run queue.
//!
//! Machine ASIDs are allocated per VM in this mode (each unit owns its
//! VM's allocator, so nothing is locked on an exit either), and a real TLB
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
//! VM's board, console, VCPUs it starts or wakes, [`unit_boundary`]) and
//! goes on. A unit that needs the machine (a VCPU to seat, its VM ended, a
//! CPU whose VCPU waits or whose slice is over while another VCPU waits
//! for one) cuts the batch ([`Cut`]): every thread stops after the same
//! quantum, the last one any thread had begun.
//!
//! A VCPU that waits keeps its CPU, idle, while no other VCPU waits for
//! one; its VM's boundary wakes it. A VCPU whose VM ends leaves its CPU
//! idle until the boundary, where the scheduler seats another; a VCPU
//! whose slice ended is switched at the boundary too.

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use sim::hv::{quantum_end, Bus, Cpu, Pool};

use crate::exit::Outcome;
use crate::guest::Shootdown;
use crate::mem::Asids;
use crate::obs::{MonEvent, Place, Record, Trace};
use crate::seat::Seat;
use crate::vcpu::VcpuState;
use crate::vm::Vm;
use crate::{coalesce, cost, tlbctl};

/// A physical CPU lent to a unit, with the VCPU seated on it.
struct Lent {
    p: usize,
    c: usize,
    cpu: Cpu,
    tlb_cursor: usize,
    /// Where its VCPU's slice ends, and whether another VCPU that may run
    /// here waits for a CPU (then the slice's end, or a wait, needs the
    /// scheduler).
    slice_end: u64,
    wanted: bool,
}

/// One VM and the physical CPUs running its VCPUs this batch.
struct Unit {
    v: usize,
    vm: Vm,
    asids: Asids,
    cpus: Vec<Lent>,
}

/// Where a batch ends: every thread runs quanta 1, 2, ... while [`Cut::claim`]
/// lets it, so all stop after the same one. One word holds the last
/// quantum allowed and the furthest one a thread has begun; a cut lowers
/// the first to the second, so no thread has gone past it.
struct Cut(AtomicU64);

impl Cut {
    fn new(quanta: u32) -> Cut {
        Cut(AtomicU64::new(Cut::pack(quanta, 1)))
    }

    fn pack(last: u32, begun: u32) -> u64 {
        (u64::from(last) << 32) | u64::from(begun)
    }

    fn unpack(word: u64) -> (u32, u32) {
        ((word >> 32) as u32, word as u32)
    }

    /// Whether quantum `j` is in the batch; if so, it is begun. (One
    /// atomic word, so `Relaxed` is enough: its changes have one order, and
    /// nothing else is published through it.)
    fn claim(&self, j: u32) -> bool {
        let r = self.0.fetch_update(Relaxed, Relaxed, |w| {
            let (last, begun) = Cut::unpack(w);
            (j <= last).then(|| Cut::pack(last, begun.max(j)))
        });
        r.is_ok()
    }

    /// Ends the batch after the furthest quantum begun.
    fn cut(&self) {
        let _ = self.0.fetch_update(Relaxed, Relaxed, |w| {
            let (last, begun) = Cut::unpack(w);
            Some(Cut::pack(last.min(begun), begun))
        });
    }

    /// The batch's last quantum, once every thread has stopped.
    fn last(&self) -> u32 {
        Cut::unpack(self.0.load(Relaxed)).0
    }
}

/// What one host thread runs in a batch, and what it gives back.
struct Job {
    units: Vec<Unit>,
    trace: Trace,
    /// The batch's start, quantum and cycle limit (quantum `j` ends at the
    /// `j`th `quantum_end` from the start).
    start: u64,
    quantum: u64,
    limit: Option<u64>,
    cut: Arc<Cut>,
    cost: cost::Cost,
    /// VCPUs that need a CPU: started by their boards, or woken while not
    /// seated: (VM, VCPU).
    started: VecDeque<(usize, usize)>,
    /// Shootdowns done: (physical CPU, address space, what).
    shootdowns: Vec<(usize, usize, Shootdown)>,
}

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
    pub(crate) current: &'a [Option<(usize, usize)>],
    pub(crate) tlb_cursor: &'a mut [usize],
    /// Per physical CPU: where its slice ends, and whether a VCPU that may
    /// run there waits for a CPU.
    pub(crate) slice_end: &'a [u64],
    pub(crate) wanted: &'a [bool],
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

    /// Forms the units and deals them over the threads, the largest first
    /// to the least loaded; idle CPUs stay here. With no unit to run, the
    /// batch is one quantum.
    fn deal(&mut self, q: &mut Quantum<'_>) -> (Vec<Job>, Arc<Cut>) {
        self.vms.extend(q.vms.drain(..).map(Some));
        self.cpus.extend(q.cpus.drain(..).map(Some));
        let mut units: Vec<Unit> = Vec::new();
        for (p, seat) in q.current.iter().enumerate() {
            let Some((v, c)) = *seat else { continue };
            let Some(cpu) = self.cpus.get_mut(p).and_then(Option::take) else {
                continue;
            };
            let lent = Lent {
                p,
                c,
                cpu,
                tlb_cursor: q.tlb_cursor.get(p).copied().unwrap_or(0),
                slice_end: q.slice_end.get(p).copied().unwrap_or(0),
                wanted: q.wanted.get(p).copied().unwrap_or(false),
            };
            if let Some(u) = units.iter_mut().find(|u| u.v == v) {
                u.cpus.push(lent);
            } else if let Some(vm) = self.vms.get_mut(v).and_then(Option::take) {
                let asids = self
                    .asids
                    .get_mut(v)
                    .map(std::mem::take)
                    .unwrap_or_default();
                units.push(Unit {
                    v,
                    vm,
                    asids,
                    cpus: vec![lent],
                });
            } else if let Some(slot) = self.cpus.get_mut(p) {
                *slot = Some(lent.cpu);
            }
        }
        let quanta = if units.is_empty() { 1 } else { q.quanta.max(1) };
        let cut = Arc::new(Cut::new(quanta));
        let mut jobs: Vec<Job> = (0..self.threads())
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
                cut: Arc::clone(&cut),
                cost: q.cost,
                started: VecDeque::new(),
                shootdowns: Vec::new(),
            })
            .collect();
        units.sort_by_key(|u| std::cmp::Reverse(u.cpus.len()));
        let mut load = vec![0usize; jobs.len()];
        for mut u in units {
            let t = (0..load.len()).min_by_key(|&t| load[t]).unwrap_or(0);
            if let Some(l) = load.get_mut(t) {
                *l += u.cpus.len();
            }
            for l in &mut u.cpus {
                if let Some(home) = self.home.get_mut(l.p) {
                    if *home != t {
                        // Its fetch cache points into the other bus's code.
                        *home = t;
                        l.cpu.core.bus_changed();
                    }
                }
            }
            if let Some(job) = jobs.get_mut(t) {
                job.units.push(u);
            }
        }
        (jobs, cut)
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
        for mut job in back {
            for u in job.units.drain(..) {
                for l in u.cpus {
                    if let Some(cursor) = q.tlb_cursor.get_mut(l.p) {
                        *cursor = l.tlb_cursor;
                    }
                    if let Some(owner) = self.owner.get_mut(l.p) {
                        *owner = Some((u.v, u.asids.generation));
                    }
                    if let Some(slot) = self.cpus.get_mut(l.p) {
                        *slot = Some(l.cpu);
                    }
                }
                if let Some(slot) = self.asids.get_mut(u.v) {
                    *slot = u.asids;
                }
                if let Some(slot) = self.vms.get_mut(u.v) {
                    *slot = Some(u.vm);
                }
            }
            q.trace.records.append(&mut job.trace.records);
            q.runq.append(&mut job.started);
            shootdowns.append(&mut job.shootdowns);
        }
        if let Some(merged) = q.trace.records.get_mut(from..) {
            merged.sort_by_key(|r: &Record| (r.cycle, r.place.pcpu));
        }
        q.vms.extend(self.vms.drain(..).flatten());
        q.cpus.extend(self.cpus.drain(..).flatten());
        self.shoot_down(q.cpus, shootdowns.into_iter());
    }
}

/// Runs a thread's units quantum after quantum, all of them through one
/// quantum before the next, settling their VMs' boundaries in between,
/// until the batch's [`Cut`] says stop. The main thread settles the last
/// boundary.
fn run_job(job: &mut Job, bus: &mut Bus) {
    let mut units = std::mem::take(&mut job.units);
    let mut start = job.start;
    for j in 2.. {
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
            cut |= unit_boundary(u, end, job);
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
/// a VCPU needs a CPU (started, or woken while not seated), the VM ended,
/// or a CPU's VCPU waits or its slice is over while another VCPU waits
/// for a CPU.
fn unit_boundary(u: &mut Unit, end: u64, job: &mut Job) -> bool {
    if let Some(l) = u.cpus.first() {
        job.trace.place = Place {
            pcpu: l.p,
            vm: u.v,
            vcpu: l.c,
        };
    }
    job.trace.now = end;
    crate::sched::vm_boundary(&mut u.vm, u.v, end, &mut job.trace, &mut job.started);
    let vm = &u.vm;
    !job.started.is_empty()
        || !vm.running()
        || u.cpus.iter().any(|l| {
            let runnable = vm
                .vcpus
                .get(l.c)
                .is_some_and(|vc| vc.state == VcpuState::Runnable);
            l.wanted && (!runnable || l.cpu.cycles() >= l.slice_end)
        })
}

/// Runs the VCPU on a unit's CPU `i` from `start` to `end`, as the
/// deterministic scheduler does (`Monitor::run_pcpu`), except that a VCPU
/// that waits or whose VM ended leaves the CPU idle until the quantum's end.
fn run_lent(u: &mut Unit, i: usize, bus: &mut Bus, job: &mut Job, start: u64, end: u64) {
    let mut generation = u.asids.generation;
    loop {
        let Some(l) = u.cpus.get_mut(i) else { return };
        if l.cpu.cycles() >= end {
            return;
        }
        let runnable = u.vm.running()
            && u.vm
                .vcpus
                .get(l.c)
                .is_some_and(|vc| vc.state == VcpuState::Runnable);
        if !runnable {
            l.cpu.idle_until(end);
            return;
        }
        let from = job.shootdowns.len();
        let mut seat = Seat {
            p: l.p,
            v: u.v,
            c: l.c,
            cpu: &mut l.cpu,
            bus: &mut *bus,
            vm: &mut u.vm,
            asids: &mut u.asids,
            trace: &mut job.trace,
            shootdowns: &mut job.shootdowns,
            tlb_cursor: &mut l.tlb_cursor,
            debug: None,
            cost: job.cost,
        };
        let outcome = seat.step(end);
        if outcome == Outcome::Budget && !seat.vm.io.ring.is_empty() {
            // The end of a VCPU's turn delivers its VM's ring.
            seat.with_ctx(|ctx, _| coalesce::ring::flush(ctx));
        }
        // What this CPU shot down, the unit's others drop now; the other
        // threads' CPUs hold none of this VM's entries until the boundary.
        for &(done, space, what) in job.shootdowns.get(from..).unwrap_or_default() {
            for o in u.cpus.iter_mut().filter(|o| o.p != done) {
                tlbctl::shoot_down(&mut o.cpu.core, &u.asids, space, what);
            }
        }
        if u.asids.generation != generation {
            generation = u.asids.generation;
            for o in &mut u.cpus {
                tlbctl::flush_real_tlb(&mut o.cpu.core);
            }
        }
        match outcome {
            Outcome::Resume => {}
            Outcome::Board => crate::sched::vm_board_actions(
                &mut u.vm,
                u.v,
                start,
                &mut job.trace,
                &mut job.started,
            ),
            Outcome::Wait => {
                job.trace.emit(MonEvent::Wait);
                if let Some(l) = u.cpus.get_mut(i) {
                    l.cpu.idle_until(end);
                }
                return;
            }
            Outcome::Budget | Outcome::Debug => return,
        }
    }
}
