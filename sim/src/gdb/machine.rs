//! The bare machine as a debug target: each CPU is a thread; memory is what
//! the stopped CPU's kernel sees (its TLB and current ASID, kernel segments
//! included), RAM only.

use super::target::{self, regnum, Point, Resume, Stop, Target};
use crate::cpu::cp0::{reg, status};
use crate::cpu::{tlb, Access, Cp0, Tlb};
use crate::mem::Bus;
use crate::{DebugControl, Exit, Machine};

/// Called after every quantum the debugger runs (console output, input).
pub type QuantumHook<'a> = dyn FnMut(&mut Machine) + 'a;

/// A [`Machine`] behind the [`Target`] trait.
pub struct MachineTarget<'a> {
    pub machine: &'a mut Machine,
    hook: Option<&'a mut QuantumHook<'a>>,
    points: Vec<Point>,
    /// How the machine ended while the debugger ran it.
    pub exit: Option<Exit>,
}

impl<'a> MachineTarget<'a> {
    pub fn new(machine: &'a mut Machine) -> MachineTarget<'a> {
        MachineTarget {
            machine,
            hook: None,
            points: Vec::new(),
            exit: None,
        }
    }

    /// Calls `hook` after each quantum the debugger runs.
    pub fn with_hook(mut self, hook: &'a mut QuantumHook<'a>) -> MachineTarget<'a> {
        self.hook = Some(hook);
        self
    }
}

/// Physical address of `va` as the kernel of a CPU with `cp0` and `tlb`
/// sees it: kernel mode (EXL set), the current ASID, 32-bit addressing. No
/// state changes and no exception: `None` if unmapped.
pub fn kernel_translate(cp0: &Cp0, tlb: &Tlb, va: u64) -> Option<u64> {
    let mut view = cp0.clone();
    view.status |= status::EXL;
    view.status &= !status::ERL;
    // The low word: 32-bit addressing.
    tlb::translate(&view, tlb, va as u32, Access::Load)
        .ok()
        .map(|t| t.pa)
}

/// Splits `[addr, addr+len)` at 4 KB page boundaries (the smallest page),
/// translating each piece with `xlate`; `None` if any piece is unmapped.
pub fn pieces(
    addr: u64,
    len: usize,
    xlate: impl Fn(u64) -> Option<u64>,
) -> Option<Vec<(u64, usize, usize)>> {
    let mut out = Vec::new();
    let mut done = 0usize;
    while done < len {
        let va = addr.wrapping_add(done as u64);
        let in_page = (0x1000 - (va & 0xFFF)) as usize;
        let n = in_page.min(len - done);
        out.push((xlate(va)?, done, n));
        done += n;
    }
    Some(out)
}

/// Reads through `xlate` from RAM only.
pub fn read_ram(bus: &Bus, addr: u64, out: &mut [u8], xlate: impl Fn(u64) -> Option<u64>) -> bool {
    let Some(parts) = pieces(addr, out.len(), xlate) else {
        return false;
    };
    if !parts.iter().all(|&(pa, _, n)| bus.in_ram(pa, n as u64)) {
        return false;
    }
    for (pa, off, n) in parts {
        let Some(dst) = out.get_mut(off..off + n) else {
            return false;
        };
        if !bus.copy_out(pa, dst) {
            return false;
        }
    }
    true
}

/// Writes through `xlate` to RAM only, all or nothing.
pub(crate) fn write_ram(
    bus: &mut Bus,
    addr: u64,
    data: &[u8],
    xlate: impl Fn(u64) -> Option<u64>,
) -> bool {
    let Some(parts) = pieces(addr, data.len(), xlate) else {
        return false;
    };
    if !parts.iter().all(|&(pa, _, n)| bus.in_ram(pa, n as u64)) {
        return false;
    }
    parts.into_iter().all(|(pa, off, n)| {
        data.get(off..off + n)
            .is_some_and(|bytes| bus.write_bytes(pa, bytes))
    })
}

