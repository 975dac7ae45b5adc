/*
 * disk-image.S - the contents of images/disk.img, the disk the `disk`
 * program reads and writes. Assembled and turned into a raw binary with
 * objcopy, so the image is reproducible and needs no host tools.
 *
 * 8 sectors of 512 bytes. Sector n starts with the text
 * "disco disk sector n\n"; every following byte at offset i is
 * (i * 7 + n) & 0xff (see sector_byte() in disk.c).
 */
	.macro sector num
0:	.ascii "disco disk sector \num\n"
	i = . - 0b
	.rept 512 - (. - 0b)
	.byte (i * 7 + \num) & 0xff
	i = i + 1
	.endr
	.endm

	.data
	sector 0
	sector 1
	sector 2
	sector 3
	sector 4
	sector 5
	sector 6
	sector 7
