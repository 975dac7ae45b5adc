//! A VM's coalesced-I/O state as data: the table, the ring, the settings
//! and counters a `GuestCtx` carries (`crate::guest`), and the `Cut` names
//! the trace reads back (`crate::obs`). Nothing here takes a `GuestCtx`, so
//! both sit below the functions of `coalesce` that do.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

/// `--vm …,coalesce=POLICY`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// Every device access is its own exit, emulated alone.
    Off,
    /// Scan at the first trap of an address; emulate blocks that pay.
    #[default]
    Block,
    /// Record at the first trap, emulate the block from the second on.
    Second,
    /// No scan: write-buffered writes wait in a ring (KVM's coalesced MMIO).
    Ring,
}

impl Policy {
    pub const NAMES: [&'static str; 4] = ["off", "block", "second", "ring"];

    pub fn parse(s: &str) -> Option<Policy> {
        Some(match s {
            "off" => Policy::Off,
            "block" => Policy::Block,
            "second" => Policy::Second,
            "ring" => Policy::Ring,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Policy::Off => "off",
            Policy::Block => "block",
            Policy::Second => "second",
            Policy::Ring => "ring",
        }
    }
}

/// A VM's coalescing settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoConfig {
    pub policy: Policy,
    /// `--vm …,io-extent=N`: how many instructions past the last access
    /// the scan looks for another; `None`: the device type's default.
    pub extent: Option<u32>,
}

/// Blocks one table entry holds: one per calling context of the trapping
/// instruction (kestrel's `cons_putc` is one store with several callers,
/// and the block after its return depends on which one).
pub const CONTEXTS: usize = 4;

/// One entry of the per-address table: what was recorded at one trapping
/// instruction, per calling context.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub sites: [Option<Site>; CONTEXTS],
    /// The slot the next new context replaces.
    pub(super) next: usize,
}

/// One recorded decision: a block, or a single access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Site {
    /// Guest-virtual address the block starts at (the trapping instruction,
    /// or the branch before it when it sat in a delay slot).
    pub pc: u64,
    /// The return address register at the trap: the calling context.
    pub ra: u64,
    /// Hash of every word the block covers (0 for a single access).
    pub hash: u64,
    /// Instructions on the recorded path; 1: a single access.
    pub size: u32,
    /// Trapping accesses on the recorded path.
    pub accesses: u32,
    pub ranges: Ranges,
    /// The cost rule declined the block the scan found.
    pub declined: bool,
    /// Traps seen here (`second` emulates the block from the second on).
    pub traps: u64,
}

impl Site {
    pub(super) fn is_block(&self) -> bool {
        self.size > 1
    }
}

/// Counters for `--stats` and `disco bench`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoStats {
    /// Device-access traps that probed the table, and found an entry.
    pub lookups: u64,
    pub hits: u64,
    /// Scans, and the instructions they followed.
    pub scans: u64,
    pub scanned: u64,
    /// Blocks the cost rule declined (recorded as single accesses).
    pub declined: u64,
    /// Entries dropped because the words no longer hashed the same.
    pub dropped: u64,
    /// Block events, the trapping accesses they covered, their instructions.
    pub blocks: u64,
    pub block_accesses: u64,
    pub block_insns: u64,
    /// Blocks that ended early: a branch out, an interrupt, an exception,
    /// a privileged instruction, the end of the quantum.
    pub cut: u64,
    /// `ring`: writes queued, deliveries.
    pub ring_queued: u64,
    pub ring_flushes: u64,
}

type Table = HashMap<u64, Entry, BuildHasherDefault<std::collections::hash_map::DefaultHasher>>;

/// A VM's coalescing state: shared by its VCPUs, which run the same code.
#[derive(Clone, Debug, Default)]
pub struct VmIo {
    pub config: IoConfig,
    /// The per-address table, keyed by the guest-physical address of the
    /// trapping instruction (a deterministic hasher: same run, same table).
    pub table: Table,
    pub ring: Ring,
    pub stats: IoStats,
}

impl VmIo {
    pub fn new(config: IoConfig) -> VmIo {
        VmIo {
            config,
            ..VmIo::default()
        }
    }

    /// Recorded blocks and single-access entries.
    pub fn table_size(&self) -> (usize, usize) {
        let sites = || self.table.values().flat_map(|e| e.sites.iter().flatten());
        let blocks = sites().filter(|s| s.is_block()).count();
        (blocks, sites().count() - blocks)
    }
}

/// Separate runs of words a block may cover (its straight code, a called
/// function, the loop that calls it, ...).
pub const MAX_RANGES: usize = 8;

/// The words a scan covered: runs of guest-virtual addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ranges {
    /// `[start, end)` of each run.
    pub(super) runs: [(u64, u64); MAX_RANGES],
    pub(super) n: usize,
}

impl Ranges {
    pub fn contains(&self, pc: u64) -> bool {
        self.runs
            .iter()
            .take(self.n)
            .any(|&(s, e)| (s..e).contains(&pc))
    }

    /// Adds the word at `pc`; false when that would need one run too many.
    pub(super) fn add(&mut self, pc: u64) -> bool {
        if self.contains(pc) {
            return true;
        }
        let n = self.n;
        for run in self.runs.iter_mut().take(n) {
            if run.1 == pc {
                run.1 += 4;
                return true;
            }
            if run.0 == pc.wrapping_add(4) {
                run.0 = pc;
                return true;
            }
        }
        match self.runs.get_mut(n) {
            Some(run) => {
                *run = (pc, pc.wrapping_add(4));
                self.n += 1;
                true
            }
            None => false,
        }
    }

    /// Instruction words covered.
    pub fn words(&self) -> u64 {
        self.runs
            .iter()
            .take(self.n)
            .map(|&(s, e)| (e.wrapping_sub(s)) / 4)
            .sum()
    }

    pub fn first(&self) -> u64 {
        self.runs.first().map_or(0, |r| r.0)
    }
}

/// Writes held before the ring is delivered regardless.
pub const CAPACITY: usize = 64;

/// Queued writes of one VM, in order.
#[derive(Clone, Debug)]
pub struct Ring {
    pub(super) bytes: [u8; CAPACITY],
    pub(super) len: usize,
}

impl Default for Ring {
    fn default() -> Ring {
        Ring {
            bytes: [0; CAPACITY],
            len: 0,
        }
    }
}

impl Ring {
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Why a block ended before its recorded length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// The guest's path left the words the block covers.
    BranchOut,
    /// An interrupt became pending and enabled: the guest takes it next.
    Interrupt,
    /// An instruction raised an exception (delivered to the guest).
    Exception,
    /// A privileged instruction, system call or trap: it traps directly.
    Privileged,
    /// The physical CPU's quantum ended.
    Quantum,
}

impl Cut {
    pub const ALL: [Cut; 5] = [
        Cut::BranchOut,
        Cut::Interrupt,
        Cut::Exception,
        Cut::Privileged,
        Cut::Quantum,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            Cut::BranchOut => "the guest left the block",
            Cut::Interrupt => "an interrupt is pending",
            Cut::Exception => "an exception was delivered",
            Cut::Privileged => "a privileged instruction follows",
            Cut::Quantum => "the quantum ended",
        }
    }
}
