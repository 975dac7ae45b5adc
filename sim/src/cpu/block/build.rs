//! Building tier 2's blocks: which instructions a block takes, their
//! micro-ops, and what is known about its cost before it runs
//! (docs/tiers.md).

use crate::isa::{Class, Format, Insn, Op};
use crate::mem::{Bus, PAGE_SHIFT};
use crate::timing::TIMING;

/// Longest block, in instructions (the per-instruction masks are `u32`).
pub(crate) const MAX_LEN: usize = 32;

/// Bit of `Uop::s`: the executor must look at what follows the instruction
/// (a delay slot, or a memory access that may end the block).
pub(super) const LOOK_AFTER: u8 = 0x80;

/// One translated block: a superblock of one page's instructions in the
/// order they run if every conditional branch in it falls through and every
/// direct jump in it is followed.
#[derive(Clone, Copy, Debug)]
pub struct Block {
    /// Physical address of the first instruction (the cache tag), or
    /// `u64::MAX` for an empty entry.
    pub(super) pa: u64,
    /// The virtual page it was built for: the jumps it follows are only in
    /// its page under that mapping.
    pub(super) vpage: u32,
    /// The page's code generation when the block was built.
    pub(super) generation: u32,
    /// Instructions; 0 when the first is one the interpreter must run.
    pub(super) len: u8,
    /// Bit k: instruction k is a delay slot; the block leaves after it if
    /// its branch was taken, unless bit k of `follow` is set.
    pub(super) slots: u32,
    /// Bit k: instruction k is the slot of a direct jump the block follows
    /// (instruction k+1 is the jump's target).
    pub(super) follow: u32,
    /// Bit k: instruction k reads what instruction k-1 loaded (a stall).
    pub(super) stalls: u32,
    /// Bit k: instruction k is a load (it leaves `load_dest` set).
    pub(super) loads: u32,
    /// Bit k: instruction k accesses memory (a device or a code write may
    /// end the block after it).
    pub(super) mem: u32,
    /// The registers the first instruction reads (the carried interlock).
    pub(super) first_reads: u32,
    /// The most cycles the block can take, with every dynamic stall at its
    /// worst and every branch taken.
    pub(super) max_cost: u64,
    /// Instruction k's word index in its page.
    pub(super) at: [u16; MAX_LEN],
    /// The static cycles (issue cycles and in-block load-use stalls) from
    /// the block's start to the start of instruction k, its stall included.
    pub(super) start: [u16; MAX_LEN],
    pub(super) uops: [Uop; MAX_LEN],
    /// Times it ran uncompiled in tier 3 (until it is hot).
    pub(super) runs: u32,
    /// Its compiled code (tier 3), dropped with the block.
    pub(super) code: Option<disco_jit::Code>,
}

impl Block {
    /// Static cycles from the block's start to the start of instruction
    /// `k` (its own load-use stall included).
    #[inline(always)]
    pub(super) fn cost_to(&self, k: usize) -> u64 {
        u64::from(self.start[k % MAX_LEN])
    }

    /// Static cycles of the block's first `done` (at least one)
    /// instructions.
    #[inline(always)]
    pub(super) fn cost_to_end(&self, done: usize) -> u64 {
        self.cost_to(done.wrapping_sub(1)) + TIMING.base
    }

    /// The address of instruction `k`, whose page starts at `vbase`.
    #[inline(always)]
    pub(super) fn pc(&self, vbase: u64, k: usize) -> u64 {
        vbase | u64::from(self.at[k % MAX_LEN]) << 2
    }

    /// A translator's block of `insns` from `pc` (see `build_straight`).
    pub fn straight(insns: &[Insn], pc: u64) -> Block {
        build_straight(insns, pc)
    }

    /// A superblock of a translator's blocks (see `build_chain`).
    pub fn chain(parts: &[(&[Insn], u64, bool)]) -> Block {
        build_chain(parts)
    }

