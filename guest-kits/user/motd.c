/*
 * motd - the one program that is only on the disk (kestrel-disk.img),
 * not linked into the kernel: init runs it first in demo mode, so it
 * appears only when the kernel found kfs on the disk.
 */
#include "ulib.h"

int main(void)
{
	printf("motd: loaded from the disk by execv\n");
	return 0;
}
