/* What each handler outcome makes of the task, and what a handler sees
 * through the tm_job_* calls (doc/runtime.md, "What a handler sees"). */
#include <string.h>

#include "rt.h"

/* What the handler saw, for the test thread to check. */
static struct {
	tm_manager *tm;        /* for a handler calling the API */
	atomic_int runs;
	char id[32], name[80], payload[256], status_inside[32];
	int has_secret;
	unsigned attempt;
	int rc_not_object, rc_not_json;
} seen;

static tm_status record(tm_job *job)
{
	snprintf(seen.id, sizeof(seen.id), "%s", tm_job_task_id(job));
	snprintf(seen.name, sizeof(seen.name), "%s", tm_job_name(job));
	snprintf(seen.payload, sizeof(seen.payload), "%s", tm_job_payload(job));
	seen.has_secret = tm_job_secret(job) != NULL;
	seen.attempt = tm_job_attempt(job);
	atomic_fetch_add(&seen.runs, 1);
	return TM_COMPLETED;
}

static tm_status complete(tm_job *job, void *user)
{
	cJSON *j;

	(void)user;
	record(job);
	/* A handler may call the API: its task is RUNNING meanwhile. */
	if (seen.tm && (j = rt_job_task(seen.tm, job)) != NULL) {
		snprintf(seen.status_inside, sizeof(seen.status_inside), "%s",
		         rt_status_of(j));
		cJSON_Delete(j);
	}
	return TM_COMPLETED;
}

/* What `answer` returns: its status, or, given an error, FAILED by
 * tm_job_fail(job, "disk %s", error). */
struct answer {
	tm_status status;
	const char *error;
};

static tm_status answer(tm_job *job, void *user)
{
	const struct answer *a = user;

	record(job);
	return a->error ? tm_job_fail(job, "disk %s", a->error) : a->status;
}

static tm_status report(tm_job *job, void *user)
{
	(void)user;
	tm_job_warn(job, "w %d", 1);
	tm_job_progress(job, "{\"a\": 1, \"b\": {\"c\": 2}}");
	tm_job_progress(job, "{\"b\": {\"c\": null, \"d\": 3}}");
	tm_job_message(job, "done %d", 5);
	seen.rc_not_object = tm_job_progress(job, "[1]");
	seen.rc_not_json = tm_job_progress(job, "{oops");
	tm_job_warn(job, "w %d", 2);
	record(job);
	return TM_COMPLETED;
}

/* Trigger one task of a fresh "job" with handler `run` (and its user);
 * wait for `status`. */
static cJSON *run_one(tm_status (*run)(tm_job *, void *), void *user, const char *body,
                      const char *status, char id[21])
{
	char *dir;
	tm_manager *tm = rt_open_tmp(&dir, 1);
	tm_job_def d = rt_def("job", run, user);
	cJSON *task;

	memset(&seen, 0, sizeof(seen));
	seen.tm = tm;
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "job", body, id);
	rt_await_status(tm, "job", id, status);
	task = tt_task(tm, "job", id, 0);
	ck_assert_int_eq(atomic_load(&seen.runs), 1);
	ck_assert_str_eq(seen.id, id);
	ck_assert_str_eq(seen.name, "job");
	ck_assert_uint_eq(seen.attempt, 1);
	ck_assert_int_eq((int)rt_detail_num(task, "attempts"), 1);
	ck_assert_msg(rt_detail_num(task, "end_time") > 0, "a final task has end_time");
	tt_assert_check(tm, -1);
	tt_close_tmp(tm, dir);
	return task;
}

START_TEST(completed_handler_ends_completed)
{
	char id[21];
	cJSON *task = run_one(complete, NULL, "{\"context_task\": {\"x\": 1}}",
	                      "COMPLETED", id);
	cJSON *payload = cJSON_Parse(seen.payload), *want = cJSON_Parse("{\"x\": 1}");

	ck_assert_msg(cJSON_Compare(payload, want, 1), "payload %s", seen.payload);
	ck_assert_int_eq(seen.has_secret, 0);
	ck_assert_str_eq(seen.status_inside, "RUNNING");
	ck_assert_ptr_null(tt_detail(task, "error"));
	ck_assert_int_eq(rt_n_warnings(task), 0);
	cJSON_Delete(payload);
	cJSON_Delete(want);
	cJSON_Delete(task);
}
END_TEST

