/* Retention (doc/runtime.md, "Retention"): final tasks beyond keep_count
 * per name, or older than keep_age_s, are pruned oldest first in small
 * background transactions, with their index entries; active tasks never
 * are. */
#include <string.h>

#include "rt.h"

#define KEEP 5
#define FINALS 150  /* more than one prune transaction (64 a time) */

/* How finish() ends the k-th task, and the status that leaves. */
static const struct {
	const char *patch, *status;
} endings[3] = {
	{ "{\"completed\": true}", "COMPLETED" },
	{ "{\"failed\": true}", "FAILED" },
	{ "{\"status\": \"CANCELLED\"}", "CANCELLED" },
};

/* A store without workers whose options keep keep_count final tasks per
 * name and none older than keep_age_s (0: the defaults), with "ext"
 * registered, driven by tm_patch. */
static tm_manager *open_keeping(const char *dir, unsigned keep_count, double keep_age_s)
{
	tm_options o;
	tm_manager *tm;

	rt_options(&o, dir, 0);
	o.keep_count = keep_count;
	o.keep_age_s = keep_age_s;
	tm = rt_open_with(&o);
	tt_register(tm, "ext", 0);
	return tm;
}

/* Three active tasks, the oldest of the name: waiting, running, cancel
 * requested. */
static void make_active(tm_manager *tm, char ids[3][21])
{
	for (int i = 0; i < 3; i++)
		tt_trigger(tm, "ext", "{\"refresh_token\": \"tok\"}", ids[i]);
	ck_assert_ok(tm_patch(tm, "ext", ids[1], "{\"status\": \"RUNNING\"}", NULL));
	ck_assert_ok(tm_patch(tm, "ext", ids[2], "{\"status\": \"RUNNING\"}", NULL));
	ck_assert_ok(tm_cancel(tm, "ext", ids[2], NULL));
}

static void assert_active(tm_manager *tm, char ids[3][21])
{
	static const char *want[3] = { "REQUEST_SENT", "RUNNING", "CANCELLED_REQUESTED" };
	char buf[32];

	for (int i = 0; i < 3; i++)
		ck_assert_str_eq(tt_status(tm, "ext", ids[i], buf), want[i]);
}

/* A new task of "ext" that ran and ended the k-th way of endings. */
static void finished(tm_manager *tm, int k, char id[21])
{
	tt_trigger(tm, "ext", "{\"refresh_token\": \"tok\"}", id);
	ck_assert_ok(tm_patch(tm, "ext", id, "{\"status\": \"RUNNING\"}", NULL));
	ck_assert_ok(tm_patch(tm, "ext", id, endings[k % 3].patch, NULL));
}

START_TEST(retention_prunes_oldest_first_down_to_keep_count)
{
	char *dir = tt_tmpdir(), active[3][21], (*ids)[21] = calloc(FINALS, 21), buf[32];
	tm_manager *tm = open_keeping(dir, KEEP, 0);

	make_active(tm, active);
	for (int i = 0; i < FINALS; i++)
		finished(tm, i, ids[i]);
	rt_await_count(tm, "ext", 3 + KEEP);
	rt_barrier(tm);
	ck_assert_int_eq(tt_count(tm, "ext"), 3 + KEEP);
	assert_active(tm, active);
	/* The newest finals are the ones kept, each as it ended. */
	for (int i = FINALS - KEEP; i < FINALS; i++)
		ck_assert_str_eq(tt_status(tm, "ext", ids[i], buf), endings[i % 3].status);
	for (int i = 0; i < FINALS - KEEP; i++)
		ck_assert_err(tm_get(tm, "ext", ids[i], 0, NULL), TM_ETASK_NOT_FOUND);
	ck_assert_int_eq(tt_stat(tm, "ext", "COMPLETED") + tt_stat(tm, "ext", "FAILED") +
	                 tt_stat(tm, "ext", "CANCELLED"), KEEP);
	tt_assert_check(tm, -1);
	free(ids);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(retention_prunes_finals_older_than_keep_age)
{
	char *dir = tt_tmpdir(), active[3][21], done[2][21];
	tm_manager *tm = open_keeping(dir, 0, 0.3);

	make_active(tm, active);
	for (int i = 0; i < 2; i++)
		finished(tm, i, done[i]);
	rt_await_count(tm, "ext", 3);
	for (int i = 0; i < 2; i++)
		ck_assert_err(tm_get(tm, "ext", done[i], 0, NULL), TM_ETASK_NOT_FOUND);
	/* Older than keep_age_s, and kept: they are active. */
	rt_barrier(tm);
	assert_active(tm, active);
	tt_assert_check(tm, -1);
	tt_close_tmp(tm, dir);
}
END_TEST

/* Finals of a name with a handler are pruned too; the running one is kept. */
static atomic_int release;

static tm_status job(tm_job *j, void *user)
{
	(void)user;
	if (strstr(tm_job_payload(j), "block"))
		tt_wait(rt_flag_set, &release, 60);
	return TM_COMPLETED;
}

START_TEST(retention_never_prunes_a_running_task)
{
	char *dir = tt_tmpdir(), first[21], id[21], buf[32];
	tm_options o;
	tm_manager *tm;
	tm_job_def d = rt_def("job", job, NULL);

	atomic_store(&release, 0);
	rt_options(&o, dir, 2);
	o.keep_count = 2;
	o.keep_age_s = 0.2;
	tm = rt_open_with(&o);
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "job", "{\"context_task\": {\"block\": true}}", first);
	rt_await_status(tm, "job", first, "RUNNING");
	for (int i = 0; i < 10; i++)
		tt_trigger(tm, "job", NULL, id);
	rt_await_count(tm, "job", 1);
	ck_assert_str_eq(tt_status(tm, "job", first, buf), "RUNNING");
	atomic_store(&release, 1);
	rt_await_status(tm, "job", first, "COMPLETED");
	tt_close_tmp(tm, dir);
}
END_TEST

TT_MAIN("runtime_retention",
	retention_prunes_oldest_first_down_to_keep_count,
	retention_prunes_finals_older_than_keep_age,
	retention_never_prunes_a_running_task)
