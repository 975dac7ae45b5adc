//! The run of one kernel that may move between the bare machine and the
//! monitor: [`Host`] owns whichever runs, steps it a quantum at a time and
//! carries out the timeline's actions at the boundaries (`timeline`,
//! `virt`), keeping the statistics of each phase.

use sim::hv::{Exit, Machine};

use crate::cost::Cost;
use crate::memstate::MemoryState;
use crate::remap::{Moved, RemapIndex, RemapMode};
use crate::spec::VmSpec;
use crate::timeline::{Action, At, Timeline};
use crate::virt::{devirtualize_remapped, virtualize_with, Switch};
use crate::{Monitor, MonitorExit, VmEnd};

/// Whichever runs the kernel now.
pub enum Running {
    Native(Box<Machine>),
    Virtual(Box<Monitor>),
}

/// Why the run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostExit {
    /// The kernel wrote the halt register (natively or in its VM).
    Halted(u32),
    CycleLimit(u64),
    /// Natively, every CPU is parked, paused or stopped.
    Idle,
    /// The monitor stopped the VM (the diagnostic says why).
    Stopped(String),
}

/// One stretch of the run on the bare machine or under the monitor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Phase {
    pub virtual_: bool,
    pub start: u64,
    pub end: u64,
    /// Exits to the monitor (0 on the bare machine: exits are off).
    pub exits: u64,
    pub monitor_cycles: u64,
    /// Cycles the guest ran (natively: every CPU's cycles, idle included).
    pub guest_cycles: u64,
    /// Instructions retired by the CPUs (natively) or the guest (virtual).
    pub instructions: u64,
    /// vm0's memory in a virtual phase.
    pub memory: Option<MemoryState>,
}

/// The counters a phase is the difference of, since the machine or the
/// monitor started.
#[derive(Clone, Debug, Default)]
struct Mark {
    exits: u64,
    monitor_cycles: u64,
    guest_cycles: u64,
    instructions: u64,
}

pub struct Host {
    running: Option<Running>,
    timeline: Timeline,
    console: Vec<u8>,
    /// Per VM of the monitor, a started VM's console bytes not yet ended
    /// by a newline (vm0's go straight to `console`).
    partial: Vec<Vec<u8>>,
    lines: Vec<String>,
    /// The switches' logs: (cycle, line).
    switch_log: Vec<(u64, String)>,
    phases: Vec<Phase>,
    start: u64,
    mark: Mark,
    /// Whether VM ends have been seen, per VM of the current monitor.
    ended: Vec<bool>,
    /// How remapping finds a machine page's user.
    pub remap_index: RemapIndex,
    /// The monitor's cost table, switches included (`--cost`).
    pub cost: Cost,
    /// The completion-interrupt latency of a started VM's disk (`--disk-irq`).
    pub disk_irq: Option<u64>,
    /// Whether the guest runs while pages move.
    pub remap_mode: RemapMode,
    /// Entries due while a concurrent remapping was under way: they run
    /// once it is done (the pmap is frozen until then).
    deferred: Vec<At>,
    /// The entry whose concurrent remapping is under way, and its start.
    pending: Option<(At, u64)>,
}

fn totals(r: &Running) -> Mark {
    match r {
        // Natively: every CPU's cycles, idle included; exits are off.
        Running::Native(m) => Mark {
            guest_cycles: m.cpus.iter().map(|c| c.cycles()).sum(),
            instructions: m.cpus.iter().map(|c| c.instret()).sum(),
            ..Mark::default()
        },
        Running::Virtual(mon) => {
            let mut t = Mark::default();
            for st in mon.vm_stats() {
                t.exits += st.total_exits();
                t.monitor_cycles += st.monitor_cycles;
                t.guest_cycles += st.guest_cycles;
                t.instructions += st.guest_insns;
            }
            t
        }
    }
}

impl Host {
    /// A kernel loaded into `machine`, with the timeline to carry out.
    pub fn new(machine: Machine, timeline: Timeline) -> Host {
        let running = Running::Native(Box::new(machine));
        Host {
            mark: totals(&running),
            start: match &running {
                Running::Native(m) => m.now,
                Running::Virtual(mon) => mon.now(),
            },
            running: Some(running),
            timeline,
            console: Vec::new(),
            partial: Vec::new(),
            lines: Vec::new(),
            switch_log: Vec::new(),
            phases: Vec::new(),
            ended: Vec::new(),
            remap_index: RemapIndex::default(),
            cost: crate::cost::COST,
            disk_irq: None,
            remap_mode: RemapMode::default(),
            deferred: Vec::new(),
            pending: None,
        }
    }

