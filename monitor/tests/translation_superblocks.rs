//! Superblocks of translated blocks (docs/translation.md, "Superblocks of
//! translated blocks"): with tracing off the translator runs chained blocks
//! of one page as one superblock, with tracing on one block per dispatch (a
//! trace line each). Both must leave the modelled machine in the same state:
//! the same registers, cycles and every statistic, translation counters and
//! region accounting included.

#![allow(clippy::panic, clippy::unwrap_used)]

use monitor::bt::Exec;
use monitor::{Monitor, MonitorConfig, VmConfig, VmImage};

mod btkit;
mod common;

use btkit::seg;

/// Runs `vm` until cycle `until` (or its end), traced or not: its
/// statistics (superblocks run taken out and returned apart) and its
/// VCPUs' registers.
fn run(vm: &VmConfig, until: u64, traced: bool) -> (monitor::stats::VmStats, String, u64) {
    let mut m = Monitor::new(MonitorConfig {
        vms: vec![vm.clone()],
        ..MonitorConfig::default()
    })
    .unwrap();
    m.trace.enabled = traced;
    while m.now() < until {
        if m.run_quantum().is_some() {
            break;
        }
    }
    let mut st = m.vm_stats().remove(0);
    let superblocks = std::mem::take(&mut st.bt.superblocks);
    let regs = format!(
        "{:?}",
        m.vms[0].vcpus.iter().map(|v| &v.regs).collect::<Vec<_>>()
    );
    (st, regs, superblocks)
}

/// The same run traced (a block per dispatch) and untraced (superblocks):
/// the same state; the untraced one ran superblocks.
fn same_with_and_without_superblocks(vm: &VmConfig, until: u64) {
    let (traced, traced_regs, none) = run(vm, until, true);
    let (fast, fast_regs, superblocks) = run(vm, until, false);
    assert_eq!(none, 0, "a traced run runs a block per dispatch");
    assert!(superblocks > 0, "no superblock ran");
    assert!(
        fast.bt.blocks_run > superblocks,
        "{superblocks} superblocks"
    );
    assert_eq!(traced, fast);
    assert_eq!(traced_regs, fast_regs);
}

/// The unrelinked KSEG0 compute loop (`sim::workload`), to its end: its
/// inner loop's four blocks (a not-taken branch, a `jal`, the callee's
/// proved return) run as one superblock.
#[test]
fn the_kseg0_loop_runs_the_same_in_superblocks() {
    let a = sim::workload::mixed_integer(0x8000_1000, 20);
    let img = VmImage {
        entry: 0xFFFF_FFFF_8000_1000,
        segments: vec![seg(&a)],
    };
    for exec in [Exec::Translate, Exec::Adaptive] {
        let mut vm = VmConfig::new("loop", img.clone(), 4 << 20);
        vm.exec = exec;
        same_with_and_without_superblocks(&vm, u64::MAX);
    }
}

/// Kestrel's mapped kernel (0xC0010000) under `exec=translate`, whose
/// every page may run superblocks: its boot and first programs (timer
/// interrupts, system calls, TLB refills landing between blocks).
#[test]
fn kestrel_runs_the_same_in_superblocks() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../guest-kits/images/kestrel.elf");
    let bytes = std::fs::read(&path).unwrap();
    let img = sim::loader::load(&bytes, 32 << 20).unwrap().0;
    let mut vm = VmConfig::new("kestrel", img, 32 << 20);
    vm.exec = Exec::Translate;
    same_with_and_without_superblocks(&vm, 20_000_000);
}
