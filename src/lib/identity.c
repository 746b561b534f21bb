/*
 * identity.c — full names, containers, captured environment variables and
 * the user/group name cache (see identity.h).
 */
#include "daemoneye/identity.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/buf.h"
#include "daemoneye/clock.h"
#include "daemoneye/mask.h"

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

const char *de_identity_full_name(const char *comm, const char *exe, char *const *argv, size_t argc)
{
	size_t cl = strlen(comm);
	const char *cand[3] = {exe, argc > 0 ? argv[0] : NULL, argc > 1 ? argv[1] : NULL};

	if (cl != DE_COMM_MAX)
		return comm;
	for (size_t i = 0; i < 3; i++) {
		const char *b;
		if (!cand[i])
			continue;
		b = base_name(cand[i]);
		if (strlen(b) > cl && memcmp(b, comm, cl) == 0)
			return b;
	}
	return comm;
}

/* ---- containers ------------------------------------------------------------ */

static bool hex64(const char *s, size_t n)
{
	if (n != DE_CONTAINER_ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* One path component c[0..n): a runtime's scope or a bare id. */
static bool component(const char *c, size_t n, bool kube, const char *prev, size_t pn,
		      char id[DE_CONTAINER_ID_LEN + 1], const char **runtime)
{
	static const struct {
		const char *prefix;
		const char *runtime;
	} scopes[] = {
		{"docker-", "docker"}, {"cri-containerd-", "containerd"}, {"crio-", "cri-o"},
		{"libpod-", "podman"}, {"containerd-", "containerd"},
	};
	static const char scope[] = ".scope";
	const size_t sl = sizeof(scope) - 1;

	for (size_t i = 0; i < sizeof(scopes) / sizeof(scopes[0]); i++) {
		size_t pl = strlen(scopes[i].prefix);
		if (n == pl + DE_CONTAINER_ID_LEN + sl && memcmp(c, scopes[i].prefix, pl) == 0 &&
		    memcmp(c + n - sl, scope, sl) == 0 && hex64(c + pl, DE_CONTAINER_ID_LEN)) {
			memcpy(id, c + pl, DE_CONTAINER_ID_LEN);
			id[DE_CONTAINER_ID_LEN] = '\0';
			*runtime = scopes[i].runtime;
			return true;
		}
	}
	/* the systemd driver's "<slice>:cri-containerd:<id>" (and cri-o's, docker's) */
	if (n > DE_CONTAINER_ID_LEN + 1 && c[n - DE_CONTAINER_ID_LEN - 1] == ':' &&
	    hex64(c + n - DE_CONTAINER_ID_LEN, DE_CONTAINER_ID_LEN)) {
		static const struct {
			const char *tag, *runtime;
		} tags[] = {{":cri-containerd:", "containerd"},
			    {":crio:", "cri-o"},
			    {":docker:", "docker"},
			    {":libpod:", "podman"}};
		for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
			size_t tl = strlen(tags[i].tag);
			if (n >= DE_CONTAINER_ID_LEN + tl &&
			    memcmp(c + n - DE_CONTAINER_ID_LEN - tl, tags[i].tag, tl) == 0) {
				memcpy(id, c + n - DE_CONTAINER_ID_LEN, DE_CONTAINER_ID_LEN);
				id[DE_CONTAINER_ID_LEN] = '\0';
				*runtime = tags[i].runtime;
				return true;
			}
		}
	}
	if (hex64(c, n)) {
		/* cgroupfs layouts: /docker/<id>, /libpod_parent/libpod-..., or
		   kubepods/.../pod<uid>/<id> (containerd unless said otherwise) */
		if (pn == 6 && memcmp(prev, "docker", 6) == 0)
			*runtime = "docker";
		else if (kube)
			*runtime = "containerd";
		else
			return false;
		memcpy(id, c, DE_CONTAINER_ID_LEN);
		id[DE_CONTAINER_ID_LEN] = '\0';
		return true;
	}
	return false;
}

bool de_identity_container(const char *cgroup, char id[DE_CONTAINER_ID_LEN + 1],
			   const char **runtime)
{
	const char *p = cgroup, *prev = "";
	size_t pn = 0;
	bool kube, found = false;

	if (!cgroup)
		return false;
	kube = strstr(cgroup, "kubepods") != NULL;
	while (*p) {
		const char *s = strchr(p, '/');
		size_t n = s ? (size_t)(s - p) : strlen(p);
		/* the innermost container wins (nested runtimes) */
		if (n && component(p, n, kube, prev, pn, id, runtime))
			found = true;
		prev = p;
		pn = n;
		p += n;
		if (*p == '/')
			p++;
	}
	return found;
}

/* ---- environment ------------------------------------------------------------ */

int de_identity_env(const char *env, size_t n, const char *const *names, size_t nnames, bool mask,
		    const char *const *flags, size_t nflags, char **out, bool *truncated)
{
	struct de_buf b = DE_BUF_INIT(nnames * (DE_ENV_VALUE_MAX * 2 + 256) + 1);
	int rc = 0;

	*out = NULL;
	*truncated = false;
	for (size_t k = 0; k < nnames; k++) {
		size_t nl = strlen(names[k]);
		const char *val = NULL;
		size_t vl = 0;

		for (size_t at = 0; at < n;) {
			const char *e = env + at, *nul = memchr(e, '\0', n - at);
			size_t el = nul ? (size_t)(nul - e) : n - at;
			if (el > nl && e[nl] == '=' && memcmp(e, names[k], nl) == 0) {
				val = e + nl + 1;
				vl = el - nl - 1;
				break;
			}
			at += el + 1;
		}
		if (!val)
			continue;
		if (vl > DE_ENV_VALUE_MAX) {
			vl = DE_ENV_VALUE_MAX;
			*truncated = true;
		}
		/* the value alone, masked as an argument NAME=VALUE would be */
		char *arg = malloc(nl + 1 + vl + 1);
		if (!arg) {
			rc = -ENOMEM;
			goto out;
		}
		memcpy(arg, names[k], nl);
		arg[nl] = '=';
		memcpy(arg + nl + 1, val, vl);
		arg[nl + 1 + vl] = '\0';
		if (mask) {
			char *argv[2] = {(char *)"env", arg};
			if (de_mask_argv(argv, 2, flags, nflags) < 0) {
				free(argv[1]);
				rc = -ENOMEM;
				goto out;
			}
			arg = argv[1];
		}
		if (b.len)
			rc = de_buf_append(&b, "\n", 1);
		for (const char *q = arg; rc == 0 && *q; q++) {
			if (*q == '\n')
				rc = de_buf_append(&b, "\\n", 2);
			else if (*q == '\\')
				rc = de_buf_append(&b, "\\\\", 2);
			else
				rc = de_buf_append(&b, q, 1);
		}
		free(arg);
		if (rc < 0)
			goto out;
	}
	if (b.len) {
		*out = de_buf_steal(&b);
		return 0;
	}
out:
	de_buf_free(&b);
	return rc < 0 ? -ENOMEM : 0;
}

/* ---- user and group names ------------------------------------------------------- */

struct ident {
	uint32_t id;
	int64_t at; /* when it was looked up */
	char *name; /* NULL: the id has no name */
};

struct idtab {
	struct ident *v;
	size_t n;
};

struct de_idcache {
	size_t max;
	int64_t ttl_ms;
	struct idtab users, groups;
	uint64_t misses;
};

int de_idcache_new(size_t max, int64_t ttl_ms, struct de_idcache **out)
{
	struct de_idcache *c = calloc(1, sizeof(*c));

	if (!c || !(c->users.v = calloc(max ? max : 1, sizeof(struct ident))) ||
	    !(c->groups.v = calloc(max ? max : 1, sizeof(struct ident)))) {
		if (c)
			free(c->users.v);
		free(c);
		return -ENOMEM;
	}
	c->max = max ? max : 1;
	c->ttl_ms = ttl_ms;
	*out = c;
	return 0;
}

static void tab_clear(struct idtab *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].name);
	t->n = 0;
}

