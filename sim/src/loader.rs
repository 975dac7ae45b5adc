//! ELF32 big-endian MIPS executables (through goblin): segments placed by
//! physical address, the entry point, and the symbol table for traces.
//!
//! GNU ld sets `p_paddr = p_vaddr` unless told otherwise, so a kernel
//! linked at KSEG0 has physical addresses like 0x80010000: a `p_paddr` in
//! KSEG0 or KSEG1 is taken as that segment's physical address (the low
//! 29 bits). Any other `p_paddr` is used as is.

use goblin::elf::{header, program_header, Elf};

/// A program to load: segments at physical addresses and an entry point.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Image {
    pub entry: u64,
    /// (physical address, bytes), `.bss` included as zeros.
    pub segments: Vec<(u64, Vec<u8>)>,
}

impl Image {
    /// Copies the segments into the machine's RAM and boots CPU 0 at the
    /// entry; false if a segment does not fit.
    pub fn load_into(&self, m: &mut crate::machine::Machine) -> bool {
        for (paddr, bytes) in &self.segments {
            if !m.bus.write_bytes(*paddr, bytes) {
                return false;
            }
        }
        if let Some(cpu) = m.cpus.first_mut() {
            cpu.boot(self.entry, INITIAL_SP);
        }
        true
    }
}

/// The stack pointer CPU 0 starts with: where GXemul's testmips puts it
/// (KSEG1 0xA0007F00), so programs written for one run on the other.
pub(crate) const INITIAL_SP: u64 = 0xFFFF_FFFF_A000_7F00;

/// Function and object symbols, sorted by address, for `<name+0x14>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Symbols {
    sorted: Vec<(u64, u64, String)>,
}

impl Symbols {
    /// The symbol containing `addr` (or the nearest one below it) and the
    /// offset into it.
    pub fn lookup(&self, addr: u64) -> Option<(&str, u64)> {
        let addr32 = addr & 0xFFFF_FFFF;
        let i = self.sorted.partition_point(|(a, _, _)| *a <= addr32);
        let (start, size, name) = self.sorted.get(i.checked_sub(1)?)?;
        let off = addr32 - start;
        // Past a sized symbol's end: not inside it, unless nothing better.
        if *size != 0 && off >= *size && off > 0x1000 {
            return None;
        }
        Some((name.as_str(), off))
    }

    /// `name+0x14`, or `name` at offset 0.
    pub(crate) fn describe(&self, addr: u64) -> Option<String> {
        self.lookup(addr).map(|(n, off)| {
            if off == 0 {
                n.to_string()
            } else {
                format!("{n}+{off:#x}")
            }
        })
    }

    /// The address of symbol `name`.
    pub fn address_of(&self, name: &str) -> Option<u64> {
        self.sorted
            .iter()
            .find(|(_, _, n)| n == name)
            .map(|(a, _, _)| *a)
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }
}

/// Why an ELF file cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("not an ELF file (no \\x7fELF magic)")]
    NotElf,
    #[error("truncated ELF header ({len} bytes)")]
    TruncatedHeader { len: usize },
    #[error("ELF class {class} is not ELF32 (this machine runs 32-bit MIPS executables)")]
    WrongClass { class: u8 },
    #[error("little-endian ELF; the simulated R4000 is big-endian")]
    WrongEndian,
    #[error("ELF machine {machine} is not MIPS (8)")]
    WrongMachine { machine: u16 },
    #[error("ELF type {kind} is not an executable (ET_EXEC)")]
    NotExecutable { kind: u16 },
    #[error("malformed ELF: {0}")]
    Malformed(String),
    #[error("truncated file: the {what} run past the end of the file ({len} bytes)")]
    TruncatedTable { what: &'static str, len: usize },
    #[error("program header {index}: its {what} run past the end of the file ({len} bytes)")]
    TruncatedSegment {
        index: usize,
        what: &'static str,
        len: usize,
    },
    #[error("no loadable segment")]
    NoSegments,
    #[error("segment at physical {paddr:#x} (+{size:#x}) lies outside RAM ({ram:#x} bytes)")]
    OutsideRam { paddr: u64, size: u64, ram: u64 },
    #[error("segments at physical {a:#x} and {b:#x} overlap")]
    Overlap { a: u64, b: u64 },
    #[error("entry point {entry:#x} lies outside every loadable segment")]
    EntryOutside { entry: u64 },
}

/// Physical address of a segment from its `p_paddr`.
fn physical(paddr: u64) -> u64 {
    let p32 = paddr & 0xFFFF_FFFF;
    if (0x8000_0000..0xC000_0000).contains(&p32) {
        p32 & 0x1FFF_FFFF
    } else {
        paddr
    }
}

/// Parses `bytes` as an executable for a machine with `ram` bytes of RAM.
pub fn load(bytes: &[u8], ram: u64) -> Result<(Image, Symbols), LoadError> {
    check_identity(bytes)?;
    let elf = Elf::parse(bytes).map_err(|e| LoadError::Malformed(e.to_string()))?;
    if elf.header.e_machine != header::EM_MIPS {
        return Err(LoadError::WrongMachine {
            machine: elf.header.e_machine,
        });
    }
    if elf.header.e_type != header::ET_EXEC {
        return Err(LoadError::NotExecutable {
            kind: elf.header.e_type,
        });
    }
    let segments = loadable_segments(&elf, bytes, ram)?;
    let entry = elf.entry;
    let entry32 = entry & 0xFFFF_FFFF;
    let inside = segments.iter().any(|(_, d, vaddr)| {
        let v = vaddr & 0xFFFF_FFFF;
        entry32 >= v && entry32 < v + d.len() as u64
    });
    if !inside {
        return Err(LoadError::EntryOutside { entry });
    }
    let symbols = symbols_of(&elf);
    // A 32-bit entry point held sign-extended, as every address is.
    let entry = i64::from(entry32 as u32 as i32) as u64;
    Ok((
        Image {
            entry,
            segments: segments.into_iter().map(|(p, d, _)| (p, d)).collect(),
        },
        symbols,
    ))
}

