//! Monitor events and the trace lines that tell the story of a trap
//! (format documented in docs/trace-format.md). One event per line:
//!
//! ```text
//! cpu0 vm1.0 user    exit Sys at 0x00400124
//! cpu0 vm1.0 monitor reflect Sys to the guest: EPC 0x00400124, vector 0x80000180
//! cpu0 vm1.0 engine  0x80000180  lui k0,0xc000
//! ```
//!
//! Columns: physical CPU, VM name and VCPU, the layer that acted (`user`,
//! `guest` = guest kernel running directly in supervisor mode, `engine` =
//! guest code interpreted by the monitor, `monitor`), then what happened.

use std::fmt::Write as _;

use sim::cpu::cp0::reg::NAMES as CP0_NAMES;
use sim::cpu::{ExcCode, Mode, TlbEntry};
use sim::isa::{decode, disasm::disasm};

/// Something the monitor did or saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonEvent {
    /// The real CPU took an exception while running the guest.
    Exit {
        code: ExcCode,
        epc: u64,
        bd: bool,
        badvaddr: u64,
        from: Mode,
        word: Option<u32>,
    },
    /// An exception delivered to the guest's vector.
    Reflect {
        code: ExcCode,
        epc: u64,
        vector: u64,
        badvaddr: Option<u64>,
    },
    /// A vector trampoline followed straight to its target.
    Trampoline {
        vector: u64,
        target: u64,
    },
    /// A guest-kernel MFC0/MTC0 rewritten into a commpage load/store.
    Patch {
        pc: u64,
        from: u32,
        to: u32,
    },
    /// One guest instruction interpreted by the engine.
    Engine {
        pc: u64,
        word: u32,
    },
    Cp0Read {
        reg: u32,
        value: u64,
    },
    Cp0Write {
        reg: u32,
        value: u64,
    },
    GuestTlbWrite {
        index: usize,
        random: bool,
        entry: TlbEntry,
    },
    /// A composed entry written to the real TLB.
    Composed {
        va: u32,
        guest_asid: u8,
        gpa: [Option<u64>; 2],
        mpa: [Option<u64>; 2],
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
        to: u64,
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
    /// Coalesced I/O: a scan from a device-access trap and what it recorded.
    CoalesceScan {
        pc: u64,
        scanned: u32,
        size: u32,
        accesses: u32,
        /// The cost rule's estimated saving (negative: declined).
        saving: i64,
        declined: bool,
    },
    /// A block emulated in one event; the device accesses it covered are
    /// the `Vdev` events since `Trace::begin_block`.
    CoalesceBlock {
        pc: u64,
        insns: u32,
        resume: u64,
        /// Why it ended before its recorded length.
        cut: Option<crate::coalesce::Cut>,
    },
    /// A recorded block whose words no longer hash the same.
    CoalesceDrop {
        pc: u64,
    },
    /// `coalesce=ring`: a write queued instead of run through the device.
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
        pc: u64,
        insns: u32,
    },
    /// Binary translation: a translated block run.
    BtBlock {
        pc: u64,
        insns: u32,
    },
    /// `exec=adaptive`: a page switched between direct execution and
    /// translation (`why`: the exits in its window, or the quiet run).
    BtSwitch {
        page: u32,
        translated: bool,
        why: u64,
    },
}

/// Where an event happened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Place {
    pub pcpu: usize,
    pub vm: usize,
    pub vcpu: usize,
}

/// Collected trace lines; formatting happens only when enabled.
#[derive(Debug, Default)]
pub struct Trace {
    pub enabled: bool,
    /// Also list every engine-interpreted instruction.
    pub engine_insns: bool,
    pub place: Place,
    pub vm_names: Vec<String>,
    /// Lines with the machine cycle they happened at.
    pub lines: Vec<(u64, String)>,
    pub now: u64,
    /// Inside a coalesced block: its device accesses, listed in its one
    /// line instead of one line each.
    pub(crate) block: Option<Vec<(u64, u8, u64, bool)>>,
}

fn hex32(v: u64) -> String {
    format!("{:#010x}", v as u32)
}

impl Trace {
    #[inline]
    pub fn emit(&mut self, e: MonEvent) {
        if self.enabled {
            self.format(e);
        }
    }

    /// Starts collecting a block's device accesses (see `end_block`).
    pub fn begin_block(&mut self) {
        if self.enabled {
            self.block = Some(Vec::new());
        }
    }

    /// Emits the block's one line, `e`, with the accesses it covered.
    pub fn end_block(&mut self, e: MonEvent) {
        if self.enabled {
            self.format(e);
            self.block = None;
        }
    }

