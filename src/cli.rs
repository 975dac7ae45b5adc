//! Command-line arguments and the TOML config they override.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;
use sim::config::{check_ram, show_size, Settings, Size};

#[derive(Parser, Debug)]
#[command(
    name = "disco",
    version,
    about = "A MIPS R4000 multiprocessor simulator and Disco-style virtual machine monitor",
    long_about = "A MIPS R4000 multiprocessor simulator and Disco-style virtual machine monitor.\n\n\
                  With no subcommand, runs the default demo (`disco run` with no arguments).",
    after_help = after_help()
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Run an image on the bare machine, or VMs under the monitor.
    #[command(after_help = after_help())]
    Run(Box<RunArgs>),
    /// Measure simulation speed and virtualization cost.
    Bench(crate::bench::BenchArgs),
    /// Turn a monitor trace (--trace-file) into a trap-flow table.
    Flow(FlowArgs),
    /// Course labs: list them, start a copy, grade a copy (docs/labs.md).
    Lab(crate::lab::LabArgs),
}

/// What `disco --help` and `disco run --help` end with.
const EXAMPLES: &str = "\
EXAMPLES:
  disco                                       the demo: two VMs of kestrel under the monitor
  disco run guest-kits/images/hello.elf       one image on the bare machine
  disco run guest-kits/images/smp.elf --cpus 4 --stats
  disco run --cpus 2 --vm guest-kits/images/kestrel.elf,cpus=4 --stats
  disco run --vm guest-kits/images/kestrel.elf --trace exc --trace-file run.trace
  disco flow run.trace                        that trace as a trap-flow table
  disco run --config docs/machine.toml        settings from a commented TOML file";

fn after_help() -> String {
    format!("{EXAMPLES}\n\n{}", crate::exit::EXIT_STATUS_HELP)
}

/// A count or a number of cycles: a whole number, never negative (clap's
/// own message for `-1` would suggest `-- -1`).
pub(crate) fn whole<T: TryFrom<u64>>(s: &str) -> Result<T, String> {
    if s.starts_with('-') {
        return Err("must be a whole number, not negative".to_string());
    }
    let n: u64 = s
        .parse()
        .map_err(|_| "must be a whole number (digits only)".to_string())?;
    T::try_from(n).map_err(|_| format!("{n} is too large"))
}

