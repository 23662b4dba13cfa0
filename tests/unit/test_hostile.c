/* Hostile input to the library (doc/reliability.md, "Limits" and "Hostile
 * callers"): the limits of tm_options, numbers a double cannot hold, the
 * immutability of a final task, many names, store file modes, and a
 * closed handle. */
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"

TT_STORE_FIXTURE

static void setup(void)
{
	tt_store_setup();
	tt_register(tm, "job", 0);
}

/* {"context_task":{"blob":"xxx...(bytes)"}} */
static char *blob_body(size_t bytes)
{
	char *b = malloc(bytes + 64);

	ck_assert_ptr_nonnull(b);
	strcpy(b, "{\"context_task\":{\"blob\":\"");
	memset(b + strlen(b), 'x', bytes);
	strcpy(b + 25 + bytes, "\"}}");
	return b;
}

/* An object of n keys "k0".."k<n-1>", each 0, wrapped as prefix...suffix. */
static char *keys_doc(const char *prefix, size_t n, const char *suffix)
{
	size_t cap = strlen(prefix) + strlen(suffix) + n * 16 + 8, len;
	char *b = malloc(cap);

	ck_assert_ptr_nonnull(b);
	len = (size_t)sprintf(b, "%s{", prefix);
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(b + len, "%s\"k%zu\":0", i ? "," : "", i);
	sprintf(b + len, "}%s", suffix);
	return b;
}

/* The refusal names the limit, and nothing was stored. */
static void assert_limit_message(const char *limit)
{
	ck_assert_msg(strstr(tm_last_error(), limit) != NULL,
	              "the message should name %s: %s", limit, tm_last_error());
}

/* ---- limits ------------------------------------------------------------------ */

START_TEST(a_context_over_max_details_bytes_is_refused_and_nothing_stored)
{
	char *body = blob_body(300 << 10), *out;

	ck_assert_refused(tm_trigger(tm, "job", body, 0, &out), TM_EWRONG_DATA, out);
	assert_limit_message("max_details_bytes");
	ck_assert_int_eq(tt_count(tm, "job"), 0);
	free(body);
	body = blob_body(200 << 10); /* under the default 256 KiB */
	ck_assert_ok(tm_trigger(tm, "job", body, 0, NULL));
	ck_assert_int_eq(tt_count(tm, "job"), 1);
	free(body);
}
END_TEST

START_TEST(a_64_mib_context_is_refused)
{
	char *body = blob_body(64u << 20), *out;

	ck_assert_refused(tm_trigger(tm, "job", body, 0, &out), TM_EWRONG_DATA, out);
	assert_limit_message("max_details_bytes");
	ck_assert_int_eq(tt_count(tm, "job"), 0);
	free(body);
}
END_TEST

START_TEST(patches_cannot_grow_a_task_past_its_limits)
{
	char id[21], patch[128 << 10];
	int accepted = 0, rc = TM_OK;

	tt_trigger(tm, "job", NULL, id);
	/* 40 patches of 100 KiB, each under a distinct key. */
	for (int i = 0; i < 40 && rc == TM_OK; i++) {
		int n = sprintf(patch, "{\"details\":{\"part%d\":\"", i);

		memset(patch + n, 'a' + i % 26, 100 << 10);
		strcpy(patch + n + (100 << 10), "\"}}");
		rc = tm_patch(tm, "job", id, patch, NULL);
		accepted += rc == TM_OK;
	}
	ck_assert_err(rc, TM_EWRONG_DATA);
	assert_limit_message("max_details_bytes");
	ck_assert_int_eq(accepted, 2); /* 200 KiB fit in 256 KiB, 300 do not */
	/* The refused patch left the task as it was. */
	tt_assert_patch_refused(tm, "job", id, patch, TM_EWRONG_DATA);
}
END_TEST

START_TEST(a_patch_over_max_keys_is_refused)
{
	char id[21];
	char *body = keys_doc("{\"details\":{\"many\":", 10001, "}}");

	tt_trigger(tm, "job", NULL, id);
	tt_assert_patch_refused(tm, "job", id, body, TM_EWRONG_DATA);
	ck_assert_err(tm_patch(tm, "job", id, body, NULL), TM_EWRONG_DATA);
	assert_limit_message("max_keys");
	free(body);
	body = keys_doc("{\"details\":{\"many\":", 9000, "}}");
	ck_assert_ok(tm_patch(tm, "job", id, body, NULL));
	free(body);
}
END_TEST

/* A store whose limits are the smallest allowed around max_task_bytes. */
static tm_manager *open_limited(const char *sub, uint64_t task, uint64_t details,
                                unsigned keys, uint64_t list)
{
	char path[4096];
	tm_options o;
	tm_manager *m = NULL;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	o = tt_options(path);
	o.max_task_bytes = task;
	o.max_details_bytes = details;
	o.max_keys = keys;
	o.max_list_bytes = list;
	ck_assert_ok(tm_open(&o, &m));
	tt_register(m, "job", 0);
	return m;
}

