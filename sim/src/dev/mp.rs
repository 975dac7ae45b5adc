//! mp (0x11000000): CPU identity and count, starting CPUs, IPIs, memory
//! size, a deterministic random source and exact cycle counts.

use std::collections::VecDeque;

use super::BoardAction;

#[derive(Debug, Default)]
pub struct Mp {
    ncpus: usize,
    ram_bytes: u64,
    startup_addr: u64,
    startup_stack: u64,
    /// One FIFO of pending IPI numbers per CPU (GXemul's queue misbehaves
    /// with more than one entry; this one does not).
    ipis: Vec<VecDeque<u32>>,
    random: u64,
}

/// 32-bit values written to address registers are KSEG addresses: keep them
/// sign-extended, as a 32-bit CPU holds them.
fn sext32(v: u64) -> u64 {
    i64::from(v as u32 as i32) as u64
}

impl Mp {
    pub(crate) fn new(ncpus: usize, ram_bytes: u64, seed: u64) -> Mp {
        Mp {
            ncpus,
            ram_bytes,
            ipis: vec![VecDeque::new(); ncpus],
            random: seed | 1,
            ..Mp::default()
        }
    }

    pub(crate) fn ipi_pending(&self, cpu: usize) -> bool {
        self.ipis.get(cpu).is_some_and(|q| !q.is_empty())
    }

    pub(crate) fn read(&mut self, cpu: usize, now: u64, off: u64) -> Option<u64> {
        Some(match off {
            0x00 => cpu as u64,
            0x10 => self.ncpus as u64,
            0x80 => {
                // xorshift64: deterministic for a given seed.
                let mut x = self.random;
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                self.random = x;
                x & 0xFFFF_FFFF
            }
            0x90 => self.ram_bytes,
            0xC0 => u64::from(
                self.ipis
                    .get_mut(cpu)
                    .and_then(VecDeque::pop_front)
                    .unwrap_or(0),
            ),
            0xD0 => now,
            0x20 | 0x30 | 0x40 | 0x50 | 0x60 | 0x70 | 0xA0 | 0xB0 => 0,
            _ => return None,
        })
    }

    pub(crate) fn write(
        &mut self,
        cpu: usize,
        off: u64,
        width: u8,
        value: u64,
        actions: &mut Vec<BoardAction>,
    ) -> bool {
        let v = if width == 8 { value } else { sext32(value) };
        match off {
            0x20 => {
                let target = (value & 0xFFFF_FFFF) as usize;
                // A CPU that does not exist is ignored (GXemul crashes).
                if target < self.ncpus {
                    actions.push(BoardAction::StartCpu {
                        cpu: target,
                        pc: self.startup_addr,
                        sp: self.startup_stack,
                    });
                }
            }
            0x30 => self.startup_addr = v,
            0x70 => self.startup_stack = v,
            // pause_addr, pause_cpu, unpause_cpu: accepted, no effect (GXemul
            // documents them as obsolete).
            0x40 | 0x50 | 0x60 => {}
            0xA0 | 0xB0 => {
                let nr = ((value >> 16) & 0xFFFF) as u32;
                let id = (value & 0xFFFF) as usize;
                for (target, q) in self.ipis.iter_mut().enumerate() {
                    let hit = if off == 0xA0 {
                        target == id
                    } else {
                        target != id
                    };
                    if hit {
                        q.push_back(nr);
                    }
                }
            }
            0xC0 => {
                if let Some(q) = self.ipis.get_mut(cpu) {
                    q.clear();
                }
            }
            _ => return false,
        }
        true
    }
}
