//! disk (0x13000000): 512-byte sector reads and writes against an image
//! held in memory. The host file is read once by whoever builds the board;
//! it is written back only if the user asks (`--disk-write`).

use super::{Access, Device};

pub const SECTOR: usize = 512;

#[derive(Debug, Default)]
pub struct Disk {
    image: Option<Vec<u8>>,
    offset: u64,
    id: u64,
    status: u64,
    buffer: Vec<u8>,
    /// Whether any sector was written since the image was loaded.
    dirty: bool,
}

/// Register offsets (GXemul's `testmachine/disk.h`).
mod reg {
    pub(super) const OFFSET: u64 = 0x00;
    pub(super) const OFFSET_HIGH32: u64 = 0x08;
    pub(super) const ID: u64 = 0x10;
    pub(super) const START_OPERATION: u64 = 0x20;
    pub(super) const STATUS: u64 = 0x30;
    pub(super) const BUFFER: u64 = 0x4000;
    pub(super) const BUFFER_END: u64 = BUFFER + super::SECTOR as u64;
}

impl Disk {
    pub(crate) fn new(image: Option<Vec<u8>>) -> Disk {
        Disk {
            image,
            buffer: vec![0; SECTOR],
            ..Disk::default()
        }
    }

    /// The image as the guest has left it.
    pub fn contents(&self) -> Option<&[u8]> {
        self.image.as_deref()
    }

    /// Whether the guest wrote any sector.
    pub fn modified(&self) -> bool {
        self.dirty
    }

    /// Runs a read (0) or write (1) of one sector; whether it succeeded.
    /// Only disk 0 exists; a sector that does not lie wholly inside the
    /// image fails (GXemul reports success there).
    fn operate(&mut self, op: u64) -> bool {
        let Some(image) = self.image.as_mut() else {
            return false;
        };
        if self.id != 0 {
            return false;
        }
        let Ok(start) = usize::try_from(self.offset) else {
            return false;
        };
        let Some(sector) = start
            .checked_add(SECTOR)
            .and_then(|end| image.get_mut(start..end))
        else {
            return false;
        };
        match op {
            0 => self.buffer.copy_from_slice(sector),
            1 => {
                sector.copy_from_slice(&self.buffer);
                self.dirty = true;
            }
            _ => return false,
        }
        true
    }
}

