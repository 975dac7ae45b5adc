/*
 * rtc - the real-time clock: read the time, then take periodic timer
 * interrupts on IP4.
 *
 * Writing RTC_HZ starts a periodic timer; each tick makes an interrupt
 * pending and asserts IP4 until software acknowledges it by accessing
 * RTC_ACK (one access acknowledges one tick). We enable only IM4 in
 * Status, count TICKS interrupts, then write 0 to RTC_HZ to stop it.
 * Neither the time nor how long the ticks take is printed: GXemul's rtc
 * follows the host's wall clock, disco's follows simulated time.
 */
#include "kit.h"

#define HZ 100
#define TICKS 10

static volatile u32 ticks;

void kit_trap(struct kit_frame *f)
{
	u32 pending = CAUSE_IP(f->cause) & (f->status >> 8) & 0xff;

	if (CAUSE_EXCCODE(f->cause) != EXC_INT || !(pending & (1u << IRQ_RTC))) {
		kit_puts("unexpected exception: ");
		kit_report_frame(f);
		kit_halt(KIT_FAIL_UNEXPECTED);
	}
	REG32(DEV_RTC, RTC_ACK) = 0; /* acknowledge one tick */
	ticks++;
}

int main(void)
{
	/* Latch the time, then read it. Only sanity-check microseconds. */
	REG32(DEV_RTC, RTC_TRIGGER) = 0;
	u32 usec = REG32(DEV_RTC, RTC_USEC);
	(void)REG32(DEV_RTC, RTC_SEC);
	KIT_CHECK(usec < 1000000, 2, "rtc microseconds out of range");
	kit_puts("rtc: time read\n");

	REG32(DEV_RTC, RTC_HZ) = HZ;
	KIT_CHECK(REG32(DEV_RTC, RTC_HZ) == HZ, 3, "rtc Hz does not read back");
	kit_puts("rtc: timer at ");
	kit_putdec(HZ);
	kit_puts(" Hz on IP4\n");

	mtc0(C0_STATUS, ST_IM(IRQ_RTC) | ST_IE);
	/* Long enough for TICKS ticks on a slow host; GXemul runs some 10^7
	 * loop iterations per second. */
	for (u32 spins = 0; ticks < TICKS; spins++)
		if (spins == 500000000u)
			kit_fail(4, "rtc interrupts stopped coming");
	mtc0(C0_STATUS, 0);
	REG32(DEV_RTC, RTC_HZ) = 0; /* stop the timer */

	kit_puts("rtc: ");
	kit_putdec(TICKS);
	kit_puts(" interrupts acknowledged\n");
	kit_puts("rtc: ok\n");
	return KIT_PASS;
}
