/* Automatic triggers (doc/runtime.md, "Automatic triggers"): interval_s,
 * change_threshold with tm_notify, min_interval_s debouncing both; the
 * state lives in the store, so a restart neither misses nor repeats a
 * trigger; an exclusive name that is busy keeps its count and fires once
 * its task ends. */
#include <string.h>

#include "rt.h"

static struct {
	atomic_int runs, started, release;
} h;

/* Blocks when its payload says so; automatic tasks have none. */
static tm_status job(tm_job *j, void *user)
{
	(void)user;
	atomic_fetch_add(&h.runs, 1);
	atomic_fetch_add(&h.started, 1);
	if (strstr(tm_job_payload(j), "block"))
		tt_wait(rt_flag_set, &h.release, 60);
	return TM_COMPLETED;
}

/* The tasks of name, oldest first, parsed (cJSON_Delete the array). */
static cJSON *tasks_oldest_first(tm_manager *tm, const char *name)
{
	char *out = NULL;
	cJSON *list, *tasks, *rev = cJSON_CreateArray();

	ck_assert_ok(tm_list_recent(tm, name, 1, 64, 0, &out));
	list = tt_json(out);
	tasks = cJSON_GetObjectItem(list, "tasks");
	for (int i = cJSON_GetArraySize(tasks) - 1; i >= 0; i--)
		cJSON_AddItemToArray(rev, cJSON_Duplicate(cJSON_GetArrayItem(tasks, i), 1));
	cJSON_Delete(list);
	return rev;
}

static double start_of(const cJSON *task)
{
	return cJSON_GetObjectItem(task, "start_time")->valuedouble;
}

static int clock_past(void *p)
{
	return rt_now() >= *(double *)p;
}

/* The n-th task of "auto" was triggered for `reason` and completes; a
 * whole tick later "auto" still has n tasks, each run once, and counts
 * changes from 0 again. */
static void assert_fired(tm_manager *tm, int n, const char *reason)
{
	cJSON *tasks;
	const cJSON *t;

	rt_await_count_atleast(tm, "auto", n);
	tasks = tasks_oldest_first(tm, "auto");
	ck_assert_int_eq(cJSON_GetArraySize(tasks), n);
	t = cJSON_GetArrayItem(tasks, n - 1);
	ck_assert_str_eq(rt_detail_str(t, "create_reason"), reason);
	rt_await_status(tm, "auto", cJSON_GetObjectItem(t, "task_id")->valuestring, "COMPLETED");
	cJSON_Delete(tasks);
	rt_barrier(tm);
	ck_assert_int_eq(tt_count(tm, "auto"), n);
	ck_assert_int_eq(tt_stat(tm, "auto", "changes"), 0);
	ck_assert_int_eq(atomic_load(&h.runs), n);
}

static tm_manager *open_auto(const char *dir, double interval, uint64_t threshold,
                             double min_interval, unsigned flags)
{
	tm_manager *tm = rt_open(dir, 1);
	tm_job_def d = rt_def("auto", job, NULL);

	memset(&h, 0, sizeof(h));
	d.interval_s = interval;
	d.change_threshold = threshold;
	d.min_interval_s = min_interval;
	d.flags = flags;
	ck_assert_ok(tm_register(tm, &d));
	return tm;
}

static void register_ref(tm_manager *tm)
{
	tm_job_def d = rt_def("ref", job, NULL);

	d.interval_s = 0.5;
	ck_assert_ok(tm_register(tm, &d));
}

/* "auto" is registered, closed before it is due, and reopened once overdue:
 * it fires at once (not missed), before "ref", registered at the reopening
 * with a shorter interval.  Closed right after and reopened, it does not
 * fire again before its interval has passed since that task (not
 * repeated).  Order of events and lower bounds only. */
START_TEST(interval_trigger_fires_once_across_restart)
{
	char *dir = tt_tmpdir();
	double registered = rt_now(), overdue = registered + 1.2, s1, s2, ref;
	tm_manager *tm = open_auto(dir, 1.0, 0, 0, 0);
	cJSON *tasks;

	tm_close(tm);
	ck_assert_msg(tt_wait(clock_past, &overdue, 10), "clock");

	tm = open_auto(dir, 1.0, 0, 0, 0);
	register_ref(tm);
	rt_await_count_atleast(tm, "auto", 1);
	tm_close(tm);
	tm = open_auto(dir, 1.0, 0, 0, 0);
	register_ref(tm);
	rt_await_count_atleast(tm, "auto", 2);
	rt_await_count_atleast(tm, "ref", 1);
	tasks = tasks_oldest_first(tm, "ref");
	ref = start_of(cJSON_GetArrayItem(tasks, 0));
	cJSON_Delete(tasks);
	tasks = tasks_oldest_first(tm, "auto");
	ck_assert_str_eq(rt_detail_str(cJSON_GetArrayItem(tasks, 0), "create_reason"),
	                 "automatic: last run older than 1 s");
	s1 = start_of(cJSON_GetArrayItem(tasks, 0));
	s2 = start_of(cJSON_GetArrayItem(tasks, 1));
	ck_assert_msg(s1 >= registered + 1.0, "fired %.3f s after registration",
	              s1 - registered);
	ck_assert_msg(s1 < ref, "the overdue trigger waited for a new interval "
	              "(%.3f s after a fresh 0.5 s one)", s1 - ref);
	ck_assert_msg(s2 - s1 >= 1.0, "fired again %.3f s after the last run", s2 - s1);
	cJSON_Delete(tasks);
	tt_close_tmp(tm, dir);
}
END_TEST

