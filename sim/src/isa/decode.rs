//! Word → [`Insn`], driven by the opcode table. Total: every word decodes,
//! unknown encodings to [`Op::Reserved`].

use std::sync::OnceLock;

use super::insn::Insn;
use super::opcodes::{Op, OPCODES};

/// Lookup structures derived once from `OPCODES`.
struct Index {
    /// SPECIAL rows by funct.
    special: [Op; 64],
    /// REGIMM rows by rt.
    regimm: [Op; 32],
    /// For every other primary opcode, the rows that can match it, most
    /// specific first.
    by_primary: Vec<Vec<usize>>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut special = [Op::Reserved; 64];
        let mut regimm = [Op::Reserved; 32];
        let mut by_primary: Vec<Vec<usize>> = vec![Vec::new(); 64];
        for (i, row) in OPCODES.iter().enumerate() {
            let primary = (row.match_bits >> 26) as usize;
            match primary {
                0 => {
                    if let Some(slot) = special.get_mut((row.match_bits & 63) as usize) {
                        *slot = row.op;
                    }
                }
                1 => {
                    if let Some(slot) = regimm.get_mut(((row.match_bits >> 16) & 31) as usize) {
                        *slot = row.op;
                    }
                }
                _ => {
                    if let Some(rows) = by_primary.get_mut(primary) {
                        rows.push(i);
                    }
                }
            }
        }
        for rows in &mut by_primary {
            // Fallback rows last, so specific encodings win.
            rows.sort_by_key(|&i| OPCODES.get(i).is_some_and(|r| r.fallback));
        }
        Index {
            special,
            regimm,
            by_primary,
        }
    })
}

/// Decodes one instruction word.
pub fn decode(word: u32) -> Insn {
    let idx = index();
    let primary = (word >> 26) as usize;
    let op = match primary {
        0 => idx.special[(word & 63) as usize],
        1 => idx.regimm[((word >> 16) & 31) as usize],
        _ => idx
            .by_primary
            .get(primary)
            .and_then(|rows| {
                rows.iter().find_map(|&i| {
                    OPCODES
                        .get(i)
                        .filter(|r| word & r.mask == r.match_bits)
                        .map(|r| r.op)
                })
            })
            .unwrap_or(Op::Reserved),
    };
    Insn::from_fields(op, word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::opcodes::OPCODES;

    #[test]
    fn table_rows_are_in_enum_order() {
        for (i, row) in OPCODES.iter().enumerate() {
            assert_eq!(row.op as usize, i, "row {} ({}) out of order", i, row.name);
        }
    }

    #[test]
    fn every_row_decodes_to_itself() {
        for row in OPCODES {
            assert_eq!(decode(row.match_bits).op, row.op, "{}", row.name);
        }
    }

    #[test]
    fn no_two_specific_rows_overlap() {
        for (i, a) in OPCODES.iter().enumerate() {
            for b in OPCODES.iter().skip(i + 1) {
                if a.fallback || b.fallback {
                    continue;
                }
                let common = a.mask & b.mask;
                assert_ne!(
                    a.match_bits & common,
                    b.match_bits & common,
                    "{} and {} overlap",
                    a.name,
                    b.name
                );
            }
        }
    }

    #[test]
    fn reserved_encodings() {
        // MOVZ (MIPS IV), SPECIAL2 MUL, PREF, opcode 0x33: all RI on the R4000.
        for word in [0x0000_000A, 0x7000_0002, 0xCC00_0000, 0xEC00_0000] {
            assert_eq!(decode(word).op, Op::Reserved, "{word:#x}");
        }
        // BC0F is recommended RI (`../shared/docs/r4000-reference.md` §5.5).
        assert_eq!(decode(0x4100_0000).op, Op::Reserved);
        // An unassigned CO function is a no-op on the R4000.
        assert_eq!(decode(0x4200_0003).op, Op::Cop0Nop);
    }
}
