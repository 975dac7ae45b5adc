//! Trace lines: the bare machine's events as text, one event per line in
//! the stable format of docs/trace-format.md. The tracer is an
//! [`Observer`]; with no observer the machine runs its untraced loop, so
//! tracing off costs nothing.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write;
use std::rc::Rc;

use crate::cpu::Mode;
use crate::isa::disasm::disasm_with;
use crate::loader::Symbols;
use crate::machine::Observer;
use crate::obs::Event;

/// Named trace categories (`--trace exc,tlb,mmio,irq,insn` or `all`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Categories {
    /// Exceptions taken and ERET.
    pub exc: bool,
    /// TLB writes (refills are exceptions with "(refill)").
    pub tlb: bool,
    /// Device register accesses.
    pub mmio: bool,
    /// Interrupts taken and WAIT.
    pub irq: bool,
    /// Every instruction, disassembled.
    pub insn: bool,
}

impl Categories {
    pub const ALL: Categories = Categories {
        exc: true,
        tlb: true,
        mmio: true,
        irq: true,
        insn: true,
    };

    /// Parses a comma-separated list; the error names the unknown word.
    pub fn parse(s: &str) -> Result<Categories, String> {
        let mut c = Categories::default();
        for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "exc" => c.exc = true,
                "tlb" => c.tlb = true,
                "mmio" => c.mmio = true,
                "irq" => c.irq = true,
                "insn" => c.insn = true,
                "all" => c = Categories::ALL,
                other => {
                    return Err(format!(
                        "unknown category {other:?} (exc, tlb, mmio, irq, insn, all)"
                    ))
                }
            }
        }
        Ok(c)
    }

    pub fn is_empty(&self) -> bool {
        *self == Categories::default()
    }
}

/// A `Write` whose bytes stay readable after the tracer that writes them
/// is handed to the machine (tests, snapshots).
#[derive(Clone, Debug, Default)]
pub struct SharedText(Rc<RefCell<Vec<u8>>>);

impl SharedText {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.borrow()).into_owned()
    }
}

impl Write for SharedText {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Formats events of the chosen categories as lines:
/// `CYCLE cpuN MODE EVENT` (docs/trace-format.md).
pub struct TextTracer {
    categories: Categories,
    symbols: Symbols,
    out: Box<dyn Write>,
    /// Each CPU's mode as last seen, for events that do not carry one.
    modes: Vec<Mode>,
    line: String,
}

impl TextTracer {
    pub fn new(categories: Categories, symbols: Symbols, out: Box<dyn Write>) -> TextTracer {
        TextTracer {
            categories,
            symbols,
            out,
            modes: Vec::new(),
            line: String::new(),
        }
    }

    /// A tracer writing into memory, and the handle to read it back.
    pub fn in_memory(categories: Categories, symbols: Symbols) -> (TextTracer, SharedText) {
        let text = SharedText::default();
        (
            TextTracer::new(categories, symbols, Box::new(text.clone())),
            text,
        )
    }

    /// `0x80001234 <name+0x14>`, or the bare address without a symbol.
    fn addr(symbols: &Symbols, a: u64) -> String {
        match symbols.describe(a) {
            Some(s) => format!("{:#010x} <{s}>", a as u32),
            None => format!("{:#010x}", a as u32),
        }
    }

