/* Secrets (doc/contract.md, "Secrets are never returned"; doc/design.md,
 * "Secrets that can be erased"): the trigger's refresh_token is handed to
 * the handler (on every attempt), never shown by any call, and erased from
 * the store when the task reaches a final status (tm_check reports a final
 * task that still has one). */
#include <string.h>

#include "rt.h"

static struct {
	atomic_int runs;
	char secret[4][64];  /* per run; "(null)" when none */
} h;

static void record(tm_job *job)
{
	int k = atomic_load(&h.runs);
	const char *s = tm_job_secret(job);

	if (k < 4)
		snprintf(h.secret[k], sizeof(h.secret[k]), "%s", s ? s : "(null)");
	atomic_fetch_add(&h.runs, 1);
}

static tm_status complete(tm_job *job, void *user)
{
	(void)user;
	record(job);
	return TM_COMPLETED;
}

static tm_status fail_first(tm_job *job, void *user)
{
	(void)user;
	record(job);
	return tm_job_attempt(job) == 1 ? TM_FAILED : TM_COMPLETED;
}

/* A store with one worker whose "job" runs `run`, with max_attempts. */
static tm_manager *start(char **dir, tm_status (*run)(tm_job *, void *),
                         unsigned max_attempts)
{
	tm_manager *tm = rt_open_tmp(dir, 1);
	tm_job_def d = rt_def("job", run, NULL);

	memset(&h, 0, sizeof(h));
	d.max_attempts = max_attempts;
	d.retry_backoff_s = 0.02;
	ck_assert_ok(tm_register(tm, &d));
	return tm;
}

/* Trigger a task of "job" with body and wait until it completed. */
static void run_one(tm_manager *tm, const char *body, char id[21])
{
	tt_trigger(tm, "job", body, id);
	rt_await_status(tm, "job", id, "COMPLETED");
}

/* The handler ran twice and was given `first`, then `second`; the task id
 * that had `secret` shows it in no answer, and no final task still holds
 * a secret. */
static void assert_given(tm_manager *tm, const char *id, const char *secret,
                         const char *first, const char *second)
{
	char *text = tt_get(tm, "job", id, 0), *list = NULL;

	ck_assert_int_eq(atomic_load(&h.runs), 2);
	ck_assert_str_eq(h.secret[0], first);
	ck_assert_str_eq(h.secret[1], second);
	ck_assert_msg(strstr(text, secret) == NULL, "tm_get shows the secret: %s", text);
	tm_free(text);
	ck_assert_ok(tm_list_recent(tm, "job", 1, 64, 0, &list));
	ck_assert_msg(strstr(list, secret) == NULL, "tm_list_recent shows the secret");
	tm_free(list);
	tt_assert_check(tm, -1);
}

START_TEST(secret_is_given_to_the_handler_and_erased_at_final)
{
	char *dir, with[21], without[21];
	tm_manager *tm = start(&dir, complete, 1);

	run_one(tm, "{\"refresh_token\": \"tok-s3cr3t\"}", with);
	run_one(tm, NULL, without);
	assert_given(tm, with, "tok-s3cr3t", "tok-s3cr3t", "(null)");
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(retried_attempt_still_gets_the_secret)
{
	char *dir, id[21];
	tm_manager *tm = start(&dir, fail_first, 2);

	run_one(tm, "{\"refresh_token\": \"tok-again\"}", id);
	assert_given(tm, id, "tok-again", "tok-again", "tok-again");
	tt_close_tmp(tm, dir);
}
END_TEST

/* Every way to a final status: handler answers, tm_patch, tm_cancel of a
 * waiting task, a timeout. */
START_TEST(secret_is_erased_at_every_final_status)
{
	static tm_status failed = TM_FAILED, cancelled = TM_CANCELLED;
	static const char *patches[] = {
		"{\"completed\": true}", "{\"failed\": true}", "{\"status\": \"CANCELLED\"}",
	};
	char *dir, id[21], ids[3][21], waiting[21], late[21];
	tm_manager *tm = rt_open_tmp(&dir, 2);
	tm_job_def defs[] = {
		rt_def("fails", rt_answer, &failed), rt_def("cancels", rt_answer, &cancelled),
		rt_def("ext", NULL, NULL), rt_def("slow", NULL, NULL),
	};
	const char *body = "{\"refresh_token\": \"tok\"}";

	defs[3].timeout_s = 0.2;
	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++)
		ck_assert_ok(tm_register(tm, &defs[i]));
	tt_trigger(tm, "fails", body, id);
	rt_await_status(tm, "fails", id, "FAILED");
	tt_trigger(tm, "cancels", body, id);
	rt_await_status(tm, "cancels", id, "CANCELLED");
	for (int i = 0; i < 3; i++) {
		tt_trigger(tm, "ext", body, ids[i]);
		ck_assert_ok(tm_patch(tm, "ext", ids[i], "{\"status\": \"RUNNING\"}", NULL));
		ck_assert_ok(tm_patch(tm, "ext", ids[i], patches[i], NULL));
	}
	tt_trigger(tm, "ext", body, waiting);
	ck_assert_ok(tm_cancel(tm, "ext", waiting, NULL));
	tt_trigger(tm, "slow", body, late);
	rt_await_status(tm, "slow", late, "FAILED");
	/* An active task keeps its secret: that is no problem either. */
	tt_trigger(tm, "ext", body, id);
	tt_assert_check(tm, -1);
	tt_close_tmp(tm, dir);
}
END_TEST

