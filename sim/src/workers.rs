//! A small pool of host threads for the parallel modes (docs/parallel.md):
//! the bare machine's CPU groups (`parallel`) and the monitor's units
//! (`monitor/src/parallel.rs`) both hand a job by value to a worker over a
//! channel and wait for it to come back. The pool is that hand-off, and
//! what happens when a worker dies (its panic is passed on to the caller).

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{unbounded, Receiver, RecvError, Sender, TryRecvError};

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

/// Receives from `rx`, looking a little before blocking: the other side is
/// usually less than a quantum's (or a batch's) work away, and waking a
/// blocked thread costs more than that on a busy host: on this project's
/// 2-core KVM guests a futex wake-up of a sleeping thread took tens to
/// hundreds of µs, against a hand-off every 50 µs to 2 ms of work. A
/// bounded look (a few spins, then yields that hand the core to whoever
/// needs it, for at most [`LOOK`]), then it blocks, so a thread with
/// nothing to run does not spin. With only 64 yields (some 30 µs) about
/// half the monitor's hand-offs of two VMs blocked; with [`LOOK`] almost
/// none do (docs/parallel.md).
pub(crate) fn recv_soon<T>(rx: &Receiver<T>) -> Result<T, RecvError> {
    const SPINS: u32 = 64;
    let mut deadline = None;
    for i in 0.. {
        match rx.try_recv() {
            Ok(v) => return Ok(v),
            Err(TryRecvError::Disconnected) => return Err(RecvError),
            Err(TryRecvError::Empty) => {}
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
    rx.recv()
}

/// How long [`recv_soon`] yields before it blocks.
const LOOK: Duration = Duration::from_micros(100);
