//! The physical bus as one host thread sees it. RAM starts at physical 0;
//! everything above it goes to the board.
//!
//! What the machine's threads share is memory itself (`ram`, `links`) and,
//! per page, whether any thread decoded code from it and a generation that
//! every store into such a page bumps (`pages`). What a thread caches from
//! memory is its own: instructions are decoded once per physical page, on
//! the first fetch from it, into this bus's arena, and tier 2's blocks
//! (`cpu::block`) are built from that arena. A store through this bus into
//! a decoded page re-decodes the words it wrote (the page stays decoded), so
//! decoded code is never stale in the deterministic mode, which has one bus.
//! In the parallel mode (`crate::parallel`) each thread has a bus; a store
//! by another thread shows as a newer page generation, and this bus decodes
//! the page again before it builds a block from it, refills a fetch from it,
//! or when its CPU looks at its events.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::Arc;

/// Per RAM page, shared by every thread: whether some thread decoded code
/// from it, and the generation every store into it then bumps. Tier 3's
/// compiled code reads it, so its layout is the compiler crate's.
use disco_jit::fast::CodePage as Page;

use parking_lot::Mutex;

use super::links::Links;
use super::ram::Ram;
use crate::dev::Board;
use crate::isa::{decode, Insn};

pub const PAGE_SHIFT: u32 = 12;
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
const INSNS_PER_PAGE: usize = (PAGE_SIZE / 4) as usize;

/// `code_slot` value of a page this bus has never fetched from.
const NO_CODE: u32 = u32::MAX;

// Compiled code finds a store's page with the compiler's page size.
const _: () = assert!(PAGE_SHIFT == disco_jit::fast::PAGE_SHIFT);

#[derive(Debug)]
pub struct Bus {
    ram: Ram,
    links: Arc<Links>,
    pages: Arc<[Page]>,
    /// Other threads may store to RAM (the parallel mode).
    concurrent: bool,
    /// Per RAM page: where its decoded instructions start in `code`, in
    /// units of pages, or `NO_CODE` until first fetched through this bus.
    code_slot: Vec<u32>,
    /// Decoded instructions of every page fetched from, one page after
    /// another. A store through this bus re-decodes the words it wrote, so
    /// a CPU may cache where its page lives.
    code: Vec<Insn>,
    /// Per RAM page: the generation `code` holds the page at.
    code_seen: Vec<u32>,
    /// Set by a store that changed decoded code; a block running when it
    /// happens stops after that store (the code after it may have changed).
    code_written: bool,
    /// The translated blocks of the CPUs using this bus (`cpu::block`):
    /// they depend on physical memory only, so those CPUs share them.
    pub(crate) blocks: crate::cpu::block::BlockCache,
    pub board: Board,
    /// The board while several threads run (the parallel mode): devices
    /// are reached through this lock, and `board` is a placeholder.
    shared_board: Option<Arc<Mutex<Board>>>,
    /// Instruction words re-decoded because a store changed them (statistics).
    pub code_invalidations: u64,
}

impl Bus {
    pub fn new(ram_bytes: u64, ncpus: usize, board: Board) -> Bus {
        let ram_bytes = ram_bytes & !(PAGE_SIZE - 1);
        let pages = usize::try_from(ram_bytes >> PAGE_SHIFT).unwrap_or(0);
        Bus {
            ram: Ram::new(ram_bytes),
            links: Arc::new(Links::new(ncpus)),
            pages: (0..pages)
                .map(|_| Page {
                    has_code: AtomicBool::new(false),
                    generation: AtomicU32::new(0),
                })
                .collect(),
            concurrent: false,
            code_slot: vec![NO_CODE; pages],
            code: Vec::new(),
            code_seen: vec![0; pages],
            code_written: false,
            blocks: crate::cpu::block::BlockCache::default(),
            board,
            shared_board: None,
            code_invalidations: 0,
        }
    }

    /// A bus for another thread of the parallel mode: the same memory and
    /// links, the board behind `board`, and caches of its own.
    pub(crate) fn for_thread(&self, board: Arc<Mutex<Board>>) -> Bus {
        let pages = self.pages.len();
        let mut blocks = crate::cpu::block::BlockCache::default();
        // Tier 3 compiles at the machine's threshold on every thread.
        blocks.tier3.threshold = self.blocks.tier3.threshold;
        blocks.tier3.mode = self.blocks.tier3.mode;
        Bus {
            ram: self.ram.clone(),
            links: Arc::clone(&self.links),
            pages: Arc::clone(&self.pages),
            concurrent: true,
            code_slot: vec![NO_CODE; pages],
            code: Vec::new(),
            code_seen: vec![0; pages],
            code_written: false,
            blocks,
            board: Board::default(),
            shared_board: Some(board),
            code_invalidations: 0,
        }
    }

