//! Command-line arguments and the TOML config they override.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;
use sim::config::{Settings, Size};

#[derive(Parser, Debug)]
#[command(
    name = "disco",
    version,
    about = "A MIPS R4000 multiprocessor simulator and Disco-style virtual machine monitor",
    long_about = "A MIPS R4000 multiprocessor simulator and Disco-style virtual machine monitor.\n\n\
                  With no subcommand, runs the default demo (`disco run` with no arguments)."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Run an image on the bare machine, or VMs under the monitor.
    Run(Box<RunArgs>),
    /// Measure simulation speed and virtualization cost.
    Bench(crate::bench::BenchArgs),
    /// Turn a monitor trace (--trace-file) into a trap-flow table.
    Flow(FlowArgs),
    /// Course labs: list them, start a copy, grade a copy (docs/labs.md).
    Lab(crate::lab::LabArgs),
}

#[derive(Args, Debug, Clone)]
pub(crate) struct FlowArgs {
    /// A trace written by `disco run --vm … --trace exc --trace-file FILE`.
    #[arg(value_name = "TRACE-FILE")]
    pub(crate) trace: PathBuf,
    /// Start at the first line containing this text.
    #[arg(long, value_name = "TEXT")]
    pub(crate) from: Option<String>,
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
    /// Physical CPUs (1-64).
    #[arg(long)]
    pub(crate) cpus: Option<usize>,
    /// RAM of the bare machine, e.g. 32M, 1G.
    #[arg(long, value_name = "SIZE")]
    pub(crate) mem: Option<String>,
    /// Cycles each CPU runs before the next one gets its turn.
    #[arg(long, value_name = "CYCLES")]
    pub(crate) quantum: Option<u64>,
    /// Disk image for the board's disk device (read once; the file is not modified).
    #[arg(long, value_name = "FILE")]
    pub(crate) disk: Option<PathBuf>,
    /// Write the guest's changes back to the --disk file when the run ends.
    #[arg(long)]
    pub(crate) disk_write: bool,
    /// Give the disk a completion interrupt (IP5, CPU 0) this many cycles after each operation
    /// starts, for the bare machine's disk and every VM's (a disco extension: GXemul's disk has
    /// none). The transfer still happens at once.
    #[arg(long, value_name = "CYCLES")]
    pub(crate) disk_irq: Option<u64>,
    /// Seed of the mp device's hardware_random register (default 0).
    #[arg(long, value_name = "N")]
    pub(crate) seed: Option<u64>,
    /// Seconds since 1970 the rtc reports at cycle 0 (default 0).
    #[arg(long, value_name = "SECONDS")]
    pub(crate) epoch: Option<u64>,
    /// Trace categories, comma-separated: exc, tlb, mmio, irq, insn (or all).
    #[arg(long, value_name = "CATEGORIES")]
    pub(crate) trace: Option<String>,
    /// Write the trace here instead of standard error.
    #[arg(long, value_name = "FILE")]
    pub(crate) trace_file: Option<PathBuf>,
    /// Stop a runaway guest after this many cycles (exit status 3).
    #[arg(long, value_name = "N")]
    pub(crate) max_cycles: Option<u64>,
    /// Serve the GDB remote protocol on 127.0.0.1:PORT (natively each CPU is a thread;
    /// under the monitor, each VCPU of the --gdb-vm VM). Port 0 picks a free port and prints it.
    #[arg(long, value_name = "PORT")]
    pub(crate) gdb: Option<u16>,
    /// With --gdb: wait for GDB to connect before the first instruction.
    #[arg(long, requires = "gdb")]
    pub(crate) gdb_wait: bool,
    /// With --gdb under the monitor: the VM to debug (default: the first).
    #[arg(long, value_name = "NAME", requires = "gdb")]
    pub(crate) gdb_vm: Option<String>,
    /// Print statistics when the run ends.
    #[arg(long)]
    pub(crate) stats: bool,
    /// Print registers when the machine halts (text, or json: one object per CPU).
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
}

impl VmEntry {
    /// The same VM as a `--vm` specification.
    pub(crate) fn spec(&self) -> Result<String, String> {
        let mut spec = self.image.display().to_string();
        if let Some(n) = &self.name {
            spec.push_str(&format!(",name={n}"));
        }
        if let Some(m) = &self.mem {
            spec.push_str(&format!(",mem={}", m.bytes()?));
        }
        if let Some(c) = self.cpus {
            spec.push_str(&format!(",cpus={c}"));
        }
        if let Some(d) = &self.disk {
            spec.push_str(&format!(",disk={}", d.display()));
        }
        if let Some(c) = &self.console {
            spec.push_str(&format!(",console={}", c.display()));
        }
        Ok(spec)
    }
}

impl RunArgs {
    /// The flags as a settings layer (unset flags leave the file's keys).
    pub(crate) fn settings(&self) -> Settings {
        Settings {
            image: self.image.clone(),
            cpus: self.cpus,
            mem: self.mem.clone().map(Size::Text),
            quantum: self.quantum,
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
        }
    }
}

/// `64M`, `1G`, `4096`, `512K` → bytes.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    sim::config::parse_size(s)
}

/// A `--vm` specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VmSpec {
    pub(crate) image: PathBuf,
    pub(crate) name: Option<String>,
    pub(crate) mem: Option<u64>,
    pub(crate) cpus: Option<usize>,
    pub(crate) disk: Option<PathBuf>,
    pub(crate) console: Option<PathBuf>,
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
    };
    for p in parts {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("--vm {s:?}: {p:?} is not KEY=VALUE"))?;
        match k {
            "mem" => spec.mem = Some(parse_size(v)?),
            "cpus" => {
                spec.cpus = Some(
                    v.parse()
                        .map_err(|_| format!("--vm {s:?}: cpus={v:?} is not a number"))?,
                )
            }
            "name" => spec.name = Some(v.to_string()),
            "disk" if !v.is_empty() => spec.disk = Some(PathBuf::from(v)),
            "disk" => return Err(format!("--vm {s:?}: disk= needs a file")),
            "console" if !v.is_empty() => spec.console = Some(PathBuf::from(v)),
            "console" => return Err(format!("--vm {s:?}: console= needs a file")),
            other => {
                return Err(format!(
                    "--vm {s:?}: unknown key {other:?} (mem, cpus, name, disk, console)"
                ))
            }
        }
    }
    Ok(spec)
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

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
        let v = parse_vm_spec("a.elf,disk=d.img,console=out.txt").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.disk, Some(PathBuf::from("d.img")));
        assert_eq!(v.console, Some(PathBuf::from("out.txt")));
    }
}
