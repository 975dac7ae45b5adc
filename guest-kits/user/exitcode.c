/* exitcode <n> - exit with status n (used by forkexec). */
#include "ulib.h"

int main(int argc, char **argv)
{
	return argc > 1 ? atoi(argv[1]) : 0;
}
