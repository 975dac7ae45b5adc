//! How `disco` ends, seen from outside: a reader that goes away (`| head`),
//! a full disk (/dev/full), Ctrl-C, and the one line on standard error that
//! names every non-zero exit status (src/exit.rs, docs/config.md).

#![allow(clippy::panic, clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{disco, images, root, run, text};
use sim::isa::asm::Asm;
use sim::isa::{Op, Reg};

/// A file in the temp directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    /// Unique within the process: the tests run in parallel.
    fn new(name: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        Scratch(std::env::temp_dir().join(format!("disco-cli-{pid}-{n}-{name}")))
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Emits: print `text` on the console (putchar, 0xB000_0000).
fn print(a: &mut Asm, text: &[u8]) {
    a.li(Reg::K1, 0xB000_0000);
    for &b in text {
        a.imm(Op::Addiu, Reg::T0, Reg::ZERO, i64::from(b));
        a.mem(Op::Sb, Reg::T0, 0, Reg::K1);
    }
}

/// A kernel that prints `first`, then `each` forever (nothing if empty,
/// then it spins).
fn guest(name: &str, first: &[u8], each: &[u8]) -> Scratch {
    let mut a = Asm::new(0x8001_0000);
    print(&mut a, first);
    a.label("again");
    print(&mut a, each);
    a.b("again");
    a.nop();
    let f = Scratch::new(name);
    std::fs::write(&f.0, common::elf(&a, 0)).unwrap();
    f
}

/// A kernel that halts with `status`.
fn halting(name: &str, status: u32) -> Scratch {
    let mut a = Asm::new(0x8001_0000);
    a.li(Reg::T0, status);
    a.li(Reg::K1, 0xB000_0010);
    a.mem(Op::Sw, Reg::T0, 0, Reg::K1);
    a.label("spin");
    a.b("spin");
    a.nop();
    let f = Scratch::new(name);
    std::fs::write(&f.0, common::elf(&a, 0)).unwrap();
    f
}

fn spawn(args: &[&str], stdout: Stdio) -> Child {
    disco()
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `disco ARGS`; its reader reads `lines` lines, then goes away.
/// With no lines to read, the reader is gone before disco starts: a
/// reader that left only after spawning would race output small enough
/// to fit in the pipe (the write would succeed and disco exit 0).
fn read_then_close(args: &[&str], lines: usize) -> Output {
    if lines == 0 {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        return spawn(args, Stdio::from(writer)).wait_with_output().unwrap();
    }
    let mut child = spawn(args, Stdio::piped());
    let mut out = BufReader::new(child.stdout.take().unwrap());
    for _ in 0..lines {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "{args:?}: output ended early");
    }
    drop(out);
    child.wait_with_output().unwrap()
}

/// Runs `disco ARGS` with standard output on /dev/full.
fn full_disk(args: &[&str]) -> Output {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    spawn(args, Stdio::from(full)).wait_with_output().unwrap()
}

fn assert_quiet_end(o: &Output, what: &str) {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(141), "{what}: {err}");
    assert!(err.is_empty(), "{what}: nothing on stderr, got {err:?}");
}

fn assert_one_line(o: &Output, code: i32, expect: &str, what: &str) {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{what}: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: one line: {err:?}");
    assert!(
        err.contains(expect),
        "{what}: expected {expect:?} in {err:?}"
    );
}

/// A monitor trace of kestrel's first two million cycles, for `flow`.
fn kestrel_trace() -> Scratch {
    let t = Scratch::new("kestrel.trace");
    let kestrel = images().join("kestrel.elf");
    let o = run(&[
        "run",
        "--vm",
        kestrel.to_str().unwrap(),
        "--trace",
        "exc",
        "--trace-file",
        t.path(),
        "--max-cycles",
        "2000000",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    t
}

#[test]
fn a_reader_that_goes_away_ends_the_run_quietly() {
    let chatter = guest("chatter.elf", b"", b"line\n");
    // Endless output: the reader takes one line and leaves.
    let o = read_then_close(&["run", chatter.path(), "--stats"], 1);
    assert_quiet_end(&o, "native console");
    let o = read_then_close(&["run", "--vm", chatter.path(), "--stats"], 1);
    assert_quiet_end(&o, "VM console (the prefixer)");
    // Output that would fit in the pipe: the reader leaves before reading.
    let kestrel = images().join("kestrel.elf");
    let o = read_then_close(&["run", "--vm", kestrel.to_str().unwrap(), "--stats"], 0);
    assert_quiet_end(&o, "kestrel under the monitor");
    let o = read_then_close(&[], 0);
    assert_quiet_end(&o, "the demo");
    let trace = kestrel_trace();
    let o = read_then_close(&["flow", trace.path()], 0);
    assert_quiet_end(&o, "flow");
    // A silent guest: --stats and --dump-regs make the first writes.
    let silent = halting("silent.elf", 0);
    let o = read_then_close(&["run", silent.path(), "--stats"], 0);
    assert_quiet_end(&o, "--stats");
    let o = read_then_close(&["run", silent.path(), "--dump-regs"], 0);
    assert_quiet_end(&o, "--dump-regs");
}

#[test]
fn a_full_disk_is_named_in_one_line_with_status_5() {
    let hello = images().join("hello.elf");
    let hello = hello.to_str().unwrap();
    let no_space = "cannot write standard output: No space left on device";
    let o = full_disk(&["run", hello, "--stats"]);
    assert_one_line(&o, 5, no_space, "native");
    let o = full_disk(&["run", "--vm", hello, "--stats", "--dump-regs"]);
    assert_one_line(&o, 5, no_space, "under the monitor");
    let silent = halting("silent.elf", 0);
    let o = full_disk(&["run", silent.path(), "--stats"]);
    assert_one_line(&o, 5, no_space, "--stats");
    let o = full_disk(&["run", silent.path(), "--dump-regs=json"]);
    assert_one_line(&o, 5, no_space, "--dump-regs");
    let o = full_disk(&["bench", "--help"]);
    assert_one_line(&o, 5, no_space, "--help");
    let trace = kestrel_trace();
    let o = full_disk(&["flow", trace.path()]);
    assert_one_line(&o, 5, no_space, "flow");
    // A trace file on a full disk: reported, not lost.
    let smp = images().join("smp.elf");
    let o = run(&[
        "run",
        smp.to_str().unwrap(),
        "--trace",
        "all",
        "--trace-file",
        "/dev/full",
        "--max-cycles",
        "50000000",
    ]);
    assert_one_line(
        &o,
        5,
        "cannot write the trace file /dev/full: No space left on device",
        "native trace file",
    );
    let o = run(&[
        "run",
        "--vm",
        hello,
        "--trace",
        "all",
        "--trace-file",
        "/dev/full",
    ]);
    assert_one_line(&o, 5, "the trace file /dev/full", "monitor trace file");
    let vm = format!("{hello},name=left,console=/dev/full");
    let o = run(&["run", "--vm", &vm]);
    assert_one_line(&o, 5, "cannot write left's console file", "console file");
}

/// Starts `disco ARGS`, waits for the guest's `ready` line, sends SIGINT.
fn interrupt(args: &[&str]) -> (i32, String, String) {
    let mut child = spawn(args, Stdio::piped());
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("ready") {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "no ready line");
        seen.push_str(&line);
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    out.read_to_string(&mut seen).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), seen, err)
}

