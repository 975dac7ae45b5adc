//! The parallel mode (docs/parallel.md): the machine's CPUs spread over
//! host threads, synchronized at quantum boundaries.
//!
//! CPU `i` runs on group `i % threads`. Group 0 runs on the calling thread
//! with the machine's own bus; every other group has a worker thread with a
//! bus of its own (`Bus::for_thread`: the same memory, its own decoded code
//! and blocks). A *batch* of quanta (up to [`BATCH_CYCLES`]) hands each
//! worker its CPUs by value over a channel, runs group 0, and takes them
//! back: between batches the machine is whole again (its CPUs, its board),
//! so everything that looks at it there (console, progress, statistics,
//! the trace) works as in the deterministic mode.
//!
//! Inside a batch a thread whose CPUs work does not wait for the others at
//! each quantum's end, up to [`LEAD`](crate::workers::LEAD) quanta ahead
//! of the slowest: two CPUs' quanta of equal cycles often take the host
//! unequal time (one CPU in a sieve of byte stores, the other in a
//! multiply loop), so meeting at every end made each thread wait for the
//! other about a sixth of the time. Each thread publishes the quantum it
//! finished; whichever thread sees that every thread has finished quantum
//! `k` moves the board to `k`'s end, in order, under the board's lock, so
//! devices see every boundary in their own time, only later in host time.
//! While some thread's CPUs did nothing in their last quantum (parked,
//! paused, idle on WAIT), no thread runs ahead: each begins a quantum only
//! when every thread has finished the one before, so an idle CPU sees an
//! IPI or a device interrupt at its next quantum's start, no later in
//! guest time than before, and a kernel's CPUs that wait for work get it
//! as they did (tests/kestrel.rs: with only the idle thread held back, a
//! busy CPU ran far ahead and one CPU of four did no smp work). Nor does a
//! thread run ahead while the slowest seems descheduled by the host
//! ([`Pace`]). A CPU that asks something of the machine (a halt, a start,
//! a pause) cuts the batch after the furthest quantum any thread has begun
//! ([`Cut`]): every thread stops there, and the machine acts at that
//! boundary. A worker with nothing to do blocks on its channel, and a
//! thread waiting for another looks briefly, then blocks ([`Waker`]).
//!
//! During a batch the board sits behind one lock (device accesses are
//! rare and short). Board actions are collected in [`Control`] and applied
//! by the machine at the batch's end: a halt stops the halting CPU at once
//! and every other CPU at its next return to the scheduler (at the latest
//! at the end of its quantum); a started CPU starts at the next batch.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize};
use std::sync::Arc;

use crossbeam::utils::CachePadded;
use parking_lot::Mutex;

use crate::cpu::{Cpu, RunExit, RunState};
use crate::dev::{Board, BoardAction};
use crate::machine::{quantum_end, BATCH_CYCLES};
use crate::mem::Bus;
use crate::workers::{Cut, Pace, Pool, Waker};

/// What the CPUs asked of the machine during a batch, and how far its
/// threads are.
struct Control {
    halting: AtomicBool,
    /// The first halt's status.
    halt: Mutex<Option<u32>>,
    /// CPUs to start at the boundary: (cpu, pc, sp).
    starts: Mutex<Vec<(usize, u64, u64)>>,
    /// Where the batch ends.
    cut: Cut,
    /// Per group: the last quantum of the batch it finished (`u32::MAX`
    /// for a group without CPUs this batch). Each on a cache line of its
    /// own: the other threads read it at every quantum's end.
    done: Box<[CachePadded<AtomicU32>]>,
    /// The last quantum every group finished, whose end the board has
    /// reached (written under the board's lock, so in order).
    met: CachePadded<AtomicU32>,
    /// Groups whose CPUs did nothing in their last quantum: while there is
    /// one, no group runs ahead.
    idle: CachePadded<AtomicUsize>,
    waker: Waker,
}

