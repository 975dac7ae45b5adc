//! Robustness (style rule 27): random instruction words, executed in kernel,
//! supervisor and user mode, must never panic the simulator. Every outcome
//! is an architectural exception, which a handler skips over.
//!
//! Each chunk: a fresh CPU, one 4 KB page of seeded random words (half fully
//! random, half random operands under a random opcode-table row), random
//! registers (some pointing at mapped data), a mode, and a handler at every
//! vector that skips the faulting instruction (or the branch and its slot),
//! re-arms the timer, clears the software interrupts, restores Status and
//! returns. The chunk runs for a bounded number of steps.
// Test code: a panic is how a check fails.
#![allow(clippy::unwrap_used, clippy::panic)]

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sim::cpu::cp0::{reg, status};
use sim::cpu::{tlb, Cpu, RunState, Tlb};
use sim::isa::asm::{Asm, Operands};
use sim::isa::{Op, Reg, OPCODES};
use sim::testkit::place;
use sim::{Machine, MachineConfig};

/// Random words to execute (or fault on) in total.
const RANDOM_WORDS: u64 = 1_000_000;
/// Steps per chunk (handler instructions included).
const STEPS_PER_CHUNK: u32 = 6_000;
const SEED: u64 = 0x5EED_D15C_0000_0001;

/// The random page: physical 0x10000; VA 0x8001_0000 in kernel mode,
/// 0x0001_0000 (mapped, global) in supervisor and user mode.
const CODE_PA: u64 = 0x1_0000;
/// Where the handler finds the Status value to restore.
const STATUS_SLOT: u32 = 0x8000_0100;

fn mtc0(a: &mut Asm, rt: Reg, r: u32) {
    a.emit(
        Op::Mtc0,
        Operands {
            rt: rt.number(),
            rd: r,
            ..Default::default()
        },
    );
}
fn mfc0(a: &mut Asm, rt: Reg, r: u32) {
    a.emit(
        Op::Mfc0,
        Operands {
            rt: rt.number(),
            rd: r,
            ..Default::default()
        },
    );
}

/// The skip handler (15 instructions, fits below the next vector).
fn handler(base: u32) -> Asm {
    let mut a = Asm::new(base);
    mfc0(&mut a, Reg::K0, reg::EPC);
    mfc0(&mut a, Reg::K1, reg::CAUSE);
    a.branch(Op::Bgez, Reg::K1, Reg::ZERO, "nobd"); // Cause.BD is bit 31
    a.imm(Op::Addiu, Reg::K0, Reg::K0, 4);
    a.imm(Op::Addiu, Reg::K0, Reg::K0, 4);
    a.label("nobd");
    mtc0(&mut a, Reg::K0, reg::EPC);
    mtc0(&mut a, Reg::ZERO, reg::CAUSE);
    mfc0(&mut a, Reg::K1, reg::COUNT);
    a.imm(Op::Addiu, Reg::K1, Reg::K1, 0x100);
    mtc0(&mut a, Reg::K1, reg::COMPARE);
    a.imm(Op::Lui, Reg::K1, Reg::ZERO, i64::from(STATUS_SLOT >> 16));
    a.mem(Op::Lw, Reg::K1, (STATUS_SLOT & 0xFFFF) as i16, Reg::K1);
    mtc0(&mut a, Reg::K1, reg::STATUS);
    a.emit(Op::Eret, Operands::default());
    assert!(a.finish().unwrap().len() <= 32);
    a
}

fn random_word(rng: &mut SmallRng) -> u32 {
    let w: u32 = rng.gen();
    if rng.gen_bool(0.5) {
        return w;
    }
    let row = &OPCODES[rng.gen_range(0..OPCODES.len())];
    row.match_bits | (w & !row.mask)
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Kernel,
    Supervisor,
    User,
}

#[derive(Default, Debug)]
struct Totals {
    random_steps: u64,
    all_steps: u64,
    exceptions: u64,
    chunks: u64,
}

