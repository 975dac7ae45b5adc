//! Binary translation of guest-kernel code (`exec=translate|adaptive`,
//! docs/translation.md): the same guest behaviour as natively, at the
//! modelled cost. Small guests are built with the in-crate assembler and
//! run both on the bare machine and under the monitor.

#![allow(clippy::panic, clippy::unwrap_used)]

use monitor::bt::Exec;
use monitor::{Monitor, MonitorConfig, MonitorExit, VmConfig, VmEnd, VmImage};
use sim::isa::asm::Asm;
use sim::isa::{Op, Reg};

use Reg as R;

mod btkit;
mod common;

use btkit::{counted_twice, native, putc_reg, seg, virtualized};

const TLBWI: u32 = 0x4200_0002;
const COUNT: u32 = 9;
const COMPARE: u32 = 11;
const STATUS: u32 = 12;
const CAUSE: u32 = 13;
const EPC: u32 = 14;

/// What each iteration of `count_loop` does with KSEG0 memory.
#[derive(Clone, Copy, PartialEq)]
enum Memory {
    None,
    /// Loads and stores a word through a base register the loop never
    /// writes.
    Fixed,
    /// The same, then moves its base to the other of two words.
    Moving,
}

/// Twice: Count, a loop of `iterations`, Count; halts with the second
/// difference (when every block is translated and chained). With
/// `memory`, each iteration also loads and stores a KSEG0 word.
fn count_loop(iterations: u32, memory: Memory) -> Asm {
    let setup = |a: &mut Asm| {
        a.li(R::S4, 0x8003_0000);
    };
    let body = |a: &mut Asm| {
        a.li(R::T0, iterations);
        a.label("loop");
        if memory != Memory::None {
            a.mem(Op::Lw, R::T3, 0, R::S4);
            a.r3(Op::Addu, R::T3, R::T3, R::T0);
            a.mem(Op::Sw, R::T3, 0, R::S4);
        }
        if memory == Memory::Moving {
            a.imm(Op::Xori, R::S4, R::S4, 4);
        }
        a.imm(Op::Addiu, R::T1, R::T1, 3);
        a.r3(Op::Xor, R::T2, R::T1, R::T0);
        a.imm(Op::Addiu, R::T0, R::T0, -1);
        a.bnez(R::T0, "loop");
        a.nop();
    };
    counted_twice(setup, body, R::S2)
}

/// Count read inside translated code advances with the guest's cycles:
/// the same difference as on the bare machine (to the half-cycle Count
/// cannot show), where the engine's 20 cycles per instruction show plainly.
#[test]
fn count_reads_in_translated_code_match_the_bare_machine() {
    let prog = count_loop(1000, Memory::None);
    let (_, native_ticks) = native(&[&prog]);
    for exec in [Exec::Translate, Exec::Adaptive] {
        let (_, ticks, _) = virtualized(&[&prog], exec);
        assert!(
            ticks.abs_diff(native_ticks) <= 1,
            "{exec:?}: {ticks} Count ticks, natively {native_ticks}"
        );
    }
    let (_, engine_ticks, _) = virtualized(&[&prog], Exec::Direct);
    assert!(engine_ticks > 5 * native_ticks, "{engine_ticks}");
}

