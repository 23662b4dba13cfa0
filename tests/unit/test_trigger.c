/* tm_trigger (doc/api.md, "The five calls"): the body, the name,
 * exclusivity, the validate hook, task ids, and what a refused trigger
 * leaves behind. */
#include <stdlib.h>
#include <string.h>

#include "common.h"

TT_STORE_FIXTURE

#define DEFAULT_REASON "manually triggered by endpoint"

/* A trigger that must fail with code, set *out_json to NULL, leave a
 * message (msg, when not NULL), and store nothing. */
static void assert_refused_msg(tm_manager *tm, const char *name, const char *body,
                               unsigned flags, int code, const char *msg)
{
	int before = name && strcmp(name, "job") == 0 ? tt_count(tm, "job") : 0;
	char *out;

	tt_clear_error();
	ck_assert_refused(tm_trigger(tm, name, body, flags, &out), code, out);
	ck_assert_msg(tm_last_error()[0] != '\0', "no message for %s",
	              body ? body : "(null)");
	if (msg)
		ck_assert_str_eq(tm_last_error(), msg);
	if (name && strcmp(name, "job") == 0)
		ck_assert_int_eq(tt_count(tm, "job"), before);
}

static void assert_refused(tm_manager *tm, const char *name, const char *body,
                           unsigned flags, int code)
{
	assert_refused_msg(tm, name, body, flags, code, NULL);
}

/* Every body refused as WRONG_DATA_TYPE, storing nothing. */
static void refuse_each(const char *const *bodies, size_t n)
{
	tt_register(tm, "job", 0);
	for (size_t i = 0; i < n; i++)
		assert_refused(tm, "job", bodies[i], 0, TM_EWRONG_DATA);
}

#define REFUSE_EACH(bodies) refuse_each((bodies), sizeof(bodies) / sizeof((bodies)[0]))

static cJSON *details(cJSON *task)
{
	cJSON *d = cJSON_GetObjectItem(task, "details");

	ck_assert(cJSON_IsObject(d));
	return d;
}

/* ---- the body ------------------------------------------------------------ */

START_TEST(trigger_without_body_stores_empty_payload_and_default_reason)
{
	char id[21];
	cJSON *t, *d;

	tt_register_with_task(tm, "job", 0, NULL, id);
	t = tt_task(tm, "job", id, 0);
	ck_assert_str_eq(cJSON_GetObjectItem(t, "status")->valuestring, "REQUEST_SENT");
	ck_assert_str_eq(cJSON_GetObjectItem(t, "name")->valuestring, "job");
	d = details(t);
	ck_assert(cJSON_IsObject(cJSON_GetObjectItem(d, "payload")));
	ck_assert_ptr_null(cJSON_GetObjectItem(d, "payload")->child);
	ck_assert_str_eq(cJSON_GetObjectItem(d, "create_reason")->valuestring,
	                 DEFAULT_REASON);
	cJSON_Delete(t);
}
END_TEST

START_TEST(trigger_with_empty_object_is_like_no_body)
{
	char id[21];
	cJSON *t, *d;

	tt_register_with_task(tm, "job", 0, "{}", id);
	tt_trigger(tm, "job", " \n{ }\t\n", id);
	t = tt_task(tm, "job", id, 0);
	d = details(t);
	ck_assert(cJSON_IsObject(cJSON_GetObjectItem(d, "payload")));
	ck_assert_ptr_null(cJSON_GetObjectItem(d, "payload")->child);
	ck_assert_str_eq(cJSON_GetObjectItem(d, "create_reason")->valuestring,
	                 DEFAULT_REASON);
	ck_assert_int_eq(tt_count(tm, "job"), 2);
	cJSON_Delete(t);
}
END_TEST

