//! Loads and stores. An aligned access that hits the caller's translation
//! cache and RAM is done inline from the tables the block's fifth argument
//! points at (`crate::fast`); anything else (a miss, an unaligned address, a
//! device, a store into a page with code or while an LL link is held, or
//! what the caller keeps for the callout: `Fast::stores`, `Fast::concurrent`)
//! calls the callout as before, so
//! the callout stays the one place for every case but the common one.
//! The page an access found is kept for the rest of the run ([`Cache`]):
//! in a loop, the next access to it is a compare and the RAM access.

use std::mem::{offset_of, size_of};

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I16, I32, I64, I8};
use cranelift_codegen::ir::{Block as Label, InstBuilder, Type, Value};
use cranelift_frontend::{FunctionBuilder, Variable};

use super::{Lower, CHECK, SIGNED, STOP};
use crate::fast::{CodePage, Tables, XlateEntry, NARROW_STORES, PAGE_SHIFT, XLATE_SIZE};
use crate::ir::Insn;

/// The fields of `Tables` a page lookup needs (a store's needs more),
/// read where the lookup is, when the page caches miss: read once per
/// function they would be values live across the whole of it, which in a
/// loop pushes guest registers out of the host's.
#[derive(Clone, Copy)]
pub(super) struct Tabs {
    xlate: Value,
    ram: Value,
    ram_words: Value,
    xctx: Value,
    stores: Option<StoreTabs>,
}

#[derive(Clone, Copy)]
struct StoreTabs {
    pages: Value,
    pages_len: Value,
}

/// The last page a load and the last page a store went to inline, for the
/// whole run of the function (loop passes included): the translation
/// entries do not change while generated code runs (safety argument, point
/// 4), so a page found once needs no second lookup. A key is the virtual
/// page's address (32 bits, as the tags are made), [`NO_PAGE`] until
/// filled; a host address is that of the page's first RAM word.
#[derive(Clone, Copy)]
pub(super) struct Cache {
    load_page: Variable,
    load_host: Variable,
    store_page: Variable,
    store_host: Variable,
    /// The store page's `CodePage::has_code` (read at every store: another
    /// thread may decode code from the page meanwhile).
    store_code: Variable,
}

/// A key no access matches: an access's key has bits 2..12 clear.
const NO_PAGE: i64 = 0x10;

/// The key of a `width`-byte access at 32-bit `va`: its page, with the
/// bits that make it misaligned kept, so that a misaligned access misses.
fn page_key(f: &mut FunctionBuilder<'_>, va: Value, width: u8) -> Value {
    f.ins().band_imm_s(va, !0xFFF | (i64::from(width) - 1))
}

fn field(f: &mut FunctionBuilder<'_>, tables: Value, ty: Type, off: usize) -> Value {
    f.ins().load(ty, Lower::flags(), tables, off as i32)
}

impl Lower<'_> {
    /// The tables for a page lookup (a store's too if `store`).
    fn tabs(&mut self, store: bool) -> Tabs {
        let t = self.tables;
        let f = &mut self.f;
        Tabs {
            xlate: field(f, t, I64, offset_of!(Tables, xlate)),
            ram: field(f, t, I64, offset_of!(Tables, ram)),
            ram_words: field(f, t, I64, offset_of!(Tables, ram_words)),
            xctx: field(f, t, I32, offset_of!(Tables, xctx)),
            stores: store.then(|| StoreTabs {
                pages: field(f, t, I64, offset_of!(Tables, pages)),
                pages_len: field(f, t, I64, offset_of!(Tables, pages_len)),
            }),
        }
    }

    /// The page caches, empty; called in the entry block, so that every
    /// access sees them defined.
    pub(super) fn new_cache(&mut self) -> Cache {
        let f = &mut self.f;
        let mut var = |ty, x: i64| {
            let v = f.declare_var(ty);
            let x = f.ins().iconst(ty, x);
            f.def_var(v, x);
            v
        };
        Cache {
            load_page: var(I32, NO_PAGE),
            load_host: var(I64, 0),
            store_page: var(I32, NO_PAGE),
            store_host: var(I64, 0),
            store_code: var(I64, 0),
        }
    }
}