#[derive(Args, Debug, Clone)]
pub(crate) struct FlowArgs {
    /// A trace written by `disco run --vm … --trace exc --trace-file FILE`.
    #[arg(value_name = "TRACE-FILE")]
    pub(crate) trace: PathBuf,
    /// Start at the first line containing this text.
    #[arg(long, value_name = "TEXT")]
    pub(crate) from: Option<String>,
    /// Start at the Nth line containing the --from text instead (from 1).
    #[arg(long, value_name = "N", requires = "from", conflicts_with = "last")]
    pub(crate) nth: Option<usize>,
    /// Start at the last line containing the --from text instead.
    #[arg(long, requires = "from")]
    pub(crate) last: bool,
    /// End at the first line after the start containing this text.
    #[arg(long, value_name = "TEXT")]
    pub(crate) to: Option<String>,
    /// Also write the table as a standalone HTML page.
    #[arg(long, value_name = "FILE")]
    pub(crate) html: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum DumpFormat {
    Text,
    Json,
}

#[derive(Args, Debug, Default, Clone)]
pub(crate) struct RunArgs {
    /// An ELF image to run on the bare machine in kernel mode.
    #[arg(value_name = "IMAGE")]
    pub(crate) image: Option<PathBuf>,
    /// Run IMAGE natively on the bare machine (the default when an IMAGE is given).
    #[arg(long)]
    pub(crate) native: bool,
    /// A VM under the monitor: IMAGE[,mem=SIZE,cpus=N,name=NAME,disk=FILE,console=FILE]; repeat
    /// for more VMs. VMs naming the same disk file share one copy of it; each sees only its own
    /// writes, which are discarded at the end. console=FILE writes the VM's console output to
    /// FILE instead of prefixing it with the VM's name on stdout.
    #[arg(long = "vm", value_name = "SPEC")]
    pub(crate) vms: Vec<String>,
    /// Commented TOML file with the same settings (docs/machine.toml); flags override it.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Physical CPUs, 1-64 (default 1; under the monitor, one per VM).
    #[arg(long, value_name = "N", value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub(crate) cpus: Option<usize>,
    /// Memory, e.g. 64M: the bare machine's RAM, 1M to 256M (default 32M);
    /// under --vm, the machine memory the VMs share, up to 4G (default: what they need).
    #[arg(long, value_name = "SIZE", allow_negative_numbers = true)]
    pub(crate) mem: Option<String>,
    /// On the bare machine: the memory the booting kernel is told it has (mp memory register),
    /// at most --mem; the rest is the machine's (default: all of --mem).
    #[arg(long, value_name = "SIZE")]
    pub(crate) boot_mem: Option<String>,
    /// A timeline entry WHEN:ACTION for a kernel booted on the bare machine, e.g. 20M:virtualize,
    /// 60M:devirtualize (WHEN: a cycle count with K/M/G = 10^3/10^6/10^9, or vm-end[=NAME]);
    /// repeatable. See docs/devirtualization.md.
    #[arg(long = "at", value_name = "WHEN:ACTION")]
    pub(crate) at: Vec<String>,
    /// With --at: how remapping finds a machine page's user (backmap, refcount or search;
    /// default backmap).
    #[arg(long, value_name = "INDEX")]
    pub(crate) remap_index: Option<String>,
    /// With --at: whether the guest runs while pages move (paused or concurrent;
    /// default paused).
    #[arg(long, value_name = "MODE")]
    pub(crate) remap: Option<String>,
    /// Cycles each CPU runs before the next one gets its turn (default 10000).
    #[arg(long, value_name = "CYCLES", value_parser = whole::<u64>, allow_negative_numbers = true)]
    pub(crate) quantum: Option<u64>,
    /// Execution tier: 1 = the reference interpreter, 2 = blocks (default; docs/tiers.md).
    #[arg(long, value_name = "N")]
    pub(crate) tier: Option<u64>,
    /// Disk image for the board's disk device (sectors read as the guest asks; the file is not modified).
    #[arg(long, value_name = "FILE")]
    pub(crate) disk: Option<PathBuf>,
    /// Write the guest's changes back to the --disk file when the run ends.
    #[arg(long)]
    pub(crate) disk_write: bool,
    /// Give the disk a completion interrupt (IP5, CPU 0) this many cycles after each operation
    /// starts, for the bare machine's disk and every VM's (a disco extension: GXemul's disk has
    /// none). The transfer still happens at once. Default: no interrupt.
    #[arg(long, value_name = "CYCLES", value_parser = whole::<u64>, allow_negative_numbers = true)]
    pub(crate) disk_irq: Option<u64>,
    /// Seed of the mp device's hardware_random register (default 0).
    #[arg(long, value_name = "N", value_parser = whole::<u64>, allow_negative_numbers = true)]
    pub(crate) seed: Option<u64>,
    /// Seconds since 1970 the rtc reports at cycle 0 (default 0).
    #[arg(long, value_name = "SECONDS", value_parser = whole::<u64>, allow_negative_numbers = true)]
    pub(crate) epoch: Option<u64>,
    /// Trace categories, comma-separated: exc, tlb, mmio, irq, insn (or all); default none.
    #[arg(long, value_name = "CATEGORIES")]
    pub(crate) trace: Option<String>,
    /// Write the trace here instead of standard error (the default).
    #[arg(long, value_name = "FILE")]
    pub(crate) trace_file: Option<PathBuf>,
    /// Stop a runaway guest after this many cycles (exit status 3; default no limit).
    #[arg(long, value_name = "N", value_parser = whole::<u64>, allow_negative_numbers = true)]
    pub(crate) max_cycles: Option<u64>,
    /// Serve the GDB remote protocol on 127.0.0.1:PORT (natively each CPU is a thread;
    /// under the monitor, each VCPU of the --gdb-vm VM). Port 0 picks a free port and prints it.
    #[arg(long, value_name = "PORT", value_parser = whole::<u16>, allow_negative_numbers = true)]
    pub(crate) gdb: Option<u16>,
    /// With --gdb: wait for GDB to connect before the first instruction.
    #[arg(long, requires = "gdb")]
    pub(crate) gdb_wait: bool,
    /// With --gdb under the monitor: the VM to debug (default: the first).
    #[arg(long, value_name = "NAME", requires = "gdb")]
    pub(crate) gdb_vm: Option<String>,
    /// Override an entry of the monitor's cost table (docs/timing.md), e.g. --cost exit=100;
    /// repeatable.
    #[arg(long = "cost", value_name = "NAME=CYCLES")]
    pub(crate) costs: Vec<String>,
    /// Print statistics when the run ends (and on Ctrl-C).
    #[arg(long)]
    pub(crate) stats: bool,
    /// Print registers when the run ends, and on Ctrl-C (text, or json: one object per CPU).
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, default_missing_value = "text")]
    pub(crate) dump_regs: Option<DumpFormat>,
}

