//! Framing of the GDB remote serial protocol: `$body#cs` packets, acks,
//! and the out-of-band interrupt byte. [`Decoder`] is a pure state machine
//! (bytes in, [`Input`]s out), so every malformed stream is a unit test;
//! [`Conn`] puts it on a TCP socket.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Largest packet body accepted (and advertised as `PacketSize`). A longer
/// one is dropped and answered with a NAK.
pub(super) const MAX_PACKET: usize = 16 * 1024;

/// One thing the client sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Input {
    /// A packet whose checksum matched, escapes (`}x`) undone.
    Packet(Vec<u8>),
    /// The 0x03 byte: stop the running target (Ctrl-C).
    Interrupt,
    /// A packet whose checksum did not match (answer `-`).
    BadChecksum,
    /// A packet longer than [`MAX_PACKET`] (answer `-`).
    Oversized,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Between packets: acks, noise and interrupts.
    Idle,
    Body,
    /// The first, then the second checksum digit.
    Sum1,
    Sum2(u8),
    /// Inside a packet already refused as oversized: skip to its end.
    Skip,
    /// Skipping its checksum digits (this many left).
    SkipSum(u8),
}

/// The receiving half of the protocol, as a state machine.
#[derive(Debug)]
pub(super) struct Decoder {
    state: State,
    body: Vec<u8>,
    sum: u8,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            state: State::Idle,
            body: Vec::new(),
            sum: 0,
        }
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Undoes the `}` escape of binary packet data (`}` then the byte XOR 0x20).
fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut it = raw.iter();
    while let Some(&b) = it.next() {
        if b == b'}' {
            if let Some(&n) = it.next() {
                out.push(n ^ 0x20);
            }
        } else {
            out.push(b);
        }
    }
    out
}

impl Decoder {
    /// Feeds received bytes; complete inputs are appended to `out`.
    pub(super) fn push(&mut self, bytes: &[u8], out: &mut Vec<Input>) {
        for &b in bytes {
            self.byte(b, out);
        }
    }

    /// Whether a packet has started but not ended.
    pub(super) fn in_packet(&self) -> bool {
        !matches!(self.state, State::Idle | State::Skip | State::SkipSum(_))
    }

    fn byte(&mut self, b: u8, out: &mut Vec<Input>) {
        match self.state {
            State::Idle => match b {
                b'$' => self.start(),
                0x03 => out.push(Input::Interrupt),
                // Acks, NAKs and line noise between packets.
                _ => {}
            },
            State::Body => match b {
                b'#' => self.state = State::Sum1,
                // A new start marker inside a packet: the old one was cut off.
                b'$' => self.start(),
                _ => {
                    self.sum = self.sum.wrapping_add(b);
                    if self.body.len() < MAX_PACKET {
                        self.body.push(b);
                    } else {
                        // Refuse it now, not when (if ever) it ends.
                        self.body.clear();
                        self.state = State::Skip;
                        out.push(Input::Oversized);
                    }
                }
            },
            State::Skip => match b {
                b'#' => self.state = State::SkipSum(2),
                b'$' => self.start(),
                _ => {}
            },
            State::SkipSum(n) => {
                self.state = if n > 1 {
                    State::SkipSum(n - 1)
                } else {
                    State::Idle
                };
            }
            State::Sum1 => match hex_digit(b) {
                Some(d) => self.state = State::Sum2(d),
                None => self.finish(None, out),
            },
            State::Sum2(hi) => {
                let sum = hex_digit(b).map(|lo| (hi << 4) | lo);
                self.finish(sum, out);
            }
        }
    }

    fn start(&mut self) {
        self.state = State::Body;
        self.body.clear();
        self.sum = 0;
    }

    fn finish(&mut self, sum: Option<u8>, out: &mut Vec<Input>) {
        self.state = State::Idle;
        let input = if sum == Some(self.sum) {
            Input::Packet(unescape(&self.body))
        } else {
            Input::BadChecksum
        };
        self.body.clear();
        out.push(input);
    }
}

/// `$payload#cs`, with `$`, `#`, `}` and `*` escaped.
pub(super) fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.push(b'$');
    let mut sum = 0u8;
    for &b in payload {
        if matches!(b, b'$' | b'#' | b'}' | b'*') {
            out.push(b'}');
            sum = sum.wrapping_add(b'}');
            out.push(b ^ 0x20);
            sum = sum.wrapping_add(b ^ 0x20);
        } else {
            out.push(b);
            sum = sum.wrapping_add(b);
        }
    }
    out.extend_from_slice(format!("#{sum:02x}").as_bytes());
    out
}

