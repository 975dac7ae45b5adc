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
/// RAM bounds: at least 1 MB, at most what KSEG0 reaches (512 MB).
pub const MIN_RAM: u64 = 1 << 20;
pub const MAX_RAM: u64 = 512 << 20;

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
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Size {
    Bytes(u64),
    Text(String),
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
    pub quantum: Option<u64>,
    /// Execution tier: 1 (the reference interpreter) or 2 (blocks; default).
    pub tier: Option<u64>,
    pub max_cycles: Option<u64>,
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
            quantum: self.quantum.or(lower.quantum),
            tier: self.tier.or(lower.tier),
            max_cycles: self.max_cycles.or(lower.max_cycles),
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
        }
    }

    /// RAM in bytes, validated.
    pub fn ram(&self) -> Result<u64, ConfigError> {
        let ram = match &self.mem {
            Some(s) => s.bytes().map_err(|e| invalid("mem", e))?,
            None => DEFAULT_RAM,
        };
        if !(MIN_RAM..=MAX_RAM).contains(&ram) || !ram.is_multiple_of(4096) {
            return Err(invalid(
                "mem",
                format!("{ram} bytes; RAM must be a multiple of 4K between 1M and 512M (KSEG0 reaches 512M)"),
            ));
        }
        Ok(ram)
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
                .ok_or_else(|| invalid("tier", format!("{n}; the tiers are 1 and 2"))),
        }
    }

    pub fn max_cycles(&self) -> Result<Option<u64>, ConfigError> {
        match self.max_cycles {
            Some(0) => Err(invalid("max_cycles", "0; give at least 1 cycle")),
            m => Ok(m),
        }
    }

    /// The bare machine these settings describe.
    pub fn machine(&self) -> Result<MachineSetup, ConfigError> {
        let ncpus = self.ncpus(1)?;
        let ram = self.ram()?;
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
            seed: self.seed.unwrap_or(0),
            epoch: self.epoch.unwrap_or(0),
            disk_irq_latency: self.disk_irq,
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
    pub fn uniform(ncpus: usize, ram: u64) -> Topology {
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
        let nodes = match (n.nodes, n.cpus_per_node, mem) {
            (Some(nodes), _, _) => nodes,
            (None, Some(per), _) => {
                if per == 0 || !ncpus.is_multiple_of(per) {
                    return Err(invalid(
                        "numa.cpus_per_node",
                        format!("{per} does not divide {ncpus} CPUs"),
                    ));
                }
                ncpus / per
            }
            (None, None, Some(m)) => {
                if m == 0 || !ram.is_multiple_of(m) {
                    return Err(invalid(
                        "numa.mem_per_node",
                        format!("{m} bytes does not divide {ram} bytes of RAM"),
                    ));
                }
                usize::try_from(ram / m).unwrap_or(usize::MAX)
            }
            (None, None, None) => 1,
        };
        if nodes == 0 || nodes > ncpus {
            return Err(invalid(
                "numa.nodes",
                format!("{nodes}; between 1 and the CPU count ({ncpus}) nodes"),
            ));
        }
        let t = Topology {
            nodes,
            cpus_per_node: ncpus / nodes,
            mem_per_node: ram / nodes as u64,
        };
        if t.cpus_per_node * nodes != ncpus {
            return Err(invalid(
                "numa.nodes",
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
                "numa.nodes",
                format!("{ram} bytes of RAM do not split evenly into {nodes} nodes"),
            ));
        }
        Ok(t)
    }

    /// The node of CPU `cpu`.
    pub fn node_of_cpu(&self, cpu: usize) -> usize {
        (cpu / self.cpus_per_node.max(1)).min(self.nodes.saturating_sub(1))
    }

    /// The node whose memory holds physical address `paddr`, if any.
    pub fn node_of_paddr(&self, paddr: u64) -> Option<usize> {
        let n = usize::try_from(paddr.checked_div(self.mem_per_node)?).ok()?;
        (n < self.nodes).then_some(n)
    }
}

/// A validated bare machine: its shape, its NUMA topology and the board's
/// deterministic inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineSetup {
    pub config: MachineConfig,
    pub topology: Topology,
    /// Seed of mp's hardware_random.
    pub seed: u64,
    /// Seconds since 1970 the rtc reports at cycle 0.
    pub epoch: u64,
    /// The disk's completion interrupt latency, if it has one.
    pub disk_irq_latency: Option<u64>,
}

impl MachineSetup {
    /// The board for this machine, with a disk image's contents.
    pub fn board(&self, disk: Option<std::sync::Arc<[u8]>>) -> BoardConfig {
        BoardConfig {
            ncpus: self.config.ncpus,
            ram_bytes: self.config.ram_bytes,
            disk,
            disk_irq_latency: self.disk_irq_latency,
            seed: self.seed,
            epoch: self.epoch,
        }
    }

    /// Builds the machine (CPUs parked, RAM zeroed).
    pub fn build(&self, disk: Option<std::sync::Arc<[u8]>>) -> crate::machine::Machine {
        let mut m = crate::machine::Machine::new(
            self.config.clone(),
            crate::dev::Board::with_config(self.board(disk)),
        );
        m.topology = self.topology.clone();
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
    fn topology_places_cpus_and_memory() {
        let s = Settings::from_toml("cpus = 8\nmem = \"64M\"\n[numa]\ncpus_per_node = 2").unwrap();
        let t = s.machine().unwrap().topology;
        assert_eq!((t.nodes, t.cpus_per_node, t.mem_per_node), (4, 2, 16 << 20));
        assert_eq!(t.node_of_cpu(5), 2);
        assert_eq!(t.node_of_paddr(0x0100_0000), Some(1));
        assert_eq!(t.node_of_paddr(64 << 20), None);
        let u = Topology::uniform(4, 32 << 20);
        assert_eq!(u.node_of_cpu(3), 0);
    }
}