/// The unrelinked KSEG0 compute loop of issue #17: translated, its only
/// cost beyond native is the KSEG0 address rewrite of its data accesses,
/// one per iteration when the loop moves its base register: the load and
/// the store go through the same unchanged base register, so the store
/// reuses the load's rewrite. When the loop never writes its base, the
/// rewrite made on the first iteration stays in the scratch register
/// across the back edge (the loop block's copy for that context): hoisted
/// out of the loop, it is paid once.
#[test]
fn a_kseg0_compute_loop_runs_translated_near_native_cost() {
    let fixed = count_loop(5000, Memory::Fixed);
    let (_, native_ticks) = native(&[&fixed]);
    let (_, ticks, _) = virtualized(&[&fixed], Exec::Adaptive);
    assert!(
        ticks.abs_diff(native_ticks) <= 2,
        "hoisted: {ticks} Count ticks, natively {native_ticks}"
    );
    let prog = count_loop(5000, Memory::Moving);
    let (_, native_ticks) = native(&[&prog]);
    let (_, ticks, _) = virtualized(&[&prog], Exec::Adaptive);
    let overhead = f64::from(ticks) / f64::from(native_ticks) - 1.0;
    // One rewrite (`bt_kseg`) per 13-cycle iteration, in Count ticks (half
    // cycles); the window's one 8K pair is composed once.
    let kseg = monitor::cost::COST.bt_kseg as f64 / 2.0;
    assert!(overhead > 0.0 && overhead < 0.2, "overhead {overhead}");
    let expected = 5000.0 * kseg / f64::from(native_ticks);
    assert!(
        (overhead - expected).abs() < 0.01,
        "overhead {overhead}, the rewrites alone {expected}"
    );
    let (_, engine_ticks, _) = virtualized(&[&prog], Exec::Direct);
    assert!(engine_ticks > 5 * native_ticks, "{engine_ticks}");
}

/// Kernel code that rewrites an instruction of a function it has already
/// run (so translated) sees the new instruction the next time.
#[test]
fn self_modifying_kernel_code_is_translated_again() {
    const F: u32 = 0x8000_1100;
    let mut one = Asm::new(F);
    one.imm(Op::Addiu, R::V0, R::ZERO, i64::from(b'B'));
    let new_word = one.finish().unwrap()[0];
    // Both calls from one site, with nothing known but the link (`t1`,
    // the store's base, written before the call): the second call finds
    // the callee's copy for that context, stale.
    let mut a = Asm::new(0x8000_1000);
    a.imm(Op::Addiu, R::S0, R::ZERO, 2);
    a.label("again");
    a.imm(Op::Addiu, R::T1, R::ZERO, 0);
    a.jump(Op::Jal, "f");
    a.nop();
    putc_reg(&mut a, R::V0);
    a.li(R::T0, new_word);
    a.li(R::T1, F);
    a.mem(Op::Sw, R::T0, 0, R::T1);
    a.imm(Op::Addiu, R::S0, R::S0, -1);
    a.bnez(R::S0, "again");
    a.nop();
    sim::testkit::halt(&mut a, R::ZERO);
    while a.here() < F {
        a.nop();
    }
    a.label("f");
    a.imm(Op::Addiu, R::V0, R::ZERO, i64::from(b'A'));
    a.jr(R::RA);
    a.nop();
    let (out, _) = native(&[&a]);
    assert_eq!(out, b"AB");
    for exec in [Exec::Direct, Exec::Translate, Exec::Adaptive] {
        let (vout, status, m) = virtualized(&[&a], exec);
        assert_eq!((vout.as_slice(), status), (&b"AB"[..], 0), "{exec:?}");
        if exec != Exec::Direct {
            assert!(m.vms[0].bt.stats.invalidated >= 1, "{exec:?}");
        }
    }
}

/// A 4K mapping of 0xC0000000 whose function returns `c` from page `gpa`.
fn mapped_function(gpa: u32, c: u8) -> Asm {
    let mut f = Asm::new(0x8000_0000 | gpa);
    f.imm(Op::Addiu, R::V0, R::ZERO, i64::from(c));
    f.jr(R::RA);
    f.nop();
    f
}

/// Maps VA 0xC0000000 (4K, global) to guest-physical `gpa` in TLB entry 0.
fn map_window(a: &mut Asm, gpa: u32) {
    a.mtc0(R::ZERO, 0); // Index 0
    a.mtc0(R::ZERO, 5); // PageMask 4K
    a.li(R::T0, 0xC000_0000);
    a.mtc0(R::T0, 10);
    a.li(R::T0, ((gpa >> 12) << 6) | (3 << 3) | 0b111);
    a.mtc0(R::T0, 2);
    a.imm(Op::Addiu, R::T0, R::ZERO, 1); // odd page: global, invalid
    a.mtc0(R::T0, 3);
    a.word(TLBWI);
}

