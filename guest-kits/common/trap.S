/*
 * trap.S - exception vectors and the common trap entry/exit.
 *
 * With Status.BEV=0 the R4000 takes exceptions at fixed KSEG0 addresses
 * (manual ch. 6, "Exception vector locations"):
 *   0x80000000  TLB refill, 32-bit address (EXL was 0)
 *   0x80000080  XTLB refill (64-bit addressing; unused by us, caught anyway)
 *   0x80000180  everything else ("general exception")
 * Each vector gets a 4-instruction stub (copied there by
 * kit_install_vectors in kit.c) that jumps to kit_trap_entry with the
 * vector's offset in $k1. kit_trap_entry saves every register into a
 * struct kit_frame on the current stack, calls kit_trap(frame) in C, then
 * restores the (possibly modified) frame and returns with ERET to
 * frame->epc.
 *
 * $k0/$k1 are reserved for exactly this: compiled code never uses them, so
 * the stub may clobber them without saving. Exceptions do not nest: EXL=1
 * while we are here keeps interrupts off and sends a TLB miss to the
 * general vector, so kit_trap must not fault.
 */
#include "kit.h"

	.set noreorder
	.set noat

	.macro VECTOR_STUB name, vec
	.globl \name
\name:
	lui $k0, %hi(kit_trap_entry)
	addiu $k0, $k0, %lo(kit_trap_entry)
	jr $k0
	li $k1, \vec		/* (delay slot) which vector we came through */
	.globl \name\()_end
\name\()_end:
	.endm

	.text
	VECTOR_STUB kit_vec_refill, VEC_TLB_REFILL
	VECTOR_STUB kit_vec_xrefill, VEC_XTLB_REFILL
	VECTOR_STUB kit_vec_general, VEC_GENERAL

	.globl kit_trap_entry
	.ent kit_trap_entry
kit_trap_entry:
	move $k0, $sp
	addiu $sp, $sp, -FRAME_SIZE
	sw $k0, FRAME_R(29)($sp)	/* the interrupted sp */
	sw $0, FRAME_R(0)($sp)
	sw $1, FRAME_R(1)($sp)
	sw $2, FRAME_R(2)($sp)
	sw $3, FRAME_R(3)($sp)
	sw $4, FRAME_R(4)($sp)
	sw $5, FRAME_R(5)($sp)
	sw $6, FRAME_R(6)($sp)
	sw $7, FRAME_R(7)($sp)
	sw $8, FRAME_R(8)($sp)
	sw $9, FRAME_R(9)($sp)
	sw $10, FRAME_R(10)($sp)
	sw $11, FRAME_R(11)($sp)
	sw $12, FRAME_R(12)($sp)
	sw $13, FRAME_R(13)($sp)
	sw $14, FRAME_R(14)($sp)
	sw $15, FRAME_R(15)($sp)
	sw $16, FRAME_R(16)($sp)
	sw $17, FRAME_R(17)($sp)
	sw $18, FRAME_R(18)($sp)
	sw $19, FRAME_R(19)($sp)
	sw $20, FRAME_R(20)($sp)
	sw $21, FRAME_R(21)($sp)
	sw $22, FRAME_R(22)($sp)
	sw $23, FRAME_R(23)($sp)
	sw $24, FRAME_R(24)($sp)
	sw $25, FRAME_R(25)($sp)
	sw $0, FRAME_R(26)($sp)		/* k0, k1: already clobbered */
	sw $0, FRAME_R(27)($sp)
	sw $28, FRAME_R(28)($sp)
	sw $30, FRAME_R(30)($sp)
	sw $31, FRAME_R(31)($sp)
	mfhi $t0
	sw $t0, FRAME_HI($sp)
	mflo $t0
	sw $t0, FRAME_LO($sp)
	mfc0 $t0, $12			/* Status */
	sw $t0, FRAME_STATUS($sp)
	mfc0 $t0, $13			/* Cause */
	sw $t0, FRAME_CAUSE($sp)
	mfc0 $t0, $14			/* EPC */
	sw $t0, FRAME_EPC($sp)
	mfc0 $t0, $8			/* BadVAddr */
	sw $t0, FRAME_BADVADDR($sp)
	sw $k1, FRAME_VECTOR($sp)

	move $a0, $sp
	jal kit_trap
	addiu $sp, $sp, -16		/* (delay slot) o32 argument area */
	addiu $sp, $sp, 16

	/* Restore. EPC and Status first, through $k0. The saved Status has
	 * EXL=1 (it was read in here), so writing it back keeps interrupts
	 * off until ERET clears EXL; a handler may change other bits, e.g.
	 * clear an IM bit to mask a line after returning. */
	lw $k0, FRAME_EPC($sp)
	mtc0 $k0, $14			/* EPC */
	lw $k0, FRAME_STATUS($sp)
	mtc0 $k0, $12			/* Status */
	lw $t0, FRAME_HI($sp)
	mthi $t0
	lw $t0, FRAME_LO($sp)
	mtlo $t0
	lw $1, FRAME_R(1)($sp)
	lw $2, FRAME_R(2)($sp)
	lw $3, FRAME_R(3)($sp)
	lw $4, FRAME_R(4)($sp)
	lw $5, FRAME_R(5)($sp)
	lw $6, FRAME_R(6)($sp)
	lw $7, FRAME_R(7)($sp)
	lw $8, FRAME_R(8)($sp)
	lw $9, FRAME_R(9)($sp)
	lw $10, FRAME_R(10)($sp)
	lw $11, FRAME_R(11)($sp)
	lw $12, FRAME_R(12)($sp)
	lw $13, FRAME_R(13)($sp)
	lw $14, FRAME_R(14)($sp)
	lw $15, FRAME_R(15)($sp)
	lw $16, FRAME_R(16)($sp)
	lw $17, FRAME_R(17)($sp)
	lw $18, FRAME_R(18)($sp)
	lw $19, FRAME_R(19)($sp)
	lw $20, FRAME_R(20)($sp)
	lw $21, FRAME_R(21)($sp)
	lw $22, FRAME_R(22)($sp)
	lw $23, FRAME_R(23)($sp)
	lw $24, FRAME_R(24)($sp)
	lw $25, FRAME_R(25)($sp)
	lw $28, FRAME_R(28)($sp)
	lw $30, FRAME_R(30)($sp)
	lw $31, FRAME_R(31)($sp)
	lw $sp, FRAME_R(29)($sp)	/* last: the frame is gone after this */
	eret				/* R4000: no delay slot; clears EXL */
	.end kit_trap_entry
