//! What a VM is to be, before anything is read: a `--vm IMAGE,key=value`
//! specification or a config file's `[[vm]]` table, parsed into one type
//! (docs/config.md, "Under the monitor"). `crate::build` turns specs into
//! a running monitor.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sim::hv::config::{check_ram, parse_size, show_size, Size};

use crate::coalesce::{IoConfig, Policy};

/// One VM as the user asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSpec {
    pub image: PathBuf,
    pub name: Option<String>,
    /// Guest-physical memory; `None`: the bare machine's default.
    pub mem: Option<u64>,
    pub cpus: Option<usize>,
    /// Read from the file and shared by the VMs naming it; writes stay
    /// each VM's own.
    pub disk: Option<PathBuf>,
    /// Where the VM's console goes instead of standard output.
    pub console: Option<PathBuf>,
    /// Where it was given, for messages: `--vm "SPEC"` or `FILE: vm[i]`.
    pub origin: String,
    pub io: IoConfig,
    /// Whether the guest kernel's MFC0/MTC0 may be patched (`commpage=off`).
    pub commpage: bool,
    /// Which guest-kernel code is translated (`exec=`; docs/translation.md).
    pub exec: crate::bt::Exec,
}

impl VmSpec {
    /// A VM of `image` with every default, named in messages by `origin`.
    pub fn new(image: impl Into<PathBuf>, origin: impl Into<String>) -> VmSpec {
        VmSpec {
            image: image.into(),
            name: None,
            mem: None,
            cpus: None,
            disk: None,
            console: None,
            origin: origin.into(),
            io: IoConfig::default(),
            commpage: true,
            exec: crate::bt::Exec::default(),
        }
    }

    /// The VM's memory: its own `mem`, or the bare machine's default.
    pub fn mem_bytes(&self) -> u64 {
        self.mem.unwrap_or(sim::hv::config::DEFAULT_RAM)
    }

    /// The VM's VCPUs: its own `cpus`, or one.
    pub fn vcpus(&self) -> usize {
        self.cpus.unwrap_or(1)
    }

    /// `IMAGE[,KEY=VALUE…]` as given to `--vm`; messages start `--vm "SPEC"`.
    pub fn parse(s: &str) -> Result<VmSpec, String> {
        VmSpec::parse_as(s, "--vm", &format!("--vm {s:?}"))
    }

    /// `IMAGE[,KEY=VALUE…]` as `flag` takes it (`--vm`, `start-vm=`), its
    /// messages starting with `origin`: one grammar for every way a VM is
    /// asked for.
    pub fn parse_as(s: &str, flag: &str, origin: &str) -> Result<VmSpec, String> {
        let mut parts = s.split(',');
        let image = parts
            .next()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| format!("{flag} needs an image path"))?;
        let mut spec = VmSpec::new(image, origin);
        let mut seen: Vec<&str> = Vec::new();
        for p in parts {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| format!("{origin}: {p:?} is not KEY=VALUE"))?;
            if seen.contains(&k) {
                return Err(format!("{origin}: {k}= is given twice"));
            }
            seen.push(k);
            spec.set(k, v).map_err(|e| format!("{origin}: {e}"))?;
        }
        Ok(spec)
    }

    /// Key `k` of a `--vm` specification set to `v`.
    fn set(&mut self, k: &str, v: &str) -> Result<(), String> {
        match k {
            "mem" => {
                let bytes = parse_size(v).map_err(|e| format!("mem: {e}"))?;
                self.mem = Some(check_ram(bytes, &format!("mem={v}"))?);
            }
            "cpus" => {
                let n: usize = v
                    .parse()
                    .map_err(|_| format!("cpus={v:?} is not a number"))?;
                if !(1..=sim::hv::MAX_CPUS).contains(&n) {
                    return Err(format!(
                        "cpus={n}; between 1 and {} VCPUs are supported",
                        sim::hv::MAX_CPUS
                    ));
                }
                self.cpus = Some(n);
            }
            "name" if !v.is_empty() => self.name = Some(v.to_string()),
            "name" => return Err("name= needs a name".into()),
            "disk" if !v.is_empty() => self.disk = Some(PathBuf::from(v)),
            "disk" => return Err("disk= needs a file".into()),
            "console" if !v.is_empty() => self.console = Some(PathBuf::from(v)),
            "console" => return Err("console= needs a file".into()),
            "coalesce" => self.io.policy = parse_coalesce(v)?,
            "io-extent" => self.io.extent = Some(parse_io_extent(v)?),
            "commpage" => self.commpage = parse_commpage(v)?,
            "exec" => self.exec = crate::bt::Exec::parse(v)?,
            other => {
                return Err(format!(
                    "unknown key {other:?} (mem, cpus, name, disk, console, coalesce, io-extent, commpage, exec)"
                ))
            }
        }
        Ok(())
    }

    /// A config file's `[[vm]]` table, its relative paths taken from `dir`
    /// (the config file's directory); `origin` names the table in messages.
    pub fn from_table(table: toml::Table, origin: String, dir: &Path) -> Result<VmSpec, String> {
        let entry: VmTable = table
            .try_into()
            .map_err(|e: toml::de::Error| format!("{origin}: {}", e.message()))?;
        entry.into_spec(origin, dir)
    }
}

