//! The RAM fast path compiled code does without a callout: the caller's
//! translation cache, its RAM words, its per-page code flags and its LL
//! link mask, read in place. The types the generated code reads are
//! defined here, `#[repr(C)]`, so their layout is known where the code is
//! generated and used as is by the simulator (its translation cache is an
//! array of [`XlateEntry`], its page table a slice of [`CodePage`]).
//!
//! Why reading and writing them from generated code is sound is point 4 of
//! the crate's safety argument (lib.rs).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};

/// Entries of a translation cache (direct-mapped by virtual page number).
pub const XLATE_SIZE: usize = 256;
/// log2 of the page size of the translation cache and of [`CodePage`]s.
pub const PAGE_SHIFT: u32 = 12;

/// A software translation entry: one 4 KB virtual page in one context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct XlateEntry {
    /// `vpn | context`, or a value no `vpn | context` has.
    pub tag: u32,
    /// Stores may use the entry.
    pub writable: bool,
    /// Physical base of the page.
    pub pbase: u64,
}

/// Per RAM page, shared by every thread.
#[derive(Debug, Default)]
#[repr(C)]
pub struct CodePage {
    /// Some thread decoded code from the page: stores into it must bump
    /// `generation` (compiled code leaves such a store to the callout).
    pub has_code: AtomicBool,
    /// Bumped by every store into the page while it has code, so decoded
    /// copies and translated blocks built from it know they are stale.
    pub generation: AtomicU32,
}

/// What a [`crate::Memory`] lends compiled code for its fast path, for the
/// length of one run.
#[derive(Clone, Copy, Debug)]
pub struct Fast<'a> {
    pub xlate: &'a [XlateEntry; XLATE_SIZE],
    /// The current context, or'ed into a virtual page number to make a tag.
    pub xctx: u32,
    /// RAM from physical address 0: guest word `k` (big-endian bytes) is
    /// the value of `ram[k]`.
    pub ram: &'a [AtomicU32],
    /// Per 4 KB of RAM.
    pub pages: &'a [CodePage],
    /// Not zero while some CPU holds an LL link: stores go to the callout,
    /// which breaks the links.
    pub linked: &'a AtomicU64,
    /// Stores may be done inline. False when the store callout would ask
    /// the block to stop after any store (the caller's pending conditions):
    /// then every store goes to it.
    pub stores: bool,
    /// Other threads may store to RAM: a narrow store (a read-merge-write
    /// of its word inline) goes to the callout, which does it atomically.
    pub concurrent: bool,
}

/// `Tables::flags` bit: a narrow store may be done inline.
pub(crate) const NARROW_STORES: u32 = 4;
/// `Tables::flags` bit: other threads may store to RAM (`Fast::concurrent`),
/// so a loop's jumps read the page's generation (`lower/region.rs`).
pub(crate) const CONCURRENT: u32 = 8;

/// A translation cache no access hits, for tables that lend none: the
/// generated code reads an entry before it finds the RAM bound (0) failed,
/// so the pointer must be valid, and it then needs no test of its own.
static MISS: [XlateEntry; XLATE_SIZE] = [XlateEntry {
    tag: u32::MAX,
    writable: false,
    pbase: 0,
}; XLATE_SIZE];

/// A link mask that says a link is held: what the tables point at when no
/// store may be done inline, so that every store goes to the callout
/// without a test of its own.
static HELD: AtomicU64 = AtomicU64::new(1);

/// [`Fast`] as the generated code reads it (the block function's fifth
/// argument).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Tables {
    pub(crate) xlate: *const XlateEntry,
    pub(crate) ram: *const AtomicU32,
    /// Words of `ram`.
    pub(crate) ram_words: u64,
    pub(crate) pages: *const CodePage,
    /// Entries of `pages`.
    pub(crate) pages_len: u64,
    pub(crate) linked: *const AtomicU64,
    pub(crate) xctx: u32,
    /// [`NARROW_STORES`], [`CONCURRENT`] or both. (Whether loads and word stores may be done
    /// inline is in the pointers: `ram_words` 0, `linked` at [`HELD`].)
    pub(crate) flags: u32,
}

impl Tables {
    /// No fast path: every access goes to the callouts (the pointers are
    /// never read, as `flags` is 0).
    pub(crate) const NONE: Tables = Tables {
        xlate: MISS.as_ptr(),
        ram: std::ptr::null(),
        ram_words: 0,
        pages: std::ptr::null(),
        pages_len: 0,
        linked: &raw const HELD,
        xctx: 0,
        flags: 0,
    };

    #[inline(always)]
    pub(crate) fn new(f: &Fast<'_>) -> Tables {
        // The inline paths read RAM words as host integers, which is
        // endian-neutral; only a host without 64-bit pointers (where the
        // generated address arithmetic would not fit) gets none.
        if !cfg!(target_pointer_width = "64") {
            return Tables::NONE;
        }
        let flags = match (f.stores, f.concurrent) {
            (true, false) => NARROW_STORES,
            (_, true) => CONCURRENT,
            (false, false) => 0,
        };
        // No store inline: every store finds a link held.
        let linked = if f.stores { f.linked } else { &HELD };
        Tables {
            xlate: f.xlate.as_ptr(),
            ram: f.ram.as_ptr(),
            ram_words: f.ram.len() as u64,
            pages: f.pages.as_ptr(),
            pages_len: f.pages.len() as u64,
            linked: std::ptr::from_ref(linked),
            xctx: f.xctx,
            flags,
        }
    }
}
