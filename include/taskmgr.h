/**
 * @file taskmgr.h
 * @brief libtaskmgr: durable background tasks for C hosts.
 *
 * @mainpage libtaskmgr
 *
 * libtaskmgr stores background tasks durably in an LMDB environment and runs
 * them on worker threads.  A host opens a store (tm_open()), registers each
 * task name with its handler and policy (tm_register()), and serves the five
 * calls of the "Background Tasks" REST API: tm_trigger(), tm_list_recent(),
 * tm_get(), tm_patch() and tm_cancel().  Every call takes and returns the
 * JSON documents of that API, so an HTTP layer or a language binding is a thin
 * router over this header.
 *
 * @section conventions Conventions
 *
 * - Every fallible function returns #TM_OK (0) or a negative #tm_error.  On
 *   failure, any `char **out_json` is set to NULL and tm_last_error() gives a
 *   message for the calling thread.
 * - Every string the library returns is freed by the caller with tm_free()
 *   (which is free()).
 *   Strings passed in are copied when they are kept.
 * - Every function taking a #tm_manager is safe to call from any thread,
 *   concurrently, on the same manager.
 *
 * @section caveats Caveats
 *
 * - A store directory may be opened once per process (LMDB forbids more):
 *   a second tm_open() of the same path in one process fails with #TM_EINVAL.
 *   Several processes may open the same store.  The same holds for a
 *   PostgreSQL store (one URI and schema): many processes on many machines
 *   may open it, each once.
 * - Never use a manager across fork(): open it again in the child.
 * - Never call tm_close() from inside a handler.
 * - A handler runs on a worker thread with no store transaction held; it may
 *   call any function of this header except tm_close().
 */
#ifndef TASKMGR_H
#define TASKMGR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TM_BUILDING) && defined(__GNUC__)
#define TM_EXTERN __attribute__((visibility("default")))
#else
#define TM_EXTERN
#endif

#if defined(__GNUC__)
#define TM_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TM_PRINTF(f, a)
#endif

/** @name Version */
/**@{*/
#define TM_VERSION_MAJOR 0
#define TM_VERSION_MINOR 1
#define TM_VERSION_PATCH 0
#define TM_VERSION_STRING "0.1.0"
/**@}*/

/** Opaque handle: an open store plus its worker threads. */
typedef struct tm_manager tm_manager;

/** Opaque handle: a running task, as its handler sees it. */
typedef struct tm_job tm_job;

/**
 * Task status.  Ranks: REQUEST_SENT 0, RUNNING 1, CANCELLED_REQUESTED 2,
 * FAILED / CANCELLED / COMPLETED 3 (final).  A change from s to t is allowed
 * when t == s or rank(t) > rank(s); anything else is #TM_ELOWER_STATUS.
 */
typedef enum {
	TM_REQUEST_SENT = 0,
	TM_RUNNING = 1,
	TM_CANCELLED_REQUESTED = 2,
	TM_FAILED = 3,
	TM_CANCELLED = 4,
	TM_COMPLETED = 5
} tm_status;

/** Error codes.  Values are stable and only ever appended. */
typedef enum {
	TM_OK = 0,
	TM_EWRONG_DATA = -1,         /**< WRONG_DATA_TYPE: bad input */
	TM_ELOWER_STATUS = -2,       /**< LOWER_STATUS_NOT_ALLOWED */
	TM_EALREADY_RUNNING = -3,    /**< TASK_ALREADY_RUNNING */
	TM_ETASK_NOT_FOUND = -4,     /**< TASK_NOT_FOUND */
	TM_ETABLE_NOT_FOUND = -5,    /**< TABLE_NOT_FOUND (from validate hooks) */
	TM_ERESOURCE_NOT_FOUND = -6, /**< RESOURCE_NOT_FOUND (from validate hooks) */
	TM_ESTORAGE = -7,            /**< STORAGE_ERROR: disk, map cap, I/O */
	TM_ENOMEM = -8,              /**< OUT_OF_MEMORY */
	TM_EINVAL = -9               /**< INVALID_ARGUMENT: API misuse */
} tm_error;

/** @name Flags */
/**@{*/
/** Call flag: public view (only public names, no `details`). */
#define TM_PUBLIC 0x1u
/** Open flag: do not fsync commits.  For tests and benchmarks only. */
#define TM_OPEN_NOSYNC 0x1u
/** Job flag: the name is reachable with #TM_PUBLIC. */
#define TM_JOB_PUBLIC 0x1u
/** Job flag: at most one active task of the name at a time. */
#define TM_JOB_EXCLUSIVE 0x2u
/**@}*/

