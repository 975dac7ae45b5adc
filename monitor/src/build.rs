//! From VM specifications to a monitor ready to run: the machine memory
//! checked, names given, files kept apart, images loaded, one disk image
//! per file shared by the VMs naming it, console files created
//! (docs/config.md, "Under the monitor"). Every refusal is a `BuildError`
//! whose message is the one line a front end prints.

use std::fs::File;
use std::path::{Path, PathBuf};

use sim::hv::{
    loader::{Image, LoadError, Symbols},
    DiskImage,
};

use crate::files::{keep_apart, Clash, Role};
use crate::spec::VmSpec;
use crate::{Monitor, MonitorConfig, MonitorError, VmConfig};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The machine memory, or the VMs' shape, refused by the monitor.
    #[error(transparent)]
    Monitor(#[from] MonitorError),
    /// Two VMs with one name.
    #[error("{0}")]
    Names(String),
    #[error(transparent)]
    Clash(#[from] Clash),
    #[error("{}: cannot read: {problem}", path.display())]
    ReadImage {
        path: PathBuf,
        problem: std::io::Error,
    },
    #[error("{}: {problem}", path.display())]
    Image { path: PathBuf, problem: LoadError },
    #[error("{}: cannot read the disk image: {problem}", path.display())]
    Disk {
        path: PathBuf,
        problem: std::io::Error,
    },
    #[error("{}: cannot create the console file: {problem}", path.display())]
    Console {
        path: PathBuf,
        problem: std::io::Error,
    },
}

/// The machine the VMs run on and the run's other files.
#[derive(Debug, Default)]
pub struct Setup<'a> {
    /// Everything but `vms`, which the specs give.
    pub monitor: MonitorConfig,
    /// The disks' completion interrupt latency (every VM's).
    pub disk_irq: Option<u64>,
    /// Files the run reads besides the VMs' (a config file).
    pub reads: Vec<Role<'a>>,
    /// Files the run writes besides the consoles (a trace file).
    pub writes: Vec<Role<'a>>,
}

/// A monitor ready to run, and each VM's console file if it has one.
pub struct Built {
    pub monitor: Monitor,
    pub consoles: Vec<Option<File>>,
}

/// The monitor running `specs` on `setup`'s machine. Nothing is written
/// before every check has passed; console files are created last.
pub fn build(specs: &[VmSpec], setup: Setup<'_>) -> Result<Built, BuildError> {
    prepare(specs, &setup)?.into_monitor(setup.monitor)
}

/// The VMs checked against the machine memory and the run's files, named
/// and loaded, but no monitor yet: a front end can check its own settings
/// in between, so the first problem it reports is the same as before.
pub struct Prepared {
    vms: Vec<VmConfig>,
    consoles: Vec<Option<PathBuf>>,
}

/// `build`'s first half; `setup.monitor` gives only the machine memory.
pub fn prepare(specs: &[VmSpec], setup: &Setup<'_>) -> Result<Prepared, BuildError> {
    let shapes: Vec<(u64, usize)> = specs.iter().map(|v| (v.mem_bytes(), v.vcpus())).collect();
    crate::machine_memory(&shapes, setup.monitor.machine_mem)?;
    let names = crate::spec::names(specs).map_err(BuildError::Names)?;
    files_apart(specs, setup)?;
    Ok(Prepared {
        vms: load(specs, names, setup.disk_irq)?,
        consoles: specs.iter().map(|s| s.console.clone()).collect(),
    })
}

impl Prepared {
    /// The monitor on the machine of `config` (its `vms` are these), and
    /// the console files, created once the monitor has accepted the VMs.
    pub fn into_monitor(self, config: MonitorConfig) -> Result<Built, BuildError> {
        let monitor = Monitor::new(MonitorConfig {
            vms: self.vms,
            ..config
        })?;
        let consoles = console_files(&self.consoles)?;
        Ok(Built { monitor, consoles })
    }
}

/// The VMs of `specs`, named and loaded, disks shared per file, with no
/// check of the machine or the files around them.
pub fn vm_configs(specs: &[VmSpec], disk_irq: Option<u64>) -> Result<Vec<VmConfig>, BuildError> {
    let names = crate::spec::names(specs).map_err(BuildError::Names)?;
    load(specs, names, disk_irq)
}

fn load(
    specs: &[VmSpec],
    names: Vec<String>,
    disk_irq: Option<u64>,
) -> Result<Vec<VmConfig>, BuildError> {
    let mut vms = Vec::with_capacity(specs.len());
    // One image per disk file, shared by the VMs that name it.
    let mut disks: Vec<(&Path, DiskImage)> = Vec::new();
    for (spec, name) in specs.iter().zip(names) {
        let (image, _) = read_image(&spec.image, spec.mem_bytes())?;
        let disk = match spec.disk.as_deref() {
            Some(path) => Some(match disks.iter().find(|(p, _)| *p == path) {
                Some((_, d)) => d.clone(),
                None => {
                    let d = open_disk(path)?;
                    disks.push((path, d.clone()));
                    d
                }
            }),
            None => None,
        };
        vms.push(VmConfig {
            name,
            image,
            mem_bytes: spec.mem_bytes(),
            vcpus: spec.vcpus(),
            disk,
            disk_irq_latency: disk_irq,
            io: spec.io,
            commpage: spec.commpage,
            exec: spec.exec,
        });
    }
    Ok(vms)
}

/// The VMs' files: images, disks and `setup.reads` are read, console
/// files and `setup.writes` written.
fn files_apart(specs: &[VmSpec], setup: &Setup<'_>) -> Result<(), Clash> {
    let inputs: Vec<Role<'_>> = specs
        .iter()
        .flat_map(|v| {
            [
                ("ELF image", Some(v.image.as_path())),
                ("disk image", v.disk.as_deref()),
            ]
        })
        .filter_map(|(what, p)| Some((what, p?)))
        .chain(setup.reads.iter().copied())
        .collect();
    let outputs: Vec<Role<'_>> = specs
        .iter()
        .filter_map(|v| Some(("console file", v.console.as_deref()?)))
        .chain(setup.writes.iter().copied())
        .collect();
    keep_apart(&inputs, &outputs)
}

/// An ELF image read from `path` into `ram` bytes of memory.
pub fn read_image(path: &Path, ram: u64) -> Result<(Image, Symbols), BuildError> {
    let bytes = std::fs::read(path).map_err(|problem| BuildError::ReadImage {
        path: path.to_path_buf(),
        problem,
    })?;
    sim::hv::loader::load(&bytes, ram).map_err(|problem| BuildError::Image {
        path: path.to_path_buf(),
        problem,
    })
}

/// A disk image file, opened (its sectors are read when the guest asks).
pub fn open_disk(path: &Path) -> Result<DiskImage, BuildError> {
    DiskImage::open(path).map_err(|problem| BuildError::Disk {
        path: path.to_path_buf(),
        problem,
    })
}

/// Each VM's console file, if it has one, created (emptied).
fn console_files(paths: &[Option<PathBuf>]) -> Result<Vec<Option<File>>, BuildError> {
    paths
        .iter()
        .map(|path| {
            path.as_ref()
                .map(|path| {
                    File::create(path).map_err(|problem| BuildError::Console {
                        path: path.clone(),
                        problem,
                    })
                })
                .transpose()
        })
        .collect()
}
