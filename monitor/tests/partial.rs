//! CPU before memory, and partial (de)virtualization: a kernel that
//! booted on the bare machine gets only its CPUs virtualized (its memory
//! passed through), its memory virtualized later, and ranges of it
//! devirtualized while the rest stays composed; it computes what it
//! computes natively (docs/devirtualization.md, "The state of a VM's
//! memory").

#![allow(clippy::panic, clippy::unwrap_used)]

use std::path::PathBuf;

use monitor::host::{Host, HostExit, Phase, Running};
use monitor::memstate::MemoryState;
use monitor::timeline::{self, Timeline};
use monitor::Monitor;
use sim::isa::asm::Asm;
use sim::isa::{Op, Reg};
use sim::{Machine, MachineConfig};

use Reg as R;

/// Where the kernel leaves its result (KSEG0 0x80000800) and, after it,
/// how long its last `TIMED` rounds took (Count ticks).
const RESULT: usize = 0x800;
const TIMED: u32 = 20;

/// Guest pages the kernel reaches through its wired entries: one pair
/// below 16M (physical 2M) and one above (physical 24M).
const LOW_PAGE: u64 = 0x200;
const HIGH_PAGE: u64 = 0x1800;

/// Where the kernel's loop lives: physical 1M, run at virtual 8M through
/// a wired entry, so that under the monitor it runs directly on the CPU
/// (KSEG0 code would run in the monitor's engine, which installs no real
/// TLB entries) and its data accesses go through the real TLB.
const LOOP_PA: u32 = 0x0010_0000;
const LOOP_VA: u32 = 0x0080_0000;

/// A kernel, not relinked: from KSEG0 it wires three TLB entries, virtual
/// 0x00400000 on physical 2M and 0x00600000 on physical 24M (its data,
/// 8 KB each) and 8M on its loop, and jumps to the loop, which runs
/// `rounds` passes over both data pairs through the mappings, folding
/// every word into a checksum and writing it back changed; then it stores
/// the checksum at physical 0x800, the Count ticks its last `TIMED`
/// rounds took at 0x804, and halts. A switch that lost a page, a store or
/// a mapping would change the checksum. Returns the setup and the loop.
fn two_page_kernel(rounds: u32) -> (Asm, Asm) {
    let mut a = sim::testkit::asm();
    let lo = |pa: u32| ((pa >> 12) << 6) | (3 << 3) | 0b111;
    a.li(R::T0, 3).mtc0(R::T0, 6); // Wired = 3
    a.mtc0(R::ZERO, 5); // PageMask 4K
    let wired = [
        (0u32, 0x0040_0000u32, 0x0020_0000u32),
        (1, 0x0060_0000, 0x0180_0000),
        (2, LOOP_VA, LOOP_PA),
    ];
    for (index, va, pa) in wired {
        a.li(R::T0, index).mtc0(R::T0, 0);
        a.li(R::T0, va).mtc0(R::T0, 10);
        a.li(R::T0, lo(pa)).mtc0(R::T0, 2);
        a.li(R::T0, lo(pa + 0x1000)).mtc0(R::T0, 3);
        a.op(Op::Tlbwi);
    }
    a.li(R::T0, LOOP_VA);
    a.jr(R::T0);
    a.nop();
    let mut l = Asm::new(0x8000_0000 | LOOP_PA);
    l.li(R::S1, 0x1234_5678);
    l.li(R::S2, rounds);
    l.label("round");
    l.li(R::T0, TIMED);
    l.branch(Op::Bne, R::S2, R::T0, "untimed");
    l.nop();
    l.mfc0(R::S3, 9); // Count
    l.label("untimed");
    for (n, va) in [(0, 0x0040_0000u32), (1, 0x0060_0000)] {
        let word = format!("word{n}");
        l.li(R::S0, va);
        l.li(R::T3, va + 0x2000);
        l.label(&word);
        l.mem(Op::Lw, R::T2, 0, R::S0);
        l.r3(Op::Addu, R::T2, R::T2, R::S1);
        l.shift(Op::Sll, R::T4, R::S1, 5);
        l.shift(Op::Srl, R::T5, R::S1, 27);
        l.r3(Op::Or, R::T4, R::T4, R::T5);
        l.r3(Op::Xor, R::S1, R::T4, R::T2);
        l.r3(Op::Addu, R::S1, R::S1, R::S0);
        l.mem(Op::Sw, R::T2, 0, R::S0);
        l.imm(Op::Addiu, R::S0, R::S0, 4);
        l.branch(Op::Bne, R::S0, R::T3, &word);
        l.nop();
    }
    l.imm(Op::Addiu, R::S2, R::S2, -1);
    l.bnez(R::S2, "round");
    l.nop();
    l.mfc0(R::T1, 9);
    l.r3(Op::Subu, R::T1, R::T1, R::S3);
    l.li(R::T0, 0x8000_0800);
    l.mem(Op::Sw, R::S1, 0, R::T0);
    l.mem(Op::Sw, R::T1, 4, R::T0);
    sim::testkit::halt(&mut l, R::ZERO);
    (a, l)
}

