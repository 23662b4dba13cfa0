/* Cron schedules (doc/runtime.md, "Cron schedules"): a bad expression or
 * zone is refused by tm_register and leaves nothing; each due time fires
 * one task, create_reason "cron", at the instant its zone gives, across
 * the daylight saving time changes as the rule says; after downtime one
 * missed run fires, not a backlog; a registration fires nothing for the
 * past; an exclusive name busy lets the due time pass; a paused name
 * gets its task; three processes (nodes, on PostgreSQL) racing fire each
 * due time once.
 *
 * No test waits for a due time: the store's clock is moved with the test
 * clock (rt_clock_*), which every process opened after rt_clock_start
 * shares.  The names have no handler, so their tasks stay REQUEST_SENT,
 * and a timeout far away, so that moving the clock does not fail them. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rt.h"

/* Instants of the tests, epoch seconds (UTC). */
#define JAN_15_10H 1894701600.0   /* 2030-01-15T10:00:00Z */
#define JUL_1_07H 1909119600.0    /* 2030-07-01T07:00:00Z: 09:00 in Berlin (CEST) */
#define MAR_30_23H 1901142000.0   /* 2030-03-30T23:00:00Z */
#define MAR_31_01H 1901149200.0   /* 2030-03-31T01:00:00Z: Berlin goes 02:00 CET -> 03:00 CEST */
#define APR_1_0030 1901233800.0   /* 2030-04-01T00:30:00Z: 02:30 CEST */
#define OCT_26_23H 1919286000.0   /* 2030-10-26T23:00:00Z */
#define OCT_27_0030 1919291400.0  /* 2030-10-27T00:30:00Z: 02:30 CEST, the first */
#define OCT_27_0130 1919295000.0  /* 2030-10-27T01:30:00Z: 02:30 CET, the second */
#define OCT_28_0130 1919381400.0  /* 2030-10-28T01:30:00Z: 02:30 CET */

#define HOUR 3600.0
#define ROUNDS 5 /* due times the processes race for */

/* A store at <dir>/store, on the test clock <dir>/clock. */
struct clocked {
	char *dir;
	char store[RT_PATH_MAX];
};

static void clocked_start(struct clocked *c, double at)
{
	c->dir = rt_shared_dir(c->store, NULL);
	rt_clock_start(c->dir);
	rt_clock_set(at);
}

static void clocked_end(tm_manager *tm, struct clocked *c)
{
	tm_close(tm);
	rt_clock_stop();
	tt_rmdir(c->dir);
	free(c->dir);
}

static tm_job_def cron_def(const char *name, const char *cron, const char *tz)
{
	tm_job_def d = rt_def(name, NULL, NULL);

	d.cron = cron;
	d.cron_tz = tz;
	d.timeout_s = 1e9;
	return d;
}

/* How many tasks name has; each must be a schedule's, waiting. */
static int cron_tasks(tm_manager *tm, const char *name)
{
	cJSON *all = tt_list_all(tm, name, 50, 0), *t;
	int n = 0;

	cJSON_ArrayForEach(t, all) {
		ck_assert_str_eq(rt_detail_str(t, "create_reason"), "cron");
		ck_assert_str_eq(rt_status_of(t), "REQUEST_SENT");
		n++;
	}
	cJSON_Delete(all);
	return n;
}

#define assert_cron_next(tm, name, at) \
	ck_assert_double_eq_tol(tt_stat((tm), (name), "cron_next"), (at), 1e-6)

/* Whether tm_stats lists the name. */
static int stats_has(tm_manager *tm, const char *name)
{
	char *out = NULL;
	cJSON *j;
	int has;

	ck_assert_ok(tm_stats(tm, &out));
	j = tt_json(out);
	has = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "names"),
	                                       name) != NULL;
	cJSON_Delete(j);
	return has;
}