/// A `[[vm]]` table of the config file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VmEntry {
    pub(crate) image: PathBuf,
    pub(crate) name: Option<String>,
    pub(crate) mem: Option<Size>,
    pub(crate) cpus: Option<usize>,
    pub(crate) disk: Option<PathBuf>,
    pub(crate) console: Option<PathBuf>,
    pub(crate) coalesce: Option<String>,
    #[serde(rename = "io-extent")]
    pub(crate) io_extent: Option<u32>,
    pub(crate) commpage: Option<String>,
    pub(crate) exec: Option<String>,
}

impl VmEntry {
    /// The same VM as a `--vm` specification would give, its relative
    /// paths taken from `dir` (the config file's directory); `origin`
    /// names the table in messages.
    pub(crate) fn into_spec(self, origin: String, dir: &Path) -> Result<VmSpec, String> {
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
        let mut io = monitor::coalesce::IoConfig::default();
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
            Some(e) => monitor::bt::Exec::parse(e).map_err(|e| format!("{origin}: {e}"))?,
            None => monitor::bt::Exec::default(),
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

impl RunArgs {
    /// The flags as a settings layer (unset flags leave the file's keys).
    pub(crate) fn settings(&self) -> Settings {
        Settings {
            image: self.image.clone(),
            cpus: self.cpus,
            mem: self.mem.clone().map(Size::Text),
            boot_mem: self.boot_mem.clone().map(Size::Text),
            quantum: self.quantum,
            tier: self.tier,
            max_cycles: self.max_cycles,
            seed: self.seed,
            epoch: self.epoch,
            disk: self.disk.clone(),
            disk_write: self.disk_write.then_some(true),
            disk_irq: self.disk_irq,
            trace: self.trace.clone(),
            trace_file: self.trace_file.clone(),
            stats: self.stats.then_some(true),
            dump_regs: self.dump_regs.map(|f| {
                match f {
                    DumpFormat::Text => "text",
                    DumpFormat::Json => "json",
                }
                .to_string()
            }),
            numa: None,
            vm: Vec::new(),
            cost: None,
            // `--at` entries are read by `crate::timeline`.
            at: Vec::new(),
            remap_index: self.remap_index.clone(),
            remap: self.remap.clone(),
        }
    }
}

/// `64M`, `1G`, `4096`, `512K` → bytes.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    sim::config::parse_size(s)
}

/// A `--vm` specification (or a config file's `[[vm]]` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VmSpec {
    pub(crate) image: PathBuf,
    pub(crate) name: Option<String>,
    pub(crate) mem: Option<u64>,
    pub(crate) cpus: Option<usize>,
    pub(crate) disk: Option<PathBuf>,
    pub(crate) console: Option<PathBuf>,
    /// Where it was given, for messages: `--vm "SPEC"` or `FILE: vm[i]`.
    pub(crate) origin: String,
    pub(crate) io: monitor::coalesce::IoConfig,
    /// Whether the guest kernel's MFC0/MTC0 may be patched (`commpage=off`).
    pub(crate) commpage: bool,
    /// Which guest-kernel code is translated (`exec=`; docs/translation.md).
    pub(crate) exec: monitor::bt::Exec,
}

