/*
 * kern.h - kestrel's kernel-wide declarations.
 */
#ifndef KESTREL_KERN_H
#define KESTREL_KERN_H

#include <stdint.h>
#include <stddef.h>
#include <stdarg.h>
#include "mips.h"

#define MAXCPU		8
#define NPROC		64
#define KSTACK_SIZE	8192
#define HZ_COUNTS	100000		/* CP0 Count increments per tick */

#define KVA(pa)		((void *)((uint32_t)(pa) + KWIN_BASE))
#define KPA(va)		((uint32_t)(va) - KWIN_BASE)

/* ---- CP0 access (the only privileged instructions kestrel uses) ---- */
#define mfc0(reg) ({ uint32_t __v; \
	__asm__ __volatile__("mfc0 %0, $" #reg : "=r"(__v)); __v; })
#define mtc0(reg, v) __asm__ __volatile__("mtc0 %0, $" #reg "\n\tnop\n\tnop" \
	:: "r"((uint32_t)(v)) : "memory")
#define CP0_INDEX 0
#define CP0_ENTRYLO0 2
#define CP0_ENTRYLO1 3
#define CP0_CONTEXT 4
#define CP0_PAGEMASK 5
#define CP0_WIRED 6
#define CP0_BADVADDR 8
#define CP0_COUNT 9
#define CP0_ENTRYHI 10
#define CP0_COMPARE 11
#define CP0_STATUS 12
#define CP0_CAUSE 13
#define CP0_EPC 14
#define mfc0n(n) mfc0(n)
#define mtc0n(n, v) mtc0(n, v)
static inline uint32_t rd_status(void) { return mfc0n(12); }
static inline void wr_status(uint32_t v) { mtc0n(12, v); }
static inline uint32_t rd_count(void) { return mfc0n(9); }

/* ---- devices (KSEG1: the monitor traps and emulates these) ---- */
static inline uint32_t mmio_rd(uint32_t a) { return *(volatile uint32_t *)a; }
static inline void mmio_wr(uint32_t a, uint32_t v) { *(volatile uint32_t *)a = v; }

/* ---- struct cpu: one 4 KB page per CPU, mapped at PERCPU_VA on it ---- */
struct proc;
#define SHOOT_MAX	8	/* TLB shootdowns a CPU can have queued */
struct cpu {
	uint32_t kstack;	/* PC_KSTACK: kernel stack top of curproc */
	uint32_t onfault;	/* PC_ONFAULT: ucopy recovery address */
	int id;
	struct proc *cur;	/* running process, or NULL (scheduler) */
	uint32_t sched_sp;	/* the scheduler loop's saved sp */
	uint32_t asid_next;	/* per-CPU ASID allocator */
	uint32_t asid_gen;
	uint32_t im;		/* Status.IM bits this CPU enables */
	volatile uint32_t started;
	volatile uint32_t ipi_pending;	/* an IPI is queued at the device */
	volatile uint32_t mailbox;	/* IPI_* request bits */
	uint32_t shoot_n;		/* queued TLB shootdowns (BKL) */
	uint32_t shoot[SHOOT_MAX];	/* each an EntryHi: VPN2 | ASID */
	volatile int resched;	/* preempt at the next return to user */
	volatile int idle;
	uint32_t stack_top;	/* the scheduler/boot stack */
	/* statistics */
	uint32_t nsyscall, ntlbfault, nptmiss, nintr, nipi, nswitch, nshoot;
};
#define curcpu ((struct cpu *)PERCPU_VA)
extern struct cpu *cpus[MAXCPU];
extern int ncpus;

#define IPI_RESCHED	0x1
#define IPI_TLB		0x2	/* drain the shootdown queue */
#define IPI_NR		1	/* the one IPI number we send */

/* ---- locks ---- */
void spin_lock(volatile int *l);
int spin_trylock(volatile int *l);
void spin_unlock(volatile int *l);
uint32_t atomic_swap(volatile uint32_t *p, uint32_t v);
void atomic_or(volatile uint32_t *p, uint32_t bits);
/* The big kernel lock: held by a CPU while it runs kernel code outside
 * the idle wait; passed along across context switches. */
int bkl_enter(void);		/* 1 if this call took it */
void bkl_leave(int took);
void bkl_acquire(void);
void bkl_release(void);
int bkl_held(void);

/* ---- trap frame ---- */
struct trapframe {
	uint32_t r[32];
	uint32_t hi, lo, status, cause, epc, badvaddr;
};
void trap(struct trapframe *tf);
void trap_return(void);
void thread_trampoline(void);
void switch_ctx(uint32_t *save_sp, uint32_t load_sp);
int ucopy(void *dst, const void *src, uint32_t n);
int ucopystr(char *dst, const char *usrc, uint32_t max);
int uaccess_ok(uint32_t va, uint32_t n);