/// A 64M machine whose mp tells the kernel it has 32M.
fn machine(rounds: u32) -> Machine {
    let (setup, lp) = two_page_kernel(rounds);
    let mut m = sim::testkit::machine_with(
        MachineConfig {
            ncpus: 1,
            ram_bytes: 64 << 20,
            max_cycles: Some(400_000_000),
            ..MachineConfig::default()
        },
        &setup,
    );
    sim::testkit::place(&mut m, &lp);
    m
}

fn kit_machine(name: &str, ncpus: usize) -> Machine {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../guest-kits/images")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let image = sim::loader::load(&bytes, 32 << 20).unwrap().0;
    let mut m = Machine::new(
        MachineConfig {
            ncpus,
            ram_bytes: 64 << 20,
            max_cycles: Some(400_000_000),
            ..MachineConfig::default()
        },
        sim::dev::Board::new(ncpus),
    );
    assert!(image.load_into(&mut m));
    m
}

/// What a run left: its exit, console output, action lines, phases, and
/// the host (for the result word or the monitor).
struct Run {
    exit: HostExit,
    out: String,
    lines: Vec<String>,
    phases: Vec<Phase>,
    host: Host,
}

/// Runs `m` to its end under `specs`, calling `watch` with the monitor
/// after every quantum while the kernel is virtual.
fn run_watching(m: Machine, specs: &[&str], mut watch: impl FnMut(u64, &Monitor)) -> Run {
    let entries = specs
        .iter()
        .map(|s| timeline::parse_spec(s).unwrap())
        .collect();
    let mut host = Host::new(m, Timeline::new(entries));
    let (mut out, mut lines) = (Vec::new(), Vec::new());
    let exit = loop {
        let step = host.run_quantum();
        out.append(&mut host.take_console());
        lines.append(&mut host.take_lines());
        if let Some(Running::Virtual(mon)) = host.running() {
            watch(host.now(), mon);
        }
        if let Some(e) = step {
            break e;
        }
    };
    let phases = host.finish().to_vec();
    Run {
        exit,
        out: String::from_utf8_lossy(&out).into_owned(),
        lines,
        phases,
        host,
    }
}

fn run(m: Machine, specs: &[&str]) -> Run {
    run_watching(m, specs, |_, _| {})
}

fn word(host: &Host, at: usize) -> u32 {
    let ram = host.machine().unwrap().bus.ram();
    u32::from_be_bytes(ram[at..at + 4].try_into().unwrap())
}

fn result_word(host: &Host) -> u32 {
    word(host, RESULT)
}

fn native_result(rounds: u32) -> u32 {
    let r = run(machine(rounds), &[]);
    assert_eq!(r.exit, HostExit::Halted(0));
    result_word(&r.host)
}

/// vm0's guest-TLB installs so far: (composed, passed through).
fn installs(mon: &Monitor) -> (u64, u64) {
    let st = &mon.vm_stats()[0];
    (st.composed, st.passed_through)
}

