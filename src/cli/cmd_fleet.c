/*
 * cmd_fleet.c — `daemoneye-cli fleet id|init|status|show|alerts|verify`: the
 * fleet on NATS JetStream (fleet.h, docs/fleet.md) from the operator's
 * side.  `id` prints this host's id, `init` makes sure the stream exists,
 * `status` says what waits in this host's spool and what the stream holds,
 * `show KIND` and `alerts` print a host's (or every host's) messages from
 * the stream, `hosts` every host's latest scan summary, `verify HOST` checks an audit ledger
 * against the checkpoints HOST published, `query` sends a signed SQL query to hosts and merges
 * their answers.
 *
 * Exit status: 0 done / the ledger agrees with every published checkpoint;
 * 65 when it contradicts one; 66 when there is no checkpoint to check
 * against or no ledger; 69 when the cluster cannot be reached or a host
 * asked did not answer a query in time; 65 when a host refused the query's
 * SQL; 78 for
 * configuration errors; 64 for usage errors.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>

#include "cli.h"
#include "daemoneye/alert.h"
#include "daemoneye/audit.h"
#include "daemoneye/clock.h"
#include "daemoneye/fileio.h"
#include "daemoneye/fleet.h"
#include "daemoneye/rules.h"
#include "daemoneye/uuid.h"

#define VERIFY_MAX_NOTES 100000 /* published checkpoints read for one verify */

static void fleet_usage(FILE *f)
{
	fprintf(f, "usage: daemoneye-cli fleet id\n"
		   "       daemoneye-cli fleet init\n"
		   "       daemoneye-cli fleet status [--format text|json]\n"
		   "       daemoneye-cli fleet show alerts|events|scans|checkpoints [--host H] "
		   "[--limit N]\n"
		   "       daemoneye-cli fleet alerts [--host H] [--limit N] [--since T] "
		   "[--severity S]\n"
		   "                                  [--follow] [--durable NAME]\n"
		   "       daemoneye-cli fleet hosts [--format text|json]\n"
		   "       daemoneye-cli fleet verify HOST [--ledger FILE] [--pubkey FILE]\n"
		   "       daemoneye-cli fleet query --key FILE (--hosts H,... | --all) [--timeout "
		   "MS]\n"
		   "                                 [--format json|ndjson] SQL\n"
		   "       daemoneye-cli fleet rules push --key FILE [--version N] [--out FILE] "
		   "DIR|FILE...\n");
}

/* The fleet settings (host id derived when unset). */
static int load(struct cli_ctx *ctx, struct de_fleet_settings *s)
{
	struct de_error err = {0};

	if (de_fleet_settings_load(ctx->cfg, NULL, true, s, &err) < 0)
		return cli_fail(&err);
	return 0;
}

/* Connect, waiting for the cluster. */
static int connect_wait(const struct de_fleet_settings *s, struct de_fleet **f)
{
	struct de_error err = {0};

	if (!s->nservers) {
		cli_errorf("fleet.servers lists no server (set it in the configuration, or "
			   "--set 'fleet.servers=[\"nats://HOST:4222\"]')");
		return EX_CONFIG;
	}
	if (de_fleet_connect(s, true, f, &err) < 0)
		return cli_fail(&err);
	return 0;
}

/* What with_fleet runs over a connection. */
typedef int (*fleet_fn)(struct de_fleet *f, const struct de_fleet_settings *s, void *arg);

/*
 * Load this host's fleet settings, connect (waiting for the cluster), run
 * fn, close, and flush stdout: fn's exit status (a sysexits code, 0 when
 * done), the load's or the connection's when they fail, EX_IOERR when
 * stdout cannot be written.
 */
static int with_fleet(struct cli_ctx *ctx, fleet_fn fn, void *arg)
{
	struct de_fleet_settings s;
	struct de_fleet *f = NULL;
	int rc;

	if ((rc = load(ctx, &s)) != 0)
		return rc;
	if ((rc = connect_wait(&s, &f)) == 0)
		rc = fn(f, &s, arg);
	de_fleet_close(f);
	de_fleet_settings_clear(&s);
	if (rc == 0 && fflush(stdout) != 0)
		rc = EX_IOERR;
	return rc;
}

/* Options of a subcommand without any but --help. */
static int no_options(int argc, char **argv, const char *what)
{
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fleet_usage(stdout);
		return -1;
	}
	if (argc > 1) {
		cli_errorf("fleet %s: unexpected argument '%s'", what, argv[1]);
		return EX_USAGE;
	}
	return 0;
}

static int fleet_id(struct cli_ctx *ctx, int argc, char **argv)
{
	struct de_fleet_settings s;
	int rc;

	if ((rc = no_options(argc, argv, "id")) != 0)
		return rc < 0 ? 0 : rc;
	if ((rc = load(ctx, &s)) != 0)
		return rc;
	printf("%s\n", s.host_id);
	de_fleet_settings_clear(&s);
	return fflush(stdout) == 0 ? 0 : EX_IOERR;
}

