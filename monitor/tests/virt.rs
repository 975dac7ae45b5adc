//! Runtime virtualization: a kernel that booted on the bare machine has
//! the monitor slid under it at a quantum boundary and taken out again,
//! and computes the same results as a plain native run
//! (docs/devirtualization.md).

#![allow(clippy::panic, clippy::unwrap_used)]

use std::path::PathBuf;

use monitor::host::{Host, HostExit, Phase, Running};
use monitor::timeline::{self, Timeline};
use sim::isa::asm::Asm;
use sim::isa::{Op, Reg};
use sim::{Machine, MachineConfig};

use Reg as R;

/// Where the checksum program leaves its result (KSEG0 0x80000800).
const RESULT: usize = 0x800;

/// A KSEG0 kernel, not relinked: it wires TLB entry 0 (virtual
/// 0x00400000-0x00401fff on physical 0x00200000) and runs `rounds` passes
/// over those 8 KB through the mapping, folding every word into a
/// checksum and writing each word back changed, then stores the checksum
/// at physical 0x800 and halts. A switch that lost a register, the wired
/// entry or a store would change the checksum.
fn checksum_kernel(rounds: u32) -> Asm {
    let mut a = sim::testkit::asm();
    a.li(R::T0, 1).mtc0(R::T0, 6); // Wired = 1
    a.mtc0(R::ZERO, 0).mtc0(R::ZERO, 5); // Index 0, PageMask 4K
    a.li(R::T0, 0x0040_0000).mtc0(R::T0, 10); // EntryHi: VPN2, ASID 0
    let lo = |pa: u32| ((pa >> 12) << 6) | (3 << 3) | 0b111;
    a.li(R::T0, lo(0x0020_0000)).mtc0(R::T0, 2);
    a.li(R::T0, lo(0x0020_1000)).mtc0(R::T0, 3);
    a.op(Op::Tlbwi);
    a.li(R::S1, 0x1234_5678);
    a.li(R::S2, rounds);
    a.label("round");
    a.li(R::S0, 0x0040_0000);
    a.li(R::T3, 0x0040_2000);
    a.label("word");
    a.mem(Op::Lw, R::T2, 0, R::S0);
    a.r3(Op::Addu, R::T2, R::T2, R::S1);
    a.shift(Op::Sll, R::T4, R::S1, 5);
    a.shift(Op::Srl, R::T5, R::S1, 27);
    a.r3(Op::Or, R::T4, R::T4, R::T5);
    a.r3(Op::Xor, R::S1, R::T4, R::T2);
    a.r3(Op::Addu, R::S1, R::S1, R::S0);
    a.mem(Op::Sw, R::T2, 0, R::S0);
    a.imm(Op::Addiu, R::S0, R::S0, 4);
    a.branch(Op::Bne, R::S0, R::T3, "word");
    a.nop();
    a.imm(Op::Addiu, R::S2, R::S2, -1);
    a.bnez(R::S2, "round");
    a.nop();
    a.li(R::T0, 0x8000_0800);
    a.mem(Op::Sw, R::S1, 0, R::T0);
    sim::testkit::halt(&mut a, R::ZERO);
    a
}

/// A machine of `ram` bytes whose mp tells the kernel it has 32 MB.
fn machine(ncpus: usize, ram: u64, a: &Asm) -> Machine {
    sim::testkit::machine_with(
        MachineConfig {
            ncpus,
            ram_bytes: ram,
            max_cycles: Some(400_000_000),
            ..MachineConfig::default()
        },
        a,
    )
}

fn timeline(specs: &[&str]) -> Timeline {
    Timeline::new(
        specs
            .iter()
            .map(|s| timeline::parse_spec(s).unwrap())
            .collect(),
    )
}

/// Runs `m` to its end under `specs`: the exit, the console output, the
/// action lines, the phases and the host.
fn run(m: Machine, specs: &[&str]) -> (HostExit, Vec<u8>, Vec<String>, Vec<Phase>, Host) {
    let mut host = Host::new(m, timeline(specs));
    let (mut out, mut lines) = (Vec::new(), Vec::new());
    let exit = loop {
        let step = host.run_quantum();
        out.append(&mut host.take_console());
        lines.append(&mut host.take_lines());
        if let Some(e) = step {
            break e;
        }
    };
    let phases = host.finish().to_vec();
    (exit, out, lines, phases, host)
}

fn result_word(host: &Host) -> u32 {
    let ram = host.machine().unwrap().bus.ram();
    u32::from_be_bytes(ram[RESULT..RESULT + 4].try_into().unwrap())
}

