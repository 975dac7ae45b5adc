//! Our assembler and disassembler against GNU binutils.
//!
//! 1. A program covering every instruction of the table (several operand
//!    variants each, the aliases, negative offsets, branches forward and
//!    back, jumps to labels) is written twice: as GNU assembler text and as
//!    `sim::isa::asm` calls. `mips-linux-gnu-as -march=r4000 -mabi=32 -EB`
//!    assembles the text; every word must equal ours, and every line of
//!    `mips-linux-gnu-objdump -d` must equal our disassembly of that word at
//!    that address, symbols (`<back+0x8>`) included.
//! 2. A sweep of words without symbols: every row of the table with several
//!    operand sets, then pseudo-random words (non-zero unused fields,
//!    reserved encodings), written with `.word`.
//!
//! COP1/COP2/COP3 operations (primary opcodes 0x11–0x13) are left out of
//! both: this machine has no FPU or CP2, they decode to `Op::Cop1`… and we
//! print them as `cop1 0x…`, not with objdump's FPU mnemonics. The
//! coprocessor loads and stores (LWC1, SDC2, …) are compared.
//!
//! Skipped with a visible message when the toolchain is absent, unless
//! DISCO_REQUIRE_TOOLS=1 (CI), which makes that a failure.

#![allow(clippy::panic, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use sim::isa::asm::Asm;
use sim::isa::disasm::{disasm, disasm_with, symbol_offset};
use sim::isa::{asm::encode, asm::Operands, Format, Op, Reg, OPCODES};

const ZERO: Reg = Reg::ZERO;
const AT: Reg = Reg::AT;
const V0: Reg = Reg::V0;
const V1: Reg = Reg::V1;
const A0: Reg = Reg::A0;
const A1: Reg = Reg::A1;
const A2: Reg = Reg::A2;
const T0: Reg = Reg::T0;
const T1: Reg = Reg::T1;
const T9: Reg = Reg::T9;
const S0: Reg = Reg::S0;
const K0: Reg = Reg::K0;
const K1: Reg = Reg::K1;
const GP: Reg = Reg::GP;
const SP: Reg = Reg::SP;
const FP: Reg = Reg::FP;
const RA: Reg = Reg::RA;

type Build = fn(&mut Asm);

/// One line of the program: GNU text and the same line through our `Asm`.
macro_rules! l {
    ($text:literal, $($call:tt)*) => {
        ($text, (|a: &mut Asm| { a.$($call)*; }) as Build)
    };
}

