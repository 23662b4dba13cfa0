/* Graceful close (doc/runtime.md, "Closing"): tm_close() tells running
 * handlers to stop, waits up to grace_ms, and leaves unfinished tasks to
 * the next open without counting an attempt; a handler that stopped because
 * of the close is not CANCELLED or FAILED for it, one that completed is
 * COMPLETED. */
#include <string.h>

#include "rt.h"

#define TASKS 3

#define RUNS_KEPT 8

static struct {
	atomic_int started, returned, release, runs, saw_close;
	unsigned attempt[RUNS_KEPT];
	char secret[RUNS_KEPT][16];
	char task[RUNS_KEPT][21];
	atomic_int recorded[RUNS_KEPT]; /* the three above are written */
} h;

static void record_start(tm_job *job)
{
	int k = atomic_fetch_add(&h.runs, 1);

	if (k < RUNS_KEPT) {
		h.attempt[k] = tm_job_attempt(job);
		snprintf(h.secret[k], sizeof(h.secret[k]), "%s",
		         tm_job_secret(job) ? tm_job_secret(job) : "(null)");
		snprintf(h.task[k], sizeof(h.task[k]), "%s", tm_job_task_id(job));
		atomic_store(&h.recorded[k], 1);
	}
	atomic_fetch_add(&h.started, 1);
}

/* The runs started so far, "task#attempt ...", for a failure's message
 * ("?" for one still being recorded). */
static const char *runs_seen(void)
{
	static char out[RUNS_KEPT * 32];
	int n = atomic_load(&h.runs);
	size_t len = 0;

	out[0] = '\0';
	for (int k = 0; k < n && k < RUNS_KEPT; k++) {
		if (atomic_load(&h.recorded[k]))
			len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s#%u",
			                        k ? " " : "", h.task[k], h.attempt[k]);
		else
			len += (size_t)snprintf(out + len, sizeof(out) - len, "%s?",
			                        k ? " " : "");
	}
	return out;
}

/* Ignores the close, past the grace period, until the test releases it. */
static tm_status stubborn(tm_job *job, void *user)
{
	(void)user;
	record_start(job);
	tt_wait(rt_flag_set, &h.release, 60);
	atomic_store(&h.saw_close, tm_job_cancelled(job) != 0);
	atomic_fetch_add(&h.returned, 1);
	return TM_COMPLETED;
}

/* Stops as soon as told, answering what its payload says. */
static tm_status cooperative(tm_job *job, void *user)
{
	const char *p = tm_job_payload(job);

	(void)user;
	record_start(job);
	tt_wait((int (*)(void *))tm_job_cancelled, job, 60);
	atomic_fetch_add(&h.saw_close, tm_job_cancelled(job) != 0);
	atomic_fetch_add(&h.returned, 1);
	if (strstr(p, "COMPLETED"))
		return TM_COMPLETED;
	if (strstr(p, "FAILED"))
		return tm_job_fail(job, "interrupted");
	return TM_CANCELLED;
}

static tm_status quick(tm_job *job, void *user)
{
	(void)user;
	record_start(job);
	return TM_COMPLETED;
}

/* "job" runs `run`, at most `concurrency` at once (0: no limit).
 * grace_ms 200 for a handler meant to outlast it; long for the others, so
 * that a slow machine cannot make a prompt handler miss it.  A long lease:
 * with the short one of rt_options, a loaded machine (a sanitizer, other
 * tests) can hold the supervisor back past a run's fence, two thirds of a
 * lease, and the handler is then told to stop (doc/runtime.md,
 * "Self-fencing") before tm_close() says so; its task goes back to the
 * queue and runs again, a run these counts do not expect. */
static tm_manager *open_with(const char *dir, unsigned workers, unsigned grace_ms,
                             tm_status (*run)(tm_job *, void *), unsigned concurrency)
{
	tm_options o;
	tm_manager *tm;
	tm_job_def d = rt_def("job", run, NULL);

	rt_options(&o, dir, workers);
	o.grace_ms = grace_ms;
	o.lease_ms = 60000;
	tm = rt_open_with(&o);
	d.concurrency = concurrency;
	ck_assert_ok(tm_register(tm, &d));
	return tm;
}

/* Reopened without workers: the task waits, neither ended nor counted. */
static void assert_waiting(const char *dir, const char *id)
{
	tm_manager *tm = open_with(dir, 0, 5000, quick, 0);
	cJSON *task = tt_task(tm, "job", id, 0);

	ck_assert_str_eq(rt_status_of(task), "RUNNING");
	ck_assert_int_eq(rt_n_warnings(task), 0);
	cJSON_Delete(task);
	tm_close(tm);
}