fn memory(p: &Phase) -> Option<MemoryState> {
    p.memory
}

/// `virtualize-cpu`: the CPU is virtual, every page passed through (the
/// guest's own entries installed, nothing composed); `virtualize-memory`
/// later composes them all; `devirtualize` hands the kernel back. The
/// result is the native one and each phase says what its memory was.
#[test]
fn cpu_before_memory_computes_what_it_computes_natively() {
    let native = native_result(60);
    let mut seen = Vec::new();
    let r = run_watching(
        machine(60),
        &[
            "300K:virtualize-cpu",
            "1M:virtualize-memory",
            "2M:devirtualize",
        ],
        |now, mon| seen.push((now, installs(mon))),
    );
    assert_eq!(r.exit, HostExit::Halted(0));
    assert_eq!(result_word(&r.host), native);
    assert!(
        r.lines[0].starts_with("at cycle 300000: virtualize-cpu: 1 CPU(s) became VCPUs of vm0 (VCPU i on CPU i), memory pass-through: 32M on itself, the guest's own TLB entries installed with machine ASIDs; 0 pages moved; guest paused 652 cycles"),
        "{}",
        r.lines[0]
    );
    assert_eq!(r.lines[1], "at cycle 1000000: virtualize-memory: vm0's 32M (all of it) composed through its pmap from now on; memory virtual; 0 pages moved; guest paused 40 cycles");
    assert!(r.lines[2].contains("devirtualize: vm0's 1 VCPU(s) handed back"));
    // While pass-through nothing was composed; the wired pages' entries
    // were installed as the guest wrote them.
    let before = seen.iter().rev().find(|(t, _)| *t < 1_000_000).unwrap().1;
    assert_eq!(before.0, 0, "{before:?}");
    assert!(before.1 >= 2, "{before:?}");
    let phases: Vec<_> = r.phases.iter().map(|p| (p.virtual_, memory(p))).collect();
    assert_eq!(
        phases,
        [
            (false, None),
            (true, Some(MemoryState::PassThrough)),
            (true, Some(MemoryState::Virtual)),
            (false, None)
        ]
    );
    assert_eq!(r.phases[3].exits, 0);
    // Without the switches in between, a pass-through kernel too computes
    // the native result and composes nothing to its end.
    let r = run(machine(60), &["300K:virtualize-cpu"]);
    assert_eq!(r.exit, HostExit::Halted(0));
    assert_eq!(result_word(&r.host), native);
    let Some(Running::Virtual(mon)) = r.host.running() else {
        panic!("still virtual")
    };
    assert_eq!(installs(mon).0, 0);
    assert!(
        mon.stats_report()
            .contains("  memory: pass-through; guest TLB entries installed: 0 composed, "),
        "{}",
        mon.stats_report()
    );
}

