/* "not_before" in a trigger body (doc/runtime.md, "Run later"): the task
 * is stored at once, waits as REQUEST_SENT, is never started before that
 * time (not even handed to an idle worker), and its timeout counts from
 * then; a time past means now; exclusivity counts it active; a value that
 * is not a number in start_time's range is refused and stores nothing.
 *
 * "Not started yet" is shown without waiting for time to pass: the queue
 * is in ready order, so once a worker has run a task made ready after the
 * scheduled one was stored, it has looked at the scheduled one. */
#include <stdio.h>
#include <string.h>

#include "rt.h"

static struct {
	atomic_int runs;
	_Atomic double started_at; /* rt_now() when the handler began */
} h;

static tm_status record(tm_job *job, void *user)
{
	(void)job;
	(void)user;
	atomic_store(&h.started_at, rt_now());
	atomic_fetch_add(&h.runs, 1);
	return TM_COMPLETED;
}

static int workers_idle(void *tm)
{
	return tt_stat(tm, NULL, "workers_idle") == 2;
}

static void trigger_at(tm_manager *tm, const char *name, double at, char id[21])
{
	char body[96];

	snprintf(body, sizeof(body), "{\"not_before\": %.6f}", at);
	tt_trigger(tm, name, body, id);
}

START_TEST(scheduled_task_waits_then_runs)
{
	char *dir, id[21], b[32];
	tm_manager *tm = rt_open_tmp(&dir, 2);
	tm_job_def d = rt_def("job", record, NULL);
	double at = rt_now() + 1.0;
	cJSON *task;
	int runs;

	memset(&h, 0, sizeof(h));
	ck_assert_ok(tm_register(tm, &d));
	/* Both workers wait for work: a trigger would hand its task to one. */
	ck_assert_msg(tt_wait(workers_idle, tm, RT_DEADLINE), "the workers never waited");
	trigger_at(tm, "job", at, id); /* none takes it */
	task = tt_task(tm, "job", id, 0);
	ck_assert_str_eq(rt_status_of(task), "REQUEST_SENT");
	ck_assert_double_eq_tol(rt_detail_num(task, "not_before"), at, 1e-6);
	ck_assert_double_eq_tol(rt_detail_num(task, "timeout_at"), at + 86400, 1e-5);
	cJSON_Delete(task);
	rt_barrier(tm);
	/* Read before its time, it still waits (a slow machine may read it
	 * only after its time: then there is nothing to see). */
	runs = atomic_load(&h.runs);
	tt_status(tm, "job", id, b);
	if (rt_now() < at) {
		ck_assert_str_eq(b, "REQUEST_SENT");
		ck_assert_int_eq(runs, 0);
	}
	rt_await_status(tm, "job", id, "COMPLETED");
	ck_assert_int_eq(atomic_load(&h.runs), 1);
	ck_assert_msg(atomic_load(&h.started_at) >= at, "started %.6f before %.6f",
	              atomic_load(&h.started_at), at);
	tt_assert_check(tm, -1);
	tt_close_tmp(tm, dir);
}
END_TEST

/* A worker runs a task triggered after the scheduled one: it passed it. */
START_TEST(workers_pass_a_scheduled_task)
{
	char *dir, id[21], now_id[21], b[32];
	tm_manager *tm = rt_open_tmp(&dir, 1);
	tm_job_def d = rt_def("job", record, NULL), o = rt_def("other", rt_complete, NULL);

	memset(&h, 0, sizeof(h));
	ck_assert_ok(tm_register(tm, &d));
	ck_assert_ok(tm_register(tm, &o));
	trigger_at(tm, "job", rt_now() + 3600, id);
	tt_trigger(tm, "other", NULL, now_id);
	rt_await_status(tm, "other", now_id, "COMPLETED");
	ck_assert_str_eq(tt_status(tm, "job", id, b), "REQUEST_SENT");
	ck_assert_int_eq(atomic_load(&h.runs), 0);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(past_time_means_now_and_exclusivity_counts_scheduled_tasks)
{
	char *dir, id[21], *out = NULL;
	tm_manager *tm = rt_open_tmp(&dir, 1);
	tm_job_def d = rt_def("job", record, NULL), ex = rt_def("ex", NULL, NULL);

	memset(&h, 0, sizeof(h));
	ck_assert_ok(tm_register(tm, &d));
	ex.flags = TM_JOB_EXCLUSIVE;
	ck_assert_ok(tm_register(tm, &ex));
	trigger_at(tm, "job", 1000.0, id); /* 1970: now */
	rt_await_status(tm, "job", id, "COMPLETED");
	trigger_at(tm, "ex", rt_now() + 3600, id);
	ck_assert_err(tm_trigger(tm, "ex", NULL, 0, &out), TM_EALREADY_RUNNING);
	ck_assert_int_eq(tt_count(tm, "ex"), 1);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(bad_values_are_refused_and_store_nothing)
{
	static const char *const bad[] = {
		"{\"not_before\": \"tomorrow\"}", "{\"not_before\": true}",
		"{\"not_before\": null}", "{\"not_before\": 3500000000.5}",
		"{\"not_before\": -150000000001}", "{\"not_before\": 1e300}",
		"{\"not_before\": [1]}",
	};
	char *dir, *out = NULL;
	tm_manager *tm = rt_open_tmp(&dir, 0);

	tt_register(tm, "job", 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_err(tm_trigger(tm, "job", bad[i], 0, &out), TM_EWRONG_DATA);
		ck_assert_msg(strstr(tm_last_error(), "not_before") != NULL, "%s: %s", bad[i],
		              tm_last_error());
	}
	ck_assert_err(tm_trigger_many(tm, "job", "[{}, {\"not_before\": \"x\"}]", 0, &out),
	              TM_EWRONG_DATA);
	ck_assert_int_eq(tt_count(tm, "job"), 0);
	/* The bounds themselves are accepted; the key is the library's. */
	ck_assert_ok(tm_trigger(tm, "job", "{\"not_before\": 3500000000}", 0, &out));
	tm_free(out);
	ck_assert_ok(tm_trigger_many(tm, "job", "[{\"not_before\": -150000000000}, {}]", 0, &out));
	tm_free(out);
	ck_assert_int_eq(tt_count(tm, "job"), 3);
	tt_close_tmp(tm, dir);
}
END_TEST

TT_MAIN("runtime_schedule",
	scheduled_task_waits_then_runs,
	workers_pass_a_scheduled_task,
	past_time_means_now_and_exclusivity_counts_scheduled_tasks,
	bad_values_are_refused_and_store_nothing)
