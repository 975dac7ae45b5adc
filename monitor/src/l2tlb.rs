//! The per-VCPU software TLB (Disco's "second-level TLB"): composed
//! virtual→machine entries for page pairs, so a real TLB miss can be
//! refilled without entering the guest.
//!
//! It holds the pairs of the guest's virtual TLB *and* those of entries the
//! guest's TLBWR has since evicted ("victims"), so a sweep over more pages
//! than 48 entries hold refills from here after the first pass instead of
//! re-entering the guest's refill handler. That is safe because a guest that
//! is correct on a real R4000 cannot know which entries TLBWR evicted, so
//! before it changes a mapping that may be cached it must remove it in a way
//! the monitor sees, and each of those drops victims too (see
//! `GuestCtx::write_vtlb`, `tlbp`, `tlbr`):
//! - writing an entry (TLBWI/TLBWR) drops every pair in the new entry's range;
//! - TLBWI over an entry drops the old entry's pairs (a deliberate
//!   replacement), and TLBWI of an entry that can never match (invalid, or
//!   a kseg0/kseg1 VPN: how kernels flush) drops everything;
//! - TLBP that misses drops the probed pair (the guest is about to conclude
//!   the page is not cached);
//! - TLBR drops everything (a guest scanning its TLB to retire an ASID).
//!
//! Changing ASID needs nothing: pairs are tagged with the guest ASID.

const SLOTS: usize = 1024;

/// A composed 8 KB page pair, for one guest ASID (or global).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L2Entry {
    /// VA\[31:13\].
    pub vpn2: u32,
    pub guest_asid: u8,
    pub global: bool,
    /// The virtual TLB index it was composed from (for traces: the entry
    /// may since have been evicted).
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
    // lab l2tlb: begin lookup
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
    // lab l2tlb: end lookup

    // lab l2tlb: begin insert
    pub fn insert(&mut self, e: L2Entry) {
        self.slots[slot_of(e.vpn2)] = Some(e);
    }
    // lab l2tlb: end insert

    /// Drops every pair, of any ASID, with VA\[31:13\] in `first..=last`.
    // lab l2tlb: begin drop-range
    pub fn drop_range(&mut self, first: u32, last: u32) {
        let pairs = last.saturating_sub(first) as usize + 1;
        if pairs < SLOTS {
            for vpn2 in first..=last {
                let slot = &mut self.slots[slot_of(vpn2)];
                if slot.is_some_and(|e| e.vpn2 == vpn2) {
                    *slot = None;
                }
            }
        } else {
            for s in self.slots.iter_mut() {
                if s.is_some_and(|e| (first..=last).contains(&e.vpn2)) {
                    *s = None;
                }
            }
        }
    }
    // lab l2tlb: end drop-range

    /// Drops every pair with a half on a machine page `on` names (real
    /// EntryLo PFN), as concurrent remapping does for a page it copies.
    pub fn drop_machine_pages(&mut self, on: impl Fn(u32) -> bool) {
        let pfn = |lo: u32| lo >> sim::hv::tlb::lo::PFN_SHIFT;
        for s in self.slots.iter_mut() {
            if s.is_some_and(|e| {
                e.lo.iter()
                    .any(|&l| l & sim::hv::tlb::lo::V != 0 && on(pfn(l)))
            }) {
                *s = None;
            }
        }
    }

    pub fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = None);
    }
}
