/* The store: durable task records and their indexes, behind one interface.
 * Nothing above this header knows the engine.  store.c picks one by the
 * path and dispatches to it (store_engine.h): LMDB (store_lmdb*.c) for a
 * directory, PostgreSQL (store_pg*.c) for a postgresql:// URI.  Every read
 * and write runs inside one transaction, given to a callback:
 * tm__store_read() or tm__store_write().  A write transaction is
 * serialisable with every other write on the same task records: an engine
 * shared by several processes locks what a write reads (PostgreSQL: row
 * locks), and runs fn again when the database asks for a retry. */
#ifndef TM_STORE_H
#define TM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "store_types.h"


int tm__store_open(const char *path, const tm__store_opts *o, tm__store **out);
void tm__store_close(tm__store *s);

/* Run fn inside one transaction.  A write whose fn returns an error is
 * aborted (the store is unchanged); a write that fills the map is retried
 * on a grown map, so fn must be re-runnable.  fn's return value is returned
 * (or the final hook's: tm__store_on_final). */
int tm__store_read(tm__store *s, tm__txn_fn fn, void *ctx);
int tm__store_write(tm__store *s, tm__txn_fn fn, void *ctx);
/* The store's clock, in microseconds since the epoch: the one clock every
 * process sharing the store agrees on (PostgreSQL: the server's).  Tests
 * may shift it: with TM_TEST_CLOCK_FILE set when the store opens, the
 * clock adds the microseconds (a native int64_t) in the first 8 bytes of
 * that file, read on every call, so that every process mapping the file
 * sees one shifted clock (doc/conventions.md, "Tests"). */
int64_t tm__store_now(tm__store *s);
/* The same clock, inside a transaction. */
int64_t tm__txn_now(tm__txn *txn);
/* Whether path names a PostgreSQL store (a libpq URI). */
bool tm__store_is_uri(const char *path);

/* ---- tasks, within a transaction ---- */

/* TM_ETASK_NOT_FOUND (message set) when absent. */
int tm__store_get(tm__txn *txn, const char *id, tm__task *out);
/* The fixed fields only (tm__task_decode_head). */
int tm__store_get_head(tm__txn *txn, const char *id, tm__task *out);
/* Append the task JSON of a stored task to out without decoding it;
 * TM_ETASK_NOT_FOUND if absent, or when `name` is not NULL and the task is
 * not of that name. */
int tm__store_render(tm__txn *txn, const char *id, const char *name,
                     bool with_details, tm__buf *out);
/* Store t; old is the same task as previously stored, or NULL for a new
 * task.  Maintains every index and counter from the difference. */
int tm__store_put(tm__txn *txn, const tm__task *old, const tm__task *t);
int tm__store_delete(tm__txn *txn, const tm__task *t);
/* Hold the name's lock until the write transaction ends: checks that span
 * several tasks of one name (exclusivity, a concurrency limit, an
 * automatic trigger's rule) then hold across every process. */
int tm__store_lock_name(tm__txn *txn, const char *name);
/* The name's retention lock, until the write transaction ends: one
 * process at a time prunes a name's final tasks.  A lock of its own, not
 * the name's: pruning never waits for a trigger or a claim, nor they for
 * it.  With wait false it is only tried: *got says whether it was taken
 * (an engine with one writer at a time always takes it). */
int tm__store_lock_retention(tm__txn *txn, const char *name, bool wait, bool *got);
/* fn(txn, name, ctx) runs at the end of every write transaction whose puts
 * made tasks of name final (they were active, or new), once per name,
 * after the write's own function and before the commit; its error fails
 * the write.  Retention (retention.c) keeps each name's final tasks
 * bounded there.  Set before any write; NULL: none.  The store calls up
 * through it, and only through it. */
void tm__store_on_final(tm__store *s, tm__final_fn fn, void *ctx);
/* fn(events, n, ctx) runs on the writer's thread after each write that
 * committed with events noted, outside the transaction.  Set before any
 * write; NULL: none (notes are then dropped).  The second call up. */
void tm__store_on_events(tm__store *s, tm__events_fn fn, void *ctx);
/* Note an event of the write txn belongs to (tm__store_on_events); a write
 * that runs again starts with none.  TM_ENOMEM fails the write. */
int tm__txn_note(tm__txn *txn, tm__event_kind kind, const char *name,
                 tm_status st, uint32_t n, double seconds);

/* ---- secrets, kept apart from the task records ---- */

int tm__store_secret_put(tm__txn *txn, const char *id, const char *secret);
/* *out is malloc'd, or NULL when there is none. */
int tm__store_secret_get(tm__txn *txn, const char *id, char **out);
int tm__store_secret_del(tm__txn *txn, const char *id);
/* Zero the keys of erased secrets for good (outside any transaction);
 * *n receives how many.  The supervisor calls it every tick. */
int tm__store_scrub(tm__store *s, size_t *n);

/* ---- scans ---- */

/* Iterators call fn for each entry until fn returns nonzero: a negative
 * value is an error and is returned, TM__SCAN_STOP ends the scan, which
 * then returns TM_OK.  Tasks of name, newest first, skipping `skip`. */
int tm__store_recent(tm__txn *txn, const char *name, size_t skip,
                     tm__id_fn fn, void *ctx);
