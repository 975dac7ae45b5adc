//! Grading: build the copy (kernel labs: the kit Makefile, monitor labs:
//! cargo), run its guest natively and under the monitor with a cycle
//! limit, and score each test of `lab.toml` against those runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::catalog::{Kind, Lab, TestSpec};
use super::report::{Report, Row};
use super::{kernel, monitor, regions};

/// What grading needs besides the copy: the tree (handouts, tests, the
/// reference) and the reference `disco` binary, built from that tree.
pub(crate) struct Grading {
    pub(crate) tree: PathBuf,
    pub(crate) disco: PathBuf,
    /// Where cargo builds monitor-lab copies: one directory for every
    /// grading run, so a copy rebuilds only what differs.
    pub(crate) cargo_target: PathBuf,
}

impl Grading {
    pub(crate) fn new(tree: &Path, disco: PathBuf) -> Result<Grading> {
        let cargo_target = match std::env::var_os("DISCO_LAB_TARGET_DIR") {
            Some(d) => PathBuf::from(d),
            None => tree.join("target").join("labs"),
        };
        Ok(Grading {
            tree: tree.to_path_buf(),
            disco,
            cargo_target,
        })
    }
}

/// One run of a guest: its exit status, console lines (a VM's without
/// their `[vm0] ` prefix) and, under the monitor, its exception trace.
#[derive(Debug, Default)]
pub(crate) struct Run {
    pub(crate) console: Vec<String>,
    pub(crate) trace: Vec<String>,
    /// Monitor statistics (`--stats`) by name (`catalog::STATS`).
    pub(crate) stats: Vec<(String, u64)>,
    /// Why the run went wrong, for the notes (empty when it halted cleanly).
    pub(crate) trouble: Vec<String>,
}

/// The runs a lab's tests look at: natively and under the monitor, once
/// per quantum the lab names (labelled for the hints).
#[derive(Debug, Default)]
pub(crate) struct Runs {
    pub(crate) native: Vec<(String, Run)>,
    pub(crate) monitor: Vec<(String, Run)>,
    /// The reference monitor's run of the same guest (monitor labs).
    pub(crate) reference: Run,
}

/// Grades `dir` (or, without it, the reference tree) as a copy of `lab`.
pub(crate) fn grade(g: &Grading, lab: &Lab, dir: Option<&Path>) -> Result<Report> {
    if let Some(d) = dir {
        if !d.is_dir() {
            bail!("{}: no such directory", d.display());
        }
        match regions::stamp(d) {
            Some(n) if n == lab.name => {}
            Some(n) => bail!("{}: a copy of lab {n}, not {}", d.display(), lab.name),
            None => bail!(
                "{}: not a lab copy (no {}; make one with `disco lab start {} DIR`)",
                d.display(),
                regions::STAMP,
                lab.name
            ),
        }
    }
    let what = match dir {
        Some(d) => d.display().to_string(),
        None => format!("the reference tree {}", g.tree.display()),
    };
    let built = match lab.kind {
        Kind::Kernel => kernel::build(g, lab, dir),
        Kind::Monitor => monitor::build(g, lab, dir),
    };
    let (disco, image) = match built {
        Ok(b) => b,
        Err(why) => {
            let mut r = Report::ungraded(lab, "the copy did not build (see above)");
            r.what = what;
            r.notes = why;
            return Ok(r);
        }
    };
    let needs = |f: fn(&TestSpec) -> bool| lab.tests.iter().any(f);
    let how = Observe {
        trace: needs(|t| t.story.is_some()),
        stats: needs(|t| t.stat.is_some()),
    };
    let mut runs = Runs::default();
    // No quanta listed: one run with the default quantum.
    let quanta: Vec<Option<u64>> = if lab.quanta.is_empty() {
        vec![None]
    } else {
        lab.quanta.iter().copied().map(Some).collect()
    };
    for &q in &quanta {
        let label = |what: &str| match q {
            Some(q) => format!("{what}, quantum {q}"),
            None => what.to_string(),
        };
        if needs(|t| t.runs.native()) {
            runs.native
                .push((label("native"), run(&disco, lab, &image, None, q)?));
        }
        if needs(|t| t.runs.monitor()) {
            runs.monitor
                .push((label("monitor"), run(&disco, lab, &image, Some(how), q)?));
        }
    }
    if needs(|t| t.same_line.is_some() || t.story.is_some() || t.stat.is_some()) {
        runs.reference = run(&g.disco, lab, &image, Some(how), None)?;
    }
    let mut notes = Vec::new();
    for (name, r) in runs.native.iter().chain(&runs.monitor) {
        notes.extend(r.trouble.iter().map(|t| format!("{name} run: {t}")));
    }
    let rows: Vec<Row> = lab.tests.iter().map(|t| score(t, &runs)).collect();
    for (t, r) in lab.tests.iter().zip(&rows) {
        if !t.own && !r.passed() {
            notes.push(format!(
                "{} passes in the starter and fails here: something that worked broke",
                t.name
            ));
        }
    }
    Ok(Report {
        lab: lab.name.clone(),
        what,
        rows,
        notes,
    })
}

