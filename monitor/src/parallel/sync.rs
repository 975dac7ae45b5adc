//! How the threads of a batch agree, for a VM whose CPUs are on several
//! threads, on each quantum's boundary ([`Meet`]); where a batch ends
//! ([`Cut`]) and how its threads wait ([`Waker`]) are the bare machine's
//! too (`sim::hv`).

use std::sync::atomic::Ordering::{AcqRel, Relaxed};
use std::sync::atomic::{AtomicU32, AtomicUsize};

use crossbeam::utils::CachePadded;

pub(super) use sim::hv::{Cut, Waker};

/// Where the threads holding a split VM's CPUs meet at each quantum's
/// end. Every thread arrives once it has run its CPUs of the VM through the
/// quantum; the last to arrive settles the VM's boundary (board, console,
/// wake-ups) and says so; the others wait for that before they begin the
/// next quantum. So the VM's boundary sees each quantum once, after all
/// its CPUs, as in the deterministic mode, and the thread with the most
/// work (the last to arrive) never waits. Each word is on a cache line of
/// its own: the threads poll them.
pub(super) struct Meet {
    parts: usize,
    arrived: CachePadded<AtomicUsize>,
    settled: CachePadded<AtomicU32>,
}

impl Meet {
    pub(super) fn new(parts: usize) -> Meet {
        Meet {
            parts,
            arrived: CachePadded::new(AtomicUsize::new(0)),
            settled: CachePadded::new(AtomicU32::new(0)),
        }
    }

    /// Arrives at the end of the current quantum; true for the last to
    /// arrive, which must then settle it ([`Meet::settled`]).
    pub(super) fn arrive(&self) -> bool {
        if self.arrived.fetch_add(1, AcqRel) + 1 < self.parts {
            return false;
        }
        // No thread arrives again before `settled` says this quantum is.
        self.arrived.store(0, Relaxed);
        true
    }

    /// Quantum `q`'s boundary is settled.
    pub(super) fn settled(&self, q: u32, waker: &Waker) {
        waker.publish(&self.settled, q);
    }

    /// Waits until quantum `q`'s boundary is settled.
    pub(super) fn wait(&self, q: u32, waker: &Waker) {
        waker.wait(&self.settled, q);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::SeqCst;
    use std::sync::Arc;

    /// Two threads meet at 2,000 quanta: exactly one settles each, and
    /// neither begins a quantum before the last one is settled.
    #[test]
    fn one_thread_settles_each_quantum_and_the_other_waits_for_it() {
        let meet = Arc::new(Meet::new(2));
        let waker = Arc::new(Waker::default());
        let settled = Arc::new(AtomicU32::new(0));
        let settles = Arc::new(AtomicUsize::new(0));
        let run = {
            let (meet, waker, settled, settles) = (
                Arc::clone(&meet),
                Arc::clone(&waker),
                Arc::clone(&settled),
                Arc::clone(&settles),
            );
            move || {
                for q in 1..=2000u32 {
                    // Quantum q begins only once q - 1 is settled.
                    assert_eq!(settled.load(SeqCst), q - 1);
                    if meet.arrive() {
                        settles.fetch_add(1, SeqCst);
                        settled.store(q, SeqCst);
                        meet.settled(q, &waker);
                    } else {
                        meet.wait(q, &waker);
                    }
                }
            }
        };
        let other = std::thread::spawn(run.clone());
        run();
        other.join().unwrap();
        assert_eq!(settles.load(SeqCst), 2000);
    }
}
