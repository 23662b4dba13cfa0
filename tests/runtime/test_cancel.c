/* Cancellation (doc/runtime.md, "Timeouts, retries, cancellation"):
 * cooperative for a running handler (tm_job_cancelled() turns true at once
 * in this process), immediate for a waiting task, and a handler's return
 * after a cancel request decides between CANCELLED and COMPLETED.  From
 * another process: test_processes.c. */
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

/* A store with `workers` workers whose "job" runs blocker, answering
 * `answer`; a task of it is triggered and running when this returns.  Every
 * test leaves attempts over (3, retried at once) and runs one task of the
 * name at a time: a cancel must win over a retry, and a waiting task must
 * stay waiting though a worker is free. */
static tm_manager *start(char **dir, unsigned workers, tm_status answer,
                         int cooperative, char id[21])
{
	tm_manager *tm = rt_open_tmp(dir, workers);
	tm_job_def d = rt_def("job", blocker, NULL);

	reset(answer, cooperative);
	d.max_attempts = 3;
	d.retry_backoff_s = 0.01;
	d.concurrency = 1;
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "job", NULL, id);
	rt_await_atleast(&h.started, 1);
	return tm;
}

START_TEST(cancel_running_task_ends_cancelled)
{
	char *dir, id[21];
	tm_manager *tm = start(&dir, 1, TM_CANCELLED, 0, id);
	tm_job *job = atomic_load(&h.job);

	ck_assert_int_eq(tm_job_cancelled(job), 0);
	rt_assert_cancel_gives(tm, "job", id, "CANCELLED_REQUESTED");
	/* Same process: the flag is set before tm_cancel returns. */
	ck_assert_msg(tm_job_cancelled(job), "the handler does not see the cancel yet");
	atomic_store(&h.release, 1);
	rt_await_status(tm, "job", id, "CANCELLED");
	ck_assert_int_eq(atomic_load(&h.saw_cancel), 1);
	ck_assert_int_eq(atomic_load(&h.runs), 1);
	tt_assert_check(tm, -1);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(cooperative_handler_stops_on_cancel)
{
	char *dir, id[21];
	tm_manager *tm = start(&dir, 1, TM_CANCELLED, 1, id);

	rt_assert_cancel_gives(tm, "job", id, "CANCELLED_REQUESTED");
	rt_await_status(tm, "job", id, "CANCELLED");
	ck_assert_int_eq(atomic_load(&h.saw_cancel), 1);
	ck_assert_int_eq(atomic_load(&h.runs), 1);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(cancel_waiting_task_never_runs)
{
	char *dir, first[21], waiting[21];
	tm_manager *tm = start(&dir, 2, TM_COMPLETED, 0, first);
	char *out = NULL;
	cJSON *after;

	tt_trigger(tm, "job", "{\"refresh_token\": \"s\"}", waiting);
	ck_assert_ok(tm_cancel(tm, "job", waiting, &out));
	after = tt_json(out);
	ck_assert_str_eq(rt_status_of(after), "CANCELLED");
	ck_assert_int_eq((int)rt_detail_num(after, "attempts"), 0);
	cJSON_Delete(after);
	atomic_store(&h.release, 1);
	rt_await_status(tm, "job", first, "COMPLETED");
	rt_barrier(tm);
	ck_assert_int_eq(atomic_load(&h.runs), 1);
	tt_assert_check(tm, -1);
	tt_close_tmp(tm, dir);
}
END_TEST

/* A handler that ignores the cancel: the task stays CANCELLED_REQUESTED
 * through a whole supervisor tick, until the test lets the handler return
 * `answer`; then it ends `status`, after that one run, and stays so: no
 * retry, though attempts are left. */
static void ignored_cancel_ends(tm_status answer, const char *status)
{
	char *dir, id[21], buf[32];
	tm_manager *tm = start(&dir, 1, answer, 0, id);

	rt_assert_cancel_gives(tm, "job", id, "CANCELLED_REQUESTED");
	rt_barrier(tm);
	ck_assert_str_eq(tt_status(tm, "job", id, buf), "CANCELLED_REQUESTED");
	/* Cancelling again changes nothing and is no error. */
	rt_assert_cancel_gives(tm, "job", id, "CANCELLED_REQUESTED");
	atomic_store(&h.release, 1);
	rt_await_status(tm, "job", id, status);
	rt_barrier(tm);
	ck_assert_str_eq(tt_status(tm, "job", id, buf), status);
	rt_assert_attempts(tm, "job", id, 1);
	ck_assert_int_eq(atomic_load(&h.saw_cancel), 1);
	ck_assert_int_eq(atomic_load(&h.runs), 1);
	tt_close_tmp(tm, dir);
}

/* Returning COMPLETED means it finished anyway. */
START_TEST(handler_ignoring_cancel_then_completing_ends_completed)
{
	ignored_cancel_ends(TM_COMPLETED, "COMPLETED");
}
END_TEST

/* Returning FAILED after a cancel request ends CANCELLED. */
START_TEST(handler_ignoring_cancel_then_failing_ends_cancelled)
{
	ignored_cancel_ends(TM_FAILED, "CANCELLED");
}
END_TEST

/* An operator's tm_patch to a final status stops the handler too, and its
 * later answer is ignored. */
START_TEST(patch_to_final_stops_the_handler)
{
	char *dir, id[21], next[21];
	tm_manager *tm = start(&dir, 1, TM_COMPLETED, 1, id);
	cJSON *task;

	ck_assert_ok(tm_patch(tm, "job", id, "{\"failed\": true, "
	                      "\"details\": {\"error\": \"stopped by operator\"}}", NULL));
	rt_await_atleast(&h.saw_cancel, 1); /* it stops on its own: it was told */
	/* The only worker is free again once it wrote (or dropped) the answer. */
	atomic_store(&h.release, 1);
	tt_trigger(tm, "job", NULL, next);
	rt_await_status(tm, "job", next, "COMPLETED");
	task = tt_task(tm, "job", id, 0);
	ck_assert_str_eq(rt_status_of(task), "FAILED");
	ck_assert_str_eq(rt_detail_str(task, "error"), "stopped by operator");
	cJSON_Delete(task);
	ck_assert_int_eq(atomic_load(&h.runs), 2);
	tt_close_tmp(tm, dir);
}
END_TEST

TT_MAIN("runtime_cancel",
	cancel_running_task_ends_cancelled,
	cooperative_handler_stops_on_cancel,
	cancel_waiting_task_never_runs,
	handler_ignoring_cancel_then_completing_ends_completed,
	handler_ignoring_cancel_then_failing_ends_cancelled,
	patch_to_final_stops_the_handler)
