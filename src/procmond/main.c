/*
 * procmond — the process collector.
 *
 * Standalone, for debugging and tests: `procmond --once --output json`
 * prints one ProcessRecord per line and exits; without --once it rescans
 * every --interval milliseconds until SIGINT/SIGTERM.  (Spawned by the agent
 * with --ipc-fd it answers the agent over a socketpair: serve.c.)
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "daemoneye/buf.h"
#include "daemoneye/collect.h"
#include "daemoneye/config.h"
#include "daemoneye/log.h"
#include "daemoneye/text.h"
#include "procmond.h"

volatile sig_atomic_t procmond_stop;

static void on_signal(int sig)
{
	(void)sig;
	procmond_request_stop();
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: procmond [--once] [--output json|text] [--interval MS] [-c FILE] [--set "
		"K=V]...\n"
		"\n"
		"  -1, --once            one scan, then exit\n"
		"  -o, --output FORMAT   json (one ProcessRecord per line) or text\n"
		"  -i, --interval MS     time between scans without --once (default 30000)\n"
		"  -c, --config FILE     configuration file (collection.* settings)\n"
		"  -s, --set KEY=VALUE   override one setting (repeatable)\n"
		"  -e, --events          stream exec/exit events as JSON lines until "
		"SIGINT/SIGTERM\n"
		"                        (full scan to reconcile every --interval, default 1000)\n"
		"      --connections     with --once: print every process's TCP connections\n"
		"                        (JSON lines) instead of the processes\n"
		"      --ipc-fd N        serve the agent over the socketpair on descriptor N\n"
		"  -h, --help            show this help\n"
		"  -V, --version         show the version\n");
}

static int print_text(const struct de_process_record *r)
{
	char *name = de_escape_text(r->name, strlen(r->name));
	char *exe = r->executable_path
			    ? de_escape_text(r->executable_path, strlen(r->executable_path))
			    : NULL;
	int rc = printf("%u\t%u\t%s\t%s\t%s", r->pid, r->ppid, r->user_id ? r->user_id : "-",
			name ? name : "?", exe ? exe : "-");
	for (size_t i = 0; rc >= 0 && i < r->command_line_len; i++) {
		char *a = de_escape_text(r->command_line[i], strlen(r->command_line[i]));
		rc = printf("%s%s", i ? " " : "\t", a ? a : "?");
		free(a);
	}
	free(name);
	free(exe);
	return rc < 0 ? rc : printf("\n");
}

struct emit {
	bool json;
	int rc;
	struct de_buf out; /* JSON lines waiting for one write */
};

/* Write what is gathered to standard output. */
static int emit_flush(struct emit *em)
{
	if (em->out.len && fwrite(em->out.p, 1, em->out.len, stdout) != em->out.len)
		return -EIO;
	de_buf_reset(&em->out);
	return 0;
}

static int emit_record(void *ctx, struct de_process_record *r)
{
	struct emit *em = ctx;

	if (!em->json) {
		em->rc = print_text(r);
		return em->rc < 0 ? -EIO : 0;
	}
	/* the JSON text straight from the record (no jansson object per
	   process), gathered into writes of about 64 KiB */
	if ((em->rc = de_process_record_json_buf(r, &em->out)) < 0 ||
	    (em->rc = de_buf_putc(&em->out, '\n')) < 0)
		return em->rc == -ENOMEM ? -ENOMEM : -EIO;
	return em->out.len >= (64u << 10) ? emit_flush(em) : 0;
}

static int scan_once(struct de_collector *c, bool json, int64_t scan_id)
{
	struct emit em = {json, 0, DE_BUF_INIT(64u << 20)};
	struct de_collect_stats st;
	struct de_error err = {0};
	int rc = de_collector_scan_each(c, scan_id, emit_record, &em, &st, &err);

	if (rc == 0)
		rc = emit_flush(&em);
	de_buf_free(&em.out);
	if (rc < 0 && rc != -EIO) {
		de_log_err(&err);
		return de_error_exit_code(&err);
	}
	if (rc < 0 || fflush(stdout) != 0) {
		de_log_warn("cannot write to standard output");
		return EX_IOERR;
	}
	de_log_debug("scan %lld: %zu processes (%zu reused, %zu vanished), hashed %zu files, "
		     "%llu bytes",
		     (long long)scan_id, st.recorded, st.reused, st.vanished, st.hashed_files,
		     (unsigned long long)st.hashed_bytes);
	return 0;
}

