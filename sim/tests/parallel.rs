//! The parallel mode (docs/parallel.md) with programs built by the in-crate
//! assembler: LL/SC counting stays exact with the CPUs on host threads, and
//! code one CPU patches is what another then runs. Each program also runs
//! in the deterministic mode, where it must give the same answer.
// Test code: a panic is how a check fails.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
use common::*;
use sim::machine::{Exit, Tier};
use sim::testkit::machine_with;
use sim::{CompileMode, MachineConfig};

/// Shared data: KSEG0 0x8000_5000 (physical 0x5000), its own page.
const DATA: u32 = 0x8000_5000;
const DATA_PA: u64 = 0x5000;

/// A machine of `ncpus` running `a` on every CPU, CPU `i` with `a1 = i`;
/// `threads` host threads (`None`: the deterministic mode).
fn every_cpu(a: &Asm, ncpus: usize, threads: Option<usize>, tier: Tier) -> Machine {
    every_cpu_in(a, ncpus, threads, (tier, CompileMode::Inline))
}

/// [`every_cpu`], tier 3 compiling where `mode` says (the threads' compilers
/// share the one compiler thread in the background modes).
fn every_cpu_in(
    a: &Asm,
    ncpus: usize,
    threads: Option<usize>,
    (tier, mode): (Tier, CompileMode),
) -> Machine {
    let mut m = machine_with(
        MachineConfig {
            ncpus,
            tier,
            max_cycles: Some(2_000_000_000),
            ..MachineConfig::default()
        },
        a,
    );
    let pc = i64::from(a.origin() as i32) as u64;
    for (i, cpu) in m.cpus.iter_mut().enumerate() {
        cpu.boot(pc, 0xFFFF_FFFF_8010_0000 - 0x1000 * i as u64);
        cpu.regs.set(Reg::A1, i as u64);
    }
    // Tier 3: every block compiled at its first run (inline), or sent to
    // the compiler thread then, on every thread.
    m.set_compile_threshold(1);
    m.set_compile_mode(mode);
    m.set_parallel(threads);
    m
}

fn word(m: &Machine, pa: u64) -> u32 {
    u32::from_be_bytes(m.bus.read_bytes(pa, 4).unwrap().try_into().unwrap())
}

/// Every CPU adds 1 to the counter at DATA `k` times with LL/SC, then
/// counts itself done (LL/SC too); CPU 0 waits for all and halts, the
/// others WAIT. a2 = k, a3 = ncpus.
fn counting() -> Asm {
    let mut a = asm();
    a.li(Reg::A0, DATA);
    a.label("again");
    a.mem(Op::Ll, Reg::T0, 0, Reg::A0);
    a.imm(Op::Addiu, Reg::T0, Reg::T0, 1);
    a.mem(Op::Sc, Reg::T0, 0, Reg::A0);
    a.beqz(Reg::T0, "again");
    a.nop();
    a.imm(Op::Addiu, Reg::A2, Reg::A2, -1);
    a.bnez(Reg::A2, "again");
    a.nop();
    a.label("done");
    a.mem(Op::Ll, Reg::T0, 4, Reg::A0);
    a.imm(Op::Addiu, Reg::T0, Reg::T0, 1);
    a.mem(Op::Sc, Reg::T0, 4, Reg::A0);
    a.beqz(Reg::T0, "done");
    a.nop();
    a.bnez(Reg::A1, "park");
    a.nop();
    a.label("all");
    a.mem(Op::Lw, Reg::T1, 4, Reg::A0);
    a.branch(Op::Bne, Reg::T1, Reg::A3, "all");
    a.nop();
    halt(&mut a, Reg::ZERO);
    a.label("park");
    a.wait();
    a.b("park");
    a.nop();
    a
}

/// Tiers 1 to 3, and tier 3 with the compiler thread.
const TIERS: [(Tier, CompileMode); 4] = [
    (Tier::Interp, CompileMode::Inline),
    (Tier::Blocks, CompileMode::Inline),
    (Tier::Compiled, CompileMode::Inline),
    (Tier::Compiled, CompileMode::Background),
];

fn count(ncpus: usize, k: u64, threads: Option<usize>, tier: (Tier, CompileMode)) -> u32 {
    let mut m = every_cpu_in(&counting(), ncpus, threads, tier);
    for cpu in &mut m.cpus {
        cpu.regs.set(Reg::A2, k);
        cpu.regs.set(Reg::A3, ncpus as u64);
    }
    assert_eq!(m.run(), Exit::Halted { status: 0 }, "{threads:?} threads");
    assert_eq!(word(&m, DATA_PA + 4), ncpus as u32);
    word(&m, DATA_PA)
}

#[test]
fn ll_sc_counting_is_exact_on_2_4_and_8_threads() {
    let k = 20_000;
    for tier in TIERS {
        assert_eq!(count(4, k, None, tier), 4 * k as u32, "deterministic");
        for threads in [2, 4, 8] {
            assert_eq!(
                count(threads, k, Some(threads), tier),
                threads as u32 * k as u32,
                "{threads} CPUs on {threads} threads, {tier:?}"
            );
        }
        // More CPUs than threads: several CPUs take turns on each.
        assert_eq!(count(8, k, Some(2), tier), 8 * k as u32, "{tier:?}");
    }
}

/// The function CPU 1 calls: `v0 = 0xbad`, in a page of its own.
const FUNC: u32 = 0x8000_3000;
const FUNC_PA: u64 = 0x3000;

