/*
 * init - the first process. argv[1] is "demo", "bench", "echo", "fault",
 * "shootdown", "lab" or "parallel" (the kernel's boot mode; echo reads one
 * console line and prints it, fault checks that a faulting child is killed
 * with status 131, shootdown runs cowmig, the TLB shootdown test, lab runs
 * labtest, the course labs' tests, parallel runs par, one compute-bound
 * worker per CPU, and prints its cycles). Runs
 * each program in turn (fork + execv + waitpid) and reports; in bench
 * mode also the cycles each run took (CP0 Count x 2,
 * measured around fork..waitpid on init's CPU). Exits 0 if all passed.
 */
#include "ulib.h"

static char *const progs[] = { "compute", "syscall", "tlbstress", "forkexec", "smp" };
#define NPROGS (int)(sizeof(progs) / sizeof(progs[0]))

/* Runs av[0] with arguments av in a child and returns its exit status. */
static int run(char *const av[])
{
	int st = -1, pid = fork();
	if (pid == 0) {
		execv(av[0], av);
		exit(127);
	}
	waitpid(pid, &st, 0);
	return st;
}

/* Prints "bench: <name> <cycles> cycles" for CP0 Counts c0..c1. */
static void print_cycles(const char *name, uint32_t c0, uint32_t c1)
{
	char dec[24];
	u64_to_dec((uint64_t)(c1 - c0) * 2, dec);
	printf("bench: %s %s cycles\n", name, dec);
}

int main(int argc, char **argv)
{
	int bench = argc > 1 && strcmp(argv[1], "bench") == 0;
	int passed = 0;
	if (argc > 1 && strcmp(argv[1], "echo") == 0) {
		/* console input test: read one line (blocking read, IP2) */
		char line[80];
		int n = 0, k;
		printf("init: type a line\n");
		while (n < (int)sizeof(line) - 1 && (k = read(0, line + n, 1)) == 1 &&
		       line[n] != '\n' && line[n] != '\r')
			n++;
		line[n] = 0;
		printf("init: read \"%s\"\n", line);
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "fault") == 0) {
		/* a child that stores to address 0 must be killed, not the kernel */
		char *av[] = { "exitcode", "fault", NULL };
		int st = run(av);
		printf("init: faulting child exited with status %d\n", st);
		return st == 128 + 3 ? 0 : 1;
	}
	if (argc > 1 && strcmp(argv[1], "lab") == 0) {
		/* the course labs' tests (labs/, `disco lab grade`) */
		char *av[] = { "labtest", NULL };
		int st = run(av);
		printf("init: labtest exited with status %d\n", st);
		return st;
	}
	if (argc > 1 && strcmp(argv[1], "shootdown") == 0) {
		char *av[] = { "cowmig", NULL };
		int st = run(av);
		printf("init: cowmig exited with status %d\n", st);
		return st;
	}
	if (argc > 1 && strcmp(argv[1], "parallel") == 0) {
		char *av[] = { "par", "bench", NULL };
		uint32_t c0 = cycles();
		int st = run(av);
		print_cycles("par", c0, cycles());
		printf("init: par exited with status %d\n", st);
		return st;
	}
	if (!bench) {
		/* motd is only on the disk: it runs when the kernel found kfs */
		char *av[] = { "motd", NULL };
		run(av);
	}
	printf("init: %s mode, running %d programs\n", bench ? "bench" : "demo", NPROGS);
	for (int i = 0; i < NPROGS; i++) {
		uint32_t c0 = cycles();
		int pid = fork();
		if (pid < 0) {
			printf("init: fork failed (%d)\n", pid);
			return 1;
		}
		if (pid == 0) {
			char *av[] = { progs[i], bench ? "bench" : NULL, NULL };
			execv(progs[i], av);
			printf("init: execv %s failed\n", progs[i]);
			exit(127);
		}
		int status = -1;
		if (waitpid(pid, &status, 0) != pid)
			printf("init: waitpid failed\n");
		uint32_t c1 = cycles();
		if (status == 0)
			passed++;
		else
			printf("init: %s FAILED with status %d\n", progs[i], status);
		if (bench)
			print_cycles(progs[i], c0, c1);
	}
	printf("init: %d of %d programs passed\n", passed, NPROGS);
	return passed == NPROGS ? 0 : 1;
}