    /// A bus for one of a monitor's host threads (`monitor`'s parallel
    /// mode): the same memory and links, caches of its own, and a board of
    /// its own that nothing reaches (a monitor's guests touch only RAM
    /// through the real TLB; their devices are the monitor's). This bus
    /// goes on in the concurrent mode, keeping its own board and caches:
    /// nothing else has written to memory yet.
    pub fn for_monitor_thread(&mut self) -> Bus {
        self.concurrent = true;
        self.for_thread(Arc::new(Mutex::new(Board::default())))
    }

    /// Switches this bus between the modes: with `Some(board)`, other
    /// threads run too and devices are reached through `board`; with
    /// `None`, this is the only thread again. Its decoded code is dropped
    /// either way: other threads may have written to it.
    pub(crate) fn set_concurrent(&mut self, board: Option<Arc<Mutex<Board>>>) {
        self.concurrent = board.is_some();
        self.shared_board = board;
        self.code_slot.fill(NO_CODE);
        self.code.clear();
        let mut blocks = crate::cpu::block::BlockCache::default();
        blocks.tier3.threshold = self.blocks.tier3.threshold;
        blocks.tier3.mode = self.blocks.tier3.mode;
        self.blocks = blocks;
    }

    /// Bytes of RAM.
    pub fn ram_len(&self) -> u64 {
        self.ram.len()
    }

    /// A copy of all of RAM (tests, dumps).
    pub fn ram(&self) -> Vec<u8> {
        self.read_bytes(0, self.ram.len() as usize)
            .unwrap_or_default()
    }

    /// Whether `[paddr, paddr+len)` lies in RAM.
    #[inline(always)]
    pub fn in_ram(&self, paddr: u64, len: u64) -> bool {
        paddr
            .checked_add(len)
            .is_some_and(|end| end <= self.ram.len())
    }

    /// Copies `data` into RAM at `paddr` (loader, disk DMA, debugger).
    /// Returns false if it does not fit.
    pub fn write_bytes(&mut self, paddr: u64, data: &[u8]) -> bool {
        if !self.in_ram(paddr, data.len() as u64) {
            return false;
        }
        let mut at = paddr;
        let mut rest = data;
        while !rest.is_empty() {
            // Whole words where aligned, bytes at the ragged ends.
            let (width, n) = match rest {
                [a, b, c, d, ..] if at & 3 == 0 => (4, u32::from_be_bytes([*a, *b, *c, *d])),
                [a, ..] => (1, u32::from(*a)),
                [] => break,
            };
            self.ram.write(at, width, u64::from(n), self.concurrent);
            at += u64::from(width);
            rest = rest.get(usize::from(width)..).unwrap_or_default();
        }
        let end = paddr + data.len() as u64;
        let mut word = paddr & !3;
        while word < end {
            if self.has_code(word) {
                self.code_stored(word);
            }
            word += 4;
        }
        true
    }

    /// Reads RAM bytes without side effects (debugger, dumps).
    pub fn read_bytes(&self, paddr: u64, len: usize) -> Option<Vec<u8>> {
        let mut out = vec![0; len];
        self.copy_out(paddr, &mut out).then_some(out)
    }

    /// Fills `out` from RAM at `paddr`; false (nothing read) if it does
    /// not fit.
    pub fn copy_out(&self, paddr: u64, out: &mut [u8]) -> bool {
        if !self.in_ram(paddr, out.len() as u64) {
            return false;
        }
        let mut at = paddr;
        let mut rest = &mut out[..];
        while !rest.is_empty() {
            if at & 7 == 0 && rest.len() >= 8 {
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(8);
                let v = self.ram.read(at, 8).unwrap_or(0);
                head.copy_from_slice(&v.to_be_bytes());
                (rest, at) = (tail, at + 8);
            } else if let Some((first, tail)) = std::mem::take(&mut rest).split_first_mut() {
                *first = self.ram.read(at, 1).unwrap_or(0) as u8;
                (rest, at) = (tail, at + 1);
            }
        }
        true
    }

    /// An aligned RAM read of 1, 2, 4 or 8 bytes, big-endian.
    #[inline(always)]
    pub fn read_ram(&self, paddr: u64, width: u8) -> Option<u64> {
        self.ram.read(paddr, width)
    }

