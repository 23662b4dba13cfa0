/* RFC 7396 JSON Merge Patch: the internal tm__json_merge on every example of
 * the RFC's Appendix A, then the same merges through tm_patch's details, and
 * the details keys a patch may not touch.  Linked against the internal
 * static library, which also provides the public calls. */
#include <string.h>

#include "common.h"
#include "json.h"

static const struct {
	const char *original, *patch, *result;
} rfc[] = {
	{ "{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}" },
	{ "{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}" },
	{ "{\"a\":\"b\"}", "{\"a\":null}", "{}" },
	{ "{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}" },
	{ "{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}" },
	{ "{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}" },
	{ "{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}",
	  "{\"a\":{\"b\":\"d\"}}" },
	{ "{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}" },
	{ "[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]" },
	{ "{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]" },
	{ "{\"a\":\"foo\"}", "null", "null" },
	{ "{\"a\":\"foo\"}", "\"bar\"", "\"bar\"" },
	{ "{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}" },
	{ "[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}" },
	{ "{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}" },
};

#define N_RFC (sizeof(rfc) / sizeof(rfc[0]))

TT_STORE_FIXTURE

/* Example i of the RFC merged by tm__json_merge: its result, *patch the
 * patch it was given (cJSON_Delete both). */
static cJSON *merge_example(size_t i, cJSON **patch)
{
	cJSON *got;

	*patch = tt_parse(rfc[i].patch);
	got = tm__json_merge(tt_parse(rfc[i].original), *patch);
	ck_assert_ptr_nonnull(got);
	return got;
}

START_TEST(merge_gives_every_result_of_rfc7396_appendix_a)
{
	for (size_t i = 0; i < N_RFC; i++) {
		cJSON *patch, *got = merge_example(i, &patch);
		cJSON *want = tt_parse(rfc[i].result);
		char *text = cJSON_PrintUnformatted(got);

		ck_assert_msg(cJSON_Compare(got, want, 1),
		              "example %zu: %s + %s gave %s, expected %s", i + 1,
		              rfc[i].original, rfc[i].patch, text, rfc[i].result);
		cJSON_free(text);
		cJSON_Delete(got);
		cJSON_Delete(patch);
		cJSON_Delete(want);
	}
}
END_TEST

START_TEST(merge_leaves_the_patch_unchanged_and_unshared)
{
	for (size_t i = 0; i < N_RFC; i++) {
		cJSON *patch, *got = merge_example(i, &patch);
		cJSON *copy = tt_parse(rfc[i].patch);

		ck_assert_msg(cJSON_Compare(patch, copy, 1),
		              "example %zu changed its patch", i + 1);
		/* The result owns its nodes: freeing it must leave the patch
		 * whole (a shared node would be freed twice or dangle). */
		cJSON_Delete(got);
		ck_assert(cJSON_Compare(patch, copy, 1));
		cJSON_Delete(patch);
		cJSON_Delete(copy);
	}
}
END_TEST

START_TEST(merge_into_nested_objects_keeps_untouched_keys)
{
	cJSON *target = tt_parse("{\"a\":{\"b\":{\"c\":1,\"d\":2},\"e\":[1]},\"f\":3}");
	cJSON *patch = tt_parse("{\"a\":{\"b\":{\"c\":null,\"x\":{\"y\":null,\"z\":0}}}}");
	cJSON *want = tt_parse("{\"a\":{\"b\":{\"d\":2,\"x\":{\"z\":0}},\"e\":[1]},\"f\":3}");
	cJSON *got = tm__json_merge(target, patch);

	ck_assert(cJSON_Compare(got, want, 1));
	cJSON_Delete(got);
	cJSON_Delete(patch);
	cJSON_Delete(want);
}
END_TEST

/* ---- the same merges through tm_patch ----------------------------------- */

static cJSON *details_of(tm_manager *tm, const char *id)
{
	cJSON *task = tt_task(tm, "job", id, 0);
	cJSON *d = cJSON_DetachItemFromObjectCaseSensitive(task, "details");

	cJSON_Delete(task);
	ck_assert(cJSON_IsObject(d));
	return d;
}

static void patch_details(tm_manager *tm, const char *id, const char *host_value)
{
	char body[256];

	snprintf(body, sizeof(body), "{\"details\":{\"host\":%s}}", host_value);
	ck_assert_ok(tm_patch(tm, "job", id, body, NULL));
}

