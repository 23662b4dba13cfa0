/* The racing load of test_ordering.c, shared with ordering-helper: one
 * thread's loop of exclusive triggers, patches and cancels on the newest
 * tasks of one name, and the log of every status it observed.
 *
 * Times are CLOCK_MONOTONIC nanoseconds, the same clock in every process
 * of the machine, read just before a call and just after it returns: the
 * call took effect somewhere in [before, after]. */
#ifndef TM_ORDERING_LOAD_H
#define TM_ORDERING_LOAD_H

#include <stdint.h>
#include <stdio.h>

#include "taskmgr.h"

/* One status seen in a document returned by tm_list_recent, tm_get,
 * tm_patch or tm_cancel, or REQUEST_SENT for a task tm_trigger created. */
struct ol_obs {
	char id[TM_TASK_ID_LEN + 1];
	int status;          /* tm_status */
	int64_t before, after;
	unsigned proc, thread, seq;  /* seq: the thread's count of calls */
};

/* A trigger that succeeded.  after_rt_us is CLOCK_REALTIME (the library's
 * clock for start_time and end_time) read after it returned. */
struct ol_trig {
	char id[TM_TASK_ID_LEN + 1];
	int64_t before, after, after_rt_us;
	unsigned proc, thread;
};

struct ol_log {
	struct ol_obs *obs;
	size_t n_obs, cap_obs;
	struct ol_trig *trig;
	size_t n_trig, cap_trig;
	unsigned long calls, busy, lower;  /* calls; TASK_ALREADY_RUNNING; LOWER_STATUS */
	unsigned errors;       /* answers the contract does not allow */
	char first_error[256];
};

/* Run @p ops operations on tasks of @p name (registered exclusive, no
 * handler) as thread @p thread of process @p proc, appending to @p log. */
void ol_run(tm_manager *tm, const char *name, unsigned proc, unsigned thread,
            unsigned ops, unsigned seed, struct ol_log *log);

/* Move every entry of @p from to the end of @p to. */
void ol_append(struct ol_log *to, struct ol_log *from);
void ol_free(struct ol_log *log);

/* The log as text lines, and back.  ol_read returns 0, or -1 for a line
 * it cannot parse. */
int ol_write(FILE *f, const struct ol_log *log);
int ol_read(FILE *f, struct ol_log *log);

/* The tm_status of a status name; -1 for anything else. */
int ol_status_of(const char *s);

int64_t ol_mono_ns(void);
int64_t ol_real_us(void);

#endif