impl Target for MachineTarget<'_> {
    fn threads(&self) -> usize {
        self.machine.cpus.len()
    }

    fn thread_name(&self, thread: usize) -> String {
        let state = self
            .machine
            .cpus
            .get(thread)
            .map_or("?", |c| match c.state {
                crate::RunState::Parked => " (parked)",
                crate::RunState::Waiting => " (waiting)",
                crate::RunState::Stopped => " (stopped)",
                crate::RunState::Running => "",
            });
        format!("CPU {thread}{state}")
    }

    fn read_register(&self, thread: usize, n: usize) -> Option<u64> {
        let cpu = self.machine.cpus.get(thread)?;
        target::register(&cpu.regs, &cpu.cp0, n)
    }

    fn write_register(&mut self, thread: usize, n: usize, value: u64) -> bool {
        let Some(cpu) = self.machine.cpus.get_mut(thread) else {
            return false;
        };
        match n {
            regnum::PC => {
                cpu.set_pc(target::sign_extend(value));
                true
            }
            regnum::STATUS => {
                cpu.write_cp0(reg::STATUS, value);
                true
            }
            regnum::CAUSE => {
                cpu.write_cp0(reg::CAUSE, value);
                true
            }
            _ => target::write_gpr(&mut cpu.regs, n, value),
        }
    }

    fn read_memory(&self, thread: usize, addr: u64, out: &mut [u8]) -> bool {
        let Some(cpu) = self.machine.cpus.get(thread) else {
            return false;
        };
        read_ram(&self.machine.bus, addr, out, |va| {
            kernel_translate(&cpu.cp0, &cpu.tlb, va)
        })
    }

    fn write_memory(&mut self, thread: usize, addr: u64, data: &[u8]) -> bool {
        let Some(cpu) = self.machine.cpus.get(thread) else {
            return false;
        };
        let (cp0, tlb) = (cpu.cp0.clone(), cpu.tlb.clone());
        write_ram(&mut self.machine.bus, addr, data, |va| {
            kernel_translate(&cp0, &tlb, va)
        })
    }

    fn insert_point(&mut self, p: Point) -> bool {
        if !self.points.contains(&p) {
            self.points.push(p);
        }
        true
    }

    fn remove_point(&mut self, p: Point) -> bool {
        self.points.retain(|q| *q != p);
        true
    }

    fn resume(&mut self, how: Resume) {
        let control = debug_control(&self.points);
        for (i, cpu) in self.machine.cpus.iter_mut().enumerate() {
            cpu.debug = DebugControl {
                stepping: how == Resume::Step(i),
                ..control.clone()
            };
        }
    }

    fn run(&mut self) -> Option<Stop> {
        if let Some(e) = self.exit {
            return Some(exited(e));
        }
        // Stepping a CPU that cannot run would never stop: report at once.
        if let Some((i, _)) = self
            .machine
            .cpus
            .iter()
            .enumerate()
            .find(|(_, c)| c.debug.stepping && c.state == crate::RunState::Parked)
        {
            if let Some(c) = self.machine.cpus.get_mut(i) {
                c.debug.stepping = false;
            }
            return Some(Stop::Trap { thread: i });
        }
        let e = self.machine.run_quantum();
        if let Some(h) = self.hook.as_mut() {
            h(self.machine);
        }
        match e? {
            Exit::Debug { cpu } => {
                let hit = self
                    .machine
                    .cpus
                    .get_mut(cpu)
                    .and_then(|c| c.debug.watch_hit.take());
                Some(match hit {
                    Some((addr, store)) => watch_stop(&self.points, cpu, addr, store),
                    None => Stop::Trap { thread: cpu },
                })
            }
            e => {
                self.exit = Some(e);
                Some(exited(e))
            }
        }
    }

    fn detach(&mut self) {
        for cpu in &mut self.machine.cpus {
            cpu.debug = DebugControl::default();
        }
        self.points.clear();
    }
}

fn exited(e: Exit) -> Stop {
    Stop::Exited {
        status: match e {
            Exit::Halted { status } => status,
            _ => 0,
        },
    }
}

/// The simulator's debug requests for a set of points: active, leaving the
/// breakpoint at the current PC once (GDB has already seen that stop).
pub fn debug_control(points: &[Point]) -> DebugControl {
    DebugControl {
        breakpoints: points
            .iter()
            .filter(|p| !p.kind.is_watch())
            .map(|p| target::sign_extend(p.addr))
            .collect(),
        stepping: false,
        resuming: true,
        active: true,
        watchpoints: points
            .iter()
            .filter(|p| p.kind.is_watch())
            .map(Point::watchpoint)
            .collect(),
        watch_hit: None,
        stop_on_entry: false,
    }
}

/// The stop for a watchpoint hit: the point's kind as GDB set it.
pub fn watch_stop(points: &[Point], thread: usize, addr: u64, store: bool) -> Stop {
    let kind = points
        .iter()
        .filter(|p| p.kind.is_watch())
        .find(|p| p.addr & 0xFFFF_FFFF == addr & 0xFFFF_FFFF)
        .map_or(
            if store {
                super::PointKind::Write
            } else {
                super::PointKind::Read
            },
            |p| p.kind,
        );
    Stop::Watch { thread, kind, addr }
}
