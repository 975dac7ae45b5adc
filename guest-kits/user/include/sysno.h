/*
 * sysno.h - kestrel system call numbers and error codes (shared by the
 * kernel and the user library).
 *
 * ABI: `syscall` with the number in v0, arguments in a0-a3; the result
 * comes back in v0, a negative value -E... on error. Every other register
 * except v0 (and k0/k1) is preserved.
 */
#ifndef KESTREL_SYSNO_H
#define KESTREL_SYSNO_H

#define SYS_exit	1	/* exit(status) */
#define SYS_write	2	/* write(fd, buf, n) -> n; fd 1 and 2: console */
#define SYS_read	3	/* read(fd, buf, n) -> n; fd 0: console, blocks */
#define SYS_getpid	4
#define SYS_fork	5	/* -> child pid / 0 in the child */
#define SYS_execv	6	/* execv(path, argv): program from the kernel's table */
#define SYS_waitpid	7	/* waitpid(pid or -1, &status, options) -> pid */
#define SYS_sbrk	8	/* sbrk(incr) -> old break */
#define SYS_yield	9
#define SYS_sleep	10	/* sleep(ticks) */
#define SYS_time	11	/* -> timer ticks since boot (1 tick = 100000 Count) */
#define SYS_cycles	12	/* -> CP0 Count of the calling CPU (x2 = cycles) */
#define SYS_getcpu	13	/* -> id of the CPU running the caller */
#define SYS_ncpus	14
#define SYS_shpage	15	/* map the machine-wide shared page -> its address */
#define SYS_getppid	16	/* -> the parent's pid (0 for init) */
#define SYS_uptime	17	/* uptime(struct uptime *u) -> 0, or -EFAULT */
#define SYS_bump	18	/* bump(n): add n to a kernel counter -> its new value */
#define SYS_tlbfaults	19	/* -> TLB faults trap() has handled, all CPUs */
/* Lab kernel only (kestrel-lab.elf): -ENOSYS elsewhere. */
#define SYS_sleepbump	20	/* sleepbump(n): add n to a counter under a sleep lock */
#define SYS_labstat	21	/* labstat(0): free pages, 1: pages allocated, 2: write-protect faults */

#ifndef __ASSEMBLER__
/* What uptime() fills in: the time since boot two ways. */
struct uptime {
	unsigned int ticks;	/* timer ticks, as time() */
	unsigned int count;	/* CP0 Count of the calling CPU, as cycles() */
};
#endif

#define WNOHANG		1

#define ENOENT		2
#define E2BIG		7
#define ECHILD		10
#define EAGAIN		11
#define ENOMEM		12
#define EFAULT		14
#define EINVAL		22
#define ENOSYS		38

#endif
