/*
 * mips.h - R4000 CP0 registers and bits, and the kestrel address map.
 * Included by C and assembly.
 */
#ifndef KESTREL_MIPS_H
#define KESTREL_MIPS_H

/* CP0 register numbers */
#define C0_INDEX	$0
#define C0_RANDOM	$1
#define C0_ENTRYLO0	$2
#define C0_ENTRYLO1	$3
#define C0_CONTEXT	$4
#define C0_PAGEMASK	$5
#define C0_WIRED	$6
#define C0_BADVADDR	$8
#define C0_COUNT	$9
#define C0_ENTRYHI	$10
#define C0_COMPARE	$11
#define C0_STATUS	$12
#define C0_CAUSE	$13
#define C0_EPC		$14
#define C0_PRID		$15

/* Status */
#define ST_IE		0x00000001
#define ST_EXL		0x00000002
#define ST_ERL		0x00000004
#define ST_KSU_MASK	0x00000018
#define ST_KSU_USER	0x00000010
#define ST_IM_MASK	0x0000ff00
#define ST_IM(n)	(0x100 << (n))
#define ST_BEV		0x00400000

/* Cause */
#define CA_BD		0x80000000
#define CA_IP_MASK	0x0000ff00
#define CA_EXC(c)	(((c) >> 2) & 31)

#define EXC_INT		0
#define EXC_MOD		1
#define EXC_TLBL	2
#define EXC_TLBS	3
#define EXC_ADEL	4
#define EXC_ADES	5
#define EXC_SYS		8
#define EXC_BP		9
#define EXC_RI		10
#define EXC_CPU		11
#define EXC_OV		12

/* Interrupt lines (Cause.IP / Status.IM bit numbers) */
#define IRQ_CONS	2
#define IRQ_DISK	5	/* disco's optional disk completion interrupt */
#define IRQ_IPI		6
#define IRQ_TIMER	7

/* EntryLo */
#define PTE_G		0x1
#define PTE_V		0x2
#define PTE_D		0x4
#define PTE_CACHED	(3 << 3)
#define PTE_PFN_SHIFT	6
#define PAGE_SIZE	4096
#define PAGE_SHIFT	12

/* PageMask values */
#define PM_4K		0x00000000
#define PM_16M		0x01ffe000

/*
 * Kestrel's virtual map (all kernel addresses are in sseg/ksseg, the
 * window 0xc0000000-0xdfffffff, reachable in kernel AND supervisor mode):
 *   0xc0000000 + pa   direct map of physical RAM 0..32 MB (wired entry 0,
 *                     one pair of 16 MB pages, global)
 *   0xc8000000        this CPU's struct cpu page (wired entry 1, 4 KB, global;
 *                     each CPU maps its own page here)
 *   0xd0000000        the current process's linear page table (8 MB, 8-byte PTEs,
 *                     Context.PTEBase; mapped on demand with the process ASID)
 */
#define KWIN_BASE	0xc0000000
#define KWIN_SIZE	0x02000000
#define PERCPU_VA	0xc8000000
#define PTWIN_BASE	0xd0000000
#define PTWIN_SIZE	0x00800000
#define USER_TOP	0x80000000

#define WIRED_KWIN	0
#define WIRED_PERCPU	1
#define NWIRED		2

/* Board (KSEG1 addresses of GXemul testmips devices) */
#define CONS_BASE	0xb0000000
#define CONS_HALT	0x10
#define MP_BASE		0xb1000000
#define MP_WHOAMI	0x00
#define MP_NCPUS	0x10
#define MP_STARTUPCPU	0x20
#define MP_STARTUPADDR	0x30
#define MP_STARTUPSTACK	0x70
#define MP_MEMORY	0x90
#define MP_IPI_ONE	0xa0
#define MP_IPI_MANY	0xb0
#define MP_IPI_READ	0xc0
#define MP_NCYCLES	0xd0
#define DISK_BASE	0xb3000000

/* struct cpu offsets used by assembly (kern.h checks them) */
#define PC_KSTACK	0
#define PC_ONFAULT	4

/* Trapframe layout: 32 GPR slots, then hi lo status cause epc badvaddr */
#define TF_REG(n)	((n) * 4)
#define TF_HI		128
#define TF_LO		132
#define TF_STATUS	136
#define TF_CAUSE	140
#define TF_EPC		144
#define TF_BADVADDR	148
#define TF_SIZE		152
/* Stack space the entry code takes: trapframe + o32 argument area */
#define TF_FRAME	(TF_SIZE + 16 + 8)

#endif
