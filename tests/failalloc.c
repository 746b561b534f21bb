/*
 * failalloc.c — the allocation-failure harness (see failalloc.h): an
 * interposer of the C allocator, defined in the test executable, and the
 * SQLite-manner loop over it.
 *
 * Why an interposer.  The failures must reach every allocation the code
 * under test makes, and most of them are not ours: jansson builds the
 * trees, libyaml the parser's buffers and events, SQLite its connections
 * and statements, protobuf-c the unpacked frames, and libc itself
 * allocates inside strdup, asprintf, vasprintf, open_memstream and
 * scandir.  The libraries' own hooks do not cover that: jansson has
 * json_set_alloc_funcs and SQLite SQLITE_CONFIG_MALLOC, but libyaml and
 * libc have none, and protobuf-c's allocator is per call.  An executable's
 * symbols come first in the dynamic linker's search order, so malloc,
 * calloc, realloc, free (and the aligned and string variants) defined here
 * and exported (tests/CMakeLists.txt links with --export-dynamic-symbol)
 * are what every shared library and libc's own functions call.  Each
 * allocation call is counted; the armed one returns NULL with errno
 * ENOMEM; every other is forwarded to the next definition in search order,
 * found with dlsym(RTLD_NEXT): glibc's allocator, or in the sanitizer build
 * AddressSanitizer's (so ASan still checks every block, and LeakSanitizer
 * still reports leaks at exit), or under valgrind glibc's functions, which
 * memcheck has redirected to its own.  By default valgrind would also
 * replace the allocator this executable exports, which would take the
 * interposer out of the way (fa_interposed() then fails the test); the
 * valgrind runs of these programs pass --soname-synonyms=somalloc=
 * nouserintercepts so that only the system libraries' are replaced.
 * strdup and strndup are defined here too: ASan intercepts them with its
 * own allocator, which would bypass the count in that build only.
 *
 * While dlsym resolves the real functions it may itself allocate: those
 * few calls are served from a static arena, never freed.
 *
 * What "no leak" means here: fa_live() counts blocks handed out minus
 * blocks freed; fa_run() requires it back at its starting value after each
 * run.  valgrind (the valgrind_* tests) and LeakSanitizer (the sanitizer
 * build) check the same programs again with their own bookkeeping.
 *
 * This file is compiled with -fno-builtin (the compiler must not turn the
 * bodies below into calls of the functions they define) and without
 * sanitizers (AddressSanitizer's start-up calls malloc, and so this code,
 * before its shadow memory exists).
 */
#include "failalloc.h"

#include <dlfcn.h>
#include <malloc.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

/* ---- the interposer ------------------------------------------------------ */

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);

static unsigned long calls;   /* allocation calls since fa_arm() */
static unsigned long fail_at; /* the call to fail (1-based), 0: none */
static bool fired;	      /* fail_at was reached */
static long live;	      /* blocks handed out and not freed */

/* Served while dlsym runs (it may allocate before the real functions are known). */
static _Alignas(max_align_t) unsigned char arena[16384];
static size_t arena_used;
static bool resolving;

static bool in_arena(const void *p)
{
	return (const unsigned char *)p >= arena &&
	       (const unsigned char *)p < arena + sizeof(arena);
}

static void *arena_alloc(size_t n)
{
	size_t a = _Alignof(max_align_t);
	size_t need = (n + a - 1) / a * a;
	void *p;

	if (need > sizeof(arena) - arena_used)
		return NULL;
	p = arena + arena_used;
	arena_used += need;
	return p; /* zero: the arena is never reused */
}

/* dlsym returns object pointers; the functions are reached through memcpy. */
#define RESOLVE(var, name)                                                                         \
	do {                                                                                       \
		void *sym_ = dlsym(RTLD_NEXT, name);                                               \
		memcpy(&(var), &sym_, sizeof(sym_));                                               \
	} while (0)

static void resolve(void)
{
	if (real_free || resolving)
		return;
	resolving = true;
	RESOLVE(real_malloc, "malloc");
	RESOLVE(real_calloc, "calloc");
	RESOLVE(real_realloc, "realloc");
	RESOLVE(real_posix_memalign, "posix_memalign");
	RESOLVE(real_aligned_alloc, "aligned_alloc");
	RESOLVE(real_memalign, "memalign");
	RESOLVE(real_free, "free");
	resolving = false;
	if (!real_malloc || !real_calloc || !real_realloc || !real_free || !real_posix_memalign ||
	    !real_aligned_alloc || !real_memalign) {
		static const char msg[] = "failalloc: cannot find the real allocator\n";
		fwrite(msg, 1, sizeof(msg) - 1, stderr);
		abort();
	}
}