/* Tasks of name, oldest first. */
int tm__store_oldest(tm__txn *txn, const char *name, tm__id_fn fn, void *ctx);
/* Active tasks of name (name NULL: of every name). */
int tm__store_active(tm__txn *txn, const char *name, tm__id_fn fn, void *ctx);
/* Active tasks past their timeout at now, or run under a lease that ended
 * before now, of every name: what the supervisor must look at. */
int tm__store_expired(tm__txn *txn, int64_t now, tm__id_fn fn, void *ctx);
/* What a worker may start at `now`: each name's next waiting task (the
 * highest priority first, then the longest ready) that is ready then, for
 * every name that is not paused; those in the order of their ready times.
 * The cost follows the names waiting, not the tasks.  In a write on an
 * engine shared by several nodes, the rows come locked, and those another
 * node holds are passed over. */
int tm__store_queue(tm__txn *txn, int64_t now, tm__queue_fn fn, void *ctx);
/* Queue depth and the ready time of its head (0 when empty). */
int tm__store_queue_head(tm__txn *txn, uint64_t *depth, int64_t *head_us);

/* ---- per-name figures ---- */

int tm__store_name_stats(tm__txn *txn, const char *name, tm__name_stats *out);
int tm__store_add_changes(tm__txn *txn, const char *name, uint64_t n);
int tm__store_reset_changes(tm__txn *txn, const char *name);
/* Record the name's figures if absent; since_us = now (interval triggers). */
int tm__store_name_touch(tm__txn *txn, const char *name);
/* Pause (paused true) or resume a name, for every process sharing the
 * store: no worker starts its tasks while it is paused.  Idempotent. */
int tm__store_pause(tm__txn *txn, const char *name, bool paused);
int tm__store_paused(tm__txn *txn, const char *name, bool *paused);
/* A name's rate limit (tm_job_def.rate_per_s, burst): a token bucket of
 * up to burst tokens that gains rate tokens a second, kept in the store
 * so that every process (and node) sharing it draws on the same one.  A
 * name without a bucket yet has a full one.  In a write, take one token:
 * the bucket is refilled to the store's clock (the database's, on
 * PostgreSQL) and, when it holds a whole token, loses it (*taken).
 * *left receives what it holds then, after the take: below 1, the next
 * token is (1 - *left) / rate seconds away.  Nothing is written when no
 * token is taken. */
int tm__store_rate_take(tm__txn *txn, const char *name, double rate,
                        unsigned burst, bool *taken, double *left);
/* The tokens the bucket holds now, refilled, changing nothing. */
int tm__store_rate_tokens(tm__txn *txn, const char *name, double rate,
                          unsigned burst, double *tokens);
/* A name's cron schedule: the instant (store clock, us) up to which its
 * due times have been dealt with, shared by every process and node.  The
 * supervisor reads and moves it under the name's lock (supervisor.c).
 * *found is false, and *due_us 0, when the name has none. */
int tm__store_cron_get(tm__txn *txn, const char *name, int64_t *due_us, bool *found);
/* Set it; with if_absent, only when the name has none yet. */
int tm__store_cron_set(tm__txn *txn, const char *name, int64_t due_us, bool if_absent);
/* Every name that has figures, in key order (an iterator as above). */
int tm__store_names(tm__txn *txn, tm__name_fn fn, void *ctx);
/* How many final tasks (FAILED, CANCELLED, COMPLETED) the name has, as this
 * transaction sees them, cheaply: LMDB reads the name's figures;
 * PostgreSQL sums a counter kept per name beside the tasks, read with the
 * write's first final task of the name (so usually without a round trip
 * of its own) or now, and read again once the retention lock is taken.
 * exact: count the tasks themselves (PostgreSQL: as many rows as the name
 * has; in a write it also sets the counter right if it ever drifted). */
int tm__store_name_finals(tm__txn *txn, const char *name, bool exact, uint64_t *n);

/* ---- wake-ups across the processes that share the store ---- */

/* The store's wake counter, to pass to tm__store_wait. */
uint32_t tm__store_wake_seq(tm__store *s);
/* Wake every process sleeping in tm__store_wait on this store; this
 * process's own sleeper only if self_too. */
void tm__store_wake(tm__store *s, bool self_too);
/* Sleep until a wake-up after `seen`, or ms elapse. */
void tm__store_wait(tm__store *s, uint32_t seen, unsigned ms);

/* ---- the store as a whole ---- */

/* Bytes up to the data file's high-water mark, the part of them on the
 * free list (reused by later writes), and the current map size. */
void tm__store_size(tm__txn *txn, uint64_t *used, uint64_t *free_bytes,
                    uint64_t *map);
/* Write transactions committed since open (for tests and benchmarks). */
uint64_t tm__store_commits(tm__store *s);
/* Verify that indexes and counters agree with the records; each problem
 * found is appended to `problems` as a string. */
int tm__store_check(tm__txn *txn, cJSON *problems, uint64_t *n_tasks);
/* Write a consistent copy of the store, in use, into the new directory
 * dest (tm_backup(): whole or nothing); TM_EINVAL from an engine that
 * leaves backups to its database's own tools. */
int tm__store_backup(tm__store *s, const char *dest);

#endif