static int init_run(struct de_fleet *f, const struct de_fleet_settings *s, void *arg)
{
	struct de_fleet_stream_info info;
	struct de_error err = {0};

	(void)arg;
	if (de_fleet_stream_ensure(f, true, &info, &err) < 0)
		return cli_fail(&err);
	printf("stream %s %s: %" PRIu64 " messages, %" PRId64 " replicas, max age %" PRId64
	       " s, duplicate window %" PRId64
	       " s\nsubjects %s.*.alerts|events|scans|checkpoints\n",
	       info.name, info.created ? "created" : "exists", info.messages, info.replicas,
	       info.max_age_s, info.duplicate_window_s, s->subject_prefix);
	return 0;
}

static int fleet_init(struct cli_ctx *ctx, int argc, char **argv)
{
	int rc;

	if ((rc = no_options(argc, argv, "init")) != 0)
		return rc < 0 ? 0 : rc;
	return with_fleet(ctx, init_run, NULL);
}

static int fleet_status(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"format", required_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct de_fleet_settings s;
	struct de_fleet_stream_info info = {0};
	struct de_spool_stats sp = {0};
	struct de_store *store = NULL;
	struct de_fleet *f = NULL;
	struct de_error err = {0}, serr = {0};
	bool json = false, have_spool = false, have_stream = false;
	int c, rc;

	while ((c = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			json = strcmp(optarg, "json") == 0;
			if (!json && strcmp(optarg, "text") != 0) {
				cli_errorf("fleet status: unknown format '%s' (text or json)",
					   optarg);
				return EX_USAGE;
			}
			break;
		case 'h':
			fleet_usage(stdout);
			return 0;
		default:
			return EX_USAGE;
		}
	}
	if (cli_no_operands("fleet status", argc, argv) != 0)
		return EX_USAGE;
	if ((rc = load(ctx, &s)) != 0)
		return rc;
	/* this host's spool, when the agent made a store */
	if (cli_open_store(ctx, &store) == 0) {
		have_spool = de_store_spool_stats(store, &sp, &serr) == 0;
		de_store_close(store);
	}
	if (s.nservers && de_fleet_connect(&s, true, &f, &err) == 0)
		have_stream = de_fleet_stream_ensure(f, false, &info, &err) == 0;
	if (json) {
		json_t *o = json_pack("{s:b,s:s,s:b,s:s,s:s}", "enabled", s.enabled, "host_id",
				      s.host_id, "host_id_derived", s.host_id_derived,
				      "subject_prefix", s.subject_prefix, "stream", s.stream);
		if (o && have_spool)
			json_object_set_new(o, "spool",
					    json_pack("{s:I,s:I,s:I}", "rows", (json_int_t)sp.rows,
						      "dropped", (json_int_t)sp.dropped,
						      "oldest_ms", (json_int_t)sp.oldest_ms));
		if (o)
			json_object_set_new(o, "connected", json_boolean(f != NULL));
		if (o && have_stream)
			json_object_set_new(o, "stream_messages",
					    json_integer((json_int_t)info.messages));
		if (o && err.message[0])
			json_object_set_new(o, "error", json_string(err.message));
		if (!o)
			rc = EX_OSERR;
		else
			json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(o);
	} else {
		printf("fleet        %s\n"
		       "host id      %s (%s)\n"
		       "subjects     %s.%s.alerts|events|scans|checkpoints\n",
		       s.enabled ? "enabled" : "disabled", s.host_id,
		       s.host_id_derived ? "derived from " DE_FLEET_MACHINE_ID : "fleet.host_id",
		       s.subject_prefix, s.host_id);
		if (have_spool)
			printf("spool        %" PRIu64 " waiting, %" PRIu64 " dropped\n", sp.rows,
			       sp.dropped);
		else
			printf("spool        - (no event store)\n");
		if (have_stream)
			printf("stream       %s: %" PRIu64 " messages\n", info.name, info.messages);
		else
			printf("stream       %s: %s\n", s.stream,
			       err.message[0] ? err.message : "no server configured");
	}
	de_fleet_close(f);
	de_fleet_settings_clear(&s);
	if (rc == 0 && fflush(stdout) != 0)
		rc = EX_IOERR;
	return rc;
}

/* ---- show / alerts ----------------------------------------------------------- */

/* How `fleet show` and `fleet alerts` read and print. */
struct show {
	const char *prefix;
	enum de_fleet_kind kind;
	const char *host;
	uint64_t limit;
	int min_severity; /* -1: any; else an alert of at least this (enum de_severity) */
	struct de_fleet_read_opts ro;
};

/* Whether the alert data is at least severity min. */
static bool severe_enough(const json_t *data, int min)
{
	const char *sv = json_string_value(json_object_get(data, "severity"));
	enum de_severity sev;

	return sv && de_severity_parse(sv, &sev, NULL) == 0 && (int)sev >= min;
}

