/* syscalls.S - one stub per system call (ABI in include/sysno.h). */
#include "sysno.h"
	.set noreorder
	.text

	.macro STUB name, num
	.globl \name
	.ent \name
\name:
	li $v0, \num
	syscall
	jr $ra
	nop
	.end \name
	.endm

	STUB exit, SYS_exit
	STUB write, SYS_write
	STUB read, SYS_read
	STUB getpid, SYS_getpid
	STUB fork, SYS_fork
	STUB execv, SYS_execv
	STUB waitpid, SYS_waitpid
	STUB sbrk, SYS_sbrk
	STUB yield, SYS_yield
	STUB sleep, SYS_sleep
	STUB time, SYS_time
	STUB cycles, SYS_cycles
	STUB getcpu, SYS_getcpu
	STUB ncpus, SYS_ncpus
	STUB shpage, SYS_shpage
	STUB getppid, SYS_getppid
	STUB uptime, SYS_uptime
	STUB bump, SYS_bump
	STUB tlbfaults, SYS_tlbfaults

/* int spin_trylock(volatile int *l): LL/SC, 1 if taken */
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

	.globl spin_unlock
	.ent spin_unlock
spin_unlock:
	sync
	jr $ra
	sw $zero, 0($a0)
	.end spin_unlock
