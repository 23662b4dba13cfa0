/* tm_cancel (doc/api.md, "The five calls"): what it does from each status,
 * its output, and the ids and names it refuses.  No handler runs: RUNNING
 * is set by tm_patch, as an external worker would. */
#include <string.h>

#include "common.h"

TT_STORE_FIXTURE

/* tm_cancel's output is the task as tm_get then reads it; parsed. */
static cJSON *cancel(tm_manager *tm, const char *id)
{
	char *out = NULL, *got;

	ck_assert_ok(tm_cancel(tm, "job", id, &out));
	got = tt_get(tm, "job", id, 0);
	ck_assert_str_eq(out, got);
	tm_free(got);
	return tt_json(out);
}

/* tm_cancel answers the task unchanged, and changes nothing, twice. */
static void assert_cancel_changes_nothing(tm_manager *tm, const char *id)
{
	char *before = tt_get(tm, "job", id, 0), *after;

	for (int again = 0; again < 2; again++) {
		char *out = NULL;

		ck_assert_ok(tm_cancel(tm, "job", id, &out));
		ck_assert_str_eq(out, before);
		tm_free(out);
	}
	after = tt_get(tm, "job", id, 0);
	ck_assert_str_eq(after, before);
	tm_free(before);
	tm_free(after);
}

START_TEST(cancel_waiting_task_ends_cancelled_at_once)
{
	char id[21];
	cJSON *t;

	tt_register(tm, "job", 0);
	tt_task_in(tm, "job", NULL, id);
	t = cancel(tm, id);
	ck_assert_str_eq(cJSON_GetObjectItem(t, "status")->valuestring, "CANCELLED");
	ck_assert(cJSON_IsNumber(tt_detail(t, "end_time")));
	ck_assert(tt_detail(t, "end_time")->valuedouble >=
	          cJSON_GetObjectItem(t, "start_time")->valuedouble);
	cJSON_Delete(t);
}
END_TEST

START_TEST(cancel_running_task_requests_cancellation)
{
	char id[21];
	cJSON *t;

	tt_register(tm, "job", 0);
	tt_task_in(tm, "job", "RUNNING", id);
	t = cancel(tm, id);
	ck_assert_str_eq(cJSON_GetObjectItem(t, "status")->valuestring,
	                 "CANCELLED_REQUESTED");
	ck_assert_ptr_null(tt_detail(t, "end_time"));
	cJSON_Delete(t);
	/* The external worker then reports how it ended. */
	ck_assert_ok(tm_patch(tm, "job", id, "{\"status\":\"CANCELLED\"}", NULL));
	ck_assert_str_eq(tt_status(tm, "job", id, (char[32]){ 0 }), "CANCELLED");
}
END_TEST

START_TEST(cancel_is_a_no_op_once_requested_or_final)
{
	static const char *const statuses[] = {
		"CANCELLED_REQUESTED", "FAILED", "CANCELLED", "COMPLETED",
	};
	char id[21];

	tt_register(tm, "job", 0);
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		tt_task_in(tm, "job", statuses[i], id);
		assert_cancel_changes_nothing(tm, id);
		ck_assert_str_eq(tt_status(tm, "job", id, (char[32]){ 0 }), statuses[i]);
	}
	/* Cancel requested while still waiting (set by a patch): unchanged too. */
	tt_trigger(tm, "job", NULL, id);
	ck_assert_ok(tm_patch(tm, "job", id, "{\"status\":\"CANCELLED_REQUESTED\"}", NULL));
	assert_cancel_changes_nothing(tm, id);
}
END_TEST

START_TEST(cancel_twice_is_idempotent)
{
	static const char *const from[] = { NULL, "RUNNING" };
	char id[21];

	tt_register(tm, "job", 0);
	for (size_t i = 0; i < sizeof(from) / sizeof(from[0]); i++) {
		char *first = NULL, *second = NULL;

		tt_task_in(tm, "job", from[i], id);
		ck_assert_ok(tm_cancel(tm, "job", id, &first));
		ck_assert_ok(tm_cancel(tm, "job", id, &second));
		ck_assert_str_eq(first, second);
		tm_free(first);
		tm_free(second);
	}
}
END_TEST

START_TEST(cancel_output_may_be_null)
{
	char id[21];

	tt_register(tm, "job", 0);
	tt_task_in(tm, "job", NULL, id);
	ck_assert_ok(tm_cancel(tm, "job", id, NULL));
	ck_assert_str_eq(tt_status(tm, "job", id, (char[32]){ 0 }), "CANCELLED");
}
END_TEST

