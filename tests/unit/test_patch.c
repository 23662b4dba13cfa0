/* tm_patch (doc/api.md, "The five calls"): the body, the shorthands,
 * details merge, end_time, the status ordering rule (doc/contract.md), and
 * that a refused patch changes nothing. */
#include <string.h>

#include "common.h"

TT_STORE_FIXTURE

static void assert_refused(tm_manager *tm, const char *id, const char *body, int code)
{
	tt_assert_patch_refused(tm, "job", id, body, code);
}

static cJSON *task(tm_manager *tm, const char *id)
{
	return tt_task(tm, "job", id, 0);
}

static const char *status_of(cJSON *t)
{
	return cJSON_GetObjectItem(t, "status")->valuestring;
}

/* A fresh task of "job" moved to the named status (NULL: REQUEST_SENT). */
static void task_in(tm_manager *tm, const char *status, char id[21])
{
	tt_task_in(tm, "job", status, id);
}

/* Every test's store, "job" registered in it. */
static void setup(void)
{
	tt_store_setup();
	tt_register(tm, "job", 0);
}

/* Every body refused with code by a task of "job" in status `from`. */
static void refuse_each(const char *from, const char *const *bodies, size_t n, int code)
{
	char id[21];

	task_in(tm, from, id);
	for (size_t i = 0; i < n; i++)
		assert_refused(tm, id, bodies[i], code);
}

#define REFUSE_EACH(from, bodies, code) \
	refuse_each((from), (bodies), sizeof(bodies) / sizeof((bodies)[0]), (code))

START_TEST(every_wrong_field_type_is_wrong_data)
{
	static const char *const bodies[] = {
		"{\"status\":1}", "{\"status\":true}", "{\"status\":null}",
		"{\"status\":{}}", "{\"status\":[]}", "{\"status\":[\"RUNNING\"]}",
		"{\"status\":\"running\"}", "{\"status\":\"Running\"}",
		"{\"status\":\"RUNNING \"}", "{\"status\":\"REQUEST_SENT\"}",
		"{\"status\":\"DONE\"}", "{\"status\":\"\"}", "{\"status\":\"3\"}",
		"{\"details\":\"x\"}", "{\"details\":1}", "{\"details\":[]}",
		"{\"details\":true}", "{\"details\":null}", "{\"details\":[{}]}",
		"{\"completed\":\"true\"}", "{\"completed\":1}", "{\"completed\":0}",
		"{\"completed\":null}", "{\"completed\":{}}", "{\"completed\":[]}",
		"{\"failed\":\"true\"}", "{\"failed\":1}", "{\"failed\":0}",
		"{\"failed\":null}", "{\"failed\":{}}", "{\"failed\":[true]}",
	};

	REFUSE_EACH("RUNNING", bodies, TM_EWRONG_DATA);
}
END_TEST

START_TEST(unknown_fields_are_wrong_data)
{
	static const char *const bodies[] = {
		"{\"progress\":\"x\"}", "{\"Status\":\"COMPLETED\"}",
		"{\"status\":\"COMPLETED\",\"extra\":1}", "{\"task_id\":\"x\"}",
		"{\"warnings\":[]}", "{\"details\":{},\"name\":\"job\"}",
		"{\"cancelled\":true}", "{\"\":1}",
	};

	REFUSE_EACH(NULL, bodies, TM_EWRONG_DATA);
}
END_TEST

START_TEST(malformed_bodies_are_wrong_data)
{
	static const char *const bodies[] = {
		"", " ", "{", "{}}", "[]", "[{\"completed\":true}]", "1", "null", "\"x\"",
		"true", "{} x", "{\"completed\":true} {}", "{\"completed\":true,}",
		"{'completed':true}", "{\"completed\":tru}",
		"{\"status\":\"COMPLETED\",\"status\":\"COMPLETED\"}",
		"{\"status\":\"RUNNING\",\"status\":\"FAILED\"}",
		"{\"details\":{\"a\":1,\"a\":2}}",
		"{\"details\":{\"progress\":{\"m\":1,\"m\":1}}}",
		NULL,
	};

	REFUSE_EACH(NULL, bodies, TM_EWRONG_DATA);
}
END_TEST

