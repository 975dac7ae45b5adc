//! The front end: GDB's commands parsed and answered against a [`Target`].
//! [`Session::handle`] is pure (a packet in, an [`Action`] out), so the
//! command set is unit-tested without sockets; [`serve`] runs a session on
//! a connection.

use std::fmt::Write as _;
use std::net::TcpStream;

use super::packet::{Conn, Input, MAX_PACKET};
use super::target::{regnum, Point, PointKind, Resume, Stop, Target};
use super::xml;

/// What the session wants done with a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Action {
    /// Send this reply (possibly empty: "not supported").
    Reply(Vec<u8>),
    /// Resume the target; the stop reply follows when it stops.
    Resume(Resume),
    /// Reply OK, then let the target run on without the debugger.
    Detach,
    /// End the session and the program (no reply).
    Kill,
}

/// How a debugging session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// GDB detached: the target should run on to its end.
    Detached,
    /// The connection dropped (or stalled mid-packet): run on, as detached.
    Disconnected,
    /// GDB killed the program: stop the machine.
    Killed,
    /// The program ended while GDB watched.
    Exited(u32),
}

/// One client's state: selected threads and the last stop.
#[derive(Debug)]
pub(super) struct Session {
    /// Thread for register and memory commands (`Hg`).
    g_thread: usize,
    /// Thread for step and continue (`Hc`); `None` = any.
    c_thread: Option<usize>,
    last: Stop,
    xml: String,
}

impl Default for Session {
    fn default() -> Self {
        Session {
            g_thread: 0,
            c_thread: None,
            last: Stop::Trap { thread: 0 },
            xml: xml::target_xml(),
        }
    }
}

fn reply(s: impl Into<Vec<u8>>) -> Action {
    Action::Reply(s.into())
}

fn err(n: u8) -> Action {
    reply(format!("E{n:02x}"))
}

