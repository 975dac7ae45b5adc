/*
 * trap.c - the C exception dispatcher and the system calls.
 *
 * Flow: vector (KSEG0 0x80000180) -> trampoline -> kwin_general (entry.S,
 * saves a struct trapframe) -> trap(tf) -> trap_return (restores, ERET).
 * TLB refills take the short path: 0x80000000 -> kwin_refill -> ERET.
 */
#include "kern.h"
#include "../../user/include/sysno.h"

static const char *const excname[32] = {
	"Int", "Mod", "TLBL", "TLBS", "AdEL", "AdES", "IBE", "DBE",
	"Sys", "Bp", "RI", "CpU", "Ov", "Tr", "VCEI", "FPE",
	[23] = "WATCH", [31] = "VCED",
};

static const char *exc_str(int code)
{
	return excname[code] ? excname[code] : "?";
}

int uaccess_ok(uint32_t va, uint32_t n)
{
	return va < USER_TOP && n <= USER_TOP - va;
}

static void kill_current(struct trapframe *tf, const char *why)
{
	struct proc *p = curcpu->cur;
	kprintf("kestrel: pid %d (%s) killed: %s epc=0x%08x badvaddr=0x%08x%s\n",
		p->pid, p->name, why, tf->epc, tf->badvaddr,
		tf->cause & CA_BD ? " (in a delay slot)" : "");
	p->killed = 1;
}

/*
 * Set by the tlb lab's starter refill handler (labs/tlb/README.md), which
 * sends every refill here through the general vector: 1 until said once.
 */
volatile int lab_refill_stubbed;

static void tlb_fault(struct trapframe *tf, int code, int user)
{
	uint32_t bva = tf->badvaddr;
	struct proc *p = curcpu->cur;
	if (lab_refill_stubbed == 1) {
		lab_refill_stubbed = 2;
		kprintf("kestrel: TLB refill handler: not implemented: see labs/tlb/README.md\n");
	}
	if (bva - PTWIN_BASE < PTWIN_SIZE) {
		/* nested refill miss on the linear page table */
		if (!p)
			panic("page-table miss with no process, epc=0x%x", tf->epc);
		curcpu->nptmiss++;
		ptwin_fault(p->as, bva);
		return;
	}
	if (bva < USER_TOP && p) {
		curcpu->ntlbfault++;
		if (vm_fault(p->as, bva, code) == 0)
			return;
		if (user) {
			kill_current(tf, exc_str(code));
			return;
		}
		if (curcpu->onfault) {
			tf->epc = curcpu->onfault;
			return;
		}
	}
	panic("kernel %s at epc=0x%08x badvaddr=0x%08x", exc_str(code), tf->epc, bva);
}

static void interrupt(struct trapframe *tf)
{
	uint32_t pend = tf->cause & curcpu->im & CA_IP_MASK;
	curcpu->nintr++;
	if (pend & ST_IM(IRQ_TIMER))
		timer_tick();
	if (pend & ST_IM(IRQ_IPI))
		ipi_intr();
	if (pend & ST_IM(IRQ_CONS))
		cons_intr();
	if (pend & ST_IM(IRQ_DISK))
		disk_intr();
}

void trap(struct trapframe *tf)
{
	int user = (tf->status & ST_KSU_MASK) != 0;
	int took = bkl_enter();
	int code = CA_EXC(tf->cause);

	switch (code) {
	case EXC_INT:
		/* interrupted between the idle checks and WAIT: check again */
		if (!user && tf->epc - (uint32_t)idle_rollback_start <
			     (uint32_t)(idle_rollback_end - idle_rollback_start))
			tf->epc = (uint32_t)idle_rollback_start;
		interrupt(tf);
		break;
	case EXC_MOD:
	case EXC_TLBL:
	case EXC_TLBS:
		tlb_fault(tf, code, user);
		break;
	case EXC_SYS:
		if (!user)
			panic("syscall in kernel mode at 0x%08x", tf->epc);
		syscall(tf);
		break;
	case EXC_RI:
		if (!user && tf->epc == (uint32_t)idle_wait_insn) {
			idle_has_wait = 0;	/* no WAIT here: spin when idle */
			tf->epc += 4;
			break;
		}
		/* fall through */
	default:
		if (!user)
			panic("kernel exception %s at epc=0x%08x badvaddr=0x%08x cause=0x%08x",
			      exc_str(code), tf->epc, tf->badvaddr, tf->cause);
		kill_current(tf, exc_str(code));
		break;
	}

	if (user) {
		struct proc *p = curcpu->cur;
		if (p->killed)
			proc_exit(128 + code);
		if (curcpu->resched) {
			curcpu->resched = 0;
			sched_yield();
		}
		/* we may have moved: enable this CPU's interrupt lines */
		tf->status = (tf->status & ~ST_IM_MASK) | curcpu->im;
	}
	bkl_leave(took);
}

/* ---- system calls ---- */

static int sys_write(int fd, uint32_t ubuf, uint32_t n)
{
	char buf[128];
	if (fd != 1 && fd != 2)
		return -EINVAL;
	if (!uaccess_ok(ubuf, n))
		return -EFAULT;
	for (uint32_t done = 0; done < n;) {
		uint32_t k = n - done < sizeof(buf) ? n - done : sizeof(buf);
		if (ucopy(buf, (void *)(ubuf + done), k) < 0)
			return -EFAULT;
		for (uint32_t i = 0; i < k; i++)
			cons_putc(buf[i]);
		done += k;
	}
	return n;
}

