//! Machine memory as the monitor manages it: the machine-page allocator,
//! each VM's pmap (guest-physical page → machine page), the memmap (machine
//! page → the (VM, guest page) pairs that map it), and machine ASIDs.

use std::collections::BTreeSet;
use std::fmt;

use sim::hv::PAGE_SHIFT;

/// A guest-physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GuestPhys(pub u64);

/// A machine (host-simulated physical) address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MachineAddr(pub u64);

/// Hands out machine pages; deterministic (lowest page first).
#[derive(Clone, Debug)]
pub struct FrameAllocator {
    free: Vec<u32>,
}

impl FrameAllocator {
    /// Manages machine pages `first..first+count`.
    pub fn new(first: u32, count: u32) -> FrameAllocator {
        FrameAllocator {
            free: (first..first.saturating_add(count)).rev().collect(),
        }
    }

    pub fn alloc(&mut self) -> Option<u32> {
        self.free.pop()
    }
}

/// One VM's guest-physical → machine page map: a page list, or a range
/// (guest page n is machine page `first + n`), which is what runtime
/// virtualization builds: writing 8,192 entries for 32 MB would pause the
/// guest for longer than the whole switch may take (docs/devirtualization.md).
#[derive(Clone, Debug)]
pub struct Pmap {
    pages: Vec<u32>,
    /// `(first machine page, pages)` when the map is a range; `pages` is
    /// then empty.
    range: Option<(u32, u32)>,
    /// Guest pages not composed: each is on the machine page of its own
    /// number and the guest's entries for it are installed as they are
    /// (`crate::memstate`).
    pub passthrough: PageSet,
    /// Guest pages being copied by concurrent remapping: stores to them
    /// wait until the copy is done (`remap`). At most one batch.
    protected: Vec<u32>,
}

impl Pmap {
    pub fn new(pages: Vec<u32>) -> Pmap {
        Pmap {
            pages,
            range: None,
            passthrough: Default::default(),
            protected: Vec::new(),
        }
    }

    /// Guest pages `0..count` on machine pages `first..first + count`.
    pub fn range(first: u32, count: u32) -> Pmap {
        Pmap {
            pages: Vec::new(),
            range: Some((first, count)),
            passthrough: Default::default(),
            protected: Vec::new(),
        }
    }

    /// Write-protects guest pages `gpns` (the batch being copied), or
    /// lifts the protection with an empty list.
    pub fn protect(&mut self, gpns: impl Iterator<Item = u32>) {
        self.protected.clear();
        self.protected.extend(gpns);
    }

    /// Whether a store to `gpa` must wait for a copy to finish.
    #[inline]
    pub fn write_protected(&self, gpa: GuestPhys) -> bool {
        !self.protected.is_empty()
            && u32::try_from(gpa.0 >> PAGE_SHIFT).is_ok_and(|g| self.protected.contains(&g))
    }

    /// Whether every guest page is the machine page of the same number:
    /// physical → machine is the identity, so the guest can run on the
    /// bare machine.
    pub fn is_identity(&self) -> bool {
        match self.range {
            Some((first, _)) => first == 0,
            None => self
                .pages
                .iter()
                .enumerate()
                .all(|(g, &m)| g as u64 == u64::from(m)),
        }
    }

    /// Points guest page `gpn` at machine page `mpn`; a range becomes a
    /// page list first (returns false for a page the VM does not have).
    pub fn set(&mut self, gpn: u32, mpn: u32) -> bool {
        if let Some((first, count)) = self.range.take() {
            self.pages = (first..first.saturating_add(count)).collect();
        }
        match self.pages.get_mut(gpn as usize) {
            Some(p) => {
                *p = mpn;
                true
            }
            None => false,
        }
    }

