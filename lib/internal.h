/* Internal declarations shared between the library's modules.  Nothing here
 * is exported: every name is tm__ and the linker script hides all but tm_*. */
#ifndef TM_INTERNAL_H
#define TM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "taskmgr.h"

/* ---- error.c ---------------------------------------------------------- */

/* Set the thread's message to "<context>: <what LMDB/errno said>" and return
 * TM_ESTORAGE (or TM_ENOMEM for ENOMEM). */
int tm__error_sys(int err, const char *context);
/* Clear the thread's message at the start of a successful public call. */
void tm__error_clear(void);

/* ---- id.c ------------------------------------------------------------- */

/* Fill id[0..19] with [A-Za-z0-9] from getrandom(); id[20] = '\0'. */
int tm__id_new(char id[TM_TASK_ID_LEN + 1]);
bool tm__id_valid(const char *id);
/* Fill buf with bytes from getrandom(). */
int tm__random_bytes(void *buf, size_t len);
/* A random 64-bit value, never 0 (claim tokens). */
uint64_t tm__random64(void);
/* Wall-clock time in microseconds since the epoch. */
int64_t tm__now_us(void);

/* ---- json.c ----------------------------------------------------------- */

/* Deepest nesting of objects and arrays accepted in any JSON input. */
#define TM__JSON_DEPTH_MAX 64
/* Strict RFC 8259 check of a whole text (UTF-8, no \u0000, nesting at most
 * TM__JSON_DEPTH_MAX); *bad_at is where it stopped. */
bool tm__json_valid(const char *text, size_t *bad_at);
/* Parse a whole NUL-terminated text.  Rejects trailing garbage and objects
 * with duplicate keys.  Returns NULL (message set, TM_EWRONG_DATA) on bad
 * input; *err receives the error code. */
cJSON *tm__json_parse(const char *text, const char *what, int *err);
/* RFC 7396: apply patch to target, returning the new target (which may be a
 * different node; the old one is then freed).  NULL only on out of memory. */
cJSON *tm__json_merge(cJSON *target, const cJSON *patch);
/* Print compactly into a malloc'd string; NULL on out of memory. */
char *tm__json_print(const cJSON *j);
/* A growing string for answers built from bytes (task.c).  Appends after
 * a failed allocation are dropped and `oom` stays set. */
typedef struct tm__buf {
	char *p;
	size_t len, cap;
	bool oom;
} tm__buf;
void tm__buf_add(tm__buf *b, const char *s, size_t n);
void tm__buf_str(tm__buf *b, const char *s);
/* Make room for n bytes in all, up front. */
void tm__buf_reserve(tm__buf *b, size_t n);
/* Hand the string to *out (or free it when out is NULL) and reset b;
 * TM_ENOMEM if an append failed. */
int tm__buf_take(tm__buf *b, char **out);

/* ---- status.c --------------------------------------------------------- */

int tm__status_rank(tm_status s);
bool tm__status_final(tm_status s);
bool tm__status_active(tm_status s);
/* TM_OK or TM_ELOWER_STATUS (with message) for a change from -> to. */
int tm__status_check(tm_status from, tm_status to);
/* Parse a status name; -1 when unknown. */
int tm__status_parse(const char *name);

/* ---- task.c: the task record and its JSON views ------------------------ */

/* A task as held in memory between decode and encode.  Status, times and
 * runtime bookkeeping are fixed fields; everything that is JSON (warnings,
 * details) is kept as a cJSON document. */
typedef struct tm__task {
	char id[TM_TASK_ID_LEN + 1];
	char name[TM_NAME_MAX + 1];
	tm_status status;
	bool queued;            /* in the waiting queue (new or retrying) */
	int64_t start_us;       /* trigger time */
	int64_t timeout_us;     /* start + timeout_s */
	int64_t ready_us;       /* queue position: not run before this */
	int64_t lease_us;       /* lease expiry of the claiming run */
	uint64_t owner;         /* claim token of the run; 0 = none */
	cJSON *warnings;        /* array of strings */
	cJSON *details;         /* object */
} tm__task;

void tm__task_free(tm__task *t);
/* Encode to one malloc'd buffer. */
int tm__task_encode(const tm__task *t, void **buf, size_t *len);
/* Decode a stored record (bytes are copied; nothing points into them).
 * tm__task_decode_head decodes the fixed fields only (warnings and details
 * stay NULL): the runtime's scans never parse JSON. */
