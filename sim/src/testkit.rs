//! Support for tests (unit and integration): run a small program built with
//! [`crate::isa::asm`] on a one-CPU machine.
#![allow(clippy::panic, clippy::unwrap_used)]

use crate::cpu::{Cp0, Cpu};
use crate::dev::Board;
use crate::isa::asm::Asm;
use crate::isa::{Op, Reg};
use crate::machine::{Exit, Machine, MachineConfig};

/// Where test programs are placed: KSEG0 0x8000_1000, physical 0x1000.
pub const ORIGIN: u32 = 0x8000_1000;

/// A fresh assembler at [`ORIGIN`].
pub fn asm() -> Asm {
    Asm::new(ORIGIN)
}

/// Appends the halt sequence: write `status_reg` to the console's halt register.
pub fn halt(a: &mut Asm, status_reg: Reg) {
    a.li(Reg::K1, 0xB000_0010);
    a.mem(Op::Sw, status_reg, 0, Reg::K1);
    a.nop();
}

/// A 1-CPU machine with `a` loaded at its origin and CPU 0 about to run it.
pub fn machine(a: &Asm) -> Machine {
    let mut m = Machine::new(
        MachineConfig {
            max_cycles: Some(10_000_000),
            ..MachineConfig::default()
        },
        Board::new(1),
    );
    let bytes = a.bytes().expect("test program labels resolve");
    let paddr = u64::from(a.origin() & 0x1FFF_FFFF);
    assert!(m.bus.write_bytes(paddr, &bytes));
    let pc = i64::from(a.origin() as i32) as u64;
    if let Some(cpu) = m.cpus.get_mut(0) {
        cpu.boot(pc, 0xFFFF_FFFF_8010_0000);
    }
    m
}

/// Runs `a` to its halt and returns the machine.
pub fn run(a: &Asm) -> Machine {
    let mut m = machine(a);
    let exit = m.run();
    assert!(
        matches!(exit, Exit::Halted { .. }),
        "program did not halt: {exit:?}"
    );
    m
}

/// A machine built from `config`, with `a` loaded at its origin and CPU 0
/// about to run it (like [`machine`], for other RAM sizes or CPU counts).
pub fn machine_with(config: MachineConfig, a: &Asm) -> Machine {
    let ncpus = config.ncpus;
    let mut m = Machine::new(config, Board::new(ncpus));
    place(&mut m, a);
    let pc = i64::from(a.origin() as i32) as u64;
    if let Some(cpu) = m.cpus.get_mut(0) {
        cpu.boot(pc, 0xFFFF_FFFF_8010_0000);
    }
    m
}

/// Copies more code (an exception handler, user code) into RAM at the
/// physical address of `a`'s origin: KSEG0/KSEG1 origins map to
/// `origin & 0x1FFF_FFFF`, and KUSEG origins are taken as identity-mapped.
pub fn place(m: &mut Machine, a: &Asm) {
    let bytes = a.bytes().expect("placed code labels resolve");
    let origin = a.origin();
    let paddr = if origin >= 0x8000_0000 {
        u64::from(origin & 0x1FFF_FFFF)
    } else {
        u64::from(origin)
    };
    assert!(
        m.bus.write_bytes(paddr, &bytes),
        "code at {origin:#x} fits in RAM"
    );
}

/// CPU `cpu`'s CP0 registers, for setting up state that no instruction can
/// write (Cause's BD and CE fields are the hardware's). Bypasses the write
/// masks and the side effects of `Core::write_cp0` (translation context,
/// timer, interrupts): use it before the CPU runs, and only for fields
/// whose change has none of those effects.
pub fn cp0_mut(cpu: &mut Cpu) -> &mut Cp0 {
    &mut cpu.core.cp0
}

/// Runs an already built machine to its halt.
pub fn run_to_halt(m: &mut Machine) {
    let exit = m.run();
    assert!(
        matches!(exit, Exit::Halted { .. }),
        "program did not halt: {exit:?}"
    );
}

/// Whether the external tool `tool` can be started (with `probe`, e.g.
/// `--version`). When it cannot, the test `test` is skipped: see [`skip`].
pub fn have_tool(tool: &str, probe: &str, test: &str) -> bool {
    let started = std::process::Command::new(tool)
        .arg(probe)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok();
    if !started {
        skip(test, &format!("{tool} not found"));
    }
    started
}

/// The one way a test skips for a missing external tool: a `SKIPPED:` line
/// the user sees in a plain `cargo test` (the harness captures `println!`
/// and `eprintln!`, but not writes to the stderr handle itself), or, with
/// `DISCO_REQUIRE_TOOLS=1` (CI), a failure.
pub fn skip(test: &str, why: &str) {
    assert!(
        std::env::var("DISCO_REQUIRE_TOOLS").as_deref() != Ok("1"),
        "{test}: DISCO_REQUIRE_TOOLS=1 but {why}"
    );
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED: {test} did not run: {why}"
    );
}
