//! Differential test against Unicorn (QEMU's MIPS), a reference emulator
//! nobody here wrote: `sim/tests/diff/unicorn_diff.py` generates seeded random
//! MIPS32 integer programs with defined behaviour, runs them on Unicorn and on
//! our CPU (the `run_raw` example), and compares registers, HI/LO and memory.
//!
//! Needs a Python with the `unicorn` module: `$DISCO_PYTHON` (`.ci/run`
//! sets it to a venv's), else `python3`. Without it the test prints a
//! SKIPPED line and passes, unless
//! `DISCO_REQUIRE_TOOLS=1`, which turns the skip into a failure.
//! `DISCO_DIFF_RESULTS=path` writes the Markdown summary there (the committed
//! copy is `sim/tests/diff/RESULTS.md`).
// Test code: a panic is how a check fails.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

const PROGRAMS: u32 = 1000;
const SEED: u32 = 20_240_601;

fn skip(why: &str) {
    sim::testkit::skip("cpu_diff_unicorn", why);
}

/// The Python with Unicorn: `DISCO_PYTHON` (`.ci/run` points it at the
/// venv it installs Unicorn into), else `python3`.
fn python() -> String {
    std::env::var("DISCO_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// The `run_raw` example next to this test binary (`cargo test` builds the
/// package's examples), or built on demand.
fn run_raw() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let path = profile_dir
        .join("examples")
        .join(format!("run_raw{}", std::env::consts::EXE_SUFFIX));
    if path.exists() {
        return Some(path);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let ok = Command::new(cargo)
        .args(["build", "-p", "disco-sim", "--example", "run_raw"])
        .status()
        .is_ok_and(|s| s.success());
    (ok && path.exists()).then_some(path)
}

#[test]
fn random_programs_agree_with_unicorn() {
    let python = python();
    match Command::new(&python)
        .args(["-c", "import unicorn"])
        .output()
    {
        Err(_) => return skip(&format!("{python} is not installed (DISCO_PYTHON)")),
        Ok(o) if !o.status.success() => {
            return skip(&format!(
                "{python} has no module `unicorn` (pip install unicorn in a venv, \
                 and point DISCO_PYTHON at its python)"
            ))
        }
        Ok(_) => {}
    }
    let Some(run_raw) = run_raw() else {
        panic!("could not find or build the run_raw example");
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diff/unicorn_diff.py");
    let results = std::env::var("DISCO_DIFF_RESULTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            std::env::temp_dir().join(format!("unicorn_diff_{}.md", std::process::id()))
        });
    let out = Command::new(&python)
        .arg(&script)
        .arg("--run-raw")
        .arg(&run_raw)
        .args([
            "--programs",
            &PROGRAMS.to_string(),
            "--seed",
            &SEED.to_string(),
        ])
        .arg("--results")
        .arg(&results)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "divergences from Unicorn (see above and {})",
        results.display()
    );
    assert!(stdout.contains(&format!("{PROGRAMS} programs")), "{stdout}");
}
