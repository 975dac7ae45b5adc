//! The monitor in the parallel mode (docs/parallel.md): every guest kit in
//! a VM gives the deterministic mode's console output on 2, 4 and 8 host
//! threads, two and eight VMs run side by side, the SMP kits pass again
//! and again, the library gives the same guest results in both modes, and
//! what needs the deterministic mode is refused in one line. Kestrel's demo
//! and its TLB-shootdown mode in parallel are in tests/kestrel.rs.

#![allow(clippy::panic, clippy::unwrap_used)]

mod common;

use common::{images, refused_in_one_line, run, split_batches, text, KITS};
use monitor::bt::Exec;
use monitor::obs::MonEvent;
use monitor::{Monitor, MonitorConfig, MonitorExit, SplitPolicy, VmConfig, VmEnd};

fn kit_path(name: &str) -> String {
    images().join(name).to_str().unwrap().to_string()
}

/// `disco run --cpus PCPUS --vm SPEC ... EXTRA`, stopped at two billion
/// cycles if it never ends.
fn monitor(pcpus: &str, vms: &[String], extra: &[&str]) -> std::process::Output {
    let mut args = vec!["run", "--cpus", pcpus, "--max-cycles", "2000000000"];
    for vm in vms {
        args.extend_from_slice(&["--vm", vm]);
    }
    args.extend_from_slice(extra);
    run(&args)
}

/// The console lines of VM `name`, in order, without their prefix, and
/// without cpustate's CP0 Count: when a VCPU reads it depends on how the
/// physical CPUs were shared.
fn console(out: &str, name: &str) -> Vec<String> {
    let prefix = format!("[{name}] ");
    out.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter(|l| !l.starts_with("count 0x"))
        .map(str::to_string)
        .collect()
}

/// The summary line of VM `name` up to its instruction count (the count
/// of a VCPU that spins on another differs between interleavings).
fn ending(out: &str, name: &str) -> String {
    let head = format!("{name}: ");
    let line = out.lines().find(|l| l.starts_with(&head)).unwrap_or("");
    line.split(';').next().unwrap_or("").to_string()
}

/// A one-VCPU kit prints the same lines in any interleaving; a 4-VCPU one
/// may print its CPUs' lines in another order, but the same lines, and
/// ends the same way.
fn same_result(vcpus: &str, det: &[String], par: &[String]) -> bool {
    if vcpus == "1" {
        return det == par;
    }
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    sorted(det) == sorted(par) && det.last() == par.last()
}

#[test]
fn every_kit_in_a_vm_gives_the_deterministic_output_on_2_4_and_8_threads() {
    for (name, vcpus, last) in KITS {
        let vm = vec![format!("{},cpus={vcpus}", kit_path(name))];
        let pcpus = if vcpus == "1" { "1" } else { "2" };
        let det = monitor(pcpus, &vm, &[]);
        let det_out = text(&det.stdout);
        assert_eq!(det.status.code(), Some(0), "{name}: {}", text(&det.stderr));
        let det_lines = console(&det_out, "vm0");
        assert_eq!(det_lines.last().map(String::as_str), Some(last), "{name}");
        for threads in ["2", "4", "8"] {
            let par = monitor(pcpus, &vm, &["--parallel", "--threads", threads]);
            let out = text(&par.stdout);
            assert_eq!(
                par.status.code(),
                Some(0),
                "{name}, {threads} threads: {out}"
            );
            let lines = console(&out, "vm0");
            assert!(
                same_result(vcpus, &det_lines, &lines),
                "{name} on {threads} threads:\n{out}\ndeterministic:\n{det_out}"
            );
            assert_eq!(ending(&out, "vm0"), ending(&det_out, "vm0"), "{name}");
        }
    }
}

/// The VMs of `kits`, named vm0, vm1, ...
fn vms_of(kits: &[(&str, &str, &str)]) -> Vec<String> {
    kits.iter()
        .enumerate()
        .map(|(i, (name, vcpus, _))| format!("{},cpus={vcpus},name=vm{i}", kit_path(name)))
        .collect()
}

