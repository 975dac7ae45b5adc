//! Device accesses under the monitor: a device page mapped through the TLB,
//! and coalesced I/O (`monitor/src/coalesce.rs`, docs/monitor.md §4).
//!
//! Each guest is a window kernel built here with the in-crate assembler:
//! a KSEG0 stub wires 0xC0000000 (1 MB pages, P 0x100000) and a 4 KB
//! uncached page at 0xC0400000 onto the console's registers (P 0x10000000),
//! then jumps to the kernel at 0xC0000000, which runs directly in
//! supervisor mode. Every guest also runs natively, and both runs must
//! print the same bytes.

#![allow(clippy::panic, clippy::unwrap_used)]

use monitor::coalesce::Policy;
use monitor::cost::Cost;
use monitor::{Monitor, MonitorConfig, MonitorExit, VmConfig, VmEnd, VmImage};
use sim::isa::asm::{Asm, Operands};
use sim::isa::{Op, Reg};

use Reg as R;

/// The console through KSEG1, and through the mapped page.
const CONS: u32 = 0xB000_0000;
const MAPPED_CONS: u32 = 0xC040_0000;

/// EntryLo for P `gpa` with cache attribute `c`, dirty, valid, global.
const fn entry_lo(gpa: u32, c: u32) -> u32 {
    ((gpa >> 12) << 6) | (c << 3) | 0b111
}

/// Writes TLB entry `index` from (PageMask, EntryHi, EntryLo0, EntryLo1).
fn wire(a: &mut Asm, index: i64, mask: u32, hi: u32, lo0: u32, lo1: u32) {
    a.imm(Op::Addiu, R::T0, R::ZERO, index);
    a.mtc0(R::T0, 0);
    a.li(R::T0, mask);
    a.mtc0(R::T0, 5);
    a.li(R::T0, hi);
    a.mtc0(R::T0, 10);
    a.li(R::T0, lo0);
    a.mtc0(R::T0, 2);
    a.li(R::T0, lo1);
    a.mtc0(R::T0, 3);
    a.word(0x4200_0002); // tlbwi
}

/// The guest around kernel `k` (origin 0xC0000000), plus extra segments.
fn window(k: &Asm, extra: Vec<(u64, Vec<u8>)>) -> VmImage {
    let mut stub = Asm::new(0x8000_1000);
    stub.imm(Op::Addiu, R::T0, R::ZERO, 2);
    stub.mtc0(R::T0, 6); // Wired = 2
    wire(
        &mut stub,
        0,
        0x001F_E000,
        0xC000_0000,
        entry_lo(0x10_0000, 3),
        entry_lo(0x20_0000, 3),
    );
    // The console's page, uncached (C=2); the odd half is invalid.
    wire(&mut stub, 1, 0, MAPPED_CONS, entry_lo(0x1000_0000, 2), 1);
    stub.li(R::T0, 0xC000_0000);
    stub.jr(R::T0);
    stub.nop();
    let mut segments = vec![
        (0x1000, stub.bytes().expect("labels resolve")),
        (0x10_0000, k.bytes().expect("labels resolve")),
    ];
    segments.extend(extra);
    VmImage {
        entry: 0xFFFF_FFFF_8000_1000,
        segments,
    }
}

/// Halts with status 0 through the halt register at `base` + 0x10.
fn halt(a: &mut Asm, base: u32) {
    a.li(R::T8, base);
    a.mem(Op::Sw, R::ZERO, 0x10, R::T8);
    a.label("spin");
    a.b("spin");
    a.nop();
}

/// The guest's console output and halt status on the bare machine.
fn native(img: &VmImage) -> Vec<u8> {
    let mut m = sim::Machine::new(sim::MachineConfig::default(), sim::dev::Board::new(1));
    assert!(img.load_into(&mut m));
    m.cpus[0].set_pc(img.entry);
    assert_eq!(m.run(), sim::Exit::Halted { status: 0 });
    m.take_console()
}

fn monitor(img: &VmImage) -> Monitor {
    monitor_with(img, Policy::Block, Cost::default())
}