    /// Whether every instruction runs as a micro-op (none through the
    /// general path unless its access fails).
    pub fn all_micro_ops(&self) -> bool {
        self.uops
            .iter()
            .take(self.len())
            .all(|u| u.kind != Kind::Generic)
    }

    /// Instructions.
    #[inline(always)]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether instruction `k` is a load (its destination is the interlock
    /// a block ending after it carries).
    #[inline(always)]
    pub fn is_load(&self, k: usize) -> bool {
        k < 32 && (self.loads >> k) & 1 != 0
    }

    /// Whether instruction `k` accesses memory.
    #[inline(always)]
    pub fn is_access(&self, k: usize) -> bool {
        k < 32 && (self.mem >> k) & 1 != 0
    }

    /// Whether instruction `k` runs as a micro-op that touches nothing but
    /// the general registers and the flow (an ALU operation, a branch or a
    /// jump).
    #[inline(always)]
    pub fn is_register_only(&self, k: usize) -> bool {
        self.uops[k % MAX_LEN].kind.is_register_only()
    }

    /// Whether instruction `k` is a delay slot.
    #[inline(always)]
    pub fn is_slot(&self, k: usize) -> bool {
        k < 32 && (self.slots >> k) & 1 != 0
    }

    /// The stall of the first instruction on a load into `load_dest` (0:
    /// none) that ended the block before.
    #[inline(always)]
    pub fn carried_stall(&self, load_dest: u8) -> u64 {
        if load_dest != 0 && (self.first_reads >> (load_dest & 31)) & 1 != 0 {
            TIMING.load_use
        } else {
            0
        }
    }

    pub(super) const EMPTY: Block = Block {
        pa: u64::MAX,
        vpage: 0,
        generation: 0,
        len: 0,
        slots: 0,
        follow: 0,
        stalls: 0,
        loads: 0,
        mem: 0,
        first_reads: 0,
        max_cost: 0,
        at: [0; MAX_LEN],
        start: [0; MAX_LEN],
        uops: [Uop::GENERIC; MAX_LEN],
        runs: 0,
        code: None,
    };
}

/// A micro-op: an instruction with its fields pre-extracted (register
/// numbers in 0..32, immediates extended), for the instructions that run
/// most; everything else is `Generic` and runs through `execute` from the
/// decoded page. An ALU operation whose only effect is a write to r0 is a
/// `Nop`. Each kind calls the same semantics as the interpreter (`exec`'s
/// family handlers, the bus's RAM accessors). Eight bytes, copied with one
/// load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub(super) struct Uop {
    pub(super) kind: Kind,
    pub(super) d: u8,
    /// rs, and [`LOOK_AFTER`].
    pub(super) s: u8,
    pub(super) t: u8,
    /// The immediate (sign- or zero-extended as the kind needs), the shift
    /// amount, the jump index, or the branch offset in bytes.
    pub(super) imm: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Kind {
    Nop,
    Generic,
    Sll,
    Srl,
    Sra,
    Addu,
    Subu,
    And,
    Or,
    Xor,
    Nor,
    Slt,
    Sltu,
    Addiu,
    Slti,
    Sltiu,
    Andi,
    Ori,
    Xori,
    Lui,
    /// Aligned loads and stores that hit RAM through the translation cache;
    /// anything else (a miss, a fault, a device) runs as `Generic`.
    Lw,
    Lh,
    Lhu,
    Lb,
    Lbu,
    Sw,
    Sh,
    Sb,
    Beq,
    Bne,
    Blez,
    Bgtz,
    Bltz,
    Bgez,
    J,
    Jal,
    Jr,
    Jalr,
    Mult,
    Multu,
    Mfhi,
    Mflo,
}

impl Kind {
    /// Whether a micro-op of this kind touches nothing but the general
    /// registers and the flow (an ALU operation, a branch or a jump): not
    /// memory, HI/LO or the general path.
    #[inline(always)]
    pub(super) fn is_register_only(self) -> bool {
        !matches!(
            self,
            Kind::Generic
                | Kind::Lw
                | Kind::Lh
                | Kind::Lhu
                | Kind::Lb
                | Kind::Lbu
                | Kind::Sw
                | Kind::Sh
                | Kind::Sb
                | Kind::Mult
                | Kind::Multu
                | Kind::Mfhi
                | Kind::Mflo
        )
    }
}

