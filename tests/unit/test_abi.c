/* The versioned structs: a caller compiled against version 1 of tm_options
 * and tm_job_def hands the library a struct that ends where version 1
 * ends.  Here that struct sits at the very end of a readable page, with an
 * unmapped page after it, so a library that read or wrote any field of a
 * later version would fault.  Also: the static initialisers, unknown
 * versions and unknown flag bits. */
#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common.h"

/* Frozen copies of the version-1 layouts.  Never edit these: a new field
 * of the public structs belongs to a new version, not to these. */
typedef struct {
	unsigned int version;
	const char *path;
	unsigned int workers;
	unsigned int flags;
	uint64_t map_size;
	uint64_t map_size_max;
	unsigned int poll_ms;
	unsigned int lease_ms;
	unsigned int grace_ms;
	unsigned int progress_ms;
	unsigned int keep_count;
	double keep_age_s;
} options_v1;

typedef struct {
	unsigned int version;
	const char *name;
	unsigned int flags;
	tm_status (*run)(tm_job *job, void *user);
	int (*validate)(const char *context_json, void *user);
	void *user;
	double timeout_s;
	unsigned int max_attempts;
	double retry_backoff_s;
	unsigned int concurrency;
	double interval_s;
	uint64_t change_threshold;
	double min_interval_s;
} job_def_v1;

/* Version 1 is a prefix of the current layout. */
_Static_assert(offsetof(options_v1, keep_age_s) == offsetof(tm_options, keep_age_s),
               "tm_options version 1 moved");
_Static_assert(offsetof(job_def_v1, min_interval_s) == offsetof(tm_job_def, min_interval_s),
               "tm_job_def version 1 moved");

/* Room for `size` bytes that end exactly where an unmapped page begins. */
static void *at_page_end(size_t size, void **map)
{
	long page = sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(p, MAP_FAILED);
	ck_assert_int_eq(mprotect(p + page, (size_t)page, PROT_NONE), 0);
	*map = p;
	return p + page - size;
}

static void unmap(void *map)
{
	munmap(map, 2 * (size_t)sysconf(_SC_PAGESIZE));
}

START_TEST(init_of_version_1_writes_only_version_1)
{
	void *m1, *m2;
	options_v1 *o = at_page_end(sizeof(*o), &m1);
	job_def_v1 *d = at_page_end(sizeof(*d), &m2);

	ck_assert_ok(tm_options_init((tm_options *)o, 1));
	ck_assert_uint_eq(o->version, 1);
	ck_assert_ptr_null(o->path);
	ck_assert_uint_eq(o->workers, 2);
	ck_assert(o->keep_age_s == 30 * 86400.0);
	ck_assert_ok(tm_job_def_init((tm_job_def *)d, 1));
	ck_assert_uint_eq(d->version, 1);
	ck_assert(d->timeout_s == 86400.0);
	ck_assert(d->min_interval_s == 0.0);
	unmap(m1);
	unmap(m2);
}
END_TEST

START_TEST(open_and_register_read_only_version_1)
{
	void *m1, *m2;
	options_v1 *o = at_page_end(sizeof(*o), &m1);
	job_def_v1 *d = at_page_end(sizeof(*d), &m2);
	char *dir = tt_tmpdir(), *out = NULL;
	tm_manager *tm = NULL;

	ck_assert_ok(tm_options_init((tm_options *)o, 1));
	o->path = tt_store_path(dir);
	o->workers = 0;
	o->flags = TM_OPEN_NOSYNC;
	ck_assert_ok(tm_open((const tm_options *)o, &tm));
	ck_assert_ok(tm_job_def_init((tm_job_def *)d, 1));
	d->name = "v1_job";
	d->flags = TM_JOB_EXCLUSIVE;
	ck_assert_ok(tm_register(tm, (const tm_job_def *)d));
	/* The version-1 fields took effect. */
	ck_assert_ok(tm_trigger(tm, "v1_job", NULL, 0, NULL));
	ck_assert_err(tm_trigger(tm, "v1_job", NULL, 0, &out), TM_EALREADY_RUNNING);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
	unmap(m1);
	unmap(m2);
}
END_TEST

START_TEST(static_initialisers_equal_the_init_functions)
{
	tm_options a = TM_OPTIONS_INIT, b;
	tm_job_def c = TM_JOB_DEF_INIT, d;

	memset(&b, 0x5a, sizeof(b));
	memset(&d, 0x5a, sizeof(d));
	ck_assert_ok(tm_options_init(&b, TM_OPTIONS_VERSION));
	ck_assert_ok(tm_job_def_init(&d, TM_JOB_DEF_VERSION));
	/* Field by field: padding bytes may differ. */
	ck_assert_uint_eq(a.version, b.version);
	ck_assert_ptr_eq(a.path, b.path);
	ck_assert_uint_eq(a.workers, b.workers);
	ck_assert_uint_eq(a.flags, b.flags);
	ck_assert_uint_eq(a.map_size, b.map_size);
	ck_assert_uint_eq(a.map_size_max, b.map_size_max);
	ck_assert_uint_eq(a.poll_ms, b.poll_ms);
	ck_assert_uint_eq(a.lease_ms, b.lease_ms);
	ck_assert_uint_eq(a.grace_ms, b.grace_ms);
	ck_assert_uint_eq(a.progress_ms, b.progress_ms);
	ck_assert_uint_eq(a.keep_count, b.keep_count);
	ck_assert(a.keep_age_s == b.keep_age_s);
	ck_assert_uint_eq(c.version, d.version);
	ck_assert_ptr_eq(c.name, d.name);
	ck_assert_uint_eq(c.flags, d.flags);
	ck_assert(c.run == d.run && c.validate == d.validate && c.user == d.user);
	ck_assert(c.timeout_s == d.timeout_s);
	ck_assert_uint_eq(c.max_attempts, d.max_attempts);
	ck_assert(c.retry_backoff_s == d.retry_backoff_s);
	ck_assert_uint_eq(c.concurrency, d.concurrency);
	ck_assert(c.interval_s == d.interval_s);
	ck_assert_uint_eq(c.change_threshold, d.change_threshold);
	ck_assert(c.min_interval_s == d.min_interval_s);
}
END_TEST

