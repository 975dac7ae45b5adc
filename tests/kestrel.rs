//! kestrel, the teaching kernel (guest-kits/kernels/kestrel), end to end:
//! its demo natively on 1 and 4 CPUs, the same console output under the
//! monitor (one VCPU; four VCPUs overcommitted on two physical CPUs; two
//! VMs side by side), the fault and TLB shootdown boot modes, and programs
//! loaded from kfs on the disk, natively and from a disk VMs share. The
//! expected lines are those of "Expected output" in
//! guest-kits/kernels/kestrel/README.md.

#![allow(clippy::panic, clippy::unwrap_used)]

mod common;

use std::process::Output;

use common::{images, run, split_batches, text};

/// A cap well above what the demo needs (under 60 million cycles), so a
/// hang fails the test (exit status 3) instead of stalling it.
const MAX_CYCLES: &str = "300000000";

/// The demo's console lines with `cpus` CPUs, without the per-CPU
/// `smp: cpu <i> did <n> increments` lines (their split varies).
fn demo_lines(cpus: u32) -> Vec<String> {
    let mut v = vec![format!(
        "kestrel: booting, {cpus} cpu{}, 32 MB RAM, mode demo",
        if cpus == 1 { "" } else { "s" }
    )];
    if cpus > 1 {
        v.push(format!("kestrel: {} secondary cpus started", cpus - 1));
    }
    v.extend(
        [
            "init: demo mode, running 5 programs",
            "compute: 2 rounds, 2262 primes below 20000, checksum 0xcfb02423",
            "compute: ok",
            "syscall: 5000 x 4 calls, checksum 0x1755e690",
            "syscall: ok",
            "tlbstress: 256 pages x 4 passes, checksum 0x25cc333b",
            "tlbstress: ok",
            "forkexec: 12 children, status checksum 0xeed68184",
            "forkexec: ok",
            "smp: 4 workers x 500 locked increments = 2000, weighted 5000",
            "smp: ok",
            "init: 5 of 5 programs passed",
            "kestrel: init exited with status 0",
            "kestrel: halt status 0",
        ]
        .map(str::to_string),
    );
    v
}

/// The console lines of one guest (those starting with `prefix`, which is
/// stripped: `""` natively, `"[vm0] "` for a VM), split into the other
/// lines and the `(cpu, increments)` pairs of the per-CPU smp lines.
fn console(out: &str, prefix: &str) -> (Vec<String>, Vec<(u32, u32)>) {
    let mut lines = Vec::new();
    let mut percpu = Vec::new();
    for l in out.lines().filter_map(|l| l.strip_prefix(prefix)) {
        match l
            .strip_prefix("smp: cpu ")
            .and_then(|r| r.strip_suffix(" increments"))
            .and_then(|r| r.split_once(" did "))
        {
            Some((c, n)) => percpu.push((c.parse().unwrap(), n.parse().unwrap())),
            None => lines.push(l.to_string()),
        }
    }
    (lines, percpu)
}

/// Checks one guest's demo output in `out` (lines starting with `prefix`):
/// exactly the documented lines for `cpus` CPUs, then one per-CPU line for
/// each CPU 0..cpus in order, every one with work when there are several
/// CPUs, summing to the total the smp line reports.
fn check_demo(out: &str, prefix: &str, cpus: u32) {
    check_demo_lines(out, prefix, cpus, demo_lines(cpus));
}

/// The demo's lines when the kernel boots with kestrel-disk.img: kfs is
/// mounted, and init first runs motd, the program only the disk has.
fn demo_lines_with_disk(cpus: u32) -> Vec<String> {
    let mut v = demo_lines(cpus);
    v.insert(1, "kestrel: disk: kfs, 9 files".to_string());
    let init = v
        .iter()
        .position(|l| l.starts_with("init: demo mode"))
        .unwrap();
    v.insert(init, "motd: loaded from the disk by execv".to_string());
    v
}

fn check_demo_lines(out: &str, prefix: &str, cpus: u32, want: Vec<String>) {
    let (lines, percpu) = console(out, prefix);
    assert_eq!(lines, want, "{prefix}console:\n{out}");
    let ids: Vec<u32> = percpu.iter().map(|&(c, _)| c).collect();
    assert_eq!(
        ids,
        (0..cpus).collect::<Vec<_>>(),
        "{prefix}one smp line per CPU:\n{out}"
    );
    for &(c, n) in &percpu {
        assert!(n > 0, "{prefix}cpu {c} did no smp work:\n{out}");
    }
    let total: u32 = lines
        .iter()
        .find_map(|l| l.strip_prefix("smp: 4 workers x 500 locked increments = "))
        .and_then(|r| r.split(',').next())
        .unwrap()
        .parse()
        .unwrap();
    let sum: u32 = percpu.iter().map(|&(_, n)| n).sum();
    assert_eq!(sum, total, "{prefix}per-CPU increments sum:\n{out}");
}

