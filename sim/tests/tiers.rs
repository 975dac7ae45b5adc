//! The execution tiers against each other (docs/tiers.md): the same program
//! in tier 1 (the interpreter), tier 2 (blocks) and tier 3 (compiled
//! blocks, compiled on their first or third run) must leave the same
//! registers, CP0, memory, cycle and instruction counts and console output,
//! untraced and traced, and the traced runs must record the same event log
//! (every instruction, exception, interrupt, TLB write and device access,
//! each with its cycle). Programs: the built-in workloads (integer loop on
//! one and four CPUs, a minikernel's syscalls and TLB refills, a windowed
//! kernel), random programs, faults in the middle of a block, a timer
//! interrupt, and self-modifying code.
#![allow(clippy::panic, clippy::unwrap_used)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use rand::rngs::SmallRng as StdRng;
use rand::{Rng, SeedableRng};
use sim::dev::Board;
use sim::isa::asm::Asm;
use sim::isa::{Op, Reg};
use sim::obs::Event;
use sim::workload::{self, Image};
use sim::{CompileMode, Exit, Machine, MachineConfig, Observer, Tier};

/// Collects every event as a line.
struct Log(Rc<RefCell<Vec<String>>>);

impl Observer for Log {
    fn event(&mut self, cpu: usize, cycle: u64, event: &Event) {
        self.0.borrow_mut().push(format!("{cpu} {cycle} {event:?}"));
    }
}

/// Everything a tier must agree on at the end of a run.
#[derive(Debug, PartialEq)]
struct Outcome {
    exit: Exit,
    cpus: Vec<String>,
    ram_hash: u64,
    console: Vec<u8>,
    log: Vec<String>,
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn outcome(m: &mut Machine, exit: Exit, log: Vec<String>) -> Outcome {
    let cpus = m
        .cpus
        .iter()
        .map(|c| {
            format!(
                "{:?} instret {} cycles {} state {:?} status {:#x} cause {:#x} epc {:#x} badvaddr {:#x} entryhi {:#x} count {:#x} stats {:?}",
                c.regs,
                c.instret(),
                c.cycles(),
                c.run_state(),
                c.cp0().status,
                c.cp0().cause,
                c.cp0().epc,
                c.cp0().bad_vaddr,
                c.cp0().entry_hi,
                c.count(),
                c.stats()
            )
        })
        .collect();
    Outcome {
        exit,
        cpus,
        ram_hash: fnv(&m.bus.ram()),
        console: m.take_console(),
        log,
    }
}

/// Runs the machine `make` builds in `tier`, traced or not.
fn run(
    make: &dyn Fn(MachineConfig) -> Machine,
    base: &MachineConfig,
    tier: Tier,
    traced: bool,
) -> Outcome {
    run_compiled(make, base, tier, traced, None, CompileMode::Inline).0
}

/// [`run`], with tier 3 compiling blocks after `threshold` runs, where
/// `mode` says; also the number of blocks compiled.
fn run_compiled(
    make: &dyn Fn(MachineConfig) -> Machine,
    base: &MachineConfig,
    tier: Tier,
    traced: bool,
    threshold: Option<u32>,
    mode: CompileMode,
) -> (Outcome, u64) {
    let mut m = make(MachineConfig {
        tier,
        ..base.clone()
    });
    if let Some(t) = threshold {
        m.set_compile_threshold(t);
    }
    m.set_compile_mode(mode);
    let log = Rc::new(RefCell::new(Vec::new()));
    if traced {
        m.observe(Box::new(Log(log.clone())));
    }
    let exit = m.run();
    let log = log.borrow().clone();
    let compiled = m.blocks_compiled();
    (outcome(&mut m, exit, log), compiled)
}

/// The differential check: both tiers, untraced and traced.
fn same_in_every_tier(
    what: &str,
    base: &MachineConfig,
    make: &dyn Fn(MachineConfig) -> Machine,
) -> Outcome {
    let reference = run(make, base, Tier::Interp, false);
    let blocks = run(make, base, Tier::Blocks, false);
    assert_eq!(
        reference, blocks,
        "{what}: tier 2 differs from tier 1 (untraced)"
    );
    // Tier 3 compiling every block on its first run, then on its third (so
    // that compiled and uncompiled runs of the same block mix), on the
    // CPU's thread; then on the compiler thread, the code installed
    // whenever it arrives (at once, or late); the same requests in all.
    let mut requests = None;
    for (threshold, mode) in [
        (1, CompileMode::Inline),
        (3, CompileMode::Inline),
        (1, CompileMode::Background),
        (1, CompileMode::Delayed(Duration::from_micros(300))),
    ] {
        let (compiled, n) = run_compiled(make, base, Tier::Compiled, false, Some(threshold), mode);
        assert_eq!(
            reference, compiled,
            "{what}: tier 3 (threshold {threshold}, {mode:?}) differs from tier 1"
        );
        // (A quantum shorter than a block's worst case leaves every
        // instruction to the interpreter.)
        if threshold == 1 && base.quantum >= 1000 {
            assert!(n > 0, "{what}: tier 3 compiled nothing");
        }
        if threshold == 1 {
            assert_eq!(*requests.get_or_insert(n), n, "{what}: {mode:?}");
        }
    }
    let traced1 = run(make, base, Tier::Interp, true);
    let traced2 = run(make, base, Tier::Blocks, true);
    let traced3 = run_compiled(
        make,
        base,
        Tier::Compiled,
        true,
        Some(1),
        CompileMode::Background,
    )
    .0;
    assert_eq!(
        traced2, traced3,
        "{what}: tier 3 traced differs from tier 2 traced"
    );
    assert!(!traced1.log.is_empty(), "{what}: no events recorded");
    for (i, (a, b)) in traced1.log.iter().zip(&traced2.log).enumerate() {
        assert_eq!(a, b, "{what}: event {i} differs between the tiers");
    }
    assert_eq!(
        traced1, traced2,
        "{what}: tier 2 differs from tier 1 (traced)"
    );
    let untraced = Outcome {
        log: traced1.log.clone(),
        ..reference
    };
    assert_eq!(
        untraced, traced1,
        "{what}: the traced run differs from the untraced one"
    );
    traced1
}

fn config(ncpus: usize) -> MachineConfig {
    MachineConfig {
        ncpus,
        max_cycles: Some(50_000_000),
        ..MachineConfig::default()
    }
}

fn image_machine(image: &Image) -> impl Fn(MachineConfig) -> Machine + '_ {
    move |c| {
        let n = c.ncpus;
        let mut m = Machine::new(c, Board::new(n));
        assert!(image.load_into(&mut m));
        m
    }
}

