/* A running task, as its handler sees it (job.c: the tm_job_* calls), and
 * the runtime's side of it: the progress a run reports is kept here and
 * written into the task by the runtime, fenced by the run's claim token. */
#ifndef TM_JOB_H
#define TM_JOB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "registry.h"
#include "task.h"
#include "taskmgr.h"

/* tm_job_fail() keeps this many bytes of its text. */
#define TM__JOB_ERROR_MAX 4096

/* Why a handler should stop (bits of tm_job.stop). */
enum {
	TM__STOP_CANCEL = 1,   /* cancel requested */
	TM__STOP_TIMEOUT = 2,  /* past timeout_at: already FAILED */
	TM__STOP_LOST = 4,     /* the task is no longer ours */
	TM__STOP_CLOSE = 8     /* tm_close() */
};

struct tm_job {
	const tm__jobreg *reg;
	char id[TM_TASK_ID_LEN + 1];
	char name[TM_NAME_MAX + 1];
	char *payload;            /* context_task as JSON text */
	char *secret;             /* or NULL */
	unsigned attempt;
	uint64_t owner;           /* claim token: fences every write of this run */
	pthread_t thread;
	atomic_int stop;          /* TM__STOP_* bits */
	int64_t lease_us;         /* the manager's lease_ms, in microseconds */
	const tm__limits *lim;    /* the manager's: a handler's share of them */
	/* Until when (monotonic clock) the run's lease is surely still held:
	 * two thirds of a lease after the claim or the last renewal began.
	 * Past it, tm_job_cancelled() says stop, even while the supervisor
	 * waits on an unreachable store: no other process can have taken
	 * the task over yet, and the handler stops before one can. */
	atomic_int_fast64_t fence_us;
	atomic_int refs;          /* the worker's, plus the supervisor's while it
	                           * syncs, plus tm_close()'s while it requeues */
	struct tm_job *next;      /* in the runtime's running list */
	struct tm_job *hnext;     /* in its handoff list (running.h) */

	pthread_mutex_t mu;       /* guards what follows */
	cJSON *progress;          /* details.progress as the handler sees it */
	cJSON *warnings;          /* array: this run's warnings */
	cJSON *base_warnings;     /* the task's warnings when the run began */
	size_t warn_bytes;        /* printed size of this run's warnings, about */
	char *error;              /* tm_job_fail() */
	cJSON *output;            /* tm_job_output(), or NULL */
	uint64_t gen;             /* bumped by every progress, message, warning */
	uint64_t written_gen;     /* the gen last written to the store */
	bool returned;            /* the handler returned `outcome` */
	tm_status outcome;
	bool abandoned;           /* tm_close() gave up waiting: the worker frees
	                           * the job and touches nothing else */
};

/* A job for the run of t that was just claimed, with one reference. */
int tm__job_new(const tm__jobreg *reg, const tm__task *t, const char *secret,
                unsigned lease_ms, const tm__limits *lim,
                int64_t claimed_mono_us, tm_job **out);
/* The lease was renewed by a write that began at began_mono_us. */
void tm__job_renewed(tm_job *job, int64_t began_mono_us);
void tm__job_ref(tm_job *job);
/* Drop a reference; the last one frees the job.  NULL is a no-op. */
void tm__job_unref(tm_job *job);

/* Copy the job's unwritten progress, warnings, output and error into t (the
 * task as stored), fenced: *ours is false, and t is left alone, if t is no
 * longer this run's.  After the transaction commits, tm__job_written(mark) forgets
 * what was written.  All three are called with job->mu held. */
typedef struct tm__job_mark {
	uint64_t gen;
} tm__job_mark;
int tm__job_apply(tm_job *job, tm__task *t, tm__job_mark *mark, bool *ours);
void tm__job_written(tm_job *job, const tm__job_mark *mark);
bool tm__job_dirty(tm_job *job);

#endif