START_TEST(bad_schedule_is_refused_and_leaves_nothing)
{
	static const struct {
		const char *cron, *tz, *says;
	} bad[] = {
		{ "61 * * * *", NULL, "field 1 (minute) \"61\"" },
		{ "0 24 * * *", NULL, "field 2 (hour) \"24\"" },
		{ "0 0 32 * *", NULL, "field 3 (day of month) \"32\"" },
		{ "0 0 * 13 *", NULL, "field 4 (month) \"13\"" },
		{ "0 0 * * FUN", NULL, "field 5 (day of week) \"FUN\"" },
		{ "*/0 * * * *", NULL, "field 1 (minute) \"*/0\"" },
		{ "0 5-2 * * *", NULL, "field 2 (hour) \"5-2\"" },
		{ "0 1,,2 * * *", NULL, "field 2 (hour)" },
		{ "0 0 * *", NULL, "4 fields, expected 5" },
		{ "@fortnightly", NULL, "unknown macro \"@fortnightly\"" },
		{ "", NULL, "the expression is empty" },
		{ "0 0 30 2 *", NULL, "is never due" },
		{ "0 3 * * *", "Mars/Olympus_Mons", "cron_tz \"Mars/Olympus_Mons\": no such time zone" },
		{ "0 3 * * *", "../etc/passwd", "not a time zone name" },
	};
	char *dir;
	tm_manager *tm = tt_open_tmp(&dir, 0);
	tm_job_def d;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		d = cron_def("nightly", bad[i].cron, bad[i].tz);
		tt_clear_error();
		ck_assert_err(tm_register(tm, &d), TM_EINVAL);
		ck_assert_msg(strstr(tm_last_error(), bad[i].says) != NULL &&
		              strncmp(tm_last_error(), "nightly: ", 9) == 0,
		              "cron \"%s\" tz %s: the message \"%s\" does not say \"%s\"",
		              bad[i].cron, bad[i].tz ? bad[i].tz : "(none)",
		              tm_last_error(), bad[i].says);
		ck_assert_msg(!stats_has(tm, "nightly"), "cron \"%s\" left the name behind",
		              bad[i].cron);
	}
	/* A zone without a schedule is refused too. */
	d = cron_def("nightly", NULL, "Europe/Berlin");
	ck_assert_err(tm_register(tm, &d), TM_EINVAL);
	ck_assert_ptr_nonnull(strstr(tm_last_error(), "cron_tz"));
	ck_assert(!stats_has(tm, "nightly"));
	/* Then the name registers as if nothing had happened. */
	d = cron_def("nightly", "0 3 * * *", "Europe/Berlin");
	ck_assert_ok(tm_register(tm, &d));
	ck_assert(stats_has(tm, "nightly"));
	ck_assert_msg(tt_stat(tm, "nightly", "cron_next") > rt_now(), "no cron_next");
	tt_close_tmp(tm, dir);
}
END_TEST

/* The names and macros of the syntax register; a name without a schedule
 * has no cron_next. */
START_TEST(good_schedules_register)
{
	static const char *const good[] = {
		"@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@midnight",
		"*/15 9-17 * * MON-FRI", "0 0 1,15 * 5", "30 2 * JAN-mar,Dec sun",
		"0 0 29 2 *", "5/20 * * * 7", " 0\t12 * * * ",
	};
	char *dir, name[32];
	tm_manager *tm = tt_open_tmp(&dir, 0);
	tm_job_def d;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(name, sizeof(name), "job%zu", i);
		d = cron_def(name, good[i], i % 2 ? "America/New_York" : NULL);
		ck_assert_ok(tm_register(tm, &d));
		ck_assert_msg(tt_stat(tm, name, "cron_next") > rt_now(), "%s: no cron_next",
		              good[i]);
	}
	d = rt_def("plain", NULL, NULL);
	ck_assert_ok(tm_register(tm, &d));
	ck_assert(stats_has(tm, "plain"));
	ck_assert(tt_stat(tm, "plain", "cron_next") == 0);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(due_time_fires_one_task)
{
	struct clocked c;
	tm_manager *tm;
	tm_job_def d = cron_def("hourly", "0 * * * *", NULL);

	clocked_start(&c, JAN_15_10H - 120);
	tm = rt_open(c.store, 0);
	ck_assert_ok(tm_register(tm, &d));
	/* Registered now: the due times before fire nothing. */
	assert_cron_next(tm, "hourly", JAN_15_10H);
	rt_barrier(tm);
	ck_assert_int_eq(cron_tasks(tm, "hourly"), 0);
	rt_clock_set(JAN_15_10H + 1);
	rt_await_count(tm, "hourly", 1);
	rt_await_metric(tm, "taskmgr_triggers_total{name=\"hourly\"}", 1);
	rt_barrier(tm);
	ck_assert_int_eq(cron_tasks(tm, "hourly"), 1);
	assert_cron_next(tm, "hourly", JAN_15_10H + HOUR);
	rt_clock_set(JAN_15_10H + HOUR + 1);
	rt_await_count(tm, "hourly", 2);
	rt_barrier(tm);
	ck_assert_int_eq(cron_tasks(tm, "hourly"), 2);
	tt_assert_check(tm, -1);
	clocked_end(tm, &c);
}
END_TEST

