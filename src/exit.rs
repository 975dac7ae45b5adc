//! How `disco` ends: the process exit statuses, in one table that `--help`
//! and docs/config.md ("Exit status") both show, and the one line on
//! standard error that names every non-zero ending.

/// The bare machine ran and the guest halted with 0; under the monitor,
/// every VM halted with 0; `flow` and `bench` finished.
pub(crate) const EXIT_OK: i32 = 0;
/// Under the monitor: some VM halted with a non-zero status or was stopped.
pub(crate) const EXIT_VM_FAILED: i32 = 1;
/// Bad input: a file, flag or config value (clap's usage errors too).
pub(crate) const EXIT_BAD_INPUT: i32 = 2;
pub(crate) const EXIT_CYCLE_LIMIT: i32 = 3;
pub(crate) const EXIT_IDLE: i32 = 4;
/// Standard output, a trace file or a console file could not be written.
pub(crate) const EXIT_OUTPUT: i32 = 5;
/// 128 + SIGINT, as shells report a program Ctrl-C ended.
pub(crate) const EXIT_INTERRUPTED: i32 = 130;
/// 128 + SIGPIPE: the reader of standard output went away (`| head`).
/// Silent, as for a Unix tool that SIGPIPE ends, so a pipeline under
/// `set -o pipefail` still sees that the output was cut short.
pub(crate) const EXIT_PIPE_CLOSED: i32 = 141;

/// The exit statuses as `--help` shows them (docs/config.md has the same).
pub(crate) const EXIT_STATUS_HELP: &str = "\
EXIT STATUS (every non-zero status but 141 comes with one line on stderr saying which it is):
  0    the guest halted with 0 (under the monitor: every VM did)
  N    bare machine: the guest halted with status N (its low 8 bits)
  1    under the monitor: a VM halted non-zero or was stopped; disco lab grade: below full marks
  2    bad input: a file, flag or config value (the message names it)
  3    --max-cycles reached before the guest halted
  4    every CPU is parked or stopped and nothing can wake them
  5    output error: standard output, the trace file or a console file
  130  interrupted (Ctrl-C): where each CPU is and the asked-for stats are printed
  141  standard output was closed (e.g. `| head`): ends quietly";

/// How a run ended, as far as the exit status goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The bare machine's guest wrote `status` to the halt register.
    Halted {
        status: u32,
    },
    /// Under the monitor: the first VM that did not halt with 0, as the
    /// summary says how it ended (`None`: every VM halted with 0).
    Vms {
        failure: Option<String>,
    },
    CycleLimit {
        cycles: u64,
    },
    Idle,
    /// `disco lab`: 0, or 1 for a grade below full marks (the table says
    /// which tests failed).
    Graded {
        status: i32,
    },
    /// The monitor stopped a kernel it had been slid under (`--at`).
    Stopped {
        why: String,
    },
    /// Ctrl-C, with where each CPU (VCPU) was: one line each.
    Interrupted {
        cycles: u64,
        positions: Vec<String>,
    },
}

impl Ending {
    /// The exit status and, for a non-zero one, the line that says why.
    pub(crate) fn status(&self) -> (i32, Option<String>) {
        match self {
            Ending::Halted { status } => {
                // The guest's value is the status, as far as 8 bits carry it.
                let code = (status & 0xFF) as i32;
                let line = (code != 0).then(|| {
                    format!("disco: the guest halted with status {status} (exit status {code})")
                });
                (code, line)
            }
            Ending::Vms { failure: None } => (EXIT_OK, None),
            Ending::Vms {
                failure: Some(first),
            } => (
                EXIT_VM_FAILED,
                Some(format!(
                    "disco: not every VM halted with status 0 ({first}; exit status 1)"
                )),
            ),
            Ending::CycleLimit { cycles } => (
                EXIT_CYCLE_LIMIT,
                Some(format!(
                    "disco: stopped after {cycles} cycles (--max-cycles); \
                     the guest had not halted (exit status 3)"
                )),
            ),
            Ending::Idle => (
                EXIT_IDLE,
                Some(
                    "disco: every CPU is parked, paused or stopped and nothing can wake them \
                     (exit status 4)"
                        .to_string(),
                ),
            ),
            Ending::Graded { status } => (
                *status,
                (*status != 0).then(|| format!("disco: below full marks (exit status {status})")),
            ),
            Ending::Stopped { why } => (
                EXIT_VM_FAILED,
                Some(format!(
                    "disco: the monitor stopped the kernel: {why} (exit status 1)"
                )),
            ),
            Ending::Interrupted { cycles, positions } => {
                let mut text =
                    format!("disco: interrupted (Ctrl-C) at cycle {cycles} (exit status 130)");
                for p in positions {
                    text.push('\n');
                    text.push_str(p);
                }
                (EXIT_INTERRUPTED, Some(text))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_status_that_looks_like_a_disco_status_is_named_as_the_guests() {
        let (code, line) = Ending::Halted { status: 2 }.status();
        assert_eq!(code, 2);
        assert_eq!(
            line.as_deref(),
            Some("disco: the guest halted with status 2 (exit status 2)")
        );
        let (code, line) = Ending::Halted { status: 0x102 }.status();
        assert_eq!(code, 2);
        assert!(line.is_some_and(|l| l.contains("status 258")));
        assert_eq!(Ending::Halted { status: 0 }.status(), (0, None));
    }

    #[test]
    fn every_code_in_the_help_table_is_one_of_ours() {
        for code in [
            EXIT_OK,
            EXIT_VM_FAILED,
            EXIT_BAD_INPUT,
            EXIT_CYCLE_LIMIT,
            EXIT_IDLE,
            EXIT_OUTPUT,
            EXIT_INTERRUPTED,
            EXIT_PIPE_CLOSED,
        ] {
            assert!(
                EXIT_STATUS_HELP.contains(&format!("\n  {code:<4} ")),
                "{code} is not in the --help table"
            );
        }
    }
}
