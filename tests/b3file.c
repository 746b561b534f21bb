/*
 * b3file.c — test helper (not installed, not a user command): hash a file
 * with BLAKE3 under one forced implementation and print the digest the way
 * b3sum does ("<hex>  <path>"), so tests/integration_blake3.sh can compare
 * each SIMD path with the b3sum tool.
 *
 *   b3file portable|sse41|avx2|avx512|auto FILE
 *
 * Exit 0; 2 when the CPU lacks the implementation (the script skips it);
 * 1 on any other failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemoneye/blake3.h"

int main(int argc, char **argv)
{
	static uint8_t buf[1 << 16];
	struct de_blake3_hasher h;
	uint8_t out[DE_BLAKE3_OUT_LEN];
	enum de_blake3_impl impl = DE_BLAKE3_IMPL_MAX;
	ssize_t n;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: b3file portable|sse41|avx2|avx512|auto FILE\n");
		return 1;
	}
	for (int i = 0; i < DE_BLAKE3_IMPL_MAX; i++)
		if (strcmp(argv[1], de_blake3_impl_name((enum de_blake3_impl)i)) == 0)
			impl = (enum de_blake3_impl)i;
	int rc = de_blake3_force_impl(impl);
	if (rc == -ENOTSUP)
		return 2;
	if (rc < 0) {
		fprintf(stderr, "b3file: unknown implementation '%s'\n", argv[1]);
		return 1;
	}
	if ((fd = open(argv[2], O_RDONLY | O_CLOEXEC)) < 0) {
		perror(argv[2]);
		return 1;
	}
	de_blake3_init(&h);
	/* odd read sizes on purpose: updates that split chunks */
	size_t want = sizeof(buf) - 3;
	while ((n = read(fd, buf, want)) > 0) {
		de_blake3_update(&h, buf, (size_t)n);
		want = want == sizeof(buf) - 3 ? sizeof(buf) : sizeof(buf) - 3;
	}
	close(fd);
	if (n < 0) {
		perror(argv[2]);
		return 1;
	}
	de_blake3_finalize(&h, out, sizeof(out));
	for (size_t i = 0; i < sizeof(out); i++)
		printf("%02x", out[i]);
	printf("  %s\n", argv[2]);
	return 0;
}
