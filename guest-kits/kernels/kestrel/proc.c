/*
 * proc.c - processes, the scheduler, fork/exec/exit/wait, sleep, IPIs.
 *
 * Locking: one big kernel lock (BKL) covers every kernel data structure.
 * A CPU takes it on entry from user mode (trap.c) or in its scheduler
 * loop, keeps it across context switches (the thread switched to
 * continues holding it) and drops it on the way back to user mode or in
 * the idle wait. Kernel code runs with interrupts off; they are on in
 * user mode and in the idle wait.
 */
#include "kern.h"
#include "../../user/include/sysno.h"

struct proc procs[NPROC];
volatile uint32_t ticks;
static int next_pid = 1;
static struct proc *rq_head, *rq_tail;
static volatile int rq_len;
static struct proc *initproc;
/* Not in .bss: boot need not clear 512 KB that every user overwrites. */
static uint8_t kstacks[NPROC][KSTACK_SIZE]
	__attribute__((aligned(4096), section(".kstacks.proc")));

static void rq_push(struct proc *p)
{
	p->rq_next = NULL;
	if (rq_tail)
		rq_tail->rq_next = p;
	else
		rq_head = p;
	rq_tail = p;
	rq_len++;
}

static struct proc *rq_pop(void)
{
	struct proc *p = rq_head;
	if (p) {
		rq_head = p->rq_next;
		if (!rq_head)
			rq_tail = NULL;
		rq_len--;
	}
	return p;
}

void proc_init(void)
{
	for (int i = 0; i < NPROC; i++)
		procs[i].kstack = (uint32_t)kstacks[i];
}

/* First C code of a new process (BKL held, sp at its trapframe area). */
static void user_start(struct trapframe *tf)
{
	tf->status = (tf->status & ~ST_IM_MASK) | curcpu->im;
	bkl_release();
}

static struct proc *proc_alloc(const char *name)
{
	for (int i = 0; i < NPROC; i++) {
		struct proc *p = &procs[i];
		if (p->state != P_FREE)
			continue;
		uint32_t kstack = p->kstack;
		memset(p, 0, sizeof(*p));
		p->kstack = kstack;
		p->state = P_EMBRYO;
		p->pid = next_pid++;
		strncpy_z(p->name, name, sizeof(p->name));
		uint32_t top = kstack + KSTACK_SIZE;
		p->tf = (struct trapframe *)(top - TF_FRAME + 16);
		uint32_t *sw = (uint32_t *)(top - TF_FRAME - 48);
		memset(sw, 0, 48);
		sw[0] = (uint32_t)user_start;		/* s0 */
		sw[9] = (uint32_t)thread_trampoline;	/* ra */
		p->ksp = (uint32_t)sw;
		return p;
	}
	return NULL;
}

/* ---- scheduling ---- */

/* Wake one idle CPU (it may be in WAIT) to look at the run queue. */
static void wake_idle_cpu(void)
{
	for (int i = 0; i < ncpus; i++)
		if (i != curcpu->id && cpus[i]->idle) {
			ipi_send(i, IPI_RESCHED);
			break;
		}
}

void make_runnable(struct proc *p)
{
	p->state = P_RUNNABLE;
	rq_push(p);
	wake_idle_cpu();
}

/* Switch from the current process to this CPU's scheduler loop. */
void sched(void)
{
	struct proc *p = curcpu->cur;
	switch_ctx(&p->ksp, curcpu->sched_sp);
}

void sched_yield(void)
{
	struct proc *p = curcpu->cur;
	p->state = P_RUNNABLE;
	rq_push(p);
	/* this CPU takes the head of the queue; more than that is work for
	 * an idle one */
	if (rq_len > 1)
		wake_idle_cpu();
	sched();
}

/* Cleared by trap() when WAIT turns out to be a reserved instruction. */
volatile int idle_has_wait = 1;

static void idle_wait(void)
{
	struct cpu *c = curcpu;
	uint32_t st = rd_status();
	c->idle = 1;
	wr_status(st | ST_IE);
	while (rq_len == 0 && !c->resched)
		if (idle_has_wait)
			idle_wait_once(&rq_len, &c->resched);
	wr_status(st & ~ST_IE);
	c->idle = 0;
	c->resched = 0;
}

void sched_loop(void)
{
	struct cpu *c = curcpu;
	for (;;) {
		bkl_acquire();
		struct proc *p = rq_pop();
		if (p) {
			p->state = P_RUNNING;
			p->cpumask |= 1u << c->id;
			c->cur = p;
			c->kstack = p->kstack + KSTACK_SIZE;
			c->nswitch++;
			vm_activate(p);
			switch_ctx(&c->sched_sp, p->ksp);
			c->cur = NULL;
			vm_activate(NULL);
			bkl_release();
			continue;
		}
		bkl_release();
		idle_wait();
	}
}

