//! The README's tour, read from README.md itself: every file it writes goes
//! under its scratch directory, and its trace-to-table example, run exactly
//! as written (with the scratch directory moved to a temporary one), still
//! draws one clean system call from kestrel as the monitor changes.

#![allow(clippy::panic, clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

/// Where the tour writes its files.
const SCRATCH: &str = "/tmp/disco";

/// The shell lines of the README's "A short tour" block.
fn tour() -> Vec<String> {
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    let block = readme
        .split("## A short tour")
        .nth(1)
        .and_then(|s| s.split("```sh\n").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("README.md has a tour block");
    block
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// A command line's words as the shell splits them (double quotes and
/// comments only: all the tour uses).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut word, mut quoted, mut any) = (String::new(), false, false);
    for c in line.chars() {
        match c {
            '#' if !quoted && !any => break,
            '"' => (quoted, any) = (!quoted, true),
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut word));
                }
                any = false;
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(word);
    }
    out
}

/// The `disco` arguments of a tour line (`cargo run --release -- ARGS`).
fn disco_args(line: &str) -> Option<Vec<String>> {
    let w = words(line);
    let at = w.iter().position(|x| x == "--")?;
    (w.get(..3)? == ["cargo", "run", "--release"]).then(|| w[at + 1..].to_vec())
}

/// Every path a tour command writes: trace files, HTML pages, VM consoles.
fn outputs(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if a == "--trace-file" || a == "--html" {
            out.extend(args.get(i + 1).cloned());
        }
        for opt in a.split(',') {
            if let Some(p) = opt.strip_prefix("console=") {
                out.push(p.to_string());
            }
        }
    }
    out
}

#[test]
fn the_tour_writes_only_under_its_scratch_directory() {
    let lines = tour();
    assert_eq!(
        lines.first().map(|l| words(l)),
        Some(vec!["mkdir".into(), "-p".into(), SCRATCH.into()]),
        "the tour starts by making its scratch directory"
    );
    let written: Vec<String> = lines
        .iter()
        .filter_map(|l| disco_args(l))
        .flat_map(|a| outputs(&a))
        .collect();
    assert!(written.len() >= 4, "the tour writes files: {written:?}");
    for path in written {
        assert!(
            path.starts_with(&format!("{SCRATCH}/")),
            "{path}: the tour writes into the checkout"
        );
    }
}

/// A scratch directory of this test, removed at the end.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_tours_flow_example_draws_one_clean_system_call() {
    let lines = tour();
    // The flow command and the run that writes the trace it reads.
    let flow = lines
        .iter()
        .filter_map(|l| disco_args(l))
        .find(|a| a.first().is_some_and(|c| c == "flow"))
        .expect("the tour has a flow example");
    let trace = flow.get(1).unwrap().clone();
    let run = lines
        .iter()
        .filter_map(|l| disco_args(l))
        .find(|a| a.first().is_some_and(|c| c == "run") && a.contains(&trace))
        .expect("the tour writes the trace its flow example reads");

    let dir = Scratch(std::env::temp_dir().join(format!("disco-readme-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let here = |args: &[String]| -> Vec<String> {
        let to = dir.0.to_str().unwrap();
        args.iter().map(|a| a.replace(SCRATCH, to)).collect()
    };
    let ran = common::run(&here(&run).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ran.status.success(), "{}", common::text(&ran.stderr));
    let drawn = common::run(&here(&flow).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(drawn.status.success(), "{}", common::text(&drawn.stderr));
    let table = common::text(&drawn.stdout);

    // One system call, start to end: the user's syscall traps, the monitor
    // reflects it to the guest kernel, whose ERET the monitor emulates.
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(2)
        .map(|r| r.split('|').map(str::trim).collect())
        .collect();
    // `| step | user process | guest OS | monitor | hardware |`
    let cell = |r: &[&str], c: usize| r.get(c + 2).copied().unwrap_or("").to_string();
    let first = rows.first().unwrap();
    assert_eq!(cell(first, 0), "syscall", "{table}");
    assert_eq!(
        cell(rows.get(1).unwrap(), 3),
        "exception Sys: trap to the monitor",
        "{table}"
    );
    assert!(cell(rows.last().unwrap(), 2).starts_with("emulate eret: resume the guest"));
    assert!(
        rows.len() <= 12,
        "a steady-state system call, not an exec full of TLB refills:\n{table}"
    );
    assert!(
        rows.iter().any(|r| !cell(r, 1).is_empty()),
        "the guest kernel acts:\n{table}"
    );
    insta::assert_snapshot!(table);

    let page = flow.iter().skip_while(|a| *a != "--html").nth(1).unwrap();
    let page = std::fs::read_to_string(&here(std::slice::from_ref(page))[0]).unwrap();
    assert!(page.contains("<td class=\"c0\">syscall</td>"), "{page}");
}
