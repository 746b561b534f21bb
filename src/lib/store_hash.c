/*
 * store_hash.c — a record's two hashes (store_int.h: struct rec_sum): one
 * over the identity fields, whose change makes history, one over the
 * changing values, whose change only rewrites the snapshot row.  They are
 * stored with the row and compared by the diff, so a steady scan writes
 * nothing; changing what they cover or how needs a migration that sets
 * them NULL (one rewrite of the snapshot, no false history).
 *
 * platform_data is hashed member by member, the members' hashes summed, so
 * the order of keys does not matter; a record's collector facts (flat in
 * the struct) are summed to exactly what their JSON form would give, so a
 * store written from JSON records sees no change when facts arrive.
 * Hashing runs over every byte of every record of every scan: it is the
 * bulk of a steady scan's time.
 */
#include "store_int.h"

#include <errno.h>

#include <string.h>

#include "daemoneye/facts.h"
#include "daemoneye/text.h"

/*
 * What a platform_data member is to the hashes, from the facts list
 * (facts.h): a volatile fact goes into the changing-values hash (snapshot
 * update only), anything else into the identity hash (history).  The two
 * facts whose booleans have columns of their own are also noted.  Members
 * that are not facts (extras of a record read from JSON) are identity.
 */
enum pd_key { PD_IDENTITY, PD_VOLATILE, PD_EXE_DELETED, PD_EXE_REPLACED };

static enum pd_key fact_kind(int idx)
{
	if (idx == DE_FACT_exe_deleted)
		return PD_EXE_DELETED;
	if (idx == DE_FACT_exe_replaced)
		return PD_EXE_REPLACED;
	return idx >= 0 && de_linux_fact_info[idx].is_volatile ? PD_VOLATILE : PD_IDENTITY;
}

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

/*
 * Not a cryptographic hash: change detection within one host's snapshot,
 * one multiply per 8 bytes (this runs over every byte of every record of
 * every scan).  A collision would hide one change until the next one.
 */
#define HK 0x9E3779B97F4A7C15ull

/*
 * The last n < 8 bytes as memcpy into a zeroed word would give them, but
 * put together in registers: that memcpy compiles to byte stores and one
 * wide load of the same stack slot, a store-forwarding stall on every string.
 */
static inline uint64_t tail_bytes(const unsigned char *b, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	uint64_t w = 0;
	unsigned shift = 0;

	if (n & 4) {
		uint32_t x;
		memcpy(&x, b, 4);
		w = x;
		b += 4;
		shift = 32;
	}
	if (n & 2) {
		uint16_t x;
		memcpy(&x, b, 2);
		w |= (uint64_t)x << shift;
		b += 2;
		shift += 16;
	}
	if (n & 1)
		w |= (uint64_t)*b << shift;
	return w;
#else
	uint64_t w = 0;
	memcpy(&w, b, n);
	return w;
#endif
}

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t w;

	h = (h ^ n) * HK;
	while (n >= 8) {
		memcpy(&w, b, 8);
		h = (h ^ w) * HK;
		h ^= h >> 29;
		b += 8;
		n -= 8;
	}
	h = (h ^ tail_bytes(b, n)) * HK;
	return h ^ (h >> 32);
}

static uint64_t hash_u64(uint64_t h, uint64_t v)
{
	h = (h ^ v) * HK;
	return h ^ (h >> 29);
}

static uint64_t hash_str(uint64_t h, const char *s)
{
	return s ? hash_bytes(h, s, strlen(s)) : hash_u64(h, 0x5bd1e995ull);
}

static uint64_t hash_json(uint64_t h, const json_t *j);

/* Object members combined by addition: the order of keys does not matter. */
static uint64_t member_hash(const char *k, size_t kn, const json_t *v)
{
	return mix(hash_bytes(1, k, kn) ^ hash_json(2, v));
}

