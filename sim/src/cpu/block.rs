//! Tier 2: straight-line blocks with precomputed cycle costs
//! (`../shared/docs/design.md` §8, docs/tiers.md).
//!
//! A block is a run of decoded instructions in one physical page, ending
//! with a branch or jump and its delay slot, before a CP0 instruction (those
//! stay with the interpreter: they read the instruction count, change the
//! translation context or the interrupt state), at the page's end, or at
//! [`MAX_LEN`]. Its instructions are executed by the same [`execute`] as
//! tier 1, so their semantics are written once; what a block saves is the
//! per-instruction bookkeeping: the fetch and its page check, the event
//! check, the interlock lookup and the retire tail.
//!
//! Cycle accounting is tier 1's exactly. The load-use stalls inside a block
//! are known when it is built; the stall of its first instruction comes from
//! the load that ended the previous block (carried in `Core::load_dest`);
//! multiply/divide readiness and device penalties stay dynamic, charged by
//! the shared context hooks at the same moment as in tier 1. Events are
//! checked once per block: a block runs only if the most it can cost cannot
//! reach the next event, otherwise the interpreter runs up to that event, so
//! interrupts and quantum ends land on the same cycle in both tiers. A
//! device access or a store that changes decoded code ends the block after
//! that instruction, as the interpreter would look at both before the next.

use super::alu;
use super::cp0::sext32;
use super::exec::{execute, Flow, Regs};
use super::native::Native;
use super::{Access, Core};
use crate::isa::{Class, Insn, Op};
use crate::mem::{Bus, PAGE_SHIFT};
use crate::obs::Event;
use crate::timing::TIMING;

/// Longest block, in instructions (the per-instruction masks are `u32`).
pub(crate) const MAX_LEN: usize = 32;

/// Entries of the direct-mapped block cache.
const CACHE_SIZE: usize = 4096;

/// One translated block: where it starts and what is known about it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Block {
    /// Physical address of the first instruction (the cache tag), or
    /// `u64::MAX` for an empty entry.
    pa: u64,
    /// The page's code generation when the block was built.
    generation: u32,
    /// Instructions, including the delay slot of a final branch; 0 when
    /// the first instruction is one the interpreter must run.
    len: u8,
    /// The last two instructions are a branch or jump and its delay slot.
    branch: bool,
    /// Bit k: instruction k reads what instruction k-1 loaded (a stall).
    stalls: u32,
    /// Bit k: instruction k is a load (it leaves `load_dest` set).
    loads: u32,
    /// Bit k: instruction k accesses memory (a device or a code write may
    /// end the block after it).
    mem: u32,
    /// The registers the first instruction reads (the carried interlock).
    first_reads: u32,
    /// The most cycles the block can take before its last instruction
    /// starts, with every dynamic stall at its worst.
    max_cost: u64,
}

impl Block {
    const EMPTY: Block = Block {
        pa: u64::MAX,
        generation: 0,
        len: 0,
        branch: false,
        stalls: 0,
        loads: 0,
        mem: 0,
        first_reads: 0,
        max_cost: 0,
    };
}

/// A micro-op: an instruction with its fields pre-extracted (register
/// numbers in 0..32, immediates extended), for the instructions that run
/// most; everything else is `Generic` and runs through [`execute`] from the
/// decoded page. An ALU operation whose only effect is a write to r0 is a
/// `Nop`. Each kind calls the same semantics as the interpreter ([`alu`],
/// the bus's RAM accessors). Eight bytes, copied with one load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
struct Uop {
    kind: Kind,
    /// rd; bit 7 set when the instruction waits for the previous one's load.
    d: u8,
    s: u8,
    t: u8,
    /// The immediate (sign- or zero-extended as the kind needs), the shift
    /// amount, the jump index, or the branch offset in bytes.
    imm: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
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

impl Uop {
    const GENERIC: Uop = Uop {
        kind: Kind::Generic,
        d: 0,
        s: 0,
        t: 0,
        imm: 0,
    };

