/*
 * kit.h - the one header every guest-kit program includes.
 *
 * It names the board (GXemul's testmips device map, see
 * ../../../shared/docs/board-testmips.md and docs/hardware.md), the
 * halt/pass-fail convention, the CP0 registers and bits we use, and the
 * tiny console helpers in kit.c. Usable from C and from assembly
 * (#include it in a .S file: only the #defines are visible there).
 */
#ifndef KIT_H
#define KIT_H

/* ---- Address spaces (R4000 manual ch. 4, 32-bit mode) -------------------
 * KSEG0 0x80000000-0x9fffffff: unmapped, cached, physical = va - 0x80000000
 * KSEG1 0xa0000000-0xbfffffff: unmapped, uncached; devices live here.
 */
#define KSEG0_BASE 0x80000000
#define KSEG1_BASE 0xa0000000
#define KSEG0(pa) (KSEG0_BASE | (pa))
#define KSEG1(pa) (KSEG1_BASE | (pa))

/* ---- Devices (physical bases) ------------------------------------------ */
#define DEV_CONS 0x10000000 /* console: 8-bit accesses only */
#define DEV_MP 0x11000000   /* multiprocessor control */
#define DEV_FB 0x12000000   /* framebuffer (unused by the kits) */
#define DEV_DISK 0x13000000 /* disk controller */
#define DEV_ETHER 0x14000000
#define DEV_RTC 0x15000000 /* real-time clock and periodic timer */

/* cons registers */
#define CONS_DATA 0x00 /* read: getchar (0 if none); write: putchar */
#define CONS_HALT 0x10 /* write: halt the machine with this byte as status */

/* mp registers (any access width works) */
#define MP_WHOAMI 0x00
#define MP_NCPUS 0x10
#define MP_STARTUPCPU 0x20
#define MP_STARTUPADDR 0x30
#define MP_PAUSE_ADDR 0x40
#define MP_PAUSE_CPU 0x50
#define MP_UNPAUSE_CPU 0x60
#define MP_STARTUPSTACK 0x70
#define MP_RANDOM 0x80
#define MP_MEMORY 0x90
#define MP_IPI_ONE 0xa0  /* write (nr << 16) | cpu */
#define MP_IPI_MANY 0xb0 /* write (nr << 16) | cpu: all CPUs except cpu */
#define MP_IPI_READ 0xc0 /* read: next pending IPI nr, 0 if none; write: flush */
#define MP_NCYCLES 0xd0

/* disk registers */
#define DISK_OFFSET 0x00
#define DISK_OFFSET_HI 0x08
#define DISK_ID 0x10
#define DISK_OP 0x20 /* write 0 = read sector into buffer, 1 = write buffer */
#define DISK_STATUS 0x30 /* 0 = the last operation failed */
#define DISK_BUFFER 0x4000 /* 512 bytes */
#define DISK_OP_READ 0
#define DISK_OP_WRITE 1
#define DISK_SECTOR 512

/* rtc registers */
#define RTC_TRIGGER 0x00 /* read or write: latch the current time */
#define RTC_SEC 0x10
#define RTC_USEC 0x20
#define RTC_HZ 0x100  /* timer interrupt frequency, 0 = off */
#define RTC_ACK 0x110 /* read or write: acknowledge one timer interrupt */

/* Interrupt lines: Cause.IP bit number (= Status.IM bit number). */
#define IRQ_CONS 2 /* hardware int 0 */
#define IRQ_ETHER 3
#define IRQ_RTC 4
#define IRQ_MP 6    /* IPIs */
#define IRQ_TIMER 7 /* CP0 Count/Compare */

/* ---- Pass/fail convention ----------------------------------------------
 * A program ends by writing one byte to CONS_HALT: 0 = pass, anything else
 * = fail (the value says which check failed). On disco the byte becomes
 * the process exit status; GXemul ignores it (see README.md).
 * Returning from main() halts with main's return value.
 */
#define KIT_PASS 0
#define KIT_FAIL 1         /* generic failure */
#define KIT_FAIL_UNEXPECTED 0xee /* unexpected exception (kit.c default) */

