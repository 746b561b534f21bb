/*
 * test_store_events.c — real-time events (src/lib/store_events.c): exec,
 * exec in place, pid reuse, exit, unknown pids, stale events ignored, a
 * full scan afterwards agrees, a bad event rolls the whole batch back
 * (memory and file alike), the index reloaded after a restart, read-only
 * stores refuse; batches held open for one commit (de_store_hold_batches)
 * read through the shared cache before it, committed by any other write,
 * rolled back together and said so.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define DE_TEST_NAME "store_events"
#include "testutil.h"
#include "store_fixtures.h"
#include "store_int.h" /* store_fold_wal */
#include "daemoneye/clock.h"
#include "daemoneye/detect.h"
#include "daemoneye/validator.h"

static void events_ok(struct de_store *s, int64_t scan, const struct de_process_event *ev, size_t n)
{
	struct de_error e = {0};
	if (de_store_apply_events(s, scan, ev, n, &e) < 0)
		fail_msg("events: %s", e.message);
}

/* The base host: pids 1..10 and two pids that share pid 1's index slot. */
#define EV_BASE 12
static void ev_base(struct de_process_record *r, int64_t t, int64_t scan)
{
	mk_many(r, 10, t, scan);
	mk(&r[10], 65, 1065, t, scan);
	mk(&r[11], 129, 1129, t, scan);
}

/* Keep the numbers of the last row (its strings are not kept). */
static int exit_row_cb(const struct de_process_row *row, void *arg)
{
	struct de_process_row *out = arg;
	*out = *row;
	out->name = out->executable_path = out->command_line = out->argv_json = NULL;
	out->executable_hash = out->user_id = out->user_name = out->group_name = NULL;
	out->cwd = NULL;
	return 0;
}

