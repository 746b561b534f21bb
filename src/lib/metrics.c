/*
 * metrics.c — the metric registry and the Prometheus text exposition
 * format (see metrics.h).  The HTTP listener is metrics_http.c, so that a
 * program that only writes the textfile does not link libmicrohttpd.
 *
 * Series are kept in creation order and found by a linear search over
 * their label values: families hold a handful of series (one per rule, per
 * sink, per severity), and DE_METRIC_MAX_SERIES bounds the worst case.
 */
#include "daemoneye/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/fileio.h"
#include "daemoneye/text.h"

#define MAX_FAMILIES 256
#define MAX_NAME     200
#define MAX_HELP     1024

struct series {
	char **values;	  /* nlabels owned strings */
	double value;	  /* counter, gauge */
	uint64_t *counts; /* histogram: per bucket, not cumulative; last is +Inf */
	double sum;	  /* histogram */
	uint64_t count;	  /* histogram */
};

struct de_metric {
	char *name;
	char *help;
	enum de_metric_type type;
	size_t nlabels;
	char *labels[DE_METRIC_MAX_LABELS];
	double bounds[DE_METRIC_MAX_BUCKETS]; /* histogram upper bounds, +Inf implied */
	size_t nbounds;
	struct series *series; /* owned, in creation order */
	size_t nseries, cap;
};

struct de_metrics {
	struct de_metric *fams[MAX_FAMILIES];
	size_t n;
};

static struct series *get(struct de_metric *f, const char *const *values, int *rc);

static const char *const type_names[DE_METRIC_TYPE_MAX] = {"counter", "gauge", "histogram"};

int de_metrics_new(struct de_metrics **out, struct de_error *err)
{
	struct de_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	*out = m;
	return 0;
}

static void series_clear(const struct de_metric *f, struct series *s)
{
	for (size_t i = 0; s->values && i < f->nlabels; i++)
		free(s->values[i]);
	free(s->values);
	free(s->counts);
	memset(s, 0, sizeof(*s));
}

static void family_free(struct de_metric *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->nseries; i++)
		series_clear(f, &f->series[i]);
	free(f->series);
	for (size_t i = 0; i < f->nlabels; i++)
		free(f->labels[i]);
	free(f->name);
	free(f->help);
	free(f);
}

void de_metrics_free(struct de_metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		family_free(m->fams[i]);
	free(m);
}

/* ---- names ----------------------------------------------------------------- */

static bool name_char(char c, bool first, bool colon)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       (colon && c == ':') || (!first && c >= '0' && c <= '9');
}

static bool valid_name(const char *s, bool colon)
{
	if (!s || !*s || strlen(s) > MAX_NAME)
		return false;
	for (size_t i = 0; s[i]; i++)
		if (!name_char(s[i], i == 0, colon))
			return false;
	return true;
}

static bool ends_with(const char *s, const char *sfx)
{
	size_t n = strlen(s), k = strlen(sfx);
	return n >= k && strcmp(s + n - k, sfx) == 0;
}

int de_metrics_add(struct de_metrics *m, const char *name, const char *help,
		   enum de_metric_type type, const char *const *labels, size_t nlabels,
		   const double *buckets, size_t nbuckets, struct de_metric **out,
		   struct de_error *err)
{
	struct de_metric *f;

