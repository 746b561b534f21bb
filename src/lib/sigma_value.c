/*
 * sigma_value.c — Sigma values (see sigma_int.h): a string value as a
 * pattern of literal bytes and wildcards, and the value modifiers that
 * turn one value into others.
 *
 * Escapes, as the Sigma specification states them: `*` matches any
 * sequence and `?` exactly one character; a backslash followed by `*`, `?`
 * or a backslash stands for that character literally, and any other
 * backslash is itself.  So `\*` is a literal star, `\\*` a backslash
 * followed by the wildcard, `\\\*` a backslash and a literal star, and
 * `\\` and `\\\\` are one and two backslashes.
 *
 * base64offset: a value found inside base64 text is encoded differently
 * depending on where it starts (offset 0, 1 or 2 modulo 3).  For each
 * offset i, the value is encoded after i filler bytes and only the
 * characters whose six bits come from the value alone are kept: from
 * character ceil(8i/6) (0, 2, 3) up to, excluding, floor(8(i+n)/6), n the
 * value's length.
 *
 * windash: every `-`, `/`, en dash, em dash and horizontal bar of the
 * value may be any of the five, so a value with k of them becomes 5^k
 * alternatives (at most SG_MAX_ALTS).
 */
#include "sigma_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/base64.h"
#include "daemoneye/text.h"

void sg_pat_clear(struct sg_pat *p)
{
	if (!p)
		return;
	free(p->u);
	p->u = NULL;
	p->n = 0;
}

void sg_alts_clear(struct sg_alts *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		sg_pat_clear(&a->v[i]);
	free(a->v);
	a->v = NULL;
	a->n = 0;
}

int sg_alts_append(struct sg_alts *dst, const struct sg_alts *src)
{
	struct sg_pat *nv;

	if (dst->n + src->n > SG_MAX_ALTS)
		return -E2BIG;
	if (!(nv = realloc(dst->v, (dst->n + src->n + 1) * sizeof(*nv))))
		return -ENOMEM;
	dst->v = nv;
	for (size_t i = 0; i < src->n; i++) {
		struct sg_pat *q = &dst->v[dst->n];
		bool dup = false;
		for (size_t k = 0; k < dst->n && !dup; k++)
			dup = dst->v[k].n == src->v[i].n &&
			      !memcmp(dst->v[k].u, src->v[i].u, src->v[i].n * sizeof(*q->u));
		if (dup)
			continue;
		if (!(q->u = malloc((src->v[i].n + 1) * sizeof(*q->u))))
			return -ENOMEM;
		memcpy(q->u, src->v[i].u, src->v[i].n * sizeof(*q->u));
		q->n = src->v[i].n;
		dst->n++;
	}
	return 0;
}

int sg_pat_parse(const char *s, size_t n, struct sg_pat *out)
{
	struct sg_unit *u = malloc((n ? n : 1) * sizeof(*u));
	size_t k = 0;

	if (!u)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '\\' && i + 1 < n &&
		    (s[i + 1] == '*' || s[i + 1] == '?' || s[i + 1] == '\\'))
			u[k++] = (struct sg_unit){(unsigned char)s[++i], SG_LIT};
		else if (ch == '*')
			u[k++] = (struct sg_unit){0, SG_STAR};
		else if (ch == '?')
			u[k++] = (struct sg_unit){0, SG_ONE};
		else
			u[k++] = (struct sg_unit){(unsigned char)ch, SG_LIT};
	}
	out->u = u;
	out->n = k;
	return 0;
}

int sg_pat_literal(const void *s, size_t n, struct sg_pat *out)
{
	const unsigned char *b = s;
	struct sg_unit *u = malloc((n ? n : 1) * sizeof(*u));

	if (!u)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		u[i] = (struct sg_unit){b[i], SG_LIT};
	out->u = u;
	out->n = n;
	return 0;
}

bool sg_pat_has_wildcards(const struct sg_pat *p)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->u[i].kind != SG_LIT)
			return true;
	return false;
}

bool sg_pat_all_stars(const struct sg_pat *p)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->u[i].kind != SG_STAR)
			return false;
	return p->n > 0;
}

/* The literal bytes of a wildcard-free pattern, as a new buffer. */
static unsigned char *pat_bytes(const struct sg_pat *p)
{
	unsigned char *b = malloc(p->n + 1);

	for (size_t i = 0; b && i < p->n; i++)
		b[i] = p->u[i].c;
	return b;
}

