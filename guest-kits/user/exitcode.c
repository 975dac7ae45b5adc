/* exitcode <n> - exit with status n (used by forkexec).
 * exitcode fault - store to address 0: the kernel kills us (status 128 + 3, TLBS).
 * exitcode bdbreak - `break` in a branch delay slot: killed (128 + 9, Bp),
 * and the kernel's report says the EPC is the branch's (Cause.BD). */
#include "ulib.h"

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "fault") == 0)
		*(volatile int *)0 = 1;
	if (argc > 1 && strcmp(argv[1], "bdbreak") == 0)
		__asm__ volatile(".set push\n.set noreorder\n"
				 "beq $0, $0, 1f\nbreak 7\n1:\n.set pop");
	return argc > 1 ? atoi(argv[1]) : 0;
}
