//! QEMU as an honest peer (bench/peers.sh): the mixed integer workload built
//! with Malta's halt (`sim::workload::Halt::Malta`) runs on QEMU's Malta
//! board through bench/qemu-malta.sh, halts QEMU, and executes exactly as
//! many of its instructions as `disco run` executes of the testmips build,
//! ending with the same checksum in v0 and the same HI and LO. Skipped with
//! a visible message without qemu-system-mips64 (a failure under
//! `DISCO_REQUIRE_TOOLS=1`).

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::process::Command;

use sim::workload::{self, Halt};

/// "v0 X hi X lo X" out of `disco run --dump-regs`, in bench/qemu-malta.sh's form.
fn disco_regs(dump: &str) -> String {
    let words: Vec<&str> = dump.split_whitespace().collect();
    let reg = |name: &str| {
        let i = words.iter().position(|w| *w == name).unwrap();
        words[i + 1].to_string()
    };
    format!("v0 {} hi {} lo {}", reg("v0"), reg("hi"), reg("lo"))
}

fn script(args: &[&str]) -> String {
    let o = Command::new("bash")
        .arg(common::root().join("bench/qemu-malta.sh"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "qemu-malta.sh {args:?}: {}",
        common::text(&o.stderr)
    );
    common::text(&o.stdout).trim().to_string()
}

#[test]
fn qemu_malta_executes_the_same_instructions_as_disco() {
    if !sim::testkit::have_tool("qemu-system-mips64", "--version", "the QEMU peer check") {
        return;
    }
    let passes = 3;
    let dir = std::env::temp_dir().join(format!("disco-qemu-peer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ours, theirs) = (dir.join("testmips.elf"), dir.join("malta.elf"));
    let testmips = workload::mixed_integer(0x8000_1000, passes);
    let malta = workload::mixed_integer_on(0x8000_1000, 0x8020_0000, passes, Halt::Malta);
    std::fs::write(&ours, common::elf(&testmips, 0)).unwrap();
    std::fs::write(&theirs, common::elf(&malta, 0)).unwrap();

    let o = common::run(&["run", ours.to_str().unwrap(), "--stats", "--dump-regs"]);
    assert!(o.status.success());
    let out = common::text(&o.stdout) + &common::text(&o.stderr);
    let total = out.lines().find_map(|l| l.strip_prefix("total: ")).unwrap();
    let disco_count: u64 = total.split(' ').next().unwrap().parse().unwrap();

    let count = script(&["count", theirs.to_str().unwrap()]);
    let (n, halt_pc) = count.split_once(' ').unwrap();
    assert_eq!(n.parse::<u64>().unwrap(), disco_count, "QEMU: {count}");
    // The last instruction QEMU executed is the store into SOFTRES, the
    // third word of the halt slot (the first word the two builds differ in).
    let (t, m) = (testmips.finish().unwrap(), malta.finish().unwrap());
    let slot = t.iter().zip(&m).position(|(a, b)| a != b).unwrap() as u64;
    assert_eq!(
        halt_pc,
        format!("0x{:x}", 0xFFFF_FFFF_8000_1000 + 4 * (slot + 2))
    );
    assert_eq!(
        script(&["regs", theirs.to_str().unwrap(), halt_pc]),
        disco_regs(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
