/*
 * mp - the multiprocessor controller: whoami, ncpus, memory size,
 * starting secondary CPUs, IPIs (ipi_one, ipi_many, ipi_read, flush) and
 * the cycle counter. Run with 4 CPUs (GXemul: -n 4); any count from 2 to
 * KIT_MAX_CPUS works, but the expected output in README.md is for 4.
 *
 * The handshake, for each secondary CPU i in turn:
 *   CPU 0: start CPU i; wait until it says it arrived.
 *   CPU i: enable IP6 (IPIs), spin until an IPI arrives.
 *   CPU 0: ipi_one(nr = 10 + i, cpu i); wait for the reply.
 *   CPU i: the handler reads ipi_read = 10 + i; reply ipi_one(100 + i, cpu 0).
 * Then CPU 0 sends one ipi_many(nr = 50, all but CPU 0) and waits until
 * every secondary has seen it. At most one IPI is ever pending per CPU,
 * which keeps clear of GXemul's IPI queue bug (README.md).
 */
#include "kit.h"

#define IPI_WAKE(i) (10 + (i))
#define IPI_REPLY(i) (100 + (i))
#define IPI_ALL 50
#define SPIN_LIMIT 100000000u

static u8 stacks[KIT_MAX_CPUS][KIT_STACK_SIZE] __attribute__((aligned(16)));
static volatile u32 arrived[KIT_MAX_CPUS];  /* whoami + 1, set by CPU i */
static volatile u32 last_ipi[KIT_MAX_CPUS]; /* last IPI number CPU i read */
static volatile u32 saw_all[KIT_MAX_CPUS];  /* CPU i received IPI_ALL */
static volatile u32 sp_ok[KIT_MAX_CPUS];    /* CPU i's sp was in stacks[i] */

void kit_trap(struct kit_frame *f)
{
	u32 pending = CAUSE_IP(f->cause) & (f->status >> 8) & 0xff;
	u32 me = kit_whoami();

	if (CAUSE_EXCCODE(f->cause) != EXC_INT || !(pending & (1u << IRQ_MP))) {
		kit_puts("unexpected exception: ");
		kit_report_frame(f);
		kit_halt(KIT_FAIL_UNEXPECTED);
	}
	/* Reading ipi_read dequeues one IPI; IP6 drops when the queue is
	 * empty. Read one per interrupt: if more were queued, IP6 is still
	 * up and we come straight back. */
	u32 nr = REG32(DEV_MP, MP_IPI_READ);
	if (nr == 0)
		return; /* spurious */
	last_ipi[me] = nr;
	if (nr == IPI_ALL)
		saw_all[me] = 1;
	else if (me != 0)
		kit_ipi_one(0, IPI_REPLY(me));
}

void kit_secondary_main(u32 cpu, u32 boot_status)
{
	u32 sp;
	(void)boot_status;
	__asm__ volatile("move %0, $sp" : "=r"(sp));
	sp_ok[cpu] = sp > (u32)stacks[cpu] && sp <= (u32)stacks[cpu] + KIT_STACK_SIZE;
	__sync_synchronize();
	arrived[cpu] = cpu + 1;
	mtc0(C0_STATUS, ST_IM(IRQ_MP) | ST_IE);
	for (;;)
		; /* everything else happens in kit_trap */
}

static void wait_for(volatile u32 *p, u32 value, u32 code, const char *why)
{
	for (u32 spins = 0; *p != value; spins++)
		if (spins == SPIN_LIMIT)
			kit_fail(code, why);
}

int main(void)
{
	u32 ncpus = kit_ncpus();

	kit_putline("mp: whoami", kit_whoami());
	kit_puts("mp: ncpus ");
	kit_putdec(ncpus);
	kit_puts("\nmp: memory ");
	kit_putdec(REG32(DEV_MP, MP_MEMORY) >> 20);
	kit_puts(" MB\n");
	KIT_CHECK(kit_whoami() == 0, 2, "CPU 0 is not whoami 0");
	KIT_CHECK(ncpus >= 2 && ncpus <= KIT_MAX_CPUS, 3,
		  "needs 2..8 CPUs (GXemul: -n 4)");

	/* The cycle counter moves (GXemul updates it only now and then). */
	u32 c0 = REG32(DEV_MP, MP_NCYCLES);
	for (volatile u32 i = 0; i < 100000; i++)
		;
	KIT_CHECK(REG32(DEV_MP, MP_NCYCLES) != c0, 4, "ncycles does not move");

	/* ipi_one to ourselves with interrupts off: IP6 rises; ipi_flush
	 * (a write to ipi_read) empties the queue and drops it. */
	kit_ipi_one(0, 7);
	KIT_CHECK(CAUSE_IP(mfc0(C0_CAUSE)) & (1u << IRQ_MP), 5, "IPI did not raise IP6");
	REG32(DEV_MP, MP_IPI_READ) = 0;
	KIT_CHECK(!(CAUSE_IP(mfc0(C0_CAUSE)) & (1u << IRQ_MP)), 6, "ipi_flush left IP6 up");
	KIT_CHECK(REG32(DEV_MP, MP_IPI_READ) == 0, 6, "ipi_flush left an IPI queued");
	kit_puts("mp: self-IPI raised IP6, flush cleared it\n");

	mtc0(C0_STATUS, ST_IM(IRQ_MP) | ST_IE);
	for (u32 i = 1; i < ncpus; i++) {
		kit_start_cpu(i, stacks[i] + KIT_STACK_SIZE);
		wait_for(&arrived[i], i + 1, 7, "secondary CPU did not start");
		KIT_CHECK(sp_ok[i], 8, "secondary CPU did not get its startupstack");
		kit_ipi_one(i, IPI_WAKE(i));
		wait_for(&last_ipi[i], IPI_WAKE(i), 9, "secondary got no IPI");
		wait_for(&last_ipi[0], IPI_REPLY(i), 10, "no reply IPI");
		kit_puts("mp: cpu ");
		kit_putdec(i);
		kit_puts(" started, got IPI ");
		kit_putdec(IPI_WAKE(i));
		kit_puts(", replied ");
		kit_putdec(IPI_REPLY(i));
		kit_putc('\n');
	}

	REG32(DEV_MP, MP_IPI_MANY) = (IPI_ALL << 16) | 0;
	for (u32 i = 1; i < ncpus; i++)
		wait_for(&saw_all[i], 1, 11, "ipi_many did not reach a CPU");
	mtc0(C0_STATUS, 0);
	KIT_CHECK(!saw_all[0] && REG32(DEV_MP, MP_IPI_READ) == 0, 12,
		  "ipi_many reached the excluded CPU");
	kit_puts("mp: ipi_many reached all other CPUs\n");
	kit_puts("mp: ok\n");
	return KIT_PASS;
}
