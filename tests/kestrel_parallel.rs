//! kestrel's parallel mode (boot mode 6, guest-kits/images/kestrel-par.elf):
//! init runs `par`, one compute-bound worker process per CPU. A real
//! kernel's parallel work, for the parallel mode's kestrel rows
//! (docs/parallel.md): on two CPUs natively and in a VM of two VCPUs, in
//! the deterministic mode and on two host threads, the workers' checksum
//! is the same every time, each worker finished on a CPU of its own, and
//! the VM, whose kernel and workers run directly, is split over the
//! threads by the default policy. On threads, the summary counts how often
//! they waited for each other.

#![allow(clippy::unwrap_used)]

mod common;

use common::{images, numbers_on, run, split_batches, text};

/// What two workers of 50 rounds compute, wherever they run.
const CHECKSUM_OF_TWO: &str = "par: 2 workers x 50 rounds, checksum 0xd9ad27d5";

fn par() -> String {
    images()
        .join("kestrel-par.elf")
        .to_str()
        .unwrap()
        .to_string()
}

/// Runs `args` and checks par's report; returns stdout.
fn run_par(args: &[&str]) -> String {
    let o = run(args);
    let out = text(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?}:\n{out}{}",
        text(&o.stderr)
    );
    for line in [CHECKSUM_OF_TWO, "par: ok", "init: par exited with status 0"] {
        assert!(out.contains(line), "{args:?}: no `{line}` in:\n{out}");
    }
    let cpus: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_once("par: worker ").map(|(_, w)| w))
        .filter_map(|w| w.split_once(" finished on cpu ").map(|(_, c)| c))
        .collect();
    let mut distinct = cpus.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 2, "{args:?}: workers finished on {cpus:?}");
    out
}

#[test]
fn a_worker_per_cpu_natively_deterministic_and_on_threads() {
    let image = par();
    let alone = run_par(&["run", "--cpus", "2", "--stats", &image]);
    assert!(!alone.contains("waited"), "{alone}");
    let threads = ["run", "--cpus", "2", "--parallel", "--threads", "2"];
    let out = run_par(&[&threads[..], &["--stats", &image]].concat());
    // "total: I instructions, C cycles, ...": the run's quanta of 10,000
    // cycles; the thread holding CPU 0 runs each of them, the other each
    // one CPU 1 has work in.
    let cycles: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("total: "))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|c| c.strip_suffix(" cycles"))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let quanta = cycles / 10_000;
    // "parallel: threads waited for each other before W of Q quanta".
    let waits = numbers_on(&out, "parallel: threads waited");
    assert!(
        quanta > 10_000
            && matches!(waits[..], [w, q] if w <= q && (quanta..=2 * quanta + quanta / 10).contains(&q)),
        "no count of the threads' waits over {quanta} quanta: {waits:?}\n{out}"
    );
}

#[test]
fn a_two_vcpu_vm_of_kestrel_par_is_split_by_default() {
    let vm = format!("{},cpus=2", par());
    run_par(&["run", "--cpus", "2", "--vm", &vm]);
    let split = run_par(&[
        "run",
        "--cpus",
        "2",
        "--vm",
        &vm,
        "--parallel",
        "--threads",
        "2",
    ]);
    // "parallel: S of B batches ...": only the boot's and the tail's, with
    // one CPU busy, are not split.
    let batches = numbers_on(&split, "parallel: ");
    assert!(
        matches!(batches[..], [s, b] if 2 * s >= b && s == split_batches(&split)),
        "the VM was not split in most batches: {batches:?}\n{split}"
    );
    // "parallel: split VMs' threads waited for each other before W of Q
    // quanta": each split batch runs at least a quantum on each of the two
    // threads, and a thread waits at most once before each.
    let waits = numbers_on(&split, "parallel: split VMs' threads waited");
    assert!(
        matches!(waits[..], [w, q] if w <= q && q >= 2 * split_batches(&split)),
        "no count of the split VM's waits: {waits:?}\n{split}"
    );
}