impl Uop {
    pub(super) const GENERIC: Uop = Uop {
        kind: Kind::Generic,
        d: 0,
        s: 0,
        t: 0,
        imm: 0,
    };

    /// The micro-op of `i`.
    pub(super) fn of(i: &Insn) -> Uop {
        // Register numbers are below 32: exact.
        let (d, s, t) = (
            i.rd.number() as u8,
            i.rs.number() as u8,
            i.rt.number() as u8,
        );
        let info = i.info();
        let alu_dest = match info.format {
            Format::RdRsRt | Format::Shift => Some(d),
            Format::RtRsSimm | Format::RtRsUimm | Format::RtUimm => Some(t),
            _ => None,
        };
        let r0_alu = matches!(info.class, Class::Alu | Class::Shift)
            && alu_dest == Some(0)
            && !matches!(i.op, Op::Add | Op::Sub | Op::Addi)
            && !info.is64;
        let (kind, imm) = if r0_alu {
            // No effect but time (trapping and 64-bit forms can still raise
            // an exception, so they stay).
            (Kind::Nop, 0)
        } else {
            match i.op {
                Op::Sll => (Kind::Sll, i.sa()),
                Op::Srl => (Kind::Srl, i.sa()),
                Op::Sra => (Kind::Sra, i.sa()),
                Op::Addu => (Kind::Addu, 0),
                Op::Subu => (Kind::Subu, 0),
                Op::And => (Kind::And, 0),
                Op::Or => (Kind::Or, 0),
                Op::Xor => (Kind::Xor, 0),
                Op::Nor => (Kind::Nor, 0),
                Op::Slt => (Kind::Slt, 0),
                Op::Sltu => (Kind::Sltu, 0),
                // `imm` holds these sign-extended (see `Insn::from_fields`).
                Op::Addiu => (Kind::Addiu, i.imm),
                Op::Slti => (Kind::Slti, i.imm),
                Op::Sltiu => (Kind::Sltiu, i.imm),
                Op::Andi => (Kind::Andi, i.imm),
                Op::Ori => (Kind::Ori, i.imm),
                Op::Xori => (Kind::Xori, i.imm),
                Op::Lui => (Kind::Lui, i.imm),
                // A load into r0 still faults and still reads its device:
                // it stays with the interpreter.
                Op::Lw if t != 0 => (Kind::Lw, i.imm),
                Op::Lh if t != 0 => (Kind::Lh, i.imm),
                Op::Lhu if t != 0 => (Kind::Lhu, i.imm),
                Op::Lb if t != 0 => (Kind::Lb, i.imm),
                Op::Lbu if t != 0 => (Kind::Lbu, i.imm),
                Op::Sw => (Kind::Sw, i.imm),
                Op::Sh => (Kind::Sh, i.imm),
                Op::Sb => (Kind::Sb, i.imm),
                // The offset's low word: the target arithmetic sign-extends it.
                Op::Beq => (Kind::Beq, i.branch_offset() as u32),
                Op::Bne => (Kind::Bne, i.branch_offset() as u32),
                Op::Blez => (Kind::Blez, i.branch_offset() as u32),
                Op::Bgtz => (Kind::Bgtz, i.branch_offset() as u32),
                Op::Bltz => (Kind::Bltz, i.branch_offset() as u32),
                Op::Bgez => (Kind::Bgez, i.branch_offset() as u32),
                Op::Mult => (Kind::Mult, 0),
                Op::Multu => (Kind::Multu, 0),
                // MFHI/MFLO into r0 still wait for the result: generic.
                Op::Mfhi if d != 0 => (Kind::Mfhi, 0),
                Op::Mflo if d != 0 => (Kind::Mflo, 0),
                Op::J => (Kind::J, i.imm),
                Op::Jal => (Kind::Jal, i.imm),
                // JALR r0 links nowhere.
                Op::Jr | Op::Jalr if d == 0 || i.op == Op::Jr => (Kind::Jr, 0),
                Op::Jalr => (Kind::Jalr, 0),
                _ => (Kind::Generic, 0),
            }
        };
        Uop { kind, d, s, t, imm }
    }

