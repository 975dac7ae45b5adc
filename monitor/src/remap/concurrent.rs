//! Concurrent remapping (`--remap concurrent`): one write-protected
//! batch at a time, while the guest runs.

use super::job::{Job, Step};
use super::{debug_check, Moved, BATCH, BATCH_BACKLOG, BATCH_LOOKUPS};
use crate::guest::GuestCtx;
use crate::{Monitor, Vm};

/// Invalidates, on every CPU and in VM `v`'s L2TLBs, the composed entries
/// that name one of machine pages `mpns`.
fn drop_composed(m: &mut Monitor, v: usize, mpns: &[u32]) {
    let on = |pfn: u32| mpns.contains(&pfn);
    for cpu in &mut m.machine.cpus {
        for i in 0..sim::hv::TLB_ENTRIES {
            let e = cpu.tlb().read(i);
            let named =
                e.lo.iter()
                    .any(|&l| l & sim::hv::tlb::lo::V != 0 && on(l >> sim::hv::tlb::lo::PFN_SHIFT));
            if named {
                cpu.tlb_write(i, sim::hv::TlbEntry::unused(i));
            }
        }
    }
    if let Some(vm) = m.vms.get_mut(v) {
        for vc in &mut vm.vcpus {
            vc.l2tlb.drop_machine_pages(on);
        }
    }
}

/// A store of the VCPU in `ctx` found its page being copied: the VCPU
/// waits, its CPU idle until the quantum ends, and then runs the store
/// again (it waits again if the copy is not done yet).
pub fn wait_for_copy(ctx: &mut GuestCtx<'_>, budget_end: u64) {
    ctx.vcpu.remap_wait.get_or_insert(ctx.core.cycles());
    ctx.core.idle_until(budget_end);
}

/// Starts `job` while the guest runs (`--remap concurrent`): its first
/// batch now, the others at the following quantum boundaries
/// (`advance`); the monitor holds it until it is done.
pub fn run_concurrent(m: &mut Monitor, mut job: Job) {
    advance(m, &mut job);
    m.remap = Some(job);
}

/// Concurrent remapping at a quantum boundary: finishes the batch in
/// flight once its copier is done, then starts the next.
pub fn step(m: &mut Monitor) {
    if let Some(mut job) = m.remap.take() {
        if !job.done {
            advance(m, &mut job);
        }
        m.remap = Some(job);
    }
}

/// The monitor's remapping job once it is done (taking it away).
pub fn take_done(m: &mut Monitor) -> Option<Result<Moved, String>> {
    if m.remap.as_ref().is_some_and(Job::done) {
        return m.remap.take().map(|j| j.result());
    }
    None
}

fn advance(m: &mut Monitor, job: &mut Job) {
    let v = job.vm;
    let now = m.now();
    let running = m.vms.get(v).is_some_and(Vm::running);
    if !job.batch.is_empty() {
        if running && now < job.done_at {
            return;
        }
        let sources: Vec<u32> = job
            .batch
            .iter()
            .flat_map(Step::sources)
            .map(|s| s.1)
            .collect();
        if running {
            job.complete_batch(m);
        }
        job.batch.clear();
        if let Some(vm) = m.vms.get_mut(v) {
            vm.pmap.protect(std::iter::empty());
            for vc in &mut vm.vcpus {
                if let Some(since) = vc.remap_wait.take() {
                    job.moved.waits += 1;
                    job.moved.pause = job.moved.pause.max(now.saturating_sub(since));
                }
            }
        }
        // Entries composed (read-only) during the copy name the old pages.
        drop_composed(m, v, &sources);
        debug_check(m);
    }
    if !running {
        let name = m.vms.get(v).map_or("the VM", |vm| vm.name.as_str());
        job.failed = Some(format!("{name} ended before its pages had moved"));
        job.done = true;
        return;
    }
    job.plan_batch(m, BATCH, BATCH_LOOKUPS);
    if job.batch.is_empty() || job.failed.is_some() {
        if let Some(vm) = m.vms.get_mut(v) {
            vm.pmap.compact();
        }
        job.batch.clear();
        // Lookups not yet spread over a batch are paid now, by one CPU.
        let rest = job.users.cost - job.charged;
        if rest > 0 {
            job.charged = job.users.cost;
            charge(m, job, rest, 0);
        }
        job.moved.cycles = now.saturating_sub(job.started);
        job.done = true;
        return;
    }
    // Write-protect the batch: from now on a store to one of its pages
    // exits and waits, so what the copier reads stays current.
    let sources: Vec<(u32, u32)> = job.batch.iter().flat_map(Step::sources).collect();
    if let Some(vm) = m.vms.get_mut(v) {
        vm.pmap.protect(sources.iter().map(|s| s.0));
    }
    let mpns: Vec<u32> = sources.iter().map(|s| s.1).collect();
    drop_composed(m, v, &mpns);
    job.read_sources(m);
    let pages = sources.len() as u64;
    // Lookups made up front (an evacuation's choice of free targets) are
    // spread over the batches, as a planner choosing each batch's targets
    // with the batch would spend them.
    let lookups = (job.users.cost - job.charged).min(BATCH_BACKLOG);
    job.charged += lookups;
    let c = m.config.cost.virt;
    let work = lookups + pages * (c.page_protect + c.page_copy + c.page_remap) + c.remap_shootdown;
    charge(m, job, work, c.remap_shootdown);
}

/// Charges `work` to the batch's copying CPU (the CPUs take turns) and
/// `others` (the shootdown) to every other CPU; the copy is done when the
/// copier is.
fn charge(m: &mut Monitor, job: &mut Job, work: u64, others: u64) {
    let v = job.vm;
    let ncpus = m.machine.cpus.len().max(1);
    let copier = job.batches % ncpus;
    job.batches += 1;
    for (p, cpu) in m.machine.cpus.iter_mut().enumerate() {
        cpu.charge(if p == copier { work } else { others });
        if p == copier {
            job.done_at = cpu.cycles();
        }
    }
    if let Some(vm) = m.vms.get_mut(v) {
        for (i, vc) in vm.vcpus.iter_mut().enumerate() {
            vc.stats.monitor_cycles += if i == copier { work } else { others };
        }
    }
    job.moved.pause = job.moved.pause.max(work);
}