    #[cold]
    fn format(&mut self, e: MonEvent) {
        if let Some(accesses) = self.block.as_mut() {
            match e {
                MonEvent::Vdev {
                    gpa,
                    width,
                    value,
                    write,
                } => {
                    accesses.push((gpa, width, value, write));
                    return;
                }
                MonEvent::Engine { .. } => return,
                _ => {}
            }
        }
        let (layer, text) = match e {
            MonEvent::Exit {
                code,
                epc,
                bd,
                badvaddr,
                from,
                word,
            } => {
                let layer = if from == Mode::User { "user" } else { "guest" };
                let mut t = format!("exit {} at {}", code, hex32(epc));
                if let Some(w) = word {
                    let _ = write!(t, "  {}", disasm(decode(w), epc).replacen('\t', " ", 1));
                }
                if bd {
                    t.push_str(" (in a delay slot)");
                }
                if matches!(
                    code,
                    ExcCode::TlbL | ExcCode::TlbS | ExcCode::Mod | ExcCode::AdEL | ExcCode::AdES
                ) {
                    let _ = write!(t, ", BadVAddr {}", hex32(badvaddr));
                }
                (layer, t)
            }
            MonEvent::Reflect {
                code,
                epc,
                vector,
                badvaddr,
            } => {
                let mut t = format!(
                    "reflect {} to the guest: EPC {}, vector {}",
                    code,
                    hex32(epc),
                    hex32(vector)
                );
                if let Some(b) = badvaddr {
                    let _ = write!(t, ", BadVAddr {}", hex32(b));
                }
                ("monitor", t)
            }
            MonEvent::Trampoline { vector, target } => (
                "monitor",
                format!(
                    "follow the trampoline at {} to {} (k0 = {})",
                    hex32(vector),
                    hex32(target),
                    hex32(target)
                ),
            ),
            MonEvent::Engine { pc, word } => {
                if !self.engine_insns && !sim_is_privileged(word) {
                    return;
                }
                (
                    "engine",
                    format!(
                        "{}  {}",
                        hex32(pc),
                        disasm(decode(word), pc).replacen('\t', " ", 1)
                    ),
                )
            }
            MonEvent::Cp0Read { reg, value } => (
                "monitor",
                format!("emulate mfc0: virtual {} = {}", cp0_name(reg), hex32(value)),
            ),
            MonEvent::Cp0Write { reg, value } => (
                "monitor",
                format!(
                    "emulate mtc0: virtual {} <- {}",
                    cp0_name(reg),
                    hex32(value)
                ),
            ),
            MonEvent::GuestTlbWrite {
                index,
                random,
                entry,
            } => (
                "monitor",
                format!(
                    "emulate {}: virtual TLB[{}] = VPN2 {} ASID {}{} PFN {:#x}/{:#x}",
                    if random { "tlbwr" } else { "tlbwi" },
                    index,
                    hex32(u64::from(entry.vpn2)),
                    entry.asid,
                    if entry.global { " G" } else { "" },
                    entry.lo[0] >> 6,
                    entry.lo[1] >> 6
                ),
            ),
            MonEvent::Composed {
                va,
                guest_asid,
                gpa,
                mpa,
                masid,
                index,
            } => {
                let page = |g: Option<u64>, m: Option<u64>| match (g, m) {
                    (Some(g), Some(m)) => format!("P {} -> M {}", hex32(g), hex32(m)),
                    (Some(g), None) => format!("P {} -> (no machine page)", hex32(g)),
                    _ => "invalid".to_string(),
                };
                (
                    "monitor",
                    format!(
                        "compose V {} (guest ASID {}): even {}, odd {}; real TLB[{}] ASID {}",
                        hex32(u64::from(va & !0x1FFF)),
                        guest_asid,
                        page(gpa[0], mpa[0]),
                        page(gpa[1], mpa[1]),
                        index,
                        masid
                    ),
                )
            }
            MonEvent::L2Hit { va, index } => (
                "monitor",
                format!(
                    "L2TLB hit for V {}: real TLB[{}] refilled, guest not entered",
                    hex32(u64::from(va)),
                    index
                ),
            ),
            MonEvent::Patch { pc, from, to } => (
                "monitor",
                format!(
                    "patch {}: {} -> {}: {} through the commpage at {}, no trap from now on",
                    hex32(pc),
                    disasm(decode(from), pc).replacen('\t', " ", 1),
                    disasm(decode(to), pc).replacen('\t', " ", 1),
                    sim::cpu::cp0::reg::NAMES
                        .get(((to & 0xFFF) >> 2) as usize)
                        .copied()
                        .unwrap_or("?"),
                    hex32(u64::from(to & 0xFFFF))
                ),
            ),
            MonEvent::L2Miss { va } => (
                "monitor",
                format!("L2TLB miss for V {}", hex32(u64::from(va))),
            ),
            MonEvent::GuestEret { to, mode } => (
                "monitor",
                format!(
                    "emulate eret: resume the guest at {} in {} mode",
                    hex32(to),
                    mode.name()
                ),
            ),
            MonEvent::Vdev {
                gpa,
                width,
                value,
                write,
            } => (
                "monitor",
                format!(
                    "virtual device {} {} bytes at P {}: {}",
                    if write { "write" } else { "read" },
                    width,
                    hex32(gpa),
                    hex32(value)
                ),
            ),
            MonEvent::Interrupt { pending } => (
                "monitor",
                format!("deliver interrupt: pending IP bits {:#06x}", pending),
            ),
            MonEvent::Wait => (
                "monitor",
                "guest WAIT: VCPU idles, physical CPU yielded".to_string(),
            ),
            MonEvent::Switch { to_vm, to_vcpu } => (
                "monitor",
                format!("switch to {}.{}", self.vm_name(to_vm), to_vcpu),
            ),
            MonEvent::Halt { status } => ("monitor", format!("VM halted with status {status}")),
            MonEvent::Stop => ("monitor", "VM stopped".to_string()),
            MonEvent::CoalesceScan { .. }
            | MonEvent::CoalesceBlock { .. }
            | MonEvent::CoalesceDrop { .. }
            | MonEvent::RingQueue { .. }
            | MonEvent::RingFlush { .. } => ("monitor", self.coalesce_text(e)),
            MonEvent::BtTranslate { pc, insns } => (
                "monitor",
                format!("translate the block at {}: {insns} instructions", hex32(pc)),
            ),
            MonEvent::BtBlock { pc, insns } => (
                "bt",
                format!(
                    "run the translated block at {} ({insns} instructions)",
                    hex32(pc)
                ),
            ),
            MonEvent::BtSwitch {
                page,
                translated,
                why,
            } => (
                "monitor",
                if translated {
                    format!(
                        "region {}: direct -> translated ({why} exits in its window)",
                        hex32(u64::from(page))
                    )
                } else {
                    format!(
                        "region {}: translated -> direct ({why} instructions without a privileged one)",
                        hex32(u64::from(page))
                    )
                },
            ),
        };
        let p = self.place;
        let line = format!(
            "cpu{} {}.{} {:<7} {}",
            p.pcpu,
            self.vm_name(p.vm),
            p.vcpu,
            layer,
            text
        );
        self.lines.push((self.now, line));
    }