START_TEST(downtime_fires_one_missed_run)
{
	struct clocked c;
	tm_manager *tm;
	tm_job_def d = cron_def("hourly", "@hourly", NULL);

	clocked_start(&c, JAN_15_10H - 120);
	tm = rt_open(c.store, 0);
	ck_assert_ok(tm_register(tm, &d));
	tm_close(tm);
	/* Ten due times pass while no process is open. */
	rt_clock_set(JAN_15_10H + 9 * HOUR + 60);
	tm = rt_open(c.store, 0);
	ck_assert_ok(tm_register(tm, &d));
	rt_await_count(tm, "hourly", 1);
	rt_barrier(tm);
	rt_barrier(tm);
	ck_assert_int_eq(cron_tasks(tm, "hourly"), 1);
	assert_cron_next(tm, "hourly", JAN_15_10H + 10 * HOUR);
	clocked_end(tm, &c);
}
END_TEST

/* 09:00 in Berlin in summer is 07:00Z: not before, and at once after. */
START_TEST(zone_gives_the_instant)
{
	struct clocked c;
	tm_manager *tm;
	tm_job_def d = cron_def("morning", "0 9 * * *", "Europe/Berlin");

	clocked_start(&c, JUL_1_07H - 600);
	tm = rt_open(c.store, 0);
	ck_assert_ok(tm_register(tm, &d));
	assert_cron_next(tm, "morning", JUL_1_07H);
	rt_clock_set(JUL_1_07H - 300);
	rt_barrier(tm);
	ck_assert_int_eq(cron_tasks(tm, "morning"), 0);
	rt_clock_set(JUL_1_07H + 1);
	rt_await_count(tm, "morning", 1);
	assert_cron_next(tm, "morning", JUL_1_07H + 24 * HOUR);
	clocked_end(tm, &c);
}
END_TEST

/* "30 2 * * *" in Berlin: 02:30 does not exist on 31 March 2030, and is
 * due when the clock jumps, at 03:00 CEST; it exists twice on 27 October,
 * and is due at the first only. */
START_TEST(daylight_saving_time_follows_the_rule)
{
	struct clocked c;
	tm_manager *tm;
	tm_job_def d = cron_def("night", "30 2 * * *", "Europe/Berlin");

	clocked_start(&c, MAR_30_23H);
	tm = rt_open(c.store, 0);
	ck_assert_ok(tm_register(tm, &d));
	assert_cron_next(tm, "night", MAR_31_01H);
	rt_clock_set(MAR_31_01H + 1);
	rt_await_count(tm, "night", 1);
	assert_cron_next(tm, "night", APR_1_0030);
	/* Months later: one missed run, then the overlap. */
	rt_clock_set(OCT_26_23H);
	rt_await_count(tm, "night", 2);
	assert_cron_next(tm, "night", OCT_27_0030);
	rt_clock_set(OCT_27_0030 + 1);
	rt_await_count(tm, "night", 3);
	assert_cron_next(tm, "night", OCT_28_0130);
	rt_clock_set(OCT_27_0130 + 1);
	rt_barrier(tm);
	ck_assert_int_eq(cron_tasks(tm, "night"), 3);
	clocked_end(tm, &c);
}
END_TEST

START_TEST(exclusive_name_busy_skips_the_due_time)
{
	struct clocked c;
	tm_manager *tm;
	tm_job_def d = cron_def("hourly", "0 * * * *", NULL);
	char id[21];
	cJSON *all;

	d.flags = TM_JOB_EXCLUSIVE;
	clocked_start(&c, JAN_15_10H - 120);
	tm = rt_open(c.store, 0);
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "hourly", NULL, id);
	rt_clock_set(JAN_15_10H + 1);
	rt_barrier(tm);
	ck_assert_int_eq(tt_count(tm, "hourly"), 1);
	/* Passed, not postponed: the task ending does not bring it back. */
	assert_cron_next(tm, "hourly", JAN_15_10H + HOUR);
	rt_assert_cancel_gives(tm, "hourly", id, "CANCELLED");
	rt_barrier(tm);
	ck_assert_int_eq(tt_count(tm, "hourly"), 1);
	rt_clock_set(JAN_15_10H + HOUR + 1);
	rt_await_count(tm, "hourly", 2);
	all = tt_list_all(tm, "hourly", 50, 0); /* newest first */
	ck_assert_str_eq(rt_detail_str(cJSON_GetArrayItem(all, 0), "create_reason"), "cron");
	cJSON_Delete(all);
	clocked_end(tm, &c);
}
END_TEST

