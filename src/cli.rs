//! Command-line arguments and the TOML config they override.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

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
    Run(RunArgs),
    /// Measure simulation speed and virtualization cost.
    Bench(crate::bench::BenchArgs),
    /// Turn a monitor trace (--trace-file) into a trap-flow table.
    Flow(FlowArgs),
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
    /// Run IMAGE natively (the default when an IMAGE is given).
    #[arg(long)]
    pub(crate) native: bool,
    /// A VM under the monitor: IMAGE[,mem=SIZE,cpus=N,name=NAME]; repeat for more VMs.
    #[arg(long = "vm", value_name = "SPEC")]
    pub(crate) vms: Vec<String>,
    /// Commented TOML file with the same settings; flags override it.
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
    #[arg(long, requires = "disk")]
    pub(crate) disk_write: bool,
    /// Trace categories, comma-separated: exc, tlb, mmio, irq, insn (or all).
    #[arg(long, value_name = "CATEGORIES")]
    pub(crate) trace: Option<String>,
    /// Write the trace here instead of standard error.
    #[arg(long, value_name = "FILE")]
    pub(crate) trace_file: Option<PathBuf>,
    /// Stop a runaway guest after this many cycles (exit status 3).
    #[arg(long, value_name = "N")]
    pub(crate) max_cycles: Option<u64>,
    /// Serve the GDB remote protocol on 127.0.0.1:PORT (bare machine; each CPU is a thread).
    #[arg(long, value_name = "PORT")]
    pub(crate) gdb: Option<u16>,
    /// With --gdb: wait for GDB to connect before the first instruction.
    #[arg(long, requires = "gdb")]
    pub(crate) gdb_wait: bool,
    /// Print statistics when the run ends.
    #[arg(long)]
    pub(crate) stats: bool,
    /// NUMA topology from the config file: (CPUs per node, memory per node).
    #[arg(skip)]
    pub(crate) numa: Option<(usize, Option<String>)>,
    /// Print registers when the machine halts (text, or json: one object per CPU).
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, default_missing_value = "text")]
    pub(crate) dump_regs: Option<DumpFormat>,
}

/// The config file: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    pub(crate) image: Option<PathBuf>,
    pub(crate) cpus: Option<usize>,
    pub(crate) mem: Option<String>,
    pub(crate) quantum: Option<u64>,
    pub(crate) disk: Option<PathBuf>,
    pub(crate) trace: Option<String>,
    pub(crate) trace_file: Option<PathBuf>,
    pub(crate) max_cycles: Option<u64>,
    pub(crate) stats: Option<bool>,
    pub(crate) numa: Option<NumaEntry>,
    #[serde(default)]
    pub(crate) vm: Vec<VmEntry>,
}

/// NUMA topology: recorded for the cycle model, which does not charge
/// distance yet.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NumaEntry {
    pub(crate) cpus_per_node: Option<usize>,
    pub(crate) mem_per_node: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VmEntry {
    pub(crate) image: PathBuf,
    pub(crate) name: Option<String>,
    pub(crate) mem: Option<String>,
    pub(crate) cpus: Option<usize>,
}

impl RunArgs {
    /// Merges `file` under the flags: a flag wins over the same key.
    pub(crate) fn with_config(mut self, file: ConfigFile) -> RunArgs {
        if let Some(n) = &file.numa {
            self.numa = Some((n.cpus_per_node.unwrap_or(1), n.mem_per_node.clone()));
        }
        self.image = self.image.or(file.image);
        self.cpus = self.cpus.or(file.cpus);
        self.mem = self.mem.or(file.mem);
        self.quantum = self.quantum.or(file.quantum);
        self.disk = self.disk.or(file.disk);
        self.trace = self.trace.or(file.trace);
        self.trace_file = self.trace_file.or(file.trace_file);
        self.max_cycles = self.max_cycles.or(file.max_cycles);
        self.stats = self.stats || file.stats.unwrap_or(false);
        if self.vms.is_empty() {
            self.vms = file
                .vm
                .into_iter()
                .map(|v| {
                    let mut spec = v.image.display().to_string();
                    if let Some(n) = v.name {
                        spec.push_str(&format!(",name={n}"));
                    }
                    if let Some(m) = v.mem {
                        spec.push_str(&format!(",mem={m}"));
                    }
                    if let Some(c) = v.cpus {
                        spec.push_str(&format!(",cpus={c}"));
                    }
                    spec
                })
                .collect();
        }
        self
    }
}

/// `64M`, `1G`, `4096`, `512K` → bytes.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, mult) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&t[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("size {s:?} is not a number with an optional K, M or G suffix"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// A `--vm` specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VmSpec {
    pub(crate) image: PathBuf,
    pub(crate) name: Option<String>,
    pub(crate) mem: Option<u64>,
    pub(crate) cpus: Option<usize>,
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
            other => {
                return Err(format!(
                    "--vm {s:?}: unknown key {other:?} (mem, cpus, name)"
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
        assert!(parse_vm_spec("a.elf,color=red").is_err());
    }
}