static void test_events(void **state)
{
	(void)state;
	char *path = db_path("realtime.sqlite");
	struct de_store *s = open_at(path, 3600);
	sqlite3 *db = de_store_db(s);
	struct de_process_record base[EV_BASE], x[4], full[EV_BASE + 1];
	struct de_process_event ev[8];
	struct de_store_diff d;
	struct de_error e = {0};
	int64_t scan;

	assert_int_equal(de_store_scan_begin(s, 10000, "poll", &scan, &e), 0);
	ev_base(base, 10000, scan);
	store_ok(s, base, EV_BASE);
	assert_int_equal(de_store_scan_begin(s, 15000, "event", &scan, &e), 0);
	assert_int_equal(scan, 2);
	mk(&x[0], 50, 14000, 15001, 0); /* a new process */
	mk(&x[1], 3, 1002, 15002, 0);	/* pid 3 exec'd in place */
	free(x[1].command_line[1]);
	x[1].command_line[1] = strdup("--exec'd");
	mk(&x[2], 5, 14500, 15003, 0);	/* pid 5 reused */
	mk(&x[3], 60, 14600, 15006, 0); /* never used: exec without a record */
	ev[0] = exec_ev(50, 15001, &x[0]);
	ev[1] = exec_ev(3, 15002, &x[1]);
	ev[2] = exec_ev(5, 15003, &x[2]);
	ev[3] = exit_ev(7, 15004);
	ev[3].exit_code = 3 << 8;     /* exit(3) */
	ev[4] = exit_ev(4242, 15005); /* never seen */
	ev[5] = exec_ev(60, 15006, NULL);
	ev[6] = exit_ev(1, 15007); /* pid 1: 65 and 129 probe past its slot */
	ev[6].exit_code = 9;	   /* killed by SIGKILL */
	events_ok(s, scan, ev, 7);
	d = de_store_last_diff(s);
	assert_int_equal(d.added, 2);
	assert_int_equal(d.changed, 1);
	assert_int_equal(d.history, 1);
	assert_int_equal(d.exited, 3);
	assert_int_equal(d.samples, 0);
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), EV_BASE + 1 - 2);
	/* history: the three instances that left (pid 5's first, 7 and 1) */
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 3);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE pid IN (1, 7, 60)"), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances WHERE pid = 60"), 0);
	/* exec in place: the old arguments kept, the new ones current */
	assert_int_equal(count(db, "SELECT count(*) FROM process_changes WHERE command_line = "
				   "'synthetic --n=3' AND changed_at = 15002"),
			 1);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE pid = 3 AND "
				   "command_line = 'synthetic --exec''d'"),
			 1);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances WHERE pid = 3"), 0);
	/* pid reuse: the old instance ended when the new one appeared */
	assert_int_equal(count(db, "SELECT exited_at FROM process_instances WHERE pid = 5 AND "
				   "start_time = 1004"),
			 15003);
	assert_int_equal(count(db,
			       "SELECT count(*) FROM processes WHERE pid = 5 AND "
			       "start_time = 14500 AND first_scan_id = 2 AND first_seen = 15003"),
			 1);
	/* exit: time and scan of the event, and how it ended (wait status
	   decoded); pid reuse says nothing of how the old instance ended */
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances WHERE pid = 7 AND "
				   "exited_at = 15004 AND last_seen = 15004 AND exit_scan_id = 2"),
			 1);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances WHERE pid = 7 AND "
				   "exit_code = 3 AND exit_signal IS NULL"),
			 1);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances WHERE pid = 1 AND "
				   "exit_code IS NULL AND exit_signal = 9"),
			 1);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances WHERE pid = 5 AND "
				   "exit_code IS NULL AND exit_signal IS NULL"),
			 1);
	struct de_process_query q = {.has_pid = true, .pid = 7};
	struct de_process_row seen = {0};
	assert_int_equal(de_store_query_processes(s, &q, exit_row_cb, &seen, &e), 0);
	assert_true(seen.has_exit_code && seen.exit_code == 3 && !seen.has_exit_signal);
	assert_int_equal(count(db, "SELECT new_count * 100 + changed_count * 10 + exited_count "
				   "FROM scans WHERE id = 2"),
			 213);
	assert_int_equal(count(db, "SELECT value FROM store_state WHERE key = 'snapshot_time'"),
			 15007);
	assert_int_equal(de_store_scan_end(s, scan, 15010, 7, &e), 0);

	/* a full scan of the same host agrees: nothing new, changed or gone */
	size_t nf = 0;
	for (size_t i = 0; i < EV_BASE; i++) {
		uint32_t pid = base[i].pid;
		if (pid == 1 || pid == 7)
			continue;
		if (pid == 3)
			mk(&full[nf], 3, 1002, 0, 0);
		else if (pid == 5)
			mk(&full[nf], 5, 14500, 0, 0);
		else
			mk(&full[nf], pid, base[i].start_time, 0, 0);
		if (pid == 3) {
			free(full[nf].command_line[1]);
			full[nf].command_line[1] = strdup("--exec'd");
		}
		nf++;
	}
	mk(&full[nf++], 50, 14000, 0, 0);
	retime(full, nf, 20000, 3);
	store_ok(s, full, nf);
	d = de_store_last_diff(s);
	assert_int_equal(d.added + d.changed + d.exited + d.history + d.samples, 0);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 3);

	/* events older than the live instance (queued while a full scan saw the
	   pid reused) change nothing: pid 5 has lived since 14500 */
	struct de_process_record stale;
	mk(&stale, 5, 1004, 20001, 0); /* the instance that ended at 15003 */
	ev[0] = exec_ev(5, 20001, &stale);
	ev[1] = exit_ev(5, 14400);
	events_ok(s, 3, ev, 2);
	d = de_store_last_diff(s);
	assert_int_equal(d.added + d.changed + d.exited + d.history, 0);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE pid = 5 AND "
				   "start_time = 14500"),
			 1);
	de_process_record_clear(&stale);

	/* many new pids grow the index; a full scan still agrees */
	struct de_process_record many[100];
	struct de_process_event mev[100];
	for (size_t i = 0; i < 100; i++) {
		mk(&many[i], 1000 + (uint32_t)i, 30000 + (int64_t)i, 30000, 0);
		mev[i] = exec_ev(1000 + (uint32_t)i, 30000, &many[i]);
	}
	events_ok(s, 3, mev, 100);
	assert_int_equal(de_store_last_diff(s).added, 100);
	struct de_process_record *all = calloc(nf + 100, sizeof(*all));
	memcpy(all, full, nf * sizeof(*all));
	memcpy(all + nf, many, 100 * sizeof(*all));
	retime(all, nf + 100, 40000, 4);
	store_ok(s, all, nf + 100);
	d = de_store_last_diff(s);
	assert_int_equal(d.added + d.changed + d.exited + d.history, 0);
	free(all);

	/* a bad event rolls the whole batch back, memory and file alike */
	const char *every = "SELECT (SELECT count(*) FROM process_instances) + "
			    "(SELECT count(*) FROM processes)";
	int64_t inst = count(db, every);
	struct de_process_record y;
	mk(&y, 70, 41000, 41000, 0);
	ev[0] = exec_ev(70, 41000, &y);
	ev[1] = exit_ev(2, 41001);
	ev[2] = exec_ev(71, 41002, &y); /* the record is pid 70's */
	assert_int_equal(de_store_apply_events(s, 4, ev, 3, &e), -EINVAL);
	assert_int_equal(e.category, DE_ERR_VALIDATION);
	assert_non_null(strstr(e.message, "pid 71"));
	ev[2] = (struct de_process_event){.kind = (enum de_process_event_kind)99, .pid = 8};
	assert_int_equal(de_store_apply_events(s, 4, ev, 3, &e), -EINVAL);
	assert_non_null(strstr(e.message, "unknown process event kind"));
	assert_int_equal(count(db, every), inst);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE pid = 2"), 1);
	retime(full, nf, 50000, 5);
	store_ok(s, full, nf); /* the 100 are gone now; pid 2 is not, pid 70 never came */
	d = de_store_last_diff(s);
	assert_int_equal(d.exited, 100);
	assert_int_equal(d.added + d.changed + d.history, 0);
	de_store_close(s);

	/* after a restart the index comes from the file: events still apply */
	s = open_at(path, 3600);
	db = de_store_db(s);
	ev[0] = exit_ev(50, 60000);
	ev[1] = exec_ev(70, 60001, &y);
	events_ok(s, 5, ev, 2);
	d = de_store_last_diff(s);
	assert_int_equal(d.exited, 1);
	assert_int_equal(d.added, 1);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE pid = 50"), 0);
	events_ok(s, 5, NULL, 0);
	assert_int_equal(de_store_last_diff(s).added, 0);
	assert_integrity(db);
	de_store_close(s);

	/* read-only stores refuse */
	struct de_store_config ro = {.path = path, .read_only = true};
	assert_int_equal(de_store_open(&ro, &s, &e), 0);
	assert_int_equal(de_store_apply_events(s, 5, ev, 1, &e), -EROFS);
	de_store_close(s);
	de_process_record_clear(&y);
	clear_many(base, EV_BASE);
	clear_many(x, 4);
	clear_many(full, nf);
	clear_many(many, 100);
	free(path);
}

