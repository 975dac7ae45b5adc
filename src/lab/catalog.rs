//! The labs of a tree: `labs/NAME/lab.toml` read into a [`Lab`], and the
//! search for the tree itself.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// Which layer a lab's code is in, and so how it is built and run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    /// C and assembly in a copy of kestrel, built with the kit Makefile.
    Kernel,
    /// Rust in a copy of the workspace, built with cargo.
    Monitor,
}

impl Kind {
    pub(crate) fn word(self) -> &'static str {
        match self {
            Kind::Kernel => "kernel",
            Kind::Monitor => "monitor",
        }
    }
}

/// Where a test's guest runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Runs {
    Native,
    Monitor,
    #[default]
    Both,
}

impl Runs {
    pub(crate) fn native(self) -> bool {
        self != Runs::Monitor
    }
    pub(crate) fn monitor(self) -> bool {
        self != Runs::Native
    }
}

/// A trap-flow window: from the first trace line containing `from` to the
/// first line after it containing `to`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Story {
    pub(crate) from: String,
    pub(crate) to: String,
}

/// A monitor statistic (`--stats`) compared with the reference's: the
/// copy's figure must be at most / at least that many times the
/// reference's.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Stat {
    /// `exits` (total exits) or `l2tlb-hits`.
    pub(crate) name: String,
    pub(crate) at_most: Option<f64>,
    pub(crate) at_least: Option<f64>,
}

/// The statistics a `Stat` may name.
pub(crate) const STATS: [&str; 2] = ["exits", "l2tlb-hits"];

/// One graded test (docs/labs.md, "lab.toml").
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestSpec {
    pub(crate) name: String,
    pub(crate) points: u32,
    /// The lab's own test: it fails in the starter. The others must pass
    /// there too (the lab must not break what already worked).
    #[serde(default)]
    pub(crate) own: bool,
    pub(crate) hint: String,
    #[serde(default)]
    pub(crate) runs: Runs,
    /// Passes when labtest prints `labtest: <name> ok`.
    pub(crate) labtest: Option<String>,
    /// Passes when the console has exactly this line.
    pub(crate) line: Option<String>,
    /// Passes when the console line containing this text is the same as
    /// the reference's (monitor labs).
    pub(crate) same_line: Option<String>,
    /// Passes when this window of the monitor trace tells the same story
    /// as the reference's (monitor labs).
    pub(crate) story: Option<Story>,
    /// Passes when a monitor statistic is within bounds of the reference's.
    pub(crate) stat: Option<Stat>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabFile {
    summary: String,
    kind: Kind,
    copy: Vec<String>,
    image: String,
    cycles: u64,
    #[serde(default)]
    monitor_flags: Vec<String>,
    #[serde(default)]
    vm_keys: Vec<String>,
    cpus: Option<u32>,
    #[serde(default)]
    quanta: Vec<u64>,
    #[serde(rename = "test")]
    tests: Vec<TestSpec>,
}

/// A lab as `labs/NAME/lab.toml` describes it.
#[derive(Clone, Debug)]
pub(crate) struct Lab {
    pub(crate) name: String,
    pub(crate) summary: String,
    pub(crate) kind: Kind,
    /// Paths (files or directories, relative to the tree) the starter copies.
    pub(crate) copy: Vec<String>,
    /// The guest the tests boot: for kernel labs relative to the build
    /// directory, for monitor labs relative to the tree.
    pub(crate) image: String,
    /// The cycle limit of each run: a guest that hangs is stopped there.
    pub(crate) cycles: u64,
    /// Monitor options the lab depends on, pinned for every monitor run.
    pub(crate) monitor_flags: Vec<String>,
    /// Per-VM options the lab depends on (`KEY=VALUE` of `--vm`, e.g.
    /// `commpage=off`), pinned for every monitor run.
    pub(crate) vm_keys: Vec<String>,
    /// CPUs of every run (natively; under the monitor as many physical
    /// CPUs and VCPUs). Default 1.
    pub(crate) cpus: Option<u32>,
    /// Each run is repeated with each of these quanta (`--quantum`), so a
    /// race has several interleavings to show up in. Default: one run.
    pub(crate) quanta: Vec<u64>,
    pub(crate) tests: Vec<TestSpec>,
    /// `labs/NAME` in the tree.
    pub(crate) dir: PathBuf,
}

impl Lab {
    pub(crate) fn load(tree: &Path, name: &str) -> Result<Lab> {
        let dir = tree.join("labs").join(name);
        let file = dir.join("lab.toml");
        if name.is_empty() || name.contains(['/', '\\', '.']) || !file.is_file() {
            let known: Vec<String> = all(tree)?.into_iter().map(|l| l.name).collect();
            bail!("no lab {name:?} (labs: {})", known.join(", "));
        }
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("{}: cannot read", file.display()))?;
        let f: LabFile =
            toml::from_str(&text).with_context(|| format!("{}: bad lab file", file.display()))?;
        if let Some(k) = f
            .vm_keys
            .iter()
            .find(|k| k.contains(',') || !k.contains('='))
        {
            bail!("{}: vm_keys: {k:?} is not one KEY=VALUE", file.display());
        }
        for t in &f.tests {
            let checks = [
                t.labtest.is_some(),
                t.line.is_some(),
                t.same_line.is_some(),
                t.story.is_some(),
                t.stat.is_some(),
            ];
            if checks.iter().filter(|&&c| c).count() != 1 {
                bail!(
                    "{}: test {:?} needs exactly one of labtest, line, same_line, story, stat",
                    file.display(),
                    t.name
                );
            }
            if let Some(st) = &t.stat {
                if !STATS.contains(&st.name.as_str()) {
                    bail!(
                        "{}: test {:?}: no statistic {:?} ({})",
                        file.display(),
                        t.name,
                        st.name,
                        STATS.join(", ")
                    );
                }
            }
        }
        Ok(Lab {
            name: name.to_string(),
            summary: f.summary,
            kind: f.kind,
            copy: f.copy,
            image: f.image,
            cycles: f.cycles,
            monitor_flags: f.monitor_flags,
            vm_keys: f.vm_keys,
            cpus: f.cpus,
            quanta: f.quanta,
            tests: f.tests,
            dir,
        })
    }

    pub(crate) fn max_points(&self) -> u32 {
        self.tests.iter().map(|t| t.points).sum()
    }
}