fn asm_image(a: &Asm) -> Image {
    Image {
        entry: i64::from(a.origin() as i32) as u64,
        segments: vec![(u64::from(a.origin() & 0x1FFF_FFFF), a.bytes().unwrap())],
    }
}

fn halted(o: &Outcome) {
    assert_eq!(
        o.exit,
        Exit::Halted { status: 0 },
        "console: {}",
        String::from_utf8_lossy(&o.console)
    );
}

#[test]
fn the_integer_workload_on_one_cpu() {
    let img = asm_image(&workload::mixed_integer(0x8000_1000, 20));
    halted(&same_in_every_tier(
        "mixed integer",
        &config(1),
        &image_machine(&img),
    ));
}

#[test]
fn the_integer_workload_on_four_cpus() {
    let img = asm_image(&workload::mixed_integer_smp(0x8000_1000, 10, 4));
    halted(&same_in_every_tier(
        "mixed integer smp",
        &config(4),
        &image_machine(&img),
    ));
}

#[test]
fn a_minikernel_with_syscalls_and_tlb_refills() {
    let img = workload::syscall_loop(300).unwrap();
    halted(&same_in_every_tier(
        "syscalls",
        &config(1),
        &image_machine(&img),
    ));
    let img = workload::tlb_stress(4).unwrap();
    halted(&same_in_every_tier(
        "tlb stress",
        &config(1),
        &image_machine(&img),
    ));
}

#[test]
fn a_windowed_kernel() {
    let img = workload::windowed_mixed_integer(5).unwrap();
    halted(&same_in_every_tier(
        "windowed",
        &config(1),
        &image_machine(&img),
    ));
}

