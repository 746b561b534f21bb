/*
 * audit.h — the audit ledger (the seed's AuditLedger and HashChain): an
 * append-only SQLite file of audit entries, each chained to the one before
 * by BLAKE3, under an RFC 9162 Merkle tree (merkle.h, BLAKE3 hasher) whose
 * signed checkpoints (checkpoint.h) can be exported and checked anywhere.
 *
 * Each entry: a gap-free sequence number (1, 2, ...), a millisecond
 * timestamp, actor, action, a JSON payload, payload_hash = BLAKE3(payload),
 * previous_hash (the entry before's entry_hash; 32 zero bytes for entry 1)
 * and entry_hash = BLAKE3 over the canonical encoding documented in
 * docs/audit.md (format version byte, then length-prefixed fields).  Entry
 * seq is Merkle leaf seq - 1, the leaf's data being entry_hash.
 *
 * Append-only: nothing here updates or deletes, SQL triggers refuse both,
 * and a new file is created 0600.  Appends are queued in memory
 * (de_audit_append, cheap: no I/O) and committed in one transaction by
 * de_audit_flush, which also stores the Merkle subtrees each entry
 * completes (so proofs cost O(log n) lookups) and makes a checkpoint when
 * one is due (every N entries or T seconds).  Checkpoints are signed
 * through a de_checkpoint_signer: in-process from a key file, or by
 * whatever callback the caller supplies (the privileged parent over IPC).
 *
 * Writers serialise on SQLite's write lock; a flush catches up with
 * entries another process appended (the CLI recording an operator's
 * action while the agent runs) and chains its queue after them.  Readers
 * open read-only.  Errors: DE_ERR_DATABASE for SQLite failures and foreign or
 * corrupt files (the file is never modified then), DE_ERR_VALIDATION for
 * bad entries and requests, DE_ERR_CRYPTO for keys and signatures.
 * A handle is used by one thread at a time.
 */
#ifndef DAEMONEYE_AUDIT_H
#define DAEMONEYE_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/checkpoint.h"
#include "daemoneye/config.h"
#include "daemoneye/error.h"
#include "daemoneye/merkle.h"

#define DE_AUDIT_SCHEMA_VERSION 2
#define DE_AUDIT_FORMAT_VERSION 1	    /* the entry hash encoding's version byte */
#define DE_AUDIT_NAME_MAX	256	    /* actor and action, bytes */
#define DE_AUDIT_PAYLOAD_MAX	(64 * 1024) /* payload JSON text, bytes */
#define DE_AUDIT_QUEUE_MAX	100000	    /* entries queued before a flush is forced */

enum de_audit_algorithm {
	DE_AUDIT_BLAKE3 = 0, /* the only one */
	DE_AUDIT_ALGORITHM_MAX
};

/* The seed's HashChainConfig. */
struct de_hashchain_config {
	enum de_audit_algorithm algorithm;
	bool enable_signatures;	      /* make signed checkpoints */
	const char *private_key_path; /* PKCS#8 PEM, 0600; used when no signer is given */
};

struct de_audit_config {
	const char *path; /* the ledger file (e.g. <state_dir>/audit.sqlite) */
	bool read_only;	  /* readers: never create or write */
	struct de_hashchain_config chain;
	/* checkpoint origin line; NULL: "<hostname>/daemoneye/audit" */
	const char *origin;
	uint64_t checkpoint_every_entries; /* 0: not by count */
	uint64_t checkpoint_interval_s;	   /* 0: not by time */
	/*
	 * Signs checkpoints (copied; its arg must outlive the ledger).  NULL
	 * with chain.enable_signatures: a signer over chain.private_key_path,
	 * whose key the ledger loads at open and frees at close.
	 */
	const struct de_checkpoint_signer *signer;
	/* The clock in ms since the epoch; NULL: the real one (tests inject theirs). */
	int64_t (*now_ms)(void);
};

/* What a caller records (the seed's AuditEntry).  Strings are copied. */
struct de_audit_entry {
	int64_t ts_ms;	     /* 0: now */
	const char *actor;   /* who: "agent", "cli:uid=1000", ... (1..256 bytes UTF-8) */
	const char *action;  /* what: "scan", "rule.enable", ... (1..256 bytes UTF-8) */
	const char *payload; /* JSON text (<= 64 KiB); NULL: "{}" */
};

/* A stored entry.  Strings are owned by whoever filled it (see each function). */
struct de_audit_record {
	uint64_t seq;
	int64_t ts_ms;
	const char *actor;
	const char *action;
	const char *payload;
	uint8_t payload_hash[32];
	uint8_t previous_hash[32];
	uint8_t entry_hash[32];
};

struct de_audit;

/* ---- resolving settings from the configuration --------------------------- */

/* The audit.* settings, resolved (strings owned by the struct: de_audit_settings_clear). */
/* What de_audit_prune did. */
struct de_audit_prune {
	uint64_t upto;	     /* entries 1..upto are pruned now (0: none) */
	uint64_t removed;    /* by this call */
	uint64_t covered_by; /* the size of the latest checkpoint (a limit on upto) */
};