    /// An aligned RAM write; drops other CPUs' LL links on the written line
    /// and re-decodes the written words if their page has code. Returns
    /// false outside RAM.
    #[inline(always)]
    pub fn write_ram(&mut self, cpu: usize, paddr: u64, width: u8, value: u64) -> bool {
        // Before the write: see `links`.
        if self.links.any_linked() && self.in_ram(paddr, u64::from(width.clamp(1, 8))) {
            self.links.break_links(cpu, paddr >> 4);
        }
        if !self.ram.write(paddr, width, value, self.concurrent) {
            return false;
        }
        if self.has_code(paddr) {
            self.code_stored(paddr);
            if width == 8 {
                self.code_stored(paddr + 4);
            }
        }
        true
    }

    #[inline(always)]
    fn has_code(&self, paddr: u64) -> bool {
        self.pages
            .get((paddr >> PAGE_SHIFT) as usize)
            .is_some_and(|p| p.has_code.load(Relaxed))
    }

    /// A store changed the word at `paddr` of a page with code: re-decodes
    /// this bus's copy of it and bumps the page's generation.
    #[cold]
    fn code_stored(&mut self, paddr: u64) {
        let page = (paddr >> PAGE_SHIFT) as usize;
        let Some(p) = self.pages.get(page) else {
            return;
        };
        let old = p.generation.fetch_add(1, Release);
        self.code_written = true;
        let Some(&slot) = self.code_slot.get(page) else {
            return;
        };
        if slot == NO_CODE {
            return;
        }
        let a = paddr & !3;
        let index = slot as usize * INSNS_PER_PAGE + ((a & (PAGE_SIZE - 1)) >> 2) as usize;
        if let (Some(insn), Some(raw)) = (self.code.get_mut(index), self.ram.read(a, 4)) {
            *insn = decode(raw as u32);
            self.code_invalidations += 1;
        }
        if let Some(seen) = self.code_seen.get_mut(page) {
            // Current only if it was before this store: another thread's
            // store in between leaves it stale, to be decoded again.
            if *seen == old {
                *seen = old.wrapping_add(1);
            }
        }
    }

    /// What tier 3's compiled code reads and writes itself for an aligned
    /// RAM access (`disco_jit::Fast`): the RAM words, the code pages, the
    /// link mask; and whether stores may be done inline at all (no store
    /// changed code since the last look, as a block's store checks ask) and
    /// whether other threads store to RAM.
    #[inline(always)]
    pub(crate) fn fast_ram(&self) -> (&[AtomicU32], &[Page], &AtomicU64, bool, bool) {
        (
            self.ram.words(),
            &self.pages,
            self.links.held(),
            !self.code_written,
            self.concurrent,
        )
    }

    /// The generation of RAM page `page`'s code (see `Page`).
    #[inline(always)]
    pub fn code_gen(&self, page: usize) -> u32 {
        self.pages
            .get(page)
            .map_or(0, |p| p.generation.load(Acquire))
    }

    /// Whether a store changed decoded code since the last call.
    #[inline(always)]
    pub(crate) fn take_code_written(&mut self) -> bool {
        std::mem::take(&mut self.code_written)
    }

    /// Whether another thread changed page `page` since this bus decoded
    /// it (never in the deterministic mode).
    #[inline(always)]
    pub(crate) fn code_stale(&self, page: usize) -> bool {
        self.concurrent
            && self.code_slot.get(page).is_some_and(|&s| s != NO_CODE)
            && self.code_seen.get(page) != Some(&self.code_gen(page))
    }

    /// This bus, with page `page` decoded afresh if another thread changed
    /// it (before a block is built from it).
    pub(crate) fn fresh(&mut self, page: usize) -> &Bus {
        if self.code_stale(page) {
            self.code_base(page);
        }
        self
    }

    /// Where the decoded instructions of RAM page `page` start in the code
    /// arena (see [`Bus::code`]), decoding the page on first use or after
    /// another thread changed it. `None` outside RAM.
    pub(crate) fn code_base(&mut self, page: usize) -> Option<usize> {
        let slot = *self.code_slot.get(page)?;
        if slot != NO_CODE && !self.code_stale(page) {
            return Some(slot as usize * INSNS_PER_PAGE);
        }
        let p = self.pages.get(page)?;
        p.has_code.store(true, Relaxed);
        // The generation before the words: a store after this read leaves
        // the copy stale, not wrong.
        let generation = p.generation.load(Acquire);
        let base = (page as u64) << PAGE_SHIFT;
        let ram = &self.ram;
        let words = (0..INSNS_PER_PAGE as u64)
            .map(|w| decode(ram.read(base + 4 * w, 4).unwrap_or(0) as u32));
        let slot = if slot == NO_CODE {
            let slot = u32::try_from(self.code.len() / INSNS_PER_PAGE).ok()?;
            self.code.extend(words);
            slot
        } else {
            let at = slot as usize * INSNS_PER_PAGE;
            for (dst, insn) in self.code.iter_mut().skip(at).zip(words) {
                *dst = insn;
            }
            slot
        };
        *self.code_slot.get_mut(page)? = slot;
        *self.code_seen.get_mut(page)? = generation;
        Some(slot as usize * INSNS_PER_PAGE)
    }

