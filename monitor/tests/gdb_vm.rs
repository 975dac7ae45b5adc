//! GDB attached to one VM under the monitor (`monitor::gdb`): VCPUs as
//! threads, the guest's registers with its virtual CP0, memory in its
//! virtual address space through its virtual TLB and pmap, a breakpoint in
//! the guest kernel's exception handler, and a step over an instruction the
//! monitor emulates. The guest is `trapkit` (see trap_flows.rs).

#![allow(clippy::panic, clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use monitor::gdb::MonitorTarget;
use monitor::{Monitor, MonitorConfig, VmConfig, VmEnd, VmImage};
use sim::gdb::End;

fn trapkit_monitor() -> Monitor {
    Monitor::new(MonitorConfig {
        pcpus: 1,
        max_cycles: Some(5_000_000),
        vms: vec![VmConfig {
            name: "trapkit".into(),
            image: VmImage {
                entry: 0xFFFF_FFFF_8000_1000,
                segments: common::trapkit(),
            },
            mem_bytes: 4 << 20,
            vcpus: 1,
            disk: None,
            disk_irq_latency: None,
            io: Default::default(),
            commpage: true,
            exec: monitor::bt::Exec::Direct,
        }],
        ..MonitorConfig::default()
    })
    .unwrap()
}

struct Served {
    end: End,
    vm_end: Option<VmEnd>,
    console: Vec<u8>,
    guest: (u64, u64),
}

fn serve() -> (u16, mpsc::Receiver<Served>) {
    let listener = sim::gdb::listen(0).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut m = trapkit_monitor();
        let stream = sim::gdb::accept(&listener, true, || true).unwrap().unwrap();
        let end = {
            let mut t = MonitorTarget::new(&mut m, 0);
            sim::gdb::serve(stream, &mut t).unwrap()
        };
        m.run();
        let s = &m.vms[0].vcpus[0].stats;
        let guest = (s.guest_cycles, s.guest_insns);
        let _ = tx.send(Served {
            end,
            vm_end: m.vms[0].end.clone(),
            console: m.take_console(0),
            guest,
        });
    });
    (port, rx)
}

struct Client(TcpStream);

impl Client {
    fn ask(&mut self, body: &str) -> String {
        let sum = body.bytes().fold(0u8, |a, b| a.wrapping_add(b));
        self.0
            .write_all(format!("${body}#{sum:02x}").as_bytes())
            .unwrap();
        let mut got = Vec::new();
        let mut b = [0u8; 1];
        while got
            .iter()
            .position(|&c| c == b'#')
            .is_none_or(|h| got.len() < h + 3)
        {
            assert_eq!(self.0.read(&mut b).unwrap(), 1, "connection closed");
            got.push(b[0]);
        }
        let r = String::from_utf8(got).unwrap();
        let start = r.find('$').unwrap();
        r[start + 1..r.rfind('#').unwrap()].to_string()
    }

    fn reg(&mut self, n: usize) -> u64 {
        u64::from_str_radix(&self.ask(&format!("p{n:x}")), 16).unwrap()
    }
}

#[test]
fn gdb_debugs_a_vm_under_the_monitor() {
    let mut alone = trapkit_monitor();
    alone.run();
    let free = &alone.vms[0].vcpus[0].stats;
    let free = (free.guest_cycles, free.guest_insns);

    let (port, done) = serve();
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut c = Client(s);
    assert_eq!(c.ask("qfThreadInfo"), "m1");
    // The guest kernel's general exception handler, in its mapped window.
    assert_eq!(c.ask("Z0,c0000200,4"), "OK");
    assert_eq!(c.ask("c"), "T05thread:1;");
    assert_eq!(c.reg(37), 0xFFFF_FFFF_C000_0200);
    // Its virtual CP0: EXL set, Cause = Sys (the user's first syscall).
    assert_eq!(c.reg(32) & 2, 2, "virtual Status.EXL");
    assert_eq!(c.reg(36) & 0x7C, 8 << 2, "virtual Cause.ExcCode = Sys");
    // Memory as the guest kernel sees it: its window, and the user page
    // through its virtual TLB (ASID 1).
    assert_eq!(c.ask("mc0000200,4"), "401a6800", "mfc0 k0,c0_cause");
    assert_eq!(c.ask("m00400000,4"), "0000000c", "syscall");
    // Its console (KSEG1) is a device: an error, never an access.
    assert_eq!(c.ask("mb0000000,1"), "E03");
    assert_eq!(c.ask("m7fff0000,4"), "E03", "unmapped");
    assert_eq!(c.ask("z0,c0000200,4"), "OK");
    // The mfc0 traps to the monitor, which emulates it: the step ends after.
    assert_eq!(c.ask("s"), "T05thread:1;");
    assert_eq!(c.reg(37), 0xFFFF_FFFF_C000_0204);
    assert_eq!(c.reg(26) & 0x7C, 8 << 2, "k0 = virtual Cause");
    assert_eq!(c.ask("c"), "W00");
    let served = done.recv().unwrap();
    assert_eq!(served.end, End::Exited(0));
    assert_eq!(served.vm_end, Some(VmEnd::Halted(0)));
    assert_eq!(served.console, b"KST");
    assert_eq!(
        served.guest, free,
        "guest cycles and instructions unchanged"
    );
}

