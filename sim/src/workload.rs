//! Built-in bare-metal workloads, assembled with the in-crate assembler, for
//! benchmarks and smoke tests that must not depend on the cross toolchain.

use crate::isa::asm::{Asm, Operands};
pub use crate::loader::Image;

use crate::isa::{Op, Reg};

/// A mixed integer loop: loads, stores, ALU and shift operations, a
/// multiply, taken and untaken branches, and a call/return per iteration,
/// over a 4 KB array at physical 2 MB. Runs `outer` passes of 512 pairs,
/// leaves a checksum in `v0` and halts with status 0.
pub fn mixed_integer(origin: u32, outer: u32) -> Asm {
    mixed_integer_at(origin, 0x8020_0000, outer)
}

/// [`mixed_integer`] with its array at virtual address `array`.
pub(crate) fn mixed_integer_at(origin: u32, array: u32, outer: u32) -> Asm {
    mixed_integer_on(origin, array, outer, Halt::Testmips)
}

/// How a bare-metal workload stops its board. Each halt fills the same
/// four-word slot, whose third word is the store that halts, so that a
/// workload built for another board has the same instructions at the same
/// addresses (the same branch and jump encodings) and executes the same
/// number of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Halt {
    /// testmips (disco, GXemul): a store to the halt device, status 0.
    Testmips,
    /// QEMU's Malta: 0x42 into the FPGA's SOFTRES register (physical
    /// 0x1F000500), a board reset that QEMU's `-no-reboot` turns into its
    /// exit. QEMU stops at the next block boundary, so the slot ends in a
    /// loop on itself (its delay slot is whatever follows the slot: the
    /// loop is only ever entered while QEMU is shutting down).
    Malta,
}

impl Halt {
    fn emit(self, a: &mut Asm) {
        use Reg as R;
        match self {
            Halt::Testmips => {
                a.li(R::K1, 0xB000_0010);
                a.mem(Op::Sw, R::ZERO, 0, R::K1);
                a.nop();
            }
            Halt::Malta => {
                a.imm(Op::Lui, R::K1, R::ZERO, 0xBF00);
                a.imm(Op::Addiu, R::K0, R::ZERO, 0x42);
                a.mem(Op::Sw, R::K0, 0x500, R::K1);
                a.label("halted");
                a.branch(Op::Beq, R::ZERO, R::ZERO, "halted");
            }
        }
    }
}

/// `mixed_integer_at` halting on `halt`'s board.
pub fn mixed_integer_on(origin: u32, array: u32, outer: u32, halt: Halt) -> Asm {
    use Reg as R;
    let mut a = Asm::new(origin);
    a.li(R::S0, array);
    a.li(R::S1, outer);
    a.imm(Op::Addiu, R::V0, R::ZERO, 0);
    // Fill the array with i * 3.
    a.imm(Op::Addiu, R::T0, R::ZERO, 0);
    a.label("fill");
    a.shift(Op::Sll, R::T1, R::T0, 2);
    a.r3(Op::Addu, R::T1, R::T1, R::S0);
    a.r3(Op::Addu, R::T2, R::T0, R::T0);
    a.r3(Op::Addu, R::T2, R::T2, R::T0);
    a.mem(Op::Sw, R::T2, 0, R::T1);
    a.imm(Op::Addiu, R::T0, R::T0, 1);
    a.imm(Op::Slti, R::AT, R::T0, 1024);
    a.branch(Op::Bne, R::AT, R::ZERO, "fill");
    a.nop();
    a.label("outer");
    a.r3(Op::Addu, R::T0, R::S0, R::ZERO);
    a.imm(Op::Addiu, R::T3, R::S0, 4096);
    a.label("inner");
    a.mem(Op::Lw, R::T1, 0, R::T0);
    a.mem(Op::Lw, R::T2, 4, R::T0);
    a.r3(Op::Xor, R::T4, R::T1, R::V0);
    a.shift(Op::Srl, R::T5, R::T4, 3);
    a.r3(Op::Addu, R::V0, R::V0, R::T5);
    a.imm(Op::Andi, R::T6, R::T1, 7);
    a.branch(Op::Beq, R::T6, R::ZERO, "skip");
    a.r3(Op::Subu, R::V0, R::V0, R::T2);
    a.jump(Op::Jal, "mix");
    a.nop();
    a.label("skip");
    a.imm(Op::Addiu, R::T1, R::T1, 1);
    a.mem(Op::Sw, R::T1, 0, R::T0);
    a.imm(Op::Addiu, R::T0, R::T0, 8);
    a.branch(Op::Bne, R::T0, R::T3, "inner");
    a.nop();
    a.imm(Op::Addiu, R::S1, R::S1, -1);
    a.branch(Op::Bgtz, R::S1, R::ZERO, "outer");
    a.nop();
    halt.emit(&mut a);
    a.label("mix");
    a.rs_rt(Op::Multu, R::V0, R::T2);
    a.emit(
        Op::Mflo,
        Operands {
            rd: R::T7.number(),
            ..Operands::default()
        },
    );
    a.r3(Op::Addu, R::V0, R::V0, R::T7);
    a.emit(
        Op::Jr,
        Operands {
            rs: R::RA.number(),
            ..Operands::default()
        },
    );
    a.nop();
    a
}

