#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

char *tt_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *dir;

	if (asprintf(&dir, "%s/tmtest-XXXXXX", base && *base ? base : "/tmp") < 0)
		ck_abort_msg("out of memory");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	return dir;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(path);
}

void tt_rmdir(const char *dir)
{
	if (dir)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

tm_manager *tt_open(const char *dir, unsigned workers)
{
	tm_options o;
	tm_manager *tm = NULL;

	tm_options_init(&o, TM_OPTIONS_VERSION);
	o.path = dir;
	o.workers = workers;
	o.flags = TM_OPEN_NOSYNC;
	ck_assert_ok(tm_open(&o, &tm));
	return tm;
}

void tt_register(tm_manager *tm, const char *name, unsigned flags)
{
	tm_job_def d;

	tm_job_def_init(&d, TM_JOB_DEF_VERSION);
	d.name = name;
	d.flags = flags;
	ck_assert_ok(tm_register(tm, &d));
}

cJSON *tt_json(char *text)
{
	cJSON *j;

	ck_assert_ptr_nonnull(text);
	j = cJSON_Parse(text);
	ck_assert_msg(j != NULL, "not JSON: %s", text);
	tm_free(text);
	return j;
}

void tt_trigger(tm_manager *tm, const char *name, const char *body, char id[21])
{
	char *out = NULL;
	cJSON *j;

	ck_assert_ok(tm_trigger(tm, name, body, 0, &out));
	j = tt_json(out);
	ck_assert(cJSON_IsString(cJSON_GetObjectItem(j, "task_id")));
	snprintf(id, 21, "%s", cJSON_GetObjectItem(j, "task_id")->valuestring);
	cJSON_Delete(j);
}

const char *tt_status(tm_manager *tm, const char *name, const char *id, char buf[32])
{
	char *out = NULL;
	cJSON *j;

	ck_assert_ok(tm_get(tm, name, id, 0, &out));
	j = tt_json(out);
	snprintf(buf, 32, "%s", cJSON_GetObjectItem(j, "status")->valuestring);
	cJSON_Delete(j);
	return buf;
}

char *tt_get(tm_manager *tm, const char *name, const char *id, unsigned flags)
{
	char *out = NULL;

	ck_assert_ok(tm_get(tm, name, id, flags, &out));
	ck_assert_ptr_nonnull(out);
	return out;
}

int tt_count(tm_manager *tm, const char *name)
{
	int n = 0;

	for (int page = 1;; page++) {
		char *out = NULL;
		cJSON *j;
		int more;

		ck_assert_ok(tm_list_recent(tm, name, page, 64, 0, &out));
		j = tt_json(out);
		n += cJSON_GetArraySize(cJSON_GetObjectItem(j, "tasks"));
		more = cJSON_IsTrue(cJSON_GetObjectItem(j, "has_next"));
		cJSON_Delete(j);
		if (!more)
			return n;
	}
}

void tt_clear_error(void)
{
	tm_errorf(TM_OK, "%s", "");
}

int tt_wait(int (*pred)(void *arg), void *arg, double seconds)
{
	struct timespec start, now, ms = { 0, 1000000 };

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (pred(arg))
			return 1;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((double)(now.tv_sec - start.tv_sec) +
		    (double)(now.tv_nsec - start.tv_nsec) / 1e9 > seconds)
			return 0;
		nanosleep(&ms, NULL);
	}
}

int tt_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
