//! The monitor end to end on tiny guests built with the in-crate assembler.

#![allow(clippy::panic, clippy::unwrap_used)]

use monitor::{Monitor, MonitorConfig, MonitorExit, VmConfig, VmEnd, VmImage};
use sim::isa::asm::{Asm, Operands};
use sim::isa::{Op, Reg};

const CONS: u32 = 0xB000_0000;

fn putc(a: &mut Asm, c: u8) {
    a.li(Reg::T8, CONS);
    a.imm(Op::Addiu, Reg::T9, Reg::ZERO, i64::from(c));
    a.mem(Op::Sb, Reg::T9, 0, Reg::T8);
}

fn halt(a: &mut Asm, status: i64) {
    a.li(Reg::T8, CONS);
    a.imm(Op::Addiu, Reg::T9, Reg::ZERO, status);
    a.mem(Op::Sw, Reg::T9, 0x10, Reg::T8);
    a.label("spin");
    a.branch(Op::Beq, Reg::ZERO, Reg::ZERO, "spin");
    a.nop();
}

fn seg(a: &Asm) -> (u64, Vec<u8>) {
    (
        u64::from(a.origin() & 0x1FFF_FFFF),
        a.bytes().expect("labels resolve"),
    )
}

fn vm(name: &str, segments: Vec<(u64, Vec<u8>)>, entry: u32) -> VmConfig {
    VmConfig {
        name: name.to_string(),
        image: VmImage {
            entry: i64::from(entry as i32) as u64,
            segments,
        },
        mem_bytes: 4 << 20,
        vcpus: 1,
        disk: None,
        disk_irq_latency: None,
        io: Default::default(),
        commpage: true,
        exec: monitor::bt::Exec::Direct,
    }
}

fn run(vms: Vec<VmConfig>, pcpus: usize) -> Monitor {
    let mut m = Monitor::new(MonitorConfig {
        pcpus,
        max_cycles: Some(20_000_000),
        vms,
        ..MonitorConfig::default()
    })
    .expect("valid config");
    m.trace.enabled = true;
    let exit = m.run();
    assert_eq!(exit, MonitorExit::AllEnded, "trace:\n{}", lines(&m));
    m
}

fn lines(m: &Monitor) -> String {
    m.trace.lines().join("\n")
}

/// A guest that never leaves KSEG0 runs entirely in the emulation engine.
#[test]
fn kseg0_guest_runs_in_the_engine() {
    let mut a = Asm::new(0x8000_1000);
    putc(&mut a, b'o');
    putc(&mut a, b'k');
    halt(&mut a, 0);
    let mut m = run(vec![vm("a", vec![seg(&a)], 0x8000_1000)], 1);
    assert_eq!(m.take_console(0), b"ok");
    assert_eq!(m.vms[0].end, Some(VmEnd::Halted(0)));
}

/// The window convention: a KSEG0 stub maps 0xC0000000 with a wired 1 MB
/// pair and jumps there; the kernel then runs directly in supervisor mode,
/// its CP0 accesses trap and are emulated, its console writes through KSEG1
/// are emulated, and a syscall is reflected to its KSEG0 vector.
fn window_guest() -> Vec<(u64, Vec<u8>)> {
    let mut stub = Asm::new(0x8000_1000);
    stub.imm(Op::Addiu, Reg::T0, Reg::ZERO, 1);
    stub.mtc0(Reg::T0, 6); // Wired = 1
    stub.mtc0(Reg::ZERO, 0); // Index = 0
    stub.li(Reg::T0, 0x001F_E000);
    stub.mtc0(Reg::T0, 5); // PageMask: 1 MB pages
    stub.li(Reg::T0, 0xC000_0000);
    stub.mtc0(Reg::T0, 10); // EntryHi: VPN2 0xC0000000, ASID 0
    stub.li(Reg::T0, (0x100 << 6) | (3 << 3) | 0b111); // P 0x100000, C=3, D V G
    stub.mtc0(Reg::T0, 2);
    stub.li(Reg::T0, (0x200 << 6) | (3 << 3) | 0b111); // P 0x200000
    stub.mtc0(Reg::T0, 3);
    stub.word(0x4200_0002); // tlbwi
    stub.li(Reg::T0, 0xC000_0000);
    stub.emit(
        Op::Jr,
        Operands {
            rs: Reg::T0.number(),
            ..Operands::default()
        },
    );
    stub.nop();

    // General exception vector: skip the faulting instruction and return.
    let mut vec = Asm::new(0x8000_0180);
    vec.mfc0(Reg::K0, 14);
    vec.imm(Op::Addiu, Reg::K0, Reg::K0, 4);
    vec.mtc0(Reg::K0, 14);
    vec.mfc0(Reg::K1, 13); // Cause
    vec.imm(Op::Addiu, Reg::S0, Reg::S0, 1); // count exceptions in s0
    vec.word(0x4200_0018); // eret

    let mut k = Asm::new(0xC000_0000);
    putc(&mut k, b'w');
    k.mfc0(Reg::T0, 12); // Status, trapped and emulated
    k.word(0x0000_000C); // syscall: reflected to the vector above
    putc(&mut k, b'!');
    halt(&mut k, 7);
    vec![
        seg(&stub),
        seg(&vec),
        (0x10_0000, k.bytes().expect("labels")),
    ]
}

