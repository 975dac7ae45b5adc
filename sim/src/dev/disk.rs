//! disk (0x13000000): 512-byte sector reads and writes against an image
//! held in memory. The host file is read once by whoever builds the board;
//! it is written back only if the user asks (`--disk-write`).
//!
//! The image is shared and never written: writes go to this disk's own
//! copies of the blocks they touch (copy-on-write), so several VMs can boot
//! from one image, each seeing only its own changes.
//!
//! GXemul's disk has no interrupt. As an extension, a board built with a
//! completion latency raises IP5 on CPU 0 that many cycles after each
//! operation starts, until the guest writes the status register. The
//! transfer still happens when the operation starts, so a driver that polls
//! works either way; the interrupt lets a driver sleep for the modelled
//! service time instead.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{irq, Access, Device};

pub const SECTOR: usize = 512;

#[derive(Debug, Default)]
pub struct Disk {
    base: Option<Arc<[u8]>>,
    /// This disk's copies of the SECTOR-aligned blocks it has written, by
    /// block number (a transfer at an unaligned offset touches two).
    written: BTreeMap<usize, Box<[u8; SECTOR]>>,
    offset: u64,
    id: u64,
    status: u64,
    buffer: Vec<u8>,
    /// Cycles from the start of an operation to its completion interrupt;
    /// `None`: the disk has no interrupt.
    irq_latency: Option<u64>,
    /// When the interrupt of the operation in flight becomes due.
    irq_due: Option<u64>,
    /// IP5 asserted, until the guest acknowledges it.
    irq_pending: bool,
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
    pub(crate) fn new(base: Option<Arc<[u8]>>, irq_latency: Option<u64>) -> Disk {
        Disk {
            base,
            irq_latency,
            buffer: vec![0; SECTOR],
            ..Disk::default()
        }
    }

    /// The image as the guest has left it: the shared image with this
    /// disk's writes applied.
    pub fn contents(&self) -> Option<Vec<u8>> {
        let mut image = self.base.as_deref()?.to_vec();
        for (&block, bytes) in &self.written {
            let start = block * SECTOR;
            if let Some(dst) = image.get_mut(start..start + SECTOR) {
                dst.copy_from_slice(&bytes[..]);
            }
        }
        Some(image)
    }

    /// Whether the guest wrote any sector.
    pub fn modified(&self) -> bool {
        !self.written.is_empty()
    }

    /// Copies `buf` out of (`write` false) or into (`write` true) the
    /// image at byte `start`, block by block.
    fn transfer(&mut self, start: usize, buf: &mut [u8], write: bool) {
        let Some(base) = self.base.as_deref() else {
            return;
        };
        let mut done = 0;
        while done < buf.len() {
            let at = start + done;
            let (block, within) = (at / SECTOR, at % SECTOR);
            let n = (SECTOR - within).min(buf.len() - done);
            let part = &mut buf[done..done + n];
            if write {
                let copy = self.written.entry(block).or_insert_with(|| {
                    let mut b = Box::new([0u8; SECTOR]);
                    let from = &base[block * SECTOR..];
                    let len = from.len().min(SECTOR);
                    b[..len].copy_from_slice(&from[..len]);
                    b
                });
                copy[within..within + n].copy_from_slice(part);
            } else if let Some(copy) = self.written.get(&block) {
                part.copy_from_slice(&copy[within..within + n]);
            } else {
                part.copy_from_slice(&base[at..at + n]);
            }
            done += n;
        }
    }

    /// Runs a read (0) or write (1) of one sector; whether it succeeded.
    /// Only disk 0 exists; a sector that does not lie wholly inside the
    /// image fails (GXemul reports success there).
    fn operate(&mut self, op: u64) -> bool {
        let Some(len) = self.base.as_ref().map(|b| b.len()) else {
            return false;
        };
        let Ok(start) = usize::try_from(self.offset) else {
            return false;
        };
        if self.id != 0 || op > 1 || start.checked_add(SECTOR).is_none_or(|end| end > len) {
            return false;
        }
        let mut buffer = std::mem::take(&mut self.buffer);
        self.transfer(start, &mut buffer, op == 1);
        self.buffer = buffer;
        true
    }
}

impl Device for Disk {
    fn advance(&mut self, now: u64) {
        if self.irq_due.is_some_and(|due| now >= due) {
            self.irq_due = None;
            self.irq_pending = true;
        }
    }

    fn irq_lines(&self, cpu: usize) -> u32 {
        if cpu == 0 && self.irq_pending {
            irq::DISK
        } else {
            0
        }
    }

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
            reg::START_OPERATION => {
                self.status = u64::from(self.operate(value));
                if let Some(latency) = self.irq_latency {
                    self.irq_due = Some(a.now.saturating_add(latency));
                }
            }
            // Status is read-only; a write acknowledges the completion
            // interrupt (and does nothing when there is none).
            reg::STATUS => self.irq_pending = false,
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

    fn disk() -> Disk {
        Disk::new(Some(image().into()), None)
    }

