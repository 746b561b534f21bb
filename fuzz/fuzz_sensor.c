/*
 * fuzz_sensor.c — arbitrary bytes as one record of the kernel sensor's ring
 * buffer (de_bpfevents_parse) and as the text of /proc/net/tcp and tcp6
 * (de_netconn_parse_table).  Neither may crash or read past its input; a
 * parsed exec's strings must lie in the scratch or the record, NUL-ended.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/bpfevents.h"
#include "daemoneye/identity.h"
#include "daemoneye/netconn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int row(void *ctx, const struct de_connection *c, bool listen)
{
	(void)listen;
	if (c->family != 4 && c->family != 6)
		abort();
	++*(size_t *)ctx;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char scratch[3 * DE_BPF_PATH_TEXT];
	static const struct de_bpf_clock clk = {1700000000000, 1700000000000000000, 100};
	struct de_process_event e;
	struct de_kernel_exec k;
	size_t rows = 0;
	/* a copy of exactly size bytes, so reading past it is caught */
	uint8_t *rec = malloc(size ? size : 1);

	if (!rec)
		return 0;
	memcpy(rec, data, size);
	if (de_bpfevents_parse(rec, size, &clk, &e, &k, scratch, sizeof(scratch)) == 0 && e.kexec) {
		const char *s[] = {k.exe, k.cwd, k.cgroup};
		for (int i = 0; i < 3; i++)
			if (s[i] && strlen(s[i]) >= DE_BPF_PATH_TEXT)
				abort();
		if (k.argv_len &&
		    (k.argv < (const char *)rec || k.argv + k.argv_len > (const char *)rec + size))
			abort();
		if (k.env_len &&
		    (k.env < (const char *)rec || k.env + k.env_len > (const char *)rec + size))
			abort();
		/* the kept strings as de_collector_exec reads them */
		static const char *const names[] = {"LD_PRELOAD", "DE"};
		char *env = NULL;
		bool cut;
		if (de_identity_env(k.env, k.env_len, names, 2, true, NULL, 0, &env, &cut) == 0)
			free(env);
	}
	de_netconn_parse_table((const char *)rec, size, 4, row, &rows);
	de_netconn_parse_table((const char *)rec, size, 6, row, &rows);
	free(rec);
	return 0;
}