START_TEST(cancel_output_is_the_private_view_even_for_a_public_name)
{
	char id[21], *out = NULL;
	cJSON *t;

	tt_register_with_task(tm, "pub", TM_JOB_PUBLIC, "{\"context_task\":{\"a\":1}}", id);
	ck_assert_ok(tm_cancel(tm, "pub", id, &out));
	t = tt_json(out);
	ck_assert(cJSON_IsObject(cJSON_GetObjectItem(t, "details")));
	ck_assert_int_eq(cJSON_GetObjectItem(tt_detail(t, "payload"), "a")->valueint, 1);
	ck_assert_int_eq(cJSON_GetArraySize(t), 7);
	cJSON_Delete(t);
}
END_TEST

START_TEST(cancel_malformed_ids_are_wrong_data)
{
	static const char *const bad[] = {
		"", "AAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAA-",
		"AAAAAAAAAA/AAAAAAAAA", "AAAAAAAAAAAAAAAAAA\xc3\xa9",
	};
	char id[21], *out, *before, *after;

	tt_register(tm, "job", 0);
	tt_task_in(tm, "job", NULL, id);
	before = tt_get(tm, "job", id, 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tt_clear_error();
		ck_assert_refused(tm_cancel(tm, "job", bad[i], &out), TM_EWRONG_DATA, out);
		ck_assert_uint_gt(strlen(tm_last_error()), 0);
	}
	ck_assert_err(tm_cancel(tm, "job", NULL, NULL), TM_EWRONG_DATA);
	after = tt_get(tm, "job", id, 0);
	ck_assert_str_eq(before, after);
	tm_free(before);
	tm_free(after);
}
END_TEST

START_TEST(cancel_unknown_task_is_task_not_found)
{
	char id[21], *out;

	tt_register_with_task(tm, "other", 0, NULL, id);
	tt_register(tm, "job", 0);
	ck_assert_refused(tm_cancel(tm, "job", "AAAAAAAAAAAAAAAAAAAA", &out),
	                  TM_ETASK_NOT_FOUND, out);
	ck_assert_err(tm_cancel(tm, "job", id, NULL), TM_ETASK_NOT_FOUND);
	ck_assert_str_eq(tt_status(tm, "other", id, (char[32]){ 0 }), "REQUEST_SENT");
}
END_TEST

START_TEST(cancel_unregistered_name_is_wrong_data)
{
	char id[21], *out;

	tt_register(tm, "job", 0);
	tt_task_in(tm, "job", NULL, id);
	ck_assert_refused(tm_cancel(tm, "nope", id, &out), TM_EWRONG_DATA, out);
	ck_assert_err(tm_cancel(tm, NULL, id, NULL), TM_EWRONG_DATA);
	ck_assert_str_eq(tt_status(tm, "job", id, (char[32]){ 0 }), "REQUEST_SENT");
}
END_TEST

START_TEST(cancelled_exclusive_task_frees_the_name)
{
	char id[21], id2[21];

	tt_register_with_task(tm, "excl", TM_JOB_EXCLUSIVE, NULL, id);
	ck_assert_ok(tm_cancel(tm, "excl", id, NULL));
	tt_trigger(tm, "excl", NULL, id2);
	/* Cancel requested is still active: the name stays taken. */
	ck_assert_ok(tm_patch(tm, "excl", id2, "{\"status\":\"RUNNING\"}", NULL));
	ck_assert_ok(tm_cancel(tm, "excl", id2, NULL));
	ck_assert_err(tm_trigger(tm, "excl", NULL, 0, NULL), TM_EALREADY_RUNNING);
	ck_assert_ok(tm_patch(tm, "excl", id2, "{\"status\":\"CANCELLED\"}", NULL));
	ck_assert_ok(tm_trigger(tm, "excl", NULL, 0, NULL));
}
END_TEST

TT_STORE_MAIN("cancel",
	cancel_waiting_task_ends_cancelled_at_once,
	cancel_running_task_requests_cancellation,
	cancel_is_a_no_op_once_requested_or_final,
	cancel_twice_is_idempotent,
	cancel_output_may_be_null,
	cancel_output_is_the_private_view_even_for_a_public_name,
	cancel_malformed_ids_are_wrong_data,
	cancel_unknown_task_is_task_not_found,
	cancel_unregistered_name_is_wrong_data,
	cancelled_exclusive_task_frees_the_name)