#[test]
fn two_and_eight_vms_run_side_by_side() {
    // Five one-VCPU kits on two CPUs take turns inside batches (CP0 timer
    // and RTC interrupts and console input among them).
    for (kits, pcpus) in [
        (&KITS[..2], "2"),
        (&KITS[..5], "2"),
        (&KITS[..], "4"),
        (&[KITS[0]; 8][..], "8"),
    ] {
        let vms = vms_of(kits);
        let det = monitor(pcpus, &vms, &[]);
        let det_out = text(&det.stdout);
        assert_eq!(det.status.code(), Some(0), "{det_out}");
        for threads in ["2", "8"] {
            let par = monitor(pcpus, &vms, &["--parallel", "--threads", threads]);
            let out = text(&par.stdout);
            assert_eq!(par.status.code(), Some(0), "{threads} threads: {out}");
            for (i, (_, vcpus, last)) in kits.iter().enumerate() {
                let vm = format!("vm{i}");
                let (d, p) = (console(&det_out, &vm), console(&out, &vm));
                assert_eq!(p.last().map(String::as_str), Some(*last), "{vm}: {out}");
                assert!(same_result(vcpus, &d, &p), "{vm}: {out}");
                assert_eq!(ending(&out, &vm), ending(&det_out, &vm), "{vm}");
            }
        }
    }
}

/// The SMP kits (LL/SC counting, VCPU start and pause, IPIs) in two VMs
/// of four VCPUs on two physical CPUs and two threads, 20 times: every run
/// passes. Each run is bounded by its cycle limit (a hang ends with
/// status 3, a failure).
#[test]
fn the_smp_kits_in_two_vms_pass_20_times_in_parallel() {
    let vms = vms_of(&KITS[5..7]);
    for i in 0..20 {
        let o = monitor("2", &vms, &["--parallel", "--threads", "2"]);
        let out = text(&o.stdout);
        assert_eq!(
            o.status.code(),
            Some(0),
            "run {i}: {out}{}",
            text(&o.stderr)
        );
        assert_eq!(
            console(&out, "vm0").last().map(String::as_str),
            Some("mp: ok")
        );
        assert_eq!(
            console(&out, "vm1").last().map(String::as_str),
            Some("smp: ok")
        );
    }
}

/// One VM's VCPUs on several host threads (docs/parallel.md, "VCPUs of one
/// VM"): the SMP kits (VCPU start and pause, IPIs, LL/SC counting exactly)
/// in a VM of two VCPUs on two CPUs and two threads and of four VCPUs on
/// four CPUs and on two and four threads, and the VM really ran on more
/// than one thread; translated, and in the engine (`exec=direct`), which
/// runs outside the VM's lock.
#[test]
fn the_smp_kits_pass_in_a_vm_split_over_threads() {
    let shapes = [
        ("2", "2", "2", ""),
        ("2", "2", "2", ",exec=direct"),
        ("4", "4", "2", ""),
        ("4", "4", "2", ",exec=direct"),
        ("4", "4", "4", ""),
    ];
    for (vcpus, pcpus, threads, exec) in shapes {
        for (name, _, last) in &KITS[5..7] {
            let vm = vec![format!("{},cpus={vcpus}{exec}", kit_path(name))];
            let flags = ["--parallel", "--threads", threads, "--split", "always"];
            let o = monitor(pcpus, &vm, &flags);
            let out = text(&o.stdout);
            let what = format!("{name}{exec}, {vcpus} VCPUs on {pcpus} CPUs, {threads} threads");
            assert_eq!(o.status.code(), Some(0), "{what}: {out}");
            let lines = console(&out, "vm0");
            assert_eq!(
                lines.last().map(String::as_str),
                Some(*last),
                "{what}: {out}"
            );
            if *name == "smp.elf" {
                let want = format!("smp: {vcpus} CPUs x 100000 LL/SC increments = {vcpus}00000");
                assert!(lines.contains(&want), "{what}: {out}");
            }
            assert!(split_batches(&out) > 0, "{what}: never split: {out}");
        }
    }
}

