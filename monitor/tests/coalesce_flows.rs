//! Coalesced I/O where the guest's path and the recorded block part ways:
//! a remapped page, a branch out, an interrupt mid-block; the cost rule;
//! `second` and `ring`; and the trap flow of a coalesced console line.
//! Guests and memory map: `iokit/mod.rs` and `coalesce.rs`.

#![allow(clippy::panic, clippy::unwrap_used)]

mod iokit;

use iokit::*;
use monitor::coalesce::Policy;
use monitor::cost::Cost;
use sim::isa::asm::{Asm, Operands};
use sim::isa::{Op, Reg as R};

/// A page of hooks at VA 0xC0600000, mapped by TLB entry 2 (4 KB pages).
const HOOK: u32 = 0xC060_0000;

/// `jalr rs` and a nop.
fn jalr(k: &mut Asm, rs: R) {
    k.emit(
        Op::Jalr,
        Operands {
            rs: rs.number(),
            rd: 31,
            ..Operands::default()
        },
    );
    k.nop();
}

/// A hook at P `gpa` that prints `c`.
fn hook(gpa: u64, c: u8) -> (u64, Vec<u8>) {
    let mut h = Asm::new(HOOK);
    h.li(R::T9, CONS);
    h.imm(Op::Addiu, R::T1, R::ZERO, i64::from(c));
    h.mem(Op::Sb, R::T1, 0, R::T9);
    h.jr(R::RA);
    (gpa, h.bytes().unwrap())
}

/// Maps the hook page (VA 0xC0600000) to P `gpa`.
fn map_hook(k: &mut Asm, gpa: u32) {
    wire(k, 2, 0, HOOK, entry_lo(gpa, 3), 1);
}

/// The guest remaps a page the block covers: each byte's store (in the
/// window, the trap site) is followed by a call to a hook in the remapped
/// page. After the remap the words no longer hash the same: the entry is
/// dropped and the new hook's output is seen.
#[test]
fn a_block_whose_page_the_guest_remaps_is_dropped() {
    let mut k = Asm::new(0xC000_0000);
    map_hook(&mut k, 0x30_0000);
    k.move_(R::S1, R::ZERO);
    // Two passes through one call site (one calling context).
    k.label("pass");
    k.li(R::A0, 0xC008_0000);
    k.jump(Op::Jal, "ploop");
    k.nop();
    k.bnez(R::S1, "passed");
    k.nop();
    map_hook(&mut k, 0x30_1000);
    k.imm(Op::Addiu, R::S1, R::S1, 1);
    k.b("pass");
    k.nop();
    k.label("passed");
    halt(&mut k, CONS);
    k.label("ploop");
    k.move_(R::S0, R::RA);
    k.li(R::T8, CONS);
    k.li(R::S2, HOOK);
    k.label("loop");
    k.mem(Op::Lb, R::T0, 0, R::A0);
    k.beqz(R::T0, "done");
    k.nop();
    k.mem(Op::Sb, R::T0, 0, R::T8);
    jalr(&mut k, R::S2);
    k.imm(Op::Addiu, R::A0, R::A0, 1);
    k.b("loop");
    k.nop();
    k.label("done");
    k.move_(R::RA, R::S0);
    k.jr(R::RA);
    let img = window(
        &k,
        vec![
            hook(0x30_0000, b'.'),
            hook(0x30_1000, b'*'),
            strings(&["remap"]),
        ],
    );
    assert_eq!(native(&img), b"r.e.m.a.p.r*e*m*a*p*");
    let m = same_output_under_every_policy(&img, dear_exits());
    let st = &m.vm_stats()[0];
    assert_eq!(st.io.dropped, 1, "{}", lines(&m));
}