START_TEST(context_task_becomes_details_payload)
{
	static const char ctx[] = "{\"connection\":\"LOCAL\",\"name\":\"input-myfile.csv\","
		"\"n\":[1,2.5,{\"x\":null,\"y\":true}],\"nested\":{\"a\":{\"b\":\"c\"}},"
		"\"empty\":{},\"s\":\"\\u00e9\\\"q\\\"\"}";
	char id[21], body[512];
	cJSON *t, *want;

	tt_register(tm, "job", 0);
	snprintf(body, sizeof(body), "{\"context_task\":%s}", ctx);
	tt_trigger(tm, "job", body, id);
	t = tt_task(tm, "job", id, 0);
	want = tt_parse(ctx);
	ck_assert(cJSON_Compare(cJSON_GetObjectItem(details(t), "payload"), want, 1));
	cJSON_Delete(want);
	cJSON_Delete(t);
}
END_TEST

static void assert_no_secret(char *text)
{
	ck_assert_ptr_nonnull(text);
	ck_assert_msg(strstr(text, "s3cr3t-t0ken") == NULL, "secret in %s", text);
	ck_assert_msg(strstr(text, "refresh_token") == NULL, "token key in %s", text);
	tm_free(text);
}

START_TEST(refresh_token_never_appears_in_any_output)
{
	char *out, id[21], id2[21], id3[21];
	const char *body = "{\"context_task\":{\"t\":1},\"refresh_token\":\"s3cr3t-t0ken\"}";

	tt_register(tm, "job", TM_JOB_PUBLIC);
	ck_assert_ok(tm_trigger(tm, "job", body, 0, &out));
	assert_no_secret(out);
	ck_assert_ok(tm_trigger(tm, "job", body, TM_PUBLIC, &out));
	assert_no_secret(out);
	tt_trigger(tm, "job", body, id);
	tt_trigger(tm, "job", body, id2);
	tt_trigger(tm, "job", body, id3);
	assert_no_secret(tt_get(tm, "job", id, 0));
	assert_no_secret(tt_get(tm, "job", id, TM_PUBLIC));
	ck_assert_ok(tm_list_recent(tm, "job", 1, 64, 0, &out));
	assert_no_secret(out);
	ck_assert_ok(tm_list_recent(tm, "job", 1, 64, TM_PUBLIC, &out));
	assert_no_secret(out);
	ck_assert_ok(tm_patch(tm, "job", id, "{\"status\":\"RUNNING\"}", &out));
	assert_no_secret(out);
	ck_assert_ok(tm_cancel(tm, "job", id, &out));
	assert_no_secret(out);
	ck_assert_ok(tm_cancel(tm, "job", id2, &out));
	assert_no_secret(out);
	ck_assert_ok(tm_patch(tm, "job", id3, "{\"completed\":true}", &out));
	assert_no_secret(out);
	ck_assert_ok(tm_stats(tm, &out));
	assert_no_secret(out);
	ck_assert_ok(tm_check(tm, &out));
	assert_no_secret(out);
}
END_TEST

START_TEST(create_reason_overrides_the_default)
{
	char id[21];
	cJSON *t;

	tt_register_with_task(tm, "job", 0, "{\"create_reason\":\"nightly retrain\"}", id);
	t = tt_task(tm, "job", id, 0);
	ck_assert_str_eq(cJSON_GetObjectItem(details(t), "create_reason")->valuestring,
	                 "nightly retrain");
	cJSON_Delete(t);
	/* Escapes and non-ASCII text come back as sent. */
	tt_trigger(tm, "job", "{\"create_reason\":\"say \\\"hi\\\" \\u00e9\\u2028 \\ud83d\\ude00 "
	           "\xc3\xa9 \\\\ /\\/\"}", id);
	t = tt_task(tm, "job", id, 0);
	ck_assert_str_eq(cJSON_GetObjectItem(details(t), "create_reason")->valuestring,
	                 "say \"hi\" \xc3\xa9\xe2\x80\xa8 \xf0\x9f\x98\x80 \xc3\xa9 \\ //");
	cJSON_Delete(t);
}
END_TEST

