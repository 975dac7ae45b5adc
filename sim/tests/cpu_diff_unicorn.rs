//! Differential test against Unicorn (QEMU's MIPS), a reference emulator
//! nobody here wrote: `sim/tests/diff/unicorn_diff.py` generates seeded random
//! MIPS32 integer programs with defined behaviour, runs them on Unicorn and on
//! our CPU (the `run_raw` example), and compares registers, HI/LO and memory.
//!
//! Needs `python3` with the `unicorn` module (`pip install unicorn`). Without
//! them the test prints a SKIPPED line and passes, unless
//! `DISCO_REQUIRE_TOOLS=1`, which turns the skip into a failure.
//! `DISCO_DIFF_RESULTS=path` writes the Markdown summary there (the committed
//! copy is `sim/tests/diff/RESULTS.md`).
// Test code: a panic is how a check fails.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

const PROGRAMS: u32 = 1000;
const SEED: u32 = 20_240_601;

fn skip(why: &str) {
    if std::env::var("DISCO_REQUIRE_TOOLS").is_ok_and(|v| v == "1") {
        panic!("DISCO_REQUIRE_TOOLS=1 but {why}");
    }
    // Written to the stderr handle itself, which the test harness does not
    // capture, so the skip is visible in a normal `cargo test` run.
    let _ = writeln!(std::io::stderr(), "SKIPPED cpu_diff_unicorn: {why}");
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
    let python = Command::new("python3")
        .args(["-c", "import unicorn"])
        .output();
    match python {
        Err(_) => return skip("python3 is not installed"),
        Ok(o) if !o.status.success() => {
            return skip("the python3 module `unicorn` is missing (pip install unicorn)")
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
    let out = Command::new("python3")
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
