/* The LMDB store's insides, shared by its files: store_lmdb.c (the
 * environment, records and their indexes), store_lmdb_secret.c (refresh
 * tokens under erasable keys), store_lmdb_txn.c (transactions, group
 * commit, map growth), store_lmdb_scan.c (scans and the consistency
 * check) and store_lmdb_backup.c (online copies).  Only these include
 * lmdb.h; everything else sees store.h. */
#ifndef TM_STORE_LMDB_H
#define TM_STORE_LMDB_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/types.h>

#include <lmdb.h>

#include "error.h"
#include "status.h"
#include "store_engine.h"
#include "wake.h"

#define SCHEMA_VERSION 3u
#define MAX_READERS 512
/* Room for LMDB's lock file: its header and 64 bytes per reader slot. */
#define LOCK_FILE_BYTES (8192 + MAX_READERS * 64)
#define KEY_MAX (TM_NAME_MAX + 1 + 1 + 8 + 8 + TM_TASK_ID_LEN) /* the queue's */

typedef struct tm__lmdb tm__lmdb;
typedef struct tm__lmdb_txn tm__lmdb_txn;

/* Where a task's record lies: its key, remembered by id.  A record's key
 * never changes and ends in the task's id, so a remembered key is only a
 * hint: it is used when it ends in the id asked for and finds a record,
 * and otherwise the ids index answers.  Torn by racing threads it stays
 * harmless for the same reason, so its words are relaxed atomics. */
#define HINTS 8192      /* direct-mapped by a hash of the id */
#define HINT_WORDS 12   /* a length byte, then up to KEY_MAX bytes */
struct tm__lmdb_hint {
	atomic_uint_fast64_t w[HINT_WORDS];
};

struct tm__lmdb {
	tm__store base;    /* first: a tm__store * is a tm__lmdb * */
	MDB_env *env;
	/* Records are kept in listing order, so that a page of tm_list_recent
	 * is one cursor walk over stored task JSON (task.c); ids finds them. */
	MDB_dbi records; /* name \0 ~time ~id -> record (task.c): newest first */
	MDB_dbi ids;     /* id -> its record's key */
	MDB_dbi active;  /* name \0 time id -> "" : tasks not yet final */
	MDB_dbi queue;   /* name \0 band ready-time start-time id -> "" :
	                  * waiting to run, each name's by priority (band 0
	                  * the highest), then ready time, then age */
	MDB_dbi deadlines; /* time id -> "" : each active task's timeout, or its
	                    * lease when sooner (the supervisor's scan) */
	MDB_dbi secrets; /* id -> key slot, encrypted refresh token (secret.c) */
	MDB_dbi slots;   /* 'F' slot -> "" free key slots; 'S' slot -> "" to zero */
	MDB_dbi names;   /* name -> struct tm__lmdb_name_rec */
	MDB_dbi meta;    /* "schema" -> u32; "paused:<name>" -> "";
	                  * "cron:<name>" -> int64 (store_lmdb_task.c) */
	/* Transactions hold this shared; growing the map takes it exclusive,
	 * since LMDB resizes only with no transaction active in the process. */
	pthread_rwlock_t resize;
	uint64_t map_max;
	atomic_uint_fast64_t commits;
	/* Group commit: writers queue here; one of them, the leader, runs the
	 * queued writes in one transaction and one sync. */
	pthread_mutex_t gc_mu;
	pthread_cond_t gc_done;
	struct tm__wreq *gc_head, **gc_tail;
	bool gc_leader;
	size_t gc_expect;         /* writers of the last batch not yet back */
	unsigned gc_nested;       /* batches still to run nested (the leader's) */
	pthread_cond_t gc_more;   /* a gathering leader: they all came back */
	/* Read transactions, reset and kept for renewal: with MDB_NOTLS a
	 * reset transaction keeps its reader slot, so renewing one skips the
	 * reader table's lock and an allocation. */
	pthread_mutex_t pool_mu;
	MDB_txn *pool[16];
	unsigned n_pool;
	char *dir;                /* the store directory */
	int keys_fd;              /* the key slots file (secret.c) */
	atomic_bool keys_dirty;   /* a key was written: sync before commit */
	tm__wake *wake;           /* wake-ups across processes (wake.c) */
	struct tm__lmdb_hint *hints; /* HINTS of them, or NULL */
	dev_t dev;
	ino_t ino;
	tm__lmdb *next_open;
	/* Tests only: run by a backup between its snapshot and its copy of
	 * the keys (store_lmdb_backup.c; tests/unit/test_backup_keys.c). */
	void (*backup_pause)(void *ctx);
	void *backup_pause_ctx;
};