static int print_msg(const struct de_fleet_msg *m, void *arg)
{
	json_t *o, *data = json_loadb(m->data, m->len, JSON_DECODE_ANY, NULL);
	char host[DE_FLEET_TOKEN_MAX + 1] = "";
	enum de_fleet_kind k;
	const struct show *sh = arg;
	const char *prefix = sh->prefix;

	if (sh->min_severity >= 0 && !severe_enough(data, sh->min_severity)) {
		json_decref(data);
		return 0;
	}
	if (!data)
		data = json_stringn(m->data, m->len);
	if (de_fleet_subject_parse(m->subject, prefix, host, &k) < 0)
		host[0] = '\0';
	o = json_pack("{s:I,s:s,s:s,s:s?,s:I,s:o?}", "seq", (json_int_t)m->seq, "host", host,
		      "subject", m->subject, "msg_id", m->msg_id, "time_ns", (json_int_t)m->time_ns,
		      "data", data);
	if (!o)
		return -ENOMEM;
	json_dumpf(o, stdout, JSON_COMPACT);
	putchar('\n');
	json_decref(o);
	/* a follower shows each as it comes */
	return sh->ro.follow && fflush(stdout) != 0 ? -EIO : 0;
}

static volatile sig_atomic_t show_stop;

static void on_interrupt(int sig)
{
	(void)sig;
	show_stop = 1;
}

static int show_run(struct de_fleet *f, const struct de_fleet_settings *s, void *arg)
{
	struct show *sh = arg;
	struct de_error err = {0};
	size_t skipped = 0;
	int rc;

	sh->prefix = s->subject_prefix;
	if ((rc = de_fleet_read_ex(f, sh->host, sh->kind, sh->limit, &sh->ro, print_msg, sh,
				   &skipped, &err)) < 0)
		return rc == -EIO ? EX_IOERR : cli_fail(&err);
	if (skipped)
		cli_errorf("%zu messages larger than %d bytes skipped", skipped, DE_FLEET_MSG_MAX);
	return 0;
}

static int fleet_show(struct cli_ctx *ctx, int argc, char **argv, const char *kind_word)
{
	static const struct option opts[] = {
		{"host", required_argument, NULL, 'H'},	 {"limit", required_argument, NULL, 'n'},
		{"since", required_argument, NULL, 's'}, {"severity", required_argument, NULL, 'S'},
		{"follow", no_argument, NULL, 'F'},	 {"durable", required_argument, NULL, 'D'},
		{"help", no_argument, NULL, 'h'},	 {NULL, 0, NULL, 0},
	};
	struct show sh = {.min_severity = -1};
	struct sigaction sa = {0};
	enum de_severity sev;
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "H:n:s:S:FD:h", opts, NULL)) != -1) {
		switch (c) {
		case 'H':
			sh.host = optarg;
			break;
		case 'n':
			errno = 0;
			sh.limit = strtoull(optarg, &end, 10);
			if (errno || *end || !*optarg) {
				cli_errorf("fleet: --limit wants a number, not '%s'", optarg);
				return EX_USAGE;
			}
			break;
		case 's':
			if (de_time_parse(optarg, de_now_ms(), &sh.ro.since_ms) < 0) {
				cli_errorf(
					"fleet: --since wants a time (RFC 3339, a date, or -90m, "
					"2d...), not '%s'",
					optarg);
				return EX_USAGE;
			}
			break;
		case 'S':
			if (de_severity_parse(optarg, &sev, NULL) < 0) {
				cli_errorf("fleet: --severity wants low, medium, high or critical, "
					   "not '%s'",
					   optarg);
				return EX_USAGE;
			}
			sh.min_severity = (int)sev;
			break;
		case 'F':
			sh.ro.follow = true;
			break;
		case 'D':
			sh.ro.durable = optarg;
			if (!de_fleet_token_valid(optarg)) {
				cli_errorf(
					"fleet: --durable wants a name of 1-64 of A-Z a-z 0-9 _ -");
				return EX_USAGE;
			}
			break;
		case 'h':
			fleet_usage(stdout);
			return 0;
		default:
			return EX_USAGE;
		}
	}
	if (!kind_word) {
		if (optind >= argc) {
			cli_errorf("fleet show: which messages? alerts, events, scans or "
				   "checkpoints");
			return EX_USAGE;
		}
		kind_word = argv[optind++];
	}
	if (cli_no_operands("fleet", argc, argv) != 0)
		return EX_USAGE;
	if (de_fleet_kind_parse(kind_word, &sh.kind) < 0) {
		cli_errorf("fleet show: '%s' is not alerts, events, scans or checkpoints",
			   kind_word);
		return EX_USAGE;
	}
	if (sh.host && !de_fleet_token_valid(sh.host)) {
		cli_errorf("fleet: '%s' is not a host id", sh.host);
		return EX_USAGE;
	}
	if (sh.ro.follow) {
		/* SIGINT and SIGTERM end the stream, cleanly (exit 0) */
		sa.sa_handler = on_interrupt;
		sigemptyset(&sa.sa_mask);
		(void)sigaction(SIGINT, &sa, NULL);
		(void)sigaction(SIGTERM, &sa, NULL);
		sh.ro.stop = &show_stop;
	}
	return with_fleet(ctx, show_run, &sh);
}