/** Length of a task id, without the terminating NUL. */
#define TM_TASK_ID_LEN 20
/** Longest task name accepted by tm_register(). */
#define TM_NAME_MAX 64

/** Current version of #tm_options. */
#define TM_OPTIONS_VERSION 2

/**
 * Options of tm_open().  Initialise with #TM_OPTIONS_INIT or
 * tm_options_init(), then set `path`.  Fields are only ever appended, each
 * append bumps #TM_OPTIONS_VERSION, and the library reads only the fields
 * that exist in the caller's `version`.  Zero in a numeric field other than
 * `workers` and `flags` means "the default".
 */
typedef struct tm_options {
	unsigned int version;     /**< #TM_OPTIONS_VERSION */
	const char *path;         /**< LMDB store directory (created if missing), or a
	                           *   postgresql:// or postgres:// libpq URI naming a
	                           *   PostgreSQL store (doc/postgresql.md); copied.
	                           *   A URI is #TM_EINVAL in a build without libpq. */
	unsigned int workers;     /**< worker threads (default 2; 0 = none) */
	unsigned int flags;       /**< #TM_OPEN_NOSYNC */
	uint64_t map_size;        /**< initial LMDB map size, bytes (default 64 MiB) */
	uint64_t map_size_max;    /**< cap for map growth, bytes (default 4 GiB) */
	unsigned int poll_ms;     /**< poll for other processes' work (default 250) */
	unsigned int lease_ms;    /**< lease of a running task (default 30000) */
	unsigned int grace_ms;    /**< tm_close() wait for handlers (default 10000) */
	unsigned int progress_ms; /**< coalescing window of progress (default 200) */
	unsigned int keep_count;  /**< final tasks kept per name (default 1000) */
	double keep_age_s;        /**< final tasks older are pruned (default 30 days) */
	/* Version 2: limits on what callers may store and ask for
	 * (doc/reliability.md, "Limits").  A call over one fails with
	 * #TM_EWRONG_DATA naming it, and changes nothing. */
	uint64_t max_task_bytes;    /**< a task document (default 1 MiB) */
	uint64_t max_details_bytes; /**< a task's `details` (default 256 KiB) */
	unsigned int max_keys;      /**< object keys in a task's `details` (default 10000) */
	uint64_t max_list_bytes;    /**< one tm_list_recent() answer (default 8 MiB;
	                             *   at least twice max_task_bytes) */
} tm_options;

/** Static initialiser of #tm_options: the current version, its defaults. */
#define TM_OPTIONS_INIT { TM_OPTIONS_VERSION, NULL, 2, 0, 64ull << 20, \
                          4096ull << 20, 250, 30000, 10000, 200, 1000, \
                          30 * 86400.0, 1ull << 20, 256ull << 10, 10000, \
                          8ull << 20 }

/** Current version of #tm_job_def. */
#define TM_JOB_DEF_VERSION 2

/**
 * A task name and its policy, for tm_register().  Initialise with
 * #TM_JOB_DEF_INIT or tm_job_def_init(), then set at least `name`.  Strings
 * are copied.  Versioned like #tm_options.
 */