/// A client connection: decoded inputs, acks, replies.
#[derive(Debug)]
pub(super) struct Conn {
    stream: TcpStream,
    decoder: Decoder,
    pending: std::collections::VecDeque<Input>,
    /// `QStartNoAckMode`: neither side sends `+`/`-` any more.
    pub no_ack: bool,
    closed: bool,
}

/// How long a blocking read waits before looking again (so a half-sent
/// packet from a vanished client cannot hang the stub forever).
const READ_TIMEOUT: Duration = Duration::from_millis(100);

/// A client that starts a packet and sends nothing more for this long is
/// considered gone.
const STALL_LIMIT: u32 = 100;

impl Conn {
    pub(super) fn new(stream: TcpStream) -> std::io::Result<Conn> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        // Small packets, one at a time: latency matters, not throughput.
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream,
            decoder: Decoder::default(),
            pending: std::collections::VecDeque::new(),
            no_ack: false,
            closed: false,
        })
    }

    /// Reads once (blocking up to the read timeout, or not at all);
    /// returns false when the client is gone.
    fn fill(&mut self, block: bool) -> bool {
        if self.closed {
            return false;
        }
        let mut buf = [0u8; 4096];
        if !block && self.stream.set_nonblocking(true).is_err() {
            self.closed = true;
            return false;
        }
        let r = self.stream.read(&mut buf);
        if !block && self.stream.set_nonblocking(false).is_err() {
            self.closed = true;
            return false;
        }
        match r {
            Ok(0) => {
                self.closed = true;
                false
            }
            Ok(n) => {
                let mut out = Vec::new();
                self.decoder.push(buf.get(..n).unwrap_or(&[]), &mut out);
                self.pending.extend(out);
                true
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => true,
            Err(e) if e.kind() == ErrorKind::Interrupted => true,
            Err(_) => {
                self.closed = true;
                false
            }
        }
    }

    /// The next input, waiting for it; `None` once the client is gone.
    /// NAKs for bad packets are sent here.
    pub(super) fn next_input(&mut self) -> Option<Input> {
        let mut stalled = 0u32;
        loop {
            if let Some(i) = self.pending.pop_front() {
                match i {
                    Input::BadChecksum | Input::Oversized => {
                        if self.stream.write_all(b"-").is_err() {
                            self.closed = true;
                        }
                        return Some(i);
                    }
                    Input::Packet(_) => {
                        if !self.no_ack && self.stream.write_all(b"+").is_err() {
                            self.closed = true;
                        }
                        return Some(i);
                    }
                    Input::Interrupt => return Some(i),
                }
            }
            if !self.fill(true) {
                return None;
            }
            if self.pending.is_empty() && self.decoder.in_packet() {
                stalled += 1;
                if stalled > STALL_LIMIT {
                    // Half a packet and then silence: treat as a disconnect.
                    self.closed = true;
                    return None;
                }
            }
        }
    }

    /// Whether an interrupt byte arrived (looked for without waiting, while
    /// the target runs). Other input stays queued. Returns `None` if the
    /// client went away.
    pub(super) fn poll_interrupt(&mut self) -> Option<bool> {
        if !self.fill(false) {
            return None;
        }
        if let Some(i) = self.pending.iter().position(|p| *p == Input::Interrupt) {
            self.pending.remove(i);
            return Some(true);
        }
        Some(false)
    }

    /// Sends one reply packet. Errors mean the client is gone.
    pub(super) fn send(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let r = self.stream.write_all(&frame(payload));
        if r.is_err() {
            self.closed = true;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Vec<Input> {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        d.push(bytes, &mut out);
        out
    }

    #[test]
    fn packets_acks_and_interrupts() {
        assert_eq!(decode(b"+$g#67"), vec![Input::Packet(b"g".to_vec())]);
        assert_eq!(decode(b"\x03"), vec![Input::Interrupt]);
        assert_eq!(decode(b"$g#00"), vec![Input::BadChecksum]);
        assert_eq!(decode(b"$g#zz"), vec![Input::BadChecksum]);
        assert_eq!(decode(b"noise-+"), vec![]);
        // A restarted packet drops the cut-off one.
        assert_eq!(decode(b"$m12$g#67"), vec![Input::Packet(b"g".to_vec())]);
    }

    #[test]
    fn escapes_round_trip() {
        let body = b"X0,4:a$#}*";
        let framed = frame(body);
        assert_eq!(decode(&framed), vec![Input::Packet(body.to_vec())]);
    }

    #[test]
    fn oversized_packets_are_refused() {
        let mut big = vec![b'$'];
        big.extend(std::iter::repeat_n(b'a', MAX_PACKET + 10));
        big.extend_from_slice(b"#00$?#3f");
        assert_eq!(
            decode(&big),
            vec![Input::Oversized, Input::Packet(b"?".to_vec())]
        );
    }
}
