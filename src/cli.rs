//! Command-line arguments and the TOML config they override.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use sim::config::{Settings, Size};

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

/// A count that must be at least one (`whole`'s checks, and not 0).
pub(crate) fn at_least_one(s: &str) -> Result<usize, String> {
    match whole::<usize>(s)? {
        0 => Err("must be at least 1".to_string()),
        n => Ok(n),
    }
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
    /// Execution tier: 1 = the reference interpreter, 2 = blocks (default), 3 = blocks with hot ones compiled (docs/tiers.md).
    #[arg(long, value_name = "N")]
    pub(crate) tier: Option<u64>,
    /// Run the simulated CPUs on host threads (docs/parallel.md): guest results stay correct,
    /// the interleaving is not deterministic. The bare machine's CPUs, or the monitor's (--vm).
    #[arg(long)]
    pub(crate) parallel: bool,
    /// With --parallel: host threads to spread the CPUs over (default: the host's cores).
    #[arg(long, value_name = "N", requires = "parallel", value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub(crate) threads: Option<usize>,
    /// With --parallel under the monitor: whether a VM's CPUs may be split over threads
    /// (auto, always or never; default auto: only a VM whose work runs mostly directly).
    #[arg(long, value_name = "POLICY", requires = "parallel")]
    pub(crate) split: Option<String>,
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
            parallel: self.parallel.then_some(true),
            threads: self.threads,
            split: self.split.clone(),
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

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::Path;

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
        let e = err(&["disco", "bench", "--runs", "0"]);
        assert!(e.contains("must be at least 1"), "{e}");
        let e = err(&["disco", "run", "--max-cycles", "lots"]);
        assert!(e.contains("digits only"), "{e}");
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
            let spec =
                monitor::spec::VmSpec::from_table(table.clone(), "vm[0]".into(), Path::new("docs"))
                    .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(spec.console, Some(PathBuf::from("docs/left-console.txt")));
            assert_eq!(spec.image, Path::new("docs/../guest-kits/images/hello.elf"));
        }
    }
}
