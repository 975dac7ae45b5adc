//! Code installed in the middle of a run (docs/tiers.md, "Compiling in
//! the background"): the compiler thread's code arrives whenever it is
//! ready, and whatever the moment, the run is the reference's. Here the
//! moment is chosen: the machine runs some quanta with every block sent
//! to a compiler that takes long, waits for the code, installs it and
//! runs on compiled; and the same with the code arriving whenever it
//! does, and with it compiled on the CPU's thread at once.

use super::*;

/// Runs `make`'s machine in tier 3 (threshold 2), waiting for the
/// compiler after `quanta` quanta if given; the outcome and the
/// functions installed by then.
fn installed_after(
    make: &dyn Fn(MachineConfig) -> Machine,
    base: &MachineConfig,
    mode: CompileMode,
    quanta: Option<usize>,
) -> (Outcome, u64, u64) {
    let mut m = make(MachineConfig {
        tier: Tier::Compiled,
        ..base.clone()
    });
    m.set_compile_threshold(2);
    m.set_compile_mode(mode);
    let mut installed = 0;
    let exit = loop {
        if quanta.is_some_and(|q| m.now / base.quantum == q as u64) && installed == 0 {
            installed = m.wait_for_compiles();
        }
        if let Some(exit) = m.run_quantum() {
            break exit;
        }
    };
    let requests = m.blocks_compiled();
    (outcome(&mut m, exit, Vec::new()), installed, requests)
}

#[test]
fn code_installed_mid_run_leaves_the_reference_results() {
    let img = asm_image(&workload::mixed_integer(0x8000_1000, 40));
    let make = image_machine(&img);
    let base = config(1);
    let reference = run(&make, &base, Tier::Interp, false);
    halted(&reference);
    let slow = CompileMode::Delayed(Duration::from_millis(2));
    let (late, installed, requests) = installed_after(&make, &base, slow, Some(3));
    assert_eq!(reference, late, "code installed after 3 quanta");
    assert!(installed > 0, "nothing was installed mid-run");
    for mode in [CompileMode::Inline, CompileMode::Background, slow] {
        let (o, _, n) = installed_after(&make, &base, mode, None);
        assert_eq!(reference, o, "{mode:?}");
        assert_eq!(requests, n, "{mode:?}: the requests differ");
    }
}

#[test]
fn code_installed_mid_run_on_four_cpus_leaves_the_reference_results() {
    let img = asm_image(&workload::mixed_integer_smp(0x8000_1000, 10, 4));
    let make = image_machine(&img);
    let base = config(4);
    let reference = run(&make, &base, Tier::Interp, false);
    halted(&reference);
    let slow = CompileMode::Delayed(Duration::from_millis(1));
    for quanta in [1, 5] {
        let (late, installed, _) = installed_after(&make, &base, slow, Some(quanta));
        assert_eq!(reference, late, "code installed after {quanta} quanta");
        assert!(installed > 0, "nothing was installed after {quanta} quanta");
    }
}
