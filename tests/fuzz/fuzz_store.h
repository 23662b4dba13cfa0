/* What the fuzz targets on a real store share.  libFuzzer calls a target
 * many times in one process and ends it with exit(): the store is made on
 * the first input and removed at exit.  Failures abort(), which libFuzzer
 * reports with the input that caused it. */
#ifndef TM_FUZZ_STORE_H
#define TM_FUZZ_STORE_H

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "taskmgr.h"

#define fz_fail(...) do { \
	fprintf(stderr, "fuzz: " __VA_ARGS__); \
	fputc('\n', stderr); \
	abort(); \
} while (0)

static char fz_dirs[2][32];

static inline int fz_rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

static inline void fz_cleanup(void)
{
	for (int i = 0; i < 2; i++)
		if (fz_dirs[i][0])
			nftw(fz_dirs[i], fz_rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* A fresh directory under /tmp named after `what`, removed at exit
 * (two at most). */
static inline const char *fz_tmpdir(const char *what)
{
	static int n;

	if (n == 0)
		atexit(fz_cleanup);
	if (n == 2)
		fz_fail("fz_tmpdir: too many directories");
	snprintf(fz_dirs[n], sizeof(fz_dirs[n]), "/tmp/tmfuzz-%.8s-XXXXXX", what);
	if (mkdtemp(fz_dirs[n]) == NULL)
		fz_fail("mkdtemp failed");
	return fz_dirs[n++];
}

/* The options of a no-sync store without workers in a fresh directory.
 * Its supervisor never writes, so that a commit seen during a call is the
 * call's own: no retention, and no tick after the first (its other
 * writes, e.g. zeroing the keys of final tasks' secrets, happen on
 * ticks). */
static inline tm_options fz_options(const char *what)
{
	tm_options o = TM_OPTIONS_INIT;

	o.path = fz_tmpdir(what);
	o.flags = TM_OPEN_NOSYNC;
	o.workers = 0;
	o.keep_count = UINT_MAX;
	o.keep_age_s = 1e9;
	o.poll_ms = 3600000;
	o.lease_ms = 3600000;
	return o;
}

static inline tm_manager *fz_open(const tm_options *o)
{
	tm_manager *tm = NULL;

	if (tm_open(o, &tm) != TM_OK)
		fz_fail("tm_open: %s", tm_last_error());
	return tm;
}

static inline void fz_register(tm_manager *tm, const char *name, unsigned flags,
                        int (*validate)(const char *, void *), void *user)
{
	tm_job_def d = TM_JOB_DEF_INIT;

	d.name = name;
	d.flags = flags;
	d.validate = validate;
	d.user = user;
	if (tm_register(tm, &d) != TM_OK)
		fz_fail("tm_register %s: %s", name, tm_last_error());
}

/* The rank of a status under the ordering rule: 0, 1, 2, or 3 for the
 * finals; -1 for anything else. */
static inline int fz_rank(const char *status)
{
	static const char *const statuses[] = { "REQUEST_SENT", "RUNNING",
		"CANCELLED_REQUESTED", "FAILED", "CANCELLED", "COMPLETED" };

	for (int i = 0; status && i < 6; i++)
		if (strcmp(status, statuses[i]) == 0)
			return i < 3 ? i : 3;
	return -1;
}

/* The status of a task document's text (NULL when it has none). */
static inline const char *fz_status(const cJSON *task)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(task, "status"));
}

/* The manager's write transactions so far (tm_stats "commits"). */
static inline double fz_commits(tm_manager *tm)
{
	char *out = NULL;
	cJSON *j;
	double n;

	if (tm_stats(tm, &out) != TM_OK || (j = cJSON_Parse(out)) == NULL)
		fz_fail("tm_stats: %s", tm_last_error());
	n = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "commits"));
	cJSON_Delete(j);
	tm_free(out);
	return n;
}

/* Trigger a task of name with body; its id to id (abort on failure). */
static inline void fz_trigger(tm_manager *tm, const char *name, const char *body,
                       char id[TM_TASK_ID_LEN + 1])
{
	char *out = NULL;
	cJSON *j;

	if (tm_trigger(tm, name, body, 0, &out) != TM_OK || (j = cJSON_Parse(out)) == NULL)
		fz_fail("trigger %s: %s", name, tm_last_error());
	snprintf(id, TM_TASK_ID_LEN + 1, "%s",
	         cJSON_GetStringValue(cJSON_GetObjectItem(j, "task_id")));
	cJSON_Delete(j);
	tm_free(out);
}

#endif