/// Every CPU wires its own window and runs its loop there; tier 3 compiles
/// the window's code on each CPU.
#[test]
fn a_windowed_kernel_on_two_and_four_cpus() {
    for ncpus in [2, 4] {
        let img = workload::windowed_mixed_integer_smp(5, ncpus as u32).unwrap();
        halted(&same_in_every_tier(
            "windowed smp",
            &config(ncpus),
            &image_machine(&img),
        ));
    }
}

/// Small quanta put events inside blocks all the time: interrupts and
/// quantum ends must still land on the interpreter's cycle.
#[test]
fn quanta_that_cut_through_blocks() {
    let img = asm_image(&workload::mixed_integer_smp(0x8000_1000, 3, 2));
    for quantum in [1, 7, 50, 333] {
        let c = MachineConfig {
            quantum,
            ..config(2)
        };
        halted(&same_in_every_tier(
            &format!("quantum {quantum}"),
            &c,
            &image_machine(&img),
        ));
    }
}

/// A timer interrupt (Count = Compare, IP7) taken in the middle of a loop
/// of blocks, and a handler that counts it and returns.
#[test]
fn a_timer_interrupt_lands_on_the_same_cycle() {
    use Reg as R;
    let mut a = Asm::new(0x8000_1000);
    // Status: IE, IM7; Compare a few hundred cycles out.
    a.li(R::T0, 0x8001);
    a.mtc0(R::T0, 12);
    a.li(R::T0, 300);
    a.mtc0(R::T0, 11);
    a.imm(Op::Addiu, R::S0, R::ZERO, 0);
    a.li(R::S1, 2000);
    a.label("loop");
    a.mem(Op::Lw, R::T1, 0, R::SP);
    a.r3(Op::Addu, R::T2, R::T1, R::S1);
    a.mem(Op::Sw, R::T2, 0, R::SP);
    a.imm(Op::Addiu, R::S1, R::S1, -1);
    a.branch(Op::Bne, R::S1, R::ZERO, "loop");
    a.nop();
    a.li(R::K1, 0xB000_0010);
    a.mem(Op::Sw, R::ZERO, 0, R::K1);
    a.nop();
    let mut m_code = a;
    // The general exception vector (BEV=0): count, push Compare on, return.
    let mut v = Asm::new(0x8000_0180);
    v.imm(Op::Addiu, R::S0, R::S0, 1);
    v.mfc0(R::K0, 9);
    v.imm(Op::Addiu, R::K0, R::K0, 150);
    v.mtc0(R::K0, 11);
    v.op(Op::Eret);
    let main = asm_image(&m_code);
    let vec = v.bytes().unwrap();
    m_code.nop();
    let make = move |c: MachineConfig| {
        let mut m = image_machine(&main)(c);
        assert!(m.bus.write_bytes(0x180, &vec));
        m
    };
    let o = same_in_every_tier("timer", &config(1), &make);
    halted(&o);
    let interrupts = o.log.iter().filter(|l| l.contains("Interrupt")).count();
    assert!(interrupts > 5, "only {interrupts} interrupts");
}

