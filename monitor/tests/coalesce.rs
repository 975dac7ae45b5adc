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

mod iokit;

use iokit::*;
use monitor::coalesce::Policy;
use monitor::cost::Cost;
use sim::isa::asm::{Asm, Operands};
use sim::isa::{Op, Reg as R};

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
    // The mapped page is one more kind of device trap to coalesce: where
    // exits are dear, the second trap there (the first composed the real
    // entry) starts a block that covers the other stores, mapped or
    // through KSEG1, and the halt.
    let mut m = monitor_with(&img, Policy::Block, dear_exits());
    assert_eq!(m.take_console(0), b"map!");
    let trace = lines(&m);
    let st = &m.vm_stats()[0];
    assert_eq!((st.io.blocks, st.io.block_accesses), (1, 5), "{trace}");
    assert!(
        trace.contains("coalesce block at 0xc000000c: 12 instructions, 5 device accesses [write 1 at P 0x10000000 <- 0x0000006d, write 1 at P 0x10000000 <- 0x00000061"),
        "{trace}"
    );
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