START_TEST(close_during_job_resumes_with_same_attempt)
{
	char *dir = tt_tmpdir(), id[21];
	tm_manager *tm = open_with(dir, 1, 200, stubborn, 0);

	memset(&h, 0, sizeof(h));
	tt_trigger(tm, "job", "{\"refresh_token\": \"tok\"}", id);
	rt_await_atleast(&h.started, 1);
	tm_close(tm); /* returns after the grace period, the handler still busy */
	atomic_store(&h.release, 1);
	rt_await_atleast(&h.returned, 1);
	ck_assert_int_eq(atomic_load(&h.saw_close), 1);

	assert_waiting(dir, id);
	tm = open_with(dir, 1, 5000, quick, 0);
	rt_await_status(tm, "job", id, "COMPLETED");
	/* The status came through the store, which TSan cannot see through:
	 * this atomic read orders the handler's writes before ours. */
	rt_await_atleast(&h.started, 2);
	ck_assert_int_eq(atomic_load(&h.runs), 2);
	ck_assert_uint_eq(h.attempt[0], 1);
	ck_assert_uint_eq(h.attempt[1], 1);
	ck_assert_str_eq(h.secret[1], "tok"); /* the resumed run has it too */
	rt_assert_attempts(tm, "job", id, 1);
	tt_assert_check(tm, -1);
	tt_close_tmp(tm, dir);
}
END_TEST

/* Returning CANCELLED or FAILED because of the close: resumed, uncounted. */
START_TEST(close_with_cooperative_handler_requeues)
{
	static const char *answers[2] = { "CANCELLED", "FAILED" };
	char *dir = tt_tmpdir(), ids[2][21];
	tm_manager *tm = open_with(dir, 2, 5000, cooperative, 0);

	memset(&h, 0, sizeof(h));
	for (int i = 0; i < 2; i++) {
		char body[80];

		snprintf(body, sizeof(body), "{\"context_task\": {\"answer\": \"%s\"}}", answers[i]);
		tt_trigger(tm, "job", body, ids[i]);
	}
	rt_await_atleast(&h.started, 2);
	tm_close(tm);
	ck_assert_msg(atomic_load(&h.returned) == 2 && atomic_load(&h.saw_close) == 2,
	              "tm_close() returned after %d runs returned (%d saw the close); "
	              "the runs (task#attempt): %s", atomic_load(&h.returned),
	              atomic_load(&h.saw_close), runs_seen());

	for (int i = 0; i < 2; i++)
		assert_waiting(dir, ids[i]);
	tm = open_with(dir, 2, 5000, quick, 0);
	for (int i = 0; i < 2; i++) {
		cJSON *task;

		rt_await_status(tm, "job", ids[i], "COMPLETED");
		task = tt_task(tm, "job", ids[i], 0);
		ck_assert_int_eq((int)rt_detail_num(task, "attempts"), 1);
		ck_assert_int_eq(rt_n_warnings(task), 0);
		ck_assert_str_eq(rt_detail_str(task, "error"), "");
		cJSON_Delete(task);
	}
	rt_await_atleast(&h.started, 4); /* orders the handlers' writes (TSan) */
	ck_assert_msg(atomic_load(&h.runs) == 4, "%d runs (task#attempt): %s",
	              atomic_load(&h.runs), runs_seen());
	for (int k = 0; k < 4; k++)
		ck_assert_msg(h.attempt[k] == 1, "runs (task#attempt): %s", runs_seen());
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(close_with_handler_completing_completes)
{
	char *dir = tt_tmpdir(), id[21], buf[32];
	tm_manager *tm = open_with(dir, 1, 5000, cooperative, 0);

	memset(&h, 0, sizeof(h));
	tt_trigger(tm, "job", "{\"context_task\": {\"answer\": \"COMPLETED\"}}", id);
	rt_await_atleast(&h.started, 1);
	tm_close(tm);
	ck_assert_int_eq(atomic_load(&h.returned), 1);

	tm = open_with(dir, 1, 5000, quick, 0);
	ck_assert_str_eq(tt_status(tm, "job", id, buf), "COMPLETED");
	rt_assert_attempts(tm, "job", id, 1);
	rt_barrier(tm);
	ck_assert_int_eq(atomic_load(&h.runs), 1);
	tt_close_tmp(tm, dir);
}
END_TEST

/* tm_close() takes no new task: a task still waiting stays REQUEST_SENT. */
START_TEST(close_leaves_waiting_tasks_waiting)
{
	char *dir = tt_tmpdir(), ids[TASKS][21], buf[32];
	tm_manager *tm = open_with(dir, 2, 5000, cooperative, 1);

	memset(&h, 0, sizeof(h));
	for (int i = 0; i < TASKS; i++)
		tt_trigger(tm, "job", "{\"context_task\": {\"answer\": \"COMPLETED\"}}", ids[i]);
	rt_await_atleast(&h.started, 1);
	tm_close(tm); /* the handler completes; the free worker must not start more */
	ck_assert_int_eq(atomic_load(&h.runs), 1);
	tm = open_with(dir, 0, 5000, quick, 0);
	/* The one that ran is the oldest on LMDB; on PostgreSQL, with two
	 * workers claiming at once, possibly another (doc/postgresql.md). */
	int completed = 0;
	for (int i = 0; i < TASKS; i++) {
		const char *st = tt_status(tm, "job", ids[i], buf);

		if (strcmp(st, "COMPLETED") == 0)
			completed++;
		else
			ck_assert_str_eq(st, "REQUEST_SENT");
	}
	ck_assert_int_eq(completed, 1);
	tt_close_tmp(tm, dir);
}
END_TEST

TT_MAIN("runtime_close",
	close_during_job_resumes_with_same_attempt,
	close_with_cooperative_handler_requeues,
	close_with_handler_completing_completes,
	close_leaves_waiting_tasks_waiting)
