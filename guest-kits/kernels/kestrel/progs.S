/*
 * progs.S - the user programs, embedded as ELF images (built and
 * stripped by ../../user, found with -Wa,-I). execv("name") looks the
 * name up in progtab. Assembled twice: for the images, and with
 * KESTREL_LAB for the course labs' kernel (Makefile, target lab).
 */
	.macro PROG name
	.section .rodata.progs, "a"
	.balign 8
\name\()_elf:
	.incbin "\name\().elf"
\name\()_elf_end:
	.section .rodata.prognames, "a"
\name\()_str:
	.asciz "\name"
	.section .rodata.progtab, "a"
	.word \name\()_str, \name\()_elf, \name\()_elf_end
	.endm

	.section .rodata.progtab, "a"
	.balign 4
	.globl progtab
progtab:
	PROG init
	PROG compute
	PROG syscall
	PROG tlbstress
	PROG forkexec
	PROG smp
	PROG exitcode
	PROG cowmig
	PROG par
#ifdef KESTREL_LAB
	PROG labtest		/* only in the lab kernel (make lab) */
#endif
	.section .rodata.progtab, "a"
	.word 0, 0, 0
