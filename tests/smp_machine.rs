//! Four CPUs on the library API: secondaries started through mp, parked on
//! WAIT until an IPI wakes them, a shared LL/SC counter that must come out
//! exact, and byte-identical traces from two runs. Also mp's pause/unpause.

#![allow(clippy::panic, clippy::unwrap_used)]

use sim::cpu::cp0::reg;
use sim::isa::asm::Asm;
use sim::isa::{Op, Reg};
use sim::loader::Symbols;
use sim::testkit::{halt, machine_with, place};
use sim::trace::{Categories, TextTracer};
use sim::{Exit, Machine, MachineConfig};

const MP: u32 = 0xB100_0000;
const COUNTER: u32 = 0x8010_0000;
const PARKED: u32 = 0x8010_0010;
const DONE: u32 = 0x8010_0020;
const SECONDARY: u32 = 0x8000_3000;
const WOKEN: u32 = 0x8000_4000;
const N: u32 = 2000;

/// `ll t0,0(base); addiu t0,t0,1; sc t0,0(base); beqz t0,retry; nop`
fn atomic_inc(a: &mut Asm, base: Reg, label: &str) {
    a.label(label);
    a.mem(Op::Ll, Reg::T0, 0, base);
    a.imm(Op::Addiu, Reg::T0, Reg::T0, 1);
    a.mem(Op::Sc, Reg::T0, 0, base);
    a.beqz(Reg::T0, label);
    a.nop();
}

/// `N` atomic increments of COUNTER.
fn count(a: &mut Asm) {
    a.li(Reg::A0, COUNTER);
    a.li(Reg::S1, N);
    a.label("count");
    atomic_inc(a, Reg::A0, "count_inc");
    a.imm(Op::Addiu, Reg::S1, Reg::S1, -1);
    a.bnez(Reg::S1, "count");
    a.nop();
}

/// Spins until the word at `addr` equals `value`.
fn await_word(a: &mut Asm, addr: u32, value: u32, label: &str) {
    a.li(Reg::A2, addr);
    a.li(Reg::T1, value);
    a.label(label);
    a.mem(Op::Lw, Reg::T0, 0, Reg::A2);
    a.branch(Op::Bne, Reg::T0, Reg::T1, label);
    a.nop();
}

/// The program and its machine. CPU 0:
///
/// ```text
///     sw SECONDARY -> mp.startupaddr; sw stack -> mp.startupstack
///     sw 1, 2, 3 -> mp.startupcpu
///     spin until PARKED == 3
///     sw (1 << 16) | 0 -> mp.ipi_many      # IPI 1 to every CPU but 0
///     N x LL/SC increment of COUNTER
///     spin until DONE == 3
///     halt with COUNTER
/// ```
///
/// Secondaries start at SECONDARY: Status = IM6 | IE, LL/SC-increment
/// PARKED, then `wait` in a loop. The IPI's interrupt goes to the vector at
/// 0x80000180, which pops the IPI (ipi_read), sets EPC = WOKEN and ERETs.
/// WOKEN: interrupts off, N increments, increment DONE, `wait` for good.
fn build(quantum: u64) -> Machine {
    let mut a = Asm::new(0x8000_1000);
    a.li(Reg::T9, MP);
    a.li(Reg::T0, SECONDARY);
    a.mem(Op::Sw, Reg::T0, 0x30, Reg::T9);
    a.li(Reg::T0, 0x8020_0000);
    a.mem(Op::Sw, Reg::T0, 0x70, Reg::T9);
    for cpu in 1..4 {
        a.li(Reg::T0, cpu);
        a.mem(Op::Sw, Reg::T0, 0x20, Reg::T9);
    }
    await_word(&mut a, PARKED, 3, "parked");
    a.li(Reg::T0, 1 << 16);
    a.mem(Op::Sw, Reg::T0, 0xb0, Reg::T9);
    count(&mut a);
    await_word(&mut a, DONE, 3, "done");
    a.li(Reg::A0, COUNTER);
    a.mem(Op::Lw, Reg::T0, 0, Reg::A0);
    halt(&mut a, Reg::T0);

    let mut vector = Asm::new(0x8000_0180);
    vector.li(Reg::K1, MP);
    vector.mem(Op::Lw, Reg::K0, 0xc0, Reg::K1);
    vector.li(Reg::K0, WOKEN);
    vector.mtc0(Reg::K0, reg::EPC);
    vector.nop();
    vector.op(Op::Eret);

    let mut secondary = Asm::new(SECONDARY);
    secondary.li(Reg::T0, 0x4001);
    secondary.mtc0(Reg::T0, reg::STATUS);
    secondary.li(Reg::A1, PARKED);
    atomic_inc(&mut secondary, Reg::A1, "inc_parked");
    secondary.label("sleep");
    secondary.op(Op::Wait);
    secondary.b("sleep");
    secondary.nop();

    let mut woken = Asm::new(WOKEN);
    woken.mtc0(Reg::ZERO, reg::STATUS);
    count(&mut woken);
    woken.li(Reg::A1, DONE);
    atomic_inc(&mut woken, Reg::A1, "inc_done");
    woken.label("idle");
    woken.op(Op::Wait);
    woken.b("idle");
    woken.nop();

    let mut m = machine_with(
        MachineConfig {
            ncpus: 4,
            quantum,
            max_cycles: Some(50_000_000),
            ..MachineConfig::default()
        },
        &a,
    );
    place(&mut m, &vector);
    place(&mut m, &secondary);
    place(&mut m, &woken);
    m
}

