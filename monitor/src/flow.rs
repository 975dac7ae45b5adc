//! Trap-flow tables: a monitor trace (docs/trace-format.md) as the table
//! textbooks draw, one column per layer (user process, guest OS, monitor,
//! hardware), one row per step, in Markdown or as a standalone HTML page.
//! The table is built from the trace's events (`records` reads a file's
//! lines back into them), not from its text.

use std::fmt::Write as _;
use std::ops::Range;

pub use crate::obs::is_bare_machine_line;
use crate::obs::{event_text, MonEvent, ReadError, Reader, Record};

/// The columns, left to right.
pub const COLUMNS: [&str; 4] = ["user process", "guest OS", "monitor", "hardware"];

/// One step: which column it belongs to, and what happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub column: usize,
    pub text: String,
}

/// A trace line that is a monitor trace line but not one the format
/// defines, with its number in the file (from 1).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct LineError {
    pub line: usize,
    pub error: ReadError,
}

/// Reads the monitor trace lines among `lines` (with or without the
/// leading cycle count that `--trace-file` writes; `first` is the number
/// of the first one) into records, and the VM names they use. Lines that
/// are not monitor trace lines are skipped.
pub fn records<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    first: usize,
) -> Result<(Vec<Record>, Vec<String>), LineError> {
    let mut reader = Reader::default();
    let mut out = Vec::new();
    for (i, raw) in lines.into_iter().enumerate() {
        match reader.read(raw) {
            Ok(Some(r)) => out.push(r),
            Ok(None) => {}
            Err(error) => {
                return Err(LineError {
                    line: first + i,
                    error,
                })
            }
        }
    }
    Ok((out, reader.names().to_vec()))
}

/// The table's steps for `records` (VMs named by `names`).
pub fn steps(records: &[Record], names: &[String]) -> Vec<Step> {
    let mut out = Vec::new();
    let mut previous: Option<&MonEvent> = None;
    for r in records {
        let e = &r.event;
        match e {
            MonEvent::Exit {
                code,
                bd,
                user,
                insn,
                ..
            } => {
                // An exit: the instruction in its layer, the trap in hardware.
                let mut text = insn.as_ref().map(ToString::to_string).unwrap_or_default();
                if *bd && insn.is_some() {
                    text.push_str(" (in a delay slot)");
                }
                out.push(Step {
                    column: if *user { 0 } else { 1 },
                    text,
                });
                out.push(Step {
                    column: 3,
                    text: format!("exception {code}: trap to the monitor"),
                });
            }
            MonEvent::Engine { pc, insn } => {
                // The instruction that trapped is executed again by the
                // emulation right after the trap; the monitor's own line
                // says what that did.
                let again = matches!(
                    previous,
                    Some(MonEvent::Exit { epc, bd: false, user: false, insn: Some(i), .. })
                        if epc == pc && i == insn
                );
                if !again {
                    out.push(Step {
                        column: 1,
                        text: format!("{insn} (emulated)"),
                    });
                }
            }
            MonEvent::BtBlock { pc, insns } => out.push(Step {
                // Guest-kernel code, run translated: the guest OS acts.
                column: 1,
                text: format!("{insns} instructions at {pc:#010x} (translated)"),
            }),
            _ => out.push(Step {
                column: 2,
                text: event_text(names, e),
            }),
        }
        previous = Some(e);
    }
    out
}

/// Which line containing the `--from` text starts the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Occurrence {
    /// The Nth, counting from 1.
    Nth(usize),
    Last,
}

/// Why a window could not be picked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("no line contains {0:?}")]
    NoStart(String),
    #[error("only {found} line(s) contain {text:?}, not {wanted}")]
    TooFew {
        text: String,
        found: usize,
        wanted: usize,
    },
    #[error("--nth counts from 1")]
    Zero,
    #[error("no line after the start contains {0:?}")]
    NoEnd(String),
}

/// The lines from the chosen one containing `from` (the first line
/// without it) through the first one from there on containing `to` (the
/// last line without it). A trace's first system calls are usually an exec, full of
/// TLB refills: a later occurrence shows the steady-state path.
pub fn window(
    lines: &[&str],
    from: Option<&str>,
    to: Option<&str>,
    which: Occurrence,
) -> Result<Range<usize>, WindowError> {
    let start = match from {
        None => 0,
        Some(f) => {
            let mut hits = lines
                .iter()
                .enumerate()
                .filter(|(_, l)| l.contains(f))
                .map(|(i, _)| i);
            match which {
                Occurrence::Nth(0) => return Err(WindowError::Zero),
                Occurrence::Nth(n) => hits.nth(n - 1).ok_or_else(|| {
                    let found = lines.iter().filter(|l| l.contains(f)).count();
                    if found == 0 {
                        WindowError::NoStart(f.to_string())
                    } else {
                        WindowError::TooFew {
                            text: f.to_string(),
                            found,
                            wanted: n,
                        }
                    }
                })?,
                Occurrence::Last => hits
                    .next_back()
                    .ok_or_else(|| WindowError::NoStart(f.to_string()))?,
            }
        }
    };
    let end = match to {
        None => lines.len(),
        Some(t) => lines
            .iter()
            .skip(start)
            .position(|l| l.contains(t))
            .map(|i| start + i + 1)
            .ok_or_else(|| WindowError::NoEnd(t.to_string()))?,
    };
    Ok(start..end)
}

/// The table in Markdown.
pub fn markdown(steps: &[Step]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| step | {} |", COLUMNS.join(" | "));
    let _ = writeln!(s, "|---|{}", "---|".repeat(COLUMNS.len()));
    for (i, st) in steps.iter().enumerate() {
        let cells: Vec<String> = (0..COLUMNS.len())
            .map(|c| {
                if c == st.column {
                    st.text.replace('|', "\\|")
                } else {
                    String::new()
                }
            })
            .collect();
        let _ = writeln!(s, "| {} | {} |", i + 1, cells.join(" | "));
    }
    s
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The table as a standalone HTML page (no external assets).
pub fn html(title: &str, steps: &[Step]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>\
         body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         th,td{{border:1px solid #999;padding:.3em .6em;vertical-align:top}}\
         td{{font-family:monospace;font-size:90%}}th{{background:#eee}}\
         td.c0{{background:#eef6ff}}td.c1{{background:#eefbea}}td.c2{{background:#fff4e0}}td.c3{{background:#f4eefa}}\
         </style></head><body>\n<h1>{t}</h1>\n<table>\n<tr><th>step</th>",
        t = escape(title)
    );
    for c in COLUMNS {
        let _ = write!(s, "<th>{c}</th>");
    }
    s.push_str("</tr>\n");
    for (i, st) in steps.iter().enumerate() {
        let _ = write!(s, "<tr><td>{}</td>", i + 1);
        for c in 0..COLUMNS.len() {
            if c == st.column {
                let _ = write!(s, "<td class=\"c{c}\">{}</td>", escape(&st.text));
            } else {
                s.push_str("<td></td>");
            }
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n</body></html>\n");
    s
}
