/* Retries (doc/runtime.md, "Timeouts, retries, cancellation"): a FAILED
 * outcome with attempts left keeps the task RUNNING, counts the attempt,
 * waits the backoff (doubled each time, capped) and runs again; the
 * progress message says why. */
#include <string.h>

#include "rt.h"

#define MAX_RUNS 8

static struct {
	tm_manager *tm;
	atomic_int runs;
	unsigned attempt[MAX_RUNS];
	double started[MAX_RUNS], returned[MAX_RUNS];  /* monotonic */
	char message[MAX_RUNS][256];    /* details.progress.message at start */
	char status[MAX_RUNS][32];      /* status at start */
	int attempts_detail[MAX_RUNS];  /* details.attempts at start */
	unsigned succeed_at;            /* attempt that completes; 0: never */
} h;


/* Fails with "err N" on attempt N, until attempt succeed_at. */
static tm_status flaky(tm_job *job, void *user)
{
	int k = atomic_load(&h.runs);
	cJSON *j;

	(void)user;
	if (k >= MAX_RUNS)
		return TM_FAILED;
	h.started[k] = rt_mono();
	h.attempt[k] = tm_job_attempt(job);
	if ((j = rt_job_task(h.tm, job)) != NULL) {
		snprintf(h.message[k], sizeof(h.message[k]), "%s", rt_message(j));
		snprintf(h.status[k], sizeof(h.status[k]), "%s", rt_status_of(j));
		h.attempts_detail[k] = (int)rt_detail_num(j, "attempts");
		cJSON_Delete(j);
	}
	h.returned[k] = rt_mono();
	atomic_fetch_add(&h.runs, 1);
	if (h.succeed_at && tm_job_attempt(job) >= h.succeed_at)
		return TM_COMPLETED;
	return tm_job_fail(job, "err %u", tm_job_attempt(job));
}

/* A store with one worker whose "job" runs flaky, completing on attempt
 * succeed_at (0: never), with max_attempts and the first backoff; one task
 * of it is triggered. */
static tm_manager *start(char **dir, unsigned max_attempts, double backoff,
                         unsigned succeed_at, char id[21])
{
	tm_manager *tm = rt_open_tmp(dir, 1);
	tm_job_def d = rt_def("job", flaky, NULL);

	memset(&h, 0, sizeof(h));
	h.tm = tm;
	h.succeed_at = succeed_at;
	d.max_attempts = max_attempts;
	d.retry_backoff_s = backoff;
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "job", NULL, id);
	return tm;
}

static int message_has(const cJSON *task, const void *needle)
{
	return strstr(rt_message(task), needle) != NULL;
}

static void await_message(tm_manager *tm, const char *name, const char *id,
                          const char *needle)
{
	ck_assert_msg(rt_wait_task(tm, name, id, message_has, needle, RT_DEADLINE),
	              "progress message of %s never said \"%s\"", id, needle);
}

