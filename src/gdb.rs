//! `--gdb PORT`: the GDB remote serial protocol over TCP on 127.0.0.1, for
//! the bare machine. Each simulated CPU is a GDB thread (thread id = CPU + 1).
//! Registers are the 64-bit layout GDB's MIPS target uses for an R4000
//! (0–31 GPRs, 32 sr, 33 lo, 34 hi, 35 bad, 36 cause, 37 pc, 38–71 FPU,
//! which reads as zeros here). Memory is read and written in the kernel's
//! view of the stopped CPU's address space, RAM only: device registers and
//! unmapped addresses answer an error, so the debugger never triggers a
//! device's side effects. Breakpoints are simulator PC breakpoints (so they
//! work in delay slots and need no memory patching); stopping for the
//! debugger does not change simulated time. Watchpoints (Z2 write, Z3
//! read, Z4 access) are checked by the simulator on every load and store
//! while the debugger runs the machine.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use anyhow::{anyhow, Context};
use sim::cpu::cp0::status;
use sim::cpu::{tlb, Access};
use sim::{Exit, Machine};

/// Largest packet we accept; larger ones are refused with a NAK.
const MAX_PACKET: usize = 16 * 1024;

/// Why the machine stopped, as GDB hears it.
enum Stop {
    Signal(u8, usize),
    /// A data watchpoint: its kind (`watch`, `rwatch`, `awatch`), address, CPU.
    Watch(&'static str, u64, usize),
    Exited(u32),
}

/// A watchpoint as GDB set it: Z2 write, Z3 read, Z4 access.
#[derive(Clone, Copy)]
struct Watch {
    kind: u8,
    addr: u64,
    len: u64,
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn send(&mut self, payload: &str) -> std::io::Result<()> {
        let sum = payload.bytes().fold(0u8, |a, b| a.wrapping_add(b));
        self.stream
            .write_all(format!("${payload}#{sum:02x}").as_bytes())
    }

