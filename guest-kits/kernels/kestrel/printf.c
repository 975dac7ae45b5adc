/*
 * printf.c - kprintf and friends: %d %u %x %s %c %p, with width, '0'
 * padding and the 'l' modifier (ignored, 32-bit longs).
 */
#include "kern.h"

struct out { char *buf; int n; int len; };

static void put(struct out *o, char c)
{
	if (o->buf == NULL)
		cons_putc(c);
	else if (o->len < o->n - 1)
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

static int format(struct out *o, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			put(o, *fmt);
			continue;
		}
		fmt++;
		char pad = ' ';
		int width = 0;
		if (*fmt == '0') {
			pad = '0';
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l')
			fmt++;
		switch (*fmt) {
		case 'd': {
			int v = va_arg(ap, int);
			putnum(o, v < 0 ? -(uint32_t)v : (uint32_t)v, 10, v < 0, width, pad);
			break;
		}
		case 'u':
			putnum(o, va_arg(ap, uint32_t), 10, 0, width, pad);
			break;
		case 'x':
			putnum(o, va_arg(ap, uint32_t), 16, 0, width, pad);
			break;
		case 'p':
			put(o, '0');
			put(o, 'x');
			putnum(o, va_arg(ap, uint32_t), 16, 0, 8, '0');
			break;
		case 'c':
			put(o, (char)va_arg(ap, int));
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			int l = 0;
			if (!s)
				s = "(null)";
			while (s[l])
				l++;
			while (width-- > l)
				put(o, ' ');
			while (*s)
				put(o, *s++);
			break;
		}
		case '%':
			put(o, '%');
			break;
		case 0:
			return o->len;
		default:
			put(o, '%');
			put(o, *fmt);
		}
	}
	return o->len;
}

int kvsnprintf(char *buf, int n, const char *fmt, va_list ap)
{
	struct out o = { buf, n, 0 };
	format(&o, fmt, ap);
	if (buf && n > 0)
		buf[o.len < n ? o.len : n - 1] = 0;
	return o.len;
}

int ksnprintf(char *buf, int n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = kvsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return r;
}

/* Callers hold the BKL (or are alone: boot, panic). */
int kprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct out o = { NULL, 0, 0 };
	int r = format(&o, fmt, ap);
	va_end(ap);
	return r;
}

void *memset(void *d, int c, size_t n)
{
	uint8_t *p = d;
	if ((((uint32_t)p | n) & 3) == 0) {
		uint32_t w = (uint8_t)c * 0x01010101u;
		for (uint32_t *q = d; n; n -= 4)
			*q++ = w;
		return d;
	}
	while (n--)
		*p++ = c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	if ((((uint32_t)d | (uint32_t)s | n) & 3) == 0) {
		uint32_t *dw = d;
		const uint32_t *sw = s;
		for (; n; n -= 4)
			*dw++ = *sw++;
		return d;
	}
	uint8_t *dp = d;
	const uint8_t *sp = s;
	while (n--)
		*dp++ = *sp++;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] - y[i];
	return 0;
}

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return (uint8_t)*a - (uint8_t)*b;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

char *strncpy_z(char *d, const char *s, size_t n)
{
	size_t i = 0;
	for (; i + 1 < n && s[i]; i++)
		d[i] = s[i];
	if (n)
		d[i] = 0;
	return d;
}