/// CPU 1 calls FUNC (decoding its page), says so; CPU 0 then patches
/// FUNC's first instruction to `addiu v0, zero, 0x123` and says so; CPU 1
/// calls FUNC again and stores what it returned. CPU 0 halts with
/// 0 if that is the patched value.
fn patching() -> (Asm, Asm) {
    let mut f = Asm::new(FUNC);
    f.imm(Op::Addiu, Reg::V0, Reg::ZERO, 0xbad);
    f.jr(Reg::RA);
    f.nop();
    let mut patch = Asm::new(FUNC);
    patch.imm(Op::Addiu, Reg::V0, Reg::ZERO, 0x123);
    let new_word = patch.finish().unwrap()[0];

    let mut a = asm();
    a.li(Reg::A0, DATA);
    a.li(Reg::A2, FUNC);
    a.bnez(Reg::A1, "cpu1");
    a.nop();
    a.label("wait_called");
    a.mem(Op::Lw, Reg::T1, 0, Reg::A0);
    a.beqz(Reg::T1, "wait_called");
    a.nop();
    a.li(Reg::T0, new_word);
    a.mem(Op::Sw, Reg::T0, 0, Reg::A2);
    a.imm(Op::Addiu, Reg::T1, Reg::ZERO, 1);
    a.mem(Op::Sw, Reg::T1, 4, Reg::A0);
    a.label("wait_result");
    a.mem(Op::Lw, Reg::T1, 12, Reg::A0);
    a.beqz(Reg::T1, "wait_result");
    a.nop();
    a.mem(Op::Lw, Reg::T2, 8, Reg::A0);
    a.imm(Op::Addiu, Reg::T2, Reg::T2, -0x123);
    halt(&mut a, Reg::T2);

    a.label("cpu1");
    a.jalr(Reg::RA, Reg::A2);
    a.nop();
    a.mem(Op::Sw, Reg::V0, 16, Reg::A0);
    a.imm(Op::Addiu, Reg::T1, Reg::ZERO, 1);
    a.mem(Op::Sw, Reg::T1, 0, Reg::A0);
    a.label("wait_patched");
    a.mem(Op::Lw, Reg::T1, 4, Reg::A0);
    a.beqz(Reg::T1, "wait_patched");
    a.nop();
    a.jalr(Reg::RA, Reg::A2);
    a.nop();
    a.mem(Op::Sw, Reg::V0, 8, Reg::A0);
    a.imm(Op::Addiu, Reg::T1, Reg::ZERO, 1);
    a.mem(Op::Sw, Reg::T1, 12, Reg::A0);
    a.label("park");
    a.wait();
    a.b("park");
    a.nop();
    (a, f)
}

#[test]
fn a_cpu_runs_the_code_another_cpu_patched() {
    for tier in TIERS {
        for threads in [None, Some(2)] {
            let (a, f) = patching();
            let mut m = every_cpu_in(&a, 2, None, tier);
            // Tier 3: the patched function was compiled at its first run.
            m.set_compile_threshold(1);
            place(&mut m, &f);
            m.set_parallel(threads);
            let exit = m.run();
            let what = format!("{tier:?}, {threads:?} threads");
            assert_eq!(
                word(&m, DATA_PA + 16),
                0xbad,
                "the old code ran first: {what}"
            );
            assert_eq!(word(&m, DATA_PA + 8), 0x123, "then the new: {what}");
            assert_eq!(exit, Exit::Halted { status: 0 }, "{what}");
            assert_eq!(word(&m, FUNC_PA) & 0xFFFF, 0x123);
        }
    }
}

#[test]
fn the_cycle_limit_stops_every_thread_at_the_limit() {
    // Two CPUs spinning for ever; the limit is not a quantum multiple.
    let mut a = asm();
    a.label("spin");
    a.b("spin");
    a.nop();
    let mut m = every_cpu(&a, 2, Some(2), Tier::Blocks);
    m.config.max_cycles = Some(123_457);
    assert_eq!(m.run(), Exit::CycleLimit { cycles: 123_457 });
    for c in &m.cpus {
        assert!(
            c.cycles() >= 123_457 && c.cycles() < 123_457 + 8,
            "{}",
            c.cycles()
        );
    }
    assert_eq!(m.parallel_threads(), Some(2));
}

#[test]
fn cpus_idle_on_wait_on_their_threads_reach_the_limit() {
    // Every CPU idle on WAIT for 100,000 quanta: each thread's CPUs do
    // nothing, so every thread waits at each quantum for all to finish the
    // one before, and some thread must always see that they have (two
    // threads finishing at once once each missed the other's progress and
    // both waited for ever: tests/kestrel.rs, 4 CPUs on 4 threads; this
    // run did not catch that race in 1,000,000 quanta, but checks that
    // idle threads go on).
    let mut a = asm();
    a.label("idle");
    a.wait();
    a.b("idle");
    a.nop();
    for (cpus, threads) in [(2, 2), (4, 4)] {
        let mut m = every_cpu(&a, cpus, Some(threads), Tier::Blocks);
        m.config.max_cycles = Some(1_000_000_000);
        assert_eq!(
            m.run(),
            Exit::CycleLimit {
                cycles: 1_000_000_000
            }
        );
        assert!(m.cpus.iter().all(|c| c.cycles() >= 1_000_000_000));
    }
}
