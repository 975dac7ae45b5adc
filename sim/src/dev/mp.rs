//! mp (0x11000000): CPU identity and count, starting and pausing CPUs,
//! IPIs, memory size, a deterministic random source and exact cycle counts.

use std::collections::VecDeque;

use super::{irq, Access, BoardAction, Device};

#[derive(Debug, Default)]
pub struct Mp {
    ncpus: usize,
    ram_bytes: u64,
    startup_addr: u64,
    startup_stack: u64,
    pause_addr: u64,
    /// One FIFO of pending IPI numbers per CPU (GXemul's queue misbehaves
    /// with more than one entry; this one does not).
    ipis: Vec<VecDeque<u32>>,
    /// Bit `i`: CPU `i` is paused through pause_cpu.
    paused: u64,
    /// `paused` changed since the machine last looked.
    pub(crate) pause_changed: bool,
    random: u64,
}

/// Register offsets (GXemul's `testmachine/mp.h`).
mod reg {
    pub(super) const WHOAMI: u64 = 0x00;
    pub(super) const NCPUS: u64 = 0x10;
    pub(super) const STARTUPCPU: u64 = 0x20;
    pub(super) const STARTUPADDR: u64 = 0x30;
    pub(super) const PAUSE_ADDR: u64 = 0x40;
    pub(super) const PAUSE_CPU: u64 = 0x50;
    pub(super) const UNPAUSE_CPU: u64 = 0x60;
    pub(super) const STARTUPSTACK: u64 = 0x70;
    pub(super) const HARDWARE_RANDOM: u64 = 0x80;
    pub(super) const MEMORY: u64 = 0x90;
    pub(super) const IPI_ONE: u64 = 0xa0;
    pub(super) const IPI_MANY: u64 = 0xb0;
    pub(super) const IPI_READ: u64 = 0xc0;
    pub(super) const NCYCLES: u64 = 0xd0;
}

/// 32-bit values written to address registers are KSEG addresses: keep them
/// sign-extended, as a 32-bit CPU holds them (GXemul does the same).
fn sext32(v: u64) -> u64 {
    i64::from(v as u32 as i32) as u64
}

