//! Changing a VM's mapping while it is virtual: `evacuate` moves guest
//! pages to other machine pages, and devirtualization moves them back
//! until physical → machine is the identity (docs/devirtualization.md).
//!
//! A remapping is a [`Job`]: a plan carried out in batches. A batch's
//! source pages are read (the copy), then written to their new machine
//! pages, and the pmap and the live [`Memmap`] are updated. `--remap
//! paused` runs every batch at once while every CPU is held;
//! `--remap concurrent` runs one batch of at most [`BATCH`] pages at a
//! time while the guest runs: the pmap keeps the old pages until the
//! batch is done, the batch's pages are write-protected (a store to one
//! waits for the copy), and the entries composed for them are shot down
//! on every CPU. Which VM page a machine page holds is found through one
//! of three indexes ([`RemapIndex`]).

use sim::mem::{PAGE_SHIFT, PAGE_SIZE};

use crate::cost::VIRT;
use crate::engine::GuestCtx;
use crate::mem::{Memmap, Pmap, COMMPAGE};
use crate::{tlbctl, Monitor, Vm};

/// What a remapping did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Moved {
    /// Pages copied straight to their new machine page.
    pub direct: u64,
    /// Pages first moved out of the way, through a free page, because the
    /// target held another of the VM's pages.
    pub indirect: u64,
    /// The largest guest pause in cycles: paused, every CPU was held this
    /// long; concurrent, the longest batch on the copying CPU or the
    /// longest wait of a store for a copy.
    pub pause: u64,
    /// Simulated cycles from start to end (paused: the pause).
    pub cycles: u64,
    /// Stores that waited for a copy (concurrent).
    pub waits: u64,
}

impl Moved {
    pub fn pages(&self) -> u64 {
        self.direct + self.indirect
    }
}

/// How remapping finds a machine page's user (`--remap-index`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RemapIndex {
    /// The memmap's back map: machine page → (VM, guest page), and its
    /// free list.
    #[default]
    Backmap,
    /// The memmap's reference count per machine page (free at zero); the
    /// user of a page in use is found by searching the pmaps.
    Refcount,
    /// Nothing kept: the pmaps are searched for every question.
    Search,
}

impl RemapIndex {
    pub fn parse(s: &str) -> Option<RemapIndex> {
        match s {
            "backmap" => Some(RemapIndex::Backmap),
            "refcount" => Some(RemapIndex::Refcount),
            "search" => Some(RemapIndex::Search),
            _ => None,
        }
    }
}

/// Whether the guest runs while pages move (`--remap`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RemapMode {
    /// Every CPU is held at the boundary until every page has moved.
    #[default]
    Paused,
    /// The guest runs; one write-protected batch moves at a time.
    Concurrent,
}

impl RemapMode {
    pub fn parse(s: &str) -> Option<RemapMode> {
        match s {
            "paused" => Some(RemapMode::Paused),
            "concurrent" => Some(RemapMode::Concurrent),
            _ => None,
        }
    }
}

/// Pages per batch of concurrent remapping: 16 copies of 2,048 cycles and
/// their bookkeeping keep the copying CPU's pause near 34,000 cycles, under
/// the 50,000 the issue allows, while moving 8 MB in 128 batches.
pub const BATCH: usize = 16;

/// The memmap of a machine of `ram_bytes` for VMs `vms`: built once, when
/// the monitor starts (or is slid under a kernel), then kept current.
pub fn memmap_of(ram_bytes: u64, vms: &[Vm]) -> Memmap {
    Memmap::of((ram_bytes >> PAGE_SHIFT) as usize, pmaps(vms))
}

fn pmaps(vms: &[Vm]) -> impl Iterator<Item = (usize, &Pmap, Vec<u64>)> {
    vms.iter()
        .enumerate()
        .map(|(v, vm)| (v, &vm.pmap, vm.vcpus.iter().map(|c| c.commpage).collect()))
}

/// Whether the memmap says what the pmaps say (see [`Memmap::check`]).
pub fn check_memmap(m: &Monitor) -> Result<(), String> {
    m.memmap.check(pmaps(&m.vms))
}