/// A bounded stress loop: the smp kit in one VM of four VCPUs split over
/// two threads, 20 times, each run bounded by its cycle limit; every
/// other run with its kernel code in the engine (`exec=direct`), outside
/// the VM's lock.
#[test]
fn the_smp_kit_in_a_split_vm_passes_20_times() {
    for i in 0..20 {
        let exec = ["", ",exec=direct"][i % 2];
        let vm = vec![format!("{},cpus=4{exec}", kit_path("smp.elf"))];
        let flags = ["--parallel", "--threads", "2", "--split", "always"];
        let o = monitor("2", &vm, &flags);
        let out = text(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "run {i}: {out}");
        let lines = console(&out, "vm0");
        assert!(
            lines
                .iter()
                .any(|l| l == "smp: 4 CPUs x 100000 LL/SC increments = 400000"),
            "run {i}: {out}"
        );
        assert_eq!(lines.last().map(String::as_str), Some("smp: ok"), "run {i}");
        assert!(split_batches(&out) > 0, "run {i}: never split: {out}");
    }
}

/// What a run of a two-VCPU VM leaves: its memory, each VCPU's S0 (its
/// array), V0 (its checksum) and S7 (its number), the parallel mode's
/// (all, split) batches, and the instructions the monitor's engine ran and
/// the guest retired.
type TwoVcpuEnd = (Vec<u8>, Vec<[u64; 3]>, Option<(u64, u64)>, [u64; 2]);

/// Runs `image` in one VM of two VCPUs on two CPUs, its kernel code run as
/// `exec` says, on `threads` threads, split over them as `split` says.
fn two_vcpu_run(
    image: &sim::loader::Image,
    exec: Exec,
    threads: Option<usize>,
    split: SplitPolicy,
) -> TwoVcpuEnd {
    let mut m = Monitor::new(MonitorConfig {
        pcpus: 2,
        max_cycles: Some(2_000_000_000),
        vms: vec![VmConfig {
            vcpus: 2,
            exec,
            ..VmConfig::new("vm0", image.clone(), 8 << 20)
        }],
        ..MonitorConfig::default()
    })
    .unwrap();
    m.set_split(split);
    m.set_parallel(threads);
    assert_eq!(m.run(), MonitorExit::AllEnded);
    assert_eq!(m.vms[0].end, Some(VmEnd::Halted(0)));
    let (pmap, bus) = (&m.vms[0].pmap, &m.machine.bus);
    let ram: Vec<u8> = (0..pmap.size() >> 12)
        .flat_map(|page| {
            let ma = pmap.translate(monitor::mem::GuestPhys(page << 12)).unwrap();
            bus.read_bytes(ma.0, 4096).unwrap()
        })
        .collect();
    let regs = m.vms[0]
        .vcpus
        .iter()
        .map(|v| [16, 2, 23].map(|r| v.regs.gpr[r]))
        .collect();
    let st = &m.vm_stats()[0];
    let insns = [st.engine_insns, st.guest_insns];
    (ram, regs, m.parallel_batches(), insns)
}

/// The run on two threads ends as the deterministic one (memory and the
/// registers that hold results) and, as `split` lets it, splits the VM in
/// (nearly) every batch. Returns the deterministic run's engine and guest
/// instructions.
fn splits_and_ends_as_deterministically(
    image: &sim::loader::Image,
    split: SplitPolicy,
) -> [u64; 2] {
    let (det_ram, det_regs, none, insns) = two_vcpu_run(image, Exec::default(), None, split);
    assert_eq!(none, None);
    assert_eq!(det_regs[1][2], 1, "VCPU 1 never ran: {det_regs:x?}");
    let (ram, regs, batches, _) = two_vcpu_run(image, Exec::default(), Some(2), split);
    let (all, split) = batches.unwrap();
    assert!(
        split > 0 && split + 2 >= all,
        "{split} of {all} batches split"
    );
    assert_eq!(
        regs, det_regs,
        "the VCPUs' results differ between the modes"
    );
    assert!(ram == det_ram, "the VM's memory differs between the modes");
    insns
}