START_TEST(every_wrong_field_type_is_wrong_data)
{
	static const char *const fields[] = { "context_task", "refresh_token", "create_reason" };
	/* Values that are of the wrong type for each field, in order. */
	static const char *const wrong[3][8] = {
		{ "\"x\"", "1", "1.5", "[]", "[{}]", "true", "false", "null" },
		{ "1", "1.5", "{}", "[]", "[\"t\"]", "true", "false", "null" },
		{ "1", "1.5", "{}", "[]", "[\"r\"]", "true", "false", "null" },
	};
	char body[128];

	tt_register(tm, "job", 0);
	for (int f = 0; f < 3; f++) {
		for (int v = 0; v < 8; v++) {
			snprintf(body, sizeof(body), "{\"%s\":%s}", fields[f], wrong[f][v]);
			assert_refused(tm, "job", body, 0, TM_EWRONG_DATA);
			/* A wrong field beside good ones still refuses the whole body. */
			snprintf(body, sizeof(body), "{\"context_task\":{},\"%s\":%s}",
			         fields[f], wrong[f][v]);
			if (f != 0)
				assert_refused(tm, "job", body, 0, TM_EWRONG_DATA);
		}
	}
	ck_assert_int_eq(tt_count(tm, "job"), 0);
}
END_TEST

START_TEST(unknown_fields_are_wrong_data)
{
	static const char *const bodies[] = {
		"{\"foo\":1}",
		"{\"context_task\":{},\"extra\":true}",
		"{\"Context_task\":{}}",
		"{\"context\":{}}",
		"{\"refresh_token\":\"t\",\"status\":\"RUNNING\"}",
		"{\"\":null}",
	};
	REFUSE_EACH(bodies);
}
END_TEST

START_TEST(malformed_json_is_wrong_data)
{
	static const char *const bodies[] = {
		"", " ", "{", "}", "{\"context_task\":}", "{\"context_task\" {}}",
		"{'context_task':{}}", "{\"context_task\":{},}", "{context_task:{}}",
		"{\"create_reason\":\"unterminated}",
		"{\"context_task\":[1,2}", "nul", "{\"context_task\":NaN}",
	};
	REFUSE_EACH(bodies);
}
END_TEST

/* Text that cJSON's parser tolerates but RFC 8259 does not allow. */
START_TEST(json_outside_rfc8259_is_wrong_data)
{
	static const char *const bodies[] = {
		"{\"context_task\":{\"a\":01}}",
		"{\"context_task\":{\"a\":-01}}",
		"{\"context_task\":{\"a\":1.}}",
		"{\"context_task\":{\"a\":-.5}}",
		"{\"create_reason\":\"line\nbreak\"}",
		"{\"create_reason\":\"tab\there\"}",
	};
	char accepted[512] = "";

	tt_register(tm, "job", 0);
	/* Collect every accepted body, so one failure names them all. */
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		if (tm_trigger(tm, "job", bodies[i], 0, NULL) != TM_EWRONG_DATA) {
			size_t n = strlen(accepted);
			snprintf(accepted + n, sizeof(accepted) - n, " %s", bodies[i]);
		}
	}
	ck_assert_msg(accepted[0] == '\0', "accepted:%s", accepted);
	ck_assert_int_eq(tt_count(tm, "job"), 0);
}
END_TEST

START_TEST(trailing_garbage_is_wrong_data)
{
	static const char *const bodies[] = {
		"{} x", "{}{}", "{} 1", "{\"context_task\":{}}]", "{}\n{}", "{} null",
		"{},", "{}//",
	};
	REFUSE_EACH(bodies);
}
END_TEST

START_TEST(duplicate_keys_are_wrong_data)
{
	static const char *const bodies[] = {
		"{\"context_task\":{},\"context_task\":{}}",
		"{\"refresh_token\":\"a\",\"refresh_token\":\"b\"}",
		"{\"create_reason\":\"a\",\"context_task\":{},\"create_reason\":\"a\"}",
		"{\"context_task\":{\"a\":1,\"a\":2}}",
		"{\"context_task\":{\"x\":{\"b\":1,\"c\":2,\"b\":3}}}",
		"{\"context_task\":{\"l\":[{\"k\":1,\"k\":1}]}}",
	};
	REFUSE_EACH(bodies);
}
END_TEST

