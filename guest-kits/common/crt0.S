/*
 * crt0.S - first code of every bare-metal guest-kit program.
 *
 * The loader (GXemul, or disco) jumps to _start in kernel mode at KSEG0.
 * We (1) record every register it handed us in kit_boot, so programs and
 * README.md can say what the initial CPU state is, (2) put the CPU in a
 * known state: kernel mode, interrupts off, BEV=0, EXL=ERL=0, (3) switch to
 * our own stack, clear .bss, install the exception vectors, and (4) call
 * main(). main's return value goes to the halt register.
 */
#include "kit.h"

	.set noreorder
	.set noat

	.section .text.start, "ax"
	.globl _start
	.ent _start
_start:
	/* $at is the only register we must clobber to get a base address
	 * (there is no absolute addressing in KSEG0 without one). */
	lui $at, %hi(kit_boot)
	addiu $at, $at, %lo(kit_boot)
	sw $0, 0($at)
	sw $0, 4($at)		/* $at itself: lost, recorded as 0 */
	sw $2, 8($at)
	sw $3, 12($at)
	sw $4, 16($at)
	sw $5, 20($at)
	sw $6, 24($at)
	sw $7, 28($at)
	sw $8, 32($at)
	sw $9, 36($at)
	sw $10, 40($at)
	sw $11, 44($at)
	sw $12, 48($at)
	sw $13, 52($at)
	sw $14, 56($at)
	sw $15, 60($at)
	sw $16, 64($at)
	sw $17, 68($at)
	sw $18, 72($at)
	sw $19, 76($at)
	sw $20, 80($at)
	sw $21, 84($at)
	sw $22, 88($at)
	sw $23, 92($at)
	sw $24, 96($at)
	sw $25, 100($at)
	sw $26, 104($at)
	sw $27, 108($at)
	sw $28, 112($at)
	sw $29, 116($at)
	sw $30, 120($at)
	sw $31, 124($at)
	/* CP0, in struct kit_boot_state order. Count first-ish: it moves. */
	mfc0 $k0, $12		/* Status */
	sw $k0, 128($at)
	mfc0 $k0, $13		/* Cause */
	sw $k0, 132($at)
	mfc0 $k0, $16		/* Config */
	sw $k0, 136($at)
	mfc0 $k0, $15		/* PRId */
	sw $k0, 140($at)
	mfc0 $k0, $9		/* Count */
	sw $k0, 144($at)
	mfc0 $k0, $11		/* Compare */
	sw $k0, 148($at)
	mfc0 $k0, $14		/* Epc */
	sw $k0, 152($at)
	mfc0 $k0, $30		/* Errorepc */
	sw $k0, 156($at)
	mfc0 $k0, $8		/* Badvaddr */
	sw $k0, 160($at)
	mfc0 $k0, $10		/* Entryhi */
	sw $k0, 164($at)
	mfc0 $k0, $4		/* Context */
	sw $k0, 168($at)
	mfc0 $k0, $6		/* Wired */
	sw $k0, 172($at)
	mfc0 $k0, $1		/* Random */
	sw $k0, 176($at)
	mfc0 $k0, $5		/* Pagemask */
	sw $k0, 180($at)
	mfc0 $k0, $0		/* Index */
	sw $k0, 184($at)
	mfc0 $k0, $17		/* Lladdr */
	sw $k0, 188($at)

	/* Known state: Status = 0 means kernel mode (KSU=0), EXL=ERL=0,
	 * interrupts disabled (IE=0, IM=0), BEV=0 (vectors in KSEG0 RAM,
	 * installed below before anything can trap). */
	mtc0 $0, $12		/* Status */
	nop
	nop

	/* Our own stack (kit.ld), so the layout is the same everywhere. */
	lui $sp, %hi(_stack_top)
	addiu $sp, $sp, %lo(_stack_top)

	/* Clear .bss word by word (kit.ld aligns both ends to 4). */
	lui $t0, %hi(_bss_start)
	addiu $t0, $t0, %lo(_bss_start)
	lui $t1, %hi(_bss_end)
	addiu $t1, $t1, %lo(_bss_end)
1:	beq $t0, $t1, 2f
	nop
	sw $0, 0($t0)
	b 1b
	addiu $t0, $t0, 4
2:
	jal kit_install_vectors
	nop
	jal main
	addiu $sp, $sp, -16	/* (delay slot) o32: callee may use 16 bytes */
	jal kit_halt		/* kit_halt(main's return value) */
	move $a0, $v0
3:	b 3b
	nop
	.end _start

/*
 * Secondary CPUs enter here (MP_STARTUPADDR) with sp = MP_STARTUPSTACK.
 * Same Status as CPU 0; the vectors are already installed by CPU 0.
 */
	.text
	.globl kit_secondary_start
	.ent kit_secondary_start
kit_secondary_start:
	mfc0 $a1, $12		/* Status as the board started us: 2nd arg */
	mtc0 $0, $12		/* Status */
	nop
	nop
	lui $t0, 0xb100		/* KSEG1(DEV_MP) */
	lw $a0, MP_WHOAMI($t0)	/* 1st arg: our CPU number */
	jal kit_secondary_main
	addiu $sp, $sp, -16
	/* kit_secondary_main should not return; if it does, park here. */
4:	b 4b
	nop
	.end kit_secondary_start

/* Boot state lives in .data, not .bss: crt0 writes it before clearing .bss. */
	.data
	.align 2
	.globl kit_boot
kit_boot:
	.space 192
