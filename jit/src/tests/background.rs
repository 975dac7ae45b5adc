//! The compiler thread: a handle runs nothing until its code is installed
//! between runs ([`Jit::poll`]), and then runs as code compiled on the
//! caller's thread does; answers of an older epoch and loops of a dropped
//! block are discarded.

use std::time::Duration;

use super::chain::{counting_loop, run, BASE};
use super::fast::Words;
use super::region::{side_exit_blocks, two_blocks};
use crate::{Code, Jit, Mode, State, MAX_CHAIN};

/// Polls until the compiler thread has answered everything (it always
/// does; the bound only turns a lost answer into a failure, not a hang).
fn settle(jit: &mut Jit) {
    for _ in 0..10_000 {
        jit.poll();
        if jit.pending() == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("the compiler thread did not answer");
}

fn not_run(jit: &Jit, code: Code) -> bool {
    let mut gpr = [0u64; 32];
    let mut st = State::default();
    jit.run(code, &mut gpr, &mut st, BASE, &mut Words::new(true))
        .is_none()
}

#[test]
fn background_code_runs_once_installed_as_inline_code_does() {
    for mode in [Mode::Background, Mode::Delayed(Duration::from_millis(5))] {
        let mut jit = Jit::with_mode(mode).unwrap();
        let code = jit.compile(&counting_loop()).unwrap();
        // Nothing is installed but by `poll`.
        assert!(not_run(&jit, code), "{mode:?}");
        assert_eq!((jit.compiled(), jit.pending()), (1, 1));
        settle(&mut jit);
        let mut inline = Jit::new().unwrap();
        let reference = inline.compile(&counting_loop()).unwrap();
        let (mut a, mut b) = (Words::new(true), Words::new(true));
        assert_eq!(
            run(&jit, code, 5, 1 << 40, &mut a),
            run(&inline, reference, 5, 1 << 40, &mut b),
            "{mode:?}"
        );
        // A loop closed through the thread, installed by a later poll.
        assert!(jit.link((code, 3), (code, BASE), 13, 0));
        assert!(jit.close_loop(code));
        assert_eq!(jit.loops(), 0);
        settle(&mut jit);
        assert_eq!(jit.loops(), 1);
        let (_, st, g) = run(&jit, code, 5_000, 1 << 40, &mut a);
        assert_eq!((g[1], st.retired), (5_000, 4_999 * 3), "{mode:?}");
    }
}

#[test]
fn answers_for_a_reset_epoch_or_a_dropped_block_are_discarded() {
    let mut jit = Jit::with_mode(Mode::Delayed(Duration::from_millis(5))).unwrap();
    let old = jit.compile(&counting_loop()).unwrap();
    jit.reset();
    settle(&mut jit);
    assert!(not_run(&jit, old));
    assert_eq!(jit.compiled(), 0);
    // A loop asked for, then a member dropped before it arrives.
    let code = jit.compile(&counting_loop()).unwrap();
    settle(&mut jit);
    assert!(jit.link((code, 3), (code, BASE), 13, 0));
    assert!(jit.close_loop(code));
    jit.forget(code);
    settle(&mut jit);
    assert_eq!(jit.loops(), 0);
    // The block's own code still runs (a chain of one: no link left).
    let (_, st, g) = run(&jit, code, 5, 1 << 40, &mut Words::new(true));
    assert_eq!((g[1], st.retired), (1, 0));
}

#[test]
fn a_member_of_a_loop_on_its_way_closes_no_other() {
    let mut jit = Jit::with_mode(Mode::Delayed(Duration::from_millis(5))).unwrap();
    let (a, b) = two_blocks();
    let (ca, cb) = (jit.compile(&a).unwrap(), jit.compile(&b).unwrap());
    settle(&mut jit);
    assert!(jit.link((ca, 3), (cb, BASE + 32), 13, 0));
    assert!(jit.link((cb, 3), (ca, BASE), 13, 0));
    assert!(jit.close_loop(ca));
    // B's loop is A's: it is not sent again while A's is compiled.
    assert!(!jit.close_loop(cb));
    assert_eq!(jit.pending(), 1);
    settle(&mut jit);
    assert_eq!(jit.loops(), 1);
    assert!(!jit.close_loop(cb));
    let (_, st, g) = run(&jit, ca, 1000, 1 << 40, &mut Words::new(true));
    assert_eq!((g[1], st.retired), (1000, 999 * 6 + 3));
}

#[test]
fn many_clients_share_the_compiler_thread() {
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                let mut jit = Jit::with_mode(Mode::Background).unwrap();
                let codes: Vec<_> = (0..8)
                    .map(|_| jit.compile(&counting_loop()).unwrap())
                    .collect();
                settle(&mut jit);
                codes
                    .into_iter()
                    .map(|c| run(&jit, c, 3, 1 << 40, &mut Words::new(true)).2[1])
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), vec![1; 8]);
    }
}

#[test]
fn a_link_made_while_its_loop_is_compiled_is_in_the_loop_installed_at_last() {
    let mut jit = Jit::with_mode(Mode::Delayed(Duration::from_millis(5))).unwrap();
    let (a, b) = side_exit_blocks();
    let (ca, cb) = (jit.compile(&a).unwrap(), jit.compile(&b).unwrap());
    settle(&mut jit);
    assert!(jit.link((ca, 6), (cb, BASE + 32), 13, 0));
    assert!(jit.link((cb, 3), (ca, BASE), 16, 0));
    assert!(jit.close_loop(ca));
    // Linked before the loop arrives: its installation sends it again.
    assert!(jit.link((ca, 3), (ca, BASE), 16, 0));
    assert!(!jit.close_loop(ca));
    settle(&mut jit);
    assert_eq!((jit.loops(), jit.relinked()), (1, 1));
    let (_, st, g) = run(&jit, ca, 1000, 1 << 40, &mut Words::new(true));
    assert_eq!((st.links, st.retired, g[1]), (MAX_CHAIN, 999 * 3 + 6, 1000));
}
