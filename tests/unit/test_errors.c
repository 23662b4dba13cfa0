/* Error names, classes and codes (doc/contract.md, "Errors"), the
 * per-thread message; tm_version. */
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include "common.h"

static const struct {
	int err;
	int value;
	const char *name;
	const char *cls;
} table[] = {
	{ TM_EWRONG_DATA, -1, "WRONG_DATA_TYPE", "WrongData" },
	{ TM_ELOWER_STATUS, -2, "LOWER_STATUS_NOT_ALLOWED", "WrongData" },
	{ TM_EALREADY_RUNNING, -3, "TASK_ALREADY_RUNNING", "DuplicatedError" },
	{ TM_ETASK_NOT_FOUND, -4, "TASK_NOT_FOUND", "NotFoundError" },
	{ TM_ETABLE_NOT_FOUND, -5, "TABLE_NOT_FOUND", "NotFoundError" },
	{ TM_ERESOURCE_NOT_FOUND, -6, "RESOURCE_NOT_FOUND", "NotFoundError" },
	{ TM_ESTORAGE, -7, "STORAGE_ERROR", "ServerError" },
	{ TM_ENOMEM, -8, "OUT_OF_MEMORY", "ServerError" },
	{ TM_EINVAL, -9, "INVALID_ARGUMENT", "ServerError" },
};

#define N_TABLE (sizeof(table) / sizeof(table[0]))

START_TEST(every_error_has_its_name_and_class)
{
	for (size_t i = 0; i < N_TABLE; i++) {
		ck_assert_str_eq(tm_error_name(table[i].err), table[i].name);
		ck_assert_str_eq(tm_error_class(table[i].err), table[i].cls);
	}
}
END_TEST

START_TEST(error_codes_keep_their_values)
{
	ck_assert_int_eq(TM_OK, 0);
	for (size_t i = 0; i < N_TABLE; i++)
		ck_assert_int_eq(table[i].err, table[i].value);
}
END_TEST

START_TEST(ok_is_named_ok_with_no_class)
{
	ck_assert_str_eq(tm_error_name(TM_OK), "OK");
	ck_assert_str_eq(tm_error_class(TM_OK), "");
}
END_TEST

START_TEST(unknown_codes_are_unknown_server_errors)
{
	static const int unknown[] = { -10, -100, 1, 7, 42, INT_MIN, INT_MAX };

	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		ck_assert_str_eq(tm_error_name(unknown[i]), "UNKNOWN_ERROR");
		ck_assert_ptr_nonnull(tm_error_class(unknown[i]));
		ck_assert_str_eq(tm_error_class(unknown[i]), "ServerError");
	}
}
END_TEST

START_TEST(errorf_sets_the_message_and_returns_the_code)
{
	ck_assert_int_eq(tm_errorf(TM_ETABLE_NOT_FOUND, "table %s has %d rows",
	                           "in.csv", 0), TM_ETABLE_NOT_FOUND);
	ck_assert_str_eq(tm_last_error(), "table in.csv has 0 rows");
	ck_assert_int_eq(tm_errorf(TM_EWRONG_DATA, "second"), TM_EWRONG_DATA);
	ck_assert_str_eq(tm_last_error(), "second");
}
END_TEST

START_TEST(errorf_truncates_a_long_message)
{
	static char big[10000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(tm_errorf(TM_ESTORAGE, "%s", big), TM_ESTORAGE);
	ck_assert_uint_gt(strlen(tm_last_error()), 0);
	ck_assert_uint_lt(strlen(tm_last_error()), sizeof(big) - 1);
	ck_assert_int_eq(strncmp(tm_last_error(), big, strlen(tm_last_error())), 0);
}
END_TEST

struct thread_arg {
	pthread_barrier_t *set, *checked;
	char initial[64];
	char seen[64];
};

static void *other_thread(void *p)
{
	struct thread_arg *a = p;

	snprintf(a->initial, sizeof(a->initial), "%s", tm_last_error());
	tm_errorf(TM_ETASK_NOT_FOUND, "message of the other thread");
	pthread_barrier_wait(a->set);     /* both threads have set a message */
	pthread_barrier_wait(a->checked); /* the main thread read its own */
	snprintf(a->seen, sizeof(a->seen), "%s", tm_last_error());
	return NULL;
}

START_TEST(last_error_is_per_thread)
{
	pthread_barrier_t set, checked;
	struct thread_arg a = { &set, &checked, "", "" };
	pthread_t th;

	pthread_barrier_init(&set, NULL, 2);
	pthread_barrier_init(&checked, NULL, 2);
	tm_errorf(TM_EWRONG_DATA, "message of the main thread");
	ck_assert_int_eq(pthread_create(&th, NULL, other_thread, &a), 0);
	pthread_barrier_wait(&set);
	ck_assert_str_eq(tm_last_error(), "message of the main thread");
	tm_errorf(TM_EWRONG_DATA, "main again");
	pthread_barrier_wait(&checked);
	pthread_join(th, NULL);
	/* A new thread starts with no message, and neither thread's leaked. */
	ck_assert_str_eq(a.initial, "");
	ck_assert_str_eq(a.seen, "message of the other thread");
	ck_assert_str_eq(tm_last_error(), "main again");
	pthread_barrier_destroy(&set);
	pthread_barrier_destroy(&checked);
}
END_TEST

struct failing_call {
	tm_manager *tm;
	int rc;
	char message[512];
};

/* A call that fails in another thread, leaving its own message there. */
static void *failing_call(void *p)
{
	struct failing_call *f = p;

	f->rc = tm_get(f->tm, "job", "short", 0, NULL);
	snprintf(f->message, sizeof(f->message), "%s", tm_last_error());
	return NULL;
}

START_TEST(a_failing_call_in_another_thread_leaves_this_message)
{
	char *dir;
	tm_manager *tm = tt_open_tmp(&dir, 0);
	struct failing_call other = { tm, TM_OK, "" };
	pthread_t th;
	char mine[512];

	tt_register(tm, "job", 0);
	ck_assert_err(tm_get(tm, "job", "AAAAAAAAAAAAAAAAAAAA", 0, NULL),
	              TM_ETASK_NOT_FOUND);
	snprintf(mine, sizeof(mine), "%s", tm_last_error());
	ck_assert_uint_gt(strlen(mine), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, failing_call, &other), 0);
	pthread_join(th, NULL);
	/* The other thread's call failed, with a message of its own ... */
	ck_assert_int_eq(other.rc, TM_EWRONG_DATA);
	ck_assert_uint_gt(strlen(other.message), 0);
	ck_assert_str_ne(other.message, mine);
	/* ... which is not this thread's. */
	ck_assert_str_eq(tm_last_error(), mine);
	tt_close_tmp(tm, dir);
}
END_TEST

