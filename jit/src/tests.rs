//! The crate alone: small blocks compiled and run over a test memory, their
//! registers, exits and cycles checked against what the IR says.
#![allow(clippy::unwrap_used, clippy::panic)]

use super::ir::{Alu, Block, Cond, Imm, Insn, Op, Shift};
use super::{Exit, Jit, Memory};

/// Big-endian RAM at address 0; accesses past `limit` are declined (as a
/// device or a miss would be); stores at or past `stop_at` ask to stop.
struct Ram {
    bytes: Vec<u8>,
    limit: u64,
    stop_at: u64,
    log: Vec<String>,
}

impl Ram {
    fn new() -> Ram {
        Ram {
            bytes: vec![0; 4096],
            limit: 2048,
            stop_at: u64::MAX,
            log: Vec::new(),
        }
    }
}

impl Memory for Ram {
    fn load(&mut self, ea: u64, width: u8, signed: bool) -> Option<u64> {
        self.log.push(format!("load {ea:#x} {width} {signed}"));
        if ea >= self.limit {
            return None;
        }
        let a = ea as usize;
        let raw = self.bytes[a..a + usize::from(width)]
            .iter()
            .fold(0u64, |v, &b| v << 8 | u64::from(b));
        let bits = 8 * u32::from(width);
        Some(if signed && bits < 64 {
            ((raw << (64 - bits)) as i64 >> (64 - bits)) as u64
        } else {
            raw
        })
    }

    fn store(&mut self, ea: u64, width: u8, value: u64, check: bool) -> Option<bool> {
        self.log
            .push(format!("store {ea:#x} {width} {value:#x} {check}"));
        if ea >= self.limit {
            return None;
        }
        for i in 0..usize::from(width) {
            self.bytes[ea as usize + i] = (value >> (8 * (usize::from(width) - 1 - i))) as u8;
        }
        Some(check && ea >= self.stop_at)
    }
}

/// A block of `ops` at consecutive words from 0, one cycle each; `slot`
/// marks delay slots (and `follow` followed ones) by index.
fn block(ops: &[Op], slots: &[usize], follow: &[usize]) -> Block {
    let n = ops.len();
    Block {
        insns: ops
            .iter()
            .enumerate()
            .map(|(k, &op)| Insn {
                op,
                word: k as u16,
                start: k as u32,
                end: k as u32 + 1,
                slot: slots.contains(&k),
                follow: follow.contains(&k),
                check: matches!(op, Op::Store { .. }) && k + 1 < n,
            })
            .collect(),
        taken_cost: 10,
        mul_busy: 11,
        issue: 1,
        tag: 0,
    }
}

fn run(b: &Block, gpr: &mut [u64; 32], ram: &mut Ram) -> Exit {
    let mut jit = Jit::new().unwrap();
    let code = jit.compile(b).unwrap();
    let mut state = super::State::default();
    jit.run(code, gpr, &mut state, 0xFFFF_FFFF_8000_1000, ram)
        .unwrap()
}

/// ADDIU: `rt = rs + imm`.
pub(super) fn addiu(t: u8, s: u8, imm: i64) -> Op {
    Op::Imm {
        op: Imm::Addu,
        t,
        s,
        imm: imm as u64,
    }
}

/// A conditional branch `off` bytes from its delay slot.
pub(super) fn branch(cond: Cond, s: u8, t: u8, off: i64) -> Op {
    Op::Branch {
        cond,
        s,
        t,
        off: off as u64,
    }
}

pub(super) fn leave(done: usize, pc: u64, cycles: u64) -> Exit {
    Exit::Leave {
        done,
        pc,
        cycles,
        whole: true,
    }
}

