/*
 * cmd_audit.c — `daemoneye-cli audit verify|log|checkpoint|prove|consistency`
 * and `daemoneye-cli keygen`: the audit ledger (audit.h) for operators and
 * auditors.  Everything but `checkpoint --sign` opens the ledger read-only
 * where the agent keeps it (audit.path, else <state_dir>/audit.sqlite).
 *
 * Exit status: 0 intact / done; 65 (EX_DATAERR) when verification finds
 * the ledger or a checkpoint tampered with; 66, 74 or 77 when something
 * cannot be read (missing, I/O, permission); 64 for usage errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "daemoneye/audit.h"
#include "daemoneye/base64.h"
#include "daemoneye/clock.h"
#include "daemoneye/fileio.h"
#include "daemoneye/text.h"

/* ---- shared -------------------------------------------------------------- */

static int open_ledger(struct cli_ctx *ctx, bool read_only, struct de_audit_settings *s,
		       struct de_audit **out)
{
	struct de_audit_config c;
	struct de_error err = {0};

	if (de_audit_settings_load(ctx->cfg, s, &err) < 0)
		return cli_fail(&err);
	de_audit_settings_config(s, read_only, &c);
	if (!read_only)
		c.chain.enable_signatures = true; /* checkpoint --sign */
	if (de_audit_open(&c, out, &err) < 0) {
		if (err.code == ENOENT)
			cli_errorf("%s (run daemoneye-agent first, or set audit.path or "
				   "app.state_dir)",
				   err.message);
		else
			cli_errorf("%s", err.message);
		de_audit_settings_clear(s);
		return de_error_exit_code(&err);
	}
	return 0;
}