START_TEST(failed_attempts_are_retried_and_counted)
{
	char *dir, id[21];
	tm_manager *tm = start(&dir, 3, 0.02, 3, id);
	cJSON *task;

	rt_await_status(tm, "job", id, "COMPLETED");
	ck_assert_int_eq(atomic_load(&h.runs), 3);
	for (int k = 0; k < 3; k++) {
		ck_assert_uint_eq(h.attempt[k], (unsigned)k + 1);
		ck_assert_int_eq(h.attempts_detail[k], k + 1);
		ck_assert_str_eq(h.status[k], "RUNNING");
	}
	/* Between attempts the message said why. */
	ck_assert_msg(strstr(h.message[1], "attempt 1 of 3 failed") &&
	              strstr(h.message[1], "retrying"), "message: %s", h.message[1]);
	ck_assert_msg(strstr(h.message[2], "attempt 2 of 3 failed") &&
	              strstr(h.message[2], "retrying"), "message: %s", h.message[2]);
	task = tt_task(tm, "job", id, 0);
	ck_assert_int_eq((int)rt_detail_num(task, "attempts"), 3);
	ck_assert_msg(rt_has_warning(task, "attempt 1 of 3 failed: err 1"), "warning 1");
	ck_assert_msg(rt_has_warning(task, "attempt 2 of 3 failed: err 2"), "warning 2");
	ck_assert_int_eq(rt_n_warnings(task), 2);
	/* A new attempt starts clean: the earlier errors are only warnings. */
	ck_assert_str_eq(rt_detail_str(task, "error"), "");
	cJSON_Delete(task);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(last_failed_attempt_ends_failed)
{
	char *dir, id[21];
	tm_manager *tm = start(&dir, 2, 0.02, 0, id);
	cJSON *task;

	rt_await_status(tm, "job", id, "FAILED");
	ck_assert_int_eq(atomic_load(&h.runs), 2);
	task = tt_task(tm, "job", id, 0);
	ck_assert_int_eq((int)rt_detail_num(task, "attempts"), 2);
	ck_assert_str_eq(rt_detail_str(task, "error"), "err 2");
	ck_assert_msg(rt_has_warning(task, "attempt 1 of 2 failed: err 1"), "warning");
	cJSON_Delete(task);
	/* Nothing runs it again. */
	rt_barrier(tm);
	ck_assert_int_eq(atomic_load(&h.runs), 2);
	tt_close_tmp(tm, dir);
}
END_TEST

/* Order of events, not durations: a task triggered after the failure runs
 * and completes on the only worker while the retry still waits. */
START_TEST(retry_does_not_run_before_its_backoff)
{
	char *dir, id[21], other[21];
	tm_manager *tm = start(&dir, 2, 1800, 0, id);
	tm_job_def q = rt_def("other", rt_complete, NULL);
	cJSON *task;

	ck_assert_ok(tm_register(tm, &q));
	await_message(tm, "job", id, "retrying");
	task = tt_task(tm, "job", id, 0);
	ck_assert_str_eq(rt_status_of(task), "RUNNING");
	ck_assert_int_eq((int)rt_detail_num(task, "attempts"), 1);
	ck_assert_msg(strstr(rt_message(task), "attempt 1 of 2 failed"), "%s", rt_message(task));
	cJSON_Delete(task);

	tt_trigger(tm, "other", NULL, other);
	rt_await_status(tm, "other", other, "COMPLETED");
	rt_barrier(tm);
	ck_assert_int_eq(atomic_load(&h.runs), 1);

	/* A task waiting to retry is cancelled at once. */
	rt_assert_cancel_gives(tm, "job", id, "CANCELLED");
	rt_barrier(tm);
	ck_assert_int_eq(atomic_load(&h.runs), 1);
	tt_assert_check(tm, -1);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(backoff_doubles_each_retry)
{
	char *dir, id[21];
	tm_manager *tm = start(&dir, 3, 0.1, 3, id);

	rt_await_status(tm, "job", id, "COMPLETED");
	ck_assert_int_eq(atomic_load(&h.runs), 3);
	ck_assert_msg(strstr(h.message[1], "retrying in 0.1 s"), "message: %s", h.message[1]);
	ck_assert_msg(strstr(h.message[2], "retrying in 0.2 s"), "message: %s", h.message[2]);
	/* Lower bounds only (a retry may start late, never early); 10 ms of
	 * slack for the wall clock the library schedules on. */
	ck_assert_msg(h.started[1] - h.returned[0] >= 0.09,
	              "retry 1 ran %.3f s after the failure", h.started[1] - h.returned[0]);
	ck_assert_msg(h.started[2] - h.returned[1] >= 0.19,
	              "retry 2 ran %.3f s after the failure", h.started[2] - h.returned[1]);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(backoff_is_capped_at_an_hour)
{
	char *dir, id[21];
	tm_manager *tm = start(&dir, 2, 5000, 0, id);

	await_message(tm, "job", id, "retrying in 3600 s");
	ck_assert_ok(tm_cancel(tm, "job", id, NULL));
	rt_await_status(tm, "job", id, "CANCELLED");
	ck_assert_int_eq(atomic_load(&h.runs), 1);
	tt_close_tmp(tm, dir);
}
END_TEST

TT_MAIN("runtime_retry",
	failed_attempts_are_retried_and_counted,
	last_failed_attempt_ends_failed,
	retry_does_not_run_before_its_backoff,
	backoff_doubles_each_retry,
	backoff_is_capped_at_an_hour)