/* The size of path's WAL file (0 when there is none). */
static long long wal_size(const char *path)
{
	char w[4096];
	struct stat st;

	snprintf(w, sizeof(w), "%s-wal", path);
	return stat(w, &st) == 0 ? (long long)st.st_size : 0;
}

/*
 * n event batches of one exec and one exit each (a busy host between two
 * full scans), each its own transaction; with `every` > 0 the agent's
 * maintenance call after each batch (de_store_checkpoint at `every` bytes).
 */
static void churn(struct de_store *s, int n, uint32_t pid0, uint64_t every, bool tolerate_full)
{
	struct de_error e = {0};

	for (int i = 0; i < n; i++) {
		struct de_process_record r;
		struct de_process_event ev[2];
		uint32_t pid = pid0 + (uint32_t)i;
		mk(&r, pid, 50000 + i, 50000 + i, 0);
		ev[0] = exec_ev(pid, 50000 + i, &r);
		ev[1] = exit_ev(pid - 1, 50000 + i);
		int rc = de_store_apply_events(s, 7, ev, 2, &e);
		if (rc < 0 && !(tolerate_full && rc == -ENOSPC))
			fail_msg("batch %d: %s", i, e.message);
		if (every && de_store_checkpoint(s, every, &e) < 0 && !tolerate_full)
			fail_msg("checkpoint: %s", e.message);
		de_process_record_clear(&r);
	}
}

/*
 * An event batch writes store_state (a page of the WAL) only every
 * STORE_STATE_LAG_MS of snapshot time; a full scan always does, and so
 * does closing the store.  The live query never shows a process last seen
 * before it was first seen, nor a scan before its first.
 */
static void state_at(sqlite3 *db, int64_t t, int64_t scan)
{
	assert_int_equal(count(db, "SELECT value FROM store_state WHERE key = 'snapshot_time'"), t);
	assert_int_equal(count(db, "SELECT value FROM store_state WHERE key = 'snapshot_scan'"),
			 scan);
}

/* A live row's last sighting: last_seen and last_scan_id into arg[0..2). */
static int last_seen_cb(const struct de_process_row *row, void *arg)
{
	int64_t *seen = arg;

	seen[0] = row->last_seen;
	seen[1] = row->last_scan_id;
	return 0;
}

static void test_state_every_lag(void **state)
{
	(void)state;
	char *path = db_path("state_lag.sqlite");
	struct de_store *s = open_at(path, 3600);
	struct de_process_record base[EV_BASE], x[3];
	struct de_process_event ev[2];
	struct de_error e = {0};
	int64_t scan, s2, s3, s4;

	ev_base(base, 10000, 1);
	store_ok(s, base, EV_BASE);
	clear_many(base, EV_BASE);
	state_at(de_store_db(s), 10000, 1);
	/* an exec 10 ms later: the rows, not the state */
	mk(&x[0], 50, 10010, 10010, 0);
	ev[0] = exec_ev(50, 10010, &x[0]);
	assert_int_equal(de_store_event_scan(s, 10010, ev, 1, &s2, &e), 0);
	state_at(de_store_db(s), 10000, 1);
	assert_int_equal(count(de_store_db(s), "SELECT count(*) FROM processes WHERE pid = 50"), 1);
	/* the live query: last seen no earlier than first seen */
	struct de_process_query q = {.current_only = true, .has_pid = true, .pid = 50};
	int64_t seen[2] = {0};
	assert_int_equal(de_store_query_processes(s, &q, last_seen_cb, seen, &e), 0);
	assert_int_equal(seen[0], 10010);
	assert_int_equal(seen[1], s2);
	/* its exit 30 ms later: history, not the state */
	ev[0] = exit_ev(50, 10030);
	assert_int_equal(de_store_event_scan(s, 10030, ev, 1, &s3, &e), 0);
	state_at(de_store_db(s), 10000, 1);
	assert_int_equal(count(de_store_db(s), "SELECT exited_at FROM process_instances"), 10030);
	/* STORE_STATE_LAG_MS after the state was written: written */
	mk(&x[1], 51, 10050, 10050, 0);
	ev[0] = exec_ev(51, 10000 + STORE_STATE_LAG_MS, &x[1]);
	assert_int_equal(de_store_event_scan(s, 10050, ev, 1, &s4, &e), 0);
	state_at(de_store_db(s), 10000 + STORE_STATE_LAG_MS, s4);
	/* the next batch left behind, then written when the store closes */
	mk(&x[2], 52, 10060, 10060, 0);
	ev[0] = exec_ev(52, 10060, &x[2]);
	assert_int_equal(de_store_event_scan(s, 10060, ev, 1, &scan, &e), 0);
	state_at(de_store_db(s), 10000 + STORE_STATE_LAG_MS, s4);
	de_store_close(s);
	s = open_at(path, 3600);
	state_at(de_store_db(s), 10060, scan);
	/* a full scan always writes it: pid 52 gone, seen last by the batch */
	mk_many(base, 10, 10070, 10);
	assert_int_equal(de_store_scan_begin(s, 10070, "poll", &s2, &e), 0);
	retime(base, 10, 10070, s2);
	store_ok(s, base, 10);
	state_at(de_store_db(s), 10070, s2);
	assert_int_equal(count(de_store_db(s), "SELECT last_seen FROM process_instances WHERE "
					       "pid = 52"),
			 10060);
	clear_many(base, 10);
	clear_many(x, 3);
	de_store_close(s);
	free(path);
}