/* Put a star before (where < 0) or after (where > 0) p unless one is there. */
static int add_star(struct sg_pat *p, int where)
{
	struct sg_unit *u;

	if (p->n && p->u[where < 0 ? 0 : p->n - 1].kind == SG_STAR)
		return 0;
	if (!(u = realloc(p->u, (p->n + 1) * sizeof(*u))))
		return -ENOMEM;
	if (where < 0) {
		memmove(u + 1, u, p->n * sizeof(*u));
		u[0] = (struct sg_unit){0, SG_STAR};
	} else {
		u[p->n] = (struct sg_unit){0, SG_STAR};
	}
	p->u = u;
	p->n++;
	return 0;
}

/* ---- encodings --------------------------------------------------------------------- */

static int b64_pat(const unsigned char *b, size_t n, size_t from, size_t to, struct sg_pat *out)
{
	char *enc = malloc(DE_BASE64_LEN(n) + 1);
	int rc;

	if (!enc)
		return -ENOMEM;
	size_t len = de_base64_encode((const uint8_t *)b, n, enc);
	if (to > len)
		to = len;
	if (from > to)
		from = to;
	rc = sg_pat_literal(enc + from, to - from, out);
	free(enc);
	return rc;
}

/* The three base64offset alternatives of b[0..n) into out[0..3). */
static int b64_offsets(const unsigned char *b, size_t n, struct sg_pat *out)
{
	static const size_t start[3] = {0, 2, 3};
	unsigned char *buf = malloc(n + 2);
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < 3 && rc == 0; i++) {
		memset(buf, 0, i); /* the filler's bits never reach the kept characters */
		memcpy(buf + i, b, n);
		rc = b64_pat(buf, n + i, start[i], (8 * (n + i)) / 6, &out[i]);
	}
	free(buf);
	if (rc < 0)
		for (size_t i = 0; i < 3; i++)
			sg_pat_clear(&out[i]);
	return rc;
}

/* Decode one UTF-8 sequence of b[0..n): its length, 0 if invalid. */
static size_t utf8_decode(const unsigned char *b, size_t n, uint32_t *cp)
{
	size_t l = de_utf8_seq_len((const char *)b, n);

	if (l > n)
		return 0;
	if (l == 1)
		*cp = b[0];
	else if (l == 2)
		*cp = ((uint32_t)(b[0] & 0x1f) << 6) | (b[1] & 0x3f);
	else if (l == 3)
		*cp = ((uint32_t)(b[0] & 0x0f) << 12) | ((uint32_t)(b[1] & 0x3f) << 6) |
		      (b[2] & 0x3f);
	else if (l == 4)
		*cp = ((uint32_t)(b[0] & 0x07) << 18) | ((uint32_t)(b[1] & 0x3f) << 12) |
		      ((uint32_t)(b[2] & 0x3f) << 6) | (b[3] & 0x3f);
	return l;
}

static int utf16_pat(const unsigned char *b, size_t n, enum sg_transform t, struct sg_pat *out,
		     const char **why)
{
	unsigned char *o = malloc(4 * n + 2);
	size_t k = 0;
	int rc;

	if (!o)
		return -ENOMEM;
	if (t == SG_T_UTF16) { /* byte order mark, then little-endian */
		o[k++] = 0xff;
		o[k++] = 0xfe;
	}
	for (size_t i = 0; i < n;) {
		uint32_t cp = 0, units[2];
		size_t l = utf8_decode(b + i, n - i, &cp), nu = 1;
		if (!l) {
			free(o);
			*why = "the value is not UTF-8, so it has no UTF-16 form";
			return -EINVAL;
		}
		i += l;
		units[0] = cp;
		if (cp > 0xffff) {
			units[0] = 0xd800 + ((cp - 0x10000) >> 10);
			units[1] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
			nu = 2;
		}
		for (size_t u = 0; u < nu; u++) {
			unsigned char lo = (unsigned char)(units[u] & 0xff);
			unsigned char hi = (unsigned char)(units[u] >> 8);
			o[k++] = t == SG_T_UTF16BE ? hi : lo;
			o[k++] = t == SG_T_UTF16BE ? lo : hi;
		}
	}
	rc = sg_pat_literal(o, k, out);
	free(o);
	return rc;
}

/* ---- windash ------------------------------------------------------------------------ */

/* The five characters windash permutes, as UTF-8. */
static const char *const dashes[5] = {"-", "/", "\xe2\x80\x93", "\xe2\x80\x94", "\xe2\x80\x95"};

/* Length of the dash at p->u[i], 0 if none is there. */
static size_t dash_at(const struct sg_pat *p, size_t i)
{
	for (size_t d = 0; d < 5; d++) {
		size_t l = strlen(dashes[d]), k;
		if (i + l > p->n)
			continue;
		for (k = 0; k < l; k++)
			if (p->u[i + k].kind != SG_LIT ||
			    p->u[i + k].c != (unsigned char)dashes[d][k])
				break;
		if (k == l)
			return l;
	}
	return 0;
}