fn native_checksum(rounds: u32) -> u32 {
    let (exit, _, _, phases, host) = run(machine(1, 33 << 20, &checksum_kernel(rounds)), &[]);
    assert_eq!(exit, HostExit::Halted(0));
    assert_eq!(phases.len(), 1);
    result_word(&host)
}

#[test]
fn a_kseg0_kernel_virtualized_mid_run_computes_what_it_computes_natively() {
    let native = native_checksum(40);
    assert_ne!(native, 0);
    let (exit, _, lines, phases, host) = run(
        machine(1, 33 << 20, &checksum_kernel(40)),
        &["300K:virtualize"],
    );
    assert_eq!(exit, HostExit::Halted(0));
    assert_eq!(result_word(&host), native);
    assert!(matches!(host.running(), Some(Running::Virtual(_))));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("at cycle 300000: virtualize: 1 CPU(s) became VCPUs of vm0")
            && lines[0].contains("identity pmap of 32M as one range; 0 pages moved; guest paused"),
        "{}",
        lines[0]
    );
    assert_eq!(
        phases.iter().map(|p| p.virtual_).collect::<Vec<_>>(),
        [false, true]
    );
    // The KSEG0 kernel runs in the monitor's engine: no exits, all monitor.
    assert!(phases[1].instructions > 0 && phases[1].monitor_cycles > 0);
}

#[test]
fn virtualize_and_devirtualize_ten_times_in_one_run() {
    let native = native_checksum(100);
    let mut specs = Vec::new();
    for i in 0..10u64 {
        specs.push(format!("{}K:virtualize", 100 + 200 * i));
        specs.push(format!("{}K:devirtualize", 150 + 200 * i));
    }
    let specs: Vec<&str> = specs.iter().map(String::as_str).collect();
    let (exit, _, lines, phases, host) = run(machine(1, 33 << 20, &checksum_kernel(100)), &specs);
    assert_eq!(exit, HostExit::Halted(0));
    assert_eq!(result_word(&host), native);
    assert_eq!(lines.len(), 20, "{lines:#?}");
    assert!(lines.iter().all(|l| !l.contains("refused")), "{lines:#?}");
    assert_eq!(phases.len(), 21);
    for (i, p) in phases.iter().enumerate() {
        assert_eq!(p.virtual_, i % 2 == 1, "phase {i}");
        if !p.virtual_ {
            assert_eq!(p.exits, 0);
            assert_eq!(p.monitor_cycles, 0);
        }
    }
    // It ends on the bare machine with exits off.
    let Some(Running::Native(m)) = host.running() else {
        panic!("the run should end natively");
    };
    assert!(m.cpus.iter().all(|c| !c.hv_exits()));
}

#[test]
fn the_guest_pause_is_small_and_charged_from_the_cost_table() {
    let (_, _, lines, _, _) = run(
        machine(2, 64 << 20, &checksum_kernel(5)),
        &["100K:virtualize", "200K:devirtualize"],
    );
    let pause = |l: &str| -> u64 {
        let tail = l.rsplit("guest paused ").next().unwrap();
        tail.trim_end_matches(" cycles").parse().unwrap()
    };
    let c = monitor::cost::VIRT;
    let tlb = sim::cpu::TLB_ENTRIES as u64;
    let base = c.cpu_state + tlb * c.tlb_entry + c.pmap_range + c.board;
    assert_eq!(
        pause(&lines[0]),
        base + tlb * c.tlb_flush_entry,
        "{}",
        lines[0]
    );
    assert_eq!(pause(&lines[1]), base, "{}", lines[1]);
    // The target for 32 MB (docs/devirtualization.md).
    assert!(pause(&lines[0]) <= 20_000);
}

#[test]
fn switches_that_cannot_be_done_are_refused_and_the_run_continues() {
    let native = native_checksum(5);
    // All of the machine's memory is the kernel's: nowhere for commpages.
    let (exit, _, lines, phases, host) = run(
        machine(1, 32 << 20, &checksum_kernel(5)),
        &["10K:devirtualize", "20K:virtualize"],
    );
    assert_eq!(exit, HostExit::Halted(0));
    assert_eq!(result_word(&host), native);
    assert_eq!(phases.len(), 1);
    assert_eq!(
        lines,
        [
            "at cycle 10000: devirtualize refused: the kernel already runs on the bare machine; the run continues",
            "at cycle 20000: virtualize refused: the monitor needs 1 free 4K page(s) of machine memory above the kernel's 32M for its VCPUs' commpages, and the machine has 32M; give --mem more than --boot-mem; the run continues",
        ]
    );
    let (_, _, lines, _, _) = run(
        machine(1, 33 << 20, &checksum_kernel(5)),
        &["10K:virtualize", "20K:virtualize"],
    );
    assert!(
        lines[1].ends_with(
            "virtualize refused: the kernel already runs under the monitor; the run continues"
        ),
        "{}",
        lines[1]
    );
}

