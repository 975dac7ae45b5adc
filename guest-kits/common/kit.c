/*
 * kit.c - console output, halt, exception names and the default trap
 * handler shared by every kit program. Deliberately tiny: no printf, no
 * locks (on SMP, only one CPU should print at a time).
 */
#include "kit.h"

void kit_putc(char c)
{
	REG8(DEV_CONS, CONS_DATA) = (u8)c;
}

void kit_puts(const char *s)
{
	while (*s)
		kit_putc(*s++);
}

void kit_puthex(u32 v)
{
	static const char digits[] = "0123456789abcdef";
	kit_puts("0x");
	for (int shift = 28; shift >= 0; shift -= 4)
		kit_putc(digits[(v >> shift) & 0xf]);
}

void kit_putdec(u32 v)
{
	char buf[10]; /* 4294967295 has 10 digits */
	int n = 0;
	do {
		buf[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0)
		kit_putc(buf[--n]);
}

void kit_putsdec(s32 v)
{
	if (v < 0) {
		kit_putc('-');
		kit_putdec(0u - (u32)v);
	} else {
		kit_putdec((u32)v);
	}
}

void kit_putline(const char *label, u32 hex)
{
	kit_puts(label);
	kit_putc(' ');
	kit_puthex(hex);
	kit_putc('\n');
}

void kit_halt(u32 code)
{
	REG8(DEV_CONS, CONS_HALT) = (u8)code;
	/* A simulator stops at the write above; should one not, spin. */
	for (;;)
		;
}

void kit_fail(u32 code, const char *why)
{
	kit_puts("FAIL: ");
	kit_puts(why);
	kit_putc('\n');
	kit_halt(code ? code : KIT_FAIL);
}

const char *kit_exc_name(u32 exccode)
{
	/* Names as in the R4000 manual's Cause register table. */
	static const char *const names[32] = {
		"Int", "Mod", "TLBL", "TLBS", "AdEL", "AdES", "IBE", "DBE",
		"Sys", "Bp", "RI", "CpU", "Ov", "Tr", "VCEI", "FPE",
		"Res16", "Res17", "Res18", "Res19", "Res20", "Res21", "Res22",
		"WATCH", "Res24", "Res25", "Res26", "Res27", "Res28", "Res29",
		"Res30", "VCED",
	};
	return names[exccode & 31];
}

void kit_report_frame(const struct kit_frame *f)
{
	u32 code = CAUSE_EXCCODE(f->cause);
	kit_puts(kit_exc_name(code));
	if (f->vector == VEC_TLB_REFILL)
		kit_puts(" (refill vector)");
	kit_puts(" epc=");
	kit_puthex(f->epc);
	if (code == EXC_MOD || code == EXC_TLBL || code == EXC_TLBS ||
	    code == EXC_ADEL || code == EXC_ADES) {
		kit_puts(" badvaddr=");
		kit_puthex(f->badvaddr);
	}
	kit_putc('\n');
}

/* Default handler: any exception a program did not expect is a failure. */
__attribute__((weak)) void kit_trap(struct kit_frame *f)
{
	kit_puts("unexpected exception: ");
	kit_report_frame(f);
	kit_puts("cause ");
	kit_puthex(f->cause);
	kit_puts(" status ");
	kit_puthex(f->status);
	kit_putc('\n');
	kit_halt(KIT_FAIL_UNEXPECTED);
}

/* GCC may emit calls to memcpy/memset even with -ffreestanding, so they
 * exist under their standard names too. */
void *memcpy(void *dst, const void *src, unsigned int n);
void *memset(void *dst, int c, unsigned int n);

void *memcpy(void *dst, const void *src, unsigned int n)
{
	u8 *d = dst;
	const u8 *s = src;
	while (n--)
		*d++ = *s++;
	return dst;
}

void *memset(void *dst, int c, unsigned int n)
{
	u8 *d = dst;
	while (n--)
		*d++ = (u8)c;
	return dst;
}

void kit_memcpy(void *dst, const void *src, u32 n) { memcpy(dst, src, n); }
void kit_memset(void *dst, int c, u32 n) { memset(dst, c, n); }

extern char kit_vec_refill[], kit_vec_refill_end[];
extern char kit_vec_xrefill[], kit_vec_xrefill_end[];
extern char kit_vec_general[], kit_vec_general_end[];

void kit_install_vectors(void)
{
	kit_memcpy((void *)KSEG0(VEC_TLB_REFILL), kit_vec_refill,
		   (u32)(kit_vec_refill_end - kit_vec_refill));
	kit_memcpy((void *)KSEG0(VEC_XTLB_REFILL), kit_vec_xrefill,
		   (u32)(kit_vec_xrefill_end - kit_vec_xrefill));
	kit_memcpy((void *)KSEG0(VEC_GENERAL), kit_vec_general,
		   (u32)(kit_vec_general_end - kit_vec_general));
	/* On a real R4000 the new code is in the D-cache only: write it back
	 * and invalidate the I-cache lines (CACHE instruction) before use.
	 * GXemul and disco model no caches, so we skip that here. */
	mtc0(C0_STATUS, mfc0(C0_STATUS) & ~ST_BEV);
}

/* Default for programs that never start a secondary CPU: park it. */
__attribute__((weak)) void kit_secondary_main(u32 cpu, u32 boot_status)
{
	(void)cpu;
	(void)boot_status;
	for (;;)
		;
}

void kit_start_cpu(u32 cpu, void *stack_top)
{
	REG32(DEV_MP, MP_STARTUPADDR) = (u32)kit_secondary_start;
	REG32(DEV_MP, MP_STARTUPSTACK) = (u32)stack_top;
	REG32(DEV_MP, MP_STARTUPCPU) = cpu;
}