    /// The guest page mapped to machine page `mpn`, and how many entries
    /// were looked at to find out (a range answers with one).
    pub fn find(&self, mpn: u32) -> (Option<u32>, u64) {
        if let Some((first, count)) = self.range {
            let g = mpn.checked_sub(first).filter(|&g| g < count);
            return (g, 1);
        }
        match self.pages.iter().position(|&p| p == mpn) {
            Some(i) => (u32::try_from(i).ok(), i as u64 + 1),
            None => (None, self.pages.len() as u64),
        }
    }

    /// Back to the range form once the list is the identity again.
    pub fn compact(&mut self) {
        if self.range.is_none() && self.is_identity() {
            let count = u32::try_from(self.pages.len()).unwrap_or(u32::MAX);
            self.pages = Vec::new();
            self.range = Some((0, count));
        }
    }

    /// Whether its pages are passed through, composed, or some of each.
    pub fn state(&self) -> MemoryState {
        MemoryState::of(&self.passthrough, self.size() >> PAGE_SHIFT)
    }

    /// Bytes of guest-physical memory.
    pub fn size(&self) -> u64 {
        let pages = match self.range {
            Some((_, count)) => u64::from(count),
            None => self.pages.len() as u64,
        };
        pages << PAGE_SHIFT
    }

    /// The machine page backing guest page `gpn`, if the VM has one.
    #[inline]
    pub fn machine_page(&self, gpn: u64) -> Option<u32> {
        if let Some((first, count)) = self.range {
            let gpn = u32::try_from(gpn).ok().filter(|&g| g < count)?;
            return first.checked_add(gpn);
        }
        self.pages.get(usize::try_from(gpn).ok()?).copied()
    }

    /// Guest-physical to machine address, if backed by RAM.
    #[inline]
    pub fn translate(&self, gpa: GuestPhys) -> Option<MachineAddr> {
        let mpn = self.machine_page(gpa.0 >> PAGE_SHIFT)?;
        Some(MachineAddr(
            (u64::from(mpn) << PAGE_SHIFT) | (gpa.0 & 0xFFF),
        ))
    }
}

/// The user of a machine page that holds a VCPU's commpage.
pub const COMMPAGE: (usize, u32) = (usize::MAX, 0);

/// Machine memory's live bookkeeping, kept current by every allocation,
/// move and VM end (docs/devirtualization.md): the back map (machine page
/// → the (VM, guest page) pairs that map it, or [`COMMPAGE`]), a
/// reference count per machine page, and the free list (pages nobody
/// maps, lowest first). `--remap-index` chooses which of them remapping
/// consults and is charged for (`remap::Users`); all three are kept so
/// that [`Memmap::check`] can hold each against the pmaps.
#[derive(Clone, Debug, Default)]
pub struct Memmap {
    users: Vec<Vec<(usize, u32)>>,
    counts: Vec<u16>,
    free: BTreeSet<u32>,
    /// VMs whose memory went back to the free list when they ended.
    released: Vec<usize>,
}

impl Memmap {
    /// `machine_pages` pages, all free.
    pub fn new(machine_pages: usize) -> Memmap {
        let top = u32::try_from(machine_pages).unwrap_or(u32::MAX);
        Memmap {
            users: vec![Vec::new(); machine_pages],
            counts: vec![0; machine_pages],
            free: (0..top).collect(),
            released: Vec::new(),
        }
    }

    /// The map of `machine_pages` pages that `pmaps` (per VM: its number,
    /// its pmap and its VCPUs' commpage addresses) use.
    pub fn of<'a>(
        machine_pages: usize,
        pmaps: impl Iterator<Item = (usize, &'a Pmap, Vec<u64>)>,
    ) -> Memmap {
        let mut m = Memmap::new(machine_pages);
        for (vm, pmap, commpages) in pmaps {
            for gpn in 0..pmap.size() >> PAGE_SHIFT {
                if let Some(mpn) = pmap.machine_page(gpn) {
                    m.add(mpn, vm, u32::try_from(gpn).unwrap_or(u32::MAX));
                }
            }
            for c in commpages {
                m.add_commpage(c);
            }
        }
        m
    }