/// The mixed integer loop on every CPU: CPU 0 starts the others through the
/// mp device (startupaddr, startupstack, startupcpu), each CPU runs `outer`
/// passes over its own 4 KB array, then counts itself done with LL/SC; CPU 0
/// halts with status 0 once all `ncpus` are done.
pub fn mixed_integer_smp(origin: u32, outer: u32, ncpus: u32) -> Asm {
    let kseg0 = SmpLayout {
        start: origin + WORK_OFFSET,
        done: 0x801F_0000,
        arrays: 0x8020_0000,
    };
    integer_smp(origin, outer, ncpus, kseg0)
}

/// Where [`integer_smp`]'s CPUs start and keep their data.
struct SmpLayout {
    /// The address CPU 0 hands the mp device for the other CPUs.
    start: u32,
    /// The shared done counter.
    done: u32,
    /// CPU `id`'s array is at `arrays + id * 8 KB`.
    arrays: u32,
}

/// The body of [`mixed_integer_smp`] and [`windowed_mixed_integer_smp`].
fn integer_smp(origin: u32, outer: u32, ncpus: u32, at: SmpLayout) -> Asm {
    use Reg as R;
    const MP: u32 = 0xB100_0000;
    let mut a = Asm::new(origin);
    a.li(R::T9, MP);
    a.mem(Op::Lw, R::S7, 0, R::T9); // whoami
    a.branch(Op::Bne, R::S7, R::ZERO, "work");
    a.nop();
    // CPU 0: clear the counter, start CPUs 1..ncpus at "work".
    a.li(R::T0, at.done);
    a.mem(Op::Sw, R::ZERO, 0, R::T0);
    a.imm(Op::Addiu, R::T1, R::ZERO, 1);
    a.label("start");
    a.imm(Op::Slti, R::AT, R::T1, i64::from(ncpus));
    a.branch(Op::Beq, R::AT, R::ZERO, "work");
    a.nop();
    a.li(R::T2, at.start);
    a.mem(Op::Sw, R::T2, 0x30, R::T9); // startupaddr
    a.li(R::T3, 0x8010_0000);
    a.shift(Op::Sll, R::T4, R::T1, 12);
    a.r3(Op::Addu, R::T3, R::T3, R::T4);
    a.mem(Op::Sw, R::T3, 0x70, R::T9); // startupstack
    a.mem(Op::Sw, R::T1, 0x20, R::T9); // startupcpu
    a.imm(Op::Addiu, R::T1, R::T1, 1);
    a.branch(Op::Beq, R::ZERO, R::ZERO, "start");
    a.nop();
    // "work" sits at a fixed offset so CPU 0 can hand its address to mp.
    while a.here() < origin + WORK_OFFSET {
        a.nop();
    }
    a.label("work");
    a.li(R::T9, MP);
    a.mem(Op::Lw, R::S7, 0, R::T9);
    // This CPU's array: `arrays` + id * 8 KB.
    a.shift(Op::Sll, R::T0, R::S7, 13);
    a.li(R::S0, at.arrays);
    a.r3(Op::Addu, R::S0, R::S0, R::T0);
    a.li(R::S1, outer);
    a.imm(Op::Addiu, R::V0, R::ZERO, 0);
    a.imm(Op::Addiu, R::T3, R::S0, 4096);
    a.label("outer");
    a.r3(Op::Addu, R::T0, R::S0, R::ZERO);
    a.label("inner");
    a.mem(Op::Lw, R::T1, 0, R::T0);
    a.mem(Op::Lw, R::T2, 4, R::T0);
    a.r3(Op::Xor, R::T4, R::T1, R::V0);
    a.shift(Op::Srl, R::T5, R::T4, 3);
    a.r3(Op::Addu, R::V0, R::V0, R::T5);
    a.imm(Op::Addiu, R::T1, R::T1, 1);
    a.mem(Op::Sw, R::T1, 0, R::T0);
    a.imm(Op::Addiu, R::T0, R::T0, 8);
    a.branch(Op::Bne, R::T0, R::T3, "inner");
    a.nop();
    a.imm(Op::Addiu, R::S1, R::S1, -1);
    a.branch(Op::Bgtz, R::S1, R::ZERO, "outer");
    a.nop();
    // done += 1, with LL/SC.
    a.li(R::T0, at.done);
    a.label("retry");
    a.mem(Op::Ll, R::T1, 0, R::T0);
    a.imm(Op::Addiu, R::T1, R::T1, 1);
    a.mem(Op::Sc, R::T1, 0, R::T0);
    a.branch(Op::Beq, R::T1, R::ZERO, "retry");
    a.nop();
    a.branch(Op::Bne, R::S7, R::ZERO, "park");
    a.nop();
    a.label("wait");
    a.mem(Op::Lw, R::T1, 0, R::T0);
    a.imm(Op::Slti, R::AT, R::T1, i64::from(ncpus));
    a.branch(Op::Bne, R::AT, R::ZERO, "wait");
    a.nop();
    a.li(R::K1, 0xB000_0010);
    a.mem(Op::Sw, R::ZERO, 0, R::K1);
    a.label("park");
    a.branch(Op::Beq, R::ZERO, R::ZERO, "park");
    a.nop();
    a
}

