/* SPEC sections 3 and 5, tm_patch: the body, the shorthands, details merge,
 * end_time, the ordering rule, and that a refused patch changes nothing. */
#include <string.h>

#include "common.h"

/* The patch must fail with code, set *out_json to NULL, leave a message,
 * and leave the task byte-identical. */
static void assert_refused(tm_manager *tm, const char *id, const char *body, int code)
{
	char *before = tt_get(tm, "job", id, 0), *after;
	char sentinel, *out = &sentinel;
	int rc;

	tt_clear_error();
	rc = tm_patch(tm, "job", id, body, &out);
	ck_assert_msg(rc == code, "%s gave %s (%s), expected %s",
	              body ? body : "(null)", tm_error_name(rc), tm_last_error(),
	              tm_error_name(code));
	ck_assert_ptr_null(out);
	ck_assert_msg(tm_last_error()[0] != '\0', "no message for %s",
	              body ? body : "(null)");
	after = tt_get(tm, "job", id, 0);
	ck_assert_str_eq(before, after);
	tm_free(before);
	tm_free(after);
}

static cJSON *task(tm_manager *tm, const char *id)
{
	return tt_json(tt_get(tm, "job", id, 0));
}

static cJSON *detail(cJSON *t, const char *key)
{
	return cJSON_GetObjectItem(cJSON_GetObjectItem(t, "details"), key);
}

static const char *status_of(cJSON *t)
{
	return cJSON_GetObjectItem(t, "status")->valuestring;
}

/* A fresh task moved to the named status (NULL: left REQUEST_SENT). */
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

#define OPEN(tm, dir) \
	char *dir = tt_tmpdir(); \
	tm_manager *tm = tt_open(dir, 0); \
	tt_register(tm, "job", 0)

#define CLOSE(tm, dir) \
	tm_close(tm); \
	tt_rmdir(dir); \
	free(dir)

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
	char id[21];
	OPEN(tm, dir);

	task_in(tm, "RUNNING", id);
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		assert_refused(tm, id, bodies[i], TM_EWRONG_DATA);
	CLOSE(tm, dir);
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
	char id[21];
	OPEN(tm, dir);

	task_in(tm, NULL, id);
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		assert_refused(tm, id, bodies[i], TM_EWRONG_DATA);
	CLOSE(tm, dir);
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
	};
	char id[21];
	OPEN(tm, dir);

	task_in(tm, NULL, id);
	assert_refused(tm, id, NULL, TM_EWRONG_DATA);
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		assert_refused(tm, id, bodies[i], TM_EWRONG_DATA);
	CLOSE(tm, dir);
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
	char id[21];
	OPEN(tm, dir);

	task_in(tm, "RUNNING", id);
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		assert_refused(tm, id, bodies[i], TM_EWRONG_DATA);
	CLOSE(tm, dir);
}
END_TEST

START_TEST(completed_true_completes_the_task)
{
	char id[21], id2[21];
	cJSON *t;
	OPEN(tm, dir);

	task_in(tm, "RUNNING", id);
	ck_assert_ok(tm_patch(tm, "job", id, "{\"completed\":true}", NULL));
	t = task(tm, id);
	ck_assert_str_eq(status_of(t), "COMPLETED");
	ck_assert(cJSON_IsNumber(detail(t, "end_time")));
	cJSON_Delete(t);
	/* Straight from REQUEST_SENT, and beside a matching status. */
	task_in(tm, NULL, id2);
	ck_assert_ok(tm_patch(tm, "job", id2,
	             "{\"status\":\"COMPLETED\",\"completed\":true,\"failed\":false}", NULL));
	t = task(tm, id2);
	ck_assert_str_eq(status_of(t), "COMPLETED");
	cJSON_Delete(t);
	CLOSE(tm, dir);
}
END_TEST

START_TEST(failed_true_fails_the_task)
{
	char id[21], id2[21];
	cJSON *t;
	OPEN(tm, dir);

	task_in(tm, "RUNNING", id);
	ck_assert_ok(tm_patch(tm, "job", id, "{\"failed\":true,\"completed\":false}", NULL));
	t = task(tm, id);
	ck_assert_str_eq(status_of(t), "FAILED");
	ck_assert(cJSON_IsNumber(detail(t, "end_time")));
	cJSON_Delete(t);
	task_in(tm, "CANCELLED_REQUESTED", id2);
	ck_assert_ok(tm_patch(tm, "job", id2, "{\"status\":\"FAILED\",\"failed\":true}", NULL));
	t = task(tm, id2);
	ck_assert_str_eq(status_of(t), "FAILED");
	cJSON_Delete(t);
	CLOSE(tm, dir);
}
END_TEST