fn assert_status_0(o: &Output) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

fn kestrel() -> String {
    images().join("kestrel.elf").to_str().unwrap().to_string()
}

fn native(image: &str, cpus: u32) -> Output {
    native_with(image, cpus, &[])
}

/// `disco run --cpus CPUS FLAGS... IMAGE` on the bare machine.
fn native_with(image: &str, cpus: u32, flags: &[&str]) -> Output {
    let cpus = cpus.to_string();
    let mut args = vec!["run", "--cpus", &cpus, "--max-cycles", MAX_CYCLES];
    args.extend_from_slice(flags);
    args.push(image);
    run(&args)
}

/// `disco run --cpus PCPUS --vm SPEC ...`.
fn monitor(pcpus: u32, vms: &[String]) -> Output {
    monitor_with(pcpus, vms, &[])
}

/// `disco run --cpus PCPUS FLAGS... --vm SPEC ...`.
fn monitor_with(pcpus: u32, vms: &[String], flags: &[&str]) -> Output {
    let pcpus = pcpus.to_string();
    let mut args = vec!["run", "--cpus", &pcpus, "--max-cycles", MAX_CYCLES];
    args.extend_from_slice(flags);
    for vm in vms {
        args.extend_from_slice(&["--vm", vm]);
    }
    run(&args)
}

/// A file in the temporary directory, unique to this test process and
/// removed on drop.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        Scratch(std::env::temp_dir().join(format!("disco-kestrel-{}-{name}", std::process::id())))
    }

    fn with(name: &str, bytes: &[u8]) -> Self {
        let s = Scratch::new(name);
        std::fs::write(&s.0, bytes).unwrap();
        s
    }

    fn path(&self) -> String {
        self.0.to_str().unwrap().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn demo_on_one_cpu() {
    let o = native(&kestrel(), 1);
    assert_status_0(&o);
    check_demo(&text(&o.stdout), "", 1);
}

#[test]
fn demo_on_four_cpus_every_cpu_works() {
    let o = native(&kestrel(), 4);
    assert_status_0(&o);
    check_demo(&text(&o.stdout), "", 4);
}

#[test]
fn demo_in_parallel_on_one_and_four_cpus() {
    for (cpus, threads) in [(1, "1"), (4, "4"), (4, "2")] {
        let o = native_with(&kestrel(), cpus, &["--parallel", "--threads", threads]);
        assert_status_0(&o);
        check_demo(&text(&o.stdout), "", cpus);
    }
}

#[test]
fn demo_in_a_vm_with_one_vcpu() {
    let o = monitor(1, &[format!("{},cpus=1", kestrel())]);
    assert_status_0(&o);
    check_demo(&text(&o.stdout), "[vm0] ", 1);
}

/// Four VCPUs of one VM share two physical CPUs, so VCPUs of the same VM
/// follow each other on a CPU (once a bug: they shared machine ASIDs).
#[test]
fn demo_in_a_vm_with_four_vcpus_on_two_cpus() {
    let o = monitor(2, &[format!("{},cpus=4", kestrel())]);
    assert_status_0(&o);
    check_demo(&text(&o.stdout), "[vm0] ", 4);
}

#[test]
fn demo_in_two_vms_on_two_cpus() {
    let o = monitor(2, &[kestrel(), kestrel()]);
    assert_status_0(&o);
    let out = text(&o.stdout);
    check_demo(&out, "[vm0] ", 1);
    check_demo(&out, "[vm1] ", 1);
}

/// The monitor in the parallel mode: two VMs of one VCPU on two threads,
/// one VM of four VCPUs on four CPUs (one thread runs a VM's CPUs) and on
/// two CPUs (VCPUs switch at quantum boundaries).
#[test]
fn demo_under_the_monitor_in_parallel() {
    let par = ["--parallel", "--threads", "2"];
    let o = monitor_with(2, &[kestrel(), kestrel()], &par);
    assert_status_0(&o);
    let out = text(&o.stdout);
    check_demo(&out, "[vm0] ", 1);
    check_demo(&out, "[vm1] ", 1);
    for pcpus in [4, 2] {
        let o = monitor_with(pcpus, &[format!("{},cpus=4", kestrel())], &par);
        assert_status_0(&o);
        check_demo(&text(&o.stdout), "[vm0] ", 4);
    }
}

/// `--stats`' count of one emulated instruction (0 when not listed) and
/// the number of MFC0/MTC0 sites patched to the commpage.
fn emulated_and_patched(out: &str, name: &str) -> (u64, u64) {
    let emulated = out
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("emulated:"))
        .and_then(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| *w == name)?;
            words.get(at + 1)?.parse().ok()
        })
        .unwrap_or(0);
    let patched = out
        .lines()
        .find_map(|l| l.split_once("sites patched to the commpage: "))
        .and_then(|(_, n)| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no patch count in --stats:\n{out}"));
    (emulated, patched)
}