/// The debug check after each operation that changes a mapping.
fn debug_check(m: &Monitor) {
    if cfg!(debug_assertions) {
        if let Err(e) = check_memmap(m) {
            debug_assert!(false, "the memmap disagrees with the pmaps: {e}");
        }
    }
}

/// Gives the memory of every VM that ended back to the free list.
pub fn release_ended(m: &mut Monitor) {
    for (v, vm) in m.vms.iter().enumerate() {
        if !vm.running() && m.memmap.holds(v) {
            let commpages: Vec<u64> = vm.vcpus.iter().map(|c| c.commpage).collect();
            m.memmap.release(v, &vm.pmap, &commpages);
        }
    }
}

/// Machine memory for a new VM number `id` of `pages` pages and `vcpus`
/// commpages, from the free list: one range when a run of free pages is
/// long enough (the commpages after it), else the lowest free pages.
/// Returns its pmap and commpage addresses, or the free bytes there are.
pub fn allocate(
    m: &mut Monitor,
    id: usize,
    pages: u32,
    vcpus: usize,
) -> Result<(Pmap, Vec<u64>), u64> {
    let need = pages as usize + vcpus;
    let free = m.memmap.free_pages();
    if free < need {
        return Err((free as u64) << PAGE_SHIFT);
    }
    let run = u32::try_from(need).ok().and_then(|n| m.memmap.free_run(n));
    let (pmap, commpages) = match run {
        Some(first) => (
            Pmap::range(first, pages),
            (0..vcpus as u64)
                .map(|c| (u64::from(first) + u64::from(pages) + c) << PAGE_SHIFT)
                .collect(),
        ),
        None => {
            let all = m
                .memmap
                .lowest_free(need)
                .ok_or((free as u64) << PAGE_SHIFT)?;
            let (mem, comm) = all.split_at(pages as usize);
            (
                Pmap::new(mem.to_vec()),
                comm.iter().map(|&p| u64::from(p) << PAGE_SHIFT).collect(),
            )
        }
    };
    for gpn in 0..pages {
        if let Some(mpn) = pmap.machine_page(u64::from(gpn)) {
            m.memmap.add(mpn, id, gpn);
        }
    }
    for &c in &commpages {
        m.memmap.add_commpage(c);
    }
    Ok((pmap, commpages))
}

/// The chosen index over machine pages, and the simulated cycles its
/// questions have cost.
#[derive(Clone, Debug)]
struct Users {
    index: RemapIndex,
    cost: u64,
}

impl Users {
    /// Searches the pmaps (a range answers at once; a page list entry by
    /// entry, each charged) and the commpages.
    fn search(&mut self, m: &Monitor, mpn: u32) -> Option<(usize, u32)> {
        for (v, vm) in m.vms.iter().enumerate() {
            if !m.memmap.holds(v) {
                continue;
            }
            if vm
                .vcpus
                .iter()
                .any(|vc| vc.commpage >> PAGE_SHIFT == u64::from(mpn))
            {
                return Some(COMMPAGE);
            }
            let (found, scanned) = vm.pmap.find(mpn);
            self.cost += scanned * VIRT.search_entry;
            if let Some(gpn) = found {
                return Some((v, gpn));
            }
        }
        None
    }

    fn user(&mut self, m: &Monitor, mpn: u32) -> Option<(usize, u32)> {
        match self.index {
            RemapIndex::Backmap => m.memmap.users(mpn).first().copied(),
            RemapIndex::Refcount if m.memmap.count(mpn) == 0 => None,
            _ => self.search(m, mpn),
        }
    }

    fn is_free(&mut self, m: &Monitor, mpn: u32) -> bool {
        (mpn as usize) < m.memmap.pages()
            && match self.index {
                RemapIndex::Backmap | RemapIndex::Refcount => m.memmap.count(mpn) == 0,
                RemapIndex::Search => self.search(m, mpn).is_none(),
            }
    }

    /// The first free machine page at or after `from` that no step of
    /// `batch` moves a page to.
    fn free_from(&mut self, m: &Monitor, from: u32, batch: &[Step]) -> Option<u32> {
        let taken = |p: u32| batch.iter().any(|s| s.lands_on(p));
        if self.index == RemapIndex::Backmap {
            let mut p = from;
            loop {
                let f = m.memmap.free_from(p)?;
                if !taken(f) {
                    return Some(f);
                }
                p = f.checked_add(1)?;
            }
        }
        let pages = u32::try_from(m.memmap.pages()).unwrap_or(u32::MAX);
        (from..pages).find(|&p| !taken(p) && self.is_free(m, p))
    }
}