START_TEST(false_shorthands_alone_change_nothing)
{
	static const char *const bodies[] = {
		"{}", "{\"completed\":false}", "{\"failed\":false}",
		"{\"completed\":false,\"failed\":false}", "{\"details\":{}}",
	};
	char id[21], *before, *after, *out;
	OPEN(tm, dir);

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
	CLOSE(tm, dir);
}
END_TEST

START_TEST(details_are_merged_and_library_keys_kept)
{
	char id[21];
	cJSON *t, *want, *before_payload;
	OPEN(tm, dir);

	tt_trigger(tm, "job", "{\"context_task\":{\"p\":1}}", id);
	t = task(tm, id);
	before_payload = cJSON_Duplicate(detail(t, "payload"), 1);
	cJSON_Delete(t);
	ck_assert_ok(tm_patch(tm, "job", id,
	             "{\"details\":{\"a\":{\"b\":1,\"c\":2},\"k\":\"v\"}}", NULL));
	ck_assert_ok(tm_patch(tm, "job", id,
	             "{\"details\":{\"a\":{\"b\":null,\"d\":[3]},\"k\":null,"
	             "\"progress\":{\"message\":\"m\"}}}", NULL));
	t = task(tm, id);
	want = cJSON_Parse("{\"c\":2,\"d\":[3]}");
	ck_assert(cJSON_Compare(detail(t, "a"), want, 1));
	ck_assert_ptr_null(detail(t, "k"));
	ck_assert(cJSON_Compare(detail(t, "payload"), before_payload, 1));
	ck_assert(cJSON_IsNumber(detail(t, "timeout_at")));
	ck_assert(cJSON_IsString(detail(t, "create_reason")));
	ck_assert(cJSON_IsNumber(detail(t, "attempts")));
	ck_assert_str_eq(cJSON_GetObjectItem(t, "progress")->valuestring, "m");
	ck_assert_str_eq(status_of(t), "REQUEST_SENT");
	cJSON_Delete(want);
	cJSON_Delete(before_payload);
	cJSON_Delete(t);
	CLOSE(tm, dir);
}
END_TEST

START_TEST(patch_output_is_the_private_view_after_the_change)
{
	char id[21], *out = NULL, *got;
	cJSON *t;
	tm_manager *pub_tm;
	char *dir = tt_tmpdir();

	pub_tm = tt_open(dir, 0);
	tt_register(pub_tm, "pub", TM_JOB_PUBLIC);
	tt_trigger(pub_tm, "pub", NULL, id);
	ck_assert_ok(tm_patch(pub_tm, "pub", id,
	             "{\"status\":\"RUNNING\",\"details\":{\"x\":1}}", &out));
	got = tt_get(pub_tm, "pub", id, 0);
	ck_assert_str_eq(out, got);
	t = tt_json(out);
	ck_assert(cJSON_IsObject(cJSON_GetObjectItem(t, "details")));
	ck_assert_str_eq(status_of(t), "RUNNING");
	cJSON_Delete(t);
	tm_free(got);
	/* out_json may be NULL. */
	ck_assert_ok(tm_patch(pub_tm, "pub", id, "{\"completed\":true}", NULL));
	ck_assert_str_eq(tt_status(pub_tm, "pub", id, (char[32]){ 0 }), "COMPLETED");
	CLOSE(pub_tm, dir);
}
END_TEST

START_TEST(running_counts_an_attempt_once)
{
	char id[21], *first = NULL, *again = NULL;
	cJSON *t;
	OPEN(tm, dir);

	task_in(tm, NULL, id);
	ck_assert_ok(tm_patch(tm, "job", id, "{\"status\":\"RUNNING\"}", &first));
	/* Retried request: a no-op, byte for byte. */
	ck_assert_ok(tm_patch(tm, "job", id, "{\"status\":\"RUNNING\"}", &again));
	ck_assert_str_eq(first, again);
	t = tt_json(first);
	ck_assert_int_eq(detail(t, "attempts")->valueint, 1);
	ck_assert_ptr_null(detail(t, "end_time"));
	cJSON_Delete(t);
	tm_free(again);
	CLOSE(tm, dir);
}
END_TEST

