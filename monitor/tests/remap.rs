//! Remapping a running VM's memory (docs/devirtualization.md): the live
//! memmap, and `--remap paused|concurrent` under a program that writes
//! and checks patterns across its memory from every CPU while its pages
//! move.

#![allow(clippy::panic, clippy::unwrap_used)]

use monitor::host::{Host, HostExit, Running};
use monitor::remap::{RemapIndex, RemapMode};
use monitor::timeline::{self, Timeline};
use sim::dev::{Board, BoardConfig};
use sim::isa::asm::Asm;
use sim::isa::{Op, Reg};
use sim::{Machine, MachineConfig};

use Reg as R;

/// The hammered guest-physical range: 6M-12M.
const LO: u32 = 6 << 20;
const HI: u32 = 12 << 20;
/// Where each CPU leaves its count of wrong words (word per CPU), and the
/// count of CPUs done.
const ERRORS: u32 = 0x800;
const DONE: u32 = 0x900;

/// A KSEG0 kernel on every CPU of the machine: each CPU wires TLB entry 0
/// (virtual 0-32M on physical 0-32M, two 16M pages) and runs the hammer
/// at its virtual address (so under the monitor it runs directly, in
/// supervisor mode, its stores going through composed real TLB entries).
/// For `rounds` rounds, CPU c reads word c of every page of 6M-12M,
/// counts it wrong unless it holds what c wrote there the round before,
/// and writes `round << 16 ^ page ^ c << 28`. CPU 0 starts the others,
/// waits for every CPU to finish and halts with the total of wrong words:
/// a store lost by a move shows as a wrong word, a halt status above 0.
fn hammer(rounds: u32) -> Asm {
    // Built twice: the first build finds where `work` lands.
    let work = hammer_at(rounds, 0x1000, 0).1;
    hammer_at(rounds, work & 0x1FFF_FFFF, 0).0
}

/// [`hammer`] staying in KSEG0, so that under the monitor its every
/// instruction, stores included, runs in the emulation engine.
fn hammer_in_kseg0(rounds: u32) -> Asm {
    let work = hammer_at(rounds, 0x8000_1000, 0x8000_0000).1;
    hammer_at(rounds, work, 0x8000_0000).0
}

