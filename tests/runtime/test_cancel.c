/* SPEC sections 5 and 6, cancellation: cooperative for a running handler
 * (tm_job_cancelled() turns true at once in this process), immediate for a
 * waiting task, and a handler's return after a cancel request decides
 * between CANCELLED and COMPLETED.  From another process: test_processes.c. */
#include <string.h>

#include "rt.h"

static struct {
	_Atomic(tm_job *) job;
	atomic_int started, release, runs, saw_cancel;
	tm_status answer;      /* what the handler returns */
	int cooperative;       /* stops on tm_job_cancelled() */
} h;

static void reset(tm_status answer, int cooperative)
{
	memset(&h, 0, sizeof(h));
	h.answer = answer;
	h.cooperative = cooperative;
}

static int may_return(void *job)
{
	if (h.cooperative && tm_job_cancelled(job))
		return 1;
	return atomic_load(&h.release);
}

static tm_status blocker(tm_job *job, void *user)
{
	(void)user;
	atomic_store(&h.job, job);
	atomic_fetch_add(&h.runs, 1);
	atomic_fetch_add(&h.started, 1);
	tt_wait(may_return, job, 60);
	atomic_store(&h.saw_cancel, tm_job_cancelled(job) != 0);
	atomic_store(&h.job, NULL);
	return h.answer == TM_FAILED ? tm_job_fail(job, "stopped") : h.answer;
}

static cJSON *cancel(tm_manager *tm, const char *name, const char *id)
{
	char *out = NULL;

	ck_assert_ok(tm_cancel(tm, name, id, &out));
	return tt_json(out);
}

START_TEST(cancel_running_task_ends_cancelled)
{
	char *dir = tt_tmpdir(), id[21];
	tm_manager *tm = rt_open(dir, 1);
	tm_job_def d = rt_def("job", blocker, NULL);
	tm_job *job;
	cJSON *after;

	reset(TM_CANCELLED, 0);
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "job", NULL, id);
	rt_await_atleast(&h.started, 1);
	job = atomic_load(&h.job);
	ck_assert_int_eq(tm_job_cancelled(job), 0);
	after = cancel(tm, "job", id);
	ck_assert_str_eq(rt_status_of(after), "CANCELLED_REQUESTED");
	cJSON_Delete(after);
	/* Same process: the flag is set before tm_cancel returns. */
	ck_assert_msg(tm_job_cancelled(job), "the handler does not see the cancel yet");
	atomic_store(&h.release, 1);
	rt_await_status(tm, "job", id, "CANCELLED");
	ck_assert_int_eq(atomic_load(&h.saw_cancel), 1);
	ck_assert_int_eq(atomic_load(&h.runs), 1);
	rt_assert_check_ok(tm);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(cooperative_handler_stops_on_cancel)
{
	char *dir = tt_tmpdir(), id[21];
	tm_manager *tm = rt_open(dir, 1);
	tm_job_def d = rt_def("job", blocker, NULL);
	cJSON *after;

	reset(TM_CANCELLED, 1);
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "job", NULL, id);
	rt_await_atleast(&h.started, 1);
	after = cancel(tm, "job", id);
	ck_assert_str_eq(rt_status_of(after), "CANCELLED_REQUESTED");
	cJSON_Delete(after);
	rt_await_status(tm, "job", id, "CANCELLED");
	ck_assert_int_eq(atomic_load(&h.saw_cancel), 1);
	ck_assert_int_eq(atomic_load(&h.runs), 1);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(cancel_waiting_task_never_runs)
{
	char *dir = tt_tmpdir(), first[21], waiting[21];
	tm_manager *tm = rt_open(dir, 2);
	tm_job_def d = rt_def("job", blocker, NULL);
	cJSON *after;

	reset(TM_COMPLETED, 0);
	d.concurrency = 1;
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "job", NULL, first);
	rt_await_atleast(&h.started, 1);
	tt_trigger(tm, "job", "{\"refresh_token\": \"s\"}", waiting);
	after = cancel(tm, "job", waiting);
	ck_assert_str_eq(rt_status_of(after), "CANCELLED");
	ck_assert_int_eq((int)rt_detail_num(after, "attempts"), 0);
	cJSON_Delete(after);
	atomic_store(&h.release, 1);
	rt_await_status(tm, "job", first, "COMPLETED");
	rt_barrier(tm);
	ck_assert_int_eq(atomic_load(&h.runs), 1);
	rt_assert_check_ok(tm);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

