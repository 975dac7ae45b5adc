/*
 * kfs.S - kestrel-disk.img: the user programs on kfs, the read-only file
 * system of disk.c, assembled and dumped raw (objcopy -O binary). The
 * directory is subsection 0, padded to 2048 bytes; the files are
 * subsection 1, each at a 512-byte boundary. The assembler computes
 * every offset and size. Programs come from ../../user (found with
 * -Wa,-I), like progs.S.
 */
	.macro KFILE name
	.text 0
1:	.ascii "\name"
	.fill 20 - (. - 1b), 1, 0
	.word 2f - kfs_start, 3f - 2f, 0
	.text 1
	.balign 512
2:	.incbin "\name\().elf"
3:
	.endm

	.text 0
kfs_start:
	.ascii "KFS1"
	.word 0, 0, 0
	KFILE init
	KFILE compute
	KFILE syscall
	KFILE tlbstress
	KFILE forkexec
	KFILE smp
	KFILE exitcode
	KFILE cowmig
	KFILE par
	KFILE motd
	.text 0
	.fill 32, 1, 0		/* the empty entry that ends the directory */
	.org 2048
	.text 1
	.balign 512
