//! `disco run IMAGE --boot-mem SIZE --at WHEN:ACTION`: kestrel boots on
//! the bare machine, the monitor is slid under it and taken out again,
//! and its programs print what they print in a plain native run
//! (docs/devirtualization.md).

#![allow(clippy::panic, clippy::unwrap_used)]

mod common;

use common::{run, text};

const KESTREL: &str = "guest-kits/images/kestrel.elf";

/// The console lines that do not depend on timing: all but the per-CPU
/// split of the smp program's increments and kestrel's per-CPU counters.
fn results(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| l.starts_with("kestrel: ") || l.contains(": ") && !l.starts_with("  "))
        .filter(|l| !l.starts_with("smp: cpu ") && !l.starts_with("kestrel: cpu "))
        .filter(|l| !l.starts_with("cpu") && !l.starts_with("total:"))
        .collect()
}

#[test]
fn the_booting_kernel_is_told_its_boot_memory_not_the_machines() {
    let out = run(&[
        "run",
        KESTREL,
        "--cpus",
        "1",
        "--mem",
        "64M",
        "--boot-mem",
        "16M",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("kestrel: booting, 1 cpu, 16 MB RAM"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn kestrel_virtualized_and_devirtualized_prints_what_it_prints_natively() {
    for cpus in ["1", "2"] {
        let base = [
            "run",
            KESTREL,
            "--cpus",
            cpus,
            "--mem",
            "64M",
            "--boot-mem",
            "32M",
        ];
        let native = run(&base);
        assert_eq!(native.status.code(), Some(0));
        let mut args = base.to_vec();
        args.extend([
            "--at",
            "5M:virtualize",
            "--at",
            "12M:devirtualize",
            "--stats",
        ]);
        let out = run(&args);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert_eq!(
            results(&stdout),
            results(&text(&native.stdout)),
            "{cpus} CPUs"
        );
        assert!(stdout.contains("init: 5 of 5 programs passed"));
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{stderr}");
        assert!(lines[0].starts_with(&format!(
            "disco: at cycle 5000000: virtualize: {cpus} CPU(s) became VCPUs of vm0"
        )));
        assert!(lines[1].starts_with(&format!(
            "disco: at cycle 12000000: devirtualize: vm0's {cpus} VCPU(s) handed back"
        )));
        let phases: Vec<&str> = stdout
            .lines()
            .skip_while(|l| *l != "phases:")
            .skip(1)
            .collect();
        assert_eq!(phases.len(), 3, "{stdout}");
        assert!(phases[0].starts_with("  native   cycles 0..5000000: 0 exits"));
        assert!(phases[1].starts_with("  virtual  cycles 5000000..12000000: "));
        assert!(!phases[1].contains(": 0 exits"), "{}", phases[1]);
        assert!(phases[2].starts_with("  native   cycles 12000000.."));
        assert!(phases[2].contains(": 0 exits, monitor 0.0% (0 cycles)"));
    }
}

#[test]
fn the_timeline_comes_from_the_config_file_too() {
    let dir = std::env::temp_dir().join(format!("disco-at-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("at.toml");
    std::fs::write(
        &cfg,
        "cpus = 1\nmem = \"64M\"\nboot_mem = \"32M\"\n\n[[at]]\nwhen = \"4M\"\naction = \"virtualize\"\n",
    )
    .unwrap();
    let out = run(&["run", KESTREL, "--config", cfg.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.starts_with("disco: at cycle 4000000: virtualize: 1 CPU(s)"),
        "{stderr}"
    );
    assert!(text(&out.stdout).contains("init: 5 of 5 programs passed"));
    std::fs::write(&cfg, "[[at]]\nwhen = \"4M\"\naction = \"teleport\"\n").unwrap();
    let out = run(&["run", KESTREL, "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("at[0]: --at 4M:teleport: unknown action \"teleport\""));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_timelines_and_boot_memory_get_one_line_and_exit_status_2() {
    for (args, want) in [
        (
            &["--at", "20M:fly"][..],
            "--at 20M:fly: unknown action \"fly\"",
        ),
        (
            &["--at", "soon:virtualize"][..],
            "\"soon\" is not a cycle count",
        ),
        (&["--at", "virtualize"][..], "give WHEN:ACTION"),
        (
            &["--at", "40M:virtualize-memory=16M"][..],
            "--at 40M:virtualize-memory=16M: virtualize-memory=16M: give a guest-physical RANGE",
        ),
        (&["--at", "40M:evacuate=8M"][..], "give RANGE[@MACHINE]"),
        (
            &["--at", "1M:virtualize", "--remap-index", "fast"][..],
            "--remap-index \"fast\": give backmap, refcount or search",
        ),
        (
            &["--remap-index", "search"][..],
            "--remap-index: there is no --at timeline",
        ),
        (
            &["--at", "1M:virtualize", "--remap", "fast"][..],
            "--remap \"fast\": give paused or concurrent",
        ),
        (
            &["--remap", "concurrent"][..],
            "--remap: there is no --at timeline",
        ),
        (
            &["--mem", "32M", "--boot-mem", "64M"][..],
            "--boot-mem: 64M: more than the machine's 32M of memory",
        ),
        (&["--boot-mem", "5000"][..], "--boot-mem: "),
    ] {
        let mut a = vec!["run", KESTREL];
        a.extend(args);
        let out = run(&a);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
    let out = run(&["run", "--vm", KESTREL, "--at", "1M:virtualize"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not --vm"));
}

/// The disk moves with the board: kestrel loads programs from kfs on the
/// disk through its driver: kfs is mounted natively, motd and the first
/// programs are read while it is virtual, the rest after.
#[test]
fn the_disk_moves_with_the_kernel() {
    let base = [
        "run",
        KESTREL,
        "--cpus",
        "2",
        "--mem",
        "64M",
        "--boot-mem",
        "32M",
        "--disk",
        "guest-kits/images/kestrel-disk.img",
    ];
    let native = run(&base);
    assert_eq!(native.status.code(), Some(0));
    let mut args = base.to_vec();
    args.extend(["--at", "500K:virtualize", "--at", "9M:devirtualize"]);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("motd: loaded from the disk by execv"));
    assert_eq!(results(&stdout), results(&text(&native.stdout)));
    assert!(!text(&out.stderr).contains("refused"));
}

/// The lines of one VM: its prefixed lines, or (`""`) the unprefixed ones.
fn vm_lines<'a>(stdout: &'a str, prefix: &str) -> Vec<&'a str> {
    stdout
        .lines()
        .filter_map(|l| match prefix {
            "" => (!l.starts_with('[')).then_some(l),
            p => l.strip_prefix(p),
        })
        .collect()
}

/// The scenario's machine: kestrel on 2 CPUs, told 32M of a 64M machine.
const SCENARIO_MACHINE: [&str; 8] = [
    "run",
    KESTREL,
    "--cpus",
    "2",
    "--mem",
    "64M",
    "--boot-mem",
    "32M",
];

/// The issue's scenario without evacuation: kestrel boots natively with
/// 32M of a 64M machine, is virtualized, a second kestrel boots into the
/// free 32M beside it, and when that one ends the first is handed back to
/// the bare machine and finishes there.
#[test]
fn a_second_vm_runs_beside_the_virtualized_kernel_which_then_finishes_natively() {
    let base = SCENARIO_MACHINE;
    let native = run(&base);
    let mut args = base.to_vec();
    args.extend([
        "--at",
        "3M:virtualize",
        "--at",
        "4M:start-vm=guest-kits/images/kestrel.elf,mem=16M",
        "--at",
        "vm-end=vm1:devirtualize",
        "--stats",
    ]);
    let out = run(&args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(lines[1].starts_with(
        "disco: at cycle 4000000: start-vm: vm1 (guest-kits/images/kestrel.elf, 16M, 1 VCPU(s)) booted into free machine memory at 0x2002000"
    ), "{}", lines[1]);
    assert!(
        lines[2].contains(": devirtualize: vm0's 2 VCPU(s) handed back"),
        "{}",
        lines[2]
    );
    // vm0 prints what it prints natively; vm1 runs the whole demo.
    let vm0 = vm_lines(&stdout, "");
    assert_eq!(results(&vm0.join("\n")), results(&text(&native.stdout)));
    let vm1 = vm_lines(&stdout, "[vm1] ").join("\n");
    assert!(
        vm1.starts_with("kestrel: booting, 1 cpu, 16 MB RAM, mode demo"),
        "{vm1}"
    );
    assert!(
        vm1.contains("init: 5 of 5 programs passed") && vm1.ends_with("kestrel: halt status 0")
    );
    // vm1 ended before vm0 was handed back: the last phase is native.
    let last = stdout.lines().last().unwrap();
    assert!(
        last.starts_with("  native   cycles ") && last.contains(": 0 exits"),
        "{last}"
    );
}

#[test]
fn start_vm_is_refused_without_free_machine_memory_or_a_monitor() {
    let out = run(&[
        "run",
        KESTREL,
        "--mem",
        "40M",
        "--boot-mem",
        "32M",
        "--at",
        "1M:start-vm=guest-kits/images/kestrel.elf,mem=16M",
        "--at",
        "2M:virtualize",
        "--at",
        "3M:start-vm=guest-kits/images/kestrel.elf,mem=16M",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines[0], "disco: at cycle 1000000: start-vm refused: VMs start beside a kernel the monitor runs: virtualize first; the run continues");
    assert_eq!(lines[2], "disco: at cycle 3000000: start-vm refused: vm1 needs 16388K of free machine memory (16M and a 4K commpage for each of 1 VCPUs); the machine has 8188K free; the run continues");
    assert!(text(&out.stdout).contains("init: 5 of 5 programs passed"));
}

/// The issue's whole scenario on the demo kernel: native boot, virtualize,
/// a second VM in the free memory, vm0's 8M-16M evacuated to other machine
/// pages, and at vm1's end everything remapped to the identity and handed
/// back. vm0's results are those of a plain native run.
#[test]
fn the_issue_scenario_with_evacuation_and_remapping() {
    for index in ["backmap", "search"] {
        scenario(index, "paused");
    }
}

/// The same with `--remap concurrent`: vm0 runs while its pages move, 16
/// at a time; each remapping's line comes when its last page has moved.
#[test]
fn the_issue_scenario_with_concurrent_remapping() {
    scenario("backmap", "concurrent");
}

fn scenario(index: &str, mode: &str) {
    let base = SCENARIO_MACHINE;
    let native = run(&base);
    let mut args = base.to_vec();
    args.extend([
        "--at",
        "3M:virtualize",
        "--at",
        "4M:start-vm=guest-kits/images/kestrel.elf,mem=16M",
        "--at",
        "5M:evacuate=8M-16M",
        "--at",
        "vm-end:devirtualize",
        "--stats",
        "--remap-index",
        index,
        "--remap",
        mode,
    ]);
    let out = run(&args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    if mode == "paused" {
        assert!(lines[2].starts_with("disco: at cycle 5000000: evacuate: vm0's 0x800000-0x1000000 moved to other machine pages; 2048 pages moved (2048 direct, 0 indirect); guest paused "), "{}", lines[2]);
        assert!(
            lines[3].contains(": devirtualize: vm0's 2 VCPU(s) handed back")
                && lines[3].contains("; 2048 pages moved;"),
            "{}",
            lines[3]
        );
    } else {
        assert!(lines[2].contains(": evacuate: vm0's 0x800000-0x1000000 moved to other machine pages, concurrently from cycle 5000000; 2048 pages moved (2048 direct, 0 indirect), "), "{}", lines[2]);
        assert!(
            lines[3].contains(": devirtualize: vm0's 2 VCPU(s) handed back")
                && lines[3].contains("; 2048 pages moved concurrently from cycle "),
            "{}",
            lines[3]
        );
    }
    assert_eq!(
        results(&vm_lines(&stdout, "").join("\n")),
        results(&text(&native.stdout))
    );
    let vm1 = vm_lines(&stdout, "[vm1] ").join("\n");
    assert!(vm1.contains("init: 5 of 5 programs passed"), "{vm1}");
    let last = stdout.lines().last().unwrap();
    assert!(
        last.starts_with("  native   cycles ") && last.contains(": 0 exits"),
        "{last}"
    );
}
