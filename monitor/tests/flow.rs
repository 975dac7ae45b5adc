//! Trap-flow tables (`monitor::flow`) from the trapkit guest's trace: the
//! Markdown of a system call and of a TLB miss, snapshotted, and the
//! standalone HTML page.

#![allow(clippy::panic, clippy::unwrap_used)]

mod common;

use monitor::flow::{html, markdown, steps};

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