    /// The micro-op of `i`.
    fn of(i: &Insn) -> Uop {
        use crate::isa::Format;
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
                Op::Sll => (Kind::Sll, u32::from(i.sa)),
                Op::Srl => (Kind::Srl, u32::from(i.sa)),
                Op::Sra => (Kind::Sra, u32::from(i.sa)),
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
    fn simm(self) -> u64 {
        i64::from(self.imm as i32) as u64
    }
}

/// The blocks of every CPU, direct-mapped by physical address.
#[derive(Debug, Default)]
pub(crate) struct BlockCache {
    entries: Vec<Block>,
    /// Entry i's micro-ops are `uops[i * MAX_LEN..][..len]`.
    uops: Vec<Uop>,
    /// Blocks built (statistics and tests).
    pub(crate) built: u64,
}

impl BlockCache {
    #[inline(always)]
    fn slot(pa: u64) -> usize {
        // Masked to the table size: exact.
        (pa >> 2) as usize & (CACHE_SIZE - 1)
    }

    /// The block at `pa` if it is cached and its page is unchanged.
    #[inline(always)]
    fn get(&self, pa: u64, generation: u32) -> Option<Block> {
        let b = self.entries.get(Self::slot(pa))?;
        (b.pa == pa && b.generation == generation).then_some(*b)
    }