/// The checks made before goblin parses the file: the magic, a 32-bit
/// big-endian ELF, and header tables inside the file (said plainly, where
/// goblin would report a bare offset).
fn check_identity(bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() < 4 || bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err(LoadError::NotElf);
    }
    if bytes.len() < 52 {
        return Err(LoadError::TruncatedHeader { len: bytes.len() });
    }
    let class = bytes.get(header::EI_CLASS).copied().unwrap_or(0);
    if class != header::ELFCLASS32 {
        return Err(LoadError::WrongClass { class });
    }
    if bytes.get(header::EI_DATA).copied() != Some(header::ELFDATA2MSB) {
        return Err(LoadError::WrongEndian);
    }
    let be16 = |o: usize| {
        bytes
            .get(o..o + 2)
            .map_or(0, |b| u64::from(u16::from_be_bytes([b[0], b[1]])))
    };
    let be32 = |o: usize| {
        bytes.get(o..o + 4).map_or(0, |b| {
            u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        })
    };
    for (what, off, entsize, num) in [
        ("program headers", be32(28), be16(42), be16(44)),
        ("section headers", be32(32), be16(46), be16(48)),
    ] {
        if num > 0 && off + entsize * num > bytes.len() as u64 {
            return Err(LoadError::TruncatedTable {
                what,
                len: bytes.len(),
            });
        }
    }
    Ok(())
}

/// The loadable segments of `elf` as (physical address, contents padded
/// to their memory size, virtual address): each inside RAM, none
/// overlapping another, at least one.
fn loadable_segments(
    elf: &Elf<'_>,
    bytes: &[u8],
    ram: u64,
) -> Result<Vec<(u64, Vec<u8>, u64)>, LoadError> {
    let mut segments: Vec<(u64, Vec<u8>, u64)> = Vec::new();
    for (index, ph) in elf.program_headers.iter().enumerate() {
        if ph.p_type != program_header::PT_LOAD || ph.p_memsz == 0 {
            continue;
        }
        let start = usize::try_from(ph.p_offset).unwrap_or(usize::MAX);
        let size = usize::try_from(ph.p_filesz).unwrap_or(usize::MAX);
        let data = start
            .checked_add(size)
            .and_then(|end| bytes.get(start..end))
            .ok_or(LoadError::TruncatedSegment {
                index,
                what: "contents",
                len: bytes.len(),
            })?;
        if ph.p_memsz < ph.p_filesz {
            return Err(LoadError::Malformed(format!(
                "program header {index}: memory size {:#x} below file size {:#x}",
                ph.p_memsz, ph.p_filesz
            )));
        }
        let paddr = physical(ph.p_paddr);
        let end = paddr.checked_add(ph.p_memsz);
        if end.is_none_or(|e| e > ram) {
            return Err(LoadError::OutsideRam {
                paddr,
                size: ph.p_memsz,
                ram,
            });
        }
        let mut contents = data.to_vec();
        contents.resize(usize::try_from(ph.p_memsz).unwrap_or(0), 0);
        segments.push((paddr, contents, ph.p_vaddr));
    }
    if segments.is_empty() {
        return Err(LoadError::NoSegments);
    }
    let mut spans: Vec<(u64, u64)> = segments
        .iter()
        .map(|(p, d, _)| (*p, d.len() as u64))
        .collect();
    spans.sort_unstable();
    for pair in spans.windows(2) {
        if let [(a, alen), (b, _)] = pair {
            if a + alen > *b {
                return Err(LoadError::Overlap { a: *a, b: *b });
            }
        }
    }
    Ok(segments)
}

/// The function, object and untyped symbols of `elf` with an address.
fn symbols_of(elf: &Elf<'_>) -> Symbols {
    let mut sorted: Vec<(u64, u64, String)> = elf
        .syms
        .iter()
        .filter(|s| {
            s.st_value != 0
                && (s.is_function()
                    || s.st_type() == goblin::elf::sym::STT_OBJECT
                    || s.st_type() == goblin::elf::sym::STT_NOTYPE)
        })
        .filter_map(|s| {
            let name = elf.strtab.get_at(s.st_name)?;
            (!name.is_empty() && !name.starts_with('$'))
                .then(|| (s.st_value & 0xFFFF_FFFF, s.st_size, name.to_string()))
        })
        .collect();
    sorted.sort();
    sorted.dedup_by_key(|(a, _, _)| *a);
    Symbols { sorted }
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_with_a_reason() {
        assert_eq!(load(b"hello", 1 << 20), Err(LoadError::NotElf));
        assert_eq!(
            load(b"\x7fELF", 1 << 20),
            Err(LoadError::TruncatedHeader { len: 4 })
        );
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        assert_eq!(load(&h, 1 << 20), Err(LoadError::WrongClass { class: 2 }));
        h[4] = 1;
        h[5] = 1;
        assert_eq!(load(&h, 1 << 20), Err(LoadError::WrongEndian));
    }

    #[test]
    fn kseg_physical_addresses_are_folded() {
        assert_eq!(physical(0x8001_0000), 0x1_0000);
        assert_eq!(physical(0xFFFF_FFFF_A000_1000), 0x1000);
        assert_eq!(physical(0x0010_0000), 0x10_0000);
    }
}
