//! The files a run reads and writes, kept apart: an output (a VM's
//! console file, the trace file) that is an input (an ELF image, a disk
//! image) or another output would be overwritten. Files are compared by
//! identity, not by how their paths are spelled (`./a.elf`, `a.elf` and a
//! hard link to it are one file).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A file's identity: device and inode when it exists; otherwise where it
/// would be created (its directory's canonical path and its name).
#[derive(Debug, PartialEq, Eq)]
enum FileId {
    Inode(u64, u64),
    ToBe(PathBuf),
}

fn file_id(path: &Path) -> Option<FileId> {
    if let Ok(meta) = std::fs::metadata(path) {
        return Some(FileId::Inode(meta.dev(), meta.ino()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Some(FileId::ToBe(
        dir.canonicalize().ok()?.join(path.file_name()?),
    ))
}

/// A file the run touches: what it is (`"ELF image"`, `"console file"`)
/// and its path.
pub type Role<'a> = (&'a str, &'a Path);

/// An output that is an input or an earlier output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the {what} {} is {}the {other_what} {} (the same file); refusing to overwrite it",
    path.display(),
    if *also { "also " } else { "" },
    other.display()
)]
pub struct Clash {
    pub what: String,
    pub path: PathBuf,
    pub other_what: String,
    pub other: PathBuf,
    /// The other file is an output too.
    pub also: bool,
}

/// The role among `roles` (whose identities are `ids`) that is file `id`.
fn same<'r, 'p>(
    roles: &'r [Role<'p>],
    ids: &[Option<FileId>],
    id: &FileId,
) -> Option<&'r Role<'p>> {
    roles
        .iter()
        .zip(ids)
        .find(|(_, other)| other.as_ref() == Some(id))
        .map(|(role, _)| role)
}

/// Refuses outputs that are one of the inputs or each other. A path whose
/// identity cannot be told (a directory that does not exist) is left to
/// the error opening it gives.
pub fn keep_apart(inputs: &[Role<'_>], outputs: &[Role<'_>]) -> Result<(), Clash> {
    let ids = |roles: &[Role<'_>]| -> Vec<Option<FileId>> {
        roles.iter().map(|(_, p)| file_id(p)).collect()
    };
    let (in_ids, out_ids) = (ids(inputs), ids(outputs));
    let clash = |(what, path): &Role<'_>, (other_what, other): &Role<'_>, also| Clash {
        what: what.to_string(),
        path: path.to_path_buf(),
        other_what: other_what.to_string(),
        other: other.to_path_buf(),
        also,
    };
    for (i, out) in outputs.iter().enumerate() {
        let Some(Some(id)) = out_ids.get(i) else {
            continue;
        };
        if let Some(input) = same(inputs, &in_ids, id) {
            return Err(clash(out, input, false));
        }
        let earlier = outputs.get(..i).unwrap_or(&[]);
        if let Some(other) = same(earlier, out_ids.get(..i).unwrap_or(&[]), id) {
            return Err(clash(out, other, true));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_told_apart_by_identity_not_spelling() {
        let dir = std::env::temp_dir().join(format!("disco-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let elf = dir.join("a.elf");
        std::fs::write(&elf, b"x").unwrap();
        let spelled = dir.join(".").join("a.elf");
        let linked = dir.join("b.elf");
        let _ = std::fs::remove_file(&linked);
        std::fs::hard_link(&elf, &linked).unwrap();
        let fresh = dir.join("out.txt");
        let inputs = [("ELF image", elf.as_path())];
        for same in [&elf, &spelled, &linked] {
            let e = keep_apart(&inputs, &[("console file", same.as_path())]).unwrap_err();
            assert!(e.to_string().contains("is the ELF image"), "{e}");
        }
        assert!(keep_apart(&inputs, &[("console file", fresh.as_path())]).is_ok());
        // Two outputs that do not exist yet, spelled differently.
        let e = keep_apart(
            &inputs,
            &[
                ("console file", fresh.as_path()),
                ("trace file", dir.join(".").join("out.txt").as_path()),
            ],
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("the trace file"), "{e}");
        assert!(e.to_string().contains(" is also the console file "), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
