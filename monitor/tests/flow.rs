//! Trap-flow tables (`monitor::flow`) from the trapkit guest's trace: the
//! Markdown of a system call and of a TLB miss, snapshotted, and the
//! standalone HTML page.

#![allow(clippy::panic, clippy::unwrap_used)]

mod common;

use monitor::flow::{html, is_bare_machine_line, markdown, steps, window, Occurrence, WindowError};

#[test]
fn flow_syscall_markdown() {
    let m = common::run_trapkit();
    let lines = common::story(&m, "user    exit Sys", "emulate eret");
    insta::assert_snapshot!(markdown(&steps(lines.lines())));
}

#[test]
fn flow_tlb_miss_markdown() {
    let m = common::run_trapkit();
    let lines = common::story(&m, "BadVAddr 0x00402000", "emulate eret");
    insta::assert_snapshot!(markdown(&steps(lines.lines())));
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
        steps(with_cycles.iter().map(String::as_str)),
        steps(plain.lines())
    );
}

#[test]
fn html_page_is_standalone() {
    let m = common::run_trapkit();
    let lines = common::story(&m, "BadVAddr 0x00402000", "emulate eret");
    let page = html("A TLB miss <under> the monitor", &steps(lines.lines()));
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
    assert_eq!(steps(bare), vec![]);
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
