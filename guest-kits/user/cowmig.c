/*
 * cowmig - copy-on-write across CPU migrations: the test of kestrel's TLB
 * shootdown (boot mode 4). Each round the parent forks a child that keeps
 * a page shared copy-on-write, reads the page on CPU a (a's TLB now maps
 * the shared frame read-only under the parent's ASID there), yields until
 * it runs elsewhere, writes the page there (the copy-on-write break gives
 * the parent a new frame and shoots down a's stale entry), yields until it
 * is back on a and reads the page again. Without the shootdown that last
 * read would go through a's stale entry to the old frame and see the old
 * value. Spinner processes keep every CPU busy so that yields migrate.
 */
#include "ulib.h"

#define ROUNDS 16
#define SPINNERS 3
#define TRIES 4000	/* yields before giving up on a migration */
/* `cowmig quick` (labtest, the cow lab): fewer rounds, sooner given up,
 * so that quanta under which CPUs rarely swap work do not take long. */
#define QUICK_ROUNDS 6
#define QUICK_TRIES 300

static int tries = TRIES;

struct shared {
	volatile uint32_t done;		/* spinners exit when set */
	volatile uint32_t round;	/* a round's child exits when it moves on */
};

static volatile uint32_t page[1024] __attribute__((aligned(4096)));

static void __attribute__((noreturn)) spin_while(volatile uint32_t *w, uint32_t v)
{
	while (*w == v)
		yield();
	exit(0);
}

/* Yield until running on a CPU other than `cpu` (on == 0) or on `cpu`
 * itself (on == 1); 0 if that did not happen within `tries` yields. */
static int migrate(int cpu, int on)
{
	for (int i = 0; i < tries; i++) {
		if ((getcpu() == cpu) == on)
			return 1;
		yield();
	}
	return 0;
}

int main(int argc, char **argv)
{
	int quick = argc > 1 && strcmp(argv[1], "quick") == 0;
	uint32_t rounds = quick ? QUICK_ROUNDS : ROUNDS;
	if (quick)
		tries = QUICK_TRIES;
	int n = ncpus();
	if (n < 2) {
		printf("cowmig: 1 cpu, no migrations to test\n");
		return 0;
	}
	struct shared *sh = shpage();
	sh->done = 0;
	sh->round = 0;
	for (int s = 0; s < SPINNERS; s++)
		if (fork() == 0)
			spin_while(&sh->done, 0);
	int tested = 0, stale = 0;
	for (uint32_t r = 0; r < rounds; r++) {
		page[0] = 2 * r;
		int pid = fork();
		if (pid < 0) {
			printf("cowmig: FAIL fork\n");
			return 1;
		}
		if (pid == 0)
			spin_while(&sh->round, r);
		/* page is copy-on-write now, shared with the child */
		int a = getcpu();
		if (page[0] != 2 * r)
			stale++;
		if (migrate(a, 0)) {
			page[0] = 2 * r + 1;	/* the break, on another CPU */
			if (migrate(a, 1)) {
				tested++;
				if (page[0] != 2 * r + 1)
					stale++;
			}
		}
		sh->round = r + 1;
		waitpid(pid, NULL, 0);
	}
	sh->done = 1;
	for (int s = 0; s < SPINNERS; s++)
		waitpid(-1, NULL, 0);
	printf("cowmig: %d of %d rounds moved away and back, %d stale reads\n", tested,
	       (int)rounds, stale);
	if (stale || tested == 0) {
		printf("cowmig: FAIL\n");
		return 1;
	}
	printf("cowmig: ok\n");
	return 0;
}
