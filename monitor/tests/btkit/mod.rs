//! Small guests for the translation tests: built with the in-crate
//! assembler, run on the bare machine and under the monitor.

#![allow(dead_code, clippy::panic, clippy::unwrap_used)]

use monitor::bt::Exec;
use monitor::{Monitor, MonitorConfig, MonitorExit, VmConfig, VmEnd, VmImage};
use sim::isa::asm::Asm;
use sim::isa::{Op, Reg};

use Reg as R;

pub(crate) fn seg(a: &Asm) -> (u64, Vec<u8>) {
    (
        u64::from(a.origin() & 0x1FFF_FFFF),
        a.bytes().expect("labels resolve"),
    )
}

pub(crate) fn putc_reg(a: &mut Asm, r: Reg) {
    a.li(R::T8, 0xB000_0000);
    a.mem(Op::Sb, r, 0, R::T8);
}

/// The programs natively: console and halt status.
pub(crate) fn native(progs: &[&Asm]) -> (Vec<u8>, u32) {
    let mut m = sim::Machine::new(
        sim::MachineConfig {
            max_cycles: Some(50_000_000),
            ram_bytes: 4 << 20,
            ..sim::MachineConfig::default()
        },
        sim::dev::Board::new(1),
    );
    for p in progs {
        sim::testkit::place(&mut m, p);
    }
    m.cpus[0].boot(0xFFFF_FFFF_8000_1000, 0xFFFF_FFFF_8010_0000);
    match m.run() {
        sim::Exit::Halted { status } => (m.take_console(), status),
        other => panic!("natively: {other:?}"),
    }
}

/// The programs in a VM under `exec`: console, halt status, the monitor.
pub(crate) fn virtualized(progs: &[&Asm], exec: Exec) -> (Vec<u8>, u32, Monitor) {
    let mut vm = VmConfig::new(
        "bt",
        VmImage {
            entry: 0xFFFF_FFFF_8000_1000,
            segments: progs.iter().map(|p| seg(p)).collect(),
        },
        4 << 20,
    );
    vm.exec = exec;
    let mut m = Monitor::new(MonitorConfig {
        max_cycles: Some(50_000_000),
        vms: vec![vm],
        ..MonitorConfig::default()
    })
    .unwrap();
    assert_eq!(m.run(), MonitorExit::AllEnded);
    let status = match m.vms[0].end.clone() {
        Some(VmEnd::Halted(s)) => s,
        other => panic!("{exec:?}: {other:?}"),
    };
    (m.take_console(0), status, m)
}

/// Twice (the second pass translated and chained): Count into S0, `body`,
/// Count into S1; then S2 holds the second pass's Count difference and the
/// program halts with `result`. `setup` runs once, before the first pass.
/// S0 to S3 are the frame's.
pub(crate) fn counted_twice(
    setup: impl FnOnce(&mut Asm),
    body: impl FnOnce(&mut Asm),
    result: Reg,
) -> Asm {
    const COUNT: u32 = 9;
    let mut a = Asm::new(0x8000_1000);
    a.imm(Op::Addiu, R::S3, R::ZERO, 2);
    setup(&mut a);
    a.label("outer");
    a.mfc0(R::S0, COUNT);
    body(&mut a);
    a.mfc0(R::S1, COUNT);
    a.imm(Op::Addiu, R::S3, R::S3, -1);
    a.bnez(R::S3, "outer");
    a.nop();
    a.r3(Op::Subu, R::S2, R::S1, R::S0);
    sim::testkit::halt(&mut a, result);
    a
}