void ksleep(void *chan)
{
	struct proc *p = curcpu->cur;
	p->chan = chan;
	p->state = P_SLEEPING;
	sched();
	p->chan = NULL;
}

/* A sleep lock: unlike the BKL, held across sleeps. Process context only. */
/* lab sync: begin sleep-lock */
void sleeplock_acquire(volatile int *l)
{
	while (*l)
		ksleep((void *)l);
	*l = 1;
}

void sleeplock_release(volatile int *l)
{
	*l = 0;
	kwakeup((void *)l);
}
/* lab sync: end sleep-lock */

void kwakeup(void *chan)
{
	for (int i = 0; i < NPROC; i++)
		if (procs[i].state == P_SLEEPING && procs[i].chan == chan)
			make_runnable(&procs[i]);
}

/* ---- IPIs: at most one queued per target (GXemul's queue breaks with
 * more), requests carried in the target's mailbox bits. ---- */

void ipi_send(int cpu, uint32_t bits)
{
	atomic_or(&cpus[cpu]->mailbox, bits);
	if (atomic_swap(&cpus[cpu]->ipi_pending, 1) == 0)
		mmio_wr(MP_BASE + MP_IPI_ONE, (IPI_NR << 16) | cpu);
}

void ipi_intr(void)
{
	struct cpu *c = curcpu;
	mmio_wr(MP_BASE + MP_IPI_READ, 0);	/* flush our queue: IP6 drops */
	c->ipi_pending = 0;
	uint32_t bits = atomic_swap(&c->mailbox, 0);
	if (bits & IPI_RESCHED)
		c->resched = 1;
	if (bits & IPI_TLB)
		tlb_shootdown_drain();
	c->nipi++;
}

/* ---- timer ---- */

void timer_arm(void)
{
	mtc0n(CP0_COMPARE, rd_count() + HZ_COUNTS);
}

void timer_tick(void)
{
	uint32_t cmp = mfc0n(CP0_COMPARE) + HZ_COUNTS;
	if ((int32_t)(cmp - rd_count()) <= 0)
		cmp = rd_count() + HZ_COUNTS;
	mtc0n(CP0_COMPARE, cmp);
	if (curcpu->id == 0) {
		ticks++;
		kwakeup((void *)&ticks);
	}
	if (curcpu->cur && rq_len)
		curcpu->resched = 1;
}

int sys_sleep(uint32_t n)
{
	uint32_t until = ticks + n;
	while ((int32_t)(ticks - until) < 0)
		ksleep((void *)&ticks);
	return 0;
}

/* ---- program loading ---- */

#define MAXARGS 8
#define ARGBUF 256

/* Load program `name` (from kfs on the disk, else from the programs
 * linked into the kernel) into a new address space with argv on its
 * stack; set up tf for its first instruction. Returns the address space. */
static struct addrspace *load_program(const char *name, int argc, char **argv,
				      struct trapframe *tf)
{
	/* under sys_execv's exec_lock (or at boot, before any process) */
	static uint8_t file[KFS_MAXFILE] __attribute__((aligned(8)));
	const uint8_t *img = file;
	int len = kfs_load(name, file);
	if (len < 0) {
		const struct progent *pe = prog_find(name);
		if (!pe)
			return NULL;
		img = pe->start;
		len = pe->end - pe->start;
	}
	struct addrspace *as = as_create();
	uint32_t entry;
	if (elf_load(as, img, len, &entry) < 0) {
		as_destroy(as);
		return NULL;
	}
	/* Top stack page: strings at the end, argv[] below, sp below that. */
	uint32_t pa = page_alloc_try();
	if (!pa || as_map_page(as, USTACK_TOP - PAGE_SIZE, pa, 1) < 0) {
		as_destroy(as);
		return NULL;
	}
	uint8_t *page = KVA(pa);
	uint32_t off = PAGE_SIZE, uptr[MAXARGS + 1];
	for (int i = argc - 1; i >= 0; i--) {
		uint32_t l = strlen(argv[i]) + 1;
		off -= l;
		memcpy(page + off, argv[i], l);
		uptr[i] = USTACK_TOP - PAGE_SIZE + off;
	}
	uptr[argc] = 0;
	off = (off - (argc + 1) * 4) & ~7u;
	memcpy(page + off, uptr, (argc + 1) * 4);
	uint32_t uargv = USTACK_TOP - PAGE_SIZE + off;
	memset(tf, 0, sizeof(*tf));
	tf->r[4] = argc;
	tf->r[5] = uargv;
	tf->r[29] = uargv - 16;
	tf->epc = entry;
	tf->status = ST_KSU_USER | ST_EXL | ST_IE;
	return as;
}