/// The program. Lines ending in `:` are labels. GNU as rejects a few
/// instructions for `-march=r4000` (WAIT, RFE, the `c0` form); those are
/// `.word` on the GNU side. With `-mabi=32` it expands LD and SD into two
/// word accesses unless `gp=64` is set around them.
fn program() -> Vec<(&'static str, Build)> {
    vec![
        l!("start:", label("start")),
        l!("add $v0,$a0,$a1", add(V0, A0, A1)),
        l!("add $zero,$sp,$ra", add(ZERO, SP, RA)),
        l!("addu $v0,$a0,$a1", addu(V0, A0, A1)),
        l!("addu $v0,$a0,$zero", addu(V0, A0, ZERO)),
        l!("addu $v0,$zero,$a0", addu(V0, ZERO, A0)),
        l!("move $s8,$sp", move_(FP, SP)),
        l!("sub $t0,$t1,$t9", sub(T0, T1, T9)),
        l!("neg $t0,$t1", sub(T0, ZERO, T1)),
        l!("subu $t0,$t1,$t9", subu(T0, T1, T9)),
        l!("negu $v0,$a1", negu(V0, A1)),
        l!("and $k0,$k1,$gp", and(K0, K1, GP)),
        l!("or $at,$v0,$v1", or(AT, V0, V1)),
        l!("or $at,$v0,$zero", or(AT, V0, ZERO)),
        l!("xor $a0,$a1,$a2", xor(A0, A1, A2)),
        l!("nor $a0,$a1,$a2", nor(A0, A1, A2)),
        l!("not $a0,$a1", not(A0, A1)),
        l!("slt $v0,$a0,$a1", slt(V0, A0, A1)),
        l!("sltu $v0,$zero,$a1", sltu(V0, ZERO, A1)),
        l!("dadd $v0,$a0,$a1", dadd(V0, A0, A1)),
        l!("daddu $v0,$a0,$a1", daddu(V0, A0, A1)),
        l!("daddu $v0,$a0,$zero", daddu(V0, A0, ZERO)),
        l!("dsub $v0,$a0,$a1", dsub(V0, A0, A1)),
        l!("dneg $v0,$a1", dsub(V0, ZERO, A1)),
        l!("dsubu $v0,$a0,$a1", dsubu(V0, A0, A1)),
        l!("dnegu $v0,$a1", dsubu(V0, ZERO, A1)),
        l!("sll $v0,$v0,2", sll(V0, V0, 2)),
        l!("nop", nop()),
        l!("ssnop", sll(ZERO, ZERO, 1)),
        l!("ehb", sll(ZERO, ZERO, 3)),
        l!("sll $zero,$zero,5", sll(ZERO, ZERO, 5)),
        l!("srl $v0,$a0,31", srl(V0, A0, 31)),
        l!("sra $v0,$a0,1", sra(V0, A0, 1)),
        l!("dsll $v0,$a0,0", dsll(V0, A0, 0)),
        l!("dsrl $v0,$a0,7", dsrl(V0, A0, 7)),
        l!("dsra $v0,$a0,31", dsra(V0, A0, 31)),
        l!("dsll32 $v0,$a0,0", dsll32(V0, A0, 0)),
        l!("dsrl32 $v0,$a0,1", dsrl32(V0, A0, 1)),
        l!("dsra32 $v0,$a0,31", dsra32(V0, A0, 31)),
        l!("sllv $v0,$a0,$a1", sllv(V0, A0, A1)),
        l!("srlv $v0,$a0,$a1", srlv(V0, A0, A1)),
        l!("srav $v0,$a0,$a1", srav(V0, A0, A1)),
        l!("dsllv $v0,$a0,$a1", dsllv(V0, A0, A1)),
        l!("dsrlv $v0,$a0,$a1", dsrlv(V0, A0, A1)),
        l!("dsrav $v0,$a0,$a1", dsrav(V0, A0, A1)),
        l!("back:", label("back")),
        l!("mult $a0,$a1", mult(A0, A1)),
        l!("multu $a0,$a1", multu(A0, A1)),
        l!("div $zero,$a0,$a1", div(A0, A1)),
        l!("divu $zero,$a0,$a1", divu(A0, A1)),
        l!("dmult $a0,$a1", dmult(A0, A1)),
        l!("dmultu $a0,$a1", dmultu(A0, A1)),
        l!("ddiv $zero,$a0,$a1", ddiv(A0, A1)),
        l!("ddivu $zero,$a0,$a1", ddivu(A0, A1)),
        l!("tge $a0,$a1", tge(A0, A1, 0)),
        l!("tgeu $a0,$a1,1023", tgeu(A0, A1, 1023)),
        l!("tlt $a0,$a1,1", tlt(A0, A1, 1)),
        l!("tltu $a0,$a1", tltu(A0, A1, 0)),
        l!("teq $a0,$zero,7", teq(A0, ZERO, 7)),
        l!("teq $a0,$a1", teq(A0, A1, 0)),
        l!("tne $a0,$a1,2", tne(A0, A1, 2)),
        l!("mfhi $v0", mfhi(V0)),
        l!("mflo $v1", mflo(V1)),
        l!("mthi $a0", mthi(A0)),
        l!("mtlo $a1", mtlo(A1)),
        l!("jr $ra", rs(Op::Jr, RA)),
        l!("jalr $t9", jalr(RA, T9)),
        l!("jalr $v0,$t9", jalr(V0, T9)),
        l!("syscall", syscall()),
        l!("syscall 1", syscall_code(1)),
        l!("syscall 0xfffff", syscall_code(0xF_FFFF)),
        l!("break", break_()),
        l!("break 7", break_code(7 << 10)),
        l!("break 7,1", break_code((7 << 10) | 1)),
        l!("break 0,5", break_code(5)),
        l!("sync", sync()),
        l!("tlbr", tlbr()),
        l!("tlbwi", tlbwi()),
        l!("tlbwr", tlbwr()),
        l!("tlbp", tlbp()),
        l!("eret", eret()),
        l!(".word 0x42000010", rfe()),
        l!(".word 0x42000020", wait()),
        l!(".word 0x4200003f", c0(0x3F)),
        l!("addi $t0,$t1,-1", addi(T0, T1, -1)),
        l!("addiu $sp,$sp,-32", addiu(SP, SP, -32)),
        l!("addiu $v0,$zero,32767", addiu(V0, ZERO, 32767)),
        l!("li $v0,-5", addiu(V0, ZERO, -5)),
        l!("slti $t0,$t1,-32768", slti(T0, T1, -32768)),
        l!("sltiu $t0,$t1,5", sltiu(T0, T1, 5)),
        l!("daddi $t0,$t1,100", daddi(T0, T1, 100)),
        l!("daddiu $t0,$t1,-100", daddiu(T0, T1, -100)),
        l!("daddiu $t0,$zero,1", daddiu(T0, ZERO, 1)),
        l!("andi $v0,$v0,0xff", andi(V0, V0, 0xFF)),
        l!("ori $v0,$v1,0xffff", ori(V0, V1, 0xFFFF)),
        l!("li $v0,0x8000", ori(V0, ZERO, 0x8000)),
        l!("xori $v0,$v1,1", xori(V0, V1, 1)),
        l!("lui $at,0x8000", lui(AT, 0x8000)),
        l!("lui $at,0", lui(AT, 0)),
        l!("tgei $a0,-1", tgei(A0, -1)),
        l!("tgeiu $a0,1", tgeiu(A0, 1)),
        l!("tlti $a0,2", tlti(A0, 2)),
        l!("tltiu $a0,3", tltiu(A0, 3)),
        l!("teqi $a0,0", teqi(A0, 0)),
        l!("tnei $a0,-32768", tnei(A0, -32768)),
        l!("beq $a0,$a1,back", beq(A0, A1, "back")),
        l!("beq $a0,$a1,fwd", beq(A0, A1, "fwd")),
        l!("beq $zero,$a1,fwd", beq(ZERO, A1, "fwd")),
        l!("beqz $a0,back", beqz(A0, "back")),
        l!("b back", b("back")),
        l!("b fwd", b("fwd")),
        l!("bne $a0,$a1,start", bne(A0, A1, "start")),
        l!("bnez $a0,fwd", bnez(A0, "fwd")),
        l!("beql $a0,$a1,back", beql(A0, A1, "back")),
        l!("beqzl $a0,fwd", beqzl(A0, "fwd")),
        l!("beql $zero,$zero,fwd", beql(ZERO, ZERO, "fwd")),
        l!("bnel $a0,$a1,back", bnel(A0, A1, "back")),
        l!("bnezl $a0,fwd", bnezl(A0, "fwd")),
        l!("blez $a0,back", blez(A0, "back")),
        l!("bgtz $a0,fwd", bgtz(A0, "fwd")),
        l!("blezl $a0,back", blezl(A0, "back")),
        l!("bgtzl $a0,fwd", bgtzl(A0, "fwd")),
        l!("bltz $a0,back", bltz(A0, "back")),
        l!("bgez $a0,fwd", bgez(A0, "fwd")),
        l!("bgez $zero,fwd", bgez(ZERO, "fwd")),
        l!("bltzl $a0,back", bltzl(A0, "back")),
        l!("bgezl $a0,fwd", bgezl(A0, "fwd")),
        l!("bltzal $a0,back", bltzal(A0, "back")),
        l!("bgezal $a0,fwd", bgezal(A0, "fwd")),
        l!("bal back", bal("back")),
        l!("bltzall $a0,back", bltzall(A0, "back")),
        l!("bgezall $a0,fwd", bgezall(A0, "fwd")),
        l!("here:", label("here")),
        l!("b here", b("here")),
        l!("j back", j("back")),
        l!("jal fwd", jal("fwd")),
        l!("j start", j("start")),
        l!("lb $v0,-1($a0)", lb(V0, -1, A0)),
        l!("lh $v0,2($a0)", lh(V0, 2, A0)),
        l!("lwl $v0,1($a0)", lwl(V0, 1, A0)),
        l!("lw $v0,16($sp)", lw(V0, 16, SP)),
        l!("lw $zero,0($zero)", lw(ZERO, 0, ZERO)),
        l!("lbu $v0,32767($a0)", lbu(V0, 32767, A0)),
        l!("lhu $v0,-32768($a0)", lhu(V0, -32768, A0)),
        l!("lwr $v0,4($a0)", lwr(V0, 4, A0)),
        l!("lwu $v0,8($a0)", lwu(V0, 8, A0)),
        l!("ldl $v0,0($a0)", ldl(V0, 0, A0)),
        l!("ldr $v0,7($a0)", ldr(V0, 7, A0)),
        l!(
            ".set gp=64\nld $v0,-8($sp)\n.set gp=default",
            ld(V0, -8, SP)
        ),
        l!("ll $t0,0($a0)", ll(T0, 0, A0)),
        l!("lld $t0,-4($a0)", lld(T0, -4, A0)),
        l!("sb $v0,-1($a0)", sb(V0, -1, A0)),
        l!("sh $v0,2($a0)", sh(V0, 2, A0)),
        l!("swl $v0,1($a0)", swl(V0, 1, A0)),
        l!("sw $v0,-8($sp)", sw(V0, -8, SP)),
        l!("swr $v0,4($a0)", swr(V0, 4, A0)),
        l!("sdl $v0,0($a0)", sdl(V0, 0, A0)),
        l!("sdr $v0,7($a0)", sdr(V0, 7, A0)),
        l!(
            ".set gp=64\nsd $ra,24($sp)\n.set gp=default",
            sd(RA, 24, SP)
        ),
        l!("sc $t0,0($a0)", sc(T0, 0, A0)),
        l!("scd $t0,8($a0)", scd(T0, 8, A0)),
        l!("lwc1 $f2,4($v1)", lwc1(2, 4, V1)),
        l!("ldc1 $f30,-8($sp)", ldc1(30, -8, SP)),
        l!("swc1 $f0,0($a0)", swc1(0, 0, A0)),
        l!("sdc1 $f31,8($a0)", sdc1(31, 8, A0)),
        l!("lwc2 $5,4($a1)", lwc2(5, 4, A1)),
        l!("ldc2 $0,-4($a1)", ldc2(0, -4, A1)),
        l!("swc2 $31,4($a1)", swc2(31, 4, A1)),
        l!("sdc2 $5,4($a1)", sdc2(5, 4, A1)),
        l!("cache 0x14,0($a0)", cache(0x14, 0, A0)),
        l!("cache 0x1f,-16($zero)", cache(0x1F, -16, ZERO)),
        l!("cache 0,32767($s0)", cache(0, 32767, S0)),
        l!("mfc0 $v0,$12", mfc0(V0, 12)),
        l!("mtc0 $k0,$14", mtc0(K0, 14)),
        l!("mtc0 $v0,$7", mtc0(V0, 7)),
        l!("mfc0 $v0,$31", mfc0(V0, 31)),
        l!("dmfc0 $v0,$8", dmfc0(V0, 8)),
        l!("dmtc0 $v0,$10", dmtc0(V0, 10)),
        l!("fwd:", label("fwd")),
        l!("nop", nop()),
    ]
}

