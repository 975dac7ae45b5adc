//! The bare machine's files kept apart: the trace file must not overwrite
//! an input (`monitor::files` tells files apart; `monitor::build` does the
//! same for VMs).

use std::path::Path;

use monitor::files::{keep_apart, Role};
use sim::config::Settings;

/// The bare machine's files: the ELF image, the disk image and the config
/// file are read, the trace file written.
pub(crate) fn native_apart(s: &Settings, config: Option<&Path>) -> anyhow::Result<()> {
    let inputs: Vec<Role<'_>> = [
        ("ELF image", s.image.as_deref()),
        ("disk image", s.disk.as_deref()),
        ("config file", config),
    ]
    .into_iter()
    .filter_map(|(what, p)| Some((what, p?)))
    .collect();
    let outputs: Vec<Role<'_>> = s
        .trace_file
        .iter()
        .map(|t| ("trace file", t.as_path()))
        .collect();
    keep_apart(&inputs, &outputs).map_err(|e| anyhow::anyhow!("{e}"))
}
