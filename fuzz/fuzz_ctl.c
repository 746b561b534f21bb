/*
 * fuzz_ctl.c — arbitrary bytes as one control-channel packet.  The first
 * byte picks the direction (bit 0) and how many descriptors "came" with it
 * (bits 1-2); the rest is the packet.  The decoder must refuse it or return
 * a message that encodes back to the very same bytes; a SIGN_REQUEST's
 * body also goes through the parent's note check.  Nothing may crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/ctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct de_ctl_msg m;
	uint8_t buf[DE_CTL_MAX_MSG];
	size_t len;

	if (size < 1)
		return 0;
	enum de_ctl_dir dir = (data[0] & 1) ? DE_CTL_TO_WORKER : DE_CTL_TO_PARENT;
	size_t nfds = (data[0] >> 1) & 3;
	if (de_ctl_decode(data + 1, size - 1, nfds, dir, &m, NULL) < 0)
		return 0;
	/* the descriptors would be placed here; stand-ins keep encode's count check */
	m.nfds = nfds;
	if (de_ctl_encode(&m, buf, sizeof(buf), &len, NULL) != 0 || len != size - 1 ||
	    memcmp(buf, data + 1, len) != 0)
		abort();
	if (m.type == DE_CTL_SIGN_REQUEST)
		(void)de_ctl_check_note_body(m.text, m.text_len, NULL, NULL);
	for (int s = 0; s < DE_CTL_STATE_MAX; s++)
		(void)de_ctl_allowed(m.type, (enum de_ctl_state)s);
	return 0;
}
