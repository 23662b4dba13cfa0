/* SPEC section 5, tm_options_init / tm_open / tm_close, and every call on a
 * NULL manager. */
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

static void options(tm_options *o, const char *path)
{
	tm_options_init(o, TM_OPTIONS_VERSION);
	o->path = path;
	o->workers = 0;
	o->flags = TM_OPEN_NOSYNC;
}

START_TEST(options_init_fills_the_defaults)
{
	tm_options o;

	memset(&o, 0xa5, sizeof(o));
	tm_options_init(&o, TM_OPTIONS_VERSION);
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
	tm_options_init(NULL, TM_OPTIONS_VERSION); /* a no-op, not a crash */
}
END_TEST

START_TEST(open_with_workers_zero_stores_and_serves)
{
	char *dir = tt_tmpdir(), id[21];
	tm_manager *tm = tt_open(dir, 0);

	ck_assert_ptr_nonnull(tm);
	tt_register(tm, "job", 0);
	tt_trigger(tm, "job", NULL, id);
	ck_assert_str_eq(tt_status(tm, "job", id, (char[32]){ 0 }), "REQUEST_SENT");
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(null_options_or_out_is_invalid)
{
	char *dir = tt_tmpdir();
	tm_options o;

	options(&o, dir);
	assert_open_fails(NULL, TM_EINVAL);
	tt_clear_error();
	ck_assert_err(tm_open(&o, NULL), TM_EINVAL);
	ck_assert_uint_gt(strlen(tm_last_error()), 0);
	ck_assert_err(tm_open(NULL, NULL), TM_EINVAL);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(missing_path_is_invalid)
{
	tm_options o;

	options(&o, NULL);
	assert_open_fails(&o, TM_EINVAL);
	options(&o, "");
	assert_open_fails(&o, TM_EINVAL);
}
END_TEST

START_TEST(unknown_options_version_is_invalid)
{
	static const unsigned versions[] = { 0, TM_OPTIONS_VERSION + 1, ~0u };
	char *dir = tt_tmpdir();
	tm_options o;

	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		options(&o, dir);
		o.version = versions[i];
		assert_open_fails(&o, TM_EINVAL);
	}
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(unknown_open_flags_are_invalid)
{
	static const unsigned flags[] = { 0x2, 0x100, 0x80000000u, TM_OPEN_NOSYNC | 0x4 };
	char *dir = tt_tmpdir();
	tm_options o;

	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		options(&o, dir);
		o.flags = flags[i];
		assert_open_fails(&o, TM_EINVAL);
	}
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(map_size_above_its_cap_is_invalid)
{
	char *dir = tt_tmpdir();
	tm_options o;
	tm_manager *tm = NULL;

	options(&o, dir);
	o.map_size = 8 * MIB;
	o.map_size_max = 4 * MIB;
	assert_open_fails(&o, TM_EINVAL);
	/* A default map_size (64 MiB) above a small explicit cap too. */
	options(&o, dir);
	o.map_size_max = 4 * MIB;
	assert_open_fails(&o, TM_EINVAL);
	/* Equal is fine. */
	options(&o, dir);
	o.map_size = 4 * MIB;
	o.map_size_max = 4 * MIB;
	ck_assert_ok(tm_open(&o, &tm));
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(bad_retention_age_is_invalid)
{
	static const double ages[] = { -1.0, -INFINITY, INFINITY, NAN };
	char *dir = tt_tmpdir();
	tm_options o;

	for (size_t i = 0; i < sizeof(ages) / sizeof(ages[0]); i++) {
		options(&o, dir);
		o.keep_age_s = ages[i];
		assert_open_fails(&o, TM_EINVAL);
	}
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(same_path_twice_in_one_process_is_invalid_until_closed)
{
	char *dir = tt_tmpdir(), id[21], alias[4096];
	tm_options o;
	tm_manager *tm = NULL, *again;

	options(&o, dir);
	ck_assert_ok(tm_open(&o, &tm));
	tt_register(tm, "job", 0);
	tt_trigger(tm, "job", NULL, id);
	assert_open_fails(&o, TM_EINVAL);
	/* Another spelling of the same directory. */
	snprintf(alias, sizeof(alias), "%s/./", dir);
	options(&o, alias);
	assert_open_fails(&o, TM_EINVAL);
	/* The first manager still works. */
	ck_assert_str_eq(tt_status(tm, "job", id, (char[32]){ 0 }), "REQUEST_SENT");
	tm_close(tm);
	options(&o, dir);
	again = NULL;
	ck_assert_ok(tm_open(&o, &again));
	tt_register(again, "job", 0);
	ck_assert_str_eq(tt_status(again, "job", id, (char[32]){ 0 }), "REQUEST_SENT");
	tm_close(again);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(path_that_is_a_file_is_a_storage_error)
{
	char *dir = tt_tmpdir(), file[4096], below[4096];
	tm_options o;
	int fd;

	snprintf(file, sizeof(file), "%s/plain", dir);
	fd = open(file, O_CREAT | O_WRONLY, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "x", 1), 1);
	close(fd);
	options(&o, file);
	assert_open_fails(&o, TM_ESTORAGE);
	snprintf(below, sizeof(below), "%s/plain/sub", dir);
	options(&o, below);
	assert_open_fails(&o, TM_ESTORAGE);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(directory_of_garbage_is_a_storage_error)
{
	char *dir = tt_tmpdir(), file[4096], junk[16384];
	tm_options o;
	int fd;

	memset(junk, 'J', sizeof(junk));
	snprintf(file, sizeof(file), "%s/data.mdb", dir);
	fd = open(file, O_CREAT | O_WRONLY, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, junk, sizeof(junk)), (int)sizeof(junk));
	close(fd);
	options(&o, dir);
	assert_open_fails(&o, TM_ESTORAGE);
	/* Refusing it did not hold the path: a second try says the same. */
	assert_open_fails(&o, TM_ESTORAGE);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(missing_directories_are_created)
{
	char *dir = tt_tmpdir(), path[4096];
	tm_options o;
	tm_manager *tm = NULL;
	struct stat st;

	snprintf(path, sizeof(path), "%s/a/b/c/store", dir);
	options(&o, path);
	ck_assert_ok(tm_open(&o, &tm));
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	tt_register(tm, "job", 0);
	ck_assert_ok(tm_trigger(tm, "job", NULL, 0, NULL));
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(every_call_on_a_null_manager_is_invalid)
{
	char sentinel, *out;
	tm_job_def d;

	tm_job_def_init(&d, TM_JOB_DEF_VERSION);
	d.name = "job";
#define NULL_CALL(call) do { \
	out = &sentinel; \
	tt_clear_error(); \
	ck_assert_err(call, TM_EINVAL); \
	ck_assert_uint_gt(strlen(tm_last_error()), 0); \
} while (0)
	NULL_CALL(tm_register(NULL, &d));
	NULL_CALL(tm_trigger(NULL, "job", NULL, 0, &out));
	ck_assert_ptr_null(out);
	NULL_CALL(tm_list_recent(NULL, "job", 1, 10, 0, &out));
	ck_assert_ptr_null(out);
	NULL_CALL(tm_get(NULL, "job", "AAAAAAAAAAAAAAAAAAAA", 0, &out));
	ck_assert_ptr_null(out);
	NULL_CALL(tm_patch(NULL, "job", "AAAAAAAAAAAAAAAAAAAA", "{}", &out));
	ck_assert_ptr_null(out);
	NULL_CALL(tm_cancel(NULL, "job", "AAAAAAAAAAAAAAAAAAAA", &out));
	ck_assert_ptr_null(out);
	NULL_CALL(tm_notify(NULL, "job", 1));
	NULL_CALL(tm_stats(NULL, &out));
	ck_assert_ptr_null(out);
	NULL_CALL(tm_check(NULL, &out));
	ck_assert_ptr_null(out);
	NULL_CALL(tm_trigger(NULL, "job", NULL, 0, NULL));
#undef NULL_CALL
}
END_TEST

START_TEST(close_and_free_of_null_are_no_ops)
{
	tm_close(NULL);
	tm_free(NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("open");

	tt_add(s, options_init_fills_the_defaults);
	tt_add(s, open_with_workers_zero_stores_and_serves);
	tt_add(s, null_options_or_out_is_invalid);
	tt_add(s, missing_path_is_invalid);
	tt_add(s, unknown_options_version_is_invalid);
	tt_add(s, unknown_open_flags_are_invalid);
	tt_add(s, map_size_above_its_cap_is_invalid);
	tt_add(s, bad_retention_age_is_invalid);
	tt_add(s, same_path_twice_in_one_process_is_invalid_until_closed);
	tt_add(s, path_that_is_a_file_is_a_storage_error);
	tt_add(s, directory_of_garbage_is_a_storage_error);
	tt_add(s, missing_directories_are_created);
	tt_add(s, every_call_on_a_null_manager_is_invalid);
	tt_add(s, close_and_free_of_null_are_no_ops);
	return tt_run(s);
}