/*
 * A writer killed after an event batch that left store_state behind: the
 * reopened store takes the newest event scan as its snapshot's, so the
 * next full scan gives the process it finds gone a last sighting (time and
 * scan) no earlier than its first.
 */
static void test_state_after_crash(void **state)
{
	(void)state;
	char *path = db_path("state_crash.sqlite");
	struct de_process_record base[EV_BASE];
	struct de_error e = {0};
	int64_t scan;
	int st;

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct de_store *s = open_at(path, 3600);
		struct de_process_record x;
		struct de_process_event ev;
		if (de_store_scan_begin(s, 10000, "poll", &scan, &e) < 0 || scan != 1)
			_exit(3);
		ev_base(base, 10000, scan);
		store_ok(s, base, EV_BASE);
		mk(&x, 50, 10010, 10010, 0);
		ev = exec_ev(50, 10010, &x);
		if (de_store_event_scan(s, 10012, &ev, 1, &scan, &e) < 0 || scan != 2)
			_exit(4);
		raise(SIGKILL); /* no close: store_state as the batch left it */
		_exit(5);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	struct de_store *s = open_at(path, 3600);
	state_at(de_store_db(s), 10000, 1); /* the file's: behind the batch */
	assert_int_equal(count(de_store_db(s), "SELECT first_seen FROM processes WHERE pid = 50"),
			 10010);
	/* the next full scan: the host without pid 50 */
	assert_int_equal(de_store_scan_begin(s, 10100, "poll", &scan, &e), 0);
	ev_base(base, 10100, scan);
	store_ok(s, base, EV_BASE);
	assert_int_equal(count(de_store_db(s), "SELECT last_seen * 10 + last_scan_id FROM "
					       "process_instances WHERE pid = 50"),
			 10012 * 10 + 2);
	clear_many(base, EV_BASE);
	de_store_close(s);
	free(path);
}

/*
 * Between full scans the exec path commits a transaction per batch; each
 * appends its pages to the WAL.  The agent's de_store_checkpoint() keeps
 * the WAL small (without it the same churn grows it by megabytes).
 */
static void test_wal_kept_small(void **state)
{
	(void)state;
	char *pa = db_path("wal_plain.sqlite"), *pb = db_path("wal_kept.sqlite");
	struct de_store *a = open_at(pa, 3600), *b = open_at(pb, 3600);
	struct de_process_record base[EV_BASE];

	ev_base(base, 10000, 1);
	store_ok(a, base, EV_BASE);
	store_ok(b, base, EV_BASE);
	clear_many(base, EV_BASE);
	churn(a, 600, 1000, 0, false);
	churn(b, 600, 1000, 256 * 1024, false);
	printf("# WAL after 600 batches: %lld bytes unmaintained, %lld maintained\n", wal_size(pa),
	       wal_size(pb));
	assert_true(wal_size(pa) > 4 * 1024 * 1024);
	assert_true(wal_size(pb) < 1024 * 1024);
	de_store_close(a);
	de_store_close(b);
	free(pa);
	free(pb);
}

/*
 * A full disk during a burst of event batches: the failed commit gives
 * the WAL's space back (folded into the file and truncated), so the
 * batches commit again as soon as a little room is made, and the file is
 * sound.
 */