/// What a monitor run must record besides the console.
#[derive(Clone, Copy, Debug)]
struct Observe {
    trace: bool,
    stats: bool,
}

/// Runs `image` with `disco`: natively (`vm` None), or as one VM with the
/// lab's pinned monitor flags and what `vm` asks to record.
fn run(
    disco: &Path,
    lab: &Lab,
    image: &Path,
    vm: Option<Observe>,
    quantum: Option<u64>,
) -> Result<Run> {
    let trace_file = std::env::temp_dir().join(format!(
        "disco-lab-{}-{}.trace",
        lab.name,
        std::process::id()
    ));
    let out = command(disco, lab, image, vm, quantum, &trace_file)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", disco.display()))?;
    let mut r = Run::default();
    read_console(&mut r, &String::from_utf8_lossy(&out.stdout), vm.is_some());
    judge_exit(
        &mut r,
        out.status.code(),
        &String::from_utf8_lossy(&out.stderr),
        lab,
    );
    if vm.is_some_and(|o| o.trace) {
        let text = std::fs::read_to_string(&trace_file).unwrap_or_default();
        r.trace = text.lines().map(str::to_string).collect();
        let _ = std::fs::remove_file(&trace_file);
    }
    Ok(r)
}

/// The `disco run` command line of [`run`].
fn command(
    disco: &Path,
    lab: &Lab,
    image: &Path,
    vm: Option<Observe>,
    quantum: Option<u64>,
    trace_file: &Path,
) -> Command {
    let mut cmd = Command::new(disco);
    cmd.arg("run")
        .arg("--max-cycles")
        .arg(lab.cycles.to_string());
    if let Some(q) = quantum {
        cmd.arg("--quantum").arg(q.to_string());
    }
    let cpus = lab.cpus.unwrap_or(1);
    cmd.arg("--cpus").arg(cpus.to_string());
    let Some(o) = vm else {
        cmd.arg(image);
        return cmd;
    };
    cmd.args(&lab.monitor_flags);
    if o.trace {
        cmd.arg("--trace")
            .arg("exc")
            .arg("--trace-file")
            .arg(trace_file);
    }
    if o.stats {
        cmd.arg("--stats");
    }
    let mut spec = image.as_os_str().to_owned();
    spec.push(format!(",cpus={cpus}"));
    for k in &lab.vm_keys {
        spec.push(format!(",{k}"));
    }
    cmd.arg("--vm").arg(spec);
    cmd
}

/// The guest's console lines and, under the monitor, the statistics and a
/// stop by the monitor; a console line that says the guest failed is
/// trouble.
fn read_console(r: &mut Run, stdout: &str, vm: bool) {
    for l in stdout.lines() {
        match (vm, l.strip_prefix("[vm0] ")) {
            (true, Some(c)) => r.console.push(c.to_string()),
            (true, None) => {
                if let Some(why) = l.strip_prefix("vm0: stopped by the monitor: ") {
                    let why = why.split("; ").next().unwrap_or(why);
                    r.trouble.push(format!("the VM was stopped: {why}"));
                }
                r.stats.extend(stats_in(l));
            }
            (false, _) => r.console.push(l.to_string()),
        }
    }
    for l in &r.console {
        let said = format!("the guest said: {l}");
        if (l.contains("not implemented: see labs/")
            || l.contains("panic")
            || l.contains(" FAILED with status "))
            && !r.trouble.contains(&said)
        {
            r.trouble.push(said);
        }
    }
}

/// What `disco`'s exit status (`None`: killed by a signal) says went wrong,
/// if anything.
fn judge_exit(r: &mut Run, status: Option<i32>, stderr: &str, lab: &Lab) {
    // On the bare machine the exit status is the guest's own halt status,
    // any value, 3 (disco's cycle limit) included: stderr says which it was.
    let halted = stderr.contains("disco: the guest halted with status ");
    match status {
        // A non-zero halt status is the guest's verdict, which the tests read.
        Some(0 | 1) => {}
        Some(_) if halted => {}
        Some(3) => r.trouble.push(format!(
            "stopped after {} cycles: the guest hung, or did not halt in time",
            lab.cycles
        )),
        Some(c) if stderr.trim().is_empty() => {
            if r.console.is_empty() {
                r.trouble
                    .push(format!("disco exited with status {c} and no output"));
            }
        }
        _ => r.trouble.push(format!(
            "disco: {}",
            stderr.lines().last().unwrap_or("killed").trim()
        )),
    }
}

