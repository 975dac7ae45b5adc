//! The inline RAM path against the callouts: the same blocks over the same
//! memory, once with the fast tables lent and once without, must leave the
//! same registers, memory and exit; the callout log says which accesses
//! the inline path left to the callouts.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU32, AtomicU64};

use super::{block, leave};
use crate::fast::{CodePage, XlateEntry, XLATE_SIZE};
use crate::ir::{Block, Op};
use crate::{Exit, Fast, Jit, Memory};

/// 8 KB of RAM as words (two code pages). Virtual page 0 maps to physical
/// page 0, writable; 1 to physical page 1, read-only; 2 past RAM (a device
/// page). Accesses the callouts get are logged and done on the same words.
pub(super) struct Words {
    words: Vec<AtomicU32>,
    pub(super) pages: Vec<CodePage>,
    xlate: Box<[XlateEntry; XLATE_SIZE]>,
    linked: AtomicU64,
    lend: bool,
    stores: bool,
    pub(super) concurrent: bool,
    /// A load callout into virtual page 3 stands for another thread's
    /// store into the code page meanwhile: it bumps page 0's generation
    /// (and reads 0).
    pub(super) racer: bool,
    log: Vec<String>,
}

const XCTX: u32 = 0x30_0000;

impl Words {
    pub(super) fn new(lend: bool) -> Words {
        let mut xlate = Box::new(
            [XlateEntry {
                tag: u32::MAX,
                writable: false,
                pbase: 0,
            }; XLATE_SIZE],
        );
        for (vpn, pbase, writable) in [(0u32, 0u64, true), (1, 0x1000, false), (2, 0x4000, true)] {
            xlate[vpn as usize] = XlateEntry {
                tag: vpn | XCTX,
                writable,
                pbase,
            };
        }
        Words {
            words: (0..2048u32)
                .map(|i| AtomicU32::new(i.wrapping_mul(0x9E37_79B9)))
                .collect(),
            pages: vec![CodePage::default(), CodePage::default()],
            xlate,
            linked: AtomicU64::new(0),
            lend,
            stores: true,
            concurrent: false,
            racer: false,
            log: Vec::new(),
        }
    }

    fn pa(&self, ea: u64, store: bool) -> Option<usize> {
        let vpn = (ea as u32) >> 12;
        let e = self.xlate.get(vpn as usize % XLATE_SIZE)?;
        let pa = e.pbase | (ea & 0xFFF);
        (e.tag == vpn | XCTX && (!store || e.writable) && pa < 0x2000).then_some(pa as usize)
    }
}

impl Memory for Words {
    fn load(&mut self, ea: u64, width: u8, signed: bool) -> Option<u64> {
        self.log.push(format!("load {ea:#x} {width}"));
        if self.racer && (ea as u32) >> 12 == 3 {
            self.pages[0].generation.fetch_add(1, Relaxed);
            return Some(0);
        }
        if !ea.is_multiple_of(u64::from(width)) {
            return None;
        }
        let pa = self.pa(ea, false)?;
        let w = u64::from(self.words[pa / 4].load(Relaxed));
        let bits = 8 * u32::from(width);
        let sh = 32 - bits - 8 * (pa as u32 % 4);
        let raw = (w >> sh) & ((1u64 << bits) - 1);
        Some(if signed {
            ((raw << (64 - bits)) as i64 >> (64 - bits)) as u64
        } else {
            raw
        })
    }

    fn store(&mut self, ea: u64, width: u8, value: u64, check: bool) -> Option<bool> {
        self.log.push(format!("store {ea:#x} {width}"));
        if !ea.is_multiple_of(u64::from(width)) {
            return None;
        }
        let pa = self.pa(ea, true)?;
        let bits = 8 * u32::from(width);
        let sh = 32 - bits - 8 * (pa as u32 % 4);
        let mask = (((1u64 << bits) - 1) << sh) as u32;
        let w = &self.words[pa / 4];
        let old = w.load(Relaxed);
        w.store((old & !mask) | (((value << sh) as u32) & mask), Relaxed);
        Some(check && !self.stores)
    }

    fn fast(&self) -> Option<Fast<'_>> {
        self.lend.then_some(Fast {
            xlate: &self.xlate,
            xctx: XCTX,
            ram: &self.words,
            pages: &self.pages,
            linked: &self.linked,
            stores: self.stores,
            concurrent: self.concurrent,
        })
    }
}

fn run(b: &Block, gpr: &mut [u64; 32], m: &mut Words) -> Exit {
    let mut jit = Jit::new().unwrap();
    let code = jit.compile(b).unwrap();
    let mut state = crate::State::default();
    jit.run(code, gpr, &mut state, 0xFFFF_FFFF_8000_1000, m)
        .unwrap()
}

fn load(t: u8, s: u8, off: u64, width: u8, signed: bool) -> Op {
    Op::Load {
        t,
        s,
        off,
        width,
        signed,
    }
}

fn store(t: u8, s: u8, off: u64, width: u8) -> Op {
    Op::Store { t, s, off, width }
}

/// Every width and lane, signed and not, stored and loaded back.
fn lanes() -> Vec<Op> {
    let mut ops = Vec::new();
    for (k, &(width, signed)) in [(4, true), (2, true), (2, false), (1, true), (1, false)]
        .iter()
        .enumerate()
    {
        for lane in (0..4).step_by(usize::from(width)) {
            let off = 0x100 + 0x10 * k as u64 + lane;
            ops.push(load(2, 1, off, width, signed));
            ops.push(store(2, 1, off + 0x200, width));
            ops.push(load(3, 1, off + 0x200, width, signed));
            ops.push(Op::Alu {
                op: crate::ir::Alu::Xor,
                d: 4,
                s: 4,
                t: 3,
            });
            ops.push(Op::Imm {
                op: crate::ir::Imm::Addu,
                t: 4,
                s: 4,
                imm: off,
            });
        }
    }
    ops
}