struct tm__lmdb_txn {
	tm__txn base;      /* first: a tm__txn * is a tm__lmdb_txn * */
	tm__lmdb *s;
	MDB_txn *txn;
	bool map_full; /* some put hit MDB_MAP_FULL: grow and run again */
	/* The record a scan of the records is on: get, get_head and render
	 * of that task read it without a lookup.  Any write ends it (the
	 * bytes may move). */
	bool on_row;
	char row_id[TM_TASK_ID_LEN];
	MDB_val row;
};

static inline tm__lmdb *tm__lmdb_of(tm__store *s) { return (tm__lmdb *)s; }
static inline tm__lmdb_txn *tm__lmdb_txn_of(tm__txn *t) { return (tm__lmdb_txn *)t; }

/* The engine's functions, and their table (store_lmdb.c). */
extern const struct tm__store_ops tm__lmdb_ops;
void tm__lmdb_close(tm__store *s);
void tm__lmdb_size(tm__txn *txn, uint64_t *used, uint64_t *free_bytes, uint64_t *map);
uint32_t tm__lmdb_wake_seq(tm__store *s);
void tm__lmdb_wake(tm__store *s, bool self_too);
void tm__lmdb_wait(tm__store *s, uint32_t seen, unsigned ms);
int tm__lmdb_read(tm__store *s, tm__txn_fn fn, void *ctx);
int tm__lmdb_write(tm__store *s, tm__txn_fn fn, void *ctx);
uint64_t tm__lmdb_commits(tm__store *s);
int tm__lmdb_get(tm__txn *txn, const char *id, tm__task *out);
int tm__lmdb_get_head(tm__txn *txn, const char *id, tm__task *out);
int tm__lmdb_render(tm__txn *txn, const char *id, const char *name,
                    bool with_details, tm__buf *out);
int tm__lmdb_put_task(tm__txn *txn, const tm__task *old, const tm__task *t);
int tm__lmdb_delete(tm__txn *txn, const tm__task *t);
int tm__lmdb_secret_put(tm__txn *txn, const char *id, const char *secret);
int tm__lmdb_secret_get(tm__txn *txn, const char *id, char **out);
int tm__lmdb_secret_del(tm__txn *txn, const char *id);
int tm__lmdb_scrub(tm__store *s, size_t *n);
int tm__lmdb_recent(tm__txn *txn, const char *name, size_t skip, tm__id_fn fn, void *ctx);
int tm__lmdb_oldest(tm__txn *txn, const char *name, tm__id_fn fn, void *ctx);
int tm__lmdb_active(tm__txn *txn, const char *name, tm__id_fn fn, void *ctx);
int tm__lmdb_expired(tm__txn *txn, int64_t now, tm__id_fn fn, void *ctx);
int tm__lmdb_queue(tm__txn *txn, int64_t now, tm__queue_fn fn, void *ctx);
int tm__lmdb_queue_head(tm__txn *txn, uint64_t *depth, int64_t *head_us);
int tm__lmdb_name_stats(tm__txn *txn, const char *name, tm__name_stats *out);
int tm__lmdb_add_changes(tm__txn *txn, const char *name, uint64_t n);
int tm__lmdb_reset_changes(tm__txn *txn, const char *name);
int tm__lmdb_name_touch(tm__txn *txn, const char *name);
int tm__lmdb_pause(tm__txn *txn, const char *name, bool paused);
int tm__lmdb_paused(tm__txn *txn, const char *name, bool *paused);
int tm__lmdb_rate_take(tm__txn *txn, const char *name, double rate,
                       unsigned burst, bool *taken, double *left);