/*
 * Retention: remove the oldest entries, those written before before_ms, at
 * most max_entries of them (0: no limit), and only within the latest
 * checkpoint (checkpoints are signed: nothing is removed that a signature
 * does not cover); never the last entry.  Their leaves stay in the Merkle
 * tree (roots and proofs do not change) and a prune record keeps the last
 * removed entry's hash, so verify_chain still checks the rest against it
 * and every checkpoint.  One transaction.  0 (out may be NULL), or an
 * error with the ledger as it was.
 */
int de_audit_prune(struct de_audit *a, int64_t before_ms, uint64_t max_entries,
		   struct de_audit_prune *out, struct de_error *err);

struct de_audit_settings {
	bool enabled;
	char *path;		/* audit.path, or <state_dir>/audit.sqlite */
	char *origin;		/* audit.origin, or "<hostname>/daemoneye/audit" */
	char *private_key_path; /* NULL when unset */
	char *public_key_path;	/* NULL when unset */
	bool enable_signatures;
	uint64_t checkpoint_every_entries;
	uint64_t checkpoint_interval_s;
	uint64_t retention_days; /* audit.retention_days; 0: keep every entry */
};

int de_audit_settings_load(const struct de_config *c, struct de_audit_settings *out,
			   struct de_error *err);
void de_audit_settings_clear(struct de_audit_settings *s);
/* A de_audit_config pointing into s (valid while s lives). */
void de_audit_settings_config(const struct de_audit_settings *s, bool read_only,
			      struct de_audit_config *out);

/* ---- the ledger ---------------------------------------------------------- */

/*
 * Open (creating 0600 unless read_only) the ledger at cfg->path.  A file
 * that is not a daemoneye audit ledger, is corrupt or is newer than this
 * code is refused untouched (DE_ERR_DATABASE).  With signatures enabled
 * and no signer, the private key is loaded (and checked) before the file
 * is touched.  *out is the caller's (de_audit_close).
 */
int de_audit_open(const struct de_audit_config *cfg, struct de_audit **out, struct de_error *err);
/*
 * Flush what is queued (de_audit_flush), then close.  Always frees a.
 * Returns the flush's result.  Accepts NULL.
 */
int de_audit_close(struct de_audit *a, struct de_error *err);

/*
 * Queue one entry: validates it, assigns its seq (written to *seq if
 * non-NULL; provisional when another process appends to the same file
 * before the flush, which then chains the queue after that process's
 * entries) and computes its hashes; no I/O.  When DE_AUDIT_QUEUE_MAX
 * entries are queued it flushes first.  Read-only handles: EROFS.
 */
int de_audit_append(struct de_audit *a, const struct de_audit_entry *e, uint64_t *seq,
		    struct de_error *err);
/*
 * Commit the queued entries in one transaction with their Merkle subtrees,
 * then make a checkpoint if one is due (call it every cycle, even with
 * nothing queued: that is when a checkpoint falls due by time).  On a failed commit nothing is
 * written and the queue is kept (a later flush retries).  A checkpoint
 * that fails after the commit returns its error (entries stay committed).
 */
int de_audit_flush(struct de_audit *a, struct de_error *err);
/*
 * The commit half of de_audit_flush, without the checkpoint: no signature,
 * and in WAL mode no fsync, so a caller with a latency budget (the agent
 * between cycles) can commit often and leave checkpoints to de_audit_flush.
 */
int de_audit_commit(struct de_audit *a, struct de_error *err);
/* Entries committed (the tree size); queued ones are not counted. */
uint64_t de_audit_size(const struct de_audit *a);
/* When the latest checkpoint this handle knows of was made (ms since the epoch); 0: none. */
int64_t de_audit_last_checkpoint_ms(const struct de_audit *a);
/* Committed entries that no checkpoint this handle knows of covers yet. */
uint64_t de_audit_unattested(const struct de_audit *a);
/* Entries queued and not yet flushed. */
size_t de_audit_pending(const struct de_audit *a);

/* The Merkle root of the first `size` committed entries. */
int de_audit_root(struct de_audit *a, uint64_t size, uint8_t out[DE_MERKLE_HASH_LEN],
		  struct de_error *err);
/*
 * Inclusion proof of entry `seq` in the tree of `size` entries
 * (seq <= size <= de_audit_size()); leaf_hash (may be NULL) gets the
 * entry's leaf hash.
 */
int de_audit_prove_inclusion(struct de_audit *a, uint64_t seq, uint64_t size,
			     uint8_t proof[DE_MERKLE_MAX_PROOF][DE_MERKLE_HASH_LEN], size_t *n,
			     uint8_t leaf_hash[DE_MERKLE_HASH_LEN], struct de_error *err);
