/* tm_get: the task document (doc/contract.md, "The task"), its two views,
 * ids. */
#include <string.h>
#include <time.h>

#include "common.h"

TT_STORE_FIXTURE

static const char *const view_keys[] = {
	"task_id", "name", "start_time", "status", "progress", "warnings", "details",
};

/* The object has exactly the first n keys of view_keys, of the right types. */
static void assert_view(const cJSON *t, int with_details)
{
	int n = with_details ? 7 : 6;
	const cJSON *c;

	ck_assert_int_eq(cJSON_GetArraySize(t), n);
	for (int i = 0; i < n; i++)
		ck_assert_msg(cJSON_GetObjectItemCaseSensitive(t, view_keys[i]) != NULL,
		              "no %s", view_keys[i]);
	cJSON_ArrayForEach(c, t) {
		int known = 0;
		for (int i = 0; i < n; i++)
			known |= strcmp(c->string, view_keys[i]) == 0;
		ck_assert_msg(known, "unexpected key %s", c->string);
	}
	ck_assert(cJSON_IsString(cJSON_GetObjectItem(t, "task_id")));
	ck_assert(cJSON_IsString(cJSON_GetObjectItem(t, "name")));
	ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(t, "start_time")));
	ck_assert(cJSON_IsString(cJSON_GetObjectItem(t, "status")));
	ck_assert(cJSON_IsString(cJSON_GetObjectItem(t, "progress")));
	ck_assert(cJSON_IsArray(cJSON_GetObjectItem(t, "warnings")));
	if (with_details)
		ck_assert(cJSON_IsObject(cJSON_GetObjectItem(t, "details")));
}

START_TEST(private_view_has_exactly_the_task_keys)
{
	char id[21];
	cJSON *t;

	tt_register_with_task(tm, "job", 0, "{\"context_task\":{\"a\":1}}", id);
	t = tt_task(tm, "job", id, 0);
	assert_view(t, 1);
	ck_assert_str_eq(cJSON_GetObjectItem(t, "task_id")->valuestring, id);
	ck_assert_str_eq(cJSON_GetObjectItem(t, "name")->valuestring, "job");
	ck_assert_str_eq(cJSON_GetObjectItem(t, "status")->valuestring, "REQUEST_SENT");
	ck_assert_str_eq(cJSON_GetObjectItem(t, "progress")->valuestring, "");
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(t, "warnings")), 0);
	cJSON_Delete(t);
}
END_TEST

START_TEST(public_view_leaves_details_out)
{
	char id[21];
	cJSON *pub, *priv;

	tt_register_with_task(tm, "pub", TM_JOB_PUBLIC, "{\"context_task\":{\"a\":1}}", id);
	ck_assert_ok(tm_patch(tm, "pub", id, "{\"status\":\"RUNNING\",\"details\":"
	             "{\"progress\":{\"message\":\"step 2\"}}}", NULL));
	pub = tt_task(tm, "pub", id, TM_PUBLIC);
	assert_view(pub, 0);
	ck_assert_str_eq(cJSON_GetObjectItem(pub, "progress")->valuestring, "step 2");
	/* The public view is the private one without details. */
	priv = tt_task(tm, "pub", id, 0);
	assert_view(priv, 1);
	cJSON_DeleteItemFromObject(priv, "details");
	ck_assert(cJSON_Compare(pub, priv, 1));
	cJSON_Delete(pub);
	cJSON_Delete(priv);
}
END_TEST

START_TEST(public_flag_refuses_a_private_name)
{
	char id[21], *out;

	tt_register_with_task(tm, "priv", 0, NULL, id);
	ck_assert_refused(tm_get(tm, "priv", id, TM_PUBLIC, &out), TM_EWRONG_DATA, out);
}
END_TEST

START_TEST(progress_is_details_progress_message)
{
	char id[21];
	cJSON *t;

	tt_register_with_task(tm, "job", 0, NULL, id);
	ck_assert_ok(tm_patch(tm, "job", id, "{\"details\":{\"progress\":"
	             "{\"message\":\"40 rows uploaded\",\"rows\":40}}}", NULL));
	t = tt_task(tm, "job", id, 0);
	ck_assert_str_eq(cJSON_GetObjectItem(t, "progress")->valuestring,
	                 "40 rows uploaded");
	ck_assert_int_eq(cJSON_GetObjectItem(tt_detail(t, "progress"), "rows")->valueint, 40);
	cJSON_Delete(t);
	/* Without a message, progress is "". */
	ck_assert_ok(tm_patch(tm, "job", id, "{\"details\":{\"progress\":"
	             "{\"message\":null}}}", NULL));
	t = tt_task(tm, "job", id, 0);
	ck_assert_str_eq(cJSON_GetObjectItem(t, "progress")->valuestring, "");
	cJSON_Delete(t);
}
END_TEST