/// The statistics in one line of `--stats` output: `exits: N total, ...`
/// and `L2TLB: H hits, M misses`.
fn stats_in(line: &str) -> Option<(String, u64)> {
    let line = line.trim();
    let (name, rest) = if let Some(r) = line.strip_prefix("exits: ") {
        (
            "exits",
            r.strip_suffix(" total")
                .unwrap_or(r)
                .split(" total")
                .next()?,
        )
    } else if let Some(r) = line.strip_prefix("L2TLB: ") {
        ("l2tlb-hits", r.split(" hits").next()?)
    } else {
        return None;
    };
    Some((name.to_string(), rest.trim().parse().ok()?))
}

/// Scores one test against the runs.
fn score(t: &TestSpec, runs: &Runs) -> Row {
    let mut why: Vec<(String, String)> = Vec::new();
    let native = runs.native.iter().filter(|_| t.runs.native());
    let monitor = runs.monitor.iter().filter(|_| t.runs.monitor());
    for (name, r) in native.chain(monitor) {
        if let Some(problem) = check(t, r, &runs.reference) {
            // The same reason in several runs is said once.
            match why.iter_mut().find(|(_, p)| *p == problem) {
                Some((n, _)) => *n = format!("{n} and {name}"),
                None => why.push((name.clone(), problem)),
            }
        }
    }
    let why: Vec<String> = why.iter().map(|(n, p)| format!("{n}: {p}")).collect();
    let passed = why.is_empty();
    Row {
        test: t.name.clone(),
        points: if passed { t.points } else { 0 },
        max: t.points,
        hint: if passed {
            String::new()
        } else {
            format!("{} ({})", t.hint, why.join("; "))
        },
    }
}

/// Why run `r` fails test `t` (`None`: it passes).
fn check(t: &TestSpec, r: &Run, reference: &Run) -> Option<String> {
    if let Some(name) = &t.labtest {
        let ok = format!("labtest: {name} ok");
        let fail = format!("labtest: {name} FAIL ");
        if r.console.contains(&ok) {
            return None;
        }
        return Some(
            r.console
                .iter()
                .find_map(|l| l.strip_prefix(&fail))
                .map_or_else(|| "no result line".to_string(), str::to_string),
        );
    }
    if let Some(line) = &t.line {
        return (!r.console.iter().any(|l| l == line)).then(|| format!("no line {line:?}"));
    }
    if let Some(text) = &t.same_line {
        let find = |run: &Run| {
            run.console
                .iter()
                .find(|l| l.contains(text.as_str()))
                .cloned()
        };
        return match (find(r), find(reference)) {
            (Some(a), Some(b)) if a == b => None,
            (Some(a), Some(b)) => Some(format!("{a:?}, the reference prints {b:?}")),
            (None, Some(b)) => Some(format!("no line like the reference's {b:?}")),
            (_, None) => Some(format!("the reference printed no line with {text:?}")),
        };
    }
    if let Some(st) = &t.stat {
        let get = |run: &Run| {
            run.stats
                .iter()
                .find(|(n, _)| *n == st.name)
                .map(|&(_, v)| v)
        };
        let (Some(mine), Some(theirs)) = (get(r), get(reference)) else {
            return Some(format!("no {} figure in --stats", st.name));
        };
        // Counts far below 2^52: exact as f64.
        let ratio = mine as f64 / (theirs.max(1) as f64);
        let over = st.at_most.is_some_and(|m| ratio > m);
        let under = st.at_least.is_some_and(|m| ratio < m);
        return (over || under).then(|| {
            format!(
                "{} {mine}, the reference's {theirs} ({:.0}%)",
                st.name,
                ratio * 100.0
            )
        });
    }
    let story = t.story.as_ref()?;
    monitor::compare_stories(&r.trace, &reference.trace, story)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_read_from_the_stats_report() {
        assert_eq!(
            stats_in("  exits: 51953 total, Mod 43, TLBL 3228"),
            Some(("exits".to_string(), 51953))
        );
        assert_eq!(
            stats_in("  L2TLB: 2892 hits, 739 misses"),
            Some(("l2tlb-hits".to_string(), 2892))
        );
        assert_eq!(stats_in("  emulated: mfc0 107"), None);
    }
}