START_TEST(end_time_is_set_on_entering_a_final_status)
{
	static const char *const finals[] = { "COMPLETED", "FAILED", "CANCELLED" };
	static const char *const from[] = { NULL, "RUNNING", "CANCELLED_REQUESTED" };
	char id[21], body[64], *first = NULL, *again = NULL;
	cJSON *t;
	OPEN(tm, dir);

	for (int f = 0; f < 3; f++) {
		for (int s = 0; s < 3; s++) {
			double st, end;

			task_in(tm, from[s], id);
			t = task(tm, id);
			ck_assert_ptr_null(detail(t, "end_time"));
			cJSON_Delete(t);
			snprintf(body, sizeof(body), "{\"status\":\"%s\"}", finals[f]);
			ck_assert_ok(tm_patch(tm, "job", id, body, &first));
			t = tt_json(first);
			ck_assert_str_eq(status_of(t), finals[f]);
			ck_assert(cJSON_IsNumber(detail(t, "end_time")));
			st = cJSON_GetObjectItem(t, "start_time")->valuedouble;
			end = detail(t, "end_time")->valuedouble;
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
	CLOSE(tm, dir);
}
END_TEST

/* SPEC section 2: details holds, for a failure, error. */
START_TEST(failed_task_has_an_error)
{
	char id[21], id2[21];
	cJSON *t;
	OPEN(tm, dir);

	task_in(tm, "RUNNING", id);
	ck_assert_ok(tm_patch(tm, "job", id, "{\"failed\":true,\"details\":"
	             "{\"error\":\"disk on fire\"}}", NULL));
	t = task(tm, id);
	ck_assert_str_eq(detail(t, "error")->valuestring, "disk on fire");
	cJSON_Delete(t);
	task_in(tm, "RUNNING", id2);
	ck_assert_ok(tm_patch(tm, "job", id2, "{\"failed\":true}", NULL));
	t = task(tm, id2);
	ck_assert_str_eq(status_of(t), "FAILED");
	ck_assert_msg(detail(t, "error") != NULL, "FAILED task without details.error: %s",
	              cJSON_PrintUnformatted(t));
	cJSON_Delete(t);
	CLOSE(tm, dir);
}
END_TEST

START_TEST(details_of_a_final_task_can_be_patched_without_moving_end_time)
{
	char id[21];
	cJSON *a, *b;
	OPEN(tm, dir);

	task_in(tm, "COMPLETED", id);
	a = task(tm, id);
	ck_assert_ok(tm_patch(tm, "job", id, "{\"details\":{\"note\":\"checked\"}}", NULL));
	b = task(tm, id);
	ck_assert_str_eq(status_of(b), "COMPLETED");
	ck_assert_str_eq(detail(b, "note")->valuestring, "checked");
	ck_assert(detail(a, "end_time")->valuedouble == detail(b, "end_time")->valuedouble);
	cJSON_Delete(a);
	cJSON_Delete(b);
	CLOSE(tm, dir);
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
	OPEN(tm, dir);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		task_in(tm, cases[i].from, id);
		assert_refused(tm, id, cases[i].body, TM_ELOWER_STATUS);
	}
	CLOSE(tm, dir);
}
END_TEST

START_TEST(secret_is_erased_when_the_task_ends)
{
	static const char *const finish[] = {
		"{\"completed\":true}", "{\"failed\":true}", "{\"status\":\"CANCELLED\"}",
	};
	char id[21], *out = NULL;
	cJSON *c;
	OPEN(tm, dir);

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
	ck_assert_ok(tm_check(tm, &out));
	c = tt_json(out);
	ck_assert_msg(cJSON_IsTrue(cJSON_GetObjectItem(c, "ok")), "%s",
	              cJSON_PrintUnformatted(c));
	ck_assert_int_eq(cJSON_GetObjectItem(c, "tasks")->valueint, 7);
	cJSON_Delete(c);
	CLOSE(tm, dir);
}
END_TEST

START_TEST(bad_name_or_id_is_refused_before_the_body)
{
	char id[21], other[21], sentinel, *out;
	OPEN(tm, dir);

	tt_register(tm, "other", 0);
	task_in(tm, NULL, id);
	tt_trigger(tm, "other", NULL, other);
	out = &sentinel;
	ck_assert_err(tm_patch(tm, "nope", id, "{\"completed\":true}", &out), TM_EWRONG_DATA);
	ck_assert_ptr_null(out);
	ck_assert_err(tm_patch(tm, NULL, id, "{\"completed\":true}", NULL), TM_EWRONG_DATA);
	out = &sentinel;
	ck_assert_err(tm_patch(tm, "job", "AAAAAAAAAAAAAAAAAAA", "{\"completed\":true}", &out),
	              TM_EWRONG_DATA);
	ck_assert_ptr_null(out);
	ck_assert_err(tm_patch(tm, "job", "AAAAAAAAAAAAAAAAAAAAA", "{}", NULL), TM_EWRONG_DATA);
	ck_assert_err(tm_patch(tm, "job", "AAAAAAAAAAAAAAAAAAA!", "{}", NULL), TM_EWRONG_DATA);
	ck_assert_err(tm_patch(tm, "job", "", "{}", NULL), TM_EWRONG_DATA);
	ck_assert_err(tm_patch(tm, "job", NULL, "{}", NULL), TM_EWRONG_DATA);
	out = &sentinel;
	ck_assert_err(tm_patch(tm, "job", "AAAAAAAAAAAAAAAAAAAA", "{\"completed\":true}", &out),
	              TM_ETASK_NOT_FOUND);
	ck_assert_ptr_null(out);
	ck_assert_err(tm_patch(tm, "job", other, "{\"completed\":true}", NULL),
	              TM_ETASK_NOT_FOUND);
	ck_assert_str_eq(tt_status(tm, "other", other, (char[32]){ 0 }), "REQUEST_SENT");
	ck_assert_str_eq(tt_status(tm, "job", id, (char[32]){ 0 }), "REQUEST_SENT");
	CLOSE(tm, dir);
}
END_TEST

START_TEST(stats_follow_patched_statuses)
{
	char id[21], *out = NULL;
	cJSON *st, *job;
	OPEN(tm, dir);

	task_in(tm, NULL, id);
	task_in(tm, "RUNNING", id);
	task_in(tm, "RUNNING", id);
	task_in(tm, "CANCELLED_REQUESTED", id);
	task_in(tm, "COMPLETED", id);
	task_in(tm, "FAILED", id);
	task_in(tm, "FAILED", id);
	task_in(tm, "CANCELLED", id);
	assert_refused(tm, id, "{\"completed\":true}", TM_ELOWER_STATUS);
	ck_assert_ok(tm_stats(tm, &out));
	st = tt_json(out);
	job = cJSON_GetObjectItem(cJSON_GetObjectItem(st, "names"), "job");
	ck_assert_ptr_nonnull(job);
	ck_assert_int_eq(cJSON_GetObjectItem(job, "REQUEST_SENT")->valueint, 1);
	ck_assert_int_eq(cJSON_GetObjectItem(job, "RUNNING")->valueint, 2);
	ck_assert_int_eq(cJSON_GetObjectItem(job, "CANCELLED_REQUESTED")->valueint, 1);
	ck_assert_int_eq(cJSON_GetObjectItem(job, "COMPLETED")->valueint, 1);
	ck_assert_int_eq(cJSON_GetObjectItem(job, "FAILED")->valueint, 2);
	ck_assert_int_eq(cJSON_GetObjectItem(job, "CANCELLED")->valueint, 1);
	cJSON_Delete(st);
	CLOSE(tm, dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("patch");

	tt_add(s, every_wrong_field_type_is_wrong_data);
	tt_add(s, unknown_fields_are_wrong_data);
	tt_add(s, malformed_bodies_are_wrong_data);
	tt_add(s, contradictory_fields_are_wrong_data);
	tt_add(s, completed_true_completes_the_task);
	tt_add(s, failed_true_fails_the_task);
	tt_add(s, false_shorthands_alone_change_nothing);
	tt_add(s, details_are_merged_and_library_keys_kept);
	tt_add(s, patch_output_is_the_private_view_after_the_change);
	tt_add(s, running_counts_an_attempt_once);
	tt_add(s, end_time_is_set_on_entering_a_final_status);
	tt_add(s, failed_task_has_an_error);
	tt_add(s, details_of_a_final_task_can_be_patched_without_moving_end_time);
	tt_add(s, lower_status_is_refused_and_changes_nothing);
	tt_add(s, secret_is_erased_when_the_task_ends);
	tt_add(s, bad_name_or_id_is_refused_before_the_body);
	tt_add(s, stats_follow_patched_statuses);
	return tt_run(s);
}
