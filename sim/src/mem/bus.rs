//! The physical bus. RAM starts at physical 0; everything above it goes to
//! the board. Instructions are decoded once per physical page, on the first
//! fetch from it; a store into a decoded page re-decodes the words it wrote
//! (the page stays decoded), so decoded code is never stale.

use crate::dev::Board;
use crate::isa::{decode, Insn};

pub const PAGE_SHIFT: u32 = 12;
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
const INSNS_PER_PAGE: usize = (PAGE_SIZE / 4) as usize;

/// `code_slot` value of a page that has never been fetched from.
const NO_CODE: u32 = u32::MAX;

/// No LL link held.
const NO_LINK: u64 = u64::MAX;

#[derive(Debug)]
pub struct Bus {
    ram: Vec<u8>,
    /// Per RAM page: where its decoded instructions start in `code`, in
    /// units of pages, or `NO_CODE` until first fetched.
    code_slot: Vec<u32>,
    /// Decoded instructions of every page ever fetched from, one page after
    /// another. A store into such a page re-decodes the words it wrote, so an
    /// entry is never stale and a CPU may cache where its page lives.
    code: Vec<Insn>,
    /// Per RAM page: bumped by every store that changes its decoded code, so
    /// translated blocks built from the page know they are stale.
    code_gen: Vec<u32>,
    /// Set by a store that changed decoded code; a block running when it
    /// happens stops after that store (the code after it may have changed).
    code_written: bool,
    /// The translated blocks of every CPU (`cpu::block`): they depend on
    /// physical memory only, so the CPUs share them.
    pub(crate) blocks: crate::cpu::block::BlockCache,
    /// Per CPU: the 16-byte line (PA >> 4) its LL linked, or `NO_LINK`.
    links: Vec<u64>,
    any_link: bool,
    pub board: Board,
    /// Instruction words re-decoded because a store changed them (statistics).
    pub code_invalidations: u64,
}

impl Bus {
    pub fn new(ram_bytes: u64, ncpus: usize, board: Board) -> Bus {
        let ram_bytes = ram_bytes & !(PAGE_SIZE - 1);
        let pages = usize::try_from(ram_bytes >> PAGE_SHIFT).unwrap_or(0);
        Bus {
            ram: vec![0; pages << PAGE_SHIFT],
            code_slot: vec![NO_CODE; pages],
            code: Vec::new(),
            code_gen: vec![0; pages],
            code_written: false,
            blocks: crate::cpu::block::BlockCache::default(),
            links: vec![NO_LINK; ncpus],
            any_link: false,
            board,
            code_invalidations: 0,
        }
    }

    pub fn ram(&self) -> &[u8] {
        &self.ram
    }

    /// Whether `[paddr, paddr+len)` lies in RAM.
    #[inline(always)]
    pub fn in_ram(&self, paddr: u64, len: u64) -> bool {
        paddr
            .checked_add(len)
            .is_some_and(|end| end <= self.ram.len() as u64)
    }

    /// Copies `data` into RAM at `paddr` (loader, disk DMA, debugger).
    /// Returns false if it does not fit.
    pub fn write_bytes(&mut self, paddr: u64, data: &[u8]) -> bool {
        if !self.in_ram(paddr, data.len() as u64) {
            return false;
        }
        let start = paddr as usize;
        if let Some(dst) = self.ram.get_mut(start..start + data.len()) {
            dst.copy_from_slice(data);
        }
        let end = paddr + data.len() as u64;
        let mut word = paddr & !3;
        while word < end {
            self.redecode(word);
            word += 4;
        }
        true
    }

    /// Reads RAM bytes without side effects (debugger, dumps).
    pub fn read_bytes(&self, paddr: u64, len: usize) -> Option<&[u8]> {
        if !self.in_ram(paddr, len as u64) {
            return None;
        }
        self.ram.get(paddr as usize..paddr as usize + len)
    }

    /// An aligned RAM read of 1, 2, 4 or 8 bytes, big-endian.
    #[inline(always)]
    pub fn read_ram(&self, paddr: u64, width: u8) -> Option<u64> {
        let a = paddr as usize;
        Some(match width {
            1 => u64::from(*self.ram.get(a)?),
            2 => u64::from(u16::from_be_bytes(self.ram.get(a..a + 2)?.try_into().ok()?)),
            4 => u64::from(u32::from_be_bytes(self.ram.get(a..a + 4)?.try_into().ok()?)),
            _ => u64::from_be_bytes(self.ram.get(a..a + 8)?.try_into().ok()?),
        })
    }