	if ((unsigned)type >= DE_METRIC_TYPE_MAX)
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL, "metric %s: unknown type",
				    name ? name : "?");
	if (!valid_name(name, true))
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "metric name '%s' is not [a-zA-Z_:][a-zA-Z0-9_:]* (at most %d "
				    "bytes)",
				    name ? name : "", MAX_NAME);
	if (type == DE_METRIC_COUNTER && !ends_with(name, "_total"))
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "counter %s: counter names end in _total", name);
	if (type != DE_METRIC_COUNTER && ends_with(name, "_total"))
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "%s: only counters end in _total", name);
	if (ends_with(name, "_bucket") || ends_with(name, "_count") || ends_with(name, "_sum"))
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "%s: _bucket, _count and _sum belong to histograms' series",
				    name);
	if (!help || !*help || strlen(help) > MAX_HELP)
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "metric %s needs a help text of 1..%d bytes", name, MAX_HELP);
	if (nlabels > DE_METRIC_MAX_LABELS)
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL, "metric %s: at most %d labels",
				    name, DE_METRIC_MAX_LABELS);
	for (size_t i = 0; i < nlabels; i++) {
		if (!valid_name(labels[i], false) || strncmp(labels[i], "__", 2) == 0 ||
		    (type == DE_METRIC_HISTOGRAM && strcmp(labels[i], "le") == 0))
			return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
					    "metric %s: '%s' is not a valid label name", name,
					    labels[i] ? labels[i] : "");
		for (size_t k = 0; k < i; k++)
			if (strcmp(labels[k], labels[i]) == 0)
				return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
						    "metric %s: label %s given twice", name,
						    labels[i]);
	}
	if (type == DE_METRIC_HISTOGRAM) {
		if (nbuckets < 1 || nbuckets > DE_METRIC_MAX_BUCKETS)
			return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
					    "histogram %s: 1..%d buckets", name,
					    DE_METRIC_MAX_BUCKETS);
		for (size_t i = 0; i < nbuckets; i++)
			if (!isfinite(buckets[i]) || (i && buckets[i] <= buckets[i - 1]))
				return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
						    "histogram %s: bucket bounds must be finite "
						    "and strictly increasing",
						    name);
	} else if (nbuckets) {
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "metric %s: only histograms have buckets", name);
	}
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->fams[i]->name, name) == 0)
			return de_error_set(err, DE_ERR_VALIDATION, EEXIST,
					    "metric %s registered twice", name);
	if (m->n == MAX_FAMILIES)
		return de_error_set(err, DE_ERR_VALIDATION, E2BIG, "more than %d metric families",
				    MAX_FAMILIES);
	if (!(f = calloc(1, sizeof(*f))) || !(f->name = strdup(name)) || !(f->help = strdup(help)))
		goto nomem;
	f->type = type;
	for (size_t i = 0; i < nlabels; i++) {
		if (!(f->labels[i] = strdup(labels[i])))
			goto nomem;
		f->nlabels++;
	}
	for (size_t i = 0; i < nbuckets; i++)
		f->bounds[i] = buckets[i];
	f->nbounds = nbuckets;
	/* a family without labels is exported from the start, at 0 */
	if (nlabels == 0 && !get(f, NULL, &(int){0}))
		goto nomem;
	m->fams[m->n++] = f;
	if (out)
		*out = f;
	return 0;
nomem:
	family_free(f);
	return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
}

int de_metrics_counter(struct de_metrics *m, const char *name, const char *help,
		       const char *const *labels, size_t nlabels, struct de_metric **out,
		       struct de_error *err)
{
	return de_metrics_add(m, name, help, DE_METRIC_COUNTER, labels, nlabels, NULL, 0, out, err);
}

int de_metrics_gauge(struct de_metrics *m, const char *name, const char *help,
		     const char *const *labels, size_t nlabels, struct de_metric **out,
		     struct de_error *err)
{
	return de_metrics_add(m, name, help, DE_METRIC_GAUGE, labels, nlabels, NULL, 0, out, err);
}

/* ---- series ---------------------------------------------------------------- */

static struct series *find(const struct de_metric *f, const char *const *values)
{
	for (size_t i = 0; i < f->nseries; i++) {
		size_t k = 0;
		while (k < f->nlabels && strcmp(f->series[i].values[k], values[k]) == 0)
			k++;
		if (k == f->nlabels)
			return &f->series[i];
	}
	return NULL;
}

/* The series for values, created at 0 if new.  NULL with *rc set. */
static struct series *get(struct de_metric *f, const char *const *values, int *rc)
{
	struct series *s = find(f, values), ns = {0};

