//! The monitor's scheduler: quantum after quantum, each physical CPU runs
//! the VCPU seated on it (the deterministic mode), or, in the parallel
//! mode, batches of quanta run on host threads (`parallel`); at each
//! boundary the VMs' boards, consoles and waiting VCPUs are settled.

use std::collections::VecDeque;

use sim::hv::{BoardAction, Regs};

use crate::exit::Outcome;
use crate::guest::GuestCtx;
use crate::obs::{MonEvent, Place, Trace};
use crate::vcpu::VcpuState;
use crate::vm::{Vm, VmEnd};
use crate::{coalesce, parallel, remap, seat, tlbctl, Monitor, MonitorExit};

pub use sim::hv::BATCH_CYCLES;

impl Monitor {
    /// Runs every physical CPU for one quantum, in order (or, in the
    /// parallel mode, on their threads).
    pub fn run_quantum(&mut self) -> Option<MonitorExit> {
        if self.vms.iter().all(|v| !v.running()) {
            return Some(MonitorExit::AllEnded);
        }
        if self.par.is_some() && (self.debug.is_some() || self.remap.is_some()) {
            self.set_parallel(None);
        }
        if self.par.is_some() {
            let end = self.run_quantum_parallel();
            let exit = self.end_quantum(end);
            self.unseat_ended();
            return exit;
        }
        let (end, first) = self.paused.take().unwrap_or_else(|| {
            let c = &self.config;
            (sim::hv::quantum_end(self.now, c.quantum, c.max_cycles), 0)
        });
        for p in first..self.current.len() {
            if self.run_pcpu(p, end) {
                self.paused = Some((end, p));
                if let Some((vm, vcpu)) = self.current.get(p).copied().flatten() {
                    return Some(MonitorExit::Debug { vm, vcpu });
                }
            }
        }
        self.end_quantum(end)
    }

    /// The quantum boundary: machine time, the VMs' boards, consoles and
    /// waiting VCPUs, a remapping job's next batch, and whether to stop.
    fn end_quantum(&mut self, end: u64) -> Option<MonitorExit> {
        self.now = end;
        self.trace.now = end;
        for (v, vm) in self.vms.iter_mut().enumerate() {
            vm_boundary(vm, v, end, &mut self.trace, &mut self.runq);
        }
        remap::step(self);
        remap::release_ended(self);
        if self.vms.iter().all(|v| !v.running()) {
            return Some(MonitorExit::AllEnded);
        }
        if let Some(limit) = self.config.max_cycles {
            if self.now >= limit {
                return Some(MonitorExit::CycleLimit { cycles: self.now });
            }
        }
        None
    }

    /// Takes the VCPUs of ended VMs off their CPUs, saving their registers:
    /// the deterministic scheduler does it as soon as a VM ends
    /// (`run_pcpu`), the threads leave them seated until the next batch,
    /// and after the last batch there is none, so without this an ended
    /// VM's registers would stay in the CPUs.
    fn unseat_ended(&mut self) {
        for p in 0..self.current.len() {
            let ended = self
                .current
                .get(p)
                .copied()
                .flatten()
                .is_some_and(|(v, _)| self.vms.get(v).is_some_and(|vm| !vm.running()));
            if ended {
                self.schedule_out(p);
            }
        }
    }

    /// One batch of quanta of the parallel mode (`parallel`): VCPUs seated
    /// here, run on the threads. Returns the batch's end.
    fn run_quantum_parallel(&mut self) -> u64 {
        for p in 0..self.current.len() {
            self.seat_for_quantum(p);
        }
        let rotations = self.rotations();
        let wanted: Vec<bool> = (0..self.current.len())
            .map(|p| self.someone_waits_for_a_cpu(p))
            .collect();
        let quanta = self.batch_quanta(&wanted);
        let c = &self.config;
        let Some(par) = self.par.as_mut() else {
            return sim::hv::quantum_end(self.now, c.quantum, c.max_cycles);
        };
        // Switches deliver rings, which may shoot entries down.
        par.shoot_down(&mut self.machine.cpus, self.shootdowns.drain(..));
        par.batch(parallel::Quantum {
            vms: &mut self.vms,
            cpus: &mut self.machine.cpus,
            bus: &mut self.machine.bus,
            current: &mut self.current,
            tlb_cursor: &mut self.tlb_cursor,
            slice_end: &mut self.slice_end,
            wanted: &wanted,
            rotations,
            slice: c.slice,
            trace: &mut self.trace,
            runq: &mut self.runq,
            cost: c.cost,
            start: self.now,
            quantum: c.quantum,
            limit: c.max_cycles,
            quanta,
        })
    }