typedef struct tm_job_def {
	unsigned int version; /**< #TM_JOB_DEF_VERSION */
	const char *name;     /**< 1..#TM_NAME_MAX chars of [A-Za-z0-9_.-] */
	unsigned int flags;   /**< #TM_JOB_PUBLIC, #TM_JOB_EXCLUSIVE */
	/** Handler, run on a worker thread; NULL: an external worker drives
	 *  the tasks through tm_patch().  Returns #TM_COMPLETED, #TM_FAILED or
	 *  #TM_CANCELLED. */
	tm_status (*run)(tm_job *job, void *user);
	/** Optional check of the trigger's `context_task` (JSON text, "{}" when
	 *  absent), called synchronously by tm_trigger() before anything is
	 *  stored.  Returns #TM_OK, or an error set with tm_errorf():
	 *  #TM_EWRONG_DATA, #TM_ETABLE_NOT_FOUND or #TM_ERESOURCE_NOT_FOUND
	 *  (or #TM_ESTORAGE / #TM_ENOMEM for its own failures).  A value that
	 *  is not a #tm_error makes tm_trigger() fail with #TM_EINVAL. */
	int (*validate)(const char *context_json, void *user);
	void *user;                /**< passed to run and validate */
	double timeout_s;          /**< per task, from start_time (default 86400) */
	unsigned int max_attempts; /**< runs before FAILED is final (default 1) */
	double retry_backoff_s;    /**< first retry delay, doubled each time (default 1) */
	unsigned int concurrency;  /**< running tasks of the name at once (0 = no limit) */
	double interval_s;         /**< auto-trigger when last task is older (0 = off) */
	uint64_t change_threshold; /**< auto-trigger after this many tm_notify() changes (0 = off) */
	double min_interval_s;     /**< no auto-trigger sooner after the last task */
	/* Version 2: scheduling and flow control. */
	/** Five-field cron expression (or `@hourly`, `@daily`, `@weekly`, …):
	 *  trigger a task at each due time, once per store (NULL = none). */
	const char *cron;
	/** IANA time zone of `cron`, e.g. "Europe/Berlin" (NULL = UTC). */
	const char *cron_tz;
	/** Name to trigger when a task of this name COMPLETES, in the same
	 *  transaction (NULL = none), with the finished task's
	 *  `details.output` as `context_task` (doc/runtime.md, "Pipelines").
	 *  Every process that completes tasks of this name must register
	 *  the next name too.  A cycle is refused. */
	const char *then;
	/** Starts per second of this name, across every process sharing the
	 *  store: a token bucket (0 = no limit). */
	double rate_per_s;
	/** The bucket's size: starts allowed at once (0 with a rate: 1). */
	unsigned int burst;
} tm_job_def;

/** Static initialiser of #tm_job_def: the current version, its defaults. */
#define TM_JOB_DEF_INIT { TM_JOB_DEF_VERSION, NULL, 0, NULL, NULL, NULL, \
                          86400.0, 1, 1.0, 0, 0.0, 0, 0.0, \
                          NULL, NULL, NULL, 0.0, 0 }

/* ------------------------------------------------------------------ */
/** @name Lifecycle */
/**@{*/

/**
 * Fill @p opts with the defaults of @p version (pass #TM_OPTIONS_VERSION):
 * the same values as #TM_OPTIONS_INIT.  `path` is left NULL.  Only the
 * fields of that version are written.
 * @return #TM_OK; #TM_EINVAL for a NULL @p opts or a version this library
 *         does not know (nothing is written then).
 */
TM_EXTERN int tm_options_init(tm_options *opts, unsigned int version);

/**
 * Open (creating if needed) the store at `opts->path` and start its workers.
 *
 * @param opts options; read during the call only
 * @param out  receives the manager; NULL on failure
 * @return #TM_OK; #TM_EINVAL for NULL arguments, a bad option, or a path
 *         already open in this process; #TM_ESTORAGE when the directory
 *         cannot be created or opened, the database cannot be reached, or
 *         the store was written by a newer schema; #TM_ENOMEM.
 * @note Thread-safe.
 */
TM_EXTERN int tm_open(const tm_options *opts, tm_manager **out);

/**
 * Close a manager: stop taking tasks, tell running handlers to stop
 * (tm_job_cancelled() becomes true), wait up to `grace_ms` for them, and
 * leave unfinished tasks to be resumed by the next open without counting an
 * attempt.  NULL is a no-op.  Call it once, from a thread that is not a
 * handler, after every other call on @p tm has returned.  As a guard
 * against misuse, a second tm_close() of the handle does nothing and any
 * later call on it fails with #TM_EINVAL, until a later tm_open() reuses
 * the handle's memory (the guard is a courtesy, not a contract).
 */
TM_EXTERN void tm_close(tm_manager *tm);

/**
 * Fill @p def with the defaults of @p version (pass #TM_JOB_DEF_VERSION):
 * the same values as #TM_JOB_DEF_INIT.  `name` is left NULL.
 * @return #TM_OK; #TM_EINVAL for a NULL @p def or an unknown version.
 */
TM_EXTERN int tm_job_def_init(tm_job_def *def, unsigned int version);