/* Read a small text file (a checkpoint note) whole; NUL-terminated, caller frees. */
static int slurp(const char *path, size_t cap, char **out, size_t *len, struct de_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf;
	size_t n = 0;
	ssize_t r;

	if (fd < 0)
		return de_error_set(err, DE_ERR_IO, errno, "cannot open %s: %s", path,
				    strerror(errno));
	if (!(buf = malloc(cap + 2))) {
		close(fd);
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	}
	while (n <= cap && (r = read(fd, buf + n, cap + 1 - n)) > 0)
		n += (size_t)r;
	close(fd);
	if (n > cap) {
		free(buf);
		return de_error_set(err, DE_ERR_VALIDATION, EFBIG,
				    "%s is larger than %zu bytes: not a checkpoint", path, cap);
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

static void b64_hash(const uint8_t h[DE_MERKLE_HASH_LEN], char out[DE_BASE64_LEN(32) + 1])
{
	de_base64_encode(h, DE_MERKLE_HASH_LEN, out);
}

static bool parse_count(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!*s || *end || errno || s[0] == '-')
		return false;
	*out = v;
	return true;
}

static int want_json(const char *opt, bool *json)
{
	if (strcmp(opt, "json") == 0)
		*json = true;
	else if (strcmp(opt, "text") == 0)
		*json = false;
	else
		return -1;
	return 0;
}

/* ---- audit verify -------------------------------------------------------- */

static int audit_verify(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"checkpoint", required_argument, NULL, 'c'},
		{"pubkey", required_argument, NULL, 'k'},
		{"format", required_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *cp_path = NULL, *key_path = NULL;
	struct de_audit_verify_opts vo = {0};
	struct de_audit_settings s = {0};
	struct de_audit_report rep;
	struct de_ckpt_key *key = NULL;
	struct de_audit *a = NULL;
	struct de_error err = {0};
	char *note = NULL;
	bool json = false;
	int c, rc;

	while ((c = getopt_long(argc, argv, "c:k:f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cp_path = optarg;
			break;
		case 'k':
			key_path = optarg;
			break;
		case 'f':
			if (want_json(optarg, &json) < 0) {
				cli_errorf("audit verify: unknown format '%s' (text or json)",
					   optarg);
				return EX_USAGE;
			}
			break;
		case 'h':
			printf("usage: daemoneye-cli audit verify [--checkpoint FILE] [--pubkey "
			       "FILE] [--format text|json]\n");
			return 0;
		default:
			return EX_USAGE;
		}
	}
	if (cli_no_operands("audit verify", argc, argv) != 0)
		return EX_USAGE;
	if ((rc = open_ledger(ctx, true, &s, &a)) != 0)
		return rc;
	if (!key_path)
		key_path = s.public_key_path;
	if (key_path && de_checkpoint_key_load_public(key_path, &key, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if (cp_path) {
		if (slurp(cp_path, DE_CHECKPOINT_TEXT_MAX, &note, &vo.checkpoint_len, &err) < 0) {
			rc = cli_fail(&err);
			goto out;
		}
		vo.checkpoint = note;
	}
	vo.pubkey = key;
	if (de_audit_verify(a, &vo, &rep, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	char root[DE_BASE64_LEN(32) + 1];
	b64_hash(rep.root, root);
	if (json) {
		json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:I,s:b}", "ledger", s.path, "result",
				      de_audit_problem_name(rep.problem), "entries",
				      (json_int_t)rep.entries, "root", root, "checkpoints",
				      (json_int_t)rep.checkpoints, "signatures_checked",
				      rep.signatures_checked);
		if (o)
			json_object_set_new(o, "pruned", json_integer((json_int_t)rep.pruned));
		if (o && rep.problem != DE_AUDIT_INTACT) {
			json_object_set_new(o, "bad_seq", json_integer((json_int_t)rep.bad_seq));
			json_object_set_new(o, "detail", json_string(rep.detail));
		}
		if (o)
			json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(o);
	} else if (rep.problem == DE_AUDIT_INTACT) {
		printf("audit ledger %s: intact\n"
		       "entries      %llu\n"
		       "root         %s\n"
		       "checkpoints  %llu (%s)\n",
		       s.path, (unsigned long long)rep.entries, root,
		       (unsigned long long)rep.checkpoints,
		       rep.signatures_checked ? "signatures verified"
					      : "signatures not checked: no public key (--pubkey "
						"or audit.public_key_path)");
		if (rep.pruned)
			printf("pruned       entries 1..%llu (audit.retention_days: their hashes "
			       "are in the tree, signed)\n",
			       (unsigned long long)rep.pruned);
	}
	if (rep.problem != DE_AUDIT_INTACT) {
		cli_errorf("audit ledger %s is TAMPERED (%s): %s", s.path,
			   de_audit_problem_name(rep.problem), rep.detail);
		rc = EX_DATAERR;
	} else {
		rc = fflush(stdout) == 0 ? 0 : EX_IOERR;
	}
out:
	free(note);
	de_checkpoint_key_free(key);
	de_audit_close(a, NULL);
	de_audit_settings_clear(&s);
	return rc;
}

/* ---- audit log ----------------------------------------------------------- */

enum fmt { F_TABLE, F_JSON, F_NDJSON };

struct log_out {
	enum fmt fmt;
	size_t rows;
};

static json_t *record_json(const struct de_audit_record *r)
{
	char ph[DE_BASE64_LEN(32) + 1], pv[DE_BASE64_LEN(32) + 1], eh[DE_BASE64_LEN(32) + 1];
	json_t *payload = json_loads(r->payload, JSON_DECODE_ANY, NULL);

	b64_hash(r->payload_hash, ph);
	b64_hash(r->previous_hash, pv);
	b64_hash(r->entry_hash, eh);
	return json_pack("{s:I,s:I,s:s,s:s,s:o,s:s,s:s,s:s}", "seq", (json_int_t)r->seq, "ts_ms",
			 (json_int_t)r->ts_ms, "actor", r->actor, "action", r->action, "payload",
			 payload ? payload : json_string(r->payload), "payload_hash", ph,
			 "previous_hash", pv, "entry_hash", eh);
}

static int print_record(const struct de_audit_record *r, void *arg)
{
	struct log_out *o = arg;
	char when[40];

	if (o->fmt == F_TABLE) {
		time_t t = (time_t)(r->ts_ms / 1000);
		struct tm tmv;
		if (gmtime_r(&t, &tmv))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tmv);
		else
			snprintf(when, sizeof(when), "-");
		if (o->rows == 0)
			printf("%8s  %-19s  %-16s %-20s %s\n", "SEQ", "TIME (UTC)", "ACTOR",
			       "ACTION", "PAYLOAD");
		char *actor = de_escape_text(r->actor, strlen(r->actor));
		char *action = de_escape_text(r->action, strlen(r->action));
		char *payload = de_escape_text(r->payload, strlen(r->payload));
		printf("%8llu  %-19s  %-16s %-20s %s\n", (unsigned long long)r->seq, when,
		       actor ? actor : "?", action ? action : "?", payload ? payload : "?");
		free(actor);
		free(action);
		free(payload);
	} else {
		json_t *j = record_json(r);
		if (!j)
			return -ENOMEM;
		if (o->fmt == F_JSON)
			fputs(o->rows ? ",\n  " : "[\n  ", stdout);
		json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (o->fmt == F_NDJSON)
			putchar('\n');
		json_decref(j);
	}
	o->rows++;
	return ferror(stdout) ? -EIO : 0;
}

static int audit_log(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"since", required_argument, NULL, 's'},
		{"actor", required_argument, NULL, 'a'},
		{"action", required_argument, NULL, 'A'},
		{"limit", required_argument, NULL, 'l'},
		{"format", required_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct de_audit_filter f = {0};
	struct de_audit_settings s = {0};
	struct log_out o = {F_TABLE, 0};
	struct de_audit *a = NULL;
	struct de_error err = {0};
	int c, rc;

	while ((c = getopt_long(argc, argv, "s:a:A:l:f:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (de_time_parse(optarg, de_now_ms(), &f.since_ms) < 0) {
				cli_errorf("audit log: --since: cannot read time '%s' (RFC 3339, "
					   "a date, now, or relative like -1h)",
					   optarg);
				return EX_USAGE;
			}
			f.has_since = true;
			break;
		case 'a':
			f.actor = optarg;
			break;
		case 'A':
			f.action = optarg;
			break;
		case 'l':
			if (!parse_count(optarg, &f.limit)) {
				cli_errorf("audit log: --limit wants a number, not '%s'", optarg);
				return EX_USAGE;
			}
			break;
		case 'f': {
			static const char *const fmts[] = {"table", "json", "ndjson", NULL};
			int k = cli_format_arg("audit log", optarg, fmts);
			if (k < 0)
				return EX_USAGE;
			o.fmt = (enum fmt)k;
			break;
		}
		case 'h':
			printf("usage: daemoneye-cli audit log [--since T] [--actor A] [--action "
			       "A] "
			       "[--limit N] [--format table|json|ndjson]\n");
			return 0;
		default:
			return EX_USAGE;
		}
	}
	if (cli_no_operands("audit log", argc, argv) != 0)
		return EX_USAGE;
	if ((rc = open_ledger(ctx, true, &s, &a)) != 0)
		return rc;
	rc = de_audit_query(a, &f, print_record, &o, &err);
	if (o.fmt == F_JSON)
		fputs(o.rows ? "\n]\n" : "[]\n", stdout);
	de_audit_close(a, NULL);
	de_audit_settings_clear(&s);
	if (rc < 0 && err.category != DE_ERR_NONE)
		return cli_fail(&err);
	if (rc < 0 || fflush(stdout) != 0) {
		cli_errorf("audit log: cannot write the output");
		return EX_IOERR;
	}
	return 0;
}

/* ---- audit checkpoint ---------------------------------------------------- */

static int audit_checkpoint(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"export", required_argument, NULL, 'e'},
		{"sign", no_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct de_audit_settings s = {0};
	struct de_audit *a = NULL;
	struct de_error err = {0};
	const char *export = NULL;
	bool sign = false;
	char *note = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "e:sh", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			export = optarg;
			break;
		case 's':
			sign = true;
			break;
		case 'h':
			printf("usage: daemoneye-cli audit checkpoint [--sign] [--export FILE]\n"
			       "  prints the latest signed checkpoint (or writes it to FILE);\n"
			       "  --sign makes a new one now with audit.private_key_path\n");
			return 0;
		default:
			return EX_USAGE;
		}
	}
	if (cli_no_operands("audit checkpoint", argc, argv) != 0)
		return EX_USAGE;
	if ((rc = open_ledger(ctx, !sign, &s, &a)) != 0)
		return rc;
	rc = sign ? de_audit_checkpoint(a, &note, &err)
		  : de_audit_latest_checkpoint(a, &note, &err);
	de_audit_close(a, NULL);
	if (rc < 0) {
		if (err.code == ENOENT)
			cli_errorf("%s (the agent makes one every audit.checkpoint_every_entries "
				   "entries; or use --sign)",
				   err.message);
		rc = err.code == ENOENT ? EX_NOINPUT : cli_fail(&err);
		goto out;
	}
	if (export) {
		int fd = open(export, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
		size_t len = strlen(note);
		if (fd < 0 || write(fd, note, len) != (ssize_t)len || close(fd) < 0) {
			cli_errorf("audit checkpoint: cannot write %s: %s", export,
				   strerror(errno));
			rc = EX_CANTCREAT;
			goto out;
		}
	} else {
		fputs(note, stdout);
	}
	rc = fflush(stdout) == 0 ? 0 : EX_IOERR;
out:
	free(note);
	de_audit_settings_clear(&s);
	return rc;
}

/* ---- audit prove / consistency ------------------------------------------- */

static void print_proof(bool json, const char *kind, json_t *head,
			uint8_t proof[DE_MERKLE_MAX_PROOF][DE_MERKLE_HASH_LEN], size_t n)
{
	char b[DE_BASE64_LEN(32) + 1];

	if (json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++) {
			b64_hash(proof[i], b);
			json_array_append_new(arr, json_string(b));
		}
		json_object_set_new(head, "proof", arr);
		json_dumpf(head, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		return;
	}
	const char *key;
	json_t *v;
	json_object_foreach (head, key, v) {
		if (json_is_integer(v))
			printf("%-13s %lld\n", key, (long long)json_integer_value(v));
		else
			printf("%-13s %s\n", key, json_string_value(v));
	}
	printf("%s proof (%zu hashes, RFC 9162 order, BLAKE3):\n", kind, n);
	for (size_t i = 0; i < n; i++) {
		b64_hash(proof[i], b);
		printf("  %s\n", b);
	}
}

static int audit_prove(struct cli_ctx *ctx, int argc, char **argv, bool consistency)
{
	static const struct option opts[] = {
		{"size", required_argument, NULL, 's'},
		{"format", required_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	uint8_t proof[DE_MERKLE_MAX_PROOF][DE_MERKLE_HASH_LEN], leaf[32], r1[32], r2[32];
	struct de_merkle_blob pb[DE_MERKLE_MAX_PROOF];
	const char *usage = consistency ? "usage: daemoneye-cli audit consistency OLD NEW "
					  "[--format text|json]\n"
					: "usage: daemoneye-cli audit prove SEQ [--size N] "
					  "[--format text|json]\n";
	struct de_audit_settings s = {0};
	struct de_audit *a = NULL;
	struct de_error err = {0};
	uint64_t x = 0, y = 0;
	bool json = false, has_size = false;
	char b1[DE_BASE64_LEN(32) + 1], b2[DE_BASE64_LEN(32) + 1];
	size_t n = 0;
	int c, rc;

	while ((c = getopt_long(argc, argv, "s:f:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (consistency || !parse_count(optarg, &y)) {
				fputs(usage, stderr);
				return EX_USAGE;
			}
			has_size = true;
			break;
		case 'f':
			if (want_json(optarg, &json) < 0) {
				cli_errorf("audit: unknown format '%s' (text or json)", optarg);
				return EX_USAGE;
			}
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			return EX_USAGE;
		}
	}
	if (argc - optind != (consistency ? 2 : 1) || !parse_count(argv[optind], &x) ||
	    (consistency && !parse_count(argv[optind + 1], &y))) {
		fputs(usage, stderr);
		return EX_USAGE;
	}
	if ((rc = open_ledger(ctx, true, &s, &a)) != 0)
		return rc;
	if (!consistency && !has_size)
		y = de_audit_size(a);
	json_t *head = json_object();
	if (consistency) {
		rc = de_audit_prove_consistency(a, x, y, proof, &n, &err);
		if (rc == 0 && (rc = de_audit_root(a, x, r1, &err)) == 0)
			rc = de_audit_root(a, y, r2, &err);
		if (rc == 0) {
			/* check what we print, as its reader will */
			de_merkle_proof_blobs(proof[0], n, pb);
			rc = de_merkle_verify_consistency(&de_merkle_blake3, x, y, pb, n,
							  (struct de_merkle_blob){r1, 32},
							  (struct de_merkle_blob){r2, 32}, &err);
		}
		b64_hash(r1, b1);
		b64_hash(r2, b2);
		json_object_set_new(head, "old_size", json_integer((json_int_t)x));
		json_object_set_new(head, "new_size", json_integer((json_int_t)y));
		json_object_set_new(head, "old_root", json_string(b1));
		json_object_set_new(head, "new_root", json_string(b2));
	} else {
		rc = de_audit_prove_inclusion(a, x, y, proof, &n, leaf, &err);
		if (rc == 0 && (rc = de_audit_root(a, y, r2, &err)) == 0) {
			de_merkle_proof_blobs(proof[0], n, pb);
			rc = de_merkle_verify_inclusion(&de_merkle_blake3, x - 1, y,
							(struct de_merkle_blob){leaf, 32}, pb, n,
							(struct de_merkle_blob){r2, 32}, &err);
		}
		b64_hash(leaf, b1);
		b64_hash(r2, b2);
		json_object_set_new(head, "seq", json_integer((json_int_t)x));
		json_object_set_new(head, "leaf_index", json_integer((json_int_t)x - 1));
		json_object_set_new(head, "tree_size", json_integer((json_int_t)y));
		json_object_set_new(head, "leaf_hash", json_string(b1));
		json_object_set_new(head, "root", json_string(b2));
	}
	de_audit_close(a, NULL);
	de_audit_settings_clear(&s);
	if (rc < 0) {
		json_decref(head);
		return cli_fail(&err);
	}
	print_proof(json, consistency ? "consistency" : "inclusion", head, proof, n);
	json_decref(head);
	return fflush(stdout) == 0 ? 0 : EX_IOERR;
}

/* ---- the command groups -------------------------------------------------- */

static void audit_usage(FILE *f)
{
	fprintf(f, "usage: daemoneye-cli audit verify [--checkpoint FILE] [--pubkey FILE]\n"
		   "       daemoneye-cli audit log [--since T] [--actor A] [--action A] [--format "
		   "table|json|ndjson]\n"
		   "       daemoneye-cli audit checkpoint [--sign] [--export FILE]\n"
		   "       daemoneye-cli audit prove SEQ [--size N]\n"
		   "       daemoneye-cli audit consistency OLD NEW\n");
}

int cmd_audit(struct cli_ctx *ctx, int argc, char **argv)
{
	if (argc < 2) {
		audit_usage(stderr);
		return EX_USAGE;
	}
	const char *sub = argv[1];
	argc--;
	argv++;
	optind = 0; /* glibc: 0 also resets getopt's permutation state */
	if (strcmp(sub, "verify") == 0)
		return audit_verify(ctx, argc, argv);
	if (strcmp(sub, "log") == 0)
		return audit_log(ctx, argc, argv);
	if (strcmp(sub, "checkpoint") == 0)
		return audit_checkpoint(ctx, argc, argv);
	if (strcmp(sub, "prove") == 0)
		return audit_prove(ctx, argc, argv, false);
	if (strcmp(sub, "consistency") == 0)
		return audit_prove(ctx, argc, argv, true);
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
		audit_usage(stdout);
		return 0;
	}
	cli_errorf("audit: unknown subcommand '%s'", sub);
	audit_usage(stderr);
	return EX_USAGE;
}

int cmd_keygen(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"out", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct de_error err = {0};
	const char *dir = NULL;
	int c;

	(void)ctx;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			dir = optarg;
			break;
		case 'h':
			printf("usage: daemoneye-cli keygen --out DIR\n"
			       "  writes DIR/audit.key (PKCS#8 PEM, 0600) and DIR/audit.pub (SPKI "
			       "PEM)\n");
			return 0;
		default:
			return EX_USAGE;
		}
	}
	if (!dir || optind < argc) {
		fprintf(stderr, "usage: daemoneye-cli keygen --out DIR\n");
		return EX_USAGE;
	}
	if (de_make_dirs(dir, 0700) < 0) {
		cli_errorf("keygen: cannot create %s: %s", dir, strerror(errno));
		return EX_CANTCREAT;
	}
	if (de_checkpoint_keygen(dir, &err) < 0)
		return cli_fail(&err);
	printf("wrote %s/audit.key (private, mode 0600: set audit.private_key_path)\n"
	       "wrote %s/audit.pub (public: give it to whoever verifies checkpoints)\n",
	       dir, dir);
	return 0;
}
