//! Monitor events: what the monitor did or saw, as values. The trace keeps
//! them as [`Record`]s and turns them into text only when someone reads it
//! (`text`); a trace file's lines read back into the same records (`read`),
//! which is what `disco flow` draws from. The line format is
//! docs/trace-format.md; one event per line:
//!
//! ```text
//! cpu0 vm1.0 user    exit Sys at 0x00400124
//! cpu0 vm1.0 monitor reflect Sys to the guest: EPC 0x00400124, vector 0x80000180
//! cpu0 vm1.0 engine  0x80000180  lui k0,0xc000
//! ```
//!
//! Adding an event kind: a variant of [`MonEvent`], its text in `text.rs`
//! (the compiler asks), its reading in `read.rs`, a row in
//! docs/trace-format.md, and a case in the generator of
//! `monitor/tests/trace_lines.rs` (its kind count says when one is missing).
//!
//! Fields hold what the line shows, so that a line reads back into an equal
//! event: guest virtual addresses and CP0 values as their low 32 bits (the
//! guests are 32-bit kernels), an instruction as a [`GuestInsn`].

mod read;
mod text;

use std::fmt;

use sim::hv::{isa::disasm::Disasm, ExcCode, Mode};

pub use read::{is_bare_machine_line, ReadError, Reader};

/// The low word of a guest address or register: what the trace shows.
/// Guests run 32-bit code, so the high word is the sign extension of it.
pub fn low32(v: u64) -> u32 {
    // Truncation intended: see above.
    v as u32
}

/// A guest instruction as the trace shows it: the word the monitor read at
/// its address, or the disassembly a trace line holds. Two are equal when
/// they print alike: a disassembly does not always name one word (`move` is
/// an `addu` or an `or`), and the trace is about what the guest ran.
#[derive(Clone, Debug)]
pub enum GuestInsn {
    Word { pc: u32, word: u32 },
    Text(Box<str>),
}

impl fmt::Display for GuestInsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuestInsn::Word { pc, word } => {
                // objdump's tab between mnemonic and operands, as one space.
                let text = Disasm::new(*word, u64::from(*pc)).to_string();
                f.write_str(&text.replacen('\t', " ", 1))
            }
            GuestInsn::Text(t) => f.write_str(t),
        }
    }
}

impl PartialEq for GuestInsn {
    fn eq(&self, other: &GuestInsn) -> bool {
        match (self, other) {
            (GuestInsn::Word { pc, word }, GuestInsn::Word { pc: p, word: w })
                if pc == p && word == w =>
            {
                true
            }
            _ => self.to_string() == other.to_string(),
        }
    }
}

impl Eq for GuestInsn {}

/// One half (even or odd page) of a composed TLB entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Half {
    /// The guest's entry maps no page here.
    Invalid,
    /// A guest-physical page outside the VM's memory: left invalid.
    Unbacked { gpa: u64 },
    /// Guest-physical page and the machine page behind it.
    Mapped { gpa: u64, mpa: u64 },
}

impl Half {
    pub fn new(gpa: Option<u64>, mpa: Option<u64>) -> Half {
        match (gpa, mpa) {
            (Some(gpa), Some(mpa)) => Half::Mapped { gpa, mpa },
            (Some(gpa), None) => Half::Unbacked { gpa },
            (None, _) => Half::Invalid,
        }
    }
}

/// What a coalesced-I/O scan recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanOutcome {
    /// A block of `size` instructions with `accesses` device accesses.
    Block {
        size: u32,
        accesses: u32,
        saving: i64,
    },
    /// A block with `accesses` accesses that would `cost` more cycles than
    /// the exits it saves; the one access is recorded instead.
    Declined {
        accesses: u32,
        cost: i64,
    },
    Single,
}

/// A device access inside a coalesced block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    pub gpa: u64,
    pub width: u8,
    pub value: u64,
    pub write: bool,
}