/// The same virtual kernel address remapped to other code: the translated
/// block of the old page is not run for the new one.
#[test]
fn remapped_kernel_code_runs_the_new_page() {
    let mut a = Asm::new(0x8000_1000);
    for (gpa, _) in [(0x10_0000u32, 'A'), (0x10_2000, 'B')] {
        map_window(&mut a, gpa);
        a.li(R::T9, 0xC000_0000);
        a.emit(
            Op::Jalr,
            sim::isa::asm::Operands {
                rs: R::T9.number(),
                rd: R::RA.number(),
                ..Default::default()
            },
        );
        a.nop();
        putc_reg(&mut a, R::V0);
    }
    sim::testkit::halt(&mut a, R::ZERO);
    let (fa, fb) = (
        mapped_function(0x10_0000, b'A'),
        mapped_function(0x10_2000, b'B'),
    );
    let (out, _) = native(&[&a, &fa, &fb]);
    assert_eq!(out, b"AB");
    for exec in [Exec::Direct, Exec::Translate, Exec::Adaptive] {
        let (vout, _, _) = virtualized(&[&a, &fa, &fb], exec);
        assert_eq!(vout, b"AB", "{exec:?}");
    }
}

/// Vectors at 0x80000000 (refill) and 0x80000180 that halt with
/// EPC[15:0] | BD << 16 | ExcCode << 20.
fn reporting_vectors() -> [Asm; 2] {
    [0x8000_0000u32, 0x8000_0180].map(|origin| {
        let mut v = Asm::new(origin);
        v.mfc0(R::K0, EPC);
        v.imm(Op::Andi, R::K0, R::K0, 0xFFFF);
        v.mfc0(R::K1, CAUSE);
        v.shift(Op::Srl, R::T0, R::K1, 31);
        v.shift(Op::Sll, R::T0, R::T0, 16);
        v.r3(Op::Or, R::K0, R::K0, R::T0);
        v.imm(Op::Andi, R::T0, R::K1, 0x7C);
        v.shift(Op::Sll, R::T0, R::T0, 18);
        v.r3(Op::Or, R::K0, R::K0, R::T0);
        sim::testkit::halt(&mut v, R::K0);
        v
    })
}

/// An exception raised inside a translated block carries the EPC and BD
/// the hardware gives: an address error in a branch delay slot (EPC the
/// branch, BD set) and a TLB refill miss outside one.
#[test]
fn exceptions_in_translated_blocks_have_the_hardware_epc_and_bd() {
    let vectors = reporting_vectors();
    let mut slot = Asm::new(0x8000_1000);
    slot.li(R::T0, 0x8000_2001);
    slot.imm(Op::Addiu, R::T1, R::ZERO, 5);
    let branch = slot.here();
    slot.branch(Op::Beq, R::ZERO, R::ZERO, "on");
    slot.mem(Op::Lw, R::T2, 0, R::T0); // misaligned, in the delay slot
    slot.label("on");
    sim::testkit::halt(&mut slot, R::ZERO);
    let mut miss = Asm::new(0x8000_1000);
    miss.li(R::T0, 0x0040_0000);
    miss.imm(Op::Addiu, R::T1, R::ZERO, 5);
    let load = miss.here();
    miss.mem(Op::Lw, R::T2, 0, R::T0); // kuseg, no TLB entry
    sim::testkit::halt(&mut miss, R::ZERO);
    let [refill, general] = &vectors;
    for (prog, expect) in [
        (&slot, (branch & 0xFFFF) | 1 << 16 | 4 << 20),
        (&miss, (load & 0xFFFF) | 2 << 20),
    ] {
        let (_, status) = native(&[prog, refill, general]);
        assert_eq!(status, expect, "natively: {status:#x}");
        for exec in [Exec::Direct, Exec::Translate, Exec::Adaptive] {
            let (_, vstatus, _) = virtualized(&[prog, refill, general], exec);
            assert_eq!(vstatus, expect, "{exec:?}: {vstatus:#x}");
        }
    }
}

