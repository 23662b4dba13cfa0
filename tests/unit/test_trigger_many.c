/* tm_trigger_many (doc/api.md, "The five calls"): a batch of trigger
 * bodies in one transaction, all or nothing, ids in order. */
#include <string.h>

#include "common.h"

TT_STORE_FIXTURE

static int refuse_second(const char *context_json, void *user)
{
	(void)user;
	if (strstr(context_json, "\"bad\"") != NULL)
		return tm_errorf(TM_ETABLE_NOT_FOUND, "no such table");
	return TM_OK;
}

static void setup(void)
{
	tm_job_def d = TM_JOB_DEF_INIT;

	tt_store_setup();
	tt_register(tm, "job", 0);
	tt_register(tm, "only", TM_JOB_EXCLUSIVE);
	d.name = "checked";
	d.validate = refuse_second;
	ck_assert_ok(tm_register(tm, &d));
}

START_TEST(a_batch_is_stored_with_its_ids_in_order)
{
	char *out;
	cJSON *j, *ids, *t;

	ck_assert_ok(tm_trigger_many(tm, "job",
	             "[{\"context_task\":{\"i\":0}}, {}, "
	             "{\"context_task\":{\"i\":2},\"create_reason\":\"bulk\"}]", 0, &out));
	j = tt_json(out);
	ids = cJSON_GetObjectItem(j, "task_ids");
	ck_assert_int_eq(cJSON_GetArraySize(ids), 3);
	t = tt_task(tm, "job", cJSON_GetArrayItem(ids, 0)->valuestring, 0);
	ck_assert_int_eq(cJSON_GetObjectItem(tt_detail(t, "payload"), "i")->valueint, 0);
	cJSON_Delete(t);
	t = tt_task(tm, "job", cJSON_GetArrayItem(ids, 1)->valuestring, 0);
	ck_assert_int_eq(cJSON_GetArraySize(tt_detail(t, "payload")), 0);
	ck_assert_str_eq(tt_detail(t, "create_reason")->valuestring,
	                 "manually triggered by endpoint");
	cJSON_Delete(t);
	t = tt_task(tm, "job", cJSON_GetArrayItem(ids, 2)->valuestring, 0);
	ck_assert_int_eq(cJSON_GetObjectItem(tt_detail(t, "payload"), "i")->valueint, 2);
	ck_assert_str_eq(tt_detail(t, "create_reason")->valuestring, "bulk");
	cJSON_Delete(t);
	cJSON_Delete(j);
	ck_assert_int_eq(tt_count(tm, "job"), 3);
	tt_assert_check(tm, 3);
}
END_TEST

/* Refused with code, naming `names` in the message, storing nothing. */
static void assert_batch_refused(const char *name, const char *bodies, int code,
                                 const char *names)
{
	char *out;

	ck_assert_refused(tm_trigger_many(tm, name, bodies, 0, &out), code, out);
	ck_assert_msg(strstr(tm_last_error(), names) != NULL, "%s: message '%s' "
	              "does not name %s", bodies, tm_last_error(), names);
	ck_assert_int_eq(tt_count(tm, name), 0);
}

START_TEST(one_bad_body_refuses_the_batch_and_names_it)
{
	assert_batch_refused("job", "[{}, {}, {\"context_task\":1}]", TM_EWRONG_DATA,
	                     "bodies_json[2]");
	assert_batch_refused("job", "[{}, 7]", TM_EWRONG_DATA, "bodies_json[1]");
	assert_batch_refused("job", "[{\"nope\":1}]", TM_EWRONG_DATA, "bodies_json[0]");
	assert_batch_refused("job", "[{}, {\"refresh_token\":5}]", TM_EWRONG_DATA,
	                     "bodies_json[1]");
	assert_batch_refused("checked", "[{\"context_task\":{\"t\":\"ok\"}}, "
	                     "{\"context_task\":{\"t\":\"bad\"}}]", TM_ETABLE_NOT_FOUND,
	                     "bodies_json[1]: no such table");
}
END_TEST