#[test]
fn alu_shifts_and_immediates_sign_extend_as_mips_does() {
    let ops = [
        Op::Const {
            t: 1,
            value: 0xFFFF_FFFF_8000_0000,
        },
        Op::Imm {
            op: Imm::Addu,
            t: 2,
            s: 1,
            imm: u64::MAX,
        },
        Op::Alu {
            op: Alu::Addu,
            d: 3,
            s: 2,
            t: 2,
        },
        Op::Shift {
            op: Shift::Sra,
            d: 4,
            t: 1,
            sa: 4,
        },
        Op::Shift {
            op: Shift::Srl,
            d: 5,
            t: 1,
            sa: 4,
        },
        Op::Shift {
            op: Shift::Sll,
            d: 6,
            t: 5,
            sa: 4,
        },
        Op::Alu {
            op: Alu::Slt,
            d: 7,
            s: 1,
            t: 0,
        },
        Op::Alu {
            op: Alu::Sltu,
            d: 8,
            s: 1,
            t: 0,
        },
        Op::Imm {
            op: Imm::Sltu,
            t: 9,
            s: 0,
            imm: u64::MAX,
        },
        Op::Alu {
            op: Alu::Nor,
            d: 10,
            s: 0,
            t: 0,
        },
        Op::Imm {
            op: Imm::Xor,
            t: 11,
            s: 10,
            imm: 0xFFFF,
        },
        Op::Alu {
            op: Alu::Subu,
            d: 12,
            s: 0,
            t: 1,
        },
        Op::Alu {
            op: Alu::Addu,
            d: 0,
            s: 1,
            t: 1,
        },
    ];
    let mut gpr = [0u64; 32];
    let exit = run(&block(&ops, &[], &[]), &mut gpr, &mut Ram::new());
    assert_eq!(exit, leave(13, 0xFFFF_FFFF_8000_1000 + 13 * 4, 13));
    assert_eq!(gpr[2], 0x7FFF_FFFF);
    assert_eq!(gpr[3], 0xFFFF_FFFF_FFFF_FFFE);
    assert_eq!(gpr[4], 0xFFFF_FFFF_F800_0000);
    assert_eq!(gpr[5], 0x0800_0000);
    assert_eq!(gpr[6], 0xFFFF_FFFF_8000_0000);
    assert_eq!((gpr[7], gpr[8], gpr[9]), (1, 0, 1));
    assert_eq!(gpr[10], u64::MAX);
    assert_eq!(gpr[11], 0xFFFF_FFFF_FFFF_0000);
    assert_eq!(gpr[12], 0xFFFF_FFFF_8000_0000);
    assert_eq!(gpr[0], 0, "r0 is never written");
}

#[test]
fn a_taken_branch_leaves_after_its_slot_with_the_taken_cost() {
    let ops = [
        Op::Branch {
            cond: Cond::Ne,
            s: 1,
            t: 0,
            off: 0x100,
        },
        Op::Imm {
            op: Imm::Or,
            t: 2,
            s: 0,
            imm: 7,
        },
        Op::Imm {
            op: Imm::Or,
            t: 3,
            s: 0,
            imm: 9,
        },
    ];
    let b = block(&ops, &[1], &[]);
    let base = 0xFFFF_FFFF_8000_1000u64;
    let mut gpr = [0u64; 32];
    gpr[1] = 1;
    assert_eq!(
        run(&b, &mut gpr, &mut Ram::new()),
        leave(2, base + 0x104, 12)
    );
    assert_eq!((gpr[2], gpr[3]), (7, 0));
    let mut gpr = [0u64; 32];
    assert_eq!(run(&b, &mut gpr, &mut Ram::new()), leave(3, base + 12, 3));
    assert_eq!((gpr[2], gpr[3]), (7, 9));
}

#[test]
fn a_followed_jump_goes_on_and_links() {
    let ops = [
        Op::Jump {
            index: 0x0400_0500,
            link: true,
        },
        Op::Nop,
        Op::JumpReg { s: 31, link: 31 },
        Op::Nop,
    ];
    let b = block(&ops, &[1, 3], &[1]);
    let mut gpr = [0u64; 32];
    let exit = run(&b, &mut gpr, &mut Ram::new());
    let base = 0xFFFF_FFFF_8000_1000u64;
    // JALR reads r31 (the JAL's link) before writing its own.
    assert_eq!(exit, leave(4, base + 8, 24));
    assert_eq!(gpr[31], base + 16);
}

#[test]
fn loads_and_stores_go_through_the_memory() {
    let ops = [
        Op::Store {
            t: 1,
            s: 0,
            off: 0x100,
            width: 4,
        },
        Op::Load {
            t: 2,
            s: 0,
            off: 0x100,
            width: 1,
            signed: true,
        },
        Op::Load {
            t: 3,
            s: 0,
            off: 0x102,
            width: 2,
            signed: false,
        },
        Op::Load {
            t: 4,
            s: 0,
            off: 0x100,
            width: 4,
            signed: true,
        },
    ];
    let mut gpr = [0u64; 32];
    gpr[1] = 0x8765_4321;
    let mut ram = Ram::new();
    assert_eq!(
        run(&block(&ops, &[], &[]), &mut gpr, &mut ram),
        leave(4, 0xFFFF_FFFF_8000_1010, 4)
    );
    assert_eq!(gpr[2], 0xFFFF_FFFF_FFFF_FF87);
    assert_eq!(gpr[3], 0x4321);
    assert_eq!(gpr[4], 0xFFFF_FFFF_8765_4321);
    assert_eq!(ram.log[0], "store 0x100 4 0x87654321 true");
}

