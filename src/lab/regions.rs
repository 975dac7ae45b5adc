//! Marked regions and starter copies. The reference code marks each lab
//! region with two comment lines, in any comment syntax:
//!
//! ```text
//! /* lab syscalls: begin getppid */      // lab reflect: begin deliver
//! ...the reference solution...
//! /* lab syscalls: end getppid */        // lab reflect: end deliver
//! ```
//!
//! `disco lab start` copies the lab's files and replaces each region's
//! lines (not the markers) with `labs/NAME/stubs/REGION`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::catalog::Lab;

/// The name of the file that says which lab a copy is of.
pub(crate) const STAMP: &str = ".disco-lab";

/// Directories never copied: build outputs and version control.
const SKIP: [&str; 4] = ["target", "build", ".git", "node_modules"];

/// One region found in a file: its name and the line range strictly
/// between its markers.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Region {
    pub(crate) name: String,
    pub(crate) body: std::ops::Range<usize>,
}

/// The marker word in `line` for `lab`: `Some(("begin", "x"))` for `lab L: begin x`.
fn marker<'a>(line: &'a str, lab: &str) -> Option<(&'a str, &'a str)> {
    let at = line.find("lab ")?;
    let rest = line.get(at + 4..)?.strip_prefix(lab)?.strip_prefix(": ")?;
    let (what, name) = rest.split_once(' ')?;
    let name = name.split_whitespace().next()?;
    matches!(what, "begin" | "end").then_some((what, name))
}

/// The regions of `lab` in `text`, in order. `file` names the file in errors.
pub(crate) fn find(text: &str, lab: &str, file: &str) -> Result<Vec<Region>> {
    let mut out = Vec::new();
    let mut open: Option<(String, usize)> = None;
    for (i, line) in text.lines().enumerate() {
        match (marker(line, lab), &open) {
            (Some(("begin", name)), None) => open = Some((name.to_string(), i + 1)),
            (Some(("begin", name)), Some((o, _))) => {
                bail!("{file}:{}: region {name} begins inside region {o}", i + 1)
            }
            (Some((_, name)), Some((o, start))) if name == o => {
                out.push(Region {
                    name: name.to_string(),
                    body: *start..i,
                });
                open = None;
            }
            (Some((_, name)), _) => {
                bail!("{file}:{}: end of region {name}, which is not open", i + 1)
            }
            (None, _) => {}
        }
    }
    if let Some((o, start)) = open {
        bail!("{file}:{start}: region {o} never ends");
    }
    Ok(out)
}

/// `text` with each region's body replaced by `stubs[name]`.
pub(crate) fn stub_out(
    text: &str,
    regions: &[Region],
    stubs: &BTreeMap<String, String>,
) -> Result<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::with_capacity(text.len());
    let mut next = 0;
    for r in regions {
        let stub = stubs
            .get(&r.name)
            .with_context(|| format!("region {} has no stub", r.name))?;
        for l in lines.get(next..r.body.start).unwrap_or(&[]) {
            out.push_str(l);
            out.push('\n');
        }
        out.push_str(stub);
        if !stub.ends_with('\n') {
            out.push('\n');
        }
        next = r.body.end;
    }
    for l in lines.get(next..).unwrap_or(&[]) {
        out.push_str(l);
        out.push('\n');
    }
    Ok(out)
}

/// The stubs of `lab`: `labs/NAME/stubs/REGION`, by region name.
fn stubs(lab: &Lab) -> Result<BTreeMap<String, String>> {
    let dir = lab.dir.join("stubs");
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(&dir).with_context(|| format!("{}: cannot read", dir.display()))? {
        let p = e?.path();
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        if let Some(name) = name {
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("{}: cannot read", p.display()))?;
            m.insert(name, text);
        }
    }
    Ok(m)
}