/// With the commpage off, every MFC0/MTC0 of the kernel traps and is
/// emulated: the same demo, more emulated MFC0/MTC0, nothing patched.
#[test]
fn demo_in_a_vm_without_the_commpage() {
    // Trap-and-emulate (exec=direct): the commpage is about the MFC0/MTC0
    // sites of directly run code.
    let on = monitor_with(
        1,
        &[format!("{},cpus=1,exec=direct", kestrel())],
        &["--stats"],
    );
    let off = monitor_with(
        1,
        &[format!("{},cpus=1,commpage=off,exec=direct", kestrel())],
        &["--stats"],
    );
    assert_status_0(&on);
    assert_status_0(&off);
    let (on, off) = (text(&on.stdout), text(&off.stdout));
    check_demo(&off, "[vm0] ", 1);
    assert_eq!(console(&on, "[vm0] ").0, console(&off, "[vm0] ").0);
    for insn in ["mfc0", "mtc0"] {
        let (on_n, patched_on) = emulated_and_patched(&on, insn);
        let (off_n, patched_off) = emulated_and_patched(&off, insn);
        assert!(patched_on > 0, "the default patches:\n{on}");
        assert_eq!(patched_off, 0, "commpage=off patches nothing:\n{off}");
        assert!(
            off_n > 2 * on_n,
            "{insn}: {off_n} emulated without the commpage, {on_n} with it"
        );
    }
}

/// File offset of the boot mode word: the symbol `kestrel_boot_mode`'s
/// address within its section, plus the section's file offset.
fn boot_mode_offset(elf: &[u8]) -> usize {
    let e = goblin::elf::Elf::parse(elf).unwrap();
    let sym = e
        .syms
        .iter()
        .find(|s| e.strtab.get_at(s.st_name) == Some("kestrel_boot_mode"))
        .expect("kestrel.elf has the symbol kestrel_boot_mode");
    let sh = &e.section_headers[sym.st_shndx];
    assert!(sym.st_value >= sh.sh_addr && sym.st_value + 4 <= sh.sh_addr + sh.sh_size);
    (sh.sh_offset + (sym.st_value - sh.sh_addr)) as usize
}

/// A copy of kestrel.elf patched to boot in another mode.
fn kestrel_in_mode(mode: u32, name: &str) -> Scratch {
    let mut elf = std::fs::read(kestrel()).unwrap();
    let at = boot_mode_offset(&elf);
    assert_eq!(
        elf[at..at + 4],
        [0, 0, 0, 0],
        "kestrel.elf boots in demo mode"
    );
    elf[at..at + 4].copy_from_slice(&mode.to_be_bytes());
    Scratch::with(&format!("{name}.elf"), &elf)
}

/// Boot mode 3: a child stores to address 0 and is killed with status
/// 128 + 3 (TLBS); init reports it and the kernel halts cleanly.
#[test]
fn fault_mode_kills_the_faulting_process() {
    let image = kestrel_in_mode(3, "fault");
    let o = native(&image.path(), 1);
    assert_status_0(&o);
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert_eq!(lines[0], "kestrel: booting, 1 cpu, 32 MB RAM, mode fault");
    // The faulting store's EPC moves when exitcode.c changes.
    let killed = lines[1];
    assert!(
        killed.starts_with("kestrel: pid 2 (exitcode) killed: TLBS epc=0x004")
            && killed.ends_with(" badvaddr=0x00000000"),
        "{out}"
    );
    assert_eq!(
        lines[2..],
        [
            "init: faulting child exited with status 131",
            "kestrel: init exited with status 0",
            "kestrel: halt status 0",
        ],
        "{out}"
    );
}

