//! Reflection is exact: a guest kernel logs the CP0 state it sees on entry
//! to its handler (Cause, EPC, BadVAddr, Context, EntryHi, Status) for
//! sixteen exceptions raised by a user process, and the log is the same
//! word for word natively and under the monitor.

#![allow(clippy::panic, clippy::unwrap_used)]

use monitor::{Monitor, MonitorConfig, MonitorExit, VmConfig, VmEnd};
use sim::isa::asm::{Asm, Operands};
use sim::isa::{Op, Reg};
use sim::workload::{windowed, Image};

use Reg as R;

const ERET: u32 = 0x4200_0018;
const TLBWI: u32 = 0x4200_0002;
/// Where the log lives: 0xC00F0000 holds the write pointer, entries follow.
const LOG: u32 = 0xC00F_0000;
const ENTRIES: u32 = 16;

fn wire(a: &mut Asm, index: i64, hi: u32, lo0: u32, lo1: u32) {
    a.imm(Op::Addiu, R::T0, R::ZERO, index);
    a.mtc0(R::T0, 0);
    a.li(R::T0, hi);
    a.mtc0(R::T0, 10);
    a.li(R::T0, lo0);
    a.mtc0(R::T0, 2);
    a.li(R::T0, lo1);
    a.mtc0(R::T0, 3);
    a.word(TLBWI);
}

/// EntryLo for guest-physical `gpa` with C=3 and the given D/V bits.
const fn lo(gpa: u32, dv: u32) -> u32 {
    ((gpa >> 12) << 6) | (3 << 3) | dv
}

fn guest() -> Image {
    // The kernel, in the window at 0xC0000000 (physical 1 MB).
    let mut k = Asm::new(0xC000_0000);
    k.li(R::T0, 0xC080_0000);
    k.mtc0(R::T0, 4); // Context.PTEBase
    k.mtc0(R::ZERO, 5); // PageMask: 4 KB
                        // User pages, ASID 1: code at 0x00400000 (physical 0x180000), a clean
                        // data page at 0x00402000 (physical 0x182000), an invalid pair at 0x00404000.
    wire(
        &mut k,
        1,
        0x0040_0001,
        lo(0x18_0000, 0b110),
        lo(0x18_1000, 0b110),
    );
    wire(&mut k, 2, 0x0040_2001, lo(0x18_2000, 0b010), 0);
    wire(&mut k, 3, 0x0040_4001, 0, 0);
    k.imm(Op::Addiu, R::T0, R::ZERO, 4);
    k.mtc0(R::T0, 6); // Wired = 4
    k.imm(Op::Addiu, R::T0, R::ZERO, 1);
    k.mtc0(R::T0, 10); // EntryHi: ASID 1
    k.li(R::T0, LOG);
    k.li(R::T1, LOG + 0x10);
    k.mem(Op::Sw, R::T1, 0, R::T0); // the log's write pointer
    k.li(R::T0, 0x0040_0000);
    k.mtc0(R::T0, 14); // EPC
    k.imm(Op::Addiu, R::T0, R::ZERO, 0x12);
    k.mtc0(R::T0, 12); // Status: KSU = user, EXL
    k.word(ERET);
    while k.here() < 0xC000_0200 {
        k.nop();
    }
    // Every exception lands here: log, then skip the faulting instruction
    // (and its branch, when it sat in a delay slot).
    k.imm(Op::Lui, R::K0, R::ZERO, i64::from(LOG >> 16));
    k.mem(Op::Lw, R::K1, 0, R::K0);
    for (i, reg) in [13u32, 14, 8, 4, 10, 12].into_iter().enumerate() {
        k.mfc0(R::K0, reg);
        k.mem(Op::Sw, R::K0, (i * 4) as i16, R::K1);
    }
    k.imm(Op::Addiu, R::K1, R::K1, 24);
    k.imm(Op::Lui, R::K0, R::ZERO, i64::from(LOG >> 16));
    k.mem(Op::Sw, R::K1, 0, R::K0);
    k.li(R::K0, LOG + 0x10 + ENTRIES * 24);
    k.r3(Op::Sltu, R::K0, R::K1, R::K0);
    k.branch(Op::Beq, R::K0, R::ZERO, "halt");
    k.nop();
    k.mfc0(R::K0, 13);
    k.mfc0(R::K1, 14);
    k.branch(Op::Bgez, R::K0, R::ZERO, "not_bd");
    k.imm(Op::Addiu, R::K1, R::K1, 4);
    k.imm(Op::Addiu, R::K1, R::K1, 4);
    k.label("not_bd");
    k.mtc0(R::K1, 14);
    k.word(ERET);
    k.label("halt");
    k.li(R::K0, 0xB000_0010);
    k.mem(Op::Sw, R::ZERO, 0, R::K0);
    k.label("spin");
    k.branch(Op::Beq, R::ZERO, R::ZERO, "spin");
    k.nop();

    // The user process: one exception after another.
    let mut u = Asm::new(0x0040_0000);
    u.word(0x0000_000C); // syscall
    u.word(0x0000_000D); // break
    u.li(R::T1, 0x0060_0000);
    u.mem(Op::Lw, R::T0, 0, R::T1); // TLBL refill
    u.mem(Op::Sw, R::T0, 0, R::T1); // TLBS refill
    u.li(R::T1, 0x0040_4000);
    u.mem(Op::Lw, R::T0, 0, R::T1); // TLBL invalid
    u.li(R::T1, 0x0040_2000);
    u.mem(Op::Sw, R::T0, 0, R::T1); // Mod
    u.mem(Op::Lw, R::T0, 1, R::T1); // AdEL, misaligned
    u.mem(Op::Sw, R::T0, 2, R::T1); // AdES, misaligned
    u.li(R::T1, 0x8000_0000);
    u.mem(Op::Lw, R::T0, 0, R::T1); // AdEL, kernel address
    u.word(0x7C00_0000); // reserved opcode: RI
    u.word(0x4408_0000); // mfc1: CpU, CE = 1
    u.mtc0(R::ZERO, 12); // mtc0 in user mode: CpU, CE = 0
    u.li(R::T1, 0x7FFF_FFFF);
    u.r3(Op::Add, R::T0, R::T1, R::T1); // Ov
    u.rs_rt(Op::Teq, R::ZERO, R::ZERO); // Tr
    u.r3(Op::Dadd, R::T0, R::T1, R::T1); // 64-bit op in user mode: RI
    u.branch(Op::Beq, R::ZERO, R::ZERO, "after");
    u.word(0x0000_000C); // syscall in a delay slot
    u.label("after");
    u.label("loop");
    u.branch(Op::Beq, R::ZERO, R::ZERO, "loop");
    u.nop();

    let mut img = windowed(&k).unwrap();
    img.segments.push((0x18_0000, u.bytes().unwrap()));
    // KSEG0 vectors: trampolines to the window's handler.
    for origin in [0x8000_0000u32, 0x8000_0180] {
        let mut v = Asm::new(origin);
        v.li(R::K0, 0xC000_0200);
        v.emit(
            Op::Jr,
            Operands {
                rs: R::K0.number(),
                ..Operands::default()
            },
        );
        v.nop();
        img.segments
            .push((u64::from(origin & 0x1FFF_FFFF), v.bytes().unwrap()));
    }
    img
}

