//! Run settings: what a commented TOML file (docs/machine.toml) or the
//! command line says, merged (the command line wins) and validated into a
//! [`MachineSetup`]. Every error names the key it is about.

use std::path::PathBuf;

use serde::Deserialize;

use crate::dev::BoardConfig;
use crate::machine::{MachineConfig, Tier, MAX_CPUS};

/// RAM when nothing says otherwise (GXemul's testmips default).
pub const DEFAULT_RAM: u64 = 32 << 20;
/// Cycles a CPU runs before the next one gets its turn.
pub const DEFAULT_QUANTUM: u64 = 10_000;
/// RAM bounds: at least 1 MB, at most 256 MB. A guest's memory starts at
/// physical 0 with no holes, and the board's devices start at physical
/// 0x10000000 (docs/hardware.md), so RAM stops there: more would cover the
/// console and halt registers and a guest would run on, silent.
pub(crate) const MIN_RAM: u64 = 1 << 20;
pub(crate) const MAX_RAM: u64 = DEVICE_WINDOW;
/// The physical address where the board's devices start.
pub(crate) const DEVICE_WINDOW: u64 = 0x1000_0000;
/// The most machine memory the monitor manages: its VMs' memory and a
/// commpage per VCPU (docs/config.md). A documented bound, so a mistyped
/// `--vm` list is refused before the host is asked for the memory.
pub const MAX_MACHINE_MEM: u64 = 4 << 30;

/// Checks a guest's RAM size (the bare machine's, or one VM's): the
/// problem in one sentence, naming the size as `given` spells it.
pub fn check_ram(bytes: u64, given: &str) -> Result<u64, String> {
    if !(MIN_RAM..=MAX_RAM).contains(&bytes) || !bytes.is_multiple_of(4096) {
        return Err(format!(
            "{given}: RAM must be a multiple of 4K between 1M and 256M \
             (a guest's memory starts at physical 0 with no holes, and the devices start at 0x10000000)"
        ));
    }
    Ok(bytes)
}

/// Asks the host whether it can give `bytes` of simulated memory, so a
/// size the host cannot hold is refused in one line instead of aborting
/// the process. Safe Rust has no fallible zeroed allocation, so this
/// reserves the memory once and gives it back; the RAM itself is then
/// allocated zeroed (untouched pages cost the host nothing).
pub fn check_host_memory(bytes: u64) -> Result<(), String> {
    let n = usize::try_from(bytes)
        .map_err(|_| format!("{bytes} bytes do not fit this host's address space"))?;
    let mut probe: Vec<u8> = Vec::new();
    probe.try_reserve_exact(n).map_err(|_| {
        format!(
            "the host cannot allocate {} of simulated memory",
            show_size(bytes)
        )
    })
}

/// Bytes as the largest unit that divides them (`64M`, `4100K`, `100`).
pub fn show_size(bytes: u64) -> String {
    match bytes {
        0 => "0".to_string(),
        b if b.is_multiple_of(1 << 30) => format!("{}G", b >> 30),
        b if b.is_multiple_of(1 << 20) => format!("{}M", b >> 20),
        b if b.is_multiple_of(1 << 10) => format!("{}K", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// A bad setting: the key and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{key}: {problem}")]
    Invalid { key: &'static str, problem: String },
    /// The file is not valid TOML or has a key of the wrong type or name;
    /// the message names the line and the key.
    #[error("{0}")]
    Syntax(String),
}

fn invalid(key: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        problem: problem.into(),
    }
}

/// A size in bytes: an integer, or a string with an optional K, M or G
/// suffix (`"64M"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Size {
    Bytes(u64),
    Text(String),
}

/// By hand rather than `untagged`, so a float or a negative number is
/// refused with what a size is instead of "did not match any variant".
impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Size, D::Error> {
        struct SizeVisitor;
        impl serde::de::Visitor<'_> for SizeVisitor {
            type Value = Size;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a size: a whole number of bytes, or a string such as \"64M\" (K, M or G suffix)")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size::Bytes(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size::Bytes)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Size, E> {
                Ok(Size::Text(v.to_string()))
            }
        }
        d.deserialize_any(SizeVisitor)
    }
}

impl Size {
    pub fn bytes(&self) -> Result<u64, String> {
        match self {
            Size::Bytes(n) => Ok(*n),
            Size::Text(s) => parse_size(s),
        }
    }
}