/// [`hammer`], jumping to `work`, with its data at `base` + physical;
/// also returns `work`'s address.
fn hammer_at(rounds: u32, work: u32, base: u32) -> (Asm, u32) {
    let mut a = sim::testkit::asm();
    let lo = |pa: u32| ((pa >> 12) << 6) | (3 << 3) | 0b111;
    a.label("setup");
    a.li(R::T0, 1).mtc0(R::T0, 6); // Wired = 1
    a.mtc0(R::ZERO, 0); // Index 0
    a.li(R::T0, 0x01FF_E000).mtc0(R::T0, 5); // PageMask 16M
    a.mtc0(R::ZERO, 10); // EntryHi: VPN2 0, ASID 0
    a.li(R::T0, lo(0)).mtc0(R::T0, 2);
    a.li(R::T0, lo(16 << 20)).mtc0(R::T0, 3);
    a.op(Op::Tlbwi);
    a.li(R::T1, 0xB100_0000); // mp
    a.mem(Op::Lw, R::S7, 0, R::T1); // whoami
    a.mem(Op::Lw, R::S6, 0x10, R::T1); // ncpus
    a.bnez(R::S7, "go");
    a.nop();
    // CPU 0 starts the others at `setup`.
    a.li(R::T0, 0x8000_1000).mem(Op::Sw, R::T0, 0x30, R::T1);
    a.li(R::T2, 1);
    a.label("start");
    a.branch(Op::Beq, R::T2, R::S6, "go");
    a.nop();
    a.li(R::T0, 0x8010_0000).mem(Op::Sw, R::T0, 0x70, R::T1);
    a.mem(Op::Sw, R::T2, 0x20, R::T1);
    a.imm(Op::Addiu, R::T2, R::T2, 1);
    a.b("start");
    a.nop();
    // Into the mapped window: the hammer's virtual address is its physical one.
    a.label("go");
    a.li(R::T0, work);
    a.jr(R::T0);
    a.nop();
    let work = a.here();
    a.shift(Op::Sll, R::S3, R::S7, 28);
    a.shift(Op::Sll, R::S4, R::S7, 2);
    a.li(R::S1, 1); // round
    a.li(R::S2, rounds + 1);
    a.li(R::S5, 0); // wrong words
    a.label("round");
    a.li(R::S0, base | LO);
    a.li(R::T3, base | HI);
    a.label("page");
    a.r3(Op::Addu, R::T0, R::S0, R::S4);
    a.shift(Op::Srl, R::T6, R::S0, 12);
    a.shift(Op::Sll, R::T5, R::S1, 16);
    a.r3(Op::Xor, R::T5, R::T5, R::T6);
    a.r3(Op::Xor, R::T5, R::T5, R::S3); // this round's word
    a.mem(Op::Lw, R::T2, 0, R::T0);
    a.li(R::T7, 1);
    a.branch(Op::Beq, R::S1, R::T7, "write"); // nothing written yet
    a.imm(Op::Addiu, R::T4, R::S1, -1);
    a.shift(Op::Sll, R::T4, R::T4, 16);
    a.r3(Op::Xor, R::T4, R::T4, R::T6);
    a.r3(Op::Xor, R::T4, R::T4, R::S3); // last round's word
    a.branch(Op::Beq, R::T2, R::T4, "write");
    a.nop();
    a.imm(Op::Addiu, R::S5, R::S5, 1);
    a.label("write");
    a.mem(Op::Sw, R::T5, 0, R::T0);
    a.li(R::T7, 0x1000);
    a.r3(Op::Addu, R::S0, R::S0, R::T7);
    a.branch(Op::Bne, R::S0, R::T3, "page");
    a.nop();
    a.imm(Op::Addiu, R::S1, R::S1, 1);
    a.branch(Op::Bne, R::S1, R::S2, "round");
    a.nop();
    // Report, then count this CPU done (LL/SC: CPUs finish together).
    a.li(R::T0, base | ERRORS).r3(Op::Addu, R::T0, R::T0, R::S4);
    a.mem(Op::Sw, R::S5, 0, R::T0);
    a.li(R::T1, base | DONE);
    a.label("inc");
    a.mem(Op::Ll, R::T2, 0, R::T1);
    a.imm(Op::Addiu, R::T2, R::T2, 1);
    a.mem(Op::Sc, R::T2, 0, R::T1);
    a.beqz(R::T2, "inc");
    a.nop();
    a.bnez(R::S7, "idle");
    a.nop();
    a.label("all");
    a.mem(Op::Lw, R::T2, 0, R::T1);
    a.branch(Op::Bne, R::T2, R::S6, "all");
    a.nop();
    a.li(R::S5, 0).li(R::T2, 0).li(R::T0, base | ERRORS);
    a.label("sum");
    a.mem(Op::Lw, R::T4, 0, R::T0);
    a.r3(Op::Addu, R::S5, R::S5, R::T4);
    a.imm(Op::Addiu, R::T0, R::T0, 4);
    a.imm(Op::Addiu, R::T2, R::T2, 1);
    a.branch(Op::Bne, R::T2, R::S6, "sum");
    a.nop();
    sim::testkit::halt(&mut a, R::S5);
    a.label("idle");
    a.b("idle");
    a.nop();
    (a, work)
}

/// A 48M machine whose mp tells the kernel it has 32M (room for the
/// monitor's commpages and for evacuated pages).
fn machine(ncpus: usize, a: &Asm) -> Machine {
    let mut m = Machine::new(
        MachineConfig {
            ncpus,
            ram_bytes: 48 << 20,
            max_cycles: Some(200_000_000),
            ..MachineConfig::default()
        },
        Board::with_config(BoardConfig {
            ncpus,
            ram_bytes: 32 << 20,
            disk: None,
            disk_irq_latency: None,
            seed: 0,
            epoch: 0,
        }),
    );
    sim::testkit::place(&mut m, a);
    m.cpus[0].boot(0xFFFF_FFFF_8000_1000, 0xFFFF_FFFF_8010_0000);
    m
}

