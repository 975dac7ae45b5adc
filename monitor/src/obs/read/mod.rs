//! Trace lines back into events: the inverse of `text.rs`, so a trace file
//! is data (`disco flow` draws from the records read here).

use sim::hv::{cp0::reg::NAMES as CP0_NAMES, ExcCode, Mode};

use super::text::Layer;
use super::{GuestInsn, Half, MonEvent, Place, Record};

mod io;
mod scan;

use io::{coalesce, ring};
use scan::Scan;

/// A monitor trace line whose event is not one the format defines.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a {layer} event the trace format defines: {text:?}")]
pub struct ReadError {
    pub layer: &'static str,
    pub text: String,
}

/// Reads monitor trace lines. VM names become indices in the order they
/// are first seen, after the names it was given.
#[derive(Clone, Debug, Default)]
pub struct Reader {
    names: Vec<String>,
}

/// The columns of a trace line, past the optional cycle.
struct Columns<'a> {
    cycle: Option<u64>,
    pcpu: usize,
    /// `VM.VCPU` in a monitor trace; the mode in a bare-machine one.
    second: &'a str,
    third: &'a str,
    /// The event, with its own spacing kept.
    rest: &'a str,
}

/// The processor modes a bare-machine trace line names instead of a VM.
const MODES: [Mode; 3] = [Mode::Kernel, Mode::Supervisor, Mode::User];

/// The next space-separated word, consuming the spaces after it.
fn word<'a>(s: &mut &'a str) -> &'a str {
    let (w, rest) = s.split_once(' ').unwrap_or((s, ""));
    *s = rest.trim_start_matches(' ');
    w
}

fn columns(raw: &str) -> Option<Columns<'_>> {
    let mut s = raw.trim_start();
    let mut first = word(&mut s);
    let cycle = match first.parse::<u64>() {
        Ok(c) => {
            first = word(&mut s);
            Some(c)
        }
        Err(_) => None,
    };
    let n = first.strip_prefix("cpu")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let pcpu = n.parse().ok()?;
    let second = word(&mut s);
    if second.is_empty() || s.is_empty() {
        return None;
    }
    if MODES.iter().any(|m| m.name() == second) {
        return Some(Columns {
            cycle,
            pcpu,
            second,
            third: "",
            rest: s.trim_end(),
        });
    }
    let third = word(&mut s);
    Some(Columns {
        cycle,
        pcpu,
        second,
        third,
        rest: s.trim_end(),
    })
}

/// Whether `raw` is a line of the bare machine's trace (`disco run IMAGE
/// --trace …`), which has modes where a monitor trace has VMs and layers.
pub fn is_bare_machine_line(raw: &str) -> bool {
    columns(raw).is_some_and(|c| c.third.is_empty())
}

impl Reader {
    /// A reader that knows these VM names (index = position).
    pub fn new(names: Vec<String>) -> Reader {
        Reader { names }
    }