/// The VMs' names, each VM's own or `vm<i>`: refused if two are the same
/// (the output and `--gdb-vm` would be ambiguous).
pub(crate) fn vm_names(specs: &[VmSpec]) -> Result<Vec<String>, String> {
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
fn parse_coalesce(v: &str) -> Result<monitor::coalesce::Policy, String> {
    monitor::coalesce::Policy::parse(v)
        .ok_or_else(|| format!("coalesce={v:?} is not one of off, block, second, ring"))
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

pub(crate) fn parse_vm_spec(s: &str) -> Result<VmSpec, String> {
    let mut parts = s.split(',');
    let image = parts
        .next()
        .filter(|p| !p.is_empty())
        .ok_or("--vm needs an image path")?;
    let mut spec = VmSpec {
        image: PathBuf::from(image),
        name: None,
        mem: None,
        cpus: None,
        disk: None,
        console: None,
        origin: format!("--vm {s:?}"),
        io: monitor::coalesce::IoConfig::default(),
        commpage: true,
        exec: monitor::bt::Exec::default(),
    };
    let mut seen: Vec<&str> = Vec::new();
    for p in parts {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("--vm {s:?}: {p:?} is not KEY=VALUE"))?;
        if seen.contains(&k) {
            return Err(format!("--vm {s:?}: {k}= is given twice"));
        }
        seen.push(k);
        match k {
            "mem" => {
                let bytes = parse_size(v).map_err(|e| format!("--vm {s:?}: mem: {e}"))?;
                spec.mem = Some(
                    check_ram(bytes, &format!("mem={v}"))
                        .map_err(|e| format!("--vm {s:?}: {e}"))?,
                );
            }
            "cpus" => {
                spec.cpus = Some(
                    v.parse()
                        .map_err(|_| format!("--vm {s:?}: cpus={v:?} is not a number"))?,
                )
            }
            "name" if !v.is_empty() => spec.name = Some(v.to_string()),
            "name" => return Err(format!("--vm {s:?}: name= needs a name")),
            "disk" if !v.is_empty() => spec.disk = Some(PathBuf::from(v)),
            "disk" => return Err(format!("--vm {s:?}: disk= needs a file")),
            "console" if !v.is_empty() => spec.console = Some(PathBuf::from(v)),
            "console" => return Err(format!("--vm {s:?}: console= needs a file")),
            "coalesce" => {
                spec.io.policy = parse_coalesce(v).map_err(|e| format!("--vm {s:?}: {e}"))?
            }
            "io-extent" => {
                spec.io.extent =
                    Some(parse_io_extent(v).map_err(|e| format!("--vm {s:?}: {e}"))?)
            }
            "commpage" => spec.commpage = parse_commpage(v).map_err(|e| format!("--vm {s:?}: {e}"))?,
            "exec" => {
                spec.exec = monitor::bt::Exec::parse(v).map_err(|e| format!("--vm {s:?}: {e}"))?
            }
            other => {
                return Err(format!(
                    "--vm {s:?}: unknown key {other:?} (mem, cpus, name, disk, console, coalesce, io-extent, commpage, exec)"
                ))
            }
        }
    }
    Ok(spec)
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The defaults `--help` states by hand are the ones the code uses.
    #[test]
    fn help_states_the_real_defaults() {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        let help = cmd
            .find_subcommand_mut("run")
            .map(|c| c.render_help().to_string())
            .unwrap_or_default();
        let ram = sim::config::DEFAULT_RAM >> 20;
        assert!(help.contains(&format!("(default {ram}M)")), "{help}");
        let quantum = sim::config::DEFAULT_QUANTUM;
        assert!(help.contains(&format!("(default {quantum})")), "{help}");
        assert!(help.contains("EXAMPLES:") && help.contains("EXIT STATUS"));
    }

    #[test]
    fn negative_and_huge_numbers_get_a_plain_message() {
        let err = |args: &[&str]| match Cli::try_parse_from(args) {
            Ok(_) => panic!("{args:?} parsed"),
            Err(e) => e.to_string(),
        };
        let e = err(&["disco", "run", "--cpus", "-1"]);
        assert!(e.contains("must be a whole number, not negative"), "{e}");
        assert!(!e.contains("-- -1"), "{e}");
        let e = err(&["disco", "run", "--gdb", "70000"]);
        assert!(e.contains("70000 is too large"), "{e}");
        let e = err(&["disco", "bench", "--runs", "-3"]);
        assert!(e.contains("must be a whole number, not negative"), "{e}");
        let e = err(&["disco", "run", "--max-cycles", "lots"]);
        assert!(e.contains("digits only"), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn vm_specs() {
        let v = parse_vm_spec("a.elf,mem=8M,cpus=2,name=x").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.mem, Some(8 << 20));
        assert_eq!(v.cpus, Some(2));
        assert!(parse_vm_spec("a.elf,disk").is_err());
        assert!(parse_vm_spec("a.elf,disk=").is_err());
        assert!(parse_vm_spec("a.elf,console=").is_err());
        assert!(parse_vm_spec("a.elf,color=red").is_err());
        let v = parse_vm_spec("a.elf,coalesce=ring,io-extent=9").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.io.policy, monitor::coalesce::Policy::Ring);
        assert_eq!(v.io.extent, Some(9));
        assert!(parse_vm_spec("a.elf,coalesce=always").is_err());
        assert!(parse_vm_spec("a.elf,io-extent=0").is_err());
        assert!(parse_vm_spec("a.elf").is_ok_and(|v| v.commpage));
        assert!(parse_vm_spec("a.elf,commpage=off").is_ok_and(|v| !v.commpage));
        assert!(parse_vm_spec("a.elf,commpage=no").is_err());
        assert!(parse_vm_spec("a.elf,commpage=on,commpage=off").is_err());
        assert!(parse_vm_spec("a.elf").is_ok_and(|v| v.exec == monitor::bt::Exec::Direct));
        assert!(parse_vm_spec("a.elf,exec=translate")
            .is_ok_and(|v| v.exec == monitor::bt::Exec::Translate));
        assert!(parse_vm_spec("a.elf,exec=adaptive")
            .is_ok_and(|v| v.exec == monitor::bt::Exec::Adaptive));
        assert!(parse_vm_spec("a.elf,exec=fast")
            .is_err_and(|e| e.contains("not one of direct, translate, adaptive")));
        let v = parse_vm_spec("a.elf,disk=d.img,console=out.txt").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.disk, Some(PathBuf::from("d.img")));
        assert_eq!(v.console, Some(PathBuf::from("out.txt")));
    }

    /// Every commented key of docs/machine.toml, uncommented, is a key the
    /// file may hold and a valid value: the sample never shows a line that
    /// would be refused.
    #[test]
    fn every_commented_key_of_the_sample_config_parses() {
        let setting = |l: &str| {
            l.starts_with('[')
                || l.split_once(" = ").is_some_and(|(k, _)| {
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                })
        };
        let mut uncommented = 0;
        let text: Vec<&str> = include_str!("../docs/machine.toml")
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if setting(rest) => {
                    uncommented += 1;
                    rest
                }
                _ => l,
            })
            .collect();
        assert!(uncommented >= 15, "only {uncommented} commented keys found");
        let s = Settings::from_toml(&text.join("\n")).unwrap_or_else(|e| panic!("{e}"));
        s.machine().unwrap_or_else(|e| panic!("{e}"));
        assert!(s.disk.is_some() && s.trace_file.is_some() && s.dump_regs.is_some());
        assert_eq!(s.vm.len(), 1);
        for table in &s.vm {
            let entry: VmEntry = table.clone().try_into().unwrap_or_else(|e| panic!("{e}"));
            let spec = entry
                .into_spec("vm[0]".into(), Path::new("docs"))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(spec.console, Some(PathBuf::from("docs/left-console.txt")));
            assert_eq!(spec.image, Path::new("docs/../guest-kits/images/hello.elf"));
        }
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
            let e = parse_vm_spec(spec).unwrap_err();
            assert!(e.contains(says) && e.starts_with("--vm "), "{spec}: {e}");
        }
        assert_eq!(
            parse_vm_spec("a.elf,mem=256M").unwrap().mem,
            Some(256 << 20)
        );
        let specs: Vec<VmSpec> = ["a.elf", "a.elf,name=vm0", "b.elf,name=x"]
            .iter()
            .map(|s| parse_vm_spec(s).unwrap())
            .collect();
        let table: toml::Table = toml::from_str("image = \"a.elf\"\nname = \"\"").unwrap();
        let entry: VmEntry = table.try_into().unwrap();
        let e = entry
            .into_spec("f.toml: vm[0]".into(), Path::new(""))
            .unwrap_err();
        assert_eq!(e, "f.toml: vm[0]: name: a VM's name cannot be empty");
        let e = vm_names(&specs).unwrap_err();
        assert!(e.contains("\"vm0\" is already VM 0's"), "{e}");
        let apart = [
            specs.first().unwrap().clone(),
            specs.last().unwrap().clone(),
        ];
        assert_eq!(
            vm_names(&apart).unwrap(),
            ["vm0", "x"],
            "unnamed: vm<position>"
        );
    }
}
