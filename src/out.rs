//! Where the CLI's output goes, and what a failed write means: a reader
//! that went away (`disco … | head`) ends the run quietly, any other write
//! error (a full disk) ends it with one line naming what could not be
//! written. The statuses are in src/exit.rs.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Write};
use std::rc::Rc;

/// A write the run could not do; the run stops on it.
#[derive(Debug)]
pub(crate) enum OutputError {
    /// The reader of a pipe went away (EPIPE): not worth a message.
    Closed,
    /// Any other error, with what was being written.
    Failed { what: String, error: io::Error },
}

impl OutputError {
    pub(crate) fn new(what: &str, error: io::Error) -> OutputError {
        if error.kind() == io::ErrorKind::BrokenPipe {
            OutputError::Closed
        } else {
            OutputError::Failed {
                what: what.to_string(),
                error,
            }
        }
    }

    /// A failed write to standard output.
    pub(crate) fn stdout(error: io::Error) -> OutputError {
        OutputError::new("standard output", error)
    }
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputError::Closed => write!(f, "the reader of the output went away"),
            OutputError::Failed { what, error } => write!(f, "cannot write {what}: {error}"),
        }
    }
}

impl std::error::Error for OutputError {}

/// Writes `text` to standard output. Rust ignores SIGPIPE, so a closed
/// pipe comes back here as EPIPE instead of ending the process.
pub(crate) fn print(text: &str) -> Result<(), OutputError> {
    io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(OutputError::stdout)
}

/// Flushes standard output: a failure of its last, buffered line would
/// otherwise go unnoticed at exit.
pub(crate) fn flush_stdout() -> Result<(), OutputError> {
    io::stdout().flush().map_err(OutputError::stdout)
}

/// One line on standard error. It is the last place left to report to,
/// so its own write errors are dropped (`eprintln!` would panic on them).
pub(crate) fn say(line: &str) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// A trace destination that keeps its first write error, so the run loop
/// can stop on it although the machine's tracer drops write results.
pub(crate) struct TraceSink {
    out: Box<dyn Write>,
    what: String,
    failed: Rc<RefCell<Option<OutputError>>>,
}

/// The run loop's side of a [`TraceSink`].
#[derive(Clone)]
pub(crate) struct TraceCheck(Rc<RefCell<Option<OutputError>>>);

impl TraceSink {
    /// `what` names the destination in the message ("the trace file t.txt").
    pub(crate) fn new(out: Box<dyn Write>, what: String) -> (TraceSink, TraceCheck) {
        let failed = Rc::new(RefCell::new(None));
        let check = TraceCheck(failed.clone());
        (TraceSink { out, what, failed }, check)
    }

    fn record<T>(&self, r: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &r {
            let mut failed = self.failed.borrow_mut();
            if failed.is_none() {
                *failed = Some(OutputError::new(
                    &self.what,
                    io::Error::new(e.kind(), e.to_string()),
                ));
            }
        }
        r
    }
}

impl Write for TraceSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failed.borrow().is_some() {
            // The run is stopping: drop the rest.
            return Err(io::Error::other("the trace destination failed"));
        }
        let r = self.out.write(buf);
        self.record(r)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.failed.borrow().is_some() {
            return Err(io::Error::other("the trace destination failed"));
        }
        let r = self.out.flush();
        self.record(r)
    }
}

impl TraceCheck {
    /// The trace's first write error, if there was one.
    pub(crate) fn take(&self) -> Result<(), OutputError> {
        match self.0.borrow_mut().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A writer that fails like a full disk after `room` bytes.
    struct Full {
        room: usize,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if buf.len() > self.room {
                return Err(io::Error::from_raw_os_error(28)); // ENOSPC
            }
            self.room -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_trace_write_error_is_kept_for_the_run_loop() {
        let (mut sink, check) = TraceSink::new(Box::new(Full { room: 8 }), "the trace".into());
        sink.write_all(b"12345678").unwrap();
        assert!(check.take().is_ok());
        // The tracer ignores this result; the check does not.
        let _ = sink.write_all(b"9");
        let e = check.take().unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot write the trace: No space left"),
            "{e}"
        );
    }

    #[test]
    fn a_broken_pipe_is_a_quiet_ending() {
        let e = OutputError::stdout(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(matches!(e, OutputError::Closed));
    }
}
