//! End-of-run output: `--stats`, `--dump-regs`, where each CPU stopped
//! (Ctrl-C), and per-VM console prefixes. Everything is written to a
//! caller's writer and returns its errors (src/out.rs says what they mean).

use std::io::{self, Write};

use monitor::vcpu::{Vcpu, VcpuState};
use monitor::Monitor;
use serde_json::json;
use sim::cpu::cp0::reg;
use sim::cpu::RunState;
use sim::cpu::{Cp0, Regs};
use sim::loader::Symbols;
use sim::{ExcCode, Machine};

use crate::cli::DumpFormat;
use crate::out::OutputError;

pub(crate) fn native_stats(w: &mut impl Write, m: &Machine, secs: f64) -> io::Result<()> {
    let stats = m.stats();
    let mips = |insns: u64| insns as f64 / secs.max(1e-9) / 1e6;
    for (i, c) in stats.per_cpu.iter().enumerate() {
        writeln!(
            w,
            "cpu{i}: {} instructions, {} cycles, {} TLB refills, {} interrupts, {} idle cycles, {:.1} host MIPS",
            c.instructions,
            c.cycles,
            c.tlb_refills,
            c.interrupts,
            c.idle_cycles,
            mips(c.instructions)
        )?;
        print_exceptions(w, "  exceptions:", &c.exceptions)?;
    }
    let t = &stats.total;
    writeln!(
        w,
        "total: {} instructions, {} cycles, {} TLB refills, {} interrupts, {} idle cycles, {:.1} host MIPS",
        t.instructions,
        t.cycles,
        t.tlb_refills,
        t.interrupts,
        t.idle_cycles,
        mips(t.instructions)
    )?;
    print_exceptions(w, "  exceptions:", &t.exceptions)?;
    if let Some((quanta, waits)) = m.parallel_waits().filter(|w| w.0 > 0) {
        writeln!(
            w,
            "parallel: threads waited for each other before {waits} of {quanta} quanta"
        )?;
    }
    Ok(())
}

fn print_exceptions(w: &mut impl Write, label: &str, counts: &[u64; 32]) -> io::Result<()> {
    let parts: Vec<String> = ExcCode::ALL
        .iter()
        .filter_map(|c| {
            let n = counts.get(*c as usize).copied().unwrap_or(0);
            (n > 0).then(|| format!("{c} {n}"))
        })
        .collect();
    writeln!(
        w,
        "{label} {}",
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    )
}

fn hex(v: u64) -> String {
    format!("0x{v:016x}")
}

fn cpu_json(cpu: serde_json::Value, regs: &Regs, cp0: &Cp0, count: u32) -> serde_json::Value {
    json!({
        "cpu": cpu,
        "pc": hex(regs.pc),
        "gpr": regs.gpr.iter().map(|r| hex(*r)).collect::<Vec<_>>(),
        "hi": hex(regs.hi),
        "lo": hex(regs.lo),
        "cp0": {
            "status": hex(cp0.read(reg::STATUS, count, 0)),
            "cause": hex(cp0.read(reg::CAUSE, count, 0)),
            "epc": hex(cp0.epc),
            "badvaddr": hex(cp0.bad_vaddr),
            "entryhi": hex(cp0.entry_hi),
            "count": hex(u64::from(count)),
        }
    })
}

fn print_dump(
    w: &mut impl Write,
    v: &serde_json::Value,
    fmt: DumpFormat,
    title: &str,
    regs: &Regs,
) -> io::Result<()> {
    match fmt {
        DumpFormat::Json => writeln!(w, "{v}")?,
        DumpFormat::Text => {
            writeln!(
                w,
                "{title}: pc {}  hi {}  lo {}",
                hex(regs.pc),
                hex(regs.hi),
                hex(regs.lo)
            )?;
            for row in 0..8 {
                let cells: Vec<String> = (0..4)
                    .map(|col| {
                        let r = row * 4 + col;
                        let name = sim::isa::Reg::new(r as u32).abi_name();
                        format!("{name:>4} {}", hex(regs.gpr[r]))
                    })
                    .collect();
                writeln!(w, "  {}", cells.join("  "))?;
            }
            if let Some(cp0) = v.get("cp0") {
                let fields = ["status", "cause", "epc", "badvaddr", "entryhi", "count"];
                let cells: Vec<String> = fields
                    .iter()
                    .map(|f| {
                        format!(
                            "{f} {}",
                            cp0.get(*f).and_then(|x| x.as_str()).unwrap_or("?")
                        )
                    })
                    .collect();
                writeln!(w, "  {}", cells.join("  "))?;
            }
        }
    }
    Ok(())
}

pub(crate) fn dump_native(w: &mut impl Write, m: &Machine, fmt: DumpFormat) -> io::Result<()> {
    for c in &m.cpus {
        let v = cpu_json(json!(c.id()), &c.regs, c.cp0(), c.count());
        print_dump(w, &v, fmt, &format!("cpu{}", c.id()), &c.regs)?;
    }
    Ok(())
}

