//! The R4000 joint TLB: 48 entries, each mapping an even/odd page pair
//! (`../shared/docs/r4000-reference.md` §3).

/// Number of JTLB entries.
pub const TLB_ENTRIES: usize = 48;

/// EntryLo fields.
pub mod lo {
    pub const G: u32 = 1 << 0;
    pub const V: u32 = 1 << 1;
    pub const D: u32 = 1 << 2;
    pub const C_SHIFT: u32 = 3;
    pub const PFN_SHIFT: u32 = 6;
    /// PFN (29:6), C, D, V, G: the bits software can write.
    pub const WRITABLE: u32 = 0x3FFF_FFFF;
}

/// One TLB entry as the hardware stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbEntry {
    /// PageMask register value (MASK in bits 24:13).
    pub page_mask: u32,
    /// EntryHi VPN2 (bits 31:13), with the low bits zero.
    pub vpn2: u32,
    pub asid: u8,
    /// Stored as G0 AND G1.
    pub global: bool,
    /// EntryLo0 and EntryLo1 without their G bits.
    pub lo: [u32; 2],
}

impl TlbEntry {
    /// An entry that can never match: its VPN2 lies in kseg0, which is
    /// unmapped, and each index gets a distinct one so no two entries are
    /// ever duplicates (`../shared/docs/r4000-reference.md` §3.5–3.6).
    pub fn unused(index: usize) -> TlbEntry {
        // 48 * 0x2000 stays far inside kseg0.
        let index = index as u32;
        TlbEntry {
            page_mask: 0,
            vpn2: 0x8000_0000 + index * 0x2000,
            asid: 0,
            global: false,
            lo: [0, 0],
        }
    }

    /// Bits of the VA compared against VPN2 for this entry's page size.
    #[inline]
    pub fn vpn_mask(&self) -> u32 {
        !(self.page_mask | 0x1FFF)
    }

    /// Page size in bytes (4 KB … 16 MB).
    pub fn page_size(&self) -> u32 {
        (self.page_mask | 0x1FFF).wrapping_add(1) >> 1
    }

    #[inline]
    pub fn matches(&self, va: u32, asid: u8) -> bool {
        (va & self.vpn_mask()) == (self.vpn2 & self.vpn_mask())
            && (self.global || self.asid == asid)
    }

    /// EntryHi as TLBR returns it.
    pub(crate) fn entry_hi(&self) -> u32 {
        (self.vpn2 & !(self.page_mask & 0x01FF_E000)) | u32::from(self.asid)
    }

    /// EntryLo0/1 as TLBR returns them, with G copied into both.
    pub(crate) fn entry_lo(&self, odd: bool) -> u32 {
        let lo = self.lo[usize::from(odd)];
        lo | u32::from(self.global)
    }
}

/// Result of a successful translation through one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbHit {
    pub index: usize,
    /// The EntryLo of the selected half (PFN, C, D, V).
    pub lo: u32,
    /// Page size in bytes.
    pub page_size: u32,
}

impl TlbHit {
    pub fn valid(&self) -> bool {
        self.lo & lo::V != 0
    }
    pub fn dirty(&self) -> bool {
        self.lo & lo::D != 0
    }
    /// The physical address of `va` through this entry: PFN bits inside the
    /// page offset are ignored, as QEMU and MAME do.
    pub fn paddr(&self, va: u32) -> u64 {
        let pfn = u64::from(self.lo >> lo::PFN_SHIFT) & 0xFF_FFFF;
        let size = u64::from(self.page_size);
        ((pfn << 12) & !(size - 1)) | (u64::from(va) & (size - 1))
    }
}

#[derive(Clone, Debug)]
pub struct Tlb {
    pub entries: [TlbEntry; TLB_ENTRIES],
}

impl Default for Tlb {
    fn default() -> Self {
        Tlb {
            entries: std::array::from_fn(TlbEntry::unused),
        }
    }
}

/// Outcome of looking a VA up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    Miss,
    Hit(TlbHit),
    /// More than one entry matched: the R4000 sets Status.TS (§3.5). We go
    /// on with the first match.
    Multiple(TlbHit),
}

impl Tlb {
    pub fn lookup(&self, va: u32, asid: u8) -> Lookup {
        let mut found: Option<TlbHit> = None;
        for (index, e) in self.entries.iter().enumerate() {
            if !e.matches(va, asid) {
                continue;
            }
            if let Some(first) = found {
                return Lookup::Multiple(first);
            }
            let size = e.page_size();
            let odd = va & size != 0;
            found = Some(TlbHit {
                index,
                lo: e.lo[usize::from(odd)],
                page_size: size,
            });
        }
        found.map_or(Lookup::Miss, Lookup::Hit)
    }

