/* crt0.S - user program entry: a0 = argc, a1 = argv, sp set by the kernel. */
	.set noreorder
	.section .text.start, "ax"
	.globl _start
	.ent _start
_start:
	jal main
	nop
	jal exit
	move $a0, $v0
1:	b 1b
	nop
	.end _start
