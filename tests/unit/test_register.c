/* SPEC section 5, tm_register and tm_job_def_init: defaults, and every
 * misuse answered with TM_EINVAL and a message. */
#include <math.h>
#include <string.h>

#include "common.h"

/* tm_register must refuse def with TM_EINVAL and a message, and leave the
 * name (if any) unregistered. */
static void assert_invalid(tm_manager *tm, const tm_job_def *def)
{
	int rc;

	tt_clear_error();
	rc = tm_register(tm, def);
	ck_assert_msg(rc == TM_EINVAL, "registering %s gave %s (%s)",
	              def && def->name ? def->name : "(null)", tm_error_name(rc),
	              tm_last_error());
	ck_assert_msg(tm_last_error()[0] != '\0', "no message for %s",
	              def && def->name ? def->name : "(null)");
	if (tm && def && def->name)
		ck_assert_err(tm_trigger(tm, def->name, NULL, 0, NULL), TM_EWRONG_DATA);
}

START_TEST(job_def_init_fills_the_defaults)
{
	tm_job_def d;

	memset(&d, 0xa5, sizeof(d));
	tm_job_def_init(&d, TM_JOB_DEF_VERSION);
	ck_assert_uint_eq(d.version, TM_JOB_DEF_VERSION);
	ck_assert_ptr_null(d.name);
	ck_assert_uint_eq(d.flags, 0);
	ck_assert(d.run == NULL);
	ck_assert(d.validate == NULL);
	ck_assert_ptr_null(d.user);
	ck_assert_double_eq(d.timeout_s, 86400.0);
	ck_assert_uint_eq(d.max_attempts, 1);
	ck_assert_double_eq(d.retry_backoff_s, 1.0);
	ck_assert_uint_eq(d.concurrency, 0);
	ck_assert_double_eq(d.interval_s, 0.0);
	ck_assert_uint_eq(d.change_threshold, 0);
	ck_assert_double_eq(d.min_interval_s, 0.0);
	tm_job_def_init(NULL, TM_JOB_DEF_VERSION); /* a no-op, not a crash */
}
END_TEST