    pub fn running(&self) -> Option<&Running> {
        self.running.as_ref()
    }

    /// The machine, wherever it is now.
    pub fn machine(&self) -> Option<&Machine> {
        match self.running.as_ref()? {
            Running::Native(m) => Some(m),
            Running::Virtual(mon) => Some(&mon.machine),
        }
    }

    pub fn now(&self) -> u64 {
        match &self.running {
            Some(Running::Native(m)) => m.now,
            Some(Running::Virtual(mon)) => mon.now(),
            None => 0,
        }
    }

    /// Console input for the kernel, wherever its board is.
    pub fn push_input(&mut self, bytes: &[u8]) {
        match &mut self.running {
            Some(Running::Native(m)) => m.bus.board.console.push_input(bytes),
            Some(Running::Virtual(mon)) => {
                if let Some(vm) = mon.vms.first_mut() {
                    vm.board.console.push_input(bytes);
                }
            }
            None => {}
        }
    }

    /// The kernel's console output since the last call.
    pub fn take_console(&mut self) -> Vec<u8> {
        self.collect_console();
        std::mem::take(&mut self.console)
    }

    /// One line per timeline action carried out or refused since the last
    /// call.
    pub fn take_lines(&mut self) -> Vec<String> {
        std::mem::take(&mut self.lines)
    }

    /// What each switch since the last call captured and handed over,
    /// line by line with its cycle (see [`Switch::log`]).
    pub fn take_switch_log(&mut self) -> Vec<(u64, String)> {
        std::mem::take(&mut self.switch_log)
    }

