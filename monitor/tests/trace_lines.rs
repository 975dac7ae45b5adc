//! The trace format as data (docs/trace-format.md): every monitor event
//! prints as a line that reads back into the same event, for every kind
//! (a sample of each, then thousands of generated ones), and for every
//! event real runs record: trapkit's traps and the coalesced-I/O guests
//! under each policy.

#![allow(clippy::panic, clippy::unwrap_used)]

mod common;
mod iokit;

use monitor::coalesce::{Cut, Policy};
use monitor::obs::{
    file_line, Access, GuestInsn, Half, MonEvent, Place, Reader, Record, ScanOutcome,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sim::cpu::{ExcCode, Mode};
use sim::isa::asm::Asm;

/// VM names with the awkward cases: a dot inside, a default-looking name.
fn names() -> Vec<String> {
    ["trapkit", "vm1", "my.vm", "b"].map(String::from).to_vec()
}

/// Prints `r` as a trace-file line and reads it back with a reader that
/// knows `names`; also checks the line reads back into the same line.
fn round_trip(names: &[String], r: &Record) {
    let mut line = String::new();
    file_line(&mut line, names, r);
    let line = line.strip_suffix('\n').unwrap();
    let mut reader = Reader::new(names.to_vec());
    let back = reader
        .read(line)
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
        .unwrap_or_else(|| panic!("{line:?}: not read as a monitor line"));
    assert_eq!(&back, r, "{line}");
    let mut again = String::new();
    file_line(&mut again, names, &back);
    assert_eq!(again.trim_end(), line);
    assert_eq!(reader.names(), names, "no new VM names: {line}");
}

/// How many kinds of event there are; `kind` numbers them.
const KINDS: usize = 28;

/// The kind of `e`, 0..KINDS. A new variant fails to compile here: give it
/// the next number, raise KINDS and add it to `generate`.
fn kind(e: &MonEvent) -> usize {
    match e {
        MonEvent::Exit { .. } => 0,
        MonEvent::Reflect { .. } => 1,
        MonEvent::Trampoline { .. } => 2,
        MonEvent::Patch { .. } => 3,
        MonEvent::Engine { .. } => 4,
        MonEvent::Cp0Read { .. } => 5,
        MonEvent::Cp0Write { .. } => 6,
        MonEvent::GuestTlbWrite { .. } => 7,
        MonEvent::Composed { .. } => 8,
        MonEvent::L2Hit { .. } => 9,
        MonEvent::L2Miss { .. } => 10,
        MonEvent::GuestEret { .. } => 11,
        MonEvent::Vdev { .. } => 12,
        MonEvent::Interrupt { .. } => 13,
        MonEvent::Wait => 14,
        MonEvent::Switch { .. } => 15,
        MonEvent::Halt { .. } => 16,
        MonEvent::Stop => 17,
        MonEvent::StopReason { .. } => 18,
        MonEvent::RealTlbsFlushed => 19,
        MonEvent::CoalesceScan { .. } => 20,
        MonEvent::CoalesceBlock { .. } => 21,
        MonEvent::CoalesceDrop { .. } => 22,
        MonEvent::RingQueue { .. } => 23,
        MonEvent::RingFlush { .. } => 24,
        MonEvent::BtTranslate { .. } => 25,
        MonEvent::BtBlock { .. } => 26,
        MonEvent::BtSwitch { .. } => 27,
    }
}

fn pick<T: Copy>(rng: &mut SmallRng, xs: &[T]) -> T {
    xs[rng.gen_range(0..xs.len())]
}

/// Any 64-bit physical address or value: small ones mostly, as real ones.
fn wide(rng: &mut SmallRng) -> u64 {
    match rng.gen_range(0..4) {
        0 => rng.gen(),
        1 => rng.gen_range(0..1 << 40),
        _ => u64::from(rng.gen::<u32>()),
    }
}

/// A random event of kind `k`, any field any value its type allows.
fn generate(rng: &mut SmallRng, k: usize, vms: usize) -> MonEvent {
    let modes = [Mode::Kernel, Mode::Supervisor, Mode::User];
    match k {
        0 => MonEvent::exit(
            pick(rng, &ExcCode::ALL),
            rng.gen(),
            rng.gen(),
            rng.gen(),
            pick(rng, &modes),
            rng.gen::<bool>().then(|| rng.gen()),
        ),
        1 => MonEvent::Reflect {
            code: pick(rng, &ExcCode::ALL),
            epc: rng.gen(),
            vector: rng.gen(),
            badvaddr: rng.gen::<bool>().then(|| rng.gen()),
        },
        2 => MonEvent::Trampoline {
            vector: rng.gen(),
            target: rng.gen(),
        },
        3 => MonEvent::patch(rng.gen(), rng.gen(), rng.gen()),
        4 => {
            let pc = rng.gen();
            MonEvent::Engine {
                pc,
                insn: GuestInsn::Word {
                    pc,
                    word: rng.gen(),
                },
            }
        }
        5 => MonEvent::Cp0Read {
            reg: rng.gen_range(0..40),
            value: rng.gen(),
        },
        6 => MonEvent::Cp0Write {
            reg: rng.gen_range(0..40),
            value: rng.gen(),
        },
        7 => MonEvent::GuestTlbWrite {
            index: rng.gen_range(0..64),
            random: rng.gen(),
            vpn2: rng.gen(),
            asid: rng.gen(),
            global: rng.gen(),
            pfn: [rng.gen(), rng.gen()],
        },
        8 => {
            let half = |rng: &mut SmallRng| match rng.gen_range(0..3) {
                0 => Half::Invalid,
                1 => Half::Unbacked { gpa: wide(rng) },
                _ => Half::Mapped {
                    gpa: wide(rng),
                    mpa: wide(rng),
                },
            };
            MonEvent::Composed {
                va: rng.gen(),
                guest_asid: rng.gen(),
                halves: [half(rng), half(rng)],
                masid: rng.gen(),
                index: rng.gen_range(0..48),
            }
        }
        9 => MonEvent::L2Hit {
            va: rng.gen(),
            index: rng.gen_range(0..48),
        },
        10 => MonEvent::L2Miss { va: rng.gen() },
        11 => MonEvent::GuestEret {
            to: rng.gen(),
            mode: pick(rng, &modes),
        },
        12 => MonEvent::Vdev {
            gpa: wide(rng),
            width: rng.gen(),
            value: wide(rng),
            write: rng.gen(),
        },
        13 => MonEvent::Interrupt { pending: rng.gen() },
        14 => MonEvent::Wait,
        15 => MonEvent::Switch {
            to_vm: rng.gen_range(0..vms),
            to_vcpu: rng.gen_range(0..8),
        },
        16 => MonEvent::Halt { status: rng.gen() },
        17 => MonEvent::Stop,
        18 => MonEvent::StopReason {
            reason: pick(
                rng,
                &[
                    "Sys at the exception vector 0x80000180 itself: the guest can never handle it",
                    "the guest wrote 0x00000007 to the halt register: bad value",
                ],
            )
            .to_string(),
        },
        19 => MonEvent::RealTlbsFlushed,
        20 => MonEvent::CoalesceScan {
            pc: rng.gen(),
            scanned: rng.gen(),
            outcome: match rng.gen_range(0..3) {
                0 => ScanOutcome::Single,
                1 => ScanOutcome::Block {
                    size: rng.gen(),
                    accesses: rng.gen(),
                    saving: rng.gen(),
                },
                _ => ScanOutcome::Declined {
                    accesses: rng.gen(),
                    cost: rng.gen(),
                },
            },
        },
        21 => MonEvent::CoalesceBlock {
            pc: rng.gen(),
            insns: rng.gen(),
            accesses: (0..rng.gen_range(0..4))
                .map(|_| Access {
                    gpa: wide(rng),
                    width: rng.gen(),
                    value: wide(rng),
                    write: rng.gen(),
                })
                .collect(),
            resume: rng.gen(),
            cut: rng.gen::<bool>().then(|| pick(rng, &Cut::ALL)),
        },
        22 => MonEvent::CoalesceDrop { pc: rng.gen() },
        23 => MonEvent::RingQueue {
            gpa: wide(rng),
            value: wide(rng),
            queued: rng.gen_range(0..1 << 20),
        },
        24 => MonEvent::RingFlush {
            writes: rng.gen_range(0..1 << 20),
        },
        25 => MonEvent::BtTranslate {
            pc: rng.gen(),
            insns: rng.gen(),
        },
        26 => MonEvent::BtBlock {
            pc: rng.gen(),
            insns: rng.gen(),
        },
        27 => MonEvent::BtSwitch {
            page: rng.gen(),
            translated: rng.gen(),
            why: rng.gen(),
        },
        _ => panic!("no event kind {k}"),
    }
}

fn record(rng: &mut SmallRng, event: MonEvent, vms: usize) -> Record {
    Record {
        cycle: rng.gen(),
        place: Place {
            pcpu: rng.gen_range(0..64),
            vm: rng.gen_range(0..vms),
            vcpu: rng.gen_range(0..8),
        },
        event,
    }
}

#[test]
fn every_kind_reads_back_from_its_line() {
    let names = names();
    let mut rng = SmallRng::seed_from_u64(13);
    for k in 0..KINDS {
        let e = generate(&mut rng, k, names.len());
        assert_eq!(kind(&e), k, "generate({k}) makes {e:?}");
        round_trip(&names, &record(&mut rng, e, names.len()));
    }
}

/// The property over generated events: any event, any fields.
#[test]
fn generated_events_read_back_from_their_lines() {
    let names = names();
    let mut rng = SmallRng::seed_from_u64(0x5EED);
    let mut seen = [0usize; KINDS];
    for _ in 0..20_000 {
        let k = rng.gen_range(0..KINDS);
        let e = generate(&mut rng, k, names.len());
        seen[kind(&e)] += 1;
        round_trip(&names, &record(&mut rng, e, names.len()));
    }
    assert!(
        seen.iter().all(|&n| n > 0),
        "every kind generated: {seen:?}"
    );
}

/// Disassembly does not name one word: `or` and `addu` with `zero` are both
/// `move`. The event read back is equal, since it shows the same.
#[test]
fn instructions_that_print_alike_are_equal() {
    let mut a = Asm::new(0x8000_1000);
    a.r3(
        sim::isa::Op::Addu,
        sim::isa::Reg::T0,
        sim::isa::Reg::A0,
        sim::isa::Reg::ZERO,
    );
    a.r3(
        sim::isa::Op::Or,
        sim::isa::Reg::T0,
        sim::isa::Reg::A0,
        sim::isa::Reg::ZERO,
    );
    let words: Vec<u32> = a
        .bytes()
        .unwrap()
        .chunks(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect();
    let at = |word| GuestInsn::Word {
        pc: 0x8000_1000,
        word,
    };
    assert_ne!(words[0], words[1]);
    assert_eq!(at(words[0]), at(words[1]));
    assert_eq!(at(words[0]), GuestInsn::Text("move t0,a0".into()));
    assert_ne!(at(words[0]), GuestInsn::Text("move t0,a1".into()));
}

/// Every event of real runs: trapkit with every engine instruction, and a
/// console line under each coalescing policy (scans, blocks, rings).
#[test]
fn recorded_runs_read_back_line_by_line() {
    let m = common::run_trapkit();
    let mut kinds = [false; KINDS];
    for r in &m.trace.records {
        kinds[kind(&r.event)] = true;
        round_trip(&m.trace.vm_names, r);
    }
    let mut k = Asm::new(0xC000_0000);
    iokit::call_puts(&mut k, 0);
    iokit::halt(&mut k, iokit::CONS);
    let img = iokit::window(
        &k,
        vec![iokit::puts_segment(), iokit::strings(&["coalesced\n"])],
    );
    for p in Policy::NAMES {
        let m = iokit::monitor_with(&img, Policy::parse(p).unwrap(), iokit::dear_exits());
        for r in &m.trace.records {
            kinds[kind(&r.event)] = true;
            round_trip(&m.trace.vm_names, r);
        }
    }
    let seen = kinds.iter().filter(|&&k| k).count();
    assert!(seen >= 18, "{seen} kinds of event in these runs: {kinds:?}");
}
