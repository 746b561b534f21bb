/*
 * fleet_bundle.c — signed rule bundles (fleet.h): the message an operator
 * signs, the checks made before one is installed (shape, Ed25519 signature
 * by the operator's key, a version newer than the installed one, every
 * rule through the validator local rules pass), and the installation: the
 * bundle's rules written as one rule file and renamed over the previous
 * bundle's, so that a reload sees the old set or the new one, never a mix.
 *
 * As for queries, the signature covers a canonical byte string rebuilt
 * from the parsed fields, never the JSON text.  The installed file starts
 * with a comment line naming the version, which is how the next bundle's
 * version is compared: the version and the rules change in one rename.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/buf.h"
#include "daemoneye/fileio.h"
#include "daemoneye/fleet.h"
#include "fleet_int.h"

#define SIGNED_TAG "daemoneye-rule-bundle-v1\n"
#define HEADER	   "# daemoneye fleet rule bundle version "
#define HEADER_FMT HEADER "%" PRIu64 " issued %" PRId64 "\n"

/* A file name a bundle may carry: a base name of [A-Za-z0-9._-], not hidden, ending .yaml/.yml. */
static bool name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > DE_FLEET_BUNDLE_NAME_MAX || s[0] == '.')
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			return false;
	return (n > 5 && strcmp(s + n - 5, ".yaml") == 0) ||
	       (n > 4 && strcmp(s + n - 4, ".yml") == 0);
}

int de_fleet_bundle_add(struct de_fleet_bundle *b, const char *name, const char *text, size_t len)
{
	const char *base = strrchr(name, '/');
	struct de_fleet_bundle_file *f;

	base = base ? base + 1 : name;
	if (!name_valid(base) || memchr(text, '\0', len))
		return -EINVAL;
	if (b->nfiles >= DE_FLEET_BUNDLE_FILES_MAX || len > DE_FLEET_BUNDLE_MAX)
		return -E2BIG;
	for (size_t i = 0; i < b->nfiles; i++)
		if (strcmp(b->files[i].name, base) == 0)
			return -EINVAL; /* two files of one name */
	if (!(f = realloc(b->files, (b->nfiles + 1) * sizeof(*f))))
		return -ENOMEM;
	b->files = f;
	f = &b->files[b->nfiles];
	memset(f, 0, sizeof(*f));
	if (!(f->text = malloc(len + 1)))
		return -ENOMEM;
	memcpy(f->text, text, len);
	f->text[len] = '\0';
	f->len = len;
	snprintf(f->name, sizeof(f->name), "%s", base);
	b->nfiles++;
	return 0;
}

void de_fleet_bundle_clear(struct de_fleet_bundle *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->nfiles; i++)
		free(b->files[i].text);
	free(b->files);
	memset(b, 0, sizeof(*b));
}

/* The bytes the signature covers. */
static int signed_bytes(const struct de_fleet_bundle *b, struct de_buf *out)
{
	int rc = de_buf_printf(out, SIGNED_TAG "%" PRIu64 "\n%" PRId64 "\n%zu\n", b->version,
			       b->issued_ms, b->nfiles);
	for (size_t i = 0; rc == 0 && i < b->nfiles; i++) {
		rc = de_buf_printf(out, "%s\n%zu\n", b->files[i].name, b->files[i].len);
		if (rc == 0)
			rc = de_buf_append(out, b->files[i].text, b->files[i].len);
		if (rc == 0)
			rc = de_buf_putc(out, '\n');
	}
	return rc;
}

static int malformed(struct de_error *err, const char *what)
{
	return de_error_set(err, DE_ERR_VALIDATION, EBADMSG, "malformed rule bundle: %s", what);
}

int de_fleet_bundle_sign(const struct de_fleet_bundle *b, const struct de_ckpt_key *key,
			 char **json, size_t *len, struct de_error *err)
{
	struct de_buf sb = DE_BUF_INIT((size_t)2 * DE_FLEET_BUNDLE_MAX);
	char sig64[FLEET_SIG64_LEN];
	json_t *o = NULL, *files = NULL;
	char *text = NULL;
	int rc;

	if (b->version < 1 || b->nfiles == 0)
		return malformed(err, "a bundle needs a version >= 1 and at least one file");
	if (signed_bytes(b, &sb) < 0) {
		de_buf_free(&sb);
		return de_error_set(err, DE_ERR_VALIDATION, E2BIG, "rule bundle too large");
	}
	rc = fleet_sig_make(key, sb.p, sb.len, sig64, err);
	de_buf_free(&sb);
	if (rc < 0)
		return rc;
	if (!(files = json_array()))
		goto nomem;
	for (size_t i = 0; i < b->nfiles; i++)
		if (json_array_append_new(files,
					  json_pack("{s:s,s:s%}", "name", b->files[i].name, "text",
						    b->files[i].text, b->files[i].len)) < 0)
			goto nomem;
	o = json_pack("{s:i,s:I,s:I,s:O,s:s}", "v", 1, "version", (json_int_t)b->version,
		      "issued_ms", (json_int_t)b->issued_ms, "files", files, "sig", sig64);
	if (!o || !(text = json_dumps(o, JSON_COMPACT)))
		goto nomem;
	json_decref(o);
	json_decref(files);
	if (strlen(text) > DE_FLEET_BUNDLE_MAX) {
		free(text);
		return de_error_set(err, DE_ERR_VALIDATION, E2BIG,
				    "rule bundle larger than %d bytes", DE_FLEET_BUNDLE_MAX);
	}
	*len = strlen(text);
	*json = text;
	return 0;
nomem:
	json_decref(o);
	json_decref(files);
	return de_error_set(err, DE_ERR_VALIDATION, ENOMEM, "out of memory");
}