    /// The VM names seen so far.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    fn vm(&mut self, name: &str) -> usize {
        match self.names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                self.names.push(name.to_string());
                self.names.len() - 1
            }
        }
    }

    /// The record a monitor trace line holds (cycle 0 when the line has
    /// none); `Ok(None)` for a line that is not a monitor trace line.
    pub fn read(&mut self, raw: &str) -> Result<Option<Record>, ReadError> {
        let Some(c) = columns(raw) else {
            return Ok(None);
        };
        let Some((vm, vcpu)) = c.second.rsplit_once('.') else {
            return Ok(None);
        };
        let (Ok(vcpu), Some(layer)) = (
            vcpu.parse::<usize>(),
            Layer::ALL.into_iter().find(|l| l.name() == c.third),
        ) else {
            return Ok(None);
        };
        let place = Place {
            pcpu: c.pcpu,
            vm: self.vm(vm),
            vcpu,
        };
        let event = match layer {
            Layer::User | Layer::Guest => exit(c.rest, layer == Layer::User),
            Layer::Engine => engine(c.rest),
            Layer::Monitor => self.monitor(c.rest),
            Layer::Bt => bt_block(c.rest),
        };
        let event = event.ok_or_else(|| ReadError {
            layer: layer.name(),
            text: c.rest.to_string(),
        })?;
        Ok(Some(Record {
            cycle: c.cycle.unwrap_or(0),
            place,
            event,
        }))
    }

    fn monitor(&mut self, t: &str) -> Option<MonEvent> {
        let fixed = [
            (
                "guest WAIT: VCPU idles, physical CPU yielded",
                MonEvent::Wait,
            ),
            ("VM stopped", MonEvent::Stop),
            (
                "every real TLB flushed (as if other VMs had evicted its entries)",
                MonEvent::RealTlbsFlushed,
            ),
        ];
        if let Some((_, e)) = fixed.into_iter().find(|(s, _)| *s == t) {
            return Some(e);
        }
        if let Some(r) = t.strip_prefix("stopped: ") {
            return Some(MonEvent::StopReason {
                reason: r.to_string(),
            });
        }
        if let Some(r) = t.strip_prefix("switch to ") {
            let (vm, vcpu) = r.rsplit_once('.')?;
            return Some(MonEvent::Switch {
                to_vm: self.vm(vm),
                to_vcpu: vcpu.parse().ok()?,
            });
        }
        if let Some(r) = t.strip_prefix("coalesce") {
            return coalesce(r);
        }
        if let Some(r) = t.strip_prefix("ring: ") {
            return ring(r);
        }
        if let Some(r) = t.strip_prefix("emulate ") {
            return emulate(r);
        }
        let mut s = Scan(t);
        let e = if s.lit("reflect ") {
            let code = exc_code(s.until(" ")?)?;
            s.lit("to the guest: EPC ").then_some(())?;
            let epc = s.hex32()?;
            s.lit(", vector ").then_some(())?;
            let vector = s.hex32()?;
            let badvaddr = s.badvaddr()?;
            MonEvent::Reflect {
                code,
                epc,
                vector,
                badvaddr,
            }
        } else if s.lit("follow the trampoline at ") {
            let vector = s.hex32()?;
            s.lit(" to ").then_some(())?;
            let target = s.hex32()?;
            s.lit(" (k0 = ").then_some(())?;
            (s.hex32()? == target && s.lit(")")).then_some(())?;
            MonEvent::Trampoline { vector, target }
        } else if s.lit("patch ") {
            patch(&mut s)?
        } else if s.lit("compose V ") {
            composed(&mut s)?
        } else if s.lit("L2TLB hit for V ") {
            let va = s.hex32()?;
            s.lit(": real TLB[").then_some(())?;
            let index = s.dec()?;
            s.lit("] refilled, guest not entered").then_some(())?;
            MonEvent::L2Hit { va, index }
        } else if s.lit("L2TLB miss for V ") {
            MonEvent::L2Miss { va: s.hex32()? }
        } else if s.lit("virtual device ") {
            let write = s.read_or_write()?;
            s.lit(" ").then_some(())?;
            let width = s.dec()?;
            s.lit(" bytes at P ").then_some(())?;
            let gpa = s.hex()?;
            s.lit(": ").then_some(())?;
            MonEvent::Vdev {
                gpa,
                width,
                value: s.hex()?,
                write,
            }
        } else if s.lit("deliver interrupt: pending IP bits ") {
            MonEvent::Interrupt {
                pending: s.hex32()?,
            }
        } else if s.lit("VM halted with status ") {
            MonEvent::Halt { status: s.dec()? }
        } else if s.lit("translate the block at ") {
            let pc = s.hex32()?;
            s.lit(": ").then_some(())?;
            let insns = s.dec()?;
            s.lit(" instructions").then_some(())?;
            MonEvent::BtTranslate { pc, insns }
        } else if s.lit("region ") {
            region_switch(&mut s)?
        } else {
            return None;
        };
        s.done().then_some(e)
    }
}

