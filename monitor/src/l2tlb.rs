//! The per-VCPU software TLB (Disco's "second-level TLB"): composed
//! virtual→machine entries for page pairs the guest's virtual TLB maps, so a
//! real TLB miss can be refilled without entering the guest.
//!
//! It only ever holds translations of entries that are still in the guest's
//! virtual TLB: replacing a virtual TLB entry drops what was composed from it.
//! So it never answers for a mapping the guest has removed.

const SLOTS: usize = 512;

/// A composed 8 KB page pair, for one guest ASID (or global).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L2Entry {
    /// VA[31:13].
    pub vpn2: u32,
    pub guest_asid: u8,
    pub global: bool,
    /// The virtual TLB index it was composed from.
    pub vtlb_index: u8,
    /// Real EntryLo0/EntryLo1 (machine PFN, C, D, V; G clear).
    pub lo: [u32; 2],
}

#[derive(Clone, Debug)]
pub struct L2Tlb {
    slots: Box<[Option<L2Entry>; SLOTS]>,
    pub hits: u64,
    pub misses: u64,
}

impl Default for L2Tlb {
    fn default() -> Self {
        L2Tlb {
            slots: Box::new([None; SLOTS]),
            hits: 0,
            misses: 0,
        }
    }
}

fn slot_of(vpn2: u32) -> usize {
    (vpn2 as usize ^ (vpn2 as usize >> 9)) & (SLOTS - 1)
}

impl L2Tlb {
    /// The composed pair for `va` under `guest_asid`; counts a hit or miss.
    pub fn lookup(&mut self, va: u32, guest_asid: u8) -> Option<L2Entry> {
        let vpn2 = va >> 13;
        let found = self.slots[slot_of(vpn2)]
            .filter(|e| e.vpn2 == vpn2 && (e.global || e.guest_asid == guest_asid));
        if found.is_some() {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        found
    }

    pub fn insert(&mut self, e: L2Entry) {
        self.slots[slot_of(e.vpn2)] = Some(e);
    }

    /// Drops every pair composed from virtual TLB entry `index`.
    pub fn drop_vtlb_index(&mut self, index: u8) {
        for s in self.slots.iter_mut() {
            if s.is_some_and(|e| e.vtlb_index == index) {
                *s = None;
            }
        }
    }

    pub fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = None);
    }
}
