//! End-of-run output: `--stats`, `--dump-regs`, and per-VM console prefixes.

use std::io::Write;

use monitor::Monitor;
use serde_json::json;
use sim::cpu::cp0::reg;
use sim::cpu::{Cp0, Regs};
use sim::{ExcCode, Machine};

use crate::cli::DumpFormat;

pub(crate) fn native_stats(m: &Machine, secs: f64) {
    let stats = m.stats();
    let mips = |insns: u64| insns as f64 / secs.max(1e-9) / 1e6;
    for (i, c) in stats.per_cpu.iter().enumerate() {
        println!(
            "cpu{i}: {} instructions, {} cycles, {} TLB refills, {} interrupts, {} idle cycles, {:.1} host MIPS",
            c.instructions,
            c.cycles,
            c.tlb_refills,
            c.interrupts,
            c.idle_cycles,
            mips(c.instructions)
        );
        print_exceptions("  exceptions:", &c.exceptions);
    }
    let t = &stats.total;
    println!(
        "total: {} instructions, {} cycles, {} TLB refills, {} interrupts, {} idle cycles, {:.1} host MIPS",
        t.instructions,
        t.cycles,
        t.tlb_refills,
        t.interrupts,
        t.idle_cycles,
        mips(t.instructions)
    );
    print_exceptions("  exceptions:", &t.exceptions);
}

fn print_exceptions(label: &str, counts: &[u64; 32]) {
    let parts: Vec<String> = ExcCode::ALL
        .iter()
        .filter_map(|c| {
            let n = counts.get(*c as usize).copied().unwrap_or(0);
            (n > 0).then(|| format!("{c} {n}"))
        })
        .collect();
    println!(
        "{label} {}",
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    );
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

fn print_dump(v: &serde_json::Value, fmt: DumpFormat, title: &str, regs: &Regs) {
    match fmt {
        DumpFormat::Json => println!("{v}"),
        DumpFormat::Text => {
            println!(
                "{title}: pc {}  hi {}  lo {}",
                hex(regs.pc),
                hex(regs.hi),
                hex(regs.lo)
            );
            for row in 0..8 {
                let cells: Vec<String> = (0..4)
                    .map(|col| {
                        let r = row * 4 + col;
                        let name = sim::isa::Reg::new(r as u32).abi_name();
                        format!("{name:>4} {}", hex(regs.gpr[r]))
                    })
                    .collect();
                println!("  {}", cells.join("  "));
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
                println!("  {}", cells.join("  "));
            }
        }
    }
}

pub(crate) fn dump_native(m: &Machine, fmt: DumpFormat) {
    for c in &m.cpus {
        let v = cpu_json(json!(c.id), &c.regs, &c.cp0, c.count());
        print_dump(&v, fmt, &format!("cpu{}", c.id), &c.regs);
    }
}

pub(crate) fn dump_monitor(m: &Monitor, fmt: DumpFormat) {
    for vm in &m.vms {
        for vc in &vm.vcpus {
            let mut v = cpu_json(json!(vc.index), &vc.regs, &vc.cp0, vc.count(m.now()));
            if let Some(o) = v.as_object_mut() {
                o.insert("vm".into(), json!(vm.name));
            }
            print_dump(&v, fmt, &format!("{}.{}", vm.name, vc.index), &vc.regs);
        }
    }
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

    pub(crate) fn write(&mut self, vm: usize, bytes: &[u8]) {
        if let Some(Some(file)) = self.files.get_mut(vm) {
            let _ = file.write_all(bytes);
            return;
        }
        let Some(buf) = self.partial.get_mut(vm) else {
            return;
        };
        buf.extend_from_slice(bytes);
        let name = self.names.get(vm).cloned().unwrap_or_default();
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let _ = write!(out, "[{name}] ");
            let _ = out.write_all(&line);
        }
        let _ = out.flush();
    }

    pub(crate) fn finish(&mut self) {
        for vm in 0..self.partial.len() {
            if self.partial.get(vm).is_some_and(|b| !b.is_empty()) {
                self.write(vm, b"\n");
            }
        }
    }
}