#[test]
fn window_kernel_runs_directly_and_traps_are_emulated() {
    let mut m = run(vec![vm("win", window_guest(), 0x8000_1000)], 1);
    assert_eq!(m.take_console(0), b"w!", "trace:\n{}", lines(&m));
    assert_eq!(m.vms[0].end, Some(VmEnd::Halted(7)));
    let stats = &m.vms[0].vcpus[0].stats;
    assert!(stats.guest_insns > 0);
    assert_eq!(stats.exits[8], 1, "one syscall exit");
}

#[test]
fn two_vms_on_two_cpus_keep_their_own_output() {
    let mut a = Asm::new(0x8000_1000);
    putc(&mut a, b'a');
    halt(&mut a, 1);
    let mut m = run(
        vec![
            vm("one", vec![seg(&a)], 0x8000_1000),
            vm("two", window_guest(), 0x8000_1000),
        ],
        2,
    );
    assert_eq!(m.take_console(0), b"a");
    assert_eq!(m.take_console(1), b"w!");
    assert_eq!(m.vms[0].end, Some(VmEnd::Halted(1)));
    assert_eq!(m.vms[1].end, Some(VmEnd::Halted(7)));
}

#[test]
#[ignore = "prints the trace of the window guest"]
fn print_window_trace() {
    let m = run(vec![vm("win", window_guest(), 0x8000_1000)], 1);
    println!("{}", lines(&m));
}

/// The built-in windowed integer workload runs under the monitor with the
/// same instruction count as natively; only its first TLB misses and the
/// final halt leave the guest.
#[test]
fn windowed_compute_matches_native_instructions() {
    let img = sim::workload::windowed_mixed_integer(4).expect("assembles");
    let mut native = sim::Machine::new(sim::MachineConfig::default(), sim::dev::Board::new(1));
    assert!(img.load_into(&mut native));
    assert_eq!(native.run(), sim::Exit::Halted { status: 0 });
    let mut m = Monitor::new(MonitorConfig {
        pcpus: 1,
        max_cycles: Some(100_000_000),
        vms: vec![VmConfig::new("compute", img.clone(), 4 << 20)],
        ..MonitorConfig::default()
    })
    .expect("valid config");
    assert_eq!(m.run(), MonitorExit::AllEnded);
    assert_eq!(m.vms[0].end, Some(VmEnd::Halted(0)));
    let st = &m.vm_stats()[0];
    let native_insns = native.cpus[0].instret();
    // The engine runs the KSEG0 stub; direct execution runs the rest.
    assert_eq!(st.guest_insns, native_insns, "{}", m.stats_report());
    let native_cycles = native.cpus[0].cycles() as f64;
    let overhead = (st.guest_cycles + st.monitor_cycles) as f64 / native_cycles - 1.0;
    println!(
        "compute overhead: {:.3}%\n{}",
        100.0 * overhead,
        m.stats_report()
    );
}

