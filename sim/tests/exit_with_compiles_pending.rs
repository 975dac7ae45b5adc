//! A run ends when its guest halts, whatever tier 3's compiler thread is
//! doing: blocks still on their way to Cranelift are not waited for (the
//! thread is never joined and skips the jobs of a machine that is gone:
//! jit/src/compiler.rs, docs/tiers.md). Alone in its own test binary,
//! because the compiler thread is shared by the process and this test
//! holds it for an hour.
#![allow(clippy::panic, clippy::unwrap_used)]

use std::sync::mpsc;
use std::time::Duration;

use sim::{testkit, workload};
use sim::{CompileMode, Exit, MachineConfig, Tier};

/// What the compiler thread waits before each compile: far longer than
/// the run, so every block the run sends is still pending when it ends.
const COMPILER_DELAY: Duration = Duration::from_secs(3600);

/// How long the test waits for the run and its machine's drop. A run that
/// waited for the compiler would take `COMPILER_DELAY`; this one takes
/// milliseconds, so the bound only separates a hang from an end.
const BOUND: Duration = Duration::from_secs(120);

#[test]
fn a_run_ends_while_its_blocks_wait_for_the_compiler_thread() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let config = MachineConfig {
            tier: Tier::Compiled,
            max_cycles: Some(50_000_000),
            ..MachineConfig::default()
        };
        let mut m = testkit::machine_with(config, &workload::mixed_integer(0x8000_1000, 50));
        m.set_compile_threshold(1);
        m.set_compile_mode(CompileMode::Delayed(COMPILER_DELAY));
        let exit = m.run();
        let sent = m.blocks_compiled();
        drop(m);
        let _ = tx.send((exit, sent));
    });
    let (exit, sent) = rx
        .recv_timeout(BOUND)
        .expect("the run (or its machine's drop) waited for the compiler thread");
    assert_eq!(exit, Exit::Halted { status: 0 });
    // The loop's blocks were sent, and none could have been compiled.
    assert!(sent > 0, "tier 3 sent no block to the compiler");
}
