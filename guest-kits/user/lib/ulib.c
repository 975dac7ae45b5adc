/*
 * ulib.c - strings and printf for kestrel user programs.
 * printf supports %d %u %x %s %c %p, width and '0' padding.
 */
#include "ulib.h"

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return (uint8_t)*a - (uint8_t)*b;
}

void *memset(void *d, int c, size_t n)
{
	uint8_t *p = d;
	while (n--)
		*p++ = c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	uint8_t *dp = d;
	const uint8_t *sp = s;
	while (n--)
		*dp++ = *sp++;
	return d;
}

int atoi(const char *s)
{
	int v = 0, neg = 0;
	if (*s == '-')
		neg = 1, s++;
	while (*s >= '0' && *s <= '9')
		v = v * 10 + (*s++ - '0');
	return neg ? -v : v;
}

void u64_to_dec(uint64_t v, char *buf)
{
	char tmp[21];
	int i = 0;
	do {
		tmp[i++] = '0' + (uint32_t)(v % 10);
		v /= 10;
	} while (v);
	int j = 0;
	while (i)
		buf[j++] = tmp[--i];
	buf[j] = 0;
}

struct out { char *buf; int n; int len; };

static void put(struct out *o, char c)
{
	if (o->len < o->n - 1)
		o->buf[o->len] = c;
	o->len++;
}

static void putnum(struct out *o, uint32_t v, int base, int neg, int width, char pad)
{
	char tmp[12];
	int i = 0;
	do {
		tmp[i++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg)
		tmp[i++] = '-';
	while (width-- > i)
		put(o, pad);
	while (i)
		put(o, tmp[--i]);
}

int vsnprintf(char *buf, int n, const char *fmt, va_list ap)
{
	struct out o = { buf, n, 0 };
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			put(&o, *fmt);
			continue;
		}
		fmt++;
		char pad = ' ';
		int width = 0;
		if (*fmt == '0')
			pad = '0', fmt++;
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		switch (*fmt) {
		case 'd': {
			int v = va_arg(ap, int);
			putnum(&o, v < 0 ? -(uint32_t)v : (uint32_t)v, 10, v < 0, width, pad);
			break;
		}
		case 'u':
			putnum(&o, va_arg(ap, uint32_t), 10, 0, width, pad);
			break;
		case 'x':
			putnum(&o, va_arg(ap, uint32_t), 16, 0, width, pad);
			break;
		case 'p':
			put(&o, '0');
			put(&o, 'x');
			putnum(&o, va_arg(ap, uint32_t), 16, 0, 8, '0');
			break;
		case 'c':
			put(&o, (char)va_arg(ap, int));
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			int l = strlen(s);
			while (width-- > l)
				put(&o, ' ');
			while (*s)
				put(&o, *s++);
			break;
		}
		case 0:
			fmt--;
			break;
		default:
			put(&o, *fmt);
		}
	}
	if (n > 0)
		buf[o.len < n ? o.len : n - 1] = 0;
	return o.len;
}

int snprintf(char *buf, int n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return r;
}

/* One write per call, so a line is never split between processes. */
int printf(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	int r = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	write(1, buf, r < (int)sizeof(buf) ? r : (int)sizeof(buf) - 1);
	return r;
}