impl Control {
    fn new(groups: usize) -> Control {
        Control {
            halting: AtomicBool::new(false),
            halt: Mutex::new(None),
            starts: Mutex::new(Vec::new()),
            cut: Cut::new(1),
            done: (0..groups)
                .map(|_| CachePadded::new(AtomicU32::new(0)))
                .collect(),
            met: CachePadded::new(AtomicU32::new(0)),
            idle: CachePadded::new(AtomicUsize::new(0)),
            waker: Waker::default(),
        }
    }

    /// Group `g` finished quantum `q` of `batch`: if that completes
    /// quanta every group has finished, the board moves to their ends.
    fn finished(&self, g: usize, q: u32, batch: &Batch, bus: &mut Bus) {
        // SeqCst, store and loads: two threads finishing at once each store
        // their word and then read the other's, and at least one must see
        // both (with release and acquire both could read the old words,
        // and two idle threads would then wait for each other for ever).
        if let Some(d) = self.done.get(g) {
            d.store(q, SeqCst);
        }
        let all = self.done.iter().map(|d| d.load(SeqCst)).min();
        let all = all.unwrap_or(q).min(q);
        if all <= self.met.load(Acquire) {
            return;
        }
        bus.with_board(|b| {
            // Under the board's lock: `met` only grows, one thread at a
            // time, so the board sees each end once and in order.
            let met = self.met.load(Relaxed);
            for k in met.saturating_add(1)..=all {
                b.advance(batch.end(k));
            }
            if all > met {
                self.waker.publish(&self.met, all);
            }
        });
    }

    /// Takes the board's actions (the caller's CPU stopped for them): the
    /// batch ends with the furthest quantum begun.
    fn take_actions(&self, bus: &mut Bus) {
        self.cut.cut();
        for action in bus.with_board(Board::take_actions) {
            match action {
                BoardAction::Halt { status } => {
                    self.halt.lock().get_or_insert(status);
                    self.halting.store(true, Release);
                }
                BoardAction::StartCpu { cpu, pc, sp } => self.starts.lock().push((cpu, pc, sp)),
            }
        }
    }
}

/// A batch of quanta: from `now`, `quanta` of them at most, none past the
/// cycle limit, the trace on or off.
#[derive(Clone, Copy)]
pub(crate) struct Batch {
    now: u64,
    quantum: u64,
    max_cycles: Option<u64>,
    quanta: u32,
    traced: bool,
}

impl Batch {
    /// The batch from `now`: a traced one is one quantum, so that each
    /// quantum's events are merged at the machine's boundary; others are
    /// as many quanta as make [`BATCH_CYCLES`], the last ending at the
    /// cycle limit if it comes first.
    pub(crate) fn from(now: u64, quantum: u64, max_cycles: Option<u64>, traced: bool) -> Batch {
        let most = if traced {
            1
        } else {
            (BATCH_CYCLES / quantum.max(1)).clamp(1, u64::from(u32::MAX))
        };
        let mut b = Batch {
            now,
            quantum,
            max_cycles,
            quanta: 1,
            traced,
        };
        while u64::from(b.quanta) < most && max_cycles.is_none_or(|l| b.end(b.quanta) < l) {
            b.quanta += 1;
        }
        b
    }

    /// The end of quantum `k` (from 1) of the batch, as the machine's
    /// boundaries would put it.
    pub(crate) fn end(&self, k: u32) -> u64 {
        let mut end = self.now;
        for _ in 0..k {
            end = quantum_end(end, self.quantum, self.max_cycles);
        }
        end
    }
}

struct Job {
    cpus: Vec<Cpu>,
    group: usize,
    batch: Batch,
    /// What the batch gave its group: quanta run, and before how many of
    /// them it waited for the others.
    ran: Waits,
}

/// Quanta a group ran, and before how many of them it waited for the
/// slowest group (docs/parallel.md, "Split VMs run ahead"; the monitor
/// counts its split VMs' parts alike).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Waits {
    pub(crate) quanta: u64,
    pub(crate) waits: u64,
}

impl std::ops::AddAssign for Waits {
    fn add_assign(&mut self, o: Waits) {
        self.quanta += o.quanta;
        self.waits += o.waits;
    }
}