	if (s)
		return s;
	for (size_t k = 0; k < f->nlabels; k++)
		if (!values || !values[k] || strlen(values[k]) > DE_METRIC_MAX_VALUE) {
			*rc = values && values[k] ? -E2BIG : -EINVAL;
			return NULL;
		}
	if (f->nseries == DE_METRIC_MAX_SERIES) {
		*rc = -E2BIG;
		return NULL;
	}
	if (f->nseries == f->cap) {
		size_t nc = f->cap ? f->cap * 2 : 4;
		struct series *p = realloc(f->series, nc * sizeof(*p));
		if (!p)
			goto nomem;
		f->series = p;
		f->cap = nc;
	}
	if (f->nlabels && !(ns.values = calloc(f->nlabels, sizeof(char *))))
		goto nomem;
	for (size_t k = 0; k < f->nlabels; k++)
		if (!(ns.values[k] = strdup(values[k])))
			goto nomem;
	if (f->type == DE_METRIC_HISTOGRAM &&
	    !(ns.counts = calloc(f->nbounds + 1, sizeof(uint64_t))))
		goto nomem;
	f->series[f->nseries] = ns;
	return &f->series[f->nseries++];
nomem:
	series_clear(f, &ns);
	*rc = -ENOMEM;
	return NULL;
}

int de_metric_inc(struct de_metric *f, const char *const *values, double v)
{
	struct series *s;
	int rc = 0;

	if (f->type == DE_METRIC_HISTOGRAM || isnan(v) || (f->type == DE_METRIC_COUNTER && v < 0))
		return -EINVAL;
	if (!(s = get(f, values, &rc)))
		return rc;
	s->value += v;
	return 0;
}

int de_metric_set(struct de_metric *f, const char *const *values, double v)
{
	struct series *s;
	int rc = 0;

	if (f->type == DE_METRIC_HISTOGRAM || isnan(v))
		return -EINVAL;
	if (!(s = get(f, values, &rc)))
		return rc;
	s->value = v;
	return 0;
}

int de_metric_observe(struct de_metric *f, const char *const *values, double v)
{
	struct series *s;
	size_t b = 0;
	int rc = 0;

	if (f->type != DE_METRIC_HISTOGRAM || isnan(v))
		return -EINVAL;
	if (!(s = get(f, values, &rc)))
		return rc;
	while (b < f->nbounds && v > f->bounds[b])
		b++;
	s->counts[b]++;
	s->count++;
	s->sum += v;
	return 0;
}

double de_metric_value(const struct de_metric *f, const char *const *values)
{
	const struct series *s;

	for (size_t k = 0; k < f->nlabels; k++)
		if (!values || !values[k])
			return 0;
	s = find(f, values);
	return s ? s->value : 0;
}

void de_metric_reset(struct de_metric *f)
{
	for (size_t i = 0; i < f->nseries; i++)
		series_clear(f, &f->series[i]);
	f->nseries = 0;
	if (f->nlabels == 0)
		(void)get(f, NULL, &(int){0}); /* room was there: cannot fail */
}

/* ---- rendering ------------------------------------------------------------- */

/* A sample value as Prometheus writes it: integers plainly, else shortest round trip. */
static int put_value(struct de_buf *b, double v)
{
	char s[64];

	if (isnan(v))
		return de_buf_puts(b, "NaN");
	if (isinf(v))
		return de_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
	if (v == floor(v) && fabs(v) < 1e15)
		return de_buf_printf(b, "%.0f", v);
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(s, sizeof(s), "%.*g", prec, v);
		if (strtod(s, NULL) == v)
			break;
	}
	return de_buf_puts(b, s);
}

/*
 * Escaped text: backslash and newline always, the double quote inside
 * label values.  Bytes that are not UTF-8 become U+FFFD (the format is
 * UTF-8).
 */
static int put_escaped(struct de_buf *b, const char *s, bool quote)
{
	size_t n = strlen(s), i = 0;
	int rc = 0;

	while (rc == 0 && i < n) {
		size_t k = de_utf8_seq_len(s + i, n - i);
		if (k == 0) {
			rc = de_buf_puts(b, "\xef\xbf\xbd");
			i++;
			continue;
		}
		if (s[i] == '\\')
			rc = de_buf_puts(b, "\\\\");
		else if (s[i] == '\n')
			rc = de_buf_puts(b, "\\n");
		else if (quote && s[i] == '"')
			rc = de_buf_puts(b, "\\\"");
		else
			rc = de_buf_append(b, s + i, k);
		i += k;
	}
	return rc;
}