START_TEST(a_list_answer_over_max_list_bytes_is_refused)
{
	tm_manager *m = open_limited("small", 64 << 10, 32 << 10, 1000, 128 << 10);
	char *body = blob_body(30 << 10), *out;

	for (int i = 0; i < 8; i++)
		ck_assert_ok(tm_trigger(m, "job", body, 0, NULL));
	ck_assert_refused(tm_list_recent(m, "job", 1, 8, 0, &out), TM_EWRONG_DATA, out);
	assert_limit_message("max_list_bytes");
	/* Fewer per page fit; a page of one task always fits. */
	ck_assert_ok(tm_list_recent(m, "job", 1, 4, 0, &out));
	tm_free(out);
	ck_assert_ok(tm_list_recent(m, "job", 8, 1, 0, &out));
	tm_free(out);
	/* The public view has no details: all eight fit. */
	free(body);
	tm_close(m);
}
END_TEST

START_TEST(limits_are_options_checked_at_open)
{
	char path[4096];
	tm_options o;
	tm_manager *m = (tm_manager *)&o;

	snprintf(path, sizeof(path), "%s/bad", dir);
	o = tt_options(path);
	o.max_details_bytes = 2 << 20; /* above max_task_bytes (1 MiB) */
	ck_assert_err(tm_open(&o, &m), TM_EINVAL);
	ck_assert_ptr_null(m);
	o = tt_options(path);
	o.max_list_bytes = 1 << 20; /* less than twice max_task_bytes */
	ck_assert_err(tm_open(&o, &m), TM_EINVAL);
	o = tt_options(path);
	o.max_task_bytes = 8ull << 30;
	o.max_list_bytes = 16ull << 30;
	ck_assert_err(tm_open(&o, &m), TM_EINVAL);
	/* A version 1 caller gets the defaults of the limits. */
	o = tt_options(path);
	o.version = 1;
	ck_assert_ok(tm_open(&o, &m));
	tt_register(m, "job", 0);
	{
		char *body = blob_body(300 << 10), *out;

		ck_assert_refused(tm_trigger(m, "job", body, 0, &out), TM_EWRONG_DATA, out);
		free(body);
	}
	tm_close(m);
}
END_TEST

/* ---- a large merge ---------------------------------------------------------- */

START_TEST(a_merge_of_many_keys_is_linear)
{
	/* 200,000 keys into 200,000: 4e10 key comparisons with a linear
	 * search per key (minutes), well under a second by hash.  The test's
	 * time limit is what fails when merging is quadratic. */
	tm_manager *m = open_limited("wide", 64 << 20, 32 << 20, 1000000, 128 << 20);
	char *a = keys_doc("{\"details\":{\"w\":", 200000, "}}"), id[21];
	char *b = keys_doc("{\"details\":{\"w\":", 200000, "}}");
	cJSON *t;

	/* The second set differs: every value 1, keys the same. */
	for (char *p = b; (p = strstr(p, ":0")) != NULL; p++)
		p[1] = '1';
	tt_trigger(m, "job", NULL, id);
	ck_assert_ok(tm_patch(m, "job", id, a, NULL));
	ck_assert_ok(tm_patch(m, "job", id, b, NULL));
	t = tt_task(m, "job", id, 0);
	ck_assert_int_eq(cJSON_GetArraySize(tt_detail(t, "w")), 200000);
	ck_assert_int_eq(cJSON_GetObjectItem(tt_detail(t, "w"), "k199999")->valueint, 1);
	cJSON_Delete(t);
	free(a);
	free(b);
	tm_close(m);
}
END_TEST

/* ---- numbers ------------------------------------------------------------------ */

