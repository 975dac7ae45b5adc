//! `disco run` end to end on the board: the device kits print exactly the
//! output guest-kits/README.md documents, the config file and flags, the
//! disk image's protection, the halt status, and trace lines.

#![allow(clippy::panic, clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use common::{images, root, run, text};
use sim::isa::asm::Asm;
use sim::isa::{Op, Reg};

/// A scratch file path unique to this test process.
fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("disco-devices-{}-{name}", std::process::id()))
}

/// The first ```text block after the `### NAME` heading of the README.
fn expected_output(name: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("guest-kits/README.md")).unwrap();
    let heading = format!("### {name}");
    let start = readme
        .find(&heading)
        .unwrap_or_else(|| panic!("README has no section {heading}"));
    let rest = &readme[start..];
    let block = rest.find("```text\n").unwrap() + "```text\n".len();
    let end = rest[block..].find("```").unwrap();
    rest[block..block + end]
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn device_kits_print_exactly_the_documented_output() {
    let disk = scratch("kit-disk.img");
    std::fs::copy(images().join("disk.img"), &disk).unwrap();
    let disk = disk.to_str().unwrap().to_string();
    for (name, cpus, extra) in [
        ("hello.elf", "1", vec![]),
        ("console.elf", "1", vec![]),
        ("timer.elf", "1", vec![]),
        ("rtc.elf", "1", vec![]),
        ("disk.elf", "1", vec!["--disk", disk.as_str()]),
        ("mp.elf", "4", vec![]),
        ("smp.elf", "4", vec![]),
    ] {
        let img = images().join(name);
        let mut args = vec!["run", img.to_str().unwrap(), "--cpus", cpus];
        args.extend_from_slice(&extra);
        let o = run(&args);
        let out = text(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{name}: {out}{}", text(&o.stderr));
        // GXemul's own diagnostics (`[ ... ]`) are not part of the guest's output.
        let want: Vec<String> = expected_output(name)
            .into_iter()
            .filter(|l| !l.starts_with("[ "))
            .collect();
        let got: Vec<String> = out.lines().map(str::to_string).collect();
        assert_eq!(got, want, "{name}");
    }
    let _ = std::fs::remove_file(&disk);
}

/// A guest that fills the disk buffer with `fill`, writes it to sector 1,
/// and halts with the status register of the write (1 = success).
fn disk_writer(fill: u32) -> Vec<u8> {
    let mut a = Asm::new(0x8001_0000);
    write_sector_1(&mut a, fill);
    a.mem(Op::Lw, Reg::V0, 0x30, Reg::T9);
    halt_with_v0(&mut a);
    common::elf(&a, 0)
}

/// Emits: write v0 to the halt register.
fn halt_with_v0(a: &mut Asm) {
    a.li(Reg::K1, 0xB000_0010);
    a.mem(Op::Sw, Reg::V0, 0, Reg::K1);
    a.nop();
}

#[test]
fn the_disk_image_changes_only_with_disk_write() {
    let elf = scratch("writer.elf");
    std::fs::write(&elf, disk_writer(0xABCD_EF01)).unwrap();
    let disk = scratch("writer.img");
    let original: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
    std::fs::write(&disk, &original).unwrap();
    let (e, d) = (elf.to_str().unwrap(), disk.to_str().unwrap());
    let o = run(&["run", e, "--disk", d]);
    assert_eq!(o.status.code(), Some(1), "the write succeeded in memory");
    assert_eq!(std::fs::read(&disk).unwrap(), original, "file untouched");
    let o = run(&["run", e, "--disk", d, "--disk-write"]);
    assert_eq!(o.status.code(), Some(1));
    let now = std::fs::read(&disk).unwrap();
    assert_eq!(now.len(), original.len());
    assert_eq!(&now[..512], &original[..512]);
    assert_eq!(&now[512..516], &[0xAB, 0xCD, 0xEF, 0x01]);
    assert_eq!(&now[1024..], &original[1024..]);
    // A missing image is an error that names it; so is --disk-write alone.
    let o = run(&["run", e, "--disk", "/nonexistent/disk.img"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("/nonexistent/disk.img") && err.contains("disk image"),
        "{err}"
    );
    let o = run(&["run", e, "--disk-write"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--disk-write"));
    for p in [elf, disk] {
        let _ = std::fs::remove_file(p);
    }
}

/// Emits: fill the disk buffer with `fill`, write it to sector 1 (T9 is
/// left pointing at the disk).
fn write_sector_1(a: &mut Asm, fill: u32) {
    a.li(Reg::T9, 0xB300_0000);
    a.li(Reg::T0, fill);
    a.li(Reg::T1, 0);
    a.label("fill");
    a.r3(Op::Addu, Reg::T2, Reg::T9, Reg::T1);
    a.mem(Op::Sw, Reg::T0, 0x4000, Reg::T2);
    a.imm(Op::Addiu, Reg::T1, Reg::T1, 4);
    a.imm(Op::Slti, Reg::AT, Reg::T1, 512);
    a.bnez(Reg::AT, "fill");
    a.nop();
    a.li(Reg::T0, 512);
    a.mem(Op::Sw, Reg::T0, 0, Reg::T9);
    a.li(Reg::T0, 1);
    a.mem(Op::Sw, Reg::T0, 0x20, Reg::T9);
}

/// Emits: read sector 1, byte 3 of it into `rd`.
fn read_sector_1_byte_3(a: &mut Asm, rd: Reg) {
    a.li(Reg::T9, 0xB300_0000);
    a.li(Reg::T0, 512);
    a.mem(Op::Sw, Reg::T0, 0, Reg::T9);
    a.mem(Op::Sw, Reg::ZERO, 0x20, Reg::T9);
    a.mem(Op::Lbu, rd, 0x4003, Reg::T9);
}

/// Two VMs boot with the same disk file. The writer writes sector 1 at
/// once; the reader waits, reads sector 1 (it must still see the file's
/// byte 3), writes its own sector 1 and reads that back. The reader's halt
/// status is the sum of the two bytes; the file itself never changes.
#[test]
fn vm_disks_share_the_image_and_keep_their_writes_apart() {
    let mut r = Asm::new(0x8001_0000);
    r.li(Reg::T5, 20_000);
    r.label("wait");
    r.imm(Op::Addiu, Reg::T5, Reg::T5, -1);
    r.bnez(Reg::T5, "wait");
    r.nop();
    read_sector_1_byte_3(&mut r, Reg::S0);
    write_sector_1(&mut r, 0x1234_5655);
    read_sector_1_byte_3(&mut r, Reg::S1);
    r.r3(Op::Addu, Reg::V0, Reg::S0, Reg::S1);
    halt_with_v0(&mut r);
    let (welf, relf, disk) = (scratch("vmw.elf"), scratch("vmr.elf"), scratch("vm.img"));
    std::fs::write(&welf, disk_writer(0xABCD_EF77)).unwrap();
    std::fs::write(&relf, common::elf(&r, 0)).unwrap();
    let original: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
    std::fs::write(&disk, &original).unwrap();
    let d = disk.to_str().unwrap();
    let writer = format!("{},name=writer,disk={d}", welf.display());
    let reader = format!("{},name=reader,disk={d}", relf.display());
    // One physical CPU: the writer (first in the run queue) halts within
    // its first quantum, before the reader's wait is over.
    let o = run(&["run", "--cpus", "1", "--vm", &writer, "--vm", &reader]);
    let out = text(&o.stdout);
    assert!(out.contains("writer: halted with status 1;"), "{out}");
    // 3 (the file's byte 515) + 0x55 (its own write); 0x77 + 0x55 had the
    // writer's sector leaked into it.
    assert!(out.contains("reader: halted with status 88;"), "{out}");
    assert_eq!(std::fs::read(&disk).unwrap(), original, "file untouched");
    // --disk is the bare machine's; a VM without disk= has none.
    let o = run(&["run", "--vm", &welf.display().to_string(), "--disk", d]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("disk=FILE"), "{}", text(&o.stderr));
    for p in [welf, relf, disk] {
        let _ = std::fs::remove_file(p);
    }
}

/// `console=FILE` sends one VM's console to a file, unprefixed; the other
/// VM's lines still go to stdout behind its name.
#[test]
fn a_vm_console_can_go_to_a_file() {
    let hello = images().join("hello.elf");
    let file = scratch("left-console.txt");
    let left = format!("{},name=left,console={}", hello.display(), file.display());
    let right = format!("{},name=right", hello.display());
    let o = run(&["run", "--vm", &left, "--vm", &right]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let want: Vec<String> = expected_output("hello.elf")
        .into_iter()
        .filter(|l| !l.starts_with("[ "))
        .collect();
    let in_file = std::fs::read_to_string(&file).unwrap();
    assert_eq!(in_file.lines().collect::<Vec<_>>(), want);
    let out = text(&o.stdout);
    let right_lines: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("[right] "))
        .collect();
    assert_eq!(right_lines, want);
    assert!(!out.contains("[left]"), "{out}");
    // Two VMs cannot share a console file.
    let twice = format!("{},console={}", hello.display(), file.display());
    let o = run(&["run", "--vm", &twice, "--vm", &twice]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("is also the console file"),
        "{}",
        text(&o.stderr)
    );
    // A console file that cannot be created is an error naming it.
    let bad = format!("{},console=/nonexistent/dir/c.txt", hello.display());
    let o = run(&["run", "--vm", &bad]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("/nonexistent/dir/c.txt"),
        "{}",
        text(&o.stderr)
    );
    let _ = std::fs::remove_file(&file);
}

#[test]
fn the_halt_value_is_the_exit_status() {
    let mut a = Asm::new(0x8001_0000);
    a.li(Reg::T0, 42);
    a.li(Reg::K1, 0xB000_0010);
    a.mem(Op::Sb, Reg::T0, 0, Reg::K1);
    a.nop();
    let elf = scratch("halt42.elf");
    std::fs::write(&elf, common::elf(&a, 0x100)).unwrap();
    let o = run(&["run", elf.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(42), "{}", text(&o.stderr));
    let _ = std::fs::remove_file(elf);
}

#[test]
fn the_sample_config_runs_and_flags_override_it() {
    let o = run(&["run", "--config", "docs/machine.toml"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    assert!(out.contains("smp: ok"), "{out}");
    assert!(
        out.contains("cpu3:") && out.contains("total:"),
        "stats = true: {out}"
    );
    // The file says smp.elf on 4 CPUs; flags run mp.elf on 2.
    let mp = images().join("mp.elf");
    let o = run(&[
        "run",
        "--config",
        "docs/machine.toml",
        mp.to_str().unwrap(),
        "--cpus",
        "2",
    ]);
    let out = text(&o.stdout);
    assert!(
        out.contains("mp: ncpus 2") && out.contains("mp: ok"),
        "{out}"
    );
}

#[test]
fn config_errors_name_the_file_and_the_key() {
    let cfg = scratch("bad.toml");
    for (body, want) in [
        ("cpus = 2\ncpu = 4\n", "cpu"),
        ("cpus = \"two\"\n", "cpus"),
        ("cpus = 65\n", "cpus"),
        ("mem = \"lots\"\n", "mem"),
        (
            "cpus = 4\n[numa]\ncpus_per_node = 3\n",
            "numa.cpus_per_node",
        ),
        ("[numa]\nspeed = 1\n", "speed"),
        ("dump_regs = \"xml\"\n", "dump_regs"),
        ("[[vm]]\nimage = \"a.elf\"\ncolour = 1\n", "colour"),
    ] {
        let hello = images().join("hello.elf");
        std::fs::write(
            &cfg,
            format!("image = {:?}\n{body}", hello.to_str().unwrap()),
        )
        .unwrap();
        let o = run(&["run", "--config", cfg.to_str().unwrap()]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{body:?}: {err}");
        assert!(err.contains(want), "{body:?}: expected {want:?} in {err}");
        assert_eq!(err.lines().count(), 1, "{body:?}: one line: {err}");
        assert!(!err.contains("panicked"));
    }
    let _ = std::fs::remove_file(cfg);
}

#[test]
fn trace_lines_name_cycle_cpu_mode_and_symbol() {
    let hello = images().join("hello.elf");
    let o = run(&[
        "run",
        hello.to_str().unwrap(),
        "--trace",
        "insn,exc,tlb,mmio",
        "--max-cycles",
        "5000000",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let err = text(&o.stderr);
    let first = err.lines().next().unwrap();
    assert!(
        first.trim_start().split(' ').nth(1) == Some("cpu0") && first.contains(" kernel "),
        "{first}"
    );
    assert!(first.contains("insn 0x80010000 <_start>"), "{first}");
    assert!(err.contains("exception Sys at"), "exceptions traced");
    assert!(err.contains("tlbwi TLB["), "TLB writes traced");
    assert!(
        err.contains("mmio write 1 bytes at 0x10000000: 0x48"),
        "console 'H'"
    );
    let o = run(&["run", hello.to_str().unwrap(), "--trace", "exc,nonsense"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("nonsense"));
}

#[test]
fn dump_regs_text_is_a_table() {
    let hello = images().join("hello.elf");
    let o = run(&["run", hello.to_str().unwrap(), "--dump-regs"]);
    let out = text(&o.stdout);
    assert!(out.contains("cpu0: pc 0x"), "{out}");
    assert!(out.contains("zero 0x0000000000000000"), "{out}");
    assert!(out.contains("status 0x"), "{out}");
}
