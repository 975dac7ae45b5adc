//! The GDB stub: real gdb-multiarch against the hello kernel, and a client
//! that sends garbage.

#![allow(clippy::panic, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn hello() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("guest-kits/images/hello.elf")
}

/// Starts `disco run IMAGE --gdb 0 --gdb-wait`.
fn start(image: &std::path::Path) -> (Child, u16) {
    start_with(&[image.to_str().unwrap()])
}

/// Starts `disco run ARGS --gdb 0 --gdb-wait` and waits until it says
/// where it listens (connecting to find out would be taken as the client).
/// Port 0 lets the system pick a free port, so parallel tests never race
/// for one.
fn start_with(args: &[&str]) -> (Child, u16) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_disco"))
        .arg("run")
        .args(args)
        .args(["--gdb", "0", "--gdb-wait"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    err.read_line(&mut line).unwrap();
    let port = line
        .trim()
        .strip_prefix("disco: waiting for GDB on 127.0.0.1:")
        .and_then(|p| p.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line: {line}"));
    // Keep draining standard error so the process never writes to a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    (child, port)
}

#[test]
fn gdb_multiarch_breaks_steps_reads_and_watches() {
    if !sim::testkit::have_tool("gdb-multiarch", "--version", "the GDB test") {
        return;
    }
    let (child, port) = start(&hello());
    let out = Command::new("timeout")
        .args(["120", "gdb-multiarch", "-batch", "-nx"])
        .args(["-ex", &format!("file {}", hello().display())])
        .args(["-ex", &format!("target remote 127.0.0.1:{port}")])
        .args(["-ex", "break main", "-ex", "continue"])
        .args([
            "-ex",
            "print seen_sys",
            "-ex",
            "stepi",
            "-ex",
            "info registers pc",
        ])
        .args([
            "-ex",
            "watch seen_sys",
            "-ex",
            "continue",
            "-ex",
            "print seen_sys",
        ])
        .args(["-ex", "delete", "-ex", "info threads", "-ex", "continue"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let disco = child.wait_with_output().unwrap();
    let console = String::from_utf8_lossy(&disco.stdout);
    assert!(text.contains("Breakpoint 1, main ()"), "{text}");
    assert!(text.contains("$1 = 0"), "{text}");
    assert!(
        text.contains("pc: 0x80010ca4") || text.contains("pc             0x80010ca4"),
        "{text}"
    );
    assert!(
        text.contains("Old value = 0") && text.contains("New value = 1"),
        "{text}"
    );
    assert!(text.contains("$2 = 1"), "{text}");
    assert!(text.contains("Thread 1 (CPU 0)"), "{text}");
    assert!(text.contains("exited normally"), "{text}");
    assert!(
        console.contains("hello: all four exceptions handled"),
        "{console}"
    );
    assert_eq!(disco.status.code(), Some(0));
}

/// docs/gdb.md's example under the monitor: GDB on the second of two
/// kestrel VMs stops in the KSEG0 boot code the monitor's engine
/// interprets (and steps there), on the general exception vector's
/// trampoline, and in the kernel's directly run window.
#[test]
fn gdb_multiarch_breaks_in_engine_and_direct_code_under_the_monitor() {
    gdb_under_the_monitor("exec=direct");
}

/// The same session on a VM whose guest kernel is all translated
/// (`exec=translate`): with GDB attached its code runs as under
/// `exec=direct` (docs/translation.md, the engine stays), so breakpoints
/// and single steps land on the same instructions.
#[test]
fn gdb_multiarch_breaks_and_steps_in_code_the_policy_translates() {
    gdb_under_the_monitor("exec=translate");
}

fn gdb_under_the_monitor(exec: &str) {
    if !sim::testkit::have_tool(
        "gdb-multiarch",
        "--version",
        "the GDB test under the monitor",
    ) {
        return;
    }
    let kestrel = "guest-kits/images/kestrel.elf";
    let (child, port) = start_with(&[
        "--vm",
        &format!("{kestrel},name=a"),
        "--vm",
        &format!("{kestrel},name=b,{exec}"),
        "--gdb-vm",
        "b",
    ]);
    let out = Command::new("timeout")
        .args(["120", "gdb-multiarch", "-batch", "-nx"])
        .args(["-ex", &format!("file {kestrel}")])
        .args(["-ex", &format!("target remote 127.0.0.1:{port}")])
        .args(["-ex", "break kseg0_map_window", "-ex", "continue"])
        .args(["-ex", "stepi", "-ex", "info registers pc"])
        .args(["-ex", "break kseg0_general", "-ex", "continue"])
        .args(["-ex", "delete", "-ex", "break syscall", "-ex", "continue"])
        .args(["-ex", "info threads", "-ex", "delete", "-ex", "continue"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let disco = child.wait_with_output().unwrap();
    let console = String::from_utf8_lossy(&disco.stdout);
    assert!(
        text.contains("Breakpoint 1, 0x80001050 in kseg0_map_window"),
        "{text}"
    );
    assert!(
        text.contains("pc: 0x80001054") || text.contains("pc             0x80001054"),
        "{text}"
    );
    assert!(
        text.contains("Breakpoint 2, 0x80000180 in kseg0_general"),
        "{text}"
    );
    assert!(text.contains("Breakpoint 3, syscall"), "{text}");
    assert!(text.contains("(b VCPU 0)"), "{text}");
    assert!(text.contains("exited normally"), "{text}");
    assert!(console.contains("[b] kestrel: halt status 0"), "{console}");
    assert!(console.contains("[a] kestrel: halt status 0"), "{console}");
    assert_eq!(disco.status.code(), Some(0));
}

fn packet(body: &str) -> Vec<u8> {
    let sum = body.bytes().fold(0u8, |a, b| a.wrapping_add(b));
    format!("${body}#{sum:02x}").into_bytes()
}

#[test]
fn the_stub_survives_garbage() {
    let (child, port) = start(&hello());
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Sends `bytes` and reads until a NAK or a complete reply arrives.
    let mut ask = |bytes: &[u8]| -> String {
        s.write_all(bytes).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        loop {
            let done = got == b"-"
                || got.windows(1).any(|w| w == b"#")
                    && got.len() >= got.iter().position(|&b| b == b'#').unwrap() + 3;
            if done {
                break;
            }
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    };
    // A bad checksum gets a NAK.
    assert_eq!(ask(b"$g#00"), "-");
    // An unknown command gets the empty reply.
    assert_eq!(ask(&packet("Xyzzy")), "+$#00");
    // Malformed arguments get an error reply.
    assert!(ask(&packet("mzz,qq")).contains("$E01"));
    // Memory that is not RAM (here the console) answers an error, never a device access.
    assert!(ask(&packet("mb0000000,4")).contains("$E03"));
    // A good request still works.
    assert!(ask(&packet("?")).contains("T05thread:1;"));
    // An oversized packet is refused.
    let mut big = vec![b'$'];
    big.extend(std::iter::repeat_n(b'a', 40_000));
    assert!(ask(&big).contains('-'));
    // A half-sent command, then the client disconnects: the machine runs on.
    s.write_all(b"$m800100").unwrap();
    drop(s);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "the machine ran on to its halt");
    assert!(String::from_utf8_lossy(&out.stdout).contains("halting with 0"));
}

/// Stopping for the debugger changes nothing simulated: a run stopped at a
/// breakpoint and resumed ends with the same cycles and instructions as a
/// run left alone.
#[test]
fn stopping_for_the_debugger_does_not_change_simulated_time() {
    let bytes = std::fs::read(hello()).unwrap();
    let (img, syms) = sim::loader::load(&bytes, 32 << 20).unwrap();
    let run = |stop_at: Option<u64>| {
        let mut m = sim::Machine::new(sim::MachineConfig::default(), sim::dev::Board::new(1));
        assert!(img.load_into(&mut m));
        let mut stops = 0;
        if let Some(pc) = stop_at {
            m.cpus[0].debug_mut().active = true;
            m.cpus[0].debug_mut().breakpoints = vec![pc];
        }
        let exit = loop {
            match m.run_quantum() {
                Some(sim::Exit::Debug { .. }) => {
                    stops += 1;
                    m.cpus[0].debug_mut().resuming = true;
                }
                Some(e) => break e,
                None => {}
            }
        };
        (exit, m.cpus[0].cycles(), m.cpus[0].instret(), stops)
    };
    let main = i64::from(syms.address_of("kit_puts").unwrap() as u32 as i32) as u64;
    let (e1, c1, i1, _) = run(None);
    let (e2, c2, i2, stops) = run(Some(main));
    assert!(stops > 1, "the breakpoint was hit ({stops} times)");
    assert_eq!((e1, c1, i1), (e2, c2, i2));
}

/// Ctrl-C (a 0x03 byte) stops a running machine; kill ends it.
#[test]
fn ctrl_c_interrupts_a_running_guest() {
    // hello.elf with its first instruction replaced by `b .`: it spins forever.
    let mut elf = std::fs::read(hello()).unwrap();
    let phoff = u32::from_be_bytes(elf[28..32].try_into().unwrap()) as usize;
    let offset = u32::from_be_bytes(elf[phoff + 4..phoff + 8].try_into().unwrap()) as usize;
    let vaddr = u32::from_be_bytes(elf[phoff + 8..phoff + 12].try_into().unwrap());
    let entry = u32::from_be_bytes(elf[24..28].try_into().unwrap());
    let at = offset + (entry - vaddr) as usize;
    elf[at..at + 8].copy_from_slice(&[0x10, 0x00, 0xff, 0xff, 0, 0, 0, 0]);
    let spin = std::env::temp_dir().join(format!("disco-spin-{}.elf", std::process::id()));
    std::fs::write(&spin, &elf).unwrap();
    let (mut child, port) = start(&spin);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&packet("c")).unwrap();
    let mut ack = [0u8; 1];
    s.read_exact(&mut ack).unwrap();
    assert_eq!(&ack, b"+");
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(&[0x03]).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while !got.contains(&b'#') {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the stub closed the connection");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        String::from_utf8_lossy(&got).contains("T02thread:1;"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    s.write_all(b"+").unwrap();
    s.write_all(&packet("k")).unwrap();
    let status = child.wait().unwrap();
    let _ = std::fs::remove_file(&spin);
    assert!(status.success());
}