/* ---- hosts ------------------------------------------------------------------- */

/* One host's latest scan summary as a line (or a JSON object). */
static int print_host(const struct de_fleet_msg *m, void *arg)
{
	const bool *json = arg;
	json_t *d = json_loadb(m->data, m->len, 0, NULL);
	const char *host = json_string_value(json_object_get(d, "host"));
	time_t t = (time_t)(m->time_ns / 1000000000);
	struct tm tmv;
	char when[40] = "-";

	if (!host || !de_fleet_token_valid(host)) {
		json_decref(d);
		return 0; /* not a summary of ours */
	}
	if (gmtime_r(&t, &tmv))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tmv);
	const char *ver = json_string_value(json_object_get(d, "version"));
	const char *health = json_string_value(json_object_get(d, "health"));
	const char *hsum = json_string_value(json_object_get(d, "health_summary"));
	if (*json) {
		json_t *o = json_pack("{s:s,s:s,s:s?,s:s?,s:s?,s:O}", "host", host, "last_seen",
				      when, "version", ver, "health", health, "health_summary",
				      hsum, "scan", d);
		if (o) {
			json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
			putchar('\n');
		}
		json_decref(o);
	} else {
		printf("%-34s %-20s %9" JSON_INTEGER_FORMAT " %7" JSON_INTEGER_FORMAT
		       " %9" JSON_INTEGER_FORMAT " %9" JSON_INTEGER_FORMAT " %-9s %s%s%s\n",
		       host, when, json_integer_value(json_object_get(d, "processes")),
		       json_integer_value(json_object_get(d, "alerts")),
		       json_integer_value(json_object_get(d, "spool_rows")),
		       json_integer_value(json_object_get(d, "spool_dropped")), ver ? ver : "-",
		       health ? health : "-", hsum && *hsum ? " — " : "",
		       hsum && *hsum ? hsum : "");
	}
	json_decref(d);
	return 0;
}

static int hosts_run(struct de_fleet *f, const struct de_fleet_settings *s, void *arg)
{
	struct de_error err = {0};

	(void)s;
	if (!*(bool *)arg)
		printf("%-34s %-20s %9s %7s %9s %9s %-9s %s\n", "HOST", "LAST SCAN (UTC)",
		       "PROCESSES", "ALERTS", "SPOOLED", "DROPPED", "VERSION", "HEALTH");
	if (de_fleet_read_latest(f, DE_FLEET_SCANS, print_host, arg, &err) < 0)
		return cli_fail(&err);
	return 0;
}

static int fleet_hosts(struct cli_ctx *ctx, int argc, char **argv)
{
	bool json = false;
	int rc;

	if (argc == 3 && strcmp(argv[1], "--format") == 0 &&
	    (strcmp(argv[2], "json") == 0 || strcmp(argv[2], "text") == 0)) {
		json = strcmp(argv[2], "json") == 0;
	} else if ((rc = no_options(argc, argv, "hosts")) != 0) {
		return rc < 0 ? 0 : rc;
	}
	return with_fleet(ctx, hosts_run, &json);
}

/* ---- verify ------------------------------------------------------------------ */

struct notes {
	char **text;
	size_t *len;
	size_t n, cap;
};

static int keep_note(const struct de_fleet_msg *m, void *arg)
{
	struct notes *ns = arg;

	if (m->len > DE_CHECKPOINT_TEXT_MAX)
		return 0; /* not a note: counted as malformed by nobody, skipped */
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 64;
		char **t = realloc(ns->text, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		ns->text = t;
		size_t *l = realloc(ns->len, cap * sizeof(*l));
		if (!l)
			return -ENOMEM;
		ns->len = l;
		ns->cap = cap;
	}
	if (!(ns->text[ns->n] = strndup(m->data, m->len)))
		return -ENOMEM;
	ns->len[ns->n++] = m->len;
	return 0;
}