fn run_chunk(m: &mut Machine, rng: &mut SmallRng, mode: Mode, totals: &mut Totals) {
    // A fresh CPU 0 on the same bus.
    m.cpus[0] = Cpu::new(0);
    let words: Vec<u8> = (0..1024)
        .flat_map(|_| random_word(rng).to_be_bytes())
        .collect();
    assert!(m.bus.write_bytes(CODE_PA, &words));
    for base in [0x8000_0000u32, 0x8000_0080, 0x8000_0180] {
        place(m, &handler(base));
    }
    let (pc, mut st) = match mode {
        Mode::Kernel => (0x8001_0000u32, 0u32),
        Mode::Supervisor => (0x0001_0000, 1 << 3),
        Mode::User => (0x0001_0000, 2 << 3),
    };
    // Sometimes allow 64-bit operations, CP0 or interrupts.
    if rng.gen_bool(0.3) {
        st |= status::UX | status::SX;
    }
    if rng.gen_bool(0.2) {
        st |= status::CU0;
    }
    if rng.gen_bool(0.3) {
        st |= status::IE | (rng.gen::<u32>() & status::IM_MASK);
    }
    assert!(m.bus.write_bytes(
        u64::from(STATUS_SLOT & 0x1FFF_FFFF),
        &(st | status::EXL).to_be_bytes()
    ));
    let cpu = &mut m.cpus[0];
    // Global identity mappings for the first 128 KB of kuseg (16 pairs), so
    // user and supervisor code and data translate.
    for i in 0..16u32 {
        let va = i * 0x2000;
        let lo = |pa: u32| {
            ((pa >> 12) << tlb::lo::PFN_SHIFT) | tlb::lo::V | tlb::lo::D | tlb::lo::G | (3 << 3)
        };
        cpu.tlb_write(i as usize, Tlb::compose(0, va, lo(va), lo(va + 0x1000)));
    }
    cpu.boot(i64::from(pc as i32) as u64, 0xFFFF_FFFF_8010_0000);
    cpu.write_cp0(reg::STATUS, u64::from(st));
    cpu.write_cp0(reg::COMPARE, u64::from(rng.gen_range(50u32..2000)));
    for r in 1..32 {
        let v: u64 = match rng.gen_range(0..4) {
            0 => rng.gen(),
            1 => i64::from(rng.gen::<i32>()) as u64,
            // Pointers into mapped data, in either address form.
            2 => u64::from(rng.gen_range(0x2_0000u32..0x2_0000 + 0x1_0000)),
            _ => i64::from(rng.gen_range(0x8002_0000u32..0x8003_0000) as i32) as u64,
        };
        cpu.regs.set(Reg::new(r), v);
    }
    let code = i64::from(pc as i32) as u64;
    for _ in 0..STEPS_PER_CHUNK {
        let cpu = &mut m.cpus[0];
        if cpu.run_state() != RunState::Running {
            break;
        }
        let before: u64 = cpu.stats().exceptions.iter().sum();
        if cpu.regs.pc.wrapping_sub(code) < 4096 {
            totals.random_steps += 1;
        }
        cpu.step_one::<false>(&mut m.bus);
        totals.all_steps += 1;
        totals.exceptions += m.cpus[0].stats().exceptions.iter().sum::<u64>() - before;
        if m.bus.board.has_actions() {
            m.bus.board.take_actions();
        }
    }
    m.take_console();
    totals.chunks += 1;
}

#[test]
fn a_million_random_words_never_panic() {
    let mut rng = SmallRng::seed_from_u64(SEED);
    let mut m = Machine::new(
        MachineConfig {
            max_cycles: None,
            ..MachineConfig::default()
        },
        sim::dev::Board::new(1),
    );
    let mut totals = Totals::default();
    let modes = [Mode::Kernel, Mode::Supervisor, Mode::User];
    let mut i = 0;
    while totals.random_steps < RANDOM_WORDS {
        run_chunk(&mut m, &mut rng, modes[i % 3], &mut totals);
        i += 1;
    }
    println!(
        "robustness: {} random-word steps ({} steps in all, {} exceptions) in {} chunks",
        totals.random_steps, totals.all_steps, totals.exceptions, totals.chunks
    );
    assert!(totals.random_steps >= RANDOM_WORDS);
    assert!(totals.exceptions > 0);
}