int tm__task_decode(const char *id, const void *buf, size_t len, tm__task *t);
int tm__task_decode_head(const char *id, const void *buf, size_t len, tm__task *t);
/* Append the task JSON of SPEC section 2 to out, straight from a stored
 * record's bytes; with_details selects the private view. */
int tm__task_render(const char *id, const void *buf, size_t len,
                    bool with_details, tm__buf *out);
/* A time in microseconds as a JSON number of seconds ("1626057538.123456");
 * returns the length. */
size_t tm__time_format(char out[32], int64_t us);
/* The same as a cJSON raw number. */
cJSON *tm__json_time(int64_t us);
/* details.attempts, or 0. */
unsigned tm__task_attempts(const tm__task *t);
void tm__task_set_attempts(tm__task *t, unsigned n);
/* Enter a final status: end_time, status; the caller erases the secret. */
int tm__task_finish(tm__task *t, tm_status st, int64_t now_us);
/* Set details[key] to item (taken, even on failure), replacing any value. */
int tm__task_set_detail(tm__task *t, const char *key, cJSON *item);
/* Set details.progress.message. */
int tm__task_set_message(tm__task *t, const char *msg);
int tm__task_add_warning(tm__task *t, const char *msg);

/* ---- store.c: the only module that talks to LMDB ----------------------- */

typedef struct tm__store tm__store;
typedef struct tm__txn tm__txn;

typedef struct tm__store_opts {
	bool nosync;
	uint64_t map_size;
	uint64_t map_size_max;
} tm__store_opts;

int tm__store_open(const char *path, const tm__store_opts *o, tm__store **out);
void tm__store_close(tm__store *s);

/* Run fn inside one transaction.  A write whose fn returns an error is
 * aborted (the store is unchanged); a write that fills the map is retried
 * on a grown map, so fn must be re-runnable.  fn's return value is returned. */
typedef int (*tm__txn_fn)(tm__txn *txn, void *ctx);
int tm__store_read(tm__store *s, tm__txn_fn fn, void *ctx);
int tm__store_write(tm__store *s, tm__txn_fn fn, void *ctx);

/* Within a transaction. */
int tm__store_get(tm__txn *txn, const char *id, tm__task *out);
int tm__store_get_head(tm__txn *txn, const char *id, tm__task *out);
/* Append the task JSON of a stored task to out (tm__task_render) without
 * decoding it; TM_ETASK_NOT_FOUND if absent, and when `name` is not NULL
 * and the task is not of that name. */
int tm__store_render(tm__txn *txn, const char *id, const char *name,
                     bool with_details, tm__buf *out);
/* Store t; old is the same task as previously stored, or NULL for a new
 * task.  Maintains every index and counter from the difference. */
int tm__store_put(tm__txn *txn, const tm__task *old, const tm__task *t);
int tm__store_delete(tm__txn *txn, const tm__task *t);

/* Secrets, kept apart from the task records. */
int tm__store_secret_put(tm__txn *txn, const char *id, const char *secret);
/* *out is malloc'd, or NULL when there is none. */
int tm__store_secret_get(tm__txn *txn, const char *id, char **out);
int tm__store_secret_del(tm__txn *txn, const char *id);
/* Zero the keys of erased secrets for good (outside any transaction);
 * returns how many, or <0.  The supervisor calls it every tick. */
int tm__store_scrub(tm__store *s);

/* Iterators: fn returns 0 to go on, 1 to stop, <0 for an error. */
typedef int (*tm__id_fn)(tm__txn *txn, const char *id, void *ctx);
/* Tasks of name, newest first, skipping `skip`. */
int tm__store_recent(tm__txn *txn, const char *name, size_t skip,
                     tm__id_fn fn, void *ctx);
/* Tasks of name, oldest first. */
int tm__store_oldest(tm__txn *txn, const char *name, tm__id_fn fn, void *ctx);
/* Active tasks of name (name NULL: of every name). */
int tm__store_active(tm__txn *txn, const char *name, tm__id_fn fn, void *ctx);
/* Waiting queue, in ready order. */
typedef int (*tm__queue_fn)(tm__txn *txn, int64_t ready_us, const char *id,
                            const char *name, void *ctx);
int tm__store_queue(tm__txn *txn, tm__queue_fn fn, void *ctx);

/* Queue depth and the ready time of its head (0 when empty). */
int tm__store_queue_head(tm__txn *txn, uint64_t *depth, int64_t *head_us);