/// A timer interrupt that became pending while interrupts were off is
/// taken right after the translated MTC0 to Status that enables it: EPC is
/// the next instruction.
#[test]
fn mtc0_status_enabling_a_pending_interrupt_delivers_it_at_the_next_instruction() {
    let vectors = reporting_vectors();
    let mut a = Asm::new(0x8000_1000);
    a.mtc0(R::ZERO, STATUS);
    a.mfc0(R::T0, COUNT);
    a.imm(Op::Addiu, R::T0, R::T0, 20);
    a.mtc0(R::T0, COMPARE);
    a.li(R::T1, 200);
    a.label("spin");
    a.imm(Op::Addiu, R::T1, R::T1, -1);
    a.bnez(R::T1, "spin");
    a.nop();
    a.li(R::T2, 0x8001); // IM7 | IE
    a.mtc0(R::T2, STATUS);
    let next = a.here();
    a.nop();
    a.imm(Op::Addiu, R::A0, R::ZERO, 99);
    sim::testkit::halt(&mut a, R::A0);
    // ExcCode Int is 0.
    let expect = next & 0xFFFF;
    let [refill, general] = &vectors;
    let (_, status) = native(&[&a, refill, general]);
    assert_eq!(status, expect, "natively: {status:#x}");
    for exec in [Exec::Translate, Exec::Adaptive] {
        let (_, vstatus, _) = virtualized(&[&a, refill, general], exec);
        assert_eq!(vstatus, expect, "{exec:?}: {vstatus:#x}");
    }
}

fn kit(name: &str) -> sim::loader::Image {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../guest-kits/images")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    sim::loader::load(&bytes, 32 << 20).unwrap().0
}

/// Every guest kit and kestrel print the same under each policy as on the
/// bare machine (`cpustate` is left out: it prints Count, which includes
/// the monitor's cycles by design).
#[test]
fn every_kit_prints_the_same_under_each_policy_as_natively() {
    for name in [
        "hello.elf",
        "console.elf",
        "timer.elf",
        "rtc.elf",
        "mp.elf",
        "smp.elf",
        "kestrel.elf",
    ] {
        let img = kit(name);
        let mut m = sim::Machine::new(
            sim::MachineConfig {
                max_cycles: Some(500_000_000),
                ..sim::MachineConfig::default()
            },
            sim::dev::Board::new(1),
        );
        assert!(img.load_into(&mut m));
        assert!(matches!(m.run(), sim::Exit::Halted { .. }), "{name}");
        let out = m.take_console();
        for exec in [Exec::Direct, Exec::Translate, Exec::Adaptive] {
            let mut vm = VmConfig::new("kit", img.clone(), 32 << 20);
            vm.exec = exec;
            let mut mon = Monitor::new(MonitorConfig {
                max_cycles: Some(500_000_000),
                vms: vec![vm],
                ..MonitorConfig::default()
            })
            .unwrap();
            assert_eq!(mon.run(), MonitorExit::AllEnded, "{name} {exec:?}");
            assert!(
                matches!(mon.vms[0].end, Some(VmEnd::Halted(_))),
                "{name} {exec:?}: {:?}",
                mon.vms[0].end
            );
            assert_eq!(
                String::from_utf8_lossy(&mon.take_console(0)),
                String::from_utf8_lossy(&out),
                "{name} {exec:?}"
            );
            if exec != Exec::Direct {
                assert!(mon.vms[0].bt.stats.insns > 0, "{name} {exec:?}");
            }
        }
    }
}

