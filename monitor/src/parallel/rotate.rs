//! VCPUs taking turns on a CPU inside a batch (docs/parallel.md, "Open"
//! (b)): with more VCPUs than CPUs, a slice's end would otherwise need the
//! main thread, and every batch would last one slice.
//!
//! At a batch's start the monitor gives each CPU whose seated VCPU is the
//! only one of its VM a *rotation*: VMs of one VCPU from the run queue,
//! in its order, that may run there (`Monitor::rotations`). They go to the
//! thread that holds the CPU as units with no CPU. At a quantum's end,
//! when the seated VCPU's slice is over or it cannot run, the thread
//! switches the CPU to the next VCPU of the rotation that can, as
//! `schedule_out` and `schedule_in` would between quanta; the batch then
//! ends only where a VCPU no rotation holds waits for a CPU.

use std::collections::VecDeque;

use sim::hv::Bus;

use super::run::{turn_over, Held, Job, Unit};
use crate::obs::{MonEvent, Place};
use crate::tlbctl;

/// The VMs taking turns on CPU `p` behind the one seated there, next
/// first.
pub(crate) struct Rotation {
    pub(crate) p: usize,
    pub(crate) queued: VecDeque<usize>,
}

/// Where VM `v`'s unit is among `units`, if its one VCPU can take a turn.
fn runnable(units: &[Unit], v: usize) -> Option<usize> {
    let i = units.iter().position(|u| u.v == v)?;
    let Held::Whole(h) = &units.get(i)?.held else {
        return None;
    };
    (h.vm.io.ring.is_empty() && h.vm.waits_for_a_cpu(0)).then_some(i)
}

/// At the end of a quantum: each rotation's CPU switched to its next VCPU
/// if its seated one's slice is over or it cannot run. A VCPU whose VM has
/// writes queued in its ring stays (its flush needs the main thread's
/// board), as does one whose VM ended (the batch is cut for it).
pub(super) fn rotate(units: &mut [Unit], job: &mut Job, bus: &mut Bus) {
    let mut rotations = std::mem::take(&mut job.rotations);
    for r in &mut rotations {
        let Some((from, li)) = units
            .iter()
            .enumerate()
            .find_map(|(i, u)| u.cpus.iter().position(|l| l.p == r.p).map(|li| (i, li)))
        else {
            continue;
        };
        let due = match (&units[from].held, units[from].cpus.get(li)) {
            (Held::Whole(h), Some(l)) => {
                h.vm.running() && h.vm.io.ring.is_empty() && turn_over(&h.vm, l)
            }
            _ => false,
        };
        if !due {
            continue;
        }
        let Some((k, to)) = r
            .queued
            .iter()
            .enumerate()
            .find_map(|(k, &v)| runnable(units, v).map(|to| (k, to)))
        else {
            continue;
        };
        r.queued.remove(k);
        r.queued.push_back(units[from].v);
        switch(units, from, li, to, job, bus);
    }
    job.rotations = rotations;
}

/// Moves the CPU `li` of unit `from` to unit `to`, whose VCPU it then
/// runs: the registers saved and loaded, the LL link broken, the switch's
/// cost charged, a new slice, and a real TLB of the new VM's.
fn switch(units: &mut [Unit], from: usize, li: usize, to: usize, job: &mut Job, bus: &mut Bus) {
    if to >= units.len() || to == from {
        return;
    }
    let Some(old) = units.get_mut(from) else {
        return;
    };
    if li >= old.cpus.len() {
        return;
    }
    let mut l = old.cpus.remove(li);
    if let Held::Whole(h) = &mut old.held {
        if let Some(vc) = h.vm.vcpus.get_mut(l.c) {
            vc.regs = l.cpu.regs.clone();
            vc.on_pcpu = None;
        }
    }
    // As in `schedule_out`: the LLbit belongs to the VCPU.
    bus.unlink(l.cpu.core.id());
    let Some(new) = units.get_mut(to) else {
        return;
    };
    let switch = job.cost.vcpu_switch;
    if let Held::Whole(h) = &mut new.held {
        if let Some(vc) = h.vm.vcpus.first_mut() {
            vc.on_pcpu = Some(l.p);
            l.cpu.regs = vc.regs.clone();
            l.cpu.charge(switch);
            vc.stats.monitor_cycles += switch;
        }
        tlbctl::flush_real_tlb(&mut l.cpu.core);
        l.generation = h.asids.generation;
    }
    l.c = 0;
    l.slice_end = l.cpu.cycles() + job.slice;
    job.trace.now = l.cpu.cycles();
    job.trace.place = Place {
        pcpu: l.p,
        vm: new.v,
        vcpu: 0,
    };
    job.trace.emit(MonEvent::Switch {
        to_vm: new.v,
        to_vcpu: 0,
    });
    new.cpus.push(l);
}
