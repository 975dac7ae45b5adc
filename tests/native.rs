//! The `disco` binary end to end: the guest kits on the bare machine, bad
//! inputs, determinism, and the same images on GXemul when it is installed.

#![allow(clippy::panic, clippy::unwrap_used)]

mod common;

use std::process::{Command, Output, Stdio};

use common::{disco, images, kit, run, text};

fn stdout(o: &Output) -> String {
    text(&o.stdout)
}

#[test]
fn every_device_kit_passes_natively() {
    let tmp = std::env::temp_dir().join(format!("disco-disk-{}.img", std::process::id()));
    std::fs::copy(images().join("disk.img"), &tmp).unwrap();
    let disk = tmp.to_str().unwrap().to_string();
    for (name, cpus, extra, last) in [
        (
            "hello.elf",
            "1",
            vec![],
            "hello: all four exceptions handled, halting with 0",
        ),
        ("console.elf", "1", vec![], "console: ok"),
        ("timer.elf", "1", vec![], "timer: ok"),
        ("rtc.elf", "1", vec![], "rtc: ok"),
        ("disk.elf", "1", vec!["--disk", disk.as_str()], "disk: ok"),
        ("mp.elf", "4", vec![], "mp: ok"),
        ("smp.elf", "4", vec![], "smp: ok"),
    ] {
        let o = kit(name, cpus, &extra);
        let out = stdout(&o);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{name}: {out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(out.lines().last(), Some(last), "{name}:\n{out}");
    }
    // The image on the host is never modified.
    assert_eq!(
        std::fs::read(&tmp).unwrap(),
        std::fs::read(images().join("disk.img")).unwrap()
    );
    let _ = std::fs::remove_file(tmp);
}

#[test]
fn smp_counts_exactly_and_runs_are_identical() {
    let dir = std::env::temp_dir();
    let traces: Vec<Vec<u8>> = (0..2)
        .map(|i| {
            let t = dir.join(format!("disco-smp-{}-{i}.trace", std::process::id()));
            let o = kit(
                "smp.elf",
                "4",
                &[
                    "--trace",
                    "exc,irq,mmio",
                    "--trace-file",
                    t.to_str().unwrap(),
                ],
            );
            assert!(stdout(&o).contains("smp: 4 CPUs x 100000 LL/SC increments = 400000"));
            let bytes = std::fs::read(&t).unwrap();
            let _ = std::fs::remove_file(&t);
            bytes
        })
        .collect();
    assert!(traces[0].len() > 1000, "the trace has content");
    assert!(traces[0] == traces[1], "two runs gave different traces");
}

#[test]
fn dump_regs_json_is_one_object_per_cpu() {
    let o = kit("mp.elf", "4", &["--dump-regs=json"]);
    let objs: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objs.len(), 4);
    for (i, v) in objs.iter().enumerate() {
        assert_eq!(v["cpu"], i);
        assert_eq!(v["gpr"].as_array().unwrap().len(), 32);
        assert_eq!(v["gpr"][0], "0x0000000000000000");
        for k in ["status", "cause", "epc", "badvaddr", "entryhi", "count"] {
            assert!(v["cp0"][k].as_str().unwrap().starts_with("0x"), "{k}");
        }
    }
}