    /// TLBP: the index of the entry matching EntryHi's VPN2 and ASID,
    /// honouring each entry's PageMask and G (§3.4).
    pub(crate) fn probe(&self, entry_hi: u32) -> Option<usize> {
        let asid = (entry_hi & 0xFF) as u8;
        let va = entry_hi & 0xFFFF_E000;
        self.entries.iter().position(|e| e.matches(va, asid))
    }

    /// Builds the entry TLBWI/TLBWR write from the CP0 registers.
    pub fn compose(page_mask: u32, entry_hi: u32, lo0: u32, lo1: u32) -> TlbEntry {
        let page_mask = page_mask & 0x01FF_E000;
        TlbEntry {
            page_mask,
            vpn2: entry_hi & 0xFFFF_E000 & !page_mask,
            // Low byte of EntryHi.
            asid: (entry_hi & 0xFF) as u8,
            global: (lo0 & lo1 & lo::G) != 0,
            lo: [lo0 & lo::WRITABLE & !lo::G, lo1 & lo::WRITABLE & !lo::G],
        }
    }

    pub fn write(&mut self, index: usize, entry: TlbEntry) {
        if let Some(slot) = self.entries.get_mut(index % TLB_ENTRIES) {
            *slot = entry;
        }
    }

    pub fn read(&self, index: usize) -> TlbEntry {
        self.entries
            .get(index % TLB_ENTRIES)
            .copied()
            .unwrap_or_else(|| TlbEntry::unused(0))
    }
}

/// The outcome of an architectural translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    pub pa: u64,
    /// Stores may use it: an unmapped segment, or a TLB page with D set.
    pub writable: bool,
    /// More than one TLB entry matched (the R4000's TLB shutdown, §3.5).
    pub multiple: bool,
}

/// Translates `va` for the mode, ERL and ASID in `cp0` through `tlb`
/// (`../shared/docs/r4000-reference.md` §1.3, §3.3): the 32-bit segments of each mode, then
/// refill, invalid and modified faults. The CPU and a monitor's virtual CPU
/// both translate here.
pub fn translate(
    cp0: &super::Cp0,
    tlb: &Tlb,
    va: u32,
    access: super::Access,
) -> Result<Translation, super::Exception> {
    use super::{ExcCode, Exception, Mode};
    let sva = super::cp0::sext32(u64::from(va));
    let unmapped = match cp0.mode() {
        Mode::Kernel => match va {
            0..=0x7FFF_FFFF if cp0.erl() => Some(u64::from(va)),
            0..=0x7FFF_FFFF => None,
            0x8000_0000..=0x9FFF_FFFF => Some(u64::from(va - 0x8000_0000)),
            0xA000_0000..=0xBFFF_FFFF => Some(u64::from(va - 0xA000_0000)),
            _ => None,
        },
        Mode::Supervisor => match va {
            0..=0x7FFF_FFFF | 0xC000_0000..=0xDFFF_FFFF => None,
            _ => return Err(Exception::address(access.address_error(), sva)),
        },
        Mode::User => match va {
            0..=0x7FFF_FFFF => None,
            _ => return Err(Exception::address(access.address_error(), sva)),
        },
    };
    if let Some(pa) = unmapped {
        return Ok(Translation {
            pa,
            writable: true,
            multiple: false,
        });
    }
    let (hit, multiple) = match tlb.lookup(va, cp0.asid()) {
        Lookup::Miss => return Err(Exception::tlb(access.tlb_miss(), sva, true)),
        Lookup::Hit(h) => (h, false),
        Lookup::Multiple(h) => (h, true),
    };
    if !hit.valid() {
        return Err(Exception::tlb(access.tlb_miss(), sva, false));
    }
    if access == super::Access::Store && !hit.dirty() {
        return Err(Exception::tlb(ExcCode::Mod, sva, false));
    }
    Ok(Translation {
        pa: hit.paddr(va),
        writable: hit.dirty(),
        multiple,
    })
}