/* Count one allocation call; true when this one must fail. */
static bool should_fail(void)
{
	calls++;
	if (fail_at && calls == fail_at) {
		fired = true;
		errno = ENOMEM;
		return true;
	}
	return false;
}

static void *counted(void *p)
{
	if (p)
		live++;
	return p;
}

void *malloc(size_t n)
{
	if (!real_malloc) {
		resolve();
		if (resolving || !real_malloc)
			return arena_alloc(n);
	}
	if (should_fail())
		return NULL;
	return counted(real_malloc(n));
}

void *calloc(size_t n, size_t size)
{
	if (!real_calloc) {
		resolve();
		if (resolving || !real_calloc)
			return size && n > SIZE_MAX / size ? NULL : arena_alloc(n * size);
	}
	if (should_fail())
		return NULL;
	return counted(real_calloc(n, size));
}

void *realloc(void *p, size_t n)
{
	void *q;

	if (in_arena(p)) { /* a block from the arena moves to the real heap */
		size_t room = (size_t)(arena + sizeof(arena) - (unsigned char *)p);
		q = malloc(n);
		if (q)
			memcpy(q, p, n < room ? n : room);
		return q;
	}
	if (!p)
		return malloc(n);
	resolve();
	if (n == 0) { /* glibc frees the block: not an allocation */
		live--;
		return real_realloc(p, 0);
	}
	if (should_fail())
		return NULL;
	return real_realloc(p, n);
}

void *reallocarray(void *p, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, n * size);
}

void free(void *p)
{
	if (!p || in_arena(p))
		return;
	resolve();
	live--;
	real_free(p);
}

int posix_memalign(void **out, size_t align, size_t n)
{
	int rc;

	resolve();
	if (should_fail())
		return ENOMEM;
	rc = real_posix_memalign(out, align, n);
	if (rc == 0)
		live++;
	return rc;
}

void *aligned_alloc(size_t align, size_t n)
{
	resolve();
	if (should_fail())
		return NULL;
	return counted(real_aligned_alloc(align, n));
}

void *memalign(size_t align, size_t n)
{
	resolve();
	if (should_fail())
		return NULL;
	return counted(real_memalign(align, n));
}

char *strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	if (d)
		memcpy(d, s, n);
	return d;
}

char *strndup(const char *s, size_t max)
{
	size_t n = strnlen(s, max);
	char *d = malloc(n + 1);

	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

void fa_arm(unsigned long n)
{
	calls = 0;
	fired = false;
	fail_at = n;
}

void fa_disarm(void)
{
	fail_at = 0;
}

unsigned long fa_calls(void)
{
	return calls;
}

bool fa_fired(void)
{
	return fired;
}

long fa_live(void)
{
	return live;
}

bool fa_interposed(void)
{
	char *s = NULL;
	json_t *j;
	unsigned long before = calls;
	bool libc_seen, lib_seen;

	/* libc's own allocation, from inside libc */
	if (asprintf(&s, "%d", 42) < 0)
		return false;
	libc_seen = calls > before;
	free(s);
	/* a shared library's */
	before = calls;
	j = json_object();
	lib_seen = j && calls > before;
	json_decref(j);
	return libc_seen && lib_seen;
}

/* ---- the loop ------------------------------------------------------------ */

/* One run of the case with the nth allocation failing (0: none). */
static int run_once(const struct fa_case *c, unsigned long n, struct de_error *err,
		    unsigned long *ncalls, bool *hit)
{
	int rc;

	de_error_clear(err);
	if (c->setup)
		c->setup(c->ctx);
	fa_arm(n);
	rc = c->run(c->ctx, err);
	fa_disarm();
	*ncalls = fa_calls();
	*hit = fa_fired();
	return rc;
}

/* An environment variable as a number, 0 when unset. */
static unsigned long env_number(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? strtoul(v, NULL, 10) : 0;
}

/*
 * A problem with the nth failing run: fatal, unless FAILALLOC_KEEP_GOING
 * is set, which lists every one (and fails the test at the end of the
 * case) — for surveying code with many.
 */
static unsigned long problems;

__attribute__((format(printf, 1, 2))) static void problem(const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!env_number("FAILALLOC_KEEP_GOING"))
		fail_msg("%s", msg);
	print_error("%s\n", msg);
	problems++;
}

