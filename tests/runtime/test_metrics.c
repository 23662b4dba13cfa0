/* tm_metrics (doc/api.md, "Metrics"): the store's gauges, and this
 * process's counters and run durations, which count committed writes only:
 * a refused trigger or batch counts nothing, a run is timed from RUNNING to
 * its final status whoever drives it, and a task cancelled before it ran is
 * no run. */
#include <string.h>
#include <time.h>

#include "rt.h"

static atomic_int release;

static int released(void *unused)
{
	(void)unused;
	return atomic_load(&release);
}

/* Runs until the test releases it. */
static tm_status held(tm_job *job, void *user)
{
	(void)job;
	atomic_fetch_add((atomic_int *)user, 1);
	tt_wait(released, NULL, 60);
	return TM_COMPLETED;
}

static tm_status fails(tm_job *job, void *user)
{
	(void)user;
	return tm_job_fail(job, "no luck");
}

/* Wait out at least s seconds of the store's clock (the realtime clock). */
static void pass(double s)
{
	double until = rt_now() + s;

	while (rt_now() < until) {
		struct timespec ts = { 0, 5 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
}

#define SERIES(metric, name) metric "{name=\"" name "\"}"

START_TEST(only_committed_triggers_count)
{
	char *dir, id[21], *out = NULL;
	tm_manager *tm = rt_open_tmp(&dir, 0);
	tm_job_def ex = rt_def("ex", NULL, NULL), many = rt_def("many", NULL, NULL);

	ex.flags = TM_JOB_EXCLUSIVE;
	ck_assert_ok(tm_register(tm, &ex));
	ck_assert_ok(tm_register(tm, &many));
	ck_assert_double_eq(tt_metric(tm, SERIES("taskmgr_triggers_total", "ex")), -1);
	tt_trigger(tm, "ex", NULL, id);
	ck_assert_err(tm_trigger(tm, "ex", NULL, 0, &out), TM_EALREADY_RUNNING);
	ck_assert_ok(tm_trigger_many(tm, "many", "[{}, {}, {}, {}, {}]", 0, &out));
	tm_free(out);
	ck_assert_err(tm_trigger_many(tm, "many", "[{}, {\"context_task\": 1}]", 0, &out),
	              TM_EWRONG_DATA);
	rt_await_metric(tm, SERIES("taskmgr_triggers_total", "ex"), 1);
	rt_await_metric(tm, SERIES("taskmgr_triggers_total", "many"), 5);
	/* The gauges come from the store. */
	rt_await_metric(tm, "taskmgr_tasks{name=\"many\",status=\"REQUEST_SENT\"}", 5);
	rt_await_metric(tm, "taskmgr_tasks{name=\"many\",status=\"COMPLETED\"}", 0);
	rt_await_metric(tm, SERIES("taskmgr_queue_depth", "many"), 5);
	ck_assert_double_ge(tt_metric(tm, SERIES("taskmgr_oldest_waiting_age_seconds", "many")), 0);
	rt_await_metric(tm, "taskmgr_workers", 0);
	ck_assert_double_gt(tt_metric(tm, "taskmgr_store_bytes"), 0);
	ck_assert_double_ge(tt_metric(tm, "taskmgr_commits_total"), 2);
	tt_close_tmp(tm, dir);
}
END_TEST

/* The oldest waiting task's age grows while it waits; a started task no
 * longer counts. */
START_TEST(oldest_waiting_age_is_of_the_oldest_task_able_to_start)
{
	char *dir, first[21], second[21];
	tm_manager *tm = rt_open_tmp(&dir, 0);

	tt_register(tm, "ext", 0);
	tt_trigger(tm, "ext", NULL, first);
	pass(0.2);
	tt_trigger(tm, "ext", NULL, second);
	ck_assert_double_ge(tt_metric(tm, SERIES("taskmgr_oldest_waiting_age_seconds", "ext")), 0.2);
	ck_assert_ok(tm_patch(tm, "ext", first, "{\"status\": \"RUNNING\"}", NULL));
	ck_assert_double_lt(tt_metric(tm, SERIES("taskmgr_oldest_waiting_age_seconds", "ext")), 0.2);
	rt_await_metric(tm, SERIES("taskmgr_queue_depth", "ext"), 1);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(runs_are_timed_from_running_to_final)
{
	char *dir, id[21], ext[21], waiting[21];
	atomic_int started = 0;
	tm_manager *tm = rt_open_tmp(&dir, 1);
	tm_job_def d = rt_def("job", held, &started);

	atomic_store(&release, 0);
	ck_assert_ok(tm_register(tm, &d));
	tt_register(tm, "ext", 0);
	tt_trigger(tm, "job", NULL, id);
	rt_await_atleast(&started, 1);
	pass(0.06);
	atomic_store(&release, 1);
	rt_await_status(tm, "job", id, "COMPLETED");
	/* An external worker's run, driven through tm_patch. */
	tt_trigger(tm, "ext", NULL, ext);
	pass(0.06); /* waiting: not part of the run */
	ck_assert_ok(tm_patch(tm, "ext", ext, "{\"status\": \"RUNNING\"}", NULL));
	ck_assert_ok(tm_patch(tm, "ext", ext, "{\"status\": \"COMPLETED\"}", NULL));
	/* Cancelled before it ran: no run. */
	tt_trigger(tm, "ext", NULL, waiting);
	rt_assert_cancel_gives(tm, "ext", waiting, "CANCELLED");

	rt_await_metric(tm, SERIES("taskmgr_task_duration_seconds_count", "job"), 1);
	ck_assert_double_ge(tt_metric(tm, SERIES("taskmgr_task_duration_seconds_sum", "job")), 0.06);
	rt_await_metric(tm, "taskmgr_task_duration_seconds_bucket{name=\"job\",le=\"0.05\"}", 0);
	rt_await_metric(tm, "taskmgr_task_duration_seconds_bucket{name=\"job\",le=\"+Inf\"}", 1);
	rt_await_metric(tm, SERIES("taskmgr_task_duration_seconds_count", "ext"), 1);
	ck_assert_double_lt(tt_metric(tm, SERIES("taskmgr_task_duration_seconds_sum", "ext")), 0.06);
	rt_await_metric(tm, "taskmgr_task_duration_seconds_bucket{name=\"ext\",le=\"0.05\"}", 1);
	rt_await_metric(tm, SERIES("taskmgr_triggers_total", "ext"), 2);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(retries_and_timeouts_are_counted)
{
	char *dir, id[21], late[21];
	atomic_int started = 0;
	tm_manager *tm = rt_open_tmp(&dir, 1);
	tm_job_def f = rt_def("flaky", fails, NULL), slow = rt_def("slow", held, &started);

	atomic_store(&release, 0);
	f.max_attempts = 3;
	f.retry_backoff_s = 0.01;
	slow.timeout_s = 0.2;
	ck_assert_ok(tm_register(tm, &f));
	ck_assert_ok(tm_register(tm, &slow));
	tt_trigger(tm, "flaky", NULL, id);
	rt_await_status(tm, "flaky", id, "FAILED");
	rt_await_metric(tm, SERIES("taskmgr_retries_total", "flaky"), 2);
	rt_await_metric(tm, SERIES("taskmgr_timeouts_total", "flaky"), 0);
	/* Only the final run ends the task. */
	rt_await_metric(tm, SERIES("taskmgr_task_duration_seconds_count", "flaky"), 1);
	tt_trigger(tm, "slow", NULL, late);
	rt_await_status(tm, "slow", late, "FAILED");
	rt_await_metric(tm, SERIES("taskmgr_timeouts_total", "slow"), 1);
	rt_await_metric(tm, SERIES("taskmgr_retries_total", "slow"), 0);
	rt_await_metric(tm, SERIES("taskmgr_lost_workers_total", "slow"), 0);
	atomic_store(&release, 1);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(closed_manager_is_refused)
{
	char *dir, *out = (char *)"x";
	tm_manager *tm = rt_open_tmp(&dir, 0);

	tt_close_tmp(tm, dir);
	ck_assert_err(tm_metrics(tm, &out), TM_EINVAL);
	ck_assert_ptr_null(out);
	ck_assert_err(tm_metrics(NULL, &out), TM_EINVAL);
}
END_TEST

TT_MAIN("runtime_metrics",
	only_committed_triggers_count,
	oldest_waiting_age_is_of_the_oldest_task_able_to_start,
	runs_are_timed_from_running_to_final,
	retries_and_timeouts_are_counted,
	closed_manager_is_refused)