impl Device for Disk {
    fn read(&mut self, a: &mut Access<'_>, off: u64) -> Option<u64> {
        match off {
            reg::OFFSET => Some(self.offset & 0xFFFF_FFFF),
            reg::OFFSET_HIGH32 => Some(self.offset >> 32),
            reg::ID => Some(self.id),
            reg::START_OPERATION => Some(0),
            reg::STATUS => Some(self.status),
            reg::BUFFER..reg::BUFFER_END => {
                let start = usize::try_from(off - reg::BUFFER).ok()?;
                let bytes = self
                    .buffer
                    .get(start..start.checked_add(usize::from(a.width))?)?;
                Some(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
            }
            _ => None,
        }
    }

    fn write(&mut self, a: &mut Access<'_>, off: u64, value: u64) -> bool {
        match off {
            reg::OFFSET => {
                self.offset = if a.width == 8 {
                    value
                } else {
                    (self.offset & !0xFFFF_FFFF) | (value & 0xFFFF_FFFF)
                }
            }
            reg::OFFSET_HIGH32 => {
                self.offset = (self.offset & 0xFFFF_FFFF) | ((value & 0xFFFF_FFFF) << 32)
            }
            reg::ID => self.id = value,
            reg::START_OPERATION => self.status = u64::from(self.operate(value)),
            // Status is read-only: writes are ignored.
            reg::STATUS => {}
            reg::BUFFER..reg::BUFFER_END => {
                let Ok(start) = usize::try_from(off - reg::BUFFER) else {
                    return false;
                };
                let w = usize::from(a.width);
                let Some(dst) = start
                    .checked_add(w)
                    .and_then(|end| self.buffer.get_mut(start..end))
                else {
                    return false;
                };
                for (i, b) in dst.iter_mut().enumerate() {
                    *b = (value >> (8 * (w - 1 - i))) as u8;
                }
            }
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::dev::test_access::Bench;

    fn image() -> Vec<u8> {
        (0..4 * SECTOR)
            .map(|i| (i * 7 + i / SECTOR) as u8)
            .collect()
    }

    #[test]
    fn reads_a_sector_into_the_buffer() {
        let (mut d, mut b) = (Disk::new(Some(image())), Bench::default());
        assert!(b.write(&mut d, 0, 0, reg::OFFSET, 4, 2 * SECTOR as u64));
        assert!(b.write(&mut d, 0, 0, reg::START_OPERATION, 4, 0));
        assert_eq!(b.read(&mut d, 0, 0, reg::STATUS, 4), Some(1));
        let want = &image()[2 * SECTOR..2 * SECTOR + 8];
        assert_eq!(
            b.read(&mut d, 0, 0, reg::BUFFER, 8),
            Some(u64::from_be_bytes(want.try_into().unwrap()))
        );
        assert_eq!(
            b.read(&mut d, 0, 0, reg::BUFFER + 1, 1),
            Some(u64::from(want[1]))
        );
    }

    #[test]
    fn writes_change_only_the_in_memory_image() {
        let (mut d, mut b) = (Disk::new(Some(image())), Bench::default());
        for i in 0..SECTOR as u64 / 4 {
            assert!(b.write(&mut d, 0, 0, reg::BUFFER + 4 * i, 4, 0xC0DE_0000 | i));
        }
        assert!(b.write(&mut d, 0, 0, reg::OFFSET, 8, SECTOR as u64));
        assert!(!d.modified());
        assert!(b.write(&mut d, 0, 0, reg::START_OPERATION, 4, 1));
        assert_eq!(b.read(&mut d, 0, 0, reg::STATUS, 4), Some(1));
        assert!(d.modified());
        let c = d.contents().unwrap();
        assert_eq!(&c[SECTOR..SECTOR + 4], &[0xC0, 0xDE, 0, 0]);
        assert_eq!(&c[..SECTOR], &image()[..SECTOR]);
    }

    #[test]
    fn failures_report_status_zero() {
        let (mut d, mut b) = (Disk::new(Some(image())), Bench::default());
        // Past the end, straddling the end, a 64-bit offset, another disk,
        // an unknown operation, no image at all.
        for (offset, id, op) in [
            (4 * SECTOR as u64, 0, 0),
            (4 * SECTOR as u64 - 1, 0, 0),
            (u64::MAX, 0, 1),
            (0, 5, 0),
            (0, 0, 7),
        ] {
            assert!(b.write(&mut d, 0, 0, reg::OFFSET, 8, offset));
            assert!(b.write(&mut d, 0, 0, reg::ID, 4, id));
            assert!(b.write(&mut d, 0, 0, reg::START_OPERATION, 4, op));
            assert_eq!(
                b.read(&mut d, 0, 0, reg::STATUS, 4),
                Some(0),
                "{offset:#x} {id} {op}"
            );
        }
        assert_eq!(d.contents(), Some(image().as_slice()));
        let (mut none, mut b) = (Disk::new(None), Bench::default());
        assert!(b.write(&mut none, 0, 0, reg::START_OPERATION, 4, 0));
        assert_eq!(b.read(&mut none, 0, 0, reg::STATUS, 4), Some(0));
    }

    #[test]
    fn the_offset_has_two_halves() {
        let (mut d, mut b) = (Disk::new(None), Bench::default());
        assert!(b.write(&mut d, 0, 0, reg::OFFSET_HIGH32, 4, 0x12));
        assert!(b.write(&mut d, 0, 0, reg::OFFSET, 4, 0x3456_7800));
        assert_eq!(b.read(&mut d, 0, 0, reg::OFFSET_HIGH32, 4), Some(0x12));
        assert_eq!(b.read(&mut d, 0, 0, reg::OFFSET, 4), Some(0x3456_7800));
        assert_eq!(b.read(&mut d, 0, 0, reg::BUFFER + 0x1FC, 8), None);
        assert!(!b.write(&mut d, 0, 0, 0x40, 4, 0));
    }
}