/* A handler that ignores the cancel: the task stays CANCELLED_REQUESTED
 * until it returns; returning COMPLETED means it finished anyway. */
START_TEST(handler_ignoring_cancel_then_completing_ends_completed)
{
	char *dir = tt_tmpdir(), id[21], buf[32];
	tm_manager *tm = rt_open(dir, 1);
	tm_job_def d = rt_def("job", blocker, NULL);

	reset(TM_COMPLETED, 0);
	d.max_attempts = 3;
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "job", NULL, id);
	rt_await_atleast(&h.started, 1);
	cJSON_Delete(cancel(tm, "job", id));
	rt_barrier(tm);
	ck_assert_str_eq(tt_status(tm, "job", id, buf), "CANCELLED_REQUESTED");
	/* Cancelling again changes nothing and is no error. */
	cJSON_Delete(cancel(tm, "job", id));
	ck_assert_str_eq(tt_status(tm, "job", id, buf), "CANCELLED_REQUESTED");
	atomic_store(&h.release, 1);
	rt_await_status(tm, "job", id, "COMPLETED");
	ck_assert_int_eq(atomic_load(&h.saw_cancel), 1);
	ck_assert_int_eq(atomic_load(&h.runs), 1);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

/* ... and returning FAILED after a cancel request ends CANCELLED, without a
 * retry even though attempts are left. */
START_TEST(handler_ignoring_cancel_then_failing_ends_cancelled)
{
	char *dir = tt_tmpdir(), id[21], buf[32];
	tm_manager *tm = rt_open(dir, 1);
	tm_job_def d = rt_def("job", blocker, NULL);
	cJSON *task;

	reset(TM_FAILED, 0);
	d.max_attempts = 3;
	d.retry_backoff_s = 0.01;
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "job", NULL, id);
	rt_await_atleast(&h.started, 1);
	cJSON_Delete(cancel(tm, "job", id));
	rt_barrier(tm);
	ck_assert_str_eq(tt_status(tm, "job", id, buf), "CANCELLED_REQUESTED");
	atomic_store(&h.release, 1);
	rt_await_status(tm, "job", id, "CANCELLED");
	rt_barrier(tm);
	task = rt_task(tm, "job", id);
	ck_assert_str_eq(rt_status_of(task), "CANCELLED");
	ck_assert_int_eq((int)rt_detail_num(task, "attempts"), 1);
	cJSON_Delete(task);
	ck_assert_int_eq(atomic_load(&h.runs), 1);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

/* An operator's tm_patch to a final status stops the handler too, and its
 * later answer is ignored. */
START_TEST(patch_to_final_stops_the_handler)
{
	char *dir = tt_tmpdir(), id[21], next[21];
	tm_manager *tm = rt_open(dir, 1);
	tm_job_def d = rt_def("job", blocker, NULL);
	cJSON *task;

	reset(TM_COMPLETED, 1);
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "job", NULL, id);
	rt_await_atleast(&h.started, 1);
	ck_assert_ok(tm_patch(tm, "job", id, "{\"failed\": true, "
	                      "\"details\": {\"error\": \"stopped by operator\"}}", NULL));
	rt_await_atleast(&h.saw_cancel, 1); /* it stops on its own: it was told */
	/* The only worker is free again once it wrote (or dropped) the answer. */
	atomic_store(&h.release, 1);
	tt_trigger(tm, "job", NULL, next);
	rt_await_status(tm, "job", next, "COMPLETED");
	task = rt_task(tm, "job", id);
	ck_assert_str_eq(rt_status_of(task), "FAILED");
	ck_assert_str_eq(rt_detail_str(task, "error"), "stopped by operator");
	cJSON_Delete(task);
	ck_assert_int_eq(atomic_load(&h.runs), 2);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("runtime_cancel");

	tt_add(s, cancel_running_task_ends_cancelled);
	tt_add(s, cooperative_handler_stops_on_cancel);
	tt_add(s, cancel_waiting_task_never_runs);
	tt_add(s, handler_ignoring_cancel_then_completing_ends_completed);
	tt_add(s, handler_ignoring_cancel_then_failing_ends_cancelled);
	tt_add(s, patch_to_final_stops_the_handler);
	return tt_run(s);
}
