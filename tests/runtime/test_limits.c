/* Limits (doc/api.md, "Registering task names"; doc/runtime.md, "Workers"):
 * a name's concurrency limit caps the handlers running at once; an
 * exclusive name never has two active tasks. */
#include <string.h>
#include <time.h>

#include "rt.h"

#define TASKS 12
#define LIMIT 2

static struct {
	atomic_int active, max, done, runs, release;
} h;

static int partner_or_alone(void *p)
{
	(void)p;
	return atomic_load(&h.active) >= LIMIT ||
	       atomic_load(&h.done) + atomic_load(&h.active) >= TASKS;
}

/* Counts handlers at once; waits (up to 2 s) for a partner, then holds
 * 10 ms, so that the limit is reached whenever the runtime allows it. */
static tm_status counted(tm_job *job, void *user)
{
	struct timespec ms = { 0, 10000000 };

	(void)job;
	(void)user;
	rt_count_running(&h.active, &h.max);
	atomic_fetch_add(&h.runs, 1);
	tt_wait(partner_or_alone, NULL, 2);
	nanosleep(&ms, NULL);
	atomic_fetch_sub(&h.active, 1);
	atomic_fetch_add(&h.done, 1);
	return TM_COMPLETED;
}

START_TEST(concurrency_limit_is_respected)
{
	char *dir, ids[TASKS][21];
	tm_manager *tm = rt_open_tmp(&dir, 6);
	tm_job_def d = rt_def("job", counted, NULL);

	memset(&h, 0, sizeof(h));
	d.concurrency = LIMIT;
	ck_assert_ok(tm_register(tm, &d));
	for (int i = 0; i < TASKS; i++)
		tt_trigger(tm, "job", NULL, ids[i]);
	for (int i = 0; i < TASKS; i++)
		rt_await_status(tm, "job", ids[i], "COMPLETED");
	printf("concurrency %d: at most %d handlers at once\n", LIMIT, atomic_load(&h.max));
	ck_assert_int_le(atomic_load(&h.max), LIMIT);
	ck_assert_int_eq(atomic_load(&h.max), LIMIT);
	ck_assert_int_eq(atomic_load(&h.runs), TASKS);
	tt_close_tmp(tm, dir);
}
END_TEST

static tm_status blocker(tm_job *job, void *user)
{
	(void)job;
	(void)user;
	atomic_fetch_add(&h.runs, 1);
	tt_wait(rt_flag_set, &h.release, 60);
	return TM_COMPLETED;
}

START_TEST(exclusive_name_refuses_a_second_active_task)
{
	char *dir, first[21], next[21], *out;
	tm_manager *tm = rt_open_tmp(&dir, 2);
	tm_job_def d = rt_def("job", blocker, NULL);

	memset(&h, 0, sizeof(h));
	d.flags = TM_JOB_EXCLUSIVE;
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "job", NULL, first);
	/* Waiting, then running, then cancel requested: active all along. */
	ck_assert_refused(tm_trigger(tm, "job", NULL, 0, &out), TM_EALREADY_RUNNING, out);
	rt_await_atleast(&h.runs, 1);
	ck_assert_err(tm_trigger(tm, "job", NULL, 0, NULL), TM_EALREADY_RUNNING);
	ck_assert_ok(tm_cancel(tm, "job", first, NULL));
	ck_assert_err(tm_trigger(tm, "job", NULL, 0, NULL), TM_EALREADY_RUNNING);
	atomic_store(&h.release, 1);
	rt_await_status(tm, "job", first, "COMPLETED"); /* finished anyway */
	tt_trigger(tm, "job", NULL, next);
	rt_await_status(tm, "job", next, "COMPLETED");
	ck_assert_int_eq(atomic_load(&h.runs), 2);
	tt_close_tmp(tm, dir);
}
END_TEST

TT_MAIN("runtime_limits",
	concurrency_limit_is_respected,
	exclusive_name_refuses_a_second_active_task)