START_TEST(a_malformed_array_is_refused)
{
	char *many = malloc(4 * (TM_TRIGGER_MANY_MAX + 1) + 8), *p = many;

	assert_batch_refused("job", "{}", TM_EWRONG_DATA, "array");
	assert_batch_refused("job", "[]", TM_EWRONG_DATA, "array");
	assert_batch_refused("job", "[{}", TM_EWRONG_DATA, "not valid JSON");
	assert_batch_refused("job", "[{\"context_task\":{\"n\":1e999}}]", TM_EWRONG_DATA,
	                     "double");
	ck_assert_err(tm_trigger_many(tm, "job", NULL, 0, NULL), TM_EWRONG_DATA);
	*p++ = '[';
	for (int i = 0; i <= TM_TRIGGER_MANY_MAX; i++)
		p += sprintf(p, "%s{}", i ? "," : "");
	strcpy(p, "]");
	assert_batch_refused("job", many, TM_EWRONG_DATA, "1 to 1000");
	p[-3] = ']'; /* drop the last body: exactly the most allowed */
	p[-2] = '\0';
	ck_assert_ok(tm_trigger_many(tm, "job", many, 0, NULL));
	ck_assert_int_eq(tt_count(tm, "job"), TM_TRIGGER_MANY_MAX);
	free(many);
}
END_TEST

START_TEST(an_exclusive_name_takes_one_and_only_when_none_is_active)
{
	char *out;

	assert_batch_refused("only", "[{}, {}]", TM_EALREADY_RUNNING, "one task at a time");
	ck_assert_ok(tm_trigger_many(tm, "only", "[{}]", 0, &out));
	tm_free(out);
	ck_assert_refused(tm_trigger_many(tm, "only", "[{}]", 0, &out),
	                  TM_EALREADY_RUNNING, out);
	ck_assert_int_eq(tt_count(tm, "only"), 1);
}
END_TEST

START_TEST(names_and_flags_are_checked_as_for_one_trigger)
{
	char *out;

	ck_assert_refused(tm_trigger_many(tm, "nope", "[{}]", 0, &out), TM_EWRONG_DATA, out);
	ck_assert_refused(tm_trigger_many(tm, "job", "[{}]", TM_PUBLIC, &out),
	                  TM_EWRONG_DATA, out);
	ck_assert_refused(tm_trigger_many(tm, "job", "[{}]", 0x80, &out), TM_EINVAL, out);
	ck_assert_refused(tm_trigger_many(NULL, "job", "[{}]", 0, &out), TM_EINVAL, out);
}
END_TEST

START_TEST(limits_hold_for_each_body_and_for_the_batch)
{
	char path[4096], *bodies, *p;
	tm_options o;
	tm_manager *m;

	snprintf(path, sizeof(path), "%s/small", dir);
	o = tt_options(path);
	o.max_task_bytes = 16 << 10;
	o.max_details_bytes = 8 << 10;
	o.max_list_bytes = 64 << 10;
	ck_assert_ok(tm_open(&o, &m));
	tt_register(m, "job", 0);
	/* Ten bodies of 6 KiB fit each; together they pass 64 KiB. */
	bodies = malloc(12 * ((6 << 10) + 64));
	p = bodies;
	*p++ = '[';
	for (int i = 0; i < 12; i++) {
		p += sprintf(p, "%s{\"context_task\":{\"b\":\"", i ? "," : "");
		memset(p, 'a' + i, 6 << 10);
		p += 6 << 10;
		p += sprintf(p, "\"}}");
	}
	strcpy(p, "]");
	ck_assert_err(tm_trigger_many(m, "job", bodies, 0, NULL), TM_EWRONG_DATA);
	ck_assert_ptr_nonnull(strstr(tm_last_error(), "max_list_bytes"));
	ck_assert_int_eq(tt_count(m, "job"), 0);
	/* One body over max_details_bytes: named. */
	strcpy(bodies, "[{}, {\"context_task\":{\"b\":\"");
	p = bodies + strlen(bodies);
	memset(p, 'x', 9 << 10);
	strcpy(p + (9 << 10), "\"}}]");
	ck_assert_err(tm_trigger_many(m, "job", bodies, 0, NULL), TM_EWRONG_DATA);
	ck_assert_ptr_nonnull(strstr(tm_last_error(), "bodies_json[1]"));
	ck_assert_ptr_nonnull(strstr(tm_last_error(), "max_details_bytes"));
	ck_assert_int_eq(tt_count(m, "job"), 0);
	free(bodies);
	tm_close(m);
}
END_TEST

TT_MAIN_FIXTURE("trigger_many", setup, tt_store_teardown,
	a_batch_is_stored_with_its_ids_in_order,
	one_bad_body_refuses_the_batch_and_names_it,
	a_malformed_array_is_refused,
	an_exclusive_name_takes_one_and_only_when_none_is_active,
	names_and_flags_are_checked_as_for_one_trigger,
	limits_hold_for_each_body_and_for_the_batch)
