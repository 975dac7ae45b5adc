//! The machine: CPUs on shared memory with the board, interleaved
//! deterministically in fixed quanta of simulated cycles on one host thread.

use crate::config::Topology;
use crate::cpu::{Cpu, RunExit, RunState};
use crate::dev::{Board, BoardAction};
use crate::mem::Bus;
use crate::obs::Event;

/// Largest supported CPU count (the mp device addresses CPUs by number).
pub const MAX_CPUS: usize = 64;

/// The shape of the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineConfig {
    pub ncpus: usize,
    pub ram_bytes: u64,
    /// Cycles each CPU runs before the next one gets its turn.
    pub quantum: u64,
    /// Stop a runaway guest after this many cycles (per CPU clock).
    pub max_cycles: Option<u64>,
    /// How the CPUs execute (docs/tiers.md); every tier gives the same
    /// registers, memory, cycles and events.
    pub tier: Tier,
}

/// An execution tier (`../shared/docs/design.md` §8). Every tier keeps the
/// same cycle accounting; tier 1 is the reference.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Tier {
    /// The interpreter: one decoded instruction at a time.
    Interp,
    /// Superblocks with precomputed costs, events checked per block
    /// (falling back to the interpreter near an event).
    #[default]
    Blocks,
    /// Tier 2 with its hot blocks compiled to native code (`disco-jit`).
    Compiled,
}

impl Tier {
    /// The tier numbered `n` (1, 2 or 3), as `--tier` and the `tier` key
    /// spell it.
    pub(crate) fn from_number(n: u64) -> Option<Tier> {
        match n {
            1 => Some(Tier::Interp),
            2 => Some(Tier::Blocks),
            3 => Some(Tier::Compiled),
            _ => None,
        }
    }

    pub fn number(self) -> u8 {
        match self {
            Tier::Interp => 1,
            Tier::Blocks => 2,
            Tier::Compiled => 3,
        }
    }
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            ncpus: 1,
            ram_bytes: 32 << 20,
            quantum: 10_000,
            max_cycles: None,
            tier: Tier::default(),
        }
    }
}

/// The machine cycles a batch of the parallel mode runs at most between
/// two boundaries of the main thread (docs/parallel.md), the bare
/// machine's and the monitor's: a hundred of the default 10,000-cycle
/// quanta, a few ms of host time, so the hand-off to the threads costs a
/// few per cent of it, while Ctrl-C, console output and a halt in another
/// VM still reach the main thread within a few ms.
pub const BATCH_CYCLES: u64 = 1_000_000;

/// Where a quantum that starts at `now` ends: `quantum` cycles on, or at
/// the cycle limit if that comes first, so a run stops at its limit and not
/// at the next quantum boundary past it.
pub fn quantum_end(now: u64, quantum: u64, max_cycles: Option<u64>) -> u64 {
    let end = now.saturating_add(quantum.max(1));
    match max_cycles {
        Some(limit) if limit > now && limit < end => limit,
        _ => end,
    }
}

/// Why the machine stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The guest wrote the halt register.
    Halted { status: u32 },
    /// `max_cycles` elapsed first.
    CycleLimit { cycles: u64 },
    /// Every CPU is parked or stopped: nothing can ever run again.
    Idle,
    /// A debugger breakpoint or step stopped `cpu`; the next
    /// `run_quantum` resumes exactly there.
    Debug { cpu: usize },
}

/// Receives the events of traced runs.
pub trait Observer {
    fn event(&mut self, cpu: usize, cycle: u64, event: &Event);
    /// The run is over: flush what is buffered.
    fn finish(&mut self) {}
}

pub struct Machine {
    pub config: MachineConfig,
    pub cpus: Vec<Cpu>,
    pub bus: Bus,
    /// The machine clock: every running CPU has reached it.
    pub now: u64,
    pub halted: Option<u32>,
    /// NUMA nodes of the CPUs and of memory (one node unless configured;
    /// recorded for the cycle model, which charges no distance yet).
    pub topology: Topology,
    observers: Vec<Box<dyn Observer>>,
    /// A quantum stopped by the debugger: its end and the CPU to resume.
    paused: Option<(u64, usize)>,
    /// The parallel mode's threads (`crate::parallel`), if it is on.
    workers: Option<crate::parallel::Workers>,
}

impl Machine {
    pub fn new(config: MachineConfig, board: Board) -> Machine {
        let ncpus = config.ncpus.clamp(1, MAX_CPUS);
        let bus = Bus::new(config.ram_bytes, ncpus, board);
        let mut cpus: Vec<Cpu> = (0..ncpus).map(Cpu::new).collect();
        for c in &mut cpus {
            c.set_tier(config.tier);
        }
        Machine {
            cpus,
            bus,
            now: 0,
            halted: None,
            topology: Topology::uniform(ncpus, config.ram_bytes),
            observers: Vec::new(),
            paused: None,
            workers: None,
            config,
        }
    }