/* The count is durable: 3 changes, a restart, 2 more fire once. */
START_TEST(change_threshold_fires_after_enough_changes)
{
	char *dir = tt_tmpdir();
	tm_manager *tm = open_auto(dir, 0, 5, 0, 0);

	ck_assert_ok(tm_notify(tm, "auto", 3));
	rt_barrier(tm);
	ck_assert_int_eq(tt_count(tm, "auto"), 0);
	ck_assert_int_eq(tt_stat(tm, "auto", "changes"), 3);
	tm_close(tm);

	tm = open_auto(dir, 0, 5, 0, 0);
	rt_barrier(tm);
	ck_assert_int_eq(tt_count(tm, "auto"), 0);
	ck_assert_ok(tm_notify(tm, "auto", 2));
	assert_fired(tm, 1, "automatic: 5 changes since last run");
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(change_threshold_with_busy_exclusive_name_fires_once_after_task_ends)
{
	char *dir = tt_tmpdir(), manual[21];
	tm_manager *tm = open_auto(dir, 0, 10, 0, TM_JOB_EXCLUSIVE);

	tt_trigger(tm, "auto", "{\"context_task\": {\"block\": true}}", manual);
	rt_await_atleast(&h.started, 1);
	ck_assert_ok(tm_notify(tm, "auto", 10));
	ck_assert_ok(tm_notify(tm, "auto", 5));
	rt_barrier(tm);
	ck_assert_int_eq(tt_count(tm, "auto"), 1);
	ck_assert_int_eq(tt_stat(tm, "auto", "changes"), 15); /* kept while busy */

	atomic_store(&h.release, 1);
	rt_await_status(tm, "auto", manual, "COMPLETED");
	assert_fired(tm, 2, "automatic: 15 changes since last run");
	tt_close_tmp(tm, dir);
}
END_TEST

/* Any task of the name resets the count, a manual one included. */
START_TEST(any_trigger_resets_the_change_count)
{
	char *dir = tt_tmpdir(), manual[21];
	tm_manager *tm = open_auto(dir, 0, 10, 0, 0);

	ck_assert_ok(tm_notify(tm, "auto", 7));
	ck_assert_int_eq(tt_stat(tm, "auto", "changes"), 7);
	tt_trigger(tm, "auto", NULL, manual);
	ck_assert_int_eq(tt_stat(tm, "auto", "changes"), 0);
	ck_assert_ok(tm_notify(tm, "auto", 7));
	rt_await_status(tm, "auto", manual, "COMPLETED");
	rt_barrier(tm);
	ck_assert_int_eq(tt_count(tm, "auto"), 1); /* 7 of 10 since the last task */
	ck_assert_int_eq(tt_stat(tm, "auto", "changes"), 7);
	tt_close_tmp(tm, dir);
}
END_TEST

/* Both rules wait min_interval_s after the last task (lower bounds only). */
START_TEST(min_interval_debounces_triggers)
{
	char *dir = tt_tmpdir(), manual[21];
	tm_manager *tm = rt_open(dir, 1);
	tm_job_def c = rt_def("changes", job, NULL), i = rt_def("interval", job, NULL);
	cJSON *tasks;

	c.change_threshold = 1;
	c.min_interval_s = 0.8;
	i.interval_s = 0.05;
	i.min_interval_s = 0.4;
	ck_assert_ok(tm_register(tm, &c));
	tt_trigger(tm, "changes", NULL, manual);
	ck_assert_ok(tm_notify(tm, "changes", 1));
	ck_assert_ok(tm_register(tm, &i));

	rt_await_count_atleast(tm, "changes", 2);
	tasks = tasks_oldest_first(tm, "changes");
	ck_assert_str_eq(rt_detail_str(cJSON_GetArrayItem(tasks, 1), "create_reason"),
	                 "automatic: 1 changes since last run");
	ck_assert_msg(start_of(cJSON_GetArrayItem(tasks, 1)) -
	              start_of(cJSON_GetArrayItem(tasks, 0)) >= 0.8,
	              "the change trigger fired %.3f s after the last task",
	              start_of(cJSON_GetArrayItem(tasks, 1)) - start_of(cJSON_GetArrayItem(tasks, 0)));
	cJSON_Delete(tasks);

	rt_await_count_atleast(tm, "interval", 3);
	tasks = tasks_oldest_first(tm, "interval");
	for (int k = 1; k < cJSON_GetArraySize(tasks); k++) {
		double gap = start_of(cJSON_GetArrayItem(tasks, k)) -
		             start_of(cJSON_GetArrayItem(tasks, k - 1));
		ck_assert_msg(gap >= 0.4, "interval trigger %d came %.3f s after the last", k, gap);
	}
	cJSON_Delete(tasks);
	tt_close_tmp(tm, dir);
}
END_TEST

TT_MAIN("runtime_triggers",
	interval_trigger_fires_once_across_restart,
	change_threshold_fires_after_enough_changes,
	change_threshold_with_busy_exclusive_name_fires_once_after_task_ends,
	any_trigger_resets_the_change_count,
	min_interval_debounces_triggers)
