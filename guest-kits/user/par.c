/*
 * par - parallel work under a real kernel: one compute-bound worker
 * process per CPU, sharing nothing but the page each writes its result
 * to, so a kernel that schedules them on every CPU runs them all at
 * once (boot mode 6, "parallel"; the parallel mode's kestrel row in
 * docs/parallel.md). Each worker does compute's work (a sieve and an
 * xorshift/multiply loop) from its own seed. The checksum depends only
 * on the number of workers, never on where or in which order they ran;
 * the CPU each worker finished on is printed, and varies.
 */
#include "ulib.h"

#define SIEVE_N 20000
#define MAXWORKERS 8
static uint8_t composite[SIEVE_N];

struct shared {
	volatile uint32_t sum[MAXWORKERS];
	volatile uint32_t cpu[MAXWORKERS];
};

static uint32_t work(int w, int rounds)
{
	uint32_t sum = (uint32_t)w;
	for (int r = 0; r < rounds; r++) {
		memset(composite, 0, sizeof(composite));
		for (int i = 2; i < SIEVE_N; i++) {
			if (composite[i])
				continue;
			sum = sum * 31 + i;
			for (int j = i * 2; j < SIEVE_N; j += i)
				composite[j] = 1;
		}
		uint32_t x = 0x2545f491 * (uint32_t)(w + 1) + r;
		for (int k = 0; k < 50000; k++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			sum += x * 0x9e3779b1u + (x >> 7) % 1009;
		}
	}
	return sum;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 && strcmp(argv[1], "bench") == 0 ? 50 : 2;
	int workers = ncpus();
	if (workers > MAXWORKERS)
		workers = MAXWORKERS;
	struct shared *sh = shpage();
	memset((void *)sh, 0, sizeof(*sh));
	for (int w = 0; w < workers; w++) {
		int pid = fork();
		if (pid < 0) {
			printf("par: FAIL fork\n");
			return 1;
		}
		if (pid == 0) {
			sh->sum[w] = work(w, rounds);
			sh->cpu[w] = getcpu();
			exit(0);
		}
	}
	int bad = 0;
	for (int w = 0; w < workers; w++) {
		int st;
		if (waitpid(-1, &st, 0) < 0 || st != 0)
			bad++;
	}
	uint32_t total = 0;
	for (int w = 0; w < workers; w++) {
		total = total * 0x01000193u ^ sh->sum[w];
		printf("par: worker %d finished on cpu %u\n", w, sh->cpu[w]);
	}
	printf("par: %d workers x %d rounds, checksum 0x%08x\n", workers, rounds, total);
	if (bad) {
		printf("par: FAIL %d workers failed\n", bad);
		return 1;
	}
	printf("par: ok\n");
	return 0;
}