    /// For the parallel mode's next batch: per physical CPU, the VMs of
    /// one VCPU from the run queue that take turns there behind the seated
    /// VCPU, if that is the only one of its VM (`parallel::rotate`). Each
    /// waiting VCPU goes, in the queue's order, to the CPU it may run on
    /// with the fewest so far; those no CPU takes stay queued.
    fn rotations(&mut self) -> Vec<VecDeque<usize>> {
        let n = self.current.len();
        let mut rotations = vec![VecDeque::new(); n];
        let alone = |vm: &Vm| vm.vcpus.len() == 1 && vm.io.ring.is_empty();
        let hosts: Vec<usize> = (0..n)
            .filter(|&p| {
                self.current
                    .get(p)
                    .copied()
                    .flatten()
                    .and_then(|(v, _)| self.vms.get(v))
                    .is_some_and(alone)
            })
            .collect();
        if hosts.is_empty() {
            return rotations;
        }
        let mut stay = VecDeque::new();
        while let Some((v, c)) = self.runq.pop_front() {
            let vcpu = self
                .vms
                .get(v)
                .filter(|vm| alone(vm) && vm.waits_for_a_cpu(c))
                .and_then(|vm| vm.vcpus.get(c));
            let host = vcpu.and_then(|vc| {
                hosts
                    .iter()
                    .copied()
                    .filter(|&p| vc.may_run_on(p))
                    .min_by_key(|&p| rotations.get(p).map_or(usize::MAX, VecDeque::len))
            });
            match host.and_then(|p| rotations.get_mut(p)) {
                Some(r) => r.push_back(v),
                None => stay.push_back((v, c)),
            }
        }
        self.runq = stay;
        rotations
    }

    /// How many quanta the next batch of the parallel mode may run: as
    /// many as make [`BATCH_CYCLES`], none past the cycle limit. A VM with
    /// a VCPU waiting for an interrupt and none seated is looked at only by
    /// the main thread's boundary, so then every quantum ends at one.
    ///
    /// Nor past the first slice end of a CPU another VCPU waits for
    /// (`wanted`): that switch needs the main thread. A unit would cut the
    /// batch there, but a cut cannot stop a thread that has already begun
    /// a later quantum (its CPUs idle, or the host ran it ahead), so under
    /// load a cut could land up to a whole batch late, and a guest whose
    /// VCPUs outnumber the CPUs, spinning for one not seated, would lose
    /// that much at every switch (tests/kestrel.rs's shootdown VM did).
    fn batch_quanta(&self, wanted: &[bool]) -> u32 {
        let c = &self.config;
        let first_switch = wanted
            .iter()
            .zip(&self.slice_end)
            .filter(|(w, _)| **w)
            .map(|(_, &end)| end)
            .min();
        let seated = |v: usize| self.current.iter().flatten().any(|&(sv, _)| sv == v);
        let unattended = self.vms.iter().enumerate().any(|(v, vm)| {
            vm.running() && !seated(v) && vm.vcpus.iter().any(|vc| vc.state == VcpuState::Waiting)
        });
        if unattended {
            return 1;
        }
        let most = (BATCH_CYCLES / c.quantum.max(1)).clamp(1, u64::from(u32::MAX));
        let (mut at, mut n) = (self.now, 0u32);
        while u64::from(n) < most {
            at = sim::hv::quantum_end(at, c.quantum, c.max_cycles);
            n += 1;
            if c.max_cycles.is_some_and(|limit| at >= limit)
                || first_switch.is_some_and(|end| at >= end)
            {
                break;
            }
        }
        n.max(1)
    }

    /// Seats on physical CPU `p` the VCPU it runs this batch, as
    /// `run_pcpu` does between steps: its VCPU out if it cannot run or its
    /// slice ended while another waits, another in if it has none. Unlike
    /// there, a VCPU waiting for an interrupt keeps its CPU while no other
    /// VCPU waits for it, so that its own VM's boundary inside a batch can
    /// wake it (`parallel`).
    fn seat_for_quantum(&mut self, p: usize) {
        loop {
            let Some((v, c)) = self.current.get(p).copied().flatten() else {
                if !self.schedule_in(p) {
                    return;
                }
                continue;
            };
            let state = self
                .vms
                .get(v)
                .filter(|vm| vm.running())
                .and_then(|vm| vm.vcpus.get(c))
                .map(|vc| vc.state);
            let cycles = self.machine.cpus.get(p).map_or(0, |c| c.cycles());
            let keep = match state {
                Some(VcpuState::Runnable) => {
                    cycles < self.slice_end.get(p).copied().unwrap_or(0)
                        || !self.someone_waits_for_a_cpu(p)
                }
                Some(VcpuState::Waiting) => !self.someone_waits_for_a_cpu(p),
                _ => false,
            };
            if keep {
                return;
            }
            self.schedule_out(p);
        }
    }

