//! Trap flows under the monitor, snapshotted as the story of each trap.
//!
//! The guest is `trapkit`, a kernel of a few dozen instructions built here
//! with the in-crate assembler, so each flow is exact; its assembly is in
//! `common/mod.rs`. Memory (guest-physical, 4 MB VM):
//!
//! | gpa        | VA           | what                                        |
//! |------------|--------------|---------------------------------------------|
//! | 0x000000   | 0x80000000   | KSEG0 vectors: trampolines into the window  |
//! | 0x001000   | 0x80001000   | KSEG0 boot stub: wires the window, jumps    |
//! | 0x100000   | 0xC0000000   | the kernel, in the mapped window (1 MB pages)|
//! | 0x280000   | 0x00400000   | the user program (ASID 1)                   |
//! | 0x282000   | 0x00402000   | a user data page                            |
//! | 0x300000   | 0xC0800000   | the linear page table (Context.PTEBase)     |
//!
//! Format of the lines: docs/trace-format.md.

#![allow(clippy::panic, clippy::unwrap_used)]

mod common;

#[test]
fn trapkit_runs_to_its_halt() {
    let mut m = common::run_trapkit();
    // 'K' at boot, 'S' for the first syscall, 'T' for the timer interrupt;
    // the FPU instruction and the halting syscall print nothing.
    assert_eq!(m.take_console(0), b"KST");
}

#[test]
fn trap_flow_boot_through_the_emulated_kseg0_stub() {
    let m = common::run_trapkit();
    insta::assert_snapshot!(common::story(
        &m,
        "switch to trapkit.0",
        "compose V 0xc0000000"
    ));
}

#[test]
fn trap_flow_syscall_from_a_user_process() {
    let m = common::run_trapkit();
    insta::assert_snapshot!(common::story(&m, "user    exit Sys", "emulate eret"));
}

/// The first user TLB miss runs the guest's refill handler for the first
/// time: each MFC0/MTC0 in it traps once and is rewritten into a commpage
/// load or store, so only TLBWR and ERET still trap afterwards.
#[test]
fn trap_flow_first_tlb_miss_patches_the_guest_refill_handler() {
    let m = common::run_trapkit();
    insta::assert_snapshot!(common::story(&m, "user    exit TLBL", "emulate eret"));
}

/// A later miss: the refill handler reads Context and writes EntryLo0/1
/// through the commpage without trapping; TLBWR (composed V->P->M) and ERET
/// are emulated.
#[test]
fn trap_flow_user_tlb_miss_through_the_guest_refill_handler() {
    let m = common::run_trapkit();
    insta::assert_snapshot!(common::story(&m, "BadVAddr 0x00402000", "emulate eret"));
}

#[test]
fn trap_flow_same_miss_again_hits_the_l2tlb() {
    let m = common::run_trapkit();
    insta::assert_snapshot!(common::story(
        &m,
        "every real TLB flushed",
        "L2TLB hit for V 0x00402000"
    ));
}

#[test]
fn trap_flow_timer_interrupt_delivered_to_the_guest() {
    let m = common::run_trapkit();
    insta::assert_snapshot!(common::story(&m, "deliver interrupt", "emulate eret"));
}

#[test]
fn trap_flow_guest_console_write_through_kseg1() {
    let m = common::run_trapkit();
    insta::assert_snapshot!(common::story(
        &m,
        "BadVAddr 0xb0000000",
        "virtual device write"
    ));
}

#[test]
fn trap_flow_fpu_instruction_reflected_as_coprocessor_unusable() {
    let m = common::run_trapkit();
    insta::assert_snapshot!(common::story(&m, "user    exit CpU", "emulate eret"));
}
