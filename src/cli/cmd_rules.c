/*
 * cmd_rules.c — `daemoneye-cli rules ...`: the detection rules the agent
 * would load (builtin library, detection.rules_dirs, imported rules, with
 * the operator's enable/disable overrides), their files, and a dry run
 * over the current snapshot.
 *
 * Persistent operator state lives under app.state_dir, next to the event
 * store the agent owns: `import` copies a validated rule file into
 * STATE/rules.d/ (loaded as source "user"), `enable`/`disable` record an
 * override in STATE/rules-state.json.  The agent picks both up when it
 * starts.  Nothing here writes the event store.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli.h"
#include "daemoneye/alert.h"
#include "daemoneye/audit.h"
#include "daemoneye/checkpoint.h"
#include "daemoneye/fleet.h"
#include "daemoneye/detect.h"
#include "daemoneye/rules.h"
#include "daemoneye/validator.h"
#include "daemoneye/fileio.h"
#include "daemoneye/text.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: daemoneye-cli rules list [--format table|json]\n"
		   "       daemoneye-cli rules show ID\n"
		   "       daemoneye-cli rules validate FILE...\n"
		   "       daemoneye-cli rules test [--format text|json] FILE|ID\n"
		   "       daemoneye-cli rules import FILE\n"
		   "       daemoneye-cli rules import --sigma [--min-status S] PATH...\n"
		   "       daemoneye-cli rules import --bundle FILE [--pubkey FILE]\n"
		   "       daemoneye-cli rules convert --from sigma FILE\n"
		   "       daemoneye-cli rules export [ID]\n"
		   "       daemoneye-cli rules enable ID | disable ID\n"
		   "       daemoneye-cli rules schema\n");
}

static void print_problems(const struct de_rule_problems *pr)
{
	for (size_t i = 0; i < pr->len; i++) {
		char *m = de_escape_text(pr->items[i], strlen(pr->items[i]));
		cli_errorf("%s", m ? m : "?");
		free(m);
	}
}

/* The configured set; problems are printed as warnings. */
static int load_set(struct cli_ctx *ctx, struct de_validator **v, struct de_rule_set *set,
		    bool quiet)
{
	struct de_rule_problems pr = {0};
	struct de_error err = {0};

	if (de_validator_from_config(ctx->cfg, v, &err) < 0 ||
	    de_rules_load_config(ctx->cfg, *v, set, &pr, &err) < 0) {
		de_rule_problems_clear(&pr);
		return cli_fail(&err);
	}
	if (!quiet)
		print_problems(&pr);
	de_rule_problems_clear(&pr);
	return 0;
}

static void put_escaped(const char *s)
{
	char *e = s ? de_escape_text(s, strlen(s)) : NULL;
	fputs(e ? e : "", stdout);
	free(e);
}

static int do_list(struct cli_ctx *ctx, bool json)
{
	struct de_validator *v = NULL;
	struct de_rule_set set = {0};
	int rc = load_set(ctx, &v, &set, false);

	if (rc)
		goto out;
	if (json) {
		json_t *arr = json_array();
		for (size_t i = 0; arr && i < set.len; i++)
			json_array_append_new(arr, de_rule_to_json(&set.items[i]));
		char *s = arr ? json_dumps(arr, JSON_INDENT(2)) : NULL;
		printf("%s\n", s ? s : "[]");
		free(s);
		json_decref(arr);
		goto out;
	}
	if (ctx->color)
		fputs("\033[1m", stdout);
	printf("%-28s %-8s %-3s %-7s %-32s %s", "ID", "SEVERITY", "ON", "SOURCE", "ATT&CK", "NAME");
	if (ctx->color)
		fputs("\033[0m", stdout);
	fputc('\n', stdout);
	for (size_t i = 0; i < set.len; i++) {
		const struct de_rule *r = &set.items[i];
		char tags[256] = "";
		size_t o = 0;
		for (size_t t = 0; t < r->tags_len && o < sizeof(tags); t++)
			o += (size_t)snprintf(tags + o, sizeof(tags) - o, "%s%s", t ? "," : "",
					      r->tags[t]);
		char *id = de_escape_text(r->id, strlen(r->id));
		char *tg = de_escape_text(tags, strlen(tags));
		printf("%-28s %-8s %-3s %-7s %-32s ", id ? id : "?", de_severity_name(r->severity),
		       r->enabled ? "yes" : "no", de_rule_source_name(r->source_type),
		       tg ? tg : "");
		put_escaped(r->name);
		fputc('\n', stdout);
		free(id);
		free(tg);
	}
out:
	de_rule_set_clear(&set);
	de_validator_free(v);
	return rc;
}

