//! Multiprocessor guests in the emulation engine: the virtual mp device's
//! IPIs and LL/SC across VCPU switches, on tiny KSEG0 guests built with the
//! in-crate assembler (the mp and smp kits run end to end in `kits.rs`).

#![allow(clippy::panic, clippy::unwrap_used)]

use monitor::{Monitor, MonitorConfig, MonitorExit, VmConfig, VmEnd, VmImage};
use sim::isa::asm::Asm;
use sim::isa::{Op, Reg};

/// The console's halt register and the mp device, through KSEG1.
const HALT: u32 = 0xB000_0010;
const MP: u32 = 0xB100_0000;
const MP_STARTUPCPU: i16 = 0x20;
const MP_STARTUPADDR: i16 = 0x30;
const MP_STARTUPSTACK: i16 = 0x70;
const MP_IPI_ONE: i16 = 0xA0;
const MP_IPI_READ: i16 = 0xC0;
const CAUSE: u32 = 13;

/// Halts the VM with the value of `status`.
fn halt_with(a: &mut Asm, status: Reg) {
    a.li(Reg::T8, HALT);
    a.mem(Op::Sw, status, 0, Reg::T8);
    a.label("halted");
    a.b("halted");
    a.nop();
}

/// The program, entered at 0x80001000; the window (0xC0000000) is at
/// guest-physical 0x100000.
fn image(segments: Vec<&Asm>) -> VmImage {
    let segments = segments
        .into_iter()
        .map(|a| {
            let gpa = match a.origin() {
                o @ 0xC000_0000.. => o - 0xC000_0000 + 0x10_0000,
                o => o & 0x1FFF_FFFF,
            };
            (u64::from(gpa), a.bytes().unwrap())
        })
        .collect();
    VmImage {
        entry: 0xFFFF_FFFF_8000_1000,
        segments,
    }
}

fn run(segments: Vec<&Asm>, vcpus: usize, pcpus: usize) -> Monitor {
    let mut vm = VmConfig::new("smp", image(segments), 4 << 20);
    vm.vcpus = vcpus;
    let mut m = Monitor::new(MonitorConfig {
        pcpus,
        max_cycles: Some(20_000_000),
        vms: vec![vm],
        ..MonitorConfig::default()
    })
    .unwrap();
    assert_eq!(m.run(), MonitorExit::AllEnded);
    m
}

/// An IPI a VCPU sends itself with interrupts off shows in its Cause (IP6)
/// at the next MFC0, and an ipi_flush drops it there at once: the engine
/// reads Cause's device lines as they are, not as they were when the VCPU's
/// turn began. Halts with 1 (IP6 up after the IPI) + 2 (down after flush).
#[test]
fn a_self_ipi_raises_ip6_at_once_and_a_flush_drops_it() {
    let mut a = Asm::new(0x8000_1000);
    a.li(Reg::T0, MP);
    a.li(Reg::T1, 7 << 16); // IPI 7 to VCPU 0, itself
    a.mem(Op::Sw, Reg::T1, MP_IPI_ONE, Reg::T0);
    a.mfc0(Reg::T2, CAUSE);
    a.shift(Op::Srl, Reg::T2, Reg::T2, 14);
    a.imm(Op::Andi, Reg::T2, Reg::T2, 1);
    a.mem(Op::Sw, Reg::ZERO, MP_IPI_READ, Reg::T0); // ipi_flush
    a.mfc0(Reg::T3, CAUSE);
    a.shift(Op::Srl, Reg::T3, Reg::T3, 14);
    a.imm(Op::Andi, Reg::T3, Reg::T3, 1);
    a.imm(Op::Xori, Reg::T3, Reg::T3, 1);
    a.shift(Op::Sll, Reg::T3, Reg::T3, 1);
    a.r3(Op::Or, Reg::A0, Reg::T2, Reg::T3);
    halt_with(&mut a, Reg::A0);
    let m = run(vec![&a], 1, 1);
    assert_eq!(m.vms[0].end, Some(VmEnd::Halted(3)));
}

