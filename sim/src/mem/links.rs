//! LL/SC across CPUs that may run on different host threads.
//!
//! Each CPU has one link: the 16-byte line (PA >> 4) its LL named, and the
//! value the LL read. A store by any other CPU to a linked line
//! breaks that link, so the linked CPU's SC fails; an ERET breaks the
//! CPU's own link (`../shared/docs/r4000-reference.md` §5.7).
//!
//! With one thread this is the whole story. With several, a store and an
//! SC can race, and the protocol below makes SC exact: it succeeds if and
//! only if no store to the line can be ordered between the LL and the SC,
//! so it never loses an update.
//!
//! * A store looks at the table (only when another CPU holds a link, one
//!   relaxed load of a bit mask otherwise) *before* it writes, and breaks
//!   every other CPU's link on its line. If it finds that CPU in the middle
//!   of an SC on the line (`CLAIMED`), it waits for the SC to finish (a few
//!   instructions, never blocking), so its write lands after the SC's.
//! * An SC first claims its own link (compare-exchange `line` to
//!   `line | CLAIMED`): if a store broke the link, the claim fails and so
//!   does the SC. Then it breaks the other CPUs' links on the line (an SC is
//!   a store) and writes with a compare-exchange of the word against the
//!   value its LL read (SCD: of each of its two words, high first, putting
//!   the high word back if the low one changed). SCs to one line are serialized by a lock of
//!   that line's stripe, so two claims on one line never wait on each other.
//! * Races the claim cannot see are caught by the compare-exchange: a store
//!   that broke nothing (it looked before the LL set the link) but wrote
//!   after the LL's read changed the word, and the SC fails; if it
//!   wrote the very value the LL read, it is indistinguishable from a store
//!   ordered before the LL, and the SC rightly succeeds. A store to another
//!   word of the line that looked after the claim waited, or is ordered
//!   after the SC; one that looked before it broke the link.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

use parking_lot::Mutex;

use super::ram::Ram;

/// No link held.
const NONE: u64 = u64::MAX;
/// Set in a link while its CPU's SC is in flight.
const CLAIMED: u64 = 1 << 62;
/// Locks serializing SCs, by line.
const STRIPES: usize = 64;

/// One CPU's link, on a cache line of its own (other CPUs read it on
/// every store while it is held).
#[derive(Debug)]
#[repr(align(64))]
struct Link {
    /// `line`, `line | CLAIMED` or `NONE`.
    line: AtomicU64,
    /// What the LL read (as a doubleword: the value in its low bytes for
    /// LL), and its address.
    seen: AtomicU64,
    seen_at: AtomicU64,
}

#[derive(Debug)]
pub(crate) struct Links {
    links: Box<[Link]>,
    /// Bit `i`: CPU `i` may hold a link. Only the owner sets or clears its
    /// bit, so a stale bit costs a look at the table and nothing else.
    held: AtomicU64,
    stripes: Box<[Mutex<()>]>,
}

