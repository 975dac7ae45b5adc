//! The run's timeline: `--at WHEN:ACTION` entries (and `[[at]]` tables),
//! each run at the first quantum boundary at or after its moment, where
//! every CPU is between instructions (`../shared/docs/design.md` §8).
//! Parsing lives here so that every front end reads the same language;
//! [`crate::host::Host`] carries the actions out.

use crate::spec::VmSpec;

/// When an entry is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum When {
    /// Once the machine clock reaches this cycle.
    Cycle(u64),
    /// When a VM ends (halts or is stopped): any VM, or the one named.
    VmEnd(Option<String>),
}

/// What an entry does (docs/devirtualization.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Slide the monitor under the kernel running on the bare machine.
    Virtualize,
    /// The same for the CPUs only: memory stays pass-through.
    VirtualizeCpu,
    /// Compose vm0's guest-physical bytes `first..end` (all of its
    /// memory when `None`) through its pmap from now on.
    VirtualizeMemory(Option<(u64, u64)>),
    /// Remap those bytes to the identity and pass them through from now on.
    DevirtualizeMemory(Option<(u64, u64)>),
    /// Hand the machine back to the kernel the monitor runs.
    Devirtualize,
    /// Boot another VM into free machine memory, beside the kernel: a VM
    /// asked for as `--vm` asks for one (its default name `vm<number>`,
    /// its disk writes its own).
    StartVm(VmSpec),
    /// Move vm0's guest-physical bytes `first..end` to other machine
    /// pages (to machine address `to` if given).
    Evacuate {
        first: u64,
        end: u64,
        to: Option<u64>,
    },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Virtualize => "virtualize",
            Action::VirtualizeCpu => "virtualize-cpu",
            Action::VirtualizeMemory(_) => "virtualize-memory",
            Action::DevirtualizeMemory(_) => "devirtualize-memory",
            Action::Devirtualize => "devirtualize",
            Action::StartVm(_) => "start-vm",
            Action::Evacuate { .. } => "evacuate",
        }
    }
}

/// `FIRST-END` of action `name`, as `8M-16M`; `form` is what to give
/// instead of something else.
fn parse_range(name: &str, range: &str, form: &str) -> Result<(u64, u64), String> {
    let size = |s: &str| sim::hv::config::parse_size(s).map_err(|e| format!("{name}={range}: {e}"));
    let Some((a, b)) = range.split_once('-') else {
        return Err(format!("{name}={range}: give {form}"));
    };
    Ok((size(a)?, size(b)?))
}

/// `RANGE[@MACHINE]`, RANGE as `8M-16M`.
fn parse_evacuate(spec: &str) -> Result<Action, String> {
    let (range, to) = match spec.split_once('@') {
        Some((r, at)) => (
            r,
            Some(sim::hv::config::parse_size(at).map_err(|e| format!("evacuate={spec}: {e}"))?),
        ),
        None => (spec, None),
    };
    let form = "RANGE[@MACHINE], e.g. 8M-16M or 8M-16M@40M";
    let (first, end) = parse_range("evacuate", range, form)?;
    Ok(Action::Evacuate { first, end, to })
}

/// `NAME` or `NAME=RANGE` of a memory switch.
fn parse_memory_switch(action: &str) -> Option<Result<Action, String>> {
    let (name, range) = match action.split_once('=') {
        Some((n, r)) => (n, Some(r)),
        None => (action, None),
    };
    let make: fn(Option<(u64, u64)>) -> Action = match name {
        "virtualize-memory" => Action::VirtualizeMemory,
        "devirtualize-memory" => Action::DevirtualizeMemory,
        _ => return None,
    };
    Some(match range {
        None => Ok(make(None)),
        Some(r) => {
            parse_range(name, r, "a guest-physical RANGE, e.g. 0-16M").map(|r| make(Some(r)))
        }
    })
}

fn parse_start_vm(spec: &str) -> Result<VmSpec, String> {
    let vm = VmSpec::parse_as(spec, "start-vm=", "start-vm")?;
    if vm.console.is_some() {
        return Err(
            "start-vm: console= is not taken: a started VM's lines join the run's console, each prefixed with its name".into(),
        );
    }
    Ok(vm)
}