/// Two VCPUs each running `mixed_integer_smp`'s integer loop in kernel
/// mode (KSEG0: translated under the VM's lock when split, by default; or
/// the monitor's engine, outside it, with `exec=direct`).
fn kernel_mode_smp(passes: u32) -> sim::loader::Image {
    let a = sim::workload::mixed_integer_smp(0x8000_1000, passes, 2);
    let bytes = a.bytes().unwrap();
    sim::loader::Image {
        entry: i64::from(a.origin() as i32) as u64,
        segments: vec![(u64::from(a.origin() & 0x1FFF_FFFF), bytes)],
    }
}

/// Through the library: a VM of two VCPUs running translated kernel-mode
/// work, made to split (`SplitPolicy::Always`), on two threads is split
/// and ends as in the deterministic mode.
#[test]
fn a_two_vcpu_vm_is_split_and_ends_as_deterministically() {
    let _ = splits_and_ends_as_deterministically(&kernel_mode_smp(20), SplitPolicy::Always);
}

/// The same kernel-mode loops run by the engine (`exec=direct`), which a
/// split VM runs outside its lock (docs/parallel.md, "Kernel-mode work off
/// the lock"): split by default as with `Always`, and 20 runs on two
/// threads each end with the deterministic run's memory and each VCPU's
/// result registers.
#[test]
fn kernel_mode_work_in_the_engine_is_split_and_ends_as_deterministically_20_times() {
    let image = kernel_mode_smp(200);
    let (det_ram, det_regs, none, [engine, guest]) =
        two_vcpu_run(&image, Exec::Direct, None, SplitPolicy::Always);
    assert_eq!(none, None);
    assert_eq!(det_regs[1][2], 1, "VCPU 1 never ran: {det_regs:x?}");
    // The engine ran the loops, not direct execution.
    assert!(
        engine * 10 > guest * 9,
        "{engine} of {guest} instructions in the engine"
    );
    for i in 0..20 {
        let policy = [SplitPolicy::Always, SplitPolicy::Auto][i % 2];
        let (ram, regs, batches, _) = two_vcpu_run(&image, Exec::Direct, Some(2), policy);
        let (all, split) = batches.unwrap();
        assert!(
            split > 0 && split + 2 >= all,
            "run {i} ({policy:?}): {split} of {all} batches split"
        );
        assert_eq!(regs, det_regs, "run {i}: the VCPUs' results differ");
        assert!(ram == det_ram, "run {i}: the VM's memory differs");
    }
}

/// By default (`SplitPolicy::Auto`) the same kernel-mode VM, translated
/// (the default `exec`), stays on one thread: translated code runs under
/// the VM's lock, so its VCPUs would only take turns at it
/// (docs/parallel.md, "Which VMs are split"); and `Never` never splits
/// even the directly run one.
#[test]
fn a_vm_of_monitor_work_is_not_split_by_default() {
    let image = kernel_mode_smp(1000);
    let (det_ram, det_regs, _, _) = two_vcpu_run(&image, Exec::Adaptive, None, SplitPolicy::Auto);
    let (ram, regs, batches, _) = two_vcpu_run(&image, Exec::Adaptive, Some(2), SplitPolicy::Auto);
    let (all, split) = batches.unwrap();
    // At most its first batch with both VCPUs, before anything is measured.
    assert!(all >= 5 && split <= 1, "{split} of {all} batches split");
    assert_eq!(regs, det_regs);
    assert!(ram == det_ram, "the VM's memory differs between the modes");
    let image = sim::workload::windowed_mixed_integer_smp(50, 2).unwrap();
    let (_, _, batches, _) = two_vcpu_run(&image, Exec::Adaptive, Some(2), SplitPolicy::Never);
    assert_eq!(batches.map(|b| b.1), Some(0));
}

