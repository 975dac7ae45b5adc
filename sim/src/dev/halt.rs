//! halt (cons + 0x10): any write powers the machine off; the value written
//! becomes the process exit status (GXemul stops too but ignores the value).

use super::{Access, BoardAction, Device};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Halt;

impl Device for Halt {
    fn read(&mut self, _a: &mut Access<'_>, off: u64) -> Option<u64> {
        // Reads as 0 and does not halt: only a write carries a status.
        (off == 0).then_some(0)
    }

    fn write(&mut self, a: &mut Access<'_>, off: u64, value: u64) -> bool {
        if off != 0 {
            return false;
        }
        a.actions.push(BoardAction::Halt {
            // The low 32 bits; the process exit status is its low 8 bits.
            status: value as u32,
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::test_access::Bench;

    #[test]
    fn a_write_halts_with_its_value() {
        let mut b = Bench::default();
        assert!(b.write(&mut Halt, 2, 0, 0, 4, 0x2a));
        assert_eq!(b.actions, vec![BoardAction::Halt { status: 0x2a }]);
        assert_eq!(b.read(&mut Halt, 0, 0, 0, 1), Some(0));
        assert!(!b.write(&mut Halt, 0, 0, 4, 1, 0));
        assert_eq!(b.actions.len(), 1);
    }
}