/// Privileged instructions in branch delay slots are emulated with their
/// branch: taken, not taken, and a branch-likely whose slot is annulled.
#[test]
fn privileged_instructions_in_delay_slots() {
    let mut k = Asm::new(0xC000_0000);
    k.imm(Op::Addiu, Reg::T1, Reg::ZERO, 0x55);
    k.branch(Op::Beq, Reg::ZERO, Reg::ZERO, "taken");
    k.mtc0(Reg::T1, 11); // Compare <- 0x55, in the slot of a taken branch
    k.imm(Op::Addiu, Reg::S0, Reg::ZERO, 1); // skipped
    k.label("taken");
    k.branch(Op::Bne, Reg::ZERO, Reg::ZERO, "never");
    k.mfc0(Reg::S1, 11); // Compare -> s1, in the slot of an untaken branch
    k.branch(Op::Bnel, Reg::ZERO, Reg::ZERO, "never");
    k.mtc0(Reg::ZERO, 11); // annulled: Compare keeps 0x55
    k.mfc0(Reg::S2, 11);
    k.jump(Op::J, "store");
    k.mfc0(Reg::S3, 12); // Status, in the slot of a jump
    k.label("never");
    k.imm(Op::Addiu, Reg::S0, Reg::ZERO, 2);
    k.label("store");
    k.li(Reg::T0, 0xC010_0000);
    for (i, r) in [Reg::S0, Reg::S1, Reg::S2, Reg::S3].into_iter().enumerate() {
        k.mem(Op::Sw, r, (i * 4) as i16, Reg::T0);
    }
    halt(&mut k, 0);
    let img = sim::workload::windowed(&k).unwrap();

    let mut native = sim::Machine::new(sim::MachineConfig::default(), sim::dev::Board::new(1));
    assert!(img.load_into(&mut native));
    assert_eq!(native.run(), sim::Exit::Halted { status: 0 });
    let words = |read: &dyn Fn(u64) -> u64| -> Vec<u64> {
        (0..4).map(|i| read(0x20_0000 + i * 4)).collect()
    };
    let n = words(&|pa| native.bus.read_ram(pa, 4).unwrap());
    assert_eq!(n, [0, 0x55, 0x55, 0]);

    let mut m = Monitor::new(MonitorConfig {
        pcpus: 1,
        max_cycles: Some(10_000_000),
        vms: vec![VmConfig::new("slots", img.clone(), 4 << 20)],
        ..MonitorConfig::default()
    })
    .unwrap();
    assert_eq!(m.run(), MonitorExit::AllEnded);
    let pmap = m.vms[0].pmap.clone();
    let v = words(&|gpa| {
        let ma = pmap.translate(monitor::mem::GuestPhys(gpa)).unwrap();
        m.machine.bus.read_ram(ma.0, 4).unwrap()
    });
    assert_eq!(v, n);
    // Each trapping MFC0 was either emulated or rewritten into a commpage
    // load (and then run as one); either way it read the virtual register.
    let st = &m.vms[0].vcpus[0].stats;
    assert!(
        st.emulated[0] + st.patched >= 3,
        "the mfc0s were emulated or patched"
    );
}

/// A user process making system calls runs under the monitor to the same
/// halt, retiring the same instructions as natively (the guest's syscall
/// path included). One touching 256 pages three times also halts the same
/// way, but retires fewer: after the first pass the L2TLB still holds the
/// pairs the guest's TLBWR evicted, so later misses are refilled without
/// running the guest's refill handler, which natively runs every time.
#[test]
fn trap_heavy_workloads_match_native_instruction_counts() {
    for (img, refills_saved) in [
        (sim::workload::syscall_loop(300).unwrap(), false),
        (sim::workload::tlb_stress(3).unwrap(), true),
    ] {
        let mut native = sim::Machine::new(
            sim::MachineConfig {
                ram_bytes: 8 << 20,
                ..sim::MachineConfig::default()
            },
            sim::dev::Board::new(1),
        );
        assert!(img.load_into(&mut native));
        assert_eq!(native.run(), sim::Exit::Halted { status: 0 });
        let mut m = Monitor::new(MonitorConfig {
            pcpus: 1,
            max_cycles: Some(100_000_000),
            vms: vec![VmConfig::new("w", img.clone(), 8 << 20)],
            ..MonitorConfig::default()
        })
        .unwrap();
        assert_eq!(m.run(), MonitorExit::AllEnded);
        assert_eq!(m.vms[0].end, Some(VmEnd::Halted(0)));
        let st = &m.vm_stats()[0];
        let native_insns = native.cpus[0].instret();
        if refills_saved {
            let refills = native.cpus[0].stats().tlb_refills;
            assert!(
                st.guest_insns < native_insns && st.l2tlb_hits > refills / 2,
                "native: {native_insns} instructions, {refills} refills\n{}",
                m.stats_report()
            );
        } else {
            assert_eq!(st.guest_insns, native_insns, "{}", m.stats_report());
        }
    }
}