#[test]
fn ctrl_c_says_where_each_cpu_is_and_prints_the_asked_for_stats() {
    let spin = guest("spin.elf", b"ready\n", b"");
    let (code, out, err) = interrupt(&["run", spin.path(), "--cpus", "2", "--stats"]);
    assert_eq!(code, 130, "{err}");
    let mut lines = err.lines();
    let first = lines.next().unwrap_or("");
    assert!(
        first.starts_with("disco: interrupted (Ctrl-C) at cycle "),
        "{err}"
    );
    // CPU 0 spins in the loop after its print; CPU 1 was never started.
    let cpu0 = lines.next().unwrap_or("");
    assert!(
        cpu0.starts_with("  cpu0: pc 0x8001") && cpu0.ends_with("kernel mode, running"),
        "{err}"
    );
    assert_eq!(
        lines.next(),
        Some("  cpu1: pc 0x00000000, kernel mode, parked")
    );
    assert!(
        out.contains("total: ") && out.contains("cpu1: 0 instructions"),
        "{out}"
    );

    let vm = format!("{},name=spinner", spin.path());
    let (code, out, err) = interrupt(&["run", "--vm", &vm, "--stats"]);
    assert_eq!(code, 130, "{err}");
    assert!(
        err.starts_with("disco: interrupted (Ctrl-C) at cycle "),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("  spinner.0: pc 0x8001") && l.contains("kernel mode")),
        "{err}"
    );
    assert!(out.contains("spinner: still running"), "{out}");
    assert!(out.contains("VM spinner:"), "the --stats report: {out}");
}

#[test]
fn every_nonzero_exit_says_which_it_is() {
    // A guest halting with 2 is not bad input: the line says whose it is.
    let two = halting("two.elf", 2);
    let o = run(&["run", two.path()]);
    assert_one_line(
        &o,
        2,
        "disco: the guest halted with status 2 (exit status 2)",
        "native halt",
    );
    let three = halting("three.elf", 3);
    let vm = format!("{},name=three", three.path());
    let o = run(&["run", "--vm", &vm]);
    assert_one_line(
        &o,
        1,
        "not every VM halted with status 0 (three halted with status 3; exit status 1)",
        "VM halt",
    );
    let spin = guest("loop.elf", b"", b"");
    let o = run(&["run", spin.path(), "--max-cycles", "100000"]);
    assert_one_line(&o, 3, "(--max-cycles)", "cycle limit");
    let o = run(&["run", "--vm", spin.path(), "--max-cycles", "100000"]);
    assert_one_line(&o, 3, "(--max-cycles)", "cycle limit under the monitor");
    let o = run(&["run", "/nonexistent.elf"]);
    assert_one_line(&o, 2, "/nonexistent.elf: cannot read", "bad input");
    let o = run(&["run", "--quantum", "-5"]);
    assert!(
        text(&o.stderr).contains("must be a whole number, not negative"),
        "{}",
        text(&o.stderr)
    );
    assert!(!text(&o.stderr).contains("'-- -5'"));
}

/// The exit statuses `--help` lists are the ones docs/config.md lists.
#[test]
fn help_and_docs_list_the_same_exit_statuses() {
    let help = text(&run(&["run", "--help"]).stdout);
    let docs = std::fs::read_to_string(root().join("docs/config.md")).unwrap();
    let section = help.split("EXIT STATUS").nth(1).unwrap();
    let mut codes = 0;
    for line in section.lines().skip(1) {
        // A status's description may go on over further, deeper-indented lines.
        if line.starts_with("    ") {
            continue;
        }
        let Some(code) = line.split_whitespace().next() else {
            continue;
        };
        codes += 1;
        assert!(
            docs.contains(&format!("| {code} |")),
            "docs/config.md has no row for exit status {code}"
        );
    }
    assert!(codes >= 9, "{help}");
    for example in ["EXAMPLES:", "disco run guest-kits/images/hello.elf"] {
        assert!(help.contains(example), "{help}");
    }
}