    fn collect_console(&mut self) {
        match &mut self.running {
            Some(Running::Native(m)) => self.console.append(&mut m.take_console()),
            Some(Running::Virtual(mon)) => {
                let mut out = mon.take_console(0);
                self.console.append(&mut out);
                // A started VM's lines carry its name, as under `--vm`.
                self.partial.resize(mon.vms.len(), Vec::new());
                for v in 1..mon.vms.len() {
                    let out = mon.take_console(v);
                    let (Some(buf), Some(vm)) = (self.partial.get_mut(v), mon.vms.get(v)) else {
                        continue;
                    };
                    buf.extend_from_slice(&out);
                    while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                        self.console
                            .extend_from_slice(format!("[{}] ", vm.name).as_bytes());
                        self.console.extend(buf.drain(..=nl));
                    }
                }
            }
            None => {}
        }
    }

    /// Runs one quantum, then the timeline entries due at its end.
    pub fn run_quantum(&mut self) -> Option<HostExit> {
        let (exit, ended) = match self.running.as_mut()? {
            Running::Native(m) => (m.run_quantum().map(native_exit), Vec::new()),
            Running::Virtual(mon) => {
                let exit = mon.run_quantum();
                self.ended.resize(mon.vms.len(), false);
                let mut ended = Vec::new();
                for (seen, vm) in self.ended.iter_mut().zip(&mon.vms) {
                    if !*seen && !vm.running() {
                        *seen = true;
                        ended.push(vm.name.clone());
                    }
                }
                (exit.map(|e| monitor_exit(mon, e)), ended)
            }
        };
        self.collect_console();
        if exit.is_some() {
            self.flush_partial();
            self.close_phase();
            return exit;
        }
        let now = self.now();
        let mut due = self.timeline.take_due(now, &ended);
        self.deferred.append(&mut due);
        self.finish_remapping(now);
        while !self.remapping() && !self.deferred.is_empty() {
            let at = self.deferred.remove(0);
            self.apply(&at);
        }
        None
    }

    /// Whether a concurrent remapping is under way.
    pub fn remapping(&self) -> bool {
        matches!(&self.running, Some(Running::Virtual(mon)) if mon.remap.is_some())
    }

    /// Completes the entry whose concurrent remapping is done: its line,
    /// and for `devirtualize` the hand-back.
    fn finish_remapping(&mut self, now: u64) {
        let Some(Running::Virtual(mon)) = self.running.as_mut() else {
            return;
        };
        let Some(result) = crate::remap::take_done(mon) else {
            return;
        };
        let Some((at, start)) = self.pending.take() else {
            return;
        };
        match (&at.action, result) {
            (Action::Devirtualize, Ok(moved)) => self.devirtualize(now, &at, moved, Some(start)),
            (Action::Evacuate { first, end, .. }, Ok(m)) => self.lines.push(format!(
                "at cycle {now}: evacuate: vm0's {first:#x}-{end:#x} moved to other machine pages, concurrently from cycle {start}; {} pages moved ({} direct, {} indirect), {} stores waited for a copy; largest guest pause {} cycles",
                m.pages(), m.direct, m.indirect, m.waits, m.pause
            )),
            (action, Err(why)) => self.lines.push(format!(
                "at cycle {now}: {} refused: {why}; the run continues",
                action.name()
            )),
            (action, Ok(_)) => self.lines.push(format!(
                "at cycle {now}: {}: done",
                action.name()
            )),
        }
    }

    /// Starts a concurrent remapping for `at` (evacuate, or the remapping
    /// to the identity before a hand-back): `Ok(false)` when there is
    /// nothing to move.
    fn start_remapping(&mut self, now: u64, at: &At) -> Result<bool, String> {
        let index = self.remap_index;
        let Some(Running::Virtual(mon)) = self.running.as_mut() else {
            return Ok(false);
        };
        let job = match at.action {
            Action::Evacuate { first, end, to } => {
                Some(crate::remap::evacuation(mon, 0, (first, end), to, index)?)
            }
            _ => {
                if let Some(why) = crate::virt::devirtualize_refusal(mon) {
                    return Err(why);
                }
                crate::remap::identity(mon, 0, index)?
            }
        };
        let Some(job) = job else { return Ok(false) };
        crate::remap::run_concurrent(mon, job);
        self.pending = Some((at.clone(), now));
        Ok(true)
    }

    /// Closes the phase running now (the run ended).
    pub fn finish(&mut self) -> &[Phase] {
        self.close_phase();
        &self.phases
    }

    fn close_phase(&mut self) {
        if let Some(p) = self.phase() {
            if p.end > p.start || self.phases.is_empty() {
                self.phases.push(p);
            }
        }
        self.start_phase();
    }

    /// A new phase starts now.
    fn start_phase(&mut self) {
        self.start = self.now();
        if let Some(r) = &self.running {
            self.mark = totals(r);
        }
    }

    /// The phase from its start to now.
    fn phase(&self) -> Option<Phase> {
        let r = self.running.as_ref()?;
        let t = totals(r);
        let memory = match r {
            Running::Native(_) => None,
            Running::Virtual(mon) => mon.vms.first().map(|vm| vm.pmap.state()),
        };
        Some(Phase {
            virtual_: memory.is_some(),
            start: self.start,
            end: self.now(),
            exits: t.exits.saturating_sub(self.mark.exits),
            monitor_cycles: t.monitor_cycles.saturating_sub(self.mark.monitor_cycles),
            guest_cycles: t.guest_cycles.saturating_sub(self.mark.guest_cycles),
            instructions: t.instructions.saturating_sub(self.mark.instructions),
            memory,
        })
    }

    fn apply(&mut self, at: &At) {
        let now = self.now();
        let concurrent = self.remap_mode == RemapMode::Concurrent
            && matches!(self.running, Some(Running::Virtual(_)))
            && matches!(at.action, Action::Evacuate { .. } | Action::Devirtualize);
        if concurrent {
            match self.start_remapping(now, at) {
                Ok(true) => return,
                Ok(false) => {}
                Err(why) => {
                    self.lines.push(format!(
                        "at cycle {now}: {} refused: {why}; the run continues",
                        at.action.name()
                    ));
                    return;
                }
            }
        }
        if let Action::Devirtualize = at.action {
            if let Some(Running::Virtual(_)) = self.running {
                self.devirtualize(now, at, Moved::default(), None);
                return;
            }
        }
        if let Action::Evacuate { first, end, to } = at.action {
            let result = match self.running.as_mut() {
                Some(Running::Virtual(mon)) => {
                    crate::remap::evacuate(mon, 0, (first, end), to, self.remap_index)
                }
                _ => Err(
                    "memory is remapped under a kernel the monitor runs: virtualize first"
                        .to_string(),
                ),
            };
            self.lines.push(match result {
                Ok(m) => format!(
                    "at cycle {now}: evacuate: vm0's {first:#x}-{end:#x} moved to other machine pages; {} pages moved ({} direct, {} indirect); guest paused {} cycles",
                    m.pages(), m.direct, m.indirect, m.pause
                ),
                Err(why) => format!("at cycle {now}: evacuate refused: {why}; the run continues"),
            });
            return;
        }
        if let Action::StartVm(spec) = &at.action {
            let result = match self.running.as_mut() {
                Some(Running::Virtual(mon)) => start(mon, spec, self.disk_irq),
                _ => {
                    Err("VMs start beside a kernel the monitor runs: virtualize first".to_string())
                }
            };
            self.lines.push(match result {
                Ok(what) => format!(
                    "at cycle {now}: start-vm: {what}; 0 pages moved; guest paused 0 cycles"
                ),
                Err(why) => format!("at cycle {now}: start-vm refused: {why}; the run continues"),
            });
            return;
        }
        if let Action::VirtualizeMemory(range) | Action::DevirtualizeMemory(range) = at.action {
            self.memory_switch(at, now, range);
            return;
        }
        let phase = self.phase();
        let cpu_only = at.action == Action::VirtualizeCpu;
        let result = match (&at.action, self.running.take()) {
            (Action::Virtualize | Action::VirtualizeCpu, Some(Running::Native(m))) => {
                match virtualize_with(m, &self.cost, cpu_only) {
                    Ok((mon, s)) => {
                        self.running = Some(Running::Virtual(mon));
                        Ok(s)
                    }
                    Err((m, why)) => {
                        self.running = Some(Running::Native(m));
                        Err(why)
                    }
                }
            }
            (action, r) => {
                self.running = r;
                Err(match action {
                    Action::Virtualize | Action::VirtualizeCpu => {
                        "the kernel already runs under the monitor"
                    }
                    _ => "the kernel already runs on the bare machine",
                }
                .to_string())
            }
        };
        self.switched(now, at, phase, result);
    }

    /// Hands vm0 back to the bare machine, after `before` moved
    /// concurrently from cycle `start`.
    fn devirtualize(&mut self, now: u64, at: &At, before: Moved, start: Option<u64>) {
        let phase = self.phase();
        let Some(Running::Virtual(mon)) = self.running.take() else {
            return;
        };
        // The other VMs' last partial lines, before they go.
        self.running = Some(Running::Virtual(mon));
        self.collect_console();
        self.flush_partial();
        let Some(Running::Virtual(mon)) = self.running.take() else {
            return;
        };
        let result = match devirtualize_remapped(mon, self.remap_index, before) {
            Ok((m, s)) => {
                self.running = Some(Running::Native(m));
                Ok(s)
            }
            Err((mon, why)) => {
                self.running = Some(Running::Virtual(mon));
                Err(why)
            }
        };
        let before_line = self.lines.len();
        self.switched(now, at, phase, result);
        if let (Some(start), Some(l)) = (start, self.lines.get_mut(before_line)) {
            *l = l.replacen(
                " pages moved; guest paused",
                &format!(
                    " pages moved concurrently from cycle {start} ({} direct, {} indirect, {} stores waited for a copy); largest guest pause",
                    before.direct, before.indirect, before.waits
                ),
                1,
            );
        }
    }

    /// Records a switch's log, phase and line.
    fn switched(
        &mut self,
        now: u64,
        at: &At,
        phase: Option<Phase>,
        result: Result<Switch, String>,
    ) {
        if let Ok(sw) = &result {
            self.switch_log.extend(
                sw.log
                    .iter()
                    .map(|l| (now, format!("{}: {l}", at.action.name()))),
            );
            self.phases.extend(phase);
            self.ended.clear();
            self.partial.clear();
            self.start = now;
            // A new monitor's counters, the switch's pause included, are
            // all the new phase's.
            self.mark = match &self.running {
                Some(r @ Running::Native(_)) => totals(r),
                _ => Mark::default(),
            };
        }
        self.lines.push(line(now, at, result));
    }

    /// `virtualize-memory` and `devirtualize-memory`: the monitor stays,
    /// vm0's memory changes state, and a new phase starts.
    fn memory_switch(&mut self, at: &At, now: u64, range: Option<(u64, u64)>) {
        let phase = self.phase();
        // The switch's pause is the new phase's.
        let before = self.running.as_ref().map(totals).unwrap_or_default();
        let result = match (&at.action, self.running.as_mut()) {
            (Action::VirtualizeMemory(_), Some(Running::Virtual(mon))) => {
                crate::memstate::virtualize_memory(mon, range)
            }
            (_, Some(Running::Virtual(mon))) => {
                crate::memstate::devirtualize_memory(mon, range, self.remap_index)
            }
            _ => Err(
                "the kernel runs on the bare machine: its memory is the machine's (virtualize-cpu first)"
                    .to_string(),
            ),
        };
        if let Ok(sw) = &result {
            self.switch_log.extend(
                sw.log
                    .iter()
                    .map(|l| (now, format!("{}: {l}", at.action.name()))),
            );
            self.phases.extend(phase);
            self.start = now;
            self.mark = before;
        }
        self.lines.push(line(now, at, result));
    }

    /// Whatever the other VMs printed without a final newline.
    fn flush_partial(&mut self) {
        for buf in &mut self.partial {
            if !buf.is_empty() {
                self.console.append(buf);
                self.console.push(b'\n');
            }
        }
    }
}