/// One timeline entry, with the text it was given as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct At {
    pub when: When,
    pub action: Action,
    pub text: String,
}

/// A cycle count with an optional decimal suffix: `20M` is 20,000,000.
pub fn parse_cycles(s: &str) -> Result<u64, String> {
    let (digits, scale) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1_000u64),
        Some((i, 'm' | 'M')) => (&s[..i], 1_000_000),
        Some((i, 'g' | 'G')) => (&s[..i], 1_000_000_000),
        _ => (s, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| {
            format!("{s:?} is not a cycle count (digits with an optional K, M or G: 20M is 20,000,000) nor vm-end[=NAME]")
        })
}

/// `WHEN` and `ACTION` of one entry.
pub fn parse(when: &str, action: &str) -> Result<At, String> {
    let text = format!("{when}:{action}");
    let bad = |problem: String| format!("--at {text}: {problem}");
    let when = match when {
        "vm-end" => When::VmEnd(None),
        w => match w.strip_prefix("vm-end=") {
            Some("") => return Err(bad("vm-end= needs a VM name".into())),
            Some(name) => When::VmEnd(Some(name.to_string())),
            None => When::Cycle(parse_cycles(w).map_err(bad)?),
        },
    };
    let action = match action {
        "virtualize" => Action::Virtualize,
        "virtualize-cpu" => Action::VirtualizeCpu,
        "devirtualize" => Action::Devirtualize,
        a if let Some(switch) = parse_memory_switch(a) => switch.map_err(bad)?,
        a if a.starts_with("evacuate=") => {
            parse_evacuate(a.trim_start_matches("evacuate=")).map_err(bad)?
        }
        a if a.starts_with("start-vm=") => {
            Action::StartVm(parse_start_vm(a.trim_start_matches("start-vm=")).map_err(bad)?)
        }
        a => {
            return Err(bad(format!(
                "unknown action {a:?}; the actions are virtualize, virtualize-cpu, virtualize-memory[=RANGE], devirtualize-memory[=RANGE], devirtualize, start-vm=IMAGE[,KEY=VALUE…] (the keys of --vm) and evacuate=RANGE[@MACHINE]"
            )));
        }
    };
    Ok(At { when, action, text })
}

/// `WHEN:ACTION` as `--at` takes it.
pub fn parse_spec(spec: &str) -> Result<At, String> {
    match spec.split_once(':') {
        Some((when, action)) => parse(when, action),
        None => Err(format!(
            "--at {spec}: give WHEN:ACTION, e.g. 20M:virtualize or vm-end:devirtualize"
        )),
    }
}

/// Entries not yet run, in the order given.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    pending: Vec<At>,
}