/**
 * Register a task name with its handler and policy.  Names are registered
 * per manager; every call naming an unregistered name is #TM_EWRONG_DATA.
 *
 * @return #TM_OK; #TM_EINVAL for a NULL argument, a name that is empty, too
 *         long, has other characters than [A-Za-z0-9_.-], or is already
 *         registered, unknown flags, or a negative or non-finite duration,
 *         or a `then` that is not a task name or leads back to @p def's
 *         name through the `then` of the names registered (a cycle);
 *         #TM_ENOMEM; #TM_ESTORAGE.
 * @note Thread-safe.
 */
TM_EXTERN int tm_register(tm_manager *tm, const tm_job_def *def);
/**@}*/

/* ------------------------------------------------------------------ */
/** @name The five calls
 *
 * `flags` is 0 (private view: every registered name, `details` included) or
 * #TM_PUBLIC (public names only, no `details`); any other bit is
 * #TM_EINVAL.  `out_json` may be NULL
 * when the caller does not want the document; otherwise it receives a string
 * to free with tm_free(), or NULL on failure.  All are thread-safe.
 */
/**@{*/

/**
 * Create a task of @p name.
 *
 * @param body_json NULL, or `{"context_task": {...}, "refresh_token": "...",
 *        "create_reason": "..."}`, every field optional, no others.
 * @param out_json  receives `{"task_id": "..."}`
 * @return #TM_OK once the task is durably stored (unless #TM_OPEN_NOSYNC);
 *         #TM_EWRONG_DATA (unregistered or non-public name, malformed body);
 *         #TM_EWRONG_DATA also for a number a double cannot hold (an
 *         integer beyond +-2^53, an overflow) and for a task over the
 *         limits of #tm_options (`max_details_bytes`, `max_keys`,
 *         `max_task_bytes`), named in the message;
 *         whatever the name's validate hook answers; #TM_EALREADY_RUNNING
 *         for an exclusive name with an active task; #TM_ESTORAGE;
 *         #TM_ENOMEM; #TM_EINVAL for a NULL manager or an unknown flag.
 */
TM_EXTERN int tm_trigger(tm_manager *tm, const char *name,
                         const char *body_json, unsigned flags,
                         char **out_json);

/** Most bodies one tm_trigger_many() takes. */
#define TM_TRIGGER_MANY_MAX 1000

/**
 * Create tasks of @p name in bulk: one write transaction, all or nothing.
 *
 * @param bodies_json a JSON array of 1 to #TM_TRIGGER_MANY_MAX trigger
 *        bodies, each as tm_trigger() takes it (`{}` for none).
 * @param out_json  receives `{"task_ids": [...]}`, in the order of the bodies
 * @return #TM_OK once every task is durably stored; #TM_EWRONG_DATA for a
 *         bad name or array, or a bad body (the message names its index),
 *         or a task over the limits of #tm_options, or a batch whose tasks
 *         add up to more than `max_list_bytes`: nothing is stored then;
 *         what the name's validate hook answers for any body;
 *         #TM_EALREADY_RUNNING for an exclusive name with an active task,
 *         or with more than one body (it takes one task at a time);
 *         #TM_ESTORAGE; #TM_ENOMEM; #TM_EINVAL.
 */
TM_EXTERN int tm_trigger_many(tm_manager *tm, const char *name,
                              const char *bodies_json, unsigned flags,
                              char **out_json);

/**
 * List tasks of @p name, newest `start_time` first (ties: `task_id`
 * descending).
 *
 * @param page 1 or more; 0 means 1
 * @param amt  1..64; 0 means 50
 * @param out_json receives `{"has_next": b, "next_page": page+1, "tasks": [...]}`
 * @return #TM_OK; #TM_EWRONG_DATA for a bad name, page or amt, or a page
 *         larger than `max_list_bytes` (ask for fewer); #TM_ESTORAGE;
 *         #TM_ENOMEM; #TM_EINVAL.
 */
TM_EXTERN int tm_list_recent(tm_manager *tm, const char *name, int page,
                             int amt, unsigned flags, char **out_json);

/**
 * Read one task.
 *
 * @return #TM_OK; #TM_EWRONG_DATA for a bad name or an id that is not 20
 *         characters of [A-Za-z0-9]; #TM_ETASK_NOT_FOUND when no task of that
 *         name has that id; #TM_ESTORAGE; #TM_ENOMEM; #TM_EINVAL.
 */
TM_EXTERN int tm_get(tm_manager *tm, const char *name, const char *task_id,
                     unsigned flags, char **out_json);