/// Every CP0 register by number through MFC0, for the name table.
fn cp0_names() -> Vec<u32> {
    (0..32)
        .map(|rd| {
            encode(
                Op::Mfc0,
                Operands {
                    rt: 2,
                    rd,
                    ..Operands::default()
                },
            )
        })
        .collect()
}

/// Each row of the table with operand sets that exercise aliases, signs and
/// extremes, then pseudo-random words.
fn sweep_words() -> Vec<u32> {
    let sets = [
        (4, 5, 2, 3, 0x1234),
        (0, 0, 31, 0, 0xFFFF),
        (29, 31, 1, 31, 0x8000),
        (0, 2, 3, 1, 0x7FFF),
        (7, 0, 31, 16, 0),
    ];
    let mut out = Vec::new();
    for row in OPCODES {
        if matches!(row.op, Op::Cop1 | Op::Cop2 | Op::Cop3) {
            continue;
        }
        for (k, &(rs, rt, rd, sa, imm)) in sets.iter().enumerate() {
            let imm = match row.format {
                Format::Code => [0, 1, 0x7 << 10, (0x7 << 10) | 1, 0xF_FFFF][k],
                Format::Trap => [0, 7, 0x3FF, 1, 0][k],
                Format::Cop => [0x3F, 0, 0x1FF_FFFF, 0x10, 0x20][k],
                _ => imm,
            };
            out.push(encode(
                row.op,
                Operands {
                    rs,
                    rt,
                    rd,
                    sa,
                    imm,
                },
            ));
        }
    }
    out.extend(cp0_names());
    // xorshift64: deterministic; half the words get unused fields cleared so
    // that both canonical and non-canonical encodings are common.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while out.len() < 40_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // The low 32 bits are the word.
        let mut w = x as u32;
        let k = x >> 40;
        for (bit, field) in [(1, 6), (2, 11), (4, 16), (8, 21)] {
            if k & bit != 0 {
                w &= !(0x1F << field);
            }
        }
        if matches!(w >> 26, 0x11..=0x13) {
            continue;
        }
        out.push(w);
    }
    out
}