/// A `[[vm]]` table of the config file: the keys of `--vm`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VmTable {
    image: PathBuf,
    name: Option<String>,
    mem: Option<Size>,
    cpus: Option<usize>,
    disk: Option<PathBuf>,
    console: Option<PathBuf>,
    coalesce: Option<String>,
    #[serde(rename = "io-extent")]
    io_extent: Option<u32>,
    commpage: Option<String>,
    exec: Option<String>,
}

impl VmTable {
    fn into_spec(self, origin: String, dir: &Path) -> Result<VmSpec, String> {
        let at = |p: PathBuf| if p.is_relative() { dir.join(p) } else { p };
        let mem = match &self.mem {
            Some(m) => Some(
                m.bytes()
                    .and_then(|b| check_ram(b, &show_size(b)))
                    .map_err(|e| format!("{origin}: mem: {e}"))?,
            ),
            None => None,
        };
        if self.name.as_deref() == Some("") {
            return Err(format!("{origin}: name: a VM's name cannot be empty"));
        }
        let mut io = IoConfig::default();
        if let Some(c) = &self.coalesce {
            io.policy = parse_coalesce(c).map_err(|e| format!("{origin}: {e}"))?;
        }
        if let Some(n) = self.io_extent {
            io.extent =
                Some(parse_io_extent(&n.to_string()).map_err(|e| format!("{origin}: {e}"))?);
        }
        let commpage = match &self.commpage {
            Some(c) => parse_commpage(c).map_err(|e| format!("{origin}: {e}"))?,
            None => true,
        };
        let exec = match &self.exec {
            Some(e) => crate::bt::Exec::parse(e).map_err(|e| format!("{origin}: {e}"))?,
            None => crate::bt::Exec::default(),
        };
        Ok(VmSpec {
            image: at(self.image),
            name: self.name,
            mem,
            cpus: self.cpus,
            disk: self.disk.map(at),
            console: self.console.map(at),
            origin,
            io,
            commpage,
            exec,
        })
    }
}

/// The VMs' names, each VM's own or `vm<i>`: refused if two are the same
/// (the output and `--gdb-vm` would be ambiguous).
pub fn names(specs: &[VmSpec]) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let name = spec.name.clone().unwrap_or_else(|| format!("vm{i}"));
        if let Some(j) = names.iter().position(|n| *n == name) {
            let other = specs.get(j).map_or("", |s| s.origin.as_str());
            return Err(format!(
                "{}: the name {name:?} is already VM {j}'s ({other}); VM names must differ",
                spec.origin
            ));
        }
        names.push(name);
    }
    Ok(names)
}

/// A coalescing policy by name (docs/monitor.md §4).
fn parse_coalesce(v: &str) -> Result<Policy, String> {
    Policy::parse(v).ok_or_else(|| format!("coalesce={v:?} is not one of off, block, second, ring"))
}

/// How many instructions past a device access the scan looks: at least one.
fn parse_io_extent(v: &str) -> Result<u32, String> {
    v.parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("io-extent={v:?} is not a positive number of instructions"))
}