/// Partial devirtualization: with pages below and above 16M displaced by
/// evacuations, `devirtualize-memory=0-16M` moves only the pages below
/// back to the identity and passes them through; the page above stays
/// where it was moved and composed. Repeated, then the kernel is handed
/// back: the native result. (Remapping is paused: each move of 256 pages
/// holds the CPU for about 527K cycles, hence the spacing.)
#[test]
fn devirtualizing_0_to_16m_leaves_the_pages_above_composed() {
    let native = native_result(300);
    let specs = [
        "300K:virtualize",
        "400K:evacuate=2M-3M",
        "1M:evacuate=24M-25M",
        "2M:devirtualize-memory=0-16M",
        "6M:virtualize-memory=0-16M",
        "6500K:evacuate=2M-3M",
        "8M:devirtualize-memory=0-16M",
        "10M:devirtualize",
    ];
    let mut checked = Vec::new();
    let r = run_watching(machine(300), &specs, |now, mon| {
        let pmap = &mon.vms[0].pmap;
        if (2_000_000..6_000_000).contains(&now) || (8_000_000..10_000_000).contains(&now) {
            assert_eq!(
                pmap.state(),
                MemoryState::Partial {
                    passthrough: 4096,
                    pages: 8192
                },
                "{now}"
            );
            assert_eq!(pmap.machine_page(LOW_PAGE), Some(LOW_PAGE as u32));
            assert!(pmap.passthrough.contains(LOW_PAGE as u32));
            assert_ne!(pmap.machine_page(HIGH_PAGE), Some(HIGH_PAGE as u32));
            assert!(!pmap.passthrough.contains(HIGH_PAGE as u32));
            checked.push((now, installs(mon)));
        }
    });
    assert_eq!(r.exit, HostExit::Halted(0));
    assert_eq!(result_word(&r.host), native);
    // The 24M pages took the lowest free machine pages, those 2M-3M left:
    // going home, 2M-3M finds them there and moves them out first.
    assert!(
        r.lines[3].starts_with("at cycle 2000000: devirtualize-memory: vm0's 0x0-0x1000000 remapped to the identity (256 indirect) and passed through from now on; memory partially virtual (4096 of 8192 pages pass-through); 512 pages moved;"),
        "{}",
        r.lines[3]
    );
    assert!(
        r.lines[4].contains("memory virtual; 0 pages moved"),
        "{}",
        r.lines[4]
    );
    assert!(
        r.lines[6].contains("(0 indirect)") && r.lines[6].contains("; 256 pages moved;"),
        "{}",
        r.lines[6]
    );
    assert!(
        r.lines[7].contains("devirtualize: vm0's 1 VCPU(s) handed back")
            && r.lines[7].contains("; 256 pages moved;"),
        "{}",
        r.lines[7]
    );
    // Each devirtualization emptied the real TLBs; the kernel's pairs came
    // back, the low one passed through and the high one composed again.
    let in_first: Vec<_> = checked.iter().filter(|(t, _)| *t < 6_000_000).collect();
    let (first, last) = (in_first[0].1, in_first[in_first.len() - 1].1);
    assert!(last.0 > first.0 && last.1 > first.1, "{first:?} {last:?}");
    // The ranges the memory switches cannot take are refused.
    let native = native_result(20);
    let r = run(
        machine(20),
        &[
            "100K:devirtualize-memory",
            "300K:virtualize-cpu",
            "400K:evacuate=0-4M",
            "500K:virtualize-memory=0-3",
            "600K:devirtualize-memory=16M-40M",
        ],
    );
    assert_eq!(r.exit, HostExit::Halted(0));
    assert_eq!(result_word(&r.host), native);
    assert_eq!(r.lines[0], "at cycle 100000: devirtualize-memory refused: the kernel runs on the bare machine: its memory is the machine's (virtualize-cpu first); the run continues");
    assert!(r.lines[2].contains("evacuate refused: 0x0-0x400000 holds pages passed through, not composed (memory not virtualized there): virtualize-memory first"), "{}", r.lines[2]);
    assert!(
        r.lines[3].contains(
            "virtualize-memory refused: 0x0-0x3 is not a range of whole 4K pages inside vm0's 32M"
        ),
        "{}",
        r.lines[3]
    );
    assert!(
        r.lines[4].contains("devirtualize-memory refused: 0x1000000-0x2800000 is not a range"),
        "{}",
        r.lines[4]
    );
}

/// After devirtualization the kernel runs at native speed: its last 20
/// rounds, timed with Count wholly after the hand-back, take exactly as
/// long as in a plain native run, after a round trip through `virtualize`
/// and after one through CPU before memory with pages moved and moved
/// back (exits off, the guest's TLB loaded back, nothing composed).
#[test]
fn after_devirtualization_the_last_phase_takes_its_native_time() {
    let native = run(machine(100), &[]);
    assert_eq!(native.exit, HostExit::Halted(0));
    let ticks = word(&native.host, RESULT + 4);
    assert!(ticks > 500_000, "{ticks}");
    for specs in [
        &["300K:virtualize", "1M:devirtualize"][..],
        &[
            "300K:virtualize-cpu",
            "600K:virtualize-memory",
            "700K:evacuate=2M-3M",
            "2M:devirtualize",
        ][..],
    ] {
        let r = run(machine(100), specs);
        assert_eq!(r.exit, HostExit::Halted(0));
        assert_eq!(result_word(&r.host), result_word(&native.host));
        assert!(
            !r.lines.iter().any(|l| l.contains("refused")),
            "{:?}",
            r.lines
        );
        // The timed rounds began after the hand-back.
        let last = r.phases.last().unwrap();
        assert!(!last.virtual_ && last.exits == 0);
        assert!(u64::from(ticks) * 2 < last.end - last.start, "{specs:?}");
        assert_eq!(word(&r.host, RESULT + 4), ticks, "{specs:?}");
    }
}

