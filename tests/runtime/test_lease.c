/* Leases (doc/runtime.md, "Leases and fencing"): a runtime thread renews
 * the lease of a running task, never the handler, so a CPU-bound handler
 * that runs for several lease periods keeps its task, and a live owner's
 * task is never run twice by another process watching for expired leases. */
#include <string.h>
#include <unistd.h>

#include "rt.h"

#define LEASE_MS 500
#define TASKS 2

static char runs_path[RT_PATH_MAX];

/* Spins for four lease periods without a single library call. */
static tm_status spin(tm_job *job, void *user)
{
	double end;
	volatile unsigned long n = 0;

	(void)user;
	rt_append_run(runs_path, job);
	end = rt_mono() + 4 * LEASE_MS / 1000.0;
	while (rt_mono() < end)
		n++;
	return TM_COMPLETED;
}

START_TEST(cpu_bound_handler_keeps_its_lease)
{
	char store[RT_PATH_MAX], *dir = rt_shared_dir(store, runs_path), ids[TASKS][21];
	tm_job_def d = rt_def("cpu", spin, NULL);
	struct rt_peer peer;
	tm_options o;
	tm_manager *tm;

	rt_options(&o, store, 1);
	o.lease_ms = LEASE_MS;
	d.max_attempts = 2; /* a lost lease would run it again */
	d.retry_backoff_s = 0.01;
	/* The other process: the same handler, watching the same store. */
	rt_peer_start(&peer, &o, rt_peer_register, NULL, &d);
	tm = rt_open_with(&o);
	ck_assert_ok(tm_register(tm, &d));
	for (int i = 0; i < TASKS; i++)
		tt_trigger(tm, "cpu", NULL, ids[i]);
	rt_assert_ran_once(tm, "cpu", ids, TASKS, runs_path, 0);
	rt_peer_tell(&peer, "stop");
	rt_peer_reap(&peer);
	tt_assert_check(tm, -1);
	tt_close_tmp(tm, dir);
}
END_TEST

static int three_ticks(void *tm)
{
	return tt_stat(tm, NULL, "supervisor_ticks") >= 3;
}

/* tm_stats counts the supervisor's rounds and the CPU time they took. */
START_TEST(the_supervisors_rounds_are_counted)
{
	char *dir = tt_tmpdir();
	tm_options o;
	tm_manager *tm;

	rt_options(&o, dir, 0);
	tm = rt_open_with(&o);
	ck_assert_msg(tt_wait(three_ticks, tm, 30), "the supervisor never ticked");
	ck_assert(tt_stat(tm, NULL, "supervisor_cpu_s") > 0);
	tt_close_tmp(tm, dir);
}
END_TEST

TT_MAIN("runtime_lease",
	cpu_bound_handler_keeps_its_lease,
	the_supervisors_rounds_are_counted)