    fn fill(&mut self) -> std::io::Result<bool> {
        let mut tmp = [0u8; 4096];
        match self.stream.read(&mut tmp) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.buf.extend_from_slice(tmp.get(..n).unwrap_or(&[]));
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    /// The next command packet (acknowledged), `Some("\x03")` for an
    /// interrupt, or `None` when the client went away.
    fn next(&mut self) -> std::io::Result<Option<String>> {
        loop {
            // Drop acks and noise before a packet.
            while let Some(&b) = self.buf.first() {
                if b == b'$' {
                    break;
                }
                self.buf.remove(0);
                if b == 0x03 {
                    return Ok(Some("\u{3}".into()));
                }
            }
            if self.buf.len() > MAX_PACKET + 4 {
                self.buf.clear();
                self.stream.write_all(b"-")?;
                continue;
            }
            if let Some(hash) = self.buf.iter().position(|&b| b == b'#') {
                if self.buf.len() >= hash + 3 {
                    let body: Vec<u8> = self.buf.get(1..hash).unwrap_or(&[]).to_vec();
                    let sum = std::str::from_utf8(self.buf.get(hash + 1..hash + 3).unwrap_or(&[]))
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    self.buf.drain(..hash + 3);
                    let ok = sum == Some(body.iter().fold(0u8, |a, b| a.wrapping_add(*b)));
                    if !ok {
                        self.stream.write_all(b"-")?;
                        continue;
                    }
                    self.stream.write_all(b"+")?;
                    return Ok(Some(String::from_utf8_lossy(&body).into_owned()));
                }
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Whether an interrupt (0x03) arrived while the machine runs.
    fn interrupted(&mut self) -> bool {
        let _ = self.stream.set_nonblocking(true);
        let _ = self.fill();
        let _ = self.stream.set_nonblocking(false);
        if let Some(i) = self.buf.iter().position(|&b| b == 0x03) {
            self.buf.remove(i);
            return true;
        }
        false
    }
}

/// Waits for GDB on `port` (if `wait`, before the first instruction;
/// otherwise runs meanwhile), then serves it until it detaches or kills the
/// machine. Returns how the machine ended.
pub(crate) fn serve(
    m: &mut Machine,
    port: u16,
    wait: bool,
    console: &mut dyn FnMut(&mut Machine),
) -> anyhow::Result<Exit> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .with_context(|| format!("--gdb: cannot listen on 127.0.0.1:{port}"))?;
    eprintln!("disco: waiting for GDB on 127.0.0.1:{port}");
    listener.set_nonblocking(!wait)?;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if let Some(exit) = m.run_quantum() {
                    console(m);
                    return Ok(exit);
                }
                console(m);
            }
            Err(e) => return Err(anyhow!("--gdb: {e}")),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_millis(50)))?;
    let _ = stream.set_nodelay(true);
    let mut c = Conn {
        stream,
        buf: Vec::new(),
    };
    let mut thread = 0usize;
    let mut breakpoints: Vec<u64> = Vec::new();
    let mut watches: Vec<Watch> = Vec::new();
    let mut last = Stop::Signal(5, 0);
    loop {
        let Some(cmd) = c.next()? else {
            // The client disconnected: let the machine run on.
            clear(m);
            return Ok(run_free(m, console));
        };
        let reply = match cmd.as_bytes().first().copied() {
            Some(b'?') => stop_reply(&last),
            Some(b'q') => query(m, &cmd, thread),
            Some(b'H') => {
                if let Some(t) = parse_thread(cmd.get(2..).unwrap_or("")) {
                    if t < m.cpus.len() {
                        thread = t;
                    }
                }
                "OK".into()
            }
            Some(b'T') => match parse_thread(cmd.get(1..).unwrap_or("")) {
                Some(t) if t < m.cpus.len() => "OK".into(),
                _ => "E01".into(),
            },
            Some(b'g') => registers(m, thread),
            Some(b'p') => match usize::from_str_radix(cmd.get(1..).unwrap_or(""), 16) {
                Ok(n) => register(m, thread, n),
                Err(_) => "E01".into(),
            },
            Some(b'P') => set_register(m, thread, cmd.get(1..).unwrap_or("")),
            Some(b'm') => read_memory(m, thread, cmd.get(1..).unwrap_or("")),
            Some(b'M') => write_memory(m, thread, cmd.get(1..).unwrap_or("")),
            Some(b'Z') | Some(b'z') => {
                let insert = cmd.starts_with('Z');
                let mut parts = cmd.get(1..).unwrap_or("").split(',');
                let kind = parts.next().unwrap_or("");
                let addr = parts.next().and_then(|a| u64::from_str_radix(a, 16).ok());
                match (kind, addr) {
                    ("0" | "1", Some(a)) => {
                        let a = a & 0xFFFF_FFFF;
                        breakpoints.retain(|&b| b != a);
                        if insert {
                            breakpoints.push(a);
                        }
                        "OK".into()
                    }
                    ("2" | "3" | "4", Some(a)) => {
                        let len = parts
                            .next()
                            .and_then(|l| u64::from_str_radix(l, 16).ok())
                            .unwrap_or(1);
                        let kind = kind.as_bytes().first().copied().unwrap_or(b'2') - b'0';
                        watches.retain(|w| !(w.addr == a && w.kind == kind));
                        if insert {
                            watches.push(Watch { kind, addr: a, len });
                        }
                        "OK".into()
                    }
                    _ => String::new(),
                }
            }
            Some(b'c') | Some(b's') => {
                let step = cmd.starts_with('s');
                last = resume(m, &mut c, &breakpoints, &watches, thread, step, console);
                if let Stop::Signal(_, cpu) | Stop::Watch(_, _, cpu) = last {
                    thread = cpu;
                }
                stop_reply(&last)
            }
            Some(b'v') if cmd.starts_with("vCont?") => "vCont;c;s".into(),
            Some(b'v') if cmd.starts_with("vCont;") => {
                let step = cmd.get(6..7) == Some("s");
                last = resume(m, &mut c, &breakpoints, &watches, thread, step, console);
                if let Stop::Signal(_, cpu) | Stop::Watch(_, _, cpu) = last {
                    thread = cpu;
                }
                stop_reply(&last)
            }
            Some(b'D') => {
                c.send("OK")?;
                clear(m);
                return Ok(run_free(m, console));
            }
            Some(b'k') => {
                clear(m);
                return Ok(Exit::Halted { status: 0 });
            }
            Some(0x03) => stop_reply(&last),
            _ => String::new(),
        };
        c.send(&reply)?;
        if let Stop::Exited(_) = last {
            if cmd.starts_with('c') || cmd.starts_with('s') || cmd.starts_with("vCont;") {
                clear(m);
                return Ok(match m.halted {
                    Some(status) => Exit::Halted { status },
                    None => Exit::Idle,
                });
            }
        }
    }
}

fn clear(m: &mut Machine) {
    for cpu in &mut m.cpus {
        cpu.debug = sim::DebugControl::default();
    }
}

fn run_free(m: &mut Machine, console: &mut dyn FnMut(&mut Machine)) -> Exit {
    loop {
        let e = m.run_quantum();
        console(m);
        if let Some(e) = e {
            if !matches!(e, Exit::Debug { .. }) {
                return e;
            }
        }
    }
}

fn resume(
    m: &mut Machine,
    c: &mut Conn,
    breakpoints: &[u64],
    watches: &[Watch],
    thread: usize,
    step: bool,
    console: &mut dyn FnMut(&mut Machine),
) -> Stop {
    for (i, cpu) in m.cpus.iter_mut().enumerate() {
        cpu.debug.active = true;
        cpu.debug.breakpoints = breakpoints
            .iter()
            .map(|&b| i64::from(b as u32 as i32) as u64)
            .collect();
        // Leave the breakpoint we are stopped at.
        cpu.debug.resuming = true;
        cpu.debug.stepping = step && i == thread;
        cpu.debug.watch_hit = None;
        cpu.debug.watchpoints = watches
            .iter()
            .map(|w| sim::Watchpoint {
                addr: w.addr,
                len: w.len,
                on_load: w.kind != 2,
                on_store: w.kind != 3,
            })
            .collect();
    }
    loop {
        let e = m.run_quantum();
        console(m);
        match e {
            Some(Exit::Debug { cpu }) => {
                let hit = m.cpus.get(cpu).and_then(|c| c.debug.watch_hit);
                return match hit {
                    Some((addr, store)) => {
                        let kind = watches.iter().find(|w| w.addr == addr).map_or(
                            if store { "watch" } else { "rwatch" },
                            |w| match w.kind {
                                2 => "watch",
                                3 => "rwatch",
                                _ => "awatch",
                            },
                        );
                        Stop::Watch(kind, addr, cpu)
                    }
                    None => Stop::Signal(5, cpu),
                };
            }
            Some(Exit::Halted { status }) => return Stop::Exited(status),
            Some(_) => return Stop::Exited(0),
            None => {
                if c.interrupted() {
                    return Stop::Signal(2, thread);
                }
            }
        }
    }
}

fn stop_reply(s: &Stop) -> String {
    match s {
        Stop::Signal(sig, cpu) => format!("T{sig:02x}thread:{:x};", cpu + 1),
        Stop::Watch(kind, addr, cpu) => format!("T05{kind}:{addr:x};thread:{:x};", cpu + 1),
        Stop::Exited(status) => format!("W{:02x}", status & 0xFF),
    }
}

fn parse_thread(s: &str) -> Option<usize> {
    match s {
        "-1" | "0" => Some(0),
        t => usize::from_str_radix(t, 16).ok()?.checked_sub(1),
    }
}

fn query(m: &Machine, cmd: &str, thread: usize) -> String {
    if cmd.starts_with("qSupported") {
        format!("PacketSize={MAX_PACKET:x}")
    } else if cmd == "qAttached" {
        "1".into()
    } else if cmd == "qC" {
        format!("QC{:x}", thread + 1)
    } else if cmd == "qfThreadInfo" {
        let ids: Vec<String> = (1..=m.cpus.len()).map(|t| format!("{t:x}")).collect();
        format!("m{}", ids.join(","))
    } else if cmd == "qsThreadInfo" {
        "l".into()
    } else if let Some(id) = cmd.strip_prefix("qThreadExtraInfo,") {
        let t = usize::from_str_radix(id, 16).unwrap_or(1);
        hex(format!("CPU {}", t.saturating_sub(1)).as_bytes())
    } else {
        String::new()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn reg_value(m: &Machine, thread: usize, n: usize) -> Option<u64> {
    let cpu = m.cpus.get(thread)?;
    Some(match n {
        0..=31 => *cpu.regs.gpr.get(n)?,
        32 => u64::from(cpu.cp0.status),
        33 => cpu.regs.lo,
        34 => cpu.regs.hi,
        35 => cpu.cp0.bad_vaddr,
        36 => u64::from(cpu.cp0.cause),
        37 => cpu.regs.pc,
        38..=89 => 0,
        _ => return None,
    })
}

fn registers(m: &Machine, thread: usize) -> String {
    (0..72)
        .map(|n| format!("{:016x}", reg_value(m, thread, n).unwrap_or(0)))
        .collect()
}

fn register(m: &Machine, thread: usize, n: usize) -> String {
    match reg_value(m, thread, n) {
        Some(v) => format!("{v:016x}"),
        None => "E01".into(),
    }
}

fn set_register(m: &mut Machine, thread: usize, arg: &str) -> String {
    let Some((n, v)) = arg.split_once('=') else {
        return "E01".into();
    };
    let (Ok(n), Ok(v)) = (usize::from_str_radix(n, 16), u64::from_str_radix(v, 16)) else {
        return "E01".into();
    };
    let Some(cpu) = m.cpus.get_mut(thread) else {
        return "E01".into();
    };
    match n {
        1..=31 => {
            if let Some(r) = cpu.regs.gpr.get_mut(n) {
                *r = v;
            }
        }
        33 => cpu.regs.lo = v,
        34 => cpu.regs.hi = v,
        37 => cpu.set_pc(v),
        _ => {}
    }
    "OK".into()
}

/// Physical address of `va` as the kernel sees it on `thread`'s CPU.
fn translate(m: &Machine, thread: usize, va: u64) -> Option<u64> {
    let cpu = m.cpus.get(thread)?;
    let mut cp0 = cpu.cp0.clone();
    cp0.status |= status::EXL;
    // The low word: 32-bit addressing.
    tlb::translate(&cp0, &cpu.tlb, va as u32, Access::Load)
        .ok()
        .map(|t| t.pa)
}

fn parse_range(arg: &str) -> Option<(u64, usize)> {
    let (a, rest) = arg.split_once(',')?;
    let len = rest.split(':').next()?;
    Some((
        u64::from_str_radix(a, 16).ok()?,
        usize::from_str_radix(len, 16).ok()?,
    ))
}

fn read_memory(m: &Machine, thread: usize, arg: &str) -> String {
    let Some((addr, len)) = parse_range(arg) else {
        return "E01".into();
    };
    if len > MAX_PACKET / 2 {
        return "E02".into();
    }
    let mut out = String::with_capacity(len * 2);
    for i in 0..len as u64 {
        let Some(pa) = translate(m, thread, addr.wrapping_add(i)) else {
            return "E03".into();
        };
        let Some(b) = m.bus.read_bytes(pa, 1).and_then(|s| s.first().copied()) else {
            return "E03".into();
        };
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn write_memory(m: &mut Machine, thread: usize, arg: &str) -> String {
    let Some((head, data)) = arg.split_once(':') else {
        return "E01".into();
    };
    let Some((addr, len)) = parse_range(head) else {
        return "E01".into();
    };
    let bytes: Option<Vec<u8>> = (0..len)
        .map(|i| {
            data.get(2 * i..2 * i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    let Some(bytes) = bytes else {
        return "E01".into();
    };
    for (i, b) in bytes.iter().enumerate() {
        let Some(pa) = translate(m, thread, addr.wrapping_add(i as u64)) else {
            return "E03".into();
        };
        if !m.bus.write_bytes(pa, &[*b]) {
            return "E03".into();
        }
    }
    "OK".into()
}
