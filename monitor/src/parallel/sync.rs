//! How the threads of a batch holding a split VM's CPUs keep track of
//! each other ([`Progress`]); where a batch ends ([`Cut`]), how its threads
//! wait ([`Waker`]) and how far one may run ahead ([`Pace`]) are the bare
//! machine's too (`sim::hv`).

use std::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};
use std::sync::atomic::{AtomicU32, AtomicUsize};

use crossbeam::utils::CachePadded;

pub(super) use sim::hv::{Cut, Pace, Waker};

/// How far the threads holding a split VM's CPUs (its *parts*) are through
/// the batch, as the bare machine's threads track each other
/// (`sim::parallel`). Each part publishes the quantum it finished; the
/// part that sees every part past quantum `k` settles the VM's boundaries
/// up to `k` (board, console, wake-ups), under the VM's lock, in order,
/// and says so in `met`. A part whose VCPUs all run on may begin its next
/// quantum before the others finish this one, up to a [`Pace`]'s lead
/// ahead of `met`; while a part is *held back* (a VCPU of it waits, is not
/// runnable or is wanted by the scheduler), no part runs ahead, so a
/// waiting VCPU is woken at the next quantum's end as in lockstep. Each
/// word is on a cache line of its own: the threads poll them.
pub(super) struct Progress {
    /// Per part: the last quantum it finished.
    done: Box<[CachePadded<AtomicU32>]>,
    /// The last quantum whose boundary is settled.
    met: CachePadded<AtomicU32>,
    /// Parts held back.
    held_back: CachePadded<AtomicUsize>,
}

impl Progress {
    pub(super) fn new(parts: usize) -> Progress {
        Progress {
            done: (0..parts)
                .map(|_| CachePadded::new(AtomicU32::new(0)))
                .collect(),
            met: CachePadded::new(AtomicU32::new(0)),
            held_back: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    /// Part `part` finished quantum `q`. Returns the last quantum every
    /// part has finished, if its boundary (or an earlier one) is not
    /// settled yet: the caller then settles them ([`Progress::unsettled`]).
    pub(super) fn finished(&self, part: usize, q: u32) -> Option<u32> {
        // SeqCst, store and loads: two parts finishing at once each store
        // their word and then read the other's, and at least one must see
        // both, or no one would settle the quantum.
        if let Some(d) = self.done.get(part) {
            d.store(q, SeqCst);
        }
        let all = self.done.iter().map(|d| d.load(SeqCst)).min().unwrap_or(q);
        (all > self.met.load(Acquire)).then_some(all)
    }

    /// Under the VM's lock: the quanta after the last settled one, up to
    /// `all`, for the caller to settle in order; then [`Progress::settled`].
    pub(super) fn unsettled(&self, all: u32) -> std::ops::RangeInclusive<u32> {
        // Under the lock `met` only grows, one settler at a time.
        self.met.load(Relaxed).saturating_add(1)..=all
    }

    /// Under the VM's lock: the boundaries up to `all` are settled.
    pub(super) fn settled(&self, all: u32, waker: &Waker) {
        if all > self.met.load(Relaxed) {
            waker.publish(&self.met, all);
        }
    }

    pub(super) fn met(&self) -> u32 {
        self.met.load(Acquire)
    }

    /// Waits until quantum `q`'s boundary is settled.
    pub(super) fn wait(&self, q: u32, waker: &Waker) {
        waker.wait(&self.met, q);
    }

    /// Whether some part is held back.
    pub(super) fn holding_back(&self) -> bool {
        self.held_back.load(Acquire) > 0
    }

    /// A part starts or stops being held back.
    pub(super) fn hold_back(&self, held: bool) {
        if held {
            self.held_back.fetch_add(1, SeqCst);
        } else {
            self.held_back.fetch_sub(1, SeqCst);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use parking_lot::Mutex;
    use std::sync::Arc;

    /// Two parts run 2,000 quanta, as `run::run_job` runs them, one of
    /// them slower and held back now and then: every boundary is settled
    /// exactly once and in order, none before both parts finished its
    /// quantum, and no part begins a quantum more than the lead ahead of
    /// the settled one.
    #[test]
    fn each_boundary_is_settled_once_in_order_after_every_part_finished_it() {
        const QUANTA: u32 = 2000;
        let progress = Arc::new(Progress::new(2));
        let waker = Arc::new(Waker::default());
        // The "VM": the boundaries settled, under its lock.
        let vm = Arc::new(Mutex::new(Vec::<u32>::new()));
        let finished = Arc::new([AtomicU32::new(0), AtomicU32::new(0)]);
        let run = |part: usize| {
            let (progress, waker, vm, finished) = (
                Arc::clone(&progress),
                Arc::clone(&waker),
                Arc::clone(&vm),
                Arc::clone(&finished),
            );
            move || {
                let mut pace = Pace::default();
                let mut held = false;
                for q in 1..=QUANTA {
                    let lead = pace.lead(progress.met(), progress.holding_back());
                    if q > lead {
                        progress.wait(q - lead, &waker);
                    }
                    let met = progress.met();
                    assert!(q <= met + sim::hv::LEAD, "quantum {q} begun at {met}");
                    if part == 1 {
                        // The slower part.
                        for _ in 0..200 {
                            std::hint::spin_loop();
                        }
                    }
                    pace.ran();
                    let hold = part == 1 && q % 7 == 0;
                    if hold != held {
                        progress.hold_back(hold);
                        held = hold;
                    }
                    finished[part].store(q, SeqCst);
                    if let Some(all) = progress.finished(part, q) {
                        let mut settled = vm.lock();
                        for k in progress.unsettled(all) {
                            for f in finished.iter() {
                                assert!(f.load(SeqCst) >= k, "{k} settled early");
                            }
                            settled.push(k);
                        }
                        progress.settled(all, &waker);
                    }
                }
            }
        };
        let other = std::thread::spawn(run(1));
        run(0)();
        other.join().unwrap();
        let settled = vm.lock();
        assert_eq!(*settled, (1..=QUANTA).collect::<Vec<_>>());
    }
}
