//! Real gdb-multiarch against the stub, served in-process on a thread over
//! a bare machine running a small C kernel built here with the cross
//! compiler (so `break add` and `print total` have symbols and types).

#![allow(clippy::panic, clippy::unwrap_used)]

mod gdb_common;

use gdb_common::*;
use sim::gdb::End;
use sim::Exit;

const PROG: &str = r#"
volatile int counter;
int total;

static void putc_(char c) { *(volatile char *)0xB0000000 = c; }

int add(int a, int b)
{
    int sum = a + b;
    return sum;
}

int main(void)
{
    int i;
    for (i = 0; i < 5; i++)
        counter = add(counter, i);
    total = counter;
    putc_('o');
    putc_('k');
    putc_('\n');
    return 0;
}
"#;

fn tools(test: &str) -> bool {
    have("gdb-multiarch", test) && have("mips-linux-gnu-gcc", test)
}

#[test]
fn gdb_breaks_in_a_function_reads_steps_and_watches() {
    if !tools("gdb_breaks_in_a_function_reads_steps_and_watches") {
        return;
    }
    let dir = scratch("multiarch");
    let elf = build_elf(&dir, PROG);
    let bytes = std::fs::read(&elf).unwrap();
    let add = machine(&bytes, 1).1.address_of("add").unwrap() as u32;
    let (port, done) = serve(move || machine(&bytes, 1).0);
    let text = gdb(
        &elf,
        port,
        &[],
        &[
            "break add",
            "continue",
            "print counter",
            "print a",
            "print b",
            "next",
            "print sum",
            "stepi",
            "info registers pc sr cause",
            "delete",
            "watch total",
            "continue",
            "print total",
            "info threads",
            "delete",
            "continue",
        ],
    );
    let served = done.recv().unwrap();
    assert!(text.contains("Breakpoint 1, add (a=0, b=0)"), "{text}");
    assert!(text.contains("$1 = 0"), "{text}");
    assert!(text.contains("$4 = 0"), "sum after `next`: {text}");
    assert!(text.contains("pc: 0x") || text.contains("pc "), "{text}");
    assert!(text.contains("sr") && text.contains("cause"), "{text}");
    assert!(
        text.contains("Old value = 0") && text.contains("New value = 10"),
        "{text}"
    );
    assert!(text.contains("$5 = 10"), "{text}");
    assert!(text.contains("Thread 1 (CPU 0)"), "{text}");
    assert!(text.contains("exited normally"), "{text}");
    assert_eq!(served.end, End::Exited(0));
    assert_eq!(served.exit, Some(Exit::Halted { status: 0 }));
    assert_eq!(served.console, b"ok\n");
    assert!(add >= 0x8001_0000);
    let _ = std::fs::remove_dir_all(dir);
}

/// `set architecture mips:4000` before connecting (as a student would
/// with no ELF loaded yet) gives the same 64-bit registers.
#[test]
fn gdb_with_architecture_mips_4000_reads_registers() {
    if !tools("gdb_with_architecture_mips_4000_reads_registers") {
        return;
    }
    let dir = scratch("arch");
    let elf = build_elf(&dir, PROG);
    let bytes = std::fs::read(&elf).unwrap();
    let main = machine(&bytes, 1).1.address_of("main").unwrap() as u32;
    let (port, done) = serve(move || machine(&bytes, 1).0);
    let text = gdb(
        &elf,
        port,
        &["set architecture mips:4000"],
        &[
            &format!("break *0x{main:x}"),
            "continue",
            "info registers pc",
            "print $sp",
            "x/2xw $pc",
            "detach",
        ],
    );
    let served = done.recv().unwrap();
    assert!(text.contains(&format!("0x{main:x}")), "{text}");
    assert!(text.contains("Breakpoint 1, "), "{text}");
    assert!(
        !text.contains("Remote 'g' packet reply is too long"),
        "{text}"
    );
    assert_eq!(served.end, End::Detached);
    assert_eq!(served.exit, Some(Exit::Halted { status: 0 }));
    let _ = std::fs::remove_dir_all(dir);
}
