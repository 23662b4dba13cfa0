/* tm_options_init, tm_open and tm_close (doc/api.md, "Lifecycle"), and
 * every call on a NULL manager.  Each test has a fresh directory, `dir`. */
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

#define MIB (1024ull * 1024ull)

static tm_manager *const not_null = (tm_manager *)&not_null;

/* tm_open must fail with code, leave a message and set *out to NULL. */
static void assert_open_fails(const tm_options *o, int code)
{
	tm_manager *tm = not_null;
	int rc;

	tt_clear_error();
	rc = tm_open(o, &tm);
	ck_assert_msg(rc == code, "tm_open gave %s (%s), expected %s",
	              tm_error_name(rc), tm_last_error(), tm_error_name(code));
	ck_assert_uint_gt(strlen(tm_last_error()), 0);
	ck_assert_ptr_null(tm);
}

/* tm_open refuses, with TM_EINVAL, the options of `dir` with each of the
 * values in `field`. */
#define ASSERT_EACH_INVALID(field, values) \
	for (size_t i_ = 0; i_ < sizeof(values) / sizeof((values)[0]); i_++) { \
		tm_options o_ = tt_options(dir); \
		o_.field = (values)[i_]; \
		assert_open_fails(&o_, TM_EINVAL); \
	}

static char *dir;

static void setup(void)
{
	dir = tt_tmpdir();
}

static void teardown(void)
{
	tt_rmdir(dir);
	free(dir);
}

START_TEST(options_init_fills_the_defaults)
{
	tm_options o;

	memset(&o, 0xa5, sizeof(o));
	ck_assert_ok(tm_options_init(&o, TM_OPTIONS_VERSION));
	ck_assert_uint_eq(o.version, TM_OPTIONS_VERSION);
	ck_assert_ptr_null(o.path);
	ck_assert_uint_eq(o.workers, 2);
	ck_assert_uint_eq(o.flags, 0);
	ck_assert_uint_eq(o.map_size, 64 * MIB);
	ck_assert_uint_eq(o.map_size_max, 4096 * MIB);
	ck_assert_uint_eq(o.poll_ms, 250);
	ck_assert_uint_eq(o.lease_ms, 30000);
	ck_assert_uint_eq(o.grace_ms, 10000);
	ck_assert_uint_eq(o.progress_ms, 200);
	ck_assert_uint_eq(o.keep_count, 1000);
	ck_assert_double_eq(o.keep_age_s, 30 * 86400.0);
	/* No options to fill: refused, with a message. */
	tt_clear_error();
	ck_assert_err(tm_options_init(NULL, TM_OPTIONS_VERSION), TM_EINVAL);
	ck_assert_uint_gt(strlen(tm_last_error()), 0);
}
END_TEST

START_TEST(open_with_workers_zero_stores_and_serves)
{
	char id[21];
	tm_manager *tm = tt_open(dir, 0);

	ck_assert_ptr_nonnull(tm);
	tt_register_with_task(tm, "job", 0, NULL, id);
	ck_assert_str_eq(tt_status(tm, "job", id, (char[32]){ 0 }), "REQUEST_SENT");
	tm_close(tm);
}
END_TEST

START_TEST(null_options_or_out_is_invalid)
{
	tm_options o = tt_options(dir);

	assert_open_fails(NULL, TM_EINVAL);
	tt_clear_error();
	ck_assert_err(tm_open(&o, NULL), TM_EINVAL);
	ck_assert_uint_gt(strlen(tm_last_error()), 0);
	ck_assert_err(tm_open(NULL, NULL), TM_EINVAL);
}
END_TEST

START_TEST(missing_path_is_invalid)
{
	static const char *const paths[] = { NULL, "" };

	ASSERT_EACH_INVALID(path, paths);
}
END_TEST

/* A build with the PostgreSQL store tries the server (nothing listens on
 * port 1): a storage error.  A build without it refuses the URI. */
