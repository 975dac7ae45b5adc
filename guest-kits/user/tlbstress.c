/*
 * tlbstress - touches far more pages than the 48-entry TLB holds: grows
 * the heap with sbrk (demand-zero pages), writes a word in every page,
 * then reads them back in a scattered order several times.
 */
#include "ulib.h"

int main(int argc, char **argv)
{
	int bench = argc > 1 && strcmp(argv[1], "bench") == 0;
	int npages = bench ? 1024 : 256, passes = bench ? 16 : 4;
	uint8_t *heap = sbrk(npages * 4096);
	if ((int)heap < 0) {
		printf("tlbstress: FAIL sbrk\n");
		return 1;
	}
	for (int i = 0; i < npages; i++) {
		uint32_t *w = (uint32_t *)(heap + i * 4096 + (i * 64) % 4096);
		if (*w != 0) {
			printf("tlbstress: FAIL page %d not zero\n", i);
			return 1;
		}
		*w = i * 2654435761u;
	}
	uint32_t sum = 0;
	for (int p = 0; p < passes; p++)
		for (int k = 0; k < npages; k++) {
			int i = (k * 97 + p) % npages;
			uint32_t v = *(uint32_t *)(heap + i * 4096 + (i * 64) % 4096);
			if (v != i * 2654435761u) {
				printf("tlbstress: FAIL page %d reads 0x%08x\n", i, v);
				return 1;
			}
			sum = (sum << 1 | sum >> 31) ^ v;
		}
	printf("tlbstress: %d pages x %d passes, checksum 0x%08x\n", npages, passes, sum);
	printf("tlbstress: ok\n");
	return 0;
}