    pub fn pages(&self) -> usize {
        self.users.len()
    }

    /// Machine page `mpn` now also maps guest page `gpn` of VM `vm`.
    pub fn add(&mut self, mpn: u32, vm: usize, gpn: u32) {
        if let (Some(u), Some(c)) = (
            self.users.get_mut(mpn as usize),
            self.counts.get_mut(mpn as usize),
        ) {
            u.push((vm, gpn));
            *c = c.saturating_add(1);
            self.free.remove(&mpn);
        }
    }

    /// Machine address `at` holds a commpage.
    pub fn add_commpage(&mut self, at: u64) {
        let (vm, gpn) = COMMPAGE;
        self.add(u32::try_from(at >> PAGE_SHIFT).unwrap_or(u32::MAX), vm, gpn);
    }

    /// Machine page `mpn` no longer maps guest page `gpn` of VM `vm`; it
    /// goes back to the free list when nothing maps it any more.
    pub fn remove(&mut self, mpn: u32, vm: usize, gpn: u32) {
        let (Some(u), Some(c)) = (
            self.users.get_mut(mpn as usize),
            self.counts.get_mut(mpn as usize),
        ) else {
            return;
        };
        let Some(i) = u.iter().position(|&x| x == (vm, gpn)) else {
            return;
        };
        u.swap_remove(i);
        *c = c.saturating_sub(1);
        if *c == 0 {
            self.free.insert(mpn);
        }
    }

    /// The (VM, guest page) pairs mapping machine page `mpn`.
    pub fn users(&self, mpn: u32) -> &[(usize, u32)] {
        self.users.get(mpn as usize).map_or(&[], |u| u.as_slice())
    }

    /// How many pairs map machine page `mpn` (0: free).
    pub fn count(&self, mpn: u32) -> u16 {
        self.counts.get(mpn as usize).copied().unwrap_or(0)
    }

    /// The lowest free machine page at or after `from`.
    pub fn free_from(&self, from: u32) -> Option<u32> {
        self.free.range(from..).next().copied()
    }

    pub fn free_pages(&self) -> usize {
        self.free.len()
    }

    /// The lowest run of `len` free machine pages, by its first page.
    pub fn free_run(&self, len: u32) -> Option<u32> {
        let (mut start, mut run) = (0u32, 0u32);
        for &p in &self.free {
            if run > 0 && p == start.saturating_add(run) {
                run += 1;
            } else {
                (start, run) = (p, 1);
            }
            if run >= len {
                return Some(start);
            }
        }
        None
    }

    /// The lowest `n` free machine pages, or `None` if there are fewer.
    pub fn lowest_free(&self, n: usize) -> Option<Vec<u32>> {
        let pages: Vec<u32> = self.free.iter().take(n).copied().collect();
        (pages.len() == n).then_some(pages)
    }

    /// VM `vm` ended: every machine page it mapped, and its commpages,
    /// go back to the free list.
    pub fn release(&mut self, vm: usize, pmap: &Pmap, commpages: &[u64]) {
        if self.released.contains(&vm) {
            return;
        }
        self.released.push(vm);
        for gpn in 0..pmap.size() >> PAGE_SHIFT {
            if let Some(mpn) = pmap.machine_page(gpn) {
                self.remove(mpn, vm, u32::try_from(gpn).unwrap_or(u32::MAX));
            }
        }
        for &c in commpages {
            let (v, g) = COMMPAGE;
            self.remove(u32::try_from(c >> PAGE_SHIFT).unwrap_or(u32::MAX), v, g);
        }
    }

    /// Whether VM `vm`'s pages are still its own (it has not ended and
    /// given them back).
    pub fn holds(&self, vm: usize) -> bool {
        !self.released.contains(&vm)
    }