    /// Returns true if the debugger stopped the VCPU on `p`.
    fn run_pcpu(&mut self, p: usize, end: u64) -> bool {
        loop {
            let Some((v, c)) = self.current.get(p).copied().flatten() else {
                if !self.schedule_in(p) {
                    if let Some(cpu) = self.machine.cpus.get_mut(p) {
                        cpu.idle_until(end);
                    }
                    return false;
                }
                continue;
            };
            let cycles = self.machine.cpus.get(p).map_or(end, |c| c.cycles());
            if cycles >= end {
                return false;
            }
            let runnable = self
                .vms
                .get(v)
                .and_then(|vm| {
                    vm.vcpus
                        .get(c)
                        .map(|vc| vm.running() && vc.state == VcpuState::Runnable)
                })
                .unwrap_or(false);
            if !runnable {
                self.schedule_out(p);
                continue;
            }
            if cycles >= self.slice_end.get(p).copied().unwrap_or(0)
                && self.someone_waits_for_a_cpu(p)
            {
                self.schedule_out(p);
                continue;
            }
            let outcome = self.step_vcpu(p, end);
            self.finish_ctx();
            match outcome {
                Outcome::Resume => {}
                Outcome::Wait => {
                    self.trace.emit(MonEvent::Wait);
                    self.schedule_out(p);
                }
                Outcome::Budget => {
                    self.flush_ring(p);
                    return false;
                }
                Outcome::Board => self.board_actions(v),
                Outcome::Debug => return true,
            }
        }
    }

    /// Delivers pending virtual interrupts, then runs the VCPU on physical
    /// CPU `p` until an exit has been handled, the engine stops, or the
    /// budget is used.
    fn step_vcpu(&mut self, p: usize, end: u64) -> Outcome {
        self.seat(p).map_or(Outcome::Budget, |mut s| s.step(end))
    }

    /// Builds the guest context of the VCPU on physical CPU `p`.
    fn with_ctx<R>(
        &mut self,
        p: usize,
        f: impl FnOnce(&mut GuestCtx<'_>, &mut Regs) -> R,
    ) -> Option<R> {
        self.seat(p)?.with_ctx(f)
    }

    /// The VCPU on physical CPU `p`, seated with the monitor's own bus,
    /// trace and ASIDs (the deterministic mode).
    fn seat(&mut self, p: usize) -> Option<seat::Seat<'_>> {
        let (v, c) = self.current.get(p).copied().flatten()?;
        Some(seat::Seat {
            p,
            v,
            c,
            cpu: self.machine.cpus.get_mut(p)?,
            bus: &mut self.machine.bus,
            vm: self.vms.get_mut(v)?,
            pmap: None,
            asids: match self.par.as_mut() {
                Some(par) => par.asids.get_mut(v)?,
                None => &mut self.asids,
            },
            trace: &mut self.trace,
            shootdowns: &mut self.shootdowns,
            tlb_cursor: self.tlb_cursor.get_mut(p)?,
            debug: self.debug.as_mut(),
            cost: self.config.cost,
        })
    }

    /// Applies what a context left behind: real-TLB shootdowns on every
    /// physical CPU, and a flush of all real TLBs after an ASID generation.
    fn finish_ctx(&mut self) {
        // `drain` keeps the buffer: the exit path allocates nothing.
        for (done, space, what) in self.shootdowns.drain(..) {
            for (p, cpu) in self.machine.cpus.iter_mut().enumerate() {
                if p != done {
                    tlbctl::shoot_down(cpu, &self.asids, space, what);
                }
            }
        }
        if self.asids.generation != self.flushed_generation {
            self.flushed_generation = self.asids.generation;
            for cpu in &mut self.machine.cpus {
                tlbctl::flush_real_tlb(cpu);
            }
        }
    }

    /// Whether a runnable VCPU that may run on physical CPU `p` waits.
    fn someone_waits_for_a_cpu(&self, p: usize) -> bool {
        self.runq.iter().any(|&(v, c)| {
            self.vms
                .get(v)
                .and_then(|vm| vm.vcpus.get(c))
                .is_some_and(|vc| vc.waits_for_a_cpu() && vc.may_run_on(p))
        })
    }