/// `commpage=on|off` (docs/monitor.md, the commpage).
fn parse_commpage(v: &str) -> Result<bool, String> {
    match v {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("commpage={v:?} is not on or off")),
    }
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn vm_specs() {
        let v = VmSpec::parse("a.elf,mem=8M,cpus=2,name=x").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.mem, Some(8 << 20));
        assert_eq!(v.cpus, Some(2));
        assert!(VmSpec::parse("a.elf,disk").is_err());
        assert!(VmSpec::parse("a.elf,disk=").is_err());
        assert!(VmSpec::parse("a.elf,console=").is_err());
        assert!(VmSpec::parse("a.elf,color=red").is_err());
        let v = VmSpec::parse("a.elf,coalesce=ring,io-extent=9").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.io.policy, Policy::Ring);
        assert_eq!(v.io.extent, Some(9));
        assert!(VmSpec::parse("a.elf,coalesce=always").is_err());
        assert!(VmSpec::parse("a.elf,io-extent=0").is_err());
        assert!(VmSpec::parse("a.elf").is_ok_and(|v| v.commpage));
        assert!(VmSpec::parse("a.elf,commpage=off").is_ok_and(|v| !v.commpage));
        assert!(VmSpec::parse("a.elf,commpage=no").is_err());
        assert!(VmSpec::parse("a.elf,commpage=on,commpage=off").is_err());
        assert!(VmSpec::parse("a.elf").is_ok_and(|v| v.exec == crate::bt::Exec::Adaptive));
        assert!(VmSpec::parse("a.elf,exec=direct").is_ok_and(|v| v.exec == crate::bt::Exec::Direct));
        assert!(VmSpec::parse("a.elf,exec=translate")
            .is_ok_and(|v| v.exec == crate::bt::Exec::Translate));
        assert!(
            VmSpec::parse("a.elf,exec=adaptive").is_ok_and(|v| v.exec == crate::bt::Exec::Adaptive)
        );
        assert!(VmSpec::parse("a.elf,exec=fast")
            .is_err_and(|e| e.contains("not one of direct, translate, adaptive")));
        let v = VmSpec::parse("a.elf,disk=d.img,console=out.txt").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.disk, Some(PathBuf::from("d.img")));
        assert_eq!(v.console, Some(PathBuf::from("out.txt")));
    }

    #[test]
    fn vm_specs_refuse_repeats_empty_names_and_memory_over_the_device_window() {
        for (spec, says) in [
            ("a.elf,mem=8M,mem=16M", "mem= is given twice"),
            ("a.elf,name=x,cpus=1,name=y", "name= is given twice"),
            ("a.elf,name=", "name= needs a name"),
            ("a.elf,mem=512M", "between 1M and 256M"),
            ("a.elf,mem=257M", "the devices start at 0x10000000"),
            ("a.elf,mem=1.5M", "not a number"),
        ] {
            let e = VmSpec::parse(spec).unwrap_err();
            assert!(e.contains(says) && e.starts_with("--vm "), "{spec}: {e}");
        }
        assert_eq!(
            VmSpec::parse("a.elf,mem=256M").unwrap().mem,
            Some(256 << 20)
        );
        let specs: Vec<VmSpec> = ["a.elf", "a.elf,name=vm0", "b.elf,name=x"]
            .iter()
            .map(|s| VmSpec::parse(s).unwrap())
            .collect();
        let table: toml::Table = toml::from_str("image = \"a.elf\"\nname = \"\"").unwrap();
        let e = VmSpec::from_table(table, "f.toml: vm[0]".into(), Path::new("")).unwrap_err();
        assert_eq!(e, "f.toml: vm[0]: name: a VM's name cannot be empty");
        let e = names(&specs).unwrap_err();
        assert!(e.contains("\"vm0\" is already VM 0's"), "{e}");
        let apart = [
            specs.first().unwrap().clone(),
            specs.last().unwrap().clone(),
        ];
        assert_eq!(
            names(&apart).unwrap(),
            ["vm0", "x"],
            "unnamed: vm<position>"
        );
    }

    /// A `[[vm]]` table and the `--vm` string of the same VM give the same
    /// spec (but for where each was given), without one turned into the
    /// other.
    #[test]
    fn a_table_is_the_same_vm_as_its_vm_string() {
        let text = "image = \"k.elf\"\nname = \"left\"\nmem = \"16M\"\ncpus = 2\n\
                    disk = \"d.img\"\nconsole = \"out.txt\"\ncoalesce = \"ring\"\n\
                    io-extent = 7\ncommpage = \"off\"";
        let table: toml::Table = toml::from_str(text).unwrap();
        let from_table = VmSpec::from_table(table, "f.toml: vm[0]".into(), Path::new("conf"))
            .unwrap_or_else(|e| panic!("{e}"));
        let given = "conf/k.elf,name=left,mem=16M,cpus=2,disk=conf/d.img,\
                     console=conf/out.txt,coalesce=ring,io-extent=7,commpage=off";
        let from_flag = VmSpec::parse(given).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            VmSpec {
                origin: from_flag.origin.clone(),
                ..from_table
            },
            from_flag
        );
        let table: toml::Table = toml::from_str("image = \"k.elf\"\ncolour = 1").unwrap();
        let e = VmSpec::from_table(table, "f.toml: vm[1]".into(), Path::new("")).unwrap_err();
        assert!(
            e.starts_with("f.toml: vm[1]: unknown field `colour`"),
            "{e}"
        );
    }
}