/**
 * Update a task, as an external worker or an operator would.
 *
 * @param patch_json `{"status": s, "details": {...}, "completed": true,
 *        "failed": true}`, every field optional, no others.  `status` is one
 *        of RUNNING, CANCELLED_REQUESTED, CANCELLED, FAILED, COMPLETED.
 *        `details` is merged by RFC 7396; the keys the library owns
 *        (`payload`, `timeout_at`, `create_reason`, `attempts`, `end_time`)
 *        may not be patched, and `progress` must stay an object.  Once a
 *        task is final (FAILED, CANCELLED, COMPLETED), its status,
 *        `details.error` and `details.progress` no longer change either;
 *        other keys of `details` may still be merged.  A patch that
 *        COMPLETES a task of a name with a `then` creates the next task
 *        in the same transaction (tm_job_def.then).
 * @param out_json receives the updated task (private view)
 * @return #TM_OK; #TM_EWRONG_DATA (bad name, id or body, contradictory
 *         fields, a task over the limits of #tm_options);
 *         #TM_ELOWER_STATUS (the ordering rule, or a change to a final
 *         task's status, error or progress); #TM_ETASK_NOT_FOUND;
 *         #TM_ESTORAGE; #TM_ENOMEM; #TM_EINVAL.
 */
TM_EXTERN int tm_patch(tm_manager *tm, const char *name, const char *task_id,
                       const char *patch_json, char **out_json);

/**
 * Cancel a task: REQUEST_SENT (or waiting to retry) becomes CANCELLED at
 * once; RUNNING becomes CANCELLED_REQUESTED and its handler sees
 * tm_job_cancelled(); any other status is left as it is, without error.
 *
 * @param out_json receives the task after the call (private view)
 * @return #TM_OK; #TM_EWRONG_DATA; #TM_ETASK_NOT_FOUND; #TM_ESTORAGE;
 *         #TM_ENOMEM; #TM_EINVAL.
 */
TM_EXTERN int tm_cancel(tm_manager *tm, const char *name, const char *task_id,
                        char **out_json);

/**
 * Retry a task by hand: a new task of the same name, with the FAILED or
 * CANCELLED task's payload as its `context_task`, `create_reason`
 * `"retry of <task_id>"` and `details.retry_of` the old task's id.  The
 * name's validate hook checks the payload again, and exclusivity applies
 * as for a trigger.  The old task's refresh token does not go along: it
 * was erased when the task ended.
 *
 * @param out_json receives `{"task_id": "..."}` (the new task's id)
 * @return #TM_OK; #TM_ETASK_NOT_FOUND; #TM_ELOWER_STATUS when the task is
 *         not final, or is COMPLETED; #TM_EWRONG_DATA for a malformed id;
 *         the validate hook's error; #TM_EALREADY_RUNNING (exclusive
 *         name); #TM_ESTORAGE; #TM_ENOMEM; #TM_EINVAL.  Thread-safe.
 */
TM_EXTERN int tm_retry(tm_manager *tm, const char *name, const char *task_id,
                       char **out_json);

/**
 * Pause a task name: its tasks are still triggered and stored, but no
 * worker of any process sharing the store starts one until tm_resume().
 * Runs already started go on to their end.  The state is durable, shared
 * by every process (and node), and shown by tm_stats() as
 * `names.<name>.paused`.  Pausing a paused name, or resuming one that is
 * not, does nothing.  A claim already under way when the pause commits
 * may still start its task (doc/runtime.md, "Pause").
 *
 * @return #TM_OK; #TM_EWRONG_DATA (name not registered here);
 *         #TM_ESTORAGE; #TM_ENOMEM; #TM_EINVAL.  Thread-safe.
 */
TM_EXTERN int tm_pause(tm_manager *tm, const char *name);

/** Resume a paused name (tm_pause()): its waiting tasks may start again,
 *  in every process.  Same returns as tm_pause(). */
TM_EXTERN int tm_resume(tm_manager *tm, const char *name);
/**@}*/

/* ------------------------------------------------------------------ */
/** @name Automatic triggers, figures and backups */
/**@{*/

/**
 * Add @p n_changes to the durable change counter of @p name, which the
 * `change_threshold` automatic trigger reads.
 *
 * @return #TM_OK; #TM_EWRONG_DATA for an unregistered name; #TM_ESTORAGE;
 *         #TM_EINVAL.  Thread-safe.
 */
