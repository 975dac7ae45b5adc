//! Kernel labs: the copy's kestrel is built with its own kit Makefile
//! (the cross toolchain), then the reference `disco` runs it.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::catalog::Lab;
use super::grade::Grading;

/// Builds the lab kernel of the copy in `dir` (or of the tree) into
/// `<dir>/build` (the tree: `target/labs/<name>`); returns the `disco`
/// to run it with and the image, or the lines saying why it did not build.
pub(crate) fn build(
    g: &Grading,
    lab: &Lab,
    dir: Option<&Path>,
) -> Result<(PathBuf, PathBuf), Vec<String>> {
    let (root, out) = match dir {
        Some(d) => (d.to_path_buf(), d.join("build")),
        None => (
            g.tree.clone(),
            g.tree.join("target").join("labs").join(&lab.name),
        ),
    };
    let kdir = root.join("guest-kits/kernels/kestrel");
    let made = Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(&kdir)
        .arg(format!("BUILD={}", out.display()))
        .arg("lab")
        .output();
    let made = match made {
        Ok(m) => m,
        Err(e) => return Err(vec![format!("cannot run make: {e}")]),
    };
    if !made.status.success() {
        let err = format!(
            "{}{}",
            String::from_utf8_lossy(&made.stdout),
            String::from_utf8_lossy(&made.stderr)
        );
        let mut why = vec![format!(
            "make -C {} lab failed ({}):",
            kdir.display(),
            made.status
        )];
        if !have_toolchain() {
            why.push("the cross toolchain (mips-linux-gnu-gcc) is not installed".to_string());
        }
        let lines: Vec<&str> = err.lines().collect();
        let tail = lines.len().saturating_sub(12);
        why.extend(
            lines
                .get(tail..)
                .unwrap_or(&[])
                .iter()
                .map(|l| format!("  {l}")),
        );
        return Err(why);
    }
    Ok((g.disco.clone(), out.join(&lab.image)))
}

/// Whether the kit Makefile's compiler is here (kernel labs need it).
fn have_toolchain() -> bool {
    Command::new("mips-linux-gnu-gcc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}