START_TEST(non_object_bodies_are_wrong_data)
{
	static const char *const bodies[] = {
		"[]", "[{}]", "1", "null", "\"x\"", "true", "false", "\"{}\"",
	};
	REFUSE_EACH(bodies);
}
END_TEST

START_TEST(deeply_nested_body_is_refused_without_crashing)
{
	enum { DEPTH = 100000 };
	char *body = malloc(DEPTH * 2 + 64);
	size_t n = 0;

	ck_assert_ptr_nonnull(body);
	n += (size_t)sprintf(body, "{\"context_task\":{\"a\":");
	for (int i = 0; i < DEPTH; i++)
		body[n++] = '[';
	for (int i = 0; i < DEPTH; i++)
		body[n++] = ']';
	strcpy(body + n, "}}");
	tt_register(tm, "job", 0);
	assert_refused(tm, "job", body, 0, TM_EWRONG_DATA);
	free(body);
}
END_TEST

/* ---- the name ------------------------------------------------------------ */

START_TEST(unregistered_name_is_wrong_data)
{
	tt_register(tm, "job", TM_JOB_PUBLIC);
	assert_refused(tm, "nope", NULL, 0, TM_EWRONG_DATA);
	assert_refused(tm, "nope", NULL, TM_PUBLIC, TM_EWRONG_DATA);
	assert_refused(tm, "JOB", NULL, 0, TM_EWRONG_DATA);
	assert_refused(tm, "jo", NULL, 0, TM_EWRONG_DATA);
	assert_refused(tm, "job ", NULL, 0, TM_EWRONG_DATA);
	assert_refused(tm, "", NULL, 0, TM_EWRONG_DATA);
	assert_refused(tm, NULL, NULL, 0, TM_EWRONG_DATA);
	assert_refused(tm, "nope", "{\"context_task\":{}}", 0, TM_EWRONG_DATA);
	ck_assert_int_eq(tt_count(tm, "job"), 0);
}
END_TEST

START_TEST(public_flag_refuses_a_private_name)
{
	char *out = NULL;

	tt_register(tm, "job", 0);
	tt_register(tm, "pub", TM_JOB_PUBLIC | TM_JOB_EXCLUSIVE);
	assert_refused(tm, "job", NULL, TM_PUBLIC, TM_EWRONG_DATA);
	ck_assert_int_eq(tt_count(tm, "job"), 0);
	ck_assert_ok(tm_trigger(tm, "pub", NULL, TM_PUBLIC, &out));
	tm_free(out);
	ck_assert_ok(tm_trigger(tm, "job", NULL, 0, NULL));
	ck_assert_int_eq(tt_count(tm, "job"), 1);
	ck_assert_int_eq(tt_count(tm, "pub"), 1);
}
END_TEST

/* ---- exclusivity --------------------------------------------------------- */

