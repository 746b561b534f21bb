/*
 * rules_sigma.c — the Sigma subcommands of `daemoneye-cli rules` (declared
 * in cli.h, dispatched from cmd_rules.c):
 *
 *   rules convert --from sigma FILE
 *       print the daemoneye rule file (with its SQL) one Sigma rule
 *       becomes, or why it is refused;
 *   rules import --sigma [--min-status S] PATH...
 *       convert every Sigma rule of the files and directories (searched
 *       for *.yml / *.yaml, recursively) and install each converted rule
 *       as STATE/rules.d/sigma-<id>.yaml, where the agent loads imported
 *       rules at its next start.  A report line per file (converted,
 *       refused with the reason, skipped below --min-status) and a summary.
 *
 * Each rule file is validated before it is installed exactly as the agent
 * will load it (de_rules_parse with the sandbox), next to the configured
 * rules: an id used by another rule is refused.  Importing the same Sigma
 * rule again replaces its file (the id is the Sigma id, stable).
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "cli.h"
#include "daemoneye/fileio.h"
#include "daemoneye/rules.h"
#include "daemoneye/sigma.h"
#include "daemoneye/text.h"
#include "daemoneye/validator.h"

#define MAX_FILES 100000 /* Sigma files one import may name */
#define MAX_DEPTH 8	 /* directory levels searched */

static void say(const char *what, const char *text)
{
	char *e = de_escape_text(text, strlen(text));
	printf("%-9s %s\n", what, e ? e : "?");
	free(e);
}

/* Read and convert one Sigma file; 0, or a refusal in *err. */
static int convert_file(const char *file, struct de_validator *v, struct de_sigma_rule *out,
			struct de_error *err)
{
	char *text = NULL;
	size_t len = 0;
	int rc = de_read_file(file, DE_SIGMA_MAX_FILE, &text, &len, NULL);

	if (rc < 0)
		return de_error_set(
			err, rc == -EFBIG ? DE_ERR_VALIDATION : DE_ERR_IO, -rc, "%s: %s", file,
			rc == -EFBIG ? "larger than a Sigma rule may be (1 MiB)" : strerror(-rc));
	rc = de_sigma_convert(text, len, file, NULL, v, out, err);
	free(text);
	return rc;
}

int rules_sigma_convert(struct cli_ctx *ctx, const char *file)
{
	struct de_validator *v = NULL;
	struct de_sigma_rule r = {0};
	struct de_error err = {0};
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (de_validator_from_config(ctx->cfg, &v, &err) < 0)
		return cli_fail(&err);
	if (convert_file(file, v, &r, &err) < 0 || de_sigma_rule_file(&r, &text, &len, &err) < 0) {
		rc = err.code == ENOENT ? EX_NOINPUT : cli_fail(&err);
		if (err.code == ENOENT)
			cli_errorf("%s", err.message);
		goto out;
	}
	fwrite(text, 1, len, stdout);
	rc = 0;
out:
	free(text);
	de_sigma_rule_clear(&r);
	de_validator_free(v);
	return rc;
}

/* ---- import ------------------------------------------------------------------------- */

struct files {
	char **v;
	size_t n;
};

static int yaml_name(const char *n)
{
	size_t l = strlen(n);
	return (l > 4 && !strcmp(n + l - 4, ".yml")) || (l > 5 && !strcmp(n + l - 5, ".yaml"));
}

static int add_file(struct files *f, const char *path)
{
	char **nv;

	if (f->n >= MAX_FILES)
		return -E2BIG;
	if (!(nv = realloc(f->v, (f->n + 1) * sizeof(*nv))) || !(nv[f->n] = strdup(path))) {
		if (nv)
			f->v = nv;
		return -ENOMEM;
	}
	f->v = nv;
	f->n++;
	return 0;
}

/* Every Sigma file under dir, in name order, depth first. */
static int walk(const char *dir, int depth, struct files *f)
{
	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, alphasort), rc = 0;

	if (n < 0) {
		cli_errorf("cannot read %s: %s", dir, strerror(errno));
		return errno == ENOENT ? EX_NOINPUT : EX_IOERR;
	}
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		char *path = NULL;
		struct stat st;
		if (rc == 0 && name[0] != '.' && asprintf(&path, "%s/%s", dir, name) >= 0 &&
		    stat(path, &st) == 0) {
			if (S_ISDIR(st.st_mode) && depth < MAX_DEPTH)
				rc = walk(path, depth + 1, f);
			else if (S_ISREG(st.st_mode) && yaml_name(name) && add_file(f, path) < 0) {
				cli_errorf("too many files (at most %d)", MAX_FILES);
				rc = EX_USAGE;
			}
		}
		free(path);
		free(names[i]);
	}
	free(names);
	return rc;
}

struct import {
	struct de_validator *v;
	struct de_rule_set set; /* the configured rules, then each one installed */
	const char *dir;	/* STATE/rules.d */
	enum de_sigma_status min;
	size_t converted, refused, skipped, failed;
};

