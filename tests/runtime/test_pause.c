/* tm_pause and tm_resume (doc/runtime.md, "Pause"): a paused name takes
 * triggers but no worker of any process starts its tasks, not even an idle
 * one a trigger would hand its task to; runs under way finish; the state
 * is durable and shown by tm_stats and tm_metrics; resuming starts the
 * waiting tasks.
 *
 * "Nothing started" is shown without waiting for time to pass: the queue
 * is in ready order, so once a worker has run a task of another name
 * triggered after the paused ones, it has looked at them and passed. */
#include <string.h>

#include "rt.h"

#define N 3

static char runs_path[RT_PATH_MAX];
static atomic_int release;

static tm_status record(tm_job *job, void *user)
{
	(void)user;
	rt_append_run(runs_path, job);
	return TM_COMPLETED;
}

static int released(void *unused)
{
	(void)unused;
	return atomic_load(&release);
}

static tm_status held(tm_job *job, void *user)
{
	atomic_fetch_add((atomic_int *)user, 1);
	tt_wait(released, NULL, 60);
	rt_append_run(runs_path, job);
	return TM_COMPLETED;
}

/* Trigger one task of "other" and wait until it completed: the workers
 * have passed every task queued before it. */
static void workers_passed(tm_manager *tm)
{
	char id[21];

	tt_trigger(tm, "other", NULL, id);
	rt_await_status(tm, "other", id, "COMPLETED");
}

static int paused(tm_manager *tm, const char *name)
{
	char *out = NULL;
	cJSON *j, *v;
	int p;

	ck_assert_ok(tm_stats(tm, &out));
	j = tt_json(out);
	v = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "names"), name),
		"paused");
	ck_assert_msg(cJSON_IsBool(v), "no names.%s.paused in tm_stats", name);
	p = cJSON_IsTrue(v);
	cJSON_Delete(j);
	return p;
}

static int workers_idle(void *tm)
{
	return tt_stat(tm, NULL, "workers_idle") == 2;
}

static void register_both(tm_manager *tm)
{
	tm_job_def job = rt_def("job", record, NULL), other = rt_def("other", rt_complete, NULL);

	ck_assert_ok(tm_register(tm, &job));
	ck_assert_ok(tm_register(tm, &other));
}

START_TEST(paused_name_takes_triggers_and_starts_nothing_until_resumed)
{
	char store[RT_PATH_MAX], *dir = rt_shared_dir(store, runs_path), ids[N][21];
	tm_manager *tm = rt_open(store, 2);

	register_both(tm);
	ck_assert_int_eq(paused(tm, "job"), 0);
	ck_assert_ok(tm_pause(tm, "job"));
	ck_assert_ok(tm_pause(tm, "job")); /* again: nothing changes */
	ck_assert_int_eq(paused(tm, "job"), 1);
	rt_await_metric(tm, "taskmgr_paused{name=\"job\"}", 1);
	rt_await_metric(tm, "taskmgr_paused{name=\"other\"}", 0);
	/* The workers are idle: a trigger would hand its task to one. */
	ck_assert_msg(tt_wait(workers_idle, tm, RT_DEADLINE), "the workers never waited");
	for (int i = 0; i < N; i++)
		tt_trigger(tm, "job", NULL, ids[i]);
	workers_passed(tm);
	rt_barrier(tm);
	for (int i = 0; i < N; i++) {
		char b[32];

		ck_assert_str_eq(tt_status(tm, "job", ids[i], b), "REQUEST_SENT");
	}
	ck_assert_int_eq(rt_file_count(runs_path, ids[0]), 0);
	/* Durable: a reopened store is still paused. */
	tm_close(tm);
	tm = rt_open(store, 2);
	register_both(tm);
	ck_assert_int_eq(paused(tm, "job"), 1);
	workers_passed(tm);
	ck_assert_ok(tm_resume(tm, "job"));
	ck_assert_ok(tm_resume(tm, "job"));
	ck_assert_int_eq(paused(tm, "job"), 0);
	rt_assert_ran_once(tm, "job", ids, N, runs_path, 0);
	tt_assert_check(tm, -1);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(running_task_finishes_while_paused)
{
	char store[RT_PATH_MAX], *dir = rt_shared_dir(store, runs_path), id[21];
	atomic_int started = 0;
	tm_manager *tm = rt_open(store, 1);
	tm_job_def d = rt_def("job", held, &started);

	atomic_store(&release, 0);
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "job", NULL, id);
	rt_await_atleast(&started, 1);
	ck_assert_ok(tm_pause(tm, "job"));
	atomic_store(&release, 1);
	rt_await_status(tm, "job", id, "COMPLETED");
	tt_close_tmp(tm, dir);
}
END_TEST

static int peer_setup(tm_manager *tm, void *unused)
{
	tm_job_def job = rt_def("job", record, NULL), other = rt_def("other", rt_complete, NULL);

	(void)unused;
	return tm_register(tm, &job) || tm_register(tm, &other);
}

/* This process pauses and triggers, with no worker; another runs. */
START_TEST(pause_holds_in_every_process)
{
	char store[RT_PATH_MAX], *dir = rt_shared_dir(store, runs_path), ids[N][21];
	struct rt_peer runner;
	tm_options o;
	tm_manager *tm;

	rt_options(&o, store, 2);
	rt_peer_start(&runner, &o, peer_setup, NULL, NULL);
	tm = rt_open(store, 0);
	register_both(tm);
	ck_assert_ok(tm_pause(tm, "job"));
	for (int i = 0; i < N; i++)
		tt_trigger(tm, "job", NULL, ids[i]);
	workers_passed(tm); /* run by the other process */
	ck_assert_int_eq(rt_file_lines(runs_path), 0); /* none of "job" */
	ck_assert_ok(tm_resume(tm, "job"));
	rt_assert_ran_once(tm, "job", ids, N, runs_path, runner.pid);
	rt_peer_tell(&runner, "stop");
	rt_peer_reap(&runner);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(bad_calls_are_refused)
{
	char *dir;
	tm_manager *tm = rt_open_tmp(&dir, 0);

	tt_register(tm, "job", 0);
	ck_assert_err(tm_pause(tm, "nobody"), TM_EWRONG_DATA);
	ck_assert_err(tm_resume(tm, "nobody"), TM_EWRONG_DATA);
	ck_assert_err(tm_pause(tm, NULL), TM_EWRONG_DATA);
	ck_assert_err(tm_pause(NULL, "job"), TM_EINVAL);
	ck_assert_int_eq(paused(tm, "job"), 0);
	tt_close_tmp(tm, dir);
	ck_assert_err(tm_resume(tm, "job"), TM_EINVAL);
}
END_TEST

TT_MAIN("runtime_pause",
	paused_name_takes_triggers_and_starts_nothing_until_resumed,
	running_task_finishes_while_paused,
	pause_holds_in_every_process,
	bad_calls_are_refused)