fn monitor_with(img: &VmImage, policy: Policy, cost: Cost) -> Monitor {
    let mut vm = VmConfig::new("g", img.clone(), 4 << 20);
    vm.io.policy = policy;
    let mut m = Monitor::new(MonitorConfig {
        pcpus: 1,
        max_cycles: Some(20_000_000),
        // Long quanta: blocks here end for the reasons each test is about.
        quantum: 1_000_000,
        vms: vec![vm],
        cost,
        ..MonitorConfig::default()
    })
    .expect("valid config");
    m.trace.enabled = true;
    assert_eq!(m.run(), MonitorExit::AllEnded, "trace:\n{}", lines(&m));
    assert_eq!(m.vms[0].end, Some(VmEnd::Halted(0)), "{}", lines(&m));
    m
}

fn lines(m: &Monitor) -> String {
    let all: Vec<&str> = m.trace.lines.iter().map(|(_, l)| l.as_str()).collect();
    all.join("\n")
}

/// Strings for `puts`, at VA 0xC0080000 (P 0x180000, in the window).
const STRINGS: u32 = 0xC008_0000;

/// The string segment: NUL-terminated `strs`, one every 0x100 bytes.
fn strings(strs: &[&str]) -> (u64, Vec<u8>) {
    let mut data = vec![0u8; 0x100 * strs.len()];
    for (i, s) in strs.iter().enumerate() {
        data[i * 0x100..i * 0x100 + s.len()].copy_from_slice(s.as_bytes());
    }
    (0x18_0000, data)
}

/// `puts` and `putc`, at 0xC0001000 (P 0x101000).
const PUTS: u32 = 0xC000_1000;
/// `addiu a0,a0,1` in `puts`'s loop, and `putc`'s store (the trap site).
const PUTS_NEXT: u32 = PUTS + 4 * 8;
const PUTC: u32 = PUTS + 4 * 14;

/// `jal target` (same 256 MB region) and a nop.
fn jal(k: &mut Asm, target: u32) {
    k.emit(
        Op::Jal,
        Operands {
            imm: (target >> 2) & 0x03FF_FFFF,
            ..Operands::default()
        },
    );
    k.nop();
}

/// `puts(STRINGS + 0x100 * i)`.
fn call_puts(k: &mut Asm, i: u32) {
    k.li(R::A0, STRINGS + 0x100 * i);
    jal(k, PUTS);
}

/// `puts(a0)`: for each byte, `putc` (a function: the block calls it, and
/// its return leads back into the loop). Uses t0, t8, s0 (saved ra).
fn puts_segment() -> (u64, Vec<u8>) {
    let mut k = Asm::new(PUTS);
    k.move_(R::S0, R::RA);
    k.li(R::T8, CONS);
    k.label("puts_loop");
    k.mem(Op::Lb, R::T0, 0, R::A0);
    k.beqz(R::T0, "puts_done");
    k.nop();
    k.jump(Op::Jal, "putc");
    k.nop();
    assert_eq!(k.here(), PUTS_NEXT);
    k.imm(Op::Addiu, R::A0, R::A0, 1);
    k.b("puts_loop");
    k.nop();
    k.label("puts_done");
    k.move_(R::RA, R::S0);
    k.jr(R::RA);
    k.label("putc");
    assert_eq!(k.here(), PUTC);
    k.mem(Op::Sb, R::T0, 0, R::T8);
    k.jr(R::RA);
    (0x10_1000, k.bytes().unwrap())
}

/// A privileged instruction: it ends a scan (and a block) where it lies.
fn privileged(k: &mut Asm) {
    k.mfc0(R::T1, 9); // Count
}

/// A machine whose world switches are expensive (`--cost exit=1000`),
/// where a console line's block pays.
fn dear_exits() -> Cost {
    let mut c = Cost::default();
    c.set("exit", 1000).unwrap();
    c
}