/* Per-name figures: counts by status, and the durable change counter. */
typedef struct tm__name_stats {
	uint64_t by_status[6];
	uint64_t changes;      /* tm_notify() since the last task */
	int64_t since_us;      /* first seen (reference of interval triggers) */
} tm__name_stats;
int tm__store_name_stats(tm__txn *txn, const char *name, tm__name_stats *out);
int tm__store_add_changes(tm__txn *txn, const char *name, uint64_t n);
int tm__store_reset_changes(tm__txn *txn, const char *name);
/* Record the name's figures if absent; since_us = now (interval triggers). */
int tm__store_name_touch(tm__txn *txn, const char *name);
/* Every name that has figures, in key order. */
typedef int (*tm__name_fn)(tm__txn *txn, const char *name, void *ctx);
int tm__store_names(tm__txn *txn, tm__name_fn fn, void *ctx);
/* Bytes up to the data file's high-water mark, the part of them on LMDB's
 * free list (reused by later writes), and the current map size. */
void tm__store_size(tm__txn *txn, uint64_t *used, uint64_t *free_bytes,
                    uint64_t *map);
/* Write transactions committed since open (for tests and benchmarks). */
uint64_t tm__store_commits(tm__store *s);
/* Verify that indexes and counters agree with the records. */
int tm__store_check(tm__txn *txn, cJSON *problems, uint64_t *n_tasks);

/* ---- secret.c: keys that can be erased, and the cipher ------------------ */

#define TM__KEY_LEN 32
void tm__chacha20(const unsigned char key[TM__KEY_LEN], unsigned char *buf, size_t n);
int tm__keys_open(const char *dir, int *fd);
int tm__keys_write(int fd, uint64_t slot, const unsigned char key[TM__KEY_LEN]);
/* A slot never written reads as a zero key. */
int tm__keys_read(int fd, uint64_t slot, unsigned char key[TM__KEY_LEN]);
int tm__keys_sync(int fd);

/* ---- wake.c: wake-ups across processes ----------------------------------- */

typedef struct tm__wake tm__wake;
int tm__wake_open(const char *dir, tm__wake **out);
void tm__wake_close(tm__wake *w);
uint32_t tm__wake_seq(tm__wake *w);
/* Wake every process sleeping in tm__wake_wait on this store; this
 * process's own sleeper only if self_too. */
void tm__wake_signal(tm__wake *w, bool self_too);
/* Sleep until a signal after `seen` (from tm__wake_seq), or ms elapse. */
void tm__wake_wait(tm__wake *w, uint32_t seen, unsigned ms);

/* ---- registry.c -------------------------------------------------------- */

typedef struct tm__jobreg {
	tm_job_def def;        /* name points at `name` below */
	char name[TM_NAME_MAX + 1];
	_Atomic int64_t run_us; /* moving average of run times (runtime.c) */
} tm__jobreg;

typedef struct tm__registry tm__registry;
int tm__registry_new(tm__registry **out);
void tm__registry_free(tm__registry *r);
/* Check a definition (TM_EINVAL with a message); add checks it too. */
int tm__registry_check(const tm_job_def *def);
int tm__registry_add(tm__registry *r, const tm_job_def *def);
/* Entries are never removed or moved: the pointer stays valid until free. */
const tm__jobreg *tm__registry_find(tm__registry *r, const char *name);
/* Copy the entry pointers out (for the runtime's scans).  *out malloc'd. */
int tm__registry_list(tm__registry *r, const tm__jobreg ***out, size_t *n);
/* Look up a name for a call: NULL and TM_EWRONG_DATA (message set) when it
 * is not registered, or not public while `flags` has TM_PUBLIC. */
const tm__jobreg *tm__registry_lookup(tm__registry *r, const char *name,
                                      unsigned flags, int *err);

#endif /* TM_INTERNAL_H */

/* ---- the manager (api.c) and its runtime (runtime.c) -------------------- */

#include <sys/types.h>

struct tm__runtime;

struct tm_manager {
	tm_options opts;          /* path points at `path` */
	char *path;
	pid_t pid;                /* the opener: calls after fork() are refused */
	tm__store *store;
	tm__registry *reg;
	struct tm__runtime *rt;   /* NULL until started */
	tm__wake *wake;           /* wake-ups across processes */
};

/* Common entry of every call on a manager: clears *out, checks the handle
 * and the process, clears the thread's message. */
int tm__enter(tm_manager *tm, char **out);
/* Hand a document to the caller as text (or drop it when out is NULL) and
 * free the tree; TM_ENOMEM when j is NULL. */
int tm__emit(cJSON *j, char **out);

