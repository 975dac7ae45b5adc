//! `disco flow` on what it cannot draw: a bare-machine trace is refused in
//! one line (it has no guest or monitor layers), not drawn as a table with
//! everything in the monitor column, and so is a monitor line that is no
//! event of the format. And what `--trace exc` holds under the monitor.

#![allow(clippy::panic, clippy::unwrap_used)]

mod common;

#[test]
fn a_bare_machine_trace_is_refused_in_one_line() {
    let trace = std::env::temp_dir().join(format!("disco-flow-bare-{}.trace", std::process::id()));
    let path = trace.to_str().unwrap();
    let ran = common::run(&[
        "run",
        "guest-kits/images/smp.elf",
        "--cpus",
        "2",
        "--trace",
        "exc,irq",
        "--trace-file",
        path,
    ]);
    assert!(ran.status.success(), "{}", common::text(&ran.stderr));
    let drawn = common::run(&["flow", path]);
    let _ = std::fs::remove_file(&trace);
    let err = common::text(&drawn.stderr);
    assert_eq!(drawn.status.code(), Some(2), "{err}");
    assert!(drawn.stdout.is_empty(), "no table");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bare-machine trace"), "{err}");
    assert!(
        err.contains("--vm"),
        "says how to get a monitor trace: {err}"
    );
}

#[test]
fn nth_needs_from_and_counts_from_one() {
    let o = common::run(&["flow", "x.trace", "--nth", "2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(common::text(&o.stderr).contains("--from"));
    let o = common::run(&["flow", "x.trace", "--from", "a", "--nth", "1", "--last"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(common::text(&o.stderr).contains("cannot be used with"));
}

/// A temporary trace file path for this test process.
fn trace_path(what: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("disco-flow-{what}-{}.trace", std::process::id()))
}

/// `--trace exc` records the monitor's exits and what it did about them,
/// not the instructions its engine interprets: those are `insn`'s.
#[test]
fn engine_instructions_are_traced_under_insn_only() {
    let engine_lines = |categories: &str| {
        let trace = trace_path(categories);
        let path = trace.to_str().unwrap();
        let ran = common::run(&[
            "run",
            "--vm",
            // The engine's instructions: trap-and-emulate runs hello's
            // KSEG0 code there (the default translates it).
            "guest-kits/images/hello.elf,exec=direct",
            "--trace",
            categories,
            "--trace-file",
            path,
        ]);
        let text = std::fs::read_to_string(&trace).unwrap_or_default();
        let _ = std::fs::remove_file(&trace);
        assert!(ran.status.success(), "{}", common::text(&ran.stderr));
        assert!(
            text.contains(" monitor emulate "),
            "{categories}: what the monitor emulated is traced"
        );
        text.lines()
            .filter(|l| l.split_whitespace().nth(3) == Some("engine"))
            .count()
    };
    assert_eq!(engine_lines("exc"), 0);
    assert!(engine_lines("exc,insn") > 100);
}

/// A line in the monitor's columns that is no event of the format stops
/// `flow` with one line naming the file and the line.
#[test]
fn a_line_that_is_no_event_is_refused_with_its_number() {
    let trace = trace_path("unknown");
    std::fs::write(
        &trace,
        "       100 cpu0 vm0.0 user    exit Sys at 0x00400000  syscall\n\
         \x20      120 cpu0 vm0.0 monitor beam the guest up\n",
    )
    .unwrap();
    let drawn = common::run(&["flow", trace.to_str().unwrap()]);
    let _ = std::fs::remove_file(&trace);
    let err = common::text(&drawn.stderr);
    assert_eq!(drawn.status.code(), Some(2), "{err}");
    assert!(drawn.stdout.is_empty(), "no table");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("line 2") && err.contains("beam the guest up"),
        "{err}"
    );
}