/// The worker threads of a machine in the parallel mode.
pub(crate) struct Workers {
    pool: Pool<Job>,
    board: Arc<Mutex<Board>>,
    control: Arc<Control>,
    /// The CPU groups, kept between batches for their allocations.
    groups: Vec<Vec<Cpu>>,
    /// Per CPU: the group (and so the bus) it last ran on.
    home: Vec<usize>,
    /// Every group's quanta and waits, over all batches.
    pub(crate) ran: Waits,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Workers({} groups)", self.groups.len())
    }
}

impl Workers {
    pub(crate) fn threads(&self) -> usize {
        self.groups.len()
    }

    /// `threads` groups (at least one) for a machine whose bus is `bus`,
    /// which is switched to the concurrent mode. Group `g` > 0 runs on
    /// worker `g - 1`.
    pub(crate) fn start(threads: usize, bus: &mut Bus) -> Workers {
        let board = Arc::new(Mutex::new(Board::default()));
        let control = Arc::new(Control::new(threads.max(1)));
        let work: Vec<_> = (1..threads.max(1))
            .map(|_| {
                let mut own = bus.for_thread(Arc::clone(&board));
                let control = Arc::clone(&control);
                move |job: &mut Job| {
                    job.ran = run_batch(&mut job.cpus, job.group, &mut own, job.batch, &control);
                }
            })
            .collect();
        bus.set_concurrent(Some(Arc::clone(&board)));
        Workers {
            groups: (0..threads.max(1)).map(|_| Vec::new()).collect(),
            home: Vec::new(),
            pool: Pool::start("parallel-mode", work),
            board,
            control,
            ran: Waits::default(),
        }
    }

    /// Runs `cpus` through `batch` on the threads, group 0 on this one
    /// with `bus` (whose board is lent to the threads meanwhile). Returns
    /// where the batch ended (the end of its last quantum, whose board
    /// boundary is the caller's), the halt status if a CPU halted, and the
    /// CPUs to start.
    pub(crate) fn batch(
        &mut self,
        cpus: &mut Vec<Cpu>,
        bus: &mut Bus,
        batch: Batch,
    ) -> (u64, Option<u32>, Vec<(usize, u64, u64)>) {
        self.spread(cpus, &bus.board);
        *self.board.lock() = std::mem::take(&mut bus.board);
        let c = &self.control;
        c.cut.begin(batch.quanta);
        c.met.store(0, Relaxed);
        c.idle.store(0, Relaxed);
        for (g, d) in c.done.iter().enumerate() {
            let runs = g == 0 || self.groups.get(g).is_some_and(|c| !c.is_empty());
            d.store(if runs { 0 } else { u32::MAX }, Relaxed);
        }
        let mut sent = 0;
        for w in 0..self.pool.workers() {
            let Some(cpus) = self.groups.get_mut(w + 1).filter(|c| !c.is_empty()) else {
                continue;
            };
            let job = Job {
                cpus: std::mem::take(cpus),
                group: w + 1,
                batch,
                ran: Waits::default(),
            };
            self.pool.send(w, job);
            sent += 1;
        }
        if let Some(mine) = self.groups.first_mut() {
            self.ran += run_batch(mine, 0, bus, batch, &self.control);
        }
        for _ in 0..sent {
            let (w, back) = self.pool.recv();
            self.ran += back.ran;
            if let Some(slot) = self.groups.get_mut(w + 1) {
                *slot = back.cpus;
            }
        }
        for g in &mut self.groups {
            cpus.append(g);
        }
        cpus.sort_by_key(|c| c.id);
        bus.board = std::mem::take(&mut *self.board.lock());
        self.control.halting.store(false, Release);
        let end = batch.end(self.control.cut.last());
        let halt = self.control.halt.lock().take();
        let starts = std::mem::take(&mut *self.control.starts.lock());
        (end, halt, starts)
    }