/// One page move of a batch (the VM is the job's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Guest page `gpn` from machine page `from` to `to`.
    Move {
        gpn: u32,
        from: u32,
        to: u32,
        indirect: bool,
    },
    /// Guest page `a` (on machine page `ma`) and `b` (on `mb`) trade places.
    Swap { a: u32, ma: u32, b: u32, mb: u32 },
}

impl Step {
    fn lands_on(&self, p: u32) -> bool {
        match *self {
            Step::Move { to, .. } => to == p,
            Step::Swap { ma, mb, .. } => ma == p || mb == p,
        }
    }

    /// The (guest page, machine page) pairs it copies from, in copy order.
    fn sources(&self) -> impl Iterator<Item = (u32, u32)> {
        let (first, second) = match *self {
            Step::Move { gpn, from, .. } => ((gpn, from), None),
            Step::Swap { a, ma, b, mb } => ((a, ma), Some((b, mb))),
        };
        std::iter::once(first).chain(second)
    }
}

/// What is left to move.
#[derive(Clone, Debug)]
enum Plan {
    /// `evacuate`: (guest page, machine page) pairs, from `next` on.
    Targets { pairs: Vec<(u32, u32)>, next: usize },
    /// To the identity: guest pages `next..pages`; an indirect move looks
    /// for a free page from `cursor` (above the identity region, where
    /// nothing will land).
    Identity { next: u32, pages: u32, cursor: u32 },
}

/// A remapping of one VM, started and not yet done.
#[derive(Clone, Debug)]
pub struct Job {
    vm: usize,
    plan: Plan,
    users: Users,
    /// The batch being copied, and the bytes the copier read from its
    /// sources (a page per source, in [`Step::sources`] order).
    batch: Vec<Step>,
    bytes: Vec<u8>,
    /// When the copying CPU is done with the batch.
    done_at: u64,
    /// Batches so far: the copying CPU goes round the CPUs.
    batches: usize,
    started: u64,
    /// Lookup cycles already charged.
    charged: u64,
    moved: Moved,
    failed: Option<String>,
    done: bool,
}

impl Job {
    fn new(m: &Monitor, vm: usize, plan: Plan, index: RemapIndex, users_cost: u64) -> Job {
        Job {
            vm,
            plan,
            users: Users {
                index,
                cost: users_cost,
            },
            batch: Vec::new(),
            bytes: Vec::new(),
            done_at: 0,
            batches: 0,
            started: m.now(),
            charged: 0,
            moved: Moved::default(),
            failed: None,
            done: false,
        }
    }

    /// Whether the job has ended (moved everything, failed or was cut
    /// short by the VM's end).
    pub fn done(&self) -> bool {
        self.done
    }

    /// What it moved, or why it stopped.
    pub fn result(&self) -> Result<Moved, String> {
        match &self.failed {
            Some(why) => Err(why.clone()),
            None => Ok(self.moved),
        }
    }