    fn insert(&mut self, b: Block, uops: &[Uop]) {
        if self.entries.is_empty() {
            self.entries = vec![Block::EMPTY; CACHE_SIZE];
            self.uops = vec![Uop::GENERIC; CACHE_SIZE * MAX_LEN];
        }
        let slot = Self::slot(b.pa);
        if let Some(e) = self.entries.get_mut(slot) {
            *e = b;
        }
        if let Some(dst) = self
            .uops
            .get_mut(slot * MAX_LEN..slot * MAX_LEN + uops.len())
        {
            dst.copy_from_slice(uops);
        }
        self.built += 1;
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

/// Builds the block at physical `pa`, whose page's decoded instructions
/// start at `page_base` in the bus's code arena.
fn build(
    bus: &Bus,
    page_base: usize,
    pa: u64,
    generation: u32,
    uops: &mut [Uop; MAX_LEN],
) -> Block {
    let first = ((pa & 0xFFF) >> 2) as usize;
    let in_page = (1usize << (PAGE_SHIFT - 2)) - first;
    let fetch = |k: usize| {
        if k < in_page {
            bus.code(page_base + first + k)
        } else {
            None
        }
    };
    let mut b = Block {
        pa,
        generation,
        ..Block::EMPTY
    };
    let mut cost = 0u64;
    let mut prev_load: u32 = 0;
    let mut add = |b: &mut Block, k: usize, insn: &Insn| {
        let mut u = Uop::of(insn);
        let reads = insn.read_mask();
        if k == 0 {
            b.first_reads = reads;
        } else if prev_load != 0 && (reads >> prev_load) & 1 != 0 {
            b.stalls |= 1 << k;
            // Bit 7 of `d` marks the stall for the executor.
            u.d |= 0x80;
            cost += TIMING.load_use;
        }
        if let Some(slot) = uops.get_mut(k) {
            *slot = u;
        }
        let class = insn.info().class;
        prev_load = 0;
        if class == Class::Load {
            b.loads |= 1 << k;
            prev_load = insn.rt.number();
        }
        if matches!(class, Class::Load | Class::Store) {
            b.mem |= 1 << k;
        }
        if matches!(insn.op, Op::Mfhi | Op::Mflo) {
            // Waits for a multiply or divide, at most the longest one.
            cost += TIMING.ddiv + TIMING.base;
        }
        cost += TIMING.base;
        b.len += 1;
    };
    let mut k = 0;
    while k < MAX_LEN {
        let Some(insn) = fetch(k) else { break };
        if !blockable(&insn) {
            break;
        }
        if is_transfer(&insn) {
            // The branch and its slot, or neither: a slot out of the page
            // or out of the block's reach is the interpreter's.
            let Some(slot) = fetch(k + 1) else { break };
            if k + 1 >= MAX_LEN || !blockable(&slot) || is_transfer(&slot) {
                break;
            }
            add(&mut b, k, &insn);
            add(&mut b, k + 1, &slot);
            b.branch = true;
            break;
        }
        add(&mut b, k, &insn);
        k += 1;
    }
    // The carried interlock of the first instruction and a taken branch
    // (or an annulled slot) are the other costs a block can have before
    // its last instruction.
    b.max_cost = cost + TIMING.load_use + TIMING.taken_branch.max(TIMING.annulled_slot);
    b
}

impl Core {
    /// Tier 2's loop: blocks until the next event is due, or until
    /// something needs the interpreter (a new page, a delay slot to enter,
    /// a CP0 instruction, an event a block could cross).
    #[inline(never)]
    pub(super) fn run_blocks<const TRACE: bool>(&mut self, regs: &mut Regs, bus: &mut Bus) {
        loop {
            let va = regs.pc as u32;
            if regs.delay_slot || va & 0xFFFF_F003 != self.fetch_page {
                self.step::<TRACE>(regs, bus);
                return;
            }
            let pa = self.fetch_ppage | u64::from(va & 0xFFF);
            let generation = bus.code_gen((pa >> PAGE_SHIFT) as usize);
            let b = match bus.blocks.get(pa, generation) {
                Some(b) => b,
                None => {
                    let mut uops = [Uop::GENERIC; MAX_LEN];
                    let b = build(bus, self.fetch_base, pa, generation, &mut uops);
                    bus.blocks
                        .insert(b, uops.get(..usize::from(b.len)).unwrap_or(&[]));
                    b
                }
            };
            if b.len == 0 {
                self.step::<TRACE>(regs, bus);
                return;
            }
            if self.cycles + b.max_cost >= self.next_event {
                // The block might cross the event: the interpreter runs up
                // to it, so the event lands where it always does.
                self.run_fast::<TRACE>(regs, bus);
                return;
            }
            let base = self.fetch_base + ((va & 0xFFF) >> 2) as usize;
            if !self.exec_block::<TRACE>(regs, bus, &b, base) || self.cycles >= self.next_event {
                return;
            }
        }
    }

    /// Runs one block from `regs.pc` (not in a delay slot). Returns false
    /// if it stopped early (an exception, a device access, a code write)
    /// or left through an instruction the interpreter must finish.
    ///
    /// The cycle count lives in a local while micro-ops that cannot observe
    /// it run, and goes back to `self.cycles` before anything that can (the
    /// generic path, multiply/divide timing) and at every exit.
    #[inline(always)]
    fn exec_block<const TRACE: bool>(
        &mut self,
        regs: &mut Regs,
        bus: &mut Bus,
        b: &Block,
        base: usize,
    ) -> bool {
        if TRACE {
            return self.exec_block_traced(regs, bus, b, base);
        }
        let n = usize::from(b.len);
        let mut pc = regs.pc;
        let mut target: Option<u64> = None;
        if self.load_dest != 0 {
            if (b.first_reads >> self.load_dest) & 1 != 0 {
                self.cycles += TIMING.load_use;
            }
            self.load_dest = 0;
        }
        let mut cyc = self.cycles;
        let ubase = BlockCache::slot(b.pa) * MAX_LEN;
        for k in 0..n {
            let op = bus
                .blocks
                .uops
                .get(ubase + k)
                .copied()
                .unwrap_or(Uop::GENERIC);
            cyc += TIMING.load_use * u64::from(op.d >> 7);
            let g = &mut regs.gpr;
            let (d, s, t) = (
                usize::from(op.d & 31),
                usize::from(op.s & 31),
                usize::from(op.t & 31),
            );
            let (rs, rt) = (g[s], g[t]);
            // Whether this instruction may have touched a device or code.
            let mut check = false;
            match op.kind {
                Kind::Nop => {}
                Kind::Sll => g[d] = alu::sll(rt, op.imm),
                Kind::Srl => g[d] = alu::srl(rt, op.imm),
                Kind::Sra => g[d] = alu::sra(rt, op.imm),
                Kind::Addu => g[d] = alu::addu(rs, rt),
                Kind::Subu => g[d] = alu::subu(rs, rt),
                Kind::And => g[d] = rs & rt,
                Kind::Or => g[d] = rs | rt,
                Kind::Xor => g[d] = rs ^ rt,
                Kind::Nor => g[d] = alu::nor(rs, rt),
                Kind::Slt => g[d] = alu::slt(rs, rt),
                Kind::Sltu => g[d] = alu::sltu(rs, rt),
                Kind::Addiu => g[t] = alu::addu(rs, op.simm()),
                Kind::Slti => g[t] = alu::slt(rs, op.simm()),
                Kind::Sltiu => g[t] = alu::sltu(rs, op.simm()),
                Kind::Andi => g[t] = rs & u64::from(op.imm),
                Kind::Ori => g[t] = rs | u64::from(op.imm),
                Kind::Xori => g[t] = rs ^ u64::from(op.imm),
                Kind::Lui => g[t] = alu::lui(op.imm),
                Kind::Mult | Kind::Multu => {
                    (regs.hi, regs.lo) = if op.kind == Kind::Mult {
                        alu::mult(rs, rt)
                    } else {
                        alu::multu(rs, rt)
                    };
                    self.cycles = cyc;
                    self.hilo_started(super::exec::MulDiv::Mult);
                }
                Kind::Mfhi | Kind::Mflo => {
                    self.cycles = cyc;
                    self.hilo_wait();
                    cyc = self.cycles;
                    g[d] = if op.kind == Kind::Mfhi {
                        regs.hi
                    } else {
                        regs.lo
                    };
                }
                Kind::Beq | Kind::Bne | Kind::Blez | Kind::Bgtz | Kind::Bltz | Kind::Bgez => {
                    let cond = match op.kind {
                        Kind::Beq => rs == rt,
                        Kind::Bne => rs != rt,
                        Kind::Blez => alu::lez(rs),
                        Kind::Bgtz => alu::gtz(rs),
                        Kind::Bltz => alu::ltz(rs),
                        _ => alu::gez(rs),
                    };
                    if cond {
                        cyc += TIMING.taken_branch;
                        target = Some(alu::branch_target(pc, op.simm()));
                    }
                }
                Kind::J | Kind::Jal | Kind::Jr | Kind::Jalr => {
                    let to = match op.kind {
                        Kind::J | Kind::Jal => alu::jump_target(pc, op.imm),
                        _ => rs,
                    };
                    // The target is read before the link is written (JALR).
                    match op.kind {
                        Kind::Jal => g[31] = pc.wrapping_add(8),
                        Kind::Jalr => g[d] = pc.wrapping_add(8),
                        _ => {}
                    }
                    cyc += TIMING.taken_branch;
                    target = Some(to);
                }
                Kind::Lw | Kind::Lh | Kind::Lhu | Kind::Lb | Kind::Lbu => {
                    let width = match op.kind {
                        Kind::Lw => 4,
                        Kind::Lh | Kind::Lhu => 2,
                        _ => 1,
                    };
                    let ea = rs.wrapping_add(op.simm());
                    let hit = self.xlate_hit(ea, width, Access::Load);
                    match hit.and_then(|pa| bus.read_ram(pa, width)) {
                        Some(v) => {
                            g[t] = match op.kind {
                                Kind::Lw => sext32(v),
                                Kind::Lh => v as u16 as i16 as i64 as u64,
                                Kind::Lb => v as u8 as i8 as i64 as u64,
                                _ => v,
                            };
                            self.load_dest = op.t & 31;
                        }
                        None => {
                            self.cycles = cyc;
                            if let Some(stop) =
                                self.generic::<TRACE>(regs, bus, b, base, k, pc, &mut target)
                            {
                                return stop;
                            }
                            cyc = self.cycles;
                            check = true;
                        }
                    }
                }
                Kind::Sw | Kind::Sh | Kind::Sb => {
                    let width = match op.kind {
                        Kind::Sw => 4,
                        Kind::Sh => 2,
                        _ => 1,
                    };
                    let ea = rs.wrapping_add(op.simm());
                    let hit = self.xlate_hit(ea, width, Access::Store);
                    let done = hit.is_some_and(|pa| bus.write_ram(self.id, pa, width, rt));
                    if !done {
                        self.cycles = cyc;
                        if let Some(stop) =
                            self.generic::<TRACE>(regs, bus, b, base, k, pc, &mut target)
                        {
                            return stop;
                        }
                        cyc = self.cycles;
                    }
                    check = true;
                }
                Kind::Generic => {
                    self.cycles = cyc;
                    if let Some(stop) =
                        self.generic::<TRACE>(regs, bus, b, base, k, pc, &mut target)
                    {
                        return stop;
                    }
                    cyc = self.cycles;
                    // Only a memory access can reach a device or code; a
                    // branch must never end the block before its slot.
                    check = (b.mem >> k) & 1 != 0;
                }
            }
            cyc += TIMING.base;
            if check && k + 1 < n && (self.next_event == 0 || bus.take_code_written()) {
                // Before a slot there is always the branch, which is not a
                // memory access: stopping here is stopping in sequence.
                self.cycles = cyc;
                self.leave_block(regs, b, k + 1, pc.wrapping_add(4));
                return false;
            }
            pc = pc.wrapping_add(4);
        }
        self.cycles = cyc;
        self.leave_block(regs, b, n, target.unwrap_or(pc));
        true
    }

    /// [`Core::exec_block`] for the traced loop: every instruction through
    /// the interpreter's path, recorded as the interpreter records it.
    #[inline(never)]
    fn exec_block_traced(
        &mut self,
        regs: &mut Regs,
        bus: &mut Bus,
        b: &Block,
        base: usize,
    ) -> bool {
        let n = usize::from(b.len);
        let mut pc = regs.pc;
        let mut target: Option<u64> = None;
        for k in 0..n {
            if let Some(stop) = self.generic::<true>(regs, bus, b, base, k, pc, &mut target) {
                return stop;
            }
            self.cycles += TIMING.base;
            if (b.mem >> k) & 1 != 0
                && k + 1 < n
                && (self.next_event == 0 || bus.take_code_written())
            {
                self.leave_block(regs, b, k + 1, pc.wrapping_add(4));
                return false;
            }
            pc = pc.wrapping_add(4);
        }
        self.leave_block(regs, b, n, target.unwrap_or(pc));
        true
    }

    /// Retires the block's first `done` instructions and continues at
    /// `next`: a load as the last of them leaves its destination for the
    /// next block's interlock; anything else clears it.
    #[inline(always)]
    fn leave_block(&mut self, regs: &mut Regs, b: &Block, done: usize, next: u64) {
        self.instret += done as u64;
        if (b.loads >> (done - 1)) & 1 == 0 {
            self.load_dest = 0;
        }
        regs.jump_to(next);
    }

    /// The physical address of an aligned access that hits the translation
    /// cache; `None` sends the access the interpreter's way (which also
    /// raises its faults).
    #[inline(always)]
    fn xlate_hit(&self, vaddr: u64, width: u8, access: Access) -> Option<u64> {
        if vaddr & (u64::from(width) - 1) != 0 {
            return None;
        }
        let va = vaddr as u32;
        let vpn = va >> 12;
        let e = self.xlate.get(vpn as usize & (super::XLATE_SIZE - 1))?;
        (e.tag == vpn | self.xctx && (access != Access::Store || e.writable))
            .then_some(e.pbase | u64::from(va & 0xFFF))
    }

    /// Instruction `k` of block `b`, at `pc`, through the interpreter's
    /// [`execute`]. `Some(result)` when the block ends here.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn generic<const TRACE: bool>(
        &mut self,
        regs: &mut Regs,
        bus: &mut Bus,
        b: &Block,
        base: usize,
        k: usize,
        pc: u64,
        target: &mut Option<u64>,
    ) -> Option<bool> {
        let n = usize::from(b.len);
        let Some(insn) = bus.code(base + k) else {
            // Not reached: the block was built from these entries.
            (regs.pc, regs.npc, regs.delay_slot) = (pc, pc.wrapping_add(4), false);
            self.instret += k as u64;
            return Some(false);
        };
        if TRACE {
            self.emit(Event::Insn {
                pc,
                word: insn.raw,
                mode: self.cp0.mode(),
            });
            // The interlock, after the event as in tier 1.
            if k == 0 && self.load_dest != 0 {
                if (b.first_reads >> self.load_dest) & 1 != 0 {
                    self.cycles += TIMING.load_use;
                }
                self.load_dest = 0;
            } else if (b.stalls >> k) & 1 != 0 {
                self.cycles += TIMING.load_use;
            }
        }
        match execute(regs, &mut Native::<TRACE> { core: self, bus }, insn, pc) {
            Ok(Flow::Next | Flow::NotTaken) => None,
            Ok(Flow::Taken(t)) => {
                self.cycles += TIMING.taken_branch;
                *target = Some(t);
                None
            }
            Ok(Flow::Annul) => {
                self.instret += k as u64 + 1;
                self.cycles += TIMING.base + TIMING.annulled_slot;
                self.load_dest = 0;
                regs.jump_to(pc.wrapping_add(8));
                Some(true)
            }
            Ok(flow @ (Flow::Jump(_) | Flow::Wait)) => {
                // Not built into blocks (CP0 instructions); kept total.
                self.instret += k as u64;
                (regs.pc, regs.npc, regs.delay_slot) = (pc, pc.wrapping_add(4), false);
                self.retire::<TRACE>(regs, flow);
                Some(false)
            }
            Err(e) => {
                self.instret += k as u64;
                regs.pc = pc;
                regs.npc = target.unwrap_or(pc.wrapping_add(4));
                regs.delay_slot = b.branch && k + 1 == n;
                self.take_exception::<TRACE>(regs, e);
                Some(false)
            }
        }
    }
}