void de_idcache_free(struct de_idcache *c)
{
	if (!c)
		return;
	tab_clear(&c->users);
	tab_clear(&c->groups);
	free(c->users.v);
	free(c->groups.v);
	free(c);
}

uint64_t de_idcache_misses(const struct de_idcache *c)
{
	return c->misses;
}

/* Ask the system: a strdup'd name, or NULL (none, or ENOMEM). */
static char *system_name(bool user, uint32_t id)
{
	char buf[4096], *name = NULL;

	if (user) {
		struct passwd pw, *res = NULL;
		if (getpwuid_r((uid_t)id, &pw, buf, sizeof(buf), &res) == 0 && res)
			name = strdup(res->pw_name);
	} else {
		struct group gr, *res = NULL;
		if (getgrgid_r((gid_t)id, &gr, buf, sizeof(buf), &res) == 0 && res)
			name = strdup(res->gr_name);
	}
	return name;
}

static const char *lookup(struct de_idcache *c, struct idtab *t, bool user, uint32_t id)
{
	int64_t now = de_mono_ms();
	struct ident *e = NULL;

	/* a handful of ids on any host: a linear scan of a small table */
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].id == id) {
			e = &t->v[i];
			break;
		}
	if (e && now - e->at < c->ttl_ms)
		return e->name;
	c->misses++;
	if (!e) {
		if (t->n == c->max)
			tab_clear(t);
		e = &t->v[t->n++];
		e->name = NULL;
	}
	free(e->name);
	e->id = id;
	e->at = now;
	e->name = system_name(user, id);
	return e->name;
}

const char *de_idcache_user(struct de_idcache *c, uint32_t uid)
{
	return lookup(c, &c->users, true, uid);
}

const char *de_idcache_group(struct de_idcache *c, uint32_t gid)
{
	return lookup(c, &c->groups, false, gid);
}