    /// Fills the batch with at most `max` steps of the plan.
    fn plan_batch(&mut self, m: &Monitor, max: usize) {
        let Job {
            vm: v,
            plan,
            users,
            batch,
            failed,
            ..
        } = self;
        let Some(vm) = m.vms.get(*v) else { return };
        match plan {
            Plan::Targets { pairs, next } => {
                while batch.len() < max {
                    let Some(&(gpn, t)) = pairs.get(*next) else {
                        break;
                    };
                    *next += 1;
                    let Some(from) = vm.pmap.machine_page(u64::from(gpn)) else {
                        continue;
                    };
                    batch.push(match users.user(m, t) {
                        Some((_, b)) => Step::Swap {
                            a: gpn,
                            ma: from,
                            b,
                            mb: t,
                        },
                        None => Step::Move {
                            gpn,
                            from,
                            to: t,
                            indirect: false,
                        },
                    });
                }
            }
            Plan::Identity {
                next,
                pages,
                cursor,
            } => {
                while batch.len() < max && *next < *pages {
                    let gpn = *next;
                    let here = vm.pmap.machine_page(u64::from(gpn));
                    let Some(here) = here.filter(|&h| h != gpn) else {
                        *next += 1;
                        continue;
                    };
                    // A page of this batch leaving the target frees it first.
                    let leaving = |g: u32| batch.iter().any(|s| s.sources().any(|(sg, _)| sg == g));
                    match users
                        .user(m, gpn)
                        .filter(|&(o, g)| !(o == *v && leaving(g)))
                    {
                        None => {
                            batch.push(Step::Move {
                                gpn,
                                from: here,
                                to: gpn,
                                indirect: false,
                            });
                            *next += 1;
                        }
                        Some((o, g2)) if o == *v => {
                            // Another of the VM's pages sits on the target:
                            // out of the way first; this one follows in the
                            // next batch, once that copy is done.
                            let Some(free) = users.free_from(m, *cursor, batch) else {
                                *failed =
                                    Some("no free machine page for an indirect move".to_string());
                                return;
                            };
                            *cursor = free + 1;
                            batch.push(Step::Move {
                                gpn: g2,
                                from: gpn,
                                to: free,
                                indirect: true,
                            });
                            break;
                        }
                        Some(_) => {
                            *failed = Some(format!(
                                "machine page {:#x}, which the identity needs, belongs to another VM or a commpage",
                                u64::from(gpn) << PAGE_SHIFT
                            ));
                            return;
                        }
                    }
                }
            }
        }
    }

    /// The copier reads the batch's source pages.
    fn read_sources(&mut self, m: &Monitor) {
        self.bytes.clear();
        for (_, mpn) in self.batch.iter().flat_map(Step::sources) {
            let at = (u64::from(mpn) << PAGE_SHIFT) as usize;
            match m.machine.bus.ram().get(at..at + PAGE_SIZE as usize) {
                Some(page) => self.bytes.extend_from_slice(page),
                None => self.bytes.resize(self.bytes.len() + PAGE_SIZE as usize, 0),
            }
        }
    }

    /// Writes what the copier read to the new machine pages and points
    /// the pmap and the memmap at them.
    fn complete_batch(&mut self, m: &mut Monitor) {
        let v = self.vm;
        let page = PAGE_SIZE as usize;
        let mut at = 0;
        let mut put = |m: &mut Monitor, gpn: u32, from: u32, to: u32, bytes: &[u8]| {
            if let Some(b) = bytes.get(at..at + page) {
                // Stores re-decode any code the page held at its new address.
                m.machine.bus.write_bytes(u64::from(to) << PAGE_SHIFT, b);
            }
            at += page;
            if let Some(vm) = m.vms.get_mut(v) {
                vm.pmap.set(gpn, to);
            }
            m.memmap.remove(from, v, gpn);
        };
        for step in &self.batch {
            match *step {
                Step::Move {
                    gpn,
                    from,
                    to,
                    indirect,
                } => {
                    put(m, gpn, from, to, &self.bytes);
                    m.memmap.add(to, v, gpn);
                    if indirect {
                        self.moved.indirect += 1;
                    } else {
                        self.moved.direct += 1;
                    }
                }
                Step::Swap { a, ma, b, mb } => {
                    put(m, a, ma, mb, &self.bytes);
                    put(m, b, mb, ma, &self.bytes);
                    m.memmap.add(mb, v, a);
                    m.memmap.add(ma, v, b);
                    self.moved.direct += 2;
                }
            }
        }
        self.batch.clear();
    }
}