struct fa_stats fa_run(const struct fa_case *c)
{
	struct fa_stats st = {0};
	struct de_error err;
	int want = c->want_code ? c->want_code : ENOMEM;
	unsigned long ncalls, cap = env_number("FAILALLOC_MAX_ALLOCS");
	bool hit;
	long live0;
	int rc;

	if (!fa_interposed())
		fail_msg("%s: the allocator is not interposed (is failalloc.c linked with "
			 "--export-dynamic-symbol?): nothing would be tested",
			 c->name);

	/* once unarmed first: libraries' one-time setup (SQLite's
	   initialisation, libc's stdio) is then behind us */
	rc = run_once(c, 0, &err, &ncalls, &hit);
	if (rc < 0)
		fail_msg("%s: fails without any allocation failure: %d %s", c->name, rc,
			 err.message);
	c->check(c->ctx, rc, &err);

	/* the counting run */
	live0 = fa_live();
	rc = run_once(c, 0, &err, &st.allocs, &hit);
	if (rc < 0)
		fail_msg("%s: second run fails: %d %s", c->name, rc, err.message);
	c->check(c->ctx, rc, &err);
	if (fa_live() != live0)
		fail_msg("%s: the successful run leaks %ld blocks", c->name, fa_live() - live0);
	if (st.allocs == 0)
		fail_msg("%s: makes no allocation: nothing to test", c->name);
	if (cap && st.allocs > cap) {
		/* valgrind makes each run ~50x slower, and the loop is quadratic */
		print_message("%s: %lu allocations; not failed in turn here "
			      "(FAILALLOC_MAX_ALLOCS=%lu): a run without it fails each\n",
			      c->name, st.allocs, cap);
		st.skipped = true;
		return st;
	}

	problems = 0;
	for (unsigned long n = 1; n <= st.allocs; n++) {
		rc = run_once(c, n, &err, &ncalls, &hit);
		st.runs++;
		if (!hit)
			fail_msg("%s: allocation %lu of %lu was never reached (the run made %lu): "
				 "the runs are not alike",
				 c->name, n, st.allocs, ncalls);
		if (rc < 0) {
			st.errors++;
			if (c->has_err && (err.category == DE_ERR_NONE || !err.message[0]))
				problem("%s: allocation %lu of %lu failed: error %d without a "
					"message",
					c->name, n, st.allocs, rc);
			else if (c->has_err && rc != -err.code)
				problem("%s: allocation %lu of %lu failed: returned %d but err "
					"says %d (%s)",
					c->name, n, st.allocs, rc, err.code, err.message);
			else if (rc != -want)
				problem("%s: allocation %lu of %lu failed: reported as %s (%d), "
					"not %s: %s",
					c->name, n, st.allocs, strerror(-rc), rc, strerror(want),
					c->has_err ? err.message : "");
		} else {
			st.recovered++;
		}
		c->check(c->ctx, rc, &err);
		if (fa_live() != live0) {
			problem("%s: allocation %lu of %lu failed: %ld blocks leaked (%s)", c->name,
				n, st.allocs, fa_live() - live0,
				rc < 0 ? err.message : "the run succeeded");
			live0 = fa_live();
		}
	}
	if (problems)
		fail_msg("%s: %lu of %lu failing runs went wrong (listed above)", c->name, problems,
			 st.allocs);

	/* the count was exact: one more is never reached, and all is well */
	rc = run_once(c, st.allocs + 1, &err, &ncalls, &hit);
	if (hit || rc < 0 || ncalls != st.allocs)
		fail_msg("%s: a run makes %lu allocations, then %lu (rc %d): not deterministic",
			 c->name, st.allocs, ncalls, rc);
	c->check(c->ctx, rc, &err);
	if (fa_live() != live0)
		fail_msg("%s: the last run leaks %ld blocks", c->name, fa_live() - live0);

	print_message("%s: %lu allocations, each failed in turn: %lu clean errors, %lu "
		      "recovered\n",
		      c->name, st.allocs, st.errors, st.recovered);
	assert_int_equal(st.runs, st.allocs);
	assert_int_equal(st.errors + st.recovered, st.runs);
	return st;
}