pub(crate) fn dump_monitor(w: &mut impl Write, m: &Monitor, fmt: DumpFormat) -> io::Result<()> {
    for vm in &m.vms {
        for vc in &vm.vcpus {
            let regs = live_regs(m, vc);
            let mut v = cpu_json(json!(vc.index), regs, &vc.cp0, vc.count(m.now()));
            if let Some(o) = v.as_object_mut() {
                o.insert("vm".into(), json!(vm.name));
            }
            print_dump(w, &v, fmt, &format!("{}.{}", vm.name, vc.index), regs)?;
        }
    }
    Ok(())
}

/// A PC as the guest sees it: 32 bits when it is a sign-extended 32-bit
/// address, as every kit's is.
fn pc_text(pc: u64, symbols: Option<&Symbols>) -> String {
    let short = pc as i64 == i64::from(pc as i32);
    let mut text = if short {
        format!("{:#010x}", pc as u32) // Exact: sign-extended 32 bits.
    } else {
        format!("{pc:#018x}")
    };
    if let Some((name, off)) = symbols.and_then(|s| s.lookup(pc)) {
        text.push_str(&format!(" <{name}+{off:#x}>"));
    }
    text
}

/// Where each CPU of the bare machine is: `  cpu0: pc 0x80001234 <main+0x10>, kernel mode, running`.
pub(crate) fn native_positions(m: &Machine, symbols: &Symbols) -> Vec<String> {
    m.cpus
        .iter()
        .map(|c| {
            let state = match c.run_state() {
                RunState::Parked => "parked",
                RunState::Running => "running",
                RunState::Waiting => "waiting",
                RunState::Stopped => "stopped",
            };
            format!(
                "  cpu{}: pc {}, {} mode, {state}",
                c.id(),
                pc_text(c.regs.pc, Some(symbols)),
                c.mode().name()
            )
        })
        .collect()
}

/// A VCPU's registers: while it is scheduled (a run stopped by Ctrl-C or
/// the cycle limit), they live in its physical CPU.
fn live_regs<'a>(m: &'a Monitor, vc: &'a Vcpu) -> &'a Regs {
    match vc.on_pcpu.and_then(|p| m.machine.cpus.get(p)) {
        Some(cpu) => &cpu.regs,
        None => &vc.regs,
    }
}

/// Where each VCPU is: `  vm0.0: pc 0x00400120, user mode, on cpu1`.
pub(crate) fn monitor_positions(m: &Monitor) -> Vec<String> {
    let mut lines = Vec::new();
    for vm in &m.vms {
        for vc in &vm.vcpus {
            let pc = live_regs(m, vc).pc;
            let state = match (vc.state, vc.on_pcpu) {
                (VcpuState::Parked, _) => "parked".to_string(),
                (VcpuState::Waiting, _) => "waiting".to_string(),
                (VcpuState::Stopped, _) => "stopped".to_string(),
                (VcpuState::Runnable, Some(p)) => format!("on cpu{p}"),
                (VcpuState::Runnable, None) => "descheduled".to_string(),
            };
            lines.push(format!(
                "  {}.{}: pc {}, {} mode, {state}",
                vm.name,
                vc.index,
                pc_text(pc, None),
                vc.mode().name()
            ));
        }
    }
    lines
}

/// Prints each VM's console output line by line, prefixed with its name,
/// or writes it unchanged to the VM's own console file.
pub(crate) struct Prefixer {
    names: Vec<String>,
    partial: Vec<Vec<u8>>,
    files: Vec<Option<std::fs::File>>,
}

impl Prefixer {
    /// `files[vm]`, where given, receives that VM's console instead of stdout.
    pub(crate) fn new(names: Vec<String>, files: Vec<Option<std::fs::File>>) -> Prefixer {
        let partial = vec![Vec::new(); names.len()];
        Prefixer {
            names,
            partial,
            files,
        }
    }

    /// Writes what VM `vm` printed; a failed write stops the run.
    pub(crate) fn write(&mut self, vm: usize, bytes: &[u8]) -> Result<(), OutputError> {
        if let Some(Some(file)) = self.files.get_mut(vm) {
            let name = self.names.get(vm).map_or("", |n| n.as_str());
            return file
                .write_all(bytes)
                .map_err(|e| OutputError::new(&format!("{name}'s console file"), e));
        }
        let Some(buf) = self.partial.get_mut(vm) else {
            return Ok(());
        };
        buf.extend_from_slice(bytes);
        let name = self.names.get(vm).cloned().unwrap_or_default();
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            write!(out, "[{name}] ").map_err(OutputError::stdout)?;
            out.write_all(&line).map_err(OutputError::stdout)?;
        }
        out.flush().map_err(OutputError::stdout)
    }

    /// Ends each VM's unfinished last line.
    pub(crate) fn finish(&mut self) -> Result<(), OutputError> {
        for vm in 0..self.partial.len() {
            if self.partial.get(vm).is_some_and(|b| !b.is_empty()) {
                self.write(vm, b"\n")?;
            }
        }
        Ok(())
    }
}