static void test_full_disk_gives_back(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		printf("# skipped: mounting a small tmpfs needs root\n");
		return;
	}
	char *dir = db_path("full"), *path = db_path("full/events.sqlite");
	char *filler = db_path("full/filler");
	struct de_process_record base[EV_BASE];
	struct de_error e = {0};
	char block[16384];
	FILE *f;

	assert_int_equal(mkdir(dir, 0700), 0);
	if (mount("tmpfs", dir, "tmpfs", 0, "size=4m") < 0) {
		printf("# skipped: cannot mount a tmpfs here\n");
		free(dir);
		free(path);
		free(filler);
		return;
	}
	struct de_store *s = open_at(path, 3600);
	ev_base(base, 10000, 1);
	store_ok(s, base, EV_BASE);
	clear_many(base, EV_BASE);
	/* leave about 1 MiB */
	memset(block, 'x', sizeof(block));
	assert_non_null(f = fopen(filler, "w"));
	for (int i = 0; i < 3 * 64 - 8; i++)
		if (fwrite(block, 1, sizeof(block), f) != sizeof(block))
			break;
	fclose(f);
	/* a burst without maintenance until the disk is full */
	bool full = false;
	for (int i = 0; i < 2000 && !full; i++) {
		struct de_process_record r;
		struct de_process_event ev[1];
		mk(&r, 5000 + (uint32_t)i, 60000 + i, 60000 + i, 0);
		ev[0] = exec_ev(5000 + (uint32_t)i, 60000 + i, &r);
		full = de_store_apply_events(s, 8, ev, 1, &e) == -ENOSPC;
		de_process_record_clear(&r);
	}
	assert_true(full);
	/* the failure gave the WAL back */
	assert_int_equal(wal_size(path), 0);
	/* a little room: the next batches commit */
	assert_int_equal(truncate(filler, 2 * 1024 * 1024), 0);
	churn(s, 20, 9000, 256 * 1024, false);
	de_store_close(s);
	sqlite3 *db;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_integrity(db);
	sqlite3_close(db);
	assert_int_equal(umount2(dir, MNT_DETACH), 0);
	free(dir);
	free(path);
	free(filler);
}

/*
 * A statement that fails halfway through a batch (here an exit whose
 * history row collides with one planted under its instance id, after an
 * exec and another exit of the same batch were written): the exit's
 * statements are INSERT OR FAIL, with no statement journal of their own,
 * so it is the batch's rollback that must undo everything, in the file and
 * in the index; the same batch then applies once the collision is gone.
 * Also the snapshot's state rows: made by a batch when missing, then
 * updated in place.
 */
static void test_failed_statement_rolls_back(void **state)
{
	(void)state;
	char *path = db_path("failing_exit.sqlite");
	struct de_store *s = open_at(path, 3600);
	sqlite3 *db = de_store_db(s);
	struct de_process_record base[EV_BASE], y;
	struct de_process_event ev[3];
	struct de_error e = {0};
	int64_t scan = 0, scans, inst3;
	char sql[256];

	ev_base(base, 10000, 1);
	store_ok(s, base, EV_BASE);
	scans = count(db, "SELECT count(*) FROM scans");
	inst3 = count(db, "SELECT instance_id FROM processes WHERE pid = 3");
	snprintf(sql, sizeof(sql),
		 "INSERT INTO process_instances(id, pid, name, command_line, argv_json,"
		 " accessible, file_exists, first_seen, last_seen) VALUES(%lld, 3, 'planted',"
		 " '', '[]', 1, 1, 1, 1)",
		 (long long)inst3);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	mk(&y, 80, 20000, 20000, 0);
	ev[0] = exec_ev(80, 20000, &y);
	ev[1] = exit_ev(2, 20001);
	ev[2] = exit_ev(3, 20002);
	assert_true(de_store_event_scan(s, 20003, ev, 3, &scan, &e) < 0);
	assert_int_equal(e.category, DE_ERR_DATABASE);
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), EV_BASE);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE pid IN (2, 3)"), 2);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 1);
	assert_int_equal(count(db, "SELECT count(*) FROM scans"), scans);
	assert_int_equal(count(db, "SELECT value FROM store_state WHERE key = 'snapshot_time'"),
			 10000);
	/* the collision gone, the same batch applies (the index was reloaded) */
	assert_int_equal(sqlite3_exec(db, "DELETE FROM process_instances", NULL, NULL, NULL),
			 SQLITE_OK);
	/* and without the snapshot's state rows, the batch makes them */
	assert_int_equal(sqlite3_exec(db, "DELETE FROM store_state", NULL, NULL, NULL), SQLITE_OK);
	if (de_store_event_scan(s, 20003, ev, 3, &scan, &e) < 0)
		fail_msg("batch: %s", e.message);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE pid IN (2, 3)"), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE pid = 80"), 1);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances WHERE pid IN (2, 3)"
				   " AND exited_at IN (20001, 20002)"),
			 2);
	assert_int_equal(count(db, "SELECT count(*) FROM store_state WHERE key IN"
				   " ('snapshot_time', 'snapshot_scan', 'sample_time')"),
			 3);
	assert_int_equal(count(db, "SELECT value FROM store_state WHERE key = 'snapshot_time'"),
			 20002);
	assert_int_equal(count(db, "SELECT value FROM store_state WHERE key = 'snapshot_scan'"),
			 scan);
	/* the next batch updates them in place */
	ev[0] = exit_ev(80, 21000);
	if (de_store_event_scan(s, 21001, ev, 1, &scan, &e) < 0)
		fail_msg("batch: %s", e.message);
	assert_int_equal(count(db, "SELECT count(*) FROM store_state"), 3);
	assert_int_equal(count(db, "SELECT value FROM store_state WHERE key = 'snapshot_time'"),
			 21000);
	assert_int_equal(count(db, "SELECT value FROM store_state WHERE key = 'snapshot_scan'"),
			 scan);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances WHERE pid = 80"), 1);
	assert_integrity(db);
	de_store_close(s);
	de_process_record_clear(&y);
	clear_many(base, EV_BASE);
	free(path);
}

