/* SPEC section 6, retention: final tasks beyond keep_count per name, or
 * older than keep_age_s, are pruned oldest first in small background
 * transactions, with their index entries; active tasks never are. */
#include <string.h>

#include "rt.h"

#define KEEP 5
#define FINALS 150  /* more than one prune transaction (64 a time) */

struct count_wait {
	tm_manager *tm;
	const char *name;
	int n;
};

static int count_is(void *p)
{
	struct count_wait *w = p;

	return tt_count(w->tm, w->name) == w->n;
}

static void await_count(tm_manager *tm, const char *name, int n)
{
	struct count_wait w = { tm, name, n };

	ck_assert_msg(tt_wait(count_is, &w, RT_DEADLINE), "%s never came down to %d tasks (%d)",
	              name, n, tt_count(tm, name));
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

static void finish(tm_manager *tm, const char *id, int k)
{
	static const char *patches[3] = {
		"{\"completed\": true}", "{\"failed\": true}", "{\"status\": \"CANCELLED\"}",
	};

	ck_assert_ok(tm_patch(tm, "ext", id, "{\"status\": \"RUNNING\"}", NULL));
	ck_assert_ok(tm_patch(tm, "ext", id, patches[k % 3], NULL));
}

START_TEST(retention_prunes_oldest_first_down_to_keep_count)
{
	char *dir = tt_tmpdir(), active[3][21], (*ids)[21] = calloc(FINALS, 21), buf[32];
	tm_options o;
	tm_manager *tm;

	rt_options(&o, dir, 0);
	o.keep_count = KEEP;
	tm = rt_open_with(&o);
	tt_register(tm, "ext", 0);
	make_active(tm, active);
	for (int i = 0; i < FINALS; i++) {
		tt_trigger(tm, "ext", "{\"refresh_token\": \"tok\"}", ids[i]);
		finish(tm, ids[i], i);
	}
	await_count(tm, "ext", 3 + KEEP);
	rt_barrier(tm);
	ck_assert_int_eq(tt_count(tm, "ext"), 3 + KEEP);
	assert_active(tm, active);
	/* The newest finals are the ones kept. */
	for (int i = FINALS - KEEP; i < FINALS; i++)
		tt_status(tm, "ext", ids[i], buf);
	for (int i = 0; i < FINALS - KEEP; i++)
		ck_assert_err(tm_get(tm, "ext", ids[i], 0, NULL), TM_ETASK_NOT_FOUND);
	ck_assert_int_eq(rt_stat(tm, "ext", "COMPLETED") + rt_stat(tm, "ext", "FAILED") +
	                 rt_stat(tm, "ext", "CANCELLED"), KEEP);
	rt_assert_check_ok(tm);
	tm_close(tm);
	free(ids);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(retention_prunes_finals_older_than_keep_age)
{
	char *dir = tt_tmpdir(), active[3][21], done[2][21];
	tm_options o;
	tm_manager *tm;

	rt_options(&o, dir, 0);
	o.keep_age_s = 0.3;
	tm = rt_open_with(&o);
	tt_register(tm, "ext", 0);
	make_active(tm, active);
	for (int i = 0; i < 2; i++) {
		tt_trigger(tm, "ext", NULL, done[i]);
		finish(tm, done[i], i);
	}
	await_count(tm, "ext", 3);
	for (int i = 0; i < 2; i++)
		ck_assert_err(tm_get(tm, "ext", done[i], 0, NULL), TM_ETASK_NOT_FOUND);
	/* Older than keep_age_s, and kept: they are active. */
	rt_barrier(tm);
	assert_active(tm, active);
	rt_assert_check_ok(tm);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

/* Finals of a name with a handler are pruned too; the running one is kept. */
static atomic_int release;

static int released(void *p)
{
	(void)p;
	return atomic_load(&release);
}

static tm_status job(tm_job *j, void *user)
{
	(void)user;
	if (strstr(tm_job_payload(j), "block"))
		tt_wait(released, NULL, 60);
	return TM_COMPLETED;
}

START_TEST(retention_never_prunes_a_running_task)
{
	char *dir = tt_tmpdir(), first[21], id[21], buf[32];
	tm_options o;
	tm_manager *tm;
	tm_job_def d = rt_def("job", job, NULL);
	struct count_wait w;

	atomic_store(&release, 0);
	rt_options(&o, dir, 2);
	o.keep_count = 2;
	o.keep_age_s = 0.2;
	tm = rt_open_with(&o);
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "job", "{\"context_task\": {\"block\": true}}", first);
	rt_await_status(tm, "job", first, "RUNNING");
	w = (struct count_wait){ tm, "job", 1 };
	for (int i = 0; i < 10; i++)
		tt_trigger(tm, "job", NULL, id);
	ck_assert_msg(tt_wait(count_is, &w, RT_DEADLINE), "finals were not pruned (%d tasks)",
	              tt_count(tm, "job"));
	ck_assert_str_eq(tt_status(tm, "job", first, buf), "RUNNING");
	atomic_store(&release, 1);
	rt_await_status(tm, "job", first, "COMPLETED");
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("runtime_retention");

	tt_add(s, retention_prunes_oldest_first_down_to_keep_count);
	tt_add(s, retention_prunes_finals_older_than_keep_age);
	tt_add(s, retention_never_prunes_a_running_task);
	return tt_run(s);
}
