//! Runs raw big-endian MIPS programs on one simulated CPU and prints the
//! final state as JSON, one line per program. Used by the differential test
//! against Unicorn (`sim/tests/diff/unicorn_diff.py`).
//!
//! ```text
//! cargo run -p disco-sim --example run_raw -- prog.bin [more.bin …]
//! cargo run -p disco-sim --example run_raw -- --dir DIR   (every DIR/*.bin, sorted)
//! ```
//!
//! File format: a big-endian u32 `n`, then `n` instruction words, then the
//! initial contents of the scratch buffer. The code is placed at physical and
//! virtual 0x0010_0000 and the scratch buffer at 0x0020_0000; the CPU runs in
//! kernel mode with Status.ERL = 1, so KUSEG is unmapped (PA = VA) and the
//! addresses match what Unicorn sees. A program ends when the PC reaches the
//! word after its last instruction; an exception ends it early and is
//! reported.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sim::cpu::cp0::{reg, status};
use sim::dev::Board;
use sim::isa::Reg;
use sim::{Machine, MachineConfig};

const CODE: u64 = 0x0010_0000;
const DATA: u64 = 0x0020_0000;
const MAX_STEPS: u64 = 1_000_000;

fn run_one(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let header: [u8; 4] = bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("{}: shorter than its header", path.display()))?;
    let n = u64::from(u32::from_be_bytes(header));
    let code_end = 4 + 4 * n as usize;
    let code = bytes
        .get(4..code_end)
        .ok_or_else(|| format!("{}: {n} words announced, fewer present", path.display()))?;
    let data = bytes.get(code_end..).unwrap_or(&[]);
    let mut m = Machine::new(
        MachineConfig {
            ram_bytes: 4 << 20,
            ..MachineConfig::default()
        },
        Board::new(1),
    );
    if !m.bus.write_bytes(CODE, code) || !m.bus.write_bytes(DATA, data) {
        return Err(format!(
            "{}: program or data does not fit in RAM",
            path.display()
        ));
    }
    let end = CODE + 4 * n;
    let cpu = &mut m.cpus[0];
    cpu.boot(CODE, 0);
    cpu.regs.set(Reg::SP, 0);
    cpu.write_cp0(reg::STATUS, u64::from(status::ERL));
    let mut steps = 0;
    let mut exception = None;
    while m.cpus[0].regs.pc != end && steps < MAX_STEPS {
        let pc = m.cpus[0].regs.pc;
        let before: u64 = m.cpus[0].stats().exceptions.iter().sum();
        m.cpus[0].step_one::<false>(&mut m.bus);
        steps += 1;
        if m.cpus[0].stats().exceptions.iter().sum::<u64>() != before {
            exception = Some((m.cpus[0].cp0().cause >> 2 & 0x1F, pc));
            break;
        }
    }
    let cpu = &m.cpus[0];
    let gpr: Vec<String> = cpu
        .regs
        .gpr
        .iter()
        .map(|v| format!("\"{v:#018x}\""))
        .collect();
    let scratch = m.bus.read_bytes(DATA, data.len()).unwrap_or_default();
    let hex: String = scratch.iter().map(|b| format!("{b:02x}")).collect();
    let exc = match exception {
        Some((code, pc)) => format!("{{\"code\":{code},\"pc\":\"{pc:#x}\"}}"),
        None => "null".to_string(),
    };
    Ok(format!(
        "{{\"file\":\"{}\",\"steps\":{steps},\"cycles\":{},\"pc\":\"{:#x}\",\"exception\":{exc},\"gpr\":[{}],\"hi\":\"{:#018x}\",\"lo\":\"{:#018x}\",\"data\":\"{hex}\"}}",
        path.file_name().map(|f| f.to_string_lossy()).unwrap_or_default(),
        cpu.cycles(),
        cpu.regs.pc,
        gpr.join(","),
        cpu.regs.hi,
        cpu.regs.lo,
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut files: Vec<PathBuf> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--dir" {
            let Some(dir) = it.next() else {
                eprintln!("--dir needs a directory");
                return ExitCode::FAILURE;
            };
            let entries = match std::fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("{dir}: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "bin"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(PathBuf::from(a));
        }
    }
    if files.is_empty() {
        eprintln!("usage: run_raw prog.bin [more.bin …] | --dir DIR");
        return ExitCode::FAILURE;
    }
    for f in &files {
        match run_one(f) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
