/*
 * boot.S - everything kestrel keeps in KSEG0 (unmapped, kernel mode only):
 * the exception vector trampolines and the boot stubs. The rest of the
 * kernel lives in the mapped window at 0xc0000000 (see README.md).
 *
 * Under the Disco-style monitor this code is run by the monitor's
 * emulation engine; it is therefore kept tiny: map the window with wired
 * TLB entry 0, then jump into it.
 */
#include "mips.h"

	.set noreorder
	.set noat

/* 0x80000000: TLB refill vector -> kwin_refill (window) */
	.section .kseg0.refill, "ax"
	.globl kseg0_refill
kseg0_refill:
	lui $k0, %hi(kwin_refill)
	addiu $k0, $k0, %lo(kwin_refill)
	jr $k0
	nop

/* 0x80000080: XTLB refill vector (64-bit addressing; never enabled) */
	.section .kseg0.xtlb, "ax"
kseg0_xtlb:
	lui $k0, %hi(kwin_general)
	addiu $k0, $k0, %lo(kwin_general)
	jr $k0
	nop

/* 0x80000180: general exception vector -> kwin_general (window) */
	.section .kseg0.general, "ax"
	.globl kseg0_general
kseg0_general:
	lui $k0, %hi(kwin_general)
	addiu $k0, $k0, %lo(kwin_general)
	jr $k0
	nop

/*
 * 0x80001000: the ELF entry point, CPU 0. Kernel mode, any Status.
 */
	.section .kseg0.boot, "ax"
	.globl kstart
kstart:
	mtc0 $zero, C0_STATUS		/* kernel mode, EXL=ERL=IE=0, BEV=0 */
	nop
	nop
	bal kseg0_map_window
	nop
	lui $sp, %hi(cpu0_stack_top)
	addiu $sp, $sp, %lo(cpu0_stack_top)
	lui $t0, %hi(kmain)
	addiu $t0, $t0, %lo(kmain)
	jr $t0				/* into the window; never returns */
	addiu $sp, $sp, -16

/*
 * Secondary CPUs: mp startupaddr points here, sp = startupstack (a window
 * address, usable once the window is mapped on this CPU's own TLB).
 */
	.globl ksecondary
ksecondary:
	mtc0 $zero, C0_STATUS
	nop
	nop
	bal kseg0_map_window
	nop
	lui $t0, %hi(secondary_main)
	addiu $t0, $t0, %lo(secondary_main)
	jr $t0
	addiu $sp, $sp, -16

/*
 * Wired entry 0: VA 0xc0000000 -> PA 0 (even 16 MB page) and
 * VA 0xc1000000 -> PA 16 MB (odd page, valid only if RAM > 16 MB),
 * global, cached, writable. Wired = 2 (entry 1 is the per-CPU page,
 * written later from the window). Clobbers t0-t3.
 */
kseg0_map_window:
	lui $t0, %hi(MP_BASE)
	lw $t1, MP_MEMORY($t0)		/* RAM size in bytes */
	li $t2, PM_16M
	mtc0 $t2, C0_PAGEMASK
	li $t2, KWIN_BASE
	mtc0 $t2, C0_ENTRYHI
	li $t2, PTE_CACHED | PTE_D | PTE_V | PTE_G
	mtc0 $t2, C0_ENTRYLO0
	li $t2, (0x1000 << PTE_PFN_SHIFT) | PTE_CACHED | PTE_D | PTE_G
	li $t3, 0x01000000
	sltu $t3, $t3, $t1		/* RAM > 16 MB ? */
	sll $t3, $t3, 1			/* -> PTE_V */
	or $t2, $t2, $t3
	mtc0 $t2, C0_ENTRYLO1
	mtc0 $zero, C0_INDEX		/* entry WIRED_KWIN */
	nop
	nop
	tlbwi
	nop
	nop
	li $t2, NWIRED
	mtc0 $t2, C0_WIRED
	mtc0 $zero, C0_PAGEMASK
	mtc0 $zero, C0_ENTRYHI
	nop
	jr $ra
	nop