/* Consistency proof from `old` to `new` entries (0 < old <= new <= size). */
int de_audit_prove_consistency(struct de_audit *a, uint64_t old, uint64_t new_size,
			       uint8_t proof[DE_MERKLE_MAX_PROOF][DE_MERKLE_HASH_LEN], size_t *n,
			       struct de_error *err);

/*
 * Make, sign and store a checkpoint of the committed tree now (flush
 * first if you want queued entries in it).  *note (may be NULL) gets the
 * note text, the caller's to free().  No signer: DE_ERR_CRYPTO ENOKEY.
 */
int de_audit_checkpoint(struct de_audit *a, char **note, struct de_error *err);
/* The latest stored checkpoint note (caller frees); -ENOENT when none. */
int de_audit_latest_checkpoint(struct de_audit *a, char **note, struct de_error *err);

/* ---- reading ------------------------------------------------------------- */

struct de_audit_filter {
	bool has_since;
	int64_t since_ms;   /* entries at or after */
	const char *actor;  /* exact; NULL: any */
	const char *action; /* exact; NULL: any */
	uint64_t limit;	    /* 0: no limit */
};

/* Called per record in seq order; its strings live until it returns.  Non-zero stops. */
typedef int (*de_audit_record_fn)(const struct de_audit_record *r, void *arg);

int de_audit_query(struct de_audit *a, const struct de_audit_filter *f, de_audit_record_fn fn,
		   void *arg, struct de_error *err);
/*
 * The entry hash of a record's fields under the canonical encoding
 * (docs/audit.md): what verification recomputes.
 */
void de_audit_entry_hash(uint64_t seq, int64_t ts_ms, const char *actor, const char *action,
			 const uint8_t payload_hash[32], const uint8_t previous_hash[32],
			 uint8_t out[32]);

/*
 * BLAKE3 of the n bytes at p, in base64 (as the ledger shows its hashes),
 * into out: how a payload names what it pins without copying it (a rule's
 * SQL, an imported file, the configuration in effect).
 */
#define DE_AUDIT_HASH_TEXT_LEN 44
void de_audit_hash_text(const void *p, size_t n, char out[DE_AUDIT_HASH_TEXT_LEN + 1]);

/* ---- verification -------------------------------------------------------- */

/* What is wrong, first found first. */
enum de_audit_problem {
	DE_AUDIT_INTACT = 0,
	DE_AUDIT_MALFORMED,	 /* a row with a missing or wrong-length field */
	DE_AUDIT_GAP,		 /* a seq missing: entry deleted */
	DE_AUDIT_PAYLOAD,	 /* payload does not match payload_hash: payload edited */
	DE_AUDIT_MOVED,		 /* entry hash made for another seq: entries swapped or inserted */
	DE_AUDIT_ENTRY_HASH,	 /* fields do not match entry_hash: entry or hash edited */
	DE_AUDIT_LINK,		 /* previous_hash is not the entry before's: chain broken */
	DE_AUDIT_MERKLE,	 /* stored Merkle tree does not match the entries */
	DE_AUDIT_TRUNCATED,	 /* a checkpoint attests more entries than there are */
	DE_AUDIT_REWRITTEN,	 /* a checkpoint's root does not match: history rewritten */
	DE_AUDIT_BAD_CHECKPOINT, /* a checkpoint's signature or text does not verify */
	DE_AUDIT_PROBLEM_MAX
};

struct de_audit_verify_opts {
	/* an exported checkpoint note to check against (NULL: none) */
	const char *checkpoint;
	size_t checkpoint_len;
	/* checks checkpoint signatures (stored and given) when non-NULL */
	const struct de_ckpt_key *pubkey;
	const char *key_name; /* NULL: each checkpoint's origin */
};

struct de_audit_report {
	enum de_audit_problem problem;	  /* DE_AUDIT_INTACT when all holds */
	uint64_t bad_seq;		  /* the first bad entry (or the checkpoint's size) */
	char detail[512];		  /* what is wrong, for people */
	uint64_t entries;		  /* entries read */
	uint8_t root[DE_MERKLE_HASH_LEN]; /* the recomputed root of them */
	uint64_t checkpoints;		  /* checkpoints checked */
	bool signatures_checked;	  /* with a public key */
	uint64_t pruned;		  /* entries 1..pruned removed by retention (0: none) */
};

/*
 * verify_chain: recompute every payload hash, entry hash and link, the
 * Merkle root (compared with the stored tree), and check every stored
 * checkpoint and the given one (signature with opts->pubkey; size against
 * the entries; root against the recomputed tree at that size; and for the
 * given one a consistency proof from its size to now, from the stored
 * tree, as an outside verifier would).  0 when it could read everything:
 * *out says intact or the first problem; -errno when it could not read.
 */
int de_audit_verify(struct de_audit *a, const struct de_audit_verify_opts *opts,
		    struct de_audit_report *out, struct de_error *err);
/* "intact", "gap", "payload", ... */
const char *de_audit_problem_name(enum de_audit_problem p);

#endif
