//! RAM shared by every host thread of the machine, without `unsafe`: one
//! `AtomicU32` per aligned word, holding the guest's four bytes big-endian
//! as the word's value (guest byte `4k + i` is bits `31 - 8i ..= 24 - 8i`
//! of word `k`), so the common access, an aligned word, is one plain load
//! or store and needs no byte swap. Aligned words and narrower accesses
//! are therefore single-copy atomic across CPUs; a doubleword is its two
//! words, high first (docs/parallel.md says what that means for LD/SD).
//!
//! Orderings: loads are `Acquire` and stores `Release` (plain moves on
//! x86-64, so the deterministic mode pays nothing for them), which gives a
//! guest's lock release or flag store the message-passing order its SYNC
//! asks for on any host. A narrower store must not disturb the other lanes
//! of its word: with one thread (the deterministic mode) it reads, merges
//! and writes back; with several it is a compare-exchange loop on the word,
//! so no other CPU ever reads a half-merged word and no concurrent store to
//! a neighbouring lane is lost.

use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::Arc;

use zerocopy::FromZeros;

#[derive(Clone, Debug)]
pub(crate) struct Ram {
    /// Boxed inside the `Arc` because a box can come from the allocator
    /// already zeroed (`zerocopy`), pages the host maps only when touched,
    /// where building an `Arc<[_]>` writes every word: that was 30 ms of a
    /// 32M machine's start, longer than most of the kits' runs.
    words: Arc<Box<[AtomicU32]>>,
}

/// The shift and mask of the `width`-byte lane (1, 2 or 4) at `paddr` in
/// its word.
#[inline(always)]
pub(crate) fn lane(paddr: u64, width: u8) -> (u32, u32) {
    let w = u32::from(width);
    let shift = (4 - w - (paddr & 3) as u32) * 8;
    let mask = if width >= 4 {
        u32::MAX
    } else {
        (1 << (8 * w)) - 1
    };
    (shift, mask)
}

/// `width` as the interpreter passes it: 1, 2 or 4, anything else 8.
#[inline(always)]
fn norm(width: u8) -> u8 {
    match width {
        1 | 2 | 4 => width,
        _ => 8,
    }
}

impl Ram {
    pub(crate) fn new(bytes: u64) -> Ram {
        let n = usize::try_from(bytes / 4).unwrap_or(0);
        let words = <[AtomicU32]>::new_box_zeroed_with_elems(n).unwrap_or_else(|_| {
            std::alloc::handle_alloc_error(
                std::alloc::Layout::array::<AtomicU32>(n)
                    .unwrap_or(std::alloc::Layout::new::<AtomicU32>()),
            )
        });
        Ram {
            words: Arc::new(words),
        }
    }

    /// The words, for tier 3's compiled loads and stores.
    #[inline(always)]
    pub(crate) fn words(&self) -> &[AtomicU32] {
        &self.words
    }

    pub(crate) fn len(&self) -> u64 {
        self.words.len() as u64 * 4
    }

    /// The word holding `paddr`.
    #[inline(always)]
    pub(crate) fn word(&self, paddr: u64) -> Option<&AtomicU32> {
        // As the byte-array RAM it replaces indexed: a 64-bit host's usize
        // holds every index, and `get` bounds it.
        self.words.get((paddr >> 2) as usize)
    }

    /// A read of 1, 2, 4 or 8 bytes, big-endian; `None` outside RAM.
    #[inline(always)]
    pub(crate) fn read(&self, paddr: u64, width: u8) -> Option<u64> {
        let width = norm(width);
        if paddr & (u64::from(width) - 1) != 0 {
            return self.read_unaligned(paddr, width);
        }
        if width == 8 {
            let hi = self.word(paddr)?.load(Acquire);
            let lo = self.word(paddr + 4)?.load(Acquire);
            return Some(u64::from(hi) << 32 | u64::from(lo));
        }
        let v = self.word(paddr)?.load(Acquire);
        if width == 4 {
            return Some(u64::from(v));
        }
        let (shift, mask) = lane(paddr, width);
        Some(u64::from((v >> shift) & mask))
    }

    #[cold]
    fn read_unaligned(&self, paddr: u64, width: u8) -> Option<u64> {
        let mut v = 0;
        for i in 0..u64::from(width) {
            v = (v << 8) | self.read(paddr.checked_add(i)?, 1)?;
        }
        Some(v)
    }

    /// A write of 1, 2, 4 or 8 bytes; false (nothing written) outside RAM.
    /// `concurrent`: other threads may store to the same word.
    #[inline(always)]
    pub(crate) fn write(&self, paddr: u64, width: u8, value: u64, concurrent: bool) -> bool {
        let width = norm(width);
        if paddr & (u64::from(width) - 1) != 0 {
            return self.write_unaligned(paddr, width, value, concurrent);
        }
        if width == 8 {
            let (Some(hi), Some(lo)) = (self.word(paddr), self.word(paddr + 4)) else {
                return false;
            };
            hi.store((value >> 32) as u32, Release);
            lo.store(value as u32, Release);
            return true;
        }
        let Some(word) = self.word(paddr) else {
            return false;
        };
        if width == 4 {
            word.store(value as u32, Release);
            return true;
        }
        let (shift, mask) = lane(paddr, width);
        if !concurrent {
            let old = word.load(Relaxed);
            word.store(merge(old, shift, mask, value as u32), Release);
        } else {
            // Always `Some`: the closure never declines.
            let _ = word.fetch_update(Release, Relaxed, |old| {
                Some(merge(old, shift, mask, value as u32))
            });
        }
        true
    }

    #[cold]
    fn write_unaligned(&self, paddr: u64, width: u8, value: u64, concurrent: bool) -> bool {
        let end = paddr.checked_add(u64::from(width));
        if end.is_none_or(|e| e > self.len()) {
            return false;
        }
        for i in 0..u64::from(width) {
            let byte = value >> (8 * (u64::from(width) - 1 - i));
            self.write(paddr + i, 1, byte, concurrent);
        }
        true
    }
}

/// `old` with the lane at `shift`/`mask` replaced by `value`.
#[inline(always)]
pub(crate) fn merge(old: u32, shift: u32, mask: u32, value: u32) -> u32 {
    (old & !(mask << shift)) | ((value & mask) << shift)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lanes_are_big_endian_and_narrow_stores_keep_their_neighbours() {
        let r = Ram::new(64);
        for concurrent in [false, true] {
            assert!(r.write(8, 8, 0x0102_0304_0506_0708, concurrent));
            assert_eq!(r.read(8, 1), Some(1));
            assert_eq!(r.read(14, 2), Some(0x0708));
            assert_eq!(r.read(12, 4), Some(0x0506_0708));
            assert!(r.write(9, 1, 0xAA, concurrent));
            assert!(r.write(12, 2, 0xBBCC, concurrent));
            assert_eq!(r.read(8, 8), Some(0x01AA_0304_BBCC_0708));
            // Unaligned (the monitor's byte copies): byte by byte.
            assert_eq!(r.read(11, 4), Some(0x04BB_CC07));
            assert!(r.write(7, 2, 0x1122, concurrent));
            assert_eq!(r.read(7, 2), Some(0x1122));
        }
        assert_eq!(r.read(64, 1), None);
        assert_eq!(r.read(60, 8), None);
        assert!(!r.write(63, 2, 0, false));
        assert!(!r.write(u64::MAX, 4, 0, true));
    }
}
