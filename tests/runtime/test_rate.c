/* Rate limits (doc/runtime.md, "Rate limits"): tm_job_def.rate_per_s and
 * burst make a token bucket on a name's starts, kept in the store and so
 * shared by every process on it.
 *
 * How the bucket is checked without timing limits.  Each handler notes
 * when it began (CLOCK_REALTIME, the clock of the stores on this machine).
 * A start comes after its claim's commit, and the claim took its token
 * before that, so the starts can only be later than the bucket allowed,
 * never sooner: the k-th start comes no sooner than (k - burst) / rate
 * after the first trigger, however slow the machine.  Between two starts
 * the same holds with the tokens claimed earlier but started later added:
 * at most a batch of `burst` per worker.  Starting "about at the rate" is
 * shown by every task completing, and fairness by events: a name without
 * a limit completes its tasks while the limited one still has one waiting
 * that its bucket cannot pay for in the test's lifetime. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rt.h"

#define MAX_STARTS 64
#define NEVER 0.01 /* tokens a second: the next one is 100 s away */

static char runs_path[RT_PATH_MAX];

static int64_t realtime_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A handler that notes its start, "<microseconds since the epoch> <pid>",
 * in the runs file (from any process), and completes. */
static tm_status note_start(tm_job *job, void *user)
{
	char line[64];

	(void)job;
	(void)user;
	snprintf(line, sizeof(line), "%lld %d", (long long)realtime_us(), (int)getpid());
	rt_append(runs_path, line);
	return TM_COMPLETED;
}

static tm_job_def limited(const char *name, tm_status (*run)(tm_job *, void *),
                          double rate, unsigned burst)
{
	tm_job_def d = rt_def(name, run, NULL);

	d.rate_per_s = rate;
	d.burst = burst;
	return d;
}

/* The starts noted in the runs file, sorted; returns how many. */
static int read_starts(int64_t *s, int max)
{
	FILE *f = fopen(runs_path, "r");
	long long us;
	int pid, n = 0;

	ck_assert_ptr_nonnull(f);
	while (n < max && fscanf(f, "%lld %d", &us, &pid) == 2)
		s[n++] = us;
	fclose(f);
	for (int i = 1; i < n; i++) /* insertion sort: a few dozen */
		for (int j = i; j > 0 && s[j - 1] > s[j]; j--) {
			int64_t x = s[j];

			s[j] = s[j - 1];
			s[j - 1] = x;
		}
	return n;
}

/* The n sorted starts fit a bucket of `burst` tokens and `rate` a second,
 * full at t0 at most (it is made at its first take, after the trigger):
 * - the k-th start (from 1) comes no sooner than (k - burst) / rate after
 *   t0;
 * - starts i..j are no more than the bucket's burst, its refill between
 *   them, and the tokens taken before start i by claims whose tasks had
 *   not started yet (`in_flight`: a batch of at most burst per worker). */
static void assert_fit(const int64_t *s, int n, int64_t t0, double rate,
                       unsigned burst, int in_flight)
{
	const double eps = 1e-3; /* rounding of tokens and microseconds */

	for (int k = 1; k <= n; k++) {
		double d = (double)(s[k - 1] - t0) / 1e6;

		ck_assert_msg(k <= burst + rate * d + eps,
		              "start %d of %d came %.6f s after the trigger: a bucket of "
		              "%u at %g/s allows %.3f by then", k, n, d, burst, rate,
		              burst + rate * d);
	}
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++) {
			double d = (double)(s[j] - s[i]) / 1e6;

			ck_assert_msg(j - i + 1 <= burst + rate * d + in_flight + eps,
			              "starts %d..%d (%d of them) within %.6f s: more than %u + "
			              "%g/s with %d claimed earlier", i + 1, j + 1, j - i + 1, d,
			              burst, rate, in_flight);
		}
}

/* Trigger n tasks of name in one call; their ids to ids. */
static void trigger_n(tm_manager *tm, const char *name, int n, char ids[][21])
{
	char body[8 * MAX_STARTS] = "[", *out = NULL;
	const cJSON *arr, *id;
	cJSON *j;
	int i = 0;

	ck_assert_int_le(n, MAX_STARTS);
	for (int k = 0; k < n; k++)
		strcat(body, k ? ",{}" : "{}");
	strcat(body, "]");
	ck_assert_ok(tm_trigger_many(tm, name, body, 0, &out));
	j = tt_json(out);
	arr = cJSON_GetObjectItemCaseSensitive(j, "task_ids");
	cJSON_ArrayForEach(id, arr)
		snprintf(ids[i++], 21, "%s", id->valuestring);
	ck_assert_int_eq(i, n);
	cJSON_Delete(j);
}