/// The boot stub in KSEG0 never runs directly: the monitor's engine
/// interprets it. A breakpoint there stops the engine before the
/// instruction, steps go one interpreted instruction at a time, and a step
/// off the stub's last instruction stops where direct execution begins.
#[test]
fn breakpoints_and_steps_stop_the_engine_in_kseg0_code() {
    let mut alone = trapkit_monitor();
    alone.run();
    let free = &alone.vms[0].vcpus[0].stats;
    let free = (free.guest_cycles, free.guest_insns);

    let (port, done) = serve();
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut c = Client(s);
    // The stub's first TLBWI, which wires the kernel's window.
    assert_eq!(c.ask("Z0,80001040,4"), "OK");
    assert_eq!(c.ask("c"), "T05thread:1;");
    assert_eq!(c.reg(37), 0xFFFF_FFFF_8000_1040);
    assert_eq!(
        c.reg(8),
        0x801F,
        "t0 = EntryLo1, set by the instruction before"
    );
    assert_eq!(c.ask("m80001040,4"), "42000002", "tlbwi");
    // Not executed yet: the window is not mapped.
    assert_eq!(c.ask("mc0000000,4"), "E03");
    assert_eq!(c.ask("s"), "T05thread:1;");
    assert_eq!(c.reg(37), 0xFFFF_FFFF_8000_1044);
    assert_ne!(c.ask("mc0000000,4"), "E03", "the window is wired now");
    // The stub's jump into the window, its delay slot, and the first
    // instruction there, which runs directly.
    assert_eq!(c.ask("Z0,80001088,4"), "OK");
    assert_eq!(c.ask("c"), "T05thread:1;");
    assert_eq!(c.reg(37), 0xFFFF_FFFF_8000_1088, "jr t0");
    assert_eq!(c.ask("s"), "T05thread:1;");
    assert_eq!(c.reg(37), 0xFFFF_FFFF_8000_108C, "its delay slot");
    assert_eq!(c.ask("s"), "T05thread:1;");
    assert_eq!(c.reg(37), 0xFFFF_FFFF_C000_0000, "the window");
    assert_eq!(c.ask("z0,80001040,4"), "OK");
    assert_eq!(c.ask("z0,80001088,4"), "OK");
    assert_eq!(c.ask("c"), "W00");
    let served = done.recv().unwrap();
    assert_eq!(served.vm_end, Some(VmEnd::Halted(0)));
    assert_eq!(served.console, b"KST");
    assert_eq!(
        served.guest, free,
        "guest cycles and instructions unchanged"
    );
}

/// The general exception vector holds the kits' four-instruction
/// trampoline, which the monitor normally follows in one move. With a
/// breakpoint on it the monitor interprets it instead, so the breakpoint
/// fires and steps go through it, as on the bare machine. (Interpreting
/// costs other cycles than following, so this run's timing differs.)
#[test]
fn a_breakpoint_on_a_vector_trampoline_fires() {
    let (port, done) = serve();
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut c = Client(s);
    assert_eq!(c.ask("Z0,80000180,4"), "OK");
    assert_eq!(c.ask("c"), "T05thread:1;");
    assert_eq!(c.reg(37), 0xFFFF_FFFF_8000_0180);
    assert_eq!(c.reg(36) & 0x7C, 8 << 2, "virtual Cause.ExcCode = Sys");
    assert_eq!(c.ask("z0,80000180,4"), "OK");
    // Through the trampoline one instruction at a time, into the window.
    for pc in [0x8000_0184u64, 0x8000_0188, 0x8000_018C] {
        assert_eq!(c.ask("s"), "T05thread:1;");
        assert_eq!(c.reg(37), 0xFFFF_FFFF_0000_0000 | pc);
    }
    assert_eq!(c.ask("s"), "T05thread:1;");
    assert_eq!(c.reg(37), 0xFFFF_FFFF_C000_0200, "the handler");
    assert_eq!(c.reg(26), 0xFFFF_FFFF_C000_0200, "k0 = the handler");
    assert_eq!(c.ask("c"), "W00");
    let served = done.recv().unwrap();
    assert_eq!(served.vm_end, Some(VmEnd::Halted(0)));
    assert_eq!(served.console, b"KST");
}
