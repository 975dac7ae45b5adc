/*
 * compute - CPU-bound integer work: a sieve of Eratosthenes and an
 * xorshift/multiply mixing loop. Prints a checksum; exits 0.
 */
#include "ulib.h"

#define SIEVE_N 20000
static uint8_t composite[SIEVE_N];

int main(int argc, char **argv)
{
	int rounds = argc > 1 && strcmp(argv[1], "bench") == 0 ? 20 : 2;
	uint32_t sum = 0;
	int primes = 0;
	for (int r = 0; r < rounds; r++) {
		memset(composite, 0, sizeof(composite));
		primes = 0;
		for (int i = 2; i < SIEVE_N; i++) {
			if (composite[i])
				continue;
			primes++;
			sum = sum * 31 + i;
			for (int j = i * 2; j < SIEVE_N; j += i)
				composite[j] = 1;
		}
		uint32_t x = 0x12345678 + r;
		for (int k = 0; k < 50000; k++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			sum += x * 0x9e3779b1u + (x >> 7) % 1009;
		}
	}
	printf("compute: %d rounds, %d primes below %d, checksum 0x%08x\n", rounds, primes,
	       SIEVE_N, sum);
	printf("compute: ok\n");
	return 0;
}
