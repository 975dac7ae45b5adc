//! Loads and stores. An aligned access that hits the caller's translation
//! cache and RAM is done inline from the tables the block's fifth argument
//! points at (`crate::fast`); anything else (a miss, an unaligned address, a
//! device, a store into a page with code or while an LL link is held, or
//! what the caller keeps for the callout: `Fast::stores`, `Fast::concurrent`)
//! calls the callout as before, so
//! the callout stays the one place for every case but the common one.

use std::mem::{offset_of, size_of};

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I16, I32, I64, I8};
use cranelift_codegen::ir::{Block as Label, InstBuilder, Type, Value};
use cranelift_frontend::FunctionBuilder;

use super::{Lower, CHECK, SIGNED};
use crate::fast::{CodePage, Tables, XlateEntry, NARROW_STORES, PAGE_SHIFT, XLATE_SIZE};
use crate::ir::Insn;

/// The fields of `Tables` a load needs and those a store needs besides,
/// each read once, before the first access that uses it (they do not change
/// while the block runs; reading them there, on the block's straight path,
/// makes the value available to every later access).
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
    linked: Value,
    flags: Value,
}

fn field(f: &mut FunctionBuilder<'_>, tables: Value, ty: Type, off: usize) -> Value {
    f.ins().load(ty, Lower::flags(), tables, off as i32)
}

impl Lower<'_> {
    /// The tables for an access (a store's too if `store`).
    pub(super) fn tabs(&mut self, store: bool) -> Tabs {
        let t = self.tables;
        let f = &mut self.f;
        let mut tabs = match self.tabs {
            Some(tabs) => tabs,
            None => Tabs {
                xlate: field(f, t, I64, offset_of!(Tables, xlate)),
                ram: field(f, t, I64, offset_of!(Tables, ram)),
                ram_words: field(f, t, I64, offset_of!(Tables, ram_words)),
                xctx: field(f, t, I32, offset_of!(Tables, xctx)),
                stores: None,
            },
        };
        if store && tabs.stores.is_none() {
            tabs.stores = Some(StoreTabs {
                pages: field(f, t, I64, offset_of!(Tables, pages)),
                pages_len: field(f, t, I64, offset_of!(Tables, pages_len)),
                linked: field(f, t, I64, offset_of!(Tables, linked)),
                flags: field(f, t, I32, offset_of!(Tables, flags)),
            });
        }
        self.tabs = Some(tabs);
        tabs
    }
}

