/*
 * disk - the disk controller: read sectors, write one, read it back,
 * restore it, and check the status register.
 *
 * Run with images/disk.img as disk 0 (GXemul: -d disk.img). The program
 * writes sector 7 and then writes its original contents back, so a
 * passing run leaves the image unchanged; still, give it a copy.
 *
 * Every operation: write the byte offset (DISK_OFFSET, and
 * DISK_OFFSET_HI for the top 32 bits), the disk id, then the operation
 * (0 = read the sector into the 512-byte buffer, 1 = write the buffer).
 * Operations complete at once; DISK_STATUS says whether it worked.
 */
#include "kit.h"

#define NSECTORS 8
#define SCRATCH 7 /* the sector we overwrite and restore */

static u8 saved[DISK_SECTOR];

static u32 disk_op(u32 sector, u32 op)
{
	REG32(DEV_DISK, DISK_OFFSET) = sector * DISK_SECTOR;
	REG32(DEV_DISK, DISK_OFFSET_HI) = 0;
	REG32(DEV_DISK, DISK_ID) = 0;
	REG32(DEV_DISK, DISK_OP) = op;
	return REG32(DEV_DISK, DISK_STATUS);
}

static u8 buf_get(u32 i) { return REG8(DEV_DISK, DISK_BUFFER + i); }
static void buf_put(u32 i, u8 v) { REG8(DEV_DISK, DISK_BUFFER + i) = v; }

/* Byte i of sector n in disk.img (disk-image.S). */
static u8 sector_byte(u32 n, u32 i)
{
	static const char head[] = "disco disk sector ?\n";
	u32 len = sizeof(head) - 1;
	if (i < len)
		return i == 18 ? (u8)('0' + n) : (u8)head[i];
	return (u8)((i * 7 + n) & 0xff);
}

/* Compare the buffer with sector n of the original image. */
static int buffer_is_sector(u32 n)
{
	for (u32 i = 0; i < DISK_SECTOR; i++)
		if (buf_get(i) != sector_byte(n, i))
			return 0;
	return 1;
}

int main(void)
{
	/* Read every sector and check its contents. */
	for (u32 n = 0; n < NSECTORS; n++) {
		KIT_CHECK(disk_op(n, DISK_OP_READ) != 0, 2, "read failed");
		KIT_CHECK(buffer_is_sector(n), 3, "sector contents differ from disk.img");
	}
	kit_puts("disk: read ");
	kit_putdec(NSECTORS);
	kit_puts(" sectors, sector 0 says: ");
	KIT_CHECK(disk_op(0, DISK_OP_READ) != 0, 2, "read failed");
	for (u32 i = 0; buf_get(i) != '\n'; i++)
		kit_putc((char)buf_get(i));
	kit_putc('\n');

	/* Save the scratch sector, overwrite it, read something else into the
	 * buffer, then read the scratch sector back. */
	KIT_CHECK(disk_op(SCRATCH, DISK_OP_READ) != 0, 2, "read failed");
	for (u32 i = 0; i < DISK_SECTOR; i++)
		saved[i] = buf_get(i);
	for (u32 i = 0; i < DISK_SECTOR; i++)
		buf_put(i, (u8)(0xa5 ^ i));
	KIT_CHECK(disk_op(SCRATCH, DISK_OP_WRITE) != 0, 4, "write failed");
	KIT_CHECK(disk_op(1, DISK_OP_READ) != 0, 2, "read failed");
	KIT_CHECK(disk_op(SCRATCH, DISK_OP_READ) != 0, 2, "read failed");
	for (u32 i = 0; i < DISK_SECTOR; i++)
		KIT_CHECK(buf_get(i) == (u8)(0xa5 ^ i), 5, "written sector reads back wrong");
	kit_puts("disk: wrote sector 7 and read it back\n");

	/* Put the original contents back. */
	for (u32 i = 0; i < DISK_SECTOR; i++)
		buf_put(i, saved[i]);
	KIT_CHECK(disk_op(SCRATCH, DISK_OP_WRITE) != 0, 4, "write failed");
	KIT_CHECK(disk_op(SCRATCH, DISK_OP_READ) != 0, 2, "read failed");
	KIT_CHECK(buffer_is_sector(SCRATCH), 6, "restored sector reads back wrong");
	kit_puts("disk: restored sector 7\n");

	/* A disk id with no disk behind it must fail (status 0). GXemul also
	 * prints a diagnostic line of its own here (README.md). What a read
	 * past the end of the image does is not specified (GXemul: status 1),
	 * so we do not try it. */
	REG32(DEV_DISK, DISK_OFFSET) = 0;
	REG32(DEV_DISK, DISK_OFFSET_HI) = 0;
	REG32(DEV_DISK, DISK_ID) = 5;
	REG32(DEV_DISK, DISK_OP) = DISK_OP_READ;
	KIT_CHECK(REG32(DEV_DISK, DISK_STATUS) == 0, 7, "read from a missing disk succeeded");
	kit_puts("disk: missing disk 5 reports failure\n");

	kit_puts("disk: ok\n");
	return KIT_PASS;
}