START_TEST(valid_names_register)
{
	static const char *const names[] = {
		"a", "Z", "0", "data_import", "ml-new.items_2", "...", "-_-",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};
	char *dir = tt_tmpdir();
	tm_manager *tm = tt_open(dir, 0);

	ck_assert_uint_eq(strlen(names[7]), TM_NAME_MAX);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		tt_register(tm, names[i], 0);
		ck_assert_ok(tm_trigger(tm, names[i], NULL, 0, NULL));
		ck_assert_int_eq(tt_count(tm, names[i]), 1);
	}
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(bad_names_are_invalid)
{
	static const char *const names[] = {
		"", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"a b", "a/b", "../x", "a\\b", ("t\xc3\xa2" "che"), "a\n", "a:b", "a\tb",
		"name?", "*", "a%b", "a\"b",
	};
	char *dir = tt_tmpdir();
	tm_manager *tm = tt_open(dir, 0);
	tm_job_def d;

	ck_assert_uint_eq(strlen(names[1]), TM_NAME_MAX + 1);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		tm_job_def_init(&d, TM_JOB_DEF_VERSION);
		d.name = names[i];
		assert_invalid(tm, &d);
	}
	tm_job_def_init(&d, TM_JOB_DEF_VERSION);
	assert_invalid(tm, &d); /* name left NULL */
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(duplicate_name_is_invalid)
{
	char *dir = tt_tmpdir(), id[21];
	tm_manager *tm = tt_open(dir, 0);
	tm_job_def d;

	tt_register(tm, "job", TM_JOB_EXCLUSIVE);
	tt_trigger(tm, "job", NULL, id);
	tm_job_def_init(&d, TM_JOB_DEF_VERSION);
	d.name = "job";
	tt_clear_error();
	ck_assert_err(tm_register(tm, &d), TM_EINVAL);
	ck_assert_uint_gt(strlen(tm_last_error()), 0);
	/* The first registration stands: still exclusive. */
	ck_assert_err(tm_trigger(tm, "job", NULL, 0, NULL), TM_EALREADY_RUNNING);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(unknown_flags_are_invalid)
{
	static const unsigned flags[] = { 0x4, 0x8, 0x100, 0x80000000u,
		TM_JOB_PUBLIC | TM_JOB_EXCLUSIVE | 0x4 };
	char *dir = tt_tmpdir();
	tm_manager *tm = tt_open(dir, 0);
	tm_job_def d;

	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		tm_job_def_init(&d, TM_JOB_DEF_VERSION);
		d.name = "job";
		d.flags = flags[i];
		assert_invalid(tm, &d);
	}
	tt_register(tm, "job", TM_JOB_PUBLIC | TM_JOB_EXCLUSIVE);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(bad_durations_are_invalid)
{
	static const double bad[] = { -1.0, -1e-9, -INFINITY, INFINITY, NAN };
	char *dir = tt_tmpdir();
	tm_manager *tm = tt_open(dir, 0);
	tm_job_def d;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (int field = 0; field < 4; field++) {
			tm_job_def_init(&d, TM_JOB_DEF_VERSION);
			d.name = "job";
			switch (field) {
			case 0: d.timeout_s = bad[i]; break;
			case 1: d.retry_backoff_s = bad[i]; break;
			case 2: d.interval_s = bad[i]; break;
			default: d.min_interval_s = bad[i]; break;
			}
			assert_invalid(tm, &d);
		}
	}
	tm_job_def_init(&d, TM_JOB_DEF_VERSION);
	d.name = "job";
	d.timeout_s = 0;
	assert_invalid(tm, &d);
	/* Zero is fine where it means "off". */
	tm_job_def_init(&d, TM_JOB_DEF_VERSION);
	d.name = "job";
	d.retry_backoff_s = 0;
	d.interval_s = 0;
	d.min_interval_s = 0;
	d.timeout_s = 0.5;
	ck_assert_ok(tm_register(tm, &d));
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(zero_max_attempts_is_invalid)
{
	char *dir = tt_tmpdir();
	tm_manager *tm = tt_open(dir, 0);
	tm_job_def d;

	tm_job_def_init(&d, TM_JOB_DEF_VERSION);
	d.name = "job";
	d.max_attempts = 0;
	assert_invalid(tm, &d);
	d.max_attempts = 5;
	ck_assert_ok(tm_register(tm, &d));
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(unknown_version_is_invalid)
{
	static const unsigned versions[] = { 0, TM_JOB_DEF_VERSION + 1, 1000, ~0u };
	char *dir = tt_tmpdir();
	tm_manager *tm = tt_open(dir, 0);
	tm_job_def d;

	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		tm_job_def_init(&d, TM_JOB_DEF_VERSION);
		d.name = "job";
		d.version = versions[i];
		assert_invalid(tm, &d);
	}
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(null_def_or_manager_is_invalid)
{
	char *dir = tt_tmpdir();
	tm_manager *tm = tt_open(dir, 0);
	tm_job_def d;

	assert_invalid(tm, NULL);
	tm_job_def_init(&d, TM_JOB_DEF_VERSION);
	d.name = "job";
	assert_invalid(NULL, &d);
	assert_invalid(NULL, NULL);
	ck_assert_err(tm_trigger(tm, "job", NULL, 0, NULL), TM_EWRONG_DATA);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(registration_copies_the_name)
{
	char *dir = tt_tmpdir(), name[16];
	tm_manager *tm = tt_open(dir, 0);
	tm_job_def d;

	snprintf(name, sizeof(name), "first");
	tm_job_def_init(&d, TM_JOB_DEF_VERSION);
	d.name = name;
	ck_assert_ok(tm_register(tm, &d));
	snprintf(name, sizeof(name), "other");
	ck_assert_ok(tm_trigger(tm, "first", NULL, 0, NULL));
	ck_assert_err(tm_trigger(tm, "other", NULL, 0, NULL), TM_EWRONG_DATA);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(names_are_per_manager)
{
	char *a = tt_tmpdir(), *b = tt_tmpdir();
	tm_manager *ta = tt_open(a, 0), *tb = tt_open(b, 0);

	tt_register(ta, "job", 0);
	ck_assert_err(tm_trigger(tb, "job", NULL, 0, NULL), TM_EWRONG_DATA);
	tt_register(tb, "job", 0);
	ck_assert_ok(tm_trigger(tb, "job", NULL, 0, NULL));
	tm_close(ta);
	tm_close(tb);
	tt_rmdir(a);
	free(a);
	tt_rmdir(b);
	free(b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("register");

	tt_add(s, job_def_init_fills_the_defaults);
	tt_add(s, valid_names_register);
	tt_add(s, bad_names_are_invalid);
	tt_add(s, duplicate_name_is_invalid);
	tt_add(s, unknown_flags_are_invalid);
	tt_add(s, bad_durations_are_invalid);
	tt_add(s, zero_max_attempts_is_invalid);
	tt_add(s, unknown_version_is_invalid);
	tt_add(s, null_def_or_manager_is_invalid);
	tt_add(s, registration_copies_the_name);
	tt_add(s, names_are_per_manager);
	return tt_run(s);
}