static int do_show(struct cli_ctx *ctx, const char *id)
{
	struct de_validator *v = NULL;
	struct de_rule_set set = {0};
	struct de_error err = {0};
	int rc = load_set(ctx, &v, &set, true);
	const struct de_rule *r;

	if (rc)
		goto out;
	if (!(r = de_rule_set_find(&set, id))) {
		cli_errorf("no rule '%s' (see daemoneye-cli rules list)", id);
		rc = EX_NOINPUT;
		goto out;
	}
	size_t idx = (size_t)(r - set.items);
	/* a rule found in the set has its origin (the analyzer cannot see that
	   load_set's cli_fail never returns 0) */
	/* NOLINTNEXTLINE(clang-analyzer-core.NullDereference) */
	printf("# source: %s (%s)\n", de_rule_source_name(r->source_type), set.origins[idx]);
	if (de_rules_write_yaml(stdout, &r, 1, &err) < 0)
		rc = cli_fail(&err);
out:
	de_rule_set_clear(&set);
	de_validator_free(v);
	return rc;
}

static int do_validate(int n, char **files)
{
	struct de_validator *v = de_validator_new();
	struct de_rule_set set = {0};
	int bad = 0;

	if (!v)
		return EX_OSERR;
	for (int i = 0; i < n; i++) {
		struct de_rule_problems pr = {0};
		struct de_error err = {0};
		size_t before = set.len;
		if (de_rules_load_file(files[i], DE_RULE_FILE, v, &set, &pr, &err) < 0) {
			cli_errorf("%s", err.message);
			bad = bad ? bad : de_error_exit_code(&err);
		} else {
			print_problems(&pr);
			if (pr.len)
				bad = bad ? bad : EX_DATAERR;
			printf("%s: %zu rule%s OK, %zu rejected\n", files[i], set.len - before,
			       set.len - before == 1 ? "" : "s", pr.len);
		}
		de_rule_problems_clear(&pr);
	}
	de_rule_set_clear(&set);
	de_validator_free(v);
	return bad;
}

