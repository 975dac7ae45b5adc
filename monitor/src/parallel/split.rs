//! Which VMs the parallel mode splits over host threads (docs/parallel.md,
//! "Which VMs are split").

/// Whether the parallel mode may split a VM's CPUs over host threads
/// (docs/parallel.md, "Which VMs are split").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SplitPolicy {
    /// When its busy CPUs exceed a thread's share and its last batch was
    /// mostly work outside the VM's lock (`worth_splitting`).
    #[default]
    Auto,
    /// When its busy CPUs exceed a thread's share, whatever its work.
    Always,
    /// Never: each VM runs wholly on one thread.
    Never,
}

impl std::str::FromStr for SplitPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<SplitPolicy, String> {
        match s {
            "auto" => Ok(SplitPolicy::Auto),
            "always" => Ok(SplitPolicy::Always),
            "never" => Ok(SplitPolicy::Never),
            _ => Err(format!("{s:?}: give auto, always or never")),
        }
    }
}

/// Where a VM's VCPUs spent the cycles they ran in a batch: in the part
/// of a step a split VM runs under its lock (exits, virtual interrupts,
/// translated code, and the engine's privileged instructions and device
/// accesses) or outside it (the guest run directly, and the engine's run
/// of kernel code under `exec=direct`, which takes the lock only for what
/// is VM-wide). Modelled cycles, not host time: an engine instruction is
/// charged about 20, so both sides weigh about what they cost the host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Work {
    pub(crate) locked: u64,
    pub(crate) free: u64,
}

impl Work {
    pub(crate) fn add(&mut self, other: Work) {
        self.locked += other.locked;
        self.free += other.free;
    }
}

/// Whether a VM whose `busy` CPUs exceed a thread's share is split, its
/// last batch having been `last` (`None`: it has not run one).
///
/// Split, its VCPUs take turns at the VM's lock for the locked part of
/// each step ([`Work`]). Each VCPU holds it for its locked share f of the
/// time, so the lock is busy about `busy × f` of the time; as that nears 1
/// the VCPUs mostly wait for each other, and each hand-over of a contended
/// lock costs a wake-up (tens of µs on this project's hosts, more than the
/// step it guards): a kernel-mode VM ran 0.24x–0.90x split while the
/// engine ran under the lock. So `Auto` splits only while the lock would
/// be busy at most half the time (`busy × f ≤ 1/2`: f ≤ 1/4 for two busy
/// VCPUs), where a VCPU seldom finds it taken. The engine's computing
/// counts as free: kernel code under `exec=direct` splits. Without a last
/// batch it splits, as a batch of the wrong choice costs one batch.
pub(crate) fn worth_splitting(policy: SplitPolicy, last: Option<Work>, busy: usize) -> bool {
    match (policy, last) {
        (SplitPolicy::Never, _) => false,
        (SplitPolicy::Always, _) | (SplitPolicy::Auto, None) => true,
        (SplitPolicy::Auto, Some(w)) => {
            let all = u128::from(w.locked) + u128::from(w.free);
            2 * busy as u128 * u128::from(w.locked) <= all
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{worth_splitting, SplitPolicy, Work};

    #[test]
    fn a_vm_is_split_only_while_its_lock_would_be_busy_at_most_half_the_time() {
        use SplitPolicy::{Always, Auto, Never};
        let work = |locked, free| Some(Work { locked, free });
        // Translated kernel code, or all exits: all under the lock.
        assert!(!worth_splitting(Auto, work(1_000_000, 0), 2));
        assert!(worth_splitting(Always, work(1_000_000, 0), 2));
        // Kernel code the engine runs (free) with a few exits and
        // privileged instructions, or directly run work with a few exits.
        assert!(worth_splitting(Auto, work(2_000, 1_998_000), 2));
        assert!(!worth_splitting(Never, work(2_000, 1_998_000), 2));
        // Two busy VCPUs: a quarter of monitor work is the most; four:
        // an eighth.
        assert!(worth_splitting(Auto, work(250, 750), 2));
        assert!(!worth_splitting(Auto, work(251, 749), 2));
        assert!(!worth_splitting(Auto, work(250, 750), 4));
        assert!(worth_splitting(Auto, work(125, 875), 4));
        // Nothing measured yet: split, as before.
        assert!(worth_splitting(Auto, None, 2));
        assert!(!worth_splitting(Never, None, 2));
    }
}