/// `64M`, `1G`, `4096`, `512K` → bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, mult) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (t.get(..i).unwrap_or(""), 1u64 << 10),
        Some((i, 'M' | 'm')) => (t.get(..i).unwrap_or(""), 1 << 20),
        Some((i, 'G' | 'g')) => (t.get(..i).unwrap_or(""), 1 << 30),
        _ => (t, 1),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("size {s:?} is not a number with an optional K, M or G suffix"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// The `[numa]` table: any two of the three keys determine the third.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumaSettings {
    pub nodes: Option<usize>,
    pub cpus_per_node: Option<usize>,
    pub mem_per_node: Option<Size>,
}

/// Everything `disco run` can be told, each key optional. The same names
/// are the TOML keys and (with dashes) the command-line flags.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub image: Option<PathBuf>,
    pub cpus: Option<usize>,
    pub mem: Option<Size>,
    /// The memory the mp device reports to the booting kernel on the bare
    /// machine (default: all of `mem`); the rest stays the machine's.
    pub boot_mem: Option<Size>,
    pub quantum: Option<u64>,
    /// Execution tier: 1 (the reference interpreter), 2 (blocks; default) or
    /// 3 (blocks, the hot ones compiled).
    pub tier: Option<u64>,
    pub max_cycles: Option<u64>,
    /// Run the CPUs on host threads (docs/parallel.md); default off.
    pub parallel: Option<bool>,
    /// Host threads of the parallel mode (default: the host's cores).
    pub threads: Option<usize>,
    /// Whether the monitor's parallel mode may split a VM over threads:
    /// auto, always or never (read by the front end that runs VMs).
    pub split: Option<String>,
    pub seed: Option<u64>,
    pub epoch: Option<u64>,
    pub disk: Option<PathBuf>,
    pub disk_write: Option<bool>,
    /// Cycles from a disk operation's start to its completion interrupt
    /// (IP5, a disco extension); unset: the disk has no interrupt.
    pub disk_irq: Option<u64>,
    pub trace: Option<String>,
    pub trace_file: Option<PathBuf>,
    pub stats: Option<bool>,
    pub dump_regs: Option<String>,
    pub numa: Option<NumaSettings>,
    /// `[[vm]]` tables, handed as they are to the front end that runs VMs
    /// (the simulator itself does not read them).
    #[serde(default)]
    pub vm: Vec<toml::Table>,
    /// `[cost]`: entries of the monitor's cost table to override, handed
    /// as they are to the front end that runs VMs.
    pub cost: Option<toml::Table>,
    /// How remapping finds a machine page's user: backmap, refcount or
    /// search (read by the front end that runs the timeline).
    pub remap_index: Option<String>,
    /// Whether the guest runs while pages move: paused or concurrent
    /// (read by the front end that runs the timeline).
    pub remap: Option<String>,
    /// `[[at]]` timeline entries, read by the front end like `vm`.
    #[serde(default)]
    pub at: Vec<AtSetting>,
}

/// One `[[at]]` table: `when = "20M"`, `action = "virtualize"`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtSetting {
    pub when: String,
    pub action: String,
}

