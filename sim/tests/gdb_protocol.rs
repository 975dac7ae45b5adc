//! The stub over a real TCP socket on 127.0.0.1, driven packet by packet:
//! breakpoints in delay slots, watchpoints, stepping, threads, Ctrl-C,
//! and a client that sends garbage or vanishes mid-command. The guest is
//! built with the in-crate assembler, so no tools are needed:
//!
//! ```text
//! 0x80010000  addiu t0,zero,0
//!             addiu t1,zero,3
//! loop:       addiu t1,t1,-1
//!             bne   t1,zero,loop
//!             addiu t0,t0,1        # delay slot: runs 3 times
//!             lui   t2,0x8002
//!             sw    t0,0(t2)       # counter = 3
//!             lui   t8,0xb000
//!             sw    zero,16(t8)    # halt 0
//! spin:       b spin
//!             nop
//! ```

#![allow(clippy::panic, clippy::unwrap_used)]

mod gdb_common;

use gdb_common::*;
use sim::dev::Board;
use sim::gdb::End;
use sim::isa::asm::Asm;
use sim::isa::{Op, Reg};
use sim::{Exit, Machine, MachineConfig};

const ORIGIN: u32 = 0x8001_0000;
/// The delay slot of the loop's branch.
const DELAY_SLOT: u32 = ORIGIN + 16;
const COUNTER: u32 = 0x8002_0000;

fn program(spin_first: bool) -> Vec<u8> {
    let mut a = Asm::new(ORIGIN);
    if spin_first {
        a.label("forever");
        a.b("forever");
        a.nop();
    }
    a.imm(Op::Addiu, Reg::T0, Reg::ZERO, 0);
    a.imm(Op::Addiu, Reg::T1, Reg::ZERO, 3);
    a.label("loop");
    a.imm(Op::Addiu, Reg::T1, Reg::T1, -1);
    a.branch(Op::Bne, Reg::T1, Reg::ZERO, "loop");
    a.imm(Op::Addiu, Reg::T0, Reg::T0, 1);
    a.imm(Op::Lui, Reg::T2, Reg::ZERO, 0x8002);
    a.mem(Op::Sw, Reg::T0, 0, Reg::T2);
    a.imm(Op::Lui, Reg::T8, Reg::ZERO, 0xB000);
    a.mem(Op::Sw, Reg::ZERO, 16, Reg::T8);
    a.label("spin");
    a.b("spin");
    a.nop();
    a.bytes().unwrap()
}

fn make(ncpus: usize, spin_first: bool) -> Machine {
    let mut m = Machine::new(
        MachineConfig {
            ncpus,
            ..MachineConfig::default()
        },
        Board::new(ncpus),
    );
    assert!(m.bus.write_bytes(0x1_0000, &program(spin_first)));
    m.cpus[0].boot(0xFFFF_FFFF_8001_0000, 0xFFFF_FFFF_8010_0000);
    m
}

fn reg(c: &mut Client, n: usize) -> u64 {
    u64::from_str_radix(&c.ask(&format!("p{n:x}")), 16).unwrap()
}

