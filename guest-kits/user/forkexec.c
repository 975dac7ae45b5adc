/*
 * forkexec - process churn and copy-on-write. Each round forks a child:
 * odd rounds exec "exitcode <n>", even rounds write to the (COW-shared)
 * data array and exit with a sum of it. The parent checks every status
 * and that its own copy of the array never changed.
 */
#include "ulib.h"

static uint32_t data[2048] = { 1 };	/* 2 pages of .data */

int main(int argc, char **argv)
{
	int rounds = argc > 1 && strcmp(argv[1], "bench") == 0 ? 64 : 12;
	for (int i = 0; i < 2048; i++)
		data[i] = i * 3 + 1;
	uint32_t sum = 0;
	int bad = 0;
	for (int r = 0; r < rounds; r++) {
		int pid = fork();
		if (pid < 0) {
			printf("forkexec: FAIL fork %d\n", pid);
			return 1;
		}
		if (pid == 0) {
			if (r & 1) {
				char num[12];
				snprintf(num, sizeof(num), "%d", (r * 7) & 0x7f);
				char *av[] = { "exitcode", num, NULL };
				execv("exitcode", av);
				exit(255);
			}
			uint32_t s = 0;
			for (int i = 0; i < 2048; i += 16) {
				data[i] += r;	/* copy-on-write break */
				s += data[i];
			}
			exit(s & 0x7f);
		}
		int st;
		if (waitpid(pid, &st, 0) != pid) {
			printf("forkexec: FAIL waitpid\n");
			return 1;
		}
		int want;
		if (r & 1) {
			want = (r * 7) & 0x7f;
		} else {
			uint32_t s = 0;
			for (int i = 0; i < 2048; i += 16)
				s += i * 3 + 1 + r;
			want = s & 0x7f;
		}
		if (st != want)
			bad++;
		sum = sum * 131 + st;
	}
	for (int i = 0; i < 2048; i++)
		if (data[i] != (uint32_t)i * 3 + 1)
			bad++;
	printf("forkexec: %d children, status checksum 0x%08x\n", rounds, sum);
	if (bad) {
		printf("forkexec: FAIL %d mismatches\n", bad);
		return 1;
	}
	printf("forkexec: ok\n");
	return 0;
}