/// The window convention in miniature (`../shared/docs/design.md` §4): a KSEG0 boot stub
/// wires two 1 MB pages at 0xC0000000 (physical 1 MB and 2 MB) and jumps to
/// `kernel`, which must be assembled at 0xC0000000. The same image runs in
/// kernel mode on the bare machine and in supervisor mode under the monitor.
pub fn windowed(kernel: &Asm) -> Result<Image, String> {
    use Reg as R;
    let mut stub = Asm::new(WINDOW_STUB);
    stub.imm(Op::Addiu, R::T0, R::ZERO, 1);
    stub.mtc0(R::T0, 6); // Wired = 1
    stub.mtc0(R::ZERO, 0); // Index = 0
    stub.li(R::T0, 0x001F_E000); // 1 MB pages
    stub.mtc0(R::T0, 5);
    stub.li(R::T0, 0xC000_0000);
    stub.mtc0(R::T0, 10);
    stub.li(R::T0, (0x100 << 6) | (3 << 3) | 0b111); // physical 1 MB, C=3, D V G
    stub.mtc0(R::T0, 2);
    stub.li(R::T0, (0x200 << 6) | (3 << 3) | 0b111); // physical 2 MB
    stub.mtc0(R::T0, 3);
    stub.word(0x4200_0002); // tlbwi
    stub.li(R::T0, 0xC000_0000);
    stub.emit(
        Op::Jr,
        Operands {
            rs: R::T0.number(),
            ..Operands::default()
        },
    );
    stub.nop();
    Ok(Image {
        entry: 0xFFFF_FFFF_8000_1000,
        segments: vec![(0x1000, stub.bytes()?), (0x10_0000, kernel.bytes()?)],
    })
}