impl Links {
    pub(crate) fn new(ncpus: usize) -> Links {
        Links {
            links: (0..ncpus.max(1))
                .map(|_| Link {
                    line: AtomicU64::new(NONE),
                    seen: AtomicU64::new(0),
                    seen_at: AtomicU64::new(NONE),
                })
                .collect(),
            held: AtomicU64::new(0),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    fn bit(cpu: usize) -> u64 {
        1u64.checked_shl(cpu as u32).unwrap_or(0)
    }

    /// LL of `width` (4 or 8) bytes: links `cpu` to the line of `paddr`,
    /// then reads (in that order: see the module comment) and returns what
    /// it read, `None` outside RAM (the link is set all the same).
    pub(crate) fn link(&self, cpu: usize, paddr: u64, width: u8, ram: &Ram) -> Option<u64> {
        let l = self.links.get(cpu)?;
        l.line.store(paddr >> 4, SeqCst);
        self.held.fetch_or(Self::bit(cpu), SeqCst);
        let seen = ram.read(paddr, width);
        l.seen.store(seen.unwrap_or(0), SeqCst);
        l.seen_at.store(paddr | u64::from(width == 8), SeqCst);
        seen
    }

    pub(crate) fn linked(&self, cpu: usize) -> bool {
        self.links
            .get(cpu)
            .is_some_and(|l| l.line.load(SeqCst) != NONE)
    }

    pub(crate) fn unlink(&self, cpu: usize) {
        let Some(l) = self.links.get(cpu) else {
            return;
        };
        // Every ERET unlinks: most find nothing to do. Only the owner sets
        // its link or its bit, so this look cannot miss one.
        if l.line.load(Relaxed) == NONE && self.held.load(Relaxed) & Self::bit(cpu) == 0 {
            return;
        }
        l.line.store(NONE, SeqCst);
        self.held.fetch_and(!Self::bit(cpu), SeqCst);
    }

    /// The mask `any_linked` reads (tier 3's compiled stores read it).
    #[inline(always)]
    pub(crate) fn held(&self) -> &AtomicU64 {
        &self.held
    }

    /// Whether a store must look at the table: some CPU holds a link.
    #[inline(always)]
    pub(crate) fn any_linked(&self) -> bool {
        self.held.load(Relaxed) != 0
    }

    /// Breaks every other CPU's link on `line`, waiting out an SC in flight
    /// on it. Called before the store writes.
    #[cold]
    pub(crate) fn break_links(&self, writer: usize, line: u64) {
        let held = self.held.load(SeqCst);
        for (cpu, l) in self.links.iter().enumerate() {
            if cpu == writer || held & Self::bit(cpu) == 0 {
                continue;
            }
            let mut spins = 0u32;
            loop {
                let now = l.line.load(SeqCst);
                if now == line {
                    if l.line.compare_exchange(line, NONE, SeqCst, SeqCst).is_ok() {
                        break;
                    }
                } else if now == line | CLAIMED {
                    // An SC's few instructions; yield if its thread was
                    // descheduled in the middle of them.
                    spins += 1;
                    if spins < 64 {
                        std::hint::spin_loop();
                    } else {
                        std::thread::yield_now();
                    }
                } else {
                    break;
                }
            }
        }
    }

    /// SC by `cpu` of `width` bytes at `paddr` in RAM while other threads
    /// run CPUs: the claim and the compare-exchange of the module comment.
    /// Whether it stored.
    pub(crate) fn store_conditional(
        &self,
        ram: &Ram,
        cpu: usize,
        paddr: u64,
        width: u8,
        value: u64,
    ) -> bool {
        let (Some(l), Some(word)) = (self.links.get(cpu), ram.word(paddr)) else {
            return false;
        };
        let line = paddr >> 4;
        let _serial = self.stripes.get(line as usize % STRIPES).map(|m| m.lock());
        if l.line
            .compare_exchange(line, line | CLAIMED, SeqCst, SeqCst)
            .is_err()
        {
            self.unlink(cpu);
            return false;
        }
        self.break_links(cpu, line);
        let old = l.seen.load(SeqCst);
        let cas = |w: &std::sync::atomic::AtomicU32, old: u64, new: u64| {
            w.compare_exchange(old as u32, new as u32, SeqCst, SeqCst)
                .is_ok()
        };
        let stored = if l.seen_at.load(SeqCst) != paddr | u64::from(width == 8) {
            // Not what the LL read (UNPREDICTABLE in the manual): a plain
            // store.
            ram.write(paddr, width, value, true)
        } else if width == 8 {
            match ram.word(paddr + 4) {
                Some(lo) if cas(word, old >> 32, value >> 32) => {
                    cas(lo, old, value) || {
                        cas(word, value >> 32, old >> 32);
                        false
                    }
                }
                _ => false,
            }
        } else {
            cas(word, old, value)
        };
        self.unlink(cpu);
        stored
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Four threads count with LL/SC on one word while a fifth keeps
    /// storing to the other words of its line (breaking their links, as
    /// a store must, before it writes): no increment is lost.
    #[test]
    fn concurrent_counting_loses_no_update() {
        let (ram, links) = (Ram::new(64), Links::new(5));
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let counters: Vec<_> = (0..4)
                .map(|cpu| {
                    let (ram, links) = (&ram, &links);
                    s.spawn(move || {
                        let mut failed = 0u64;
                        for _ in 0..20_000 {
                            loop {
                                let v = links.link(cpu, 16, 4, ram).unwrap();
                                if links.store_conditional(ram, cpu, 16, 4, v + 1) {
                                    break;
                                }
                                failed += 1;
                            }
                        }
                        failed
                    })
                })
                .collect();
            s.spawn(|| {
                let mut n = 0u64;
                while !stop.load(SeqCst) {
                    n += 1;
                    let at = 20 + 4 * (n % 3);
                    if links.any_linked() {
                        links.break_links(4, at >> 4);
                    }
                    ram.write(at, 4, n, true);
                }
            });
            for c in counters {
                c.join().unwrap();
            }
            stop.store(true, SeqCst);
        });
        assert_eq!(ram.read(16, 4), Some(80_000));
    }

    #[test]
    fn an_sc_after_another_cpus_store_to_the_line_fails() {
        let (ram, links) = (Ram::new(64), Links::new(2));
        assert_eq!(links.link(0, 16, 4, &ram), Some(0));
        links.break_links(1, 24 >> 4);
        ram.write(24, 4, 7, true);
        assert!(!links.linked(0));
        assert!(!links.store_conditional(&ram, 0, 16, 4, 1));
        assert_eq!(ram.read(16, 4), Some(0));
        // SCD: both words, or neither.
        assert_eq!(links.link(1, 32, 8, &ram), Some(0));
        assert!(links.store_conditional(&ram, 1, 32, 8, 0x1_0000_0002));
        assert_eq!(ram.read(32, 8), Some(0x1_0000_0002));
    }
}