/// Runs `ops` with and without the tables lent (`setup` applied to both);
/// both must agree. The callout log of the lent run.
fn both(ops: &[Op], gpr0: &[u64; 32], setup: impl Fn(&mut Words)) -> (Exit, Vec<String>) {
    let b = block(ops, &[], &[]);
    let (mut plain, mut fast) = (Words::new(false), Words::new(true));
    setup(&mut plain);
    setup(&mut fast);
    let (mut g1, mut g2) = (*gpr0, *gpr0);
    let e1 = run(&b, &mut g1, &mut plain);
    let e2 = run(&b, &mut g2, &mut fast);
    assert_eq!(e1, e2);
    assert_eq!(g1, g2);
    let words = |m: &Words| m.words.iter().map(|w| w.load(Relaxed)).collect::<Vec<_>>();
    assert_eq!(words(&plain), words(&fast));
    (e2, fast.log)
}

#[test]
fn aligned_ram_accesses_run_inline_with_the_callouts_results() {
    let ops = lanes();
    let n = ops.len();
    let (exit, log) = both(&ops, &[0; 32], |_| {});
    assert_eq!(
        exit,
        leave(n, 0xFFFF_FFFF_8000_1000 + 4 * n as u64, n as u64)
    );
    assert_eq!(log, Vec::<String>::new());
}

#[test]
fn concurrent_memory_sends_narrow_stores_to_the_callout() {
    let (_, log) = both(&lanes(), &[0; 32], |m| m.concurrent = true);
    // Words inline, the 12 narrow stores (2+2 halves, 4+4 bytes) called out.
    assert_eq!(log.len(), 12);
    assert!(log
        .iter()
        .all(|l| l.starts_with("store") && !l.ends_with(" 4")));
}

#[test]
fn misses_devices_read_only_pages_and_odd_addresses_go_to_the_callouts() {
    let ops = [
        load(2, 0, 0x1004, 4, true), // read-only page: loads inline
        store(2, 0, 0x1008, 4),      // read-only: callout, declined
    ];
    let (exit, log) = both(&ops, &[0; 32], |_| {});
    assert!(matches!(exit, Exit::Resume { at: 1, .. }));
    assert_eq!(log, ["store 0x1008 4"]);
    for (op, called) in [
        (load(2, 0, 0x2004, 4, true), "load 0x2004 4"), // past RAM
        (load(2, 0, 0x3004, 4, true), "load 0x3004 4"), // no entry
        (load(2, 0, 0x0006, 4, true), "load 0x6 4"),    // unaligned
        (load(2, 0, 0x0005, 2, false), "load 0x5 2"),
        (store(2, 0, 0x0003, 2), "store 0x3 2"),
    ] {
        let (_, log) = both(&[op, Op::Nop], &[0; 32], |_| {});
        assert_eq!(log, [called]);
    }
}

#[test]
fn code_pages_links_and_pending_stops_send_stores_to_the_callout() {
    let ops = [store(1, 0, 0x10, 4), store(1, 0, 0x20, 1), Op::Nop];
    let setups: [fn(&mut Words); 3] = [
        |m| m.pages[0].has_code.store(true, Relaxed),
        |m| m.linked.store(4, Relaxed),
        |m| m.stores = false,
    ];
    for setup in setups {
        let (_, log) = both(&ops, &[0; 32], setup);
        assert_eq!(log.first().map(String::as_str), Some("store 0x10 4"));
    }
    // Code in the other page only: both inline.
    let (_, log) = both(&ops, &[0; 32], |m| m.pages[1].has_code.store(true, Relaxed));
    assert!(log.is_empty());
}

#[test]
fn a_block_s_accesses_share_the_page_caches_and_miss_where_they_must() {
    let ops = [
        load(2, 0, 0x0004, 4, true),  // page 0, cached for loads
        load(3, 0, 0x1004, 4, true),  // read-only page 1 replaces it
        load(4, 0, 0x0008, 2, false), // page 0 again
        store(2, 0, 0x0010, 4),       // page 0, cached for stores
        store(3, 0, 0x0012, 2),       // a hit
        load(5, 0, 0x1010, 1, true),  // page 1 for loads again
        store(4, 0, 0x1008, 4),       // read-only: callout, declined
    ];
    let (exit, log) = both(&ops, &[0; 32], |_| {});
    assert!(matches!(exit, Exit::Resume { at: 6, .. }));
    assert_eq!(log, ["store 0x1008 4"]);
    // A misaligned access in the cached page misses it.
    let ops = [load(2, 0, 0x4, 4, true), load(3, 0, 0x6, 4, true), Op::Nop];
    let (exit, log) = both(&ops, &[0; 32], |_| {});
    assert!(matches!(exit, Exit::Resume { at: 1, .. }));
    assert_eq!(log, ["load 0x6 4"]);
    // So does another page at the same offset (page 2 is past RAM).
    let ops = [
        load(2, 0, 0x4, 4, true),
        load(3, 0, 0x2004, 4, true),
        Op::Nop,
    ];
    let (_, log) = both(&ops, &[0; 32], |_| {});
    assert_eq!(log, ["load 0x2004 4"]);
}