static int fleet_verify(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"ledger", required_argument, NULL, 'l'},
		{"pubkey", required_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct de_fleet_settings s;
	struct de_audit_settings as = {0};
	struct de_audit_config ac;
	struct de_fleet_verify_report rep;
	struct de_fleet *f = NULL;
	struct de_audit *a = NULL;
	struct de_ckpt_key *key = NULL;
	struct de_error err = {0};
	struct notes ns = {0};
	const char *ledger = NULL, *key_path = NULL, *host;
	int c, rc;

	while ((c = getopt_long(argc, argv, "l:k:h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			ledger = optarg;
			break;
		case 'k':
			key_path = optarg;
			break;
		case 'h':
			fleet_usage(stdout);
			return 0;
		default:
			return EX_USAGE;
		}
	}
	if (optind != argc - 1) {
		cli_errorf("fleet verify: give one HOST (its id, see `daemoneye-cli fleet id`)");
		return EX_USAGE;
	}
	host = argv[optind];
	if (!de_fleet_token_valid(host)) {
		cli_errorf("fleet verify: '%s' is not a host id", host);
		return EX_USAGE;
	}
	if ((rc = load(ctx, &s)) != 0)
		return rc;
	if (de_audit_settings_load(ctx->cfg, &as, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if (!key_path)
		key_path = as.public_key_path;
	if (key_path && de_checkpoint_key_load_public(key_path, &key, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	de_audit_settings_config(&as, true, &ac);
	if (ledger)
		ac.path = ledger;
	if (de_audit_open(&ac, &a, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if ((rc = connect_wait(&s, &f)) != 0)
		goto out;
	if (de_fleet_read(f, host, DE_FLEET_CHECKPOINTS, VERIFY_MAX_NOTES, keep_note, &ns, NULL,
			  &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if (ns.n == 0) {
		cli_errorf("fleet verify: the stream holds no checkpoint of host %s", host);
		rc = EX_NOINPUT;
		goto out;
	}
	if (de_fleet_verify_ledger(a, (const char *const *)ns.text, ns.len, ns.n, key, &rep, &err) <
	    0) {
		rc = cli_fail(&err);
		goto out;
	}
	if (rep.problem == DE_AUDIT_INTACT && rep.matched > 0) {
		printf("ledger %s agrees with %" PRIu64 " of %" PRIu64
		       " checkpoints host %s published (%" PRIu64 " entries%s)\n",
		       ac.path, rep.matched, rep.checkpoints, host, rep.ledger.entries,
		       key ? ", signatures checked" : "");
		if (rep.malformed)
			printf("%" PRIu64 " published checkpoints were malformed or signed by "
			       "another key\n",
			       rep.malformed);
		rc = 0;
	} else if (rep.problem == DE_AUDIT_INTACT) {
		cli_errorf("fleet verify: none of the %" PRIu64
			   " published checkpoints of %s is well formed%s",
			   rep.checkpoints, host, key ? " and signed by that key" : "");
		rc = EX_DATAERR;
	} else {
		printf("ledger %s CONTRADICTS host %s's published checkpoints: %s (tree size "
		       "%" PRIu64 "): %s\n",
		       ac.path, host, de_audit_problem_name(rep.problem), rep.bad_size, rep.detail);
		rc = EX_DATAERR;
	}
	if (fflush(stdout) != 0)
		rc = EX_IOERR;
out:
	for (size_t i = 0; i < ns.n; i++)
		free(ns.text[i]);
	free(ns.text);
	free(ns.len);
	de_fleet_close(f);
	de_audit_close(a, &err);
	de_checkpoint_key_free(key);
	de_audit_settings_clear(&as);
	de_fleet_settings_clear(&s);
	return rc;
}

/* ---- query ------------------------------------------------------------------- */

struct answers {
	char **hosts; /* asked (NULL with --all) */
	size_t nhosts;
	bool *answered;
	size_t got;	/* answers received */
	size_t refused; /* hosts whose sandbox refused or failed the SQL */
	json_t *rows;	/* merged rows, each with "host" first */
	bool ndjson;
	const char *id;
};

/* Take one answer: its rows, with the host. */
static void take_answer(struct answers *a, const char *text, size_t len)
{
	json_t *o = json_loadb(text, len, 0, NULL), *row;
	const char *host = json_string_value(json_object_get(o, "host"));
	const char *id = json_string_value(json_object_get(o, "id"));
	size_t i, k;
	bool known = a->hosts == NULL;

	if (!host || !id || strcmp(id, a->id) != 0 || !de_fleet_token_valid(host)) {
		cli_errorf("fleet query: an answer that is not to this query ignored");
		json_decref(o);
		return;
	}
	for (k = 0; k < a->nhosts; k++)
		if (strcmp(a->hosts[k], host) == 0) {
			known = !a->answered[k];
			a->answered[k] = true;
			break;
		}
	if (!known) {
		cli_errorf("fleet query: an answer from %s, which was not asked or answered "
			   "already, ignored",
			   host);
		json_decref(o);
		return;
	}
	a->got++;
	if (!json_is_true(json_object_get(o, "ok"))) {
		const char *e = json_string_value(json_object_get(o, "error"));
		cli_errorf("fleet query: host %s: %s", host, e ? e : "failed");
		a->refused++;
		json_decref(o);
		return;
	}
	if (json_is_true(json_object_get(o, "truncated")))
		cli_errorf("fleet query: host %s: its rows were cut at the answer's size limit",
			   host);
	json_array_foreach (json_object_get(o, "rows"), i, row) {
		json_t *r = json_pack("{s:s}", "host", host);
		if (!r || !json_is_object(row))
			continue;
		json_object_update(r, row);
		if (a->ndjson) {
			json_dumpf(r, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
			putchar('\n');
			json_decref(r);
		} else {
			json_array_append_new(a->rows, r);
		}
	}
	json_decref(o);
}

static int fleet_query(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},
		{"hosts", required_argument, NULL, 'H'},
		{"all", no_argument, NULL, 'a'},
		{"timeout", required_argument, NULL, 't'},
		{"format", required_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct de_fleet_settings s;
	struct de_fleet_query q = {0};
	struct answers a = {0};
	struct de_fleet *f = NULL;
	struct de_fleet_sub *sub = NULL;
	struct de_ckpt_key *key = NULL;
	struct de_error err = {0};
	struct de_uuid u;
	char subject[DE_FLEET_SUBJECT_MAX], *hosts_arg = NULL, *msg = NULL, *end;
	const char *key_path = NULL;
	uint64_t timeout = 5000;
	bool all = false;
	size_t len = 0;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, "k:H:at:f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			key_path = optarg;
			break;
		case 'H':
			hosts_arg = optarg;
			break;
		case 'a':
			all = true;
			break;
		case 't':
			errno = 0;
			timeout = strtoull(optarg, &end, 10);
			if (errno || *end || timeout < 100 || timeout > 300000) {
				cli_errorf("fleet query: --timeout wants 100 to 300000 ms");
				return EX_USAGE;
			}
			break;
		case 'f':
			a.ndjson = strcmp(optarg, "ndjson") == 0;
			if (!a.ndjson && strcmp(optarg, "json") != 0) {
				cli_errorf("fleet query: unknown format '%s' (json or ndjson)",
					   optarg);
				return EX_USAGE;
			}
			break;
		case 'h':
			fleet_usage(stdout);
			return 0;
		default:
			return EX_USAGE;
		}
	}
	if (optind != argc - 1 || !key_path || all == (hosts_arg != NULL)) {
		cli_errorf(
			"fleet query: give --key FILE, --hosts H,... or --all, and the SQL as one "
			"argument");
		return EX_USAGE;
	}
	/* the hosts asked */
	for (char *h = hosts_arg ? strtok(hosts_arg, ",") : NULL; h; h = strtok(NULL, ",")) {
		char **nh = realloc(q.hosts, (q.nhosts + 1) * sizeof(char *));
		if (!nh || !de_fleet_token_valid(h) || q.nhosts >= DE_FLEET_QUERY_HOSTS_MAX) {
			if (nh)
				q.hosts = nh;
			cli_errorf("fleet query: '%s' is not a host id (or too many hosts)", h);
			rc = EX_USAGE;
			goto out;
		}
		q.hosts = nh;
		if (!(q.hosts[q.nhosts] = strdup(h))) {
			rc = EX_OSERR;
			goto out;
		}
		q.nhosts++;
	}
	if ((rc = load(ctx, &s)) != 0)
		goto out;
	if (de_checkpoint_key_load_private(key_path, &key, &err) < 0) {
		rc = cli_fail(&err);
		goto out_s;
	}
	if (!(q.sql = strdup(argv[optind])) || de_uuid_v4(&u) < 0) {
		rc = EX_OSERR;
		goto out_s;
	}
	de_uuid_format(&u, q.id);
	q.issued_ms = de_now_ms();
	q.expires_ms = q.issued_ms + (int64_t)(timeout > 30000 ? timeout : 30000);
	snprintf(q.reply, sizeof(q.reply), "_INBOX.daemoneye.%s", q.id);
	if (de_fleet_query_sign(&q, key, &msg, &len, &err) < 0) {
		rc = cli_fail(&err);
		goto out_s;
	}
	a.hosts = all ? NULL : q.hosts;
	a.nhosts = all ? 0 : q.nhosts;
	a.id = q.id;
	if (!(a.answered = calloc(q.nhosts + 1, sizeof(bool))) || !(a.rows = json_array())) {
		rc = EX_OSERR;
		goto out_s;
	}
	if ((rc = connect_wait(&s, &f)) != 0)
		goto out_s;
	/* listen first, then ask: every host's answer comes to our inbox */
	if (de_fleet_subscribe(f, q.reply, &sub, &err) < 0) {
		rc = cli_fail(&err);
		goto out_s;
	}
	for (size_t i = 0; i < (all ? 1 : q.nhosts) && rc == 0; i++) {
		if (de_fleet_query_subject(s.subject_prefix, all ? NULL : q.hosts[i], subject,
					   sizeof(subject)) < 0 ||
		    de_fleet_send(f, subject, msg, len, &err) < 0)
			rc = err.message[0] ? cli_fail(&err) : EX_SOFTWARE;
	}
	int64_t deadline = de_mono_ms() + (int64_t)timeout;
	while (rc == 0 && (all || a.got < a.nhosts)) {
		int64_t left = deadline - de_mono_ms();
		char *ans = NULL;
		size_t alen = 0;
		if (left <= 0)
			break;
		int r = de_fleet_sub_next(sub, left, DE_FLEET_ANSWER_MAX, &ans, &alen, &err);
		if (r == 0)
			break;
		if (r < 0) {
			cli_errorf("fleet query: %s", err.message);
			continue;
		}
		take_answer(&a, ans, alen);
		free(ans);
	}
	if (rc == 0) {
		if (!a.ndjson) {
			json_dumpf(a.rows, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			putchar('\n');
		}
		for (size_t i = 0; i < a.nhosts; i++)
			if (!a.answered[i])
				cli_errorf("fleet query: host %s did not answer within %llu ms",
					   a.hosts[i], (unsigned long long)timeout);
		if (all)
			cli_errorf("fleet query: %zu hosts answered", a.got);
		rc = a.refused				     ? EX_DATAERR
		     : (all ? a.got == 0 : a.got < a.nhosts) ? EX_UNAVAILABLE
							     : 0;
		if (fflush(stdout) != 0)
			rc = EX_IOERR;
	}
out_s:
	de_fleet_settings_clear(&s);
out:
	de_fleet_sub_free(sub);
	de_fleet_close(f);
	de_checkpoint_key_free(key);
	json_decref(a.rows);
	free(a.answered);
	free(msg);
	de_fleet_query_clear(&q);
	return rc;
}

/* ---- rules push ---------------------------------------------------------------- */

/* Whether a directory entry is a rule file (*.yaml, *.yml, not hidden). */
static int rule_file_name(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return d->d_name[0] != '.' && ((n > 5 && strcmp(d->d_name + n - 5, ".yaml") == 0) ||
				       (n > 4 && strcmp(d->d_name + n - 4, ".yml") == 0));
}

/* Read path into b and check its rules with v (problems into pr). */
static int bundle_add_file(struct de_fleet_bundle *b, const char *path, struct de_validator *v,
			   struct de_rule_set *set, struct de_rule_problems *pr)
{
	struct de_error err = {0};
	char *text = NULL;
	size_t len = 0;
	int rc;

	if ((rc = de_read_file(path, DE_RULES_MAX_FILE, &text, &len, NULL)) < 0) {
		cli_errorf("cannot read %s: %s", path,
			   rc == -EFBIG ? "larger than a rule file may be" : strerror(-rc));
		return rc == -ENOENT ? EX_NOINPUT : EX_DATAERR;
	}
	if (de_rules_parse(text, len, path, DE_RULE_USER, 0, v, set, pr, &err) < 0)
		rc = cli_fail(&err);
	else if ((rc = de_fleet_bundle_add(b, path, text, len)) < 0) {
		cli_errorf("%s: %s", path,
			   rc == -E2BIG ? "too many files or too large"
					: "not a rule file's name (NAME.yaml) or a second file of "
					  "that name, or its text holds a NUL");
		rc = EX_DATAERR;
	}
	free(text);
	return rc;
}

/*
 * The rule files named (a directory: its *.yaml and *.yml, in name order)
 * as a bundle, each rule checked by this configuration's validator first.
 */
static int bundle_collect(struct cli_ctx *ctx, int n, char **paths, struct de_fleet_bundle *b)
{
	struct de_validator *v = NULL;
	struct de_rule_set set = {0};
	struct de_rule_problems pr = {0};
	struct de_error err = {0};
	int rc = 0;

	if (de_validator_from_config(ctx->cfg, &v, &err) < 0)
		return cli_fail(&err);
	for (int i = 0; i < n && rc == 0; i++) {
		struct dirent **names = NULL;
		struct stat st;
		int k;
		if (stat(paths[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
			rc = bundle_add_file(b, paths[i], v, &set, &pr);
			continue;
		}
		if ((k = scandir(paths[i], &names, rule_file_name, alphasort)) < 0) {
			cli_errorf("cannot read %s: %s", paths[i], strerror(errno));
			rc = EX_NOINPUT;
			continue;
		}
		for (int j = 0; j < k; j++) {
			char *p = NULL;
			if (rc == 0 && asprintf(&p, "%s/%s", paths[i], names[j]->d_name) < 0)
				rc = EX_OSERR;
			if (rc == 0)
				rc = bundle_add_file(b, p, v, &set, &pr);
			free(p);
			free(names[j]);
		}
		free(names);
	}
	if (rc == 0 && pr.len) {
		for (size_t i = 0; i < pr.len; i++)
			cli_errorf("%s", pr.items[i]);
		cli_errorf("fleet rules push: not pushed (%zu problem%s)", pr.len,
			   pr.len == 1 ? "" : "s");
		rc = EX_DATAERR;
	}
	if (rc == 0 && set.len == 0) {
		cli_errorf("fleet rules push: no rule in what was named");
		rc = EX_DATAERR;
	}
	de_rule_problems_clear(&pr);
	de_rule_set_clear(&set);
	de_validator_free(v);
	return rc;
}

/* A signed bundle to store. */
struct push {
	const struct de_fleet_bundle *b;
	const char *msg;
	size_t len;
};

static int push_run(struct de_fleet *f, const struct de_fleet_settings *s, void *arg)
{
	const struct push *p = arg;
	struct de_error err = {0};
	uint64_t rev = 0;

	(void)s;
	if (de_fleet_kv_put(f, DE_FLEET_BUNDLE_BUCKET, DE_FLEET_BUNDLE_KEY, p->msg, p->len, &rev,
			    &err) < 0)
		return cli_fail(&err);
	printf("rule bundle version %" PRIu64 " (%zu files) pushed to %s/%s, revision %" PRIu64
	       "\n",
	       p->b->version, p->b->nfiles, DE_FLEET_BUNDLE_BUCKET, DE_FLEET_BUNDLE_KEY, rev);
	return 0;
}

static int fleet_rules(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},
		{"version", required_argument, NULL, 'V'},
		{"out", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct de_fleet_bundle b = {0};
	struct de_ckpt_key *key = NULL;
	struct de_error err = {0};
	struct push pb;
	const char *key_path = NULL, *out_path = NULL;
	char *msg = NULL, *end;
	size_t len = 0;
	int c, rc;

	if (argc < 2 || strcmp(argv[1], "push") != 0) {
		if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
			fleet_usage(stdout);
			return 0;
		}
		cli_errorf("fleet rules: the subcommand is push");
		return EX_USAGE;
	}
	argc--;
	argv++;
	optind = 0;
	b.issued_ms = de_now_ms();
	b.version = (uint64_t)b.issued_ms; /* newer than any pushed before, by default */
	while ((c = getopt_long(argc, argv, "k:V:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			key_path = optarg;
			break;
		case 'V':
			errno = 0;
			b.version = strtoull(optarg, &end, 10);
			if (errno || *end || b.version < 1 || b.version > INT64_MAX) {
				cli_errorf("fleet rules push: --version wants a positive integer");
				return EX_USAGE;
			}
			break;
		case 'o':
			out_path = optarg;
			break;
		case 'h':
			fleet_usage(stdout);
			return 0;
		default:
			return EX_USAGE;
		}
	}
	if (!key_path || optind >= argc) {
		cli_errorf("fleet rules push: give --key FILE and the rule files or directories");
		return EX_USAGE;
	}
	if ((rc = bundle_collect(ctx, argc - optind, argv + optind, &b)) != 0)
		goto out;
	if (de_checkpoint_key_load_private(key_path, &key, &err) < 0 ||
	    de_fleet_bundle_sign(&b, key, &msg, &len, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if (out_path) {
		if ((rc = de_write_file_atomic(out_path, msg, len, 0644)) < 0) {
			cli_errorf("cannot write %s: %s", out_path, strerror(-rc));
			rc = EX_CANTCREAT;
			goto out;
		}
		printf("rule bundle version %" PRIu64 " (%zu files) written to %s\n", b.version,
		       b.nfiles, out_path);
		rc = fflush(stdout) == 0 ? 0 : EX_IOERR;
		goto out;
	}
	pb = (struct push){.b = &b, .msg = msg, .len = len};
	rc = with_fleet(ctx, push_run, &pb);
out:
	de_checkpoint_key_free(key);
	de_fleet_bundle_clear(&b);
	free(msg);
	return rc;
}

int cmd_fleet(struct cli_ctx *ctx, int argc, char **argv)
{
	if (argc < 2) {
		fleet_usage(stderr);
		return EX_USAGE;
	}
	const char *sub = argv[1];
	argc--;
	argv++;
	optind = 0; /* glibc: 0 also resets getopt's permutation state */
	if (strcmp(sub, "id") == 0)
		return fleet_id(ctx, argc, argv);
	if (strcmp(sub, "init") == 0)
		return fleet_init(ctx, argc, argv);
	if (strcmp(sub, "status") == 0)
		return fleet_status(ctx, argc, argv);
	if (strcmp(sub, "show") == 0)
		return fleet_show(ctx, argc, argv, NULL);
	if (strcmp(sub, "alerts") == 0)
		return fleet_show(ctx, argc, argv, "alerts");
	if (strcmp(sub, "verify") == 0)
		return fleet_verify(ctx, argc, argv);
	if (strcmp(sub, "hosts") == 0)
		return fleet_hosts(ctx, argc, argv);
	if (strcmp(sub, "query") == 0)
		return fleet_query(ctx, argc, argv);
	if (strcmp(sub, "rules") == 0)
		return fleet_rules(ctx, argc, argv);
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
		fleet_usage(stdout);
		return 0;
	}
	cli_errorf("fleet: unknown subcommand '%s'", sub);
	fleet_usage(stderr);
	return EX_USAGE;
}
