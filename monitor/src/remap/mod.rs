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

mod concurrent;
mod job;

use sim::hv::{PAGE_SHIFT, PAGE_SIZE};

use crate::mem::{Memmap, Pmap};
use crate::{tlbctl, Monitor, Vm};

pub use concurrent::{run_concurrent, step, take_done, wait_for_copy};
pub use job::Job;
use job::{Plan, Users};

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

/// Lookup cycles not yet charged after which a concurrent batch takes no
/// further page: a quarter of one pmap search of a displaced 32 MB VM
/// (8,192 entries at 2 cycles). The `search` index pays up to a whole
/// search per page, so without this bound a batch of 16 pauses its copier
/// for about 300,000 cycles; with it a batch stops at a page or two and
/// its pause stays under the other indexes' (18,662 against 33,448 in
/// `disco bench`).
pub const BATCH_LOOKUPS: u64 = 4_096;

/// The most lookup cycles made up front (an evacuation's choice of free
/// targets) that one concurrent batch pays: the rest waits for the next.
pub const BATCH_BACKLOG: u64 = 4 * BATCH_LOOKUPS;

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
pub(crate) fn debug_check(m: &Monitor) {
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
    // Typed here: with Cranelift in the build, `for &c in &commpages` no
    // longer infers it (a blanket `IntoIterator` in regalloc2).
    let (pmap, commpages): (Pmap, Vec<u64>) = match run {
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

/// Drops every composed translation of VM `v`, in the real TLBs and its
/// L2TLBs, and charges `pause` to every CPU: the mapping changed.
/// `moved.pause` holds the index's lookup cycles on entry.
fn finish(m: &mut Monitor, v: usize, moved: &mut Moved) {
    let tlb = sim::hv::TLB_ENTRIES as u64;
    let c = m.config.cost.virt;
    moved.pause += moved.pages() * (c.page_copy + c.page_remap) + tlb * c.tlb_flush_entry;
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
        job.plan_batch(m, usize::MAX, u64::MAX);
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
    let (g0, g1) = ((first >> PAGE_SHIFT) as u32, (end >> PAGE_SHIFT) as u32);
    let passthrough = m
        .vms
        .get(v)
        .map(|vm| vm.pmap.passthrough.clone())
        .unwrap_or_default();
    if passthrough.overlaps(g0, g1) {
        return Err(format!(
            "{first:#x}-{end:#x} holds pages passed through, not composed (memory not virtualized there): virtualize-memory first"
        ));
    }
    let mut users = Users { index, cost: 0 };
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
                    if o != v || (g0..g1).contains(&g) || passthrough.contains(g) {
                        return Err(format!(
                            "machine page {:#x} holds a page that cannot trade places (another VM's, a commpage, one of the range, or one passed through)",
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

/// Why the identity of VM `v`'s guest pages `g0..g1` cannot be had, if it
/// cannot: its pmap points outside machine memory, or another VM's page or
/// a commpage sits where the identity needs to put one of its pages.
fn identity_refusal(m: &Monitor, v: usize, (g0, g1): (u32, u32)) -> Option<String> {
    let vm = m.vms.get(v)?;
    let pages = vm.pmap.size() >> PAGE_SHIFT;
    let (g0, g1) = (u64::from(g0), u64::from(g1));
    let ram_pages = m.machine.bus.ram_len() >> PAGE_SHIFT;
    if pages > ram_pages {
        return Some(format!(
            "{}'s memory is larger than machine memory",
            vm.name
        ));
    }
    if (g0..g1).any(|g| {
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
            .find(|&p| (g0..g1).contains(&p));
        let page = (o != v)
            .then(|| {
                (0..other.pmap.size() >> PAGE_SHIFT)
                    .filter_map(|g| other.pmap.machine_page(g))
                    .map(u64::from)
                    .find(|&p| (g0..g1).contains(&p))
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
    let pages = m
        .vms
        .get(v)
        .map_or(0, |vm| (vm.pmap.size() >> PAGE_SHIFT) as u32);
    range_identity(m, v, (0, pages), index)
}

/// [`identity`] for guest pages `g0..g1` only (partial
/// devirtualization): pages outside stay where they are, except one of the
/// VM's that sits on a target, which moves out of the way.
pub fn range_identity(
    m: &Monitor,
    v: usize,
    (g0, g1): (u32, u32),
    index: RemapIndex,
) -> Result<Option<Job>, String> {
    if let Some(why) = identity_refusal(m, v, (g0, g1)) {
        return Err(why);
    }
    let in_place = |vm: &&crate::Vm| {
        vm.pmap.is_identity() || (g0..g1).all(|g| vm.pmap.machine_page(u64::from(g)) == Some(g))
    };
    let Some(vm) = m.vms.get(v).filter(|vm| !in_place(vm)) else {
        return Ok(None);
    };
    let pages = (vm.pmap.size() >> PAGE_SHIFT) as u32;
    let plan = Plan::Identity {
        next: g0,
        pages: g1,
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

/// [`range_identity`], carried out paused.
pub fn range_to_identity(
    m: &mut Monitor,
    v: usize,
    range: (u32, u32),
    index: RemapIndex,
) -> Result<Moved, String> {
    match range_identity(m, v, range, index)? {
        Some(job) => run_paused(m, job),
        None => Ok(Moved::default()),
    }
}
