/* "priority" in a trigger body (doc/runtime.md, "Priorities"): among a
 * name's waiting tasks the higher priority starts first, then the older;
 * between names, the worker serves the name whose next task has waited
 * longest, so neither a high-priority name nor a low-priority one holds
 * the other back.  Values outside -10..10, or not integers, are refused.
 *
 * The order is observed with one worker held busy by a gate task while
 * the others are triggered: when the gate opens, the worker starts them
 * one by one, and each handler appends its label to the order. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "rt.h"

static struct {
	pthread_mutex_t mu;
	char order[256];
	atomic_int gate_open, gate_running;
} h = { .mu = PTHREAD_MUTEX_INITIALIZER };

static tm_status gate(tm_job *job, void *user)
{
	(void)job;
	(void)user;
	atomic_store(&h.gate_running, 1);
	rt_wait_atleast(&h.gate_open, 1, RT_DEADLINE);
	return TM_COMPLETED;
}

/* Appends the payload's "label" to the order. */
static tm_status note(tm_job *job, void *user)
{
	cJSON *p = cJSON_Parse(tm_job_payload(job));
	const cJSON *label = cJSON_GetObjectItemCaseSensitive(p, "label");

	(void)user;
	pthread_mutex_lock(&h.mu);
	if (cJSON_IsString(label)) {
		if (h.order[0])
			strcat(h.order, " ");
		strcat(h.order, label->valuestring);
	}
	pthread_mutex_unlock(&h.mu);
	cJSON_Delete(p);
	return TM_COMPLETED;
}

static void reset(void)
{
	pthread_mutex_lock(&h.mu);
	h.order[0] = '\0';
	pthread_mutex_unlock(&h.mu);
	atomic_store(&h.gate_open, 0);
	atomic_store(&h.gate_running, 0);
}

/* One worker, held by a running gate task until open_gate(). */
static tm_manager *open_gated(char **dir, const char *const *names, size_t n)
{
	tm_manager *tm = rt_open_tmp(dir, 1);
	tm_job_def g = rt_def("gate", gate, NULL);
	char id[21];

	reset();
	ck_assert_ok(tm_register(tm, &g));
	for (size_t i = 0; i < n; i++) {
		tm_job_def d = rt_def(names[i], note, NULL);

		ck_assert_ok(tm_register(tm, &d));
	}
	tt_trigger(tm, "gate", NULL, id);
	ck_assert_msg(rt_wait_atleast(&h.gate_running, 1, RT_DEADLINE), "the gate never ran");
	return tm;
}

static void trigger(tm_manager *tm, const char *name, const char *label,
                    const char *priority, char id[21])
{
	char body[128];

	if (priority)
		snprintf(body, sizeof(body), "{\"context_task\": {\"label\": \"%s\"}, "
		         "\"priority\": %s}", label, priority);
	else
		snprintf(body, sizeof(body), "{\"context_task\": {\"label\": \"%s\"}}", label);
	tt_trigger(tm, name, body, id);
}

static void open_gate_and_await(tm_manager *tm, const char *name, char ids[][21], size_t n)
{
	atomic_store(&h.gate_open, 1);
	for (size_t i = 0; i < n; i++)
		rt_await_status(tm, name, ids[i], "COMPLETED");
}

static void assert_order(const char *want)
{
	pthread_mutex_lock(&h.mu);
	ck_assert_str_eq(h.order, want);
	pthread_mutex_unlock(&h.mu);
}

START_TEST(higher_priority_starts_first_then_the_older)
{
	static const char *const names[] = { "job" };
	static const struct { const char *label, *priority; } tasks[] = {
		{ "p0a", NULL }, { "p5a", "5" }, { "m3", "-3" }, { "p5b", "5" },
		{ "p10", "10" }, { "p0b", "0" }, { "m10", "-10" },
	};
	char *dir, ids[7][21];
	tm_manager *tm = open_gated(&dir, names, 1);

	for (size_t i = 0; i < 7; i++)
		trigger(tm, "job", tasks[i].label, tasks[i].priority, ids[i]);
	open_gate_and_await(tm, "job", ids, 7);
	assert_order("p10 p5a p5b p0a p0b m3 m10");
	tt_assert_check(tm, -1);
	tt_close_tmp(tm, dir);
}
END_TEST

/* Name a's oldest task has the lowest priority, and its newer ones the
 * highest; b's one task lies between them in age and has a low priority.
 * b goes first: its next task has waited longer than a's next (a's
 * priorities do not make a's newer tasks jump b's), and a's old
 * low-priority task does not win a the turn for its high-priority ones. */
START_TEST(names_take_turns_by_the_age_of_their_next_task)
{
	static const char *const names[] = { "a", "b" };
	char *dir, a[3][21], b[1][21];
	tm_manager *tm = open_gated(&dir, names, 2);

	trigger(tm, "a", "a-low", "-5", a[0]);
	trigger(tm, "b", "b-low", "-10", b[0]);
	trigger(tm, "a", "a-hi1", "10", a[1]);
	trigger(tm, "a", "a-hi2", "10", a[2]);
	open_gate_and_await(tm, "a", a, 3);
	rt_await_status(tm, "b", b[0], "COMPLETED");
	assert_order("b-low a-hi1 a-hi2 a-low");
	tt_close_tmp(tm, dir);
}
END_TEST

