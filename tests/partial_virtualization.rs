//! `disco run IMAGE --at …`: CPU-only virtualization and partial
//! devirtualization as the command line shows them (`--stats`, the action
//! lines), a VM started with a disk, and the switches' cost table under
//! `--cost` (docs/devirtualization.md).

#![allow(clippy::panic, clippy::unwrap_used)]

mod common;

use common::{run, text};

const KESTREL: &str = "guest-kits/images/kestrel.elf";
const DISK: &str = "guest-kits/images/kestrel-disk.img";

/// kestrel on 2 CPUs, told 32M of a 64M machine.
const MACHINE: [&str; 8] = [
    "run",
    KESTREL,
    "--cpus",
    "2",
    "--mem",
    "64M",
    "--boot-mem",
    "32M",
];

fn with(extra: &[&str]) -> Vec<String> {
    MACHINE.iter().chain(extra).map(|s| s.to_string()).collect()
}

fn run_with(extra: &[&str]) -> (Option<i32>, String, String) {
    let args = with(extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args);
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// Each phase of `--stats` names its memory state when it is not wholly
/// virtual, and so does the VM's report while the kernel is still virtual.
#[test]
fn stats_show_pass_through_and_partially_virtual_memory() {
    let (code, stdout, stderr) = run_with(&[
        "--at",
        "2M:virtualize-cpu",
        "--at",
        "4M:virtualize-memory=16M-32M",
        "--stats",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("init: 5 of 5 programs passed"));
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines[0].starts_with("disco: at cycle 2000000: virtualize-cpu: 2 CPU(s) became VCPUs of vm0 (VCPU i on CPU i), memory pass-through: 32M on itself, the guest's own TLB entries installed with machine ASIDs; 0 pages moved; guest paused 652 cycles"), "{stderr}");
    assert_eq!(lines[1], "disco: at cycle 4000000: virtualize-memory: vm0's 0x1000000-0x2000000 composed through its pmap from now on; memory partially virtual (4096 of 8192 pages pass-through); 0 pages moved; guest paused 40 cycles");
    let phases: Vec<&str> = stdout
        .lines()
        .skip_while(|l| *l != "phases:")
        .skip(1)
        .collect();
    assert_eq!(phases.len(), 3, "{stdout}");
    assert!(phases[0].starts_with("  native   cycles 0..2000000: 0 exits"));
    assert!(
        phases[1].starts_with("  virtual  cycles 2000000..4000000: ")
            && phases[1].ends_with(" instructions, memory pass-through"),
        "{}",
        phases[1]
    );
    assert!(
        phases[2]
            .ends_with(" instructions, memory partially virtual (4096 of 8192 pages pass-through)"),
        "{}",
        phases[2]
    );
    assert!(
        stdout.contains("  memory: partially virtual (4096 of 8192 pages pass-through); guest TLB entries installed: "),
        "{stdout}"
    );
}

/// `start-vm=…,disk=FILE`: the started VM reads its programs from the
/// disk (kestrel's kfs), the virtualized kernel beside it has none; a disk
/// that cannot be read refuses the entry and the run continues; a bare
/// `disk=` is refused before the run, like `--vm IMAGE,disk`.
#[test]
fn a_started_vm_gets_its_own_disk() {
    let spec = format!("4M:start-vm={KESTREL},mem=16M,disk={DISK}");
    let (code, stdout, stderr) = run_with(&[
        "--at",
        "3M:virtualize",
        "--at",
        &spec,
        "--at",
        "vm-end=vm1:devirtualize",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "start-vm: vm1 ({KESTREL}, 16M, 1 VCPU(s), disk {DISK}) booted into free machine memory at 0x2002000"
        )),
        "{stderr}"
    );
    assert!(
        stdout.contains("[vm1] kestrel: disk: kfs, 10 files"),
        "{stdout}"
    );
    assert!(stdout.contains("[vm1] motd: loaded from the disk by execv"));
    assert!(stdout.contains("[vm1] init: 5 of 5 programs passed"));
    assert!(!stdout.lines().any(|l| l.starts_with("kestrel: disk:")));
    assert!(stdout.contains("kestrel: halt status 0"));

    let spec = format!("4M:start-vm={KESTREL},mem=16M,disk=no-such.img");
    let (code, _, stderr) = run_with(&["--at", "3M:virtualize", "--at", &spec]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "disco: at cycle 4000000: start-vm refused: no-such.img: cannot read the disk image: "
        ) && stderr.contains("; the run continues"),
        "{stderr}"
    );

    let spec = format!("4M:start-vm={KESTREL},disk=");
    let (code, _, stderr) = run_with(&["--at", &spec]);
    assert_eq!(code, Some(2));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("start-vm: disk= needs a file"), "{stderr}");
}

/// The switches' steps are entries of the cost table: `--cost` changes the
/// pauses they charge (and an unknown name is refused with the names).
#[test]
fn the_switch_costs_follow_the_cost_table() {
    let (code, _, stderr) = run_with(&[
        "--at",
        "2M:virtualize",
        "--at",
        "3M:evacuate=0-1M",
        "--at",
        "6M:devirtualize",
        "--cost",
        "cpu_state=1120",
        "--cost",
        "page_copy=48",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    // 1,120 + 48 × 6 + 48 × 3 + 40 + 60; then 256 × (48 + 10) + 48 × 3.
    assert!(
        lines[0].ends_with("guest paused 1652 cycles"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].ends_with("256 pages moved (256 direct, 0 indirect); guest paused 14992 cycles"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].ends_with("256 pages moved; guest paused 16500 cycles"),
        "{}",
        lines[2]
    );

    let (code, _, stderr) = run_with(&["--at", "2M:virtualize", "--cost", "cpu_sate=1"]);
    assert_eq!(code, Some(2));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("\"cpu_sate\" is not an entry of the monitor's cost table")
            && stderr.contains("cpu_state, tlb_entry"),
        "{stderr}"
    );
}