static int do_test(struct cli_ctx *ctx, const char *what, bool json)
{
	struct de_validator *v = NULL;
	struct de_rule_set set = {0};
	struct de_engine *eng = NULL;
	struct de_error err = {0};
	struct stat st;
	int rc = 0;

	if (stat(what, &st) == 0 && S_ISREG(st.st_mode)) {
		struct de_rule_problems pr = {0};
		if (de_validator_from_config(ctx->cfg, &v, &err) < 0 ||
		    de_rules_load_file(what, DE_RULE_FILE, v, &set, &pr, &err) < 0) {
			de_rule_problems_clear(&pr);
			rc = cli_fail(&err);
			goto out;
		}
		print_problems(&pr);
		if (pr.len)
			rc = EX_DATAERR;
		de_rule_problems_clear(&pr);
	} else {
		struct de_rule_set all = {0};
		if ((rc = load_set(ctx, &v, &all, true)))
			goto out;
		struct de_rule *r = de_rule_set_find(&all, what);
		if (!r) {
			cli_errorf("'%s' is neither a rule file nor a rule id", what);
			de_rule_set_clear(&all);
			rc = EX_NOINPUT;
			goto out;
		}
		/* keep just that rule */
		set = all;
		for (size_t i = 0; i < set.len; i++)
			set.items[i].enabled = &set.items[i] == r;
	}
	if (cli_open_engine(ctx, v, &eng, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	for (size_t i = 0; i < set.len; i++) {
		struct de_alert_list alerts = {0};
		struct de_rule_result res;
		if (!set.items[i].enabled && stat(what, &st) != 0)
			continue;
		de_engine_run_rule(eng, &set.items[i], 0, NULL, &alerts, &res);
		if (!json)
			printf("rule %s: %zu alert%s from %zu row%s in %.1f ms%s\n",
			       set.items[i].id, res.alerts, res.alerts == 1 ? "" : "s", res.rows,
			       res.rows == 1 ? "" : "s", (double)res.elapsed_us / 1000.0,
			       res.status < 0 ? " (did not finish)" : "");
		for (size_t a = 0; a < alerts.len; a++) {
			char *s = json ? de_alert_render_json(&alerts.items[a])
				       : de_alert_render_text(&alerts.items[a], ctx->color);
			printf("%s%s\n", json ? "" : "  ", s ? s : "?");
			free(s);
		}
		if (res.status < 0) {
			cli_errorf("%s", res.error.message);
			rc = EX_DATAERR;
		}
		de_alert_list_clear(&alerts);
	}
out:
	de_engine_close(eng);
	de_rule_set_clear(&set);
	de_validator_free(v);
	return rc;
}

/* The rules of set from index `from` on, as a ledger entry lists them: id and SQL hash. */
static json_t *rules_json(const struct de_rule_set *set, size_t from)
{
	json_t *arr = json_array();

	for (size_t i = from; arr && i < set->len; i++) {
		const char *sql = set->items[i].sql_query;
		char b64[DE_AUDIT_HASH_TEXT_LEN + 1];
		de_audit_hash_text(sql, strlen(sql), b64);
		json_array_append_new(
			arr, json_pack("{s:s, s:s}", "id", set->items[i].id, "sql_blake3", b64));
	}
	return arr;
}

static int do_import(struct cli_ctx *ctx, const char *file)
{
	struct de_audit *audit = NULL;
	struct de_validator *v = NULL;
	struct de_rule_set set = {0};
	struct de_rule_problems pr = {0};
	struct de_error err = {0};
	char *user = NULL, *state = NULL, *dst = NULL, *base = NULL, *text = NULL;
	size_t len = 0;
	struct stat st;
	int rc = load_set(ctx, &v, &set, true);
	size_t before = set.len;

	if (rc)
		goto out;
	/* read once: the bytes validated are the bytes installed */
	if ((rc = de_read_file(file, DE_RULES_MAX_FILE, &text, &len, &st)) < 0) {
		if (rc == -EFBIG)
			cli_errorf("%s: larger than %u bytes", file, (unsigned)DE_RULES_MAX_FILE);
		else
			cli_errorf("cannot read %s: %s", file, strerror(-rc));
		rc = rc == -ENOENT ? EX_NOINPUT : rc == -EFBIG ? EX_DATAERR : EX_IOERR;
		goto out;
	}
	/* every rule of the file must load next to the configured ones */
	if (de_rules_parse(text, len, file, DE_RULE_USER,
			   (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000, v,
			   &set, &pr, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if (pr.len) {
		print_problems(&pr);
		cli_errorf("%s: not imported (%zu problem%s)", file, pr.len,
			   pr.len == 1 ? "" : "s");
		rc = EX_DATAERR;
		goto out;
	}
	if (de_rules_paths(ctx->cfg, &user, &state, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	char *copy = strdup(file);
	base = copy ? strdup(basename(copy)) : NULL;
	free(copy);
	size_t bl = base ? strlen(base) : 0;
	if (!base || asprintf(&dst, "%s/%s%s", user, base,
			      (bl > 5 && !strcmp(base + bl - 5, ".yaml")) ||
					      (bl > 4 && !strcmp(base + bl - 4, ".yml"))
				      ? ""
				      : ".yaml") < 0) {
		rc = EX_OSERR;
		goto out;
	}
	if ((rc = de_make_dirs(user, 0755)) < 0) {
		cli_errorf("cannot create %s: %s", user, strerror(-rc));
		rc = EX_CANTCREAT;
		goto out;
	}
	if (access(dst, F_OK) == 0) {
		cli_errorf("%s already exists; remove it first to replace it", dst);
		rc = EX_CANTCREAT;
		goto out;
	}
	if ((rc = cli_audit_open(ctx, &audit)))
		goto out;
	if ((rc = de_write_file_atomic(dst, text, len, 0644)) < 0) {
		cli_errorf("cannot install %s: %s", dst, strerror(-rc));
		rc = EX_IOERR;
		goto out;
	}
	char fb64[DE_AUDIT_HASH_TEXT_LEN + 1];
	de_audit_hash_text(text, len, fb64);
	rc = cli_audit_record(audit, "rules.import",
			      json_pack("{s:s, s:s, s:s, s:o}", "file", dst, "file_blake3", fb64,
					"from", file, "rules", rules_json(&set, before)));
	audit = NULL;
	printf("imported %s as %s (loaded by daemoneye-agent at its next start)\n", file, dst);
out:
	cli_audit_abandon(audit);
	free(text);
	free(user);
	free(state);
	free(dst);
	free(base);
	de_rule_problems_clear(&pr);
	de_rule_set_clear(&set);
	de_validator_free(v);
	return rc;
}

/*
 * A signed rule bundle (fleet.h), offline: checked as an agent checks one
 * from the fleet (the operator's signature, a version newer than the one
 * installed, every rule through the validator), installed as the bundle
 * file of the rules directory, recorded in the audit ledger.
 */
static int do_import_bundle(struct cli_ctx *ctx, const char *file, const char *pubkey)
{
	struct de_audit *audit = NULL;
	struct de_validator *v = NULL;
	struct de_rule_set set = {0}, got = {0};
	struct de_rule_problems pr = {0};
	struct de_fleet_bundle b = {0};
	struct de_ckpt_key *pub = NULL;
	struct de_error err = {0};
	char *user = NULL, *state = NULL, *text = NULL;
	const char *keypath = pubkey;
	size_t len = 0;
	int rc;

	if (!keypath &&
	    (de_config_get_str(ctx->cfg, "fleet.operator_public_key", &keypath, NULL) < 0 ||
	     !keypath || !*keypath)) {
		cli_errorf("rules import --bundle: give --pubkey FILE or set "
			   "fleet.operator_public_key (the key bundles are checked against)");
		return EX_USAGE;
	}
	if ((rc = de_read_file(file, DE_FLEET_BUNDLE_MAX, &text, &len, NULL)) < 0) {
		cli_errorf("cannot read %s: %s", file,
			   rc == -EFBIG ? "larger than a bundle may be" : strerror(-rc));
		rc = rc == -ENOENT ? EX_NOINPUT : rc == -EFBIG ? EX_DATAERR : EX_IOERR;
		goto out;
	}
	if (de_checkpoint_key_load_public(keypath, &pub, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if ((rc = load_set(ctx, &v, &set, true)))
		goto out;
	if (de_fleet_bundle_open(text, len, pub, &b, &err) < 0 ||
	    de_rules_paths(ctx->cfg, &user, &state, &err) < 0) {
		cli_errorf("%s: %s", file, err.message);
		rc = err.category == DE_ERR_IO ? EX_IOERR : EX_DATAERR;
		goto out;
	}
	if ((rc = cli_audit_open(ctx, &audit)))
		goto out;
	if (de_fleet_bundle_install(&b, v, user, &got, &pr, &err) < 0) {
		print_problems(&pr);
		cli_errorf("%s: %s", file, err.message);
		rc = err.category == DE_ERR_IO ? EX_IOERR : EX_DATAERR;
		goto out;
	}
	char fb64[DE_AUDIT_HASH_TEXT_LEN + 1];
	de_audit_hash_text(text, len, fb64);
	rc = cli_audit_record(audit, "rules.bundle",
			      json_pack("{s:I, s:I, s:s, s:s, s:s, s:o}", "version",
					(json_int_t)b.version, "issued_ms", (json_int_t)b.issued_ms,
					"bundle_blake3", fb64, "from", file, "via", "rules import",
					"rules", rules_json(&got, 0)));
	audit = NULL;
	printf("installed rule bundle version %" PRIu64 " (%zu rules from %zu files) in %s/%s "
	       "(loaded by daemoneye-agent at its next start or reload)\n",
	       b.version, got.len, b.nfiles, user, DE_FLEET_BUNDLE_FILE);
out:
	cli_audit_abandon(audit);
	de_checkpoint_key_free(pub);
	de_fleet_bundle_clear(&b);
	free(text);
	free(user);
	free(state);
	de_rule_problems_clear(&pr);
	de_rule_set_clear(&set);
	de_rule_set_clear(&got);
	de_validator_free(v);
	return rc;
}

static int do_export(struct cli_ctx *ctx, const char *id)
{
	struct de_validator *v = NULL;
	struct de_rule_set set = {0};
	struct de_error err = {0};
	const struct de_rule **list = NULL;
	size_t n = 0;
	int rc = load_set(ctx, &v, &set, true);

	if (rc)
		goto out;
	if (!(list = calloc(set.len + 1, sizeof(const struct de_rule *)))) {
		rc = EX_OSERR;
		goto out;
	}
	for (size_t i = 0; i < set.len; i++)
		if (!id || !strcmp(set.items[i].id, id))
			list[n++] = &set.items[i];
	if (id && !n) {
		cli_errorf("no rule '%s' (see daemoneye-cli rules list)", id);
		rc = EX_NOINPUT;
		goto out;
	}
	if (de_rules_write_yaml(stdout, list, n, &err) < 0)
		rc = cli_fail(&err);
out:
	free(list);
	de_rule_set_clear(&set);
	de_validator_free(v);
	return rc;
}

static int do_enable(struct cli_ctx *ctx, const char *id, bool on)
{
	struct de_audit *audit = NULL;
	struct de_validator *v = NULL;
	struct de_rule_set set = {0};
	struct de_error err = {0};
	char *user = NULL, *state = NULL;
	int rc = load_set(ctx, &v, &set, true);

	if (rc)
		goto out;
	if (!de_rule_set_find(&set, id)) {
		cli_errorf("no rule '%s' (see daemoneye-cli rules list)", id);
		rc = EX_NOINPUT;
		goto out;
	}
	if (de_rules_paths(ctx->cfg, &user, &state, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	char *dir = strdup(state);
	if (!dir || (rc = de_make_dirs(dirname(dir), 0755)) < 0) {
		cli_errorf("cannot create the state directory: %s", strerror(dir ? -rc : ENOMEM));
		free(dir);
		rc = EX_CANTCREAT;
		goto out;
	}
	free(dir);
	if ((rc = cli_audit_open(ctx, &audit)))
		goto out;
	if (de_rules_state_set(state, id, on, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	rc = cli_audit_record(audit, on ? "rule.enable" : "rule.disable",
			      json_pack("{s:s}", "rule_id", id));
	audit = NULL;
	printf("rule %s %s (%s; a running daemoneye-agent applies it at its next cycle)\n", id,
	       on ? "enabled" : "disabled", state);
out:
	cli_audit_abandon(audit);
	free(user);
	free(state);
	de_rule_set_clear(&set);
	de_validator_free(v);
	return rc;
}

static int do_schema(struct cli_ctx *ctx)
{
	struct de_validator *v = NULL;
	struct de_error err = {0};
	size_t n, nf;

	if (de_validator_from_config(ctx->cfg, &v, &err) < 0)
		return cli_fail(&err);
	const struct de_relation *rel = de_relations(&n);
	for (size_t i = 0; i < n; i++) {
		if (ctx->color)
			fputs("\033[1m", stdout);
		printf("%s", rel[i].name);
		if (ctx->color)
			fputs("\033[0m", stdout);
		printf(" — %s\n", rel[i].description);
		for (size_t c = 0; c < rel[i].ncolumns; c++)
			printf("  %-18s %-8s %s\n", rel[i].columns[c].name, rel[i].columns[c].type,
			       rel[i].columns[c].description);
		printf("\n");
	}
	const char *const *f = de_validator_functions(v, &nf);
	printf("functions:");
	for (size_t i = 0; i < nf; i++)
		printf(" %s", f[i]);
	printf("\nlimits: one SELECT; subqueries %u deep; %llu ms; SQL %d bytes\n",
	       de_validator_max_nesting(v), (unsigned long long)de_validator_timeout(v),
	       DE_VALIDATOR_MAX_SQL);
	de_validator_free(v);
	return 0;
}

int cmd_rules(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"format", required_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{"sigma", no_argument, NULL, 'S'},
		{"from", required_argument, NULL, 'F'},
		{"min-status", required_argument, NULL, 'M'},
		{"bundle", required_argument, NULL, 'B'},
		{"pubkey", required_argument, NULL, 'P'},
		{NULL, 0, NULL, 0},
	};
	const char *format = NULL, *from = NULL, *min_status = NULL, *bundle = NULL, *pubkey = NULL;
	bool sigma = false;
	int c;

	/* re-initialise getopt so options may come anywhere; the subcommand and
	 * its arguments are what is left, in order */
	optind = 0;
	while ((c = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			format = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'S':
			sigma = true;
			break;
		case 'F':
			from = optarg;
			break;
		case 'M':
			min_status = optarg;
			break;
		case 'B':
			bundle = optarg;
			break;
		case 'P':
			pubkey = optarg;
			break;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EX_USAGE;
	}
	const char *sub = argv[optind];
	int nargs = argc - optind - 1;
	char **args = argv + optind + 1;
	if ((sigma || min_status) && strcmp(sub, "import") != 0) {
		cli_errorf("rules %s: --sigma and --min-status go with import", sub);
		return EX_USAGE;
	}
	if (from && strcmp(sub, "convert") != 0) {
		cli_errorf("rules %s: --from goes with convert", sub);
		return EX_USAGE;
	}
	if ((bundle || pubkey) && (strcmp(sub, "import") != 0 || sigma || !bundle)) {
		cli_errorf("rules %s: --bundle FILE [--pubkey FILE] go with import, without "
			   "--sigma",
			   sub);
		return EX_USAGE;
	}
	if (min_status && !sigma) {
		cli_errorf("rules import: --min-status goes with --sigma");
		return EX_USAGE;
	}
	bool json = format && !strcmp(format, "json");
	if (format && !json && strcmp(format, "table") != 0 && strcmp(format, "text") != 0) {
		cli_errorf("unknown format '%s'", format);
		return EX_USAGE;
	}
#define NEED(n, what)                                                                              \
	do {                                                                                       \
		if (nargs != (n)) {                                                                \
			cli_errorf("rules %s: expected %s", sub, what);                            \
			usage(stderr);                                                             \
			return EX_USAGE;                                                           \
		}                                                                                  \
	} while (0)
	if (!strcmp(sub, "list")) {
		NEED(0, "no arguments");
		return do_list(ctx, json);
	}
	if (!strcmp(sub, "show")) {
		NEED(1, "a rule id");
		return do_show(ctx, args[0]);
	}
	if (!strcmp(sub, "validate")) {
		if (nargs < 1) {
			cli_errorf("rules validate: expected one or more files");
			return EX_USAGE;
		}
		return do_validate(nargs, args);
	}
	if (!strcmp(sub, "test")) {
		NEED(1, "a rule file or a rule id");
		return do_test(ctx, args[0], json);
	}
	if (!strcmp(sub, "import") && bundle) {
		NEED(0, "only --bundle FILE");
		return do_import_bundle(ctx, bundle, pubkey);
	}
	if (!strcmp(sub, "import") && sigma) {
		if (nargs < 1) {
			cli_errorf(
				"rules import --sigma: expected Sigma rule files or directories");
			return EX_USAGE;
		}
		return rules_sigma_import(ctx, nargs, args, min_status);
	}
	if (!strcmp(sub, "import")) {
		NEED(1, "a rule file");
		return do_import(ctx, args[0]);
	}
	if (!strcmp(sub, "convert")) {
		if (!from || strcmp(from, "sigma") != 0) {
			cli_errorf("rules convert: --from sigma is the only source format");
			return EX_USAGE;
		}
		NEED(1, "a Sigma rule file");
		return rules_sigma_convert(ctx, args[0]);
	}
	if (!strcmp(sub, "export")) {
		if (nargs > 1) {
			cli_errorf("rules export: expected at most one rule id");
			return EX_USAGE;
		}
		return do_export(ctx, nargs ? args[0] : NULL);
	}
	if (!strcmp(sub, "enable") || !strcmp(sub, "disable")) {
		NEED(1, "a rule id");
		return do_enable(ctx, args[0], !strcmp(sub, "enable"));
	}
	if (!strcmp(sub, "schema")) {
		NEED(0, "no arguments");
		return do_schema(ctx);
	}
	cli_errorf("rules: unknown subcommand '%s'", sub);
	usage(stderr);
	return EX_USAGE;
}
