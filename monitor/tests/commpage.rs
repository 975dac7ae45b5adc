//! The commpage (`monitor/src/commpage.rs`) from the guest's side: the
//! guest kernel's MFC0/MTC0 are rewritten into loads and stores of virtual
//! page 0x7000, yet a user process that maps its own page there reads and
//! writes its own memory, before and after its kernel has run with the
//! commpage mapped.
//!
//! The guest is trapkit (see `trap_flows.rs`) with another user program.

#![allow(clippy::panic, clippy::unwrap_used)]

mod common;

use monitor::{Monitor, MonitorConfig, MonitorExit, VmConfig, VmEnd, VmImage};
use sim::isa::asm::Asm;
use sim::isa::{Op, Reg};

/// Guest-physical page behind the user's virtual page 0x7000.
const USER_PAGE: u32 = 0x29_0000;

#[test]
fn user_page_at_the_commpage_address_stays_the_users() {
    let mut u = Asm::new(0x0040_0000);
    u.li(Reg::T1, 0x7000);
    u.li(Reg::T0, 0x1234_ABCD);
    u.mem(Op::Sw, Reg::T0, 0, Reg::T1); // a refill through the guest, then the store
    u.imm(Op::Addiu, Reg::V0, Reg::ZERO, 1);
    u.word(0x0000_000C); // syscall: the kernel runs, its MFC0s patched
    u.mem(Op::Lw, Reg::T2, 0, Reg::T1); // back in user mode: our own word
    u.mem(Op::Sw, Reg::T2, 4, Reg::T1);
    u.imm(Op::Addiu, Reg::V0, Reg::ZERO, 10);
    u.word(0x0000_000C); // syscall 10 halts
    let mut segments = common::trapkit();
    for (gpa, bytes) in &mut segments {
        match *gpa {
            0x28_0000 => *bytes = u.bytes().unwrap(),
            // The linear page table: VPN2 3 covers 0x6000/0x7000.
            0x30_0000 => {
                bytes[0x34..0x38].copy_from_slice(&common::entry_lo(USER_PAGE, false).to_be_bytes())
            }
            _ => {}
        }
    }
    let mut m = Monitor::new(MonitorConfig {
        pcpus: 1,
        max_cycles: Some(5_000_000),
        vms: vec![VmConfig {
            name: "commpage".into(),
            image: VmImage {
                entry: 0xFFFF_FFFF_8000_1000,
                segments,
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
    .unwrap();
    assert_eq!(m.run(), MonitorExit::AllEnded);
    assert_eq!(m.vms[0].end, Some(VmEnd::Halted(0)));
    let st = &m.vms[0].vcpus[0].stats;
    assert!(st.patched >= 3, "the kernel's MFC0/MTC0 were patched");
    let ma = m.vms[0]
        .pmap
        .translate(monitor::mem::GuestPhys(u64::from(USER_PAGE)))
        .unwrap();
    let word = |off: u64| m.machine.bus.read_ram(ma.0 + off, 4).unwrap();
    assert_eq!((word(0), word(4)), (0x1234_ABCD, 0x1234_ABCD));
    assert_eq!(m.take_console(0), b"KS", "the first syscall printed S");
}
