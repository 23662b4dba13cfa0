/* SPEC section 6, timeouts and external workers: past details.timeout_at a
 * task becomes FAILED with a "timed out" warning, its handler sees
 * tm_job_cancelled() and its later return is ignored; a name registered
 * without a handler is never run here, only its timeout applies. */
#include <string.h>

#include "rt.h"

static struct {
	atomic_int started, returned, runs, saw_cancel, release;
} h;

static void reset(void)
{
	memset(&h, 0, sizeof(h));
}

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

static tm_status quick(tm_job *job, void *user)
{
	(void)job;
	(void)user;
	return TM_COMPLETED;
}

static void assert_timed_out(tm_manager *tm, const char *name, const char *id,
                             const char *error)
{
	cJSON *task = rt_task(tm, name, id);

	ck_assert_str_eq(rt_status_of(task), "FAILED");
	ck_assert_msg(rt_has_warning(task, "timed out"), "no \"timed out\" warning");
	ck_assert_str_eq(rt_detail_str(task, "error"), error);
	ck_assert_msg(rt_detail_num(task, "end_time") >= rt_detail_num(task, "timeout_at"),
	              "ended before its timeout");
	cJSON_Delete(task);
}

START_TEST(running_task_times_out)
{
	char *dir = tt_tmpdir(), id[21], next[21];
	tm_manager *tm = rt_open(dir, 1);
	tm_job_def d = rt_def("job", stubborn, NULL), q = rt_def("next", quick, NULL);
	cJSON *task;

	reset();
	d.timeout_s = 0.3;
	d.max_attempts = 3;
	ck_assert_ok(tm_register(tm, &d));
	ck_assert_ok(tm_register(tm, &q));
	tt_trigger(tm, "job", NULL, id);
	rt_await_status(tm, "job", id, "FAILED");
	assert_timed_out(tm, "job", id, "timed out after 0.3 s");
	rt_await_atleast(&h.returned, 1);
	ck_assert_int_eq(atomic_load(&h.saw_cancel), 1);
	/* The only worker takes the next task after writing the first one's
	 * outcome: once it completed, the handler's answer was dealt with. */
	tt_trigger(tm, "next", NULL, next);
	rt_await_status(tm, "next", next, "COMPLETED");
	rt_barrier(tm);
	assert_timed_out(tm, "job", id, "timed out after 0.3 s");
	task = rt_task(tm, "job", id);
	ck_assert_int_eq(rt_n_warnings(task), 1);
	ck_assert_int_eq((int)rt_detail_num(task, "attempts"), 1);
	cJSON_Delete(task);
	ck_assert_int_eq(atomic_load(&h.runs), 1);
	rt_assert_check_ok(tm);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

/* The only worker is busy with another name while the task waits. */
START_TEST(waiting_task_times_out_without_running)
{
	char *dir = tt_tmpdir(), busy[21], late[21];
	tm_manager *tm = rt_open(dir, 1);
	tm_job_def b = rt_def("busy", stubborn, NULL), d = rt_def("job", stubborn, NULL);

	reset();
	d.timeout_s = 0.5;
	ck_assert_ok(tm_register(tm, &b));
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "busy", NULL, busy);
	rt_await_atleast(&h.started, 1);
	tt_trigger(tm, "job", NULL, late);
	rt_await_status(tm, "job", late, "FAILED");
	assert_timed_out(tm, "job", late, "timed out after 0.5 s");
	atomic_store(&h.release, 1);
	rt_await_status(tm, "busy", busy, "COMPLETED");
	rt_barrier(tm);
	ck_assert_int_eq(atomic_load(&h.runs), 1); /* "busy" only */
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

/* workers = 0: only the supervisor acts on these tasks. */
START_TEST(external_worker_task_times_out)
{
	char *dir = tt_tmpdir(), taken[21], untouched[21];
	tm_manager *tm = rt_open(dir, 0);
	tm_job_def d = rt_def("ext", NULL, NULL);

	d.timeout_s = 0.3;
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "ext", "{\"refresh_token\": \"tok\"}", taken);
	tt_trigger(tm, "ext", NULL, untouched);
	ck_assert_ok(tm_patch(tm, "ext", taken, "{\"status\": \"RUNNING\"}", NULL));
	rt_await_status(tm, "ext", taken, "FAILED");
	rt_await_status(tm, "ext", untouched, "FAILED");
	assert_timed_out(tm, "ext", taken, "timed out after 0.3 s");
	assert_timed_out(tm, "ext", untouched, "timed out after 0.3 s");
	/* Final is final: the external worker's late answer is refused. */
	ck_assert_err(tm_patch(tm, "ext", taken, "{\"completed\": true}", NULL),
	              TM_ELOWER_STATUS);
	rt_assert_check_ok(tm);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(external_worker_task_is_never_run_here)
{
	char *dir = tt_tmpdir(), ext[21], local[21], buf[32];
	tm_manager *tm = rt_open(dir, 2);
	tm_job_def e = rt_def("ext", NULL, NULL), q = rt_def("local", quick, NULL);
	cJSON *task;

	ck_assert_ok(tm_register(tm, &e));
	ck_assert_ok(tm_register(tm, &q));
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
	task = rt_task(tm, "ext", ext);
	ck_assert_str_eq(rt_status_of(task), "COMPLETED");
	ck_assert_str_eq(rt_message(task), "half");
	ck_assert_int_eq((int)rt_detail_num(task, "attempts"), 1);
	cJSON_Delete(task);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("runtime_timeout");

	tt_add(s, running_task_times_out);
	tt_add(s, waiting_task_times_out_without_running);
	tt_add(s, external_worker_task_times_out);
	tt_add(s, external_worker_task_is_never_run_here);
	return tt_run(s);
}