static void await_all(tm_manager *tm, const char *name, char ids[][21], int n)
{
	for (int i = 0; i < n; i++)
		rt_await_status(tm, name, ids[i], "COMPLETED");
}

/* ---- registration ------------------------------------------------------------ */

static void assert_refused(tm_manager *tm, double rate, unsigned burst, const char *msg)
{
	tm_job_def d = limited("job", rt_complete, rate, burst);

	ck_assert_err(tm_register(tm, &d), TM_EINVAL);
	ck_assert_msg(strstr(tm_last_error(), msg) != NULL,
	              "rate %g, burst %u: \"%s\" does not say \"%s\"", rate, burst,
	              tm_last_error(), msg);
}

START_TEST(register_checks_rate_and_burst)
{
	char *dir, id[21];
	tm_manager *tm = rt_open_tmp(&dir, 0);
	tm_job_def d = limited("job", rt_complete, 2.5, 0), free_ = rt_def("free", rt_complete, NULL);
	const char *const bad_rate = "rate_per_s of job must be finite, from 0 (no limit) to 1e6";

	assert_refused(tm, 0, 3, "burst of job is set without rate_per_s");
	assert_refused(tm, -1, 1, bad_rate);
	assert_refused(tm, NAN, 1, bad_rate);
	assert_refused(tm, INFINITY, 1, bad_rate);
	assert_refused(tm, 1e6 * 1.000001, 1, bad_rate);
	/* Nothing was registered by a refusal. */
	ck_assert_err(tm_trigger(tm, "job", NULL, 0, NULL), TM_EWRONG_DATA);
	/* A rate alone has a bucket of 1; tm_stats shows the limit. */
	ck_assert_ok(tm_register(tm, &d));
	ck_assert_ok(tm_register(tm, &free_));
	tt_trigger(tm, "job", NULL, id);
	tt_trigger(tm, "free", NULL, id);
	{
		char *out = NULL;
		cJSON *j, *names, *rate;

		ck_assert_ok(tm_stats(tm, &out));
		j = tt_json(out);
		names = cJSON_GetObjectItemCaseSensitive(j, "names");
		rate = cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(names, "job"), "rate");
		ck_assert_msg(cJSON_IsObject(rate), "no names.job.rate in tm_stats");
		ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(rate, "per_s")->valuedouble, 2.5);
		ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(rate, "burst")->valuedouble, 1);
		/* No worker: nothing taken, the new bucket is full. */
		ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(rate, "tokens")->valuedouble, 1);
		ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(names, "free"), "rate"));
		cJSON_Delete(j);
	}
	/* The largest rate is taken. */
	d = limited("fast", rt_complete, 1e6, 1000);
	ck_assert_ok(tm_register(tm, &d));
	tt_close_tmp(tm, dir);
}
END_TEST

/* ---- one process ------------------------------------------------------------- */

#define N 24
#define RATE 20.0
#define BURST 3
#define WORKERS 3

START_TEST(starts_never_outrun_the_bucket)
{
	char store[RT_PATH_MAX], *dir = rt_shared_dir(store, runs_path), ids[N][21];
	tm_manager *tm = rt_open(store, WORKERS);
	tm_job_def d = limited("job", note_start, RATE, BURST);
	int64_t t0, starts[MAX_STARTS];

	ck_assert_ok(tm_register(tm, &d));
	t0 = realtime_us();
	trigger_n(tm, "job", N, ids);
	await_all(tm, "job", ids, N);
	ck_assert_int_eq(read_starts(starts, MAX_STARTS), N);
	assert_fit(starts, N, t0, RATE, BURST, WORKERS * BURST);
	tt_assert_check(tm, N);
	tt_close_tmp(tm, dir);
}
END_TEST

/* A name's tasks wait at the head of the queue for a token due in 100 s;
 * the tasks of a name without a limit, queued behind them, run. */
