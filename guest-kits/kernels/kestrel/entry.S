/*
 * entry.S - the kernel's assembly inside the window (0xc0000000):
 * TLB refill handler, general exception entry/exit, context switch,
 * LL/SC spinlock, user-memory copy with fault recovery.
 */
#include "mips.h"

	.set noreorder
	.set noat
	.text

/*
 * TLB refill (reached from the 0x80000000 trampoline, EXL=1).
 * Context = PTEBase (0xd0000000) | BadVPN2 << 4: the address of the
 * faulting pair's two 8-byte PTEs in the current process's linear page
 * table. Load both EntryLo words and write a random entry. If the page
 * table page itself is not mapped, the load misses with EXL=1 and the
 * general vector gets a TLBL for an address in the PT window (handled in
 * trap.c: map the page table page, restart the user instruction).
 */
	.globl kwin_refill
	.ent kwin_refill
kwin_refill:
	/* lab tlb: begin refill */
	mfc0 $k0, C0_CONTEXT
	lw $k1, 0($k0)			/* even page's PTE */
	lw $k0, 8($k0)			/* odd page's PTE */
	mtc0 $k1, C0_ENTRYLO0
	mtc0 $k0, C0_ENTRYLO1
	nop
	tlbwr
	nop
	nop
	eret
	/* lab tlb: end refill */
	.end kwin_refill

/*
 * General exception entry. From user mode: switch to the kernel stack of
 * the current thread (struct cpu, at PERCPU_VA, field kstack). From the
 * kernel: stay on the current stack. Save a struct trapframe, leave EXL
 * (kernel mode, interrupts off), call trap(tf).
 */
	.globl kwin_general
	.ent kwin_general
kwin_general:
	mfc0 $k0, C0_STATUS
	andi $k0, $k0, ST_KSU_MASK
	beqz $k0, 1f
	move $k1, $sp
	lui $k0, %hi(PERCPU_VA)
	lw $sp, %lo(PERCPU_VA + PC_KSTACK)($k0)
1:	addiu $sp, $sp, -TF_FRAME
	sw $k1, 16+TF_REG(29)($sp)
	sw $1, 16+TF_REG(1)($sp)
	sw $2, 16+TF_REG(2)($sp)
	sw $3, 16+TF_REG(3)($sp)
	sw $4, 16+TF_REG(4)($sp)
	sw $5, 16+TF_REG(5)($sp)
	sw $6, 16+TF_REG(6)($sp)
	sw $7, 16+TF_REG(7)($sp)
	sw $8, 16+TF_REG(8)($sp)
	sw $9, 16+TF_REG(9)($sp)
	sw $10, 16+TF_REG(10)($sp)
	sw $11, 16+TF_REG(11)($sp)
	sw $12, 16+TF_REG(12)($sp)
	sw $13, 16+TF_REG(13)($sp)
	sw $14, 16+TF_REG(14)($sp)
	sw $15, 16+TF_REG(15)($sp)
	sw $16, 16+TF_REG(16)($sp)
	sw $17, 16+TF_REG(17)($sp)
	sw $18, 16+TF_REG(18)($sp)
	sw $19, 16+TF_REG(19)($sp)
	sw $20, 16+TF_REG(20)($sp)
	sw $21, 16+TF_REG(21)($sp)
	sw $22, 16+TF_REG(22)($sp)
	sw $23, 16+TF_REG(23)($sp)
	sw $24, 16+TF_REG(24)($sp)
	sw $25, 16+TF_REG(25)($sp)
	sw $28, 16+TF_REG(28)($sp)
	sw $30, 16+TF_REG(30)($sp)
	sw $31, 16+TF_REG(31)($sp)
	mfhi $t0
	mflo $t1
	sw $t0, 16+TF_HI($sp)
	sw $t1, 16+TF_LO($sp)
	mfc0 $t0, C0_STATUS
	mfc0 $t1, C0_CAUSE
	mfc0 $t2, C0_EPC
	mfc0 $t3, C0_BADVADDR
	sw $t0, 16+TF_STATUS($sp)
	sw $t1, 16+TF_CAUSE($sp)
	sw $t2, 16+TF_EPC($sp)
	sw $t3, 16+TF_BADVADDR($sp)
	/* kernel mode, EXL=0, IE=0 (keep IM, CU, BEV bits) */
	li $t1, ~(ST_KSU_MASK | ST_EXL | ST_ERL | ST_IE)
	and $t0, $t0, $t1
	mtc0 $t0, C0_STATUS
	nop
	nop
	jal trap
	addiu $a0, $sp, 16
	.end kwin_general