    /// Whether the back map, the counts and the free list say exactly
    /// what the pmaps and commpages of the VMs that hold memory say (as
    /// [`Memmap::of`] takes them): the debug check run after each
    /// operation. The first disagreement, if any.
    pub fn check<'a>(
        &self,
        pmaps: impl Iterator<Item = (usize, &'a Pmap, Vec<u64>)>,
    ) -> Result<(), String> {
        let want = Memmap::of(self.pages(), pmaps.filter(|(v, _, _)| self.holds(*v)));
        for (mpn, (have, want_users)) in self.users.iter().zip(&want.users).enumerate() {
            let mut have = have.clone();
            have.sort_unstable();
            let mut w = want_users.clone();
            w.sort_unstable();
            let count = self.counts.get(mpn).copied().unwrap_or(0);
            let free = self.free.contains(&u32::try_from(mpn).unwrap_or(u32::MAX));
            if have != w || usize::from(count) != w.len() || free != w.is_empty() {
                return Err(format!(
                    "machine page {mpn:#x}: back map {have:?}, count {count}, free {free}; the pmaps say {w:?}"
                ));
            }
        }
        Ok(())
    }
}

/// Machine ASIDs: each (address space, guest ASID) pair in use gets its
/// own, so two VMs, or two VCPUs of one VM, never share a real TLB entry
/// (an address space is one VCPU's; see [`crate::vcpu::Vcpu::space`]). When all 255 are taken, a new generation
/// starts: every real TLB is flushed and assignment starts over.
#[derive(Clone, Debug, Default)]
pub struct Asids {
    /// Per address space, guest ASID → machine ASID (0 = none in this generation).
    map: Vec<[u8; 256]>,
    next: u16,
    pub generation: u64,
}

impl Asids {
    pub fn new(spaces: usize) -> Asids {
        Asids {
            map: vec![[0; 256]; spaces],
            next: 1,
            generation: 0,
        }
    }

    /// The machine ASID of `(space, guest_asid)`, assigning one if needed.
    /// `None` means the ASIDs ran out: the caller must flush every real
    /// TLB, call [`Asids::new_generation`] and ask again.
    pub fn get(&mut self, space: usize, guest_asid: u8) -> Option<u8> {
        let row = self.map.get_mut(space)?;
        let slot = &mut row[usize::from(guest_asid)];
        if *slot != 0 {
            return Some(*slot);
        }
        if self.next > 255 {
            return None;
        }
        // 1..=255: exact.
        *slot = self.next as u8;
        self.next += 1;
        Some(*slot)
    }

    /// How many address spaces there are.
    pub fn spaces(&self) -> usize {
        self.map.len()
    }

    /// Room for `n` more address spaces (VCPUs of a VM started later).
    pub fn add_spaces(&mut self, n: usize) -> usize {
        let first = self.map.len();
        self.map.resize(first + n, [0; 256]);
        first
    }

    pub fn new_generation(&mut self) {
        for row in &mut self.map {
            *row = [0; 256];
        }
        self.next = 1;
        self.generation += 1;
    }

    /// Whether machine ASID `masid` currently belongs to address space `space`.
    pub fn owned_by(&self, space: usize, masid: u8) -> bool {
        masid != 0 && self.map.get(space).is_some_and(|row| row.contains(&masid))
    }
}

/// A set of guest pages as sorted, disjoint, half-open ranges: a switch
/// adds or removes a whole range at a cost that does not grow with its
/// size, and a lookup on the refill path looks at a handful of ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageSet {
    ranges: Vec<(u32, u32)>,
}

impl PageSet {
    /// Pages `first..end`.
    pub fn of(first: u32, end: u32) -> PageSet {
        let mut s = PageSet::default();
        s.insert(first, end);
        s
    }

    #[inline]
    pub fn contains(&self, page: u32) -> bool {
        self.ranges.iter().any(|&(a, b)| (a..b).contains(&page))
    }

    /// Whether any page of `first..end` is in the set.
    pub fn overlaps(&self, first: u32, end: u32) -> bool {
        self.ranges.iter().any(|&(a, b)| a < end && first < b)
    }