fn log_words(read: impl Fn(u64) -> u32) -> Vec<u32> {
    // The log lies at guest-physical 0x1F0010 (window VA 0xC00F0010).
    (0..ENTRIES * 6)
        .map(|i| read(0x1F_0010 + u64::from(i) * 4))
        .collect()
}

#[test]
fn guest_sees_the_same_cp0_state_natively_and_under_the_monitor() {
    let img = guest();
    let mut native = sim::Machine::new(
        sim::MachineConfig {
            max_cycles: Some(10_000_000),
            ..sim::MachineConfig::default()
        },
        sim::dev::Board::new(1),
    );
    assert!(img.load_into(&mut native));
    assert_eq!(native.run(), sim::Exit::Halted { status: 0 });
    let native_log = log_words(|pa| native.bus.read_ram(pa, 4).unwrap() as u32);

    let mut m = Monitor::new(MonitorConfig {
        pcpus: 1,
        max_cycles: Some(50_000_000),
        vms: vec![VmConfig::new("reflect", img.clone(), 4 << 20)],
        ..MonitorConfig::default()
    })
    .unwrap();
    m.trace.enabled = std::env::var("REFLECT_TRACE").is_ok();
    let exit = m.run();
    if m.trace.enabled {
        for l in m.trace.lines().iter().take(400) {
            println!("{l}");
        }
    }
    assert_eq!(exit, MonitorExit::AllEnded);
    assert_eq!(m.vms[0].end, Some(VmEnd::Halted(0)));
    let pmap = m.vms[0].pmap.clone();
    let virt_log = log_words(|gpa| {
        let ma = pmap.translate(monitor::mem::GuestPhys(gpa)).unwrap();
        m.machine.bus.read_ram(ma.0, 4).unwrap() as u32
    });

    let codes: Vec<u32> = native_log.chunks(6).map(|e| (e[0] >> 2) & 31).collect();
    // Sys, Bp, TLBL, TLBS, TLBL, Mod, AdEL, AdES, AdEL, RI, CpU, CpU, Ov, Tr, RI, Sys.
    assert_eq!(
        codes,
        [8, 9, 2, 3, 2, 1, 4, 5, 4, 10, 11, 11, 12, 13, 10, 8]
    );
    for (i, (n, v)) in native_log.chunks(6).zip(virt_log.chunks(6)).enumerate() {
        assert_eq!(
            n, v,
            "exception {i}: natively [Cause, EPC, BadVAddr, Context, EntryHi, Status] = {n:08x?}, under the monitor {v:08x?}"
        );
    }
    // The last one sat in a delay slot: BD set, EPC at the branch.
    let last = &native_log[(ENTRIES as usize - 1) * 6..];
    assert_ne!(last[0] & 0x8000_0000, 0);
}