impl Lower<'_> {
    /// Goes on in a new block if `cond` is zero, to `slow` otherwise.
    pub(super) fn unless(&mut self, cond: Value, slow: Label) {
        let on = self.f.create_block();
        self.f.ins().brif(cond, slow, &[], on, &[]);
        self.f.switch_to_block(on);
    }

    /// The host address of the first RAM word of the page an aligned
    /// `width`-byte access at `ea` is in, if it hits the translation cache
    /// (writable, for a store) and the whole page lies in RAM; to `slow`
    /// otherwise. As the simulator's `xlate_hit` and RAM bound. Also the
    /// page's physical address.
    fn translate(
        &mut self,
        t: Tabs,
        ea: Value,
        width: u8,
        store: bool,
        slow: Label,
    ) -> (Value, Value) {
        let fl = Self::flags();
        if width > 1 {
            let odd = self.f.ins().band_imm_s(ea, i64::from(width) - 1);
            self.unless(odd, slow);
        }
        let va = self.f.ins().ireduce(I32, ea);
        let vpn = self.f.ins().ushr_imm_s(va, i64::from(PAGE_SHIFT));
        let index = self.f.ins().band_imm_s(vpn, XLATE_SIZE as i64 - 1);
        let index = self.f.ins().uextend(I64, index);
        let off = self
            .f
            .ins()
            .imul_imm_s(index, size_of::<XlateEntry>() as i64);
        let e = self.f.ins().iadd(t.xlate, off);
        let tag = self
            .f
            .ins()
            .load(I32, fl, e, offset_of!(XlateEntry, tag) as i32);
        let want = self.f.ins().bor(vpn, t.xctx);
        let other = self.f.ins().icmp(IntCC::NotEqual, tag, want);
        self.unless(other, slow);
        if store {
            let w = self
                .f
                .ins()
                .load(I8, fl, e, offset_of!(XlateEntry, writable) as i32);
            let ro = self.f.ins().icmp_imm_s(IntCC::Equal, w, 0);
            self.unless(ro, slow);
        }
        let pbase = self
            .f
            .ins()
            .load(I64, fl, e, offset_of!(XlateEntry, pbase) as i32);
        // Page-aligned whatever the entry holds, so that every address
        // within the page is below the bound checked here.
        let pbase = self.f.ins().band_imm_s(pbase, !0xFFF);
        let top = self.f.ins().bor_imm_s(pbase, 0xFFF);
        let last = self.f.ins().ushr_imm_s(top, 2);
        let out = self
            .f
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, last, t.ram_words);
        self.unless(out, slow);
        (self.f.ins().iadd(t.ram, pbase), pbase)
    }

    /// The host address of the RAM word an access at `ea` reads or writes,
    /// in the page whose first word is at `host`.
    fn word_addr(&mut self, host: Value, ea: Value) -> Value {
        let within = self.f.ins().band_imm_s(ea, 0xFFC);
        self.f.ins().iadd(host, within)
    }

    /// How far right the `width`-byte lane at `pa` sits in its word (the
    /// words hold the guest's bytes big-endian): `(4 - width - ea % 4) * 8`
    /// (the physical address has the same low bits).
    fn lane_shift(&mut self, ea: Value, width: u8) -> Value {
        let p = self.f.ins().ireduce(I32, ea);
        let lane = self.f.ins().band_imm_s(p, 3);
        let top = self.f.ins().iconst(I32, 4 - i64::from(width));
        let bytes = self.f.ins().isub(top, lane);
        self.f.ins().ishl_imm_s(bytes, 3)
    }

    /// The host address of the first RAM word of the page of an access at
    /// `ea` that may be done inline (see [`Lower::translate`]): from the
    /// cache, or looked up and cached; to `slow` otherwise.
    fn page(&mut self, ea: Value, width: u8, store: bool, slow: Label) -> Value {
        let Some(c) = self.cache else {
            // Not reached: a function with accesses has the caches.
            let tb = self.tabs(store);
            return self.translate(tb, ea, width, store, slow).0;
        };
        let (page, host) = if store {
            (c.store_page, c.store_host)
        } else {
            (c.load_page, c.load_host)
        };
        let va = self.f.ins().ireduce(I32, ea);
        let key = page_key(&mut self.f, va, width);
        let cached = self.f.use_var(page);
        let hit = self.f.ins().icmp(IntCC::Equal, key, cached);
        let fill = self.f.create_block();
        let go = self.f.create_block();
        self.f.ins().brif(hit, go, &[], fill, &[]);
        self.f.switch_to_block(fill);
        let tb = self.tabs(store);
        let (h, pbase) = self.translate(tb, ea, width, store, slow);
        if let (true, Some(st)) = (store, tb.stores) {
            let index = self.f.ins().ushr_imm_s(pbase, i64::from(PAGE_SHIFT));
            let out = self
                .f
                .ins()
                .icmp(IntCC::UnsignedGreaterThanOrEqual, index, st.pages_len);
            self.unless(out, slow);
            let off = self.f.ins().imul_imm_s(index, size_of::<CodePage>() as i64);
            let p = self.f.ins().iadd(st.pages, off);
            let code = self
                .f
                .ins()
                .iadd_imm_s(p, offset_of!(CodePage, has_code) as i64);
            self.f.def_var(c.store_code, code);
        }
        let at = self.f.ins().band_imm_s(va, !0xFFF);
        self.f.def_var(page, at);
        self.f.def_var(host, h);
        self.f.ins().jump(go, &[]);
        self.f.switch_to_block(go);
        self.f.use_var(host)
    }

    /// Instruction `k`, a load: rt = the value at rs + off.
    pub(super) fn load(&mut self, k: usize, (t, s, off): (u8, u8, u64), width: u8, signed: bool) {
        let base = self.get(s);
        let ea = self.f.ins().iadd_imm_s(base, off as i64);
        let x = self.f.declare_var(I64);
        let slow = self.f.create_block();
        let join = self.f.create_block();
        let host = self.page(ea, width, false, slow);
        let v = self.load_ram(host, ea, width, signed);
        self.f.def_var(x, v);
        self.f.ins().jump(join, &[]);
        self.f.switch_to_block(slow);
        let kind = u32::from(width) | if signed { SIGNED } else { 0 };
        let kind = self.f.ins().iconst(I32, i64::from(kind));
        let out = self.f.ins().stack_addr(self.callouts.ptr, self.out, 0);
        let callee = self.f.ins().iconst(self.callouts.ptr, self.callouts.load);
        let call = self
            .f
            .ins()
            .call_indirect(self.load_sig, callee, &[self.mem, ea, kind, out]);
        if let Some(ok) = self.f.inst_results(call).first().copied() {
            let miss = self.f.ins().icmp_imm_s(IntCC::Equal, ok, 0);
            self.exit_if(miss, |l| l.resume(k));
        }
        let v = self.f.ins().stack_load(self.callouts.ptr, I64, self.out, 0);
        self.f.def_var(x, v);
        self.f.ins().jump(join, &[]);
        self.f.switch_to_block(join);
        let v = self.f.use_var(x);
        self.set(t, v);
    }

    /// The `width`-byte value at `ea`, whose page's first RAM word is at
    /// `host` (translated, in RAM, aligned), extended. Its word is read
    /// whole and atomically, as the simulator's `Ram::read` reads it.
    fn load_ram(&mut self, host: Value, ea: Value, width: u8, signed: bool) -> Value {
        let addr = self.word_addr(host, ea);
        let w = self.f.ins().atomic_load(I32, Self::flags(), addr);
        let lane = if width >= 4 {
            w
        } else {
            let sh = self.lane_shift(ea, width);
            let v = self.f.ins().ushr(w, sh);
            let ty = if width == 1 { I8 } else { I16 };
            self.f.ins().ireduce(ty, v)
        };
        if signed {
            self.f.ins().sextend(I64, lane)
        } else {
            self.f.ins().uextend(I64, lane)
        }
    }

    /// Instruction `k` (`i`), a store of rt's low `width` bytes to rs +
    /// off. When the block must ask whether to stop after it, the
    /// callout's answer is looked at on the callout's path (the inline
    /// path answers "go on"), or, in a delay slot (whose exit comes
    /// first), returned (1 done, 2 done and stop; the inline path 1).
    pub(super) fn store(
        &mut self,
        k: usize,
        i: &Insn,
        (t, s, off): (u8, u8, u64),
        width: u8,
    ) -> Option<Value> {
        let base = self.get(s);
        let value = self.get(t);
        let ea = self.f.ins().iadd_imm_s(base, off as i64);
        let r = self.f.declare_var(I32);
        let slow = self.f.create_block();
        let join = self.f.create_block();
        if self.store_inline(ea, value, width, slow) {
            let done = self.f.ins().iconst(I32, 1);
            self.f.def_var(r, done);
            self.f.ins().jump(join, &[]);
        }
        self.f.switch_to_block(slow);
        let one = self.f.ins().iconst(I32, 1);
        self.f.def_var(self.store_called, one);
        self.stop_looping();
        let kind = u32::from(width) | if i.check { CHECK } else { 0 };
        let kind = self.f.ins().iconst(I32, i64::from(kind));
        let callee = self.f.ins().iconst(self.callouts.ptr, self.callouts.store);
        let call = self
            .f
            .ins()
            .call_indirect(self.store_sig, callee, &[self.mem, ea, value, kind]);
        let res = self.f.inst_results(call).first().copied();
        if let Some(res) = res {
            let miss = self.f.ins().icmp_imm_s(IntCC::Equal, res, 0);
            self.exit_if(miss, |l| l.resume(k));
            self.f.def_var(r, res);
            if i.check && !i.slot {
                let must = self.f.ins().icmp_imm_s(IntCC::Equal, res, 2);
                self.exit_if(must, |l| {
                    let next = l.pc(k + 1);
                    l.leave(STOP, k + 1, next, Some(l.offset(k + 1)));
                });
            }
        }
        self.f.ins().jump(join, &[]);
        self.f.switch_to_block(join);
        (i.check && i.slot && res.is_some()).then(|| self.f.use_var(r))
    }

    /// The inline store, or a branch to `slow` for what only the callout
    /// does: as the simulator's `write_ram`, but a page with code or a held
    /// link sends the store to the callout (which bumps the page's
    /// generation or breaks the links) instead of being handled here.
    /// False: no inline path (the code jumps to `slow`).
    fn store_inline(&mut self, ea: Value, value: Value, width: u8, slow: Label) -> bool {
        let Some(c) = self.cache else {
            // Not reached: a function with accesses has the caches.
            self.f.ins().jump(slow, &[]);
            return false;
        };
        let t = self.tables;
        if width < 4 {
            let flags = field(&mut self.f, t, I32, offset_of!(Tables, flags));
            let on = self.f.ins().band_imm_s(flags, i64::from(NARROW_STORES));
            let no = self.f.ins().icmp_imm_s(IntCC::Equal, on, 0);
            self.unless(no, slow);
        }
        let host = self.page(ea, width, true, slow);
        let p = self.f.use_var(c.store_code);
        let code = self.f.ins().atomic_load(I8, Self::flags(), p);
        self.unless(code, slow);
        let linked = field(&mut self.f, t, I64, offset_of!(Tables, linked));
        let held = self.f.ins().atomic_load(I64, Self::flags(), linked);
        self.unless(held, slow);
        let addr = self.word_addr(host, ea);
        let v = self.f.ins().ireduce(I32, value);
        let word = if width >= 4 {
            v
        } else {
            // Read, merge, write: NARROW_STORES says no other thread
            // stores to RAM, as `Ram::write` does when not concurrent.
            let old = self.f.ins().atomic_load(I32, Self::flags(), addr);
            let sh = self.lane_shift(ea, width);
            let ones = self.f.ins().iconst(I32, (1i64 << (8 * width)) - 1);
            let mask = self.f.ins().ishl(ones, sh);
            let keep = self.f.ins().band_not(old, mask);
            let lane = self.f.ins().ishl(v, sh);
            let lane = self.f.ins().band(lane, mask);
            self.f.ins().bor(keep, lane)
        };
        self.store_word(word, addr);
        true
    }
    /// An atomic release store of a RAM word (safety argument, point 4).
    fn store_word(&mut self, word: Value, addr: Value) {
        if cfg!(target_arch = "x86_64") {
            // On x86-64 a release store is a plain aligned `mov` (what
            // Rust emits for `AtomicU32::store(_, Release)`); Cranelift's
            // `atomic_store` is sequentially consistent, a `mov` and an
            // `mfence`, which costs more than the callout it replaces.
            self.f.ins().store(Self::flags(), word, addr, 0);
        } else {
            self.f.ins().atomic_store(Self::flags(), word, addr);
        }
    }
}