/*
 * Return from an exception, or start a new thread in user mode: sp points
 * at a TF_FRAME area whose trapframe is at sp+16.
 */
	.globl trap_return
	.ent trap_return
trap_return:
	lw $t0, 16+TF_STATUS($sp)
	li $t1, ST_EXL
	or $t0, $t0, $t1		/* EXL=1 until eret: KSU may say user */
	mtc0 $t0, C0_STATUS
	lw $t1, 16+TF_EPC($sp)
	lw $t2, 16+TF_HI($sp)
	lw $t3, 16+TF_LO($sp)
	mtc0 $t1, C0_EPC
	mthi $t2
	mtlo $t3
	lw $1, 16+TF_REG(1)($sp)
	lw $2, 16+TF_REG(2)($sp)
	lw $3, 16+TF_REG(3)($sp)
	lw $4, 16+TF_REG(4)($sp)
	lw $5, 16+TF_REG(5)($sp)
	lw $6, 16+TF_REG(6)($sp)
	lw $7, 16+TF_REG(7)($sp)
	lw $8, 16+TF_REG(8)($sp)
	lw $9, 16+TF_REG(9)($sp)
	lw $10, 16+TF_REG(10)($sp)
	lw $11, 16+TF_REG(11)($sp)
	lw $12, 16+TF_REG(12)($sp)
	lw $13, 16+TF_REG(13)($sp)
	lw $14, 16+TF_REG(14)($sp)
	lw $15, 16+TF_REG(15)($sp)
	lw $16, 16+TF_REG(16)($sp)
	lw $17, 16+TF_REG(17)($sp)
	lw $18, 16+TF_REG(18)($sp)
	lw $19, 16+TF_REG(19)($sp)
	lw $20, 16+TF_REG(20)($sp)
	lw $21, 16+TF_REG(21)($sp)
	lw $22, 16+TF_REG(22)($sp)
	lw $23, 16+TF_REG(23)($sp)
	lw $24, 16+TF_REG(24)($sp)
	lw $25, 16+TF_REG(25)($sp)
	lw $28, 16+TF_REG(28)($sp)
	lw $30, 16+TF_REG(30)($sp)
	lw $31, 16+TF_REG(31)($sp)
	lw $sp, 16+TF_REG(29)($sp)
	eret
	.end trap_return

/*
 * void switch_ctx(uint32_t *save_sp, uint32_t load_sp)
 * Save callee-saved registers on this stack, store sp in *save_sp, load
 * the other thread's sp and restore its registers.
 */
	.globl switch_ctx
	.ent switch_ctx
switch_ctx:
	addiu $sp, $sp, -48
	sw $16, 0($sp)
	sw $17, 4($sp)
	sw $18, 8($sp)
	sw $19, 12($sp)
	sw $20, 16($sp)
	sw $21, 20($sp)
	sw $22, 24($sp)
	sw $23, 28($sp)
	sw $30, 32($sp)
	sw $31, 36($sp)
	sw $sp, 0($a0)
	move $sp, $a1
	lw $16, 0($sp)
	lw $17, 4($sp)
	lw $18, 8($sp)
	lw $19, 12($sp)
	lw $20, 16($sp)
	lw $21, 20($sp)
	lw $22, 24($sp)
	lw $23, 28($sp)
	lw $30, 32($sp)
	lw $31, 36($sp)
	jr $ra
	addiu $sp, $sp, 48
	.end switch_ctx

/*
 * First code of a new process's thread (its switch frame's ra):
 * s0 = C function to call (with the BKL held), then return to user mode
 * through the trapframe at the top of the kernel stack.
 */
	.globl thread_trampoline
	.ent thread_trampoline
thread_trampoline:
	jalr $s0
	addiu $a0, $sp, 16		/* arg: the trapframe */
	b trap_return
	nop
	.end thread_trampoline

/* void spin_lock(volatile int *l): LL/SC test-and-set, then SYNC */
	.globl spin_lock
	.ent spin_lock
spin_lock:
	/* lab sync: begin spin-lock */
1:	ll $t0, 0($a0)
	bnez $t0, 1b
	li $t1, 1
	sc $t1, 0($a0)
	beqz $t1, 1b
	nop
	sync
	jr $ra
	nop
	/* lab sync: end spin-lock */
	.end spin_lock

/* int spin_trylock(volatile int *l): 1 if taken */
	.globl spin_trylock
	.ent spin_trylock
