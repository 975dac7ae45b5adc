//! The back end: what the protocol needs from whatever it debugs (the bare
//! machine, or one VM under the monitor). Threads are numbered from 0 here;
//! the protocol shows thread `t` to GDB as `t + 1`.

use crate::cpu::{Cp0, Regs};

/// Registers in GDB's numbering for a 64-bit MIPS (see `super::xml`).
pub mod regnum {
    pub const STATUS: usize = 32;
    pub const LO: usize = 33;
    pub const HI: usize = 34;
    pub const BADVADDR: usize = 35;
    pub const CAUSE: usize = 36;
    pub const PC: usize = 37;
    /// f0–f31, fcsr, fir: there is no FPU, so they read as 0.
    pub const FIRST_FPU: usize = 38;
    /// Registers in the `g` packet.
    pub const COUNT: usize = 72;
}

/// What a breakpoint or watchpoint is (the `type` of a `Z` packet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointKind {
    /// Z0: a software breakpoint. Here a simulator PC breakpoint, exactly
    /// like Z1: guest memory is never patched.
    Software,
    /// Z1.
    Hardware,
    /// Z2: stop after a store to the range.
    Write,
    /// Z3: stop after a load from the range.
    Read,
    /// Z4: stop after either.
    Access,
}

impl PointKind {
    pub(crate) fn from_z(n: u8) -> Option<PointKind> {
        Some(match n {
            0 => PointKind::Software,
            1 => PointKind::Hardware,
            2 => PointKind::Write,
            3 => PointKind::Read,
            4 => PointKind::Access,
            _ => return None,
        })
    }

    pub(crate) fn is_watch(self) -> bool {
        matches!(self, PointKind::Write | PointKind::Read | PointKind::Access)
    }

    /// The stop-reply keyword GDB expects for a watchpoint of this kind.
    pub(crate) fn stop_word(self) -> &'static str {
        match self {
            PointKind::Read => "rwatch",
            PointKind::Access => "awatch",
            _ => "watch",
        }
    }
}

/// A breakpoint or watchpoint as GDB set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Point {
    pub kind: PointKind,
    /// The virtual address, as GDB sent it (32-bit or sign-extended).
    pub addr: u64,
    /// Bytes watched (watchpoints), or the breakpoint's kind (ignored).
    pub len: u64,
}

impl Point {
    /// The simulator's [`crate::Watchpoint`] for a watch kind.
    pub(crate) fn watchpoint(&self) -> crate::Watchpoint {
        crate::Watchpoint {
            addr: self.addr,
            len: self.len.max(1),
            on_load: matches!(self.kind, PointKind::Read | PointKind::Access),
            on_store: matches!(self.kind, PointKind::Write | PointKind::Access),
        }
    }
}

/// Why the target stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A breakpoint or a finished single step on `thread` (SIGTRAP).
    Trap { thread: usize },
    /// A watchpoint on `thread`: which one, and the address accessed.
    Watch {
        thread: usize,
        kind: PointKind,
        addr: u64,
    },
    /// Ctrl-C (SIGINT); reported on the thread GDB resumed.
    Interrupted { thread: usize },
    /// The program ended (the guest halted with this status, or the
    /// machine can no longer run).
    Exited { status: u32 },
}

/// How to resume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    Continue,
    /// Execute one instruction of this thread (the others run alongside
    /// until it has).
    Step(usize),
}

/// The debug operations the protocol front end calls. Every operation is
/// called with the target stopped, except that [`Target::run`] runs it for a
/// while; the front end looks for Ctrl-C between two calls.
pub trait Target {
    /// Number of threads (CPUs or VCPUs); at least 1.
    fn threads(&self) -> usize;
    /// Text for `info threads` (e.g. "CPU 0").
    fn thread_name(&self, thread: usize) -> String;
    /// Register `n` in GDB's numbering, or `None` if there is no such
    /// register or thread.
    fn read_register(&self, thread: usize, n: usize) -> Option<u64>;
    /// Writes register `n`; false if it cannot be written.
    fn write_register(&mut self, thread: usize, n: usize, value: u64) -> bool;
    /// Reads `out.len()` bytes at virtual address `addr` as the thread's
    /// kernel sees memory. RAM only: false (and nothing touched) if any
    /// byte is unmapped or is not RAM.
    fn read_memory(&self, thread: usize, addr: u64, out: &mut [u8]) -> bool;
    /// Writes bytes at virtual address `addr`, RAM only; false if any byte
    /// cannot be written (then nothing is written).
    fn write_memory(&mut self, thread: usize, addr: u64, data: &[u8]) -> bool;
    /// Inserts a breakpoint or watchpoint; false if not supported.
    fn insert_point(&mut self, p: Point) -> bool;
    /// Removes one; false if not supported.
    fn remove_point(&mut self, p: Point) -> bool;
    /// Prepares to resume; then [`Target::run`] runs.
    fn resume(&mut self, how: Resume);
    /// Runs a slice (about one quantum); `Some` once the target stopped.
    fn run(&mut self) -> Option<Stop>;
    /// The debugger is gone (detach or disconnect): drop breakpoints,
    /// watchpoints and stepping, so the target runs on as if never debugged.
    fn detach(&mut self);
}

/// GPRs, HI/LO, PC and the CP0 registers GDB knows, from a register file
/// and a CP0 (real or virtual); FPU registers read as 0.
pub fn register(regs: &Regs, cp0: &Cp0, n: usize) -> Option<u64> {
    Some(match n {
        0..=31 => *regs.gpr.get(n)?,
        regnum::STATUS => u64::from(cp0.status),
        regnum::LO => regs.lo,
        regnum::HI => regs.hi,
        regnum::BADVADDR => cp0.bad_vaddr,
        regnum::CAUSE => u64::from(cp0.cause),
        regnum::PC => regs.pc,
        regnum::FIRST_FPU..regnum::COUNT => 0,
        _ => return None,
    })
}

/// Writes a GPR, HI or LO (r0 stays 0); false for any other register.
pub fn write_gpr(regs: &mut Regs, n: usize, value: u64) -> bool {
    match n {
        0 => true,
        1..=31 => regs.gpr.get_mut(n).map(|r| *r = value).is_some(),
        regnum::LO => {
            regs.lo = value;
            true
        }
        regnum::HI => {
            regs.hi = value;
            true
        }
        _ => false,
    }
}

/// GDB may send a 32-bit address or its sign extension: the simulator's
/// PCs are sign-extended 32-bit values (32-bit addressing).
pub fn sign_extend(addr: u64) -> u64 {
    crate::cpu::cp0::sext32(addr & 0xFFFF_FFFF)
}