/*
 * The collection.* settings as collector options.  *flags and *envp receive
 * the borrowed arrays to free() after de_collector_configure.
 */
static int load_options(const struct de_config *cfg, struct de_collect_options *o,
			const char ***flags, const char ***envp, struct de_error *err)
{
	uint64_t mb, every, threads;
	int rc;

	de_collect_options_default(o);
	if ((rc = de_config_get_bool(cfg, "collection.hash_executables", &o->hash, err)) < 0 ||
	    (rc = de_config_get_u64(cfg, "collection.max_hash_size_mb", &mb, err)) < 0 ||
	    (rc = de_config_get_bool(cfg, "collection.mask_command_line", &o->mask, err)) < 0 ||
	    (rc = de_config_get_u64(cfg, "collection.full_refresh_every", &every, err)) < 0 ||
	    (rc = de_config_get_u64(cfg, "collection.scan_threads", &threads, err)) < 0 ||
	    (rc = de_config_get_str_list(cfg, "collection.mask_flags", flags, &o->nmask_flags,
					 err)) < 0)
		return rc;
	if ((rc = de_config_get_str_list(cfg, "collection.env_capture", envp, &o->nenv_names,
					 err)) < 0)
		return rc;
	o->env_names = *envp;
	o->max_hash_size = mb << 20;
	o->full_refresh_every = (unsigned)every;
	o->threads = (unsigned)threads;
	o->mask_flags = *flags;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"once", no_argument, NULL, '1'},
		{"output", required_argument, NULL, 'o'},
		{"interval", required_argument, NULL, 'i'},
		{"config", required_argument, NULL, 'c'},
		{"set", required_argument, NULL, 's'},
		{"ipc-fd", required_argument, NULL, 'F'},
		{"events", no_argument, NULL, 'e'},
		{"connections", no_argument, NULL, 'C'},
		{"no-sandbox", no_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct de_collector *col = NULL;
	struct de_config_sources src = {0};
	struct de_config *cfg = NULL;
	struct de_collect_options copt;
	const char **flags = NULL, **env_names = NULL,
		   **sets = calloc((size_t)argc + 1, sizeof(char *));
	const char *lv;
	struct de_error err = {0};
	bool once = false, json = true;
	unsigned long interval = 30000;
	long ipc_fd = -1;
	bool events = false, interval_set = false, sandbox = true, conns = false;
	char caps[256];
	int rc;
	struct procmond_source source = {.name = "none"};
	int c, status = 0;
	char *end;

	if (!sets)
		return EX_OSERR;
	de_log_init("procmond", DE_LOG_INFO, DE_LOG_TEXT, NULL);
	/*
	 * OpenSSL only hashes executables here: the privileged collector reads
	 * no OpenSSL configuration file (the system's openssl.cnf, or one
	 * OPENSSL_CONF names, may load engines and providers into it), and the
	 * library code that reading runs stays out of its memory (0.6 MB of a
	 * 16 MB budget).  Before any other OpenSSL call; failing, the first
	 * hash initialises OpenSSL as usual.
	 */
	(void)OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
	while ((c = getopt_long(argc, argv, "1o:i:c:s:ehV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			src.file = optarg;
			break;
		case 'e':
			events = true;
			break;
		case 'C':
			conns = true;
			break;
		case 'S':
			sandbox = false;
			break;
		case 'F':
			errno = 0;
			ipc_fd = strtol(optarg, &end, 10);
			if (errno || *end || ipc_fd < 0 || ipc_fd > 65535 ||
			    fcntl((int)ipc_fd, F_GETFD) < 0) {
				fprintf(stderr, "procmond: --ipc-fd needs an open descriptor\n");
				free(sets);
				return EX_USAGE;
			}
			/* ours alone: not inherited by anything we might start */
			fcntl((int)ipc_fd, F_SETFD, FD_CLOEXEC);
			break;
		case 's':
			sets[src.nsets++] = optarg;
			break;
		case '1':
			once = true;
			break;
		case 'o':
			if (strcmp(optarg, "json") == 0)
				json = true;
			else if (strcmp(optarg, "text") == 0)
				json = false;
			else {
				fprintf(stderr,
					"procmond: unknown output format '%s' (json or text)\n",
					optarg);
				free(sets);
				return EX_USAGE;
			}
			break;
		case 'i':
			errno = 0;
			interval = strtoul(optarg, &end, 10);
			if (errno || *end || interval < 100 || interval > 86400000) {
				fprintf(stderr, "procmond: --interval must be 100..86400000 ms\n");
				free(sets);
				return EX_USAGE;
			}
			interval_set = true;
			break;
		case 'h':
			usage(stdout);
			free(sets);
			return 0;
		case 'V':
#ifdef DE_SANITIZE_BUILD
			printf("procmond %s (sanitizer build: no seccomp filter)\n", DE_VERSION);
#else
			printf("procmond %s\n", DE_VERSION);
#endif
			free(sets);
			return 0;
		default:
			usage(stderr);
			free(sets);
			return EX_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "procmond: unexpected argument '%s'\n", argv[optind]);
		free(sets);
		return EX_USAGE;
	}
	(void)signal(SIGPIPE, SIG_IGN); /* cannot fail for a valid signal */
	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	src.sets = sets;
	if (de_config_load(&src, &cfg, &err) < 0) {
		fprintf(stderr, "procmond: %s\n", err.message);
		free(sets);
		return de_error_exit_code(&err);
	}
	if (de_config_get_str(cfg, "logging.level", &lv, &err) == 0)
		de_log_set_level((enum de_log_level)de_log_level_parse(lv));
	if (de_config_get_str(cfg, "logging.format", &lv, &err) == 0)
		de_log_set_format((enum de_log_format)de_log_format_parse(lv));
	if (load_options(cfg, &copt, &flags, &env_names, &err) < 0 ||
	    de_collector_open(NULL, &col, &err) < 0 ||
	    de_collector_configure(col, &copt, &err) < 0) {
		de_log_err(&err);
		status = de_error_exit_code(&err);
		goto out;
	}
	if (conns && !once) {
		fprintf(stderr, "procmond: --connections goes with --once\n");
		status = EX_USAGE;
		goto out;
	}
	/* root: keep CAP_SYS_PTRACE + CAP_DAC_READ_SEARCH, and what loading the
	 * event source needs until it is loaded (privsep.c) */
	if (procmond_drop_caps(events || ipc_fd >= 0) < 0) {
		de_log_errorx("cannot drop capabilities");
		status = EX_OSERR;
		goto out;
	}
	if ((events || ipc_fd >= 0) && procmond_source_open(cfg, &source, &err) < 0) {
		de_log_err(&err);
		status = de_error_exit_code(&err);
		goto out;
	}
	if (procmond_drop_event_caps() < 0) {
		de_log_errorx("cannot drop the capabilities the event source needed");
		status = EX_OSERR;
		goto out;
	}
	procmond_caps_text(caps, sizeof(caps));
	if (geteuid() == 0) /* --once is for scripts: quiet unless asked */
		de_log(once ? DE_LOG_DEBUG : DE_LOG_INFO, "running with capabilities: %s",
		       caps[0] ? caps : "none");
	if (sandbox && (rc = procmond_sandbox()) < 0) {
		de_log_errorx("cannot load the seccomp filter: %s", strerror(-rc));
		status = EX_OSERR;
		goto out;
	}
	if (events) {
		status = procmond_watch(col, &source, interval_set ? interval : 1000);
		goto out;
	}
	if (ipc_fd >= 0) {
		status = procmond_serve(col, &source, (int)ipc_fd, caps);
		goto out;
	}
	if (conns) {
		status = procmond_print_connections(col);
		goto out;
	}
	for (int64_t scan = 1; !procmond_stop; scan++) {
		status = scan_once(col, json, scan);
		if (once || status)
			break;
		struct timespec ts = {(time_t)(interval / 1000),
				      (long)(interval % 1000) * 1000000L};
		while (!procmond_stop && nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
out:
	procmond_source_close(&source);
	de_collector_close(col);
	free(flags);
	free(env_names);
	de_config_free(cfg);
	free(sets);
	return status;
}
