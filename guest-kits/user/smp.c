/*
 * smp - four worker processes (one per CPU when there are four) contend
 * for an LL/SC spinlock in the machine-wide shared page, each doing a
 * fixed number of locked increments with private work in between. The
 * parent checks the total and reports how many increments each CPU did
 * (one line per CPU; that split varies with the simulator and the number
 * of CPUs, so tests check only that every CPU did some and the sum).
 */
#include "ulib.h"

#define WORKERS 4

struct shared {
	volatile int lock;
	volatile uint32_t counter;
	volatile uint32_t weighted;
	volatile uint32_t percpu[8];
	volatile uint32_t done;
};

int main(int argc, char **argv)
{
	int bench = argc > 1 && strcmp(argv[1], "bench") == 0;
	int rounds = bench ? 5000 : 500;
	struct shared *sh = shpage();
	memset((void *)sh, 0, sizeof(*sh));
	for (int w = 0; w < WORKERS; w++) {
		int pid = fork();
		if (pid < 0) {
			printf("smp: FAIL fork\n");
			return 1;
		}
		if (pid == 0) {
			uint32_t x = 0x2545f491 * (w + 1), local = 0;
			for (int k = 0; k < rounds; k++) {
				for (int j = 0; j < 40; j++) {	/* private work */
					x ^= x << 13;
					x ^= x >> 17;
					x ^= x << 5;
					local += x;
				}
				spin_lock_yield(&sh->lock);
				sh->counter++;
				sh->weighted += w + 1;
				sh->percpu[getcpu() & 7]++;
				spin_unlock(&sh->lock);
			}
			exit(local == 0xffffffff);	/* never: keeps the work live */
		}
	}
	int bad = 0;
	for (int w = 0; w < WORKERS; w++) {
		int st;
		if (waitpid(-1, &st, 0) < 0 || st != 0)
			bad++;
	}
	uint32_t want = WORKERS * rounds, wweight = rounds * (WORKERS * (WORKERS + 1) / 2);
	printf("smp: %d workers x %d locked increments = %u, weighted %u\n", WORKERS, rounds,
	       sh->counter, sh->weighted);
	int n = ncpus();
	for (int c = 0; c < n && c < 8; c++)
		printf("smp: cpu %d did %u increments\n", c, sh->percpu[c]);
	if (bad || sh->counter != want || sh->weighted != wweight) {
		printf("smp: FAIL expected %u, weighted %u\n", want, wweight);
		return 1;
	}
	printf("smp: ok\n");
	return 0;
}
