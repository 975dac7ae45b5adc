/*
 * smp - a shared counter incremented with LL/SC by every CPU.
 *
 * Run with 4 CPUs (GXemul: -n 4). CPU 0 starts each secondary CPU
 * through the mp device; a started CPU says it arrived, enables IPIs
 * (IP6) and parks in a loop until an IPI wakes it. Once all are parked,
 * CPU 0 sends each one IPI, and every CPU (CPU 0 too) adds 1 to the
 * shared counter ROUNDS times. CPU 0 waits for all and prints the final
 * count, which must be exactly ncpus * ROUNDS: LL/SC makes each
 * read-modify-write atomic (an SC fails, and we retry, if another CPU
 * wrote the word since our LL; R4000 manual, "LL"/"SC").
 */
#include "kit.h"

#define ROUNDS 100000
#define IPI_GO 1
#define SPIN_LIMIT 500000000u

static u8 stacks[KIT_MAX_CPUS][KIT_STACK_SIZE] __attribute__((aligned(16)));
static volatile u32 counter;
static volatile u32 parked[KIT_MAX_CPUS]; /* CPU i is in its park loop */
static volatile u32 woken[KIT_MAX_CPUS];  /* CPU i got its IPI */
static volatile u32 done[KIT_MAX_CPUS];   /* CPU i finished its rounds */

/* counter += 1, atomically. */
static void atomic_inc(volatile u32 *p)
{
	u32 tmp;
	__asm__ volatile(".set push\n\t.set noreorder\n"
			 "1:\tll %0, 0(%1)\n\t"
			 "addiu %0, %0, 1\n\t"
			 "sc %0, 0(%1)\n\t"   /* %0 = 1 if stored, 0 if not */
			 "beqz %0, 1b\n\t"
			 "nop\n\t"
			 ".set pop"
			 : "=&r"(tmp)
			 : "r"(p)
			 : "memory");
}

static void count_rounds(void)
{
	for (u32 i = 0; i < ROUNDS; i++)
		atomic_inc(&counter);
}

void kit_trap(struct kit_frame *f)
{
	u32 pending = CAUSE_IP(f->cause) & (f->status >> 8) & 0xff;

	if (CAUSE_EXCCODE(f->cause) != EXC_INT || !(pending & (1u << IRQ_MP))) {
		kit_puts("unexpected exception: ");
		kit_report_frame(f);
		kit_halt(KIT_FAIL_UNEXPECTED);
	}
	if (REG32(DEV_MP, MP_IPI_READ) == IPI_GO)
		woken[kit_whoami()] = 1;
}

void kit_secondary_main(u32 cpu, u32 boot_status)
{
	(void)boot_status;
	mtc0(C0_STATUS, ST_IM(IRQ_MP) | ST_IE);
	parked[cpu] = 1;
	while (!woken[cpu])
		; /* parked: only an IPI gets us out */
	mtc0(C0_STATUS, 0);
	count_rounds();
	__sync_synchronize(); /* our increments before `done` */
	done[cpu] = 1;
	for (;;)
		;
}

static void wait_for(volatile u32 *p, u32 code, const char *why)
{
	for (u32 spins = 0; !*p; spins++)
		if (spins == SPIN_LIMIT)
			kit_fail(code, why);
}

int main(void)
{
	u32 ncpus = kit_ncpus();
	KIT_CHECK(ncpus >= 2 && ncpus <= KIT_MAX_CPUS, 2,
		  "needs 2..8 CPUs (GXemul: -n 4)");

	for (u32 i = 1; i < ncpus; i++) {
		kit_start_cpu(i, stacks[i] + KIT_STACK_SIZE);
		wait_for(&parked[i], 3, "secondary CPU did not park");
	}
	kit_puts("smp: ");
	kit_putdec(ncpus - 1);
	kit_puts(" secondary CPUs started and parked\n");
	KIT_CHECK(counter == 0, 4, "a parked CPU counted");

	/* One IPI per CPU: never more than one pending anywhere. */
	for (u32 i = 1; i < ncpus; i++)
		kit_ipi_one(i, IPI_GO);
	count_rounds();
	for (u32 i = 1; i < ncpus; i++)
		wait_for(&done[i], 5, "secondary CPU did not finish");
	__sync_synchronize();

	kit_puts("smp: ");
	kit_putdec(ncpus);
	kit_puts(" CPUs x ");
	kit_putdec(ROUNDS);
	kit_puts(" LL/SC increments = ");
	kit_putdec(counter);
	kit_putc('\n');
	KIT_CHECK(counter == ncpus * ROUNDS, 6, "lost increments");
	kit_puts("smp: ok\n");
	return KIT_PASS;
}
