/*
 * error.h — the one error type of libdaemoneye.
 *
 * Every fallible library function returns 0 on success or a negative
 * errno-style code, and, when the caller passes a non-NULL `struct de_error`,
 * fills it with a category from the seed API and a message a user can act on
 * (what failed, where, and usually what to do).  Library code never logs and
 * never exits: the programs decide how to report, using de_error_exit_code()
 * for a sysexits(3) status.
 */
#ifndef DAEMONEYE_ERROR_H
#define DAEMONEYE_ERROR_H

#include <stddef.h>

/* The seed's error categories. */
enum de_error_category {
	DE_ERR_NONE = 0,
	DE_ERR_CONFIGURATION, /* ConfigurationError */
	DE_ERR_DATABASE,      /* DatabaseError */
	DE_ERR_DETECTION,     /* DetectionError */
	DE_ERR_ALERTING,      /* AlertingError */
	DE_ERR_CRYPTO,	      /* CryptoError */
	DE_ERR_VALIDATION,    /* ValidationError */
	DE_ERR_IO,	      /* IoError */
	DE_ERR_CATEGORY_MAX
};

#define DE_ERROR_MSG_MAX 1024

struct de_error {
	enum de_error_category category; /* DE_ERR_NONE when no error */
	int code;			 /* positive errno value (EINVAL, ...) */
	char message[DE_ERROR_MSG_MAX];	 /* NUL-terminated, human readable */
};

/*
 * Fill *err (if non-NULL) and return -code.  `code` is a positive errno
 * value; 0 is turned into EINVAL so that a set error is never "success".
 */
int de_error_set(struct de_error *err, enum de_error_category cat, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * Prefix the message already in *err with more context ("loading X: ").
 * Returns -err->code so it can be used in a return statement.
 */
int de_error_prefix(struct de_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#if defined(__clang_analyzer__) && !defined(DE_ERROR_DEFINING)
/*
 * For clang-tidy's static analyzer only (never compiled into a program): it
 * reads one file at a time and cannot see error.c, so it would follow the
 * error paths as if de_error_set or de_error_prefix could return 0 (and
 * report the outputs those paths leave unset).  This tells it what error.c
 * guarantees: both return a negative value.
 */
static inline int de_error_negative_(int rc)
{
	if (rc >= 0)
		__builtin_unreachable();
	return rc;
}
#define de_error_set(...)    de_error_negative_((de_error_set)(__VA_ARGS__))
#define de_error_prefix(...) de_error_negative_((de_error_prefix)(__VA_ARGS__))
#endif

/* Reset *err to "no error". Accepts NULL. */
void de_error_clear(struct de_error *err);

/* "ConfigurationError", "DatabaseError", ... ; "None" for DE_ERR_NONE. */
const char *de_error_category_name(enum de_error_category cat);

/*
 * Map an error to a sysexits(3) status: configuration 78, validation 65,
 * I/O 74 (66 for a missing input, 77 for permission), database 74,
 * detection 65, alerting 69, crypto 65.  0 for no error.
 */
int de_error_exit_code(const struct de_error *err);

#endif