START_TEST(contradictory_fields_are_wrong_data)
{
	static const char *const bodies[] = {
		"{\"completed\":true,\"failed\":true}",
		"{\"failed\":true,\"completed\":true}",
		"{\"status\":\"FAILED\",\"completed\":true}",
		"{\"status\":\"COMPLETED\",\"completed\":false}",
		"{\"completed\":false,\"status\":\"COMPLETED\"}",
		"{\"status\":\"FAILED\",\"failed\":false}",
		"{\"status\":\"COMPLETED\",\"failed\":true}",
		"{\"status\":\"RUNNING\",\"completed\":true}",
		"{\"status\":\"CANCELLED\",\"failed\":true}",
		"{\"status\":\"CANCELLED_REQUESTED\",\"completed\":true}",
		"{\"completed\":true,\"status\":\"CANCELLED\"}",
		"{\"completed\":true,\"failed\":true,\"status\":\"COMPLETED\"}",
		"{\"status\":\"COMPLETED\",\"completed\":true,\"failed\":true}",
	};

	REFUSE_EACH("RUNNING", bodies, TM_EWRONG_DATA);
}
END_TEST

/* A task in status `from` patched with `body` ends in `status`, with an
 * end_time. */
static void assert_patch_ends(const char *from, const char *body, const char *status)
{
	char id[21];
	cJSON *t;

	task_in(tm, from, id);
	ck_assert_ok(tm_patch(tm, "job", id, body, NULL));
	t = task(tm, id);
	ck_assert_str_eq(status_of(t), status);
	ck_assert(cJSON_IsNumber(tt_detail(t, "end_time")));
	cJSON_Delete(t);
}

START_TEST(completed_true_completes_the_task)
{
	assert_patch_ends("RUNNING", "{\"completed\":true}", "COMPLETED");
	/* Straight from REQUEST_SENT, and beside a matching status. */
	assert_patch_ends(NULL, "{\"status\":\"COMPLETED\",\"completed\":true,"
	                  "\"failed\":false}", "COMPLETED");
}
END_TEST

START_TEST(failed_true_fails_the_task)
{
	assert_patch_ends("RUNNING", "{\"failed\":true,\"completed\":false}", "FAILED");
	assert_patch_ends("CANCELLED_REQUESTED", "{\"status\":\"FAILED\",\"failed\":true}",
	                  "FAILED");
}
END_TEST

START_TEST(false_shorthands_alone_change_nothing)
{
	static const char *const bodies[] = {
		"{}", "{\"completed\":false}", "{\"failed\":false}",
		"{\"completed\":false,\"failed\":false}", "{\"details\":{}}",
	};
	char id[21], *before, *after, *out;

	task_in(tm, "RUNNING", id);
	before = tt_get(tm, "job", id, 0);
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		out = NULL;
		ck_assert_ok(tm_patch(tm, "job", id, bodies[i], &out));
		ck_assert_str_eq(out, before);
		tm_free(out);
	}
	after = tt_get(tm, "job", id, 0);
	ck_assert_str_eq(before, after);
	tm_free(before);
	tm_free(after);
}
END_TEST

