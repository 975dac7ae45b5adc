/*
 * console - the console device and the kit print helpers.
 *
 * Writes every printable ASCII character, numbers through kit_puthex,
 * kit_putdec and kit_putsdec, and polls getchar once (non-blocking: 0 when
 * no input is waiting; its value is not printed, since it depends on what
 * the host feeds stdin).
 */
#include "kit.h"

int main(void)
{
	kit_puts("console: ascii ");
	for (int c = 0x20; c < 0x7f; c++)
		kit_putc((char)c);
	kit_putc('\n');

	kit_puts("console: hex ");
	kit_puthex(0);
	kit_putc(' ');
	kit_puthex(0xdeadbeef);
	kit_putc('\n');

	kit_puts("console: dec ");
	kit_putdec(0);
	kit_putc(' ');
	kit_putdec(42);
	kit_putc(' ');
	kit_putdec(0xffffffffu);
	kit_putc(' ');
	kit_putsdec(-1);
	kit_putc(' ');
	kit_putsdec((s32)0x80000000);
	kit_putc('\n');

	/* Read the input register; any value is fine, but it must not trap. */
	(void)REG8(DEV_CONS, CONS_DATA);
	kit_puts("console: getchar polled\n");
	kit_puts("console: ok\n");
	return KIT_PASS;
}