fn tool(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Assembles `src` and returns objdump's text.
fn objdump(dir: &Path, name: &str, src: &str) -> String {
    let (s, o) = (dir.join(format!("{name}.S")), dir.join(format!("{name}.o")));
    std::fs::write(&s, src).unwrap();
    let out = Command::new("mips-linux-gnu-as")
        .args(["-march=r4000", "-mabi=32", "-EB", "-o"])
        .arg(&o)
        .arg(&s)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mips-linux-gnu-as failed on {name}.S:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("mips-linux-gnu-objdump")
        .arg("-d")
        .arg(&o)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One disassembled line of objdump: address, word, text.
fn insn_line(line: &str) -> Option<(u64, u32, &str)> {
    // "  1c:\t24020005 \tli\tv0,5"
    let mut parts = line.splitn(3, '\t');
    let (addr, word, text) = (parts.next()?, parts.next()?, parts.next()?);
    let addr = u64::from_str_radix(addr.trim().strip_suffix(':')?, 16).ok()?;
    let word = u32::from_str_radix(word.trim(), 16).ok()?;
    Some((addr, word, text.trim_end()))
}

/// A symbol header: "00000058 <back>:".
fn symbol_line(line: &str) -> Option<(u64, String)> {
    let (addr, rest) = line.split_once(' ')?;
    let name = rest.strip_prefix('<')?.strip_suffix(">:")?;
    Some((u64::from_str_radix(addr, 16).ok()?, name.to_string()))
}

fn toolchain_present() -> bool {
    if tool("mips-linux-gnu-as") && tool("mips-linux-gnu-objdump") {
        return true;
    }
    sim::testkit::skip(
        "the objdump comparison",
        "mips-linux-gnu-as or mips-linux-gnu-objdump not found",
    );
    false
}

fn scratch_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("disco-objdump-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn program_matches_gnu_as_and_objdump() {
    if !toolchain_present() {
        return;
    }
    let program = program();
    let mut src = String::from(".set noreorder\n.set noat\n.set hardfloat\n.text\n");
    let mut a = Asm::new(0);
    for (text, build) in &program {
        src.push_str(text);
        src.push('\n');
        build(&mut a);
    }
    let ours = a.finish().unwrap();
    let dir = scratch_dir("program");
    let text = objdump(&dir, "program", &src);
    let _ = std::fs::remove_dir_all(&dir);

    let mut symbols: Vec<(u64, String)> = text.lines().filter_map(symbol_line).collect();
    symbols.sort();
    // objdump names a target after the nearest symbol at or below it.
    let symbolize = |addr: u64| {
        symbols
            .iter()
            .rev()
            .find(|(base, _)| *base <= addr)
            .map(|(base, name)| symbol_offset(name, *base, addr))
    };
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for (addr, word, objdump_text) in text.lines().filter_map(insn_line) {
        let index = usize::try_from(addr / 4).unwrap();
        let our_word = ours.get(index).copied();
        if our_word != Some(word) {
            mismatches.push(format!(
                "{addr:#x}: GNU as {word:#010x} ({objdump_text}), our Asm {our_word:#010x?}"
            ));
        }
        let our_text = disasm_with(word, addr, &symbolize);
        if our_text != objdump_text {
            mismatches.push(format!(
                "{word:#010x} at {addr:#x}: objdump {objdump_text:?}, ours {our_text:?}"
            ));
        }
        compared += 1;
    }
    println!(
        "program: compared {compared} instructions with GNU as and objdump, {} differ",
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} differences:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert_eq!(compared, ours.len(), "objdump printed every word");
}

#[test]
fn word_sweep_matches_objdump() {
    if !toolchain_present() {
        return;
    }
    let words = sweep_words();
    let src: String = std::iter::once(".set noreorder\n.set noat\n.text\n".to_string())
        .chain(words.iter().map(|w| format!(".word {w:#010x}\n")))
        .collect();
    let dir = scratch_dir("sweep");
    let text = objdump(&dir, "sweep", &src);
    let _ = std::fs::remove_dir_all(&dir);
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for (addr, word, objdump_text) in text.lines().filter_map(insn_line) {
        let ours = disasm(word, addr);
        compared += 1;
        if ours != objdump_text {
            mismatches.push(format!(
                "{word:#010x} at {addr:#x}: objdump {objdump_text:?}, ours {ours:?}"
            ));
        }
    }
    println!(
        "sweep: compared {compared} words with objdump, {} differ",
        mismatches.len()
    );
    assert_eq!(compared, words.len(), "objdump printed every word");
    mismatches.truncate(50);
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
