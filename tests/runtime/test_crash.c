/* Crash recovery (doc/runtime.md, "Leases and fencing"): a child process is
 * killed with SIGKILL in the middle of a job; once its lease expires, a
 * process that registered the name retries the task if attempts are left,
 * else ends it FAILED "worker lost"; a task whose cancel was requested ends
 * CANCELLED. */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rt.h"

static struct {
	atomic_int runs;
	unsigned attempt;
	char message[256];  /* details.progress.message when the run began */
	tm_manager *tm;
} h;

/* In the child: tell the parent which task runs, then hang (ignoring any
 * cancel) until killed. */
static int hang_fd = -1;

static tm_status hang(tm_job *job, void *user)
{
	struct timespec ms = { 0, 1000000 };

	(void)user;
	rt_send(hang_fd, tm_job_task_id(job));
	for (;;)
		nanosleep(&ms, NULL);
	return TM_COMPLETED;
}

/* In the parent, after the crash. */
static tm_status resume(tm_job *job, void *user)
{
	cJSON *j;

	(void)user;
	h.attempt = tm_job_attempt(job);
	if ((j = rt_job_task(h.tm, job)) != NULL) {
		snprintf(h.message, sizeof(h.message), "%s", rt_message(j));
		cJSON_Delete(j);
	}
	atomic_fetch_add(&h.runs, 1);
	return TM_COMPLETED;
}

static tm_job_def def(tm_status (*run)(tm_job *, void *), unsigned max_attempts)
{
	tm_job_def d = rt_def("job", run, NULL);

	d.max_attempts = max_attempts;
	d.retry_backoff_s = 0.01;
	return d;
}

/* Fork a child that opens a store in a fresh directory (*dir, the store
 * in its subdirectory `store`), triggers one task and hangs in its
 * handler; returns its pid once the handler runs, with the task id. */
static pid_t crashing_child(char **dir, char store[RT_PATH_MAX], unsigned max_attempts,
                            char id[21])
{
	int fds[2];
	pid_t pid;

	*dir = rt_shared_dir(store, NULL);
	ck_assert_int_eq(pipe(fds), 0);
	pid = rt_fork();
	if (pid == 0) {
		tm_options o;
		tm_job_def d = def(hang, max_attempts);
		tm_manager *tm;

		close(fds[0]);
		hang_fd = fds[1];
		rt_options(&o, store, 1);
		tm = rt_child_open(&o);
		if (tm == NULL || tm_register(tm, &d) != TM_OK ||
		    tm_trigger(tm, "job", "{\"refresh_token\": \"tok\"}", 0, NULL) != TM_OK)
			_exit(2);
		for (;;)
			pause();
	}
	close(fds[1]);
	ck_assert_msg(rt_recv(fds[0], id, 21), "the child's handler never ran");
	ck_assert_int_eq((int)strlen(id), 20);
	close(fds[0]);
	return pid;
}

static tm_manager *reopen(const char *store, unsigned max_attempts)
{
	tm_manager *tm = rt_open(store, 1);
	tm_job_def d = def(resume, max_attempts);

	memset(&h, 0, sizeof(h));
	h.tm = tm;
	ck_assert_ok(tm_register(tm, &d));
	return tm;
}

START_TEST(killed_worker_task_is_retried_on_next_open)
{
	char *dir, store[RT_PATH_MAX], id[21];
	pid_t pid = crashing_child(&dir, store, 2, id);
	tm_manager *tm;

	rt_kill(pid);
	tm = reopen(store, 2);
	rt_await_status(tm, "job", id, "COMPLETED");
	ck_assert_int_eq(atomic_load(&h.runs), 1);
	ck_assert_uint_eq(h.attempt, 2);
	ck_assert_str_eq(h.message, "worker lost during attempt 1 of 2; retrying");
	rt_assert_attempts(tm, "job", id, 2);
	/* This process recovered the run: its metrics count it. */
	rt_await_metric(tm, "taskmgr_lost_workers_total{name=\"job\"}", 1);
	rt_await_metric(tm, "taskmgr_retries_total{name=\"job\"}", 1);
	tt_assert_check(tm, -1);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(killed_worker_task_without_attempts_left_fails_worker_lost)
{
	char *dir, store[RT_PATH_MAX], id[21];
	pid_t pid = crashing_child(&dir, store, 1, id);
	tm_manager *tm;
	cJSON *task;

	rt_kill(pid);
	tm = reopen(store, 1);
	rt_await_status(tm, "job", id, "FAILED");
	task = tt_task(tm, "job", id, 0);
	ck_assert_msg(rt_has_warning(task, "worker lost"), "no \"worker lost\" warning");
	ck_assert_str_eq(rt_detail_str(task, "error"), "worker lost");
	ck_assert_int_eq((int)rt_detail_num(task, "attempts"), 1);
	cJSON_Delete(task);
	rt_barrier(tm);
	ck_assert_int_eq(atomic_load(&h.runs), 0);
	rt_await_metric(tm, "taskmgr_lost_workers_total{name=\"job\"}", 1);
	rt_await_metric(tm, "taskmgr_retries_total{name=\"job\"}", 0);
	rt_await_metric(tm, "taskmgr_task_duration_seconds_count{name=\"job\"}", 1);
	tt_assert_check(tm, -1); /* the secret went with the final status */
	tt_close_tmp(tm, dir);
}
END_TEST

/* The parent opens the store while the child runs, asks for the cancel the
 * child's handler ignores, and sees it end CANCELLED once the child died. */
START_TEST(killed_worker_of_cancel_requested_task_ends_cancelled)
{
	char *dir, store[RT_PATH_MAX], id[21];
	pid_t pid = crashing_child(&dir, store, 3, id);
	tm_manager *tm = reopen(store, 3);
	cJSON *task;

	rt_assert_cancel_gives(tm, "job", id, "CANCELLED_REQUESTED");
	rt_kill(pid);
	rt_await_status(tm, "job", id, "CANCELLED");
	task = tt_task(tm, "job", id, 0);
	ck_assert_msg(rt_has_warning(task, "worker lost"), "no \"worker lost\" warning");
	cJSON_Delete(task);
	ck_assert_int_eq(atomic_load(&h.runs), 0);
	tt_assert_check(tm, -1);
	tt_close_tmp(tm, dir);
}
END_TEST

TT_MAIN("runtime_crash",
	killed_worker_task_is_retried_on_next_open,
	killed_worker_task_without_attempts_left_fails_worker_lost,
	killed_worker_of_cancel_requested_task_ends_cancelled)
