/*
 * testrecord.h — a process record with every field set and bytes that are
 * not UTF-8 (so every "_raw" twin and escape path is taken), for the tests
 * that need one (the allocation-failure tests of the record JSON and of
 * the IPC frames).  It is made from JSON text through
 * de_process_record_from_json, then given collector facts by hand when
 * asked: the text is the independent description of what the record holds.
 * Header-only: each test program is one translation unit.
 */
#ifndef DAEMONEYE_TESTRECORD_H
#define DAEMONEYE_TESTRECORD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/record.h"

/* name "we\xffrd", argv {"/bin/sh", "-c", "\xfe\xff"} as their _raw twins say */
static const char testrecord_json[] =
	"{\"id\": \"0b8f3a52-3c1e-4a8e-9f3c-2d1b7c9e4a10\", \"scan_id\": 7,"
	" \"collection_time\": 1764060360123, \"pid\": 4242, \"ppid\": 1,"
	" \"name\": \"we\\ufffdrd\", \"name_raw\": \"d2X/cmQ=\","
	" \"executable_path\": \"/tmp/my prog (deleted)\","
	" \"command_line\": [\"/bin/sh\", \"-c\", \"\\ufffd\\ufffd\"],"
	" \"command_line_raw\": [\"L2Jpbi9zaA==\", \"LWM=\", \"/v8=\"],"
	" \"start_time\": 1764060300000, \"cpu_usage\": 12.5, \"memory_usage\": 123456789,"
	" \"executable_hash\": "
	"\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\","
	" \"hash_algorithm\": \"sha256\", \"user_id\": \"1000\", \"accessible\": true,"
	" \"file_exists\": false, \"platform_data\": {\"state\": \"S\", \"threads\": 3}}";

/*
 * Fill *r (zeroed first) from testrecord_json; with facts, replace its
 * platform_data by collector facts (a cgroup that is not UTF-8, a hash
 * error) plus one extra member.  0, or -1 when something failed.
 */
__attribute__((unused)) static int testrecord_make(struct de_process_record *r, bool facts)
{
	json_t *j = json_loads(testrecord_json, 0, NULL);
	struct de_linux_facts *f = &r->facts;
	int rc;

	memset(r, 0, sizeof(*r));
	if (!j)
		return -1;
	rc = de_process_record_from_json(j, r, NULL);
	json_decref(j);
	if (rc < 0 || !facts)
		return rc < 0 ? -1 : 0;
	json_decref(r->platform_data);
	r->platform_data = json_pack("{s:s}", "container", "c0ffee");
	f->present = true;
	f->has_ids = true;
	f->euid = 1000;
	f->egid = 1000;
	f->cgroup = strdup("/user.slice/\xff\"q\x01");
	f->has_exe = true;
	f->exe_deleted = true;
	f->has_image = true;
	f->exe_inode = 1234567;
	f->exe_device = 2049;
	f->exe_size = 4096;
	f->hash_error = strdup("cannot open: \xc3\xa9\n");
	f->state = 'S';
	f->threads = 3;
	f->pgrp = 4242;
	f->session = 1;
	f->nice = -5;
	f->utime_ticks = 5;
	f->stime_ticks = 6;
	f->start_ticks = 1234567;
	f->cmdline_masked = 1;
	return r->platform_data && f->cgroup && f->hash_error ? 0 : -1;
}

#endif
