/* Progress (doc/runtime.md, "What a handler sees"): tm_job_progress merges
 * into details.progress, writes are coalesced (a tight loop costs a handful
 * of commits, not one per call), the value shows while the task runs, and
 * the last value reaches the store with the final status. */
#include <string.h>
#include <time.h>

#include "rt.h"

#define CALLS 1000

static struct {
	atomic_int started, release, done;
	/* How long the loop of 1000 calls ran: written by the worker, read by
	 * the test once the task is COMPLETED, which it learns through the
	 * store -- no synchronisation TSan can see, hence atomic. */
	_Atomic double loop_s;
} h;

/* 1000 calls spread over a few coalescing windows. */
static tm_status loop(tm_job *job, void *user)
{
	struct timespec pause = { 0, 300000 };
	double t0 = rt_mono();

	(void)user;
	for (int i = 0; i < CALLS; i++) {
		char json[64];

		snprintf(json, sizeof(json), "{\"i\": %d, \"total\": %d}", i, CALLS);
		if (tm_job_progress(job, json) != TM_OK ||
		    tm_job_message(job, "step %d of %d", i + 1, CALLS) != TM_OK)
			return tm_job_fail(job, "progress call %d failed", i);
		nanosleep(&pause, NULL);
	}
	atomic_store(&h.loop_s, rt_mono() - t0);
	return TM_COMPLETED;
}

static tm_status report_and_wait(tm_job *job, void *user)
{
	(void)user;
	tm_job_progress(job, "{\"rows\": 40, \"columns\": 3}");
	tm_job_message(job, "40 rows uploaded");
	atomic_store(&h.started, 1);
	tt_wait(rt_flag_set, &h.release, 60);
	tm_job_progress(job, "{\"rows\": 41}");
	return TM_COMPLETED;
}

static tm_status report_and_return(tm_job *job, void *user)
{
	(void)user;
	tm_job_progress(job, "{\"rows\": 7}");
	tm_job_message(job, "last words");
	tm_job_warn(job, "a late warning");
	return TM_COMPLETED;
}

START_TEST(thousand_progress_calls_cost_few_commits)
{
	char *dir = tt_tmpdir(), id[21];
	tm_options o;
	tm_manager *tm;
	tm_job_def d = rt_def("job", loop, NULL);
	double before, after, bound, loop_s;
	cJSON *task;

	memset(&h, 0, sizeof(h));
	rt_options(&o, dir, 1);
	o.progress_ms = 100;
	o.lease_ms = 30000; /* no lease renewal inside the count */
	tm = rt_open_with(&o);
	ck_assert_ok(tm_register(tm, &d));
	before = tt_stat(tm, NULL, "commits");
	tt_trigger(tm, "job", NULL, id);
	rt_await_status(tm, "job", id, "COMPLETED");
	after = tt_stat(tm, NULL, "commits");
	loop_s = atomic_load(&h.loop_s);
	/* Trigger, claim, first lease renewal and final status, plus at most
	 * one flush per window of 100 ms while the loop ran and one more;
	 * slack of 4 for wake-ups that commit nothing new.  One write per tick
	 * (every 20 ms) would be about twice as many. */
	bound = 4 + loop_s / 0.1 + 2 + 4;
	printf("%d progress + %d message calls over %.3f s cost %.0f commits "
	       "(trigger, claim and final status included; coalescing bound %.1f)\n",
	       CALLS, CALLS, loop_s, after - before, bound);
	ck_assert_msg(after - before < 100, "%.0f commits for %d progress calls",
	              after - before, CALLS);
	ck_assert_msg(after - before <= bound, "%.0f commits in %.3f s: more than one "
	              "flush per progress_ms window", after - before, loop_s);
	task = tt_task(tm, "job", id, 0);
	ck_assert_int_eq((int)rt_progress_num(task, "i"), CALLS - 1);
	ck_assert_str_eq(rt_message(task), "step 1000 of 1000");
	ck_assert_str_eq(cJSON_GetObjectItem(task, "progress")->valuestring, "step 1000 of 1000");
	cJSON_Delete(task);
	tt_close_tmp(tm, dir);
}
END_TEST

/* Both of the handler's reports: they are two calls, and a flush may
 * fall between them. */
static int shows_40_rows(const cJSON *task, const void *arg)
{
	(void)arg;
	return rt_progress_num(task, "rows") == 40 &&
	       strcmp(rt_message(task), "40 rows uploaded") == 0;
}

