/*
 * sink_stdout.c — alerts on standard output, one line each: human text
 * (severity coloured on a terminal unless NO_COLOR or TERM=dumb) or any
 * machine format.  The format "auto" (the default) is human text on a
 * terminal and JSON lines otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "daemoneye/sink.h"
#include "daemoneye/term.h"

struct stdout_sink {
	FILE *f; /* stdout, borrowed */
	enum de_alertfmt fmt;
};

static const char *const keys[] = {NULL};

static int so_configure(struct de_sink_conf *c, void **state)
{
	struct stdout_sink *s = calloc(1, sizeof(*s));

	if (!s)
		return de_error_set(c->err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
	s->f = stdout;
	s->fmt = c->format;
	c->color = c->format == DE_FMT_HUMAN && de_use_color(stdout);
	*state = s;
	return 0;
}

static int so_open(void *state, struct de_error *err)
{
	(void)state;
	(void)err;
	return 0;
}

static void so_deliver(void *state, const struct de_sink_msg *m, struct de_sink_result *r)
{
	struct stdout_sink *s = state;

	errno = 0;
	if (fwrite(m->payload, 1, m->len, s->f) != m->len || fputc('\n', s->f) == EOF ||
	    fflush(s->f) != 0) {
		int e = errno ? errno : EIO;
		clearerr(s->f);
		/* a full disk behind a redirection may clear; a closed pipe will not */
		de_sink_fail(r, e == EPIPE || e == EBADF ? DE_SINK_PERMANENT : DE_SINK_TRANSIENT,
			     "cannot write to standard output: %s", strerror(e));
		return;
	}
	r->outcome = DE_SINK_OK;
}

static bool so_health(void *state, char *buf, size_t n)
{
	struct stdout_sink *s = state;
	bool ok = fcntl(fileno(s->f), F_GETFD) >= 0;

	snprintf(buf, n, "standard output (%s)%s", de_alertfmt_name(s->fmt), ok ? "" : ": closed");
	return ok;
}

static void so_close(void *state)
{
	free(state);
}

const struct de_sink_ops de_sink_stdout_ops = {
	.type = "stdout",
	.keys = keys,
	.default_format = DE_FMT_HUMAN,
	.configure = so_configure,
	.open = so_open,
	.deliver = so_deliver,
	.health = so_health,
	.reopen = NULL,
	.close = so_close,
};