    fn coalesce_text(&self, e: MonEvent) -> String {
        match e {
            MonEvent::CoalesceScan {
                pc,
                scanned,
                size,
                accesses,
                saving,
                declined,
            } => {
                let what = if declined {
                    format!(
                        "a block with {accesses} accesses declined (it would cost {} cycles more than the exits it saves); single access recorded",
                        -saving
                    )
                } else if size > 1 {
                    format!(
                        "block of {size} instructions with {accesses} accesses recorded (saves {saving} cycles)"
                    )
                } else {
                    "single access recorded".to_string()
                };
                format!(
                    "coalesce scan at {}: {scanned} instructions followed; {what}",
                    hex32(pc)
                )
            }
            MonEvent::CoalesceBlock {
                pc,
                insns,
                resume,
                cut,
            } => {
                let accesses = self.block.as_deref().unwrap_or_default();
                let mut t = format!(
                    "coalesce block at {}: {insns} instructions, {} device accesses [",
                    hex32(pc),
                    accesses.len()
                );
                for (i, &(gpa, width, value, write)) in accesses.iter().enumerate() {
                    let _ = write!(
                        t,
                        "{}{} {width} at P {} {} {}",
                        if i > 0 { ", " } else { "" },
                        if write { "write" } else { "read" },
                        hex32(gpa),
                        if write { "<-" } else { "->" },
                        hex32(value)
                    );
                }
                let _ = write!(t, "], resume at {}", hex32(resume));
                if let Some(c) = cut {
                    let _ = write!(t, " (ended early: {})", c.describe());
                }
                t
            }
            MonEvent::CoalesceDrop { pc } => format!(
                "coalesce: the block at {} no longer hashes the same: entry dropped",
                hex32(pc)
            ),
            MonEvent::RingQueue { gpa, value, queued } => format!(
                "ring: write 1 bytes at P {}: {} queued ({queued} in the ring)",
                hex32(gpa),
                hex32(value)
            ),
            MonEvent::RingFlush { writes } => {
                format!("ring: {writes} queued writes delivered to the device")
            }
            _ => String::new(),
        }
    }

    fn vm_name(&self, vm: usize) -> String {
        self.vm_names
            .get(vm)
            .cloned()
            .unwrap_or_else(|| format!("vm{vm}"))
    }

    /// A free-form line from the monitor (diagnostics).
    pub fn note(&mut self, text: &str) {
        if self.enabled {
            let p = self.place;
            let line = format!(
                "cpu{} {}.{} {:<7} {}",
                p.pcpu,
                self.vm_name(p.vm),
                p.vcpu,
                "monitor",
                text
            );
            self.lines.push((self.now, line));
        }
    }
}

fn cp0_name(reg: u32) -> String {
    match CP0_NAMES.get(reg as usize) {
        Some(n) if !n.is_empty() => (*n).to_string(),
        _ => format!("${reg}"),
    }
}

fn sim_is_privileged(word: u32) -> bool {
    crate::engine::is_privileged(decode(word).op)
}