/* LMDB never overwrites a freed page, so a token deleted from it would
 * linger in data.mdb: tokens are stored encrypted under per-task keys in
 * the store's `keys` file, and the key of a final task is zeroed.  The
 * file's bytes go to *buf (malloc'd) when buf is not NULL. */
static long nonzero_bytes(const char *dir, const char *file, const char *needle,
                          char **buf_out, long *size_out)
{
	char path[512], *buf;
	long nonzero = 0, size;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	buf = malloc((size_t)size + 1);
	ck_assert_int_eq((long)fread(buf, 1, (size_t)size, f), size);
	fclose(f);
	for (long i = 0; i < size; i++)
		nonzero += buf[i] != 0;
	ck_assert_msg(memmem(buf, (size_t)size, needle, strlen(needle)) == NULL,
	              "%s holds the token in plain text", file);
	if (buf_out) {
		*buf_out = buf;
		*size_out = size;
	} else {
		free(buf);
	}
	return nonzero;
}

/* Whether the 32-byte key slot at i of buf is all zeros. */
static int zero_slot(const char *buf, long i)
{
	for (long k = 0; k < 32; k++)
		if (buf[i * 32 + k])
			return 0;
	return 1;
}

START_TEST(token_is_never_stored_in_plain_text_and_its_key_is_zeroed_at_final)
{
	char *dir, id[21], *before, *after;
	long nb, na, zeroed = 0;
	tm_manager *tm = tt_open_with_task(&dir, "ext", 0,
	                                   "{\"refresh_token\": \"PLAINTEXT-TOKEN-42\"}", id);

	tm_close(tm);
	ck_assert_int_eq(nonzero_bytes(dir, "data.mdb", "PLAINTEXT-TOKEN-42", NULL, NULL) > 0, 1);
	ck_assert_msg(nonzero_bytes(dir, "keys", "PLAINTEXT-TOKEN-42", &before, &nb) > 0,
	              "an active task's key must be on disk");
	tm = tt_open(dir, 0);
	tt_register(tm, "ext", 0);
	ck_assert_ok(tm_patch(tm, "ext", id, "{\"completed\": true}", NULL));
	tm_close(tm); /* a closing manager zeroes the keys of final tasks */
	nonzero_bytes(dir, "keys", "PLAINTEXT-TOKEN-42", &after, &na);
	/* Exactly one key went to zeros: the task's.  The others were made
	 * ahead for the next secrets, and no key appeared. */
	ck_assert_int_eq(na, nb);
	for (long i = 0; i < nb / 32; i++) {
		ck_assert_msg(!zero_slot(before, i) || zero_slot(after, i), "slot %ld appeared", i);
		if (!zero_slot(before, i) && zero_slot(after, i))
			zeroed++;
		else
			ck_assert_msg(memcmp(before + i * 32, after + i * 32, 32) == 0,
			              "slot %ld changed", i);
	}
	ck_assert_int_eq(zeroed, 1);
	nonzero_bytes(dir, "data.mdb", "PLAINTEXT-TOKEN-42", NULL, NULL);
	free(before);
	free(after);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

TT_MAIN("runtime_secret",
	secret_is_given_to_the_handler_and_erased_at_final,
	retried_attempt_still_gets_the_secret,
	secret_is_erased_at_every_final_status,
	tt_lmdb_only(token_is_never_stored_in_plain_text_and_its_key_is_zeroed_at_final,
	             "reads the bytes of LMDB's data.mdb and the store's keys file"))