/// kestrel on 1 and 2 CPUs (its kernel in the mapped window, user
/// processes with their own TLB entries): CPU before memory, then a
/// partial devirtualization of displaced memory, then the hand-back. Its
/// results are those of a native run.
#[test]
fn kestrel_goes_from_pass_through_to_virtual_to_partial_and_back() {
    for cpus in [1, 2] {
        let native = run(kit_machine("kestrel.elf", cpus), &[]);
        assert_eq!(native.exit, HostExit::Halted(0));
        let mut partial_seen = false;
        let r = run_watching(
            kit_machine("kestrel.elf", cpus),
            &[
                "2M:virtualize-cpu",
                "4M:virtualize-memory",
                "5M:evacuate=0-20M",
                "7M:devirtualize-memory=0-16M",
                "12M:devirtualize",
            ],
            |now, mon| {
                if (7_000_000..12_000_000).contains(&now) {
                    let pmap = &mon.vms[0].pmap;
                    assert!(matches!(pmap.state(), MemoryState::Partial { .. }));
                    assert_ne!(pmap.machine_page(4096), Some(4096));
                    partial_seen = true;
                }
            },
        );
        assert_eq!(r.exit, HostExit::Halted(0), "{cpus}: {:?}", r.lines);
        assert!(partial_seen);
        assert!(
            !r.lines.iter().any(|l| l.contains("refused")),
            "{:?}",
            r.lines
        );
        assert_eq!(results(&r.out), results(&native.out), "{cpus} CPU(s)");
        assert_eq!(r.phases.len(), 5);
        assert_eq!(r.phases[4].exits, 0);
    }
}

/// The console lines that do not depend on timing (as in
/// tests/devirtualization.rs).
fn results(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| l.contains(": ") && !l.starts_with("  "))
        .filter(|l| !l.starts_with("smp: cpu ") && !l.starts_with("kestrel: cpu "))
        .collect()
}

fn switch_log(specs: &[&str]) -> String {
    let mut host = Host::new(
        kit_machine("kestrel.elf", 2),
        Timeline::new(
            specs
                .iter()
                .map(|s| timeline::parse_spec(s).unwrap())
                .collect(),
        ),
    );
    let exit = loop {
        if let Some(e) = host.run_quantum() {
            break e;
        }
    };
    assert_eq!(exit, HostExit::Halted(0));
    let log: Vec<String> = host
        .take_switch_log()
        .into_iter()
        .map(|(cycle, l)| format!("{cycle:>9} {l}"))
        .collect();
    log.join("\n")
}

/// What `virtualize-cpu` captured (the pmap passed through) and the
/// hand-back after `virtualize-memory`.
#[test]
fn trap_flow_of_virtualize_cpu() {
    insta::assert_snapshot!(switch_log(&[
        "5M:virtualize-cpu",
        "8M:virtualize-memory",
        "12M:devirtualize"
    ]));
}

/// A partial devirtualization of memory displaced by two ranges that
/// traded places (`evacuate=0-2M@16M`): the pages below 16M come home,
/// those above stay displaced and composed.
#[test]
fn trap_flow_of_a_partial_devirtualize() {
    insta::assert_snapshot!(switch_log(&[
        "5M:virtualize",
        "6M:evacuate=0-2M@16M",
        "8M:devirtualize-memory=0-16M",
        "12M:devirtualize"
    ]));
}