START_TEST(postgresql_uri_without_a_server_or_its_store_is_refused)
{
	static const char *const uris[] = {
		"postgresql://tm@127.0.0.1:1/tasks", "postgres://127.0.0.1:1/db",
	};
	const char *have = getenv("TM_TEST_HAVE_PG");
	int want = have && strcmp(have, "1") == 0 ? TM_ESTORAGE : TM_EINVAL;
	struct stat st;

	for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
		tm_options o = tt_options(dir);

		o.path = uris[i];
		assert_open_fails(&o, want);
		ck_assert_ptr_nonnull(strstr(tm_last_error(), "PostgreSQL"));
	}
	/* No directory named after the URI's scheme was made. */
	ck_assert_int_ne(stat("postgresql:", &st), 0);
	ck_assert_int_ne(stat("postgres:", &st), 0);
}
END_TEST

START_TEST(unknown_options_version_is_invalid)
{
	static const unsigned versions[] = { 0, TM_OPTIONS_VERSION + 1, ~0u };

	ASSERT_EACH_INVALID(version, versions);
}
END_TEST

START_TEST(unknown_open_flags_are_invalid)
{
	static const unsigned flags[] = { 0x2, 0x100, 0x80000000u, TM_OPEN_NOSYNC | 0x4 };

	ASSERT_EACH_INVALID(flags, flags);
}
END_TEST

START_TEST(map_size_above_its_cap_is_invalid)
{
	tm_options o = tt_options(dir);
	tm_manager *tm = NULL;

	o.map_size = 8 * MIB;
	o.map_size_max = 4 * MIB;
	assert_open_fails(&o, TM_EINVAL);
	/* A default map_size (64 MiB) above a small explicit cap too. */
	o = tt_options(dir);
	o.map_size_max = 4 * MIB;
	assert_open_fails(&o, TM_EINVAL);
	/* Equal is fine. */
	o.map_size = 4 * MIB;
	ck_assert_ok(tm_open(&o, &tm));
	tm_close(tm);
}
END_TEST

START_TEST(bad_retention_age_is_invalid)
{
	static const double ages[] = { -1.0, -INFINITY, INFINITY, NAN };

	ASSERT_EACH_INVALID(keep_age_s, ages);
}
END_TEST

START_TEST(same_path_twice_in_one_process_is_invalid_until_closed)
{
	char id[21], alias[4096];
	tm_options o = tt_options(dir), other;
	tm_manager *tm = NULL, *again = NULL;

	ck_assert_ok(tm_open(&o, &tm));
	tt_register_with_task(tm, "job", 0, NULL, id);
	assert_open_fails(&o, TM_EINVAL);
	/* Another spelling of the same directory. */
	snprintf(alias, sizeof(alias), "%s/./", dir);
	other = tt_options(alias);
	assert_open_fails(&other, TM_EINVAL);
	/* The first manager still works. */
	ck_assert_str_eq(tt_status(tm, "job", id, (char[32]){ 0 }), "REQUEST_SENT");
	tm_close(tm);
	ck_assert_ok(tm_open(&o, &again));
	tt_register(again, "job", 0);
	ck_assert_str_eq(tt_status(again, "job", id, (char[32]){ 0 }), "REQUEST_SENT");
	tm_close(again);
}
END_TEST

START_TEST(path_that_is_a_file_is_a_storage_error)
{
	char file[4096], below[4096];
	tm_options o, under;
	int fd;

	snprintf(file, sizeof(file), "%s/plain", dir);
	snprintf(below, sizeof(below), "%s/plain/sub", dir);
	o = tt_options(file);
	under = tt_options(below);
	fd = open(file, O_CREAT | O_WRONLY, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "x", 1), 1);
	close(fd);
	assert_open_fails(&o, TM_ESTORAGE);
	assert_open_fails(&under, TM_ESTORAGE);
}
END_TEST

START_TEST(directory_of_garbage_is_a_storage_error)
{
	char file[4096], junk[16384];
	tm_options o = tt_options(dir);
	int fd;

	memset(junk, 'J', sizeof(junk));
	snprintf(file, sizeof(file), "%s/data.mdb", dir);
	fd = open(file, O_CREAT | O_WRONLY, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, junk, sizeof(junk)), (int)sizeof(junk));
	close(fd);
	assert_open_fails(&o, TM_ESTORAGE);
	/* Refusing it did not hold the path: a second try says the same. */
	assert_open_fails(&o, TM_ESTORAGE);
}
END_TEST