/// `patch PC: FROM -> TO: REG through the commpage at SLOT, no trap from
/// now on`, after `patch `.
fn patch(s: &mut Scan<'_>) -> Option<MonEvent> {
    let pc = s.hex32()?;
    s.lit(": ").then_some(())?;
    let from = insn(s.until(" -> ")?);
    let to = insn(s.until(": ")?);
    let _register = s.until(" through the commpage at ")?;
    let slot = u16::try_from(s.hex()?).ok()?;
    s.lit(", no trap from now on").then_some(())?;
    Some(MonEvent::Patch { pc, from, to, slot })
}

/// A composed TLB entry, after `compose V `.
fn composed(s: &mut Scan<'_>) -> Option<MonEvent> {
    let va = s.hex32()?;
    s.lit(" (guest ASID ").then_some(())?;
    let guest_asid = s.dec()?;
    s.lit("): even ").then_some(())?;
    let even = half(s.until(", odd ")?)?;
    let odd = half(s.until("; real TLB[")?)?;
    let index = s.dec()?;
    s.lit("] ASID ").then_some(())?;
    Some(MonEvent::Composed {
        va,
        guest_asid,
        halves: [even, odd],
        masid: s.dec()?,
        index,
    })
}

/// A page's switch between direct execution and translation, after
/// `region `.
fn region_switch(s: &mut Scan<'_>) -> Option<MonEvent> {
    let page = s.hex32()?;
    let translated = if s.lit(": direct -> translated (") {
        true
    } else {
        s.lit(": translated -> direct (").then_some(())?;
        false
    };
    let why = s.dec()?;
    let tail = if translated {
        " exits in its window)"
    } else {
        " instructions without a privileged one)"
    };
    s.lit(tail).then_some(())?;
    Some(MonEvent::BtSwitch {
        page,
        translated,
        why,
    })
}

/// `run the translated block at PC (N instructions)`.
fn bt_block(t: &str) -> Option<MonEvent> {
    let mut s = Scan(t);
    s.lit("run the translated block at ").then_some(())?;
    let pc = s.hex32()?;
    s.lit(" (").then_some(())?;
    let insns = s.dec()?;
    s.lit(" instructions)").then_some(())?;
    s.done().then_some(MonEvent::BtBlock { pc, insns })
}

/// `exit CODE at PC[  INSN][ (in a delay slot)][, BadVAddr VA]`.
fn exit(t: &str, user: bool) -> Option<MonEvent> {
    let (t, badvaddr) = match t.rsplit_once(", BadVAddr ") {
        Some((head, b)) => (head, Some(Scan(b).whole_hex32()?)),
        None => (t, None),
    };
    let (t, bd) = match t.strip_suffix(" (in a delay slot)") {
        Some(head) => (head, true),
        None => (t, false),
    };
    let mut s = Scan(t.strip_prefix("exit ")?);
    let code = exc_code(s.until(" at ")?)?;
    let epc = s.hex32()?;
    let insn = match s.0 {
        "" => None,
        r => Some(self::insn(r.strip_prefix("  ")?)),
    };
    Some(MonEvent::Exit {
        code,
        epc,
        bd,
        badvaddr,
        user,
        insn,
    })
}

/// `PC  INSN`.
fn engine(t: &str) -> Option<MonEvent> {
    let (pc, i) = t.split_once("  ")?;
    Some(MonEvent::Engine {
        pc: Scan(pc).whole_hex32()?,
        insn: insn(i),
    })
}

fn insn(text: &str) -> GuestInsn {
    GuestInsn::Text(text.into())
}

fn exc_code(s: &str) -> Option<ExcCode> {
    ExcCode::ALL.into_iter().find(|c| c.mnemonic() == s)
}

fn cp0_reg(s: &str) -> Option<u32> {
    match s.strip_prefix('$') {
        Some(n) => n.parse().ok(),
        None => (!s.is_empty())
            .then(|| CP0_NAMES.iter().position(|n| *n == s))
            .flatten()
            .and_then(|i| u32::try_from(i).ok()),
    }
}