START_TEST(paused_name_gets_its_task)
{
	struct clocked c;
	tm_manager *tm;
	tm_job_def d = cron_def("hourly", "0 * * * *", NULL);

	clocked_start(&c, JAN_15_10H - 120);
	tm = rt_open(c.store, 0);
	ck_assert_ok(tm_register(tm, &d));
	ck_assert_ok(tm_pause(tm, "hourly"));
	rt_clock_set(JAN_15_10H + 1);
	rt_await_count(tm, "hourly", 1);
	ck_assert_int_eq(cron_tasks(tm, "hourly"), 1);
	clocked_end(tm, &c);
}
END_TEST

/* ---- three processes ------------------------------------------------------ */

/* A full supervisor tick of tm began and ended after the call: 1, or 0 at
 * the deadline.  No Check call (children use it). */
static int ticks_passed(tm_manager *tm)
{
	double end = rt_mono() + RT_DEADLINE, first = -1;
	struct timespec ms = { 0, 1000000 };

	while (rt_mono() < end) {
		char *out = NULL;
		cJSON *j, *n;
		double ticks = -1;

		if (tm_stats(tm, &out) == TM_OK) {
			j = cJSON_Parse(out);
			n = cJSON_GetObjectItemCaseSensitive(j, "supervisor_ticks");
			ticks = cJSON_IsNumber(n) ? n->valuedouble : -1;
			cJSON_Delete(j);
			tm_free(out);
		}
		if (first < 0)
			first = ticks;
		else if (ticks >= first + 2)
			return 1;
		nanosleep(&ms, NULL);
	}
	return 0;
}

/* A child: open the store, register the schedule, say "ready"; then for
 * each "tick" line, answer "ticked" once a whole tick of its own passed;
 * "stop" (or the end of the pipe) closes it. */
static void peer(const char *store, const tm_job_def *d, int ready, int ctl)
{
	tm_options o;
	tm_manager *tm;
	char line[16];

	rt_options(&o, store, 0);
	tm = rt_child_open(&o);
	if (tm == NULL || tm_register(tm, d) != TM_OK)
		_exit(3);
	rt_send(ready, "ready");
	while (rt_recv(ctl, line, sizeof(line)) && strcmp(line, "tick") == 0) {
		if (!ticks_passed(tm))
			_exit(4);
		rt_send(ready, "ticked");
	}
	tm_close(tm);
	_exit(0);
}

START_TEST(three_processes_fire_each_due_time_once)
{
	struct clocked c;
	tm_manager *tm;
	tm_job_def d = cron_def("hourly", "0 * * * *", NULL);
	struct { pid_t pid; int ready, ctl; } p[2];
	char line[16];

	clocked_start(&c, JAN_15_10H - 120);
	for (int i = 0; i < 2; i++) {
		int ready[2], ctl[2];

		ck_assert_int_eq(pipe(ready), 0);
		ck_assert_int_eq(pipe(ctl), 0);
		p[i].pid = rt_fork();
		if (p[i].pid == 0) {
			close(ready[0]);
			close(ctl[1]);
			peer(c.store, &d, ready[1], ctl[0]);
		}
		close(ready[1]);
		close(ctl[0]);
		p[i].ready = ready[0];
		p[i].ctl = ctl[1];
		ck_assert_msg(rt_recv(p[i].ready, line, sizeof(line)), "peer %d did not start", i);
	}
	tm = rt_open(c.store, 0);
	ck_assert_ok(tm_register(tm, &d));
	for (int k = 0; k < ROUNDS; k++) {
		/* Every process sees the due time come at once. */
		rt_clock_set(JAN_15_10H + k * HOUR + 1);
		rt_await_count(tm, "hourly", k + 1);
		for (int i = 0; i < 2; i++)
			rt_send(p[i].ctl, "tick");
		for (int i = 0; i < 2; i++)
			ck_assert_msg(rt_recv(p[i].ready, line, sizeof(line)) &&
			              strcmp(line, "ticked") == 0, "peer %d did not tick", i);
		ck_assert(ticks_passed(tm));
		ck_assert_int_eq(cron_tasks(tm, "hourly"), k + 1);
	}
	for (int i = 0; i < 2; i++) {
		rt_send(p[i].ctl, "stop");
		tt_reap(p[i].pid);
		close(p[i].ready);
		close(p[i].ctl);
	}
	tt_assert_check(tm, -1);
	clocked_end(tm, &c);
}
END_TEST

TT_MAIN("runtime_cron",
	bad_schedule_is_refused_and_leaves_nothing,
	good_schedules_register,
	due_time_fires_one_task,
	downtime_fires_one_missed_run,
	zone_gives_the_instant,
	daylight_saving_time_follows_the_rule,
	exclusive_name_busy_skips_the_due_time,
	paused_name_gets_its_task,
	three_processes_fire_each_due_time_once)
