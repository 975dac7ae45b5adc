//! LL/SC (`../shared/docs/r4000-reference.md` §5.12): SC succeeds while the link holds,
//! fails after ERET, and fails when another CPU stores to the linked line.
// Test code: a panic is how a check fails.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
use common::*;
use sim::cpu::cp0::reg as r;
use sim::testkit::machine_with;
use sim::MachineConfig;

const DATA_PA: u64 = 0x2000;
const DATA: u64 = 0xFFFF_FFFF_8000_2000;

#[test]
fn ll_then_sc_succeeds_and_sets_lladdr() {
    // ll t0, 0(a0); addiu t0, t0, 1 (+2 load-use); sc t0, 0(a0)
    // 1 + 3 + 1 + 23 = 28.
    let mut a = asm();
    a.mem(Op::Ll, Reg::T0, 0, Reg::A0);
    a.imm(Op::Addiu, Reg::T0, Reg::T0, 1);
    a.mem(Op::Sc, Reg::T0, 0, Reg::A0);
    halt(&mut a, Reg::ZERO);
    let mut m = machine(&a, &[(Reg::A0, DATA)]);
    assert!(m.bus.write_bytes(DATA_PA, &[0, 0, 0, 41]));
    run_to_halt(&mut m);
    assert_eq!(gpr(&m, Reg::T0), 1, "SC succeeded");
    assert_eq!(ram(&m, DATA_PA, 4), [0, 0, 0, 42]);
    assert_eq!(m.cpus[0].cp0().ll_addr, (DATA_PA >> 4) as u32);
    assert_eq!(cycles(&m), 5 + HALT);
}

#[test]
fn sc_without_ll_fails_and_stores_nothing() {
    // sc t0, 0(a0): 1 + 23.
    let mut a = asm();
    a.mem(Op::Sc, Reg::T0, 0, Reg::A0);
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[(Reg::A0, DATA), (Reg::T0, 0x77)]);
    assert_eq!(gpr(&m, Reg::T0), 0);
    assert_eq!(ram(&m, DATA_PA, 4), [0; 4]);
    assert_eq!(cycles(&m), 1 + HALT);
}

#[test]
fn sc_fails_after_eret() {
    // 0: ll t0, 0(a0)
    // 1-2: li t1, <3 + 2 = instruction 5>; 3: mtc0 t1, EPC; 4: eret (1 + 3)
    // 5: sc t2, 0(a0)     the link is gone: t2 = 0, no store
    // 1 + 3 + 4 + 1 + 23 = 32.
    let mut a = asm();
    a.mem(Op::Ll, Reg::T0, 0, Reg::A0);
    a.li(Reg::T1, ORIGIN + 5 * 4);
    mtc0(&mut a, Reg::T1, r::EPC);
    cop0(&mut a, Op::Eret);
    a.mem(Op::Sc, Reg::T2, 0, Reg::A0);
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[(Reg::A0, DATA), (Reg::T2, 0x55)]);
    assert_eq!(gpr(&m, Reg::T2), 0);
    assert_eq!(ram(&m, DATA_PA, 4), [0; 4]);
    assert_eq!(cycles(&m), 9 + HALT);
}

#[test]
fn sc_still_translates_when_the_link_is_gone() {
    // sc t0, 0(a0) with a0 unmapped in kuseg: TLBS refill even though the
    // SC would fail (the manual's pseudo-code translates first). 8 + 24.
    let mut a = asm();
    a.mem(Op::Sc, Reg::T0, 0, Reg::A0);
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[(Reg::A0, 0x0070_0000), (Reg::T0, 9)]);
    assert_eq!(gpr(&m, Reg::V1), AT_REFILL);
    assert_eq!(exc_code(&m), ExcCode::TlbS as u32);
    assert_eq!(gpr(&m, Reg::T0), 9);
    assert_eq!(cycles(&m), EXC + HANDLER);
}

