/* exitcode <n> - exit with status n (used by forkexec).
 * exitcode fault - store to address 0: the kernel kills us (status 128 + 3, TLBS). */
#include "ulib.h"

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "fault") == 0)
		*(volatile int *)0 = 1;
	return argc > 1 ? atoi(argv[1]) : 0;
}