int de_fleet_bundle_open(const char *msg, size_t len, const struct de_ckpt_key *pub,
			 struct de_fleet_bundle *out, struct de_error *err)
{
	static const char *const keys[] = {"v", "version", "issued_ms", "files", "sig"};
	static const char *const fkeys[] = {"name", "text"};
	struct de_fleet_bundle b = {0};
	struct de_buf sb = DE_BUF_INIT((size_t)2 * DE_FLEET_BUNDLE_MAX);
	char sig64[FLEET_SIG64_LEN], what[64];
	const json_t *files, *ver, *issued;
	json_t *o = NULL;
	int rc;

	if ((rc = fleet_json_open(msg, len, DE_FLEET_BUNDLE_MAX, keys,
				  sizeof(keys) / sizeof(keys[0]), "rule bundle", &o, err)) < 0)
		goto out;
	files = json_object_get(o, "files");
	ver = json_object_get(o, "version");
	issued = json_object_get(o, "issued_ms");
	if (json_integer_value(json_object_get(o, "v")) != 1 || !json_is_integer(ver) ||
	    json_integer_value(ver) < 1 || !json_is_integer(issued) || !json_is_array(files) ||
	    json_array_size(files) == 0) {
		rc = malformed(err,
			       "a member is missing or of the wrong type (version 1 expected)");
		goto out;
	}
	if (!json_object_get(o, "sig")) {
		rc = de_error_set(err, DE_ERR_CRYPTO, EBADMSG,
				  "rule bundle refused: it is not signed");
		goto out;
	}
	if (fleet_json_str(o, "sig", sig64, sizeof(sig64)) < 0) {
		rc = de_error_set(err, DE_ERR_CRYPTO, EBADMSG,
				  "rule bundle refused: its signature is not 64 bytes of base64");
		goto out;
	}
	if (json_array_size(files) > DE_FLEET_BUNDLE_FILES_MAX) {
		rc = malformed(err, "too many files");
		goto out;
	}
	b.version = (uint64_t)json_integer_value(ver);
	b.issued_ms = (int64_t)json_integer_value(issued);
	for (size_t i = 0; i < json_array_size(files); i++) {
		const json_t *f = json_array_get(files, i), *t = json_object_get(f, "text");
		char name[DE_FLEET_BUNDLE_NAME_MAX + 1];
		if (!json_is_object(f) || !fleet_json_only(f, fkeys, 2) ||
		    fleet_json_str(f, "name", name, sizeof(name)) < 0 || !json_is_string(t)) {
			rc = malformed(err, "a file is not {\"name\", \"text\"}");
			goto out;
		}
		if ((rc = de_fleet_bundle_add(&b, name, json_string_value(t),
					      json_string_length(t))) < 0) {
			rc = rc == -ENOMEM
				     ? de_error_set(err, DE_ERR_VALIDATION, ENOMEM, "out of memory")
				     : malformed(err, "a file's name is not a rule file's "
						      "(NAME.yaml), repeated, or its text "
						      "holds a NUL");
			goto out;
		}
	}
	if (signed_bytes(&b, &sb) < 0) {
		rc = de_error_set(err, DE_ERR_VALIDATION, E2BIG, "rule bundle too large");
		goto out;
	}
	snprintf(what, sizeof(what), "rule bundle version %" PRIu64, b.version);
	if ((rc = fleet_sig_check(pub, sb.p, sb.len, sig64, what, err)) < 0)
		goto out;
	*out = b;
	memset(&b, 0, sizeof(b));
	rc = 0;
out:
	de_buf_free(&sb);
	json_decref(o);
	de_fleet_bundle_clear(&b);
	return rc;
}