/// Two CPUs on one bus, stepped by hand. CPU 0: `ll t0, 0(a0); sc t1, 0(a0)`;
/// CPU 1: `sw t2, off(a0)` in between. Returns the machine.
fn two_cpus(cpu1_offset: i16) -> Machine {
    let mut a = asm();
    a.mem(Op::Ll, Reg::T0, 0, Reg::A0);
    a.mem(Op::Sc, Reg::T1, 0, Reg::A0);
    let mut b = Asm::new(0x8000_3000);
    b.mem(Op::Sw, Reg::T2, cpu1_offset, Reg::A0);
    let mut m = machine_with(
        MachineConfig {
            ncpus: 2,
            ..MachineConfig::default()
        },
        &a,
    );
    place(&mut m, &b);
    m.cpus[1].boot(sext(0x8000_3000), sext(0x8020_0000));
    for cpu in &mut m.cpus {
        cpu.regs.set(Reg::A0, DATA);
        cpu.regs.set(Reg::T1, 0x1111);
        cpu.regs.set(Reg::T2, 0x2222);
    }
    m.cpus[0].step_one::<false>(&mut m.bus); // ll
    m.cpus[1].step_one::<false>(&mut m.bus); // sw
    m.cpus[0].step_one::<false>(&mut m.bus); // sc
                                             // One cycle per instruction on each CPU (SC does not read t0).
    assert_eq!(m.cpus[0].cycles(), 2);
    assert_eq!(m.cpus[1].cycles(), 1);
    m
}

#[test]
fn another_cpus_store_to_the_linked_line_breaks_the_link() {
    // CPU 1 stores to another word of the same 16-byte line.
    let m = two_cpus(12);
    assert_eq!(m.cpus[0].regs.get(Reg::T1), 0, "SC failed");
    assert_eq!(
        ram(&m, DATA_PA, 16),
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x22, 0x22]
    );
}

#[test]
fn another_cpus_store_elsewhere_leaves_the_link() {
    // CPU 1 stores to the next line: SC succeeds.
    let m = two_cpus(16);
    assert_eq!(m.cpus[0].regs.get(Reg::T1), 1, "SC succeeded");
    assert_eq!(ram(&m, DATA_PA, 4), [0, 0, 0x11, 0x11]);
    assert_eq!(ram(&m, DATA_PA + 16, 4), [0, 0, 0x22, 0x22]);
}

#[test]
fn two_cpus_interleaved_by_the_machine() {
    // CPU 0:                           CPU 1 (parked until booted below):
    // 0: ll t0, 0(a0)                  0: sw t2, 4(a0)   same line
    // 1: spin: lw t3, 0(a1)            1: sw t2, 0(a1)   flag
    // 2: beq t3, zero, spin            2: self: beq zero, zero, self
    // 3: nop                           3: nop
    // 4: sc t1, 0(a0)
    // 5: halt with t1
    // Quantum 10 000. CPU 0 runs first: ll ends at cycle 1; each spin round
    // is lw 1 + beq (1 + 2 load-use + 2 taken) + nop 1 = 7, so rounds start at
    // 1 + 7k. Round 1428 starts at 9997; its beq ends at 10 003 >= 10 000
    // and CPU 0 stops with the nop (delay slot) next. CPU 1 then stores the
    // line and the flag. Quantum 2: nop 10 004, lw 10 005, beq not taken
    // (+2 load-use) 10 008, nop 10 009, sc (fails) 10 010, halt + 23 = 10 033.
    let mut a = asm();
    a.mem(Op::Ll, Reg::T0, 0, Reg::A0);
    a.label("spin");
    a.mem(Op::Lw, Reg::T3, 0, Reg::A1);
    a.branch(Op::Beq, Reg::T3, Reg::ZERO, "spin");
    a.nop();
    a.mem(Op::Sc, Reg::T1, 0, Reg::A0);
    halt(&mut a, Reg::T1);
    let mut b = Asm::new(0x8000_3000);
    b.mem(Op::Sw, Reg::T2, 4, Reg::A0);
    b.mem(Op::Sw, Reg::T2, 0, Reg::A1);
    b.label("self");
    b.branch(Op::Beq, Reg::ZERO, Reg::ZERO, "self");
    b.nop();
    let config = MachineConfig {
        ncpus: 2,
        quantum: 10_000,
        max_cycles: Some(1_000_000),
        ..MachineConfig::default()
    };
    let mut m = machine_with(config, &a);
    place(&mut m, &b);
    m.cpus[1].boot(sext(0x8000_3000), sext(0x8020_0000));
    for cpu in &mut m.cpus {
        cpu.regs.set(Reg::A0, DATA);
        cpu.regs.set(Reg::A1, DATA + 0x100);
        cpu.regs.set(Reg::T1, 0x1111);
        cpu.regs.set(Reg::T2, 0x2222);
    }
    run_to_halt(&mut m);
    assert_eq!(m.halted, Some(0), "halt status = SC result = fail");
    assert_eq!(m.cpus[0].regs.get(Reg::T1), 0);
    assert_eq!(ram(&m, DATA_PA, 8), [0, 0, 0, 0, 0, 0, 0x22, 0x22]);
    assert_eq!(m.cpus[0].cycles(), 10_033);
}