/* Convert, check and install one file; the report line says what happened. */
static void import_one(struct import *im, const char *file)
{
	struct de_sigma_rule r = {0};
	struct de_rule_set scratch = {0};
	struct de_rule_problems pr = {0};
	struct de_error err = {0};
	char *dst = NULL, *text = NULL, line[DE_ERROR_MSG_MAX + 512];
	size_t len = 0;
	int rc;

	if (convert_file(file, im->v, &r, &err) < 0) {
		say("refused", err.message);
		im->refused++;
		goto out;
	}
	if (!de_sigma_status_meets(r.status, im->min)) {
		snprintf(line, sizeof(line), "%s: status %s is below --min-status", file,
			 r.status ? r.status : "(none)");
		say("skipped", line);
		im->skipped++;
		goto out;
	}
	if (asprintf(&dst, "%s/%s.yaml", im->dir, r.rule.id) < 0) {
		dst = NULL;
		goto nomem;
	}
	const struct de_rule *same = de_rule_set_find(&im->set, r.rule.id);
	if (same && (!same->source_path || strcmp(same->source_path, dst) != 0)) {
		size_t at = (size_t)(same - im->set.items);
		snprintf(line, sizeof(line), "%s: rule id %s is already used by %s", file,
			 r.rule.id, im->set.origins[at]);
		say("refused", line);
		im->refused++;
		goto out;
	}
	if (de_sigma_rule_file(&r, &text, &len, &err) < 0)
		goto fail;
	/* exactly what the agent will load, through the same sandbox */
	if (de_rules_parse(text, len, dst, DE_RULE_USER, 0, im->v, &scratch, &pr, &err) < 0)
		goto fail;
	if (pr.len || scratch.len != 1) {
		snprintf(line, sizeof(line), "%s: the converted rule does not load: %s", file,
			 pr.len ? pr.items[0] : "no rule");
		say("refused", line);
		im->refused++;
		goto out;
	}
	if ((rc = de_write_file_atomic(dst, text, len, 0644)) < 0) {
		snprintf(line, sizeof(line), "%s: cannot install %s: %s", file, dst, strerror(-rc));
		say("failed", line);
		im->failed++;
		goto out;
	}
	snprintf(line, sizeof(line), "%s -> %s%s (%s)", file, r.rule.id,
		 same ? " (replaced the earlier import)" : "", r.rule.name);
	say("converted", line);
	im->converted++;
	if (!same) { /* later files must not reuse the id */
		struct de_rule_problems p2 = {0};
		de_rules_parse(text, len, dst, DE_RULE_USER, 0, NULL, &im->set, &p2, NULL);
		de_rule_problems_clear(&p2);
	}
	goto out;
fail:
	snprintf(line, sizeof(line), "%s: %s", file, err.message);
	say("failed", line);
	im->failed++;
	goto out;
nomem:
	say("failed", "out of memory");
	im->failed++;
out:
	free(dst);
	free(text);
	de_rule_set_clear(&scratch);
	de_rule_problems_clear(&pr);
	de_sigma_rule_clear(&r);
}

int rules_sigma_import(struct cli_ctx *ctx, int n, char **paths, const char *min_status)
{
	struct de_audit *audit = NULL;
	struct import im = {0};
	struct files files = {0};
	struct de_rule_problems pr = {0};
	struct de_error err = {0};
	char *user = NULL, *state = NULL;
	int rc = 0;

	if (min_status && de_sigma_status_parse(min_status, &im.min, &err) < 0) {
		cli_errorf("--min-status: %s", err.message);
		return EX_USAGE;
	}
	for (int i = 0; i < n && rc == 0; i++) {
		struct stat st;
		if (stat(paths[i], &st) < 0) {
			cli_errorf("cannot read %s: %s", paths[i], strerror(errno));
			rc = errno == ENOENT ? EX_NOINPUT : EX_IOERR;
		} else if (S_ISDIR(st.st_mode)) {
			rc = walk(paths[i], 0, &files);
		} else if (add_file(&files, paths[i]) < 0) {
			rc = EX_OSERR;
		}
	}
	if (rc)
		goto out;
	if (de_validator_from_config(ctx->cfg, &im.v, &err) < 0 ||
	    de_rules_load_config(ctx->cfg, im.v, &im.set, &pr, &err) < 0 ||
	    de_rules_paths(ctx->cfg, &user, &state, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if ((rc = de_make_dirs(user, 0755)) < 0) {
		cli_errorf("cannot create %s: %s", user, strerror(-rc));
		rc = EX_CANTCREAT;
		goto out;
	}
	if ((rc = cli_audit_open(ctx, &audit)))
		goto out;
	im.dir = user;
	size_t before = im.set.len;
	for (size_t i = 0; i < files.n; i++)
		import_one(&im, files.v[i]);
	if (im.converted) {
		json_t *ids = json_array();
		for (size_t i = before; ids && i < im.set.len; i++)
			json_array_append_new(ids, json_string(im.set.items[i].id));
		if (cli_audit_record(audit, "rules.import",
				     json_pack("{s:s, s:s, s:I, s:I, s:I, s:o}", "format", "sigma",
					       "dir", user, "imported", (json_int_t)im.converted,
					       "refused", (json_int_t)im.refused, "failed",
					       (json_int_t)im.failed, "rule_ids", ids)) != 0)
			im.failed++;
		audit = NULL;
	}
	printf("sigma: %zu converted and imported into %s, %zu refused, %zu skipped, %zu failed "
	       "(of %zu files); daemoneye-agent loads them at its next start\n",
	       im.converted, user, im.refused, im.skipped, im.failed, files.n);
	rc = im.failed ? EX_IOERR : im.refused ? EX_DATAERR : 0;
out:
	cli_audit_abandon(audit);
	for (size_t i = 0; i < files.n; i++)
		free(files.v[i]);
	free(files.v);
	free(user);
	free(state);
	de_rule_problems_clear(&pr);
	de_rule_set_clear(&im.set);
	de_validator_free(im.v);
	return rc;
}
