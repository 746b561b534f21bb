/*
 * text.h — bytes as text: UTF-8 validity, escaping for terminals and
 * logs, JSON string literals, decimal integers and CSV fields (base64 is
 * base64.h).  Bytes from /proc are
 * bytes, not always UTF-8; every module that shows or serialises them goes
 * through these, so that escaping is decided in one place.
 *
 * Ownership: functions named *_dup return new strings the caller frees
 * (NULL on ENOMEM); the others write into caller buffers of the stated size.
 */
#ifndef DAEMONEYE_TEXT_H
#define DAEMONEYE_TEXT_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

/* True when the n bytes at s are valid UTF-8 (no overlongs, no surrogates). */
bool de_utf8_valid(const char *s, size_t n);
/* True when every one of the n bytes at s is below 0x80. */
bool de_ascii_only(const char *s, size_t n);
/*
 * Length of the valid UTF-8 sequence at s (n > 0 bytes left), 0 when the
 * bytes there do not start one.
 */
size_t de_utf8_seq_len(const char *s, size_t n);
/*
 * The n bytes at s as valid UTF-8: each byte that does not start a valid
 * sequence becomes U+FFFD.  A new string (*len its length, may be NULL).
 */
char *de_utf8_lossy_dup(const char *s, size_t n, size_t *len);

/*
 * Render bytes for a human on a terminal or in a log line: control
 * characters, DEL, backslash and invalid UTF-8 become C-style escapes
 * (\n, \t, \r, \\, \x1b).  de_escape_text_into writes into out, which has
 * room for DE_ESCAPE_TEXT_MAX(n) bytes, and returns the length (no NUL);
 * de_escape_text returns a new NUL-terminated string.
 */
#define DE_ESCAPE_TEXT_MAX(n) (4 * (size_t)(n))
size_t de_escape_text_into(char *out, const char *s, size_t n);
char *de_escape_text(const char *s, size_t n);

/*
 * The compact JSON string literal of the n bytes at s, quotes included,
 * escaped exactly as jansson's json_dumps writes a string (\" \\ \b \f \n
 * \r \t, \u00XX with upper-case hex for the other control characters,
 * everything else as is).  s should be valid UTF-8 (jansson refuses other
 * strings; these bytes are copied through).  Writes to dst when it is not
 * NULL (room for DE_JSON_STR_MAX(n) bytes is always enough; no NUL is
 * added) and returns the length of the literal either way.
 */
size_t de_json_str(char *dst, const char *s, size_t n);

/*
 * The decimal text of v (as "%lld" writes it, without printf's format
 * parsing: hot in the store and the alert formats), written backwards so
 * that it ends at end; DE_I64_TEXT_MAX bytes before end are enough.
 * Returns where it starts.
 */
#define DE_I64_TEXT_MAX 20
static inline char *de_i64_text(int64_t v, char *end)
{
	uint64_t u = v < 0 ? 0ull - (uint64_t)v : (uint64_t)v;

	do {
		*--end = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--end = '-';
	return end;
}
/*
 * The same with JSON_ENSURE_ASCII's escaping: every code point above
 * U+007F as a \uXXXX escape (upper-case hex; a UTF-16 surrogate pair above
 * the BMP), so the literal is ASCII; a byte that is not valid UTF-8 becomes
 * \uFFFD.  DE_JSON_STR_MAX(n) is enough room here too.
 */
size_t de_json_str_ascii(char *dst, const char *s, size_t n);
#define DE_JSON_STR_MAX(n) (6 * (size_t)(n) + 2)

/* The value of a hexadecimal digit (either case), -1 for another character. */
int de_hex_digit(int c);

/*
 * One RFC 4180 CSV field to f: quoted (quotes doubled) when it holds a
 * comma, a quote, CR or LF; bytes kept exactly.  NULL writes an empty
 * field.  No separator is written.
 */
void de_csv_field(FILE *f, const char *s);

#endif
