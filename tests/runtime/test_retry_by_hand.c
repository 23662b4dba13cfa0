/* tm_retry (doc/api.md, "Retry by hand"): a FAILED or CANCELLED task
 * comes back as a new task with its payload, create_reason "retry of <id>"
 * and details.retry_of; its refresh token does not come along; anything
 * else is refused and creates nothing. */
#include <string.h>

#include "rt.h"

static struct {
	atomic_int runs, had_secret;
	char payload[256];
} h;

static tm_status record(tm_job *job, void *user)
{
	(void)user;
	snprintf(h.payload, sizeof(h.payload), "%s", tm_job_payload(job));
	atomic_store(&h.had_secret, tm_job_secret(job) != NULL);
	atomic_fetch_add(&h.runs, 1);
	return TM_COMPLETED;
}

START_TEST(failed_and_cancelled_tasks_come_back_with_their_payload)
{
	char *dir, failed[21], cancelled[21];
	tm_manager *tm = rt_open_tmp(&dir, 0);

	tt_register(tm, "ext", 0);
	tt_trigger(tm, "ext", "{\"context_task\": {\"table\": \"items.csv\", \"n\": 3}, "
	           "\"refresh_token\": \"secret-1\"}", failed);
	ck_assert_ok(tm_patch(tm, "ext", failed, "{\"status\": \"FAILED\"}", NULL));
	tt_trigger(tm, "ext", "{\"context_task\": {\"k\": [1, 2]}}", cancelled);
	rt_assert_cancel_gives(tm, "ext", cancelled, "CANCELLED");

	for (int i = 0; i < 2; i++) {
		const char *old = i == 0 ? failed : cancelled;
		char *json = NULL, reason[64];
		cJSON *j, *a, *b;
		const char *id;

		ck_assert_ok(tm_retry(tm, "ext", old, &json));
		j = tt_json(json);
		id = cJSON_GetObjectItemCaseSensitive(j, "task_id")->valuestring;
		ck_assert_int_eq((int)strlen(id), 20);
		ck_assert_str_ne(id, old);
		a = tt_task(tm, "ext", old, 0);
		b = tt_task(tm, "ext", id, 0);
		ck_assert_str_eq(rt_status_of(b), "REQUEST_SENT");
		snprintf(reason, sizeof(reason), "retry of %s", old);
		ck_assert_str_eq(rt_detail_str(b, "create_reason"), reason);
		ck_assert_str_eq(rt_detail_str(b, "retry_of"), old);
		ck_assert_int_eq((int)rt_detail_num(b, "attempts"), 0);
		ck_assert(cJSON_Compare(tt_detail(a, "payload"), tt_detail(b, "payload"), 1));
		/* The link is the library's: no patch rewrites it. */
		ck_assert_err(tm_patch(tm, "ext", id, "{\"details\": {\"retry_of\": \"x\"}}", NULL),
		              TM_EWRONG_DATA);
		cJSON_Delete(a);
		cJSON_Delete(b);
		cJSON_Delete(j);
	}
	tt_assert_check(tm, 4);
	tt_close_tmp(tm, dir);
}
END_TEST

/* A handler runs the retry with the payload and without the old token. */
START_TEST(retry_runs_without_the_old_refresh_token)
{
	char *dir, id[21], *json = NULL;
	tm_manager *tm = rt_open_tmp(&dir, 0); /* no worker: the task waits */
	tm_job_def d = rt_def("job", record, NULL);
	cJSON *j;

	memset(&h, 0, sizeof(h));
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "job", "{\"context_task\": {\"x\": 1}, \"refresh_token\": \"tok\"}", id);
	ck_assert_ok(tm_patch(tm, "job", id, "{\"status\": \"FAILED\"}", NULL));
	tm_close(tm);
	tm = rt_open(dir, 1);
	ck_assert_ok(tm_register(tm, &d));
	ck_assert_ok(tm_retry(tm, "job", id, &json));
	j = tt_json(json);
	rt_await_status(tm, "job", cJSON_GetObjectItemCaseSensitive(j, "task_id")->valuestring,
	                "COMPLETED");
	ck_assert_int_eq(atomic_load(&h.runs), 1);
	ck_assert_int_eq(atomic_load(&h.had_secret), 0);
	ck_assert_str_eq(h.payload, "{\"x\":1}");
	cJSON_Delete(j);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(anything_else_is_refused_and_creates_nothing)
{
	char *dir, done[21], waiting[21], failed[21], *out = (char *)"x";
	tm_manager *tm = rt_open_tmp(&dir, 0);
	tm_job_def ex = rt_def("ex", NULL, NULL);

	tt_register(tm, "ext", 0);
	ex.flags = TM_JOB_EXCLUSIVE;
	ck_assert_ok(tm_register(tm, &ex));
	tt_trigger(tm, "ext", NULL, done);
	ck_assert_ok(tm_patch(tm, "ext", done, "{\"completed\": true}", NULL));
	tt_trigger(tm, "ext", NULL, waiting);
	tt_trigger(tm, "ex", NULL, failed);
	ck_assert_ok(tm_patch(tm, "ex", failed, "{\"status\": \"FAILED\"}", NULL));

	ck_assert_err(tm_retry(tm, "ext", done, &out), TM_ELOWER_STATUS);
	ck_assert_ptr_null(out);
	ck_assert_err(tm_retry(tm, "ext", waiting, &out), TM_ELOWER_STATUS);
	ck_assert_err(tm_retry(tm, "ext", "AAAAAAAAAAAAAAAAAAAA", &out), TM_ETASK_NOT_FOUND);
	ck_assert_err(tm_retry(tm, "ext", "short", &out), TM_EWRONG_DATA);
	ck_assert_err(tm_retry(tm, "ext", failed, &out), TM_ETASK_NOT_FOUND); /* another name's */
	ck_assert_err(tm_retry(tm, "nope", failed, &out), TM_EWRONG_DATA);
	ck_assert_err(tm_retry(NULL, "ex", failed, &out), TM_EINVAL);
	ck_assert_int_eq(tt_count(tm, "ext"), 2);
	/* Exclusive: refused while another task of the name is active. */
	tt_trigger(tm, "ex", NULL, waiting);
	ck_assert_err(tm_retry(tm, "ex", failed, &out), TM_EALREADY_RUNNING);
	ck_assert_int_eq(tt_count(tm, "ex"), 2);
	rt_assert_cancel_gives(tm, "ex", waiting, "CANCELLED");
	ck_assert_ok(tm_retry(tm, "ex", failed, &out));
	tm_free(out);
	ck_assert_int_eq(tt_count(tm, "ex"), 3);
	tt_assert_check(tm, 5);
	tt_close_tmp(tm, dir);
}
END_TEST

TT_MAIN("runtime_retry_by_hand",
	failed_and_cancelled_tasks_come_back_with_their_payload,
	retry_runs_without_the_old_refresh_token,
	anything_else_is_refused_and_creates_nothing)