/* Create a task of job (api.c).  precheck, if set, runs first in the same
 * write transaction and returns 1 to create nothing (automatic triggers). */
int tm__create(tm_manager *tm, const tm__jobreg *job, const cJSON *context,
               const char *secret, const char *reason, tm__txn_fn precheck,
               void *pctx, char id[TM_TASK_ID_LEN + 1]);

/* Move t to status st (TM_ELOWER_STATUS if the rule forbids it), with what
 * entering it implies: end_time and the secret erased for a final status,
 * leaving the queue when an external worker starts it (api.c). */
int tm__task_enter(tm__txn *txn, tm__task *t, tm_status st);

/* Start workers and the supervisor; stop them (graceful, SPEC section 6). */
int tm__runtime_start(tm_manager *tm);
void tm__runtime_stop(tm_manager *tm);
/* Something may be runnable: wake this process's workers now. */
void tm__runtime_wake(tm_manager *tm);
/* This process queued work: wake the workers here and the supervisors of
 * every other process on the store. */
void tm__runtime_announce(tm_manager *tm);
/* The task may be running here: make its tm_job_cancelled() true. */
void tm__runtime_cancel(tm_manager *tm, const char *id);

/* ---- request.c: the bodies of tm_trigger() and tm_patch() --------------- */

typedef struct tm__trigger_req {
	cJSON *context;           /* object, never NULL after a parse */
	const char *secret;       /* points into `doc`, or NULL */
	const char *reason;       /* points into `doc`, or NULL */
	cJSON *doc;
} tm__trigger_req;

typedef struct tm__patch_req {
	int status;               /* a tm_status, or -1 when not asked */
	const cJSON *details;     /* object to merge, or NULL; points into doc */
	cJSON *doc;
} tm__patch_req;

int tm__trigger_req_parse(const char *body, tm__trigger_req *req);
void tm__trigger_req_free(tm__trigger_req *req);
int tm__patch_req_parse(const char *body, tm__patch_req *req);
void tm__patch_req_free(tm__patch_req *req);

/* ---- job.c and runtime.c: a running task ---------------------------------- */

#include <pthread.h>
#include <stdatomic.h>

/* Why a handler should stop (bits of tm_job.stop). */
enum {
	TM__STOP_CANCEL = 1,   /* cancel requested */
	TM__STOP_TIMEOUT = 2,  /* past timeout_at: already FAILED */
	TM__STOP_LOST = 4,     /* the task is no longer ours */
	TM__STOP_CLOSE = 8     /* tm_close() */
};

struct tm_job {
	tm_manager *tm;           /* untouched once `abandoned` */
	const tm__jobreg *reg;
	char id[TM_TASK_ID_LEN + 1];
	char name[TM_NAME_MAX + 1];
	char *payload;            /* context_task as JSON text */
	char *secret;             /* or NULL */
	unsigned attempt;
	uint64_t owner;           /* claim token: fences every write of this run */
	pthread_t thread;
	atomic_int stop;          /* TM__STOP_* bits */
	atomic_int refs;          /* the worker's, plus the supervisor's while it
	                           * syncs, plus tm_close()'s while it requeues */
	struct tm_job *next;      /* in the runtime's running list */

	pthread_mutex_t mu;       /* guards what follows */
	cJSON *progress;          /* details.progress as the handler sees it */
	cJSON *warnings;          /* array: this run's warnings */
	cJSON *base_warnings;     /* the task's warnings when the run began */
	char *error;              /* tm_job_fail() */
	uint64_t gen;             /* bumped by every progress, message, warning */
	uint64_t written_gen;     /* the gen last written to the store */
	bool returned;            /* the handler returned `outcome` */
	tm_status outcome;
	bool abandoned;           /* tm_close() gave up waiting: the worker frees
	                           * the job and touches nothing else */
};

/* job.c */
int tm__job_new(tm_manager *tm, const tm__jobreg *reg, const tm__task *t,
                const char *secret, tm_job **out);
void tm__job_free(tm_job *job);
/* Copy the job's unwritten progress, warnings and error into t (the task as
 * stored), fenced: returns false and leaves t alone if t is no longer this
 * run's.  After the transaction commits, tm__job_written(mark) forgets what
 * was written.  All three are called with job->mu held. */
typedef struct tm__job_mark {
	uint64_t gen;
} tm__job_mark;
bool tm__job_apply(tm_job *job, tm__task *t, tm__job_mark *mark);
void tm__job_written(tm_job *job, const tm__job_mark *mark);
bool tm__job_dirty(tm_job *job);