/// [`mixed_integer`] in the window, its array in the window too, so that
/// under the monitor it runs directly with no exit but its first TLB misses.
pub fn windowed_mixed_integer(outer: u32) -> Result<Image, String> {
    windowed(&mixed_integer_at(0xC000_0000, 0xC010_0000, outer))
}

/// [`mixed_integer_smp`] in the window on every CPU: each CPU (CPU 0 at
/// boot, the others started by the mp device at the same boot stub) wires
/// its own TLB pair for the window, as TLBs are per CPU, and runs its loop
/// on its own array in the window; the done counter is in the window too.
/// Under the monitor every CPU runs directly, leaving it only at its first
/// TLB misses, its mp accesses and the halt.
pub fn windowed_mixed_integer_smp(outer: u32, ncpus: u32) -> Result<Image, String> {
    let window = SmpLayout {
        start: WINDOW_STUB,
        done: 0xC00F_0000,
        arrays: 0xC010_0000,
    };
    windowed(&integer_smp(0xC000_0000, outer, ncpus, window))
}

/// Where [`windowed`]'s boot stub is, in KSEG0.
const WINDOW_STUB: u32 = 0x8000_1000;

/// Where `mixed_integer_smp` puts the code every CPU runs.
const WORK_OFFSET: u32 = 0x100;

/// A minimal kernel in the window, for workloads that exercise the paths a
/// monitor virtualizes: a user process (ASID 1) at 0x00400000, a linear page
/// table at 0xC0800000 walked by a Context-driven refill handler, and a
/// system call handler. Syscall 10 halts with status 0; any other returns.
///
/// Physical layout (8 MB): kernel window 1–3 MB, page table 3–5 MB
/// (a wired 1 MB pair at 0xC0800000), user code at 0x480000, user data
/// pages from 0x500000 (mapped at 0x01000000, `data_pages` of them).
pub(crate) fn minikernel(user: &Asm, data_pages: u32) -> Result<Image, String> {
    use Reg as R;
    const TLBWI: u32 = 0x4200_0002;
    const TLBWR: u32 = 0x4200_0006;
    const ERET: u32 = 0x4200_0018;
    let lo = |pa: u32| ((pa >> 12) << 6) | (3 << 3) | 0b110;
    let mut k = Asm::new(0xC000_0000);
    // Wire the page table: TLB[1] = 0xC0800000, 1 MB pages, physical 3 MB.
    k.imm(Op::Addiu, R::T0, R::ZERO, 1);
    k.mtc0(R::T0, 0);
    k.li(R::T0, 0x001F_E000);
    k.mtc0(R::T0, 5);
    k.li(R::T0, 0xC080_0000);
    k.mtc0(R::T0, 10);
    k.li(R::T0, lo(0x30_0000) | 1);
    k.mtc0(R::T0, 2);
    k.li(R::T0, lo(0x40_0000) | 1);
    k.mtc0(R::T0, 3);
    k.word(TLBWI);
    k.imm(Op::Addiu, R::T0, R::ZERO, 2);
    k.mtc0(R::T0, 6); // Wired = 2
    k.mtc0(R::ZERO, 5); // user pages are 4 KB
    k.li(R::T0, 0xC080_0000);
    k.mtc0(R::T0, 4); // Context.PTEBase
    k.imm(Op::Addiu, R::T0, R::ZERO, 1);
    k.mtc0(R::T0, 10); // ASID 1
    k.li(R::T0, 0x0040_0000);
    k.mtc0(R::T0, 14);
    k.imm(Op::Addiu, R::T0, R::ZERO, 0x12); // KSU = user, EXL
    k.mtc0(R::T0, 12);
    k.word(ERET);
    while k.here() < 0xC000_0100 {
        k.nop();
    }
    // TLB refill, from the linear page table.
    k.mfc0(R::K0, 4);
    k.mem(Op::Lw, R::K1, 0, R::K0);
    k.mtc0(R::K1, 2);
    k.mem(Op::Lw, R::K1, 4, R::K0);
    k.mtc0(R::K1, 3);
    k.word(TLBWR);
    k.word(ERET);
    while k.here() < 0xC000_0200 {
        k.nop();
    }
    // System calls: skip the syscall; number 10 halts.
    k.mfc0(R::K1, 14);
    k.imm(Op::Addiu, R::K1, R::K1, 4);
    k.mtc0(R::K1, 14);
    k.imm(Op::Addiu, R::K0, R::ZERO, 10);
    k.branch(Op::Beq, R::V0, R::K0, "halt");
    k.nop();
    k.word(ERET);
    k.label("halt");
    k.li(R::K0, 0xB000_0010);
    k.mem(Op::Sw, R::ZERO, 0, R::K0);
    k.label("spin");
    k.branch(Op::Beq, R::ZERO, R::ZERO, "spin");
    k.nop();

    // The page table: 16 bytes per VPN2, EntryLo0 and EntryLo1.
    let mut pt = vec![0u8; 0x1_0000];
    let mut put = |vpn2: u32, lo0: u32, lo1: u32| {
        let off = (vpn2 as usize) * 16;
        if let Some(d) = pt.get_mut(off..off + 8) {
            d[..4].copy_from_slice(&lo0.to_be_bytes());
            d[4..].copy_from_slice(&lo1.to_be_bytes());
        }
    };
    put(0x0040_0000 >> 13, lo(0x48_0000), lo(0x48_1000));
    for pair in 0..data_pages.div_ceil(2) {
        let pa = 0x50_0000 + pair * 0x2000;
        put((0x0100_0000 >> 13) + pair, lo(pa), lo(pa + 0x1000));
    }
    let mut img = windowed(&k)?;
    for (origin, target) in [(0x8000_0000u32, 0xC000_0100u32), (0x8000_0180, 0xC000_0200)] {
        let mut v = Asm::new(origin);
        v.li(R::K0, target);
        v.emit(
            Op::Jr,
            Operands {
                rs: R::K0.number(),
                ..Operands::default()
            },
        );
        v.nop();
        img.segments
            .push((u64::from(origin & 0x1FFF_FFFF), v.bytes()?));
    }
    img.segments.push((0x30_0000, pt));
    img.segments.push((0x48_0000, user.bytes()?));
    Ok(img)
}