#[test]
fn a_declined_access_or_an_interp_op_resumes_there() {
    let ops = [
        Op::Imm {
            op: Imm::Addu,
            t: 1,
            s: 0,
            imm: 0x900,
        },
        Op::Load {
            t: 2,
            s: 1,
            off: 0,
            width: 4,
            signed: true,
        },
        Op::Imm {
            op: Imm::Addu,
            t: 3,
            s: 0,
            imm: 1,
        },
    ];
    let mut gpr = [0u64; 32];
    gpr[2] = 5;
    let mut ram = Ram::new();
    ram.limit = 0x800;
    let exit = run(&block(&ops, &[], &[]), &mut gpr, &mut ram);
    assert_eq!(
        exit,
        Exit::Resume {
            at: 1,
            target: None,
            cycles: 0
        }
    );
    assert_eq!((gpr[1], gpr[2], gpr[3]), (0x900, 5, 0));

    // In a taken branch's slot: the target comes back with the resume.
    let ops = [Op::JumpReg { s: 1, link: 0 }, Op::Interp, Op::Nop];
    let exit = run(&block(&ops, &[1], &[]), &mut gpr, &mut ram);
    assert_eq!(
        exit,
        Exit::Resume {
            at: 1,
            target: Some(0x900),
            cycles: 10
        }
    );
}

#[test]
fn a_store_that_asks_to_stop_leaves_before_the_next_instruction() {
    let ops = [
        Op::Store {
            t: 1,
            s: 0,
            off: 0x200,
            width: 4,
        },
        Op::Imm {
            op: Imm::Addu,
            t: 3,
            s: 0,
            imm: 1,
        },
    ];
    let mut gpr = [0u64; 32];
    let mut ram = Ram::new();
    ram.stop_at = 0x200;
    let exit = run(&block(&ops, &[], &[]), &mut gpr, &mut ram);
    assert_eq!(
        exit,
        Exit::Leave {
            done: 1,
            pc: 0xFFFF_FFFF_8000_1004,
            cycles: 1,
            whole: false
        }
    );
    assert_eq!(gpr[3], 0);
}

#[test]
fn a_reset_makes_handles_stale() {
    let b = block(&[Op::Nop], &[], &[]);
    let mut jit = Jit::new().unwrap();
    let code = jit.compile(&b).unwrap();
    assert_eq!(jit.compiled(), 1);
    jit.reset();
    assert_eq!(jit.compiled(), 0);
    let mut gpr = [0u64; 32];
    let mut st = super::State::default();
    assert_eq!(jit.run(code, &mut gpr, &mut st, 0, &mut Ram::new()), None);
    let again = jit.compile(&b).unwrap();
    assert_eq!(
        jit.run(again, &mut gpr, &mut st, 0, &mut Ram::new()),
        Some(leave(1, 4, 1))
    );
}

#[test]
fn a_multiply_sets_hi_lo_and_mflo_waits_for_it() {
    let ops = [
        Op::Mul {
            signed: true,
            s: 1,
            t: 2,
        },
        Op::MoveFrom { d: 3, hi: false },
        Op::MoveFrom { d: 4, hi: true },
        Op::Mul {
            signed: false,
            s: 1,
            t: 2,
        },
        Op::MoveFrom { d: 5, hi: true },
    ];
    let b = block(&ops, &[], &[]);
    let mut jit = Jit::new().unwrap();
    let code = jit.compile(&b).unwrap();
    let mut gpr = [0u64; 32];
    gpr[1] = 0xFFFF_FFFF_FFFF_FFFE; // -2
    gpr[2] = 0x7000_0000;
    let mut st = super::State {
        c0: 100,
        ..Default::default()
    };
    let exit = jit
        .run(code, &mut gpr, &mut st, 0, &mut Ram::new())
        .unwrap();
    // -2 * 0x7000_0000 = -0xE000_0000: HI -1, LO 0x2000_0000.
    assert_eq!(gpr[3], 0x2000_0000);
    assert_eq!(gpr[4], u64::MAX);
    // Unsigned: 0xFFFF_FFFE * 0x7000_0000 = 0x6FFF_FFFF_2000_0000.
    assert_eq!(gpr[5], 0x6FFF_FFFF);
    assert_eq!((st.hi, st.lo), (0x6FFF_FFFF, 0x2000_0000));
    // The first MFLO (start 1) waits until 100 + 0 + 11 - 1 = 110: 9
    // cycles; the second multiply starts at 100 + 3 + 9 and the last MFHI
    // (at 100 + 4 + 9) waits until 112 + 11 - 1 = 122: 9 more.
    assert_eq!(st.hilo_ready, 100 + 12 + 11);
    assert_eq!(exit, leave(5, 20, 5 + 18));
}

mod background;
mod chain;
mod fast;
mod region;