START_TEST(unlimited_name_is_not_held_back)
{
	char store[RT_PATH_MAX], *dir = rt_shared_dir(store, runs_path), slow[2][21], fast[5][21];
	tm_manager *tm = rt_open(store, 2);
	tm_job_def s = limited("slow", note_start, NEVER, 1), f = rt_def("fast", rt_complete, NULL);
	char b[32];

	ck_assert_ok(tm_register(tm, &s));
	ck_assert_ok(tm_register(tm, &f));
	/* One by one: the queue is in trigger order. */
	tt_trigger(tm, "slow", NULL, slow[0]);
	tt_trigger(tm, "slow", NULL, slow[1]);
	trigger_n(tm, "fast", 5, fast);
	await_all(tm, "fast", fast, 5);
	/* The bucket paid for one; the other still waits, queued first. */
	rt_await_status(tm, "slow", slow[0], "COMPLETED");
	ck_assert_str_eq(tt_status(tm, "slow", slow[1], b), "REQUEST_SENT");
	ck_assert_int_eq(rt_file_lines(runs_path), 1);
	ck_assert(tt_stat(tm, NULL, "queue_depth") == 1);
	/* A task waiting for a token is cancelled at once. */
	rt_assert_cancel_gives(tm, "slow", slow[1], "CANCELLED");
	tt_assert_check(tm, 7);
	tt_close_tmp(tm, dir);
}
END_TEST

/* A task ended by the claim that dequeues it (cancelled while it waited)
 * takes no token: with a bucket of 1 that refills in 100 s, the task
 * behind it takes the one token and runs. */
START_TEST(cancelled_waiting_task_takes_no_token)
{
	char store[RT_PATH_MAX], *dir = rt_shared_dir(store, runs_path), ids[2][21];
	tm_manager *tm = rt_open(store, 1);
	tm_job_def d = limited("job", note_start, NEVER, 1);
	char *out = NULL;

	ck_assert_ok(tm_register(tm, &d));
	/* Paused, so that no claim sees the first task before the second is
	 * queued behind it. */
	ck_assert_ok(tm_pause(tm, "job"));
	tt_trigger(tm, "job", NULL, ids[0]); /* first in the queue */
	tt_trigger(tm, "job", NULL, ids[1]);
	/* As an external party may: a cancel request on a waiting task,
	 * which the claim that dequeues it carries out. */
	ck_assert_ok(tm_patch(tm, "job", ids[0], "{\"status\": \"CANCELLED_REQUESTED\"}", &out));
	tm_free(out);
	ck_assert_ok(tm_resume(tm, "job"));
	rt_await_status(tm, "job", ids[0], "CANCELLED");
	rt_await_status(tm, "job", ids[1], "COMPLETED");
	ck_assert_int_eq(rt_file_lines(runs_path), 1);
	tt_close_tmp(tm, dir);
}
END_TEST

/* With the supervisor's poll a minute long, only the worker's own wake-up
 * for the next token can start the tasks the bucket holds back. */
START_TEST(worker_wakes_for_the_next_token)
{
	char store[RT_PATH_MAX], *dir = rt_shared_dir(store, runs_path), ids[4][21];
	tm_options o;
	tm_manager *tm;
	tm_job_def d = limited("job", note_start, 4, 1);
	int64_t t0, starts[MAX_STARTS];

	rt_options(&o, store, 1);
	o.poll_ms = o.lease_ms = 60000;
	tm = rt_open_with(&o);
	ck_assert_ok(tm_register(tm, &d));
	t0 = realtime_us();
	trigger_n(tm, "job", 4, ids);
	await_all(tm, "job", ids, 4);
	ck_assert_int_eq(read_starts(starts, MAX_STARTS), 4);
	assert_fit(starts, 4, t0, 4, 1, 1);
	tt_close_tmp(tm, dir);
}
END_TEST

