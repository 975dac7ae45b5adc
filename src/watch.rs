//! What the run loops watch between quanta, outside the simulated
//! machine: Ctrl-C, and a progress line for long runs. Only the CLI reads
//! the host clock; sim and monitor never do (../shared/docs/style.md §17).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::exit::EXIT_INTERRUPTED;

/// Set by the first Ctrl-C while a run loop polls it.
static STOP: AtomicBool = AtomicBool::new(false);
/// Whether a run loop is polling [`STOP`] now.
static POLLED: AtomicBool = AtomicBool::new(false);

/// Installs the Ctrl-C handler. While a run loop polls [`interrupted`],
/// the first Ctrl-C asks it to stop at the next quantum boundary, so that
/// it can say where each CPU is; otherwise (loading, a GDB session, bench)
/// or on a second Ctrl-C, disco exits at once with the same status.
pub(crate) fn install() {
    // If the handler cannot be installed, Ctrl-C ends disco as SIGINT
    // always does: still status 130 to the shell, only without the report.
    let _ = ctrlc::set_handler(|| {
        if POLLED.load(Ordering::SeqCst) && !STOP.swap(true, Ordering::SeqCst) {
            return;
        }
        crate::out::say("disco: interrupted (Ctrl-C) (exit status 130)");
        std::process::exit(EXIT_INTERRUPTED);
    });
}

/// Marks a run loop as polling [`interrupted`] while it lives.
pub(crate) struct Polling(());

impl Polling {
    pub(crate) fn start() -> Polling {
        POLLED.store(true, Ordering::SeqCst);
        Polling(())
    }
}

impl Drop for Polling {
    fn drop(&mut self) {
        POLLED.store(false, Ordering::SeqCst);
    }
}

/// Whether Ctrl-C asked the run to stop.
pub(crate) fn interrupted() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// `[disco] 1234.5 M cycles, 617.3 M instructions, 45.6 MIPS` on standard error, redrawn in
/// place at most once a second, when standard error is a terminal that no
/// trace is written to.
pub(crate) struct Progress {
    on: bool,
    shown: bool,
    /// When the line was last drawn, and the instructions then.
    last: (Instant, u64),
}

const EVERY: Duration = Duration::from_secs(1);

impl Progress {
    pub(crate) fn new(trace_on_stderr: bool) -> Progress {
        Progress {
            on: !trace_on_stderr && std::io::stderr().is_terminal(),
            shown: false,
            last: (Instant::now(), 0),
        }
    }

    /// At a quantum boundary: redraws the line if a second has passed.
    /// `instructions` is only asked for then.
    pub(crate) fn tick(&mut self, cycles: u64, instructions: impl FnOnce() -> u64) {
        if !self.on {
            return;
        }
        let now = Instant::now();
        let secs = now.duration_since(self.last.0);
        if secs < EVERY {
            return;
        }
        let insns = instructions();
        let mips = insns.saturating_sub(self.last.1) as f64 / secs.as_secs_f64() / 1e6;
        self.last = (now, insns);
        self.shown = true;
        let _ = write!(
            std::io::stderr().lock(),
            "\r\x1b[2K[disco] {:.1} M cycles, {:.1} M instructions, {mips:.1} MIPS",
            cycles as f64 / 1e6,
            insns as f64 / 1e6
        );
    }

    /// Erases the line before other output reaches the terminal.
    pub(crate) fn clear(&mut self) {
        if self.shown {
            self.shown = false;
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
        }
    }
}

/// However the run ends (an error too), the line is gone before the
/// ending's own line is written.
impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}