#[test]
fn breakpoint_in_a_delay_slot_watchpoint_step_and_unchanged_time() {
    let mut alone = make(1, false);
    assert_eq!(alone.run(), Exit::Halted { status: 0 });
    let (port, done) = serve(|| make(1, false));
    let mut c = Client::connect(port);
    assert_eq!(c.ask("?"), "T05thread:1;");
    assert_eq!(c.ask(&format!("Z0,{DELAY_SLOT:x},4")), "OK");
    // The delay slot is reached three times, with t0 = 0, 1, 2.
    for t0 in 0..3 {
        assert_eq!(c.ask("c"), "T05thread:1;");
        assert_eq!(
            reg(&mut c, 37),
            0xFFFF_FFFF_0000_0000 | u64::from(DELAY_SLOT)
        );
        assert_eq!(reg(&mut c, 8), t0);
    }
    assert_eq!(c.ask(&format!("z0,{DELAY_SLOT:x},4")), "OK");
    // A write watchpoint stops after the store.
    assert_eq!(c.ask(&format!("Z2,{COUNTER:x},4")), "OK");
    assert_eq!(c.ask("c"), format!("T05watch:{COUNTER:x};thread:1;"));
    assert_eq!(c.ask(&format!("m{COUNTER:x},4")), "00000003");
    assert_eq!(c.ask(&format!("z2,{COUNTER:x},4")), "OK");
    // One instruction: `lui t8,0xb000`.
    let pc = reg(&mut c, 37);
    assert_eq!(c.ask("s"), "T05thread:1;");
    assert_eq!(reg(&mut c, 37), pc + 4);
    assert_eq!(reg(&mut c, 24), 0xFFFF_FFFF_B000_0000);
    assert_eq!(c.ask("c"), "W00");
    let served = done.recv().unwrap();
    assert_eq!(served.end, End::Exited(0));
    // Stopping five times changed nothing simulated.
    assert_eq!(
        (served.cycles, served.instret),
        (alone.cpus[0].cycles(), alone.cpus[0].instret())
    );
}

#[test]
fn memory_writes_and_register_writes() {
    let (port, done) = serve(|| make(1, false));
    let mut c = Client::connect(port);
    // Patch `addiu t1,zero,3` to `addiu t1,zero,1` through M (RAM, decoded
    // code dropped), and set t5 through P.
    assert_eq!(c.ask(&format!("m{:x},4", ORIGIN + 4)), "24090003");
    assert_eq!(c.ask(&format!("M{:x},4:24090001", ORIGIN + 4)), "OK");
    assert_eq!(c.ask("Pd=0000000000001234"), "OK");
    assert_eq!(reg(&mut c, 13), 0x1234);
    assert_eq!(c.ask(&format!("Z2,{COUNTER:x},4")), "OK");
    assert_eq!(c.ask("c"), format!("T05watch:{COUNTER:x};thread:1;"));
    assert_eq!(c.ask(&format!("m{COUNTER:x},4")), "00000001");
    // Device registers and unmapped addresses are errors, never accesses.
    assert_eq!(c.ask("mb0000000,4"), "E03");
    assert_eq!(c.ask("Mb0000010,4:00000001"), "E03");
    assert_eq!(c.ask("m00001000,4"), "E03");
    assert_eq!(c.ask("D"), "OK");
    let served = done.recv().unwrap();
    assert_eq!(served.end, End::Detached);
    assert_eq!(served.exit, Some(Exit::Halted { status: 0 }));
}