/// Reads and boots the VM of a `start-vm` entry (loaded as `--vm` loads
/// one); the line's "what".
fn start(mon: &mut Monitor, spec: &VmSpec, disk_irq: Option<u64>) -> Result<String, String> {
    let mut spec = spec.clone();
    let name = spec
        .name
        .get_or_insert_with(|| format!("vm{}", mon.vms.len()))
        .clone();
    let config = crate::build::vm_configs(std::slice::from_ref(&spec), disk_irq)
        .map_err(|e| e.to_string())?
        .pop()
        .ok_or("no VM to start")?;
    let (_, base) = crate::virt::start_vm(mon, &config)?;
    let disk = spec
        .disk
        .as_ref()
        .map_or(String::new(), |d| format!(", disk {}", d.display()));
    Ok(format!(
        "{name} ({}, {}, {} VCPU(s){disk}) booted into free machine memory at {base:#x}",
        spec.image.display(),
        sim::hv::config::show_size(spec.mem_bytes()),
        spec.vcpus()
    ))
}

/// The one line a timeline action prints.
fn line(now: u64, at: &At, result: Result<Switch, String>) -> String {
    match result {
        Ok(s) => {
            let memory = s.memory.map_or(String::new(), |m| m.to_string());
            let what = match at.action {
                Action::Virtualize => format!(
                    "{} CPU(s) became VCPUs of vm0 (VCPU i on CPU i), identity pmap of {} as one range",
                    s.cpus,
                    sim::hv::config::show_size(s.mem)
                ),
                Action::VirtualizeCpu => format!(
                    "{} CPU(s) became VCPUs of vm0 (VCPU i on CPU i), memory {memory}: {} on itself, the guest's own TLB entries installed with machine ASIDs",
                    s.cpus,
                    sim::hv::config::show_size(s.mem)
                ),
                Action::VirtualizeMemory(r) => format!(
                    "vm0's {} composed through its pmap from now on; memory {memory}",
                    range_text(r, s.mem)
                ),
                Action::DevirtualizeMemory(r) => format!(
                    "vm0's {} remapped to the identity ({} indirect) and passed through from now on; memory {memory}",
                    range_text(r, s.mem),
                    s.indirect
                ),
                _ => format!(
                    "vm0's {} VCPU(s) handed back to the CPUs, exits off, {} identity memory",
                    s.cpus,
                    sim::hv::config::show_size(s.mem)
                ),
            };
            format!(
                "at cycle {now}: {}: {what}; {} pages moved; guest paused {} cycles",
                at.action.name(),
                s.pages_moved,
                s.pause
            )
        }
        Err(why) => format!(
            "at cycle {now}: {} refused: {why}; the run continues",
            at.action.name()
        ),
    }
}

/// A memory switch's range as its line names it.
fn range_text(range: Option<(u64, u64)>, bytes: u64) -> String {
    match range {
        Some((first, end)) => format!("{first:#x}-{end:#x}"),
        None => format!("{} (all of it)", sim::hv::config::show_size(bytes)),
    }
}

fn native_exit(e: Exit) -> HostExit {
    match e {
        Exit::Halted { status } => HostExit::Halted(status),
        Exit::CycleLimit { cycles } => HostExit::CycleLimit(cycles),
        Exit::Idle | Exit::Debug { .. } => HostExit::Idle,
    }
}

fn monitor_exit(mon: &Monitor, e: MonitorExit) -> HostExit {
    match e {
        MonitorExit::CycleLimit { cycles } => HostExit::CycleLimit(cycles),
        MonitorExit::AllEnded | MonitorExit::Debug { .. } => {
            match mon.vms.first().and_then(|v| v.end.clone()) {
                Some(VmEnd::Halted(s)) => HostExit::Halted(s),
                Some(VmEnd::Stopped(why)) => HostExit::Stopped(why),
                None => HostExit::Idle,
            }
        }
    }
}
