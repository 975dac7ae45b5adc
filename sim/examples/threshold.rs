//! Tier 3's compile threshold measured (docs/tiers.md, "The threshold"):
//! runs each ELF in tier 2 and in tier 3 at each threshold, in interleaved
//! rounds, and prints the median host time, the blocks compiled and the
//! guest instructions.
//!
//! ```text
//! cargo run --release -p disco-sim --example threshold -- ROUNDS THRESHOLDS IMAGE:CPUS...
//! (THRESHOLDS comma-separated, e.g. 10,100,1000,10000; a threshold
//! ending in `i`, e.g. 10000i, compiles on the CPU's thread instead of
//! the compiler thread)
//! ```

use std::process::ExitCode;
use std::time::Instant;

use sim::dev::Board;
use sim::{CompileMode, Machine, MachineConfig, Tier};

/// One run: (seconds, blocks compiled, guest instructions, exit).
fn run(
    bytes: &[u8],
    ncpus: usize,
    tier: Tier,
    (threshold, mode): (u32, CompileMode),
) -> Result<(f64, u64, u64, String), String> {
    let c = MachineConfig {
        ncpus,
        tier,
        max_cycles: Some(20_000_000_000),
        ..MachineConfig::default()
    };
    let (image, _) = sim::loader::load(bytes, c.ram_bytes).map_err(|e| e.to_string())?;
    let mut m = Machine::new(c, Board::new(ncpus));
    if !image.load_into(&mut m) {
        return Err("the image does not fit".into());
    }
    m.set_compile_threshold(threshold);
    m.set_compile_mode(mode);
    let t0 = Instant::now();
    let exit = m.run();
    let secs = t0.elapsed().as_secs_f64();
    Ok((
        secs,
        m.blocks_compiled(),
        m.instructions(),
        format!("{exit:?}"),
    ))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(rounds), Some(list)) = (args.first(), args.get(1)) else {
        eprintln!("usage: threshold ROUNDS THRESHOLDS IMAGE:CPUS...");
        return ExitCode::FAILURE;
    };
    let rounds: usize = rounds.parse().unwrap_or(3);
    let thresholds: Vec<(u32, CompileMode)> = list
        .split(',')
        .filter_map(|t| match t.strip_suffix('i') {
            Some(t) => Some((t.parse().ok()?, CompileMode::Inline)),
            None => Some((t.parse().ok()?, CompileMode::Background)),
        })
        .collect();
    println!(
        "| image | tier 2 (s) | {} |",
        thresholds
            .iter()
            .map(|(t, mode)| format!("tier 3 at {t}, {mode:?} (s, blocks)"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    for spec in args.iter().skip(2) {
        let (path, ncpus) = spec.rsplit_once(':').unwrap_or((spec, "1"));
        let ncpus = ncpus.parse().unwrap_or(1);
        let Ok(bytes) = std::fs::read(path) else {
            eprintln!("{path}: cannot read");
            return ExitCode::FAILURE;
        };
        let mut t2 = Vec::new();
        let mut t3 = vec![Vec::new(); thresholds.len()];
        let mut blocks = vec![0; thresholds.len()];
        let mut info = String::new();
        for _ in 0..rounds {
            match run(&bytes, ncpus, Tier::Blocks, (1000, CompileMode::Inline)) {
                Ok((s, _, n, exit)) => {
                    t2.push(s);
                    info = format!("{n} insns, {exit}");
                }
                Err(e) => {
                    eprintln!("{path}: {e}");
                    return ExitCode::FAILURE;
                }
            }
            for (i, &t) in thresholds.iter().enumerate() {
                if let Ok((s, b, _, _)) = run(&bytes, ncpus, Tier::Compiled, t) {
                    t3[i].push(s);
                    blocks[i] = b;
                }
            }
        }
        let cells: Vec<String> = t3
            .into_iter()
            .zip(&blocks)
            .map(|(v, b)| format!("{:.3}, {b}", median(v)))
            .collect();
        println!(
            "| {path} ({info}) | {:.3} | {} |",
            median(t2),
            cells.join(" | ")
        );
    }
    ExitCode::SUCCESS
}
