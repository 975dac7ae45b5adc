//! Writes the built-in mixed integer workload as a raw big-endian binary for
//! origin 0x80001000, for wrapping into an ELF to run on other emulators:
//! `cargo run -p disco-sim --example workload_bin -- PASSES OUT.bin [CPUS|malta]`
//! (with CPUS, the workload on every CPU: `mixed_integer_smp`; with `malta`,
//! the one-CPU workload with QEMU Malta's halt, `workload::Halt::Malta`).

use sim::workload::{self, Halt};

fn main() {
    let mut args = std::env::args().skip(1);
    let passes: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let out = args.next().unwrap_or_else(|| "workload.bin".to_string());
    let third = args.next().unwrap_or_default();
    let cpus: u32 = third.parse().unwrap_or(1);
    let asm = if third == "malta" {
        workload::mixed_integer_on(0x8000_1000, 0x8020_0000, passes, Halt::Malta)
    } else if cpus > 1 {
        workload::mixed_integer_smp(0x8000_1000, passes, cpus)
    } else {
        workload::mixed_integer(0x8000_1000, passes)
    };
    let bytes = asm.bytes().expect("the workload's labels resolve");
    std::fs::write(&out, bytes).expect("can write the output file");
}