static double cpu_s(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int workers_idle(void *tm)
{
	return tt_stat(tm, NULL, "workers_idle") == 2;
}

struct ticks {
	tm_manager *tm;
	double until;
};

static int ticked(void *p)
{
	struct ticks *t = p;

	return tt_stat(t->tm, NULL, "supervisor_ticks") >= t->until;
}

/* While a name waits for a token 100 s away, the workers sleep: over ten
 * supervisor ticks they use a small part of the time (a worker polling
 * the bucket would use all of it). */
START_TEST(dry_bucket_keeps_the_workers_asleep)
{
	char store[RT_PATH_MAX], *dir = rt_shared_dir(store, runs_path), ids[2][21];
	tm_manager *tm = rt_open(store, 2);
	tm_job_def d = limited("job", note_start, NEVER, 1);
	struct ticks ticks = { tm, 0 };
	double wall, process, self, sup;
	char b[32];

	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "job", NULL, ids[0]); /* first in the queue */
	tt_trigger(tm, "job", NULL, ids[1]);
	rt_await_status(tm, "job", ids[0], "COMPLETED");
	ck_assert_msg(tt_wait(workers_idle, tm, RT_DEADLINE), "the workers never waited");
	wall = rt_mono();
	process = cpu_s(CLOCK_PROCESS_CPUTIME_ID);
	self = cpu_s(CLOCK_THREAD_CPUTIME_ID);
	sup = tt_stat(tm, NULL, "supervisor_cpu_s");
	ticks.until = tt_stat(tm, NULL, "supervisor_ticks") + 10;
	ck_assert_msg(tt_wait(ticked, &ticks, RT_DEADLINE), "the supervisor stopped ticking");
	wall = rt_mono() - wall;
	self = cpu_s(CLOCK_THREAD_CPUTIME_ID) - self;
	sup = tt_stat(tm, NULL, "supervisor_cpu_s") - sup;
	process = cpu_s(CLOCK_PROCESS_CPUTIME_ID) - process;
	/* What is left is the workers' (and the supervisor's light checks
	 * between ticks, which nothing here sets off). */
	ck_assert_msg(process - self - sup < 0.25 * wall + 0.01,
	              "the workers used %.3f s of CPU in %.3f s while the bucket was dry",
	              process - self - sup, wall);
	ck_assert_str_eq(tt_status(tm, "job", ids[1], b), "REQUEST_SENT");
	tt_close_tmp(tm, dir);
}
END_TEST

/* ---- several processes --------------------------------------------------------- */

#define SHARED_N 24
#define SHARED_RATE 10.0
#define SHARED_BURST 2

static int peer_setup(tm_manager *tm, void *unused)
{
	tm_job_def d = limited("job", note_start, SHARED_RATE, SHARED_BURST);

	(void)unused;
	return tm_register(tm, &d);
}

/* Three processes, a worker each, draw on one bucket: together they start
 * no more than it allows (three buckets would start the tasks three times
 * as fast). */
START_TEST(bucket_is_shared_by_processes)
{
	char store[RT_PATH_MAX], *dir = rt_shared_dir(store, runs_path), ids[SHARED_N][21];
	struct rt_peer peers[2];
	tm_options o;
	tm_manager *tm;
	int64_t t0, starts[MAX_STARTS];

	rt_options(&o, store, 1);
	for (int i = 0; i < 2; i++)
		rt_peer_start(&peers[i], &o, peer_setup, NULL, NULL);
	tm = rt_open_with(&o);
	ck_assert_int_eq(peer_setup(tm, NULL), TM_OK);
	t0 = realtime_us();
	trigger_n(tm, "job", SHARED_N, ids);
	await_all(tm, "job", ids, SHARED_N);
	ck_assert_int_eq(read_starts(starts, MAX_STARTS), SHARED_N);
	assert_fit(starts, SHARED_N, t0, SHARED_RATE, SHARED_BURST, 3 * SHARED_BURST);
	for (int i = 0; i < 2; i++) {
		rt_peer_tell(&peers[i], "stop");
		rt_peer_reap(&peers[i]);
	}
	tt_assert_check(tm, SHARED_N);
	tt_close_tmp(tm, dir);
}
END_TEST

/* The library does not schedule an external worker: its tm_patch to
 * RUNNING takes no token. */
START_TEST(external_workers_are_not_limited)
{
	char *dir, ids[3][21];
	tm_manager *tm = rt_open_tmp(&dir, 1);
	tm_job_def d = limited("ext", NULL, NEVER, 1);

	ck_assert_ok(tm_register(tm, &d));
	trigger_n(tm, "ext", 3, ids);
	for (int i = 0; i < 3; i++) {
		char *out = NULL;

		ck_assert_ok(tm_patch(tm, "ext", ids[i], "{\"status\": \"RUNNING\"}", &out));
		tm_free(out);
		ck_assert_ok(tm_patch(tm, "ext", ids[i], "{\"status\": \"COMPLETED\"}", &out));
		tm_free(out);
	}
	tt_close_tmp(tm, dir);
}
END_TEST

TT_MAIN("runtime_rate",
	register_checks_rate_and_burst,
	starts_never_outrun_the_bucket,
	unlimited_name_is_not_held_back,
	cancelled_waiting_task_takes_no_token,
	worker_wakes_for_the_next_token,
	dry_bucket_keeps_the_workers_asleep,
	bucket_is_shared_by_processes,
	external_workers_are_not_limited)
