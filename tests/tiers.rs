//! Every guest kit in every execution tier (docs/tiers.md): natively and,
//! for kestrel, under the monitor, `disco run --tier 1`, `--tier 2` and
//! `--tier 3` print the same console output, statistics (instructions, cycles, TLB
//! refills, interrupts, exceptions by cause) and final registers, and
//! traced runs write the same trace. Only the host-speed figure may differ.

#![allow(clippy::panic, clippy::unwrap_used)]

mod common;

use common::{run, text};

/// `disco run ARGS --tier N --stats --dump-regs`, without host timings.
fn outcome(args: &[&str], tier: &str) -> String {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--tier", tier, "--stats", "--dump-regs"]);
    let o = run(&all);
    let out = format!(
        "status {:?}\n{}{}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    );
    out.lines()
        .map(|l| match l.find(" host MIPS") {
            // "..., 12.3 host MIPS": drop the figure.
            Some(i) => l
                .get(..l.get(..i).and_then(|h| h.rfind(',')).unwrap_or(i))
                .unwrap_or(l),
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn same_in_every_tier(args: &[&str]) {
    let one = outcome(args, "1");
    let two = outcome(args, "2");
    assert!(one.contains("status Some("), "{one}");
    assert_eq!(one, two, "disco run {args:?}: tier 2 differs from tier 1");
    let three = outcome(args, "3");
    assert_eq!(one, three, "disco run {args:?}: tier 3 differs from tier 1");
}

#[test]
fn every_device_kit_natively() {
    for kit in ["hello", "console", "cpustate", "mp", "rtc", "timer"] {
        let elf = format!("guest-kits/images/{kit}.elf");
        same_in_every_tier(&[&elf, "--max-cycles", "50000000"]);
    }
    same_in_every_tier(&[
        "guest-kits/images/smp.elf",
        "--cpus",
        "4",
        "--max-cycles",
        "50000000",
    ]);
    same_in_every_tier(&[
        "guest-kits/images/disk.elf",
        "--disk",
        "guest-kits/images/disk.img",
    ]);
}

#[test]
fn kestrel_natively_and_under_the_monitor() {
    let k = "guest-kits/images/kestrel.elf";
    same_in_every_tier(&[k, "--max-cycles", "300000000"]);
    same_in_every_tier(&[k, "--cpus", "4", "--max-cycles", "300000000"]);
    same_in_every_tier(&["--vm", k, "--max-cycles", "300000000"]);
}

#[test]
fn traces_are_the_same_in_every_tier() {
    for kit in ["timer", "mp"] {
        let elf = format!("guest-kits/images/{kit}.elf");
        let trace = |tier: &str| {
            let o = run(&["run", &elf, "--trace", "all", "--tier", tier]);
            text(&o.stderr)
        };
        let one = trace("1");
        assert!(one.lines().count() > 100, "{kit}: too short a trace");
        assert_eq!(one, trace("2"), "{kit}: the traces differ");
        assert_eq!(one, trace("3"), "{kit}: the tier-3 trace differs");
    }
}

#[test]
fn a_bad_tier_is_named() {
    let o = run(&["run", "guest-kits/images/hello.elf", "--tier", "4"]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("tier"), "{}", text(&o.stderr));
}