START_TEST(progress_message_with_escapes_reads_back_exactly)
{
	static const struct { const char *json, *text; } messages[] = {
		{ "\"say \\\"hi\\\"\"", "say \"hi\"" },
		{ "\"back\\\\slash \\/ \\b\\f\\n\\r\\t\"", "back\\slash / \b\f\n\r\t" },
		{ "\"\\u00e9\\u2028\\ud83d\\ude00 \xc3\xa9\"", "\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80 \xc3\xa9" },
		{ "\"\\u0001 control\"", "\x01 control" },
		{ "\"message\\\":\\\"fake\"", "message\":\"fake" },
		{ "\"\"", "" },
		{ "42", "" },
		{ "{\"message\":\"nested\"}", "" },
		{ "null", "" },
	};
	char id[21], body[256];

	tt_register_with_task(tm, "pub", TM_JOB_PUBLIC, NULL, id);
	for (size_t i = 0; i < sizeof(messages) / sizeof(messages[0]); i++) {
		char *out = NULL;
		cJSON *t, *l;

		snprintf(body, sizeof(body), "{\"details\":{\"progress\":{\"other\":\"x\","
		         "\"message\":%s}}}", messages[i].json);
		ck_assert_ok(tm_patch(tm, "pub", id, body, &out));
		t = tt_json(out);
		ck_assert_str_eq(cJSON_GetObjectItem(t, "progress")->valuestring, messages[i].text);
		cJSON_Delete(t);
		for (unsigned flags = 0; flags <= TM_PUBLIC; flags++) {
			t = tt_task(tm, "pub", id, flags);
			ck_assert_str_eq(cJSON_GetObjectItem(t, "progress")->valuestring,
			                 messages[i].text);
			cJSON_Delete(t);
			ck_assert_ok(tm_list_recent(tm, "pub", 1, 1, flags, &out));
			l = tt_json(out);
			ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(
				cJSON_GetObjectItem(l, "tasks"), 0), "progress")->valuestring,
				messages[i].text);
			cJSON_Delete(l);
		}
	}
}
END_TEST

static void assert_bad_id(tm_manager *tm, const char *id)
{
	char *out;

	tt_clear_error();
	ck_assert_refused(tm_get(tm, "job", id, 0, &out), TM_EWRONG_DATA, out);
	ck_assert_uint_gt(strlen(tm_last_error()), 0);
	ck_assert_err(tm_get(tm, "job", id, TM_PUBLIC, NULL), TM_EWRONG_DATA);
}

START_TEST(malformed_ids_are_wrong_data)
{
	static const char *const bad[] = {
		"", "A", "AAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAA",
		"AAAAAAAAAAAAAAAAAAA-", "AAAAAAAAAA AAAAAAAAA", "AAAAAAAAAAAAAAAAAAA_",
		"AAAAAAAAAAAAAAAAAA\xc3\xa9", ("AAAAAAAAAAAAAAAAA\xc3\xa9" "A"),
		"../AAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAA\n", " AAAAAAAAAAAAAAAAAAA",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	};
	char id[21], longer[32];

	tt_register_with_task(tm, "job", TM_JOB_PUBLIC, NULL, id);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_bad_id(tm, bad[i]);
	assert_bad_id(tm, NULL);
	/* A real id with one more or one less character. */
	snprintf(longer, sizeof(longer), "%sA", id);
	assert_bad_id(tm, longer);
	longer[19] = '\0';
	assert_bad_id(tm, longer);
}
END_TEST

START_TEST(unknown_well_formed_id_is_task_not_found)
{
	char id[21], other[21], *out;
	tt_register(tm, "job", 0);
	ck_assert_refused(tm_get(tm, "job", "AAAAAAAAAAAAAAAAAAAA", 0, &out),
	                  TM_ETASK_NOT_FOUND, out);
	tt_trigger(tm, "job", NULL, id);
	/* The same id with its last character changed. */
	snprintf(other, sizeof(other), "%s", id);
	other[19] = other[19] == 'z' ? 'y' : 'z';
	ck_assert_err(tm_get(tm, "job", other, 0, NULL), TM_ETASK_NOT_FOUND);
	ck_assert_uint_gt(strlen(tm_last_error()), 0);
}
END_TEST

START_TEST(id_of_another_name_is_task_not_found)
{
	char id[21], *out;

	tt_register_with_task(tm, "a", TM_JOB_PUBLIC, NULL, id);
	tt_register(tm, "b", TM_JOB_PUBLIC);
	ck_assert_refused(tm_get(tm, "b", id, 0, &out), TM_ETASK_NOT_FOUND, out);
	ck_assert_err(tm_get(tm, "b", id, TM_PUBLIC, NULL), TM_ETASK_NOT_FOUND);
	ck_assert_err(tm_patch(tm, "b", id, "{\"status\":\"RUNNING\"}", NULL),
	              TM_ETASK_NOT_FOUND);
	ck_assert_err(tm_cancel(tm, "b", id, NULL), TM_ETASK_NOT_FOUND);
	ck_assert_str_eq(tt_status(tm, "a", id, (char[32]){ 0 }), "REQUEST_SENT");
}
END_TEST

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)(ts.tv_nsec / 1000) / 1e6;
}