/* Append every windash variant of p to *out (capacity checked by the caller's cap). */
static int windash_one(const struct sg_pat *p, struct sg_alts *out)
{
	size_t total = 1;

	for (size_t i = 0; i < p->n;) {
		size_t l = dash_at(p, i);
		if (l && (total *= 5) > SG_MAX_ALTS)
			return -E2BIG;
		i += l ? l : 1;
	}
	if (out->n + total > SG_MAX_ALTS)
		return -E2BIG;
	struct sg_pat *nv = realloc(out->v, (out->n + total) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	out->v = nv;
	for (size_t combo = 0; combo < total; combo++) {
		struct sg_pat *q = &out->v[out->n];
		size_t c = combo;
		q->u = malloc((p->n * 3 + 1) * sizeof(*q->u));
		q->n = 0;
		if (!q->u)
			return -ENOMEM;
		out->n++;
		for (size_t i = 0; i < p->n;) {
			size_t l = dash_at(p, i);
			if (!l) {
				q->u[q->n++] = p->u[i++];
				continue;
			}
			const char *d = dashes[c % 5];
			c /= 5;
			for (const char *s = d; *s; s++)
				q->u[q->n++] = (struct sg_unit){(unsigned char)*s, SG_LIT};
			i += l;
		}
	}
	return 0;
}

/* ---- applying a transform ---------------------------------------------------------- */

int sg_transform(struct sg_alts *a, enum sg_transform t, const char **why)
{
	struct sg_alts out = {0};
	int rc = 0;

	*why = NULL;
	switch (t) {
	case SG_T_CONTAINS:
	case SG_T_STARTSWITH:
	case SG_T_ENDSWITH:
		for (size_t i = 0; i < a->n && rc == 0; i++) {
			if (t != SG_T_STARTSWITH)
				rc = add_star(&a->v[i], -1);
			if (rc == 0 && t != SG_T_ENDSWITH)
				rc = add_star(&a->v[i], 1);
		}
		return rc;
	case SG_T_WINDASH:
		for (size_t i = 0; i < a->n && rc == 0; i++)
			rc = windash_one(&a->v[i], &out);
		break;
	case SG_T_BASE64:
	case SG_T_BASE64OFFSET:
	case SG_T_UTF16LE:
	case SG_T_UTF16BE:
	case SG_T_UTF16: {
		size_t per = t == SG_T_BASE64OFFSET ? 3 : 1;
		if (a->n * per > SG_MAX_ALTS)
			return -E2BIG;
		if (!(out.v = calloc(a->n * per + 1, sizeof(*out.v))))
			return -ENOMEM;
		for (size_t i = 0; i < a->n && rc == 0; i++) {
			unsigned char *b;
			if (sg_pat_has_wildcards(&a->v[i])) {
				*why = "a value with wildcards cannot be encoded (put contains, "
				       "startswith or endswith after the encoding modifier)";
				rc = -EINVAL;
				break;
			}
			if (!(b = pat_bytes(&a->v[i]))) {
				rc = -ENOMEM;
				break;
			}
			if (t == SG_T_BASE64)
				rc = b64_pat(b, a->v[i].n, 0, SIZE_MAX, &out.v[out.n]);
			else if (t == SG_T_BASE64OFFSET)
				rc = b64_offsets(b, a->v[i].n, &out.v[out.n]);
			else
				rc = utf16_pat(b, a->v[i].n, t, &out.v[out.n], why);
			free(b);
			if (rc == 0)
				out.n += per;
		}
		break;
	}
	}
	if (rc < 0) {
		sg_alts_clear(&out);
		return rc;
	}
	sg_alts_clear(a);
	*a = out;
	return 0;
}

/* ---- cidr ------------------------------------------------------------------------ */

static int push_text(struct sg_alts *out, const char *s, bool prefix)
{
	struct sg_pat *nv;
	int rc;

	if (out->n >= SG_MAX_ALTS)
		return -E2BIG;
	if (!(nv = realloc(out->v, (out->n + 1) * sizeof(*nv))))
		return -ENOMEM;
	out->v = nv;
	if ((rc = sg_pat_literal(s, strlen(s), &nv[out->n])) < 0)
		return rc;
	out->n++;
	return prefix ? add_star(&nv[out->n - 1], 1) : 0;
}

/*
 * An IPv6 range as the texts daemoneye stores (inet_ntop's canonical form:
 * lower-case hex without leading zeros, the longest run of zero groups as
 * "::").  Two shapes have a text form fixed by the range: a whole address
 * (/128: its canonical text), and a range within the first group whose
 * groups all have four hex digits (::/0 aside, prefixes of 16 bits or less
 * starting at 1000 or above: fe80::/10, fc00::/7): "xxxx:" then anything,
 * one alternative per first group (at most SG_MAX_ALTS).  Others are
 * refused, saying so.
 */
static int cidr6_patterns(const char *s, struct sg_alts *out, const char **why)
{
	char host[INET6_ADDRSTRLEN + 1], text[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	unsigned char a[16];
	unsigned bits = 128;
	size_t hl = slash ? (size_t)(slash - s) : strlen(s);

	if (hl >= sizeof(host))
		goto bad;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET6, host, a) != 1)
		goto bad;
	if (slash) { /* 1 to 3 decimal digits, at most 128 */
		size_t nd = strspn(slash + 1, "0123456789");
		if (nd == 0 || nd > 3 || slash[1 + nd])
			goto bad;
		bits = 0;
		for (size_t i = 1; i <= nd; i++)
			bits = bits * 10 + (unsigned)(slash[i] - '0');
		if (bits > 128)
			goto bad;
	}
	if (bits == 128) {
		if (!inet_ntop(AF_INET6, a, text, sizeof(text)))
			goto bad;
		return push_text(out, text, false);
	}
	unsigned first = (unsigned)a[0] << 8 | a[1];
	unsigned span = bits <= 16 ? 1u << (16 - bits) : 0;
	first &= bits ? ~(span - 1) & 0xffffu : 0;
	if (bits == 0 || bits > 16 || first < 0x1000 || span > SG_MAX_ALTS) {
		*why = "of IPv6 ranges, only whole addresses (/128) and ranges of the first group "
		       "from 1000:: up of at most 1024 values (as fe80::/10, fc00::/7) are "
		       "supported: other ranges have no fixed text form";
		return -EINVAL;
	}
	for (unsigned v = first; v < first + span; v++) {
		int rc;
		snprintf(text, sizeof(text), "%04x:", v);
		if ((rc = push_text(out, text, true)) < 0)
			return rc;
	}
	return 0;
bad:
	*why = "not an IPv6 address or range (x:x::x/n)";
	return -EINVAL;
}