START_TEST(numbers_a_double_cannot_hold_are_refused)
{
	static const char *const refused[] = {
		"1e999999", "-1e999999", "1.8e308", "1e309", "12345678901234567890",
		"9007199254740993", "-9007199254740993", "1e-400", "0.1e-307",
	};
	static const char *const kept[] = {
		"9007199254740992", "-9007199254740992", "1.7e308", "1e-300", "0e-400",
		"0.000", "1.5e300", "0", "-0", "3.25", "123456789012345678901234567890.5",
	};
	char body[256], id[21], *out;

	tt_trigger(tm, "job", NULL, id);
	for (size_t i = 0; i < sizeof(refused) / sizeof(*refused); i++) {
		snprintf(body, sizeof(body), "{\"context_task\":{\"n\":%s}}", refused[i]);
		ck_assert_msg(tm_trigger(tm, "job", body, 0, NULL) == TM_EWRONG_DATA,
		              "%s was not refused", refused[i]);
		ck_assert_msg(strstr(tm_last_error(), "double") != NULL, "%s: %s",
		              refused[i], tm_last_error());
		snprintf(body, sizeof(body), "{\"details\":{\"n\":[%s]}}", refused[i]);
		tt_assert_patch_refused(tm, "job", id, body, TM_EWRONG_DATA);
	}
	ck_assert_int_eq(tt_count(tm, "job"), 1);
	for (size_t i = 0; i < sizeof(kept) / sizeof(*kept); i++) {
		snprintf(body, sizeof(body), "{\"context_task\":{\"n\":%s}}", kept[i]);
		ck_assert_msg(tm_trigger(tm, "job", body, 0, NULL) == TM_OK, "%s: %s",
		              kept[i], tm_last_error());
	}
	/* What is kept reads back as the same number. */
	tt_trigger(tm, "job", "{\"context_task\":{\"n\":9007199254740992}}", id);
	out = tt_get(tm, "job", id, 0);
	ck_assert_msg(strstr(out, "\"n\":9007199254740992") != NULL, "%s", out);
	tm_free(out);
}
END_TEST

/* ---- final tasks ------------------------------------------------------------- */

/* Each final status: what may and may not change. */
START_TEST(a_final_task_keeps_its_status_error_progress_and_times)
{
	static const char *const finals[] = { "FAILED", "CANCELLED", "COMPLETED" };
	static const char *const refused[] = {
		"{\"details\":{\"error\":\"fake\"}}",
		"{\"details\":{\"progress\":{\"message\":\"rewritten\"}}}",
		"{\"details\":{\"progress\":{\"rows\":1}}}",
		"{\"status\":\"RUNNING\"}",
		"{\"status\":\"CANCELLED_REQUESTED\"}",
	};
	char id[21], *out;

	for (size_t f = 0; f < 3; f++) {
		char same[160], *error;
		cJSON *t;

		tt_task_in(tm, "job", finals[f], id);
		if (f == 0) /* removing the error FAILED has */
			tt_assert_patch_refused(tm, "job", id, "{\"details\":{\"error\":null}}",
			                        TM_ELOWER_STATUS);
		for (size_t i = 0; i < sizeof(refused) / sizeof(*refused); i++)
			tt_assert_patch_refused(tm, "job", id, refused[i], TM_ELOWER_STATUS);
		/* Any other final status is refused too. */
		for (size_t g = 0; g < 3; g++) {
			snprintf(same, sizeof(same), "{\"status\":\"%s\"}", finals[g]);
			if (g != f)
				tt_assert_patch_refused(tm, "job", id, same, TM_ELOWER_STATUS);
		}
		/* The library's own keys are refused in any status. */
		tt_assert_patch_refused(tm, "job", id, "{\"details\":{\"end_time\":1}}",
		                        TM_EWRONG_DATA);
		tt_assert_patch_refused(tm, "job", id, "{\"details\":{\"attempts\":9}}",
		                        TM_EWRONG_DATA);
		/* Sending the final state again is not a change: accepted, so an
		 * external worker may resend its last patch. */
		t = tt_task(tm, "job", id, 0);
		error = tt_detail(t, "error") ? cJSON_PrintUnformatted(tt_detail(t, "error"))
		                              : NULL;
		snprintf(same, sizeof(same), "{\"status\":\"%s\"%s%s%s}", finals[f],
		         error ? ",\"details\":{\"error\":" : "", error ? error : "",
		         error ? "}" : "");
		cJSON_free(error);
		cJSON_Delete(t);
		ck_assert_msg(tm_patch(tm, "job", id, same, NULL) == TM_OK, "%s: %s",
		              same, tm_last_error());
		/* Keys of the user's own may still be merged. */
		ck_assert_ok(tm_patch(tm, "job", id, "{\"details\":{\"note\":\"seen\"}}", &out));
		ck_assert_ptr_nonnull(strstr(out, "\"note\":\"seen\""));
		ck_assert_ptr_nonnull(strstr(out, finals[f]));
		tm_free(out);
	}
}
END_TEST

START_TEST(a_patch_that_ends_a_task_sets_its_error_and_end_time_once)
{
	char id[21];
	cJSON *t;

	tt_task_in(tm, "job", "RUNNING", id);
	ck_assert_ok(tm_patch(tm, "job", id,
	             "{\"status\":\"FAILED\",\"details\":{\"error\":\"disk full\"}}", NULL));
	t = tt_task(tm, "job", id, 0);
	ck_assert_str_eq(tt_detail(t, "error")->valuestring, "disk full");
	ck_assert(cJSON_IsNumber(tt_detail(t, "end_time")));
	cJSON_Delete(t);
	tt_assert_patch_refused(tm, "job", id, "{\"details\":{\"error\":\"other\"}}",
	                        TM_ELOWER_STATUS);
}
END_TEST

