//! Trap-flow tables: a monitor trace (docs/trace-format.md) as the table
//! textbooks draw, one column per layer (user process, guest OS, monitor,
//! hardware), one row per step, in Markdown or as a standalone HTML page.

use std::fmt::Write as _;
use std::ops::Range;

/// The columns, left to right.
pub const COLUMNS: [&str; 4] = ["user process", "guest OS", "monitor", "hardware"];

/// One step: which column it belongs to, and what happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub column: usize,
    pub text: String,
}

/// The layers a monitor trace line names (docs/trace-format.md).
const LAYERS: [&str; 4] = ["user", "guest", "engine", "monitor"];

/// The processor modes a bare-machine trace line names instead.
const MODES: [&str; 3] = ["kernel", "supervisor", "user"];

/// A trace line's layer or mode word and the event text after it, past the
/// optional cycle count and the `cpuN` word. The second word is `VM.VCPU`
/// in a monitor trace and absent in a bare-machine one.
fn fields(raw: &str) -> Option<(&str, &str, &str)> {
    // Words with where each ends, so the event keeps its own spacing (the
    // instruction follows two spaces).
    let mut words = raw
        .split_whitespace()
        .map(|w| (w, w.as_ptr() as usize - raw.as_ptr() as usize + w.len()));
    let mut first = words.next();
    if first.is_some_and(|(w, _)| w.chars().all(|c| c.is_ascii_digit())) {
        first = words.next();
    }
    let (cpu, _) = first?;
    let cpu_number = cpu.strip_prefix("cpu")?;
    if cpu_number.is_empty() || !cpu_number.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let ((second, second_end), (third, third_end)) = (words.next()?, words.next()?);
    let rest = |end: usize| raw.get(end..).unwrap_or("").trim();
    if MODES.contains(&second) {
        return Some(("", second, rest(second_end)));
    }
    Some((second, third, rest(third_end)))
}

/// The layer and event of a monitor trace line (`None` for anything else).
fn monitor_line(raw: &str) -> Option<(&str, &str)> {
    let (vm, layer, text) = fields(raw)?;
    let vcpu = vm.rsplit_once('.')?.1;
    let is_vcpu = !vcpu.is_empty() && vcpu.chars().all(|c| c.is_ascii_digit());
    (is_vcpu && LAYERS.contains(&layer)).then_some((layer, text))
}

/// Whether `raw` is a line of the bare machine's trace (`disco run IMAGE
/// --trace …`), which has no monitor, guest and user layers to draw.
pub fn is_bare_machine_line(raw: &str) -> bool {
    fields(raw).is_some_and(|(vm, _, _)| vm.is_empty())
}

/// Reads trace lines (with or without the leading cycle count that
/// `--trace-file` writes) into steps. Lines that are not monitor trace
/// lines are skipped.
pub fn steps<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<Step> {
    let mut out = Vec::new();
    for raw in lines {
        let Some((layer, text)) = monitor_line(raw) else {
            continue;
        };
        let text = text.to_string();
        match layer {
            "user" | "guest" => {
                // An exit: the instruction in its layer, the trap in hardware.
                if let Some(what) = text.strip_prefix("exit ") {
                    let (code, place) = what.split_once(" at ").unwrap_or((what, ""));
                    let insn = place.split_once("  ").map_or("", |(_, i)| i);
                    let insn = insn.split(", BadVAddr").next().unwrap_or(insn);
                    let column = if layer == "user" { 0 } else { 1 };
                    out.push(Step {
                        column,
                        text: insn.trim().to_string(),
                    });
                    out.push(Step {
                        column: 3,
                        text: format!("exception {code}: trap to the monitor"),
                    });
                } else {
                    out.push(Step {
                        column: if layer == "user" { 0 } else { 1 },
                        text,
                    });
                }
            }
            "engine" => {
                let insn = text.split_once("  ").map_or(text.as_str(), |(_, i)| i);
                out.push(Step {
                    column: 1,
                    text: format!("{insn} (emulated)"),
                });
            }
            _ => out.push(Step { column: 2, text }),
        }
    }
    // The instruction that trapped is executed again by the emulation right
    // after the trap; the monitor's own line says what that did.
    let mut merged: Vec<Step> = Vec::with_capacity(out.len());
    for st in out {
        let n = merged.len();
        if let (Some(trapped), Some(trap)) =
            (n.checked_sub(2).and_then(|i| merged.get(i)), merged.last())
        {
            if trap.column == 3
                && trapped.column == st.column
                && st.text == format!("{} (emulated)", trapped.text)
            {
                continue;
            }
        }
        merged.push(st);
    }
    merged
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
