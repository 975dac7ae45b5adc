//! disk (0x13000000): 512-byte sector reads and writes against a disk
//! image on the host. The image is read a sector at a time when the guest
//! asks (positioned reads of the host file), so a large image costs no
//! memory and no time to open; it is written back only if the user asks
//! (`--disk-write`), and then only the sectors the guest wrote.
//!
//! The image is shared and never written: writes go to this disk's own
//! copies of the blocks they touch (copy-on-write), so several VMs can boot
//! from one image, each seeing only its own changes. A host read error (the
//! file shrank, an I/O error) fails the operation (status 0), which the
//! guest sees like any other failed operation.
//!
//! GXemul's disk has no interrupt. As an extension, a board built with a
//! completion latency raises IP5 on CPU 0 that many cycles after each
//! operation starts, until the guest writes the status register. The
//! transfer still happens when the operation starts, so a driver that polls
//! works either way; the interrupt lets a driver sleep for the modelled
//! service time instead.

use std::collections::BTreeMap;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use super::{irq, Access, Device};

pub(crate) const SECTOR: usize = 512;
const SECTOR_BYTES: u64 = SECTOR as u64;

/// A disk image: a host file read on demand, or bytes in memory (tests and
/// generated images). Clones share it; nothing ever writes through it.
#[derive(Clone, Debug)]
pub struct DiskImage(Arc<Backing>);

#[derive(Debug)]
enum Backing {
    /// The file and its length when opened (the image's size for the run).
    File {
        file: File,
        len: u64,
    },
    Bytes(Box<[u8]>),
}

