/*
 * ulib.h - kestrel's small user library: system calls, strings, printf.
 */
#ifndef KESTREL_ULIB_H
#define KESTREL_ULIB_H

#include <stdint.h>
#include <stddef.h>
#include <stdarg.h>
#include "sysno.h"

/* system calls (lib/syscalls.S) */
void exit(int status) __attribute__((noreturn));
int write(int fd, const void *buf, uint32_t n);
int read(int fd, void *buf, uint32_t n);
int getpid(void);
int fork(void);
int execv(const char *path, char *const argv[]);
int waitpid(int pid, int *status, int options);
void *sbrk(int incr);
int yield(void);
int sleep(uint32_t ticks);
uint32_t time(void);
uint32_t cycles(void);		/* CP0 Count (x2 = CPU cycles) */
int getcpu(void);
int ncpus(void);
void *shpage(void);
int getppid(void);
int uptime(struct uptime *u);
uint32_t bump(uint32_t n);	/* the kernel's shared counter (sync lab) */
uint32_t tlbfaults(void);	/* TLB faults the kernel's trap() handled (tlb lab) */

/* lib/ulib.c */
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int atoi(const char *s);
int printf(const char *fmt, ...);
int snprintf(char *buf, int n, const char *fmt, ...);
int vsnprintf(char *buf, int n, const char *fmt, va_list ap);
void u64_to_dec(uint64_t v, char *buf);	/* buf >= 21 bytes */

/* LL/SC spinlock on shared memory (lib/syscalls.S) */
int spin_trylock(volatile int *l);
void spin_unlock(volatile int *l);
static inline void spin_lock_yield(volatile int *l)
{
	for (int n = 0; !spin_trylock(l); n++)
		if (n > 64) {
			yield();
			n = 0;
		}
}

#endif
