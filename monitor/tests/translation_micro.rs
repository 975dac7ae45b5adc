//! Translated code's micro-ops (`monitor/src/bt/exec.rs`, docs/translation.md
//! "Host speed"): instructions the translator runs without `execute` give
//! the registers and the cycles the bare machine gives.

#![allow(clippy::panic, clippy::unwrap_used)]

use monitor::bt::Exec;
use sim::isa::asm::{Asm, Operands};
use sim::isa::{Op, Reg};

use Reg as R;

mod btkit;
mod common;

use btkit::{counted_twice, native, virtualized};

fn hilo_read(a: &mut Asm, op: Op, rd: Reg) {
    a.emit(
        op,
        Operands {
            rd: rd.number(),
            ..Operands::default()
        },
    );
}

/// Twice (the second pass translated and chained): Count, a loop whose
/// every iteration multiplies (signed and unsigned) and reads HI and LO,
/// one read at once (it waits for the product), one after other work (it
/// waits less), Count. Halts with the second Count difference if `ticks`,
/// else with a checksum of every product read.
fn hilo_loop(ticks: bool) -> Asm {
    let body = |a: &mut Asm| {
        a.li(R::T0, 300);
        a.li(R::T1, 0x9E37_79B9);
        a.label("loop");
        a.rs_rt(Op::Mult, R::T1, R::T0);
        hilo_read(a, Op::Mflo, R::T2);
        a.r3(Op::Addu, R::S5, R::S5, R::T2);
        a.rs_rt(Op::Multu, R::T2, R::T1);
        a.r3(Op::Xor, R::T1, R::T1, R::T2);
        a.imm(Op::Addiu, R::T3, R::T3, 7);
        hilo_read(a, Op::Mfhi, R::T4);
        a.r3(Op::Xor, R::S5, R::S5, R::T4);
        a.imm(Op::Addiu, R::T0, R::T0, -1);
        a.bnez(R::T0, "loop");
        a.nop();
    };
    counted_twice(|_| {}, body, if ticks { R::S2 } else { R::S5 })
}

/// MULT/MULTU and MFHI/MFLO in translated KSEG0 code (`HiLoOp`): the
/// products read are the bare machine's, and the loop takes the bare
/// machine's time, its reads' waits for the multiplier included (to the
/// half-cycle Count cannot show); the engine's 20 cycles per instruction
/// show plainly.
#[test]
fn multiplications_in_translated_code_read_and_wait_as_natively() {
    let sums = hilo_loop(false);
    let (_, native_sum) = native(&[&sums]);
    let prog = hilo_loop(true);
    let (_, native_ticks) = native(&[&prog]);
    assert!(native_ticks > 300 * 10, "{native_ticks}");
    for exec in [Exec::Translate, Exec::Adaptive] {
        let (_, sum, _) = virtualized(&[&sums], exec);
        assert_eq!(sum, native_sum, "{exec:?}");
        let (_, ticks, m) = virtualized(&[&prog], exec);
        assert!(
            ticks.abs_diff(native_ticks) <= 1,
            "{exec:?}: {ticks} Count ticks, natively {native_ticks}"
        );
        assert_eq!(m.vms[0].bt.stats.fallback_fetch, 0, "{exec:?}");
    }
    let (_, engine_ticks, _) = virtualized(&[&prog], Exec::Direct);
    assert!(engine_ticks > 5 * native_ticks, "{engine_ticks}");
}