/* name{l1="v1",...[,le="x"]} */
static int put_series_name(struct de_buf *b, const struct de_metric *f, const struct series *s,
			   const char *suffix, const char *le)
{
	int rc = de_buf_puts(b, f->name);

	if (rc == 0)
		rc = de_buf_puts(b, suffix);
	if (rc == 0 && (f->nlabels || le))
		rc = de_buf_putc(b, '{');
	for (size_t k = 0; rc == 0 && k < f->nlabels; k++) {
		if (k)
			rc = de_buf_putc(b, ',');
		if (rc == 0 && (rc = de_buf_printf(b, "%s=\"", f->labels[k])) == 0 &&
		    (rc = put_escaped(b, s->values[k], true)) == 0)
			rc = de_buf_putc(b, '"');
	}
	if (rc == 0 && le)
		rc = de_buf_printf(b, "%sle=\"%s\"", f->nlabels ? "," : "", le);
	if (rc == 0 && (f->nlabels || le))
		rc = de_buf_putc(b, '}');
	return rc == 0 ? de_buf_putc(b, ' ') : rc;
}

static int put_histogram(struct de_buf *b, const struct de_metric *f, const struct series *s)
{
	uint64_t cum = 0;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i <= f->nbounds; i++) {
		struct de_buf le = DE_BUF_INIT(64);
		cum += s->counts[i];
		rc = put_value(&le, i < f->nbounds ? f->bounds[i] : INFINITY);
		if (rc == 0 && (rc = put_series_name(b, f, s, "_bucket", le.p)) == 0 &&
		    (rc = put_value(b, (double)cum)) == 0)
			rc = de_buf_putc(b, '\n');
		de_buf_free(&le);
	}
	if (rc == 0 && (rc = put_series_name(b, f, s, "_sum", NULL)) == 0 &&
	    (rc = put_value(b, s->sum)) == 0 && (rc = de_buf_putc(b, '\n')) == 0 &&
	    (rc = put_series_name(b, f, s, "_count", NULL)) == 0 &&
	    (rc = put_value(b, (double)s->count)) == 0)
		rc = de_buf_putc(b, '\n');
	return rc;
}

int de_metrics_render(const struct de_metrics *m, struct de_buf *out)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < m->n; i++) {
		const struct de_metric *f = m->fams[i];
		if (f->nseries == 0)
			continue;
		if ((rc = de_buf_printf(out, "# HELP %s ", f->name)) < 0 ||
		    (rc = put_escaped(out, f->help, false)) < 0 ||
		    (rc = de_buf_printf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type])) < 0)
			break;
		for (size_t k = 0; rc == 0 && k < f->nseries; k++) {
			const struct series *s = &f->series[k];
			if (f->type == DE_METRIC_HISTOGRAM) {
				rc = put_histogram(out, f, s);
			} else if ((rc = put_series_name(out, f, s, "", NULL)) == 0 &&
				   (rc = put_value(out, s->value)) == 0) {
				rc = de_buf_putc(out, '\n');
			}
		}
	}
	return rc;
}

int de_metrics_write_textfile(const struct de_metrics *m, const char *path, struct de_error *err)
{
	struct de_buf b = DE_BUF_INIT(DE_METRIC_MAX_TEXT);
	int rc = de_metrics_render(m, &b);

	if (rc < 0) {
		de_buf_free(&b);
		return de_error_set(err, DE_ERR_IO, -rc, "cannot render the metrics: %s",
				    strerror(-rc));
	}
	rc = de_write_file_atomic(path, b.p ? b.p : "", b.len, 0644);
	de_buf_free(&b);
	if (rc < 0)
		return de_error_set(err, DE_ERR_IO, -rc, "cannot write the metrics file %s: %s",
				    path, strerror(-rc));
	return 0;
}