    /// Adds an observer; any observer turns on the traced loop.
    pub fn observe(&mut self, o: Box<dyn Observer>) {
        self.observers.push(o);
    }

    /// Console output produced since the last call.
    pub fn take_console(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bus.board.console_out)
    }

    /// Runs until the guest halts, the cycle limit passes, or nothing can run.
    pub fn run(&mut self) -> Exit {
        loop {
            if let Some(exit) = self.run_quantum() {
                return exit;
            }
        }
    }

    /// Runs the CPUs on `threads` host threads from the next quantum on
    /// (docs/parallel.md); `None` (or no call) is the deterministic mode.
    /// More threads than CPUs are not started.
    pub fn set_parallel(&mut self, threads: Option<usize>) {
        self.workers = None;
        self.bus.set_concurrent(None);
        if let Some(n) = threads {
            let n = n.clamp(1, self.cpus.len().max(1));
            self.workers = Some(crate::parallel::Workers::start(n, &mut self.bus));
        }
        for c in &mut self.cpus {
            // Their fetch caches point into the old decoded code.
            c.core.context_changed();
        }
    }

    /// The host threads of the parallel mode, `None` in the deterministic
    /// mode.
    pub fn parallel_threads(&self) -> Option<usize> {
        self.workers.as_ref().map(crate::parallel::Workers::threads)
    }

    /// In the parallel mode: the quanta the threads ran, each thread's
    /// counted, and before how many of them a thread waited for the
    /// slowest (docs/parallel.md, "Split VMs run ahead").
    pub fn parallel_waits(&self) -> Option<(u64, u64)> {
        let ran = self.workers.as_ref()?.ran;
        Some((ran.quanta, ran.waits))
    }

    /// Runs every CPU for one quantum, in CPU order (or, in the parallel
    /// mode, on their threads, for a batch of quanta: docs/parallel.md).
    pub fn run_quantum(&mut self) -> Option<Exit> {
        if let Some(status) = self.halted {
            return Some(Exit::Halted { status });
        }
        if self.workers.is_some() && self.paused.is_none() {
            return self.run_quantum_parallel();
        }
        let (end, first) = self.paused.take().unwrap_or_else(|| {
            let c = &self.config;
            (quantum_end(self.now, c.quantum, c.max_cycles), 0)
        });
        let traced = !self.observers.is_empty() || self.cpus.iter().any(|c| c.debug.active);
        for i in first..self.cpus.len() {
            while let Some(cpu) = self.cpus.get_mut(i) {
                if self.bus.board.paused(i) {
                    // Paused through mp: time passes, nothing runs.
                    cpu.cycles = cpu.cycles.max(end);
                    break;
                }
                let exit = if traced {
                    cpu.run::<true>(&mut self.bus, end)
                } else {
                    cpu.run::<false>(&mut self.bus, end)
                };
                if traced {
                    self.drain_events(i);
                }
                match exit {
                    // Exits are off on the bare machine.
                    RunExit::Budget | RunExit::Exception(_) => break,
                    RunExit::NotRunning => {
                        if let Some(cpu) = self.cpus.get_mut(i) {
                            cpu.cycles = cpu.cycles.max(end);
                        }
                        break;
                    }
                    RunExit::Board => {
                        self.apply_board_actions();
                        if let Some(status) = self.halted {
                            return Some(Exit::Halted { status });
                        }
                    }
                    RunExit::Debug => {
                        self.paused = Some((end, i));
                        return Some(Exit::Debug { cpu: i });
                    }
                }
            }
        }
        self.end_quantum(end)
    }

    /// A batch of quanta of the parallel mode: the CPUs run on their
    /// threads, then what they asked for is applied here.
    fn run_quantum_parallel(&mut self) -> Option<Exit> {
        let c = &self.config;
        let traced = !self.observers.is_empty();
        let batch = crate::parallel::Batch::from(self.now, c.quantum, c.max_cycles, traced);
        let workers = self.workers.as_mut()?;
        let (end, halt, starts) = workers.batch(&mut self.cpus, &mut self.bus, batch);
        if traced {
            // Per-CPU buffers merged by cycle, ties in CPU order.
            let mut merged: Vec<(u64, usize, Event)> = Vec::new();
            for c in &mut self.cpus {
                let id = c.id;
                merged.extend(c.events.drain(..).map(|(cycle, e)| (cycle, id, e)));
            }
            merged.sort_by_key(|&(cycle, cpu, _)| (cycle, cpu));
            for (cycle, cpu, e) in &merged {
                for o in &mut self.observers {
                    o.event(*cpu, *cycle, e);
                }
            }
        }
        for (cpu, pc, sp) in starts {
            self.start_cpu(cpu, pc, sp);
        }
        if let Some(status) = halt {
            self.halt(status);
            return Some(Exit::Halted { status });
        }
        self.end_quantum(end)
    }

    /// The machine clock reaches `end`: devices catch up, and the run ends
    /// if the cycle limit passed or nothing can run any more.
    fn end_quantum(&mut self, end: u64) -> Option<Exit> {
        self.now = end;
        self.bus.board.advance(end);
        if let Some(limit) = self.config.max_cycles {
            if self.now >= limit {
                return Some(Exit::CycleLimit { cycles: self.now });
            }
        }
        let board = &self.bus.board;
        if self.cpus.iter().enumerate().all(|(i, c)| {
            matches!(c.state, RunState::Parked | RunState::Stopped) || board.paused(i)
        }) {
            return Some(Exit::Idle);
        }
        None
    }

    fn drain_events(&mut self, i: usize) {
        let Some(cpu) = self.cpus.get_mut(i) else {
            return;
        };
        let events = std::mem::take(&mut cpu.events);
        for (cycle, e) in &events {
            for o in &mut self.observers {
                o.event(i, *cycle, e);
            }
        }
    }

    fn apply_board_actions(&mut self) {
        for action in self.bus.board.take_actions() {
            match action {
                BoardAction::Halt { status } => self.halt(status),
                BoardAction::StartCpu { cpu, pc, sp } => self.start_cpu(cpu, pc, sp),
            }
        }
    }

    fn halt(&mut self, status: u32) {
        self.halted = Some(status);
        for c in &mut self.cpus {
            c.state = RunState::Stopped;
        }
    }

    fn start_cpu(&mut self, cpu: usize, pc: u64, sp: u64) {
        if let Some(c) = self.cpus.get_mut(cpu) {
            if c.state == RunState::Parked {
                c.boot(pc, sp);
            }
        }
    }

    /// Lets every observer flush its output.
    pub fn flush_observers(&mut self) {
        for o in &mut self.observers {
            o.finish();
        }
    }

    /// Statistics of every CPU and their sum.
    pub fn stats(&self) -> MachineStats {
        let per_cpu: Vec<CpuSummary> = self.cpus.iter().map(CpuSummary::of).collect();
        let mut total = CpuSummary::default();
        for c in &per_cpu {
            total.instructions += c.instructions;
            total.cycles = total.cycles.max(c.cycles);
            total.tlb_refills += c.tlb_refills;
            total.interrupts += c.interrupts;
            total.idle_cycles += c.idle_cycles;
            for (t, n) in total.exceptions.iter_mut().zip(c.exceptions.iter()) {
                *t += n;
            }
        }
        MachineStats { per_cpu, total }
    }

    /// Total instructions retired by all CPUs.
    pub fn instructions(&self) -> u64 {
        self.cpus.iter().map(|c| c.instret).sum()
    }

    /// Runs of a block before tier 3 compiles it (docs/tiers.md); tests
    /// lower it so that nearly every block runs compiled.
    pub fn set_compile_threshold(&mut self, runs: u32) {
        self.bus.blocks.tier3.threshold = runs;
    }

    /// Where tier 3 compiles (docs/tiers.md): on the compiler thread
    /// (the default) or, for tests, on the CPU's thread or late.
    pub fn set_compile_mode(&mut self, mode: crate::CompileMode) {
        self.bus.blocks.tier3.mode = mode;
    }

    /// Waits until tier 3's compiler thread has compiled every block (and
    /// loop) asked for and installs the code, so that it runs from here
    /// on (tests: code installed at a chosen point of a run); the
    /// functions installed since the machine was made (deterministic mode:
    /// the first thread's).
    pub fn wait_for_compiles(&mut self) -> u64 {
        self.bus.blocks.tier3.wait()
    }

    /// Blocks tier 3 has sent to the compiler (the same in every mode).
    pub fn blocks_compiled(&self) -> u64 {
        self.bus.blocks.tier3.compiled
    }
}

/// One CPU's counters (or, in [`MachineStats::total`], the sum over CPUs,
/// with `cycles` the machine's elapsed time: the largest CPU clock).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuSummary {
    pub instructions: u64,
    pub cycles: u64,
    /// Exceptions taken, indexed by ExcCode (interrupts included, as Int).
    pub exceptions: [u64; 32],
    pub tlb_refills: u64,
    pub interrupts: u64,
    /// Cycles spent idle on WAIT.
    pub idle_cycles: u64,
}

impl CpuSummary {
    fn of(c: &Cpu) -> CpuSummary {
        CpuSummary {
            instructions: c.instret,
            cycles: c.cycles,
            exceptions: c.stats.exceptions,
            tlb_refills: c.stats.tlb_refills,
            interrupts: c.stats.interrupts,
            idle_cycles: c.stats.wait_cycles,
        }
    }
}

/// What `--stats` reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MachineStats {
    pub per_cpu: Vec<CpuSummary>,
    pub total: CpuSummary,
}