/// The same with the work in the window (supervisor mode, run directly,
/// outside the VM's lock): split by default, both VCPUs' loops really ran
/// in parallel.
#[test]
fn a_two_vcpu_vm_running_directly_is_split_and_ends_as_deterministically() {
    let image = sim::workload::windowed_mixed_integer_smp(200, 2).unwrap();
    let [engine, guest] = splits_and_ends_as_deterministically(&image, SplitPolicy::Auto);
    // The engine runs only the boot stub and the exits' emulation.
    assert!(
        engine * 1000 < guest,
        "{engine} of {guest} instructions in the engine"
    );
}

/// `--gdb` needs the deterministic mode. (`--at` is refused with `--vm`
/// in either mode; tests/parallel.rs checks it with `--parallel` on the
/// bare machine.)
#[test]
fn gdb_with_the_monitor_in_parallel_is_refused_in_one_line() {
    let img = kit_path("hello.elf");
    let o = run(&["run", "--vm", &img, "--parallel", "--gdb", "0"]);
    refused_in_one_line(&o, &["--gdb needs the deterministic mode"]);
}

/// A bare-metal integer workload as a VM image (kseg0 code: the engine or
/// the translator runs it).
fn integer_vm(name: &str, passes: u32) -> VmConfig {
    let a = sim::workload::mixed_integer(0x8000_1000, passes);
    let bytes = a.bytes().unwrap();
    let image = sim::loader::Image {
        entry: i64::from(a.origin() as i32) as u64,
        segments: vec![(u64::from(a.origin() & 0x1FFF_FFFF), bytes)],
    };
    VmConfig::new(name, image, 8 << 20)
}

/// Each VM's end and instructions, and each VM's memory, after a run of
/// `vms` integer VMs on `pcpus` CPUs and `threads` threads.
fn integer_run(vms: usize, pcpus: usize, threads: Option<usize>) -> Vec<(VmEnd, u64, Vec<u8>)> {
    let mut m = Monitor::new(MonitorConfig {
        pcpus,
        max_cycles: Some(2_000_000_000),
        vms: (0..vms)
            .map(|i| integer_vm(&format!("vm{i}"), 20))
            .collect(),
        ..MonitorConfig::default()
    })
    .unwrap();
    m.set_parallel(threads);
    assert_eq!(m.parallel_threads(), threads.map(|t| t.min(pcpus)));
    assert_eq!(m.run(), MonitorExit::AllEnded);
    let stats = m.vm_stats();
    m.vms
        .iter()
        .zip(stats)
        .map(|(vm, st)| {
            let mut ram = Vec::new();
            for page in 0..(vm.pmap.size() >> 12) {
                let ma = vm
                    .pmap
                    .translate(monitor::mem::GuestPhys(page << 12))
                    .unwrap();
                ram.extend(m.machine.bus.read_bytes(ma.0, 4096).unwrap());
            }
            (vm.end.clone().unwrap(), st.guest_insns, ram)
        })
        .collect()
}

/// Through the library: one-VCPU VMs retire exactly the same instructions
/// and leave exactly the same memory in both modes, on 1 to 8 threads.
#[test]
fn integer_vms_end_the_same_in_both_modes() {
    for (vms, pcpus) in [(1, 1), (2, 2), (5, 2), (8, 4)] {
        let det = integer_run(vms, pcpus, None);
        assert!(det.iter().all(|r| r.0 == VmEnd::Halted(0)));
        for threads in [1, 2, 8] {
            let par = integer_run(vms, pcpus, Some(threads));
            assert!(par == det, "{vms} VMs on {pcpus} CPUs, {threads} threads");
        }
    }
}

