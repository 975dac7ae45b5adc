//! VMs built from specifications by the library alone (`monitor::build`),
//! as `disco run --vm …` builds them, with no command line involved: the
//! disk file opened once and shared, console files created, and every
//! refusal a typed error carrying the CLI's one line.

#![allow(clippy::panic, clippy::unwrap_used)]

use std::path::PathBuf;

use monitor::build::{self, BuildError, Built, Setup};
use monitor::spec::VmSpec;
use monitor::{MonitorConfig, MonitorError, MonitorExit, VmEnd};

fn kit(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../guest-kits/images")
        .join(name)
}

/// A fresh directory of this test process.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("disco-build-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn machine(pcpus: usize) -> Setup<'static> {
    Setup {
        monitor: MonitorConfig {
            pcpus,
            max_cycles: Some(500_000_000),
            ..MonitorConfig::default()
        },
        ..Setup::default()
    }
}

fn refusal(specs: &[VmSpec], setup: Setup<'_>) -> BuildError {
    match build::build(specs, setup) {
        Ok(_) => panic!("{specs:?} were accepted"),
        Err(e) => e,
    }
}

/// Two VMs of the disk kit name the same disk file, one by a `--vm`
/// string, one built as a value. They get one image between them, run side
/// by side on two CPUs, each read the file's sectors and write and restore
/// sector 7 as their own; the file never changes.
#[test]
fn two_vms_built_from_specs_share_a_disk_and_run() {
    let dir = scratch("share");
    let (elf, disk) = (kit("disk.elf"), kit("disk.img"));
    let original = std::fs::read(&disk).unwrap();
    let console = dir.join("right.txt");
    let specs = [
        VmSpec::parse(&format!(
            "{},name=left,disk={}",
            elf.display(),
            disk.display()
        ))
        .unwrap(),
        VmSpec {
            name: Some("right".into()),
            disk: Some(disk.clone()),
            console: Some(console.clone()),
            ..VmSpec::new(&elf, "the right VM")
        },
    ];
    let configs = build::vm_configs(&specs, None).unwrap();
    let [left, right] = configs.as_slice() else {
        panic!("{} VMs", configs.len());
    };
    assert!(left.disk.is_some(), "disk= gives the VM a disk");
    // `DiskImage` equality is identity: one image, opened once.
    assert_eq!(left.disk, right.disk, "one disk image shared");

    let Built {
        monitor: mut m,
        consoles,
    } = build::build(&specs, machine(2)).unwrap();
    assert!(consoles[0].is_none());
    assert!(consoles[1].is_some());
    assert_eq!(std::fs::read(&console).unwrap(), b"", "created, empty");
    assert_eq!(m.run(), MonitorExit::AllEnded);
    for (v, name) in ["left", "right"].into_iter().enumerate() {
        assert_eq!(m.vms[v].name, name);
        assert_eq!(m.vms[v].end, Some(VmEnd::Halted(0)), "{name}");
        let out = String::from_utf8_lossy(&m.take_console(v)).into_owned();
        assert!(
            out.contains("disk: wrote sector 7 and read it back") && out.ends_with("disk: ok\n"),
            "{name}: {out}"
        );
    }
    assert_eq!(std::fs::read(&disk).unwrap(), original, "file untouched");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Each refusal comes before anything is written, and says what
/// `disco run` says.
#[test]
fn refusals_are_typed_and_write_nothing() {
    let dir = scratch("refuse");
    let hello = kit("hello.elf");
    let console = dir.join("out.txt");
    let with_console = |s: &str| VmSpec {
        console: Some(console.clone()),
        ..VmSpec::parse(s).unwrap()
    };
    let h = hello.display();

    let twice = [
        with_console(&format!("{h},name=a")),
        VmSpec::parse(&format!("{h},name=a")).unwrap(),
    ];
    let e = refusal(&twice, machine(1));
    assert!(matches!(e, BuildError::Names(_)), "{e:?}");
    let line = e.to_string();
    assert!(line.contains("the name \"a\" is already VM 0's"), "{line}");

    let small = Setup {
        monitor: MonitorConfig {
            machine_mem: Some(16 << 20),
            ..MonitorConfig::default()
        },
        ..Setup::default()
    };
    let e = refusal(&[with_console(&h.to_string())], small);
    assert!(
        matches!(&e, BuildError::Monitor(MonitorError::MachineMemory(p))
            if p.starts_with("the VM needs 32772K of machine memory")),
        "{e}"
    );

    // The run's own outputs (a trace file) are kept apart from the VMs'.
    let mut setup = machine(1);
    setup.writes = vec![("trace file", console.as_path())];
    let e = refusal(&[with_console(&h.to_string())], setup);
    let c = console.display();
    assert_eq!(
        e.to_string(),
        format!("the trace file {c} is also the console file {c} (the same file); refusing to overwrite it")
    );

    let onto_image = VmSpec {
        console: Some(hello.clone()),
        ..VmSpec::parse(&h.to_string()).unwrap()
    };
    let e = refusal(&[onto_image], machine(1));
    assert_eq!(
        e.to_string(),
        format!(
            "the console file {h} is the ELF image {h} (the same file); refusing to overwrite it"
        )
    );

    let missing = dir.join("no-such.img");
    let e = refusal(
        &[with_console(&format!("{h},disk={}", missing.display()))],
        machine(1),
    );
    assert!(
        matches!(&e, BuildError::Disk { path, .. } if path == &missing),
        "{e:?}"
    );
    let line = e.to_string();
    assert!(
        line.starts_with(&format!(
            "{}: cannot read the disk image: ",
            missing.display()
        )),
        "{line}"
    );

    let e = refusal(&[VmSpec::new(dir.join("none.elf"), "x")], machine(1));
    assert!(matches!(e, BuildError::ReadImage { .. }), "{e:?}");
    // Prepared VMs write nothing either; nor does a monitor refusing them.
    let prepared = build::prepare(&[with_console(&h.to_string())], &machine(1)).unwrap();
    assert!(!console.exists(), "prepared, not yet built");
    let e = match prepared.into_monitor(MonitorConfig {
        pcpus: 0,
        ..MonitorConfig::default()
    }) {
        Ok(_) => panic!("0 physical CPUs accepted"),
        Err(e) => e,
    };
    assert!(
        matches!(e, BuildError::Monitor(MonitorError::BadPcpus { pcpus: 0 })),
        "{e:?}"
    );
    assert!(!console.exists(), "nothing written by a refused build");
    std::fs::remove_dir_all(&dir).unwrap();
}