/// trapkit's syscall with its guest kernel translated: one exit (the
/// user's `syscall`, reflected); the handler runs as translated blocks,
/// its MFC0/MTC0 and its `eret` inline, where direct execution took a
/// second exit for the `eret` (`trap_flows.rs`).
#[test]
fn trap_flow_syscall_with_the_handler_translated() {
    let m = common::run_trapkit_exec(Exec::Translate);
    let story = common::story(&m, "user    exit Sys", "emulate eret");
    assert_eq!(story.matches(" exit ").count(), 1, "{story}");
    insta::assert_snapshot!(story);
}

/// The first short system call (at most 40 trace lines: the handler, a
/// small system call, the return) in `lines`.
fn short_syscall(lines: &[String]) -> Option<String> {
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("user    exit Sys"))
        .find_map(|(i, _)| {
            let n = lines[i..].iter().position(|l| l.contains("emulate eret"))?;
            (n < 40).then(|| lines[i..=i + n].join("\n"))
        })
}

/// A kestrel system call once `exec=adaptive` has switched its trap
/// handler's page to translation: one exit instead of two.
#[test]
fn trap_flow_kestrel_syscall_under_adaptive() {
    let mut vm = VmConfig::new("kestrel", kit("kestrel.elf"), 32 << 20);
    vm.exec = Exec::Adaptive;
    let mut m = Monitor::new(MonitorConfig {
        vms: vec![vm],
        ..MonitorConfig::default()
    })
    .unwrap();
    while m.now() < 5_000_000 {
        assert!(m.run_quantum().is_none(), "kestrel ended early");
    }
    assert!(m.vms[0].bt.regions.translated(0xC001_0028));
    m.trace.enabled = true;
    let story = loop {
        if let Some(s) = short_syscall(&m.trace.lines()) {
            break s;
        }
        assert!(m.run_quantum().is_none(), "no short system call");
    };
    assert_eq!(story.matches(" exit ").count(), 1, "{story}");
    insta::assert_snapshot!(story);
}

/// Issue #17's unrelinked KSEG0 compute loop (`sim::workload`'s mixed
/// integer kernel, the bench's bare-metal row): the engine takes about 11
/// times its native cycles; translated, about 4.5% above native (issue
/// #17 asks for 10%): its leaf function's return is a chained jump and a
/// KSEG0 rewrite reaches the next block, so what is left is one rewrite
/// (`bt_kseg`) per iteration and the translation itself
/// (docs/translation.md says where the cycles go).
#[test]
fn the_unrelinked_kseg0_compute_loop_runs_translated_near_native() {
    let a = sim::workload::mixed_integer(0x8000_1000, 20);
    let img = VmImage {
        entry: 0xFFFF_FFFF_8000_1000,
        segments: vec![seg(&a)],
    };
    let mut m = sim::Machine::new(
        sim::MachineConfig {
            ram_bytes: 4 << 20,
            ..sim::MachineConfig::default()
        },
        sim::dev::Board::new(1),
    );
    assert!(img.load_into(&mut m));
    assert!(matches!(m.run(), sim::Exit::Halted { status: 0 }));
    let native = m.cpus[0].cycles();
    let cycles = |exec: Exec| {
        let mut vm = VmConfig::new("loop", img.clone(), 4 << 20);
        vm.exec = exec;
        let mut mon = Monitor::new(MonitorConfig {
            vms: vec![vm],
            ..MonitorConfig::default()
        })
        .unwrap();
        assert_eq!(mon.run(), MonitorExit::AllEnded);
        assert_eq!(mon.vms[0].end, Some(VmEnd::Halted(0)));
        let s = &mon.vm_stats()[0];
        if exec != Exec::Direct {
            println!("{exec:?}: {:?}", s.bt.spent);
        }
        s.guest_cycles + s.monitor_cycles
    };
    let adaptive = cycles(Exec::Adaptive);
    let direct = cycles(Exec::Direct);
    let overhead = |c: u64| c as f64 / native as f64 - 1.0;
    println!(
        "native {native}, adaptive {adaptive} ({:+.2}%), direct {direct} ({:+.2}%)",
        100.0 * overhead(adaptive),
        100.0 * overhead(direct)
    );
    assert!(overhead(adaptive) <= 0.10, "{adaptive} against {native}");
    assert!(overhead(direct) > 5.0, "{direct} against {native}");
}