/// `puts` that sends a `!` to code the first block never ran: it prints
/// it twice, far from the loop.
fn bang_puts(k: &mut Asm) {
    k.label("bputs");
    k.li(R::T8, CONS);
    k.label("bloop");
    k.mem(Op::Lb, R::T0, 0, R::A0);
    k.beqz(R::T0, "bdone");
    k.nop();
    k.imm(Op::Addiu, R::T1, R::T0, -i64::from(b'!'));
    k.beqz(R::T1, "bang");
    k.nop();
    k.mem(Op::Sb, R::T0, 0, R::T8);
    k.label("bnext");
    k.imm(Op::Addiu, R::A0, R::A0, 1);
    k.b("bloop");
    k.nop();
    k.label("bdone");
    k.jr(R::RA);
    for _ in 0..32 {
        k.nop();
    }
    k.label("bang");
    k.mem(Op::Sb, R::T0, 0, R::T8);
    k.mem(Op::Sb, R::T0, 0, R::T8);
    k.b("bnext");
    k.nop();
}

/// A branch out of the block: the second line takes a path the first did
/// not (a `!`), the block ends where the guest leaves its words, and the
/// output is the bare machine's.
#[test]
fn a_branch_out_of_the_block_ends_it() {
    let mut k = Asm::new(0xC000_0000);
    // Two lines through one call site (one calling context).
    k.li(R::S1, 0xC008_0000);
    k.label("line");
    k.move_(R::A0, R::S1);
    k.jump(Op::Jal, "bputs");
    k.nop();
    privileged(&mut k);
    k.imm(Op::Addiu, R::S1, R::S1, 0x100);
    k.li(R::T1, 0xC008_0200);
    k.branch(Op::Bne, R::S1, R::T1, "line");
    k.nop();
    halt(&mut k, CONS);
    bang_puts(&mut k);
    let img = window(&k, vec![strings(&["abcdef\n", "ab!cdef\n"])]);
    assert_eq!(native(&img), b"abcdef\nab!!cdef\n");
    let m = same_output_under_every_policy(&img, dear_exits());
    let trace = lines(&m);
    assert!(
        trace.contains("2 device accesses [write 1 at P 0x10000000 <- 0x00000061, write 1 at P 0x10000000 <- 0x00000062], resume at 0xc00000f8 (ended early: the guest left the block)"),
        "{trace}"
    );
}

/// A timer interrupt that becomes pending mid-block ends the block there,
/// and the guest takes it next: its handler's `T` lands inside the line,
/// where it lands natively at most a block's length later.
#[test]
fn an_interrupt_arriving_mid_block_ends_it() {
    let mut vec = Asm::new(0x8000_0180);
    vec.li(R::K0, CONS);
    vec.imm(Op::Addiu, R::K1, R::ZERO, i64::from(b'T'));
    vec.mem(Op::Sb, R::K1, 0, R::K0);
    vec.mtc0(R::ZERO, 11); // Compare: acknowledges IP7
    vec.word(0x4200_0018); // eret
    let mut k = Asm::new(0xC000_0000);
    call_puts(&mut k, 0); // records the block
    privileged(&mut k);
    k.mfc0(R::T1, 9);
    k.imm(Op::Addiu, R::T1, R::T1, 3000);
    k.mtc0(R::T1, 11); // the timer in 6000 cycles
    k.li(R::T1, 0x8001); // IM7, IE
    k.mtc0(R::T1, 12);
    call_puts(&mut k, 0);
    privileged(&mut k);
    // Natively the line takes less than 6000 cycles: the interrupt
    // arrives here, after it.
    k.li(R::T1, 5000);
    k.label("idle");
    k.imm(Op::Addiu, R::T1, R::T1, -1);
    k.bnez(R::T1, "idle");
    k.nop();
    halt(&mut k, CONS);
    let line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\n";
    let img = window(
        &k,
        vec![
            puts_segment(),
            strings(&[line]),
            (0x180, vec.bytes().unwrap()),
        ],
    );
    let without_t = |b: &[u8]| -> (String, usize) {
        let s = String::from_utf8_lossy(b).to_string();
        (s.replace('T', ""), s.matches('T').count())
    };
    let want = without_t(&native(&img));
    assert_eq!(want, (format!("{line}{line}"), 1));
    for p in Policy::NAMES {
        let mut m = monitor_with(&img, Policy::parse(p).unwrap(), dear_exits());
        assert_eq!(without_t(&m.take_console(0)), want, "coalesce={p}");
        if p == "block" {
            let trace = lines(&m);
            let cut = trace
                .find("(ended early: an interrupt is pending)")
                .unwrap_or_else(|| panic!("{trace}"));
            let next = trace[cut..].lines().nth(1).unwrap();
            assert!(next.contains("deliver interrupt"), "{trace}");
        }
    }
}