/// Random straight-line and branching code over the ALU, shifts, loads,
/// stores (some misaligned: address errors in the middle of blocks),
/// multiplies and branches, with a handler that skips the faulting
/// instruction.
#[test]
fn random_programs() {
    use Reg as R;
    let regs = [R::T0, R::T1, R::T2, R::T3, R::T4, R::T5, R::ZERO, R::V0];
    for seed in 0..40u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut a = Asm::new(0x8000_1000);
        a.li(R::S0, 0x8020_0000);
        for (i, r) in regs.iter().enumerate() {
            a.li(*r, rng.gen::<u32>() ^ i as u32);
        }
        for i in 0..300 {
            let d = regs[rng.gen_range(0..regs.len())];
            let s = regs[rng.gen_range(0..regs.len())];
            let t = regs[rng.gen_range(0..regs.len())];
            match rng.gen_range(0..14) {
                0 => a.r3(Op::Addu, d, s, t),
                1 => a.r3(Op::Subu, d, s, t),
                2 => a.r3(
                    [Op::And, Op::Or, Op::Xor, Op::Nor][rng.gen_range(0..4)],
                    d,
                    s,
                    t,
                ),
                3 => a.r3([Op::Slt, Op::Sltu][rng.gen_range(0..2)], d, s, t),
                4 => a.shift(
                    [Op::Sll, Op::Srl, Op::Sra][rng.gen_range(0..3)],
                    d,
                    t,
                    rng.gen_range(0..32),
                ),
                5 => a.imm(
                    [Op::Addiu, Op::Slti, Op::Sltiu][rng.gen_range(0..3)],
                    d,
                    s,
                    rng.gen_range(-300..300),
                ),
                6 => a.imm(
                    [Op::Andi, Op::Ori, Op::Xori][rng.gen_range(0..3)],
                    d,
                    s,
                    rng.gen_range(0..0xFFFF),
                ),
                7 | 8 => {
                    let op = [Op::Lw, Op::Lh, Op::Lhu, Op::Lb, Op::Lbu, Op::Lwl, Op::Lwr]
                        [rng.gen_range(0..7)];
                    a.mem(
                        op,
                        d,
                        rng.gen_range(0..64) * 2 + i16::from(rng.gen_range(0..2u8)),
                        R::S0,
                    )
                }
                9 => {
                    let op = [Op::Sw, Op::Sh, Op::Sb, Op::Swl, Op::Swr][rng.gen_range(0..5)];
                    a.mem(
                        op,
                        t,
                        rng.gen_range(0..64) * 2 + i16::from(rng.gen_range(0..2u8)),
                        R::S0,
                    )
                }
                10 => a.rs_rt(
                    [Op::Mult, Op::Multu, Op::Div, Op::Divu][rng.gen_range(0..4)],
                    s,
                    t,
                ),
                11 => a.rd([Op::Mfhi, Op::Mflo][rng.gen_range(0..2)], d),
                12 => a.r3(Op::Add, d, s, t),
                _ => {
                    let label = format!("f{i}");
                    let op = [Op::Beq, Op::Bne, Op::Beql, Op::Bnel][rng.gen_range(0..4)];
                    a.branch(op, s, t, &label);
                    a.imm(Op::Addiu, d, s, 1);
                    a.r3(Op::Xor, t, s, d);
                    a.label(&label)
                }
            };
        }
        a.li(R::K1, 0xB000_0010);
        a.mem(Op::Sw, R::ZERO, 0, R::K1);
        a.nop();
        // Address errors and overflows: skip the instruction (or its branch).
        let mut v = Asm::new(0x8000_0180);
        v.mfc0(R::K0, 14);
        v.imm(Op::Addiu, R::K0, R::K0, 4);
        v.mtc0(R::K0, 14);
        v.op(Op::Eret);
        let main = asm_image(&a);
        let vec = v.bytes().unwrap();
        let make = move |c: MachineConfig| {
            let mut m = image_machine(&main)(c);
            assert!(m.bus.write_bytes(0x180, &vec));
            m
        };
        let o = same_in_every_tier(&format!("random program {seed}"), &config(1), &make);
        halted(&o);
    }
}

/// The patch every self-modifying-code test writes over `addiu v0, v0, 1`:
/// `addiu v0, v0, 100`, so a run that missed it ends with another count.
fn addiu_v0_100() -> u32 {
    sim::isa::asm::encode(
        Op::Addiu,
        sim::isa::asm::Operands {
            rt: Reg::V0.number(),
            rs: Reg::V0.number(),
            imm: 100,
            ..Default::default()
        },
    )
}

