//! `--trace`: the bare machine's events as text, one per line
//! (docs/trace-format.md).

use std::io::Write;

use sim::isa::{decode, disasm::disasm_with};
use sim::loader::Symbols;
use sim::obs::Event;
use sim::Observer;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Categories {
    pub(crate) exc: bool,
    pub(crate) tlb: bool,
    pub(crate) mmio: bool,
    pub(crate) irq: bool,
    pub(crate) insn: bool,
}

impl Categories {
    pub(crate) fn parse(s: &str) -> Result<Categories, String> {
        let mut c = Categories::default();
        for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "exc" => c.exc = true,
                "tlb" => c.tlb = true,
                "mmio" => c.mmio = true,
                "irq" => c.irq = true,
                "insn" => c.insn = true,
                "all" => {
                    c = Categories {
                        exc: true,
                        tlb: true,
                        mmio: true,
                        irq: true,
                        insn: true,
                    }
                }
                other => {
                    return Err(format!(
                        "unknown category {other:?} (exc, tlb, mmio, irq, insn, all)"
                    ))
                }
            }
        }
        Ok(c)
    }

    pub(crate) fn is_empty(&self) -> bool {
        *self == Categories::default()
    }
}

pub(crate) struct TextTracer {
    categories: Categories,
    symbols: Symbols,
    out: Box<dyn Write>,
}

impl TextTracer {
    pub(crate) fn new(categories: Categories, symbols: Symbols, out: Box<dyn Write>) -> TextTracer {
        TextTracer {
            categories,
            symbols,
            out,
        }
    }

    fn addr(&self, a: u64) -> String {
        match self.symbols.describe(a) {
            Some(s) => format!("{:#010x} <{s}>", a as u32),
            None => format!("{:#010x}", a as u32),
        }
    }
}

impl Observer for TextTracer {
    fn event(&mut self, cpu: usize, cycle: u64, event: &Event) {
        let c = self.categories;
        let text = match event {
            Event::Insn { pc, word, mode } if c.insn => {
                let sym = |a: u64| self.symbols.describe(a);
                format!("{:<10} insn {}  {}", mode.name(), self.addr(*pc), disasm_with(decode(*word), *pc, &sym).replacen('\t', " ", 1))
            }
            Event::Exception { code, epc, vector, badvaddr, bd, from, refill, .. } if c.exc => {
                let mut t = format!(
                    "{:<10} exception {code} at {}{}, vector {:#010x}{}",
                    from.name(),
                    self.addr(*epc),
                    if *bd { " (delay slot)" } else { "" },
                    *vector as u32,
                    if *refill { " (refill)" } else { "" }
                );
                if let Some(b) = badvaddr {
                    t.push_str(&format!(", BadVAddr {:#010x}", *b as u32));
                }
                t
            }
            Event::Eret { to, mode, .. } if c.exc => {
                format!("{:<10} eret to {}", mode.name(), self.addr(*to))
            }
            Event::TlbWrite { index, random, entry } if c.tlb => format!(
                "{:<10} {} TLB[{index}] VPN2 {:#010x} ASID {}{} mask {:#x} lo0 {:#010x} lo1 {:#010x}",
                "kernel",
                if *random { "tlbwr" } else { "tlbwi" },
                entry.vpn2,
                entry.asid,
                if entry.global { " G" } else { "" },
                entry.page_mask,
                entry.lo[0],
                entry.lo[1]
            ),
            Event::Mmio { paddr, width, value, write } if c.mmio => format!(
                "{:<10} mmio {} {width} bytes at {:#010x}: {:#x}",
                "-",
                if *write { "write" } else { "read" },
                *paddr as u32,
                value
            ),
            Event::Interrupt { pending } if c.irq => {
                format!("{:<10} interrupt, pending & enabled IP bits {:#06x}", "-", pending)
            }
            Event::Wait { pc } if c.irq => format!("{:<10} wait at {}", "kernel", self.addr(*pc)),
            _ => return,
        };
        let _ = writeln!(self.out, "{cycle:>12} cpu{cpu} {text}");
    }

    fn finish(&mut self) {
        let _ = self.out.flush();
    }
}
