//! Machine memory under the monitor: each VM's memory plus a 4K commpage
//! per VCPU, or a size given, within a documented bound; VM memory stops
//! at the device window; every VM's board gets the seed and epoch.

#![allow(clippy::panic, clippy::unwrap_used)]

use monitor::{Monitor, MonitorConfig, MonitorError, MonitorExit, VmConfig, VmEnd, VmImage};
use sim::isa::asm::Asm;
use sim::isa::{Op, Reg};

/// A guest that halts with the first value of its mp random register.
fn random_halter(name: &str, mem: u64) -> VmConfig {
    let mut a = Asm::new(0x8001_0000);
    a.li(Reg::T0, 0xB100_0000);
    a.mem(Op::Lw, Reg::V0, 0x80, Reg::T0);
    a.li(Reg::K1, 0xB000_0010);
    a.mem(Op::Sw, Reg::V0, 0, Reg::K1);
    a.nop();
    let image = VmImage {
        entry: 0xFFFF_FFFF_8001_0000,
        segments: vec![(0x1_0000, a.bytes().unwrap())],
    };
    VmConfig::new(name, image, mem)
}

fn config(vms: Vec<VmConfig>) -> MonitorConfig {
    MonitorConfig {
        pcpus: 2,
        max_cycles: Some(10_000_000),
        vms,
        ..MonitorConfig::default()
    }
}

/// Eight VMs of 32M: 256M and eight commpages of machine memory, past the
/// device window a bare machine stops at; they all run.
#[test]
fn eight_vms_of_32m_fit_in_machine_memory_past_256m() {
    let vms = (0..8)
        .map(|i| random_halter(&format!("vm{i}"), 32 << 20))
        .collect();
    let mut m = Monitor::new(config(vms)).unwrap();
    assert_eq!(m.machine.bus.ram_len(), (256 << 20) + 8 * 4096);
    assert_eq!(m.run(), MonitorExit::AllEnded);
    // Seed 0: the documented xorshift64's first value, low 32 bits.
    assert!(m
        .vms
        .iter()
        .all(|v| v.end == Some(VmEnd::Halted(0xEAA8_E3E7))));
}

#[test]
fn a_machine_memory_given_must_hold_the_vms_and_their_commpages() {
    let two = || vec![random_halter("a", 4 << 20), random_halter("b", 4 << 20)];
    let need = (8 << 20) + 2 * 4096;
    let short = Monitor::new(MonitorConfig {
        machine_mem: Some(need - 4096),
        ..config(two())
    });
    let Err(MonitorError::MachineMemory(why)) = short else {
        panic!("accepted a machine too small");
    };
    assert!(
        why.contains("2 VMs need 8200K") && why.contains("8196K"),
        "{why}"
    );
    let m = Monitor::new(MonitorConfig {
        machine_mem: Some(64 << 20),
        seed: 7,
        ..config(two())
    });
    let mut m = m.unwrap();
    assert_eq!(m.machine.bus.ram_len(), 64 << 20);
    m.run();
    assert!(
        m.vms
            .iter()
            .all(|v| v.end == Some(VmEnd::Halted(0xC38E_E1C7))),
        "seed 7"
    );
}

#[test]
fn vm_and_machine_memory_have_their_bounds() {
    let Err(MonitorError::BadMemory { vm, problem }) =
        Monitor::new(config(vec![random_halter("big", 257 << 20)]))
    else {
        panic!("a VM over the device window was accepted");
    };
    assert_eq!(vm, "big");
    assert!(problem.contains("0x10000000"), "{problem}");
    // 17 VMs of 256M: past the 4G bound, refused before any allocation.
    let many = (0..17)
        .map(|i| random_halter(&format!("v{i}"), 256 << 20))
        .collect();
    let Err(MonitorError::MachineMemory(why)) = Monitor::new(config(many)) else {
        panic!("4G exceeded");
    };
    assert!(
        why.contains("17 VMs need") && why.contains("at most 4G"),
        "{why}"
    );
}
