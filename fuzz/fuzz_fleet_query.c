/*
 * fuzz_fleet_query.c — a fleet query message from the network (fleet.h):
 * the strict parser and the signature check an agent runs before anything
 * else.  The signature stops random input before the fields are checked,
 * so each input is fed twice: as a message, as it is; and as the fields of
 * a query (lines: id, reply, hosts joined by ",", then the SQL) signed by a
 * key made once per run, which must then open to the same fields (else
 * abort).  Nothing may crash or leak.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemoneye/fleet.h"
#include "fuzz_keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct de_ckpt_key *priv, *pub;

/* The next line of *p (up to end) as a new string; *p moves past it. */
static char *line(const char **p, const char *end)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
	char *s = strndup(*p, n);

	*p += nl ? n + 1 : n;
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const int64_t now = 1700000000000;
	struct de_fleet_query q = {0}, got = {0};
	struct de_error err = {0};
	const char *p = (const char *)data, *end = p + size;
	char *id, *reply, *hosts, *msg = NULL;
	size_t len = 0;

	if (!priv)
		fuzz_make_keys(&priv, &pub);
	if (de_fleet_query_open((const char *)data, size, pub, now, &got, &err) == 0)
		de_fleet_query_clear(&got);

	id = line(&p, end);
	reply = line(&p, end);
	hosts = line(&p, end);
	q.sql = strndup(p, (size_t)(end - p));
	if (!id || !reply || !hosts || !q.sql)
		goto out;
	snprintf(q.id, sizeof(q.id), "%s", id);
	snprintf(q.reply, sizeof(q.reply), "%s", reply);
	q.issued_ms = now;
	q.expires_ms = now + 1000;
	for (char *h = strtok(hosts, ","); h && q.nhosts < 8; h = strtok(NULL, ",")) {
		char **nh = realloc(q.hosts, (q.nhosts + 1) * sizeof(char *));
		if (!nh)
			goto out;
		q.hosts = nh;
		if (!(q.hosts[q.nhosts] = strdup(h)))
			goto out;
		q.nhosts++;
	}
	if (de_fleet_query_sign(&q, priv, &msg, &len, &err) == 0) {
		if (de_fleet_query_open(msg, len, pub, now, &got, &err) != 0 ||
		    strcmp(got.sql, q.sql) != 0 || strcmp(got.id, q.id) != 0 ||
		    strcmp(got.reply, q.reply) != 0 || got.nhosts != q.nhosts)
			abort(); /* what we sign must open as signed */
		de_fleet_query_clear(&got);
	}
out:
	free(msg);
	free(id);
	free(reply);
	free(hosts);
	de_fleet_query_clear(&q);
	return 0;
}
