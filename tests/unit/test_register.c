/* tm_register and tm_job_def_init (doc/api.md, "Registering task names"):
 * defaults, and every misuse answered with TM_EINVAL and a message. */
#include <math.h>
#include <string.h>

#include "common.h"

TT_STORE_FIXTURE

/* The defaults of a definition, named. */
static tm_job_def def_of(const char *name)
{
	tm_job_def d = TM_JOB_DEF_INIT;

	d.name = name;
	return d;
}

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
	ck_assert_ok(tm_job_def_init(&d, TM_JOB_DEF_VERSION));
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
	/* No definition to fill: refused, with a message. */
	tt_clear_error();
	ck_assert_err(tm_job_def_init(NULL, TM_JOB_DEF_VERSION), TM_EINVAL);
	ck_assert_uint_gt(strlen(tm_last_error()), 0);
}
END_TEST

START_TEST(valid_names_register)
{
	static const char *const names[] = {
		"a", "Z", "0", "data_import", "ml-new.items_2", "...", "-_-",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};

	ck_assert_uint_eq(strlen(names[7]), TM_NAME_MAX);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		tt_register(tm, names[i], 0);
		ck_assert_ok(tm_trigger(tm, names[i], NULL, 0, NULL));
		ck_assert_int_eq(tt_count(tm, names[i]), 1);
	}
}
END_TEST

START_TEST(bad_names_are_invalid)
{
	static const char *const names[] = {
		"", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"a b", "a/b", "../x", "a\\b", ("t\xc3\xa2" "che"), "a\n", "a:b", "a\tb",
		"name?", "*", "a%b", "a\"b",
		NULL,
	};

	ck_assert_uint_eq(strlen(names[1]), TM_NAME_MAX + 1);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		tm_job_def d = def_of(names[i]);

		assert_invalid(tm, &d);
	}
}
END_TEST

START_TEST(duplicate_name_is_invalid)
{
	tm_job_def d = def_of("job");
	char id[21];

	tt_register_with_task(tm, "job", TM_JOB_EXCLUSIVE, NULL, id);
	tt_clear_error();
	ck_assert_err(tm_register(tm, &d), TM_EINVAL);
	ck_assert_uint_gt(strlen(tm_last_error()), 0);
	/* The first registration stands: still exclusive. */
	ck_assert_err(tm_trigger(tm, "job", NULL, 0, NULL), TM_EALREADY_RUNNING);
}
END_TEST

START_TEST(unknown_flags_are_invalid)
{
	static const unsigned flags[] = { 0x4, 0x8, 0x100, 0x80000000u,
		TM_JOB_PUBLIC | TM_JOB_EXCLUSIVE | 0x4 };

	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		tm_job_def d = def_of("job");

		d.flags = flags[i];
		assert_invalid(tm, &d);
	}
	tt_register(tm, "job", TM_JOB_PUBLIC | TM_JOB_EXCLUSIVE);
}
END_TEST

START_TEST(bad_durations_are_invalid)
{
	static const double bad[] = { -1.0, -1e-9, -INFINITY, INFINITY, NAN };
	tm_job_def d;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (int field = 0; field < 4; field++) {
			d = def_of("job");
			switch (field) {
			case 0: d.timeout_s = bad[i]; break;
			case 1: d.retry_backoff_s = bad[i]; break;
			case 2: d.interval_s = bad[i]; break;
			default: d.min_interval_s = bad[i]; break;
			}
			assert_invalid(tm, &d);
		}
	}
	d = def_of("job");
	d.timeout_s = 0;
	assert_invalid(tm, &d);
	/* Zero is fine where it means "off". */
	d = def_of("job");
	d.retry_backoff_s = 0;
	d.interval_s = 0;
	d.min_interval_s = 0;
	d.timeout_s = 0.5;
	ck_assert_ok(tm_register(tm, &d));
}
END_TEST

START_TEST(zero_max_attempts_is_invalid)
{
	tm_job_def d = def_of("job");

	d.max_attempts = 0;
	assert_invalid(tm, &d);
	d.max_attempts = 5;
	ck_assert_ok(tm_register(tm, &d));
}
END_TEST

START_TEST(unknown_version_is_invalid)
{
	static const unsigned versions[] = { 0, TM_JOB_DEF_VERSION + 1, 1000, ~0u };

	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		tm_job_def d = def_of("job");

		d.version = versions[i];
		assert_invalid(tm, &d);
	}
}
END_TEST

START_TEST(null_def_or_manager_is_invalid)
{
	tm_job_def d = def_of("job");

	assert_invalid(tm, NULL);
	assert_invalid(NULL, &d);
	assert_invalid(NULL, NULL);
	ck_assert_err(tm_trigger(tm, "job", NULL, 0, NULL), TM_EWRONG_DATA);
}
END_TEST

START_TEST(registration_copies_the_name)
{
	char name[16] = "first";
	tm_job_def d = def_of(name);

	ck_assert_ok(tm_register(tm, &d));
	snprintf(name, sizeof(name), "other");
	ck_assert_ok(tm_trigger(tm, "first", NULL, 0, NULL));
	ck_assert_err(tm_trigger(tm, "other", NULL, 0, NULL), TM_EWRONG_DATA);
}
END_TEST

/* This test's store and a second one. */
START_TEST(names_are_per_manager)
{
	char *b;
	tm_manager *tb = tt_open_tmp(&b, 0);

	tt_register(tm, "job", 0);
	ck_assert_err(tm_trigger(tb, "job", NULL, 0, NULL), TM_EWRONG_DATA);
	tt_register(tb, "job", 0);
	ck_assert_ok(tm_trigger(tb, "job", NULL, 0, NULL));
	tt_close_tmp(tb, b);
}
END_TEST

TT_STORE_MAIN("register",
	job_def_init_fills_the_defaults,
	valid_names_register,
	bad_names_are_invalid,
	duplicate_name_is_invalid,
	unknown_flags_are_invalid,
	bad_durations_are_invalid,
	zero_max_attempts_is_invalid,
	unknown_version_is_invalid,
	null_def_or_manager_is_invalid,
	registration_copies_the_name,
	names_are_per_manager)
