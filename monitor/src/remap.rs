//! Changing a VM's mapping while it is virtual: `evacuate` moves guest
//! pages to other machine pages, and devirtualization moves them back
//! until physical → machine is the identity (docs/devirtualization.md).
//!
//! Remapping is `paused`: every VCPU is held at the quantum boundary while
//! pages move, and the pause is charged to every CPU. Which VM page a
//! machine page holds is found through one of three indexes
//! ([`RemapIndex`]); the back map and the counts are built from the pmaps
//! for each operation (the live `Memmap` is not used yet).

use sim::mem::{PAGE_SHIFT, PAGE_SIZE};

use crate::{tlbctl, Monitor};

/// What a remapping did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Moved {
    /// Pages copied straight to their new machine page.
    pub direct: u64,
    /// Pages first moved out of the way, through a free page, because the
    /// target held another of the VM's pages.
    pub indirect: u64,
    /// Cycles every CPU was held.
    pub pause: u64,
}

impl Moved {
    pub fn pages(&self) -> u64 {
        self.direct + self.indirect
    }
}

/// How remapping finds a machine page's user (`--remap-index`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RemapIndex {
    /// A back map: machine page → (VM, guest page), and so free or not.
    #[default]
    Backmap,
    /// A reference count per machine page (free at zero); the user of a
    /// page in use is found by searching the pmaps.
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

/// A commpage's "user".
const COMMPAGE: (usize, u32) = (usize::MAX, 0);

/// The chosen index over machine pages, and the simulated cycles its
/// questions cost. The back map and the counts are built from the pmaps
/// when a remapping starts (a monitor would keep them as pages are mapped;
/// that build is not charged).
struct Users {
    index: RemapIndex,
    pages: usize,
    owner: Vec<Option<(usize, u32)>>,
    count: Vec<u16>,
    cost: u64,
}

impl Users {
    fn new(m: &Monitor, index: RemapIndex) -> Users {
        let pages = (m.machine.bus.ram().len() as u64 >> PAGE_SHIFT) as usize;
        let mut u = Users {
            index,
            pages,
            owner: Vec::new(),
            count: Vec::new(),
            cost: 0,
        };
        match index {
            RemapIndex::Backmap => u.owner = vec![None; pages],
            RemapIndex::Refcount => u.count = vec![0; pages],
            RemapIndex::Search => return u,
        }
        for (v, vm) in m.vms.iter().enumerate() {
            for gpn in 0..(vm.pmap.size() >> PAGE_SHIFT) {
                if let Some(mpn) = vm.pmap.machine_page(gpn) {
                    u.set(mpn, Some((v, gpn as u32)));
                }
            }
            for vc in &vm.vcpus {
                u.set((vc.commpage >> PAGE_SHIFT) as u32, Some(COMMPAGE));
            }
        }
        u
    }

    fn len(&self) -> usize {
        self.pages
    }

    /// Searches the pmaps (a range answers at once; a page list entry by
    /// entry, each charged) and the commpages.
    fn search(&mut self, m: &Monitor, mpn: u32) -> Option<(usize, u32)> {
        for (v, vm) in m.vms.iter().enumerate() {
            if vm
                .vcpus
                .iter()
                .any(|vc| vc.commpage >> PAGE_SHIFT == u64::from(mpn))
            {
                return Some(COMMPAGE);
            }
            let (found, scanned) = vm.pmap.find(mpn);
            self.cost += scanned * m.config.cost.virt.search_entry;
            if let Some(gpn) = found {
                return Some((v, gpn));
            }
        }
        None
    }

    fn user(&mut self, m: &Monitor, mpn: u32) -> Option<(usize, u32)> {
        match self.index {
            RemapIndex::Backmap => self.owner.get(mpn as usize).copied().flatten(),
            RemapIndex::Refcount if self.count.get(mpn as usize).copied().unwrap_or(0) == 0 => None,
            _ => self.search(m, mpn),
        }
    }

