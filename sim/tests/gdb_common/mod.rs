//! Shared by the GDB tests: a stub served in-process on a thread, the
//! cross toolchain and gdb-multiarch (skipped visibly when absent, a
//! failure when `DISCO_REQUIRE_TOOLS=1`), and a raw protocol client.

#![allow(dead_code, clippy::panic, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use sim::dev::Board;
use sim::gdb::{End, MachineTarget};
use sim::{Exit, Machine, MachineConfig};

/// Whether `tool` runs; if not, the test is skipped visibly
/// (`sim::testkit::have_tool`).
pub(crate) fn have(tool: &str, test: &str) -> bool {
    sim::testkit::have_tool(tool, "--version", test)
}

/// A scratch directory for one test.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("disco-gdb-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Builds a bare-metal kernel-mode ELF (KSEG0, o32, R4000, with debug
/// information) from `c` and a tiny start-up in assembly.
pub(crate) fn build_elf(dir: &Path, c: &str) -> PathBuf {
    let start = dir.join("start.S");
    std::fs::write(
        &start,
        "\t.set noreorder\n\t.section .text.start\n\t.globl _start\n_start:\n\
         \tla $sp, 0x80100000\n\tjal main\n\tnop\n\
         \tlui $t0, 0xb000\n\tsw $v0, 0x10($t0)\n1:\tb 1b\n\tnop\n",
    )
    .unwrap();
    let src = dir.join("prog.c");
    std::fs::write(&src, c).unwrap();
    let elf = dir.join("prog.elf");
    let out = Command::new("mips-linux-gnu-gcc")
        .args([
            "-march=r4000",
            "-mabi=32",
            "-EB",
            "-mno-abicalls",
            "-fno-pic",
            "-G0",
            "-ffreestanding",
            "-nostdlib",
            "-static",
            "-g",
            "-O0",
            "-Wl,-Ttext=0x80010000",
            "-Wl,-e,_start",
            "-Wl,--build-id=none",
            "-o",
        ])
        .arg(&elf)
        .arg(&start)
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mips-linux-gnu-gcc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    elf
}

/// A one-CPU machine with `elf` loaded.
pub(crate) fn machine(elf: &[u8], ncpus: usize) -> (Machine, sim::loader::Symbols) {
    let (img, syms) = sim::loader::load(elf, 32 << 20).unwrap();
    let mut m = Machine::new(
        MachineConfig {
            ncpus,
            ..MachineConfig::default()
        },
        Board::new(ncpus),
    );
    assert!(img.load_into(&mut m));
    (m, syms)
}

/// What the served machine did.
pub(crate) struct Served {
    pub(crate) end: End,
    pub(crate) exit: Option<Exit>,
    pub(crate) console: Vec<u8>,
    pub(crate) cycles: u64,
    pub(crate) instret: u64,
}

/// Serves the machine `make` builds on a free port from a thread (the
/// stub waits for the client; a `Machine` stays on the thread that made
/// it); returns the port and a receiver for the outcome. After the
/// session the machine runs on to its end (as `disco run` does).
pub(crate) fn serve(
    make: impl FnOnce() -> Machine + Send + 'static,
) -> (u16, mpsc::Receiver<Served>) {
    let listener = sim::gdb::listen(0).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut m = make();
        let stream = sim::gdb::accept(&listener, true, || true).unwrap().unwrap();
        let mut console = Vec::new();
        let mut hook = |m: &mut Machine| console.extend(m.take_console());
        let (end, mut exit) = {
            let mut t = MachineTarget::new(&mut m).with_hook(&mut hook);
            let end = sim::gdb::serve(stream, &mut t).unwrap();
            (end, t.exit)
        };
        if matches!(end, End::Detached | End::Disconnected) && exit.is_none() {
            exit = Some(m.run());
        }
        console.extend(m.take_console());
        let _ = tx.send(Served {
            end,
            exit,
            console,
            cycles: m.cpus[0].cycles(),
            instret: m.cpus[0].instret(),
        });
    });
    (port, rx)
}

/// A raw protocol client.
pub(crate) struct Client {
    pub(crate) s: TcpStream,
}

pub(crate) fn packet(body: &str) -> Vec<u8> {
    let sum = body.bytes().fold(0u8, |a, b| a.wrapping_add(b));
    format!("${body}#{sum:02x}").into_bytes()
}

impl Client {
    pub(crate) fn connect(port: u16) -> Client {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Client { s }
    }

    /// Sends raw bytes and reads until a NAK or one complete reply;
    /// returns what came back (acks included).
    pub(crate) fn raw(&mut self, bytes: &[u8]) -> String {
        self.s.write_all(bytes).unwrap();
        self.read_reply()
    }

    pub(crate) fn read_reply(&mut self) -> String {
        let mut got = Vec::new();
        let mut b = [0u8; 1];
        loop {
            if got == b"-" {
                break;
            }
            if let Some(h) = got.iter().position(|&c| c == b'#') {
                if got.len() >= h + 3 {
                    break;
                }
            }
            match self.s.read(&mut b) {
                Ok(1) => got.push(b[0]),
                _ => break,
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    /// Sends a command and returns the reply's payload.
    pub(crate) fn ask(&mut self, body: &str) -> String {
        let r = self.raw(&packet(body));
        let r = r.strip_prefix('+').unwrap_or(&r);
        let start = r
            .find('$')
            .unwrap_or_else(|| panic!("no reply to {body:?}: {r:?}"));
        let end = r.rfind('#').unwrap();
        r[start + 1..end].to_string()
    }
}

/// Runs gdb-multiarch in batch mode against `port` with `file`, the given
/// commands, and returns everything it printed.
pub(crate) fn gdb(elf: &Path, port: u16, pre: &[&str], cmds: &[&str]) -> String {
    let mut c = Command::new("timeout");
    c.args(["120", "gdb-multiarch", "-batch", "-nx"]);
    for p in pre {
        c.args(["-ex", p]);
    }
    c.args(["-ex", &format!("file {}", elf.display())]);
    c.args(["-ex", &format!("target remote 127.0.0.1:{port}")]);
    for x in cmds {
        c.args(["-ex", x]);
    }
    let out = c.output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}
