//! The limits of a run, end to end: guest memory stops at the device
//! window, machine memory under the monitor has a bound and is checked
//! against the host, outputs never overwrite inputs, and the run settings
//! apply under the monitor or are refused. Every refusal is one line and
//! exit status 2; every run that must be refused carries a cycle limit, so
//! a regression fails instead of hanging.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{images, refused_in_one_line, run, text};
use sim::isa::asm::Asm;
use sim::isa::{Op, Reg};

/// A scratch directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("disco-limits-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn hello() -> String {
    images().join("hello.elf").to_str().unwrap().to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Asserts a refusal: exit status 2, one line on stderr containing every
/// one of `says`, nothing from the guest.
fn refused(o: &Output, says: &[&str]) {
    refused_in_one_line(o, says);
    assert!(!text(&o.stdout).contains("Hello"), "the guest never ran");
}

/// More than 256M of guest memory would cover the console and halt
/// registers at 0x10000000 (the guest would run on, silent): refused
/// natively and per VM, from a flag, a `--vm` spec and a config file.
#[test]
fn guest_memory_above_the_device_window_is_refused() {
    let dir = Scratch::new("window");
    let limit = ["--max-cycles", "50000000"];
    let flag = run(&[&["run", &hello(), "--mem", "512M"], &limit[..]].concat());
    refused(&flag, &["--mem", "256M", "0x10000000"]);
    let spec = format!("{},mem=257M", hello());
    let vm = run(&[&["run", "--vm", &spec], &limit[..]].concat());
    refused(&vm, &["--vm", "mem=257M", "0x10000000"]);
    let native = dir.path("native.toml");
    std::fs::write(&native, format!("image = {:?}\nmem = \"512M\"\n", hello())).unwrap();
    let o = run(&[&["run", "--config", s(&native)], &limit[..]].concat());
    refused(&o, &["native.toml: mem", "256M"]);
    let vms = dir.path("vms.toml");
    std::fs::write(
        &vms,
        format!("[[vm]]\nimage = {:?}\nmem = \"512M\"\n", hello()),
    )
    .unwrap();
    let o = run(&[&["run", "--config", s(&vms)], &limit[..]].concat());
    refused(&o, &["vms.toml: vm[0]: mem", "256M"]);
    let float = dir.path("float.toml");
    std::fs::write(&float, format!("image = {:?}\nmem = 1.5\n", hello())).unwrap();
    refused(
        &run(&["run", "--config", s(&float)]),
        &["mem", "floating point", "a whole number of bytes"],
    );
    // 256M itself is fine: the guest runs and halts.
    let o = run(&[&["run", &hello(), "--mem", "256M"], &limit[..]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

/// Eight VMs of 32M take 256M of machine memory plus eight commpages,
/// past the device window of a bare machine: under the monitor that is
/// fine. A thousand are refused with what they need, before any image is
/// loaded or the host is asked for 32 GB.
#[test]
fn machine_memory_is_the_vms_plus_commpages_within_a_bound() {
    let spec = format!("{},mem=32M", hello());
    let mut args = vec!["run", "--max-cycles", "50000000"];
    for _ in 0..8 {
        args.extend(["--vm", spec.as_str()]);
    }
    let o = run(&args);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    assert_eq!(out.matches("halted with status 0").count(), 8, "{out}");
    for _ in 8..1000 {
        args.extend(["--vm", spec.as_str()]);
    }
    refused(&run(&args), &["1000 VMs need 32772000K", "at most 4G"]);
    // Checked before any image is read: these do not exist.
    let missing = "missing.elf,mem=32M";
    let mut args = vec!["run"];
    for _ in 0..1000 {
        args.extend(["--vm", missing]);
    }
    refused(&run(&args), &["1000 VMs need 32772000K"]);
}

/// Under `--vm`, `--mem` is the machine's memory: VMs that do not fit in
/// it are refused with what they need; enough is fine.
#[test]
fn mem_under_the_monitor_sets_the_machine_memory() {
    let spec = format!("{},mem=32M", hello());
    let args = |mem: &'static str| {
        run(&[
            "run",
            "--mem",
            mem,
            "--vm",
            &spec,
            "--vm",
            &spec,
            "--max-cycles",
            "50000000",
        ])
    };
    refused(
        &args("64M"),
        &[
            "--mem: 2 VMs need 65544K",
            "commpage",
            "more than the machine's 64M",
        ],
    );
    let o = args("65544K");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    refused(&args("8G"), &["--mem", "at most 4G"]);
}

/// A guest that halts with a value read from a device: the mp device's
/// random register (`random`) or the rtc's seconds (`clock`).
fn device_reader(dir: &Scratch, what: &str) -> PathBuf {
    let mut a = Asm::new(0x8001_0000);
    if what == "random" {
        a.li(Reg::T0, 0xB100_0000);
        a.mem(Op::Lw, Reg::V0, 0x80, Reg::T0);
    } else {
        a.li(Reg::T0, 0xB500_0000);
        a.mem(Op::Sw, Reg::ZERO, 0, Reg::T0);
        a.mem(Op::Lw, Reg::V0, 0x10, Reg::T0);
    }
    a.li(Reg::K1, 0xB000_0010);
    a.mem(Op::Sw, Reg::V0, 0, Reg::K1);
    a.nop();
    let path = dir.path(&format!("{what}.elf"));
    std::fs::write(&path, common::elf(&a, 0)).unwrap();
    path
}

/// `--seed` and `--epoch` reach every VM's devices, as they reach the bare
/// machine's (the values are the documented xorshift64's first, and the
/// epoch itself); `[numa]`, which describes the bare machine, is refused.
#[test]
fn seed_and_epoch_apply_to_every_vm_and_numa_is_refused() {
    let dir = Scratch::new("seed");
    let (random, clock) = (device_reader(&dir, "random"), device_reader(&dir, "clock"));
    let vms = |extra: &[&str]| {
        let (r, c) = (
            format!("{},name=r", s(&random)),
            format!("{},name=c", s(&clock)),
        );
        let o = run(&[&["run", "--vm", &r, "--vm", &c], extra].concat());
        text(&o.stdout)
    };
    let plain = vms(&[]);
    assert!(
        plain.contains("r: halted with status 3936936935"),
        "seed 0: {plain}"
    );
    assert!(
        plain.contains("c: halted with status 0;"),
        "epoch 0: {plain}"
    );
    let set = vms(&["--seed", "7", "--epoch", "1000000"]);
    assert!(
        set.contains("r: halted with status 3280921031"),
        "seed 7: {set}"
    );
    assert!(set.contains("c: halted with status 1000000;"), "{set}");
    let cfg = dir.path("numa.toml");
    std::fs::write(&cfg, "cpus = 2\n[numa]\nnodes = 2\n").unwrap();
    let spec = format!("{},name=r", s(&random));
    refused(
        &run(&["run", "--config", s(&cfg), "--vm", &spec]),
        &["numa.toml: numa", "bare machine"],
    );
}

/// A console file or the trace file naming an input (however spelled) or
/// each other is refused before anything is written; the input is intact.
#[test]
fn outputs_never_overwrite_inputs() {
    let dir = Scratch::new("outputs");
    let elf = dir.path("a.elf");
    std::fs::copy(images().join("hello.elf"), &elf).unwrap();
    let disk = dir.path("d.img");
    std::fs::copy(images().join("disk.img"), &disk).unwrap();
    let before = (std::fs::read(&elf).unwrap(), std::fs::read(&disk).unwrap());
    let spelled = dir.0.join(".").join("a.elf");
    let vm = |extra: &str| format!("{}{extra}", s(&elf));
    for (args, says) in [
        (
            vec!["--vm".to_string(), vm(&format!(",console={}", s(&spelled)))],
            "console file",
        ),
        (
            vec![
                "--vm".to_string(),
                vm(&format!(",disk={}", s(&disk))),
                "--trace".into(),
                "exc".into(),
                "--trace-file".into(),
                s(&disk).into(),
            ],
            "trace file",
        ),
        (
            vec![
                s(&elf).into(),
                "--trace".into(),
                "exc".into(),
                "--trace-file".into(),
                s(&spelled).into(),
            ],
            "trace file",
        ),
        (
            vec![
                "--vm".into(),
                vm(&format!(",console={}", s(&dir.path("out.txt")))),
                "--trace-file".into(),
                s(&dir.0.join(".").join("out.txt")).into(),
            ],
            "is also the console file",
        ),
    ] {
        let mut full = vec!["run", "--max-cycles", "50000000"];
        full.extend(args.iter().map(String::as_str));
        refused(&run(&full), &[says, "refusing to overwrite"]);
    }
    assert_eq!(
        (std::fs::read(&elf).unwrap(), std::fs::read(&disk).unwrap()),
        before
    );
}

/// Relative paths in a config file are the file's: a config beside its
/// image runs from anywhere.
#[test]
fn config_paths_are_relative_to_the_file() {
    let dir = Scratch::new("relative");
    std::fs::copy(images().join("hello.elf"), dir.path("prog.elf")).unwrap();
    let cfg = dir.path("run.toml");
    std::fs::write(&cfg, "image = \"prog.elf\"\n").unwrap();
    let o = run(&["run", "--config", s(&cfg)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("Hello"), "{}", text(&o.stdout));
    std::fs::write(&cfg, "[[vm]]\nimage = \"prog.elf\"\nconsole = \"vm.txt\"\n").unwrap();
    let o = run(&["run", "--config", s(&cfg)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let console = std::fs::read_to_string(dir.path("vm.txt")).unwrap();
    assert!(console.contains("Hello"), "{console}");
    // The config file is an input too.
    std::fs::write(
        &cfg,
        "[[vm]]\nimage = \"prog.elf\"\nconsole = \"run.toml\"\n",
    )
    .unwrap();
    refused(
        &run(&["run", "--config", s(&cfg)]),
        &["console file", "is the config file"],
    );
    assert!(std::fs::read_to_string(&cfg).unwrap().contains("[[vm]]"));
}

/// VM names must be unique and not empty; a key given twice in a `--vm`
/// spec is refused.
#[test]
fn vm_names_and_spec_keys_are_checked() {
    let h = hello();
    for (specs, says) in [
        (
            vec![format!("{h},name=a"), format!("{h},name=a")],
            "\"a\" is already VM 0's",
        ),
        (
            vec![h.clone(), format!("{h},name=vm0")],
            "\"vm0\" is already VM 0's",
        ),
        (vec![format!("{h},name=")], "name= needs a name"),
        (vec![format!("{h},mem=8M,mem=16M")], "mem= is given twice"),
    ] {
        let mut args = vec!["run", "--max-cycles", "50000000"];
        for spec in &specs {
            args.extend(["--vm", spec.as_str()]);
        }
        refused(&run(&args), &[says]);
    }
}

/// `--max-cycles` stops at the limit, not at the next quantum boundary,
/// and says so truthfully, natively and under the monitor.
#[test]
fn the_cycle_limit_is_exact() {
    let o = run(&["run", &hello(), "--max-cycles", "1"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        text(&o.stderr).contains("after 1 cycles"),
        "{}",
        text(&o.stderr)
    );
    let o = run(&["run", "--vm", &hello(), "--max-cycles", "12345"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        text(&o.stderr).contains("after 12345 cycles"),
        "{}",
        text(&o.stderr)
    );
    assert!(
        text(&o.stdout).contains(" 12345 simulated cycles"),
        "{}",
        text(&o.stdout)
    );
}