/// Self-modifying code: `patch` rewrites the `addiu v0, v0, 1` at label
/// "site" (already run once) into `addiu v0, v0, 100`, then runs it again.
/// Stores through the same page, another page's code, an alias (KSEG1 for
/// the KSEG0 code), and another CPU all must be seen.
fn smc_program(how: &str) -> Asm {
    use Reg as R;
    let mut a = Asm::new(0x8000_1000);
    let new_word = addiu_v0_100();
    a.imm(Op::Addiu, R::V0, R::ZERO, 0);
    a.imm(Op::Addiu, R::S1, R::ZERO, 2);
    a.label("again");
    a.jump(Op::Jal, "site");
    a.nop();
    a.imm(Op::Addiu, R::S1, R::S1, -1);
    a.li(R::T1, new_word);
    match how {
        // The store is in the same page as the code it patches.
        "same page" => {
            a.li(R::T0, 0x8000_1800);
            a.mem(Op::Sw, R::T1, 0, R::T0);
        }
        // Through KSEG1, an uncached alias of the same physical word.
        "alias" => {
            a.li(R::T0, 0xA000_1800);
            a.mem(Op::Sw, R::T1, 0, R::T0);
        }
        // From code in another page.
        "other page" => {
            a.li(R::T0, 0x8000_1800);
            a.jump(Op::Jal, "patcher");
            a.nop();
        }
        // CPU 1 patches it (started through the mp device); CPU 0 waits.
        _ => {
            a.li(R::T0, 0xB100_0000);
            a.li(R::T2, 0x8000_3000);
            a.mem(Op::Sw, R::T2, 0x30, R::T0); // startupaddr
            a.li(R::T2, 0x8000_7000);
            a.mem(Op::Sw, R::T2, 0x70, R::T0); // startupstack
            a.imm(Op::Addiu, R::T2, R::ZERO, 1);
            a.mem(Op::Sw, R::T2, 0x20, R::T0); // startupcpu
            a.li(R::T0, 0x8000_1800);
            a.label("wait");
            a.mem(Op::Lw, R::T3, 0, R::T0);
            a.branch(Op::Bne, R::T3, R::T1, "wait");
            a.nop();
        }
    }
    a.branch(Op::Bne, R::S1, R::ZERO, "again");
    a.nop();
    a.li(R::K1, 0xB000_0010);
    a.mem(Op::Sw, R::ZERO, 0, R::K1);
    a.nop();
    while a.here() < 0x8000_1800 {
        a.nop();
    }
    a.label("site");
    a.imm(Op::Addiu, R::V0, R::V0, 1);
    a.jr(R::RA);
    a.nop();
    while a.here() < 0x8000_2000 {
        a.nop();
    }
    a.label("patcher");
    a.mem(Op::Sw, R::T1, 0, R::T0);
    a.jr(R::RA);
    a.nop();
    while a.here() < 0x8000_3000 {
        a.nop();
    }
    // CPU 1: patch, then park in a loop.
    a.li(R::T0, 0x8000_1800);
    a.li(R::T1, new_word);
    a.mem(Op::Sw, R::T1, 0, R::T0);
    a.label("spin");
    a.branch(Op::Beq, R::ZERO, R::ZERO, "spin");
    a.nop();
    a
}

#[test]
fn self_modifying_code_is_seen_in_every_tier() {
    for how in ["same page", "alias", "other page", "another cpu"] {
        let img = asm_image(&smc_program(how));
        let ncpus = if how == "another cpu" { 2 } else { 1 };
        let make = image_machine(&img);
        let o = same_in_every_tier(how, &config(ncpus), &make);
        halted(&o);
        // Once 1 (the old code), then 100 (the patched code).
        for tier in [Tier::Blocks, Tier::Compiled] {
            let mut m = make(MachineConfig {
                tier,
                ..config(ncpus)
            });
            m.set_compile_threshold(1);
            m.set_compile_mode(CompileMode::Inline);
            m.run();
            assert_eq!(
                m.cpus[0].regs.get(Reg::V0),
                101,
                "{how}: the patch was not seen in {tier:?}"
            );
        }
    }
}