int sg_cidr_patterns(const char *s, struct sg_alts *out, const char **why)
{
	unsigned o[4] = {0, 0, 0, 0}, bits = 32;
	const char *p = s;

	*why = NULL;
	if (strchr(s, ':'))
		return cidr6_patterns(s, out, why);
	/* a.b.c.d or a.b.c.d/n: four decimal octets of 1-3 digits, n of 1-2 */
	for (int k = 0; k < 5 && p; k++) {
		size_t i = 0;
		unsigned v = 0;
		for (; i < (k < 4 ? 3u : 2u) && p[i] >= '0' && p[i] <= '9'; i++)
			v = v * 10 + (unsigned)(p[i] - '0');
		if (i == 0 || (k < 4 && v > 255) || (k == 4 && v > 32)) {
			p = NULL;
			break;
		}
		if (k < 4)
			o[k] = v;
		else
			bits = v;
		p += i;
		if (k < 3 && *p++ != '.')
			p = NULL;
		else if (k == 3 && *p == '/')
			p++;
		else if (k >= 3)
			break;
	}
	if (!p || *p) {
		*why = "not an IPv4 range (a.b.c.d/n)";
		return -EINVAL;
	}
	uint32_t addr = (o[0] << 24) | (o[1] << 16) | (o[2] << 8) | o[3];
	uint32_t mask = bits ? 0xffffffffu << (32 - bits) : 0;
	addr &= mask;
	if (bits == 0) {
		struct sg_pat star = {0};
		int rc = sg_pat_parse("*", 1, &star);
		struct sg_pat *nv = rc < 0 ? NULL : realloc(out->v, (out->n + 1) * sizeof(*nv));
		if (!nv) {
			sg_pat_clear(&star);
			return -ENOMEM;
		}
		out->v = nv;
		nv[out->n++] = star;
		return 0;
	}
	unsigned full = bits / 8, rest = bits % 8;
	uint32_t first = rest ? (addr >> (24 - 8 * full)) & 0xff : 0;
	uint32_t count = rest ? 1u << (8 - rest) : 1;
	for (uint32_t v = 0; v < count; v++) {
		char text[32];
		size_t k = 0;
		unsigned octets = full + (rest ? 1 : 0);
		for (unsigned i = 0; i < octets; i++) {
			unsigned val = (addr >> (24 - 8 * i)) & 0xff;
			if (rest && i == full)
				val = first + v;
			k += (size_t)snprintf(text + k, sizeof(text) - k, "%s%u", i ? "." : "",
					      val);
		}
		/* a whole address is exact; a prefix ends with its dot */
		if (octets < 4)
			snprintf(text + k, sizeof(text) - k, ".");
		int rc = push_text(out, text, octets < 4);
		if (rc < 0)
			return rc;
	}
	return 0;
}