/// Runs `img` natively and under each policy (with `cost`): every run
/// prints what the bare machine prints. Returns the `block` run.
fn same_output_under_every_policy(img: &VmImage, cost: Cost) -> Monitor {
    let want = native(img);
    let mut block = None;
    for p in Policy::NAMES {
        let policy = Policy::parse(p).unwrap();
        let mut m = monitor_with(img, policy, cost);
        let got = m.take_console(0);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "coalesce={p}\n{}",
            lines(&m)
        );
        if policy == Policy::Block {
            block = Some(m);
        }
    }
    block.unwrap()
}

/// The bug: a store through an ordinary TLB entry whose physical page is
/// the console's raised a bus error under the monitor (no pmap entry),
/// while natively it reaches the console. Now it reaches the VM's console.
#[test]
fn a_device_page_mapped_through_the_tlb_reaches_the_vms_device() {
    let mut k = Asm::new(0xC000_0000);
    k.li(R::T8, MAPPED_CONS);
    for c in *b"map" {
        k.imm(Op::Addiu, R::T9, R::ZERO, i64::from(c));
        k.mem(Op::Sb, R::T9, 0, R::T8);
    }
    k.li(R::T8, CONS);
    k.imm(Op::Addiu, R::T9, R::ZERO, i64::from(b'!'));
    k.mem(Op::Sb, R::T9, 0, R::T8);
    halt(&mut k, MAPPED_CONS);
    let img = window(&k, Vec::new());
    assert_eq!(native(&img), b"map!");
    let mut m = monitor(&img);
    assert_eq!(m.take_console(0), b"map!", "trace:\n{}", lines(&m));
    let trace = lines(&m);
    assert!(trace.contains("exit TLBS at 0xc000000c"), "{trace}");
    assert!(!trace.contains("reflect DBE"), "{trace}");
}

/// Classification: device accesses (KSEG1 and the mapped page) are counted
/// apart from the other address-error exits, here one KSEG0 data load.
#[test]
fn device_access_exits_are_counted_apart_from_kseg0_data_exits() {
    let mut k = Asm::new(0xC000_0000);
    k.li(R::T8, MAPPED_CONS);
    k.imm(Op::Addiu, R::T9, R::ZERO, i64::from(b'a'));
    k.mem(Op::Sb, R::T9, 0, R::T8); // composes, then traps again: 1 device exit
    k.mem(Op::Sb, R::T9, 0, R::T8); // 1 device exit
    k.li(R::T8, CONS);
    k.mem(Op::Sb, R::T9, 0, R::T8); // 1 device exit (KSEG1)
    k.li(R::T0, 0x8000_1000);
    k.mem(Op::Lw, R::T1, 0, R::T0); // KSEG0 data: 1 other address-error exit
    halt(&mut k, CONS); // 1 device exit (KSEG1)
    let img = window(&k, Vec::new());
    assert_eq!(native(&img), b"aaa");
    // Each access its own exit (the default would coalesce the first three).
    let mut m = monitor_with(&img, Policy::Off, Cost::default());
    assert_eq!(m.take_console(0), b"aaa");
    let st = &m.vm_stats()[0];
    assert_eq!(
        (st.device_exits, st.device_exits_tlb, st.kseg_exits),
        (4, 2, 1),
        "{}",
        m.stats_report()
    );
    assert!(m
        .stats_report()
        .contains("device-access exits: 4 (2 through a TLB-mapped device page); other address-error exits (KSEG0 data): 1"));
}

/// Points 2 and 4: a console line is one trap and one block. The scan
/// follows the loop, the call to `putc` and its return, and on to the halt
/// register; the block covers every byte's store and the halt, and the
/// guest resumes after it.
#[test]
fn a_console_line_is_one_trap_and_one_block() {
    let mut k = Asm::new(0xC000_0000);
    call_puts(&mut k, 0);
    halt(&mut k, CONS);
    let img = window(&k, vec![puts_segment(), strings(&["coalesced\n"])]);
    let m = same_output_under_every_policy(&img, dear_exits());
    let st = &m.vm_stats()[0];
    assert_eq!(
        (st.io.scans, st.io.blocks, st.io.block_accesses),
        (1, 1, 11),
        "{}",
        lines(&m)
    );
    assert_eq!(st.device_exits, 1, "the line's first byte");
    assert!(
        lines(&m).contains("coalesce block at 0xc0001038: 114 instructions, 11 device accesses"),
        "{}",
        lines(&m)
    );
}