int tm__lmdb_rate_tokens(tm__txn *txn, const char *name, double rate,
                         unsigned burst, double *tokens);
int tm__lmdb_names(tm__txn *txn, tm__name_fn fn, void *ctx);
int tm__lmdb_name_finals(tm__txn *txn, const char *name, bool exact, uint64_t *n);
int tm__lmdb_lock_retention(tm__txn *txn, const char *name, bool wait, bool *got);
int tm__lmdb_cron_get(tm__txn *txn, const char *name, int64_t *due_us, bool *found);
int tm__lmdb_cron_set(tm__txn *txn, const char *name, int64_t due_us, bool if_absent);
int tm__lmdb_check(tm__txn *txn, cJSON *problems, uint64_t *n_tasks);
int tm__lmdb_backup(tm__store *s, const char *dest);

/* Stored per name: the figures tm_stats() reports without a scan. */
struct tm__lmdb_name_rec {
	uint64_t by_status[TM__STATUS_COUNT];
	uint64_t changes;
	int64_t since_us;
};

/* ---- keys ------------------------------------------------------------- */

/* Big-endian, sign-flipped: byte order sorts like the signed value. */
static inline void tm__lmdb_put_time(unsigned char *p, int64_t v, bool descending)
{
	uint64_t u = (uint64_t)v ^ (1ULL << 63);

	if (descending)
		u = ~u;
	for (int i = 7; i >= 0; i--, u >>= 8)
		p[i] = (unsigned char)u;
}

static inline int64_t tm__lmdb_get_time(const unsigned char *p)
{
	uint64_t u = 0;

	for (int i = 0; i < 8; i++)
		u = u << 8 | p[i];
	return (int64_t)(u ^ (1ULL << 63));
}

static inline size_t tm__lmdb_name_prefix(unsigned char *k, const char *name)
{
	size_t n = strlen(name);

	memcpy(k, name, n);
	k[n] = '\0';
	return n + 1;
}

/* Records: newest first within the name; the id is stored inverted so that
 * equal times list ids descending. */
static inline size_t tm__lmdb_record_key(unsigned char *k, const tm__task *t)
{
	size_t n = tm__lmdb_name_prefix(k, t->name);

	tm__lmdb_put_time(k + n, t->start_us, true);
	for (int i = 0; i < TM_TASK_ID_LEN; i++)
		k[n + 8 + i] = (unsigned char)~(unsigned char)t->id[i];
	return n + 8 + TM_TASK_ID_LEN;
}

/* Active: ordered by start time within the name, so that new tasks append
 * to the index's last page instead of dirtying a random one. */
static inline size_t tm__lmdb_active_key(unsigned char *k, const tm__task *t)
{
	size_t n = tm__lmdb_name_prefix(k, t->name);

	tm__lmdb_put_time(k + n, t->start_us, false);
	memcpy(k + n + 8, t->id, TM_TASK_ID_LEN);
	return n + 8 + TM_TASK_ID_LEN;
}

/* When the supervisor must look at an active task: its timeout, or the
 * lease of its run when that ends sooner; false for a final task. */
static inline bool tm__lmdb_deadline(const tm__task *t, int64_t *at)
{
	*at = t->timeout_us;
	if (t->owner != 0 && !t->queued && t->lease_us < *at)
		*at = t->lease_us;
	return tm__status_active(t->status);
}