START_TEST(details_are_merged_and_library_keys_kept)
{
	char id[21];
	cJSON *t, *want, *before_payload;

	tt_trigger(tm, "job", "{\"context_task\":{\"p\":1}}", id);
	t = task(tm, id);
	before_payload = cJSON_Duplicate(tt_detail(t, "payload"), 1);
	cJSON_Delete(t);
	ck_assert_ok(tm_patch(tm, "job", id,
	             "{\"details\":{\"a\":{\"b\":1,\"c\":2},\"k\":\"v\"}}", NULL));
	ck_assert_ok(tm_patch(tm, "job", id,
	             "{\"details\":{\"a\":{\"b\":null,\"d\":[3]},\"k\":null,"
	             "\"progress\":{\"message\":\"m\"}}}", NULL));
	t = task(tm, id);
	want = cJSON_Parse("{\"c\":2,\"d\":[3]}");
	ck_assert(cJSON_Compare(tt_detail(t, "a"), want, 1));
	ck_assert_ptr_null(tt_detail(t, "k"));
	ck_assert(cJSON_Compare(tt_detail(t, "payload"), before_payload, 1));
	ck_assert(cJSON_IsNumber(tt_detail(t, "timeout_at")));
	ck_assert(cJSON_IsString(tt_detail(t, "create_reason")));
	ck_assert(cJSON_IsNumber(tt_detail(t, "attempts")));
	ck_assert_str_eq(cJSON_GetObjectItem(t, "progress")->valuestring, "m");
	ck_assert_str_eq(status_of(t), "REQUEST_SENT");
	cJSON_Delete(want);
	cJSON_Delete(before_payload);
	cJSON_Delete(t);
}
END_TEST

START_TEST(patch_output_is_the_private_view_after_the_change)
{
	char id[21], *out = NULL, *got;
	cJSON *t;

	tt_register_with_task(tm, "pub", TM_JOB_PUBLIC, NULL, id);
	ck_assert_ok(tm_patch(tm, "pub", id,
	             "{\"status\":\"RUNNING\",\"details\":{\"x\":1}}", &out));
	got = tt_get(tm, "pub", id, 0);
	ck_assert_str_eq(out, got);
	t = tt_json(out);
	ck_assert(cJSON_IsObject(cJSON_GetObjectItem(t, "details")));
	ck_assert_str_eq(status_of(t), "RUNNING");
	cJSON_Delete(t);
	tm_free(got);
	/* out_json may be NULL. */
	ck_assert_ok(tm_patch(tm, "pub", id, "{\"completed\":true}", NULL));
	ck_assert_str_eq(tt_status(tm, "pub", id, (char[32]){ 0 }), "COMPLETED");
}
END_TEST

START_TEST(running_counts_an_attempt_once)
{
	char id[21], *first = NULL, *again = NULL;
	cJSON *t;

	task_in(tm, NULL, id);
	ck_assert_ok(tm_patch(tm, "job", id, "{\"status\":\"RUNNING\"}", &first));
	/* Retried request: a no-op, byte for byte. */
	ck_assert_ok(tm_patch(tm, "job", id, "{\"status\":\"RUNNING\"}", &again));
	ck_assert_str_eq(first, again);
	t = tt_json(first);
	ck_assert_int_eq(tt_detail(t, "attempts")->valueint, 1);
	ck_assert_ptr_null(tt_detail(t, "end_time"));
	cJSON_Delete(t);
	tm_free(again);
}
END_TEST

START_TEST(end_time_is_set_on_entering_a_final_status)
{
	static const char *const finals[] = { "COMPLETED", "FAILED", "CANCELLED" };
	static const char *const from[] = { NULL, "RUNNING", "CANCELLED_REQUESTED" };
	char id[21], body[64], *first = NULL, *again = NULL;
	cJSON *t;

	for (int f = 0; f < 3; f++) {
		for (int s = 0; s < 3; s++) {
			double st, end;

			task_in(tm, from[s], id);
			t = task(tm, id);
			ck_assert_ptr_null(tt_detail(t, "end_time"));
			cJSON_Delete(t);
			snprintf(body, sizeof(body), "{\"status\":\"%s\"}", finals[f]);
			ck_assert_ok(tm_patch(tm, "job", id, body, &first));
			t = tt_json(first);
			ck_assert_str_eq(status_of(t), finals[f]);
			ck_assert(cJSON_IsNumber(tt_detail(t, "end_time")));
			st = cJSON_GetObjectItem(t, "start_time")->valuedouble;
			end = tt_detail(t, "end_time")->valuedouble;
			ck_assert(end >= st);
			cJSON_Delete(t);
			/* The same final status again is a no-op: end_time stays. */
			first = tt_get(tm, "job", id, 0);
			ck_assert_ok(tm_patch(tm, "job", id, body, &again));
			ck_assert_str_eq(first, again);
			tm_free(first);
			tm_free(again);
		}
	}
}
END_TEST