    /// The immediate sign-extended from its low word.
    #[inline(always)]
    pub(super) fn simm(self) -> u64 {
        i64::from(self.imm as i32) as u64
    }
}

/// Whether a block may contain `insn`: everything but CP0 instructions.
fn blockable(insn: &Insn) -> bool {
    insn.info().class != Class::Cop0
}

/// A transfer with a delay slot.
fn is_transfer(insn: &Insn) -> bool {
    matches!(insn.info().class, Class::Branch | Class::Jump)
}

/// Where a block goes on after a transfer at word `w` of virtual page
/// `vpage` and its slot: the fall-through of a conditional branch, the
/// target of a direct jump within the page (`true`: followed), or nowhere.
fn continuation(insn: &Insn, w: usize, vpage: u32) -> Option<(usize, bool)> {
    match insn.op {
        Op::J | Op::Jal => {
            // J's target keeps the slot's top four address bits, which in
            // one page are the jump's own.
            let target = (vpage << 12 & 0xF000_0000) | (insn.imm << 2);
            (target >> 12 == vpage).then_some((((target & 0xFFF) >> 2) as usize, true))
        }
        _ if insn.info().class == Class::Branch => Some((w + 2, false)),
        _ => None,
    }
}

/// A block being built: what is known of its cost so far.
struct Builder {
    b: Block,
    /// The most cycles so far (`Block::max_cost`).
    cost: u64,
    /// The register the previous instruction loaded (0: none).
    prev_load: u32,
    /// The static cycles so far.
    at_cycle: u64,
}

impl Builder {
    fn new(b: Block) -> Builder {
        Builder {
            b,
            cost: 0,
            prev_load: 0,
            at_cycle: 0,
        }
    }

    /// Appends `insn`, word `w` of its page.
    fn add(&mut self, w: usize, insn: &Insn) {
        let b = &mut self.b;
        let k = usize::from(b.len);
        let mut u = Uop::of(insn);
        let reads = insn.read_mask();
        if k == 0 {
            b.first_reads = reads;
        } else if self.prev_load != 0 && (reads >> self.prev_load) & 1 != 0 {
            b.stalls |= 1 << k;
            self.cost += TIMING.load_use;
            self.at_cycle += TIMING.load_use;
        }
        if let Some(start) = b.start.get_mut(k) {
            // At most 32 instructions with a stall each: small.
            *start = self.at_cycle as u16;
        }
        self.at_cycle += TIMING.base;
        let class = insn.info().class;
        self.prev_load = 0;
        if class == Class::Load {
            b.loads |= 1 << k;
            self.prev_load = insn.rt.number();
        }
        if matches!(class, Class::Load | Class::Store) {
            b.mem |= 1 << k;
            u.s |= LOOK_AFTER;
        }
        if matches!(insn.op, Op::Mfhi | Op::Mflo) {
            // Waits for a multiply or divide, at most the longest one.
            self.cost += TIMING.ddiv + TIMING.base;
        }
        if is_transfer(insn) {
            // Taken (or an annulled slot): at most one of the two.
            self.cost += TIMING.taken_branch.max(TIMING.annulled_slot);
        }
        self.cost += TIMING.base;
        if let (Some(slot), Some(at)) = (b.uops.get_mut(k), b.at.get_mut(k)) {
            *slot = u;
            // A word index in a page: below 1024.
            *at = w as u16;
        }
        b.len += 1;
    }

    /// Marks the last instruction a delay slot, which the executor looks at.
    fn slot(&mut self) {
        let k = usize::from(self.b.len) - 1;
        self.b.slots |= 1 << k;
        if let Some(u) = self.b.uops.get_mut(k) {
            u.s |= LOOK_AFTER;
        }
    }