START_TEST(exclusive_name_refuses_while_a_task_is_active)
{
	static const char *const finish[] = {
		"{\"completed\":true}", "{\"failed\":true}", "{\"status\":\"CANCELLED\"}",
		"{\"status\":\"COMPLETED\"}", "{\"status\":\"FAILED\"}",
	};
	char id[21], other[21];
	int n = 0;

	tt_register(tm, "excl", TM_JOB_EXCLUSIVE);
	tt_register(tm, "excl2", TM_JOB_EXCLUSIVE);
	for (size_t i = 0; i < sizeof(finish) / sizeof(finish[0]); i++) {
		tt_trigger(tm, "excl", NULL, id);
		n++;
		ck_assert_err(tm_trigger(tm, "excl", NULL, 0, NULL), TM_EALREADY_RUNNING);
		ck_assert_ok(tm_patch(tm, "excl", id, "{\"status\":\"RUNNING\"}", NULL));
		ck_assert_err(tm_trigger(tm, "excl", NULL, 0, NULL), TM_EALREADY_RUNNING);
		ck_assert_ok(tm_patch(tm, "excl", id,
		             "{\"status\":\"CANCELLED_REQUESTED\"}", NULL));
		ck_assert_err(tm_trigger(tm, "excl", "{\"context_task\":{}}", 0, NULL),
		              TM_EALREADY_RUNNING);
		ck_assert_int_eq(tt_count(tm, "excl"), n);
		/* Another exclusive name is not held up. */
		tt_trigger(tm, "excl2", NULL, other);
		ck_assert_ok(tm_cancel(tm, "excl2", other, NULL));
		ck_assert_ok(tm_patch(tm, "excl", id, finish[i], NULL));
	}
	/* A task cancelled straight from REQUEST_SENT frees the name too. */
	tt_trigger(tm, "excl", NULL, id);
	ck_assert_ok(tm_cancel(tm, "excl", id, NULL));
	tt_trigger(tm, "excl", NULL, id);
	ck_assert_err(tm_trigger(tm, "excl", NULL, 0, NULL), TM_EALREADY_RUNNING);
	ck_assert_int_eq(tt_count(tm, "excl"), n + 2);
}
END_TEST

START_TEST(already_running_leaves_a_message_and_no_output)
{
	char id[21];

	tt_register_with_task(tm, "job", TM_JOB_EXCLUSIVE, NULL, id);
	assert_refused(tm, "job", NULL, 0, TM_EALREADY_RUNNING);
	ck_assert_int_eq(tt_count(tm, "job"), 1);
}
END_TEST

START_TEST(non_exclusive_name_takes_many_active_tasks)
{
	char id[21];

	tt_register(tm, "job", 0);
	for (int i = 0; i < 5; i++)
		tt_trigger(tm, "job", NULL, id);
	ck_assert_int_eq(tt_count(tm, "job"), 5);
}
END_TEST

/* ---- the validate hook --------------------------------------------------- */

struct hook {
	int answer;
	const char *message; /* set with tm_errorf when not NULL */
	int calls;
	char seen[256];
	void *user_seen;
};

static int validate(const char *context_json, void *user)
{
	struct hook *h = user;

	h->calls++;
	h->user_seen = user;
	snprintf(h->seen, sizeof(h->seen), "%s", context_json ? context_json : "(null)");
	if (h->answer != TM_OK && h->message)
		return tm_errorf(h->answer, "%s", h->message);
	return h->answer;
}

static void register_hooked(tm_manager *tm, const char *name, struct hook *h)
{
	tm_job_def d = TM_JOB_DEF_INIT;

	d.name = name;
	d.validate = validate;
	d.user = h;
	ck_assert_ok(tm_register(tm, &d));
}

START_TEST(validate_hook_ok_lets_the_task_be_stored)
{
	char id[21];
	struct hook h = { TM_OK, NULL, 0, "", NULL };

	register_hooked(tm, "job", &h);
	tt_trigger(tm, "job", "{\"context_task\":{\"table\":\"a.csv\"}}", id);
	ck_assert_int_eq(h.calls, 1);
	ck_assert_ptr_eq(h.user_seen, &h);
	ck_assert_int_eq(tt_count(tm, "job"), 1);
}
END_TEST

START_TEST(validate_hook_refusal_comes_back_and_stores_nothing)
{
	static const struct { int code; const char *msg; } answers[] = {
		{ TM_ETABLE_NOT_FOUND, "table missing.csv not found" },
		{ TM_ERESOURCE_NOT_FOUND, "resource bucket-7 not found" },
		{ TM_EWRONG_DATA, "connection S3 is not supported" },
		{ TM_ETABLE_NOT_FOUND, NULL },
		{ TM_ERESOURCE_NOT_FOUND, NULL },
		{ TM_EWRONG_DATA, NULL },
	};
	struct hook h = { TM_OK, NULL, 0, "", NULL };

	register_hooked(tm, "job", &h);
	for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
		h.answer = answers[i].code;
		h.message = answers[i].msg;
		h.calls = 0;
		assert_refused_msg(tm, "job", "{\"context_task\":{\"table\":\"missing.csv\"},"
		                   "\"refresh_token\":\"t\"}", 0, answers[i].code,
		                   answers[i].msg);
		ck_assert_int_eq(h.calls, 1);
		ck_assert_int_eq(tt_count(tm, "job"), 0);
	}
}
END_TEST