    /// An aligned RAM write; re-decodes the written words if their page is
    /// decoded, and drops other CPUs' LL links on the written line. Returns
    /// false outside RAM.
    #[inline(always)]
    pub fn write_ram(&mut self, cpu: usize, paddr: u64, width: u8, value: u64) -> bool {
        let a = paddr as usize;
        let ok = match width {
            1 => self.ram.get_mut(a).map(|b| *b = value as u8).is_some(),
            2 => self
                .ram
                .get_mut(a..a + 2)
                .map(|d| d.copy_from_slice(&(value as u16).to_be_bytes()))
                .is_some(),
            4 => self
                .ram
                .get_mut(a..a + 4)
                .map(|d| d.copy_from_slice(&(value as u32).to_be_bytes()))
                .is_some(),
            _ => self
                .ram
                .get_mut(a..a + 8)
                .map(|d| d.copy_from_slice(&value.to_be_bytes()))
                .is_some(),
        };
        if !ok {
            return false;
        }
        if self
            .code_slot
            .get(a >> PAGE_SHIFT)
            .is_some_and(|&s| s != NO_CODE)
        {
            self.redecode(paddr);
            if width == 8 {
                self.redecode(paddr + 4);
            }
        }
        if self.any_link {
            self.break_links(cpu, paddr >> 4);
        }
        true
    }

    /// Re-decodes the word at `paddr` if its page has decoded code.
    #[cold]
    fn redecode(&mut self, paddr: u64) {
        let page = (paddr >> PAGE_SHIFT) as usize;
        let Some(&slot) = self.code_slot.get(page) else {
            return;
        };
        if slot == NO_CODE {
            return;
        }
        let a = (paddr & !3) as usize;
        let Some(Ok(bytes)) = self.ram.get(a..a + 4).map(<[u8; 4]>::try_from) else {
            return;
        };
        let index = slot as usize * INSNS_PER_PAGE + ((a & (PAGE_SIZE as usize - 1)) >> 2);
        if let Some(insn) = self.code.get_mut(index) {
            *insn = decode(u32::from_be_bytes(bytes));
            self.code_invalidations += 1;
        }
        if let Some(g) = self.code_gen.get_mut(page) {
            *g = g.wrapping_add(1);
        }
        self.code_written = true;
    }

    /// The generation of RAM page `page`'s decoded code (see `code_gen`).
    #[inline(always)]
    pub fn code_gen(&self, page: usize) -> u32 {
        self.code_gen.get(page).copied().unwrap_or(0)
    }

    /// Whether a store changed decoded code since the last call.
    #[inline(always)]
    pub(crate) fn take_code_written(&mut self) -> bool {
        std::mem::take(&mut self.code_written)
    }

    /// Where the decoded instructions of RAM page `page` start in the code
    /// arena (see [`Bus::code`]), decoding the page on first use. `None`
    /// outside RAM.
    pub fn code_base(&mut self, page: usize) -> Option<usize> {
        let slot = *self.code_slot.get(page)?;
        if slot != NO_CODE {
            return Some(slot as usize * INSNS_PER_PAGE);
        }
        let base = page << PAGE_SHIFT;
        let bytes = self.ram.get(base..base + PAGE_SIZE as usize)?;
        let slot = u32::try_from(self.code.len() / INSNS_PER_PAGE).ok()?;
        self.code.extend(
            bytes
                .chunks_exact(4)
                .map(|w| decode(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))),
        );
        *self.code_slot.get_mut(page)? = slot;
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
            Some(&slot) if slot != NO_CODE => slot as usize * INSNS_PER_PAGE,
            _ => self.code_base(page)?,
        };
        self.code(base + ((paddr & (PAGE_SIZE - 1)) >> 2) as usize)
    }

    /// The decoded instruction at `index` in the code arena.
    #[inline(always)]
    pub fn code(&self, index: usize) -> Option<Insn> {
        self.code.get(index).copied()
    }

    /// LL: links `cpu` to the line holding `paddr`.
    pub fn link(&mut self, cpu: usize, paddr: u64) {
        if let Some(l) = self.links.get_mut(cpu) {
            *l = paddr >> 4;
            self.any_link = true;
        }
    }

    /// Whether `cpu`'s LLbit is still set: no ERET and no other CPU's store
    /// to the linked line since its LL.
    pub fn linked(&self, cpu: usize) -> bool {
        self.links.get(cpu).is_some_and(|&l| l != NO_LINK)
    }

    /// Clears `cpu`'s link (SC, ERET).
    pub fn unlink(&mut self, cpu: usize) {
        if let Some(l) = self.links.get_mut(cpu) {
            *l = NO_LINK;
        }
        self.any_link = self.links.iter().any(|&l| l != NO_LINK);
    }

    #[cold]
    fn break_links(&mut self, writer: usize, line: u64) {
        for (cpu, l) in self.links.iter_mut().enumerate() {
            if cpu != writer && *l == line {
                *l = NO_LINK;
            }
        }
    }
}
