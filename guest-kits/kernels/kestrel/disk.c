/*
 * disk.c - the board's disk, and kfs: the read-only file system execv
 * looks in before the programs linked into the kernel.
 *
 * An operation completes during the store that starts it (on GXemul and on
 * disco alike), so a driver may read the status right after. disco can
 * also give the disk a completion interrupt (`--disk-irq CYCLES`: IP5 on
 * CPU 0, that many cycles after the start, until the status register is
 * written), which GXemul's disk does not have. kfs_mount probes for it;
 * when it is there, a process that reads a sector sleeps until the
 * interrupt handler wakes it, and other processes run meanwhile. A sleep
 * lets the BKL go, so the controller (one buffer) then has a sleep lock of
 * its own. Without the interrupt the driver polls, under the BKL.
 *
 * kfs layout (big-endian, built by kfs.S): sectors 0-3 are the directory,
 * "KFS1", 12 reserved bytes, then up to KFS_MAXENT entries of 32 bytes
 * (name, NUL-padded, 20 bytes; byte offset of the file, a multiple of 512;
 * size in bytes; 4 reserved), ended by an entry whose name is empty.
 */
#include "kern.h"

#define DISK_OFFSET	0x00
#define DISK_OFFSET_HI	0x08
#define DISK_ID		0x10
#define DISK_OP		0x20
#define DISK_STATUS	0x30
#define DISK_BUFFER	0x4000
#define DISK_OP_READ	0

#define KFS_DIRSECTORS	4
#define KFS_MAXENT	63

struct kfs_ent {
	char name[20];
	uint32_t offset, size, reserved;
};

static union {
	struct {
		char magic[4];
		uint32_t reserved[3];
		struct kfs_ent ent[KFS_MAXENT];
	} d;
	uint32_t words[KFS_DIRSECTORS * SECTOR_SIZE / 4];
} kfs_dir;
static int kfs_nfiles = -1;	/* -1: no kfs disk */

#define DISK_PROBE_COUNTS 50000	/* how long kfs_mount waits for IP5 */
static int disk_irq;		/* the disk interrupts on completion */
static volatile int disk_done;	/* set by disk_intr */
static volatile int disk_busy;	/* sleep lock on the controller */

/* IP5: acknowledge, and wake whoever waits for the operation. */
void disk_intr(void)
{
	mmio_wr(DISK_BASE + DISK_STATUS, 0);
	disk_done = 1;
	kwakeup((void *)&disk_done);
}

/* Spin with only IP5 enabled until disk_intr has run or `counts` Count
 * ticks have passed (0: no limit). For boot, when nothing can sleep. */
static void disk_spin_for_irq(uint32_t counts)
{
	uint32_t st = rd_status();
	wr_status((st & ~ST_IM_MASK) | ST_IM(IRQ_DISK) | ST_IE);
	for (uint32_t t0 = rd_count(); !disk_done && (!counts || rd_count() - t0 < counts);)
		;
	wr_status(st);
}

/* Read sector `sector` of disk 0 into buf; 0, or -1 if the disk says no. */
static int disk_read(uint32_t sector, uint32_t *buf)
{
	int sleep = disk_irq && curcpu->cur;
	if (sleep)
		sleeplock_acquire(&disk_busy);
	disk_done = 0;
	mmio_wr(DISK_BASE + DISK_OFFSET, sector * SECTOR_SIZE);
	mmio_wr(DISK_BASE + DISK_OFFSET_HI, 0);
	mmio_wr(DISK_BASE + DISK_ID, 0);
	mmio_wr(DISK_BASE + DISK_OP, DISK_OP_READ);
	if (sleep) {
		while (!disk_done)
			ksleep((void *)&disk_done);
	} else if (disk_irq) {
		disk_spin_for_irq(0);
	}
	int ok = mmio_rd(DISK_BASE + DISK_STATUS) != 0;
	for (int i = 0; ok && i < SECTOR_SIZE / 4; i++)
		buf[i] = mmio_rd(DISK_BASE + DISK_BUFFER + 4 * i);
	if (sleep)
		sleeplock_release(&disk_busy);
	return ok ? 0 : -1;
}

void kfs_mount(void)
{
	for (int s = 0; s < KFS_DIRSECTORS; s++)
		if (disk_read(s, kfs_dir.words + s * (SECTOR_SIZE / 4)) < 0)
			return;		/* no disk, or a smaller one: no kfs */
	if (memcmp(kfs_dir.d.magic, "KFS1", 4) != 0)
		return;
	int n = 0;
	while (n < KFS_MAXENT && kfs_dir.d.ent[n].name[0]) {
		struct kfs_ent *e = &kfs_dir.d.ent[n];
		if (e->name[sizeof(e->name) - 1] || e->offset % SECTOR_SIZE ||
		    e->size > KFS_MAXFILE) {
			kprintf("kestrel: disk: kfs entry %d is bad; ignoring the disk\n", n);
			return;
		}
		n++;
	}
	kfs_nfiles = n;
	/* The reads above raised IP5 if the disk has a completion interrupt. */
	disk_spin_for_irq(DISK_PROBE_COUNTS);
	disk_irq = disk_done;
	kprintf("kestrel: disk: kfs, %d files%s\n", n,
		disk_irq ? ", completion interrupt (IP5)" : "");
}

/* Load file `name` into buf (KFS_MAXFILE bytes); its size, or -1 if
 * there is no such file or the disk fails. */
int kfs_load(const char *name, uint8_t *buf)
{
	for (int i = 0; i < kfs_nfiles; i++) {
		struct kfs_ent *e = &kfs_dir.d.ent[i];
		if (strcmp(e->name, name) != 0)
			continue;
		uint32_t first = e->offset / SECTOR_SIZE;
		for (uint32_t done = 0; done < e->size; done += SECTOR_SIZE)
			if (disk_read(first + done / SECTOR_SIZE, (uint32_t *)(buf + done)) < 0)
				return -1;
		return e->size;
	}
	return -1;
}
