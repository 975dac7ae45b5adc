//! The course labs (labs/, docs/labs.md) end to end through `disco lab`:
//! for each lab the reference tree grades full marks, the starter builds
//! and grades below full marks with exactly the lab's own tests failing
//! (by name), and a typical student mistake is caught with the right hint.
//! Kernel labs need the MIPS cross toolchain: without it they are skipped
//! visibly (a failure under `DISCO_REQUIRE_TOOLS=1`, as in CI).

#![allow(clippy::panic, clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{disco, root, text};

/// `disco lab ARGS --tree <checkout>`.
fn lab(args: &[&str]) -> Output {
    disco()
        .arg("lab")
        .arg("--tree")
        .arg(root())
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

/// Whether the cross toolchain is here; if not, says so (or fails under
/// `DISCO_REQUIRE_TOOLS=1`).
fn have_toolchain(test: &str) -> bool {
    let ok = Command::new("mips-linux-gnu-gcc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("DISCO_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "mips-linux-gnu-gcc is required (DISCO_REQUIRE_TOOLS=1) but not installed"
        );
        println!("SKIPPED: mips-linux-gnu-gcc not found; {test} did not run");
    }
    ok
}

/// A fresh scratch directory (removed when dropped).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        // Tests run in parallel threads of one process: a counter keeps
        // their directories apart.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let d = std::env::temp_dir().join(format!("disco-labs-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        Scratch(d)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The rows of a grade table: (test, passed, hint).
fn rows(out: &str) -> Vec<(String, bool, String)> {
    let mut v = Vec::new();
    let mut in_table = false;
    for l in out.lines() {
        if l.starts_with("test ") {
            in_table = true;
            continue;
        }
        // The table ends at its total (stderr's status line follows).
        if in_table && l.starts_with("total ") {
            break;
        }
        if !in_table {
            continue;
        }
        let mut w = l.split_whitespace();
        let (Some(name), Some(_pts), Some(passed)) = (w.next(), w.next(), w.next()) else {
            continue;
        };
        let hint = w.collect::<Vec<_>>().join(" ");
        v.push((name.to_string(), passed == "yes", hint));
    }
    v
}

/// The names of the table's failed tests, in table order.
fn failed_tests(out: &str) -> Vec<String> {
    rows(out)
        .into_iter()
        .filter(|r| !r.1)
        .map(|r| r.0)
        .collect()
}

/// The points on the table's total line.
fn total(out: &str) -> &str {
    out.lines()
        .find_map(|l| l.strip_prefix("total "))
        .map_or("", str::trim)
}