/// Every guest ASID gets its own machine ASID; when the 255 machine ASIDs
/// run out, a new generation flushes the real TLBs and starts over, and the
/// guest still reads through the right mapping each time.
#[test]
fn asid_exhaustion_starts_a_new_generation() {
    // For ASID a in 1..=255, twice: map 0x00400000 (ASID a) to physical
    // 0x300000 + (a & 1) * 0x1000, where the words 0x11111111 / 0x22222222
    // wait, and sum what the loads read.
    let mut k = Asm::new(0xC000_0000);
    k.imm(Op::Addiu, Reg::S1, Reg::ZERO, 2); // passes
    k.imm(Op::Addiu, Reg::S2, Reg::ZERO, 0); // sum
    k.label("pass");
    k.imm(Op::Addiu, Reg::S0, Reg::ZERO, 1);
    k.label("asid");
    k.imm(Op::Addiu, Reg::T0, Reg::ZERO, 5);
    k.mtc0(Reg::T0, 0); // Index 5
    k.mtc0(Reg::ZERO, 5); // 4 KB pages
    k.li(Reg::T0, 0x0040_0000);
    k.r3(Op::Or, Reg::T0, Reg::T0, Reg::S0);
    k.mtc0(Reg::T0, 10); // EntryHi: VPN2 0x00400000, ASID a
    k.imm(Op::Andi, Reg::T1, Reg::S0, 1);
    k.shift(Op::Sll, Reg::T1, Reg::T1, 6); // PFN + (a & 1), in EntryLo's PFN field
    k.li(Reg::T0, (0x300 << 6) | (3 << 3) | 0b110);
    k.r3(Op::Addu, Reg::T0, Reg::T0, Reg::T1);
    k.mtc0(Reg::T0, 2);
    k.mtc0(Reg::ZERO, 3);
    k.word(0x4200_0002); // tlbwi
    k.li(Reg::T2, 0x0040_0000);
    k.mem(Op::Lw, Reg::T3, 0, Reg::T2);
    k.r3(Op::Addu, Reg::S2, Reg::S2, Reg::T3);
    k.imm(Op::Addiu, Reg::S0, Reg::S0, 1);
    k.imm(Op::Slti, Reg::AT, Reg::S0, 256);
    k.branch(Op::Bne, Reg::AT, Reg::ZERO, "asid");
    k.nop();
    k.imm(Op::Addiu, Reg::S1, Reg::S1, -1);
    k.branch(Op::Bne, Reg::S1, Reg::ZERO, "pass");
    k.nop();
    k.li(Reg::T0, 0xC010_0000);
    k.mem(Op::Sw, Reg::S2, 0, Reg::T0);
    halt(&mut k, 0);
    let mut img = sim::workload::windowed(&k).unwrap();
    let words: Vec<u8> = [0x2222_2222u32; 1024]
        .iter()
        .chain([0x1111_1111u32; 1024].iter())
        .flat_map(|w| w.to_be_bytes())
        .collect();
    img.segments.push((0x30_0000, words));
    let mut m = Monitor::new(MonitorConfig {
        pcpus: 1,
        max_cycles: Some(50_000_000),
        vms: vec![VmConfig::new("asids", img.clone(), 4 << 20)],
        ..MonitorConfig::default()
    })
    .unwrap();
    assert_eq!(m.run(), MonitorExit::AllEnded);
    assert_eq!(m.vms[0].end, Some(VmEnd::Halted(0)));
    // 2 passes x (128 odd ASIDs x 0x11111111 + 127 even x 0x22222222), mod 2^32.
    let expect = (2u64 * (128 * 0x1111_1111 + 127 * 0x2222_2222)) as u32;
    let ma = m.vms[0]
        .pmap
        .translate(monitor::mem::GuestPhys(0x20_0000))
        .unwrap();
    assert_eq!(m.machine.bus.read_ram(ma.0, 4), Some(u64::from(expect)));
    // 256 guest ASIDs (0 at boot, 1..=255 here) need more than 255 machine ones.
    assert!(
        m.asid_generation() >= 1,
        "generation {}",
        m.asid_generation()
    );
}