impl Settings {
    /// Parses a TOML file's text. Errors give the line and the key.
    pub fn from_toml(text: &str) -> Result<Settings, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Syntax(describe_toml_error(text, &e)))
    }

    /// `self` over `lower`: each key set here wins.
    pub fn over(self, lower: Settings) -> Settings {
        Settings {
            image: self.image.or(lower.image),
            cpus: self.cpus.or(lower.cpus),
            mem: self.mem.or(lower.mem),
            boot_mem: self.boot_mem.or(lower.boot_mem),
            quantum: self.quantum.or(lower.quantum),
            tier: self.tier.or(lower.tier),
            max_cycles: self.max_cycles.or(lower.max_cycles),
            parallel: self.parallel.or(lower.parallel),
            threads: self.threads.or(lower.threads),
            split: self.split.or(lower.split),
            seed: self.seed.or(lower.seed),
            epoch: self.epoch.or(lower.epoch),
            disk: self.disk.or(lower.disk),
            disk_write: self.disk_write.or(lower.disk_write),
            disk_irq: self.disk_irq.or(lower.disk_irq),
            trace: self.trace.or(lower.trace),
            trace_file: self.trace_file.or(lower.trace_file),
            stats: self.stats.or(lower.stats),
            dump_regs: self.dump_regs.or(lower.dump_regs),
            numa: self.numa.or(lower.numa),
            vm: if self.vm.is_empty() {
                lower.vm
            } else {
                self.vm
            },
            cost: self.cost.or(lower.cost),
            remap_index: self.remap_index.or(lower.remap_index),
            remap: self.remap.or(lower.remap),
            at: if self.at.is_empty() {
                lower.at
            } else {
                self.at
            },
        }
    }

    /// RAM in bytes, validated.
    pub(crate) fn ram(&self) -> Result<u64, ConfigError> {
        let ram = match &self.mem {
            Some(s) => s.bytes().map_err(|e| invalid("mem", e))?,
            None => DEFAULT_RAM,
        };
        check_ram(ram, &show_size(ram)).map_err(|e| invalid("mem", e))?;
        check_host_memory(ram).map_err(|e| invalid("mem", e))?;
        Ok(ram)
    }

    /// The machine memory under the monitor when `mem` is given: any size
    /// in whole 4K pages up to [`MAX_MACHINE_MEM`].
    pub fn machine_mem(&self) -> Result<Option<u64>, ConfigError> {
        let Some(size) = &self.mem else {
            return Ok(None);
        };
        let bytes = size.bytes().map_err(|e| invalid("mem", e))?;
        if bytes == 0 || !bytes.is_multiple_of(4096) || bytes > MAX_MACHINE_MEM {
            return Err(invalid(
                "mem",
                format!(
                    "{}: the machine memory under the monitor must be whole 4K pages, at most {}",
                    show_size(bytes),
                    show_size(MAX_MACHINE_MEM)
                ),
            ));
        }
        Ok(Some(bytes))
    }

    /// Relative paths as a config file in `dir` means them: from that
    /// directory, not from wherever disco runs.
    pub fn relative_to(mut self, dir: &std::path::Path) -> Settings {
        for p in [&mut self.image, &mut self.disk, &mut self.trace_file]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
        self
    }

    /// The CPU count, validated (default `default`).
    pub fn ncpus(&self, default: usize) -> Result<usize, ConfigError> {
        let n = self.cpus.unwrap_or(default);
        if !(1..=MAX_CPUS).contains(&n) {
            return Err(invalid(
                "cpus",
                format!("{n}; between 1 and {MAX_CPUS} CPUs are supported"),
            ));
        }
        Ok(n)
    }

    pub fn quantum(&self) -> Result<u64, ConfigError> {
        match self.quantum {
            Some(0) => Err(invalid(
                "quantum",
                "0 cycles; a quantum is at least 1 cycle",
            )),
            Some(q) => Ok(q),
            None => Ok(DEFAULT_QUANTUM),
        }
    }

    pub fn tier(&self) -> Result<Tier, ConfigError> {
        match self.tier {
            None => Ok(Tier::default()),
            Some(n) => Tier::from_number(n)
                .ok_or_else(|| invalid("tier", format!("{n}; the tiers are 1, 2 and 3"))),
        }
    }

    pub fn max_cycles(&self) -> Result<Option<u64>, ConfigError> {
        match self.max_cycles {
            Some(0) => Err(invalid("max_cycles", "0; give at least 1 cycle")),
            m => Ok(m),
        }
    }

    /// The host threads of the parallel mode, `None` for the deterministic
    /// mode (the default).
    pub fn threads(&self) -> Result<Option<usize>, ConfigError> {
        match (self.parallel, self.threads) {
            (_, Some(0)) => Err(invalid("threads", "0; give at least 1 thread")),
            (Some(true), Some(n)) => Ok(Some(n)),
            (Some(true), None) => Ok(Some(
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            )),
            (_, Some(n)) => Err(invalid(
                "threads",
                format!(
                    "{n}: threads are for the parallel mode; set parallel = true (--parallel) too"
                ),
            )),
            (_, None) => Ok(None),
        }
    }

    /// The memory the booting kernel is told it has: `boot_mem`, or all of
    /// `ram`. Physical memory starts at 0 and may not be larger than the
    /// machine's, so it has no holes and is the identity of machine memory.
    pub(crate) fn boot_mem(&self, ram: u64) -> Result<u64, ConfigError> {
        let Some(size) = &self.boot_mem else {
            return Ok(ram);
        };
        let bytes = size.bytes().map_err(|e| invalid("boot_mem", e))?;
        if bytes == 0 || !bytes.is_multiple_of(4096) {
            return Err(invalid(
                "boot_mem",
                format!("{}: give whole 4K pages, at least one", show_size(bytes)),
            ));
        }
        if bytes > ram {
            return Err(invalid(
                "boot_mem",
                format!(
                    "{}: more than the machine's {} of memory (the booting kernel's memory starts at 0 and must have no holes)",
                    show_size(bytes),
                    show_size(ram)
                ),
            ));
        }
        Ok(bytes)
    }

    /// The bare machine these settings describe.
    pub fn machine(&self) -> Result<MachineSetup, ConfigError> {
        let ncpus = self.ncpus(1)?;
        let ram = self.ram()?;
        let boot_mem = self.boot_mem(ram)?;
        let topology = match &self.numa {
            Some(n) => Topology::from_settings(n, ncpus, ram)?,
            None => Topology::uniform(ncpus, ram),
        };
        Ok(MachineSetup {
            config: MachineConfig {
                ncpus,
                ram_bytes: ram,
                quantum: self.quantum()?,
                max_cycles: self.max_cycles()?,
                tier: self.tier()?,
            },
            topology,
            boot_mem,
            seed: self.seed.unwrap_or(0),
            epoch: self.epoch.unwrap_or(0),
            disk_irq_latency: self.disk_irq,
            threads: self.threads()?,
        })
    }
}

