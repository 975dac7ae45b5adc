/*
 * syscall - a tight loop of cheap system calls (getpid, an empty write,
 * getcpu, time). Checks getpid never changes; prints a checksum.
 */
#include "ulib.h"

int main(int argc, char **argv)
{
	int n = argc > 1 && strcmp(argv[1], "bench") == 0 ? 100000 : 5000;
	int me = getpid(), bad = 0;
	uint32_t sum = 0;
	for (int i = 0; i < n; i++) {
		if (getpid() != me)
			bad++;
		sum = sum * 33 + (uint32_t)write(1, "", 0) + 1;
		sum += getcpu() >= 0;
		sum ^= time() != 0xffffffffu;
	}
	printf("syscall: %d x 4 calls, checksum 0x%08x\n", n, sum);
	if (bad) {
		printf("syscall: FAIL getpid changed %d times\n", bad);
		return 1;
	}
	printf("syscall: ok\n");
	return 0;
}