/// Point 3: an access with no other within the extent is emulated alone and
/// remembered: the next trap there finds it without scanning.
#[test]
fn a_single_access_is_remembered_and_not_rescanned() {
    let mut k = Asm::new(0xC000_0000);
    k.imm(Op::Addiu, R::S1, R::ZERO, 2);
    k.label("again");
    k.li(R::T8, CONS);
    k.imm(Op::Addiu, R::T0, R::ZERO, i64::from(b's'));
    k.mem(Op::Sb, R::T0, 0, R::T8);
    k.imm(Op::Addiu, R::T1, R::ZERO, 100); // 300 instructions: past any extent
    k.label("spin100");
    k.imm(Op::Addiu, R::T1, R::T1, -1);
    k.bnez(R::T1, "spin100");
    k.nop();
    k.imm(Op::Addiu, R::S1, R::S1, -1);
    k.bnez(R::S1, "again");
    k.nop();
    halt(&mut k, CONS);
    let img = window(&k, Vec::new());
    let m = same_output_under_every_policy(&img, dear_exits());
    let st = &m.vm_stats()[0];
    assert_eq!(
        (st.io.scans, st.io.hits, st.io.blocks),
        (2, 1, 0),
        "the store twice, the halt"
    );
    assert_eq!(st.io_table, (0, 2));
}

/// Point 5: a later trap at a recorded address re-hashes the block and
/// emulates it at once. The MFC0 between the two calls ends the first
/// block (point 8: the hardware traps there).
#[test]
fn a_later_trap_rehashes_and_emulates_the_block_without_scanning() {
    let mut k = Asm::new(0xC000_0000);
    call_puts(&mut k, 0);
    privileged(&mut k);
    call_puts(&mut k, 1);
    privileged(&mut k);
    halt(&mut k, CONS);
    let img = window(&k, vec![puts_segment(), strings(&["first\n", "again\n"])]);
    let m = same_output_under_every_policy(&img, dear_exits());
    let st = &m.vm_stats()[0];
    assert_eq!(
        (st.io.scans, st.io.hits, st.io.dropped),
        (2, 1, 0),
        "{}",
        lines(&m)
    );
    assert_eq!((st.io.blocks, st.io.block_accesses), (2, 12));
}

/// Point 5, a mismatch: the guest rewrites an instruction inside the
/// recorded block (`addiu a0,a0,1` becomes `addiu a0,a0,2`) and prints
/// again: the entry is dropped, and the new code's effect is seen.
#[test]
fn self_modifying_code_inside_a_block_drops_the_entry() {
    let mut k = Asm::new(0xC000_0000);
    call_puts(&mut k, 0);
    privileged(&mut k);
    let new = sim::isa::asm::encode(
        Op::Addiu,
        Operands {
            rs: R::A0.number(),
            rt: R::A0.number(),
            imm: 2,
            ..Operands::default()
        },
    );
    k.li(R::T1, PUTS_NEXT);
    k.li(R::T2, new);
    k.mem(Op::Sw, R::T2, 0, R::T1);
    call_puts(&mut k, 0);
    privileged(&mut k);
    halt(&mut k, CONS);
    let img = window(&k, vec![puts_segment(), strings(&["abcdefgh\n"])]);
    assert_eq!(native(&img), b"abcdefgh\naceg\n");
    let m = same_output_under_every_policy(&img, dear_exits());
    let st = &m.vm_stats()[0];
    assert_eq!((st.io.dropped, st.io.scans), (1, 3), "{}", lines(&m));
    assert!(lines(&m).contains("coalesce: the block at 0xc0001038 no longer hashes the same"));
}