/// `exec=adaptive` on a window kernel whose first page traps often (a
/// Count read, which the commpage cannot serve, in a loop) and then runs a
/// long privileged-free loop: the page switches to translation after its
/// fourth exit, and back to direct execution once the loop has run 200,000
/// instructions without a privileged one; each switch is a trace line.
#[test]
fn a_trap_heavy_page_switches_to_translation_and_back_when_quiet() {
    let mut k = Asm::new(0xC000_0000);
    // The translated boot stub's run ends here, after 2,000 quiet
    // instructions, and the page starts direct.
    k.li(R::T1, 1500);
    k.label("settle");
    k.imm(Op::Addiu, R::T1, R::T1, -1);
    k.bnez(R::T1, "settle");
    k.nop();
    k.imm(Op::Addiu, R::T1, R::ZERO, 10);
    k.label("traps");
    k.mfc0(R::T0, COUNT);
    k.imm(Op::Addiu, R::T1, R::T1, -1);
    k.bnez(R::T1, "traps");
    k.nop();
    k.li(R::T1, 100_000);
    k.label("quiet");
    k.imm(Op::Addiu, R::T1, R::T1, -1);
    k.bnez(R::T1, "quiet");
    k.nop();
    sim::testkit::halt(&mut k, R::ZERO);
    let img = sim::workload::windowed(&k).unwrap();
    let mut vm = VmConfig::new("adaptive", img, 4 << 20);
    vm.exec = Exec::Adaptive;
    let mut m = Monitor::new(MonitorConfig {
        max_cycles: Some(50_000_000),
        vms: vec![vm],
        ..MonitorConfig::default()
    })
    .unwrap();
    m.trace.enabled = true;
    assert_eq!(m.run(), MonitorExit::AllEnded);
    assert_eq!(m.vms[0].end, Some(VmEnd::Halted(0)));
    let lines = m.trace.lines();
    let switches: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| l.contains("region 0xc0000000"))
        .collect();
    assert_eq!(switches.len(), 2, "{switches:#?}");
    assert!(switches[0].ends_with("direct -> translated (4 exits in its window)"));
    assert!(switches[1].contains("translated -> direct (200000 instructions"));
    let regions = m.vms[0].bt.regions.list();
    let (_, r) = regions.iter().find(|(p, _)| *p == 0xC000_0000).unwrap();
    assert_eq!((r.translated, r.switches, r.exits), (false, 2, 4));
    let report = m.stats_report();
    assert!(
        report.contains("region 0xc0000000: direct; 2 switches"),
        "{report}"
    );
}

/// Prints register `r` to the console as eight hex digits (uses T4..T7).
fn put_hex(a: &mut Asm, r: Reg, tag: &str) {
    a.move_(R::T4, r);
    a.imm(Op::Addiu, R::T5, R::ZERO, 8);
    a.label(&format!("hex_{tag}"));
    a.shift(Op::Srl, R::T6, R::T4, 28);
    a.imm(Op::Sltiu, R::T7, R::T6, 10);
    a.imm(Op::Addiu, R::T6, R::T6, i64::from(b'0'));
    a.branch(Op::Bne, R::T7, R::ZERO, &format!("digit_{tag}"));
    a.nop();
    a.imm(Op::Addiu, R::T6, R::T6, i64::from(b'a' - b'0' - 10));
    a.label(&format!("digit_{tag}"));
    putc_reg(a, R::T6);
    a.shift(Op::Sll, R::T4, R::T4, 4);
    a.imm(Op::Addiu, R::T5, R::T5, -1);
    a.bnez(R::T5, &format!("hex_{tag}"));
    a.nop();
}