impl DiskImage {
    /// Opens a disk image file; nothing is read yet. A missing file,
    /// something that is not a regular file, or an unreadable one is an
    /// error before the guest runs.
    pub fn open(path: &Path) -> std::io::Result<DiskImage> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        Ok(DiskImage(Arc::new(Backing::File {
            file,
            len: meta.len(),
        })))
    }

    /// Image length in bytes.
    pub(crate) fn len(&self) -> u64 {
        match &*self.0 {
            Backing::File { len, .. } => *len,
            Backing::Bytes(b) => b.len() as u64,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` from byte `at`; false past the end or on a host error.
    fn read_at(&self, at: u64, buf: &mut [u8]) -> bool {
        let inside = at
            .checked_add(buf.len() as u64)
            .is_some_and(|end| end <= self.len());
        inside
            && match &*self.0 {
                Backing::File { file, .. } => file.read_exact_at(buf, at).is_ok(),
                Backing::Bytes(b) => usize::try_from(at)
                    .ok()
                    .and_then(|a| b.get(a..a.checked_add(buf.len())?))
                    .map(|src| buf.copy_from_slice(src))
                    .is_some(),
            }
    }
}

/// One image is equal only to itself (its clones): configs compare which
/// image they share, never contents.
impl PartialEq for DiskImage {
    fn eq(&self, other: &DiskImage) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for DiskImage {}

impl From<Vec<u8>> for DiskImage {
    fn from(bytes: Vec<u8>) -> DiskImage {
        DiskImage(Arc::new(Backing::Bytes(bytes.into_boxed_slice())))
    }
}

/// The parts of a transfer of `len` bytes at image offset `start`, one per
/// block it touches (at most two for a sector at an unaligned offset): the
/// block, the range within the block, the range within the transfer.
fn pieces(start: u64, len: usize) -> impl Iterator<Item = (u64, Range<usize>, Range<usize>)> {
    let end = start + len as u64;
    (start / SECTOR_BYTES..=end.saturating_sub(1) / SECTOR_BYTES).map(move |block| {
        let at = block * SECTOR_BYTES;
        let (lo, hi) = (at.max(start), (at + SECTOR_BYTES).min(end));
        // Offsets within a block and within the transfer: at most SECTOR.
        (
            block,
            (lo - at) as usize..(hi - at) as usize,
            (lo - start) as usize..(hi - start) as usize,
        )
    })
}

/// Block `block` of the image (zero past its end); `None` on a host read
/// error.
fn read_block(base: &DiskImage, block: u64) -> Option<Box<[u8; SECTOR]>> {
    let mut b = Box::new([0u8; SECTOR]);
    let at = block * SECTOR_BYTES;
    // At most SECTOR: the block's part inside the image.
    let n = base.len().saturating_sub(at).min(SECTOR_BYTES) as usize;
    base.read_at(at, &mut b[..n]).then_some(b)
}

#[derive(Debug, Default)]
pub struct Disk {
    base: Option<DiskImage>,
    /// This disk's copies of the SECTOR-aligned blocks it has written, by
    /// block number (a transfer at an unaligned offset touches two).
    written: BTreeMap<u64, Box<[u8; SECTOR]>>,
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
    pub(crate) fn new(base: Option<DiskImage>, irq_latency: Option<u64>) -> Disk {
        Disk {
            base,
            irq_latency,
            buffer: vec![0; SECTOR],
            ..Disk::default()
        }
    }

    /// Whether the guest wrote any sector.
    pub fn modified(&self) -> bool {
        !self.written.is_empty()
    }

    /// Writes the sectors the guest wrote into the image file at `path`
    /// (positioned writes; the rest of the file is left as it is).
    pub fn write_back(&self, path: &Path) -> std::io::Result<()> {
        let Some(base) = &self.base else {
            return Ok(());
        };
        let file = std::fs::OpenOptions::new().write(true).open(path)?;
        for (&block, bytes) in &self.written {
            let at = block * SECTOR_BYTES;
            // At most SECTOR: the block's part inside the image.
            let n = base.len().saturating_sub(at).min(SECTOR_BYTES) as usize;
            file.write_all_at(&bytes[..n], at)?;
        }
        Ok(())
    }

    /// Copies `buf` out of (`write` false) or into (`write` true) the
    /// image at byte `start`; false on a host read error, when a write has
    /// changed none of this disk's copies.
    fn transfer(&mut self, start: u64, buf: &mut [u8], write: bool) -> bool {
        let Some(base) = self.base.clone() else {
            return false;
        };
        if !write {
            for (block, within, part) in pieces(start, buf.len()) {
                let ok = match self.written.get(&block) {
                    Some(copy) => {
                        buf[part].copy_from_slice(&copy[within]);
                        true
                    }
                    None => {
                        base.read_at(block * SECTOR_BYTES + within.start as u64, &mut buf[part])
                    }
                };
                if !ok {
                    return false;
                }
            }
            return true;
        }
        // Copy the blocks this disk has not written yet before changing
        // any, so a failed read leaves its copies as they were.
        let mut fresh: [Option<(u64, Box<[u8; SECTOR]>)>; 2] = [None, None];
        for (slot, (block, ..)) in fresh.iter_mut().zip(pieces(start, buf.len())) {
            if !self.written.contains_key(&block) {
                let Some(copy) = read_block(&base, block) else {
                    return false;
                };
                *slot = Some((block, copy));
            }
        }
        self.written.extend(fresh.into_iter().flatten());
        for (block, within, part) in pieces(start, buf.len()) {
            if let Some(copy) = self.written.get_mut(&block) {
                copy[within].copy_from_slice(&buf[part]);
            }
        }
        true
    }

    /// Runs a read (0) or write (1) of one sector; whether it succeeded.
    /// Only disk 0 exists; a sector that does not lie wholly inside the
    /// image fails (GXemul reports success there), and so does a host
    /// read error.
    fn operate(&mut self, op: u64) -> bool {
        let Some(len) = self.base.as_ref().map(DiskImage::len) else {
            return false;
        };
        let start = self.offset;
        if self.id != 0 || op > 1 || start.checked_add(SECTOR_BYTES).is_none_or(|end| end > len) {
            return false;
        }
        let mut buffer = std::mem::take(&mut self.buffer);
        let ok = self.transfer(start, &mut buffer, op == 1);
        self.buffer = buffer;
        ok
    }

    /// Bytes this disk holds in memory (its copies, the buffer, an image
    /// given as bytes): what a test checks to see that opening a large
    /// image read none of it.
    /// The image as the guest has left it (tests: reads all of it).
    #[cfg(test)]
    fn contents(&self) -> Option<Vec<u8>> {
        let base = self.base.as_ref()?;
        let mut image = vec![0; usize::try_from(base.len()).ok()?];
        base.read_at(0, &mut image).then_some(())?;
        for (&block, bytes) in &self.written {
            let start = usize::try_from(block).ok()? * SECTOR;
            let end = (start + SECTOR).min(image.len());
            image
                .get_mut(start..end)?
                .copy_from_slice(&bytes[..end - start]);
        }
        Some(image)
    }

    #[cfg(test)]
    fn resident_bytes(&self) -> usize {
        let image = match self.base.as_ref().map(|b| &*b.0) {
            Some(Backing::Bytes(b)) => b.len(),
            _ => 0,
        };
        image + self.written.len() * SECTOR + self.buffer.len()
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
        let shared = DiskImage::from(image());
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
        assert_eq!(Disk::new(Some(shared), None).contents(), Some(image()));
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

    /// A scratch file for one test, removed when dropped.
    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn sized(name: &str, len: u64) -> TempFile {
            let path = std::env::temp_dir().join(format!("disco-{}-{name}", std::process::id()));
            File::create(&path).unwrap().set_len(len).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// Runs one operation at `offset`; the status it ends with.
    fn operate(d: &mut Disk, b: &mut Bench, offset: u64, op: u64) -> Option<u64> {
        assert!(b.write(d, 0, 0, reg::OFFSET, 8, offset));
        assert!(b.write(d, 0, 0, reg::START_OPERATION, 4, op));
        b.read(d, 0, 0, reg::STATUS, 4)
    }

    /// A 2 GB image (sparse on the host) opens without being read: two
    /// disks over it hold only their buffers and the blocks they write,
    /// each sees its own write near the end and not the other's, and
    /// write-back puts exactly that sector into the file.
    #[test]
    fn a_large_image_is_read_lazily_with_copy_on_write_per_disk() {
        let len = 2u64 << 30;
        let file = TempFile::sized("large.img", len);
        let image = DiskImage::open(&file.0).unwrap();
        assert_eq!(image.len(), len);
        let mut a = Disk::new(Some(image.clone()), None);
        let mut other = Disk::new(Some(image), None);
        let mut b = Bench::default();
        assert!(a.resident_bytes() <= SECTOR && other.resident_bytes() <= SECTOR);
        let at = len - 3 * SECTOR_BYTES;
        assert!(b.write(&mut a, 0, 0, reg::BUFFER, 4, 0xD15C_0001));
        assert_eq!(operate(&mut a, &mut b, at, 1), Some(1));
        for (d, want) in [(&mut a, 0xD15C_0001), (&mut other, 0)] {
            assert!(b.write(d, 0, 0, reg::BUFFER, 4, 0xFFFF_FFFF));
            assert_eq!(operate(d, &mut b, at, 0), Some(1));
            assert_eq!(b.read(d, 0, 0, reg::BUFFER, 4), Some(want));
        }
        assert_eq!(
            a.resident_bytes(),
            2 * SECTOR,
            "one written block and the buffer"
        );
        assert_eq!(other.resident_bytes(), SECTOR);
        // Past the end still fails; the last whole sector works.
        assert_eq!(operate(&mut a, &mut b, len - SECTOR_BYTES + 1, 0), Some(0));
        assert_eq!(operate(&mut a, &mut b, len - SECTOR_BYTES, 0), Some(1));
        a.write_back(&file.0).unwrap();
        let host = File::open(&file.0).unwrap();
        assert_eq!(host.metadata().unwrap().len(), len);
        let mut word = [0u8; 4];
        host.read_exact_at(&mut word, at).unwrap();
        assert_eq!(word, [0xD1, 0x5C, 0, 1]);
        host.read_exact_at(&mut word, at - 4).unwrap();
        assert_eq!(word, [0; 4], "nothing else written");
    }

    /// The host file shrinking under the run makes reads of the lost
    /// sectors fail like any failed operation (status 0), and a write
    /// there changes nothing; sectors still in the file keep working.
    #[test]
    fn a_host_read_error_is_a_failed_operation() {
        let file = TempFile::sized("shrinks.img", 8 * SECTOR_BYTES);
        let mut d = Disk::new(Some(DiskImage::open(&file.0).unwrap()), None);
        let mut b = Bench::default();
        File::options()
            .write(true)
            .open(&file.0)
            .unwrap()
            .set_len(2 * SECTOR_BYTES)
            .unwrap();
        assert_eq!(operate(&mut d, &mut b, 4 * SECTOR_BYTES, 0), Some(0));
        assert_eq!(operate(&mut d, &mut b, 4 * SECTOR_BYTES, 1), Some(0));
        assert!(!d.modified());
        assert_eq!(operate(&mut d, &mut b, SECTOR_BYTES, 1), Some(1));
        assert!(d.modified());
        assert!(
            DiskImage::open(&std::env::temp_dir()).is_err(),
            "a directory"
        );
    }
}
