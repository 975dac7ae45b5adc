//! Observation: the typed events a CPU reports when tracing is on.
//! Tracing, statistics and debuggers consume them; the untraced loop never
//! creates one.

use crate::cpu::{ExcCode, Mode, TlbEntry};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// An instruction about to execute.
    Insn {
        pc: u64,
        word: u32,
        mode: Mode,
    },
    /// Exception entry.
    Exception {
        code: ExcCode,
        /// The instruction that faulted (EPC, or the branch for BD).
        epc: u64,
        /// The address the CPU was executing (differs from epc in a delay slot).
        pc: u64,
        vector: u64,
        badvaddr: Option<u64>,
        bd: bool,
        from: Mode,
        refill: bool,
    },
    Eret {
        from: u64,
        to: u64,
        mode: Mode,
    },
    TlbWrite {
        index: usize,
        random: bool,
        entry: TlbEntry,
    },
    Mmio {
        paddr: u64,
        width: u8,
        value: u64,
        write: bool,
    },
    /// An interrupt was taken with these Cause.IP & Status.IM bits.
    Interrupt {
        pending: u32,
    },
    /// The CPU started idling on WAIT.
    Wait {
        pc: u64,
    },
}
