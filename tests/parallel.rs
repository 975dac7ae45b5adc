//! `disco run --parallel` end to end (docs/parallel.md): every guest kit
//! gives the deterministic mode's console output on 2, 4 and 8 host
//! threads, the SMP workloads pass 50 times in a row, and the combinations
//! the parallel mode does not support are refused with one line.

#![allow(clippy::panic, clippy::unwrap_used)]

mod common;

use common::{images, kit, run, text, KITS};

#[test]
fn every_kit_gives_the_deterministic_output_on_2_4_and_8_threads() {
    for (name, cpus, last) in KITS {
        let det = kit(name, cpus, &[]);
        assert_eq!(det.status.code(), Some(0), "{name}: {}", text(&det.stderr));
        assert_eq!(text(&det.stdout).lines().last(), Some(last), "{name}");
        for threads in ["2", "4", "8"] {
            let par = kit(name, cpus, &["--parallel", "--threads", threads]);
            assert_eq!(
                (par.status.code(), text(&par.stdout)),
                (Some(0), text(&det.stdout)),
                "{name} on {threads} threads: {}",
                text(&par.stderr)
            );
        }
    }
}

#[test]
fn the_disk_kit_passes_in_parallel() {
    let tmp = std::env::temp_dir().join(format!("disco-par-disk-{}.img", std::process::id()));
    std::fs::copy(images().join("disk.img"), &tmp).unwrap();
    let o = kit(
        "disk.elf",
        "1",
        &[
            "--disk",
            tmp.to_str().unwrap(),
            "--parallel",
            "--threads",
            "2",
        ],
    );
    let _ = std::fs::remove_file(&tmp);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).lines().last(), Some("disk: ok"));
}

/// The SMP workloads (the mp and smp kits on 4 CPUs, LL/SC counting and
/// CPU start/pause) 50 times each on 4 threads: every run passes. Each run
/// is bounded by its cycle limit (a hang ends with status 3, a failure).
#[test]
fn the_smp_workloads_pass_50_times_in_parallel() {
    for i in 0..50 {
        for (name, last) in [("smp.elf", "smp: ok"), ("mp.elf", "mp: ok")] {
            let o = kit(name, "4", &["--parallel", "--threads", "4"]);
            let out = text(&o.stdout);
            assert_eq!(
                (o.status.code(), out.lines().last()),
                (Some(0), Some(last)),
                "run {i} of {name}: {out}{}",
                text(&o.stderr)
            );
        }
    }
}

#[test]
fn a_trace_in_parallel_is_merged_by_cycle() {
    let o = kit(
        "mp.elf",
        "4",
        &["--parallel", "--threads", "4", "--trace", "exc,mmio,irq"],
    );
    let trace = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{trace}");
    let cycles: Vec<u64> = trace
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(cycles.len() > 10, "{trace}");
    for cpu in ["cpu0", "cpu1", "cpu2", "cpu3"] {
        assert!(trace.contains(&format!(" {cpu} ")), "{cpu}: {trace}");
    }
    let quantum = 10_000;
    // Within each quantum the lines are in cycle order. A CPU's last
    // instruction of a quantum may end past the quantum's end (an mmio
    // write costs 20 cycles) and what it records then (an interrupt it
    // raised for itself) belongs to that quantum's lines, written before
    // the next quantum's: so the first `SLACK` cycles of a quantum are
    // not compared.
    const SLACK: u64 = 100;
    for w in cycles.windows(2) {
        if w[0] / quantum == w[1] / quantum && w[0] % quantum >= SLACK {
            assert!(w[0] <= w[1], "{w:?}");
        }
    }
}

#[test]
fn what_the_parallel_mode_does_not_support_is_refused_in_one_line() {
    let img = images().join("hello.elf");
    let img = img.to_str().unwrap();
    for (args, says) in [
        (
            vec!["run", img, "--parallel", "--gdb", "0"],
            "--gdb needs the deterministic mode",
        ),
        (
            vec!["run", img, "--parallel", "--at", "1M:virtualize"],
            "--at changes the machine at a set cycle",
        ),
        (
            vec!["run", img, "--parallel", "--threads", "0"],
            "--threads: 0; give at least 1 thread",
        ),
    ] {
        let o = run(&args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // A usage error, in clap's words (status 2 like the others).
    let o = run(&["run", img, "--threads", "2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("--parallel"),
        "{}",
        text(&o.stderr)
    );
    // The config file's keys say the same in one line.
    let cfg = std::env::temp_dir().join(format!("disco-par-{}.toml", std::process::id()));
    std::fs::write(&cfg, "threads = 2\n").unwrap();
    let o = run(&["run", img, "--config", cfg.to_str().unwrap()]);
    let _ = std::fs::remove_file(&cfg);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("threads: 2: threads are for the parallel mode"),
        "{err}"
    );
}