/// The KSEG0/KSEG1 RAM path of translated code (`bt/exec.rs`, `kseg_ram`,
/// which skips the general translation) against the bare machine: every
/// width of load and store, signed and unsigned, the unaligned pairs,
/// LL/SC, through both segments onto the same words, between console
/// writes (device accesses, the general path); the registers each load
/// gave and the memory afterwards are printed, and must read the same
/// under every policy as natively.
#[test]
fn kseg_data_accesses_in_translated_code_match_the_bare_machine() {
    const BUF: u32 = 0x8003_0000;
    let mut a = Asm::new(0x8000_1000);
    a.li(R::S0, BUF);
    a.li(R::S1, BUF | 0x2000_0000); // the same words through KSEG1
    a.li(R::T0, 0x8091_A2B3);
    a.mem(Op::Sw, R::T0, 0, R::S0);
    a.li(R::T0, 0xC4D5_E6F7);
    a.mem(Op::Sw, R::T0, 4, R::S1);
    a.imm(Op::Addiu, R::T0, R::ZERO, -3);
    a.mem(Op::Sb, R::T0, 9, R::S0);
    a.mem(Op::Sh, R::T0, 10, R::S1);
    let loads: [(Op, i16, Reg); 10] = [
        (Op::Lw, 0, R::S1),
        (Op::Lb, 1, R::S0),
        (Op::Lbu, 1, R::S1),
        (Op::Lh, 2, R::S0),
        (Op::Lhu, 6, R::S1),
        (Op::Lb, 9, R::S1),
        (Op::Lhu, 10, R::S0),
        (Op::Lwl, 5, R::S0),
        (Op::Lwr, 2, R::S1),
        (Op::Lw, 4, R::S0),
    ];
    for (i, (op, off, base)) in loads.into_iter().enumerate() {
        if op == Op::Lwr {
            a.li(R::S2, 0x1122_3344);
        }
        a.mem(op, R::S2, off, base);
        // A load used at once: the interlock as natively.
        a.r3(Op::Addu, R::S3, R::S3, R::S2);
        put_hex(&mut a, R::S2, &format!("l{i}"));
    }
    a.li(R::T0, 0x5566_7788);
    a.mem(Op::Swl, R::T0, 13, R::S0);
    a.mem(Op::Swr, R::T0, 18, R::S1);
    a.mem(Op::Ll, R::T1, 0, R::S1);
    a.imm(Op::Addiu, R::T1, R::T1, 1);
    a.mem(Op::Sc, R::T1, 0, R::S0);
    put_hex(&mut a, R::T1, "sc");
    a.imm(Op::Addiu, R::S4, R::ZERO, 6);
    a.label("dump");
    a.mem(Op::Lw, R::S2, 0, R::S0);
    put_hex(&mut a, R::S2, "m");
    a.imm(Op::Addiu, R::S0, R::S0, 4);
    a.imm(Op::Addiu, R::S4, R::S4, -1);
    a.bnez(R::S4, "dump");
    a.nop();
    put_hex(&mut a, R::S3, "sum");
    sim::testkit::halt(&mut a, R::ZERO);
    let (out, status) = native(&[&a]);
    assert_eq!(status, 0);
    // 10 loads, the SC flag, 6 words of memory, the sum.
    assert_eq!(out.len(), 8 * 18, "{}", String::from_utf8_lossy(&out));
    for exec in [Exec::Direct, Exec::Translate, Exec::Adaptive] {
        let (vout, vstatus, m) = virtualized(&[&a], exec);
        assert_eq!(
            (String::from_utf8_lossy(&vout), vstatus),
            (String::from_utf8_lossy(&out), 0),
            "{exec:?}"
        );
        if exec != Exec::Direct {
            assert_eq!(m.vms[0].bt.stats.fallback_fetch, 0, "{exec:?}");
        }
    }
}