START_TEST(validate_hook_receives_the_context_json)
{
	char id[21];
	struct hook h = { TM_OK, NULL, 0, "", NULL };
	cJSON *seen, *want;

	register_hooked(tm, "job", &h);
	tt_trigger(tm, "job", NULL, id);
	ck_assert_str_eq(h.seen, "{}");
	tt_trigger(tm, "job", "{\"refresh_token\":\"t\"}", id);
	ck_assert_str_eq(h.seen, "{}");
	tt_trigger(tm, "job", "{\"context_task\":{\"table_name\":\"a.csv\","
	           "\"rows\":[1,2],\"o\":{\"k\":null}},\"refresh_token\":\"t\"}", id);
	seen = cJSON_Parse(h.seen);
	ck_assert_msg(seen != NULL, "hook got %s", h.seen);
	want = tt_parse("{\"table_name\":\"a.csv\",\"rows\":[1,2],\"o\":{\"k\":null}}");
	ck_assert(cJSON_Compare(seen, want, 1));
	ck_assert_ptr_null(strstr(h.seen, "refresh_token"));
	ck_assert_int_eq(h.calls, 3);
	cJSON_Delete(seen);
	cJSON_Delete(want);
}
END_TEST

START_TEST(validate_hook_answering_a_non_error_stores_nothing)
{
	static const int answers[] = { 1, 5, -10, -1000 };
	struct hook h = { TM_OK, NULL, 0, "", NULL };
	char *out;

	register_hooked(tm, "job", &h);
	for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
		h.answer = answers[i];
		tt_clear_error();
		/* The hook broke its contract: the host's mistake, not bad data. */
		ck_assert_refused(tm_trigger(tm, "job", NULL, 0, &out), TM_EINVAL, out);
		ck_assert_uint_gt(strlen(tm_last_error()), 0);
		ck_assert_int_eq(tt_count(tm, "job"), 0);
	}
}
END_TEST

START_TEST(refused_trigger_keeps_the_change_counter)
{
	char id[21];
	struct hook h = { TM_ETABLE_NOT_FOUND, "no table", 0, "", NULL };

	tt_register(tm, "excl", TM_JOB_EXCLUSIVE);
	register_hooked(tm, "hooked", &h);
	tt_trigger(tm, "excl", NULL, id);
	ck_assert_ok(tm_notify(tm, "excl", 5));
	ck_assert_ok(tm_notify(tm, "hooked", 7));
	ck_assert_err(tm_trigger(tm, "excl", NULL, 0, NULL), TM_EALREADY_RUNNING);
	ck_assert_err(tm_trigger(tm, "excl", "{\"x\":1}", 0, NULL), TM_EWRONG_DATA);
	ck_assert_err(tm_trigger(tm, "hooked", NULL, 0, NULL), TM_ETABLE_NOT_FOUND);
	ck_assert_double_eq(tt_stat(tm, "excl", "changes"), 5);
	ck_assert_double_eq(tt_stat(tm, "hooked", "changes"), 7);
	/* A task that is created counts changes from zero again. */
	ck_assert_ok(tm_cancel(tm, "excl", id, NULL));
	tt_trigger(tm, "excl", NULL, id);
	ck_assert_double_eq(tt_stat(tm, "excl", "changes"), 0);
}
END_TEST

/* ---- ids and outputs ----------------------------------------------------- */

static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

