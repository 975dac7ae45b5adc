//! A small pool of host threads for the parallel modes (docs/parallel.md):
//! the bare machine's CPU groups (`parallel`) and the monitor's units
//! (`monitor/src/parallel.rs`) both hand a job by value to a worker over a
//! channel and wait for it to come back. The pool is that hand-off, and
//! what happens when a worker dies (its panic is passed on to the caller).
//! A job is a batch of quanta, whose threads agree on where it ends
//! ([`Cut`]) and wait for each other with a bounded look ([`Waker`]).

use std::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{unbounded, Receiver, RecvError, Sender, TryRecvError};
use parking_lot::{Condvar, Mutex};

/// Worker threads that each run jobs of type `J` one at a time and send
/// them back.
pub struct Pool<J> {
    jobs: Vec<Sender<J>>,
    done: Receiver<(usize, J)>,
    handles: Vec<JoinHandle<()>>,
    /// Names the pool in the panic of a worker that ended without one.
    what: &'static str,
}

impl<J> std::fmt::Debug for Pool<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pool({}, {} workers)", self.what, self.jobs.len())
    }
}

impl<J: Send + 'static> Pool<J> {
    /// One worker per item of `work`: worker `i` runs `work[i]` on each job
    /// it is sent (the closure owns what the worker keeps between jobs,
    /// such as a bus of its own).
    pub fn start<W>(what: &'static str, work: impl IntoIterator<Item = W>) -> Pool<J>
    where
        W: FnMut(&mut J) + Send + 'static,
    {
        let (done_tx, done) = unbounded();
        let mut jobs = Vec::new();
        let mut handles = Vec::new();
        for (i, mut run) in work.into_iter().enumerate() {
            let (tx, rx) = unbounded::<J>();
            let done_tx = done_tx.clone();
            handles.push(std::thread::spawn(move || {
                while let Ok(mut job) = recv_soon(&rx) {
                    run(&mut job);
                    if done_tx.send((i, job)).is_err() {
                        break;
                    }
                }
            }));
            jobs.push(tx);
        }
        Pool {
            jobs,
            done,
            handles,
            what,
        }
    }

    pub fn workers(&self) -> usize {
        self.jobs.len()
    }

    /// Hands `job` to worker `i`. Nothing is sent to a worker that does not
    /// exist; a dead worker's panic is passed on.
    pub fn send(&mut self, i: usize, job: J) {
        let Some(tx) = self.jobs.get(i) else { return };
        if tx.send(job).is_err() {
            self.worker_died();
        }
    }

    /// The next job a worker finished, with the worker's number.
    pub fn recv(&mut self) -> (usize, J) {
        match recv_soon(&self.done) {
            Ok(back) => back,
            Err(_) => self.worker_died(),
        }
    }

    /// A worker thread ended in the middle of the run: only a panic does
    /// that, and it is passed on.
    #[cold]
    fn worker_died(&mut self) -> ! {
        self.jobs.clear();
        for h in self.handles.drain(..) {
            if let Err(payload) = h.join() {
                std::panic::resume_unwind(payload);
            }
        }
        std::panic::resume_unwind(Box::new(format!("a {} worker thread ended", self.what)));
    }
}

