//! disk (0x13000000): 512-byte sector reads and writes against an image
//! held in memory; the host file is never written.

const SECTOR: usize = 512;

#[derive(Debug, Default)]
pub struct Disk {
    image: Option<Vec<u8>>,
    offset: u64,
    id: u64,
    status: u64,
    buffer: Vec<u8>,
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

    pub(crate) fn read(&mut self, off: u64, width: u8) -> Option<u64> {
        match off {
            0x00 => Some(self.offset & 0xFFFF_FFFF),
            0x08 => Some(self.offset >> 32),
            0x10 => Some(self.id),
            0x30 => Some(self.status),
            0x4000..=0x41FF => {
                let start = usize::try_from(off - 0x4000).ok()?;
                let bytes = self.buffer.get(start..start + usize::from(width))?;
                Some(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
            }
            _ => None,
        }
    }

    pub(crate) fn write(&mut self, off: u64, width: u8, value: u64) -> bool {
        match off {
            0x00 => {
                self.offset = if width == 8 {
                    value
                } else {
                    (self.offset & !0xFFFF_FFFF) | (value & 0xFFFF_FFFF)
                }
            }
            0x08 => self.offset = (self.offset & 0xFFFF_FFFF) | ((value & 0xFFFF_FFFF) << 32),
            0x10 => self.id = value,
            0x20 => self.status = u64::from(self.operate(value)),
            0x4000..=0x41FF => {
                let Ok(start) = usize::try_from(off - 0x4000) else {
                    return false;
                };
                let w = usize::from(width);
                let Some(dst) = self.buffer.get_mut(start..start + w) else {
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

    /// Runs a read (0) or write (1) of one sector; whether it succeeded.
    /// Only disk 0 exists; a sector past the end fails (GXemul reports
    /// success there).
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
            1 => sector.copy_from_slice(&self.buffer),
            _ => return false,
        }
        true
    }
}
