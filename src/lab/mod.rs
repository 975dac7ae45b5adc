//! `disco lab`: course labs (`labs/`, docs/labs.md). A lab is a handout,
//! a `lab.toml` (summary, what the starter copies, the graded tests) and
//! one stub per marked region of the reference code. This module lists
//! them, writes starter copies and grades copies; `main` only parses the
//! arguments and prints.

mod catalog;
mod grade;
mod kernel;
mod monitor;
mod regions;
mod report;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

pub(crate) use catalog::{find_tree, Lab};
pub(crate) use grade::{grade, Grading};
pub(crate) use report::Report;

#[derive(Args, Debug)]
pub(crate) struct LabArgs {
    /// The disco checkout holding labs/ (default: found above the disco binary).
    #[arg(long, value_name = "PATH", global = true)]
    pub(crate) tree: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: LabCommand,
}

#[derive(Subcommand, Debug)]
pub(crate) enum LabCommand {
    /// List the labs, one line each.
    List,
    /// Write a starter copy of lab NAME into DIR (the lab's regions replaced by stubs).
    Start {
        name: String,
        dir: PathBuf,
        /// Keep the reference solutions instead of the stubs (teachers, tests).
        #[arg(long)]
        reference: bool,
    },
    /// Build and grade a copy of lab NAME (without DIR: the reference tree).
    Grade {
        name: String,
        dir: Option<PathBuf>,
        /// Grade every subdirectory of DIR (one submission each).
        #[arg(long, value_name = "DIR", conflicts_with = "dir")]
        class: Option<PathBuf>,
        /// With --class: write one row per submission (name, each test's points, total).
        #[arg(long, value_name = "FILE", requires = "class")]
        csv: Option<PathBuf>,
    },
}

/// Exit status of a grade below full marks (bad input is 2, as elsewhere).
pub(crate) const EXIT_BELOW_FULL_MARKS: i32 = 1;

/// Runs `disco lab ...`; returns the exit status.
pub(crate) fn run(args: &LabArgs) -> Result<i32> {
    let tree = match &args.tree {
        Some(t) => {
            if !t.join("labs").is_dir() {
                bail!("--tree {}: no labs/ directory there", t.display());
            }
            t.clone()
        }
        None => {
            let exe = std::env::current_exe().context("cannot find the disco binary")?;
            find_tree(&exe)?
        }
    };
    match &args.command {
        LabCommand::List => {
            for lab in catalog::all(&tree)? {
                crate::out::print(&format!(
                    "{:<10} {:<8} {} ({} tests, {} points)\n",
                    lab.name,
                    lab.kind.word(),
                    lab.summary,
                    lab.tests.len(),
                    lab.max_points()
                ))?;
            }
            Ok(0)
        }
        LabCommand::Start {
            name,
            dir,
            reference,
        } => {
            let lab = Lab::load(&tree, name)?;
            regions::start(&tree, &lab, dir, !reference)?;
            crate::out::print(&format!(
                "lab {name}: {} copy written to {}\n",
                if *reference { "reference" } else { "starter" },
                dir.display()
            ))?;
            crate::out::print(&format!(
                "  read {}\n",
                dir.join("labs").join(name).join("README.md").display()
            ))?;
            crate::out::print(&format!(
                "  then: disco lab grade {name} {}\n",
                dir.display()
            ))?;
            Ok(0)
        }
        LabCommand::Grade {
            name,
            dir,
            class,
            csv,
        } => {
            let lab = Lab::load(&tree, name)?;
            let g = Grading::new(&tree, std::env::current_exe()?)?;
            match class {
                Some(class) => grade_class(&g, &lab, class, csv.as_deref()),
                None => {
                    let r = grade(&g, &lab, dir.as_deref())?;
                    crate::out::print(&r.table())?;
                    Ok(if r.full_marks() {
                        0
                    } else {
                        EXIT_BELOW_FULL_MARKS
                    })
                }
            }
        }
    }
}

/// Grades every subdirectory of `class` in name order, prints one line per
/// submission and writes the CSV. A submission that cannot be graded at
/// all (not a copy of this lab) gets zero and a note, and the others go on.
fn grade_class(g: &Grading, lab: &Lab, class: &Path, csv: Option<&Path>) -> Result<i32> {
    let mut subs: Vec<PathBuf> = std::fs::read_dir(class)
        .with_context(|| format!("{}: cannot read the class directory", class.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    subs.sort();
    if subs.is_empty() {
        bail!(
            "{}: no submissions (subdirectories) to grade",
            class.display()
        );
    }
    let mut rows = Vec::new();
    for sub in &subs {
        let who = sub
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let r = match grade(g, lab, Some(sub)) {
            Ok(r) => r,
            Err(e) => {
                crate::out::print(&format!("{who}: not graded: {e:#}\n"))?;
                Report::ungraded(lab, &format!("{e:#}"))
            }
        };
        let failed = r.failed();
        if failed.is_empty() {
            crate::out::print(&format!("{who}: {}/{}\n", r.points(), r.max_points()))?;
        } else {
            crate::out::print(&format!(
                "{who}: {}/{} (failed: {})\n",
                r.points(),
                r.max_points(),
                failed.join(", ")
            ))?;
        }
        rows.push((who, r));
    }
    if let Some(csv) = csv {
        std::fs::write(csv, report::csv(lab, &rows))
            .with_context(|| format!("{}: cannot write", csv.display()))?;
        crate::out::print(&format!(
            "wrote {} ({} submissions)\n",
            csv.display(),
            rows.len()
        ))?;
    }
    Ok(0)
}