#[test]
fn a_runaway_guest_stops_at_the_cycle_limit() {
    let img = images().join("smp.elf");
    let o = run(&["run", img.to_str().unwrap(), "--max-cycles", "100000"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("100000 cycles"));
}

fn bad(bytes: &[u8], label: &str, expect: &str) {
    let path = std::env::temp_dir().join(format!("disco-bad-{label}-{}.elf", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let o = run(&["run", path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let _ = std::fs::remove_file(&path);
    assert_eq!(o.status.code(), Some(2), "{label}: {err}");
    assert!(
        err.contains(path.to_str().unwrap()),
        "{label}: the message names the file: {err}"
    );
    assert!(
        err.contains(expect),
        "{label}: expected {expect:?} in {err:?}"
    );
    assert_eq!(err.lines().count(), 1, "{label}: one line: {err}");
    assert!(!err.contains("panicked"), "{label}: {err}");
}

#[test]
fn bad_images_are_refused_with_one_line_naming_the_problem() {
    let good = std::fs::read(images().join("hello.elf")).unwrap();
    bad(b"#!/bin/sh\n", "text", "not an ELF file");
    bad(&good[..30], "short", "truncated ELF header");
    let mut g = good.clone();
    g[4] = 2;
    bad(&g, "class", "is not ELF32");
    let mut g = good.clone();
    g[5] = 1;
    bad(&g, "endian", "little-endian");
    let mut g = good.clone();
    g[18..20].copy_from_slice(&62u16.to_be_bytes());
    bad(&g, "machine", "is not MIPS");
    let mut g = good.clone();
    g[24..28].copy_from_slice(&0x9000_0000u32.to_be_bytes());
    bad(&g, "entry", "entry point");
    // Program headers start at e_phoff; move the first loadable segment's
    // physical address past RAM, and truncate the file inside a segment.
    let phoff = u32::from_be_bytes(good[28..32].try_into().unwrap()) as usize;
    let phnum = u16::from_be_bytes(good[44..46].try_into().unwrap()) as usize;
    let load = (0..phnum)
        .map(|i| phoff + i * 32)
        .find(|&o| good[o..o + 4] == [0, 0, 0, 1])
        .unwrap();
    let mut g = good.clone();
    g[load + 12..load + 16].copy_from_slice(&0x7000_0000u32.to_be_bytes());
    bad(&g, "outside", "outside RAM");
    let loads: Vec<usize> = (0..phnum)
        .map(|i| phoff + i * 32)
        .filter(|&o| good[o..o + 4] == [0, 0, 0, 1])
        .collect();
    if let [first, second, ..] = loads[..] {
        let mut g = good.clone();
        let p = g[first + 12..first + 16].to_vec();
        g[second + 12..second + 16].copy_from_slice(&p);
        bad(&g, "overlap", "overlap");
    }
    let offset = u32::from_be_bytes(good[load + 4..load + 8].try_into().unwrap()) as usize;
    bad(
        &good[..offset + 16],
        "truncated",
        "past the end of the file",
    );
    let o = run(&["run", "/nonexistent/image.elf"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&[
        "run",
        "--cpus",
        "65",
        images().join("hello.elf").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&[
        "run",
        "--mem",
        "lots",
        images().join("hello.elf").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn vms_under_the_monitor_print_prefixed_output() {
    let hello = images().join("hello.elf");
    let a = format!("{},name=left", hello.display());
    let b = format!("{},name=right,mem=8M", hello.display());
    let o = run(&["run", "--vm", &a, "--vm", &b, "--stats"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("[left] hello: all four exceptions handled, halting with 0"),
        "{out}"
    );
    assert!(
        out.contains("[right] hello: all four exceptions handled, halting with 0"),
        "{out}"
    );
    assert!(out.contains("VM left:") && out.contains("L2TLB"), "{out}");
}

#[test]
fn the_default_run_boots_two_vms() {
    let o = disco()
        .arg("run")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    // The header says what runs and how to read the summary.
    let header: Vec<&str> = out.lines().take(2).collect();
    assert!(header[0].starts_with("disco demo: two VMs"), "{out}");
    assert!(header[1].contains("\"exits\"") && header[1].contains("\"monitor %\""));
    for vm in ["vm0", "vm1"] {
        assert!(
            out.contains(&format!("{vm}: halted with status 0")),
            "{out}"
        );
        // The teaching kernel ran its whole demo in each VM.
        assert!(
            out.contains(&format!("[{vm}] init: 5 of 5 programs passed")),
            "{out}"
        );
    }
}

/// The same images on GXemul's testmips machine: the same console lines.
#[test]
fn kits_match_gxemul() {
    if !sim::testkit::have_tool("gxemul", "-h", "the GXemul comparison") {
        return;
    }
    // Each side gets its own copy of the disk image (GXemul may write it).
    let copy = |who: &str| {
        let p = std::env::temp_dir().join(format!("disco-gx-{who}-{}.img", std::process::id()));
        std::fs::copy(images().join("disk.img"), &p).unwrap();
        p.to_str().unwrap().to_string()
    };
    let (gx_disk, our_disk) = (copy("gxemul"), copy("disco"));
    for (name, cpus, prefix, disk) in [
        ("console.elf", "1", "console:", false),
        ("timer.elf", "1", "timer:", false),
        ("rtc.elf", "1", "rtc:", false),
        ("mp.elf", "4", "mp:", false),
        ("smp.elf", "4", "smp:", false),
        ("disk.elf", "1", "disk:", true),
        ("hello.elf", "1", "", false),
    ] {
        let img = images().join(name);
        let mut gx_args = vec![
            "120", "gxemul", "-q", "-E", "testmips", "-C", "R4000", "-n", cpus,
        ];
        if disk {
            gx_args.extend_from_slice(&["-d", gx_disk.as_str()]);
        }
        gx_args.push(img.to_str().unwrap());
        // GXemul needs a stdin that stays open; a pipe we never write to does.
        let mut child = Command::new("timeout")
            .args(&gx_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let g = child.wait_with_output().unwrap();
        drop(stdin);
        let extra: Vec<&str> = if disk {
            vec!["--disk", our_disk.as_str()]
        } else {
            vec![]
        };
        let ours = kit(name, cpus, &extra);
        let pick = |s: &str| -> Vec<String> {
            s.lines()
                .map(|l| l.trim_end_matches('\r').to_string())
                .filter(|l| {
                    if prefix.is_empty() {
                        !l.starts_with('[')
                    } else {
                        l.starts_with(prefix)
                    }
                })
                .collect()
        };
        let theirs = pick(&String::from_utf8_lossy(&g.stdout));
        let mine = pick(&stdout(&ours));
        assert!(!mine.is_empty(), "{name}");
        assert_eq!(mine, theirs, "{name}: disco vs GXemul");
    }
    for p in [gx_disk, our_disk] {
        let _ = std::fs::remove_file(p);
    }
}
