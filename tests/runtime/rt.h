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

/* Room for a path under a test's directory. */
#define RT_PATH_MAX 512

/* No-sync options with short periods: poll 20 ms, lease 300 ms, progress
 * window 20 ms, grace 2 s. */
void rt_options(tm_options *o, const char *dir, unsigned workers);
/* tm_open with those options (ck_assert on failure). */
tm_manager *rt_open(const char *dir, unsigned workers);
/* rt_open() on a fresh tt_tmpdir(), whose path goes to *dir; end the test
 * with tt_close_tmp(). */
tm_manager *rt_open_tmp(char **dir, unsigned workers);
/* tm_open with the given options (ck_assert on failure). */
tm_manager *rt_open_with(const tm_options *o);

/* A job definition with its defaults, the name, handler and user set. */
tm_job_def rt_def(const char *name, tm_status (*run)(tm_job *, void *), void *user);

/* A handler that completes at once. */
tm_status rt_complete(tm_job *job, void *user);
/* A handler that answers at once the tm_status its user points to. */
tm_status rt_answer(tm_job *job, void *user);

/* Fields of a parsed task ("" / -1 when missing). */
const char *rt_status_of(const cJSON *task);
const char *rt_detail_str(const cJSON *task, const char *key);
double rt_detail_num(const cJSON *task, const char *key);
const char *rt_message(const cJSON *task);       /* details.progress.message */
double rt_progress_num(const cJSON *task, const char *key); /* details.progress.<key> */
int rt_has_warning(const cJSON *task, const char *text); /* exact match */
int rt_n_warnings(const cJSON *task);

/* tm_cancel must succeed and answer the task in `status`. */
void rt_assert_cancel_gives(tm_manager *tm, const char *name, const char *id,
                            const char *status);
/* The task's details.attempts must be n. */
void rt_assert_attempts(tm_manager *tm, const char *name, const char *id, int n);

/* Inside a handler, where no Check call may run: the job's own task
 * (private view) parsed, or NULL when it cannot be read. */
cJSON *rt_job_task(tm_manager *tm, const tm_job *job);

/* Wait until ok(task, arg) holds of the task's private view; returns 1
 * if it did. */
int rt_wait_task(tm_manager *tm, const char *name, const char *id,
                 int (*ok)(const cJSON *task, const void *arg), const void *arg,
                 double seconds);
/* Wait until the task has status `status`; returns 1 if it did. */
int rt_wait_status(tm_manager *tm, const char *name, const char *id,
                   const char *status, double seconds);
/* Assert the task reaches `status` within RT_DEADLINE. */
#define rt_await_status(tm, name, id, status) do { \
	char b_[256]; \
	ck_assert_msg(rt_wait_status((tm), (name), (id), (status), RT_DEADLINE), \
	              "task %s never reached %s (it is %s)", (id), (status), \
	              rt_status_why((tm), (name), (id), b_)); \
} while (0)
/* A metric's sample reaches value (tt_metric): counters follow a write's
 * commit on the writer's thread, a moment after its outcome is readable. */
int rt_wait_metric(tm_manager *tm, const char *series, double value, double seconds);
#define rt_await_metric(tm, series, value) \
	ck_assert_msg(rt_wait_metric((tm), (series), (value), RT_DEADLINE), \
	              "%s never came to %g (it is %g)", (series), (double)(value), \
	              tt_metric((tm), (series)))
/* The task's status, and for a FAILED task its details.error. */
const char *rt_status_why(tm_manager *tm, const char *name, const char *id, char buf[256]);

/* Wait until *flag >= value; returns 1 if it did. */
int rt_wait_atleast(atomic_int *flag, int value, double seconds);
#define rt_await_atleast(flag, value) \
	ck_assert_msg(rt_wait_atleast((flag), (value), RT_DEADLINE), \
	              "%s never reached %d (it is %d)", #flag, (value), \
	              atomic_load(flag))
/* For tt_wait: the atomic_int at flag is not 0 (a handler waits on it
 * until the test releases it). */
int rt_flag_set(void *flag);

/* A handler begins: *running counts it, and *max keeps the most handlers
 * seen running at once.  The handler ends with atomic_fetch_sub(running). */
void rt_count_running(atomic_int *running, atomic_int *max);

/* Wait until name has between lo and hi tasks (tt_count); returns 1 if it
 * did. */