    fn finish(mut self) -> Block {
        // The carried interlock of the first instruction is the one cost not
        // counted yet.
        self.b.max_cost = self.cost + TIMING.load_use;
        self.b
    }
}

/// Builds the block at physical `pa` (virtual page `vpage`), whose page's
/// decoded instructions start at `page_base` in the bus's code arena.
pub(super) fn build(bus: &Bus, page_base: usize, pa: u64, vpage: u32, generation: u32) -> Block {
    let words = 1usize << (PAGE_SHIFT - 2);
    let fetch = |w: usize| {
        if w < words {
            bus.code(page_base + w)
        } else {
            None
        }
    };
    let mut bd = Builder::new(Block {
        pa,
        vpage,
        generation,
        ..Block::EMPTY
    });
    let mut w = ((pa & 0xFFF) >> 2) as usize;
    while usize::from(bd.b.len) < MAX_LEN {
        let Some(insn) = fetch(w) else { break };
        if !blockable(&insn) {
            break;
        }
        if !is_transfer(&insn) {
            bd.add(w, &insn);
            w += 1;
            continue;
        }
        // The branch and its slot, or neither: a slot out of the page or
        // out of the block's reach is the interpreter's.
        let Some(slot) = fetch(w + 1) else { break };
        if usize::from(bd.b.len) + 1 >= MAX_LEN || !blockable(&slot) || is_transfer(&slot) {
            break;
        }
        bd.add(w, &insn);
        bd.add(w + 1, &slot);
        bd.slot();
        let k = usize::from(bd.b.len) - 1;
        match continuation(&insn, w, vpage) {
            Some((next, followed)) => {
                if followed {
                    bd.b.follow |= 1 << k;
                }
                w = next;
            }
            None => break,
        }
    }
    if bd.b.len > 0 {
        // A block that ends on a followed jump's slot leaves for its target.
        bd.b.follow &= !(1 << (bd.b.len - 1));
    }
    bd.finish()
}

/// A block of `insns` (at most [`MAX_LEN`]), the straight run of one
/// page's instructions from `pc` as a translator cut them: every
/// instruction in order, whatever it is (a CP0 instruction runs the
/// general path), a transfer's next instruction its delay slot, no jump
/// followed. A transfer without its slot in `insns` runs the general path,
/// which leaves the block in its delay slot.
pub(super) fn build_straight(insns: &[Insn], pc: u64) -> Block {
    build_chain(&[(insns, pc, false)])
}

/// A superblock of a translator's blocks of one page (`parts`: each one's
/// instructions, its PC, and whether the jump ending it is followed into
/// the next part), each cut as [`build_straight`] cuts one, in the order
/// they are given: at most [`MAX_LEN`] instructions in all. A part other
/// than the last ends with a transfer and its slot, or with neither.
pub(super) fn build_chain(parts: &[(&[Insn], u64, bool)]) -> Block {
    let pc = parts.first().map_or(0, |p| p.1);
    let mut bd = Builder::new(Block {
        pa: pc,
        ..Block::EMPTY
    });
    let total: usize = parts.iter().map(|p| p.0.len()).sum::<usize>().min(MAX_LEN);
    let mut slot_next = false;
    for &(insns, pc, followed) in parts {
        let first = ((pc & 0xFFF) >> 2) as usize;
        for (i, insn) in insns.iter().enumerate() {
            if usize::from(bd.b.len) >= MAX_LEN {
                break;
            }
            bd.add(first + i, insn);
            if slot_next {
                bd.slot();
                if followed && i + 1 == insns.len() && usize::from(bd.b.len) < total {
                    bd.b.follow |= 1 << (bd.b.len - 1);
                }
            }
            slot_next = is_transfer(insn);
            if slot_next && usize::from(bd.b.len) == total {
                let k = usize::from(bd.b.len) - 1;
                if let Some(u) = bd.b.uops.get_mut(k) {
                    *u = Uop::GENERIC;
                }
            }
        }
    }
    bd.finish()
}