/* rules_dir/DE_FLEET_BUNDLE_FILE into *path (the caller frees). */
static int bundle_path(const char *rules_dir, char **path, struct de_error *err)
{
	if (asprintf(path, "%s/%s", rules_dir, DE_FLEET_BUNDLE_FILE) < 0)
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	return 0;
}

int de_fleet_bundle_installed(const char *rules_dir, uint64_t *version, struct de_error *err)
{
	char *path = NULL, line[160];
	FILE *f;
	int rc;

	*version = 0;
	if ((rc = bundle_path(rules_dir, &path, err)) < 0)
		return rc;
	if (!(f = fopen(path, "re"))) {
		rc = errno == ENOENT ? 0
				     : de_error_set(err, DE_ERR_IO, errno, "cannot read %s: %s",
						    path, strerror(errno));
		free(path);
		return rc;
	}
	/* not a bundle's header (a rule file of that name): version 0, any replaces it */
	if (fgets(line, sizeof(line), f) && strncmp(line, HEADER, strlen(HEADER)) == 0) {
		char *end;
		errno = 0;
		uint64_t v = strtoull(line + strlen(HEADER), &end, 10);
		if (errno == 0 && end != line + strlen(HEADER) && *end == ' ')
			*version = v;
	}
	(void)fclose(f);
	free(path);
	return 0;
}

int de_fleet_bundle_install(const struct de_fleet_bundle *b, struct de_validator *v,
			    const char *rules_dir, struct de_rule_set *rules,
			    struct de_rule_problems *problems, struct de_error *err)
{
	struct de_rule_set set = {0};
	const struct de_rule **ptrs = NULL;
	char *path = NULL, *text = NULL;
	size_t tlen = 0, before = problems->len;
	uint64_t installed;
	FILE *mem = NULL;
	int rc;

	if ((rc = de_fleet_bundle_installed(rules_dir, &installed, err)) < 0)
		return rc;
	if (b->version <= installed)
		return de_error_set(err, DE_ERR_VALIDATION, ESTALE,
				    "rule bundle version %" PRIu64
				    " refused: not newer than the installed version %" PRIu64,
				    b->version, installed);
	/* every file through the validator local rules pass, into one set (an
	   id twice across the bundle's files is a problem too) */
	for (size_t i = 0; i < b->nfiles; i++) {
		char origin[DE_FLEET_BUNDLE_NAME_MAX + 32];
		snprintf(origin, sizeof(origin), "bundle:%s", b->files[i].name);
		if ((rc = de_rules_parse(b->files[i].text, b->files[i].len, origin, DE_RULE_USER,
					 b->issued_ms, v, &set, problems, err)) < 0)
			goto out;
	}
	if (problems->len > before) {
		rc = de_error_set(err, DE_ERR_VALIDATION, EBADMSG,
				  "rule bundle version %" PRIu64 " refused: %zu rule problem%s",
				  b->version, problems->len - before,
				  problems->len - before == 1 ? "" : "s");
		goto out;
	}
	if (set.len == 0) {
		rc = de_error_set(err, DE_ERR_VALIDATION, EBADMSG,
				  "rule bundle version %" PRIu64 " refused: it holds no rule",
				  b->version);
		goto out;
	}
	if (!(ptrs = calloc(set.len, sizeof(struct de_rule *))) ||
	    !(mem = open_memstream(&text, &tlen))) {
		rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < set.len; i++)
		ptrs[i] = &set.items[i];
	fprintf(mem, HEADER_FMT, b->version, b->issued_ms);
	rc = de_rules_write_yaml(mem, ptrs, set.len, err);
	if (fclose(mem) != 0 && rc == 0)
		rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	mem = NULL;
	if (rc < 0)
		goto out;
	if (tlen > DE_RULES_MAX_FILE) {
		rc = de_error_set(err, DE_ERR_VALIDATION, E2BIG,
				  "rule bundle version %" PRIu64 " refused: its rules make %zu "
				  "bytes, more than a rule file holds (%u)",
				  b->version, tlen, (unsigned)DE_RULES_MAX_FILE);
		goto out;
	}
	if ((rc = bundle_path(rules_dir, &path, err)) < 0)
		goto out;
	if ((rc = de_make_dirs(rules_dir, 0755)) < 0 ||
	    (rc = de_write_file_atomic(path, text, tlen, 0644)) < 0) {
		rc = de_error_set(err, DE_ERR_IO, -rc, "cannot install %s: %s", path,
				  strerror(-rc));
		goto out;
	}
	if (rules) {
		*rules = set;
		memset(&set, 0, sizeof(set));
	}
	rc = 0;
out:
	if (mem)
		(void)fclose(mem);
	free(text);
	free(ptrs);
	free(path);
	de_rule_set_clear(&set);
	return rc;
}