/// A guest that executes WAIT gives its physical CPU away: on one physical
/// CPU, a VM waiting for its timer and a VM computing both finish, the
/// waiter wakes on its virtual timer, and the whole run is repeatable.
#[test]
fn wait_yields_the_cpu_and_scheduling_is_deterministic() {
    // The waiter: arm Compare 200,000 counts ahead, enable IP7, WAIT, and
    // halt from the interrupt vector.
    let mut k = Asm::new(0xC000_0000);
    k.mfc0(Reg::T0, 9);
    k.li(Reg::T1, 200_000);
    k.r3(Op::Addu, Reg::T0, Reg::T0, Reg::T1);
    k.mtc0(Reg::T0, 11);
    k.li(Reg::T0, 0x8001); // IM7 | IE
    k.mtc0(Reg::T0, 12);
    k.label("idle");
    k.op(Op::Wait);
    k.branch(Op::Beq, Reg::ZERO, Reg::ZERO, "idle");
    k.nop();
    let mut waiter = sim::workload::windowed(&k).unwrap();
    let mut vector = Asm::new(0x8000_0180);
    halt(&mut vector, 0);
    waiter.segments.push((0x180, vector.bytes().unwrap()));
    let compute = sim::workload::windowed_mixed_integer(60).unwrap();
    let run = || {
        let mut m = Monitor::new(MonitorConfig {
            pcpus: 1,
            max_cycles: Some(100_000_000),
            // Trap-and-emulate: the waiter's WAIT is an emulated exit.
            vms: vec![
                VmConfig {
                    exec: monitor::bt::Exec::Direct,
                    ..VmConfig::new("waiter", waiter.clone(), 4 << 20)
                },
                VmConfig {
                    exec: monitor::bt::Exec::Direct,
                    ..VmConfig::new("compute", compute.clone(), 4 << 20)
                },
            ],
            ..MonitorConfig::default()
        })
        .unwrap();
        assert_eq!(m.run(), MonitorExit::AllEnded);
        assert_eq!(m.vms[0].end, Some(VmEnd::Halted(0)));
        assert_eq!(m.vms[1].end, Some(VmEnd::Halted(0)));
        let st = m.vm_stats();
        (m.now(), st[0].emulated, st[1].guest_insns)
    };
    let (now, waiter_emulated, compute_insns) = run();
    assert!(waiter_emulated[8] >= 1, "the waiter executed WAIT");
    // The computing VM ran while the waiter waited: the run took far less
    // than the two back to back would (the waiter alone spans 400,000 cycles).
    assert!(compute_insns > 100_000);
    let compute_alone = {
        let mut n = sim::Machine::new(sim::MachineConfig::default(), sim::dev::Board::new(1));
        assert!(compute.load_into(&mut n));
        assert_eq!(n.run(), sim::Exit::Halted { status: 0 });
        n.cpus[0].cycles()
    };
    // Sharing one CPU, the pair finishes about when the computation alone
    // would (plus switches and quantum rounding), not after both back to back.
    assert!(
        now < compute_alone + 150_000,
        "machine time {now}, compute alone {compute_alone}"
    );
    assert_eq!(
        run(),
        (now, waiter_emulated, compute_insns),
        "a second run differs"
    );
}