spin_trylock:
	ll $t0, 0($a0)
	bnez $t0, 2f
	li $t1, 1
	sc $t1, 0($a0)
	beqz $t1, 2f
	nop
	sync
	jr $ra
	li $v0, 1
2:	jr $ra
	move $v0, $zero
	.end spin_trylock

/* void spin_unlock(volatile int *l) */
	.globl spin_unlock
	.ent spin_unlock
spin_unlock:
	sync
	jr $ra
	sw $zero, 0($a0)
	.end spin_unlock

/* uint32_t atomic_swap(volatile uint32_t *p, uint32_t v) */
	.globl atomic_swap
	.ent atomic_swap
atomic_swap:
1:	ll $v0, 0($a0)
	move $t0, $a1
	sc $t0, 0($a0)
	beqz $t0, 1b
	nop
	jr $ra
	nop
	.end atomic_swap

/* void atomic_or(volatile uint32_t *p, uint32_t bits) */
	.globl atomic_or
	.ent atomic_or
atomic_or:
1:	ll $t0, 0($a0)
	or $t0, $t0, $a1
	sc $t0, 0($a0)
	beqz $t0, 1b
	nop
	jr $ra
	nop
	.end atomic_or

/*
 * int ucopy(void *dst, const void *src, uint32_t n): byte copy where one
 * side is a user address; a fault the VM cannot resolve jumps to
 * ucopy_fault (trap.c sets EPC from cpu->onfault) and we return -1.
 */
	.globl ucopy
	.ent ucopy
ucopy:
	lui $t0, %hi(PERCPU_VA)
	lui $t1, %hi(ucopy_fault)
	addiu $t1, $t1, %lo(ucopy_fault)
	sw $t1, %lo(PERCPU_VA + PC_ONFAULT)($t0)
	beqz $a2, 2f
	nop
1:	lbu $t2, 0($a1)
	addiu $a1, $a1, 1
	sb $t2, 0($a0)
	addiu $a2, $a2, -1
	bnez $a2, 1b
	addiu $a0, $a0, 1
2:	sw $zero, %lo(PERCPU_VA + PC_ONFAULT)($t0)
	jr $ra
	move $v0, $zero
ucopy_fault:
	lui $t0, %hi(PERCPU_VA)
	sw $zero, %lo(PERCPU_VA + PC_ONFAULT)($t0)
	jr $ra
	li $v0, -1
	.end ucopy

/* int ucopystr(char *dst, const char *usrc, uint32_t max): length copied
 * (without NUL), -1 on fault, -2 if no NUL within max bytes. */
	.globl ucopystr
	.ent ucopystr
ucopystr:
	lui $t0, %hi(PERCPU_VA)
	lui $t1, %hi(ucopy_fault)
	addiu $t1, $t1, %lo(ucopy_fault)
	sw $t1, %lo(PERCPU_VA + PC_ONFAULT)($t0)
	move $v0, $zero
1:	beq $v0, $a2, 3f
	nop
	lbu $t2, 0($a1)
	addiu $a1, $a1, 1
	sb $t2, 0($a0)
	addiu $a0, $a0, 1
	bnez $t2, 1b
	addiu $v0, $v0, 1
	addiu $v0, $v0, -1
	sw $zero, %lo(PERCPU_VA + PC_ONFAULT)($t0)
	jr $ra
	nop
3:	sw $zero, %lo(PERCPU_VA + PC_ONFAULT)($t0)
	jr $ra
	li $v0, -2
	.end ucopystr

/* void idle_wait_once(volatile int *rq_len, volatile int *resched):
 * WAIT (COP0 funct 0x20) unless there is work. WAIT idles until an
 * interrupt on the simulator and yields the physical CPU under the
 * monitor; on a real R4000 it is a no-op and the caller just spins. An
 * interrupt that lands after the checks but before the WAIT would leave
 * the CPU asleep with work queued, so trap() rolls any interrupt taken
 * inside [idle_rollback_start, idle_rollback_end) back to the start and
 * the checks are made again (the rollback trick of Linux's r4k_wait).
 * GXemul's R4000 raises RI for WAIT instead; trap() then turns WAIT off. */
	.globl idle_wait_once
	.globl idle_rollback_start
	.globl idle_rollback_end
	.globl idle_wait_insn
	.ent idle_wait_once
idle_wait_once:
idle_rollback_start:
	lw $t0, 0($a0)
	lw $t1, 0($a1)
	or $t0, $t0, $t1
	bnez $t0, 1f
	nop
idle_wait_insn:
	.word 0x42000020	/* wait */
idle_rollback_end:
1:	jr $ra
	nop
	.end idle_wait_once