/// One line naming the TOML problem, its line and (if there is one) key.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().replace('\n', " ");
    let Some(span) = e.span() else {
        return msg;
    };
    let before = text.get(..span.start).unwrap_or("");
    let line_no = before.matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    // A key's own line names it; say which one unless the message does.
    match line.split_once('=') {
        Some((key, _)) if !msg.contains(key.trim()) => {
            format!("line {line_no}, key `{}`: {msg}", key.trim())
        }
        _ => format!("line {line_no}: {msg}"),
    }
}

/// How CPUs and memory are grouped into NUMA nodes: node `n` holds CPUs
/// `n * cpus_per_node ..` and physical memory `n * mem_per_node ..`.
/// Recorded for the cycle model, which does not charge distance yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    pub nodes: usize,
    pub cpus_per_node: usize,
    pub mem_per_node: u64,
}

impl Topology {
    /// One node holding every CPU and all memory (a UMA machine).
    pub(crate) fn uniform(ncpus: usize, ram: u64) -> Topology {
        Topology {
            nodes: 1,
            cpus_per_node: ncpus.max(1),
            mem_per_node: ram,
        }
    }

    fn from_settings(n: &NumaSettings, ncpus: usize, ram: u64) -> Result<Topology, ConfigError> {
        let mem = match &n.mem_per_node {
            Some(s) => Some(s.bytes().map_err(|e| invalid("numa.mem_per_node", e))?),
            None => None,
        };
        // The key the node count comes from, blamed when it is wrong.
        let (nodes, from) = match (n.nodes, n.cpus_per_node, mem) {
            (Some(nodes), _, _) => (nodes, "numa.nodes"),
            (None, Some(per), _) => {
                if per == 0 || !ncpus.is_multiple_of(per) {
                    return Err(invalid(
                        "numa.cpus_per_node",
                        format!("{per} does not divide {ncpus} CPUs"),
                    ));
                }
                (ncpus / per, "numa.cpus_per_node")
            }
            (None, None, Some(m)) => {
                if m == 0 || !ram.is_multiple_of(m) {
                    return Err(invalid(
                        "numa.mem_per_node",
                        format!("{m} bytes does not divide {ram} bytes of RAM"),
                    ));
                }
                (
                    usize::try_from(ram / m).unwrap_or(usize::MAX),
                    "numa.mem_per_node",
                )
            }
            (None, None, None) => (1, "numa.nodes"),
        };
        if nodes == 0 || nodes > ncpus {
            let what = match (from, mem) {
                ("numa.mem_per_node", Some(m)) => {
                    format!(
                        "{} per node makes {nodes} nodes of {} of RAM",
                        show_size(m),
                        show_size(ram)
                    )
                }
                ("numa.nodes", _) => format!("{nodes}"),
                _ => format!("{nodes} nodes follow from it"),
            };
            return Err(invalid(
                from,
                format!("{what}; between 1 and the CPU count ({ncpus}) nodes"),
            ));
        }
        let t = Topology {
            nodes,
            cpus_per_node: ncpus / nodes,
            mem_per_node: ram / nodes as u64,
        };
        if t.cpus_per_node * nodes != ncpus {
            return Err(invalid(
                from,
                format!("{ncpus} CPUs do not split evenly into {nodes} nodes"),
            ));
        }
        if n.cpus_per_node.is_some_and(|c| c != t.cpus_per_node) {
            return Err(invalid(
                "numa.cpus_per_node",
                format!(
                    "{} CPUs per node on {nodes} nodes is not the machine's {ncpus} CPUs",
                    n.cpus_per_node.unwrap_or(0)
                ),
            ));
        }
        if mem.is_some_and(|m| m != t.mem_per_node) || !t.mem_per_node.is_multiple_of(4096) {
            return Err(invalid(
                "numa.mem_per_node",
                format!(
                    "{} bytes per node on {nodes} nodes is not the machine's {ram} bytes in whole 4K pages",
                    mem.unwrap_or(t.mem_per_node)
                ),
            ));
        }
        if t.mem_per_node * nodes as u64 != ram {
            return Err(invalid(
                from,
                format!("{ram} bytes of RAM do not split evenly into {nodes} nodes"),
            ));
        }
        Ok(t)
    }
}