fn image(name: &str) -> sim::loader::Image {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../guest-kits/images")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    sim::loader::load(&bytes, 32 << 20)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .0
}

fn kit_machine(name: &str, ncpus: usize) -> Machine {
    let mut m = Machine::new(
        MachineConfig {
            ncpus,
            ram_bytes: 64 << 20,
            max_cycles: Some(400_000_000),
            ..MachineConfig::default()
        },
        sim::dev::Board::new(ncpus),
    );
    assert!(image(name).load_into(&mut m));
    m
}

/// `smp` (KSEG0, two CPUs, LL/SC on shared memory, IPIs through mp):
/// virtualized while both CPUs run, then handed back.
#[test]
fn smp_keeps_its_output_across_virtualize_and_devirtualize() {
    let (exit, native, _, _, _) = run(kit_machine("smp.elf", 2), &[]);
    assert_eq!(exit, HostExit::Halted(0));
    for specs in [
        &["200K:virtualize"][..],
        &["200K:virtualize", "3M:devirtualize"][..],
    ] {
        let (exit, out, lines, phases, _) = run(kit_machine("smp.elf", 2), specs);
        assert_eq!(exit, HostExit::Halted(0), "{specs:?}");
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&native),
            "{specs:?}"
        );
        assert_eq!(lines.len(), specs.len());
        assert_eq!(phases.len(), specs.len() + 1);
    }
}

/// A VM booted under the monitor (not at run time) on `pcpus` CPUs.
fn booted(vms: &[(&str, usize)], pcpus: usize) -> Box<monitor::Monitor> {
    let a = checksum_kernel(5);
    let image = monitor::VmImage {
        segments: vec![(0x1000, a.bytes().unwrap())],
        entry: 0xFFFF_FFFF_8000_1000,
    };
    let mut vc = Vec::new();
    for (name, vcpus) in vms {
        let mut c = monitor::VmConfig::new(name, image.clone(), 32 << 20);
        c.vcpus = *vcpus;
        vc.push(c);
    }
    Box::new(
        monitor::Monitor::new(monitor::MonitorConfig {
            pcpus,
            vms: vc,
            ..monitor::MonitorConfig::default()
        })
        .unwrap(),
    )
}

#[test]
fn devirtualizing_is_refused_when_the_cpus_cannot_be_handed_back() {
    let refused = |m: Box<monitor::Monitor>| match monitor::virt::devirtualize(m) {
        Ok(_) => panic!("devirtualized"),
        Err((_, why)) => why,
    };
    assert_eq!(
        refused(booted(&[("a", 1), ("b", 1)], 2)),
        "b is still running; the CPUs can only be handed back to the only VM"
    );
    assert_eq!(
        refused(booted(&[("a", 2)], 1)),
        "a has 2 VCPUs and the machine 1 CPUs; each VCPU needs a CPU of its own"
    );
    let mut moved = booted(&[("a", 1)], 1);
    moved.vms[0].pmap = monitor::mem::Pmap::range(16, 8192);
    assert_eq!(refused(moved), "a's pmap maps pages outside machine memory");
    // A VM booted under the monitor at machine 0 is the identity: it can
    // be handed to the bare machine too, and finishes there.
    let Ok((m, s)) = monitor::virt::devirtualize(booted(&[("a", 1)], 1)) else {
        panic!("refused");
    };
    assert_eq!((s.cpus, s.mem, s.pages_moved), (1, 32 << 20, 0));
    let mut host = Host::new(*m, Timeline::default());
    let exit = loop {
        if let Some(e) = host.run_quantum() {
            break e;
        }
    };
    assert_eq!(exit, HostExit::Halted(0));
    assert_eq!(result_word(&host), native_checksum(5));
}

/// The trap flow of both switches on `smp` (two CPUs, both running, one
/// spinning on an LL/SC counter): what the monitor captured from each CPU,
/// the identity pmap, the board that moved, and the hand-back.
#[test]
fn trap_flow_of_virtualize_and_devirtualize() {
    insta::assert_snapshot!(switch_log(
        "smp.elf",
        &["200K:virtualize", "3M:devirtualize"]
    ));
}

