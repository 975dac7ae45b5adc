//! Our disassembler against GNU objdump: every row of the opcode table,
//! encoded with several operand sets, written as words into an object file
//! that `mips-linux-gnu-as` assembles and `mips-linux-gnu-objdump -d`
//! disassembles; every line must read the same.
//!
//! Skipped with a visible message when the toolchain is absent, unless
//! DISCO_REQUIRE_TOOLS=1 (CI), which makes that a failure.

#![allow(clippy::panic, clippy::unwrap_used)]

use std::process::Command;

use sim::isa::asm::{encode, Operands};
use sim::isa::disasm::disasm;
use sim::isa::{decode, Format, Op, OPCODES};

fn tool(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Words to compare: each row with operand sets that exercise aliases,
/// signs and extremes.
fn words() -> Vec<u32> {
    let sets = [
        Operands {
            rs: 4,
            rt: 5,
            rd: 2,
            sa: 3,
            imm: 0x1234,
        },
        Operands {
            rs: 0,
            rt: 0,
            rd: 31,
            sa: 0,
            imm: 0xFFFF,
        },
        Operands {
            rs: 29,
            rt: 31,
            rd: 1,
            sa: 31,
            imm: 0x8000,
        },
        Operands {
            rs: 0,
            rt: 2,
            rd: 3,
            sa: 1,
            imm: 0x7FFF,
        },
        Operands {
            rs: 7,
            rt: 0,
            rd: 31,
            sa: 16,
            imm: 0,
        },
    ];
    let mut out = Vec::new();
    for row in OPCODES {
        // No FPU or CP2/CP3 on this machine: their syntax is objdump's own.
        if matches!(row.format, Format::Cop) && row.op != Op::Cop0Nop {
            continue;
        }
        if matches!(row.op, Op::Lwc2 | Op::Ldc2 | Op::Swc2 | Op::Sdc2) {
            continue;
        }
        for o in sets {
            let mut o = o;
            if row.format == Format::Code {
                o.imm = [0, 1, 0x7 << 10, (0x7 << 10) | 1, 0xF_FFFF][out.len() % 5];
            }
            if row.format == Format::Trap {
                o.imm = [0, 7, 0x3FF][out.len() % 3];
            }
            if row.op == Op::Cop0Nop {
                o.imm = 0x3F;
            }
            out.push(encode(row.op, o));
        }
    }
    out
}

#[test]
fn disassembly_matches_objdump() {
    if !tool("mips-linux-gnu-as") || !tool("mips-linux-gnu-objdump") {
        assert!(
            std::env::var("DISCO_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "mips-linux-gnu-as/objdump are required (DISCO_REQUIRE_TOOLS=1) but not installed"
        );
        println!("SKIPPED: mips-linux-gnu-as not found; the objdump comparison did not run");
        return;
    }
    let words = words();
    let dir = std::env::temp_dir().join(format!("disco-objdump-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src: String = std::iter::once(".set noreorder\n.set noat\n.text\n".to_string())
        .chain(words.iter().map(|w| format!(".word {w:#010x}\n")))
        .collect();
    std::fs::write(dir.join("t.S"), src).unwrap();
    let as_ok = Command::new("mips-linux-gnu-as")
        .args(["-march=r4000", "-mabi=32", "-EB", "-o"])
        .arg(dir.join("t.o"))
        .arg(dir.join("t.S"))
        .status()
        .unwrap();
    assert!(as_ok.success());
    let out = Command::new("mips-linux-gnu-objdump")
        .arg("-d")
        .arg(dir.join("t.o"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let _ = std::fs::remove_dir_all(&dir);
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for line in text.lines() {
        // "  1c:\t24020005 \tli\tv0,5"
        let mut parts = line.splitn(3, '\t');
        let (Some(addr), Some(word), Some(insn)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Ok(addr) = u64::from_str_radix(addr.trim().trim_end_matches(':'), 16) else {
            continue;
        };
        let Ok(word) = u32::from_str_radix(word.trim(), 16) else {
            continue;
        };
        let ours = disasm(decode(word), addr);
        compared += 1;
        if ours != insn.trim_end() {
            mismatches.push(format!(
                "{word:#010x} at {addr:#x}: objdump {:?}, ours {ours:?}",
                insn.trim_end()
            ));
        }
    }
    println!(
        "compared {compared} instructions with objdump, {} differ",
        mismatches.len()
    );
    assert_eq!(compared, words.len(), "objdump printed every word");
    assert!(
        mismatches.is_empty(),
        "{} of {compared} differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