/// Point 6, the cost rule: with the real cost table a console line's block
/// (ten instructions per byte, each 20 cycles in the engine, against a
/// 32-cycle exit) is declined and recorded as a single access; where exits
/// cost 1000 cycles it is taken, with at least 5x fewer device exits.
#[test]
fn a_block_that_does_not_pay_is_declined() {
    let mut k = Asm::new(0xC000_0000);
    for _ in 0..4 {
        call_puts(&mut k, 0);
        privileged(&mut k);
    }
    halt(&mut k, CONS);
    let img = window(&k, vec![puts_segment(), strings(&["cost rule\n"])]);
    let cheap = same_output_under_every_policy(&img, Cost::default());
    let st = &cheap.vm_stats()[0];
    assert_eq!((st.io.declined, st.io.blocks), (1, 0), "{}", lines(&cheap));
    assert_eq!(st.device_exits, 41);
    assert!(
        lines(&cheap).contains("a block with 10 accesses declined (it would cost"),
        "{}",
        lines(&cheap)
    );
    let dear = same_output_under_every_policy(&img, dear_exits());
    let st = &dear.vm_stats()[0];
    assert_eq!((st.io.declined, st.io.blocks), (0, 4));
    assert!(st.device_exits * 5 <= 41, "{}", st.device_exits);
}

/// `second`: the first trap at an address runs alone and records the
/// block; from the second on, the block runs.
#[test]
fn second_emulates_the_block_from_the_second_trap() {
    let mut k = Asm::new(0xC000_0000);
    call_puts(&mut k, 0);
    privileged(&mut k);
    halt(&mut k, CONS);
    let img = window(&k, vec![puts_segment(), strings(&["second!\n"])]);
    let m = monitor_with(&img, Policy::Second, dear_exits());
    let st = &m.vm_stats()[0];
    assert_eq!((st.io.scans, st.io.blocks, st.io.block_accesses), (2, 1, 7));
    assert_eq!(st.device_exits, 3, "the first byte, the second, the halt");
}

/// `ring`: every console byte still traps, but is queued; the device model
/// runs once per delivery (here at the MFC0's exit and at the halt).
#[test]
fn ring_queues_console_writes_and_delivers_them_at_the_next_exit() {
    let mut k = Asm::new(0xC000_0000);
    call_puts(&mut k, 0);
    privileged(&mut k);
    halt(&mut k, CONS);
    let img = window(&k, vec![puts_segment(), strings(&["ringing\n"])]);
    let mut m = monitor_with(&img, Policy::Ring, Cost::default());
    assert_eq!(m.take_console(0), b"ringing\n");
    let st = &m.vm_stats()[0];
    assert_eq!((st.io.ring_queued, st.io.ring_flushes), (8, 1));
    assert_eq!((st.device_exits, st.vdev_accesses), (9, 2));
    let off = monitor_with(&img, Policy::Off, Cost::default());
    let saved = off.vm_stats()[0].monitor_cycles - st.monitor_cycles;
    let c = Cost::default();
    assert_eq!(saved, 8 * (c.vdev - c.ring) - c.vdev);
}

