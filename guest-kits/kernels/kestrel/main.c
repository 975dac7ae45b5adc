/*
 * main.c - boot (CPU 0 and secondaries), per-CPU set-up, console,
 * big kernel lock, panic and halt.
 */
#include "kern.h"

extern uint8_t _bss_start[], _bss_end[], _end[], cpu_stacks[];
extern void ksecondary(void);
void tlb_write_index(int idx, uint32_t hi, uint32_t lo0, uint32_t lo1, uint32_t mask);

#define CPU_STACK_SIZE 8192
static uint8_t cpu_pages[MAXCPU][PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
struct cpu *cpus[MAXCPU];
int ncpus;
uint32_t ram_size;

_Static_assert(__builtin_offsetof(struct cpu, kstack) == PC_KSTACK, "PC_KSTACK");
_Static_assert(__builtin_offsetof(struct cpu, onfault) == PC_ONFAULT, "PC_ONFAULT");
_Static_assert(sizeof(struct trapframe) == TF_SIZE, "TF_SIZE");
_Static_assert(sizeof(struct cpu) <= PAGE_SIZE, "struct cpu fits a page");

/* ---- console ---- */

void cons_putc(int c)
{
	*(volatile uint8_t *)CONS_BASE = c;
}

static char cons_buf[256];
static uint32_t cons_r, cons_w;

void cons_intr(void)
{
	int c;
	while ((c = *(volatile uint8_t *)CONS_BASE) != 0) {
		if (cons_w - cons_r < sizeof(cons_buf))
			cons_buf[cons_w++ % sizeof(cons_buf)] = c;
	}
	kwakeup(cons_buf);
}

int cons_read(char *buf, int n)
{
	while (cons_r == cons_w)
		ksleep(cons_buf);
	int k = 0;
	while (k < n && cons_r != cons_w)
		buf[k++] = cons_buf[cons_r++ % sizeof(cons_buf)];
	return k;
}

/* ---- halt and panic ---- */

/* Bench and shootdown modes: per-CPU counters (they vary from run to run). */
static void print_stats(void)
{
	for (int i = 0; i < ncpus; i++) {
		struct cpu *c = cpus[i];
		kprintf("kestrel: cpu %d: %u syscalls, %u tlb faults, %u pt misses, "
			"%u interrupts, %u ipis, %u shootdowns, %u switches\n", i, c->nsyscall,
			c->ntlbfault, c->nptmiss, c->nintr, c->nipi, c->nshoot, c->nswitch);
	}
}

void halt(int status)
{
	if (kestrel_boot_mode == 1 || kestrel_boot_mode == 4)
		print_stats();
	int code = status & 0xff;
	if (status != 0 && code == 0)
		code = 1;
	kprintf("kestrel: halt status %d\n", code);
	*(volatile uint8_t *)(CONS_BASE + CONS_HALT) = code;
	for (;;)
		;
}

static volatile int panicking;

void panic(const char *fmt, ...)
{
	char buf[160];
	va_list ap;
	wr_status(rd_status() & ~ST_IE);
	if (atomic_swap((volatile uint32_t *)&panicking, 1))
		for (;;)
			;	/* another CPU is already panicking */
	va_start(ap, fmt);
	kvsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	kprintf("kestrel: panic: %s\n", buf);
	halt(0xff);
}

/* ---- big kernel lock ---- */

static volatile int bkl_word;
static volatile int bkl_owner = -1;

void bkl_acquire(void)
{
	spin_lock(&bkl_word);
	bkl_owner = curcpu->id;
}

void bkl_release(void)
{
	bkl_owner = -1;
	spin_unlock(&bkl_word);
}

int bkl_held(void) { return bkl_owner == curcpu->id; }

/*
 * The sync lab's starter spin_lock (labs/sync/README.md) jumps here: it
 * says so once, then takes the lock with a plain load and store, which is
 * enough on one CPU and races on several (the lab's tests show it).
 */
void lab_spin_lock_stub(volatile int *l)
{
	static int said;
	if (!said) {
		said = 1;
		kprintf("kestrel: spin_lock: not implemented: see labs/sync/README.md\n");
	}
	while (*l)
		;
	*l = 1;
}

int bkl_enter(void)
{
	if (bkl_held())
		return 0;
	bkl_acquire();
	return 1;
}

void bkl_leave(int took)
{
	if (took)
		bkl_release();
}

/* ---- per-CPU set-up (runs on the CPU itself) ---- */

static void percpu_init(int id)
{
	struct cpu *c = (struct cpu *)cpu_pages[id];
	cpus[id] = c;
	/* wired entry 1: PERCPU_VA -> this CPU's page (odd half invalid) */
	tlb_write_index(WIRED_PERCPU, PERCPU_VA,
			((KPA(c) >> PAGE_SHIFT) << PTE_PFN_SHIFT) | PTE_CACHED | PTE_D | PTE_V | PTE_G,
			PTE_G, PM_4K);
	tlb_init();
	mtc0n(CP0_CONTEXT, PTWIN_BASE);	/* PTEBase: the linear page table */
	mtc0n(CP0_ENTRYHI, 0);
	memset(c, 0, PAGE_SIZE);
	curcpu->id = id;
	curcpu->asid_next = 1;
	curcpu->asid_gen = 1;
	curcpu->im = ST_IM(IRQ_TIMER) | ST_IM(IRQ_IPI) |
		     (id == 0 ? ST_IM(IRQ_CONS) | ST_IM(IRQ_DISK) : 0);
	curcpu->stack_top = (uint32_t)cpu_stacks + (id + 1) * CPU_STACK_SIZE;
	/* Status: kernel, interrupts masked (IE=0) but lines selected */
	wr_status(curcpu->im);
	timer_arm();
}

static const char *const mode_name[] = { "demo", "bench", "echo", "fault", "shootdown", "lab", "parallel" };
#define NMODES (int)(sizeof(mode_name) / sizeof(mode_name[0]))

void kmain(void)
{
	memset(_bss_start, 0, _bss_end - _bss_start);
	ram_size = mmio_rd(MP_BASE + MP_MEMORY);
	if (ram_size > KWIN_SIZE)
		ram_size = KWIN_SIZE;
	ncpus = mmio_rd(MP_BASE + MP_NCPUS);
	if (ncpus < 1)
		ncpus = 1;
	if (ncpus > MAXCPU)
		ncpus = MAXCPU;
	percpu_init(0);
	uint32_t mode = kestrel_boot_mode < NMODES ? kestrel_boot_mode : 0;
	kprintf("kestrel: booting, %d cpu%s, %u MB RAM, mode %s\n", ncpus,
		ncpus == 1 ? "" : "s", ram_size >> 20, mode_name[mode]);
	uint32_t first_free = (KPA(_end) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	vm_init(first_free, ram_size);
	proc_init();
	kfs_mount();
	for (int i = 1; i < ncpus; i++) {
		mmio_wr(MP_BASE + MP_STARTUPADDR, (uint32_t)ksecondary);
		mmio_wr(MP_BASE + MP_STARTUPSTACK, (uint32_t)cpu_stacks + (i + 1) * CPU_STACK_SIZE - 16);
		mmio_wr(MP_BASE + MP_STARTUPCPU, i);
		struct cpu *volatile *slot = &cpus[i];
		while (!*slot || !((volatile struct cpu *)*slot)->started)
			;
	}
	if (ncpus > 1)
		kprintf("kestrel: %d secondary cpus started\n", ncpus - 1);
	proc_spawn_init(mode_name[mode]);
	sched_loop();
}

void secondary_main(void)
{
	int id = mmio_rd(MP_BASE + MP_WHOAMI);
	percpu_init(id);
	curcpu->started = 1;
	sched_loop();
}

/* ---- embedded program table ---- */

const struct progent *prog_find(const char *name)
{
	for (const struct progent *p = progtab; p->name; p++)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}