    /// The event's text, or `None` when its category is off.
    fn format(&self, event: &Event) -> Option<String> {
        let c = self.categories;
        let sym = &self.symbols;
        let mut t = String::new();
        match event {
            Event::Insn { pc, word, .. } if c.insn => {
                let describe = |a: u64| sym.describe(a);
                let text = disasm_with(*word, *pc, &describe).replacen('\t', " ", 1);
                let _ = write!(t, "insn {}  {text}", Self::addr(sym, *pc));
            }
            Event::Exception {
                code,
                epc,
                vector,
                badvaddr,
                bd,
                refill,
                ..
            } if c.exc => {
                let _ = write!(
                    t,
                    "exception {code} at {}{}, vector {:#010x}{}",
                    Self::addr(sym, *epc),
                    if *bd { " (delay slot)" } else { "" },
                    *vector as u32,
                    if *refill { " (refill)" } else { "" }
                );
                if let Some(b) = badvaddr {
                    let _ = write!(t, ", BadVAddr {:#010x}", *b as u32);
                }
            }
            Event::Eret { to, .. } if c.exc => {
                let _ = write!(t, "eret to {}", Self::addr(sym, *to));
            }
            Event::TlbWrite {
                index,
                random,
                entry,
            } if c.tlb => {
                let _ = write!(
                    t,
                    "{} TLB[{index}] VPN2 {:#010x} ASID {}{} mask {:#x} lo0 {:#010x} lo1 {:#010x}",
                    if *random { "tlbwr" } else { "tlbwi" },
                    entry.vpn2,
                    entry.asid,
                    if entry.global { " G" } else { "" },
                    entry.page_mask,
                    entry.lo[0],
                    entry.lo[1]
                );
            }
            Event::Mmio {
                paddr,
                width,
                value,
                write,
            } if c.mmio => {
                let _ = write!(
                    t,
                    "mmio {} {width} bytes at {:#010x}: {value:#x}",
                    if *write { "write" } else { "read" },
                    *paddr as u32,
                );
            }
            Event::Interrupt { pending } if c.irq => {
                let _ = write!(t, "interrupt, pending & enabled IP bits {pending:#06x}");
            }
            Event::Wait { pc } if c.irq => {
                let _ = write!(t, "wait at {}", Self::addr(sym, *pc));
            }
            _ => return None,
        }
        Some(t)
    }
}

impl Observer for TextTracer {
    fn event(&mut self, cpu: usize, cycle: u64, event: &Event) {
        // The mode the event happened in; then what it changes.
        if self.modes.len() <= cpu {
            // CPUs start in kernel mode.
            self.modes.resize(cpu + 1, Mode::Kernel);
        }
        let current = self.modes.get(cpu).copied().unwrap_or(Mode::Kernel);
        let mode = match event {
            Event::Insn { mode, .. } => *mode,
            Event::Exception { from, .. } => *from,
            _ => current,
        };
        if let Some(m) = self.modes.get_mut(cpu) {
            *m = match event {
                Event::Exception { .. } => Mode::Kernel,
                Event::Eret { mode, .. } => *mode,
                _ => mode,
            };
        }
        let Some(text) = self.format(event) else {
            return;
        };
        self.line.clear();
        let _ = writeln!(self.line, "{cycle:>12} cpu{cpu} {:<10} {text}", mode.name());
        let _ = self.out.write_all(self.line.as_bytes());
    }

    fn finish(&mut self) {
        let _ = self.out.flush();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn categories_parse_and_refuse_unknown_words() {
        let c = Categories::parse("exc, mmio").unwrap();
        assert!(c.exc && c.mmio && !c.insn);
        assert_eq!(Categories::parse("all").unwrap(), Categories::ALL);
        assert!(Categories::parse("").unwrap().is_empty());
        assert!(Categories::parse("exc,bogus")
            .unwrap_err()
            .contains("bogus"));
    }

    #[test]
    fn lines_name_cycle_cpu_and_mode() {
        let (mut t, text) = TextTracer::in_memory(Categories::ALL, Symbols::default());
        t.event(
            1,
            42,
            &Event::Eret {
                from: 0x8000_0200,
                to: 0x0040_0000,
                mode: Mode::User,
            },
        );
        t.event(
            1,
            50,
            &Event::Mmio {
                paddr: 0x1000_0000,
                width: 1,
                value: 0x41,
                write: true,
            },
        );
        assert_eq!(
            text.text(),
            "          42 cpu1 kernel     eret to 0x00400000\n          50 cpu1 user       mmio write 1 bytes at 0x10000000: 0x41\n"
        );
    }
}
