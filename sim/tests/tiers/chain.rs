//! Chained compiled blocks (docs/tiers.md, "Chaining"): a loop of two
//! blocks in one page, each linked to the other, runs in compiled code
//! from one to the next; a timer interrupt lands mid-loop, and the loop's
//! own code is patched by a store in the loop or by another CPU. Linked
//! both ways, the two blocks are also compiled as one loop
//! (docs/tiers.md, "Loops"), as is the self-linked block of the second
//! test.

use super::*;

/// `again`: v0 += 1 at `site` until v0 reaches 20,000; a timer interrupt
/// (IP7) every 194 cycles counts in s0. `how`: "same page" patches `site`
/// to add 100 from inside the loop on its 1,000th pass; "another cpu" has
/// CPU 1 patch it after a short wait.
fn chained_loop(how: &str) -> Asm {
    use Reg as R;
    looping(how, |a| {
        // Block A: count the pass; on the 1,000th, fall through to the
        // patch.
        a.label("again");
        a.imm(Op::Addiu, R::S1, R::S1, 1);
        a.branch(Op::Bne, R::S1, R::S2, "site");
        a.nop();
        a.mem(Op::Sw, R::T1, 0, R::T0);
        // Block B (0x8000_1400): the patched word, then back to A.
        a.label("site");
        a.imm(Op::Addiu, R::V0, R::V0, 1);
        a.imm(Op::Slti, R::AT, R::V0, 20_000);
        a.branch(Op::Bne, R::AT, R::ZERO, "again");
        a.nop();
        halt(a);
    })
}

fn halt(a: &mut Asm) {
    a.li(Reg::K1, 0xB000_0010);
    a.mem(Op::Sw, Reg::ZERO, 0, Reg::K1);
    a.nop();
}

/// The set-up (timer, registers, CPU 1 started for "another cpu"), then
/// `body` at 0x8000_13F0 (its word at 0x8000_1400 is the one patched),
/// then CPU 1's code at 0x8000_3000.
fn looping(how: &str, body: impl Fn(&mut Asm)) -> Asm {
    use Reg as R;
    let mut a = Asm::new(0x8000_1000);
    let new_word = addiu_v0_100();
    a.li(R::T0, 0x8001);
    a.mtc0(R::T0, 12);
    a.li(R::T0, 97);
    a.mtc0(R::T0, 11);
    a.imm(Op::Addiu, R::S0, R::ZERO, 0);
    a.imm(Op::Addiu, R::V0, R::ZERO, 0);
    a.imm(Op::Addiu, R::S1, R::ZERO, 0);
    a.li(R::T1, new_word);
    a.li(R::T0, 0x8000_1400);
    if how == "another cpu" {
        a.imm(Op::Addiu, R::S2, R::ZERO, -1);
        a.li(R::T2, 0xB100_0000);
        a.li(R::T3, 0x8000_3000);
        a.mem(Op::Sw, R::T3, 0x30, R::T2); // startupaddr
        a.li(R::T3, 0x8000_7000);
        a.mem(Op::Sw, R::T3, 0x70, R::T2); // startupstack
        a.imm(Op::Addiu, R::T3, R::ZERO, 1);
        a.mem(Op::Sw, R::T3, 0x20, R::T2); // startupcpu
    } else {
        a.imm(Op::Addiu, R::S2, R::ZERO, 1000);
    }
    while a.here() < 0x8000_13F0 {
        a.nop();
    }
    body(&mut a);
    while a.here() < 0x8000_3000 {
        a.nop();
    }
    // CPU 1: wait a little, patch, park.
    a.li(R::T0, 0x8000_1400);
    a.li(R::T1, new_word);
    a.li(R::T2, 300);
    a.label("delay");
    a.imm(Op::Addiu, R::T2, R::T2, -1);
    a.branch(Op::Bne, R::T2, R::ZERO, "delay");
    a.nop();
    a.mem(Op::Sw, R::T1, 0, R::T0);
    a.label("spin");
    a.branch(Op::Beq, R::ZERO, R::ZERO, "spin");
    a.nop();
    a
}

/// As [`chained_loop`], but the loop is one block linked to itself: `site`
/// (the patched word) counts in v0 and s1 until v0 reaches 20,000; on
/// the 1,000th pass ("same page") its taken branch leaves for the block
/// that patches it, which jumps back.
fn self_loop(how: &str) -> Asm {
    use Reg as R;
    looping(how, |a| {
        for _ in 0..4 {
            a.nop();
        }
        a.label("self");
        a.imm(Op::Addiu, R::V0, R::V0, 1);
        a.imm(Op::Addiu, R::S1, R::S1, 1);
        a.branch(Op::Beq, R::S1, R::S2, "patch");
        a.imm(Op::Slti, R::AT, R::V0, 20_000);
        a.branch(Op::Bne, R::AT, R::ZERO, "self");
        a.nop();
        halt(a);
        a.label("patch");
        a.mem(Op::Sw, R::T1, 0, R::T0);
        a.branch(Op::Beq, R::ZERO, R::ZERO, "self");
        a.nop();
    })
}

#[test]
fn a_chained_loop_takes_interrupts_and_sees_its_code_patched() {
    for how in ["same page", "another cpu"] {
        patched_loop(how, &chained_loop(how));
    }
}

#[test]
fn a_self_loop_takes_interrupts_and_sees_its_code_patched() {
    for how in ["same page", "another cpu"] {
        patched_loop(how, &self_loop(how));
    }
}

/// Runs `a` in every tier with the timer's handler; it must take
/// interrupts and see its patch.
fn patched_loop(how: &str, a: &Asm) {
    use Reg as R;
    let mut v = Asm::new(0x8000_0180);
    v.imm(Op::Addiu, R::S0, R::S0, 1);
    v.mfc0(R::K0, 9);
    v.imm(Op::Addiu, R::K0, R::K0, 97);
    v.mtc0(R::K0, 11);
    v.op(Op::Eret);
    let vec = v.bytes().unwrap();
    let img = asm_image(a);
    let ncpus = if how == "another cpu" { 2 } else { 1 };
    let make = |c: MachineConfig| {
        let mut m = image_machine(&img)(c);
        assert!(m.bus.write_bytes(0x180, &vec));
        m
    };
    let o = same_in_every_tier(how, &config(ncpus), &make);
    halted(&o);
    let interrupts = o.log.iter().filter(|l| l.contains("Interrupt")).count();
    assert!(interrupts > 20, "{how}: only {interrupts} interrupts");
    let mut m = make(MachineConfig {
        tier: Tier::Compiled,
        ..config(ncpus)
    });
    m.set_compile_threshold(1);
    m.set_compile_mode(sim::CompileMode::Inline);
    m.run();
    let (v0, passes) = (m.cpus[0].regs.get(Reg::V0), m.cpus[0].regs.get(Reg::S1));
    // One a pass until the patch, then a hundred.
    assert!(
        v0 >= 20_000 && v0 > passes,
        "{how}: v0 = {v0} after {passes} passes"
    );
}