static uint64_t hash_object(const json_t *o)
{
	uint64_t sum = 0;

	for (void *it = json_object_iter((json_t *)o); it;
	     it = json_object_iter_next((json_t *)o, it))
		sum += member_hash(json_object_iter_key(it), json_object_iter_key_len(it),
				   json_object_iter_value(it));
	return sum;
}

static uint64_t hash_json(uint64_t h, const json_t *j)
{
	if (!j)
		return hash_u64(h, 11);
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		return hash_u64(hash_u64(h, 1), hash_object(j));
	case JSON_ARRAY: {
		h = hash_u64(h, 2);
		for (size_t i = 0; i < json_array_size(j); i++)
			h = hash_json(h, json_array_get(j, i));
		return h;
	}
	case JSON_STRING:
		return hash_bytes(hash_u64(h, 3), json_string_value(j), json_string_length(j));
	case JSON_INTEGER:
		return hash_u64(hash_u64(h, 4), (uint64_t)json_integer_value(j));
	case JSON_REAL: {
		double d = json_real_value(j);
		uint64_t u;
		memcpy(&u, &d, 8);
		return hash_u64(hash_u64(h, 5), u);
	}
	case JSON_TRUE:
		return hash_u64(h, 6);
	case JSON_FALSE:
		return hash_u64(h, 7);
	default:
		return hash_u64(h, 8);
	}
}

static void pd_member(struct pd_sum *ps, void *it)
{
	const char *k = json_object_iter_key(it);
	size_t kn = json_object_iter_key_len(it);
	const json_t *v = json_object_iter_value(it);
	uint64_t m = member_hash(k, kn, v);

	switch (fact_kind(de_fact_lookup(k, kn))) {
	case PD_VOLATILE:
		ps->vol += m;
		return;
	case PD_EXE_DELETED:
		ps->exe_deleted = json_is_true(v);
		break;
	case PD_EXE_REPLACED:
		ps->exe_replaced = json_is_true(v);
		break;
	default:
		break;
	}
	ps->id += m;
}

/* One collector fact as pd_member() would count it as a JSON member: vh
   is hash_json(2, value), b the value of a boolean. */
static void fact_add(struct pd_sum *ps, const struct de_fact *f, uint64_t vh, bool b)
{
	uint64_t m = mix(hash_bytes(1, f->key, f->key_len) ^ vh);

	switch (f->is_volatile ? PD_VOLATILE : fact_kind((int)f->idx)) {
	case PD_VOLATILE:
		ps->vol += m;
		return;
	case PD_EXE_DELETED:
		ps->exe_deleted = b;
		break;
	case PD_EXE_REPLACED:
		ps->exe_replaced = b;
		break;
	default:
		break;
	}
	ps->id += m;
}

/*
 * A fact's member hash, as pd_member() counts the same member from JSON.
 * Text that is not valid UTF-8 has another form in JSON (escaped, plus a
 * base64 twin): 1 stops the walk, and the record is summed through its JSON.
 */
static int fact_sum(const struct de_fact *f, void *ctx)
{
	uint64_t vh;

	if (f->kind == DE_FACT_TEXT && !de_utf8_valid(f->s, f->n))
		return 1;
	switch (f->kind) {
	case DE_FACT_INT:
		vh = hash_u64(hash_u64(2, 4), (uint64_t)f->i);
		break;
	case DE_FACT_BOOL:
		vh = hash_u64(2, f->b ? 6 : 7);
		break;
	default:
		vh = hash_bytes(hash_u64(2, 3), f->s, f->n);
		break;
	}
	fact_add(ctx, f, vh, f->b);
	return 0;
}

/*
 * The sums of a record's collector facts, equal to those of its JSON form
 * (so a snapshot written from JSON records, or before the facts were flat,
 * sees no change).  A record whose facts hold text that is not valid UTF-8
 * (a cgroup name with such bytes: rare) is summed through its JSON form.
 */
