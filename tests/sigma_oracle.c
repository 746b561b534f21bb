/*
 * sigma_oracle.c — the SQL side of the Sigma agreement test
 * (tests/sigma_agree.py): fills a real event store with given process
 * records, converts Sigma rules with the compiler, and runs each rule's SQL
 * in the real sandbox (a read-only engine connection, de_validator_prepare,
 * the regexp() function), printing which pids it selects.  It also runs
 * every rule on the exec path (de_engine_run_pid) for every `step`-th
 * record and checks that the pid is selected there exactly when the whole
 * run selected it.
 *
 *   sigma_oracle DIR RECORDS STEP RULE.yml...
 *
 * RECORDS has one process per line: "PID PPID EXE CMD USER CWD CONN", PPID
 * an integer or "-", EXE, CMD, USER (user_name) and CWD "-" (none) or "x"
 * followed by the bytes in hex; CONN "-" or one TCP connection of the
 * process, "KIND,FAMILY,LADDR,LPORT,RADDR,RPORT" (KIND connect, accept,
 * listen or connect_failed; FAMILY 4 or 6), stored in network_connections
 * for the process's instance.
 * Output, one line per rule: "RULE<TAB>file<TAB>OK<TAB>id<TAB>pid pid ..." or
 * "RULE<TAB>file<TAB>REFUSED<TAB>why"; a mismatch on the exec path prints
 * "EXECPATH<TAB>..." and makes the exit status 1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/clock.h"
#include "daemoneye/detect.h"
#include "daemoneye/fileio.h"
#include "daemoneye/record.h"
#include "daemoneye/sigma.h"
#include "daemoneye/store.h"

static char *unhex(const char *s)
{
	size_t n = strlen(s);
	char *o;

	if (!strcmp(s, "-"))
		return NULL;
	if (s[0] != 'x' || (n - 1) % 2) {
		fprintf(stderr, "bad field '%s'\n", s);
		exit(2);
	}
	o = calloc(n / 2 + 1, 1);
	for (size_t i = 1; o && i + 1 < n; i += 2) {
		unsigned v;
		sscanf(s + i, "%2x", &v);
		o[(i - 1) / 2] = (char)v;
	}
	return o;
}

/* "KIND,FAMILY,LADDR,LPORT,RADDR,RPORT" into *c; false when malformed. */
static bool parse_conn(char *s, const struct de_process_record *r, struct de_connection *c)
{
	char *f[6], *save = NULL;
	int n = 0;

	for (char *t = strtok_r(s, ",", &save); t && n < 6; t = strtok_r(NULL, ",", &save))
		f[n++] = t;
	if (n != 6)
		return false;
	memset(c, 0, sizeof(*c));
	for (int k = DE_CONN_CONNECT; k < DE_CONN_KIND_MAX; k++)
		if (!strcmp(f[0], de_conn_kind_name((enum de_conn_kind)k)))
			c->kind = (enum de_conn_kind)k;
	c->family = (uint8_t)atoi(f[1]);
	int af = c->family == 6 ? AF_INET6 : AF_INET;
	c->pid = r->pid;
	c->start_time = r->start_time;
	c->lport = (uint16_t)atoi(f[3]);
	c->rport = (uint16_t)atoi(f[5]);
	c->time_ms = de_now_ms();
	c->from_scan = true;
	return c->kind && (c->family == 4 || c->family == 6) &&
	       inet_pton(af, f[2], c->laddr) == 1 && inet_pton(af, f[4], c->raddr) == 1;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

static bool has(const uint32_t *v, size_t n, uint32_t pid)
{
	return bsearch(&pid, v, n, sizeof(*v), cmp_u32) != NULL;
}

int main(int argc, char **argv)
{
	struct de_store_config sc = {.wal_mode = true};
	struct de_process_record *recs = NULL;
	struct de_store *store = NULL;
	struct de_validator *v = de_validator_new();
	struct de_engine *eng = NULL;
	struct de_error e = {0};
	char path[4096], line[1 << 16];
	struct de_connection *conns = NULL;
	size_t nrec = 0, cap = 0, step, nconn = 0, conncap = 0;
	int64_t scan;
	int status = 0;
	FILE *f;

	if (argc < 5 || !v) {
		fprintf(stderr, "usage: sigma_oracle DIR RECORDS STEP RULE.yml...\n");
		return 2;
	}
	step = strtoul(argv[3], NULL, 10);
	snprintf(path, sizeof(path), "%s/events.sqlite", argv[1]);
	sc.path = path;
	if (!(f = fopen(argv[2], "re"))) {
		perror(argv[2]);
		return 2;
	}
	while (fgets(line, sizeof(line), f)) {
		char pid[32], ppid[32], conn[256],
			*exe = malloc(sizeof(line)), *cmd = malloc(sizeof(line)),
			*user = malloc(sizeof(line)), *cwd = malloc(sizeof(line));
		if (!exe || !cmd || !user || !cwd ||
		    sscanf(line, "%31s %31s %65535s %65535s %65535s %65535s %255s", pid, ppid, exe,
			   cmd, user, cwd, conn) != 7) {
			fprintf(stderr, "bad record line: %s", line);
			return 2;
		}
		if (nrec == cap) {
			cap = cap ? cap * 2 : 1024;
			recs = realloc(recs, cap * sizeof(*recs));
			if (!recs)
				return 2;
		}
		struct de_process_record *r = &recs[nrec++];
		memset(r, 0, sizeof(*r));
		de_uuid_v4(&r->id);
		r->collection_time = de_now_ms();
		r->pid = (uint32_t)strtoul(pid, NULL, 10);
		if (strcmp(ppid, "-") != 0) {
			r->has_ppid = true;
			r->ppid = (uint32_t)strtoul(ppid, NULL, 10);
		}
		r->executable_path = unhex(exe);
		char *c = unhex(cmd);
		r->command_line = calloc(2, sizeof(char *));
		r->command_line[0] = c ? c : strdup("");
		r->command_line_len = 1;
		const char *base = r->executable_path ? strrchr(r->executable_path, '/') : NULL;
		r->name = strndup(base ? base + 1 : "kthread", 15);
		r->has_start_time = true;
		r->start_time = 1700000000000 + r->pid;
		r->user_id = strdup("1000");
		r->accessible = true;
		r->file_exists = r->executable_path != NULL;
		r->facts.user_name = unhex(user);
		r->facts.cwd = unhex(cwd);
		if (strcmp(conn, "-") != 0) {
			if (nconn == conncap) {
				conncap = conncap ? conncap * 2 : 256;
				if (!(conns = realloc(conns, conncap * sizeof(*conns))))
					return 2;
			}
			if (!parse_conn(conn, r, &conns[nconn++])) {
				fprintf(stderr, "bad connection: %s", line);
				return 2;
			}
		}
		free(exe);
		free(cmd);
		free(user);
		free(cwd);
	}
	fclose(f);
	if (de_store_open(&sc, &store, &e) < 0 ||
	    de_store_scan_begin(store, 1, "poll", &scan, &e) < 0)
		goto fail;
	for (size_t i = 0; i < nrec; i++)
		recs[i].scan_id = scan;
	if (de_store_processes(store, scan, recs, nrec, &e) < 0 ||
	    de_store_scan_end(store, scan, 2, nrec, &e) < 0 ||
	    de_store_connections(store, conns, nconn, 0, &e) < 0)
		goto fail;
	de_validator_with_timeout(v, 0);
	if (de_engine_open(path, v, &eng, &e) < 0)
		goto fail;

	size_t checked = 0;
	for (int a = 4; a < argc; a++) {
		struct de_sigma_rule sr = {0};
		char *text = NULL;
		size_t len = 0;
		sqlite3_stmt *st = NULL;
		uint32_t *pids = NULL;
		size_t np = 0;
		struct de_guard g;

		if (de_read_file(argv[a], DE_SIGMA_MAX_FILE, &text, &len, NULL) < 0 ||
		    de_sigma_convert(text, len, argv[a], NULL, v, &sr, &e) < 0) {
			printf("RULE\t%s\tREFUSED\t%s\n", argv[a], e.message);
			free(text);
			continue;
		}
		free(text);
		if (de_validator_prepare(v, de_engine_db(eng), sr.rule.sql_query, &st, &e) < 0) {
			printf("RULE\t%s\tREFUSED\tthe sandbox refuses its SQL: %s\n", argv[a],
			       e.message);
			de_sigma_rule_clear(&sr);
			status = 1;
			continue;
		}
		pids = calloc(nrec + 1, sizeof(*pids));
		de_validator_arm(v, de_engine_db(eng), &g);
		int rc;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			pids[np++] = (uint32_t)sqlite3_column_int64(st, 0);
		de_validator_disarm(de_engine_db(eng), &g);
		if (rc != SQLITE_DONE) {
			de_validator_step_error(de_engine_db(eng), &g, rc, &e);
			printf("RULE\t%s\tFAILED\t%s\n", argv[a], e.message);
			status = 1;
		} else {
			qsort(pids, np, sizeof(*pids), cmp_u32);
			printf("RULE\t%s\tOK\t%s\t", argv[a], sr.rule.id);
			for (size_t i = 0; i < np; i++)
				printf("%s%u", i ? " " : "", pids[i]);
			printf("\n");
			/* the exec path: the same rule, one process at a time */
			for (size_t i = 0; step && i < nrec; i += step) {
				struct de_alert_list alerts = {0};
				struct de_rule_result res;
				bool got = false, want = has(pids, np, recs[i].pid);
				de_engine_run_rule(eng, &sr.rule, scan, &recs[i].pid, &alerts,
						   &res);
				for (size_t k = 0; k < alerts.len; k++)
					for (size_t p = 0;
					     p < alerts.items[k].affected_processes_len; p++)
						got |= alerts.items[k].affected_processes[p] ==
						       recs[i].pid;
				if (res.status < 0 || !res.ran || got != want) {
					printf("EXECPATH\t%s\tpid %u\twant %d\tgot %d\t%s\n",
					       argv[a], recs[i].pid, want, got,
					       res.status < 0 ? res.error.message
					       : res.ran      ? ""
							      : "did not run (no pid column?)");
					status = 1;
				}
				checked++;
				de_alert_list_clear(&alerts);
			}
		}
		sqlite3_finalize(st);
		free(pids);
		de_sigma_rule_clear(&sr);
	}
	printf("SUMMARY\t%zu records\t%zu exec-path checks\n", nrec, checked);
	goto out;
fail:
	fprintf(stderr, "sigma_oracle: %s\n", e.message);
	status = 2;
out:
	for (size_t i = 0; i < nrec; i++)
		de_process_record_clear(&recs[i]);
	free(recs);
	free(conns);
	de_engine_close(eng);
	de_store_close(store);
	de_validator_free(v);
	return status;
}