/* ---- many names --------------------------------------------------------------- */

START_TEST(one_trigger_on_each_of_6000_names_with_workers)
{
	/* With a linear name lookup per queued task and a wake-up of the
	 * workers per trigger, this took minutes; the test's time limit is
	 * what fails then. */
	tm_manager *m;
	char path[4096], name[32];
	tm_job_def d = TM_JOB_DEF_INIT;

	snprintf(path, sizeof(path), "%s/names", dir);
	m = tt_open(path, 2);
	for (int i = 0; i < 6000; i++) {
		snprintf(name, sizeof(name), "name%d", i);
		d.name = name;
		ck_assert_ok(tm_register(m, &d));
	}
	for (int i = 0; i < 6000; i++) {
		snprintf(name, sizeof(name), "name%d", i);
		ck_assert_ok(tm_trigger(m, name, NULL, 0, NULL));
	}
	for (int i = 0; i < 6000; i += 997) {
		snprintf(name, sizeof(name), "name%d", i);
		ck_assert_int_eq(tt_count(m, name), 1);
	}
	tm_close(m);
}
END_TEST

/* ---- files and handles --------------------------------------------------------- */

static void assert_mode(const char *file, mode_t want)
{
	char path[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s%s%s", dir, file[0] ? "/" : "", file);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_msg((st.st_mode & 07777) == want, "%s is %04o, not %04o", path,
	              (unsigned)(st.st_mode & 07777), (unsigned)want);
}

START_TEST(store_files_are_private_to_their_owner)
{
	char sub[4096];

	/* A store directory the library creates itself. */
	snprintf(sub, sizeof(sub), "%s/new/store", dir);
	tm_close(tm);
	tm = tt_open(sub, 0);
	tt_register(tm, "job", 0);
	ck_assert_ok(tm_trigger(tm, "job", "{\"refresh_token\":\"t\"}", 0, NULL));
	free(dir);
	dir = strdup(sub);
	assert_mode("", 0700);
	assert_mode("data.mdb", 0600);
	assert_mode("lock.mdb", 0600);
	assert_mode("keys", 0600);
	assert_mode("wake", 0600);
	*strrchr(dir, '/') = '\0';
	assert_mode("", 0700); /* the directory made above it too */
	*strrchr(dir, '/') = '\0'; /* back to the test's own, for the teardown */
}
END_TEST

START_TEST(calls_on_a_closed_handle_are_refused)
{
	tm_manager *m;
	char path[4096], *out;
	tm_job_def d = TM_JOB_DEF_INIT;

	snprintf(path, sizeof(path), "%s/closed", dir);
	m = tt_open(path, 1);
	tt_register(m, "job", 0);
	tm_close(m);
	tm_close(m); /* a second close does nothing */
	d.name = "other";
	ck_assert_err(tm_register(m, &d), TM_EINVAL);
	ck_assert_ptr_nonnull(strstr(tm_last_error(), "closed"));
	ck_assert_refused(tm_trigger(m, "job", NULL, 0, &out), TM_EINVAL, out);
	ck_assert_refused(tm_list_recent(m, "job", 1, 1, 0, &out), TM_EINVAL, out);
	ck_assert_refused(tm_get(m, "job", "aaaaaaaaaaaaaaaaaaaa", 0, &out), TM_EINVAL, out);
	ck_assert_refused(tm_patch(m, "job", "aaaaaaaaaaaaaaaaaaaa", "{}", &out),
	                  TM_EINVAL, out);
	ck_assert_refused(tm_cancel(m, "job", "aaaaaaaaaaaaaaaaaaaa", &out), TM_EINVAL, out);
	ck_assert_refused(tm_stats(m, &out), TM_EINVAL, out);
	ck_assert_refused(tm_check(m, &out), TM_EINVAL, out);
	ck_assert_err(tm_notify(m, "job", 1), TM_EINVAL);
	/* The store itself is fine: it opens again. */
	m = tt_open(path, 0);
	tm_close(m);
}
END_TEST

TT_MAIN_FIXTURE("hostile", setup, tt_store_teardown,
	a_context_over_max_details_bytes_is_refused_and_nothing_stored,
	a_64_mib_context_is_refused,
	patches_cannot_grow_a_task_past_its_limits,
	a_patch_over_max_keys_is_refused,
	a_list_answer_over_max_list_bytes_is_refused,
	limits_are_options_checked_at_open,
	a_merge_of_many_keys_is_linear,
	numbers_a_double_cannot_hold_are_refused,
	a_final_task_keeps_its_status_error_progress_and_times,
	a_patch_that_ends_a_task_sets_its_error_and_end_time_once,
	one_trigger_on_each_of_6000_names_with_workers,
	tt_lmdb_only(store_files_are_private_to_their_owner, "LMDB's files"),
	calls_on_a_closed_handle_are_refused)