/// More VMs than CPUs (docs/parallel.md, "VMs taking turns"): the threads
/// switch the CPUs between their VMs at slice ends themselves, so a batch
/// is not cut at every slice's end (a tenth of a batch), and the VMs still
/// take turns: each ends as deterministically, having been switched in
/// and out many times.
#[test]
fn more_vms_than_cpus_take_turns_inside_batches() {
    let config = MonitorConfig::default();
    let new = || {
        Monitor::new(MonitorConfig {
            pcpus: 2,
            max_cycles: Some(2_000_000_000),
            vms: (0..5).map(|i| integer_vm(&format!("vm{i}"), 200)).collect(),
            ..MonitorConfig::default()
        })
        .unwrap()
    };
    let mut det = new();
    assert_eq!(det.run(), MonitorExit::AllEnded);
    let mut par = new();
    par.set_parallel(Some(2));
    par.trace.enabled = true;
    assert_eq!(par.run(), MonitorExit::AllEnded);
    let slices = par.now() / config.slice;
    let (batches, _) = par.parallel_batches().unwrap();
    assert!(
        batches * 4 < slices,
        "{batches} batches for {slices} slices of 2 CPUs"
    );
    let switches = |v: usize| {
        par.trace
            .records
            .iter()
            .filter(|r| matches!(r.event, MonEvent::Switch { to_vm, .. } if to_vm == v))
            .count()
    };
    for v in 0..5 {
        assert!(switches(v) > 10, "vm{v} seated {} times", switches(v));
    }
    let insns = |m: &Monitor| -> Vec<u64> { m.vm_stats().iter().map(|s| s.guest_insns).collect() };
    assert_eq!(insns(&par), insns(&det));
    assert!(par.vms.iter().all(|vm| vm.end == Some(VmEnd::Halted(0))));
}

/// Runs `m` until VM 0 ends; returns the machine time then and how many
/// boundaries of the main thread (`run_quantum` calls) it took.
fn until_vm0_ends(m: &mut Monitor) -> (u64, u64) {
    let mut calls = 0;
    while m.vms[0].end.is_none() {
        assert_eq!(m.run_quantum(), None, "vm0 has not ended yet");
        calls += 1;
    }
    (m.now(), calls)
}

/// Batches (docs/parallel.md): two VMs that need nothing from the machine
/// run many quanta per boundary of the main thread, and a VM that halts
/// cuts its batch: on one thread, which runs both VMs quantum by quantum,
/// the boundary comes at most one quantum after the deterministic mode's.
/// Both VMs then end as they do there.
#[test]
fn batches_run_many_quanta_and_a_halt_cuts_them() {
    let quantum = MonitorConfig::default().quantum;
    let new = || {
        Monitor::new(MonitorConfig {
            pcpus: 2,
            max_cycles: Some(2_000_000_000),
            vms: vec![integer_vm("vm0", 20), integer_vm("vm1", 60)],
            ..MonitorConfig::default()
        })
        .unwrap()
    };
    let mut det = new();
    let (det_halt, det_calls) = until_vm0_ends(&mut det);
    assert_eq!(det_calls, det_halt / quantum, "one quantum a call");
    assert_eq!(det.run(), MonitorExit::AllEnded);
    for threads in [1, 2] {
        let mut par = new();
        par.set_parallel(Some(threads));
        let (halt, calls) = until_vm0_ends(&mut par);
        assert!(
            calls * 20 < det_calls,
            "{threads} threads: {calls} boundaries against {det_calls}"
        );
        if threads == 1 {
            assert!(
                (det_halt..=det_halt + quantum).contains(&halt),
                "halted at {det_halt} deterministically, boundary at {halt}"
            );
        }
        assert_eq!(par.run(), MonitorExit::AllEnded);
        let insns =
            |m: &Monitor| -> Vec<u64> { m.vm_stats().iter().map(|s| s.guest_insns).collect() };
        assert_eq!(insns(&par), insns(&det), "{threads} threads");
        assert!(par.vms.iter().all(|vm| vm.end == Some(VmEnd::Halted(0))));
    }
}

/// `--split` takes auto, always or never, and only with the monitor's VMs.
#[test]
fn a_bad_split_policy_is_refused_in_one_line() {
    let img = kit_path("hello.elf");
    let o = run(&["run", "--vm", &img, "--parallel", "--split", "sometimes"]);
    refused_in_one_line(&o, &["give auto, always or never"]);
    let o = run(&["run", &img, "--parallel", "--split", "never"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--split is for the monitor's VMs"), "{err}");
}
