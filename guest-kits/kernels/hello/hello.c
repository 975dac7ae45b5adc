/*
 * hello - the smallest kernel: boot, take four exceptions on purpose,
 * handle each one, halt.
 *
 * What happens before main() (common/crt0.S): the loader jumps to _start
 * in kernel mode at KSEG0 0x80010000. crt0 sets Status to 0 (kernel mode,
 * interrupts off, BEV=0), switches to its own stack, clears .bss and
 * copies small jump stubs to the exception vectors (common/trap.S):
 *
 *   0x80000000  TLB refill   (a TLB miss while Status.EXL=0)
 *   0x80000180  general      (syscall, break, address error, ...)
 *
 * Both stubs save every register in a struct kit_frame and call kit_trap()
 * below with it; when kit_trap returns, the registers are restored from
 * the frame and ERET jumps to frame->epc. So a handler "skips" the
 * faulting instruction by adding 4 to f->epc, and "retries" it by leaving
 * f->epc alone.
 */
#include "kit.h"

/* How many exceptions of each kind we saw (checked at the end). */
static volatile u32 seen_sys, seen_bp, seen_adel, seen_refill;

/* The page that the TLB refill handler maps at USER_VA. Aligned to 4 KB
 * because a TLB entry maps whole pages. */
#define USER_VA 0x00400000u /* kuseg: mapped through the TLB */
#define MAGIC 0x600dc0deu
static u32 user_page[1024] __attribute__((aligned(4096))) = { MAGIC };

/*
 * Put the TLB in a known state. Its contents are undefined after reset,
 * and two entries matching the same address are an error on a real R4000
 * (a "TLB shutdown"). Give every entry a distinct VPN2 in KSEG0, which
 * never goes through the TLB, and no valid pages.
 */
static void tlb_init(void)
{
	mtc0(C0_PAGEMASK, 0); /* 4 KB pages */
	mtc0(C0_ENTRYLO0, 0);
	mtc0(C0_ENTRYLO1, 0);
	for (u32 i = 0; i < 48; i++) {
		mtc0(C0_ENTRYHI, KSEG0_BASE + i * 0x2000);
		mtc0(C0_INDEX, i);
		__asm__ volatile("tlbwi; nop; nop");
	}
	mtc0(C0_ENTRYHI, 0); /* ASID 0 for everything below */
}

/*
 * TLB refill: the CPU found no TLB entry for f->badvaddr. One entry maps
 * an even/odd pair of 4 KB pages (VPN2 = va bits 31..13): EntryLo0 the
 * even page, EntryLo1 the odd one. We map the even page to user_page's
 * physical address (KSEG0 address minus 0x80000000) and leave the odd
 * page invalid. TLBWR writes the entry at a random index (Random never
 * points below Wired, so wired entries survive). Then we return with EPC
 * unchanged: the load runs again and this time hits in the TLB.
 */
static void tlb_refill(struct kit_frame *f)
{
	u32 pa = (u32)user_page - KSEG0_BASE;

	KIT_CHECK((f->badvaddr & ~0x1fffu) == USER_VA, 2,
		  "TLB refill for an address we never use");
	mtc0(C0_ENTRYHI, f->badvaddr & ~0x1fffu); /* VPN2, ASID 0 */
	mtc0(C0_ENTRYLO0, ENTRYLO_PFN(pa) | ENTRYLO_C_NONCOHERENT |
				  ENTRYLO_D | ENTRYLO_V);
	mtc0(C0_ENTRYLO1, 0);
	mtc0(C0_PAGEMASK, 0);
	__asm__ volatile("tlbwr; nop; nop");
}

void kit_trap(struct kit_frame *f)
{
	u32 code = CAUSE_EXCCODE(f->cause);

	kit_puts("  exception: ");
	kit_report_frame(f);

	/* A fault in a branch delay slot has EPC pointing at the branch, and
	 * EPC+4 would skip the wrong instruction. Our deliberate faults are
	 * never in a delay slot, so this would be a bug. */
	KIT_CHECK(!(f->cause & CAUSE_BD), 3, "exception in a delay slot");

	if (f->vector == VEC_TLB_REFILL) {
		seen_refill++;
		tlb_refill(f);
		kit_puts("  -> wrote a TLB entry, retrying the load\n");
		return; /* EPC unchanged: retry */
	}
	switch (code) {
	case EXC_SYS:
		seen_sys++;
		break;
	case EXC_BP:
		seen_bp++;
		break;
	case EXC_ADEL:
		seen_adel++;
		break;
	default:
		kit_fail(KIT_FAIL_UNEXPECTED, "unexpected exception");
	}
	/* Skip the instruction that caused it (unlike a TLB miss, retrying
	 * would just fault again). */
	f->epc += 4;
	kit_puts("  -> skipping to epc+4\n");
}

int main(void)
{
	kit_puts("Hello from the disco hello kernel!\n");
	tlb_init();

	kit_puts("1. syscall\n");
	__asm__ volatile("syscall");

	kit_puts("2. break\n");
	__asm__ volatile("break");

	/* A word load must be 4-byte aligned; this one is not. The handler
	 * skips the load, so the destination register keeps its old value. */
	kit_puts("3. misaligned load\n");
	u32 odd_addr = (u32)&user_page[0] + 1, v = 0;
	__asm__ volatile("lw %0, 0(%1)" : "+r"(v) : "r"(odd_addr));

	/* kuseg addresses go through the TLB; nothing maps USER_VA yet. */
	kit_puts("4. load from unmapped kuseg address\n");
	__asm__ volatile("lw %0, 0(%1)" : "=r"(v) : "r"(USER_VA));
	kit_puts("   loaded ");
	kit_puthex(v);
	kit_putc('\n');

	KIT_CHECK(seen_sys == 1 && seen_bp == 1 && seen_adel == 1 &&
			  seen_refill == 1,
		  4, "did not see each exception exactly once");
	KIT_CHECK(v == MAGIC, 5, "mapped load returned the wrong value");
	kit_puts("hello: all four exceptions handled, halting with 0\n");
	return KIT_PASS;
}