/// Something the monitor did or saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MonEvent {
    /// The real CPU took an exception while running the guest.
    Exit {
        code: ExcCode,
        epc: u32,
        bd: bool,
        /// Only for the codes that set it (TLB, Mod, address errors).
        badvaddr: Option<u32>,
        /// From the guest's user process (else from its kernel).
        user: bool,
        insn: Option<GuestInsn>,
    },
    /// An exception delivered to the guest's vector.
    Reflect {
        code: ExcCode,
        epc: u32,
        vector: u32,
        badvaddr: Option<u32>,
    },
    /// A vector trampoline followed straight to its target.
    Trampoline {
        vector: u32,
        target: u32,
    },
    /// A guest-kernel MFC0/MTC0 rewritten into a commpage load/store at
    /// commpage address `slot`.
    Patch {
        pc: u32,
        from: GuestInsn,
        to: GuestInsn,
        slot: u16,
    },
    /// One guest instruction interpreted by the engine.
    Engine {
        pc: u32,
        insn: GuestInsn,
    },
    Cp0Read {
        reg: u32,
        value: u32,
    },
    Cp0Write {
        reg: u32,
        value: u32,
    },
    /// A TLBWI/TLBWR into the virtual TLB (the fields the trace shows).
    GuestTlbWrite {
        index: usize,
        random: bool,
        vpn2: u32,
        asid: u8,
        global: bool,
        pfn: [u32; 2],
    },
    /// A composed entry written to the real TLB; `va` is the pair's base.
    Composed {
        va: u32,
        guest_asid: u8,
        halves: [Half; 2],
        masid: u8,
        index: usize,
    },
    L2Hit {
        va: u32,
        index: usize,
    },
    L2Miss {
        va: u32,
    },
    GuestEret {
        to: u32,
        mode: Mode,
    },
    Vdev {
        gpa: u64,
        width: u8,
        value: u64,
        write: bool,
    },
    Interrupt {
        pending: u32,
    },
    Wait,
    Switch {
        to_vm: usize,
        to_vcpu: usize,
    },
    Halt {
        status: u32,
    },
    Stop,
    /// Why the VM was stopped (follows `Stop`).
    StopReason {
        reason: String,
    },
    /// Every real TLB emptied, as if other VMs had evicted its entries.
    RealTlbsFlushed,
    /// Coalesced I/O: a scan from a device-access trap and what it recorded.
    CoalesceScan {
        pc: u32,
        scanned: u32,
        outcome: ScanOutcome,
    },
    /// A block emulated in one event, with the device accesses it covered.
    CoalesceBlock {
        pc: u32,
        insns: u32,
        accesses: Vec<Access>,
        resume: u32,
        /// Why it ended before its recorded length.
        cut: Option<crate::coalesce::state::Cut>,
    },
    /// A recorded block whose words no longer hash the same.
    CoalesceDrop {
        pc: u32,
    },
    /// `coalesce=ring`: a one-byte write queued instead of run through the device.
    RingQueue {
        gpa: u64,
        value: u64,
        queued: usize,
    },
    /// `coalesce=ring`: the queued writes delivered to the device.
    RingFlush {
        writes: usize,
    },
    /// Binary translation: a block translated (`bt`).
    BtTranslate {
        pc: u32,
        insns: u32,
    },
    /// Binary translation: a translated block run.
    BtBlock {
        pc: u32,
        insns: u32,
    },
    /// `exec=adaptive`: the region at `page` switched between direct
    /// execution and translation (`why`: the exits in its window, or the
    /// length of the quiet run).
    BtSwitch {
        page: u32,
        translated: bool,
        why: u64,
    },
}