    /// The decoded instruction at RAM address `paddr` (word-aligned), from
    /// the page's decoded copy (decoding the page on first use), for
    /// interpreters outside the CPU such as the monitor's engine: no decode
    /// per fetch, and stores keep it current. `None` outside RAM.
    #[inline]
    pub fn decoded(&mut self, paddr: u64) -> Option<Insn> {
        let page = usize::try_from(paddr >> PAGE_SHIFT).ok()?;
        let base = match self.code_slot.get(page) {
            Some(&slot) if slot != NO_CODE && !self.code_stale(page) => {
                slot as usize * INSNS_PER_PAGE
            }
            _ => self.code_base(page)?,
        };
        self.code(base + ((paddr & (PAGE_SIZE - 1)) >> 2) as usize)
    }

    /// Where RAM page `page`'s decoded instructions start in this bus's
    /// arena ([`Bus::code`]), decoded afresh now if another thread changed
    /// it, for an interpreter outside the CPU that fetches from one page
    /// many times (the monitor's engine): this bus's own stores keep the
    /// copy current, so it looks at other threads' stores only when it
    /// next asks. `None` outside RAM.
    pub fn code_page(&mut self, page: usize) -> Option<usize> {
        self.code_base(page)
    }

    /// The decoded instruction at `index` in the code arena.
    #[inline(always)]
    pub fn code(&self, index: usize) -> Option<Insn> {
        self.code.get(index).copied()
    }

    /// LL: links `cpu` to the line holding `paddr`.
    pub fn link(&mut self, cpu: usize, paddr: u64) {
        self.links.link(cpu, paddr, 4, &self.ram);
    }

    /// LL of `width` bytes at `paddr` in RAM: links, then reads (the order
    /// `links` needs). `None`, and no link, outside RAM. (Public for the
    /// monitor's engine, whose VCPUs of one VM may run on several threads.)
    pub fn load_linked(&mut self, cpu: usize, paddr: u64, width: u8) -> Option<u64> {
        if !self.in_ram(paddr, u64::from(width.clamp(1, 8))) {
            return None;
        }
        self.links.link(cpu, paddr, width, &self.ram)
    }

    /// Whether `cpu`'s LLbit is still set: no ERET and no other CPU's store
    /// to the linked line since its LL.
    pub fn linked(&self, cpu: usize) -> bool {
        self.links.linked(cpu)
    }

    /// Clears `cpu`'s link (SC, ERET).
    pub fn unlink(&mut self, cpu: usize) {
        self.links.unlink(cpu);
    }

    /// SC of `width` bytes at `paddr`: `Some(stored)` in RAM; `None` if the
    /// link held but `paddr` is a device (the caller writes it). Exact when
    /// other threads store meanwhile (`links`), where testing the link and
    /// then writing would not be.
    pub fn store_conditional(
        &mut self,
        cpu: usize,
        paddr: u64,
        width: u8,
        value: u64,
    ) -> Option<bool> {
        if !self.links.linked(cpu) {
            return Some(false);
        }
        if !self.in_ram(paddr, u64::from(width.clamp(1, 8))) {
            self.links.unlink(cpu);
            return None;
        }
        if !self.concurrent {
            self.links.unlink(cpu);
            return Some(self.write_ram(cpu, paddr, width, value));
        }
        let stored = self
            .links
            .store_conditional(&self.ram, cpu, paddr, width, value);
        if stored && self.has_code(paddr) {
            self.code_stored(paddr);
            if width == 8 {
                self.code_stored(paddr + 4);
            }
        }
        Some(stored)
    }

    /// Runs `f` on the board, wherever it is (see `shared_board`).
    #[inline]
    pub(crate) fn with_board<R>(&mut self, f: impl FnOnce(&mut Board) -> R) -> R {
        match &self.shared_board {
            Some(b) => f(&mut b.lock()),
            None => f(&mut self.board),
        }
    }

    /// Interrupt lines asserted towards `cpu` (see [`Board::irq_lines`]).
    #[inline]
    pub(crate) fn irq_lines(&self, cpu: usize) -> u32 {
        match &self.shared_board {
            Some(b) => b.lock().irq_lines(cpu),
            None => self.board.irq_lines(cpu),
        }
    }
}
