//! Shared helpers of the integration tests: running the `disco` binary,
//! finding the committed guest-kit images, and a minimal ELF writer for
//! programs built with the in-crate assembler.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sim::isa::asm::Asm;

/// The checkout (the workspace root).
pub(crate) fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `disco run` of the committed kit `name` on `cpus` CPUs with `extra`
/// flags, stopped at two billion cycles if it never halts.
pub(crate) fn kit(name: &str, cpus: &str, extra: &[&str]) -> Output {
    let img = images().join(name);
    let mut args = vec![
        "run",
        img.to_str().unwrap(),
        "--cpus",
        cpus,
        "--max-cycles",
        "2000000000",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// The bare-metal kits, each with the CPUs it runs on and its last console
/// line (what tests/parallel.rs and tests/monitor_parallel.rs compare).
pub(crate) const KITS: [(&str, &str, &str); 7] = [
    (
        "hello.elf",
        "1",
        "hello: all four exceptions handled, halting with 0",
    ),
    ("console.elf", "1", "console: ok"),
    ("timer.elf", "1", "timer: ok"),
    ("rtc.elf", "1", "rtc: ok"),
    ("cpustate.elf", "1", "cpustate: done"),
    ("mp.elf", "4", "mp: ok"),
    ("smp.elf", "4", "smp: ok"),
];

/// The committed guest-kit images.
pub(crate) fn images() -> PathBuf {
    root().join("guest-kits/images")
}

/// The `disco` binary built for this test run.
pub(crate) fn disco() -> Command {
    Command::new(env!("CARGO_BIN_EXE_disco"))
}

/// Runs `disco ARGS` in the checkout with stdin closed and collects its output.
pub(crate) fn run(args: &[&str]) -> Output {
    disco()
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Output bytes as text (lossy).
pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts a refusal: exit status 2 and one line on stderr containing
/// every one of `says`.
pub(crate) fn refused_in_one_line(o: &Output, says: &[&str]) {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}{}", text(&o.stdout));
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    for want in says {
        assert!(err.contains(want), "expected {want:?} in {err}");
    }
}

/// An ELF32 big-endian MIPS executable holding `a` as one PT_LOAD segment
/// (p_vaddr = p_paddr = the origin, as GNU ld leaves them) with `bss`
/// zero bytes after it, entry at the origin.
pub(crate) fn elf(a: &Asm, bss: u32) -> Vec<u8> {
    let code = a.bytes().expect("labels resolve");
    let origin = a.origin();
    let mut f = Vec::new();
    // e_ident
    f.extend_from_slice(b"\x7fELF");
    f.extend_from_slice(&[1, 2, 1, 0]); // ELFCLASS32, ELFDATA2MSB, EV_CURRENT
    f.extend_from_slice(&[0; 8]);
    let h16 = |f: &mut Vec<u8>, v: u16| f.extend_from_slice(&v.to_be_bytes());
    let h32 = |f: &mut Vec<u8>, v: u32| f.extend_from_slice(&v.to_be_bytes());
    h16(&mut f, 2); // ET_EXEC
    h16(&mut f, 8); // EM_MIPS
    h32(&mut f, 1); // e_version
    h32(&mut f, origin); // e_entry
    h32(&mut f, 52); // e_phoff
    h32(&mut f, 0); // e_shoff
    h32(&mut f, 0); // e_flags
    h16(&mut f, 52); // e_ehsize
    h16(&mut f, 32); // e_phentsize
    h16(&mut f, 1); // e_phnum
    h16(&mut f, 40); // e_shentsize
    h16(&mut f, 0); // e_shnum
    h16(&mut f, 0); // e_shstrndx
    let offset = 0x1000u32;
    let filesz = code.len() as u32;
    h32(&mut f, 1); // PT_LOAD
    h32(&mut f, offset);
    h32(&mut f, origin); // p_vaddr
    h32(&mut f, origin); // p_paddr
    h32(&mut f, filesz);
    h32(&mut f, filesz + bss);
    h32(&mut f, 7); // RWX
    h32(&mut f, 0x1000);
    f.resize(offset as usize, 0);
    f.extend_from_slice(&code);
    f
}

/// How many batches split a VM's CPUs over threads, from the summary's
/// `parallel:` line (0 without one).
pub(crate) fn split_batches(out: &str) -> u64 {
    numbers_on(out, "parallel: ").first().copied().unwrap_or(0)
}

/// The numbers on the first line of `out` that starts with `prefix`, in
/// order (none if there is no such line).
pub(crate) fn numbers_on(out: &str, prefix: &str) -> Vec<u64> {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or("")
        .split(' ')
        .filter_map(|w| w.parse().ok())
        .collect()
}