START_TEST(unknown_versions_are_invalid_and_write_nothing)
{
	static const unsigned bad[] = { 0, TM_OPTIONS_VERSION + 1, 1000u };
	tm_options o, o_before;
	tm_job_def d, d_before;

	memset(&o, 0x5a, sizeof(o));
	memset(&d, 0x5a, sizeof(d));
	o_before = o;
	d_before = d;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tt_clear_error();
		ck_assert_err(tm_options_init(&o, bad[i]), TM_EINVAL);
		ck_assert_str_ne(tm_last_error(), "");
		ck_assert_err(tm_job_def_init(&d, bad[i]), TM_EINVAL);
		ck_assert_int_eq(memcmp(&o, &o_before, sizeof(o)), 0);
		ck_assert_int_eq(memcmp(&d, &d_before, sizeof(d)), 0);
	}
	ck_assert_err(tm_options_init(NULL, TM_OPTIONS_VERSION), TM_EINVAL);
	ck_assert_err(tm_job_def_init(NULL, TM_JOB_DEF_VERSION), TM_EINVAL);
}
END_TEST

START_TEST(open_and_register_refuse_unknown_versions)
{
	char *dir = tt_tmpdir();
	tm_options o = TM_OPTIONS_INIT;
	tm_job_def d = TM_JOB_DEF_INIT;
	tm_manager *tm = NULL;

	o.path = tt_store_path(dir);
	o.workers = 0;
	o.flags = TM_OPEN_NOSYNC;
	o.version = TM_OPTIONS_VERSION + 1;
	ck_assert_err(tm_open(&o, &tm), TM_EINVAL);
	ck_assert_ptr_null(tm);
	o.version = TM_OPTIONS_VERSION;
	ck_assert_ok(tm_open(&o, &tm));
	d.name = "job";
	d.version = 0;
	ck_assert_err(tm_register(tm, &d), TM_EINVAL);
	d.version = TM_JOB_DEF_VERSION + 1;
	ck_assert_err(tm_register(tm, &d), TM_EINVAL);
	/* Nothing was registered. */
	ck_assert_err(tm_trigger(tm, "job", NULL, 0, NULL), TM_EWRONG_DATA);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

/* expr fails with TM_EINVAL and clears the output it was given. */
#define ck_assert_invalid(expr, out) do { \
	static char sentinel_; \
	(out) = &sentinel_; \
	ck_assert_err(expr, TM_EINVAL); \
	ck_assert_ptr_null(out); \
} while (0)

START_TEST(unknown_flag_bits_are_invalid_and_change_nothing)
{
	char *dir = tt_tmpdir(), *out;
	char id[21];
	tm_manager *tm = tt_open(dir, 0);
	tm_options o = TM_OPTIONS_INIT;
	tm_job_def d = TM_JOB_DEF_INIT;
	tm_manager *other = NULL;
	char *before;

	tt_register(tm, "job", TM_JOB_PUBLIC);
	tt_trigger(tm, "job", NULL, id);
	before = tt_get(tm, "job", id, 0);
	o.path = "/nonexistent/never/created";
	o.flags = 0xffff;
	ck_assert_err(tm_open(&o, &other), TM_EINVAL);
	d.name = "other";
	d.flags = 0x100;
	ck_assert_err(tm_register(tm, &d), TM_EINVAL);
	for (unsigned bit = 1; bit < 32; bit++) {
		unsigned flags = 1u << bit;

		ck_assert_invalid(tm_trigger(tm, "job", NULL, flags, &out), out);
		ck_assert_invalid(tm_list_recent(tm, "job", 1, 10, flags, &out), out);
		ck_assert_invalid(tm_get(tm, "job", id, flags | TM_PUBLIC, &out), out);
	}
	ck_assert_int_eq(tt_count(tm, "job"), 1);
	out = tt_get(tm, "job", id, 0);
	ck_assert_str_eq(out, before);
	tm_free(out);
	tm_free(before);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("abi");

	tt_add(s, init_of_version_1_writes_only_version_1);
	tt_add(s, open_and_register_read_only_version_1);
	tt_add(s, static_initialisers_equal_the_init_functions);
	tt_add(s, unknown_versions_are_invalid_and_write_nothing);
	tt_add(s, open_and_register_refuse_unknown_versions);
	tt_add(s, unknown_flag_bits_are_invalid_and_change_nothing);
	return tt_run(s);
}
