/*
 * metrics.h — the seed's Telemetry API: counters, gauges and histograms
 * with labels, rendered in the Prometheus text exposition format (version
 * 0.0.4), written atomically to a textfile for node_exporter's textfile
 * collector, and, only when asked for, served on a loopback-only HTTP
 * listener (libmicrohttpd).
 *
 * A registry holds metric families; a family has a name, a help text, a
 * type and up to DE_METRIC_MAX_LABELS label names; each distinct tuple of
 * label values is a series.  Names follow Prometheus conventions and are
 * checked when a family is registered: [a-zA-Z_:][a-zA-Z0-9_:]*, counters
 * end in "_total", no family name ends in a histogram's own suffixes
 * (_bucket, _count, _sum) unless it is one.  Label values are any bytes up
 * to DE_METRIC_MAX_VALUE (escaped on output); a family holds at most
 * DE_METRIC_MAX_SERIES series, so a label fed from input (a rule id, a sink
 * name) cannot grow memory without bound.  A family without labels always
 * has its one series (0 until changed), so it is exported from the start.
 *
 * The registry is not locked: one thread updates and renders it.  The
 * HTTP listener never reads the registry; it serves the last text
 * published to it (de_metrics_server_publish copies under its own lock).
 *
 * Ownership: de_metrics_free frees the registry and every family in it;
 * family handles are borrowed from the registry.  Rendered text is
 * appended to a caller's buffer.
 */
#ifndef DAEMONEYE_METRICS_H
#define DAEMONEYE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "daemoneye/buf.h"
#include "daemoneye/error.h"

#define DE_METRIC_MAX_LABELS  6
#define DE_METRIC_MAX_BUCKETS 32
#define DE_METRIC_MAX_SERIES  2048
#define DE_METRIC_MAX_VALUE   512	 /* bytes of one label value */
#define DE_METRIC_MAX_TEXT    (8u << 20) /* bytes of one rendering */

enum de_metric_type {
	DE_METRIC_COUNTER = 0,
	DE_METRIC_GAUGE,
	DE_METRIC_HISTOGRAM,
	DE_METRIC_TYPE_MAX
};

struct de_metrics; /* a registry */
struct de_metric;  /* a family in a registry */

/* A new empty registry.  0 or -ENOMEM (err filled). */
int de_metrics_new(struct de_metrics **out, struct de_error *err);
/* Free the registry and its families.  Accepts NULL. */
void de_metrics_free(struct de_metrics *m);

/*
 * Register a family.  labels: nlabels names (each [a-zA-Z_][a-zA-Z0-9_]*,
 * not starting with "__", not "le" for histograms); buckets (histograms
 * only): nbuckets strictly increasing finite upper bounds, +Inf is added.
 * A name registered twice is an error (EEXIST).  *out is borrowed from m.
 * Errors: DE_ERR_VALIDATION (EINVAL) naming what breaks the conventions.
 */
int de_metrics_add(struct de_metrics *m, const char *name, const char *help,
		   enum de_metric_type type, const char *const *labels, size_t nlabels,
		   const double *buckets, size_t nbuckets, struct de_metric **out,
		   struct de_error *err);

/* Shorthands for de_metrics_add. */
int de_metrics_counter(struct de_metrics *m, const char *name, const char *help,
		       const char *const *labels, size_t nlabels, struct de_metric **out,
		       struct de_error *err);
int de_metrics_gauge(struct de_metrics *m, const char *name, const char *help,
		     const char *const *labels, size_t nlabels, struct de_metric **out,
		     struct de_error *err);

/*
 * Update the series whose label values are values[0..nlabels) (NULL when
 * the family has no labels; each value NUL-terminated), creating it at 0.
 * inc adds v >= 0 to a counter or any v to a gauge; set sets a gauge (or a
 * counter, which must then not go down between scrapes: for counters
 * mirrored from elsewhere); observe adds one observation to a histogram.
 * 0; -EINVAL for the wrong type, a negative counter increment or a NaN;
 * -E2BIG when the family is full or a value too long; -ENOMEM.  A failed
 * update changes nothing.
 */
int de_metric_inc(struct de_metric *f, const char *const *values, double v);
int de_metric_set(struct de_metric *f, const char *const *values, double v);
int de_metric_observe(struct de_metric *f, const char *const *values, double v);

/* The value of a counter or gauge series (0 when it does not exist). */
double de_metric_value(const struct de_metric *f, const char *const *values);

/* Forget every series (a label-less family keeps its one, at 0). */
void de_metric_reset(struct de_metric *f);

/*
 * Append the registry in the text exposition format to out: per family
 * "# HELP", "# TYPE" and its series in the order they were created
 * (histograms: cumulative _bucket lines with le, then _sum and _count).
 * Families with no series are left out.  0, or -E2BIG/-ENOMEM.
 */
int de_metrics_render(const struct de_metrics *m, struct de_buf *out);

/*
 * Render m and replace the file at path with it atomically (mode 0644, so
 * node_exporter and operators can read it).  0 or -errno with err filled
 * (DE_ERR_IO naming the file).
 */
int de_metrics_write_textfile(const struct de_metrics *m, const char *path, struct de_error *err);

/* ---- the loopback HTTP listener (metrics_http.c) --------------------------- */

struct de_metrics_server;

/*
 * Parse "HOST:PORT" where HOST is "localhost", an IPv4 address in
 * 127.0.0.0/8 or "[::1]", and PORT 0..65535 (0: any free port).  Anything
 * that is not loopback is refused: DE_ERR_CONFIGURATION (EINVAL) naming
 * the value.  On success the address is written to *sa (a struct
 * sockaddr_storage) and its length to *salen.
 */
int de_metrics_listen_parse(const char *listen, void *sa, unsigned *salen, struct de_error *err);

/*
 * Start serving GET /metrics on the loopback address `listen` (see
 * de_metrics_listen_parse) in a thread of its own.  Until the first
 * publish it answers 503.  Other paths are 404, other methods 405.  *out
 * is the caller's (de_metrics_server_stop).
 */
int de_metrics_server_start(const char *listen, struct de_metrics_server **out,
			    struct de_error *err);
/* The port actually bound (useful with port 0). */
uint16_t de_metrics_server_port(const struct de_metrics_server *s);
/* Serve text[0..len) from now on (copied).  0 or -ENOMEM (the old text stays). */
int de_metrics_server_publish(struct de_metrics_server *s, const char *text, size_t len);
/* Stop the listener, join its thread and free it.  Accepts NULL. */
void de_metrics_server_stop(struct de_metrics_server *s);

#endif