/// The same for kestrel, whose kernel lives in the mapped window through
/// wired TLB entries and keeps a timer: they cross both switches.
#[test]
fn trap_flow_of_kestrel_virtualized_and_devirtualized() {
    insta::assert_snapshot!(switch_log(
        "kestrel.elf",
        &["5M:virtualize", "12M:devirtualize"]
    ));
}

fn switch_log(kit: &str, specs: &[&str]) -> String {
    let mut host = Host::new(kit_machine(kit, 2), timeline(specs));
    let exit = loop {
        if let Some(e) = host.run_quantum() {
            break e;
        }
        // VCPU i stays on CPU i.
        if let Some(Running::Virtual(mon)) = host.running() {
            for (i, vc) in mon.vms[0].vcpus.iter().enumerate() {
                assert!(
                    vc.on_pcpu.is_none_or(|p| p == i),
                    "vm0.{i} on {:?}",
                    vc.on_pcpu
                );
            }
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

/// The checksum kernel's code (page 1) and data (2M) moved while it runs
/// virtualized, then moved back by devirtualization: the same result.
#[test]
fn evacuated_pages_are_remapped_to_the_identity_when_devirtualizing() {
    let native = native_checksum(40);
    // Direct: 0-4M to free machine pages above the kernel's 32M, and back.
    let (exit, _, lines, phases, host) = run(
        machine(1, 64 << 20, &checksum_kernel(40)),
        &["300K:virtualize", "400K:evacuate=0-4M", "2M:devirtualize"],
    );
    assert_eq!(exit, HostExit::Halted(0));
    assert_eq!(result_word(&host), native);
    assert!(lines[1].contains("evacuate: vm0's 0x0-0x400000 moved to other machine pages; 1024 pages moved (1024 direct, 0 indirect)"), "{}", lines[1]);
    assert!(
        lines[2].contains("devirtualize: vm0's 1 VCPU(s) handed back"),
        "{}",
        lines[2]
    );
    assert!(lines[2].contains("; 1024 pages moved;"), "{}", lines[2]);
    assert_eq!(
        phases.last().map(|p| (p.virtual_, p.exits)),
        Some((false, 0))
    );
    // While evacuated, the kernel's pages live above 32M.
    let (_, _, _, _, host) = run(
        machine(1, 64 << 20, &checksum_kernel(400)),
        &[
            "300K:virtualize",
            "400K:evacuate=0-4M",
            "500K:evacuate=4M-5M",
        ],
    );
    let Some(Running::Virtual(mon)) = host.running() else {
        panic!("still virtual");
    };
    let pmap = &mon.vms[0].pmap;
    assert!(!pmap.is_identity());
    // Machine page 8192 is the VCPU's commpage.
    assert_eq!(pmap.machine_page(0), Some(8193));
    // The second range takes the lowest free pages: those the first left.
    assert_eq!(pmap.machine_page(1024), Some(0));
    assert_eq!(pmap.machine_page(1279), Some(255));
    assert_eq!(pmap.machine_page(1280), Some(1280));
}

/// Two ranges that traded places (`evacuate=0-2M@2M`) cannot move back
/// directly: each target holds the other's page, so one of each pair
/// moves out through a free page first.
#[test]
fn ranges_that_traded_places_move_back_indirectly() {
    let native = native_checksum(40);
    let (exit, _, lines, _, host) = run(
        machine(1, 64 << 20, &checksum_kernel(40)),
        &[
            "300K:virtualize",
            "400K:evacuate=0-2M@2M",
            "2M:devirtualize",
        ],
    );
    assert_eq!(exit, HostExit::Halted(0));
    assert_eq!(result_word(&host), native);
    assert!(
        lines[1].contains("1024 pages moved (1024 direct, 0 indirect)"),
        "{}",
        lines[1]
    );
    assert!(lines[2].contains("; 1536 pages moved;"), "{}", lines[2]);
    let mut host = Host::new(
        machine(1, 64 << 20, &checksum_kernel(40)),
        timeline(&[
            "300K:virtualize",
            "400K:evacuate=0-2M@2M",
            "2M:devirtualize",
        ]),
    );
    while host.run_quantum().is_none() {}
    let log: Vec<String> = host.take_switch_log().into_iter().map(|(_, l)| l).collect();
    assert!(
        log.iter()
            .any(|l| l.contains("1536 pages moved (1024 direct, 512 indirect)")),
        "{log:#?}"
    );
    // Refusals: outside the VM, onto a commpage, not page-aligned.
    let (exit, _, lines, _, host) = run(
        machine(1, 64 << 20, &checksum_kernel(40)),
        &[
            "100K:evacuate=0-1M",
            "200K:virtualize",
            "300K:evacuate=30M-40M",
            "400K:evacuate=0-8K@32M",
            "500K:evacuate=1-4097",
        ],
    );
    assert!(
        lines[0].contains("evacuate refused: memory is remapped under a kernel the monitor runs"),
        "{}",
        lines[0]
    );
    assert_eq!(lines.len(), 5, "{lines:#?}");
    for l in &lines[2..] {
        assert!(l.contains("evacuate refused: "), "{l}");
    }
    assert_eq!(exit, HostExit::Halted(0));
    assert_eq!(result_word(&host), native);
}

/// The three ways to find a machine page's user move the same pages to the
/// same places; they differ in what the lookups cost.
#[test]
fn every_remap_index_gives_the_same_result_at_its_own_cost() {
    use monitor::remap::RemapIndex;
    let native = native_checksum(40);
    let specs = [
        "300K:virtualize",
        "400K:evacuate=0-2M@2M",
        "500K:evacuate=4M-5M",
        "2M:devirtualize",
    ];
    let mut pauses = Vec::new();
    for index in [
        RemapIndex::Backmap,
        RemapIndex::Refcount,
        RemapIndex::Search,
    ] {
        let mut host = Host::new(machine(1, 64 << 20, &checksum_kernel(40)), timeline(&specs));
        host.remap_index = index;
        let exit = loop {
            if let Some(e) = host.run_quantum() {
                break e;
            }
        };
        assert_eq!(exit, HostExit::Halted(0), "{index:?}");
        assert_eq!(result_word(&host), native, "{index:?}");
        let lines = host.take_lines();
        let log: Vec<String> = host.take_switch_log().into_iter().map(|(_, l)| l).collect();
        assert!(
            lines[1].contains("1024 pages moved (1024 direct, 0 indirect)"),
            "{index:?} {}",
            lines[1]
        );
        assert!(
            lines[2].contains("256 pages moved (256 direct, 0 indirect)"),
            "{index:?} {}",
            lines[2]
        );
        assert!(
            log.iter()
                .any(|l| l.contains("1792 pages moved (1280 direct, 512 indirect)")),
            "{index:?} {log:#?}"
        );
        let pause = |l: &str| -> u64 {
            l.rsplit("guest paused ")
                .next()
                .unwrap()
                .trim_end_matches(" cycles")
                .parse()
                .unwrap()
        };
        pauses.push((pause(&lines[1]), pause(&lines[2]), pause(&lines[3])));
    }
    eprintln!("{pauses:?}");
    let (b, r, s) = (pauses[0], pauses[1], pauses[2]);
    // Searching a pmap that is a page list costs; the counts answer "free?"
    // at once and search only for pages in use; the back map never searches.
    assert!(b.2 < r.2 && r.2 <= s.2, "{pauses:?}");
    assert!(b.1 < s.1, "{pauses:?}");
}

/// The trap flow of a devirtualization that has to remap: two ranges
/// traded places, so half of the pages move back indirectly.
#[test]
fn trap_flow_of_devirtualizing_displaced_memory() {
    let mut host = Host::new(
        machine(1, 64 << 20, &checksum_kernel(40)),
        timeline(&[
            "300K:virtualize",
            "400K:evacuate=0-2M@2M",
            "2M:devirtualize",
        ]),
    );
    while host.run_quantum().is_none() {}
    let mut story: Vec<String> = host.take_lines();
    story.extend(
        host.take_switch_log()
            .into_iter()
            .map(|(c, l)| format!("{c:>9} {l}")),
    );
    insta::assert_snapshot!(story.join("\n"));
}

/// A VM started after an evacuation lands above the evacuated pages, not
/// on them.
#[test]
fn a_vm_started_after_an_evacuation_does_not_land_on_moved_pages() {
    let kestrel =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../guest-kits/images/kestrel.elf");
    let start = format!("300K:start-vm={},mem=8M", kestrel.display());
    let mut host = Host::new(
        machine(1, 64 << 20, &checksum_kernel(40)),
        timeline(&["100K:virtualize", "200K:evacuate=0-4M", &start]),
    );
    while host.now() < 400_000 {
        assert!(host.run_quantum().is_none());
    }
    let lines = host.take_lines();
    // 0-4M went to the first free pages above vm0's 32M and its commpage.
    assert!(lines[1].contains("1024 pages moved"), "{}", lines[1]);
    assert!(
        lines[2].contains("booted into free machine memory at 0x2401000"),
        "{}",
        lines[2]
    );
}