TM_EXTERN int tm_notify(tm_manager *tm, const char *name, uint64_t n_changes);

/**
 * Figures of the store: `{"names": {name: {"REQUEST_SENT": n, ...,
 * "changes": n, "paused": b}}, "queue_depth": n, "oldest_waiting_age_s": x,
 * "store_bytes": n, "free_bytes": n, "map_bytes": n, "commits": n,
 * "workers": n, "workers_idle": n, "supervisor_ticks": n,
 * "supervisor_cpu_s": x}`:
 * store_bytes is the data file up to its high-water mark, free_bytes the
 * part of it LMDB will reuse, commits this manager's write transactions,
 * workers its worker threads and workers_idle those waiting for work;
 * supervisor_ticks counts the supervisor's full rounds of checks so far
 * and supervisor_cpu_s the CPU time they took; paused says whether the
 * name is paused (tm_pause()).
 *
 * @return #TM_OK; #TM_ESTORAGE; #TM_ENOMEM; #TM_EINVAL.  Thread-safe.
 */
TM_EXTERN int tm_stats(tm_manager *tm, char **out_json);

/**
 * Check that every index of the store agrees with the task records.
 *
 * @param out_json receives `{"ok": b, "tasks": n, "problems": [...]}`
 * @return #TM_OK when the check ran (read `ok`); #TM_ESTORAGE; #TM_ENOMEM;
 *         #TM_EINVAL.  Thread-safe.
 */
TM_EXTERN int tm_check(tm_manager *tm, char **out_json);

/**
 * The figures an operator scrapes, as Prometheus text (exposition format
 * 0.0.4), for a host to serve at its metrics endpoint:
 * - read from the store, the same in every process that shares it:
 *   `taskmgr_tasks{name,status}`, `taskmgr_queue_depth{name}` (tasks
 *   waiting for their first start), `taskmgr_oldest_waiting_age_seconds{name}`,
 *   `taskmgr_store_bytes`, `taskmgr_store_free_bytes`;
 * - counted by this manager since tm_open(), from its committed writes:
 *   `taskmgr_triggers_total{name}`, `taskmgr_retries_total{name}`,
 *   `taskmgr_timeouts_total{name}`, `taskmgr_lost_workers_total{name}`,
 *   the histogram `taskmgr_task_duration_seconds{name}` of runs from
 *   RUNNING to a final status, `taskmgr_commits_total`, and the gauges
 *   `taskmgr_workers` and `taskmgr_workers_idle`.
 *
 * doc/api.md, "Metrics", says what each counts.
 *
 * @param out_text receives the text; free with tm_free()
 * @return #TM_OK; #TM_ESTORAGE; #TM_ENOMEM; #TM_EINVAL.  Thread-safe.
 */
TM_EXTERN int tm_metrics(tm_manager *tm, char **out_text);

/**
 * Write a consistent copy of the store into the new directory @p dest_dir
 * while the store stays in use (by this process and others): its tasks as
 * one snapshot saw them, compacted (free pages left out), and the keys
 * their refresh tokens are encrypted under, which live in the store
 * directory's `keys` file and are copied after the snapshot.  tm_open() of
 * @p dest_dir opens the copy.  The copy is written into a temporary
 * sibling, `<dest_dir>.tmp-XXXXXX`, synced and then renamed to
 * @p dest_dir, so that a failure leaves nothing behind.  The directory is
 * made 0700 and its files 0600.
 *
 * One caveat, from the keys' copy following the snapshot: a task that was
 * active at the snapshot and ended before the keys were copied is active
 * in the copy, but without its refresh token (tm_job_secret() gives NULL
 * there), because the store had already erased it.
 *
 * @param dest_dir a directory that does not exist (its parent must), or an
 *        empty one, which the copy replaces
 * @return #TM_OK once the copy is durably in place; #TM_EINVAL for a NULL
 *         or empty @p dest_dir, one that exists and is not an empty
 *         directory (nothing is written then), or a PostgreSQL store
 *         (back it up with `pg_dump`); #TM_ESTORAGE when the copy cannot
 *         be written (a missing parent, permissions, a full disk);
 *         #TM_ENOMEM.  Thread-safe.
 */
TM_EXTERN int tm_backup(tm_manager *tm, const char *dest_dir);

/** Free a string returned by the library.  NULL is a no-op.  Every such
 *  string comes from the C library's malloc(), and tm_free() is free(),
 *  whatever cJSON hooks the host installed. */