START_TEST(patch_merges_details_by_rfc7396)
{
	tt_register(tm, "job", 0);
	for (size_t i = 0; i < N_RFC; i++) {
		char id[21];
		cJSON *before, *after, *host, *want;

		/* A merge patch cannot write a null, so that original is out. */
		if (strstr(rfc[i].original, "null"))
			continue;
		tt_trigger(tm, "job", NULL, id);
		patch_details(tm, id, rfc[i].original);
		before = details_of(tm, id);
		patch_details(tm, id, rfc[i].patch);
		after = details_of(tm, id);
		host = cJSON_DetachItemFromObjectCaseSensitive(after, "host");
		want = tt_parse(rfc[i].result);
		if (cJSON_IsNull(want)) {
			/* null under a key deletes the key. */
			ck_assert_msg(host == NULL, "example %zu kept host", i + 1);
		} else {
			char *text = host ? cJSON_PrintUnformatted(host) : NULL;
			ck_assert_msg(host && cJSON_Compare(host, want, 1),
			              "example %zu: host is %s, expected %s", i + 1,
			              text ? text : "(absent)", rfc[i].result);
			cJSON_free(text);
		}
		/* Every other key of details is as it was. */
		cJSON_DeleteItemFromObjectCaseSensitive(before, "host");
		ck_assert_msg(cJSON_Compare(before, after, 1),
		              "example %zu changed other details", i + 1);
		cJSON_Delete(before);
		cJSON_Delete(after);
		cJSON_Delete(host);
		cJSON_Delete(want);
	}
}
END_TEST

START_TEST(patch_cannot_touch_library_owned_details)
{
	static const char *const owned[] = {
		"payload", "timeout_at", "create_reason", "attempts", "end_time",
	};
	static const char *const values[] = {
		"1", "null", "{}", "{\"x\":1}", "\"s\"", "[]",
	};
	char id[21], done[21], body[128];

	tt_register_with_task(tm, "job", 0, "{\"context_task\":{\"t\":\"a.csv\"}}", id);
	tt_trigger(tm, "job", NULL, done);
	ck_assert_ok(tm_patch(tm, "job", done, "{\"completed\":true}", NULL));
	for (size_t k = 0; k < sizeof(owned) / sizeof(owned[0]); k++) {
		for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
			snprintf(body, sizeof(body), "{\"details\":{\"%s\":%s}}",
			         owned[k], values[v]);
			tt_assert_patch_refused(tm, "job", id, body, TM_EWRONG_DATA);
			tt_assert_patch_refused(tm, "job", done, body, TM_EWRONG_DATA);
			/* Beside an allowed status or key, still all refused. */
			snprintf(body, sizeof(body), "{\"status\":\"RUNNING\","
			         "\"details\":{\"ok\":1,\"%s\":%s}}", owned[k], values[v]);
			tt_assert_patch_refused(tm, "job", id, body, TM_EWRONG_DATA);
		}
	}
}
END_TEST

START_TEST(patch_keeps_details_progress_an_object)
{
	static const char *const bad[] = {
		"null", "\"40 rows\"", "1", "true", "[]", "[{\"message\":\"m\"}]",
	};
	char id[21], body[128];
	cJSON *task, *pr, *want;

	tt_register_with_task(tm, "job", 0, NULL, id);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body), "{\"details\":{\"progress\":%s}}", bad[i]);
		tt_assert_patch_refused(tm, "job", id, body, TM_EWRONG_DATA);
	}
	ck_assert_ok(tm_patch(tm, "job", id,
	             "{\"details\":{\"progress\":{\"message\":\"m\",\"rows\":40}}}", NULL));
	ck_assert_ok(tm_patch(tm, "job", id,
	             "{\"details\":{\"progress\":{\"rows\":null,\"cols\":3}}}", NULL));
	task = tt_task(tm, "job", id, 0);
	pr = tt_detail(task, "progress");
	want = tt_parse("{\"message\":\"m\",\"cols\":3}");
	ck_assert(cJSON_Compare(pr, want, 1));
	ck_assert_str_eq(cJSON_GetObjectItem(task, "progress")->valuestring, "m");
	cJSON_Delete(want);
	cJSON_Delete(task);
}
END_TEST

TT_STORE_MAIN("merge_patch",
	merge_gives_every_result_of_rfc7396_appendix_a,
	merge_leaves_the_patch_unchanged_and_unshared,
	merge_into_nested_objects_keeps_untouched_keys,
	patch_merges_details_by_rfc7396,
	patch_cannot_touch_library_owned_details,
	patch_keeps_details_progress_an_object)