/* A failed task holds, in its details, an error (doc/contract.md, "details"). */
START_TEST(failed_task_has_an_error)
{
	char id[21], id2[21];
	cJSON *t;

	task_in(tm, "RUNNING", id);
	ck_assert_ok(tm_patch(tm, "job", id, "{\"failed\":true,\"details\":"
	             "{\"error\":\"disk on fire\"}}", NULL));
	t = task(tm, id);
	ck_assert_str_eq(tt_detail(t, "error")->valuestring, "disk on fire");
	cJSON_Delete(t);
	task_in(tm, "RUNNING", id2);
	ck_assert_ok(tm_patch(tm, "job", id2, "{\"failed\":true}", NULL));
	t = task(tm, id2);
	ck_assert_str_eq(status_of(t), "FAILED");
	ck_assert_msg(tt_detail(t, "error") != NULL, "FAILED task without details.error: %s",
	              cJSON_PrintUnformatted(t));
	cJSON_Delete(t);
}
END_TEST

START_TEST(details_of_a_final_task_can_be_patched_without_moving_end_time)
{
	char id[21];
	cJSON *a, *b;

	task_in(tm, "COMPLETED", id);
	a = task(tm, id);
	ck_assert_ok(tm_patch(tm, "job", id, "{\"details\":{\"note\":\"checked\"}}", NULL));
	b = task(tm, id);
	ck_assert_str_eq(status_of(b), "COMPLETED");
	ck_assert_str_eq(tt_detail(b, "note")->valuestring, "checked");
	ck_assert(tt_detail(a, "end_time")->valuedouble == tt_detail(b, "end_time")->valuedouble);
	cJSON_Delete(a);
	cJSON_Delete(b);
}
END_TEST

START_TEST(lower_status_is_refused_and_changes_nothing)
{
	static const struct { const char *from, *body; } cases[] = {
		{ "CANCELLED_REQUESTED", "{\"status\":\"RUNNING\"}" },
		{ "CANCELLED_REQUESTED", "{\"status\":\"RUNNING\",\"details\":{\"x\":1}}" },
		{ "COMPLETED", "{\"status\":\"RUNNING\"}" },
		{ "COMPLETED", "{\"status\":\"CANCELLED_REQUESTED\"}" },
		{ "COMPLETED", "{\"failed\":true}" },
		{ "COMPLETED", "{\"status\":\"CANCELLED\"}" },
		{ "COMPLETED", "{\"failed\":true,\"details\":{\"x\":1}}" },
		{ "FAILED", "{\"completed\":true}" },
		{ "FAILED", "{\"status\":\"CANCELLED\",\"details\":{\"progress\":{\"message\":\"m\"}}}" },
		{ "CANCELLED", "{\"completed\":true}" },
		{ "CANCELLED", "{\"status\":\"RUNNING\"}" },
	};
	char id[21];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		task_in(tm, cases[i].from, id);
		assert_refused(tm, id, cases[i].body, TM_ELOWER_STATUS);
	}
}
END_TEST

START_TEST(secret_is_erased_when_the_task_ends)
{
	static const char *const finish[] = {
		"{\"completed\":true}", "{\"failed\":true}", "{\"status\":\"CANCELLED\"}",
	};
	char id[21];

	/* tm_check reports a final task that still holds a secret. */
	for (size_t i = 0; i < sizeof(finish) / sizeof(finish[0]); i++) {
		tt_trigger(tm, "job", "{\"refresh_token\":\"tok\"}", id);
		ck_assert_ok(tm_patch(tm, "job", id, "{\"status\":\"RUNNING\"}", NULL));
		ck_assert_ok(tm_patch(tm, "job", id, finish[i], NULL));
		tt_trigger(tm, "job", "{\"refresh_token\":\"tok\"}", id);
		ck_assert_ok(tm_patch(tm, "job", id, finish[i], NULL));
	}
	tt_trigger(tm, "job", "{\"refresh_token\":\"tok\"}", id);
	ck_assert_ok(tm_cancel(tm, "job", id, NULL));
	tt_assert_check(tm, 7);
}
END_TEST