/// Runs to the halt; returns the machine and its exc/irq/mmio trace.
fn run_traced(quantum: u64) -> (Machine, String) {
    let mut m = build(quantum);
    let cats = Categories::parse("exc,irq,mmio").unwrap();
    let (tracer, text) = TextTracer::in_memory(cats, Symbols::default());
    m.observe(Box::new(tracer));
    let exit = m.run();
    m.flush_observers();
    assert_eq!(exit, Exit::Halted { status: 4 * N }, "{}", text.text());
    (m, text.text())
}

#[test]
fn four_cpus_count_exactly_and_two_runs_trace_identically() {
    let (m, trace) = run_traced(1000);
    // Every secondary was started, parked, and woken by exactly one IPI.
    for cpu in &m.cpus[1..] {
        assert_eq!(cpu.stats().interrupts, 1, "cpu{}", cpu.id());
        assert!(cpu.stats().wait_cycles > 0, "cpu{} idled on WAIT", cpu.id());
    }
    assert_eq!(m.cpus[0].stats().interrupts, 0);
    for cpu in 1..4 {
        assert!(
            trace.contains(&format!(
                "cpu{cpu} kernel     interrupt, pending & enabled IP bits 0x4000"
            )),
            "cpu{cpu} took IP6:\n{trace}"
        );
        assert!(trace.contains(&format!("cpu{cpu} kernel     wait at")));
    }
    assert!(trace.contains("cpu0 kernel     mmio write 4 bytes at 0x110000b0: 0x10000"));
    // The same inputs give the same run, event for event and cycle for cycle.
    let (m2, trace2) = run_traced(1000);
    assert!(trace == trace2, "two runs gave different traces");
    let cycles = |m: &Machine| m.cpus.iter().map(|c| c.cycles()).collect::<Vec<_>>();
    assert_eq!(cycles(&m), cycles(&m2));
    assert_eq!(m.instructions(), m2.instructions());
}

#[test]
fn the_count_is_exact_whatever_the_quantum() {
    for quantum in [1, 7, 100, 10_000] {
        let mut m = build(quantum);
        assert_eq!(m.run(), Exit::Halted { status: 4 * N }, "quantum {quantum}");
    }
}

#[test]
fn a_paused_cpu_stops_counting_until_unpaused() {
    // CPU 1 increments a counter forever. CPU 0 pauses every CPU but
    // itself, samples the counter twice 500 iterations apart (it must not
    // move), unpauses CPU 1, waits for the counter to move, and halts with
    // 1 (or 2 if it moved while paused).
    let mut a = Asm::new(0x8000_1000);
    a.li(Reg::T9, MP);
    a.li(Reg::T0, SECONDARY);
    a.mem(Op::Sw, Reg::T0, 0x30, Reg::T9);
    a.li(Reg::T0, 1);
    a.mem(Op::Sw, Reg::T0, 0x20, Reg::T9);
    a.li(Reg::A0, COUNTER);
    await_word(&mut a, COUNTER, 100, "started");
    a.mem(Op::Sw, Reg::ZERO, 0x50, Reg::T9); // pause all but CPU 0
    a.mem(Op::Lw, Reg::S2, 0, Reg::A0);
    a.li(Reg::S1, 500);
    a.label("delay");
    a.imm(Op::Addiu, Reg::S1, Reg::S1, -1);
    a.bnez(Reg::S1, "delay");
    a.nop();
    a.mem(Op::Lw, Reg::S3, 0, Reg::A0);
    a.li(Reg::V0, 2);
    a.branch(Op::Bne, Reg::S2, Reg::S3, "out");
    a.nop();
    a.li(Reg::T0, 1);
    a.mem(Op::Sw, Reg::T0, 0x60, Reg::T9); // unpause CPU 1
    a.label("moves");
    a.mem(Op::Lw, Reg::S3, 0, Reg::A0);
    a.branch(Op::Beq, Reg::S2, Reg::S3, "moves");
    a.nop();
    a.li(Reg::V0, 1);
    a.label("out");
    halt(&mut a, Reg::V0);
    let mut b = Asm::new(SECONDARY);
    b.li(Reg::A0, COUNTER);
    b.label("forever");
    b.mem(Op::Lw, Reg::T0, 0, Reg::A0);
    b.imm(Op::Addiu, Reg::T0, Reg::T0, 1);
    b.mem(Op::Sw, Reg::T0, 0, Reg::A0);
    b.b("forever");
    b.nop();
    let mut m = machine_with(
        MachineConfig {
            ncpus: 2,
            quantum: 50,
            max_cycles: Some(10_000_000),
            ..MachineConfig::default()
        },
        &a,
    );
    place(&mut m, &b);
    assert_eq!(m.run(), Exit::Halted { status: 1 });
}