/// Translated kernel code that loads through a mapped address, remaps it
/// with an inline TLBWI to another page and loads again reads the new
/// page: the translations a run remembers (`RunState::guest_phys`) are
/// dropped at a TLB write.
#[test]
fn a_data_page_remapped_inside_translated_code_is_read_anew() {
    let mut a = Asm::new(0x8000_1000);
    // Words 'A' and 'B' at the start of guest-physical 0x100000 and 0x102000.
    for (gpa, c) in [(0x10_0000u32, b'A'), (0x10_2000, b'B')] {
        a.li(R::T1, 0x8000_0000 | gpa);
        a.imm(Op::Addiu, R::T0, R::ZERO, i64::from(c));
        a.mem(Op::Sw, R::T0, 0, R::T1);
    }
    // No other access between the loads: nothing else evicts the page's
    // remembered translation.
    let regs = [R::S0, R::S1, R::S2];
    for (gpa, r) in [0x10_0000u32, 0x10_2000, 0x10_0000].into_iter().zip(regs) {
        map_window(&mut a, gpa);
        a.li(R::T9, 0xC000_0000);
        a.mem(Op::Lw, r, 0, R::T9);
    }
    for r in regs {
        putc_reg(&mut a, r);
    }
    sim::testkit::halt(&mut a, R::ZERO);
    let (out, _) = native(&[&a]);
    assert_eq!(out, b"ABA");
    for exec in [Exec::Direct, Exec::Translate, Exec::Adaptive] {
        let (vout, status, _) = virtualized(&[&a], exec);
        assert_eq!((vout.as_slice(), status), (&b"ABA"[..], 0), "{exec:?}");
    }
}

/// A user's system call whose handler runs translated is reflected by the
/// monitor's vector without an exit: it costs `bt_reflect` where direct
/// execution pays `exit` and `reflect` (docs/timing.md). trapkit's one
/// syscall comes from user code, outside a delay slot.
#[test]
fn a_users_syscall_into_a_translated_handler_is_reflected_without_an_exit() {
    use monitor::bt::Spent;
    let m = common::run_trapkit_exec(Exec::Translate);
    let s = &m.vm_stats()[0];
    let sys = s.exits[sim::cpu::ExcCode::Sys as usize];
    assert!(sys >= 1, "{s:?}");
    assert_eq!(
        s.bt.spent[Spent::Reflect as usize],
        sys * monitor::cost::COST.bt_reflect
    );
    let direct = common::run_trapkit_exec(Exec::Direct);
    assert_eq!(direct.vm_stats()[0].bt.spent[Spent::Reflect as usize], 0);
}

/// kestrel with a translation cache far smaller than its kernel: the cache
/// empties itself again and again (counted) and the guest prints the same
/// as with the whole cache, and as natively.
#[test]
fn a_guest_translating_more_than_the_cache_holds_runs_the_same() {
    let img = kit("kestrel.elf");
    let run = |capacity: Option<usize>| {
        let mut vm = VmConfig::new("kestrel", img.clone(), 32 << 20);
        vm.exec = Exec::Translate;
        let mut mon = Monitor::new(MonitorConfig {
            max_cycles: Some(500_000_000),
            vms: vec![vm],
            ..MonitorConfig::default()
        })
        .unwrap();
        if let Some(c) = capacity {
            mon.vms[0].bt.cache.capacity = c;
        }
        assert_eq!(mon.run(), MonitorExit::AllEnded);
        assert!(matches!(mon.vms[0].end, Some(VmEnd::Halted(0))));
        assert!(mon.vms[0].bt.cache.insns() <= capacity.unwrap_or(usize::MAX));
        (mon.take_console(0), mon.vms[0].bt.stats)
    };
    let (whole, whole_stats) = run(None);
    let (small, small_stats) = run(Some(256));
    assert_eq!(whole_stats.flushes, 0);
    assert!(small_stats.flushes > 10, "{small_stats:?}");
    assert!(small_stats.translated_insns > whole_stats.translated_insns);
    assert_eq!(
        String::from_utf8_lossy(&small),
        String::from_utf8_lossy(&whole)
    );
}