/// Superblocks: a block runs on through not-taken branches and follows
/// direct jumps within its page (forward, backward, a JAL and its link),
/// carries a load in a followed jump's slot to its use at the target (the
/// stall crosses the jump), takes an address error in a followed slot
/// (EPC and BD of a slot whose jump had continued the block), and the same
/// code runs again through its KSEG1 alias (blocks are per virtual page).
#[test]
fn superblocks_through_branches_and_jumps() {
    use Reg as R;
    let mut a = Asm::new(0x8000_1000);
    a.li(R::S0, 0x8020_0000);
    a.imm(Op::Addiu, R::S2, R::ZERO, 2);
    while a.here() < 0x8000_1040 {
        a.nop();
    }
    a.label("pass");
    a.imm(Op::Addiu, R::S1, R::ZERO, 40);
    a.label("top");
    a.mem(Op::Sw, R::S1, 0, R::S0);
    a.branch(Op::Beq, R::S1, R::ZERO, "never");
    a.imm(Op::Addiu, R::V0, R::V0, 1);
    a.jump(Op::J, "fwd");
    a.mem(Op::Lw, R::T0, 0, R::S0);
    a.label("back");
    a.imm(Op::Addiu, R::S1, R::S1, -1);
    a.branch(Op::Bne, R::S1, R::ZERO, "top");
    a.nop();
    // An odd address in a followed jump's slot.
    a.li(R::T1, 0x8020_0001);
    a.jump(Op::J, "after");
    a.mem(Op::Lw, R::T2, 0, R::T1);
    a.label("after");
    a.imm(Op::Addiu, R::S2, R::S2, -1);
    a.branch(Op::Beq, R::S2, R::ZERO, "done");
    a.nop();
    // Once more through KSEG1: the same physical code, another page.
    a.li(R::T3, 0xA000_1040);
    a.jr(R::T3);
    a.nop();
    a.label("done");
    a.li(R::K1, 0xB000_0010);
    a.mem(Op::Sw, R::ZERO, 0, R::K1);
    a.nop();
    a.label("never");
    a.li(R::K1, 0xB000_0010);
    a.imm(Op::Addiu, R::T0, R::ZERO, 1);
    a.mem(Op::Sw, R::T0, 0, R::K1);
    a.nop();
    a.label("fwd");
    // Reads the load in the jump's slot: a stall across the jump.
    a.r3(Op::Addu, R::V1, R::V1, R::T0);
    a.jump(Op::Jal, "sub");
    a.nop();
    a.jump(Op::J, "back");
    a.nop();
    a.label("sub");
    a.r3(Op::Xor, R::V0, R::V0, R::S1);
    a.jr(R::RA);
    a.nop();
    // Address errors: skip the instruction (or its jump).
    let mut v = Asm::new(0x8000_0180);
    v.mfc0(R::K0, 14);
    v.imm(Op::Addiu, R::K0, R::K0, 4);
    v.mtc0(R::K0, 14);
    v.op(Op::Eret);
    let main = asm_image(&a);
    let vec = v.bytes().unwrap();
    let make = move |c: MachineConfig| {
        let mut m = image_machine(&main)(c);
        assert!(m.bus.write_bytes(0x180, &vec));
        m
    };
    let o = same_in_every_tier("superblocks", &config(1), &make);
    halted(&o);
    let mut m = make(config(1));
    m.run();
    // Two passes of 40 iterations, each adding the stored counter.
    assert_eq!(m.cpus[0].regs.get(Reg::V1), 2 * (1..=40).sum::<u64>());
    assert_eq!(m.cpus[0].stats().exceptions[4], 4, "AdEL twice per pass");
}

/// Self-modifying code inside one superblock: on its second pass the block
/// falls through a branch into a store that patches an instruction further
/// on in the same block, which must run patched at once.
#[test]
fn a_store_patches_its_own_superblock() {
    use Reg as R;
    let new_word = addiu_v0_100();
    let mut a = Asm::new(0x8000_1000);
    a.li(R::T0, 0x8000_110C);
    a.li(R::T1, new_word);
    while a.here() < 0x8000_1100 {
        a.nop();
    }
    a.label("again");
    a.branch(Op::Beq, R::S1, R::ZERO, "site");
    a.nop();
    a.mem(Op::Sw, R::T1, 0, R::T0);
    assert_eq!(a.here(), 0x8000_110C);
    a.label("site");
    a.imm(Op::Addiu, R::V0, R::V0, 1);
    a.imm(Op::Addiu, R::S1, R::S1, 1);
    a.imm(Op::Slti, R::AT, R::S1, 2);
    a.branch(Op::Bne, R::AT, R::ZERO, "again");
    a.nop();
    a.li(R::K1, 0xB000_0010);
    a.mem(Op::Sw, R::ZERO, 0, R::K1);
    a.nop();
    let img = asm_image(&a);
    let make = image_machine(&img);
    let o = same_in_every_tier("a store into its own superblock", &config(1), &make);
    halted(&o);
    let mut m = make(config(1));
    m.run();
    assert_eq!(m.cpus[0].regs.get(Reg::V0), 101, "the patch was not seen");
}

#[path = "tiers/chain.rs"]
mod chain;
#[path = "tiers/install.rs"]
mod install;
