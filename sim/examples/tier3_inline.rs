//! Runs one ELF on one CPU in tier 3 with every compile on the CPU's
//! thread (`CompileMode::Inline`), so that under callgrind the code is
//! installed at the same guest point in every run length (with the
//! compiler thread, valgrind's thread scheduling decides when it arrives:
//! docs/tiers.md, "Measuring"). Prints the guest instructions as
//! `total: N`, the line `bench/callgrind.sh` reads.
//!
//! ```text
//! cargo run --release -p disco-sim --example tier3_inline -- IMAGE.elf [THRESHOLD]
//! CALLGRIND_T3_INLINE=1 bash bench/callgrind.sh
//! ```

use std::process::ExitCode;

use sim::dev::Board;
use sim::{CompileMode, Machine, MachineConfig, Tier};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: tier3_inline IMAGE.elf [THRESHOLD]");
        return ExitCode::FAILURE;
    };
    let threshold = args.get(1).and_then(|t| t.parse().ok()).unwrap_or(10_000);
    let Ok(bytes) = std::fs::read(path) else {
        eprintln!("{path}: cannot read");
        return ExitCode::FAILURE;
    };
    let c = MachineConfig {
        tier: Tier::Compiled,
        ..MachineConfig::default()
    };
    let image = match sim::loader::load(&bytes, c.ram_bytes) {
        Ok((image, _)) => image,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut m = Machine::new(c, Board::new(1));
    if !image.load_into(&mut m) {
        eprintln!("{path}: the image does not fit");
        return ExitCode::FAILURE;
    }
    m.set_compile_threshold(threshold);
    m.set_compile_mode(CompileMode::Inline);
    let exit = m.run();
    println!("total: {} ({exit:?})", m.instructions());
    ExitCode::SUCCESS
}