/// A validated bare machine: its shape, its NUMA topology and the board's
/// deterministic inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineSetup {
    pub config: MachineConfig,
    pub topology: Topology,
    /// What mp's memory register reports (at most `config.ram_bytes`).
    pub boot_mem: u64,
    /// Seed of mp's hardware_random.
    pub seed: u64,
    /// Seconds since 1970 the rtc reports at cycle 0.
    pub epoch: u64,
    /// The disk's completion interrupt latency, if it has one.
    pub disk_irq_latency: Option<u64>,
    /// The parallel mode's host threads (`None`: deterministic).
    pub threads: Option<usize>,
}

impl MachineSetup {
    /// The board for this machine, with a disk image's contents.
    pub(crate) fn board(&self, disk: Option<crate::dev::DiskImage>) -> BoardConfig {
        BoardConfig {
            ncpus: self.config.ncpus,
            ram_bytes: self.boot_mem,
            disk,
            disk_irq_latency: self.disk_irq_latency,
            seed: self.seed,
            epoch: self.epoch,
        }
    }

    /// Builds the machine (CPUs parked, RAM zeroed).
    pub fn build(&self, disk: Option<crate::dev::DiskImage>) -> crate::machine::Machine {
        let mut m = crate::machine::Machine::new(
            self.config.clone(),
            crate::dev::Board::with_config(self.board(disk)),
        );
        m.topology = self.topology.clone();
        m.set_parallel(self.threads);
        m
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999999G").is_err());
    }

    #[test]
    fn the_sample_config_parses_and_validates() {
        let text = include_str!("../../docs/machine.toml");
        let s = Settings::from_toml(text).unwrap();
        let m = s.machine().unwrap();
        assert_eq!(m.config.ncpus, 4);
        assert_eq!(m.topology.nodes, 2);
    }

    #[test]
    fn errors_name_the_key() {
        let e = Settings::from_toml("cpus = 2\ncpu = 4\n").unwrap_err();
        assert!(
            e.to_string().contains("line 2") && e.to_string().contains("cpu"),
            "{e}"
        );
        let e = Settings::from_toml("cpus = \"four\"\n").unwrap_err();
        assert!(e.to_string().contains("cpus"), "{e}");
        let e = Settings::from_toml("[numa]\nnode = 2\n").unwrap_err();
        assert!(e.to_string().contains("node"), "{e}");
        let bad = |t: &str| Settings::from_toml(t).unwrap().machine().unwrap_err();
        assert!(matches!(
            bad("cpus = 65"),
            ConfigError::Invalid { key: "cpus", .. }
        ));
        assert!(matches!(
            bad("mem = \"3G\""),
            ConfigError::Invalid { key: "mem", .. }
        ));
        assert!(matches!(
            bad("mem = 1000"),
            ConfigError::Invalid { key: "mem", .. }
        ));
        assert!(matches!(
            bad("quantum = 0"),
            ConfigError::Invalid { key: "quantum", .. }
        ));
        assert!(matches!(
            bad("cpus = 4\n[numa]\ncpus_per_node = 3"),
            ConfigError::Invalid {
                key: "numa.cpus_per_node",
                ..
            }
        ));
        assert!(matches!(
            bad("cpus = 4\nmem = \"32M\"\n[numa]\nnodes = 2\nmem_per_node = \"8M\""),
            ConfigError::Invalid {
                key: "numa.mem_per_node",
                ..
            }
        ));
        assert!(matches!(
            bad("cpus = 2\n[numa]\nnodes = 3"),
            ConfigError::Invalid {
                key: "numa.nodes",
                ..
            }
        ));
    }