/* A store whose writer shares its cache (as the agent's), holding batches. */
static struct de_store *open_shared(const char *path, int64_t hold_ms)
{
	struct de_store *s = open_with(path, 3600, true);
	de_store_hold_batches(s, hold_ms);
	return s;
}

/* Another process's view: a connection of its own (committed rows only). */
static sqlite3 *outside(const char *path)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	return db;
}

static void batch_ok(struct de_store *s, int64_t now, struct de_process_event *ev, size_t n)
{
	struct de_error e = {0};
	int64_t scan;
	if (de_store_event_scan(s, now, ev, n, &scan, &e) < 0)
		fail_msg("batch: %s", e.message);
}

static void test_held_batches(void **state)
{
	(void)state;
	char *path = db_path("held.sqlite");
	struct de_store *s = open_shared(path, 3600 * 1000);
	struct de_process_record base[EV_BASE], y[7];
	struct de_process_event ev[2];
	struct de_validator *v = de_validator_new();
	struct de_engine *eng = NULL;
	struct de_error e = {0};
	int64_t scan = 0;

	ev_base(base, 10000, 1);
	store_ok(s, base, EV_BASE);
	assert_int_equal(de_store_held_take(s), DE_STORE_HELD_NONE);
	assert_true(de_store_held_due(s) == INT64_MAX);
	assert_non_null(de_store_shared_vfs(s));
	assert_non_null(v);
	if (de_engine_open_shared(path, de_store_shared_vfs(s), v, &eng, &e) < 0)
		fail_msg("engine: %s", e.message);
	sqlite3 *rules = de_engine_db(eng), *other = outside(path);

	/* two batches held: the rules' connection reads them, nobody else */
	mk(&y[0], 80, 20000, 20000, 0);
	ev[0] = exec_ev(80, 20000, &y[0]);
	int64_t t0 = de_mono_ms();
	batch_ok(s, 20001, ev, 1);
	assert_int_equal(de_store_held_take(s), DE_STORE_HELD_OPEN);
	assert_true(de_store_held_due(s) >= t0 + 3600 * 1000);
	mk(&y[1], 81, 20010, 20010, 0);
	ev[0] = exec_ev(81, 20010, &y[1]);
	ev[1] = exit_ev(80, 20011);
	batch_ok(s, 20012, ev, 2);
	assert_int_equal(count(rules, "SELECT count(*) FROM processes WHERE pid = 81"), 1);
	assert_int_equal(count(rules, "SELECT count(*) FROM process_instances WHERE pid = 80"
				      " AND exited_at = 20011"),
			 1);
	assert_int_equal(count(other, "SELECT count(*) FROM processes WHERE pid IN (80, 81)"), 0);
	assert_int_equal(count(other, "SELECT count(*) FROM process_instances WHERE pid = 80"), 0);
	/* committed: everyone sees both */
	if (de_store_commit_held(s, &e) < 0)
		fail_msg("commit: %s", e.message);
	assert_int_equal(de_store_held_take(s), DE_STORE_HELD_NONE);
	assert_true(de_store_held_due(s) == INT64_MAX);
	assert_int_equal(count(other, "SELECT count(*) FROM processes WHERE pid = 81"), 1);
	assert_int_equal(count(other, "SELECT count(*) FROM process_instances WHERE pid = 80"
				      " AND exited_at = 20011"),
			 1);
	assert_int_equal(count(other, "SELECT count(*) FROM scans WHERE source = 'event'"), 2);

	/* a batch that fails takes the held one with it, and says so once */
	mk(&y[2], 82, 20020, 20020, 0);
	ev[0] = exec_ev(82, 20020, &y[2]);
	batch_ok(s, 20021, ev, 1);
	int64_t inst3 = count(de_store_db(s), "SELECT instance_id FROM processes WHERE pid = 3");
	char sql[256];
	snprintf(sql, sizeof(sql),
		 "INSERT INTO process_instances(id, pid, name, command_line, argv_json,"
		 " accessible, file_exists, first_seen, last_seen) VALUES(%lld, 3, 'planted',"
		 " '', '[]', 1, 1, 1, 1)",
		 (long long)inst3);
	/* committed on its own, then the pid-3 collision planted (as above) */
	assert_int_equal(de_store_commit_held(s, &e), 0);
	assert_int_equal(de_store_held_take(s), DE_STORE_HELD_NONE);
	assert_int_equal(count(other, "SELECT count(*) FROM processes WHERE pid = 82"), 1);
	assert_int_equal(sqlite3_exec(de_store_db(s), sql, NULL, NULL, NULL), SQLITE_OK);
	mk(&y[3], 83, 20030, 20030, 0);
	ev[0] = exec_ev(83, 20030, &y[3]);
	batch_ok(s, 20031, ev, 1); /* held */
	assert_int_equal(de_store_held_take(s), DE_STORE_HELD_OPEN);
	ev[0] = exit_ev(3, 20040); /* its instance id is taken: the batch fails */
	assert_true(de_store_event_scan(s, 20041, ev, 1, &scan, &e) < 0);
	assert_int_equal(de_store_held_take(s), DE_STORE_HELD_LOST);
	assert_int_equal(de_store_held_take(s), DE_STORE_HELD_NONE);
	assert_int_equal(count(rules, "SELECT count(*) FROM processes WHERE pid = 83"), 0);
	assert_int_equal(count(de_store_db(s), "SELECT count(*) FROM processes WHERE pid = 83"), 0);
	/* applied again (the index reloaded from the file), with the bad one mended */
	assert_int_equal(sqlite3_exec(de_store_db(s),
				      "DELETE FROM process_instances WHERE name ="
				      " 'planted'",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	ev[0] = exec_ev(83, 20030, &y[3]);
	ev[1] = exit_ev(3, 20040);
	batch_ok(s, 20042, ev, 2);
	assert_int_equal(count(rules, "SELECT count(*) FROM processes WHERE pid IN (3, 83)"), 1);

	/* any other write commits what is held first: a full scan ... */
	assert_int_equal(de_store_held_take(s), DE_STORE_HELD_OPEN);
	assert_int_equal(count(other, "SELECT count(*) FROM processes WHERE pid = 83"), 0);
	if (de_store_checkpoint(s, 0, &e) < 0)
		fail_msg("checkpoint: %s", e.message);
	assert_int_equal(de_store_held_take(s), DE_STORE_HELD_NONE);
	assert_int_equal(count(other, "SELECT count(*) FROM processes WHERE pid = 83"), 1);
	assert_int_equal(count(other, "SELECT count(*) FROM process_instances WHERE pid = 3"
				      " AND exited_at = 20040"),
			 1);
	/* the spool's additions and removals join the held batches, committed
	   with them */
	struct de_spool_msg m = {
		.kind = "events", .msg_id = "ev-84", .payload = "{}", .created_at = 20045};
	mk(&y[6], 84, 20045, 20045, 0);
	ev[0] = exec_ev(84, 20045, &y[6]);
	batch_ok(s, 20046, ev, 1);
	assert_int_equal(de_store_spool_add(s, &m, 1, 100, NULL, &e), 0);
	assert_int_equal(de_store_held_take(s), DE_STORE_HELD_OPEN);
	assert_int_equal(count(de_store_db(s), "SELECT count(*) FROM fleet_spool"), 1);
	assert_int_equal(count(other, "SELECT count(*) FROM fleet_spool"), 0);
	assert_int_equal(count(other, "SELECT count(*) FROM processes WHERE pid = 84"), 0);
	int64_t spooled = count(de_store_db(s), "SELECT max(id) FROM fleet_spool");
	assert_int_equal(de_store_spool_remove(s, spooled, &e), 0);
	assert_int_equal(de_store_held_take(s), DE_STORE_HELD_OPEN);
	assert_int_equal(count(de_store_db(s), "SELECT count(*) FROM fleet_spool"), 0);
	assert_int_equal(de_store_commit_held(s, &e), 0);
	assert_int_equal(count(other, "SELECT count(*) FROM processes WHERE pid = 84"), 1);
	assert_int_equal(count(other, "SELECT count(*) FROM fleet_spool"), 0);
	/* ... and closing */
	ev[0] = exit_ev(83, 20050);
	batch_ok(s, 20051, ev, 1);
	assert_int_equal(de_store_held_take(s), DE_STORE_HELD_OPEN);
	de_engine_close(eng);
	de_store_close(s);
	assert_int_equal(count(other, "SELECT count(*) FROM process_instances WHERE pid = 83"
				      " AND exited_at = 20050"),
			 1);
	assert_integrity(other);

	/* the batch that comes hold_ms after the first commits them all */
	s = open_shared(path, 20);
	mk(&y[4], 90, 30000, 30000, 0);
	ev[0] = exec_ev(90, 30000, &y[4]);
	batch_ok(s, 30001, ev, 1);
	assert_int_equal(de_store_held_take(s), DE_STORE_HELD_OPEN);
	usleep(30 * 1000);
	ev[0] = exit_ev(90, 30010);
	batch_ok(s, 30011, ev, 1);
	assert_int_equal(de_store_held_take(s), DE_STORE_HELD_NONE);
	assert_int_equal(count(other, "SELECT count(*) FROM process_instances WHERE pid = 90"
				      " AND exited_at = 30010"),
			 1);
	/* without a hold every batch commits (the default) */
	de_store_hold_batches(s, 0);
	mk(&y[5], 91, 30020, 30020, 0);
	ev[0] = exec_ev(91, 30020, &y[5]);
	batch_ok(s, 30021, ev, 1);
	assert_int_equal(de_store_held_take(s), DE_STORE_HELD_NONE);
	assert_int_equal(count(other, "SELECT count(*) FROM processes WHERE pid = 91"), 1);
	de_store_close(s);
	sqlite3_close(other);
	de_validator_free(v);
	for (int i = 0; i < 7; i++)
		de_process_record_clear(&y[i]);
	clear_many(base, EV_BASE);
	free(path);
}

/*
 * The writer's side of store_fold_wal's passes: a transaction the writer
 * holds open while a pass runs, committed after it (between), and another
 * opened while left > 0 — a commit during each pass, as at 1,000 execs/s.
 */
struct writer {
	sqlite3 *db; /* the store's connection */
	bool open;
	int left;
};

static void writer_step(struct writer *w)
{
	assert_int_equal(sqlite3_exec(w->db,
				      "INSERT INTO scans(started_at, source) VALUES(1, 'event')",
				      NULL, NULL, NULL),
			 SQLITE_OK);
}

static void commit_one(void *arg)
{
	struct writer *w = arg;

	if (w->open) {
		writer_step(w);
		assert_int_equal(sqlite3_exec(w->db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
		w->open = false;
	}
	if (w->left > 0) {
		w->left--;
		assert_int_equal(sqlite3_exec(w->db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
				 SQLITE_OK);
		writer_step(w);
		w->open = true;
	}
}

/* The WAL's checkpoint sequence number (its header's bytes 12-15), which
   the writer bumps each time it starts the WAL over. */
static uint32_t wal_seq(const char *path)
{
	char wal[4200];
	unsigned char h[16];
	FILE *f;

	snprintf(wal, sizeof(wal), "%s-wal", path);
	assert_non_null(f = fopen(wal, "rb"));
	assert_int_equal(fread(h, 1, 16, f), 16);
	fclose(f);
	return (uint32_t)h[12] << 24 | (uint32_t)h[13] << 16 | (uint32_t)h[14] << 8 | h[15];
}

/*
 * The background checkpointer's passes (store_fold_wal): the writer
 * commits while a pass runs, so one pass leaves frames uncopied, and the
 * writer, which starts the WAL over only at a transaction that finds every
 * frame copied, never did (the WAL grew to the writer's backstop at 1,000
 * execs/s).  The passes go on until one copies nothing new; the writer's
 * next commit then starts the WAL over.  Not while a reader still needs
 * the frames: the passes stop when they gain nothing.
 */
static void test_checkpointer_catches_up(void **state)
{
	(void)state;
	char *path = db_path("fold.sqlite");
	struct de_store *s = open_at(path, 3600);
	struct de_process_record base[EV_BASE];
	struct writer w = {.db = de_store_db(s)};
	sqlite3 *c, *r;
	sqlite3_stmt *st;
	uint32_t seq;

	ev_base(base, 10000, 1);
	store_ok(s, base, EV_BASE);
	clear_many(base, EV_BASE);
	assert_int_equal(sqlite3_open_v2(path, &c, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(c, "PRAGMA schema_version", NULL, NULL, NULL), SQLITE_OK);
	w.left = 2;
	commit_one(&w); /* a transaction open during the first pass */
	/* copies, (commit), copies, (commit), copies, nothing new */
	assert_int_equal(store_fold_wal(c, STORE_CKPT_PASSES, commit_one, &w), 4);
	assert_false(w.open);
	seq = wal_seq(path);
	w.left = 1;
	commit_one(&w);
	commit_one(&w);
	assert_int_equal(wal_seq(path), seq + 1); /* started over */

	/* a reader that still needs frames: the passes stop, the WAL stays */
	assert_int_equal(sqlite3_open_v2(path, &r, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(r, "SELECT id FROM scans", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW); /* a read transaction, held */
	w.left = 3;
	commit_one(&w);
	assert_int_equal(store_fold_wal(c, STORE_CKPT_PASSES, commit_one, &w), 2);
	while (w.open || w.left)
		commit_one(&w);
	seq = wal_seq(path);
	w.left = 1;
	commit_one(&w);
	commit_one(&w);
	assert_int_equal(wal_seq(path), seq); /* not while the reader reads */
	sqlite3_finalize(st);
	sqlite3_close(r);
	assert_int_equal(count(w.db, "SELECT count(*) FROM scans WHERE started_at = 1"),
			 2 * 7); /* seven transactions of two rows */
	assert_integrity(w.db);
	sqlite3_close(c);
	de_store_close(s);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_wal_kept_small),
		cmocka_unit_test(test_full_disk_gives_back),
		cmocka_unit_test(test_failed_statement_rolls_back),
		cmocka_unit_test(test_held_batches),
		cmocka_unit_test(test_checkpointer_catches_up),
		cmocka_unit_test(test_state_every_lag),
		cmocka_unit_test(test_state_after_crash),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