    fn schedule_in(&mut self, p: usize) -> bool {
        let n = self.runq.len();
        for _ in 0..n {
            let Some((v, c)) = self.runq.pop_front() else {
                return false;
            };
            if !self.vms.get(v).is_some_and(|vm| vm.waits_for_a_cpu(c)) {
                continue;
            }
            let pinned_elsewhere = self
                .vms
                .get(v)
                .and_then(|vm| vm.vcpus.get(c))
                .is_some_and(|vc| !vc.may_run_on(p));
            if pinned_elsewhere {
                self.runq.push_back((v, c));
                continue;
            }
            let (Some(vm), Some(cpu)) = (self.vms.get_mut(v), self.machine.cpus.get_mut(p)) else {
                return false;
            };
            let Some(vc) = vm.vcpus.get_mut(c) else {
                return false;
            };
            vc.on_pcpu = Some(p);
            cpu.regs = vc.regs.clone();
            cpu.charge(self.config.cost.vcpu_switch);
            vc.stats.monitor_cycles += self.config.cost.vcpu_switch;
            if let Some(slot) = self.current.get_mut(p) {
                *slot = Some((v, c));
            }
            if let Some(s) = self.slice_end.get_mut(p) {
                *s = cpu.cycles() + self.config.slice;
            }
            self.trace.place = Place {
                pcpu: p,
                vm: v,
                vcpu: c,
            };
            self.trace.emit(MonEvent::Switch {
                to_vm: v,
                to_vcpu: c,
            });
            return true;
        }
        false
    }

    /// The end of a VCPU's turn delivers its VM's `coalesce=ring` ring.
    fn flush_ring(&mut self, p: usize) {
        let queued = self
            .current
            .get(p)
            .copied()
            .flatten()
            .and_then(|(v, _)| self.vms.get(v))
            .is_some_and(|vm| !vm.io.ring.is_empty());
        if queued {
            self.with_ctx(p, |ctx, _| coalesce::ring::flush(ctx));
        }
    }

    pub(crate) fn schedule_out(&mut self, p: usize) {
        self.flush_ring(p);
        let Some((v, c)) = self.current.get_mut(p).and_then(Option::take) else {
            return;
        };
        let Some(cpu) = self.machine.cpus.get(p) else {
            return;
        };
        // The LLbit belongs to the VCPU, but the bus links physical CPUs:
        // a switch ends the link, as the ERET of a real context switch
        // would, so an SC of the next VCPU here or of this one after it
        // resumes fails (../shared/docs/r4000-reference.md §5.12).
        self.machine.bus.unlink(cpu.core.id());
        if let Some(vc) = self.vms.get_mut(v).and_then(|vm| vm.vcpus.get_mut(c)) {
            vc.regs = cpu.regs.clone();
            vc.on_pcpu = None;
            if vc.state == VcpuState::Runnable {
                self.runq.push_back((v, c));
            }
        }
    }

    /// Applies VM `v`'s virtual board requests: halting, starting VCPUs.
    fn board_actions(&mut self, v: usize) {
        if let Some(vm) = self.vms.get_mut(v) {
            vm_board_actions(vm, v, self.now, &mut self.trace, &mut self.runq);
        }
    }
}

/// VM `v` at a quantum boundary `end`: its board reaches `end`, its
/// console output is collected, its board's requests are applied, and its
/// waiting VCPUs with an interrupt pending become runnable (those not
/// seated join `runq`). The main thread's boundary does it for every VM,
/// a parallel-mode thread for its own VMs inside a batch.
pub(crate) fn vm_boundary(
    vm: &mut Vm,
    v: usize,
    end: u64,
    trace: &mut Trace,
    runq: &mut VecDeque<(usize, usize)>,
) {
    vm.board.advance(end);
    let mut out = std::mem::take(&mut vm.board.console_out);
    vm.console.append(&mut out);
    vm_board_actions(vm, v, end, trace, runq);
    for vc in &mut vm.vcpus {
        if vc.state != VcpuState::Waiting {
            continue;
        }
        let lines = vm.board.irq_lines(vc.index);
        if vc.update_interrupts(end, lines) != 0 {
            vc.state = VcpuState::Runnable;
            if vc.on_pcpu.is_none() {
                runq.push_back((v, vc.index));
            }
        }
    }
}

/// Applies the virtual board requests of `vm` (VM `v`) at machine time `now`: a halt
/// stops its VCPUs, a started VCPU boots and joins `runq`.
pub(crate) fn vm_board_actions(
    vm: &mut Vm,
    v: usize,
    now: u64,
    trace: &mut Trace,
    runq: &mut VecDeque<(usize, usize)>,
) {
    for action in vm.board.take_actions() {
        match action {
            BoardAction::Halt { status } => {
                if vm.end.is_none() {
                    vm.end = Some(VmEnd::Halted(status));
                    trace.emit(MonEvent::Halt { status });
                }
            }
            BoardAction::StartCpu { cpu, pc, sp } => {
                if let Some(vc) = vm.vcpus.get_mut(cpu) {
                    if vc.state == VcpuState::Parked {
                        vc.boot(pc, sp, now);
                        runq.push_back((v, cpu));
                    }
                }
            }
        }
    }
    if vm.end.is_some() {
        for vc in &mut vm.vcpus {
            vc.state = VcpuState::Stopped;
        }
    }
}
