/* SPEC section 5, tm_cancel: what it does from each status, its output, and
 * the ids and names it refuses.  No handler runs: RUNNING is set by tm_patch,
 * as an external worker would. */
#include <string.h>

#include "common.h"

static cJSON *detail(cJSON *t, const char *key)
{
	return cJSON_GetObjectItem(cJSON_GetObjectItem(t, "details"), key);
}

/* A fresh task of "job" brought to status (NULL: REQUEST_SENT). */
static void task_in(tm_manager *tm, const char *status, char id[21])
{
	char body[64];

	tt_trigger(tm, "job", NULL, id);
	if (status == NULL)
		return;
	if (strcmp(status, "CANCELLED_REQUESTED") == 0)
		ck_assert_ok(tm_patch(tm, "job", id, "{\"status\":\"RUNNING\"}", NULL));
	snprintf(body, sizeof(body), "{\"status\":\"%s\"}", status);
	ck_assert_ok(tm_patch(tm, "job", id, body, NULL));
}

START_TEST(cancel_waiting_task_ends_cancelled_at_once)
{
	char *dir = tt_tmpdir(), id[21], *out = NULL, *got;
	tm_manager *tm = tt_open(dir, 0);
	cJSON *t;

	tt_register(tm, "job", 0);
	task_in(tm, NULL, id);
	ck_assert_ok(tm_cancel(tm, "job", id, &out));
	got = tt_get(tm, "job", id, 0);
	ck_assert_str_eq(out, got);
	t = tt_json(out);
	ck_assert_str_eq(cJSON_GetObjectItem(t, "status")->valuestring, "CANCELLED");
	ck_assert(cJSON_IsNumber(detail(t, "end_time")));
	ck_assert(detail(t, "end_time")->valuedouble >=
	          cJSON_GetObjectItem(t, "start_time")->valuedouble);
	cJSON_Delete(t);
	tm_free(got);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(cancel_running_task_requests_cancellation)
{
	char *dir = tt_tmpdir(), id[21], *out = NULL, *got;
	tm_manager *tm = tt_open(dir, 0);
	cJSON *t;

	tt_register(tm, "job", 0);
	task_in(tm, "RUNNING", id);
	ck_assert_ok(tm_cancel(tm, "job", id, &out));
	got = tt_get(tm, "job", id, 0);
	ck_assert_str_eq(out, got);
	t = tt_json(out);
	ck_assert_str_eq(cJSON_GetObjectItem(t, "status")->valuestring,
	                 "CANCELLED_REQUESTED");
	ck_assert_ptr_null(detail(t, "end_time"));
	cJSON_Delete(t);
	tm_free(got);
	/* The external worker then reports how it ended. */
	ck_assert_ok(tm_patch(tm, "job", id, "{\"status\":\"CANCELLED\"}", NULL));
	ck_assert_str_eq(tt_status(tm, "job", id, (char[32]){ 0 }), "CANCELLED");
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(cancel_is_a_no_op_once_requested_or_final)
{
	static const char *const statuses[] = {
		"CANCELLED_REQUESTED", "FAILED", "CANCELLED", "COMPLETED",
	};
	char *dir = tt_tmpdir(), id[21], *before, *out, *after;
	tm_manager *tm = tt_open(dir, 0);

	tt_register(tm, "job", 0);
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		task_in(tm, statuses[i], id);
		before = tt_get(tm, "job", id, 0);
		for (int again = 0; again < 2; again++) {
			out = NULL;
			ck_assert_ok(tm_cancel(tm, "job", id, &out));
			ck_assert_str_eq(out, before);
			tm_free(out);
		}
		after = tt_get(tm, "job", id, 0);
		ck_assert_str_eq(after, before);
		ck_assert_str_eq(tt_status(tm, "job", id, (char[32]){ 0 }), statuses[i]);
		tm_free(before);
		tm_free(after);
	}
	/* Cancel requested while still waiting (set by a patch): unchanged too. */
	tt_trigger(tm, "job", NULL, id);
	ck_assert_ok(tm_patch(tm, "job", id, "{\"status\":\"CANCELLED_REQUESTED\"}", NULL));
	before = tt_get(tm, "job", id, 0);
	ck_assert_ok(tm_cancel(tm, "job", id, &out));
	ck_assert_str_eq(out, before);
	tm_free(out);
	tm_free(before);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(cancel_twice_is_idempotent)
{
	char *dir = tt_tmpdir(), id[21], *first = NULL, *second = NULL;
	tm_manager *tm = tt_open(dir, 0);

	tt_register(tm, "job", 0);
	task_in(tm, NULL, id);
	ck_assert_ok(tm_cancel(tm, "job", id, &first));
	ck_assert_ok(tm_cancel(tm, "job", id, &second));
	ck_assert_str_eq(first, second);
	tm_free(first);
	tm_free(second);
	task_in(tm, "RUNNING", id);
	ck_assert_ok(tm_cancel(tm, "job", id, &first));
	ck_assert_ok(tm_cancel(tm, "job", id, &second));
	ck_assert_str_eq(first, second);
	tm_free(first);
	tm_free(second);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(cancel_output_may_be_null)
{
	char *dir = tt_tmpdir(), id[21];
	tm_manager *tm = tt_open(dir, 0);

	tt_register(tm, "job", 0);
	task_in(tm, NULL, id);
	ck_assert_ok(tm_cancel(tm, "job", id, NULL));
	ck_assert_str_eq(tt_status(tm, "job", id, (char[32]){ 0 }), "CANCELLED");
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(cancel_output_is_the_private_view_even_for_a_public_name)
{
	char *dir = tt_tmpdir(), id[21], *out = NULL;
	tm_manager *tm = tt_open(dir, 0);
	cJSON *t;

	tt_register(tm, "pub", TM_JOB_PUBLIC);
	tt_trigger(tm, "pub", "{\"context_task\":{\"a\":1}}", id);
	ck_assert_ok(tm_cancel(tm, "pub", id, &out));
	t = tt_json(out);
	ck_assert(cJSON_IsObject(cJSON_GetObjectItem(t, "details")));
	ck_assert_int_eq(cJSON_GetObjectItem(detail(t, "payload"), "a")->valueint, 1);
	ck_assert_int_eq(cJSON_GetArraySize(t), 7);
	cJSON_Delete(t);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(cancel_malformed_ids_are_wrong_data)
{
	static const char *const bad[] = {
		"", "AAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAA-",
		"AAAAAAAAAA/AAAAAAAAA", "AAAAAAAAAAAAAAAAAA\xc3\xa9",
	};
	char *dir = tt_tmpdir(), id[21], sentinel, *out, *before, *after;
	tm_manager *tm = tt_open(dir, 0);

	tt_register(tm, "job", 0);
	task_in(tm, NULL, id);
	before = tt_get(tm, "job", id, 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		out = &sentinel;
		tt_clear_error();
		ck_assert_err(tm_cancel(tm, "job", bad[i], &out), TM_EWRONG_DATA);
		ck_assert_ptr_null(out);
		ck_assert_uint_gt(strlen(tm_last_error()), 0);
	}
	ck_assert_err(tm_cancel(tm, "job", NULL, NULL), TM_EWRONG_DATA);
	after = tt_get(tm, "job", id, 0);
	ck_assert_str_eq(before, after);
	tm_free(before);
	tm_free(after);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(cancel_unknown_task_is_task_not_found)
{
	char *dir = tt_tmpdir(), id[21], sentinel, *out = &sentinel;
	tm_manager *tm = tt_open(dir, 0);

	tt_register(tm, "job", 0);
	tt_register(tm, "other", 0);
	ck_assert_err(tm_cancel(tm, "job", "AAAAAAAAAAAAAAAAAAAA", &out), TM_ETASK_NOT_FOUND);
	ck_assert_ptr_null(out);
	tt_trigger(tm, "other", NULL, id);
	ck_assert_err(tm_cancel(tm, "job", id, NULL), TM_ETASK_NOT_FOUND);
	ck_assert_str_eq(tt_status(tm, "other", id, (char[32]){ 0 }), "REQUEST_SENT");
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(cancel_unregistered_name_is_wrong_data)
{
	char *dir = tt_tmpdir(), id[21], sentinel, *out = &sentinel;
	tm_manager *tm = tt_open(dir, 0);

	tt_register(tm, "job", 0);
	task_in(tm, NULL, id);
	ck_assert_err(tm_cancel(tm, "nope", id, &out), TM_EWRONG_DATA);
	ck_assert_ptr_null(out);
	ck_assert_err(tm_cancel(tm, NULL, id, NULL), TM_EWRONG_DATA);
	ck_assert_str_eq(tt_status(tm, "job", id, (char[32]){ 0 }), "REQUEST_SENT");
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(cancelled_exclusive_task_frees_the_name)
{
	char *dir = tt_tmpdir(), id[21], id2[21];
	tm_manager *tm = tt_open(dir, 0);

	tt_register(tm, "excl", TM_JOB_EXCLUSIVE);
	tt_trigger(tm, "excl", NULL, id);
	ck_assert_ok(tm_cancel(tm, "excl", id, NULL));
	tt_trigger(tm, "excl", NULL, id2);
	/* Cancel requested is still active: the name stays taken. */
	ck_assert_ok(tm_patch(tm, "excl", id2, "{\"status\":\"RUNNING\"}", NULL));
	ck_assert_ok(tm_cancel(tm, "excl", id2, NULL));
	ck_assert_err(tm_trigger(tm, "excl", NULL, 0, NULL), TM_EALREADY_RUNNING);
	ck_assert_ok(tm_patch(tm, "excl", id2, "{\"status\":\"CANCELLED\"}", NULL));
	ck_assert_ok(tm_trigger(tm, "excl", NULL, 0, NULL));
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cancel");

	tt_add(s, cancel_waiting_task_ends_cancelled_at_once);
	tt_add(s, cancel_running_task_requests_cancellation);
	tt_add(s, cancel_is_a_no_op_once_requested_or_final);
	tt_add(s, cancel_twice_is_idempotent);
	tt_add(s, cancel_output_may_be_null);
	tt_add(s, cancel_output_is_the_private_view_even_for_a_public_name);
	tt_add(s, cancel_malformed_ids_are_wrong_data);
	tt_add(s, cancel_unknown_task_is_task_not_found);
	tt_add(s, cancel_unregistered_name_is_wrong_data);
	tt_add(s, cancelled_exclusive_task_frees_the_name);
	return tt_run(s);
}
