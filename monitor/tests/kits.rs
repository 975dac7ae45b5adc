//! The committed guest-kit images under the monitor: the same image that
//! runs natively runs in a VM, with the same console output.

#![allow(clippy::panic, clippy::unwrap_used)]

use std::path::PathBuf;

use monitor::{Monitor, MonitorConfig, MonitorExit, VmConfig, VmEnd};

fn image(name: &str) -> sim::loader::Image {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../guest-kits/images")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    sim::loader::load(&bytes, 32 << 20)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .0
}

fn native(img: &sim::loader::Image) -> (Vec<u8>, sim::Exit) {
    native_on(img, 1)
}

fn native_on(img: &sim::loader::Image, ncpus: usize) -> (Vec<u8>, sim::Exit) {
    let mut m = sim::Machine::new(
        sim::MachineConfig {
            ncpus,
            max_cycles: Some(500_000_000),
            ..sim::MachineConfig::default()
        },
        sim::dev::Board::new(ncpus),
    );
    assert!(img.load_into(&mut m));
    let exit = m.run();
    (m.take_console(), exit)
}

fn virtualized(img: &sim::loader::Image) -> (Vec<u8>, Option<VmEnd>, Monitor) {
    virtualized_on(img, 1, 1)
}

fn virtualized_on(
    img: &sim::loader::Image,
    vcpus: usize,
    pcpus: usize,
) -> (Vec<u8>, Option<VmEnd>, Monitor) {
    let mut vm = VmConfig::new("kit", img.clone(), 32 << 20);
    vm.vcpus = vcpus;
    // These tests count the traps of trap-and-emulate (translation.rs runs
    // the kits under every policy).
    vm.exec = monitor::bt::Exec::Direct;
    let mut m = Monitor::new(MonitorConfig {
        pcpus,
        max_cycles: Some(500_000_000),
        vms: vec![vm],
        ..MonitorConfig::default()
    })
    .unwrap();
    assert_eq!(m.run(), MonitorExit::AllEnded);
    (m.take_console(0), m.vms[0].end.clone(), m)
}

/// `hello` is a KSEG0 kernel, not relinked into the window: under the
/// monitor it runs entirely in the emulation engine, slower but the same.
#[test]
fn hello_runs_natively_and_under_the_monitor_with_the_same_output() {
    let img = image("hello.elf");
    let (out, exit) = native(&img);
    assert_eq!(exit, sim::Exit::Halted { status: 0 });
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("hello: all four exceptions handled, halting with 0"),
        "{text}"
    );
    let (vout, end, m) = virtualized(&img);
    assert_eq!(end, Some(VmEnd::Halted(0)));
    assert_eq!(String::from_utf8_lossy(&vout), text);
    assert!(m.vm_stats()[0].engine_insns > 1000, "ran in the engine");
}

#[test]
fn console_and_timer_kits_run_under_the_monitor() {
    for name in ["console.elf", "timer.elf"] {
        let img = image(name);
        let (out, exit) = native(&img);
        assert_eq!(exit, sim::Exit::Halted { status: 0 }, "{name} natively");
        let (vout, end, _) = virtualized(&img);
        assert_eq!(end, Some(VmEnd::Halted(0)), "{name} under the monitor");
        assert_eq!(
            String::from_utf8_lossy(&vout),
            String::from_utf8_lossy(&out),
            "{name}"
        );
    }
}

/// The multiprocessor kits in a VM of 1, 2 and 4 VCPUs on 1 and 2 physical
/// CPUs print what the bare machine with as many CPUs prints (with one CPU
/// the kits refuse to run, in the same words). More VCPUs than physical
/// CPUs means VCPU switches between an LL and its SC, which must fail the
/// SC: smp's count is exact only if they do.
#[test]
fn mp_and_smp_kits_run_on_any_number_of_vcpus_and_cpus() {
    for name in ["mp.elf", "smp.elf"] {
        let img = image(name);
        for vcpus in [1, 2, 4] {
            let (out, exit) = native_on(&img, vcpus);
            let status = if vcpus == 1 {
                3 - u32::from(name == "smp.elf")
            } else {
                0
            };
            assert_eq!(
                exit,
                sim::Exit::Halted { status },
                "{name} natively on {vcpus}"
            );
            let text = String::from_utf8_lossy(&out).into_owned();
            if name == "smp.elf" && vcpus > 1 {
                let count = format!(
                    "{vcpus} CPUs x 100000 LL/SC increments = {}",
                    vcpus * 100_000
                );
                assert!(text.contains(&count), "{text}");
            }
            for pcpus in [1, 2] {
                let (vout, end, _) = virtualized_on(&img, vcpus, pcpus);
                let what = format!("{name}, {vcpus} VCPUs on {pcpus} CPUs");
                assert_eq!(end, Some(VmEnd::Halted(status)), "{what}");
                assert_eq!(String::from_utf8_lossy(&vout), text, "{what}");
            }
        }
    }
}