int proc_spawn_init(const char *mode)
{
	struct proc *p = proc_alloc("init");
	char *argv[2] = { "init", (char *)mode };
	if (!p || !(p->as = load_program("init", 2, argv, p->tf)))
		panic("cannot start init");
	initproc = p;
	make_runnable(p);
	return p->pid;
}

static int execv_locked(struct trapframe *tf, uint32_t upath, uint32_t uargv);

int sys_execv(struct trapframe *tf, uint32_t upath, uint32_t uargv)
{
	/* Reading the program from the disk may sleep (with the disk's
	 * completion interrupt), which lets the BKL go: this lock keeps the
	 * static buffers of execv and load_program to one process at a time. */
	static volatile int exec_lock;
	sleeplock_acquire(&exec_lock);
	int r = execv_locked(tf, upath, uargv);
	sleeplock_release(&exec_lock);
	return r;
}

static int execv_locked(struct trapframe *tf, uint32_t upath, uint32_t uargv)
{
	static char buf[ARGBUF];	/* scratch, under exec_lock */
	static char path[32];
	char *argv[MAXARGS + 1];
	int argc = 0, used = 0;
	if (ucopystr(path, (const char *)upath, sizeof(path)) < 0)
		return -EFAULT;
	for (;;) {
		uint32_t ustr;
		if (!uaccess_ok(uargv + argc * 4, 4) || ucopy(&ustr, (void *)(uargv + argc * 4), 4) < 0)
			return -EFAULT;
		if (!ustr)
			break;
		if (argc == MAXARGS)
			return -E2BIG;
		int l = ucopystr(buf + used, (const char *)ustr, ARGBUF - used);
		if (l == -2)
			return -E2BIG;
		if (l < 0)
			return -EFAULT;
		argv[argc++] = buf + used;
		used += l + 1;
	}
	const char *name = path[0] == '/' ? path + 1 : path;
	struct trapframe ntf;
	struct addrspace *as = load_program(name, argc, argv, &ntf);
	if (!as)
		return -ENOENT;
	struct proc *p = curcpu->cur;
	struct addrspace *old = p->as;
	p->as = as;
	strncpy_z(p->name, name, sizeof(p->name));
	vm_forget_asids(p);
	as_destroy(old);
	ntf.status = tf->status;
	*tf = ntf;
	return argc;	/* lands in v0; the new program ignores it */
}

int sys_fork(struct trapframe *tf)
{
	struct proc *p = curcpu->cur;
	struct proc *np = proc_alloc(p->name);
	if (!np)
		return -EAGAIN;
	np->as = as_fork(p->as);
	vm_forget_asids(p);	/* the parent's pages just became read-only */
	*np->tf = *tf;
	np->tf->r[2] = 0;	/* child: fork returns 0 */
	np->tf->r[7] = 0;
	np->parent = p;
	make_runnable(np);
	return np->pid;
}

void proc_exit(int status)
{
	struct proc *p = curcpu->cur;
	if (p == initproc) {
		kprintf("kestrel: init exited with status %d\n", status);
		halt(status);
	}
	as_destroy(p->as);
	p->as = NULL;
	for (int i = 0; i < NPROC; i++)
		if (procs[i].state != P_FREE && procs[i].parent == p) {
			procs[i].parent = initproc;
			if (procs[i].state == P_ZOMBIE)
				kwakeup(initproc);
		}
	p->exit_status = status;
	p->state = P_ZOMBIE;
	kwakeup(p->parent);
	sched();
	panic("zombie ran");
}

int sys_waitpid(int pid, uint32_t ustatus, int options)
{
	struct proc *me = curcpu->cur;
	if (ustatus && !uaccess_ok(ustatus, 4))
		return -EFAULT;
	for (;;) {
		int have = 0;
		for (int i = 0; i < NPROC; i++) {
			struct proc *c = &procs[i];
			if (c->state == P_FREE || c->parent != me || (pid > 0 && c->pid != pid))
				continue;
			have = 1;
			if (c->state == P_ZOMBIE) {
				int cpid = c->pid, st = c->exit_status;
				c->state = P_FREE;
				if (ustatus && ucopy((void *)ustatus, &st, 4) < 0)
					return -EFAULT;
				return cpid;
			}
		}
		if (!have)
			return -ECHILD;
		if (options & WNOHANG)
			return 0;
		ksleep(me);
	}
}