/* A high-priority task scheduled for later holds back neither the name's
 * ready tasks of lower priority nor the order among them. */
START_TEST(a_scheduled_task_does_not_hold_back_its_band)
{
	static const char *const names[] = { "job" };
	char *dir, ids[3][21], later[21], body[128], b[32];
	tm_manager *tm = open_gated(&dir, names, 1);

	snprintf(body, sizeof(body), "{\"context_task\": {\"label\": \"later\"}, "
	         "\"priority\": 10, \"not_before\": %.6f}", rt_now() + 3600);
	tt_trigger(tm, "job", body, later);
	trigger(tm, "job", "low", "-1", ids[0]);
	trigger(tm, "job", "mid", NULL, ids[1]);
	trigger(tm, "job", "high", "9", ids[2]);
	open_gate_and_await(tm, "job", ids, 3);
	assert_order("high mid low");
	ck_assert_str_eq(tt_status(tm, "job", later, b), "REQUEST_SENT");
	tt_close_tmp(tm, dir);
}
END_TEST

static int past(void *at)
{
	return rt_now() > *(double *)at;
}

/* Tasks ready at the same instant start oldest first. */
START_TEST(tasks_due_together_start_in_trigger_order)
{
	static const char *const names[] = { "job" };
	char *dir, ids[5][21], body[128];
	tm_manager *tm = open_gated(&dir, names, 1);
	double at = rt_now() + 0.2;

	for (int i = 0; i < 5; i++) {
		snprintf(body, sizeof(body), "{\"context_task\": {\"label\": \"t%d\"}, "
		         "\"not_before\": %.6f}", i, at);
		tt_trigger(tm, "job", body, ids[i]);
	}
	ck_assert_msg(tt_wait(past, &at, RT_DEADLINE), "the clock never passed");
	open_gate_and_await(tm, "job", ids, 5);
	assert_order("t0 t1 t2 t3 t4");
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(priority_is_shown_kept_on_retry_and_the_library_s)
{
	char *dir, id[21], plain[21], *out = NULL;
	tm_manager *tm = rt_open_tmp(&dir, 0);
	cJSON *task, *retried;

	tt_register(tm, "job", 0);
	tt_trigger(tm, "job", "{\"priority\": -7}", id);
	tt_trigger(tm, "job", NULL, plain);
	task = tt_task(tm, "job", id, 0);
	ck_assert_double_eq(rt_detail_num(task, "priority"), -7);
	cJSON_Delete(task);
	task = tt_task(tm, "job", plain, 0);
	ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(task, "details"), "priority"));
	cJSON_Delete(task);
	/* Only the library writes it. */
	ck_assert_err(tm_patch(tm, "job", id, "{\"details\": {\"priority\": 10}}", &out),
	              TM_EWRONG_DATA);
	ck_assert_ok(tm_patch(tm, "job", id, "{\"status\": \"FAILED\"}", &out));
	tm_free(out);
	ck_assert_ok(tm_retry(tm, "job", id, &out));
	retried = cJSON_Parse(out);
	tm_free(out);
	task = tt_task(tm, "job", cJSON_GetObjectItemCaseSensitive(retried, "task_id")->valuestring, 0);
	ck_assert_double_eq(rt_detail_num(task, "priority"), -7);
	cJSON_Delete(task);
	cJSON_Delete(retried);
	tt_assert_check(tm, -1);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(bad_priorities_are_refused_and_store_nothing)
{
	static const char *const bad[] = {
		"{\"priority\": 11}", "{\"priority\": -11}", "{\"priority\": 1.5}",
		"{\"priority\": \"5\"}", "{\"priority\": true}", "{\"priority\": null}",
		"{\"priority\": [1]}", "{\"priority\": 1e300}",
	};
	char *dir, id[21], *out = NULL;
	tm_manager *tm = rt_open_tmp(&dir, 0);

	tt_register(tm, "job", 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_err(tm_trigger(tm, "job", bad[i], 0, &out), TM_EWRONG_DATA);
		ck_assert_msg(strstr(tm_last_error(), "priority") != NULL, "%s: %s", bad[i],
		              tm_last_error());
	}
	ck_assert_err(tm_trigger_many(tm, "job", "[{\"priority\": 1}, {\"priority\": 12}]", 0,
	                              &out), TM_EWRONG_DATA);
	ck_assert_int_eq(tt_count(tm, "job"), 0);
	/* The bounds are accepted, and so is a whole number written as a float. */
	tt_trigger(tm, "job", "{\"priority\": 10}", id);
	tt_trigger(tm, "job", "{\"priority\": -10}", id);
	tt_trigger(tm, "job", "{\"priority\": 3.0}", id);
	ck_assert_ok(tm_trigger_many(tm, "job", "[{\"priority\": 2}, {}]", 0, &out));
	tm_free(out);
	ck_assert_int_eq(tt_count(tm, "job"), 5);
	tt_close_tmp(tm, dir);
}
END_TEST

TT_MAIN("runtime_priority",
	higher_priority_starts_first_then_the_older,
	names_take_turns_by_the_age_of_their_next_task,
	a_scheduled_task_does_not_hold_back_its_band,
	tasks_due_together_start_in_trigger_order,
	priority_is_shown_kept_on_retry_and_the_library_s,
	bad_priorities_are_refused_and_store_nothing)