START_TEST(failed_handler_ends_failed_with_its_error)
{
	char id[21];
	cJSON *task = run_one(answer, &(struct answer){ TM_FAILED, "full" }, NULL,
	                      "FAILED", id);

	ck_assert_str_eq(rt_detail_str(task, "error"), "disk full");
	ck_assert_str_eq(seen.payload, "{}");
	cJSON_Delete(task);
}
END_TEST

START_TEST(failed_handler_without_message_says_handler_failed)
{
	char id[21];
	cJSON *task = run_one(answer, &(struct answer){ TM_FAILED, NULL }, NULL,
	                      "FAILED", id);

	ck_assert_str_eq(rt_detail_str(task, "error"), "handler failed");
	cJSON_Delete(task);
}
END_TEST

START_TEST(cancelled_handler_ends_cancelled)
{
	char id[21];
	cJSON *task = run_one(answer, &(struct answer){ TM_CANCELLED, NULL }, NULL,
	                      "CANCELLED", id);

	ck_assert_ptr_null(tt_detail(task, "error"));
	cJSON_Delete(task);
}
END_TEST

START_TEST(non_final_return_ends_failed)
{
	char id[21];
	cJSON *task = run_one(answer, &(struct answer){ TM_RUNNING, NULL }, NULL,
	                      "FAILED", id);

	ck_assert_msg(rt_detail_str(task, "error")[0] != '\0',
	              "an invalid return leaves an error");
	cJSON_Delete(task);
}
END_TEST

START_TEST(progress_messages_and_warnings_reach_the_task)
{
	char id[21];
	cJSON *task = run_one(report, NULL, NULL, "COMPLETED", id);
	cJSON *want = cJSON_Parse("{\"a\": 1, \"b\": {\"d\": 3}, \"message\": \"done 5\"}");
	cJSON *got = tt_detail(task, "progress");
	char *text = cJSON_PrintUnformatted(got);

	ck_assert_msg(cJSON_Compare(got, want, 1), "progress %s", text);
	ck_assert_str_eq(cJSON_GetObjectItem(task, "progress")->valuestring, "done 5");
	ck_assert_int_eq(rt_n_warnings(task), 2);
	ck_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(task, "warnings"), 0)->valuestring, "w 1");
	ck_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(task, "warnings"), 1)->valuestring, "w 2");
	ck_assert_int_eq(seen.rc_not_object, TM_EWRONG_DATA);
	ck_assert_int_eq(seen.rc_not_json, TM_EWRONG_DATA);
	cJSON_free(text);
	cJSON_Delete(want);
	cJSON_Delete(task);
}
END_TEST

/* The poll interval is longer than the deadline: only the condition
 * variable of tm_trigger can have started the handler. */
START_TEST(same_process_trigger_wakes_a_worker_at_once)
{
	char *dir = tt_tmpdir(), id[21];
	tm_options o;
	tm_manager *tm;
	tm_job_def d = rt_def("job", complete, NULL);

	memset(&seen, 0, sizeof(seen));
	rt_options(&o, dir, 1);
	o.poll_ms = 60000;
	o.lease_ms = 60000;
	tm = rt_open_with(&o);
	ck_assert_ok(tm_register(tm, &d));
	for (int i = 0; i < 3; i++) {
		tt_trigger(tm, "job", NULL, id);
		ck_assert_msg(rt_wait_status(tm, "job", id, "COMPLETED", 30.0),
		              "trigger %d did not wake a worker", i);
	}
	ck_assert_int_eq(atomic_load(&seen.runs), 3);
	tt_close_tmp(tm, dir);
}
END_TEST

TT_MAIN("runtime_outcomes",
	completed_handler_ends_completed,
	failed_handler_ends_failed_with_its_error,
	failed_handler_without_message_says_handler_failed,
	cancelled_handler_ends_cancelled,
	non_final_return_ends_failed,
	progress_messages_and_warnings_reach_the_task,
	same_process_trigger_wakes_a_worker_at_once)
