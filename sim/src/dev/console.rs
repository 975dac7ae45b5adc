//! cons (0x10000000): putchar/getchar at 0x00. Input waits in a queue and
//! asserts IP2 on CPU 0 while any is left; getchar never blocks. (The halt
//! register at cons + 0x10 is its own device, `halt.rs`.)

use std::collections::VecDeque;

use super::{irq, Access, Device};

#[derive(Debug, Default)]
pub struct Console {
    input: VecDeque<u8>,
}

impl Console {
    /// Queues bytes for the guest to read (IP2 is asserted while any wait).
    pub fn push_input(&mut self, bytes: &[u8]) {
        self.input.extend(bytes);
    }
}

impl Device for Console {
    fn read(&mut self, _a: &mut Access<'_>, off: u64) -> Option<u64> {
        match off {
            // getchar: non-blocking, 0 when nothing is waiting.
            0x00 => Some(u64::from(self.input.pop_front().unwrap_or(0))),
            _ => None,
        }
    }

    fn write(&mut self, a: &mut Access<'_>, off: u64, value: u64) -> bool {
        match off {
            0x00 => {
                // putchar: the low byte is the character, whatever the width.
                a.output.push(value as u8);
                true
            }
            _ => false,
        }
    }

    fn irq_lines(&self, cpu: usize) -> u32 {
        if cpu == 0 && !self.input.is_empty() {
            irq::CONS
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
    fn putchar_streams_the_low_byte() {
        let (mut c, mut b) = (Console::default(), Bench::default());
        assert!(b.write(&mut c, 0, 0, 0, 1, u64::from(b'h')));
        assert!(b.write(&mut c, 3, 0, 0, 4, 0x1234_5669));
        assert_eq!(b.output, b"hi");
    }

    #[test]
    fn getchar_is_non_blocking_and_drives_ip2_on_cpu0() {
        let (mut c, mut b) = (Console::default(), Bench::default());
        assert_eq!(b.read(&mut c, 0, 0, 0, 1), Some(0));
        assert_eq!(c.irq_lines(0), 0);
        c.push_input(b"ok");
        assert_eq!(c.irq_lines(0), irq::CONS);
        assert_eq!(c.irq_lines(1), 0, "console input interrupts CPU 0 only");
        assert_eq!(b.read(&mut c, 0, 0, 0, 1), Some(u64::from(b'o')));
        assert_eq!(b.read(&mut c, 0, 0, 0, 1), Some(u64::from(b'k')));
        assert_eq!(c.irq_lines(0), 0, "deasserted once the queue is empty");
        assert_eq!(b.read(&mut c, 0, 0, 0, 1), Some(0));
    }

    #[test]
    fn other_offsets_are_bus_errors() {
        let (mut c, mut b) = (Console::default(), Bench::default());
        assert_eq!(b.read(&mut c, 0, 0, 0x8, 1), None);
        assert!(!b.write(&mut c, 0, 0, 0x4, 1, 0));
        assert!(b.output.is_empty());
    }
}