fn timeline(specs: &[&str]) -> Timeline {
    Timeline::new(
        specs
            .iter()
            .map(|s| timeline::parse_spec(s).unwrap())
            .collect(),
    )
}

struct Ran {
    exit: HostExit,
    lines: Vec<String>,
    /// The hammered range as the guest left it.
    memory: Vec<u8>,
    native_at_end: bool,
}

fn run(m: Machine, specs: &[&str], mode: RemapMode, index: RemapIndex) -> Ran {
    let mut host = Host::new(m, timeline(specs));
    host.remap_mode = mode;
    host.remap_index = index;
    let mut lines = Vec::new();
    let exit = loop {
        let step = host.run_quantum();
        lines.append(&mut host.take_lines());
        if let Running::Virtual(mon) = host.running().unwrap() {
            monitor::remap::check_memmap(mon).unwrap();
        }
        if let Some(e) = step {
            break e;
        }
    };
    let ram = host.machine().unwrap().bus.ram();
    Ran {
        exit,
        lines,
        memory: ram[LO as usize..HI as usize].to_vec(),
        native_at_end: matches!(host.running(), Some(Running::Native(_))),
    }
}

/// The number in `line` just before `what`.
fn number_before(line: &str, what: &str) -> u64 {
    let head = &line[..line.find(what).unwrap_or_else(|| panic!("{what}: {line}"))];
    head.trim_end()
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

const SCENARIO: [&str; 3] = [
    "300K:virtualize",
    "1M:evacuate=8M-10M",
    "1500K:devirtualize",
];

/// The hammer on 1 and 2 CPUs while 8M-10M of it is evacuated and then
/// remapped to the identity on devirtualize, finding pages' users through
/// `index`: no word is lost, paused or concurrent; both leave the same
/// memory as a native run; concurrently, the largest pause stays under
/// 50,000 cycles (with `search` too: a batch takes no further page once
/// its lookups cost one full search) and, on 2 CPUs, stores really did wait for copies.
fn the_hammer_loses_nothing_while_its_pages_move(index: RemapIndex) {
    // Long enough to outlast both remappings (search's are slow).
    let rounds = if index == RemapIndex::Search { 64 } else { 40 };
    for cpus in [1, 2] {
        let native = run(
            machine(cpus, &hammer(rounds)),
            &[],
            RemapMode::Paused,
            index,
        );
        assert_eq!(native.exit, HostExit::Halted(0));
        for mode in [RemapMode::Paused, RemapMode::Concurrent] {
            let what = format!("{cpus} CPU(s), {mode:?}, {index:?}");
            let r = run(machine(cpus, &hammer(rounds)), &SCENARIO, mode, index);
            assert_eq!(r.exit, HostExit::Halted(0), "{what}: {:?}", r.lines);
            assert!(r.native_at_end, "{what}: {:?}", r.lines);
            assert!(r.memory == native.memory, "{what}: memory differs");
            assert_eq!(r.lines.len(), 3, "{what}: {:?}", r.lines);
            assert!(
                r.lines[1].contains("512 pages moved (512 direct, 0 indirect)"),
                "{what}: {}",
                r.lines[1]
            );
            assert!(
                r.lines[2].contains(" 512 pages moved"),
                "{what}: {}",
                r.lines[2]
            );
            if mode == RemapMode::Concurrent {
                for line in &r.lines[1..] {
                    let pause = number_before(line, " cycles");
                    let waits = number_before(line, " stores waited");
                    assert!(pause <= 50_000, "{what}: {line}");
                    if cpus == 2 {
                        assert!(waits > 0, "{what}: {line}");
                    }
                }
            }
        }
    }
}

#[test]
fn the_hammer_loses_nothing_with_the_back_map() {
    the_hammer_loses_nothing_while_its_pages_move(RemapIndex::Backmap);
}

#[test]
fn the_hammer_loses_nothing_with_reference_counts() {
    the_hammer_loses_nothing_while_its_pages_move(RemapIndex::Refcount);
}

#[test]
fn the_hammer_loses_nothing_with_pmap_search() {
    the_hammer_loses_nothing_while_its_pages_move(RemapIndex::Search);
}

/// The hammer in KSEG0, where the monitor's engine performs its stores:
/// a store to a page being copied stops the engine and waits too, and
/// nothing is lost.
#[test]
fn stores_the_engine_emulates_wait_for_the_copy_too() {
    let native = run(
        machine(2, &hammer_in_kseg0(20)),
        &[],
        RemapMode::Paused,
        RemapIndex::Backmap,
    );
    assert_eq!(native.exit, HostExit::Halted(0));
    let r = run(
        machine(2, &hammer_in_kseg0(20)),
        &SCENARIO,
        RemapMode::Concurrent,
        RemapIndex::Backmap,
    );
    assert_eq!(r.exit, HostExit::Halted(0), "{:?}", r.lines);
    assert!(r.native_at_end, "{:?}", r.lines);
    assert!(r.memory == native.memory, "memory differs");
    for line in &r.lines[1..] {
        assert!(number_before(line, " stores waited") > 0, "{line}");
    }
}

/// A small KSEG0 program: `rounds` passes of stores over 8K at physical
/// 2M, then a halt with status 0.
fn stores(rounds: u32) -> monitor::VmImage {
    let mut a = sim::testkit::asm();
    a.li(R::S2, rounds);
    a.label("round");
    a.li(R::S0, 0x8020_0000);
    a.li(R::T3, 0x8020_2000);
    a.label("word");
    a.mem(Op::Sw, R::S2, 0, R::S0);
    a.imm(Op::Addiu, R::S0, R::S0, 4);
    a.branch(Op::Bne, R::S0, R::T3, "word");
    a.nop();
    a.imm(Op::Addiu, R::S2, R::S2, -1);
    a.bnez(R::S2, "round");
    a.nop();
    sim::testkit::halt(&mut a, R::ZERO);
    monitor::VmImage {
        segments: vec![(0x1000, a.bytes().unwrap())],
        entry: 0xFFFF_FFFF_8000_1000,
    }
}

/// A VM that ended gives its memory back to the free list: a VM started
/// later lands on it, and the memmap agrees with the pmaps throughout.
#[test]
fn a_vm_that_ended_gives_its_memory_back() {
    let vm = |name: &str, rounds, mem| monitor::VmConfig::new(name, stores(rounds), mem);
    let mut mon = monitor::Monitor::new(monitor::MonitorConfig {
        pcpus: 1,
        vms: vec![vm("a", 100_000, 32 << 20), vm("b", 1, 8 << 20)],
        machine_mem: Some(48 << 20),
        ..monitor::MonitorConfig::default()
    })
    .unwrap();
    let b_base = mon.vms[1]
        .pmap
        .translate(monitor::mem::GuestPhys(0))
        .unwrap()
        .0;
    assert_eq!(b_base, 32 << 20);
    let free = mon.memmap.free_pages();
    while mon.vms[1].running() {
        assert!(mon.run_quantum().is_none());
        monitor::remap::check_memmap(&mon).unwrap();
    }
    // b's 2,048 pages and its commpage are free again.
    assert_eq!(mon.memmap.free_pages(), free + 2049);
    let (c, base) = monitor::virt::start_vm(&mut mon, &vm("c", 1, 4 << 20)).unwrap();
    assert_eq!((c, base), (2, b_base));
    monitor::remap::check_memmap(&mon).unwrap();
    while mon.vms[2].running() {
        assert!(mon.run_quantum().is_none());
    }
    assert!(mon.vms[0].running());
    monitor::remap::check_memmap(&mon).unwrap();
}
