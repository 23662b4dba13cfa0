/* A trigger that finds a worker idle here claims its task in its own commit
 * and hands it over (doc/runtime.md, "From trigger to handler"): one commit
 * between the trigger and the handler, the task RUNNING under the run's
 * claim from the start; with no worker idle, the task waits in the queue as
 * before. */
#include <string.h>

#include "rt.h"

static struct {
	atomic_int started, release;
	_Atomic double commits_at_start; /* tm_stats "commits" as the handler began */
	atomic_int status_ok;            /* the task was RUNNING, attempt 1 */
	tm_manager *tm;
} h;

static double stat_of(tm_manager *tm, const char *key)
{
	return tt_stat(tm, NULL, key);
}

static tm_status look_then_wait(tm_job *job, void *user)
{
	char buf[32];

	(void)user;
	atomic_store(&h.commits_at_start, stat_of(h.tm, "commits"));
	atomic_store(&h.status_ok,
	             strcmp(tt_status(h.tm, "job", tm_job_task_id(job), buf), "RUNNING") == 0 &&
	             tm_job_attempt(job) == 1);
	atomic_fetch_add(&h.started, 1);
	tt_wait(rt_flag_set, &h.release, 60);
	return TM_COMPLETED;
}

/* The worker waits for work, with no wake-up on its way to it (the
 * registration's): a worker already woken to claim is not idle. */
static int one_worker_idle(void *tm)
{
	return stat_of(tm, "workers_idle") == 1;
}

/* One worker, and a lease so long that no renewal commits while the test
 * counts commits, however slow the machine (rt_options' lease is renewed
 * every 100 ms). */
static tm_manager *open_one_worker(const char *dir)
{
	tm_options o;

	rt_options(&o, dir, 1);
	o.lease_ms = 60000;
	return rt_open_with(&o);
}

START_TEST(one_commit_lies_between_a_trigger_and_its_handler)
{
	char *dir = tt_tmpdir(), id[21];
	tm_manager *tm = open_one_worker(dir);
	tm_job_def d = rt_def("job", look_then_wait, NULL);
	double before;

	h.tm = tm;
	ck_assert_ok(tm_register(tm, &d));
	ck_assert_msg(tt_wait(one_worker_idle, tm, 30), "the worker never waited");
	before = stat_of(tm, "commits");
	tt_trigger(tm, "job", NULL, id);
	ck_assert(rt_wait_atleast(&h.started, 1, 30));
	/* The trigger's commit, and no claim of the worker's. */
	ck_assert_int_eq((int)(atomic_load(&h.commits_at_start) - before), 1);
	ck_assert_int_eq(atomic_load(&h.status_ok), 1);
	atomic_store(&h.release, 1);
	rt_await_status(tm, "job", id, "COMPLETED");
	rt_assert_attempts(tm, "job", id, 1);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(with_every_worker_busy_a_task_waits_in_the_queue)
{
	char *dir = tt_tmpdir(), first[21], second[21], buf[32];
	tm_manager *tm = rt_open(dir, 1);
	tm_job_def d = rt_def("job", look_then_wait, NULL);

	h.tm = tm;
	atomic_store(&h.started, 0);
	atomic_store(&h.release, 0);
	ck_assert_ok(tm_register(tm, &d));
	ck_assert_msg(tt_wait(one_worker_idle, tm, 30), "the worker never waited");
	tt_trigger(tm, "job", NULL, first);
	ck_assert(rt_wait_atleast(&h.started, 1, 30));
	tt_trigger(tm, "job", NULL, second);
	ck_assert_str_eq(tt_status(tm, "job", second, buf), "REQUEST_SENT");
	atomic_store(&h.release, 1);
	rt_await_status(tm, "job", second, "COMPLETED");
	rt_await_status(tm, "job", first, "COMPLETED");
	tt_close_tmp(tm, dir);
}
END_TEST

TT_MAIN("runtime_handoff",
	one_commit_lies_between_a_trigger_and_its_handler,
	with_every_worker_busy_a_task_waits_in_the_queue)
