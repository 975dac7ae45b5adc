/*
 * cpustate - print the CPU state the loader handed to _start (saved by
 * crt0 into kit_boot before it changed anything). Used to find out what
 * GXemul gives an ELF at entry; see README.md, "Initial CPU state".
 */
#include "kit.h"

static const char *const regnames[32] = {
	"zero", "at", "v0", "v1", "a0", "a1", "a2", "a3",
	"t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7",
	"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7",
	"t8", "t9", "k0", "k1", "gp", "sp", "fp", "ra",
};

int main(void)
{
	extern char _start[];
	kit_puts("cpustate: entry ");
	kit_puthex((u32)_start);
	kit_putc('\n');
	for (int i = 0; i < 32; i++) {
		kit_puts(regnames[i]);
		kit_putc(' ');
		kit_puthex(kit_boot.r[i]);
		kit_putc((i % 4 == 3) ? '\n' : ' ');
	}
	kit_putline("status", kit_boot.status);
	kit_putline("cause", kit_boot.cause);
	kit_putline("config", kit_boot.config);
	kit_putline("prid", kit_boot.prid);
	kit_putline("count", kit_boot.count);
	kit_putline("compare", kit_boot.compare);
	kit_putline("epc", kit_boot.epc);
	kit_putline("errorepc", kit_boot.errorepc);
	kit_putline("badvaddr", kit_boot.badvaddr);
	kit_putline("entryhi", kit_boot.entryhi);
	kit_putline("context", kit_boot.context);
	kit_putline("wired", kit_boot.wired);
	kit_putline("random", kit_boot.random);
	kit_putline("pagemask", kit_boot.pagemask);
	kit_putline("index", kit_boot.index);
	kit_putline("lladdr", kit_boot.lladdr);
	kit_putline("mp.ncpus", REG32(DEV_MP, MP_NCPUS));
	kit_putline("mp.memory", REG32(DEV_MP, MP_MEMORY));
	kit_puts("cpustate: done\n");
	return KIT_PASS;
}
