//! `cargo bench -p disco-sim --bench mips`: simulated instructions per host
//! second on the built-in mixed integer workload, one CPU, cycle accounting
//! on. Prints a figure; asserts nothing about speed.

use std::time::Instant;

use sim::dev::Board;
use sim::{Exit, Machine, MachineConfig};

fn main() {
    let passes: u32 = std::env::var("DISCO_BENCH_PASSES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let program = sim::workload::mixed_integer(0x8000_1000, passes);
    let bytes = program.bytes().expect("workload assembles");
    let mut best = f64::MAX;
    let mut insns = 0;
    let mut cycles = 0;
    for _ in 0..3 {
        let mut m = Machine::new(MachineConfig::default(), Board::new(1));
        assert!(m.bus.write_bytes(0x1000, &bytes));
        m.cpus[0].boot(0xFFFF_FFFF_8000_1000, 0xFFFF_FFFF_8010_0000);
        let start = Instant::now();
        let exit = m.run();
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(exit, Exit::Halted { status: 0 });
        insns = m.instructions();
        cycles = m.cpus[0].cycles();
        best = best.min(secs);
    }
    println!(
        "mixed integer workload: {insns} instructions, {cycles} cycles (CPI {:.3}), best of 3: {best:.3} s = {:.1} MIPS",
        cycles as f64 / insns as f64,
        insns as f64 / best / 1e6
    );
}