static int sys_read(int fd, uint32_t ubuf, uint32_t n)
{
	char buf[64];
	if (fd != 0)
		return -EINVAL;
	if (!uaccess_ok(ubuf, n))
		return -EFAULT;
	if (n == 0)
		return 0;
	int k = cons_read(buf, n < sizeof(buf) ? n : sizeof(buf));
	if (ucopy((void *)ubuf, buf, k) < 0)
		return -EFAULT;
	return k;
}

/*
 * A lab region's starter stub (labs/README.md, `disco lab start`): say so
 * on the console and fail the call, so a test fails by name, never hangs.
 */
int lab_not_implemented(const char *what, const char *lab)
{
	kprintf("kestrel: %s: not implemented: see labs/%s/README.md\n", what, lab);
	return -ENOSYS;
}

static int sys_sbrk(int incr)
{
	/* lab syscalls: begin sbrk */
	struct addrspace *as = curcpu->cur->as;
	uint32_t old = as->brk, nb = old + incr;
	if ((incr > 0 && nb < old) || (incr < 0 && nb > old) || nb < as->data_lo ||
	    nb > as->stack_lo - PAGE_SIZE || nb > SHPAGE_VA)
		return -ENOMEM;
	as->brk = nb;
	return old;
	/* lab syscalls: end sbrk */
}

static int sys_getppid(void)
{
	/* lab syscalls: begin getppid */
	struct proc *parent = curcpu->cur->parent;
	return parent ? parent->pid : 0;
	/* lab syscalls: end getppid */
}

static int sys_uptime(uint32_t uptr)
{
	/* lab syscalls: begin uptime */
	struct uptime u;
	if (!uaccess_ok(uptr, sizeof(u)))
		return -EFAULT;
	u.ticks = ticks;
	u.count = rd_count();
	if (ucopy((void *)uptr, &u, sizeof(u)) < 0)
		return -EFAULT;
	return 0;
	/* lab syscalls: end uptime */
}

/*
 * bump(n): add n to one machine-wide counter and return the new value.
 * Only the big kernel lock protects it, and the read and the write are
 * apart on purpose: with a lock that is not atomic, CPUs lose updates
 * (the sync lab's stress test counts them).
 */
static volatile uint32_t bump_counter;

static int sys_bump(uint32_t n)
{
	uint32_t v = bump_counter;
	for (volatile int i = 0; i < 16; i++)
		;
	bump_counter = v + n;
	return bump_counter;
}

#ifdef KESTREL_LAB
/*
 * sleepbump(n): add n to a counter under a sleep lock, giving up the CPU
 * (and with it the big kernel lock) between the read and the write. Only
 * the sleep lock keeps two updates apart, so lost updates show a sleep
 * lock that lets two holders in (the sync lab's sleeplock-stress).
 * Lab kernel only, like labstat: kestrel.elf and kestrel-bench.elf are
 * built without KESTREL_LAB and keep their code.
 */
static volatile int sleepbump_lock;
static uint32_t sleepbump_counter;

static int sys_sleepbump(uint32_t n)
{
	sleeplock_acquire(&sleepbump_lock);
	uint32_t v = sleepbump_counter;
	sched_yield();
	sleepbump_counter = v + n;
	v = sleepbump_counter;
	sleeplock_release(&sleepbump_lock);
	return v;
}

/* labstat(0): free pages; labstat(1): pages allocated since boot;
 * labstat(2): writes that faulted on a valid read-only page (copy-on-write
 * or a page mapped without PTE_D). The tlb and cow labs' tests count leaks,
 * copies and second faults with them. */
static int sys_labstat(uint32_t what)
{
	if (what == 0)
		return pages_free();
	if (what == 1)
		return pages_allocated();
	if (what == 2)
		return write_protect_faults();
	return -EINVAL;
}
#endif

void syscall(struct trapframe *tf)
{
	uint32_t n = tf->r[2], a0 = tf->r[4], a1 = tf->r[5], a2 = tf->r[6];
	struct proc *p = curcpu->cur;
	int ret;
	curcpu->nsyscall++;
	tf->epc += 4;	/* stubs never put syscall in a delay slot */
	switch (n) {
	case SYS_exit:
		proc_exit(a0);
	case SYS_write:
		ret = sys_write(a0, a1, a2);
		break;
	case SYS_read:
		ret = sys_read(a0, a1, a2);
		break;
	case SYS_getpid:
		ret = p->pid;
		break;
	case SYS_fork:
		ret = sys_fork(tf);
		break;
	case SYS_execv:
		ret = sys_execv(tf, a0, a1);
		break;
	case SYS_waitpid:
		ret = sys_waitpid(a0, a1, a2);
		break;
	case SYS_sbrk:
		ret = sys_sbrk(a0);
		break;
	case SYS_yield:
		sched_yield();
		ret = 0;
		break;
	case SYS_sleep:
		ret = sys_sleep(a0);
		break;
	case SYS_time:
		ret = ticks;
		break;
	case SYS_cycles:
		ret = rd_count();
		break;
	case SYS_getcpu:
		ret = curcpu->id;
		break;
	case SYS_ncpus:
		ret = ncpus;
		break;
	case SYS_getppid:
		ret = sys_getppid();
		break;
	case SYS_uptime:
		ret = sys_uptime(a0);
		break;
	case SYS_bump:
		ret = sys_bump(a0);
		break;
	case SYS_tlbfaults:
		ret = 0;
		for (int i = 0; i < ncpus; i++)
			ret += cpus[i]->ntlbfault;
		break;
	case SYS_shpage:
		p->as->shared = 1;
		ret = SHPAGE_VA;
		break;
#ifdef KESTREL_LAB
	case SYS_sleepbump:
		ret = sys_sleepbump(a0);
		break;
	case SYS_labstat:
		ret = sys_labstat(a0);
		break;
#endif
	default:
		ret = -ENOSYS;
	}
	tf->r[2] = ret;
}