/// Bit of CPU `cpu` in a 64-CPU mask (0 for a CPU that cannot exist).
fn bit(cpu: u64) -> u64 {
    1u64.checked_shl(u32::try_from(cpu).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

impl Mp {
    pub(crate) fn new(ncpus: usize, ram_bytes: u64, seed: u64) -> Mp {
        Mp {
            ncpus,
            ram_bytes,
            ipis: vec![VecDeque::new(); ncpus],
            // xorshift has one forbidden state: 0.
            random: if seed == 0 {
                0x2545_F491_4F6C_DD1D
            } else {
                seed
            },
            ..Mp::default()
        }
    }

    pub(crate) fn ipi_pending(&self, cpu: usize) -> bool {
        self.ipis.get(cpu).is_some_and(|q| !q.is_empty())
    }

    /// IPIs queued for `cpu` and not yet read, oldest first.
    pub fn pending_ipis(&self, cpu: usize) -> Vec<u32> {
        self.ipis
            .get(cpu)
            .map(|q| q.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The memory size the memory register reports to software.
    pub fn memory(&self) -> u64 {
        self.ram_bytes
    }

    pub(crate) fn paused(&self, cpu: usize) -> bool {
        self.paused & bit(cpu as u64) != 0
    }

    fn all_cpus(&self) -> u64 {
        if self.ncpus >= 64 {
            u64::MAX
        } else {
            bit(self.ncpus as u64).wrapping_sub(1)
        }
    }

    fn set_paused(&mut self, paused: u64) {
        let paused = paused & self.all_cpus();
        if paused != self.paused {
            self.paused = paused;
            self.pause_changed = true;
        }
    }

    /// The next hardware_random value: xorshift64, deterministic for a seed.
    fn next_random(&mut self) -> u64 {
        let mut x = self.random;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random = x;
        x
    }
}

impl Device for Mp {
    fn read(&mut self, a: &mut Access<'_>, off: u64) -> Option<u64> {
        Some(match off {
            reg::WHOAMI => a.cpu as u64,
            reg::NCPUS => self.ncpus as u64,
            reg::HARDWARE_RANDOM => self.next_random(),
            reg::MEMORY => self.ram_bytes,
            reg::IPI_READ => u64::from(
                self.ipis
                    .get_mut(a.cpu)
                    .and_then(VecDeque::pop_front)
                    .unwrap_or(0),
            ),
            // The reading CPU's own cycle counter: exact.
            reg::NCYCLES => a.now,
            reg::STARTUPADDR => self.startup_addr,
            reg::STARTUPSTACK => self.startup_stack,
            reg::PAUSE_ADDR => self.pause_addr,
            // Write-only registers read as 0.
            reg::STARTUPCPU | reg::PAUSE_CPU | reg::UNPAUSE_CPU | reg::IPI_ONE | reg::IPI_MANY => 0,
            _ => return None,
        })
    }

    fn write(&mut self, a: &mut Access<'_>, off: u64, value: u64) -> bool {
        let addr = if a.width == 8 { value } else { sext32(value) };
        match off {
            reg::STARTUPCPU => {
                // A CPU that does not exist is ignored (GXemul crashes); one
                // already running is left alone (the machine checks).
                if let Ok(target) = usize::try_from(value) {
                    if target < self.ncpus {
                        a.actions.push(BoardAction::StartCpu {
                            cpu: target,
                            pc: self.startup_addr,
                            sp: self.startup_stack,
                        });
                    }
                }
            }
            reg::STARTUPADDR => self.startup_addr = addr,
            reg::STARTUPSTACK => self.startup_stack = addr,
            // Obsolete in GXemul: stored, no effect.
            reg::PAUSE_ADDR => self.pause_addr = addr,
            // Pause every CPU except `value` (GXemul's semantics).
            reg::PAUSE_CPU => self.set_paused(!bit(value)),
            // Resume CPU `value` (GXemul 0.6 and later).
            reg::UNPAUSE_CPU => self.set_paused(self.paused & !bit(value)),
            reg::IPI_ONE | reg::IPI_MANY => {
                let nr = ((value >> 16) & 0xFFFF) as u32;
                let id = (value & 0xFFFF) as usize;
                for (target, q) in self.ipis.iter_mut().enumerate() {
                    let hit = if off == reg::IPI_ONE {
                        target == id
                    } else {
                        target != id
                    };
                    if hit {
                        q.push_back(nr);
                    }
                }
            }
            // ipi_flush: empties the writer's queue.
            reg::IPI_READ => {
                if let Some(q) = self.ipis.get_mut(a.cpu) {
                    q.clear();
                }
            }
            // Read-only registers ignore writes, as GXemul does.
            reg::WHOAMI | reg::NCPUS | reg::HARDWARE_RANDOM | reg::MEMORY | reg::NCYCLES => {}
            _ => return false,
        }
        true
    }

    fn irq_lines(&self, cpu: usize) -> u32 {
        if self.ipi_pending(cpu) {
            irq::MP
        } else {
            0
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::dev::test_access::Bench;

    #[test]
    fn identity_count_memory_and_cycles() {
        let (mut mp, mut b) = (Mp::new(4, 64 << 20, 1), Bench::default());
        assert_eq!(b.read(&mut mp, 3, 0, reg::WHOAMI, 4), Some(3));
        assert_eq!(b.read(&mut mp, 0, 0, reg::NCPUS, 4), Some(4));
        assert_eq!(b.read(&mut mp, 0, 0, reg::MEMORY, 4), Some(64 << 20));
        assert_eq!(b.read(&mut mp, 1, 123_456, reg::NCYCLES, 8), Some(123_456));
        assert_eq!(b.read(&mut mp, 0, 0, 0x08, 4), None);
        assert_eq!(b.read(&mut mp, 0, 0, 0xe0, 4), None);
        assert!(!b.write(&mut mp, 0, 0, 0xf0, 4, 1));
    }

    #[test]
    fn startup_uses_the_latched_address_and_stack() {
        let (mut mp, mut b) = (Mp::new(4, 1 << 20, 1), Bench::default());
        assert!(b.write(&mut mp, 0, 0, reg::STARTUPADDR, 4, 0x8001_0000));
        assert!(b.write(&mut mp, 0, 0, reg::STARTUPSTACK, 4, 0x8002_0000));
        assert!(b.write(&mut mp, 0, 0, reg::STARTUPCPU, 4, 2));
        assert!(b.write(&mut mp, 0, 0, reg::STARTUPCPU, 4, 9));
        assert_eq!(
            b.actions,
            vec![BoardAction::StartCpu {
                cpu: 2,
                pc: 0xFFFF_FFFF_8001_0000,
                sp: 0xFFFF_FFFF_8002_0000
            }]
        );
    }

    #[test]
    fn ipis_are_a_fifo_per_cpu_with_ip6() {
        let (mut mp, mut b) = (Mp::new(3, 1 << 20, 1), Bench::default());
        for nr in [0x11, 0x22, 0x33, 0x44] {
            assert!(b.write(&mut mp, 0, 0, reg::IPI_ONE, 4, (nr << 16) | 1));
        }
        assert_eq!(mp.irq_lines(1), irq::MP);
        assert_eq!(mp.irq_lines(0) | mp.irq_lines(2), 0);
        for nr in [0x11, 0x22, 0x33, 0x44, 0] {
            assert_eq!(b.read(&mut mp, 1, 0, reg::IPI_READ, 4), Some(nr));
        }
        assert_eq!(mp.irq_lines(1), 0);
        assert!(b.write(&mut mp, 2, 0, reg::IPI_MANY, 4, (5 << 16) | 2));
        assert_eq!(mp.pending_ipis(0), vec![5]);
        assert_eq!(mp.pending_ipis(1), vec![5]);
        assert!(mp.pending_ipis(2).is_empty());
        // ipi_flush empties only the writer's queue.
        assert!(b.write(&mut mp, 0, 0, reg::IPI_READ, 4, 0));
        assert!(mp.pending_ipis(0).is_empty());
        assert_eq!(mp.pending_ipis(1), vec![5]);
        // A target that does not exist queues nothing.
        assert!(b.write(&mut mp, 0, 0, reg::IPI_ONE, 4, (1 << 16) | 0xFFFF));
        assert_eq!(mp.pending_ipis(1), vec![5]);
    }

    #[test]
    fn hardware_random_is_deterministic_per_seed() {
        let draw = |seed| {
            let (mut mp, mut b) = (Mp::new(1, 1 << 20, seed), Bench::default());
            (0..4)
                .map(|_| b.read(&mut mp, 0, 0, reg::HARDWARE_RANDOM, 8).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        assert!(draw(0).iter().all(|&v| v != 0));
    }

    /// The sequence is part of the board's documented behaviour
    /// (docs/hardware.md: xorshift64 with shifts 13, 7, 17; seed 0 starts
    /// from 0x2545F4914F6CDD1D), so a guest's run with a given seed gives
    /// the same numbers in every version of the simulator.
    #[test]
    fn hardware_random_is_the_documented_xorshift64() {
        let draw = |seed| {
            let (mut mp, mut b) = (Mp::new(1, 1 << 20, seed), Bench::default());
            (0..3)
                .map(|_| b.read(&mut mp, 0, 0, reg::HARDWARE_RANDOM, 8).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            draw(0),
            [
                0x7f6c_280b_eaa8_e3e7,
                0xe471_1987_1cf9_abe0,
                0x3517_4a41_58b8_a0b7
            ]
        );
        assert_eq!(
            draw(7),
            [
                0x0000_0001_c38e_e1c7,
                0x7001_c712_2401_6dc4,
                0xc158_1fc0_1194_9e1f
            ]
        );
    }

    #[test]
    fn pause_and_unpause() {
        let (mut mp, mut b) = (Mp::new(4, 1 << 20, 1), Bench::default());
        assert!(b.write(&mut mp, 1, 0, reg::PAUSE_CPU, 4, 1));
        assert!(mp.pause_changed);
        assert_eq!(
            (0..4).map(|c| mp.paused(c)).collect::<Vec<_>>(),
            [true, false, true, true]
        );
        assert!(b.write(&mut mp, 1, 0, reg::UNPAUSE_CPU, 4, 3));
        assert!(b.write(&mut mp, 1, 0, reg::UNPAUSE_CPU, 4, 1 << 40));
        assert_eq!(
            (0..4).map(|c| mp.paused(c)).collect::<Vec<_>>(),
            [true, false, true, false]
        );
        assert!(b.write(&mut mp, 1, 0, reg::PAUSE_CPU, 4, 99));
        assert!(
            (0..4).all(|c| mp.paused(c)),
            "pausing all but a missing CPU pauses all"
        );
    }
}
