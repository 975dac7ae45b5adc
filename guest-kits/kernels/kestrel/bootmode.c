/*
 * bootmode.c - which run kestrel does: 0 = demo (init runs every program
 * once and prints checksums), 1 = bench (init runs each workload a fixed
 * amount of work and prints its cycle count), 2 = echo (init reads one
 * console line and prints it: a test of console input on IP2), 3 = fault
 * (a child stores to address 0 and must be killed with status 131), 4 =
 * shootdown (cowmig: copy-on-write breaks across CPU migrations, which
 * need TLB shootdowns; per-CPU counters at halt), 5 = lab (labtest, the
 * course labs' tests; built as kestrel-lab.elf by `make lab`), 6 = parallel
 * (par: one compute-bound worker per CPU, and its cycles). Built three times
 * for the images: kestrel.elf (KESTREL_MODE=0), kestrel-bench.elf
 * (KESTREL_MODE=1) and kestrel-par.elf (KESTREL_MODE=6). Tools may also
 * patch the 32-bit big-endian word at symbol kestrel_boot_mode (section
 * .kestrel_mode) in either image.
 */
#include "kern.h"

uint32_t kestrel_boot_mode __attribute__((section(".kestrel_mode"))) = KESTREL_MODE;
