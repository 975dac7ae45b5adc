//! Coalesced I/O end to end: kestrel (its console-heavy demo boot, and the
//! disk-heavy boot that loads programs from kfs) and the device kits print
//! under every `--vm …,coalesce=POLICY` exactly what they print on the bare
//! machine, with the real cost table and where exits cost 1000 cycles
//! (where blocks are taken). docs/monitor.md §4.

#![allow(clippy::panic, clippy::unwrap_used)]

mod common;

use common::{images, run, text};

const POLICIES: [&str; 4] = ["off", "block", "second", "ring"];

fn image(name: &str) -> String {
    images().join(name).to_str().unwrap().to_string()
}

/// The guest's console lines of a bare-machine run.
fn native(args: &[&str]) -> Vec<String> {
    let mut a = vec!["run", "--max-cycles", "300000000"];
    a.extend_from_slice(args);
    let o = run(&a);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let out = text(&o.stdout);
    out.lines().map(str::to_string).collect()
}

/// VM 0's console lines of a monitor run, with its `[vm0] ` prefix removed.
fn in_vm(spec: &str, flags: &[&str]) -> Vec<String> {
    let mut a = vec!["run", "--cpus", "1", "--max-cycles", "300000000"];
    a.extend_from_slice(flags);
    a.extend_from_slice(&["--vm", spec]);
    let o = run(&a);
    let out = text(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{spec} {flags:?}: {out}{}",
        text(&o.stderr)
    );
    out.lines()
        .filter_map(|l| l.strip_prefix("[vm0] "))
        .map(str::to_string)
        .collect()
}

fn under_every_policy(spec: &str, want: &[String]) {
    for p in POLICIES {
        for cost in [None, Some("exit=1000")] {
            let flags: Vec<&str> = cost.map_or(vec![], |c| vec!["--cost", c]);
            let got = in_vm(&format!("{spec},coalesce={p}"), &flags);
            assert_eq!(got, want, "{spec},coalesce={p} {flags:?}");
        }
    }
}

#[test]
fn kestrel_demo_boot_prints_the_same_under_every_policy() {
    let k = image("kestrel.elf");
    let want = native(&["--cpus", "1", &k]);
    assert!(want.iter().any(|l| l == "init: 5 of 5 programs passed"));
    under_every_policy(&k, &want);
}

#[test]
fn kestrel_loading_from_kfs_prints_the_same_under_every_policy() {
    let (k, d) = (image("kestrel.elf"), image("kestrel-disk.img"));
    let want = native(&["--cpus", "1", "--disk", &d, &k]);
    assert!(want
        .iter()
        .any(|l| l == "motd: loaded from the disk by execv"));
    under_every_policy(&format!("{k},disk={d}"), &want);
}

/// The device kits run in the engine (KSEG0), so this checks correctness,
/// not exit counts. mp and smp run with 4 VCPUs on the one physical CPU.
#[test]
fn device_kits_print_the_same_under_every_policy() {
    let disk = std::env::temp_dir().join(format!("disco-coalesce-{}.img", std::process::id()));
    std::fs::copy(images().join("disk.img"), &disk).unwrap();
    let d = disk.to_str().unwrap().to_string();
    for kit in [
        "hello.elf",
        "console.elf",
        "timer.elf",
        "rtc.elf",
        "disk.elf",
        "mp.elf",
        "smp.elf",
    ] {
        let img = image(kit);
        let (want, spec) = match kit {
            "disk.elf" => (native(&["--disk", &d, &img]), format!("{img},disk={d}")),
            "mp.elf" | "smp.elf" => (native(&["--cpus", "4", &img]), format!("{img},cpus=4")),
            _ => (native(&[&img]), img.clone()),
        };
        under_every_policy(&spec, &want);
    }
    let _ = std::fs::remove_file(&disk);
}

#[test]
fn bad_policies_and_costs_are_refused_with_one_line() {
    let k = image("hello.elf");
    let (bad_policy, bad_extent) = (
        format!("{k},coalesce=sometimes"),
        format!("{k},io-extent=0"),
    );
    let cases: [(&[&str], &str); 5] = [
        (
            &["--vm", &bad_policy],
            "is not one of off, block, second, ring",
        ),
        (&["--vm", &bad_extent], "is not a positive number"),
        (
            &["--cost", "exits=1", "--vm", &k],
            "is not an entry of the monitor's cost table",
        ),
        (
            &["--cost", "exit=much", "--vm", &k],
            "is not a number of cycles",
        ),
        (&["--cost", "exit=1", &k], "applies to --vm runs"),
    ];
    for (args, msg) in cases {
        let mut a = vec!["run"];
        a.extend_from_slice(args);
        let o = run(&a);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = text(&o.stderr);
        assert!(
            err.contains(msg) && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
}

/// The `[cost]` table and a `[[vm]]`'s `coalesce` key in a config file; a
/// `--cost` flag wins over the file's entry.
#[test]
fn the_config_file_sets_costs_and_policies() {
    let cfg = std::env::temp_dir().join(format!("disco-coalesce-{}.toml", std::process::id()));
    let k = image("kestrel.elf");
    std::fs::write(
        &cfg,
        format!("stats = true\n[cost]\nexit = 1000\n[[vm]]\nimage = {k:?}\ncoalesce = \"block\"\nio-extent = 64\nexec = \"direct\"\n"),
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    let blocks = |flags: &[&str]| -> u64 {
        let mut a = vec!["run", "--cpus", "1", "--config", c];
        a.extend_from_slice(flags);
        let o = run(&a);
        let out = text(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
        let line = out
            .lines()
            .find_map(|l| l.trim().strip_prefix("coalesce block: "))
            .unwrap_or_else(|| panic!("{out}"));
        line.split(' ').next().unwrap().parse().unwrap()
    };
    assert!(
        blocks(&[]) > 40,
        "exits of 1000 cycles: console lines coalesce"
    );
    assert!(
        blocks(&["--cost", "exit=12"]) < 5,
        "the flag wins: blocks rarely pay"
    );
    let _ = std::fs::remove_file(&cfg);
}
