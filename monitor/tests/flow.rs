//! Trap-flow tables (`monitor::flow`) from the trapkit guest's trace: the
//! Markdown of a system call and of a TLB miss, snapshotted, and the
//! standalone HTML page.

#![allow(clippy::panic, clippy::unwrap_used)]

mod common;

use monitor::flow::{
    html, is_bare_machine_line, markdown, records, steps, window, Occurrence, Step, WindowError,
};

/// What `disco flow` does with a trace's text: read it back into events,
/// then draw the steps of those.
fn steps_of<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<Step> {
    let (recs, names) = records(lines, 1).unwrap();
    steps(&recs, &names)
}

#[test]
fn flow_syscall_markdown() {
    let m = common::run_trapkit();
    let lines = common::story(&m, "user    exit Sys", "emulate eret");
    insta::assert_snapshot!(markdown(&steps_of(lines.lines())));
}

#[test]
fn flow_tlb_miss_markdown() {
    let m = common::run_trapkit();
    let lines = common::story(&m, "BadVAddr 0x00402000", "emulate eret");
    insta::assert_snapshot!(markdown(&steps_of(lines.lines())));
}

/// `--trace-file` puts the cycle in front of each line; the table is the same.
#[test]
fn cycle_prefixes_and_other_lines_are_handled() {
    let m = common::run_trapkit();
    let plain = common::story(&m, "user    exit Sys", "emulate eret");
    let with_cycles: Vec<String> = plain
        .lines()
        .enumerate()
        .map(|(i, l)| format!("{:>12} {l}", 1000 + i))
        .chain(["garbage that is not a trace line".to_string()])
        .collect();
    assert_eq!(
        steps_of(with_cycles.iter().map(String::as_str)),
        steps_of(plain.lines())
    );
}

/// The table drawn from the monitor's own events is the one drawn from
/// their lines read back: the trace text loses nothing the table shows.
#[test]
fn the_table_from_events_is_the_table_from_their_lines() {
    let m = common::run_trapkit();
    let names = &m.trace.vm_names;
    assert_eq!(
        steps(&m.trace.records, names),
        steps_of(m.trace.lines().iter().map(String::as_str))
    );
}

/// A line in the monitor's columns whose event the format does not define
/// is an error naming its line, not a row silently dropped.
#[test]
fn an_unknown_monitor_event_is_an_error_naming_its_line() {
    let lines = [
        "cpu0 trapkit.0 monitor VM halted with status 0",
        "not a trace line",
        "cpu0 trapkit.0 monitor teleport the guest to 0x80001000",
    ];
    let e = records(lines, 1).unwrap_err();
    assert_eq!(e.line, 3);
    assert!(e.to_string().contains("teleport the guest"), "{e}");
}

#[test]
fn html_page_is_standalone() {
    let m = common::run_trapkit();
    let lines = common::story(&m, "BadVAddr 0x00402000", "emulate eret");
    let page = html("A TLB miss <under> the monitor", &steps_of(lines.lines()));
    assert!(page.starts_with("<!DOCTYPE html>"));
    for col in ["user process", "guest OS", "monitor", "hardware"] {
        assert!(page.contains(&format!("<th>{col}</th>")), "{col}");
    }
    assert!(page.contains("&lt;under&gt;"), "the title is escaped");
    assert!(!page.contains("http"), "no external assets");
    assert!(!page.contains("<script"), "no scripts");
}

/// A bare-machine trace has modes, not layers: no steps, and recognised as
/// such so `disco flow` can say so instead of drawing a garbled table.
#[test]
fn bare_machine_lines_are_recognised_and_not_drawn() {
    let bare = [
        "        2666 cpu0 kernel     exception Sys at 0x80010d4c <main+0xac>, vector 0x80000180",
        "      240000 cpu1 user       interrupt, pending & enabled IP bits 0x4000",
    ];
    assert!(bare.iter().all(|l| is_bare_machine_line(l)));
    assert_eq!(steps_of(bare), vec![]);
    let m = common::run_trapkit();
    let story = common::story(&m, "user    exit Sys", "emulate eret");
    assert!(!story.lines().any(is_bare_machine_line));
}

#[test]
fn window_picks_the_nth_or_last_occurrence() {
    let lines = [
        "a exit Sys",
        "b",
        "c emulate eret",
        "d exit Sys",
        "e emulate eret",
        "f exit Sys",
    ];
    let pick = |which| window(&lines, Some("exit Sys"), Some("emulate eret"), which);
    assert_eq!(pick(Occurrence::Nth(1)), Ok(0..3));
    assert_eq!(pick(Occurrence::Nth(2)), Ok(3..5));
    assert_eq!(
        pick(Occurrence::Nth(4)),
        Err(WindowError::TooFew {
            text: "exit Sys".into(),
            found: 3,
            wanted: 4
        })
    );
    assert_eq!(pick(Occurrence::Nth(0)), Err(WindowError::Zero));
    // The last call never returns: no end after it.
    assert_eq!(
        pick(Occurrence::Last),
        Err(WindowError::NoEnd("emulate eret".into()))
    );
    assert_eq!(
        window(&lines, Some("exit Sys"), None, Occurrence::Last),
        Ok(5..6)
    );
    assert_eq!(window(&lines, None, None, Occurrence::Nth(1)), Ok(0..6));
    assert_eq!(
        window(&lines, Some("reflect"), None, Occurrence::Nth(1)),
        Err(WindowError::NoStart("reflect".into()))
    );
}