/// Boot mode 4 runs cowmig: copy-on-write breaks on one CPU while another
/// CPU still maps the old frame, so kestrel must shoot the stale entry
/// down with an IPI. Checks that no read saw a stale frame, that some
/// rounds really migrated, and that the kernel counted shootdowns.
fn check_shootdown(out: &str, prefix: &str, cpus: usize) {
    let lines: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix(prefix)).collect();
    let summary = lines
        .iter()
        .find(|l| l.starts_with("cowmig: ") && l.contains(" rounds moved away and back"))
        .unwrap_or_else(|| panic!("no cowmig summary in:\n{out}"));
    let moved: u32 = summary["cowmig: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(moved > 0, "no round migrated: {out}");
    assert!(summary.ends_with(", 0 stale reads"), "{out}");
    assert!(lines.contains(&"cowmig: ok"), "{out}");
    let shootdowns: Vec<u32> = lines
        .iter()
        .filter(|l| l.starts_with("kestrel: cpu "))
        .map(|l| {
            let (head, _) = l.split_once(" shootdowns").unwrap();
            head.rsplit(' ').next().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(shootdowns.len(), cpus, "one counter line per CPU: {out}");
    assert!(shootdowns.iter().sum::<u32>() > 0, "no shootdowns: {out}");
    assert_eq!(lines.last(), Some(&"kestrel: halt status 0"), "{out}");
}

#[test]
fn shootdown_mode_natively_on_four_cpus() {
    let image = kestrel_in_mode(4, "shootdown-native");
    let o = native(&image.path(), 4);
    assert_status_0(&o);
    check_shootdown(&text(&o.stdout), "", 4);
}

/// The same under the monitor: the guest's TLBP and invalidating TLBWI
/// must also drop what the monitor cached of the entry (real TLB, L2TLB).
#[test]
fn shootdown_mode_in_a_vm_with_four_vcpus_on_two_cpus() {
    let image = kestrel_in_mode(4, "shootdown-vm");
    let o = monitor(2, &[format!("{},cpus=4", image.path())]);
    assert_status_0(&o);
    check_shootdown(&text(&o.stdout), "[vm0] ", 4);
}

/// The same in the parallel mode, beside a VM of the demo on two threads:
/// CPUs change VMs and threads at quantum boundaries, so what one VM shot
/// down must not survive on a CPU that runs it again.
#[test]
fn shootdown_mode_in_a_vm_in_parallel_beside_another() {
    let image = kestrel_in_mode(4, "shootdown-vm-parallel");
    let vms = [format!("{},cpus=4,name=cow", image.path()), kestrel()];
    let o = monitor_with(2, &vms, &["--parallel", "--threads", "2"]);
    assert_status_0(&o);
    let out = text(&o.stdout);
    check_shootdown(&out, "[cow] ", 4);
    check_demo(&out, "[vm1] ", 1);
}

/// One VM's VCPUs on several host threads (docs/parallel.md): the demo in
/// a VM of two VCPUs on two threads and of four on four CPUs and two and
/// four threads; cowmig's shootdowns in a VM of four VCPUs alone on two
/// CPUs and two threads and on four CPUs and four threads. Each VM really
/// ran on more than one thread.
#[test]
fn demo_and_shootdown_mode_in_a_vm_split_over_threads() {
    for (vcpus, pcpus, threads) in [(2, 2, "2"), (4, 4, "2"), (4, 4, "4")] {
        let vm = [format!("{},cpus={vcpus}", kestrel())];
        let flags = ["--parallel", "--threads", threads, "--split", "always"];
        let o = monitor_with(pcpus, &vm, &flags);
        assert_status_0(&o);
        let out = text(&o.stdout);
        check_demo(&out, "[vm0] ", vcpus);
        assert!(split_batches(&out) > 0, "never split: {out}");
    }
    let image = kestrel_in_mode(4, "shootdown-vm-split");
    for (pcpus, threads) in [(2, "2"), (4, "4")] {
        let vm = [format!("{},cpus=4,name=cow", image.path())];
        let flags = ["--parallel", "--threads", threads, "--split", "always"];
        let o = monitor_with(pcpus, &vm, &flags);
        assert_status_0(&o);
        let out = text(&o.stdout);
        check_shootdown(&out, "[cow] ", 4);
        assert!(split_batches(&out) > 0, "never split: {out}");
    }
}

fn kestrel_disk() -> String {
    images()
        .join("kestrel-disk.img")
        .to_str()
        .unwrap()
        .to_string()
}

/// With kestrel-disk.img on the disk, execv loads programs from kfs
/// through the polled disk driver (motd exists only there).
#[test]
fn demo_from_the_disk_on_two_cpus() {
    let o = native_with(&kestrel(), 2, &["--disk", &kestrel_disk()]);
    assert_status_0(&o);
    check_demo_lines(&text(&o.stdout), "", 2, demo_lines_with_disk(2));
}

/// A kfs directory with a bad entry (here a file larger than execv's
/// buffer) is refused with a line that says so, and the demo runs the
/// programs linked into the kernel.
#[test]
fn a_kfs_with_a_bad_entry_is_refused() {
    let mut disk = std::fs::read(kestrel_disk()).unwrap();
    // Entry 2 starts at 16 + 2 * 32; its size field follows the 20-byte
    // name and the 4-byte offset.
    let size = 16 + 2 * 32 + 24;
    disk[size..size + 4].copy_from_slice(&0x7FFF_FFFFu32.to_be_bytes());
    let bad = Scratch::with("badkfs.img", &disk);
    let o = native_with(&kestrel(), 1, &["--disk", &bad.path()]);
    assert_status_0(&o);
    let mut want = demo_lines(1);
    want.insert(
        1,
        "kestrel: disk: kfs entry 2 is bad; ignoring the disk".to_string(),
    );
    check_demo_lines(&text(&o.stdout), "", 1, want);
}

/// A disk without kfs on it (the device tests' disk.img) is ignored: the
/// demo runs the programs linked into the kernel, exactly as with no disk.
#[test]
fn a_disk_without_kfs_is_ignored() {
    let disk = images().join("disk.img");
    let o = native_with(&kestrel(), 1, &["--disk", disk.to_str().unwrap()]);
    assert_status_0(&o);
    check_demo(&text(&o.stdout), "", 1);
}

/// Two VMs boot from one disk image (shared, copy-on-write); a third VM
/// has no disk and runs the programs linked into the kernel.
#[test]
fn demo_from_the_disk_in_two_vms_sharing_it() {
    let with_disk = format!("{},disk={}", kestrel(), kestrel_disk());
    let o = monitor(
        2,
        &[with_disk.clone(), format!("{with_disk},cpus=2"), kestrel()],
    );
    assert_status_0(&o);
    let out = text(&o.stdout);
    check_demo_lines(&out, "[vm0] ", 1, demo_lines_with_disk(1));
    check_demo_lines(&out, "[vm1] ", 2, demo_lines_with_disk(2));
    check_demo(&out, "[vm2] ", 1);
}

/// The demo's lines with the disk when it has its completion interrupt.
fn demo_lines_with_disk_irq(cpus: u32) -> Vec<String> {
    let mut v = demo_lines_with_disk(cpus);
    v[1] = "kestrel: disk: kfs, 9 files, completion interrupt (IP5)".to_string();
    v
}

/// The disk's completion interrupt, 20,000 cycles after each operation.
const DISK_IRQ: [&str; 2] = ["--disk-irq", "20000"];

/// `--disk-irq`: the disk raises IP5 a while after each operation (a disco
/// extension). kestrel finds it at mount and then puts a process that
/// reads the disk to sleep until the interrupt; the trace shows IP5 taken.
#[test]
fn demo_from_the_disk_with_its_completion_interrupt() {
    let trace = Scratch::new("diskirq.trace");
    let (disk, trace_file) = (kestrel_disk(), trace.path());
    let o = native_with(
        &kestrel(),
        2,
        &[
            DISK_IRQ[0],
            DISK_IRQ[1],
            "--disk",
            &disk,
            "--trace",
            "irq",
            "--trace-file",
            &trace_file,
        ],
    );
    let irqs = std::fs::read_to_string(&trace.0).unwrap();
    assert_status_0(&o);
    check_demo_lines(&text(&o.stdout), "", 2, demo_lines_with_disk_irq(2));
    let ip5 = irqs
        .lines()
        .filter(|l| l.ends_with("pending & enabled IP bits 0x2000"))
        .count();
    assert!(ip5 > 9, "one disk interrupt per sector read, got {ip5}");
}

/// The same under the monitor: each VM's virtual disk interrupts its VCPU
/// 0, and a VM of four VCPUs on two physical CPUs sleeps and wakes on it.
#[test]
fn vms_use_the_disk_completion_interrupt() {
    let with_disk = format!("{},disk={}", kestrel(), kestrel_disk());
    let o = monitor_with(
        2,
        &[with_disk.clone(), format!("{with_disk},cpus=4")],
        &DISK_IRQ,
    );
    assert_status_0(&o);
    let out = text(&o.stdout);
    check_demo_lines(&out, "[vm0] ", 1, demo_lines_with_disk_irq(1));
    check_demo_lines(&out, "[vm1] ", 4, demo_lines_with_disk_irq(4));
}