/// `mfc0: …`, `mtc0: …`, `tlbwi: …`, `tlbwr: …`, `eret: …`.
fn emulate(t: &str) -> Option<MonEvent> {
    let mut s = Scan(t);
    let e = if s.lit("mfc0: virtual ") {
        let reg = cp0_reg(s.until(" = ")?)?;
        MonEvent::Cp0Read {
            reg,
            value: s.hex32()?,
        }
    } else if s.lit("mtc0: virtual ") {
        let reg = cp0_reg(s.until(" <- ")?)?;
        MonEvent::Cp0Write {
            reg,
            value: s.hex32()?,
        }
    } else if s.lit("eret: resume the guest at ") {
        let to = s.hex32()?;
        s.lit(" in ").then_some(())?;
        let name = s.until(" mode")?;
        MonEvent::GuestEret {
            to,
            mode: MODES.into_iter().find(|m| m.name() == name)?,
        }
    } else {
        let random = if s.lit("tlbwr") {
            true
        } else if s.lit("tlbwi") {
            false
        } else {
            return None;
        };
        s.lit(": virtual TLB[").then_some(())?;
        let index = s.dec()?;
        s.lit("] = VPN2 ").then_some(())?;
        let vpn2 = s.hex32()?;
        s.lit(" ASID ").then_some(())?;
        let asid = s.dec()?;
        let global = s.lit(" G");
        s.lit(" PFN ").then_some(())?;
        let even = s.hex32()?;
        s.lit("/").then_some(())?;
        MonEvent::GuestTlbWrite {
            index,
            random,
            vpn2,
            asid,
            global,
            pfn: [even, s.hex32()?],
        }
    };
    s.done().then_some(e)
}

fn half(t: &str) -> Option<Half> {
    if t == "invalid" {
        return Some(Half::Invalid);
    }
    let mut s = Scan(t.strip_prefix("P ")?);
    let gpa = s.hex()?;
    if s.lit(" -> (no machine page)") {
        return s.done().then_some(Half::Unbacked { gpa });
    }
    s.lit(" -> M ").then_some(())?;
    let mpa = s.hex()?;
    s.done().then_some(Half::Mapped { gpa, mpa })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_told_apart_by_their_columns() {
        let bare = "        2666 cpu0 kernel     exception Sys at 0x80010d4c <main+0xac>, vector 0x80000180";
        assert!(is_bare_machine_line(bare));
        assert_eq!(Reader::default().read(bare), Ok(None));
        for not_a_line in [
            "",
            "cpu0",
            "cpu0 kernel",
            "cpux vm0.0 monitor VM stopped",
            "42",
        ] {
            assert!(!is_bare_machine_line(not_a_line), "{not_a_line:?}");
            assert_eq!(
                Reader::default().read(not_a_line),
                Ok(None),
                "{not_a_line:?}"
            );
        }
        // A VM.VCPU column but no layer the format names: not a monitor line.
        assert_eq!(Reader::default().read("cpu0 vm0.0 kernel x"), Ok(None));
    }

    #[test]
    fn names_are_learnt_in_the_order_they_are_seen() {
        let mut r = Reader::new(vec!["a".into()]);
        let rec = r.read("7 cpu1 b.2 monitor switch to a.0").unwrap().unwrap();
        assert_eq!(rec.cycle, 7);
        assert_eq!(
            rec.place,
            Place {
                pcpu: 1,
                vm: 1,
                vcpu: 2
            }
        );
        assert_eq!(
            rec.event,
            MonEvent::Switch {
                to_vm: 0,
                to_vcpu: 0
            }
        );
        assert_eq!(r.names(), ["a", "b"]);
    }

    #[test]
    fn an_event_with_text_left_over_is_refused() {
        let mut r = Reader::default();
        assert!(r.read("cpu0 v.0 monitor VM halted with status 3").is_ok());
        let e = r
            .read("cpu0 v.0 monitor VM halted with status 3 and more")
            .unwrap_err();
        assert_eq!(e.layer, "monitor");
        assert!(
            r.read("cpu0 v.0 engine  0x80001000").is_err(),
            "no instruction"
        );
        assert!(r.read("cpu0 v.0 user    exit Nope at 0x00400000").is_err());
    }
}
