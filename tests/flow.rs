//! `disco flow` on what it cannot draw: a bare-machine trace is refused in
//! one line (it has no guest or monitor layers), not drawn as a table with
//! everything in the monitor column.

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
