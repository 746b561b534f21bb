/*
 * failalloc.h — allocation-failure tests in the SQLite manner: run an
 * operation once to count the allocations a successful run makes (M), then
 * run it M more times, failing the 1st, the 2nd, ... the Mth allocation,
 * and check after each run that nothing crashed, nothing leaked, and the
 * operation either failed cleanly (an error with a message, outputs
 * untouched) or recovered with the right result.  How allocations are made
 * to fail (our code, jansson, libyaml, SQLite, protobuf-c and libc's own
 * allocating functions alike) is explained atop tests/failalloc.c.
 *
 * A test program links tests/failalloc.c (DE_ALLOC_TESTS in
 * tests/CMakeLists.txt), describes each operation as a struct fa_case and
 * calls fa_run() from a cmocka test:
 *
 *   static int run(void *ctx, struct de_error *err)     the code under test
 *   static void check(void *ctx, int rc, const struct de_error *err)
 *       rc == 0: assert the result is right; rc < 0: assert the outputs
 *       are untouched; then release whatever run() made
 *
 * run() must start from the same state every time (setup() makes it, or
 * check() restores it), so that the Nth allocation of a failing run is the
 * Nth allocation of the counting run.
 */
#ifndef DAEMONEYE_TEST_FAILALLOC_H
#define DAEMONEYE_TEST_FAILALLOC_H

#include <stdbool.h>

#include "daemoneye/error.h"

struct fa_case {
	const char *name; /* printed in the summary and in failures */
	void *ctx;	  /* passed to the callbacks */
	/* Optional: fresh inputs for one run (not counted, never failed). */
	void (*setup)(void *ctx);
	/* The operation: 0, or a negative errno (err filled when has_err). */
	int (*run)(void *ctx, struct de_error *err);
	/* Judge one run and release what it made (not counted, never failed). */
	void (*check)(void *ctx, int rc, const struct de_error *err);
	bool has_err;  /* run() reports through err (else only the return value) */
	int want_code; /* the errno a failed run must report; 0: ENOMEM */
};

/* What fa_run() did, for tests that want to assert more. */
struct fa_stats {
	unsigned long allocs;	 /* allocations the successful run makes (M) */
	unsigned long runs;	 /* failing runs made: always M */
	unsigned long errors;	 /* runs that returned a clean error */
	unsigned long recovered; /* runs that succeeded despite the failure */
	bool skipped;		 /* over FAILALLOC_MAX_ALLOCS: only counted */
};

/* Some failing run returned an error (or the loop was skipped). */
static inline bool fa_some_errors(struct fa_stats st)
{
	return st.skipped || st.errors > 0;
}

/*
 * Run the case as described above; any crash, leak, unreached allocation,
 * error without a message or wrong result fails the calling cmocka test.
 * Prints one summary line per case.  Environment:
 *   FAILALLOC_MAX_ALLOCS=N   skip (with a message) cases whose successful
 *                            run makes more than N allocations: the
 *                            valgrind runs set it, the loop being quadratic
 *   FAILALLOC_KEEP_GOING=1   list every failing run that goes wrong (a
 *                            wrong error, a leak) instead of stopping at
 *                            the first; the case still fails at its end
 */
struct fa_stats fa_run(const struct fa_case *c);

/* ---- the primitives fa_run() is made of --------------------------------- */

/* Count allocations from now on; fail the nth (1-based) of them, 0: none. */
void fa_arm(unsigned long n);
/* Stop failing (counting goes on). */
void fa_disarm(void);
/* Allocation calls since the last fa_arm(). */
unsigned long fa_calls(void);
/* Whether the armed allocation was reached (and failed) since fa_arm(). */
bool fa_fired(void);
/* Blocks allocated and not yet freed, as the interposer counts them. */
long fa_live(void);
/*
 * True when the interposer sees the allocations of libc's own functions
 * and of the shared libraries (checked with asprintf and jansson); fa_run
 * fails the test when it does not, since nothing would then be covered.
 */
bool fa_interposed(void);

#endif
