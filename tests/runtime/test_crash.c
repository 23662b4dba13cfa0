/* SPEC section 6, crash recovery: a child process is killed with SIGKILL in
 * the middle of a job; once its lease expires, a process that registered the
 * name retries the task if attempts are left, else ends it FAILED "worker
 * lost"; a task whose cancel was requested ends CANCELLED. */
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
	char *out = NULL;

	(void)user;
	h.attempt = tm_job_attempt(job);
	if (tm_get(h.tm, tm_job_name(job), tm_job_task_id(job), 0, &out) == TM_OK) {
		cJSON *j = cJSON_Parse(out);
		snprintf(h.message, sizeof(h.message), "%s", rt_message(j));
		cJSON_Delete(j);
		tm_free(out);
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

/* Fork a child that opens `store`, triggers one task and hangs in its
 * handler; returns its pid once the handler runs, with the task id. */
static pid_t crashing_child(const char *store, unsigned max_attempts, char id[21])
{
	int fds[2];
	pid_t pid;

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
	char *dir = tt_tmpdir(), store[512], id[21];
	pid_t pid;
	tm_manager *tm;
	cJSON *task;

	snprintf(store, sizeof(store), "%s/store", dir);
	pid = crashing_child(store, 2, id);
	rt_kill(pid);
	tm = reopen(store, 2);
	rt_await_status(tm, "job", id, "COMPLETED");
	ck_assert_int_eq(atomic_load(&h.runs), 1);
	ck_assert_uint_eq(h.attempt, 2);
	ck_assert_str_eq(h.message, "worker lost during attempt 1 of 2; retrying");
	task = rt_task(tm, "job", id);
	ck_assert_int_eq((int)rt_detail_num(task, "attempts"), 2);
	cJSON_Delete(task);
	rt_assert_check_ok(tm);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(killed_worker_task_without_attempts_left_fails_worker_lost)
{
	char *dir = tt_tmpdir(), store[512], id[21];
	pid_t pid;
	tm_manager *tm;
	cJSON *task;

	snprintf(store, sizeof(store), "%s/store", dir);
	pid = crashing_child(store, 1, id);
	rt_kill(pid);
	tm = reopen(store, 1);
	rt_await_status(tm, "job", id, "FAILED");
	task = rt_task(tm, "job", id);
	ck_assert_msg(rt_has_warning(task, "worker lost"), "no \"worker lost\" warning");
	ck_assert_str_eq(rt_detail_str(task, "error"), "worker lost");
	ck_assert_int_eq((int)rt_detail_num(task, "attempts"), 1);
	cJSON_Delete(task);
	rt_barrier(tm);
	ck_assert_int_eq(atomic_load(&h.runs), 0);
	rt_assert_check_ok(tm); /* the secret went with the final status */
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

/* The parent opens the store while the child runs, asks for the cancel the
 * child's handler ignores, and sees it end CANCELLED once the child died. */
START_TEST(killed_worker_of_cancel_requested_task_ends_cancelled)
{
	char *dir = tt_tmpdir(), store[512], id[21];
	pid_t pid;
	tm_manager *tm;
	char *out = NULL;
	cJSON *task;

	snprintf(store, sizeof(store), "%s/store", dir);
	pid = crashing_child(store, 3, id);
	tm = reopen(store, 3);
	ck_assert_ok(tm_cancel(tm, "job", id, &out));
	task = tt_json(out);
	ck_assert_str_eq(rt_status_of(task), "CANCELLED_REQUESTED");
	cJSON_Delete(task);
	rt_kill(pid);
	rt_await_status(tm, "job", id, "CANCELLED");
	task = rt_task(tm, "job", id);
	ck_assert_msg(rt_has_warning(task, "worker lost"), "no \"worker lost\" warning");
	cJSON_Delete(task);
	ck_assert_int_eq(atomic_load(&h.runs), 0);
	rt_assert_check_ok(tm);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("runtime_crash");

	tt_add(s, killed_worker_task_is_retried_on_next_open);
	tt_add(s, killed_worker_task_without_attempts_left_fails_worker_lost);
	tt_add(s, killed_worker_of_cancel_requested_task_ends_cancelled);
	return tt_run(s);
}