fn hex_u64(s: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(s).ok()?;
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

fn hex_usize(s: &[u8]) -> Option<usize> {
    usize::try_from(hex_u64(s)?).ok()
}

fn hex_bytes(s: &[u8]) -> Option<Vec<u8>> {
    if s.len() & 1 != 0 {
        return None;
    }
    s.chunks(2)
        .map(|p| {
            let t = std::str::from_utf8(p).ok()?;
            u8::from_str_radix(t, 16).ok()
        })
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `ADDR,LEN` of `m`, `M`, `X` and `Z` packets.
fn addr_len(s: &[u8]) -> Option<(u64, usize)> {
    let comma = s.iter().position(|&b| b == b',')?;
    Some((hex_u64(s.get(..comma)?)?, hex_usize(s.get(comma + 1..)?)?))
}

/// A thread id as GDB writes it: `-1` (all), `0` (any), or id + 1, with an
/// optional `pPID.` prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ThreadSel {
    All,
    Any,
    One(usize),
}

fn thread_sel(s: &[u8]) -> Option<ThreadSel> {
    let s = match s.iter().position(|&b| b == b'.') {
        Some(dot) if s.first() == Some(&b'p') => s.get(dot + 1..)?,
        _ => s,
    };
    match s {
        b"-1" => Some(ThreadSel::All),
        b"0" => Some(ThreadSel::Any),
        _ => Some(ThreadSel::One(hex_usize(s)?.checked_sub(1)?)),
    }
}

impl Session {
    /// The reply GDB gets for `stop` (also kept for `?`).
    pub(crate) fn stop_reply(&mut self, stop: Stop) -> Vec<u8> {
        self.last = stop;
        match stop {
            Stop::Trap { thread } => {
                self.g_thread = thread;
                format!("T05thread:{:x};", thread + 1).into_bytes()
            }
            Stop::Interrupted { thread } => {
                self.g_thread = thread;
                format!("T02thread:{:x};", thread + 1).into_bytes()
            }
            Stop::Watch { thread, kind, addr } => {
                self.g_thread = thread;
                format!(
                    "T05{}:{:x};thread:{:x};",
                    kind.stop_word(),
                    addr & 0xFFFF_FFFF,
                    thread + 1
                )
                .into_bytes()
            }
            Stop::Exited { status } => format!("W{:02x}", status & 0xFF).into_bytes(),
        }
    }

    /// The thread a continue or Ctrl-C is reported on.
    pub(crate) fn resume_thread(&self) -> usize {
        self.c_thread.unwrap_or(self.g_thread)
    }

    fn valid(&self, t: &dyn Target, thread: usize) -> bool {
        thread < t.threads()
    }

    /// Answers one packet.
    pub(super) fn handle(&mut self, t: &mut dyn Target, pkt: &[u8]) -> Action {
        let (cmd, arg) = match pkt.split_first() {
            Some((c, a)) => (*c, a),
            None => return reply(""),
        };
        match cmd {
            b'?' => {
                let last = self.last;
                reply(self.stop_reply(last))
            }
            b'q' => self.query(t, arg),
            b'Q' if arg == b"StartNoAckMode" => reply("OK"),
            b'H' => self.select_thread(t, arg),
            b'T' => match thread_sel(arg) {
                Some(ThreadSel::One(n)) if self.valid(t, n) => reply("OK"),
                _ => err(1),
            },
            b'g' => {
                let mut s = String::with_capacity(regnum::COUNT * 16);
                for n in 0..regnum::COUNT {
                    let v = t.read_register(self.g_thread, n).unwrap_or(0);
                    let _ = write!(s, "{v:016x}");
                }
                reply(s)
            }
            b'G' => {
                let Some(bytes) = hex_bytes(arg) else {
                    return err(1);
                };
                for (n, chunk) in bytes.chunks_exact(8).enumerate().take(regnum::COUNT) {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(chunk);
                    // Unwritable registers (FPU, BadVAddr) are skipped.
                    let _ = t.write_register(self.g_thread, n, u64::from_be_bytes(w));
                }
                reply("OK")
            }
            b'p' => match hex_usize(arg).and_then(|n| t.read_register(self.g_thread, n)) {
                Some(v) => reply(format!("{v:016x}")),
                None => err(1),
            },
            b'P' => self.write_one_register(t, arg),
            b'm' => self.read_memory(t, arg),
            b'M' | b'X' => self.write_memory(t, cmd == b'X', arg),
            b'Z' | b'z' => self.point(t, cmd == b'Z', arg),
            b'c' | b'C' | b's' | b'S' => self.resume(t, cmd, arg),
            b'v' => self.v_packet(t, arg),
            b'D' => Action::Detach,
            b'k' => Action::Kill,
            _ => reply(""),
        }
    }

    /// `Hg` / `Hc`: the thread later register and memory packets, or
    /// continues and steps, apply to.
    fn select_thread(&mut self, t: &dyn Target, arg: &[u8]) -> Action {
        let Some((&which, rest)) = arg.split_first() else {
            return err(1);
        };
        match (which, thread_sel(rest)) {
            (b'g', Some(ThreadSel::One(n))) if self.valid(t, n) => self.g_thread = n,
            (b'g', Some(ThreadSel::All | ThreadSel::Any)) => {}
            (b'c', Some(ThreadSel::One(n))) if self.valid(t, n) => self.c_thread = Some(n),
            (b'c', Some(ThreadSel::All | ThreadSel::Any)) => self.c_thread = None,
            _ => return err(1),
        }
        reply("OK")
    }

    /// `P n=value`.
    fn write_one_register(&mut self, t: &mut dyn Target, arg: &[u8]) -> Action {
        let Some(eq) = arg.iter().position(|&b| b == b'=') else {
            return err(1);
        };
        let n = arg.get(..eq).and_then(hex_usize);
        let v = arg.get(eq + 1..).and_then(hex_bytes);
        match (n, v) {
            (Some(n), Some(v)) if v.len() == 8 => {
                let mut w = [0u8; 8];
                w.copy_from_slice(&v);
                if t.write_register(self.g_thread, n, u64::from_be_bytes(w)) {
                    reply("OK")
                } else {
                    err(2)
                }
            }
            _ => err(1),
        }
    }

    /// `m addr,len`.
    fn read_memory(&mut self, t: &mut dyn Target, arg: &[u8]) -> Action {
        let Some((addr, len)) = addr_len(arg) else {
            return err(1);
        };
        if len > MAX_PACKET / 2 {
            return err(2);
        }
        let mut buf = vec![0u8; len];
        if t.read_memory(self.g_thread, addr, &mut buf) {
            reply(to_hex(&buf))
        } else {
            err(3)
        }
    }

    /// `M addr,len:hex` or, `binary`, `X addr,len:bytes`.
    fn write_memory(&mut self, t: &mut dyn Target, binary: bool, arg: &[u8]) -> Action {
        let head = arg
            .iter()
            .position(|&b| b == b':')
            .and_then(|colon| Some((colon, arg.get(..colon).and_then(addr_len)?)));
        let Some((colon, (addr, len))) = head else {
            // Not a memory write at all: an unknown command.
            return if binary { reply("") } else { err(1) };
        };
        let data = arg.get(colon + 1..).unwrap_or(&[]);
        let bytes = if binary {
            Some(data.to_vec())
        } else {
            hex_bytes(data)
        };
        match bytes {
            Some(b) if b.len() == len => {
                if b.is_empty() || t.write_memory(self.g_thread, addr, &b) {
                    reply("OK")
                } else {
                    err(3)
                }
            }
            _ => err(1),
        }
    }

    /// `c`, `C`, `s`, `S`: continue or step, perhaps from a new address.
    fn resume(&mut self, t: &mut dyn Target, cmd: u8, arg: &[u8]) -> Action {
        let step = matches!(cmd, b's' | b'S');
        // `c ADDR` resumes at ADDR; `C sig[;ADDR]` likewise.
        let addr = if matches!(cmd, b'c' | b's') {
            arg
        } else {
            arg.iter()
                .position(|&b| b == b';')
                .and_then(|i| arg.get(i + 1..))
                .unwrap_or(&[])
        };
        if !addr.is_empty() {
            match hex_u64(addr) {
                Some(a) => {
                    let _ = t.write_register(self.resume_thread(), regnum::PC, a);
                }
                None => return err(1),
            }
        }
        let thread = self.resume_thread();
        Action::Resume(if step {
            Resume::Step(thread)
        } else {
            Resume::Continue
        })
    }

    fn point(&mut self, t: &mut dyn Target, insert: bool, arg: &[u8]) -> Action {
        let mut parts = arg.split(|&b| b == b',');
        let kind = parts
            .next()
            .and_then(|k| match k {
                [d] => d.checked_sub(b'0'),
                _ => None,
            })
            .and_then(PointKind::from_z);
        let addr = parts.next().and_then(hex_u64);
        // The third field is the length (watchpoints) or kind (breakpoints);
        // conditions after `;` are not supported and are ignored.
        let len = parts
            .next()
            .map(|l| l.split(|&b| b == b';').next().unwrap_or(&[]))
            .and_then(hex_u64);
        let (Some(kind), Some(addr), Some(len)) = (kind, addr, len) else {
            // Unknown types get the empty reply, garbled ones an error.
            return if kind.is_none() && arg.first().is_some_and(u8::is_ascii_digit) {
                reply("")
            } else {
                err(1)
            };
        };
        if kind.is_watch() && !(1..=0x1000).contains(&len) {
            return err(2);
        }
        let p = Point { kind, addr, len };
        let ok = if insert {
            t.insert_point(p)
        } else {
            t.remove_point(p)
        };
        if ok {
            reply("OK")
        } else {
            reply("")
        }
    }

    fn query(&mut self, t: &mut dyn Target, arg: &[u8]) -> Action {
        if arg.starts_with(b"Supported") {
            return reply(format!(
                "PacketSize={MAX_PACKET:x};qXfer:features:read+;QStartNoAckMode+;vContSupported+"
            ));
        }
        if let Some(rest) = arg.strip_prefix(b"Xfer:features:read:") {
            let mut parts = rest.splitn(2, |&b| b == b':');
            let annex = parts.next().unwrap_or(&[]);
            if annex != b"target.xml" {
                return err(0);
            }
            return match parts.next().and_then(addr_len) {
                Some((off, len)) => match usize::try_from(off) {
                    Ok(off) => Action::Reply(xml::xfer(&self.xml, off, len.min(MAX_PACKET / 2))),
                    Err(_) => err(1),
                },
                None => err(1),
            };
        }
        match arg {
            b"Attached" => reply("1"),
            b"C" => reply(format!("QC{:x}", self.g_thread + 1)),
            b"fThreadInfo" => {
                let ids: Vec<String> = (1..=t.threads()).map(|n| format!("{n:x}")).collect();
                reply(format!("m{}", ids.join(",")))
            }
            b"sThreadInfo" => reply("l"),
            b"Symbol::" => reply("OK"),
            _ => {
                if let Some(id) = arg.strip_prefix(b"ThreadExtraInfo,") {
                    return match thread_sel(id) {
                        Some(ThreadSel::One(n)) if self.valid(t, n) => {
                            reply(to_hex(t.thread_name(n).as_bytes()))
                        }
                        _ => err(1),
                    };
                }
                reply("")
            }
        }
    }

    fn v_packet(&mut self, t: &mut dyn Target, arg: &[u8]) -> Action {
        if arg == b"Cont?" {
            return reply("vCont;c;C;s;S");
        }
        if arg.starts_with(b"Kill") {
            return Action::Kill;
        }
        let Some(actions) = arg.strip_prefix(b"Cont;") else {
            return reply("");
        };
        // `s:2;c`: step thread 2, let the others run. Only one thread steps.
        let mut how = None;
        for a in actions.split(|&b| b == b';') {
            let (verb, thread) = match a.iter().position(|&b| b == b':') {
                Some(i) => (
                    a.get(..i).unwrap_or(&[]),
                    thread_sel(a.get(i + 1..).unwrap_or(&[])),
                ),
                None => (a, Some(ThreadSel::All)),
            };
            let step = match verb.first() {
                Some(b's' | b'S') => true,
                Some(b'c' | b'C') => false,
                _ => return err(1),
            };
            let thread = match thread {
                Some(ThreadSel::One(n)) if self.valid(t, n) => n,
                Some(ThreadSel::One(_)) | None => return err(1),
                Some(_) => self.resume_thread(),
            };
            if how.is_none() || step {
                how = Some(if step {
                    Resume::Step(thread)
                } else {
                    Resume::Continue
                });
                if step {
                    self.c_thread = Some(thread);
                }
            }
        }
        match how {
            Some(h) => Action::Resume(h),
            None => err(1),
        }
    }
}

/// Serves one GDB client on `stream` until it detaches, kills the program,
/// disconnects, or the program ends. Nothing the client sends can panic it;
/// malformed input gets a NAK or an error reply.
pub fn serve(stream: TcpStream, target: &mut dyn Target) -> std::io::Result<End> {
    let mut conn = Conn::new(stream)?;
    let mut session = Session::default();
    loop {
        let Some(input) = conn.next_input() else {
            target.detach();
            return Ok(End::Disconnected);
        };
        let pkt = match input {
            Input::Packet(p) => p,
            // A stray Ctrl-C while stopped: say where we are.
            Input::Interrupt => {
                let last = session.last;
                let r = session.stop_reply(last);
                if conn.send(&r).is_err() {
                    target.detach();
                    return Ok(End::Disconnected);
                }
                continue;
            }
            Input::BadChecksum | Input::Oversized => continue,
        };
        let action = session.handle(target, &pkt);
        let sent = match action {
            Action::Reply(r) => {
                let sent = conn.send(&r);
                if pkt == b"QStartNoAckMode" {
                    conn.no_ack = true;
                }
                sent
            }
            Action::Resume(how) => {
                let stop = run(&mut conn, &mut session, target, how);
                let Some(stop) = stop else {
                    target.detach();
                    return Ok(End::Disconnected);
                };
                let r = session.stop_reply(stop);
                let sent = conn.send(&r);
                if let Stop::Exited { status } = stop {
                    target.detach();
                    return Ok(End::Exited(status));
                }
                sent
            }
            Action::Detach => {
                let _ = conn.send(b"OK");
                target.detach();
                return Ok(End::Detached);
            }
            Action::Kill => {
                target.detach();
                return Ok(End::Killed);
            }
        };
        if sent.is_err() {
            target.detach();
            return Ok(End::Disconnected);
        }
    }
}

/// Runs the target until it stops or Ctrl-C arrives; `None` if the client
/// went away meanwhile.
fn run(
    conn: &mut Conn,
    session: &mut Session,
    target: &mut dyn Target,
    how: Resume,
) -> Option<Stop> {
    target.resume(how);
    let mut slices = 0u32;
    loop {
        if let Some(stop) = target.run() {
            return Some(stop);
        }
        slices = slices.wrapping_add(1);
        // Look at the socket every few slices: a syscall per quantum would
        // dominate a fast guest.
        if slices & 7 == 0 {
            match conn.poll_interrupt() {
                None => return None,
                Some(true) => {
                    return Some(Stop::Interrupted {
                        thread: session.resume_thread(),
                    })
                }
                Some(false) => {}
            }
        }
    }
}