    #[test]
    fn reads_a_sector_into_the_buffer() {
        let (mut d, mut b) = (disk(), Bench::default());
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
        let (mut d, mut b) = (disk(), Bench::default());
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
        let (mut d, mut b) = (disk(), Bench::default());
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
        assert_eq!(d.contents(), Some(image()));
        let (mut none, mut b) = (Disk::new(None, None), Bench::default());
        assert!(b.write(&mut none, 0, 0, reg::START_OPERATION, 4, 0));
        assert_eq!(b.read(&mut none, 0, 0, reg::STATUS, 4), Some(0));
    }

    #[test]
    fn the_offset_has_two_halves() {
        let (mut d, mut b) = (Disk::new(None, None), Bench::default());
        assert!(b.write(&mut d, 0, 0, reg::OFFSET_HIGH32, 4, 0x12));
        assert!(b.write(&mut d, 0, 0, reg::OFFSET, 4, 0x3456_7800));
        assert_eq!(b.read(&mut d, 0, 0, reg::OFFSET_HIGH32, 4), Some(0x12));
        assert_eq!(b.read(&mut d, 0, 0, reg::OFFSET, 4), Some(0x3456_7800));
        assert_eq!(b.read(&mut d, 0, 0, reg::BUFFER + 0x1FC, 8), None);
        assert!(!b.write(&mut d, 0, 0, 0x40, 4, 0));
    }

    /// Two disks over one image: each sees its own writes only, and the
    /// image itself never changes. The write straddles two blocks.
    #[test]
    fn disks_sharing_an_image_see_only_their_own_writes() {
        let shared: Arc<[u8]> = image().into();
        let mut a = Disk::new(Some(shared.clone()), None);
        let mut other = Disk::new(Some(shared.clone()), None);
        let mut b = Bench::default();
        let at = SECTOR as u64 + 100;
        for i in 0..SECTOR as u64 / 4 {
            assert!(b.write(&mut a, 0, 0, reg::BUFFER + 4 * i, 4, 0x5A5A_0000 | i));
        }
        assert!(b.write(&mut a, 0, 0, reg::OFFSET, 8, at));
        assert!(b.write(&mut a, 0, 0, reg::START_OPERATION, 4, 1));
        assert_eq!(a.written.len(), 2, "the write straddles two blocks");
        for (d, want_written) in [(&mut a, true), (&mut other, false)] {
            assert!(b.write(d, 0, 0, reg::OFFSET, 8, at - 4));
            assert!(b.write(d, 0, 0, reg::START_OPERATION, 4, 0));
            let before = b.read(d, 0, 0, reg::BUFFER, 4).unwrap();
            let first = b.read(d, 0, 0, reg::BUFFER + 4, 4).unwrap();
            let orig = |i: usize| {
                u64::from_be_bytes([
                    0,
                    0,
                    0,
                    0,
                    image()[i],
                    image()[i + 1],
                    image()[i + 2],
                    image()[i + 3],
                ])
            };
            assert_eq!(before, orig(at as usize - 4));
            if want_written {
                assert_eq!(first, 0x5A5A_0000);
            } else {
                assert_eq!(first, orig(at as usize));
            }
        }
        assert_eq!(&shared[..], &image()[..]);
        assert!(!other.modified());
        let mut want = image();
        for i in 0..SECTOR / 4 {
            let at = at as usize + 4 * i;
            want[at..at + 4].copy_from_slice(&(0x5A5A_0000u32 | i as u32).to_be_bytes());
        }
        assert_eq!(a.contents(), Some(want));
    }

    /// With a latency, each operation raises IP5 on CPU 0 once that many
    /// cycles have passed (at the next `advance`), the data being there at
    /// once; a write to the status register takes the line down.
    #[test]
    fn the_completion_interrupt_comes_after_the_latency_until_acknowledged() {
        let mut d = Disk::new(Some(image().into()), Some(1000));
        let mut b = Bench::default();
        assert!(b.write(&mut d, 0, 500, reg::OFFSET, 4, 0));
        assert!(b.write(&mut d, 0, 500, reg::START_OPERATION, 4, 0));
        assert_eq!(b.read(&mut d, 0, 500, reg::STATUS, 4), Some(1));
        assert_eq!(
            b.read(&mut d, 0, 500, reg::BUFFER, 1),
            Some(u64::from(image()[0]))
        );
        d.advance(1499);
        assert_eq!(d.irq_lines(0), 0);
        d.advance(1500);
        assert_eq!(d.irq_lines(0), irq::DISK);
        assert_eq!(d.irq_lines(1), 0, "CPU 0 only");
        assert!(b.write(&mut d, 0, 1600, reg::STATUS, 4, 0));
        assert_eq!(d.irq_lines(0), 0);
        // Without a latency there is never an interrupt.
        let mut plain = disk();
        assert!(b.write(&mut plain, 0, 0, reg::START_OPERATION, 4, 0));
        plain.advance(u64::MAX);
        assert_eq!(plain.irq_lines(0), 0);
    }
}