/// Invalidates, on every CPU and in VM `v`'s L2TLBs, the composed entries
/// that name one of machine pages `mpns`.
fn drop_composed(m: &mut Monitor, v: usize, mpns: &[u32]) {
    let on = |pfn: u32| mpns.contains(&pfn);
    for cpu in &mut m.machine.cpus {
        for i in 0..sim::cpu::TLB_ENTRIES {
            let e = cpu.tlb.read(i);
            let named = e
                .lo
                .iter()
                .any(|&l| l & sim::cpu::tlb::lo::V != 0 && on(l >> sim::cpu::tlb::lo::PFN_SHIFT));
            if named {
                cpu.tlb_write(i, sim::cpu::TlbEntry::unused(i));
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
    ctx.vcpu.remap_wait.get_or_insert(ctx.core.cycles);
    ctx.core.cycles = ctx.core.cycles.max(budget_end);
}

/// Drops every composed translation of VM `v`, in the real TLBs and its
/// L2TLBs, and charges `pause` to every CPU: the mapping changed.
/// `moved.pause` holds the index's lookup cycles on entry.
fn finish(m: &mut Monitor, v: usize, moved: &mut Moved) {
    let tlb = sim::cpu::TLB_ENTRIES as u64;
    moved.pause += moved.pages() * (VIRT.page_copy + VIRT.page_remap) + tlb * VIRT.tlb_flush_entry;
    moved.cycles = moved.pause;
    for cpu in &mut m.machine.cpus {
        tlbctl::flush_real_tlb(cpu);
        cpu.charge(moved.pause);
    }
    if let Some(vm) = m.vms.get_mut(v) {
        for vc in &mut vm.vcpus {
            vc.l2tlb.clear();
            vc.stats.monitor_cycles += moved.pause;
        }
    }
}

/// Carries out `job` now, every CPU held (`--remap paused`).
pub fn run_paused(m: &mut Monitor, mut job: Job) -> Result<Moved, String> {
    let v = job.vm;
    loop {
        job.plan_batch(m, usize::MAX);
        if job.batch.is_empty() || job.failed.is_some() {
            break;
        }
        job.read_sources(m);
        job.complete_batch(m);
    }
    if let Some(vm) = m.vms.get_mut(v) {
        vm.pmap.compact();
    }
    job.moved.pause = job.users.cost;
    finish(m, v, &mut job.moved);
    debug_check(m);
    job.result()
}

/// Starts `job` while the guest runs (`--remap concurrent`): its first
/// batch now, the others at the following quantum boundaries
/// ([`advance`]); the monitor holds it until it is done.
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
    job.plan_batch(m, BATCH);
    if job.batch.is_empty() || job.failed.is_some() {
        if let Some(vm) = m.vms.get_mut(v) {
            vm.pmap.compact();
        }
        job.batch.clear();
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
    let lookups = job.users.cost - job.charged;
    job.charged = job.users.cost;
    let work =
        lookups + pages * (VIRT.page_protect + VIRT.page_copy + VIRT.page_remap) + VIRT.shootdown;
    let ncpus = m.machine.cpus.len().max(1);
    let copier = job.batches % ncpus;
    job.batches += 1;
    for (p, cpu) in m.machine.cpus.iter_mut().enumerate() {
        let cost = if p == copier { work } else { VIRT.shootdown };
        cpu.charge(cost);
        if p == copier {
            job.done_at = cpu.cycles;
        }
    }
    if let Some(vm) = m.vms.get_mut(v) {
        for (i, vc) in vm.vcpus.iter_mut().enumerate() {
            vc.stats.monitor_cycles += if i == copier { work } else { VIRT.shootdown };
        }
    }
    job.moved.pause = job.moved.pause.max(work);
}

/// The job that moves VM `v`'s guest pages `first..end` (byte addresses)
/// to other machine pages: to `to..` if given (a page of the same VM found
/// there trades places with the one moving in), else to the lowest free
/// ones. Refused, with nothing moved, for a range outside the VM or not
/// whole pages, a target that cannot take the page, or too few free pages.
pub fn evacuation(
    m: &Monitor,
    v: usize,
    (first, end): (u64, u64),
    to: Option<u64>,
    index: RemapIndex,
) -> Result<Job, String> {
    let size = m.vms.get(v).map_or(0, |vm| vm.pmap.size());
    let name = m.vms.get(v).map_or(String::new(), |vm| vm.name.clone());
    if first >= end || end > size || first % PAGE_SIZE != 0 || end % PAGE_SIZE != 0 {
        return Err(format!(
            "{first:#x}-{end:#x} is not a range of whole 4K pages inside {name}'s {size:#x} bytes"
        ));
    }
    let mut users = Users { index, cost: 0 };
    let (g0, g1) = ((first >> PAGE_SHIFT) as u32, (end >> PAGE_SHIFT) as u32);
    let count = (g1 - g0) as usize;
    let mut targets = Vec::with_capacity(count);
    match to {
        Some(at) => {
            let t0 = at >> PAGE_SHIFT;
            if t0 + count as u64 > m.memmap.pages() as u64 {
                return Err(format!(
                    "machine {at:#x} + {:#x} lies outside machine memory",
                    end - first
                ));
            }
            for t in t0 as u32..(t0 as u32 + count as u32) {
                if let Some((o, g)) = users.user(m, t) {
                    if o != v || (g0..g1).contains(&g) {
                        return Err(format!(
                            "machine page {:#x} holds a page that cannot trade places (another VM's, a commpage, or one of the range)",
                            u64::from(t) << PAGE_SHIFT
                        ));
                    }
                }
                targets.push(t);
            }
        }
        None => {
            let mut cursor = 0;
            while targets.len() < count {
                let Some(t) = users.free_from(m, cursor, &[]) else {
                    return Err(format!(
                        "{count} free machine pages needed, {} free",
                        targets.len()
                    ));
                };
                targets.push(t);
                cursor = t + 1;
            }
        }
    }
    let plan = Plan::Targets {
        pairs: (g0..g1).zip(targets).collect(),
        next: 0,
    };
    Ok(Job::new(m, v, plan, index, users.cost))
}

/// [`evacuation`], carried out paused.
pub fn evacuate(
    m: &mut Monitor,
    v: usize,
    range: (u64, u64),
    to: Option<u64>,
    index: RemapIndex,
) -> Result<Moved, String> {
    let job = evacuation(m, v, range, to, index)?;
    run_paused(m, job)
}

/// Why the identity of VM `v`'s memory cannot be had, if it cannot: its
/// pmap points outside machine memory, or another VM's page or a commpage
/// sits where the identity needs to put one of its pages.
fn identity_refusal(m: &Monitor, v: usize) -> Option<String> {
    let vm = m.vms.get(v)?;
    let pages = vm.pmap.size() >> PAGE_SHIFT;
    let ram_pages = m.machine.bus.ram().len() as u64 >> PAGE_SHIFT;
    if pages > ram_pages {
        return Some(format!(
            "{}'s memory is larger than machine memory",
            vm.name
        ));
    }
    if (0..pages).any(|g| {
        vm.pmap
            .machine_page(g)
            .is_none_or(|p| u64::from(p) >= ram_pages)
    }) {
        return Some(format!(
            "{}'s pmap maps pages outside machine memory",
            vm.name
        ));
    }
    for (o, other) in m.vms.iter().enumerate() {
        if !m.memmap.holds(o) {
            continue;
        }
        let commpage = other
            .vcpus
            .iter()
            .map(|vc| vc.commpage >> PAGE_SHIFT)
            .find(|&p| p < pages);
        let page = (o != v)
            .then(|| {
                (0..other.pmap.size() >> PAGE_SHIFT)
                    .filter_map(|g| other.pmap.machine_page(g))
                    .map(u64::from)
                    .find(|&p| p < pages)
            })
            .flatten();
        if let Some(p) = commpage.or(page) {
            return Some(format!(
                "machine page {:#x}, which the identity needs, belongs to another VM or a commpage",
                p << PAGE_SHIFT
            ));
        }
    }
    None
}

/// The job that remaps VM `v` until its pmap is the identity: a page
/// whose target machine page is free moves there directly; a page whose
/// target holds another of the VM's pages waits until that one has moved
/// out through a free page (indirect). Refused when a target belongs to
/// another VM or a commpage; `None` when the pmap is the identity already.
pub fn identity(m: &Monitor, v: usize, index: RemapIndex) -> Result<Option<Job>, String> {
    if let Some(why) = identity_refusal(m, v) {
        return Err(why);
    }
    let Some(vm) = m.vms.get(v).filter(|vm| !vm.pmap.is_identity()) else {
        return Ok(None);
    };
    let pages = (vm.pmap.size() >> PAGE_SHIFT) as u32;
    let plan = Plan::Identity {
        next: 0,
        pages,
        cursor: pages,
    };
    Ok(Some(Job::new(m, v, plan, index, 0)))
}

/// [`identity`], carried out paused.
pub fn to_identity(m: &mut Monitor, v: usize, index: RemapIndex) -> Result<Moved, String> {
    match identity(m, v, index)? {
        Some(job) => run_paused(m, job),
        None => Ok(Moved::default()),
    }
}
