//! Machine memory as the monitor manages it: the machine-page allocator,
//! each VM's pmap (guest-physical page → machine page), the memmap (machine
//! page → the (VM, guest page) pairs that map it), and machine ASIDs.

use sim::mem::PAGE_SHIFT;

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
    pub passthrough: crate::memstate::PageSet,
}

impl Pmap {
    pub fn new(pages: Vec<u32>) -> Pmap {
        Pmap {
            pages,
            range: None,
            passthrough: Default::default(),
        }
    }

    /// Guest pages `0..count` on machine pages `first..first + count`.
    pub fn range(first: u32, count: u32) -> Pmap {
        Pmap {
            pages: Vec::new(),
            range: Some((first, count)),
            passthrough: Default::default(),
        }
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
    pub fn state(&self) -> crate::memstate::MemoryState {
        crate::memstate::MemoryState::of(&self.passthrough, self.size() >> PAGE_SHIFT)
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

/// Machine page → its users, the back map that page migration, sharing
/// and devirtualization need.
#[derive(Clone, Debug, Default)]
pub struct Memmap {
    users: Vec<Vec<(usize, u32)>>,
}

impl Memmap {
    pub fn new(machine_pages: usize) -> Memmap {
        Memmap {
            users: vec![Vec::new(); machine_pages],
        }
    }

    pub fn add(&mut self, mpn: u32, vm: usize, gpn: u32) {
        if let Some(u) = self.users.get_mut(mpn as usize) {
            u.push((vm, gpn));
        }
    }

    /// The (VM, guest page) pairs mapping machine page `mpn`.
    pub fn users(&self, mpn: u32) -> &[(usize, u32)] {
        self.users.get(mpn as usize).map_or(&[], |u| u.as_slice())
    }
}

/// Machine ASIDs: each (address space, guest ASID) pair in use gets its
/// own, so two VMs, or two VCPUs of one VM, never share a real TLB entry
/// (an address space is one VCPU's; see [`crate::vcpu::Vcpu::space`]). When all 255 are taken, a new generation
/// starts: every real TLB is flushed and assignment starts over.
#[derive(Clone, Debug)]
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