/// Every lab of the tree, by name.
pub(crate) fn all(tree: &Path) -> Result<Vec<Lab>> {
    let labs = tree.join("labs");
    let mut names: Vec<String> = std::fs::read_dir(&labs)
        .with_context(|| format!("{}: cannot read", labs.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("lab.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.iter().map(|n| Lab::load(tree, n)).collect()
}

/// The checkout `exe` was built in: the first directory above it holding
/// `labs/` and `Cargo.toml` (target/debug/disco sits two levels below).
pub(crate) fn find_tree(exe: &Path) -> Result<PathBuf> {
    exe.ancestors()
        .skip(1)
        .find(|d| d.join("labs").is_dir() && d.join("Cargo.toml").is_file())
        .map(Path::to_path_buf)
        .with_context(|| {
            format!(
                "no disco checkout (labs/ and Cargo.toml) above {}; pass --tree PATH",
                exe.display()
            )
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_is_found_above_the_binary() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let exe = root.join("target/debug/disco");
        assert_eq!(find_tree(&exe).unwrap(), root);
        assert!(find_tree(Path::new("/nonexistent/bin/disco")).is_err());
    }

    #[test]
    fn every_lab_file_loads_and_its_points_add_up() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let labs = all(root).unwrap();
        assert!(labs.iter().any(|l| l.name == "syscalls"));
        for lab in &labs {
            assert_eq!(lab.max_points(), 100, "{}", lab.name);
            assert!(lab.tests.iter().any(|t| t.own), "{}", lab.name);
            assert!(lab.tests.iter().any(|t| !t.own), "{}", lab.name);
        }
        assert!(Lab::load(root, "nope").is_err());
        assert!(Lab::load(root, "../labs").is_err());
    }
}