TM_EXTERN void tm_free(void *p);
/**@}*/

/* ------------------------------------------------------------------ */
/** @name Errors and names */
/**@{*/

/** "WRONG_DATA_TYPE", ...; "OK" for 0; "UNKNOWN_ERROR" otherwise. */
TM_EXTERN const char *tm_error_name(int err);
/** "WrongData", "DuplicatedError", "NotFoundError", "ServerError"; "" for 0. */
TM_EXTERN const char *tm_error_class(int err);
/** "REQUEST_SENT", ...; NULL for a value outside #tm_status. */
TM_EXTERN const char *tm_status_name(tm_status s);
/** Message of the calling thread's last failure; "" if none.  Valid until
 *  the thread's next call into the library. */
TM_EXTERN const char *tm_last_error(void);
/** Set the calling thread's message (printf format) and return @p err. */
TM_EXTERN int tm_errorf(int err, const char *fmt, ...) TM_PRINTF(2, 3);
/** The library's version, "0.1.0". */
TM_EXTERN const char *tm_version(void);
/**@}*/

/* ------------------------------------------------------------------ */
/** @name Inside a handler
 *
 * These take the #tm_job a handler receives and are valid only until the
 * handler returns.  Strings they return belong to the job.  They may be
 * called from the handler's thread or from threads the handler waits for.
 */
/**@{*/

/** The task's id (20 characters). */
TM_EXTERN const char *tm_job_task_id(const tm_job *job);
/** The task's name. */
TM_EXTERN const char *tm_job_name(const tm_job *job);
/** The trigger's `context_task` as JSON text ("{}" when absent). */
TM_EXTERN const char *tm_job_payload(const tm_job *job);
/** The trigger's `refresh_token`, or NULL. */
TM_EXTERN const char *tm_job_secret(const tm_job *job);
/** This run's attempt number, from 1. */
TM_EXTERN unsigned tm_job_attempt(const tm_job *job);

/**
 * Merge @p progress_json (an object) into `details.progress` (RFC 7396).
 * Cheap: writes are coalesced; the last value reaches the store before the
 * task's final status.
 * @return #TM_OK; #TM_EWRONG_DATA when it is not a JSON object, or when
 *         the progress would exceed half of `max_details_bytes` or
 *         `max_keys` (nothing changes then); #TM_ENOMEM.
 */
TM_EXTERN int tm_job_progress(tm_job *job, const char *progress_json);
/** Set `details.progress.message` (printf format).  Coalesced like
 *  tm_job_progress(), and limited like it. */
TM_EXTERN int tm_job_message(tm_job *job, const char *fmt, ...) TM_PRINTF(2, 3);
/** Append a string to the task's `warnings` (printf format).
 *  #TM_EWRONG_DATA once this run's warnings would exceed a quarter of
 *  `max_task_bytes`. */
TM_EXTERN int tm_job_warn(tm_job *job, const char *fmt, ...) TM_PRINTF(2, 3);
/**
 * Set the run's output, `details.output`, to @p output_json (a JSON
 * object), replacing any output set before.  Written with the task's
 * final status (and coalesced like tm_job_progress() until then).  When
 * the task COMPLETES and its name has a `then`, the output becomes the
 * next task's `context_task`.  Each attempt starts without an output.
 * @return #TM_OK; #TM_EWRONG_DATA when it is not a JSON object, or over a
 *         quarter of `max_details_bytes` or of `max_keys` (nothing
 *         changes then); #TM_ENOMEM; #TM_EINVAL for a NULL argument.
 */
TM_EXTERN int tm_job_output(tm_job *job, const char *output_json);
/** Nonzero once the task should stop: cancel requested, timed out, lease
 *  lost, or not renewed for two thirds of `lease_ms` (the store is out of
 *  reach: doc/runtime.md, "Self-fencing"), or the manager closing.  Poll
 *  it more often than a third of `lease_ms`. */
TM_EXTERN int tm_job_cancelled(const tm_job *job);
/** Record `details.error` (printf format; its first 4096 bytes) and return
 *  #TM_FAILED, so a handler can `return tm_job_fail(job, "...")`. */
TM_EXTERN tm_status tm_job_fail(tm_job *job, const char *fmt, ...) TM_PRINTF(2, 3);
/**@}*/

#ifdef __cplusplus
}
#endif

#endif /* TASKMGR_H */