/// VCPU 0's program at `code` (its data at `code + 0x2000`): starts VCPU 1
/// at `start`, links WORD, then spins until VCPU 1 has LL/SC'd WORD and
/// linked it again (so the physical CPU holds a link when VCPU 0 comes
/// back), and only then tries its SC; halts with 10 + the SC's result.
/// VCPU 1's program at `code + 0x1000`.
fn sc_race(code: u32, start: u32) -> (Asm, Asm) {
    let (word, flag) = (code + 0x2000, code + 0x2040);
    let mut boot = Asm::new(code);
    boot.li(Reg::T0, MP);
    boot.li(Reg::T1, start);
    boot.mem(Op::Sw, Reg::T1, MP_STARTUPADDR, Reg::T0);
    boot.li(Reg::T1, 0x8010_0000);
    boot.mem(Op::Sw, Reg::T1, MP_STARTUPSTACK, Reg::T0);
    boot.imm(Op::Addiu, Reg::T1, Reg::ZERO, 1);
    boot.mem(Op::Sw, Reg::T1, MP_STARTUPCPU, Reg::T0);
    boot.li(Reg::S0, word);
    boot.li(Reg::S1, flag);
    boot.mem(Op::Ll, Reg::T2, 0, Reg::S0);
    boot.label("wait");
    boot.mem(Op::Lw, Reg::T3, 0, Reg::S1);
    boot.beqz(Reg::T3, "wait");
    boot.nop();
    boot.imm(Op::Addiu, Reg::T2, Reg::ZERO, 0x55);
    boot.mem(Op::Sc, Reg::T2, 0, Reg::S0);
    boot.imm(Op::Addiu, Reg::A0, Reg::T2, 10);
    halt_with(&mut boot, Reg::A0);

    let mut second = Asm::new(code + 0x1000);
    second.li(Reg::S0, word);
    second.li(Reg::S1, flag);
    second.label("again");
    second.mem(Op::Ll, Reg::T2, 0, Reg::S0);
    second.imm(Op::Addiu, Reg::T2, Reg::T2, 1);
    second.mem(Op::Sc, Reg::T2, 0, Reg::S0);
    second.beqz(Reg::T2, "again");
    second.nop();
    second.mem(Op::Ll, Reg::T2, 0, Reg::S0); // linked again, never SC'd
    second.imm(Op::Addiu, Reg::T3, Reg::ZERO, 1);
    second.mem(Op::Sw, Reg::T3, 0, Reg::S1);
    second.label("park");
    second.b("park");
    second.nop();
    (boot, second)
}

/// The LLbit is VCPU 0's, and VCPU 1 wrote the line since VCPU 0's LL: the
/// SC must fail, whether the two share one physical CPU (a switch in
/// between) or run on two (a store by another CPU), in the engine (KSEG0).
#[test]
fn an_sc_after_another_vcpu_wrote_the_line_fails_on_one_or_two_cpus() {
    let (boot, second) = sc_race(0x8000_1000, 0x8000_2000);
    for pcpus in [1, 2] {
        let m = run(vec![&boot, &second], 2, pcpus);
        assert_eq!(m.vms[0].end, Some(VmEnd::Halted(10)), "{pcpus} CPU(s)");
    }
}

/// A KSEG0 stub at `origin` that maps the window (virtual 0xC0000000, a
/// wired 1 MB page at guest-physical 0x100000) and jumps to `to` in it.
fn window_stub(origin: u32, to: u32) -> Asm {
    let mut a = Asm::new(origin);
    a.imm(Op::Addiu, Reg::T0, Reg::ZERO, 1);
    a.mtc0(Reg::T0, 6); // Wired = 1
    a.mtc0(Reg::ZERO, 0); // Index = 0
    a.li(Reg::T0, 0x001F_E000);
    a.mtc0(Reg::T0, 5); // PageMask: 1 MB pages
    a.li(Reg::T0, 0xC000_0000);
    a.mtc0(Reg::T0, 10); // EntryHi
    a.li(Reg::T0, (0x100 << 6) | (3 << 3) | 0b111); // P 0x100000, C=3, D V G
    a.mtc0(Reg::T0, 2);
    a.mtc0(Reg::ZERO, 3);
    a.word(0x4200_0002); // tlbwi
    a.li(Reg::T0, to);
    a.jr(Reg::T0);
    a.nop();
    a
}