    /// Deals the CPUs that will run this batch round-robin over the
    /// groups; the idle ones (parked, stopped, paused) go to group 0, the
    /// calling thread, where they cost a few instructions, so a worker is
    /// woken only for a CPU with work. A CPU that changes groups changes
    /// buses: its fetch cache points into the old bus's code.
    fn spread(&mut self, cpus: &mut Vec<Cpu>, board: &Board) {
        let n = self.groups.len();
        self.home.resize(cpus.len().max(self.home.len()), 0);
        let mut busy = 0;
        for mut cpu in cpus.drain(..) {
            let runs = cpu.state == RunState::Running && !board.paused(cpu.id);
            let g = if runs { busy % n } else { 0 };
            busy += usize::from(runs);
            if let Some(home) = self.home.get_mut(cpu.id) {
                if *home != g {
                    *home = g;
                    cpu.core.context_changed();
                }
            }
            if let Some(group) = self.groups.get_mut(g) {
                group.push(cpu);
            }
        }
    }
}

/// Runs group `g`'s CPUs through `batch`, quantum after quantum, as long as
/// the batch's [`Cut`] lets it, without waiting for the other groups
/// while every group's CPUs work (see the module comment).
fn run_batch(cpus: &mut [Cpu], g: usize, bus: &mut Bus, batch: Batch, control: &Control) -> Waits {
    let mut idle = false;
    let mut pace = Pace::default();
    let mut ran = Waits::default();
    let mut q = 1;
    while control.cut.claim(q) {
        let met = control.met.load(Acquire);
        let lead = pace.lead(met, control.idle.load(Acquire) > 0);
        ran.quanta += 1;
        if q > lead && met < q - lead {
            ran.waits += 1;
            control.waker.wait(&control.met, q - lead);
        }
        let before: u64 = cpus.iter().map(|c| c.instret).sum();
        run_group(cpus, bus, batch.end(q), batch.traced, control);
        pace.ran();
        let now_idle = cpus.iter().map(|c| c.instret).sum::<u64>() == before;
        if now_idle != idle {
            idle = now_idle;
            if idle {
                control.idle.fetch_add(1, Release);
            } else {
                control.idle.fetch_sub(1, Release);
            }
        }
        control.finished(g, q, &batch, bus);
        q += 1;
    }
    ran
}

/// Runs one group's CPUs to `end`, in CPU order, as the deterministic
/// scheduler runs each CPU (`Machine::run_quantum`).
fn run_group(cpus: &mut [Cpu], bus: &mut Bus, end: u64, traced: bool, control: &Control) {
    for cpu in cpus.iter_mut() {
        loop {
            if control.halting.load(Acquire) {
                break;
            }
            let id = cpu.id;
            if bus.with_board(|b| b.paused(id)) {
                cpu.cycles = cpu.cycles.max(end);
                break;
            }
            let exit = if traced {
                cpu.run::<true>(bus, end)
            } else {
                cpu.run::<false>(bus, end)
            };
            match exit {
                RunExit::Budget | RunExit::Exception(_) | RunExit::Debug => break,
                RunExit::NotRunning => {
                    cpu.cycles = cpu.cycles.max(end);
                    break;
                }
                RunExit::Board => control.take_actions(bus),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch is BATCH_CYCLES of quanta, one when traced, and its quanta
    /// end where the machine's boundaries would, the last at the cycle
    /// limit.
    #[test]
    fn a_batch_ends_its_quanta_where_the_machine_would_and_stops_at_the_limit() {
        let b = Batch::from(5_000, 10_000, None, false);
        assert_eq!(b.quanta, 100);
        assert_eq!(b.end(1), 15_000);
        assert_eq!(b.end(100), 1_005_000);
        assert_eq!(Batch::from(0, 10_000, None, true).quanta, 1);
        assert_eq!(Batch::from(0, 3_000_000, None, false).quanta, 1);
        let b = Batch::from(20_000, 10_000, Some(53_457), false);
        assert_eq!(b.quanta, 4);
        assert_eq!(b.end(3), 50_000);
        assert_eq!(b.end(4), 53_457);
    }
}
