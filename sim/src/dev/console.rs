//! cons (0x10000000): putchar/getchar at 0x00, halt at 0x10.

use std::collections::VecDeque;

use super::BoardAction;

#[derive(Debug, Default)]
pub struct Console {
    input: VecDeque<u8>,
}

impl Console {
    /// Queues bytes for the guest to read (IP2 is asserted while any wait).
    pub fn push_input(&mut self, bytes: &[u8]) {
        self.input.extend(bytes);
    }

    pub(crate) fn interrupting(&self) -> bool {
        !self.input.is_empty()
    }

    pub(crate) fn read(&mut self, off: u64) -> Option<u64> {
        match off {
            // getchar: non-blocking, 0 when nothing is waiting.
            0x00 => Some(u64::from(self.input.pop_front().unwrap_or(0))),
            0x10 => Some(0),
            _ => None,
        }
    }

    pub(crate) fn write(
        &mut self,
        off: u64,
        value: u64,
        out: &mut Vec<u8>,
        actions: &mut Vec<BoardAction>,
    ) -> bool {
        match off {
            0x00 => {
                // The low byte is the character.
                out.push(value as u8);
                true
            }
            0x10 => {
                // The halt value becomes the exit status (GXemul ignores it).
                actions.push(BoardAction::Halt {
                    status: value as u32,
                });
                true
            }
            _ => false,
        }
    }
}