/// The same race run directly, in the window: LL, SC and the stores are
/// the real CPU's, and the switch still ends VCPU 0's link.
#[test]
fn an_sc_after_another_vcpu_wrote_the_line_fails_when_run_directly() {
    let (boot, second) = sc_race(0xC000_1000, 0x8000_2000);
    let stubs = [
        window_stub(0x8000_1000, 0xC000_1000),
        window_stub(0x8000_2000, 0xC000_2000),
    ];
    for pcpus in [1, 2] {
        let m = run(vec![&stubs[0], &stubs[1], &boot, &second], 2, pcpus);
        assert_eq!(m.vms[0].end, Some(VmEnd::Halted(10)), "{pcpus} CPU(s)");
        let s = &m.vms[0].vcpus[1].stats;
        assert!(s.guest_cycles > 0, "VCPU 1 ran directly");
    }
}

/// An IPI pending while interrupts are off is taken as soon as the guest
/// enables them, even for two instructions: the engine delivers it at
/// once, as the bare machine does, not when the VCPU's turn ends. The
/// handler dequeues the IPI and sets s2; halts with 20 + s2, natively too.
#[test]
fn a_pending_ipi_is_taken_as_soon_as_status_allows() {
    let mut vector = Asm::new(0x8000_0180);
    vector.li(Reg::K0, MP);
    vector.mem(Op::Lw, Reg::K1, MP_IPI_READ, Reg::K0);
    vector.imm(Op::Addiu, Reg::S2, Reg::ZERO, 1);
    vector.word(0x4200_0018); // eret

    let mut a = Asm::new(0x8000_1000);
    a.li(Reg::T0, MP);
    a.li(Reg::T1, 7 << 16); // IPI 7 to itself, interrupts off
    a.mem(Op::Sw, Reg::T1, MP_IPI_ONE, Reg::T0);
    a.li(Reg::T1, (1 << 14) | 1); // IM6 | IE
    a.mtc0(Reg::T1, 12);
    a.nop();
    a.mtc0(Reg::ZERO, 12);
    a.imm(Op::Addiu, Reg::A0, Reg::S2, 20);
    halt_with(&mut a, Reg::A0);

    let mut native = sim::Machine::new(sim::MachineConfig::default(), sim::dev::Board::new(1));
    assert!(image(vec![&vector, &a]).load_into(&mut native));
    assert_eq!(native.run(), sim::Exit::Halted { status: 21 });

    let m = run(vec![&vector, &a], 1, 1);
    assert_eq!(m.vms[0].end, Some(VmEnd::Halted(21)));
}

/// LL in the engine sets the virtual LLAddr to the guest-physical line, as
/// the bare machine's LL sets its own: both halt with 0x300.
#[test]
fn ll_in_the_engine_sets_the_virtual_lladdr() {
    let mut a = Asm::new(0x8000_1000);
    a.li(Reg::S0, 0x8000_3000);
    a.mem(Op::Ll, Reg::T0, 0, Reg::S0);
    a.mfc0(Reg::A0, 17); // LLAddr
    halt_with(&mut a, Reg::A0);
    let mut native = sim::Machine::new(sim::MachineConfig::default(), sim::dev::Board::new(1));
    assert!(image(vec![&a]).load_into(&mut native));
    assert_eq!(native.run(), sim::Exit::Halted { status: 0x300 });
    let m = run(vec![&a], 1, 1);
    assert_eq!(m.vms[0].end, Some(VmEnd::Halted(0x300)));
}