    fn is_free(&mut self, m: &Monitor, mpn: u32) -> bool {
        match self.index {
            RemapIndex::Backmap => self.owner.get(mpn as usize).is_some_and(Option::is_none),
            RemapIndex::Refcount => self.count.get(mpn as usize) == Some(&0),
            RemapIndex::Search => (mpn as usize) < self.pages && self.search(m, mpn).is_none(),
        }
    }

    /// The first free machine page at or after `from`.
    fn free_from(&mut self, m: &Monitor, from: usize) -> Option<u32> {
        (from..self.pages)
            .map(|p| p as u32)
            .find(|&p| self.is_free(m, p))
    }

    /// Machine page `mpn` now holds `who` (or nothing).
    fn set(&mut self, mpn: u32, who: Option<(usize, u32)>) {
        match self.index {
            RemapIndex::Backmap => {
                if let Some(o) = self.owner.get_mut(mpn as usize) {
                    *o = who;
                }
            }
            RemapIndex::Refcount => {
                if let Some(c) = self.count.get_mut(mpn as usize) {
                    *c = if who.is_some() {
                        c.saturating_add(1)
                    } else {
                        c.saturating_sub(1)
                    };
                }
            }
            RemapIndex::Search => {}
        }
    }
}

fn copy_page(m: &mut Monitor, from: u32, to: u32) {
    let (src, dst) = (u64::from(from) << PAGE_SHIFT, u64::from(to) << PAGE_SHIFT);
    let bytes = m
        .machine
        .bus
        .ram()
        .get(src as usize..(src + PAGE_SIZE) as usize)
        .map(<[u8]>::to_vec);
    if let Some(bytes) = bytes {
        // Stores re-decode any code the page held at its new address.
        m.machine.bus.write_bytes(dst, &bytes);
    }
}

/// Moves guest page `gpn` of VM `v` to machine page `to`, keeping the index.
fn move_page(m: &mut Monitor, users: &mut Users, v: usize, gpn: u32, to: u32) {
    let Some(from) = m
        .vms
        .get(v)
        .and_then(|vm| vm.pmap.machine_page(u64::from(gpn)))
    else {
        return;
    };
    copy_page(m, from, to);
    if let Some(vm) = m.vms.get_mut(v) {
        vm.pmap.set(gpn, to);
    }
    users.set(from, None);
    users.set(to, Some((v, gpn)));
}