START_TEST(task_ids_are_20_alphanumerics_and_unique)
{
	enum { N = 1000 };
	char (*ids)[21] = calloc(N, sizeof(*ids));

	ck_assert_ptr_nonnull(ids);
	tt_register(tm, "job", 0);
	for (int i = 0; i < N; i++) {
		char *out = NULL;
		cJSON *j, *tid;

		ck_assert_ok(tm_trigger(tm, "job", NULL, 0, &out));
		j = tt_json(out);
		/* The output is exactly {"task_id": "..."}. */
		ck_assert_int_eq(cJSON_GetArraySize(j), 1);
		tid = cJSON_GetObjectItemCaseSensitive(j, "task_id");
		ck_assert(cJSON_IsString(tid));
		ck_assert_uint_eq(strlen(tid->valuestring), 20);
		for (int c = 0; c < 20; c++) {
			char ch = tid->valuestring[c];
			ck_assert_msg((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			              (ch >= '0' && ch <= '9'), "bad id %s", tid->valuestring);
		}
		memcpy(ids[i], tid->valuestring, 21);
		cJSON_Delete(j);
	}
	qsort(ids, N, sizeof(*ids), cmp_id);
	for (int i = 1; i < N; i++)
		ck_assert_str_ne(ids[i - 1], ids[i]);
	ck_assert_int_eq(tt_count(tm, "job"), N);
	free(ids);
}
END_TEST

START_TEST(out_json_may_be_null)
{
	tt_register(tm, "job", 0);
	ck_assert_ok(tm_trigger(tm, "job", NULL, 0, NULL));
	ck_assert_ok(tm_trigger(tm, "job", "{\"context_task\":{\"a\":1}}", 0, NULL));
	ck_assert_err(tm_trigger(tm, "job", "[]", 0, NULL), TM_EWRONG_DATA);
	ck_assert_int_eq(tt_count(tm, "job"), 2);
}
END_TEST

START_TEST(out_json_is_null_after_every_failure)
{
	char id[21], *out;
	struct hook h = { TM_ETABLE_NOT_FOUND, "no table", 0, "", NULL };

	tt_register(tm, "excl", TM_JOB_EXCLUSIVE);
	register_hooked(tm, "hooked", &h);
	tt_trigger(tm, "excl", NULL, id);
	ck_assert_refused(tm_trigger(NULL, "excl", NULL, 0, &out), TM_EINVAL, out);
	ck_assert_refused(tm_trigger(tm, "nope", NULL, 0, &out), TM_EWRONG_DATA, out);
	ck_assert_refused(tm_trigger(tm, "excl", "{", 0, &out), TM_EWRONG_DATA, out);
	ck_assert_refused(tm_trigger(tm, "excl", NULL, 0, &out), TM_EALREADY_RUNNING, out);
	ck_assert_refused(tm_trigger(tm, "hooked", NULL, 0, &out), TM_ETABLE_NOT_FOUND, out);
}
END_TEST

TT_STORE_MAIN("trigger",
	trigger_without_body_stores_empty_payload_and_default_reason,
	trigger_with_empty_object_is_like_no_body,
	context_task_becomes_details_payload,
	refresh_token_never_appears_in_any_output,
	create_reason_overrides_the_default,
	every_wrong_field_type_is_wrong_data,
	unknown_fields_are_wrong_data,
	malformed_json_is_wrong_data,
	json_outside_rfc8259_is_wrong_data,
	trailing_garbage_is_wrong_data,
	duplicate_keys_are_wrong_data,
	non_object_bodies_are_wrong_data,
	deeply_nested_body_is_refused_without_crashing,
	unregistered_name_is_wrong_data,
	public_flag_refuses_a_private_name,
	exclusive_name_refuses_while_a_task_is_active,
	already_running_leaves_a_message_and_no_output,
	non_exclusive_name_takes_many_active_tasks,
	validate_hook_ok_lets_the_task_be_stored,
	validate_hook_refusal_comes_back_and_stores_nothing,
	validate_hook_receives_the_context_json,
	validate_hook_answering_a_non_error_stores_nothing,
	refused_trigger_keeps_the_change_counter,
	task_ids_are_20_alphanumerics_and_unique,
	out_json_may_be_null,
	out_json_is_null_after_every_failure)