impl Lower<'_> {
    /// Goes on in a new block if `cond` is zero, to `slow` otherwise.
    pub(super) fn unless(&mut self, cond: Value, slow: Label) {
        let on = self.f.create_block();
        self.f.ins().brif(cond, slow, &[], on, &[]);
        self.f.switch_to_block(on);
    }

    /// The physical address of an aligned `width`-byte access at `ea` that
    /// hits the translation cache (writable, for a store) and lies in RAM;
    /// to `slow` otherwise. As the simulator's `xlate_hit` and RAM bound.
    fn translate(&mut self, t: Tabs, ea: Value, width: u8, store: bool, slow: Label) -> Value {
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
        let low = self.f.ins().band_imm_s(ea, 0xFFF);
        let pa = self.f.ins().bor(pbase, low);
        let word = self.f.ins().ushr_imm_s(pa, 2);
        let out = self
            .f
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, word, t.ram_words);
        self.unless(out, slow);
        pa
    }

    /// The host address of the RAM word holding `pa`.
    fn word_addr(&mut self, t: Tabs, pa: Value) -> Value {
        let aligned = self.f.ins().band_imm_s(pa, !3);
        self.f.ins().iadd(t.ram, aligned)
    }

    /// How far right the `width`-byte lane at `pa` sits in its word (the
    /// words hold the guest's bytes big-endian): `(4 - width - pa % 4) * 8`.
    fn lane_shift(&mut self, pa: Value, width: u8) -> Value {
        let p = self.f.ins().ireduce(I32, pa);
        let lane = self.f.ins().band_imm_s(p, 3);
        let top = self.f.ins().iconst(I32, 4 - i64::from(width));
        let bytes = self.f.ins().isub(top, lane);
        self.f.ins().ishl_imm_s(bytes, 3)
    }

    /// Instruction `k`, a load: rt = the value at rs + off.
    pub(super) fn load(&mut self, k: usize, (t, s, off): (u8, u8, u64), width: u8, signed: bool) {
        let base = self.get(s);
        let ea = self.f.ins().iadd_imm_s(base, off as i64);
        let x = self.f.declare_var(I64);
        let slow = self.f.create_block();
        let join = self.f.create_block();
        let tb = self.tabs(false);
        let pa = self.translate(tb, ea, width, false, slow);
        let v = self.load_ram(tb, pa, width, signed);
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

    /// The `width`-byte value at RAM address `pa` (translated, in RAM,
    /// aligned), extended. Its word is read whole and atomically, as the
    /// simulator's `Ram::read` reads it.
    fn load_ram(&mut self, tb: Tabs, pa: Value, width: u8, signed: bool) -> Value {
        let addr = self.word_addr(tb, pa);
        let w = self.f.ins().atomic_load(I32, Self::flags(), addr);
        let lane = if width >= 4 {
            w
        } else {
            let sh = self.lane_shift(pa, width);
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
    /// off. The callout's answer (1 done, 2 done and stop; the inline path
    /// answers 1) when the block must look at it.
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
        let tb = self.tabs(true);
        if self.store_inline(tb, ea, value, width, slow) {
            let done = self.f.ins().iconst(I32, 1);
            self.f.def_var(r, done);
            self.f.ins().jump(join, &[]);
        }
        self.f.switch_to_block(slow);
        let one = self.f.ins().iconst(I32, 1);
        self.f.def_var(self.store_called, one);
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
        }
        self.f.ins().jump(join, &[]);
        self.f.switch_to_block(join);
        (i.check && res.is_some()).then(|| self.f.use_var(r))
    }

    /// The inline store, or a branch to `slow` for what only the callout
    /// does: as the simulator's `write_ram`, but a page with code or a held
    /// link sends the store to the callout (which bumps the page's
    /// generation or breaks the links) instead of being handled here.
    /// False: no inline path (the code jumps to `slow`).
    fn store_inline(&mut self, tb: Tabs, ea: Value, value: Value, width: u8, slow: Label) -> bool {
        let Some(st) = tb.stores else {
            // Not reached: `tabs(true)` read them.
            self.f.ins().jump(slow, &[]);
            return false;
        };
        if width < 4 {
            let on = self.f.ins().band_imm_s(st.flags, i64::from(NARROW_STORES));
            let no = self.f.ins().icmp_imm_s(IntCC::Equal, on, 0);
            self.unless(no, slow);
        }
        let pa = self.translate(tb, ea, width, true, slow);
        let page = self.f.ins().ushr_imm_s(pa, i64::from(PAGE_SHIFT));
        let out = self
            .f
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, page, st.pages_len);
        self.unless(out, slow);
        let off = self.f.ins().imul_imm_s(page, size_of::<CodePage>() as i64);
        let p = self.f.ins().iadd(st.pages, off);
        let p = self
            .f
            .ins()
            .iadd_imm_s(p, offset_of!(CodePage, has_code) as i64);
        let code = self.f.ins().atomic_load(I8, Self::flags(), p);
        self.unless(code, slow);
        let held = self.f.ins().atomic_load(I64, Self::flags(), st.linked);
        self.unless(held, slow);
        let addr = self.word_addr(tb, pa);
        let v = self.f.ins().ireduce(I32, value);
        let word = if width >= 4 {
            v
        } else {
            // Read, merge, write: NARROW_STORES says no other thread
            // stores to RAM, as `Ram::write` does when not concurrent.
            let old = self.f.ins().atomic_load(I32, Self::flags(), addr);
            let sh = self.lane_shift(pa, width);
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