START_TEST(start_time_is_the_trigger_time_within_the_seed_bounds)
{
	char id[21];
	double before, after, st;
	cJSON *t;
	tt_register(tm, "job", 0);
	before = now_s();
	tt_trigger(tm, "job", NULL, id);
	after = now_s();
	t = tt_task(tm, "job", id, 0);
	st = cJSON_GetObjectItem(t, "start_time")->valuedouble;
	ck_assert(st >= -150000000000.0 && st <= 3500000000.0);
	/* Taken between the two readings of the same clock (1 us of rounding). */
	ck_assert_msg(st >= before - 1e-6 && st <= after + 1e-6,
	              "start_time %.6f outside [%.6f, %.6f]", st, before, after);
	cJSON_Delete(t);
}
END_TEST

START_TEST(details_hold_payload_progress_timeout_reason_attempts)
{
	char id[21];
	cJSON *t, *d;
	double st;

	tt_register_with_task(tm, "job", 0, "{\"context_task\":{\"connection\":\"LOCAL\"}}", id);
	t = tt_task(tm, "job", id, 0);
	st = cJSON_GetObjectItem(t, "start_time")->valuedouble;
	d = cJSON_GetObjectItem(t, "details");
	ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "payload"),
	                                     "connection")->valuestring, "LOCAL");
	ck_assert(cJSON_IsObject(cJSON_GetObjectItem(d, "progress")));
	ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(d, "timeout_at")));
	ck_assert_double_eq_tol(cJSON_GetObjectItem(d, "timeout_at")->valuedouble - st,
	                        86400.0, 1e-5);
	ck_assert_str_eq(cJSON_GetObjectItem(d, "create_reason")->valuestring,
	                 "manually triggered by endpoint");
	ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(d, "attempts")));
	ck_assert_int_ge(cJSON_GetObjectItem(d, "attempts")->valueint, 0);
	/* Not ended: no end_time, no error. */
	ck_assert_ptr_null(cJSON_GetObjectItem(d, "end_time"));
	ck_assert_ptr_null(cJSON_GetObjectItem(d, "error"));
	ck_assert_int_eq(cJSON_GetArraySize(d), 5);
	cJSON_Delete(t);
}
END_TEST

START_TEST(timeout_at_follows_the_job_timeout)
{
	char id[21];
	tm_job_def def = TM_JOB_DEF_INIT;
	cJSON *t;
	def.name = "short";
	def.timeout_s = 90.5;
	ck_assert_ok(tm_register(tm, &def));
	tt_trigger(tm, "short", NULL, id);
	t = tt_task(tm, "short", id, 0);
	ck_assert_double_eq_tol(tt_detail(t, "timeout_at")->valuedouble -
	                        cJSON_GetObjectItem(t, "start_time")->valuedouble, 90.5, 1e-5);
	cJSON_Delete(t);
}
END_TEST

START_TEST(unregistered_name_is_wrong_data)
{
	char id[21], *out;

	tt_register_with_task(tm, "job", 0, NULL, id);
	ck_assert_refused(tm_get(tm, "nope", id, 0, &out), TM_EWRONG_DATA, out);
	ck_assert_err(tm_get(tm, NULL, id, 0, NULL), TM_EWRONG_DATA);
	ck_assert_err(tm_get(tm, "", id, 0, NULL), TM_EWRONG_DATA);
}
END_TEST

START_TEST(get_changes_nothing)
{
	char id[21], *a, *b;

	tt_register_with_task(tm, "job", 0, NULL, id);
	a = tt_get(tm, "job", id, 0);
	ck_assert_ok(tm_get(tm, "job", id, 0, NULL));
	ck_assert_ok(tm_get(tm, "job", id, 0, NULL));
	b = tt_get(tm, "job", id, 0);
	ck_assert_str_eq(a, b);
	tm_free(a);
	tm_free(b);
}
END_TEST

TT_STORE_MAIN("get",
	private_view_has_exactly_the_task_keys,
	public_view_leaves_details_out,
	public_flag_refuses_a_private_name,
	progress_is_details_progress_message,
	progress_message_with_escapes_reads_back_exactly,
	malformed_ids_are_wrong_data,
	unknown_well_formed_id_is_task_not_found,
	id_of_another_name_is_task_not_found,
	start_time_is_the_trigger_time_within_the_seed_bounds,
	details_hold_payload_progress_timeout_reason_attempts,
	timeout_at_follows_the_job_timeout,
	unregistered_name_is_wrong_data,
	get_changes_nothing)
