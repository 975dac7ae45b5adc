//! Monitor labs: the copy (a whole workspace) is built with cargo, then
//! its `disco` runs the lab's guest under its monitor, and its trap flows
//! are compared with the reference's.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::catalog::{Lab, Story};
use super::grade::Grading;

/// Builds the copy in `dir` with cargo (into the shared target directory)
/// and returns its `disco` and the image; without `dir` the reference is
/// the running `disco`, which was built from the tree. On failure,
/// returns cargo's last lines.
pub(crate) fn build(
    g: &Grading,
    lab: &Lab,
    dir: Option<&Path>,
) -> Result<(PathBuf, PathBuf), Vec<String>> {
    let image = g.tree.join(&lab.image);
    let Some(dir) = dir else {
        return Ok((g.disco.clone(), image));
    };
    // Line tables only: a panic in the copy still names its file and line,
    // and a new copy builds in 16 s instead of 20 (docs/labs.md, "How the
    // grader works").
    let built = Command::new("cargo")
        .args(["build", "-q", "-p", "disco"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", &g.cargo_target)
        .env("CARGO_PROFILE_DEV_DEBUG", "line-tables-only")
        .output();
    let built = match built {
        Ok(b) => b,
        Err(e) => return Err(vec![format!("cannot run cargo: {e}")]),
    };
    if !built.status.success() {
        let err = String::from_utf8_lossy(&built.stderr);
        let mut why = vec![format!("cargo build in {} failed:", dir.display())];
        let lines: Vec<&str> = err.lines().collect();
        let head = lines.len().min(20);
        why.extend(
            lines
                .get(..head)
                .unwrap_or(&[])
                .iter()
                .map(|l| format!("  {l}")),
        );
        return Err(why);
    }
    Ok((g.cargo_target.join("debug").join("disco"), image))
}

/// The story a trace line tells, if it is one of the steps a student's
/// monitor must reproduce: the guest's exits, the reflections, the
/// trampolines followed, the emulated MFC0/MTC0/TLBWI/TLBWR and the ERETs
/// back. Cycle counts, and the
/// monitor's own caching (L2TLB, composition, patches), are left out.
fn step(line: &str) -> Option<&str> {
    let line = line.trim_start();
    let line = line
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .trim_start();
    let mut words = line.splitn(4, char::is_whitespace);
    let (_cpu, _vm, layer) = (words.next()?, words.next()?, words.next()?);
    let text = words.next()?.trim_start();
    let keep = match layer {
        "user" => text.starts_with("exit "),
        // The guest kernel's own TLB misses are the monitor's business
        // (its L2TLB refills them), not part of the trap's story.
        "guest" => text.starts_with("exit ") && !text.starts_with("exit TLB"),
        "monitor" => {
            text.starts_with("reflect ")
                || text.starts_with("deliver interrupt")
                || text.starts_with("follow the trampoline")
                // What the guest kernel read and wrote through its
                // privileged instructions, as it saw them.
                || text.starts_with("emulate eret")
                || text.starts_with("emulate mfc0")
                || text.starts_with("emulate mtc0")
                || text.starts_with("emulate tlbw")
        }
        _ => false,
    };
    keep.then_some(line)
}

/// The steps of the window of `trace` that `story` names.
fn window<'a>(trace: &'a [String], story: &Story) -> Option<Vec<&'a str>> {
    let start = trace.iter().position(|l| l.contains(&story.from))?;
    let rest = trace.get(start..)?;
    let len = rest
        .iter()
        .skip(1)
        .position(|l| l.contains(&story.to))
        .map_or(rest.len(), |i| i + 2);
    Some(rest.get(..len)?.iter().filter_map(|l| step(l)).collect())
}

/// Why `mine` tells another story than `reference` in the window (`None`:
/// the same steps in the same order).
pub(crate) fn compare_stories(
    mine: &[String],
    reference: &[String],
    story: &Story,
) -> Option<String> {
    let Some(want) = window(reference, story) else {
        return Some(format!("the reference trace has no {:?}", story.from));
    };
    let Some(got) = window(mine, story) else {
        return Some(format!("your trace never reaches {:?}", story.from));
    };
    for (i, w) in want.iter().enumerate() {
        match got.get(i) {
            Some(g) if g == w => {}
            Some(g) => {
                return Some(format!(
                    "step {}: yours {g:?}, the reference's {w:?}",
                    i + 1
                ))
            }
            None => return Some(format!("step {}: yours ends, the reference's {w:?}", i + 1)),
        }
    }
    (got.len() > want.len()).then(|| {
        format!(
            "step {}: yours has {:?} after the reference's end",
            want.len() + 1,
            got.get(want.len()).copied().unwrap_or_default()
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(str::to_string).collect()
    }

    const REF: &str = "\
  100 cpu0 vm0.0 user    exit Sys at 0x00400000  syscall
  100 cpu0 vm0.0 monitor reflect Sys to the guest: EPC 0x00400000, vector 0x80000180
  100 cpu0 vm0.0 monitor L2TLB miss for V 0xc001081c
  150 cpu0 vm0.0 monitor emulate eret: resume the guest at 0x00400004 in user mode
  200 cpu0 vm0.0 user    exit Sys at 0x00400010  syscall";

    fn story() -> Story {
        Story {
            from: "user    exit Sys".into(),
            to: "emulate eret".into(),
        }
    }

    #[test]
    fn stories_ignore_cycles_and_caching() {
        let mine = lines(
            "  7 cpu0 vm0.0 user    exit Sys at 0x00400000  syscall\n\
             9 cpu0 vm0.0 monitor reflect Sys to the guest: EPC 0x00400000, vector 0x80000180\n\
             99 cpu0 vm0.0 monitor emulate eret: resume the guest at 0x00400004 in user mode",
        );
        assert_eq!(compare_stories(&mine, &lines(REF), &story()), None);
    }

    #[test]
    fn a_different_step_is_named() {
        let mine = lines(
            "7 cpu0 vm0.0 user    exit Sys at 0x00400000  syscall\n\
             9 cpu0 vm0.0 monitor reflect Sys to the guest: EPC 0x00400004, vector 0x80000180",
        );
        let why = compare_stories(&mine, &lines(REF), &story()).unwrap();
        assert!(
            why.starts_with(
                "step 2: yours \"cpu0 vm0.0 monitor reflect Sys to the guest: EPC 0x00400004"
            ),
            "{why}"
        );
        let why = compare_stories(&[], &lines(REF), &story()).unwrap();
        assert_eq!(why, "your trace never reaches \"user    exit Sys\"");
    }
}