int rt_wait_count(tm_manager *tm, const char *name, int lo, int hi, double seconds);
/* Assert name comes to exactly n tasks, or to at least n, within
 * RT_DEADLINE. */
#define rt_await_count(tm, name, n) \
	ck_assert_msg(rt_wait_count((tm), (name), (n), (n), RT_DEADLINE), \
	              "%s never came to %d tasks (it has %d)", (name), (n), \
	              tt_count((tm), (name)))
#define rt_await_count_atleast(tm, name, n) \
	ck_assert_msg(rt_wait_count((tm), (name), (n), 1 << 30, RT_DEADLINE), \
	              "%s never had %d tasks (it has %d)", (name), (n), \
	              tt_count((tm), (name)))

/* Supervisor barrier: registers RT_TICK_NAME (no handler, timeout 1 ms) on
 * first use; each call returns once a whole supervisor tick (timeouts,
 * automatic triggers, retention) has run after the call began.  Only for a
 * store that this process alone has open. */
#define RT_TICK_NAME "rt.tick"
void rt_barrier(tm_manager *tm);

/* Seconds since the epoch, as start_time is measured. */
double rt_now(void);
/* Monotonic seconds. */
double rt_mono(void);

/* A fresh tt_tmpdir() for a store several processes share: the store's
 * path, <dir>/store, goes to store, and when runs is not NULL, the path of
 * a runs file (rt_append_run), <dir>/runs, to runs.  Returns the directory
 * (tt_rmdir and free it). */
char *rt_shared_dir(char store[RT_PATH_MAX], char runs[RT_PATH_MAX]);

/* ---- the test clock (doc/conventions.md, "Tests") ----------------------- */

/* Create <dir>/clock holding a shift of 0 and point TM_TEST_CLOCK_FILE at
 * it: every store opened after this, by this process or by a child forked
 * after it, runs on the store clock plus the shift, which the calls below
 * move for all of them at once.  End with rt_clock_stop(). */
void rt_clock_start(const char *dir);
/* Move the store clock forward by seconds (back if negative). */
void rt_clock_advance(double seconds);
/* Shift the store clock so that it reads t (epoch seconds) now. */
void rt_clock_set(double t);
/* What the store clock reads now, in epoch seconds: rt_now() + the shift. */
double rt_clock_now(void);
/* Unset TM_TEST_CLOCK_FILE and let go of the file (stores opened with it
 * keep their mapping until they close). */
void rt_clock_stop(void);

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
/* Kill a child with SIGKILL and reap it. */
void rt_kill(pid_t pid);

/* Another process serving the same store: it opens o->path with o, calls
 * setup(tm, arg) (registering its names: nonzero is a failure), says it
 * is ready and waits for one line from the test.  Then it runs then(tm,
 * arg) when given, whose answer is its exit status, closes the store and
 * exits.  Start it before this process opens the store: no store crosses
 * a fork. */
struct rt_peer {
	pid_t pid;
	int ready, ctl; /* this side of the two pipes */
};
void rt_peer_start(struct rt_peer *p, const tm_options *o,
                   int (*setup)(tm_manager *tm, void *arg),
                   int (*then)(tm_manager *tm, void *arg), void *arg);
/* Send the peer its line ("go", "stop"). */
void rt_peer_tell(struct rt_peer *p, const char *line);
/* Wait for the peer to exit with status 0, and close the pipes. */
void rt_peer_reap(struct rt_peer *p);
/* A setup for rt_peer_start: register the tm_job_def at def. */
int rt_peer_register(tm_manager *tm, void *def);

/* Pipes carrying one short line (a task id, "go", ...). */
void rt_send(int fd, const char *line);
/* Read one line (cut to size - 1 chars); returns 0 on EOF or error.  Blocks. */
int rt_recv(int fd, char *buf, size_t size);

/* Lines of a file ("" when missing), one per run: count and search. */
int rt_file_lines(const char *path);
int rt_file_count(const char *path, const char *needle);
/* Append one line with a single O_APPEND write (atomic between processes). */
void rt_append(const char *path, const char *line);
/* A handler's line in a runs file: "<task id> <pid>". */
void rt_append_run(const char *path, const tm_job *job);
/* Each of the n tasks completes after one attempt and without a warning,
 * and the runs file holds n lines, one for each task, written by process
 * pid (any process when pid is 0). */
void rt_assert_ran_once(tm_manager *tm, const char *name, char ids[][21], int n,
                        const char *runs, pid_t pid);

#endif
