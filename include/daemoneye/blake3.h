/*
 * blake3.h — BLAKE3, the project's own implementation (DESIGN.md decision
 * 4: Debian 12 packages none), written from the BLAKE3 specification.
 *
 * Modes: hash, keyed_hash (32-byte key) and derive_key (context string +
 * key material); every output is extendable (XOF: any length, from any
 * offset).  Streaming: init, update any number of times with any split,
 * finalize (which does not consume the hasher: more updates may follow).
 *
 * Implementations: portable C, SSE4.1 (4 chunks or parents at a time),
 * AVX2 (8 at a time) and AVX-512VL (8 at a time, one-instruction
 * rotations), chosen at run time by CPU feature; tests and the
 * benchmark force one with de_blake3_force_impl().  All give the same bytes.
 *
 * Memory: no function allocates; a hasher is a plain struct (~1.9 KiB) the
 * caller owns.  Keyed and derive_key hashers hold key material: wipe them
 * with de_blake3_hasher_clear() when done.  Thread safety: a hasher is used
 * by one thread at a time; the implementation choice is process-wide.
 */
#ifndef DAEMONEYE_BLAKE3_H
#define DAEMONEYE_BLAKE3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DE_BLAKE3_OUT_LEN   32	 /* default output length */
#define DE_BLAKE3_KEY_LEN   32	 /* keyed_hash key length */
#define DE_BLAKE3_BLOCK_LEN 64	 /* compression block */
#define DE_BLAKE3_CHUNK_LEN 1024 /* leaf of the tree */
/* Entries of the chaining-value stack: enough for 2^64 bytes of input. */
#define DE_BLAKE3_MAX_DEPTH 54

enum de_blake3_impl {
	DE_BLAKE3_AUTO = 0, /* the best the CPU has (the default) */
	DE_BLAKE3_PORTABLE,
	DE_BLAKE3_SSE41,
	DE_BLAKE3_AVX2,
	DE_BLAKE3_AVX512, /* 16 lanes in 512-bit registers (AVX-512F and VL) */
	DE_BLAKE3_IMPL_MAX
};

/* The chunk being filled (private to blake3.c; fields described there). */
struct de_blake3_chunk {
	uint32_t cv[8];
	uint64_t counter;
	uint8_t buf[DE_BLAKE3_BLOCK_LEN];
	uint8_t buf_len;
	uint8_t blocks_compressed;
	uint8_t flags;
};

/* A streaming hasher.  Treat as opaque; allocate anywhere. */
struct de_blake3_hasher {
	uint32_t key[8];			   /* key words (IV, key, or context key) */
	struct de_blake3_chunk chunk;		   /* the current (last) chunk */
	uint8_t cv_stack_len;			   /* entries in cv_stack */
	uint8_t cv_stack[DE_BLAKE3_MAX_DEPTH][32]; /* finished subtrees, largest first */
};

/* Start a hasher in hash mode. */
void de_blake3_init(struct de_blake3_hasher *h);
/* Start a hasher in keyed_hash mode with a 32-byte key (copied). */
void de_blake3_init_keyed(struct de_blake3_hasher *h, const uint8_t key[DE_BLAKE3_KEY_LEN]);
/*
 * Start a hasher in derive_key mode: `context` (context_len bytes; the spec
 * wants a hardcoded, globally unique, application-specific string) is
 * hashed first; update() then takes the key material.
 */
void de_blake3_init_derive_key(struct de_blake3_hasher *h, const void *context, size_t context_len);
/* Add len bytes (any split of the input gives the same result). */
void de_blake3_update(struct de_blake3_hasher *h, const void *in, size_t len);
/*
 * Write out_len bytes of output (any length: 32 is the default hash) from
 * byte offset `seek` of the extendable output.  The hasher is unchanged.
 */
void de_blake3_finalize_seek(const struct de_blake3_hasher *h, uint64_t seek, uint8_t *out,
			     size_t out_len);
/* de_blake3_finalize_seek() from offset 0. */
void de_blake3_finalize(const struct de_blake3_hasher *h, uint8_t *out, size_t out_len);
/* Wipe the hasher (key material included) with explicit_bzero.  Accepts NULL. */
void de_blake3_hasher_clear(struct de_blake3_hasher *h);

/* One-shot forms: 32 bytes of output. */
void de_blake3_hash(const void *in, size_t len, uint8_t out[DE_BLAKE3_OUT_LEN]);
void de_blake3_keyed_hash(const uint8_t key[DE_BLAKE3_KEY_LEN], const void *in, size_t len,
			  uint8_t out[DE_BLAKE3_OUT_LEN]);
/* derive_key: out_len bytes of key derived from a NUL-terminated context. */
void de_blake3_derive_key(const char *context, const void *material, size_t len, uint8_t *out,
			  size_t out_len);

/*
 * Use one implementation from now on, process-wide (DE_BLAKE3_AUTO: back to
 * the best available).  0, or -ENOTSUP when this CPU (or build) lacks it,
 * -EINVAL for a value out of range; on failure nothing changes.
 */
int de_blake3_force_impl(enum de_blake3_impl impl);
/* Whether this CPU can run `impl` (AUTO and PORTABLE: always). */
bool de_blake3_impl_supported(enum de_blake3_impl impl);
/* The implementation in use now (never AUTO). */
enum de_blake3_impl de_blake3_impl_active(void);
/* "auto", "portable", "sse41", "avx2", "avx512"; "?" out of range. */
const char *de_blake3_impl_name(enum de_blake3_impl impl);

#endif