/// The CP0 side of the TLB instructions, shared by the CPU and by a
/// monitor's virtual TLB (§3.4).
impl Tlb {
    /// TLBR: PageMask, EntryHi, EntryLo0/1 from entry Index. This
    /// overwrites the current ASID.
    pub fn read_into(&self, cp0: &mut super::Cp0) {
        let e = self.read((cp0.index & 0x3F) as usize);
        cp0.page_mask = e.page_mask;
        cp0.entry_hi = super::cp0::sext32(u64::from(e.entry_hi()));
        cp0.entry_lo0 = e.entry_lo(false);
        cp0.entry_lo1 = e.entry_lo(true);
    }

    /// The entry TLBWI/TLBWR write, from PageMask, EntryHi and EntryLo0/1.
    pub fn entry_from(cp0: &super::Cp0) -> TlbEntry {
        // EntryHi's low word: 32-bit addressing.
        Tlb::compose(
            cp0.page_mask,
            cp0.entry_hi as u32,
            cp0.entry_lo0,
            cp0.entry_lo1,
        )
    }

    /// TLBP: Index of the entry matching EntryHi, or Index.P set.
    pub(crate) fn probe_into(&self, cp0: &mut super::Cp0) {
        // EntryHi's low word: 32-bit addressing.
        match self.probe(cp0.entry_hi as u32) {
            // Below 48: exact.
            Some(i) => cp0.index = i as u32,
            None => cp0.index |= 0x8000_0000,
        }
    }
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;

    const SIZES: [(u32, u32); 7] = [
        (0x0000_0000, 4 << 10),
        (0x0000_6000, 16 << 10),
        (0x0001_E000, 64 << 10),
        (0x0007_E000, 256 << 10),
        (0x001F_E000, 1 << 20),
        (0x007F_E000, 4 << 20),
        (0x01FF_E000, 16 << 20),
    ];

    #[test]
    fn every_page_size_selects_even_and_odd_halves() {
        for (mask, size) in SIZES {
            let mut tlb = Tlb::default();
            let base = 0x4000_0000u32; // aligned to 32 MB, so to every pair size
            let lo0 = (0x100 << lo::PFN_SHIFT) | lo::V | lo::D;
            let lo1 = (0x2000 << lo::PFN_SHIFT) | lo::V;
            tlb.write(5, Tlb::compose(mask, base | 7, lo0, lo1));
            let e = tlb.read(5);
            assert_eq!(e.page_size(), size);
            let Lookup::Hit(h) = tlb.lookup(base + 0x10, 7) else {
                panic!("even miss {size}")
            };
            assert!(h.valid() && h.dirty());
            assert_eq!(
                h.paddr(base + 0x10),
                ((0x100u64 << 12) & !(u64::from(size) - 1)) + 0x10
            );
            let Lookup::Hit(h) = tlb.lookup(base + size + 4, 7) else {
                panic!("odd miss {size}")
            };
            assert!(h.valid() && !h.dirty());
            assert_eq!(
                h.paddr(base + size + 4),
                ((0x2000u64 << 12) & !(u64::from(size) - 1)) + 4
            );
            // Just past the pair: miss. Other ASID: miss (not global).
            assert_eq!(tlb.lookup(base + 2 * size, 7), Lookup::Miss);
            assert_eq!(tlb.lookup(base, 8), Lookup::Miss);
            assert_eq!(tlb.probe(base | 7), Some(5));
            assert_eq!(tlb.probe(base | 8), None);
        }
    }

    #[test]
    fn global_needs_both_g_bits() {
        let e = Tlb::compose(0, 0x1000_0000, lo::G | lo::V, lo::V);
        assert!(!e.global);
        let e = Tlb::compose(0, 0x1000_0000, lo::G | lo::V, lo::G);
        assert!(e.global);
        assert_eq!(e.entry_lo(false) & lo::G, lo::G);
        assert_eq!(e.entry_lo(true) & lo::G, lo::G);
    }

    #[test]
    fn reset_entries_never_match_and_are_distinct() {
        let tlb = Tlb::default();
        assert_eq!(tlb.lookup(0, 0), Lookup::Miss);
        for (i, a) in tlb.entries.iter().enumerate() {
            for b in tlb.entries.iter().skip(i + 1) {
                assert_ne!(a.vpn2, b.vpn2);
            }
        }
    }

    #[test]
    fn duplicate_entries_are_reported() {
        let mut tlb = Tlb::default();
        tlb.write(1, Tlb::compose(0, 0x0040_0000, lo::V, lo::V));
        tlb.write(2, Tlb::compose(0, 0x0040_0000, lo::V, lo::V));
        assert!(matches!(tlb.lookup(0x0040_0000, 0), Lookup::Multiple(h) if h.index == 1));
    }
}
