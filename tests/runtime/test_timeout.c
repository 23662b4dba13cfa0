/* Timeouts and external workers (doc/runtime.md, "Timeouts, retries,
 * cancellation"): past details.timeout_at a task becomes FAILED with a
 * "timed out" warning, its handler sees tm_job_cancelled() and its later
 * return is ignored; a name registered without a handler is never run here,
 * only its timeout applies. */
#include <string.h>

#include "rt.h"

static struct {
	atomic_int started, returned, runs, saw_cancel, release;
} h;

static int stopped(void *job)
{
	return tm_job_cancelled(job) || atomic_load(&h.release);
}

/* Waits for the stop, then claims success: a return the runtime ignores. */
static tm_status stubborn(tm_job *job, void *user)
{
	(void)user;
	atomic_fetch_add(&h.runs, 1);
	atomic_store(&h.started, 1);
	tt_wait(stopped, job, 60);
	atomic_store(&h.saw_cancel, tm_job_cancelled(job) != 0);
	tm_job_message(job, "finished anyway");
	atomic_store(&h.returned, 1);
	return TM_COMPLETED;
}

/* Register name with handler run (NULL: an external worker's) and
 * timeout_s (0: the default).  Attempts are left, so that a timeout is
 * seen to be final all the same. */
static void add(tm_manager *tm, const char *name, tm_status (*run)(tm_job *, void *),
                double timeout_s)
{
	tm_job_def d = rt_def(name, run, NULL);

	if (timeout_s > 0)
		d.timeout_s = timeout_s;
	d.max_attempts = 3;
	ck_assert_ok(tm_register(tm, &d));
}

/* The task failed by its timeout, with one warning saying so, after
 * `attempts` runs: the runtime's own answer, never a retry. */
static void assert_timed_out(tm_manager *tm, const char *name, const char *id,
                             const char *error, int attempts)
{
	cJSON *task = tt_task(tm, name, id, 0);

	ck_assert_str_eq(rt_status_of(task), "FAILED");
	ck_assert_msg(rt_has_warning(task, "timed out"), "no \"timed out\" warning");
	ck_assert_str_eq(rt_detail_str(task, "error"), error);
	ck_assert_msg(rt_detail_num(task, "end_time") >= rt_detail_num(task, "timeout_at"),
	              "ended before its timeout");
	ck_assert_int_eq(rt_n_warnings(task), 1);
	ck_assert_int_eq((int)rt_detail_num(task, "attempts"), attempts);
	cJSON_Delete(task);
}

START_TEST(running_task_times_out)
{
	char *dir, id[21], next[21];
	tm_manager *tm = rt_open_tmp(&dir, 1);

	memset(&h, 0, sizeof(h));
	add(tm, "job", stubborn, 0.3);
	add(tm, "next", rt_complete, 0);
	tt_trigger(tm, "job", NULL, id);
	rt_await_status(tm, "job", id, "FAILED");
	assert_timed_out(tm, "job", id, "timed out after 0.3 s", 1);
	rt_await_atleast(&h.returned, 1);
	ck_assert_int_eq(atomic_load(&h.saw_cancel), 1);
	/* The only worker takes the next task after writing the first one's
	 * outcome: once it completed, the handler's answer was dealt with. */
	tt_trigger(tm, "next", NULL, next);
	rt_await_status(tm, "next", next, "COMPLETED");
	rt_barrier(tm);
	assert_timed_out(tm, "job", id, "timed out after 0.3 s", 1);
	ck_assert_int_eq(atomic_load(&h.runs), 1);
	tt_assert_check(tm, -1);
	tt_close_tmp(tm, dir);
}
END_TEST

/* The only worker is busy with another name while the task waits. */
START_TEST(waiting_task_times_out_without_running)
{
	char *dir, busy[21], late[21];
	tm_manager *tm = rt_open_tmp(&dir, 1);

	memset(&h, 0, sizeof(h));
	add(tm, "busy", stubborn, 0);
	add(tm, "job", stubborn, 0.5);
	tt_trigger(tm, "busy", NULL, busy);
	rt_await_atleast(&h.started, 1);
	tt_trigger(tm, "job", NULL, late);
	rt_await_status(tm, "job", late, "FAILED");
	assert_timed_out(tm, "job", late, "timed out after 0.5 s", 0);
	atomic_store(&h.release, 1);
	rt_await_status(tm, "busy", busy, "COMPLETED");
	rt_barrier(tm);
	ck_assert_int_eq(atomic_load(&h.runs), 1); /* "busy" only */
	tt_close_tmp(tm, dir);
}
END_TEST

/* workers = 0: only the supervisor acts on these tasks. */
START_TEST(external_worker_task_times_out)
{
	char *dir, taken[21], untouched[21];
	tm_manager *tm = rt_open_tmp(&dir, 0);

	add(tm, "ext", NULL, 0.3);
	tt_trigger(tm, "ext", "{\"refresh_token\": \"tok\"}", taken);
	tt_trigger(tm, "ext", NULL, untouched);
	ck_assert_ok(tm_patch(tm, "ext", taken, "{\"status\": \"RUNNING\"}", NULL));
	rt_await_status(tm, "ext", taken, "FAILED");
	rt_await_status(tm, "ext", untouched, "FAILED");
	assert_timed_out(tm, "ext", taken, "timed out after 0.3 s", 1);
	assert_timed_out(tm, "ext", untouched, "timed out after 0.3 s", 0);
	/* Final is final: the external worker's late answer is refused. */
	ck_assert_err(tm_patch(tm, "ext", taken, "{\"completed\": true}", NULL),
	              TM_ELOWER_STATUS);
	tt_assert_check(tm, -1);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(external_worker_task_is_never_run_here)
{
	char *dir, ext[21], local[21], buf[32];
	tm_manager *tm = rt_open_tmp(&dir, 2);
	cJSON *task;

	add(tm, "ext", NULL, 0);
	add(tm, "local", rt_complete, 0);
	tt_trigger(tm, "ext", NULL, ext);
	tt_trigger(tm, "local", NULL, local);
	rt_await_status(tm, "local", local, "COMPLETED");
	rt_barrier(tm);
	ck_assert_str_eq(tt_status(tm, "ext", ext, buf), "REQUEST_SENT");
	ck_assert_ok(tm_patch(tm, "ext", ext, "{\"status\": \"RUNNING\", "
	                      "\"details\": {\"progress\": {\"message\": \"half\"}}}", NULL));
	rt_barrier(tm);
	ck_assert_str_eq(tt_status(tm, "ext", ext, buf), "RUNNING");
	ck_assert_ok(tm_patch(tm, "ext", ext, "{\"completed\": true}", NULL));
	task = tt_task(tm, "ext", ext, 0);
	ck_assert_str_eq(rt_status_of(task), "COMPLETED");
	ck_assert_str_eq(rt_message(task), "half");
	ck_assert_int_eq((int)rt_detail_num(task, "attempts"), 1);
	cJSON_Delete(task);
	tt_close_tmp(tm, dir);
}
END_TEST

TT_MAIN("runtime_timeout",
	running_task_times_out,
	waiting_task_times_out_without_running,
	external_worker_task_times_out,
	external_worker_task_is_never_run_here)
