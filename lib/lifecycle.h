/* The task lifecycle (lifecycle.c): every rule about what happens to a task
 * lives here — creating it (exclusivity), entering a status (the ordering
 * rule and what each status implies), cancelling, patching, claiming a run,
 * the outcome of a run (retry with backoff, requeue at close), timeouts and
 * lost workers.  The façade (api.c) and the runtime (worker.c,
 * supervisor.c, runtime.c) both call down into it; it calls only the store
 * and the leaf modules.  doc/api.md and doc/runtime.md state the rules. */
#ifndef TM_LIFECYCLE_H
#define TM_LIFECYCLE_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "registry.h"
#include "store.h"
#include "task.h"

/* Retry delays double from retry_backoff_s up to this. */
#define TM__BACKOFF_CAP_S 3600.0

/* Decides, inside the write transaction that would create a task, whether
 * to create it: *go false creates nothing (automatic triggers). */
typedef int (*tm__gate_fn)(tm__txn *txn, void *ctx, bool *go);

/* Create a task of job in one write transaction: exclusivity checked, the
 * secret stored apart, the name's change counter reset.  The new task is
 * checked against lim first, when given.  gate (optional) runs first in
 * the transaction; *created says whether it let the task be made, and id
 * then holds its id. */
int tm__lifecycle_create(tm__store *s, const tm__limits *lim,
                         const tm__jobreg *job, const cJSON *context,
                         const char *secret, const char *reason,
                         tm__gate_fn gate, void *gctx,
                         char id[TM_TASK_ID_LEN + 1], bool *created);

/* One task to create: its context_task, secret (or NULL) and reason; and
 * for a manual retry, the id of the task it retries (else NULL), which
 * goes to details.retry_of. */
typedef struct tm__new_task {
	const cJSON *context;
	const char *secret;
	const char *reason;
	const char *retry_of;
	bool scheduled;     /* not before not_before (epoch seconds) */
	double not_before;
	bool has_priority;  /* priority given (details.priority shows it) */
	int priority;
	const tm__task *after; /* a pipeline's: the task that completed (its
	                        * name and id go to details.after), or NULL */
} tm__new_task;

/* The payload (details.payload, a copy to *payload) and priority of task
 * id of name, to be retried by hand (tm_retry): TM_ETASK_NOT_FOUND; TM_ELOWER_STATUS
 * unless the task is FAILED or CANCELLED. */
int tm__lifecycle_retry_source(tm__store *s, const char *name, const char *id,
                               cJSON **payload, int *priority);

/* How tasks are created (NULL: plainly). */
typedef struct tm__create_how {
	tm__gate_fn gate;   /* see tm__lifecycle_create */
	void *gctx;
	/* Nonzero: claim the (single) task in the commit that creates it, for
	 * a run under this token with a lease of lease_us, and move the task
	 * as claimed to *claimed (the caller frees it).  A paused name's task
	 * is not claimed, and *claimed is left as it was. */
	uint64_t token;
	int64_t lease_us;
	tm__task *claimed;
} tm__create_how;

/* tm__lifecycle_create for n tasks in one write transaction, all or none:
 * ids[i] gets the id of items[i].  Limits are checked for each task and,
 * for a batch, for their sum (lim->list_bytes).  An exclusive name takes
 * a batch of one only (TM_EALREADY_RUNNING). */
int tm__lifecycle_create_many(tm__store *s, const tm__limits *lim,
                              const tm__jobreg *job, const tm__new_task *items,
                              size_t n, const tm__create_how *how,
                              char (*ids)[TM_TASK_ID_LEN + 1], bool *created);

/* What a write needs to follow a task that COMPLETES with the task its
 * name's `then` names (a pipeline): the names this process knows, and the
 * limits a new task is checked against.  `created` says, once the write
 * has committed, whether it created any next task (the caller then wakes
 * the workers).  NULL where a write cannot complete a task. */
typedef struct tm__follow {
	tm__registry *reg;
	const tm__limits *lim;
	bool created;
} tm__follow;

/* A change asked by a caller: tm_patch() or tm_cancel(). */
typedef struct tm__change {
	int status;            /* a tm_status to enter, or -1 */
	const cJSON *details;  /* merge patch of details, or NULL */
	bool cancel;           /* tm_cancel()'s rule */
} tm__change;

/* Apply ch to task id of name in one write transaction, and render the task
 * after it (private view) into out.  A task that COMPLETES here is followed
 * by its next task in the same transaction (f).  *stop_handler: a handler
 * running the task must now be told to stop.  A details patch is merged
 * and checked against lim (optional) before the transaction; the
 * transaction merges again only if the task's details changed meanwhile.
 * Once a task is final, its status and the library's own keys of details
 * never change (TM_ELOWER_STATUS); other keys may still be merged. */
int tm__lifecycle_change(tm__store *s, const tm__limits *lim, const char *name,
                         const char *id, const tm__change *ch, tm__follow *f,
                         tm__buf *out, bool *stop_handler);

/* t has just COMPLETED in txn: create the task its name's `then` names, in
 * the same transaction, or warn on t why not (f NULL: nothing follows). */
int tm__lifecycle_follow(tm__txn *txn, tm__task *t, tm__follow *f);

/* Move t to status st, with what entering it implies: end_time and the
 * secret erased for a final status, leaving the queue when an external
 * worker starts it.  TM_ELOWER_STATUS when the ordering rule forbids it.
 * Every status change goes through here. */
int tm__lifecycle_enter(tm__txn *txn, tm__task *t, tm_status st);

/* Whether a claim at now runs t, rather than ending it without a run (a
 * cancel asked while it waited, or its timeout passed). */
bool tm__lifecycle_claim_runs(const tm__task *t, int64_t now);

/* A worker dequeued t at `now`.  A task cancelled or timed out while it
 * waited is ended here (*run false); otherwise the run starts under the
 * claim token, with a lease until lease_until (*run true). */
int tm__lifecycle_claim(tm__txn *txn, tm__task *t, int64_t now, uint64_t token,
                        int64_t lease_until, bool *run);

/* What a run came to: the handler answered st (anything but COMPLETED,
 * FAILED or CANCELLED is a handler bug and ends FAILED).  A failure with
 * attempts left is retried after the backoff; during tm_close() (closing)
 * an unfinished run goes back to the queue without counting an attempt.
 * A task that COMPLETES is followed by its next task in txn (f). */
int tm__lifecycle_outcome(tm__txn *txn, tm__task *t, const tm__jobreg *reg,
                          tm_status st, bool closing, tm__follow *f);

/* t is past its timeout_at: FAILED with the warning "timed out". */
int tm__lifecycle_time_out(tm__txn *txn, tm__task *t);

/* t's lease expired: its worker is gone.  Retried if attempts are left,
 * else FAILED "worker lost"; a cancel that was asked ends CANCELLED.  reg
 * is NULL when this process does not know the name: *acted is then false
 * and t is left for a process that knows its policy. */
int tm__lifecycle_lost(tm__txn *txn, tm__task *t, const tm__jobreg *reg,
                       bool *acted);

#endif