/* ---- console, printing, panic (main.c, printf.c) ---- */
void cons_putc(int c);
int kprintf(const char *fmt, ...);
int ksnprintf(char *buf, int n, const char *fmt, ...);
int kvsnprintf(char *buf, int n, const char *fmt, va_list ap);
void panic(const char *fmt, ...) __attribute__((noreturn));
void halt(int status) __attribute__((noreturn));
void cons_intr(void);
int cons_read(char *buf, int n);	/* blocks until >= 1 byte */
extern uint32_t kestrel_boot_mode;
extern uint32_t ram_size;

/* ---- string ---- */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
int strcmp(const char *a, const char *b);
size_t strlen(const char *s);
char *strncpy_z(char *d, const char *s, size_t n);

/* ---- memory (vm.c) ---- */
struct addrspace {
	uint32_t *pgdir;	/* 1024 entries: KVA of each PT page, or 0 */
	uint32_t text_lo, text_hi;	/* read-only region */
	uint32_t data_lo, brk;		/* read-write: data, bss, heap */
	uint32_t stack_lo, stack_hi;	/* read-write: stack */
	int shared;			/* shared page mapped at SHPAGE_VA */
};
#define USTACK_TOP	0x7fff0000
#define USTACK_SIZE	0x00100000
#define SHPAGE_VA	0x7f000000
#define PTE_OF(lo)	(lo)
void vm_init(uint32_t first_free_pa, uint32_t ram_end);
uint32_t page_alloc(void);		/* zeroed page, returns PA (panics if none) */
uint32_t page_alloc_try(void);		/* 0 if none */
void page_ref(uint32_t pa);
void page_unref(uint32_t pa);
uint32_t pages_free(void);
uint32_t pages_allocated(void);	/* lab kernel only (KESTREL_LAB) */
uint32_t write_protect_faults(void);	/* lab kernel only (KESTREL_LAB) */
struct addrspace *as_create(void);
void as_destroy(struct addrspace *as);
struct addrspace *as_fork(struct addrspace *src);
int as_map_page(struct addrspace *as, uint32_t va, uint32_t pa, int writable);
int vm_fault(struct addrspace *as, uint32_t va, int code);
void ptwin_fault(struct addrspace *as, uint32_t bva);
void tlb_init(void);
void tlb_flush_all(void);
void vm_activate(struct proc *p);
void vm_forget_asids(struct proc *p);
void tlb_shootdown(struct proc *p, uint32_t va);
void tlb_shootdown_drain(void);
uint32_t shared_page_pa(void);

/* ---- processes (proc.c) ---- */
enum pstate { P_FREE, P_EMBRYO, P_RUNNABLE, P_RUNNING, P_SLEEPING, P_ZOMBIE };
struct proc {
	enum pstate state;
	int pid;
	struct proc *parent;
	char name[16];
	struct addrspace *as;
	uint32_t kstack;		/* KVA of the stack's base */
	uint32_t ksp;			/* saved sp while switched out */
	struct trapframe *tf;		/* user trapframe at the stack top */
	void *chan;			/* sleeping on */
	uint32_t wake_tick;		/* for sleep() */
	int exit_status;
	int killed;
	uint32_t asid[MAXCPU];
	uint32_t asid_gen[MAXCPU];
	struct proc *rq_next;
	uint32_t cpumask;		/* CPUs it has run on */
};
extern struct proc procs[NPROC];
extern volatile uint32_t ticks;
void proc_init(void);
void sched_loop(void) __attribute__((noreturn));
void sched_yield(void);
void sched(void);
void make_runnable(struct proc *p);
void ksleep(void *chan);
void kwakeup(void *chan);
void sleeplock_acquire(volatile int *l);
void sleeplock_release(volatile int *l);
void timer_tick(void);
int proc_spawn_init(const char *mode);
int sys_fork(struct trapframe *tf);
int sys_execv(struct trapframe *tf, uint32_t upath, uint32_t uargv);
void proc_exit(int status) __attribute__((noreturn));
int sys_waitpid(int pid, uint32_t ustatus, int options);
int sys_sleep(uint32_t nticks);
void ipi_send(int cpu, uint32_t bits);
void idle_wait_once(volatile int *rq_len, volatile int *resched);
extern char idle_rollback_start[], idle_rollback_end[], idle_wait_insn[];
extern volatile int idle_has_wait;
void ipi_intr(void);
void syscall(struct trapframe *tf);
int lab_not_implemented(const char *what, const char *lab);
void lab_spin_lock_stub(volatile int *l);

/* ---- disk and kfs, the read-only file system (disk.c) ---- */
#define SECTOR_SIZE	512
#define KFS_MAXFILE	(64 * 1024)	/* largest file execv loads */
void kfs_mount(void);
int kfs_load(const char *name, uint8_t *buf);
void disk_intr(void);

/* ---- embedded programs (progs.S) ---- */
struct progent { const char *name; const uint8_t *start; const uint8_t *end; };
extern const struct progent progtab[];
const struct progent *prog_find(const char *name);
int elf_load(struct addrspace *as, const uint8_t *img, uint32_t len, uint32_t *entry);

/* ---- timer ---- */
void timer_arm(void);

#endif
