//! How the threads of a batch agree on where it ends ([`Cut`]) and, for a
//! VM whose CPUs are on several threads, on each quantum's boundary
//! ([`Meet`]).

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, SeqCst};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize};
use std::time::Duration;

use crossbeam::utils::CachePadded;
use parking_lot::{Condvar, Mutex};

/// Where a batch ends: every thread runs quanta 1, 2, ... while [`Cut::claim`]
/// lets it, so all stop after the same one. One word holds the last
/// quantum allowed and the furthest one a thread has begun; a cut lowers
/// the first to the second, so no thread has gone past it.
pub(super) struct Cut(AtomicU64);

impl Cut {
    pub(super) fn new(quanta: u32) -> Cut {
        Cut(AtomicU64::new(Cut::pack(quanta, 1)))
    }

    fn pack(last: u32, begun: u32) -> u64 {
        (u64::from(last) << 32) | u64::from(begun)
    }

    fn unpack(word: u64) -> (u32, u32) {
        ((word >> 32) as u32, word as u32)
    }

    /// Whether quantum `j` is in the batch; if so, it is begun. (One
    /// atomic word, so `Relaxed` is enough: its changes have one order, and
    /// nothing else is published through it.)
    pub(super) fn claim(&self, j: u32) -> bool {
        let r = self.0.fetch_update(Relaxed, Relaxed, |w| {
            let (last, begun) = Cut::unpack(w);
            (j <= last).then(|| Cut::pack(last, begun.max(j)))
        });
        r.is_ok()
    }

    /// Ends the batch after the furthest quantum begun.
    pub(super) fn cut(&self) {
        let _ = self.0.fetch_update(Relaxed, Relaxed, |w| {
            let (last, begun) = Cut::unpack(w);
            Some(Cut::pack(last.min(begun), begun))
        });
    }

    /// The batch's last quantum, once every thread has stopped.
    pub(super) fn last(&self) -> u32 {
        Cut::unpack(self.0.load(Relaxed)).0
    }
}

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

/// Blocking for a batch's [`Meet`]s, after a bounded look.
#[derive(Default)]
pub(super) struct Waker {
    /// Threads blocked in [`Waker::wait`], and where they block.
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

/// Spins before yielding, and yields before blocking, while waiting for
/// another thread's quantum: it is usually a fraction of a quantum's work
/// away (tens of µs), and on this project's KVM hosts a futex wake-up
/// costs about that much; a yield hands the core to whoever needs it.
const SPINS: u32 = 64;
const YIELDS: u32 = 200;

impl Waker {
    fn publish(&self, word: &AtomicU32, q: u32) {
        // SeqCst with the sleeper count below (and the waiter's, in
        // `wait`): either the waiter sees `q`, or this sees the waiter.
        word.store(q, SeqCst);
        if self.sleepers.load(SeqCst) > 0 {
            let _held = self.lock.lock();
            self.wake.notify_all();
        }
    }

    fn wait(&self, word: &AtomicU32, q: u32) {
        for i in 0..SPINS + YIELDS {
            if word.load(Acquire) >= q {
                return;
            }
            if i < SPINS {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        self.sleepers.fetch_add(1, SeqCst);
        let mut held = self.lock.lock();
        while word.load(SeqCst) < q {
            // The timeout only bounds a lost wake-up, which the protocol
            // above rules out.
            self.wake.wait_for(&mut held, Duration::from_millis(1));
        }
        drop(held);
        self.sleepers.fetch_sub(1, SeqCst);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
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