#[test]
fn threads_are_cpus() {
    let (port, done) = serve(|| make(2, false));
    let mut c = Client::connect(port);
    assert_eq!(c.ask("qfThreadInfo"), "m1,2");
    assert_eq!(c.ask("qsThreadInfo"), "l");
    assert_eq!(c.ask("T2"), "OK");
    assert_eq!(c.ask("T3"), "E01");
    let name = c.ask("qThreadExtraInfo,2");
    let name: Vec<u8> = (0..name.len() / 2)
        .map(|i| u8::from_str_radix(&name[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    assert_eq!(name, b"CPU 1 (parked)");
    assert_eq!(c.ask("Hg2"), "OK");
    assert_eq!(reg(&mut c, 37), 0, "CPU 1 has not started");
    // Stepping a parked CPU stops at once instead of hanging.
    assert_eq!(c.ask("vCont;s:2;c"), "T05thread:2;");
    assert_eq!(c.ask("Hg1"), "OK");
    assert_eq!(reg(&mut c, 37), 0xFFFF_FFFF_8001_0000);
    assert_eq!(c.ask("vCont;s:1"), "T05thread:1;");
    assert_eq!(reg(&mut c, 37), 0xFFFF_FFFF_8001_0004);
    let xml = c.ask("qXfer:features:read:target.xml:0,3fff");
    assert!(xml.starts_with("l<?xml"), "{xml}");
    assert!(xml.contains("org.gnu.gdb.mips.cp0") && xml.contains("org.gnu.gdb.mips.fpu"));
    assert_eq!(
        c.raw(&packet("k")),
        "+",
        "kill is acknowledged, not answered"
    );
    assert_eq!(done.recv().unwrap().end, End::Killed);
}

#[test]
fn ctrl_c_stops_a_spinning_guest() {
    let (port, done) = serve(|| make(1, true));
    let mut c = Client::connect(port);
    use std::io::Write;
    c.s.write_all(&packet("c")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    c.s.write_all(&[0x03]).unwrap();
    let r = c.read_reply();
    assert!(
        r.ends_with(&format!(
            "T02thread:1;#{:02x}",
            "T02thread:1;".bytes().fold(0u8, |a, b| a.wrapping_add(b))
        )),
        "{r}"
    );
    // Stopped in the spin loop, which has not moved on.
    let pc = reg(&mut c, 37);
    assert!(
        pc == 0xFFFF_FFFF_8001_0000 || pc == 0xFFFF_FFFF_8001_0004,
        "{pc:#x}"
    );
    c.s.write_all(&packet("k")).unwrap();
    assert_eq!(done.recv().unwrap().end, End::Killed);
}

#[test]
fn garbage_gets_naks_and_errors_never_a_panic() {
    let (port, done) = serve(|| make(1, false));
    let mut c = Client::connect(port);
    assert_eq!(c.raw(b"$g#00"), "-", "bad checksum");
    assert_eq!(c.raw(b"$g#zz"), "-", "checksum not hex");
    assert_eq!(c.raw(&packet("Xyzzy")), "+$#00", "unknown command");
    assert_eq!(c.ask("mzz,qq"), "E01");
    assert_eq!(c.ask("m80010000"), "E01");
    assert_eq!(c.ask("m80010000,ffffffffffffffffff"), "E01");
    assert_eq!(c.ask("m80010000,100000"), "E02", "too long for a reply");
    assert_eq!(c.ask("M80010000,4:zz"), "E01");
    assert_eq!(c.ask("M80010000,4:00"), "E01", "length mismatch");
    assert_eq!(c.ask("p999"), "E01");
    assert_eq!(c.ask("P25"), "E01");
    assert_eq!(c.ask("Pzz=00"), "E01");
    assert_eq!(c.ask("G123"), "E01");
    assert_eq!(c.ask("Hgzz"), "E01");
    assert_eq!(c.ask("Hx1"), "E01");
    assert_eq!(c.ask("Z9,0,0"), "");
    assert_eq!(c.ask("Z2,80020000,0"), "E02");
    assert_eq!(c.ask("Z0,zz,4"), "E01");
    assert_eq!(c.ask("Zx"), "E01");
    assert_eq!(c.ask("vCont;x"), "E01");
    assert_eq!(c.ask("vCont;s:99"), "E01");
    assert_eq!(c.ask("qXfer:features:read:other.xml:0,10"), "E00");
    assert_eq!(c.ask("qXfer:features:read:target.xml:zz"), "E01");
    assert_eq!(c.ask("cqq"), "E01");
    assert_eq!(c.ask(""), "");
    let mut big = vec![b'$'];
    big.extend(std::iter::repeat_n(b'a', 40_000));
    assert_eq!(c.raw(&big), "-", "oversized");
    // Still answering after all that.
    assert_eq!(c.ask("?"), "T05thread:1;");
    // Half a command, then the client vanishes: the machine runs on.
    use std::io::Write;
    c.s.write_all(b"$m800100").unwrap();
    drop(c);
    let served = done.recv().unwrap();
    assert_eq!(served.end, End::Disconnected);
    assert_eq!(served.exit, Some(Exit::Halted { status: 0 }));
}