enum { WRITES = 2000 };

struct writer {
	tm_manager *tm;
	const char *id;
	const char *body;
	pthread_barrier_t *go;
	int ok, failed, leaked;
	char leak[512];
};

/* Patch one task WRITES times; count outcomes, and every message after a
 * success that carries another thread's failure. */
static void *writer(void *p)
{
	struct writer *w = p;

	pthread_barrier_wait(w->go);
	for (int i = 0; i < WRITES; i++) {
		int rc = tm_patch(w->tm, "job", w->id, w->body, NULL);

		if (rc == TM_OK) {
			w->ok++;
			if (strstr(tm_last_error(), "cannot follow") && w->leaked++ == 0)
				snprintf(w->leak, sizeof(w->leak), "%s", tm_last_error());
		} else {
			w->failed++;
			if (!strstr(tm_last_error(), "cannot follow") && w->leaked++ == 0)
				snprintf(w->leak, sizeof(w->leak), "own failure said: %s",
				         tm_last_error());
		}
	}
	return NULL;
}

START_TEST(write_failures_of_other_threads_do_not_leak_into_this_thread)
{
	char *dir, done[21], open_id[21];
	tm_manager *tm = tt_open_tmp(&dir, 0);
	pthread_barrier_t go;
	struct writer good, bad;
	pthread_t tg, tb;

	tt_register_with_task(tm, "job", 0, NULL, done);
	ck_assert_ok(tm_patch(tm, "job", done, "{\"completed\":true}", NULL));
	tt_trigger(tm, "job", NULL, open_id);
	pthread_barrier_init(&go, NULL, 2);
	/* One thread's patches all succeed; the other's all fail in the store
	 * (a lower status), so the two share write transactions. */
	good = (struct writer){ tm, open_id, "{\"details\":{\"n\":1}}", &go, 0, 0, 0, "" };
	bad = (struct writer){ tm, done, "{\"status\":\"RUNNING\"}", &go, 0, 0, 0, "" };
	ck_assert_int_eq(pthread_create(&tg, NULL, writer, &good), 0);
	ck_assert_int_eq(pthread_create(&tb, NULL, writer, &bad), 0);
	pthread_join(tg, NULL);
	pthread_join(tb, NULL);
	pthread_barrier_destroy(&go);
	ck_assert_int_eq(good.ok, WRITES);
	ck_assert_int_eq(bad.failed, WRITES);
	ck_assert_msg(good.leaked == 0, "%d successful calls left another thread's "
	              "message, e.g. \"%s\"", good.leaked, good.leak);
	ck_assert_msg(bad.leaked == 0, "%d failed calls had a wrong message: %s",
	              bad.leaked, bad.leak);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(version_is_the_header_version)
{
	char want[32];

	ck_assert_ptr_nonnull(tm_version());
	ck_assert_str_eq(tm_version(), TM_VERSION_STRING);
	snprintf(want, sizeof(want), "%d.%d.%d", TM_VERSION_MAJOR,
	         TM_VERSION_MINOR, TM_VERSION_PATCH);
	ck_assert_str_eq(tm_version(), want);
}
END_TEST

TT_MAIN("errors",
	every_error_has_its_name_and_class,
	error_codes_keep_their_values,
	ok_is_named_ok_with_no_class,
	unknown_codes_are_unknown_server_errors,
	errorf_sets_the_message_and_returns_the_code,
	errorf_truncates_a_long_message,
	last_error_is_per_thread,
	a_failing_call_in_another_thread_leaves_this_message,
	write_failures_of_other_threads_do_not_leak_into_this_thread,
	version_is_the_header_version)