static int facts_sum(const struct de_process_record *r, struct pd_sum *ps)
{
	struct pd_sum zero = *ps;
	struct de_process_record tmp;
	json_t *j;

	if (de_linux_facts_each_inline(&r->facts, fact_sum, ps) == 0)
		return 0;
	*ps = zero;
	tmp = (struct de_process_record){.facts = r->facts};
	/* out of memory: the caller fails (a guessed sum would record a false change) */
	if (!(j = de_process_record_platform_json(&tmp)))
		return -ENOMEM;
	for (void *it = json_object_iter(j); it; it = json_object_iter_next(j, it))
		pd_member(ps, it);
	json_decref(j);
	return 0;
}

#define PD_LANES 16

/*
 * The platform_data sums of n records.  Each object is a linked list of
 * members, each member and its value a separate allocation: walked one
 * record at a time, every step waits for memory.  So PD_LANES records are walked side by side, a
 * step of each in turn: a lane asks for its next member and that member's value a round before it
 * reads them, and the lanes' misses overlap.  Records with collector facts (what procmond sends)
 * are summed from the flat facts; only their extra members, if any, are walked.
 */
int store_pd_sums(const struct de_process_record *recs, size_t n, struct pd_sum *out)
{
	for (size_t base = 0; base < n; base += PD_LANES) {
		size_t m = n - base < PD_LANES ? n - base : PD_LANES, busy = 0;
		void *next[PD_LANES], *ready[PD_LANES];

		for (size_t j = 0; j < m; j++) {
			const json_t *o = recs[base + j].platform_data;
			struct pd_sum *ps = &out[base + j];
			*ps = (struct pd_sum){.object = json_is_object(o)};
			ready[j] = next[j] = NULL;
			if (recs[base + j].facts.present) {
				if (facts_sum(&recs[base + j], ps) < 0)
					return -ENOMEM;
				ps->object = true;
			}
			if (ps->object)
				next[j] = json_object_iter((json_t *)o);
			if (next[j]) {
				__builtin_prefetch(next[j]);
				busy++;
			}
			if (base + PD_LANES + j < n)
				__builtin_prefetch(recs[base + PD_LANES + j].platform_data);
		}
		while (busy) {
			for (size_t j = 0; j < m; j++) {
				if (ready[j]) {
					pd_member(&out[base + j], ready[j]);
					ready[j] = NULL;
				}
				if (!next[j])
					continue;
				__builtin_prefetch(json_object_iter_value(next[j]));
				ready[j] = next[j];
				next[j] = json_object_iter_next(
					(json_t *)recs[base + j].platform_data, next[j]);
				if (next[j])
					__builtin_prefetch(next[j]);
				else
					busy--;
			}
		}
		for (size_t j = 0; j < m; j++)
			if (ready[j])
				pd_member(&out[base + j], ready[j]);
	}
	return 0;
}

void store_record_hashes(const struct de_process_record *r, const struct pd_sum *ps,
			 struct rec_sum *out)
{
	uint64_t h = 0x1234567, v = 0x7654321, u = 0;

	h = hash_u64(h, r->has_ppid ? (uint64_t)r->ppid + 1 : 0);
	h = hash_str(h, r->name);
	h = hash_str(h, r->executable_path);
	h = hash_u64(h, r->command_line_len);
	for (size_t i = 0; i < r->command_line_len; i++)
		h = hash_str(h, r->command_line[i]);
	h = hash_str(h, r->executable_hash);
	h = hash_str(h, r->hash_algorithm);
	h = hash_str(h, r->user_id);
	h = hash_u64(h, (uint64_t)r->accessible << 1 | r->file_exists);
	h = ps->object ? hash_u64(h, ps->id) : hash_json(h, r->platform_data);
	if (r->has_cpu_usage)
		memcpy(&u, &r->cpu_usage, 8);
	v = hash_u64(v, r->has_cpu_usage ? u : 0xfff);
	v = hash_u64(v, r->has_memory_usage ? r->memory_usage : UINT64_MAX);
	v = hash_u64(v, ps->vol);
	out->idh = mix(h);
	out->vh = mix(v);
	out->exe_deleted = ps->exe_deleted;
	out->exe_replaced = ps->exe_replaced;
}