START_TEST(missing_directories_are_created)
{
	char path[4096];
	tm_options o;
	tm_manager *tm = NULL;
	struct stat st;

	snprintf(path, sizeof(path), "%s/a/b/c/store", dir);
	o = tt_options(path);
	ck_assert_ok(tm_open(&o, &tm));
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	tt_register(tm, "job", 0);
	ck_assert_ok(tm_trigger(tm, "job", NULL, 0, NULL));
	tm_close(tm);
}
END_TEST

/* A call on a NULL manager is TM_EINVAL with a message. */
#define ASSERT_NULL_CALL(call) do { \
	tt_clear_error(); \
	ck_assert_err(call, TM_EINVAL); \
	ck_assert_uint_gt(strlen(tm_last_error()), 0); \
} while (0)

/* ... and one with an output leaves it NULL. */
#define ASSERT_NULL_CALL_OUT(call) do { \
	tt_clear_error(); \
	ck_assert_refused(call, TM_EINVAL, out); \
	ck_assert_uint_gt(strlen(tm_last_error()), 0); \
} while (0)

START_TEST(every_call_on_a_null_manager_is_invalid)
{
	const char *id = "AAAAAAAAAAAAAAAAAAAA";
	tm_job_def d = TM_JOB_DEF_INIT;
	char *out;

	d.name = "job";
	ASSERT_NULL_CALL(tm_register(NULL, &d));
	ASSERT_NULL_CALL(tm_notify(NULL, "job", 1));
	ASSERT_NULL_CALL(tm_trigger(NULL, "job", NULL, 0, NULL));
	ASSERT_NULL_CALL_OUT(tm_trigger(NULL, "job", NULL, 0, &out));
	ASSERT_NULL_CALL_OUT(tm_list_recent(NULL, "job", 1, 10, 0, &out));
	ASSERT_NULL_CALL_OUT(tm_get(NULL, "job", id, 0, &out));
	ASSERT_NULL_CALL_OUT(tm_patch(NULL, "job", id, "{}", &out));
	ASSERT_NULL_CALL_OUT(tm_cancel(NULL, "job", id, &out));
	ASSERT_NULL_CALL_OUT(tm_stats(NULL, &out));
	ASSERT_NULL_CALL_OUT(tm_check(NULL, &out));
}
END_TEST

START_TEST(close_and_free_of_null_are_no_ops)
{
	char id[21];
	tm_manager *tm = tt_open(dir, 0);

	tt_register_with_task(tm, "job", 0, NULL, id);
	tm_errorf(TM_EWRONG_DATA, "%s", "before");
	tm_close(NULL);
	tm_free(NULL);
	/* Nothing changed: not this thread's message, not an open manager. */
	ck_assert_str_eq(tm_last_error(), "before");
	ck_assert_str_eq(tt_status(tm, "job", id, (char[32]){ 0 }), "REQUEST_SENT");
	tm_close(tm);
}
END_TEST

TT_MAIN_FIXTURE("open", setup, teardown,
	options_init_fills_the_defaults,
	open_with_workers_zero_stores_and_serves,
	null_options_or_out_is_invalid,
	missing_path_is_invalid,
	postgresql_uri_without_a_server_or_its_store_is_refused,
	unknown_options_version_is_invalid,
	unknown_open_flags_are_invalid,
	map_size_above_its_cap_is_invalid,
	bad_retention_age_is_invalid,
	same_path_twice_in_one_process_is_invalid_until_closed,
	tt_lmdb_only(path_that_is_a_file_is_a_storage_error,
	             "an LMDB store is a directory; a file in its way is a file-system error"),
	tt_lmdb_only(directory_of_garbage_is_a_storage_error,
	             "writes a garbage data.mdb, LMDB's data file"),
	tt_lmdb_only(missing_directories_are_created,
	             "an LMDB store makes its directory; a PostgreSQL store makes none"),
	every_call_on_a_null_manager_is_invalid,
	close_and_free_of_null_are_no_ops)