/// A user process that makes `n` cheap system calls, then exits.
pub fn syscall_loop(n: u32) -> Result<Image, String> {
    use Reg as R;
    let mut u = Asm::new(0x0040_0000);
    u.li(R::S0, n);
    u.label("loop");
    u.imm(Op::Addiu, R::V0, R::ZERO, 1);
    u.word(0x0000_000C);
    u.imm(Op::Addiu, R::S0, R::S0, -1);
    u.branch(Op::Bne, R::S0, R::ZERO, "loop");
    u.nop();
    u.imm(Op::Addiu, R::V0, R::ZERO, 10);
    u.word(0x0000_000C);
    minikernel(&u, 0)
}

/// A user process that reads one word from each of 256 pages, `rounds`
/// times: far more pages than the 48-entry TLB holds.
pub fn tlb_stress(rounds: u32) -> Result<Image, String> {
    use Reg as R;
    const PAGES: u32 = 256;
    let mut u = Asm::new(0x0040_0000);
    u.li(R::S0, rounds);
    u.label("round");
    u.li(R::T0, 0x0100_0000);
    u.li(R::T1, 0x0100_0000 + PAGES * 4096);
    u.label("page");
    u.mem(Op::Lw, R::T2, 0, R::T0);
    u.r3(Op::Addu, R::V1, R::V1, R::T2);
    u.imm(Op::Addiu, R::T0, R::T0, 4096);
    u.branch(Op::Bne, R::T0, R::T1, "page");
    u.nop();
    u.imm(Op::Addiu, R::S0, R::S0, -1);
    u.branch(Op::Bne, R::S0, R::ZERO, "round");
    u.nop();
    u.imm(Op::Addiu, R::V0, R::ZERO, 10);
    u.word(0x0000_000C);
    minikernel(&u, PAGES)
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::dev::Board;
    use crate::machine::{Exit, Machine, MachineConfig};

    fn run(a: &Asm, ncpus: usize) -> Machine {
        let mut m = Machine::new(
            MachineConfig {
                ncpus,
                max_cycles: Some(50_000_000),
                ..MachineConfig::default()
            },
            Board::new(ncpus),
        );
        assert!(m
            .bus
            .write_bytes(u64::from(a.origin() & 0x1FFF_FFFF), &a.bytes().unwrap()));
        m.cpus[0].boot(i64::from(a.origin() as i32) as u64, 0xFFFF_FFFF_8010_0000);
        assert_eq!(m.run(), Exit::Halted { status: 0 });
        m
    }

    #[test]
    fn mixed_integer_halts_with_a_deterministic_count() {
        let a = mixed_integer(0x8000_1000, 3);
        let m1 = run(&a, 1);
        let m2 = run(&a, 1);
        assert_eq!(m1.cpus[0].cycles, m2.cpus[0].cycles);
        assert_eq!(m1.cpus[0].instret, m2.cpus[0].instret);
        assert!(m1.cpus[0].instret > 3 * 512 * 8);
    }

    #[test]
    fn the_malta_build_differs_only_in_its_halt_slot() {
        let t = mixed_integer(0x8000_1000, 7).finish().unwrap();
        let m = mixed_integer_on(0x8000_1000, 0x8020_0000, 7, Halt::Malta)
            .finish()
            .unwrap();
        assert_eq!(t.len(), m.len());
        let diff: Vec<usize> = (0..t.len()).filter(|&i| t[i] != m[i]).collect();
        let (first, last) = (diff[0], diff[diff.len() - 1]);
        assert!(last < first + 4, "{diff:?}");
        // The slot follows the outer loop's BGTZ (and its delay slot).
        assert_eq!(t[first - 2] >> 26, 0x07);
    }

    #[test]
    fn windowed_mixed_integer_runs_natively_in_kernel_mode() {
        let img = windowed_mixed_integer(2).unwrap();
        let mut m = Machine::new(
            MachineConfig {
                max_cycles: Some(50_000_000),
                ..MachineConfig::default()
            },
            Board::new(1),
        );
        assert!(img.load_into(&mut m));
        assert_eq!(m.run(), Exit::Halted { status: 0 });
        assert!(m.cpus[0].instret > 2 * 512 * 8);
    }

    #[test]
    fn mixed_integer_smp_on_one_cpu() {
        let m = run(&mixed_integer_smp(0x8000_1000, 2, 1), 1);
        assert!(m.cpus[0].instret > 2 * 512 * 8);
    }

    /// Every CPU ran its loop on its own array in the window (physical
    /// 2 MB + id * 8 KB): each array word was incremented once a pass.
    #[test]
    fn windowed_mixed_integer_smp_runs_on_every_cpu() {
        let img = windowed_mixed_integer_smp(3, 2).unwrap();
        let mut m = Machine::new(
            MachineConfig {
                ncpus: 2,
                max_cycles: Some(50_000_000),
                ..MachineConfig::default()
            },
            Board::new(2),
        );
        assert!(img.load_into(&mut m));
        assert_eq!(m.run(), Exit::Halted { status: 0 });
        for id in 0..2u64 {
            assert!(m.cpus[id as usize].instret > 3 * 512 * 8);
            let word = m.bus.read_bytes(0x20_0000 + id * 0x2000, 4).unwrap();
            assert_eq!(word, 3u32.to_be_bytes(), "cpu {id}");
        }
    }

    #[test]
    fn minikernel_workloads_halt_natively() {
        for img in [syscall_loop(50).unwrap(), tlb_stress(2).unwrap()] {
            let mut m = Machine::new(
                MachineConfig {
                    ram_bytes: 8 << 20,
                    max_cycles: Some(50_000_000),
                    ..MachineConfig::default()
                },
                Board::new(1),
            );
            assert!(img.load_into(&mut m));
            assert_eq!(m.run(), Exit::Halted { status: 0 });
        }
    }
}
