//! The parallel mode (docs/parallel.md): the machine's CPUs spread over
//! host threads, synchronized at quantum boundaries.
//!
//! CPU `i` runs on group `i % threads`. Group 0 runs on the calling thread
//! with the machine's own bus; every other group has a worker thread with a
//! bus of its own (`Bus::for_thread`: the same memory, its own decoded code
//! and blocks). A quantum hands each worker its CPUs by value over a
//! channel, runs group 0, and takes them back: between quanta the machine
//! is whole again (its CPUs, its board), so everything that looks at it
//! there (console, progress, statistics, the trace) works as in the
//! deterministic mode. A worker with nothing to do blocks on its channel;
//! a CPU idle on WAIT skips to the quantum's end (`Core::handle_event`), so
//! no host thread spins for an idle CPU.
//!
//! During a quantum the board sits behind one lock (device accesses are
//! rare and short). Board actions are collected in [`Control`] and applied
//! by the machine at the boundary: a halt stops the halting CPU at once and
//! every other CPU at its next return to the scheduler (at the latest at
//! the end of the quantum); a started CPU starts at the next quantum.

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::cpu::{Cpu, RunExit, RunState};
use crate::dev::{Board, BoardAction};
use crate::mem::Bus;
use crate::workers::Pool;

/// What the CPUs asked of the machine during a quantum.
#[derive(Debug, Default)]
struct Control {
    halting: AtomicBool,
    /// The first halt's status.
    halt: Mutex<Option<u32>>,
    /// CPUs to start at the boundary: (cpu, pc, sp).
    starts: Mutex<Vec<(usize, u64, u64)>>,
}

impl Control {
    /// Takes the board's actions (the caller's CPU stopped for them).
    fn take_actions(&self, bus: &mut Bus) {
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

struct Job {
    cpus: Vec<Cpu>,
    end: u64,
    traced: bool,
}

/// The worker threads of a machine in the parallel mode.
pub(crate) struct Workers {
    pool: Pool<Job>,
    board: Arc<Mutex<Board>>,
    control: Arc<Control>,
    /// The CPU groups, kept between quanta for their allocations.
    groups: Vec<Vec<Cpu>>,
    /// Per CPU: the group (and so the bus) it last ran on.
    home: Vec<usize>,
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
        let control = Arc::new(Control::default());
        let work: Vec<_> = (1..threads.max(1))
            .map(|_| {
                let mut own = bus.for_thread(Arc::clone(&board));
                let control = Arc::clone(&control);
                move |job: &mut Job| {
                    run_group(&mut job.cpus, &mut own, job.end, job.traced, &control);
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
        }
    }

    /// Runs `cpus` to `end` on the threads, group 0 on this one with `bus`
    /// (whose board is lent to the threads meanwhile). Returns the halt
    /// status if a CPU halted, and the CPUs to start.
    pub(crate) fn quantum(
        &mut self,
        cpus: &mut Vec<Cpu>,
        bus: &mut Bus,
        end: u64,
        traced: bool,
    ) -> (Option<u32>, Vec<(usize, u64, u64)>) {
        self.spread(cpus, &bus.board);
        *self.board.lock() = std::mem::take(&mut bus.board);
        let mut sent = 0;
        for w in 0..self.pool.workers() {
            let Some(cpus) = self.groups.get_mut(w + 1).filter(|c| !c.is_empty()) else {
                continue;
            };
            let job = Job {
                cpus: std::mem::take(cpus),
                end,
                traced,
            };
            self.pool.send(w, job);
            sent += 1;
        }
        if let Some(mine) = self.groups.first_mut() {
            run_group(mine, bus, end, traced, &self.control);
        }
        for _ in 0..sent {
            let (w, back) = self.pool.recv();
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
        let halt = self.control.halt.lock().take();
        let starts = std::mem::take(&mut *self.control.starts.lock());
        (halt, starts)
    }

    /// Deals the CPUs that will run this quantum round-robin over the
    /// groups; the idle ones (parked, stopped, paused, on WAIT) go to group
    /// 0, the calling thread, where they cost a few instructions, so a
    /// worker is woken only for a CPU with work. A CPU that changes groups
    /// changes buses: its fetch cache points into the old bus's code.
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