/// The names of `lab`'s own tests (`own = true` in its lab.toml).
fn own_tests(lab: &str) -> Vec<String> {
    let file = root().join("labs").join(lab).join("lab.toml");
    let t: toml::Value = toml::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    t["test"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t.get("own").and_then(toml::Value::as_bool) == Some(true))
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

/// Grades `dir` (None: the reference) and returns (exit status, stdout).
fn grade(name: &str, dir: Option<&Scratch>) -> (i32, String) {
    let mut args = vec!["grade", name];
    if let Some(d) = dir {
        args.push(d.arg());
    }
    let o = lab(&args);
    let out = format!("{}{}", text(&o.stdout), text(&o.stderr));
    (o.status.code().unwrap(), out)
}

fn assert_full_marks(name: &str, dir: Option<&Scratch>) {
    let (code, out) = grade(name, dir);
    assert_eq!(code, 0, "{out}");
    assert_eq!(total(&out), "100/100", "{out}");
    assert!(rows(&out).iter().all(|r| r.1), "{out}");
}

/// The starter grades below full marks, exactly the lab's own tests fail,
/// and the notes carry the stubs' "not implemented" message. Returns the
/// grader's output.
fn assert_starter_fails_its_own_tests(name: &str, copy: &Scratch) -> String {
    let (code, out) = grade(name, Some(copy));
    assert_eq!(code, 1, "{out}");
    let failed = failed_tests(&out);
    assert_eq!(failed, own_tests(name), "{out}");
    assert!(
        out.contains(&format!("not implemented: see labs/{name}/README.md")),
        "{out}"
    );
    out
}

/// Writes the starter of `name` into a fresh directory.
fn start(name: &str, reference: bool) -> Scratch {
    let s = Scratch::new(&format!(
        "{name}-{}",
        if reference { "ref" } else { "starter" }
    ));
    let mut args = vec!["start", name, s.arg()];
    if reference {
        args.push("--reference");
    }
    let o = lab(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    s
}

/// Replaces `from` by `to` in one file of a copy (a student's edit).
fn edit(copy: &Scratch, file: &str, from: &str, to: &str) {
    let p = copy.path().join(file);
    let s = std::fs::read_to_string(&p).unwrap();
    assert!(s.contains(from), "{file} has no {from:?}");
    std::fs::write(&p, s.replacen(from, to, 1)).unwrap();
}

#[test]
fn list_names_every_lab_with_a_summary() {
    let o = lab(&["list"]);
    assert!(o.status.success());
    let out = text(&o.stdout);
    let line = out
        .lines()
        .find(|l| l.starts_with("syscalls   kernel   system calls in kestrel"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.ends_with(" (7 tests, 100 points)"), "{out}");
    for l in out.lines() {
        assert!(l.ends_with(" tests, 100 points)"), "{out}");
    }
}

#[test]
fn bad_requests_get_one_clear_line() {
    let o = lab(&["start", "nosuchlab", "/tmp/x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).starts_with("disco: no lab \"nosuchlab\" (labs: "));
    let o = lab(&["grade", "syscalls", root().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("not a lab copy (no .disco-lab"));
    let o = lab(&["start", "syscalls", root().join("labs").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("exists and is not empty"));
}

#[test]
fn syscalls_reference_grades_full_marks() {
    if have_toolchain("syscalls_reference_grades_full_marks") {
        assert_full_marks("syscalls", None);
    }
}

#[test]
fn syscalls_starter_builds_and_fails_only_its_own_tests() {
    if !have_toolchain("syscalls_starter_builds_and_fails_only_its_own_tests") {
        return;
    }
    let copy = start("syscalls", false);
    assert!(copy.path().join("labs/syscalls/README.md").is_file());
    assert_starter_fails_its_own_tests("syscalls", &copy);
}

/// A classic mistake: uptime copies out without checking the pointer, so
/// a process can write kernel memory. Caught by uptime-args alone.
#[test]
fn syscalls_mistake_unchecked_pointer_is_caught() {
    if !have_toolchain("syscalls_mistake_unchecked_pointer_is_caught") {
        return;
    }
    let copy = start("syscalls", true);
    edit(
        &copy,
        "guest-kits/kernels/kestrel/trap.c",
        "\tif (!uaccess_ok(uptr, sizeof(u)))\n\t\treturn -EFAULT;\n",
        "",
    );
    let (code, out) = grade("syscalls", Some(&copy));
    assert_eq!(code, 1, "{out}");
    let failed: Vec<_> = rows(&out).into_iter().filter(|r| !r.1).collect();
    assert_eq!(failed.len(), 1, "{out}");
    assert_eq!(failed[0].0, "uptime-args");
    assert!(
        failed[0]
            .2
            .contains("uptime(kernel address) should return -EFAULT"),
        "{out}"
    );
}

/// A kernel that loops in a system call is stopped by the cycle limit and
/// reported; it does not hang the grader. A copy that does not compile
/// gets zero with the compiler's message.
#[test]
fn syscalls_hang_and_build_failure_are_reported() {
    if !have_toolchain("syscalls_hang_and_build_failure_are_reported") {
        return;
    }
    let copy = start("syscalls", false);
    edit(
        &copy,
        "guest-kits/kernels/kestrel/trap.c",
        "\treturn lab_not_implemented(\"sys_getppid\", \"syscalls\");",
        "\tfor (;;)\n\t\t;\n\treturn 0;",
    );
    let (code, out) = grade("syscalls", Some(&copy));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("stopped after 50000000 cycles: the guest hung"),
        "{out}"
    );
    edit(
        &copy,
        "guest-kits/kernels/kestrel/trap.c",
        "\tfor (;;)\n\t\t;\n\treturn 0;",
        "\treturn nonsense;",
    );
    let (code, out) = grade("syscalls", Some(&copy));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(" lab failed (exit status: 2):"), "{out}");
    assert!(out.contains("nonsense"), "{out}");
    assert_eq!(total(&out), "0/100", "{out}");
}

/// `--class DIR --csv FILE`: every submission graded, one CSV row each.
#[test]
fn a_class_is_graded_into_one_csv() {
    if !have_toolchain("a_class_is_graded_into_one_csv") {
        return;
    }
    let class = Scratch::new("class");
    std::fs::create_dir_all(class.path()).unwrap();
    let o = lab(&[
        "start",
        "syscalls",
        class.path().join("alice").to_str().unwrap(),
        "--reference",
    ]);
    assert!(o.status.success());
    let o = lab(&[
        "start",
        "syscalls",
        class.path().join("bob").to_str().unwrap(),
    ]);
    assert!(o.status.success());
    std::fs::create_dir_all(class.path().join("carol")).unwrap();
    let csv = class.path().join("grades.csv");
    let o = lab(&[
        "grade",
        "syscalls",
        "--class",
        class.arg(),
        "--csv",
        csv.to_str().unwrap(),
    ]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    assert!(out.contains("alice: 100/100\n"), "{out}");
    assert!(
        out.contains("bob: 10/100 (failed: getppid, uptime, uptime-args, sbrk, sbrk-args)\n"),
        "{out}"
    );
    assert!(out.contains("carol: not graded: "), "{out}");
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap(),
        "submission,boot,getpid,getppid,uptime,uptime-args,sbrk,sbrk-args,total\n\
         alice,5,5,20,20,20,15,15,100\n\
         bob,5,5,0,0,0,0,0,10\n\
         carol,0,0,0,0,0,0,0,0\n"
    );
}

#[test]
fn tlb_reference_grades_full_marks() {
    if have_toolchain("tlb_reference_grades_full_marks") {
        assert_full_marks("tlb", None);
    }
}

#[test]
fn tlb_starter_builds_and_fails_only_its_own_tests() {
    if have_toolchain("tlb_starter_builds_and_fails_only_its_own_tests") {
        assert_starter_fails_its_own_tests("tlb", &start("tlb", false));
    }
}

/// A refill handler that ignores the odd page still works (the odd page
/// comes back through vm_fault as TLB-invalid), so only counting the
/// faults that reach trap() catches it, with the hint about 8(Context).
#[test]
fn tlb_mistake_odd_page_ignored_is_caught() {
    if !have_toolchain("tlb_mistake_odd_page_ignored_is_caught") {
        return;
    }
    let copy = start("tlb", true);
    edit(
        &copy,
        "guest-kits/kernels/kestrel/entry.S",
        "\tlw $k0, 8($k0)",
        "\tmove $k0, $zero",
    );
    let (code, out) = grade("tlb", Some(&copy));
    assert_eq!(code, 1, "{out}");
    let refill = rows(&out).into_iter().find(|r| r.0 == "refill").unwrap();
    assert!(!refill.1, "{out}");
    assert!(refill.2.contains("odd at 8(Context)"), "{out}");
    assert!(refill.2.contains("TLB faults reached trap()"), "{out}");
}

/// The page-fault path's classic slip: a fresh page mapped without the
/// dirty bit. Everything still works (the first write faults again and
/// vm_fault makes the page writable), so only `demand-zero`, which counts
/// those second faults, catches it, with the hint about PTE_D.
#[test]
fn tlb_mistake_fresh_page_mapped_read_only_is_caught() {
    if !have_toolchain("tlb_mistake_fresh_page_mapped_read_only_is_caught") {
        return;
    }
    let copy = start("tlb", true);
    edit(
        &copy,
        "guest-kits/kernels/kestrel/vm.c",
        "*slot = MKPTE(pa, rw ? PTE_D : 0);\n\t\t/* lab tlb: end",
        "*slot = MKPTE(pa, 0);\n\t\t/* lab tlb: end",
    );
    let (code, out) = grade("tlb", Some(&copy));
    assert_eq!(code, 1, "{out}");
    assert_eq!(failed_tests(&out), ["demand-zero", "labtest"], "{out}");
    let dz = rows(&out)
        .into_iter()
        .find(|r| r.0 == "demand-zero")
        .unwrap();
    assert!(dz.2.contains("writable (PTE_D)"), "{out}");
    assert!(
        dz.2.contains("16 of 16 fresh pages took a second fault"),
        "{out}"
    );
}

#[test]
fn cow_reference_grades_full_marks() {
    if have_toolchain("cow_reference_grades_full_marks") {
        assert_full_marks("cow", None);
    }
}

#[test]
fn cow_starter_builds_and_fails_only_its_own_tests() {
    if have_toolchain("cow_starter_builds_and_fails_only_its_own_tests") {
        let out = assert_starter_fails_its_own_tests("cow", &start("cow", false));
        // labtest fails three tests and halts with status 3, disco's own
        // cycle-limit status on the bare machine: a verdict, not a hang.
        assert!(!out.contains("the guest hung"), "{out}");
    }
}

/// ASIDs are per CPU: a shootdown that queues the breaking CPU's ASID
/// for the process, instead of the one it has on the target, leaves the
/// stale entry in place, and cowmig reads the old frame.
#[test]
fn cow_mistake_wrong_asid_is_caught() {
    if !have_toolchain("cow_mistake_wrong_asid_is_caught") {
        return;
    }
    let copy = start("cow", true);
    edit(
        &copy,
        "guest-kits/kernels/kestrel/vm.c",
        "(va & ~0x1fffu) | p->asid[i];",
        "(va & ~0x1fffu) | p->asid[curcpu->id];",
    );
    let (code, out) = grade("cow", Some(&copy));
    assert_eq!(code, 1, "{out}");
    let failed = failed_tests(&out);
    assert_eq!(failed, ["shootdown", "migrations"], "{out}");
    assert!(out.contains("the ASID it has there (p->asid[i])"), "{out}");
    assert!(out.contains("cowmig read a stale frame"), "{out}");
}

/// A copy-on-write break that copies but keeps its reference to the old
/// page: both processes see the right data, but the old page outlives
/// them. Only `cow-free`, which counts free pages, catches it.
#[test]
fn cow_mistake_old_page_reference_kept_is_caught() {
    if !have_toolchain("cow_mistake_old_page_reference_kept_is_caught") {
        return;
    }
    let copy = start("cow", true);
    edit(
        &copy,
        "guest-kits/kernels/kestrel/vm.c",
        "\t\t\tpage_unref(pa);\n\t\t\t*slot = MKPTE(npa, PTE_D);",
        "\t\t\t*slot = MKPTE(npa, PTE_D);",
    );
    let (code, out) = grade("cow", Some(&copy));
    assert_eq!(code, 1, "{out}");
    assert_eq!(failed_tests(&out), ["cow-free"], "{out}");
    assert!(
        out.contains("drop its reference there (page_unref)"),
        "{out}"
    );
    assert!(out.contains("pages never came back"), "{out}");
}

#[test]
fn sync_reference_grades_full_marks() {
    if have_toolchain("sync_reference_grades_full_marks") {
        assert_full_marks("sync", None);
    }
}

#[test]
fn sync_starter_builds_and_fails_only_its_own_tests() {
    if have_toolchain("sync_starter_builds_and_fails_only_its_own_tests") {
        assert_starter_fails_its_own_tests("sync", &start("sync", false));
    }
}

/// The classic broken spinlock: `sc` can fail, and this one does not
/// retry, so two CPUs can both take the big kernel lock. On four CPUs,
/// under the grader's quanta, the kernel loses updates.
#[test]
fn sync_mistake_sc_failure_ignored_is_caught() {
    if !have_toolchain("sync_mistake_sc_failure_ignored_is_caught") {
        return;
    }
    let copy = start("sync", true);
    edit(
        &copy,
        "guest-kits/kernels/kestrel/entry.S",
        "\tsc $t1, 0($a0)\n\tbeqz $t1, 1b\n\tnop\n\tsync\n\tjr $ra\n\tnop\n\t/* lab sync: end",
        "\tsc $t1, 0($a0)\n\tsync\n\tjr $ra\n\tnop\n\t/* lab sync: end",
    );
    let (code, out) = grade("sync", Some(&copy));
    assert_eq!(code, 1, "{out}");
    let stress = rows(&out)
        .into_iter()
        .find(|r| r.0 == "bkl-stress")
        .unwrap();
    assert!(!stress.1, "{out}");
    assert!(stress.2.contains("retry when SC fails"), "{out}");
    assert!(
        stress.2.contains("updates of the kernel counter survived"),
        "{out}"
    );
}

/// The sleep lock's classic slip: `if` where `while` belongs. A release
/// wakes every sleeper; the first to run takes the lock, and the others,
/// not checking again, take it too. The stress loses updates.
#[test]
fn sync_mistake_woken_sleeper_does_not_check_again_is_caught() {
    if !have_toolchain("sync_mistake_woken_sleeper_does_not_check_again_is_caught") {
        return;
    }
    let copy = start("sync", true);
    edit(
        &copy,
        "guest-kits/kernels/kestrel/proc.c",
        "\twhile (*l)\n\t\tksleep((void *)l);",
        "\tif (*l)\n\t\tksleep((void *)l);",
    );
    let (code, out) = grade("sync", Some(&copy));
    assert_eq!(code, 1, "{out}");
    assert_eq!(failed_tests(&out), ["sleeplock-stress", "labtest"], "{out}");
    let stress = rows(&out)
        .into_iter()
        .find(|r| r.0 == "sleeplock-stress")
        .unwrap();
    assert!(
        stress.2.contains("checks it again after every wakeup"),
        "{out}"
    );
    assert!(
        stress.2.contains("updates under the sleep lock survived"),
        "{out}"
    );
}

/// The other classic: a release that forgets to wake the sleepers (a lost
/// wakeup). The workers sleep for ever, every run stops at the cycle
/// limit (reported as a hang), and `sleeplock-stress` has no result line.
#[test]
fn sync_mistake_lost_wakeup_is_caught() {
    if !have_toolchain("sync_mistake_lost_wakeup_is_caught") {
        return;
    }
    let copy = start("sync", true);
    edit(
        &copy,
        "guest-kits/kernels/kestrel/proc.c",
        "\t*l = 0;\n\tkwakeup((void *)l);\n",
        "\t*l = 0;\n",
    );
    let (code, out) = grade("sync", Some(&copy));
    assert_eq!(code, 1, "{out}");
    assert_eq!(failed_tests(&out), ["sleeplock-stress", "labtest"], "{out}");
    let stress = rows(&out)
        .into_iter()
        .find(|r| r.0 == "sleeplock-stress")
        .unwrap();
    assert!(stress.2.contains("or they sleep for ever"), "{out}");
    assert!(stress.2.contains("no result line"), "{out}");
    assert!(out.contains("the guest hung"), "{out}");
}

#[test]
fn reflect_reference_grades_full_marks() {
    assert_full_marks("reflect", None);
}

#[test]
fn l2tlb_reference_grades_full_marks() {
    assert_full_marks("l2tlb", None);
}

/// The monitor labs' starters and mistakes, one after another: their
/// copies share one cargo target directory and so one `disco` binary
/// path, which two builds at once would overwrite under each other.
#[test]
fn emulate_reference_grades_full_marks() {
    assert_full_marks("emulate", None);
}

#[test]
fn monitor_lab_starters_and_mistakes() {
    reflect_starter_then_the_bd_bit_lost();
    l2tlb_starter_then_a_lookup_that_ignores_the_asid();
    emulate_starter_then_an_eret_that_keeps_exl();
}

/// The starter (the workspace with reflection stubbed out) builds with
/// cargo, stops its VM with "not implemented" and fails exactly its own
/// tests. Then, in the same copy (so cargo rebuilds only what changed), a
/// classic mistake: the exception in a delay slot gets EPC = the branch
/// but Cause.BD is lost. Only the `delay-slot` test catches it, with the
/// hint about Cause.BD.
fn reflect_starter_then_the_bd_bit_lost() {
    let copy = start("reflect", false);
    assert_starter_fails_its_own_tests("reflect", &copy);

    let reference = start("reflect", true);
    for f in ["monitor/src/vcpu.rs", "monitor/src/engine.rs"] {
        std::fs::copy(reference.path().join(f), copy.path().join(f)).unwrap();
    }
    edit(
        &copy,
        "monitor/src/vcpu.rs",
        "c.cause | cp0::cause::BD",
        "c.cause & !cp0::cause::BD",
    );
    let (code, out) = grade("reflect", Some(&copy));
    assert_eq!(code, 1, "{out}");
    let failed: Vec<_> = rows(&out).into_iter().filter(|r| !r.1).collect();
    assert_eq!(failed.len(), 1, "{out}");
    assert_eq!(failed[0].0, "delay-slot", "{out}");
    assert!(failed[0].2.contains("must set Cause.BD"), "{out}");
    assert!(failed[0].2.contains("(in a delay slot)"), "{out}");
}

/// The l2tlb starter (an empty software TLB) is correct but slow: it
/// passes `native` and `demo` and fails `hits` and `exits`. Then a classic
/// mistake in the same copy: a lookup that ignores the guest ASID hands
/// one process another's pages, and the demo breaks.
fn l2tlb_starter_then_a_lookup_that_ignores_the_asid() {
    let copy = start("l2tlb", false);
    let (code, out) = grade("l2tlb", Some(&copy));
    assert_eq!(code, 1, "{out}");
    let failed = failed_tests(&out);
    assert_eq!(failed, own_tests("l2tlb"), "{out}");
    assert_eq!(total(&out), "30/100", "{out}");

    let reference = start("l2tlb", true);
    let f = "monitor/src/l2tlb.rs";
    std::fs::copy(reference.path().join(f), copy.path().join(f)).unwrap();
    edit(
        &copy,
        f,
        "e.vpn2 == vpn2 && (e.global || e.guest_asid == guest_asid)",
        "e.vpn2 == vpn2",
    );
    let (code, out) = grade("l2tlb", Some(&copy));
    assert_eq!(code, 1, "{out}");
    let demo = rows(&out).into_iter().find(|r| r.0 == "demo").unwrap();
    assert!(!demo.1, "{out}");
    assert!(demo.2.contains("match the VA and the guest ASID"), "{out}");
}

/// The emulate starter stops its VM at the kernel's first MTC0. Then, in
/// the same copy, an ERET that forgets to clear EXL: the guest "returns"
/// to its user program still at exception level, so in kernel mode, and
/// no user program ever exits to the monitor as a user again.
fn emulate_starter_then_an_eret_that_keeps_exl() {
    let copy = start("emulate", false);
    assert_starter_fails_its_own_tests("emulate", &copy);

    let reference = start("emulate", true);
    let f = "monitor/src/engine.rs";
    std::fs::copy(reference.path().join(f), copy.path().join(f)).unwrap();
    edit(
        &copy,
        f,
        "            c.status &= !sim::hv::cp0::status::EXL;\n",
        "",
    );
    let (code, out) = grade("emulate", Some(&copy));
    assert_eq!(code, 1, "{out}");
    let row = |name: &str| rows(&out).into_iter().find(|r| r.0 == name).unwrap();
    let (sys, probe) = (row("syscall-flow"), row("probe-flow"));
    assert!(!sys.1 && !probe.1, "{out}");
    assert!(sys.2.contains("clears EXL"), "{out}");
    assert!(sys.2.contains("never reaches \"user exit Sys\""), "{out}");

    // Then a TLBWI that writes where Random points instead of where Index
    // says: the boot code's TLB flush (a TLBWI at each index) leaves stale
    // entries behind, the kernel never prints its banner and hangs, and
    // the grader stops it at the cycle limit and says so.
    std::fs::copy(reference.path().join(f), copy.path().join(f)).unwrap();
    edit(
        &copy,
        f,
        "let index = (self.vcpu.cp0.index & 0x3F) as usize;",
        "let index = self.vcpu.random() as usize;",
    );
    let (code, out) = grade("emulate", Some(&copy));
    assert_eq!(code, 1, "{out}");
    let boot = rows(&out).into_iter().find(|r| r.0 == "boot").unwrap();
    assert!(!boot.1, "{out}");
    assert!(
        boot.2.contains("TLBWI writes the virtual TLB at Index"),
        "{out}"
    );
    assert!(
        out.contains("the guest hung, or did not halt in time"),
        "{out}"
    );
}
