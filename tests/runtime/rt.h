/* Helpers of the runtime and stress suites, on top of tests/common.h: fast
 * options, reading a task's fields, awaiting a status, a barrier that proves
 * the supervisor ran a whole tick, and what a forked child process needs
 * (which must never call Check's assertions). */
#ifndef TM_TEST_RT_H
#define TM_TEST_RT_H

#include <stdatomic.h>
#include <sys/types.h>

#include "common.h"

/* Deadline of every wait: generous, so that only a real bug trips it. */
#define RT_DEADLINE 20.0

/* No-sync options with short periods: poll 20 ms, lease 300 ms, progress
 * window 20 ms, grace 2 s. */
void rt_options(tm_options *o, const char *dir, unsigned workers);
/* tm_open with those options (ck_assert on failure). */
tm_manager *rt_open(const char *dir, unsigned workers);
/* tm_open with the given options (ck_assert on failure). */
tm_manager *rt_open_with(const tm_options *o);

/* A job definition with its defaults, the name, handler and user set. */
tm_job_def rt_def(const char *name, tm_status (*run)(tm_job *, void *), void *user);

/* The task's private view, parsed; cJSON_Delete it. */
cJSON *rt_task(tm_manager *tm, const char *name, const char *id);
/* Fields of a parsed task ("" / -1 when missing). */
const char *rt_status_of(const cJSON *task);
const char *rt_detail_str(const cJSON *task, const char *key);
double rt_detail_num(const cJSON *task, const char *key);
const char *rt_message(const cJSON *task);       /* details.progress.message */
int rt_has_warning(const cJSON *task, const char *text); /* exact match */
int rt_n_warnings(const cJSON *task);

/* Wait until the task has status `status`; returns 1 if it did. */
int rt_wait_status(tm_manager *tm, const char *name, const char *id,
                   const char *status, double seconds);
/* Assert the task reaches `status` within RT_DEADLINE. */
#define rt_await_status(tm, name, id, status) do { \
	char b_[32]; \
	ck_assert_msg(rt_wait_status((tm), (name), (id), (status), RT_DEADLINE), \
	              "task %s never reached %s (it is %s)", (id), (status), \
	              tt_status((tm), (name), (id), b_)); \
} while (0)

/* Wait until *flag >= value; returns 1 if it did. */
int rt_wait_atleast(atomic_int *flag, int value, double seconds);
#define rt_await_atleast(flag, value) \
	ck_assert_msg(rt_wait_atleast((flag), (value), RT_DEADLINE), \
	              "%s never reached %d (it is %d)", #flag, (value), \
	              atomic_load(flag))

/* Supervisor barrier: registers RT_TICK_NAME (no handler, timeout 1 ms) on
 * first use; each call returns once a whole supervisor tick (timeouts,
 * automatic triggers, retention) has run after the call began.  Only for a
 * store that this process alone has open. */
#define RT_TICK_NAME "rt.tick"
void rt_barrier(tm_manager *tm);

/* Number of tasks of `name` with status `status` (tm_stats). */
int rt_stat(tm_manager *tm, const char *name, const char *status);
/* tm_stats "commits". */
double rt_commits(tm_manager *tm);
/* tm_check must say ok. */
void rt_assert_check_ok(tm_manager *tm);

/* Seconds since the epoch, as start_time is measured. */
double rt_now(void);
/* Monotonic seconds. */
double rt_mono(void);

/* ---- forked children: no Check calls there ---------------------------- */

/* fork(); in the child, arrange SIGKILL when the parent dies.  Returns the
 * pid (0 in the child). */
pid_t rt_fork(void);
/* tm_open in a child (NULL on failure, reason on stderr). */
tm_manager *rt_child_open(const tm_options *o);
/* The task's status in a child ("" on error). */
const char *rt_child_status(tm_manager *tm, const char *name, const char *id,
                            char buf[32]);
/* Poll (1 ms) until the task has `status`; returns 1 if it did. */
int rt_child_wait_status(tm_manager *tm, const char *name, const char *id,
                         const char *status, double seconds);
/* Wait for a child and assert it exited with status 0. */
void rt_reap(pid_t pid);
/* Kill a child with SIGKILL and reap it. */
void rt_kill(pid_t pid);

/* Pipes carrying one short line (a task id, "go", ...). */
void rt_send(int fd, const char *line);
/* Read one line (cut to size - 1 chars); returns 0 on EOF or error.  Blocks. */
int rt_recv(int fd, char *buf, size_t size);

/* Lines of a file ("" when missing), one per run: count and search. */
int rt_file_lines(const char *path);
int rt_file_count(const char *path, const char *needle);
/* Append one line with a single O_APPEND write (atomic between processes). */
void rt_append(const char *path, const char *line);

#endif