START_TEST(bad_name_or_id_is_refused_before_the_body)
{
	char id[21], other[21], *out;

	tt_register(tm, "other", 0);
	task_in(tm, NULL, id);
	tt_trigger(tm, "other", NULL, other);
	ck_assert_refused(tm_patch(tm, "nope", id, "{\"completed\":true}", &out),
	                  TM_EWRONG_DATA, out);
	ck_assert_err(tm_patch(tm, NULL, id, "{\"completed\":true}", NULL), TM_EWRONG_DATA);
	ck_assert_refused(tm_patch(tm, "job", "AAAAAAAAAAAAAAAAAAA", "{\"completed\":true}", &out),
	                  TM_EWRONG_DATA, out);
	ck_assert_err(tm_patch(tm, "job", "AAAAAAAAAAAAAAAAAAAAA", "{}", NULL), TM_EWRONG_DATA);
	ck_assert_err(tm_patch(tm, "job", "AAAAAAAAAAAAAAAAAAA!", "{}", NULL), TM_EWRONG_DATA);
	ck_assert_err(tm_patch(tm, "job", "", "{}", NULL), TM_EWRONG_DATA);
	ck_assert_err(tm_patch(tm, "job", NULL, "{}", NULL), TM_EWRONG_DATA);
	ck_assert_refused(tm_patch(tm, "job", "AAAAAAAAAAAAAAAAAAAA", "{\"completed\":true}", &out),
	                  TM_ETASK_NOT_FOUND, out);
	ck_assert_err(tm_patch(tm, "job", other, "{\"completed\":true}", NULL),
	              TM_ETASK_NOT_FOUND);
	ck_assert_str_eq(tt_status(tm, "other", other, (char[32]){ 0 }), "REQUEST_SENT");
	ck_assert_str_eq(tt_status(tm, "job", id, (char[32]){ 0 }), "REQUEST_SENT");
}
END_TEST

START_TEST(stats_follow_patched_statuses)
{
	/* How many tasks of "job" to leave in each status, in tm_status order. */
	static const int made[6] = { 1, 2, 1, 2, 1, 1 };
	char id[21];

	for (int st = 0; st < 6; st++)
		for (int k = 0; k < made[st]; k++)
			task_in(tm, st ? tt_status_names[st] : NULL, id);
	/* A refused patch counts nothing (the last task is COMPLETED). */
	assert_refused(tm, id, "{\"failed\":true}", TM_ELOWER_STATUS);
	for (int st = 0; st < 6; st++)
		ck_assert_msg(tt_stat(tm, "job", tt_status_names[st]) == made[st],
		              "%s: tm_stats counts %g, made %d", tt_status_names[st],
		              tt_stat(tm, "job", tt_status_names[st]), made[st]);
	ck_assert_int_eq(tt_stat(tm, "job", "total"), 8);
}
END_TEST

TT_MAIN_FIXTURE("patch", setup, tt_store_teardown,
	every_wrong_field_type_is_wrong_data,
	unknown_fields_are_wrong_data,
	malformed_bodies_are_wrong_data,
	contradictory_fields_are_wrong_data,
	completed_true_completes_the_task,
	failed_true_fails_the_task,
	false_shorthands_alone_change_nothing,
	details_are_merged_and_library_keys_kept,
	patch_output_is_the_private_view_after_the_change,
	running_counts_an_attempt_once,
	end_time_is_set_on_entering_a_final_status,
	failed_task_has_an_error,
	details_of_a_final_task_can_be_patched_without_moving_end_time,
	lower_status_is_refused_and_changes_nothing,
	secret_is_erased_when_the_task_ends,
	bad_name_or_id_is_refused_before_the_body,
	stats_follow_patched_statuses)
