/*
 * facts.h — the one list of the members a record's Linux facts put in
 * platform_data (record.h: de_linux_facts_each), as an inline function for
 * the library's own hot paths: inlined with a known visitor, the visits are
 * direct calls the compiler can fold (the store sums the facts of every
 * record of every scan).  Private to src/lib.
 */
#ifndef DAEMONEYE_FACTS_H
#define DAEMONEYE_FACTS_H

#include <string.h>

#include "daemoneye/record.h"

static inline __attribute__((always_inline)) int
facts_each(const struct de_linux_facts *f, int (*fn)(const struct de_fact *m, void *ctx), void *ctx)
{
	struct de_fact m;
	int rc;

#define VISIT(k, ...)                                                                              \
	do {                                                                                       \
		m = (struct de_fact){.key = k, .key_len = sizeof(k) - 1, __VA_ARGS__};             \
		if ((rc = fn(&m, ctx)) != 0)                                                       \
			return rc;                                                                 \
	} while (0)
#define INT(k, v)	   VISIT(k, .kind = DE_FACT_INT, .i = (int64_t)(v))
#define BOOL(k, v)	   VISIT(k, .kind = DE_FACT_BOOL, .b = (v))
#define TEXT(k, p, len, r) VISIT(k, .kind = DE_FACT_TEXT, .s = (p), .n = (len), .raw = (r))
	if (f->has_ids) {
		INT("euid", f->euid);
		INT("egid", f->egid);
	}
	if (f->has_real_ids) {
		INT("uid", f->uid);
		INT("gid", f->gid);
	}
	if (f->cgroup)
		TEXT("cgroup", f->cgroup, strlen(f->cgroup), true);
	if (f->has_exe) {
		BOOL("exe_deleted", f->exe_deleted);
		BOOL("exe_replaced", f->exe_replaced);
		if (f->has_image) {
			INT("exe_inode", f->exe_inode);
			INT("exe_device", f->exe_device);
			INT("exe_size", f->exe_size);
		}
		if (f->hash_error)
			TEXT("hash_error", f->hash_error, strlen(f->hash_error), false);
	}
	TEXT("state", &f->state, f->state ? 1 : 0, false);
	INT("threads", f->threads);
	INT("pgrp", f->pgrp);
	INT("session", f->session);
	INT("tty_nr", f->tty_nr);
	INT("nice", f->nice);
	BOOL("kernel_thread", f->kernel_thread);
	INT("utime_ticks", f->utime_ticks);
	INT("stime_ticks", f->stime_ticks);
	INT("start_ticks", f->start_ticks);
	if (f->cmdline_truncated)
		BOOL("cmdline_truncated", true);
	if (f->cmdline_masked > 0)
		INT("cmdline_masked", f->cmdline_masked);
#undef TEXT
#undef BOOL
#undef INT
#undef VISIT
	return 0;
}

#endif
