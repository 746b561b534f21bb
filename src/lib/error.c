/*
 * error.c — the library's error type: a category, an errno code and a
 * message.  See include/daemoneye/error.h for the contract.
 */
#define DE_ERROR_DEFINING /* the functions themselves, not error.h's analyzer hint */
#include "daemoneye/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

static const char *const category_names[DE_ERR_CATEGORY_MAX] = {
	[DE_ERR_NONE] = "None",
	[DE_ERR_CONFIGURATION] = "ConfigurationError",
	[DE_ERR_DATABASE] = "DatabaseError",
	[DE_ERR_DETECTION] = "DetectionError",
	[DE_ERR_ALERTING] = "AlertingError",
	[DE_ERR_CRYPTO] = "CryptoError",
	[DE_ERR_VALIDATION] = "ValidationError",
	[DE_ERR_IO] = "IoError",
};

int de_error_set(struct de_error *err, enum de_error_category cat, int code, const char *fmt, ...)
{
	if (code <= 0)
		code = EINVAL;
	if (err) {
		va_list ap;
		err->category = cat;
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return -code;
}

int de_error_prefix(struct de_error *err, const char *fmt, ...)
{
	char prefix[DE_ERROR_MSG_MAX];
	char old[DE_ERROR_MSG_MAX];
	va_list ap;

	if (!err)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->message, sizeof(old));
	snprintf(err->message, sizeof(err->message), "%s%s", prefix, old);
	return -(err->code > 0 ? err->code : EINVAL);
}

void de_error_clear(struct de_error *err)
{
	if (!err)
		return;
	err->category = DE_ERR_NONE;
	err->code = 0;
	err->message[0] = '\0';
}

const char *de_error_category_name(enum de_error_category cat)
{
	if ((int)cat < 0 || cat >= DE_ERR_CATEGORY_MAX)
		return "UnknownError";
	return category_names[cat];
}

int de_error_exit_code(const struct de_error *err)
{
	if (!err || err->category == DE_ERR_NONE)
		return 0;
	switch (err->category) {
	case DE_ERR_CONFIGURATION:
		return EX_CONFIG;
	case DE_ERR_VALIDATION:
	case DE_ERR_DETECTION:
	case DE_ERR_CRYPTO:
		return EX_DATAERR;
	case DE_ERR_ALERTING:
		return EX_UNAVAILABLE;
	case DE_ERR_IO:
	case DE_ERR_DATABASE:
		if (err->code == ENOENT)
			return EX_NOINPUT;
		if (err->code == EACCES || err->code == EPERM)
			return EX_NOPERM;
		return EX_IOERR;
	default:
		return EX_SOFTWARE;
	}
}
