/*
 * text.c — bytes as text: UTF-8, terminal escaping, JSON string literals,
 * and CSV fields (see text.h).
 */
#include "daemoneye/text.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* How many of the n bytes at p, from the first, are ASCII: eight at a time. */
static size_t ascii_run(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i + 8 <= n) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		if (w & 0x8080808080808080ULL)
			break;
		i += 8;
	}
	while (i < n && p[i] < 0x80)
		i++;
	return i;
}

bool de_ascii_only(const char *s, size_t n)
{
	return ascii_run((const unsigned char *)s, n) == n;
}

bool de_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		/* ASCII runs fast: most of what /proc holds */
		i += ascii_run(p + i, n - i);
		if (i >= n)
			break;
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		size_t l = seq_len(p + i, n - i);
		if (l == 0)
			return false;
		i += l;
	}
	return true;
}

size_t de_escape_text_into(char *out, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;

	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		size_t l = seq_len(p + i, n - i);

		if (c == '\\') {
			out[o++] = '\\';
			out[o++] = '\\';
		} else if (c == '\n' || c == '\t' || c == '\r') {
			out[o++] = '\\';
			out[o++] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
		} else if (c < 0x20 || c == 0x7f || l == 0) {
			o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
		} else {
			memcpy(out + o, p + i, l);
			o += l;
			i += l;
			continue;
		}
		i++;
	}
	return o;
}

char *de_escape_text(const char *s, size_t n)
{
	/* Worst case every byte becomes \xNN. */
	char *out = malloc(n * 4 + 1);

	if (!out)
		return NULL;
	out[de_escape_text_into(out, s, n)] = '\0';
	return out;
}

/*
 * The JSON string literal of the n bytes at s (de_json_str); with ascii,
 * every code point above U+007F as \uXXXX (a surrogate pair above the BMP),
 * as jansson's JSON_ENSURE_ASCII writes it, and a byte that starts no
 * valid UTF-8 sequence as \uFFFD.
 */
static size_t json_str(char *dst, const char *s, size_t n, bool ascii)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 1, run = 0;

	if (dst)
		dst[0] = '"';
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		char esc[12];
		size_t el = 2, in = 1;

		if (c >= 0x20 && c != '"' && c != '\\' && (c < 0x80 || !ascii)) {
			i++;
			continue;
		}
		esc[0] = '\\';
		switch (c) {
		case '"':
		case '\\':
			esc[1] = (char)c;
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default: {
			uint32_t cp = c;
			if (c >= 0x80) { /* ascii: decode the sequence */
				in = seq_len(p + i, n - i);
				if (in == 0) {
					in = 1;
					cp = 0xFFFD;
				} else {
					cp = c & (0xFF >> (in + 1));
					for (size_t k = 1; k < in; k++)
						cp = cp << 6 | (p[i + k] & 0x3F);
				}
			}
			el = 0;
			if (cp >= 0x10000) {
				uint32_t v = cp - 0x10000, hi = 0xD800 | (v >> 10);
				esc[0] = '\\';
				esc[1] = 'u';
				for (int k = 0; k < 4; k++)
					esc[2 + k] = hex[(hi >> (12 - 4 * k)) & 15];
				el = 6;
				cp = 0xDC00 | (v & 0x3FF);
			}
			esc[el] = '\\';
			esc[el + 1] = 'u';
			for (int k = 0; k < 4; k++)
				esc[el + 2 + k] = hex[(cp >> (12 - 4 * k)) & 15];
			el += 6;
		}
		}
		if (dst) {
			memcpy(dst + o, s + run, i - run);
			memcpy(dst + o + i - run, esc, el);
		}
		o += i - run + el;
		i += in;
		run = i;
	}
	if (dst) {
		memcpy(dst + o, s + run, n - run);
		dst[o + n - run] = '"';
	}
	return o + n - run + 1;
}

size_t de_json_str(char *dst, const char *s, size_t n)
{
	return json_str(dst, s, n, false);
}

size_t de_json_str_ascii(char *dst, const char *s, size_t n)
{
	return json_str(dst, s, n, true);
}

size_t de_utf8_seq_len(const char *s, size_t n)
{
	return n ? seq_len((const unsigned char *)s, n) : 0;
}

char *de_utf8_lossy_dup(const char *s, size_t n, size_t *len)
{
	const unsigned char *p = (const unsigned char *)s;
	char *buf = malloc(n * 3 + 1);
	size_t o = 0;

	if (!buf)
		return NULL;
	for (size_t i = 0; i < n;) {
		size_t l = seq_len(p + i, n - i);
		if (l == 0) {
			memcpy(buf + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		} else {
			memcpy(buf + o, p + i, l);
			o += l;
			i += l;
		}
	}
	buf[o] = '\0';
	if (len)
		*len = o;
	return buf;
}

/* ---- CSV ---------------------------------------------------------------- */

int de_hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void de_csv_field(FILE *f, const char *s)
{
	if (!s)
		return;
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}