impl MonEvent {
    /// An exit, with BadVAddr kept only for the codes that set it.
    pub fn exit(
        code: ExcCode,
        epc: u64,
        bd: bool,
        badvaddr: u64,
        from: Mode,
        word: Option<u32>,
    ) -> MonEvent {
        let epc = low32(epc);
        let sets_badvaddr = matches!(
            code,
            ExcCode::TlbL | ExcCode::TlbS | ExcCode::Mod | ExcCode::AdEL | ExcCode::AdES
        );
        MonEvent::Exit {
            code,
            epc,
            bd,
            badvaddr: sets_badvaddr.then_some(low32(badvaddr)),
            user: from == Mode::User,
            insn: word.map(|word| GuestInsn::Word { pc: epc, word }),
        }
    }

    /// A commpage patch of the instruction at `pc` from `from` to `to`.
    pub fn patch(pc: u64, from: u32, to: u32) -> MonEvent {
        let pc = low32(pc);
        MonEvent::Patch {
            pc,
            from: GuestInsn::Word { pc, word: from },
            to: GuestInsn::Word { pc, word: to },
            // The load/store's 16-bit offset from zero is the commpage address.
            slot: (to & 0xFFFF) as u16,
        }
    }
}

/// Where an event happened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Place {
    pub pcpu: usize,
    pub vm: usize,
    pub vcpu: usize,
}

/// An event with the machine cycle and the place it happened at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub cycle: u64,
    pub place: Place,
    pub event: MonEvent,
}

/// The monitor's trace: the events recorded while `enabled`, as values.
#[derive(Debug, Default)]
pub struct Trace {
    pub enabled: bool,
    /// Also record every engine-interpreted instruction (`--trace insn`).
    pub engine_insns: bool,
    pub place: Place,
    pub vm_names: Vec<String>,
    /// The events in the order they happened.
    pub records: Vec<Record>,
    pub now: u64,
    /// Inside a coalesced block: its device accesses, kept for its one
    /// event instead of one event each.
    pub(crate) block: Option<Vec<Access>>,
}

impl Trace {
    #[inline]
    pub fn emit(&mut self, e: MonEvent) {
        if self.enabled {
            self.record(e);
        }
    }

    /// Starts collecting a block's device accesses (see `end_block`).
    pub fn begin_block(&mut self) {
        if self.enabled {
            self.block = Some(Vec::new());
        }
    }

    /// Records the block's one event, with the accesses it covered.
    pub fn end_block(
        &mut self,
        pc: u64,
        insns: u32,
        resume: u64,
        cut: Option<crate::coalesce::state::Cut>,
    ) {
        if let Some(accesses) = self.block.take() {
            self.record(MonEvent::CoalesceBlock {
                pc: low32(pc),
                insns,
                accesses,
                resume: low32(resume),
                cut,
            });
        }
    }

    #[cold]
    fn record(&mut self, e: MonEvent) {
        if let Some(accesses) = self.block.as_mut() {
            match e {
                MonEvent::Vdev {
                    gpa,
                    width,
                    value,
                    write,
                } => {
                    accesses.push(Access {
                        gpa,
                        width,
                        value,
                        write,
                    });
                    return;
                }
                MonEvent::Engine { .. } => return,
                _ => {}
            }
        }
        if matches!(e, MonEvent::Engine { .. }) && !self.engine_insns {
            return;
        }
        self.records.push(Record {
            cycle: self.now,
            place: self.place,
            event: e,
        });
    }

    /// The recorded events as trace lines, without their cycles (what the
    /// trap-flow snapshots hold).
    pub fn lines(&self) -> Vec<String> {
        self.records
            .iter()
            .map(|r| text::line(&self.vm_names, r))
            .collect()
    }

    /// Writes the recorded events out as trace-file lines (cycle first)
    /// and forgets them.
    pub fn drain_to(&mut self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let mut line = String::new();
        for r in self.records.drain(..) {
            line.clear();
            text::file_line(&mut line, &self.vm_names, &r);
            out.write_all(line.as_bytes())?;
        }
        Ok(())
    }
}

pub use text::{event_text, file_line, layer, line, Layer};