/// Drops every composed translation of VM `v`, in the real TLBs and its
/// L2TLBs, and charges `pause` to every CPU: the mapping changed.
/// `moved.pause` holds the index's lookup cycles on entry.
fn finish(m: &mut Monitor, v: usize, moved: &mut Moved) {
    let tlb = sim::cpu::TLB_ENTRIES as u64;
    let c = m.config.cost.virt;
    moved.pause += moved.pages() * (c.page_copy + c.page_remap) + tlb * c.tlb_flush_entry;
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

/// Moves VM `v`'s guest pages `first..end` (byte addresses) to other
/// machine pages: to `to..` if given (a page of the same VM found there
/// trades places with the one moving in), else to the lowest free ones.
pub fn evacuate(
    m: &mut Monitor,
    v: usize,
    (first, end): (u64, u64),
    to: Option<u64>,
    index: RemapIndex,
) -> Result<Moved, String> {
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
    let mut users = Users::new(m, index);
    let count = (g1 - g0) as usize;
    let mut targets = Vec::with_capacity(count);
    match to {
        Some(at) => {
            let t0 = at >> PAGE_SHIFT;
            if t0 + count as u64 > users.len() as u64 {
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
                let Some(t) = users.free_from(m, cursor) else {
                    return Err(format!(
                        "{count} free machine pages needed, {} free",
                        targets.len()
                    ));
                };
                targets.push(t);
                cursor = t as usize + 1;
            }
        }
    }
    let mut moved = Moved::default();
    for (gpn, &t) in (g0..g1).zip(&targets) {
        let from = m
            .vms
            .get(v)
            .and_then(|vm| vm.pmap.machine_page(u64::from(gpn)));
        let Some(from) = from else { continue };
        match users.user(m, t) {
            // Trade places: the page there takes the one leaving.
            Some((_, g2)) => {
                let bytes_here = m
                    .machine
                    .bus
                    .ram()
                    .get(
                        (u64::from(t) << PAGE_SHIFT) as usize
                            ..((u64::from(t) + 1) << PAGE_SHIFT) as usize,
                    )
                    .map(<[u8]>::to_vec);
                users.set(t, None);
                move_page(m, &mut users, v, gpn, t);
                if let Some(bytes) = bytes_here {
                    m.machine
                        .bus
                        .write_bytes(u64::from(from) << PAGE_SHIFT, &bytes);
                }
                if let Some(vm) = m.vms.get_mut(v) {
                    vm.pmap.set(g2, from);
                }
                users.set(from, Some((v, g2)));
                moved.direct += 2;
            }
            None => {
                move_page(m, &mut users, v, gpn, t);
                moved.direct += 1;
            }
        }
    }
    moved.pause = users.cost;
    finish(m, v, &mut moved);
    Ok(moved)
}

/// Why the identity of VM `v`'s guest pages `g0..g1` cannot be had, if it
/// cannot: its pmap points outside machine memory, or another VM's page or
/// a commpage sits where the identity needs to put one of its pages.
fn identity_refusal(m: &Monitor, v: usize, (g0, g1): (u32, u32)) -> Option<String> {
    let vm = m.vms.get(v)?;
    let pages = vm.pmap.size() >> PAGE_SHIFT;
    let (g0, g1) = (u64::from(g0), u64::from(g1));
    let ram_pages = m.machine.bus.ram().len() as u64 >> PAGE_SHIFT;
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

/// Remaps VM `v` until its pmap is the identity: a page whose target
/// machine page is free moves there directly; a page whose target holds
/// another of the VM's pages waits until that one has moved out through a
/// free page (indirect). Refused when a target belongs to another VM or a
/// commpage, or when no free page exists for an indirect move.
pub fn to_identity(m: &mut Monitor, v: usize, index: RemapIndex) -> Result<Moved, String> {
    let pages = m
        .vms
        .get(v)
        .map_or(0, |vm| (vm.pmap.size() >> PAGE_SHIFT) as u32);
    range_to_identity(m, v, (0, pages), index)
}

/// [`to_identity`] for guest pages `g0..g1` only (partial
/// devirtualization): pages outside stay where they are, except one of the
/// VM's that sits on a target, which moves out of the way.
pub fn range_to_identity(
    m: &mut Monitor,
    v: usize,
    (g0, g1): (u32, u32),
    index: RemapIndex,
) -> Result<Moved, String> {
    if let Some(why) = identity_refusal(m, v, (g0, g1)) {
        return Err(why);
    }
    let pages = m
        .vms
        .get(v)
        .map_or(0, |vm| (vm.pmap.size() >> PAGE_SHIFT) as u32);
    let in_place = |vm: &crate::Vm| {
        vm.pmap.is_identity() || (g0..g1).all(|g| vm.pmap.machine_page(u64::from(g)) == Some(g))
    };
    if m.vms.get(v).is_none_or(in_place) {
        return Ok(Moved::default());
    }
    let mut users = Users::new(m, index);
    let mut moved = Moved::default();
    // Free pages for indirect moves: above the identity region, where
    // nothing will land.
    let mut cursor = pages as usize;
    for gpn in g0..g1 {
        let here = m
            .vms
            .get(v)
            .and_then(|vm| vm.pmap.machine_page(u64::from(gpn)));
        if here == Some(gpn) {
            continue;
        }
        if let Some((_, g2)) = users.user(m, gpn) {
            // Another of the VM's pages sits on the target: out of the way first.
            let Some(free) = users.free_from(m, cursor) else {
                return Err("no free machine page for an indirect move".to_string());
            };
            cursor = free as usize + 1;
            move_page(m, &mut users, v, g2, free);
            moved.indirect += 1;
        }
        move_page(m, &mut users, v, gpn, gpn);
        moved.direct += 1;
    }
    if let Some(vm) = m.vms.get_mut(v) {
        vm.pmap.compact();
    }
    moved.pause = users.cost;
    finish(m, v, &mut moved);
    Ok(moved)
}