/* The queue: the name, the band of the priority (0 for the highest, so
 * that the name's tasks sort by priority first), the ready time, the
 * trigger time (of tasks ready at one instant, the older first: they lie
 * together in the records, so a claim of many dirties few pages), the id. */
#define TM__LMDB_QUEUE_TAIL (1 + 8 + 8 + TM_TASK_ID_LEN) /* after the NUL */
static inline size_t tm__lmdb_queue_key(unsigned char *k, const char *name,
                                        int priority, int64_t ready_us,
                                        int64_t start_us, const char *id)
{
	size_t n = tm__lmdb_name_prefix(k, name);

	k[n] = (unsigned char)(TM__PRIORITY_MAX - priority);
	tm__lmdb_put_time(k + n + 1, ready_us, false);
	tm__lmdb_put_time(k + n + 9, start_us, false);
	memcpy(k + n + 17, id, TM_TASK_ID_LEN);
	return n + TM__LMDB_QUEUE_TAIL;
}

static inline size_t tm__lmdb_task_queue_key(unsigned char *k, const tm__task *t)
{
	return tm__lmdb_queue_key(k, t->name, t->priority, t->ready_us, t->start_us, t->id);
}

/* Deadlines: a time, then the id. */
static inline size_t tm__lmdb_time_key(unsigned char *k, int64_t at, const char *id)
{
	tm__lmdb_put_time(k, at, false);
	memcpy(k + 8, id, TM_TASK_ID_LEN);
	return 8 + TM_TASK_ID_LEN;
}

static inline MDB_val tm__lmdb_val(const void *p, size_t n)
{
	MDB_val v = { n, (void *)p };
	return v;
}

/* ---- errors ----------------------------------------------------------- */

/* An LMDB (or errno) code as a tm_error with a message. */
static inline int tm__lmdb_error(int rc, const char *what)
{
	if (rc == ENOMEM)
		return tm_errorf(TM_ENOMEM, "%s: out of memory", what);
	if (rc == MDB_MAP_FULL)
		return tm_errorf(TM_ESTORAGE, "%s: the store reached its size cap", what);
	/* mdb_strerror covers both LMDB's codes and errno values. */
	return tm_errorf(TM_ESTORAGE, "%s: %s", what, mdb_strerror(rc));
}

static inline int tm__lmdb_fail(tm__lmdb_txn *t, int rc, const char *what)
{
	if (rc == MDB_MAP_FULL)
		t->map_full = true;
	return tm__lmdb_error(rc, what);
}

static inline int tm__lmdb_put(tm__lmdb_txn *t, MDB_dbi dbi, MDB_val k, MDB_val v, const char *what)
{
	int rc = mdb_put(t->txn, dbi, &k, &v, 0);

	t->on_row = false;
	return rc ? tm__lmdb_fail(t, rc, what) : TM_OK;
}

/* Delete; a missing key is an index out of step, reported as such. */
static inline int tm__lmdb_del(tm__lmdb_txn *t, MDB_dbi dbi, MDB_val k, const char *what)
{
	int rc = mdb_del(t->txn, dbi, &k, NULL);

	t->on_row = false;
	if (rc == MDB_NOTFOUND)
		return tm_errorf(TM_ESTORAGE, "%s: index entry missing", what);
	return rc ? tm__lmdb_fail(t, rc, what) : TM_OK;
}


static inline int tm__lmdb_cursor(tm__lmdb_txn *t, MDB_dbi dbi, MDB_cursor **c)
{
	int rc = mdb_cursor_open(t->txn, dbi, c);

	return rc ? tm__lmdb_fail(t, rc, "opening a cursor") : TM_OK;
}

static inline uint64_t tm__lmdb_entries(tm__lmdb_txn *t, MDB_dbi dbi)
{
	MDB_stat st;

	return mdb_stat(t->txn, dbi, &st) == 0 ? st.ms_entries : 0;
}

/* How many writes wait in the group commit's queue (tests). */
size_t tm__lmdb_queued(tm__lmdb *s);

#endif