    pub fn insert(&mut self, first: u32, end: u32) {
        if first >= end {
            return;
        }
        let (mut lo, mut hi) = (first, end);
        // Every range touching the new one merges into it.
        self.ranges.retain(|&(a, b)| {
            let touches = a <= hi && lo <= b;
            if touches {
                lo = lo.min(a);
                hi = hi.max(b);
            }
            !touches
        });
        let at = self.ranges.partition_point(|&(a, _)| a < lo);
        self.ranges.insert(at, (lo, hi));
    }

    pub fn remove(&mut self, first: u32, end: u32) {
        let mut out = Vec::with_capacity(self.ranges.len() + 1);
        for &(a, b) in &self.ranges {
            if b <= first || end <= a {
                out.push((a, b));
                continue;
            }
            if a < first {
                out.push((a, first));
            }
            if end < b {
                out.push((end, b));
            }
        }
        self.ranges = out;
    }

    /// How many pages the set holds.
    pub fn pages(&self) -> u64 {
        self.ranges.iter().map(|&(a, b)| u64::from(b - a)).sum()
    }

    pub fn ranges(&self) -> &[(u32, u32)] {
        &self.ranges
    }
}

/// A virtualized kernel's memory as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryState {
    /// Every page passed through: only the CPUs are virtual.
    PassThrough,
    /// Every page composed through the pmap.
    Virtual,
    /// Some pages passed through, the others composed.
    Partial { passthrough: u64, pages: u64 },
}

impl MemoryState {
    /// The state of `pages` guest pages of which `passthrough` pass through.
    pub fn of(passthrough: &PageSet, pages: u64) -> MemoryState {
        match passthrough.pages() {
            0 => MemoryState::Virtual,
            n if n >= pages => MemoryState::PassThrough,
            n => MemoryState::Partial {
                passthrough: n,
                pages,
            },
        }
    }
}

impl fmt::Display for MemoryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryState::PassThrough => f.write_str("pass-through"),
            MemoryState::Virtual => f.write_str("virtual"),
            MemoryState::Partial { passthrough, pages } => write!(
                f,
                "partially virtual ({passthrough} of {pages} pages pass-through)"
            ),
        }
    }
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn asids_are_unique_per_vm_and_roll_over() {
        let mut a = Asids::new(2);
        let x = a.get(0, 5).unwrap();
        let y = a.get(1, 5).unwrap();
        assert_ne!(x, y);
        assert_eq!(a.get(0, 5).unwrap(), x);
        for g in 0..=255u8 {
            if a.get(0, g).is_none() {
                a.new_generation();
                assert_eq!(a.get(0, g).unwrap(), 1);
                return;
            }
        }
        panic!("ASIDs never ran out");
    }

    #[test]
    fn pmap_translates_within_its_size() {
        let p = Pmap::new(vec![7, 9]);
        assert_eq!(p.translate(GuestPhys(0x1004)), Some(MachineAddr(0x9004)));
        assert_eq!(p.translate(GuestPhys(0x2000)), None);
        assert!(!p.is_identity());
        assert!(Pmap::new(vec![0, 1, 2]).is_identity());
    }

    #[test]
    fn a_range_pmap_translates_like_its_page_list() {
        let r = Pmap::range(0, 8192);
        assert!(r.is_identity());
        assert_eq!(r.size(), 32 << 20);
        assert_eq!(
            r.translate(GuestPhys(0x01FF_FFFC)),
            Some(MachineAddr(0x01FF_FFFC))
        );
        assert_eq!(r.translate(GuestPhys(32 << 20)), None);
        let moved = Pmap::range(16, 4);
        assert!(!moved.is_identity());
        assert_eq!(
            moved.translate(GuestPhys(0x3008)),
            Some(MachineAddr(0x13008))
        );
        assert_eq!(moved.machine_page(4), None);
        assert_eq!(moved.machine_page(u64::MAX), None);
    }
}