/* ---- CP0 registers (R4000 manual ch. 4-6) ------------------------------ */
#define C0_INDEX 0
#define C0_RANDOM 1
#define C0_ENTRYLO0 2
#define C0_ENTRYLO1 3
#define C0_CONTEXT 4
#define C0_PAGEMASK 5
#define C0_WIRED 6
#define C0_BADVADDR 8
#define C0_COUNT 9
#define C0_ENTRYHI 10
#define C0_COMPARE 11
#define C0_STATUS 12
#define C0_CAUSE 13
#define C0_EPC 14
#define C0_PRID 15
#define C0_CONFIG 16
#define C0_LLADDR 17
#define C0_ERROREPC 30

/* Status bits */
#define ST_IE 0x00000001
#define ST_EXL 0x00000002
#define ST_ERL 0x00000004
#define ST_KSU_MASK 0x00000018
#define ST_IM(n) (1u << (8 + (n))) /* interrupt mask bit for line n */
#define ST_IM_MASK 0x0000ff00
#define ST_BEV 0x00400000
#define ST_CU0 0x10000000
#define ST_CU1 0x20000000

/* Cause fields */
#define CAUSE_EXCCODE(c) (((c) >> 2) & 0x1f)
#define CAUSE_IP(c) (((c) >> 8) & 0xff) /* pending interrupt lines */
#define CAUSE_BD 0x80000000

/* ExcCode values */
#define EXC_INT 0
#define EXC_MOD 1
#define EXC_TLBL 2
#define EXC_TLBS 3
#define EXC_ADEL 4
#define EXC_ADES 5
#define EXC_IBE 6
#define EXC_DBE 7
#define EXC_SYS 8
#define EXC_BP 9
#define EXC_RI 10
#define EXC_CPU 11
#define EXC_OV 12
#define EXC_TR 13
#define EXC_FPE 15
#define EXC_WATCH 23

/* EntryLo bits: PFN in bits 6..29 (pa >> 12 << 6), C, D, V, G */
#define ENTRYLO_G 0x01
#define ENTRYLO_V 0x02
#define ENTRYLO_D 0x04
#define ENTRYLO_C_UNCACHED (2 << 3)
#define ENTRYLO_C_NONCOHERENT (3 << 3)
#define ENTRYLO_PFN(pa) ((((pa) >> 12) & 0x00ffffff) << 6)

/* Which vector an exception came through (kit_frame.vector): the offset
 * of the vector from 0x80000000. */
#define VEC_TLB_REFILL 0x000
#define VEC_XTLB_REFILL 0x080
#define VEC_GENERAL 0x180

/* Trap frame layout, shared by trap.S and C (byte offsets). */
#define FRAME_R(n) ((n) * 4) /* r0..r31 */
#define FRAME_HI 128
#define FRAME_LO 132
#define FRAME_STATUS 136
#define FRAME_CAUSE 140
#define FRAME_EPC 144
#define FRAME_BADVADDR 148
#define FRAME_VECTOR 152
#define FRAME_SIZE 160 /* multiple of 8 keeps the stack aligned */

/* Per-CPU stack size used by crt0 and by programs starting secondary CPUs. */
#define KIT_STACK_SIZE 0x4000

#ifndef __ASSEMBLER__

typedef unsigned int u32;
typedef int s32;
typedef unsigned char u8;

/* The trap frame trap.S builds on the stack before calling kit_trap(). A
 * handler may change any field: trap.S restores GPRs, hi/lo, EPC and
 * Status from it (so `f->epc += 4` skips the faulting instruction, and
 * `f->status &= ~ST_IM(n)` masks line n once we return). Keep EXL set in
 * f->status. */
struct kit_frame {
	u32 r[32];
	u32 hi, lo;
	u32 status, cause, epc, badvaddr;
	u32 vector;
	u32 pad;
};

/* Register names for f->r[] */
enum { R_ZERO, R_AT, R_V0, R_V1, R_A0, R_A1, R_A2, R_A3,
       R_SP = 29, R_RA = 31 };

/* ---- MMIO: volatile accesses through KSEG1 ---- */
#define REG8(dev, off) (*(volatile u8 *)KSEG1((dev) + (off)))
#define REG32(dev, off) (*(volatile u32 *)KSEG1((dev) + (off)))