/// Writes a copy of `lab` into `dir`: its files, its handout as
/// `labs/NAME/README.md` (where the stubs' message points) and the stamp;
/// with `starter`, every region stubbed out.
pub(crate) fn start(tree: &Path, lab: &Lab, dir: &Path, starter: bool) -> Result<()> {
    if dir.exists()
        && std::fs::read_dir(dir)
            .with_context(|| format!("{}: cannot read", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{}: exists and is not empty; give a new directory",
            dir.display()
        );
    }
    let readme = lab.dir.join("README.md");
    if !readme.is_file() {
        bail!("labs/{}/README.md: the lab has no handout", lab.name);
    }
    let stubs = stubs(lab)?;
    let mut used = Vec::new();
    for rel in &lab.copy {
        copy_tree(&tree.join(rel), &dir.join(rel), &mut |path, text| {
            let file = path.display().to_string();
            let regions = find(text, &lab.name, &file)?;
            if regions.is_empty() {
                return Ok(None);
            }
            used.extend(regions.iter().map(|r| r.name.clone()));
            if !starter {
                return Ok(None);
            }
            stub_out(text, &regions, &stubs)
                .map(Some)
                .with_context(|| file.clone())
        })?;
    }
    for name in stubs.keys() {
        if !used.contains(name) {
            bail!(
                "labs/{}/stubs/{name}: no region {name} in the files the lab copies",
                lab.name
            );
        }
    }
    let handout = dir.join("labs").join(&lab.name);
    std::fs::create_dir_all(&handout)?;
    std::fs::copy(&readme, handout.join("README.md"))
        .with_context(|| format!("labs/{}/README.md: cannot copy", lab.name))?;
    std::fs::write(dir.join(STAMP), format!("{}\n", lab.name))?;
    Ok(())
}

/// Copies `from` (a file or a directory) to `to`; `edit` may return new
/// contents for a text file.
fn copy_tree(
    from: &Path,
    to: &Path,
    edit: &mut dyn FnMut(&Path, &str) -> Result<Option<String>>,
) -> Result<()> {
    let meta = std::fs::metadata(from).with_context(|| format!("{}: missing", from.display()))?;
    if meta.is_dir() {
        std::fs::create_dir_all(to).with_context(|| format!("{}: cannot create", to.display()))?;
        let mut entries: Vec<_> = std::fs::read_dir(from)?.filter_map(|e| e.ok()).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            if SKIP.iter().any(|s| name == *s) {
                continue;
            }
            copy_tree(&e.path(), &to.join(&name), edit)?;
        }
        return Ok(());
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let bytes = std::fs::read(from).with_context(|| format!("{}: cannot read", from.display()))?;
    let out = match std::str::from_utf8(&bytes) {
        Ok(text) => edit(from, text)?.map(String::into_bytes),
        Err(_) => None,
    };
    std::fs::write(to, out.as_deref().unwrap_or(&bytes))
        .with_context(|| format!("{}: cannot write", to.display()))?;
    std::fs::set_permissions(to, meta.permissions())?;
    Ok(())
}

/// Which lab the copy in `dir` is of (its stamp), if it has one.
pub(crate) fn stamp(dir: &Path) -> Option<String> {
    let s = std::fs::read_to_string(dir.join(STAMP)).ok()?;
    Some(s.trim().to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SRC: &str = "a\n/* lab x: begin one */\nsolution\nmore\n/* lab x: end one */\nb\n\
                       // lab y: begin other\nkept\n// lab y: end other\n";

    #[test]
    fn regions_are_found_between_their_markers() {
        let r = find(SRC, "x", "f.c").unwrap();
        assert_eq!(
            r,
            [Region {
                name: "one".into(),
                body: 2..4
            }]
        );
        assert_eq!(find(SRC, "y", "f.c").unwrap()[0].body, 7..8);
        assert!(find(SRC, "z", "f.c").unwrap().is_empty());
    }

    #[test]
    fn stubbing_keeps_the_markers_and_everything_else() {
        let r = find(SRC, "x", "f.c").unwrap();
        let stubs = BTreeMap::from([("one".to_string(), "\tstub();\n".to_string())]);
        let out = stub_out(SRC, &r, &stubs).unwrap();
        assert_eq!(
            out,
            "a\n/* lab x: begin one */\n\tstub();\n/* lab x: end one */\nb\n\
             // lab y: begin other\nkept\n// lab y: end other\n"
        );
        assert!(stub_out(SRC, &r, &BTreeMap::new()).is_err());
    }

    #[test]
    fn bad_markers_are_refused_with_the_line() {
        let e = find("/* lab x: begin a */\n", "x", "f.c").unwrap_err();
        assert_eq!(e.to_string(), "f.c:1: region a never ends");
        let e = find("// lab x: end a\n", "x", "f.c").unwrap_err();
        assert_eq!(e.to_string(), "f.c:1: end of region a, which is not open");
        let e = find("// lab x: begin a\n// lab x: begin b\n", "x", "f.c").unwrap_err();
        assert_eq!(e.to_string(), "f.c:2: region b begins inside region a");
    }
}