/// The trap flow of a coalesced console line: one trap, one scan, one
/// block event listing the accesses it covered, and the guest resumes
/// after the block.
#[test]
fn trap_flow_a_coalesced_console_line() {
    let mut k = Asm::new(0xC000_0000);
    call_puts(&mut k, 0);
    privileged(&mut k);
    halt(&mut k, CONS);
    let img = window(&k, vec![puts_segment(), strings(&["hi, disco\n"])]);
    let m = monitor_with(&img, Policy::Block, dear_exits());
    insta::assert_snapshot!(story(&m, "exit AdES", "guest   exit CpU"));
}

/// An exception inside a block ends it there: the second line's loop
/// loads a word through a misaligned pointer, which raises AdEL on the
/// load after the first byte's store; the guest's handler skips the load.
#[test]
fn an_exception_inside_a_block_ends_it() {
    let mut vec = Asm::new(0x8000_0180);
    vec.mfc0(R::K0, 14);
    vec.imm(Op::Addiu, R::K0, R::K0, 4);
    vec.mtc0(R::K0, 14);
    vec.word(0x4200_0018); // eret
    let mut k = Asm::new(0xC000_0000);
    k.li(R::A1, 0xC008_0800); // aligned on the first pass
    k.move_(R::S1, R::ZERO);
    k.label("pass");
    k.li(R::A0, 0xC008_0000);
    k.li(R::T8, CONS);
    k.label("loop");
    k.mem(Op::Lb, R::T0, 0, R::A0);
    k.beqz(R::T0, "done");
    k.nop();
    k.mem(Op::Sb, R::T0, 0, R::T8);
    k.mem(Op::Lw, R::T2, 0, R::A1);
    k.imm(Op::Addiu, R::A0, R::A0, 1);
    k.b("loop");
    k.nop();
    k.label("done");
    privileged(&mut k);
    k.li(R::A1, 0xC008_0802); // misaligned on the second
    k.imm(Op::Addiu, R::S1, R::S1, 1);
    k.imm(Op::Slti, R::T1, R::S1, 2);
    k.bnez(R::T1, "pass");
    k.nop();
    halt(&mut k, CONS);
    let img = window(
        &k,
        vec![strings(&["fault\n"]), (0x180, vec.bytes().unwrap())],
    );
    assert_eq!(native(&img), b"fault\nfault\n");
    let m = same_output_under_every_policy(&img, dear_exits());
    let trace = lines(&m);
    let cut = trace
        .find("(ended early: an exception was delivered)")
        .unwrap_or_else(|| panic!("{trace}"));
    assert!(
        trace[..cut].contains("coalesce block at 0xc0000028: 2 instructions, 1 device accesses"),
        "{trace}"
    );
}

/// `ring` delivers at the end of the VCPU's turn too: a guest that prints
/// and then spins in the engine (KSEG0), never exiting or touching another
/// device, still shows its output after its quantum.
#[test]
fn ring_delivers_at_the_end_of_the_turn() {
    let mut a = Asm::new(0x8000_1000);
    a.li(R::T8, CONS);
    for c in *b"rung" {
        a.imm(Op::Addiu, R::T0, R::ZERO, i64::from(c));
        a.mem(Op::Sb, R::T0, 0, R::T8);
    }
    a.label("spin");
    a.b("spin");
    a.nop();
    let img = monitor::VmImage {
        entry: 0xFFFF_FFFF_8000_1000,
        segments: vec![(0x1000, a.bytes().unwrap())],
    };
    let mut vm = monitor::VmConfig::new("g", img, 4 << 20);
    vm.io.policy = Policy::Ring;
    vm.exec = monitor::bt::Exec::Direct;
    let mut m = monitor::Monitor::new(monitor::MonitorConfig {
        pcpus: 1,
        vms: vec![vm],
        ..monitor::MonitorConfig::default()
    })
    .unwrap();
    assert!(m.run_quantum().is_none());
    assert_eq!(m.take_console(0), b"rung");
    assert_eq!(m.vm_stats()[0].io.ring_flushes, 1);
}