/* ---- CP0 access ---- */
#define mfc0(reg)                                                          \
	({                                                                 \
		u32 __v;                                                   \
		__asm__ volatile("mfc0 %0, $%1" : "=r"(__v) : "i"(reg));   \
		__v;                                                       \
	})
/* The R4000 needs a few instructions between an MTC0 and the instruction
 * that depends on it (CP0 hazards, manual appendix F); the nops cover the
 * worst case so callers need not think about it. */
#define mtc0(reg, val)                                                     \
	__asm__ volatile(".set push; .set noreorder\n\t"                   \
			 "mtc0 %0, $%1\n\tnop\n\tnop\n\tnop\n\t.set pop"   \
			 : : "r"((u32)(val)), "i"(reg) : "memory")

static inline void irq_enable(void) { mtc0(C0_STATUS, mfc0(C0_STATUS) | ST_IE); }
static inline void irq_disable(void) { mtc0(C0_STATUS, mfc0(C0_STATUS) & ~ST_IE); }

/* ---- kit.c: console and halt ---- */
void kit_putc(char c);
void kit_puts(const char *s);             /* no newline added */
void kit_puthex(u32 v);                   /* 0x%08x */
void kit_putdec(u32 v);                   /* unsigned decimal */
void kit_putsdec(s32 v);                  /* signed decimal */
void kit_putline(const char *label, u32 hex); /* "label 0x%08x\n" */
void kit_halt(u32 code) __attribute__((noreturn));
/* Print "FAIL: why" and halt with code (non-zero). */
void kit_fail(u32 code, const char *why) __attribute__((noreturn));
/* Check cond; on failure print the message and halt with code. */
#define KIT_CHECK(cond, code, why)                                         \
	do {                                                               \
		if (!(cond))                                               \
			kit_fail((code), (why));                           \
	} while (0)

const char *kit_exc_name(u32 exccode); /* "Sys", "TLBL", ... */
void kit_memcpy(void *dst, const void *src, u32 n);
void kit_memset(void *dst, int c, u32 n);

/* ---- trap.S ---- */
/* Copy the vector stubs to 0x80000000/0x80000080/0x80000180 and clear
 * Status.BEV so exceptions use them. crt0 calls it before main(). */
void kit_install_vectors(void);
/* Called by trap.S with interrupts off (EXL=1). The default (kit.c,
 * weak) reports the exception and halts with KIT_FAIL_UNEXPECTED. */
void kit_trap(struct kit_frame *f);
/* Print "ExcCode epc=... badvaddr=..." for a frame. */
void kit_report_frame(const struct kit_frame *f);

/* ---- crt0.S ---- */
/* Registers as GXemul (or disco) handed them to _start, saved by crt0
 * before it touches anything: r[0..31] (r1 = $at is lost), then CP0. */
struct kit_boot_state {
	u32 r[32];
	u32 status, cause, config, prid, count, compare, epc, errorepc;
	u32 badvaddr, entryhi, context, wired, random, pagemask, index, lladdr;
};
extern struct kit_boot_state kit_boot;
/* Entry for secondary CPUs: give this address to MP_STARTUPADDR. It sets
 * Status to 0 like crt0 does and calls kit_secondary_main(whoami, the
 * Status it found) on the stack set with MP_STARTUPSTACK. The default
 * kit_secondary_main (weak, kit.c) parks the CPU in a loop. */
void kit_secondary_start(void);
void kit_secondary_main(u32 cpu, u32 boot_status);
/* Start CPU `cpu` at kit_secondary_start with sp = stack_top (the end of
 * a KIT_STACK_SIZE-byte, 8-byte aligned area). startupaddr and
 * startupstack are single board registers shared by all CPUs, so start
 * CPUs one at a time. */
void kit_start_cpu(u32 cpu, void *stack_top);
/* IPIs: queue IPI number nr (non-zero) at CPU cpu. */
static inline void kit_ipi_one(u32 cpu, u32 nr)
{
	REG32(DEV_MP, MP_IPI_ONE) = (nr << 16) | cpu;
}
static inline u32 kit_whoami(void) { return REG32(DEV_MP, MP_WHOAMI); }
static inline u32 kit_ncpus(void) { return REG32(DEV_MP, MP_NCPUS); }
#define KIT_MAX_CPUS 8

int main(void);

#endif /* __ASSEMBLER__ */
#endif /* KIT_H */