    /// RAM stops where the devices start (0x10000000): one page more
    /// would cover the console and halt registers.
    #[test]
    fn ram_stops_at_the_device_window() {
        let ram = |t: &str| Settings::from_toml(t).unwrap().ram();
        assert_eq!(ram("mem = \"256M\""), Ok(DEVICE_WINDOW));
        for too_big in ["mem = \"257M\"", "mem = \"512M\"", "mem = 268439552"] {
            let e = ram(too_big).unwrap_err().to_string();
            assert!(
                e.starts_with("mem: ") && e.contains("256M") && e.contains("0x10000000"),
                "{e}"
            );
        }
    }

    #[test]
    fn sizes_say_what_they_are_when_mistyped() {
        for (text, says) in [
            ("mem = 1.5", "floating point"),
            ("mem = -4", "integer `-4`"),
        ] {
            let e = Settings::from_toml(text).unwrap_err().to_string();
            assert!(
                e.contains(says) && e.contains("a whole number of bytes") && !e.contains("variant"),
                "{e}"
            );
        }
        let s = Settings::from_toml("mem = 4096\n[numa]\nmem_per_node = \"2M\"").unwrap();
        assert_eq!(s.mem, Some(Size::Bytes(4096)));
    }

    /// The key whose value makes the node count wrong is the one named.
    #[test]
    fn a_bad_node_count_is_blamed_on_the_key_it_follows_from() {
        let key = |t: &str| match Settings::from_toml(t).unwrap().machine() {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            key("cpus = 4\n[numa]\nmem_per_node = \"1K\""),
            "numa.mem_per_node"
        );
        assert_eq!(key("cpus = 4\n[numa]\nnodes = 8"), "numa.nodes");
        assert_eq!(
            key("cpus = 4\n[numa]\ncpus_per_node = 3"),
            "numa.cpus_per_node"
        );
    }

    #[test]
    fn relative_paths_start_from_the_config_files_directory() {
        let s = Settings::from_toml("image = \"a.elf\"\ndisk = \"/abs/d.img\"\ntrace_file = \"t\"")
            .unwrap()
            .relative_to(std::path::Path::new("conf/dir"));
        assert_eq!(s.image, Some(PathBuf::from("conf/dir/a.elf")));
        assert_eq!(s.disk, Some(PathBuf::from("/abs/d.img")));
        assert_eq!(s.trace_file, Some(PathBuf::from("conf/dir/t")));
    }

    #[test]
    fn machine_memory_under_the_monitor_has_its_own_bound() {
        let mm = |t: &str| Settings::from_toml(t).unwrap().machine_mem();
        assert_eq!(mm(""), Ok(None));
        assert_eq!(mm("mem = \"1G\""), Ok(Some(1 << 30)));
        assert!(mm("mem = \"5G\"")
            .unwrap_err()
            .to_string()
            .contains("at most 4G"));
        assert!(mm("mem = 1000").is_err());
        assert_eq!(show_size(4100 << 10), "4100K");
        assert!(check_host_memory(1 << 60)
            .unwrap_err()
            .contains("cannot allocate"));
    }

    #[test]
    fn flags_win_over_the_file() {
        let file = Settings::from_toml("cpus = 2\nquantum = 500\n").unwrap();
        let flags = Settings {
            cpus: Some(8),
            ..Settings::default()
        };
        let m = flags.over(file).machine().unwrap();
        assert_eq!((m.config.ncpus, m.config.quantum), (8, 500));
    }

    #[test]
    fn threads_belong_to_the_parallel_mode() {
        let threads = |t: &str| Settings::from_toml(t).unwrap().machine().map(|m| m.threads);
        assert_eq!(threads("").unwrap(), None);
        assert_eq!(threads("parallel = false").unwrap(), None);
        assert_eq!(threads("parallel = true\nthreads = 3").unwrap(), Some(3));
        assert!(threads("parallel = true").unwrap().is_some_and(|n| n >= 1));
        for bad in ["threads = 2", "parallel = true\nthreads = 0"] {
            assert!(
                matches!(
                    threads(bad),
                    Err(ConfigError::Invalid { key: "threads", .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn topology_places_cpus_and_memory() {
        let s = Settings::from_toml("cpus = 8\nmem = \"64M\"\n[numa]\ncpus_per_node = 2").unwrap();
        let t = s.machine().unwrap().topology;
        assert_eq!((t.nodes, t.cpus_per_node, t.mem_per_node), (4, 2, 16 << 20));
        let u = Topology::uniform(4, 32 << 20);
        assert_eq!((u.nodes, u.cpus_per_node, u.mem_per_node), (1, 4, 32 << 20));
    }
}
