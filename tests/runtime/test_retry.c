/* SPEC section 6, retries: a FAILED outcome with attempts left keeps the task
 * RUNNING, counts the attempt, waits the backoff (doubled each time, capped)
 * and runs again; the progress message says why. */
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

static void reset(tm_manager *tm, unsigned succeed_at)
{
	memset(&h, 0, sizeof(h));
	h.tm = tm;
	h.succeed_at = succeed_at;
}

/* Fails with "err N" on attempt N, until attempt succeed_at. */
static tm_status flaky(tm_job *job, void *user)
{
	int k = atomic_load(&h.runs);
	char *out = NULL;

	(void)user;
	if (k >= MAX_RUNS)
		return TM_FAILED;
	h.started[k] = rt_mono();
	h.attempt[k] = tm_job_attempt(job);
	if (tm_get(h.tm, tm_job_name(job), tm_job_task_id(job), 0, &out) == TM_OK) {
		cJSON *j = cJSON_Parse(out);
		snprintf(h.message[k], sizeof(h.message[k]), "%s", rt_message(j));
		snprintf(h.status[k], sizeof(h.status[k]), "%s", rt_status_of(j));
		h.attempts_detail[k] = (int)rt_detail_num(j, "attempts");
		cJSON_Delete(j);
		tm_free(out);
	}
	h.returned[k] = rt_mono();
	atomic_fetch_add(&h.runs, 1);
	if (h.succeed_at && tm_job_attempt(job) >= h.succeed_at)
		return TM_COMPLETED;
	return tm_job_fail(job, "err %u", tm_job_attempt(job));
}

static tm_status quick(tm_job *job, void *user)
{
	(void)job;
	(void)user;
	return TM_COMPLETED;
}

struct msg_wait {
	tm_manager *tm;
	const char *name, *id, *needle;
};

static int message_has(void *p)
{
	struct msg_wait *w = p;
	cJSON *t = rt_task(w->tm, w->name, w->id);
	int ok = strstr(rt_message(t), w->needle) != NULL;

	cJSON_Delete(t);
	return ok;
}

static void await_message(tm_manager *tm, const char *name, const char *id,
                          const char *needle)
{
	struct msg_wait w = { tm, name, id, needle };

	ck_assert_msg(tt_wait(message_has, &w, RT_DEADLINE),
	              "progress message of %s never said \"%s\"", id, needle);
}

START_TEST(failed_attempts_are_retried_and_counted)
{
	char *dir = tt_tmpdir(), id[21];
	tm_manager *tm = rt_open(dir, 1);
	tm_job_def d = rt_def("job", flaky, NULL);
	cJSON *task;

	reset(tm, 3);
	d.max_attempts = 3;
	d.retry_backoff_s = 0.02;
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "job", NULL, id);
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
	task = rt_task(tm, "job", id);
	ck_assert_int_eq((int)rt_detail_num(task, "attempts"), 3);
	ck_assert_msg(rt_has_warning(task, "attempt 1 of 3 failed: err 1"), "warning 1");
	ck_assert_msg(rt_has_warning(task, "attempt 2 of 3 failed: err 2"), "warning 2");
	ck_assert_int_eq(rt_n_warnings(task), 2);
	/* A new attempt starts clean: the earlier errors are only warnings. */
	ck_assert_str_eq(rt_detail_str(task, "error"), "");
	cJSON_Delete(task);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(last_failed_attempt_ends_failed)
{
	char *dir = tt_tmpdir(), id[21];
	tm_manager *tm = rt_open(dir, 1);
	tm_job_def d = rt_def("job", flaky, NULL);
	cJSON *task;

	reset(tm, 0);
	d.max_attempts = 2;
	d.retry_backoff_s = 0.02;
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "job", NULL, id);
	rt_await_status(tm, "job", id, "FAILED");
	ck_assert_int_eq(atomic_load(&h.runs), 2);
	task = rt_task(tm, "job", id);
	ck_assert_int_eq((int)rt_detail_num(task, "attempts"), 2);
	ck_assert_str_eq(rt_detail_str(task, "error"), "err 2");
	ck_assert_msg(rt_has_warning(task, "attempt 1 of 2 failed: err 1"), "warning");
	cJSON_Delete(task);
	/* Nothing runs it again. */
	rt_barrier(tm);
	ck_assert_int_eq(atomic_load(&h.runs), 2);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

/* Order of events, not durations: a task triggered after the failure runs
 * and completes on the only worker while the retry still waits. */
START_TEST(retry_does_not_run_before_its_backoff)
{
	char *dir = tt_tmpdir(), id[21], other[21];
	tm_manager *tm = rt_open(dir, 1);
	tm_job_def d = rt_def("job", flaky, NULL), q = rt_def("other", quick, NULL);
	cJSON *task, *out;
	char *text = NULL;

	reset(tm, 0);
	d.max_attempts = 2;
	d.retry_backoff_s = 1800;
	ck_assert_ok(tm_register(tm, &d));
	ck_assert_ok(tm_register(tm, &q));
	tt_trigger(tm, "job", NULL, id);
	await_message(tm, "job", id, "retrying");
	task = rt_task(tm, "job", id);
	ck_assert_str_eq(rt_status_of(task), "RUNNING");
	ck_assert_int_eq((int)rt_detail_num(task, "attempts"), 1);
	ck_assert_msg(strstr(rt_message(task), "attempt 1 of 2 failed"), "%s", rt_message(task));
	cJSON_Delete(task);

	tt_trigger(tm, "other", NULL, other);
	rt_await_status(tm, "other", other, "COMPLETED");
	rt_barrier(tm);
	ck_assert_int_eq(atomic_load(&h.runs), 1);

	/* A task waiting to retry is cancelled at once. */
	ck_assert_ok(tm_cancel(tm, "job", id, &text));
	out = tt_json(text);
	ck_assert_str_eq(rt_status_of(out), "CANCELLED");
	cJSON_Delete(out);
	rt_barrier(tm);
	ck_assert_int_eq(atomic_load(&h.runs), 1);
	rt_assert_check_ok(tm);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(backoff_doubles_each_retry)
{
	char *dir = tt_tmpdir(), id[21];
	tm_manager *tm = rt_open(dir, 1);
	tm_job_def d = rt_def("job", flaky, NULL);

	reset(tm, 3);
	d.max_attempts = 3;
	d.retry_backoff_s = 0.1;
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "job", NULL, id);
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
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(backoff_is_capped_at_an_hour)
{
	char *dir = tt_tmpdir(), id[21];
	tm_manager *tm = rt_open(dir, 1);
	tm_job_def d = rt_def("job", flaky, NULL);

	reset(tm, 0);
	d.max_attempts = 2;
	d.retry_backoff_s = 5000;
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "job", NULL, id);
	await_message(tm, "job", id, "retrying in 3600 s");
	ck_assert_ok(tm_cancel(tm, "job", id, NULL));
	rt_await_status(tm, "job", id, "CANCELLED");
	ck_assert_int_eq(atomic_load(&h.runs), 1);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("runtime_retry");

	tt_add(s, failed_attempts_are_retried_and_counted);
	tt_add(s, last_failed_attempt_ends_failed);
	tt_add(s, retry_does_not_run_before_its_backoff);
	tt_add(s, backoff_doubles_each_retry);
	tt_add(s, backoff_is_capped_at_an_hour);
	return tt_run(s);
}