START_TEST(progress_is_visible_while_running)
{
	char *dir, id[21], *pub;
	tm_manager *tm = rt_open_tmp(&dir, 1);
	tm_job_def d = rt_def("job", report_and_wait, NULL);
	cJSON *task;

	memset(&h, 0, sizeof(h));
	d.flags = TM_JOB_PUBLIC;
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "job", NULL, id);
	ck_assert_msg(rt_wait_task(tm, "job", id, shows_40_rows, NULL, RT_DEADLINE),
	              "progress never showed");
	task = tt_task(tm, "job", id, 0);
	ck_assert_str_eq(rt_status_of(task), "RUNNING");
	ck_assert_str_eq(rt_message(task), "40 rows uploaded");
	cJSON_Delete(task);
	/* The public view has the message as `progress`, and no details. */
	task = tt_json(tt_get(tm, "job", id, TM_PUBLIC));
	pub = cJSON_PrintUnformatted(task);
	ck_assert_str_eq(cJSON_GetObjectItem(task, "progress")->valuestring, "40 rows uploaded");
	ck_assert_msg(cJSON_GetObjectItem(task, "details") == NULL, "details in %s", pub);
	cJSON_free(pub);
	cJSON_Delete(task);
	atomic_store(&h.release, 1);
	rt_await_status(tm, "job", id, "COMPLETED");
	task = tt_task(tm, "job", id, 0);
	ck_assert_int_eq((int)rt_progress_num(task, "rows"), 41);
	ck_assert_int_eq((int)rt_progress_num(task, "columns"), 3);
	cJSON_Delete(task);
	tt_close_tmp(tm, dir);
}
END_TEST

/* A window longer than the test: only the final write can carry it. */
START_TEST(last_progress_reaches_the_store_with_the_final_status)
{
	char *dir = tt_tmpdir(), id[21];
	tm_options o;
	tm_manager *tm;
	tm_job_def d = rt_def("job", report_and_return, NULL);
	cJSON *task;

	rt_options(&o, dir, 1);
	o.progress_ms = 600000;
	tm = rt_open_with(&o);
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "job", NULL, id);
	rt_await_status(tm, "job", id, "COMPLETED");
	task = tt_task(tm, "job", id, 0);
	ck_assert_int_eq((int)rt_progress_num(task, "rows"), 7);
	ck_assert_str_eq(rt_message(task), "last words");
	ck_assert_msg(rt_has_warning(task, "a late warning"), "warning lost");
	cJSON_Delete(task);
	tt_close_tmp(tm, dir);
}
END_TEST

/* A handler's share of the limits: progress up to half of
 * max_details_bytes (4 KiB here), warnings up to a quarter of
 * max_task_bytes (4 KiB); a call over them is refused and changes
 * nothing; tm_job_fail keeps 4096 bytes of its text. */
static tm_status overreach(tm_job *job, void *user)
{
	static char big[8192];
	int n = 0, *bad = user;

	memset(big, 'x', sizeof(big) - 1);
	if (tm_job_progress(job, "{\"rows\": 1}") != TM_OK)
		(*bad)++;
	big[3000] = '\0';
	if (tm_job_message(job, "%s", big) != TM_OK)
		(*bad)++;
	big[3000] = 'x';
	big[5000] = '\0';
	if (tm_job_message(job, "%s", big) != TM_EWRONG_DATA)
		(*bad)++;
	if (strstr(tm_last_error(), "max_details_bytes") == NULL)
		(*bad)++;
	big[5000] = 'x';
	while (tm_job_warn(job, "warning %d", n) == TM_OK && n < 100000)
		n++;
	if (n < 300 || n > 400 || strstr(tm_last_error(), "max_task_bytes") == NULL)
		(*bad)++; /* "warning N" takes about 13 bytes of 4096 */
	return tm_job_fail(job, "%s", big);
}

START_TEST(a_handler_is_held_to_its_share_of_the_limits)
{
	char *dir = tt_tmpdir(), id[21];
	int bad = 0;
	tm_options o;
	tm_manager *tm;
	tm_job_def d = rt_def("job", overreach, &bad);
	cJSON *task;

	rt_options(&o, dir, 1);
	o.max_task_bytes = 16 << 10;
	o.max_details_bytes = 8 << 10;
	o.max_list_bytes = 32 << 10;
	tm = rt_open_with(&o);
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "job", NULL, id);
	rt_await_status(tm, "job", id, "FAILED");
	ck_assert_int_eq(bad, 0);
	task = tt_task(tm, "job", id, 0);
	ck_assert_int_eq((int)rt_progress_num(task, "rows"), 1);
	ck_assert_uint_eq(strlen(rt_message(task)), 3000);
	ck_assert_uint_eq(strlen(rt_detail_str(task, "error")), 4096);
	cJSON_Delete(task);
	tt_close_tmp(tm, dir);
}
END_TEST

TT_MAIN("runtime_progress",
	thousand_progress_calls_cost_few_commits,
	progress_is_visible_while_running,
	last_progress_reaches_the_store_with_the_final_status,
	a_handler_is_held_to_its_share_of_the_limits)
