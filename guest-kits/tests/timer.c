/*
 * timer - CP0 Count/Compare interrupts on IP7.
 *
 * Count increases steadily (every other cycle on an R4000); when it
 * equals Compare the CPU raises Cause.IP7, which stays up until software
 * writes Compare again (R4000 manual, "Count and Compare registers").
 * We take TICKS interrupts INTERVAL counts apart, re-arming Compare in the
 * handler, and check that each one really came after its deadline (a
 * deadline already passed when the handler runs is moved INTERVAL counts
 * past the current Count).
 */
#include "kit.h"

#define TICKS 5
#define INTERVAL 20000 /* Count units between interrupts */

static volatile u32 ticks;
static volatile u32 late_ok = 1; /* every tick came at or after its deadline */
static u32 deadline;

void kit_trap(struct kit_frame *f)
{
	u32 pending = CAUSE_IP(f->cause) & (f->status >> 8) & 0xff;

	if (CAUSE_EXCCODE(f->cause) != EXC_INT || !(pending & (1u << IRQ_TIMER))) {
		kit_puts("unexpected exception: ");
		kit_report_frame(f);
		kit_halt(KIT_FAIL_UNEXPECTED);
	}
	/* Count - deadline, as a signed difference, copes with wraparound. */
	if ((s32)(mfc0(C0_COUNT) - deadline) < 0)
		late_ok = 0;
	ticks++;
	deadline += INTERVAL;
	/*
	 * Under a monitor that time-shares the CPU, Count runs on while this
	 * CPU is away: after a long turn away the next deadline may already
	 * have passed, and Compare set behind Count would match only after
	 * Count wraps. Skip the missed ticks' deadlines instead.
	 */
	if ((s32)(mfc0(C0_COUNT) - deadline) >= 0)
		deadline = mfc0(C0_COUNT) + INTERVAL;
	mtc0(C0_COMPARE, deadline); /* writing Compare clears IP7 */
	if (ticks == TICKS) /* last one: leave IP7 masked */
		f->status &= ~ST_IM(IRQ_TIMER);
}

int main(void)
{
	kit_puts("timer: arming Count/Compare every ");
	kit_putdec(INTERVAL);
	kit_puts(" counts on IP7\n");

	deadline = mfc0(C0_COUNT) + INTERVAL;
	mtc0(C0_COMPARE, deadline);
	mtc0(C0_STATUS, ST_IM(IRQ_TIMER) | ST_IE);

	u32 spins = 0;
	while (ticks < TICKS) {
		if (++spins == 100000000u)
			kit_fail(2, "timer interrupts stopped coming");
	}
	irq_disable();
	mtc0(C0_STATUS, 0);

	kit_puts("timer: ");
	kit_putdec(ticks);
	kit_puts(" interrupts\n");
	KIT_CHECK(late_ok, 3, "an interrupt came before Count reached Compare");
	kit_puts("timer: ok\n");
	return KIT_PASS;
}