impl Timeline {
    pub fn new(entries: Vec<At>) -> Timeline {
        Timeline { pending: entries }
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Removes and returns the entries due at a boundary at cycle `now`
    /// where the VMs named in `ended` have just ended, in the order given
    /// (an earlier cycle first, ties in the order given).
    pub fn take_due(&mut self, now: u64, ended: &[String]) -> Vec<At> {
        let due = |a: &At| match &a.when {
            When::Cycle(c) => *c <= now,
            When::VmEnd(None) => !ended.is_empty(),
            When::VmEnd(Some(name)) => ended.contains(name),
        };
        let (mut now_due, later): (Vec<At>, Vec<At>) =
            std::mem::take(&mut self.pending).into_iter().partition(due);
        self.pending = later;
        now_due.sort_by_key(|a| match a.when {
            When::Cycle(c) => c,
            When::VmEnd(_) => u64::MAX,
        });
        now_due
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cycle_counts_take_decimal_suffixes() {
        assert_eq!(parse_cycles("20M"), Ok(20_000_000));
        assert_eq!(parse_cycles("5k"), Ok(5_000));
        assert_eq!(parse_cycles("2G"), Ok(2_000_000_000));
        assert_eq!(parse_cycles("1234"), Ok(1234));
        for bad in ["", "M", "-5", "+5", "1.5M", "99999999999G", "20X"] {
            assert!(parse_cycles(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn entries_parse_and_bad_ones_get_one_line() {
        let a = parse_spec("20M:virtualize").unwrap();
        assert_eq!(a.when, When::Cycle(20_000_000));
        assert_eq!(a.action, Action::Virtualize);
        let b = parse_spec("vm-end=vm1:devirtualize").unwrap();
        assert_eq!(b.when, When::VmEnd(Some("vm1".into())));
        assert_eq!(
            parse_spec("vm-end:devirtualize").unwrap().when,
            When::VmEnd(None)
        );
        let e = parse_spec("20M:fly").unwrap_err();
        assert!(
            e.contains("unknown action \"fly\"") && !e.contains('\n'),
            "{e}"
        );
        let s = parse_spec("25M:start-vm=k.elf,mem=16M,cpus=2,name=b,exec=translate").unwrap();
        let vm = match s.action {
            Action::StartVm(vm) => vm,
            other => unreachable!("{other:?}"),
        };
        assert_eq!(vm.image.as_os_str(), "k.elf");
        assert_eq!((vm.mem, vm.cpus), (Some(16 << 20), Some(2)));
        assert_eq!(vm.name.as_deref(), Some("b"));
        assert_eq!(vm.exec, crate::bt::Exec::Translate);
        let d = parse_spec("25M:start-vm=k.elf,disk=d.img").unwrap();
        assert!(
            matches!(d.action, Action::StartVm(VmSpec { disk: Some(ref p), .. }) if p.as_os_str() == "d.img")
        );
        for bad in [
            "1M:start-vm=",
            "1M:start-vm=k.elf,mem=3",
            "1M:start-vm=k.elf,cpus=0",
            "1M:start-vm=k.elf,disk=",
            "1M:start-vm=k.elf,colour=red",
            "1M:start-vm=k.elf,console=out.txt",
        ] {
            assert!(parse_spec(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_spec("40M:evacuate=8M-16M@40M").unwrap().action,
            Action::Evacuate {
                first: 8 << 20,
                end: 16 << 20,
                to: Some(40 << 20)
            }
        );
        assert!(parse_spec("40M:evacuate=8M").is_err());
        assert_eq!(
            parse_spec("1M:virtualize-cpu").unwrap().action,
            Action::VirtualizeCpu
        );
        assert_eq!(
            parse_spec("2M:virtualize-memory").unwrap().action,
            Action::VirtualizeMemory(None)
        );
        assert_eq!(
            parse_spec("3M:devirtualize-memory=0-16M").unwrap().action,
            Action::DevirtualizeMemory(Some((0, 16 << 20)))
        );
        for bad in [
            "3M:devirtualize-memory=16M",
            "3M:virtualize-memory=",
            "3M:virtualize-memory=0-lots",
            "3M:virtualize-cpus",
        ] {
            let e = parse_spec(bad).unwrap_err();
            assert!(
                e.starts_with(&format!("--at {bad}: ")) && !e.contains('\n'),
                "{e}"
            );
        }
        assert!(parse_spec("soon:virtualize")
            .unwrap_err()
            .contains("\"soon\""));
        assert!(parse_spec("virtualize")
            .unwrap_err()
            .contains("WHEN:ACTION"));
        assert!(parse_spec("vm-end=:devirtualize").is_err());
    }

    #[test]
    fn due_entries_leave_in_time_order() {
        let mut t = Timeline::new(vec![
            parse_spec("30M:devirtualize").unwrap(),
            parse_spec("vm-end=vm1:devirtualize").unwrap(),
            parse_spec("10M:virtualize").unwrap(),
        ]);
        assert!(t.take_due(9_999_999, &[]).is_empty());
        let due = t.take_due(40_000_000, &[]);
        assert_eq!(
            due.iter().map(|a| a.text.as_str()).collect::<Vec<_>>(),
            ["10M:virtualize", "30M:devirtualize"]
        );
        assert!(t.take_due(50_000_000, &["vm0".into()]).is_empty());
        assert_eq!(t.take_due(50_000_000, &["vm1".into()]).len(), 1);
        assert!(t.is_empty());
    }
}