impl<J> Drop for Pool<J> {
    fn drop(&mut self) {
        // Closing the channels ends the workers' loops.
        self.jobs.clear();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// Receives from `rx`, looking a little before blocking ([`look`]): the
/// other side is usually less than a batch's work away. With only 64
/// yields (some 30 µs) about half the monitor's hand-offs of two VMs
/// blocked; with `LOOK` almost none do (docs/history/parallel.md,
/// "Measured (the monitor in parallel)").
pub(crate) fn recv_soon<T>(rx: &Receiver<T>) -> Result<T, RecvError> {
    let now = look(|| match rx.try_recv() {
        Ok(v) => Some(Ok(v)),
        Err(TryRecvError::Disconnected) => Some(Err(RecvError)),
        Err(TryRecvError::Empty) => None,
    });
    now.unwrap_or_else(|| rx.recv())
}

/// Tries `attempt` until it gives a value, for a bounded time: a few spins,
/// then yields that hand the core to whoever needs it, for at most
/// `LOOK`; `None` if it never did, and the caller blocks. Everything the
/// parallel modes wait for (another thread's quantum, a batch coming back,
/// a split VM's lock) is usually a fraction of a quantum's work away (tens
/// of µs), and on this project's 2-core KVM guests a futex wake-up of a
/// sleeping thread took tens to hundreds of µs: blocking at once would
/// cost more than the wait. A thread with nothing to run still blocks, so
/// it does not spin.
pub fn look<T>(mut attempt: impl FnMut() -> Option<T>) -> Option<T> {
    let mut deadline = None;
    for i in 0.. {
        if let Some(v) = attempt() {
            return Some(v);
        }
        if i < SPINS {
            std::hint::spin_loop();
            continue;
        }
        let now = Instant::now();
        if now >= *deadline.get_or_insert(now + LOOK) {
            break;
        }
        std::thread::yield_now();
    }
    None
}

/// Spins before [`look`] yields.
const SPINS: u32 = 64;

/// How long [`look`] yields before its caller blocks.
const LOOK: Duration = Duration::from_micros(100);

/// Where a batch ends: every thread runs quanta 1, 2, ... while [`Cut::claim`]
/// lets it, so all stop after the same one. One word holds the last
/// quantum allowed and the furthest one a thread has begun; a cut lowers
/// the first to the second, so no thread has gone past it.
pub struct Cut(AtomicU64);

impl Cut {
    pub fn new(quanta: u32) -> Cut {
        Cut(AtomicU64::new(Cut::pack(quanta, 1)))
    }

    fn pack(last: u32, begun: u32) -> u64 {
        (u64::from(last) << 32) | u64::from(begun)
    }

    fn unpack(word: u64) -> (u32, u32) {
        ((word >> 32) as u32, word as u32)
    }

    /// Starts a new batch of `quanta` quanta (only while no thread runs
    /// one: the hand-off of the batch's jobs publishes it).
    pub fn begin(&self, quanta: u32) {
        self.0.store(Cut::pack(quanta, 1), Relaxed);
    }

    /// Whether quantum `j` is in the batch; if so, it is begun. (One
    /// atomic word, so `Relaxed` is enough: its changes have one order, and
    /// nothing else is published through it.)
    pub fn claim(&self, j: u32) -> bool {
        let r = self.0.fetch_update(Relaxed, Relaxed, |w| {
            let (last, begun) = Cut::unpack(w);
            (j <= last).then(|| Cut::pack(last, begun.max(j)))
        });
        r.is_ok()
    }

    /// Ends the batch after the furthest quantum begun.
    pub fn cut(&self) {
        let _ = self.0.fetch_update(Relaxed, Relaxed, |w| {
            let (last, begun) = Cut::unpack(w);
            Some(Cut::pack(last.min(begun), begun))
        });
    }

    /// The batch's last quantum, once every thread has stopped.
    pub fn last(&self) -> u32 {
        Cut::unpack(self.0.load(Relaxed)).0
    }
}

/// Blocking for a batch's meetings (a split VM's `Progress` in the
/// monitor, the bare machine's progress word), after a bounded [`look`].
#[derive(Default)]
pub struct Waker {
    /// Threads blocked in [`Waker::wait`], and where they block.
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Waker {
    /// Sets `word` to `q` and wakes the threads waiting for it.
    pub fn publish(&self, word: &AtomicU32, q: u32) {
        // SeqCst with the sleeper count below (and the waiter's, in
        // `wait`): either the waiter sees `q`, or this sees the waiter.
        word.store(q, SeqCst);
        if self.sleepers.load(SeqCst) > 0 {
            let _held = self.lock.lock();
            self.wake.notify_all();
        }
    }

    /// Waits until `word` is at least `q`.
    pub fn wait(&self, word: &AtomicU32, q: u32) {
        if look(|| (word.load(Acquire) >= q).then_some(())).is_some() {
            return;
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

/// How many quanta a thread whose CPUs work may be ahead of the slowest:
/// enough to even out quanta of unequal host time (kestrel-par: 8 gained
/// nothing over meeting at every quantum, 32 most of what no bound did),
/// few enough that a kernel's CPUs share work as in lockstep
/// (tests/kestrel.rs's demo: unbounded, one CPU of four got no smp worker).
pub const LEAD: u32 = 32;

/// How many quanta a thread runs ahead while the slowest finishes none: a
/// quantum's host time varies between threads by less than half
/// (kestrel-par), so the slowest finishes one every one or two of the
/// others'; one the host has descheduled finishes none for a time slice.
/// On a loaded host, without this rule a thread off its core let the
/// others run LEAD quanta ahead, and kestrel's demo on 4 CPUs left the
/// CPU running the smp parent without a worker in 1 run of 8
/// (tests/kestrel.rs). Counted in quanta, not host time: a leader that is
/// itself descheduled now and then must not take that for its own pace.
pub const STALL_QUANTA: u32 = 4;

/// What a thread knows of the slowest thread's progress (the bare
/// machine's groups, the monitor's split VMs): the last `met`
/// it saw and how many quanta it has run since that changed.
#[derive(Default)]
pub struct Pace {
    met: u32,
    since: u32,
}

impl Pace {
    /// How far ahead of the slowest (`met`) the thread may begin its next
    /// quantum: [`LEAD`] quanta, or 1 (meet at every quantum) while some
    /// thread's CPUs are idle or the slowest seems descheduled.
    pub fn lead(&mut self, met: u32, idle: bool) -> u32 {
        if met != self.met {
            self.met = met;
            self.since = 0;
        }
        if idle || self.since >= STALL_QUANTA {
            1
        } else {
            LEAD
        }
    }

    pub fn ran(&mut self) {
        self.since = self.since.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cut ends the batch after the furthest quantum begun, never before
    /// one a thread is in, and a new batch starts afresh.
    #[test]
    fn a_cut_ends_the_batch_after_the_furthest_quantum_begun() {
        let cut = Cut::new(100);
        assert!(cut.claim(1) && cut.claim(2) && cut.claim(7));
        // A slower thread is in quantum 3 when its CPU asks for the cut.
        cut.cut();
        assert_eq!(cut.last(), 7);
        assert!(cut.claim(4) && cut.claim(7));
        assert!(!cut.claim(8));
        cut.begin(5);
        assert_eq!(cut.last(), 5);
        assert!(cut.claim(5) && !cut.claim(6));
    }

    /// A thread runs ahead while the slowest finishes a quantum every few
    /// of its own; after STALL_QUANTA without one, or while a CPU idles,
    /// it meets at every quantum until the slowest moves again.
    #[test]
    fn a_slowest_thread_silent_for_several_quanta_stops_the_lead() {
        let mut pace = Pace::default();
        for met in [1, 1, 2, 2, 3, 3, 3, 4] {
            assert_eq!(pace.lead(met, false), LEAD);
            pace.ran();
        }
        assert_eq!(pace.lead(4, true), 1);
        assert_eq!(pace.lead(5, false), LEAD);
        for _ in 1..STALL_QUANTA {
            pace.ran();
            assert_eq!(pace.lead(5, false), LEAD);
        }
        pace.ran();
        assert_eq!(pace.lead(5, false), 1);
        assert_eq!(pace.lead(6, false), LEAD);
    }
}
