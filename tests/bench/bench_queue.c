/* tm-bench's sections on how tasks flow (bench.h): 7 retention under a
 * flood, 10 scheduled tasks. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "bench.h"
#include "clock.h"
#include "taskmgr.h"

/* ---- 7. retention ------------------------------------------------------------- *
 *
 * Two durable stores, one with keep_count 1000 and one that keeps all
 * (4e9), both open for the whole run.  The threads work on one of them at
 * a time, in slices of 5 s, in the order A B B A A B ... so that a disk
 * that is faster at one moment favours neither; each store's rate is its
 * tasks over its own slices.  Another thread reads tm_stats of the store
 * in use every millisecond and keeps the most final tasks it saw. */

#define RETAIN_KEEP 1000
#define RETAIN_THREADS 8
#define RETAIN_BACKLOG 2000 /* triggered, not yet run: the triggering threads wait */
#define RETAIN_SLICE 5.0    /* seconds */

struct retain_run {
	tm_manager *tm;
	char dir[700];
	atomic_long triggered, ended;
	double elapsed;          /* seconds of its slices */
	atomic_long most;        /* most final tasks of the name seen */
	atomic_long samples;
	/* at the end of each of its slices */
	double at_t[64];
	long at_ended[64], at_finals[64], at_bytes[64], at_file[64];
	int n_at;
};

static struct {
	struct retain_run *run;  /* the store in use */
	int workers;             /* 0: each thread ends its tasks with tm_patch */
	double until;            /* now_s() when the slice's triggers stop */
	atomic_int stop;         /* the sampler */
} retain;

static tm_status retain_noop(tm_job *job, void *user)
{
	(void)job;
	atomic_fetch_add(&((struct retain_run *)user)->ended, 1);
	return TM_COMPLETED;
}

/* Final tasks of "bench" and store_bytes, from one tm_stats. */
static void retain_figures(tm_manager *tm, long *finals, long *bytes)
{
	static const char *const keys[3] = { "\"COMPLETED\":", "\"FAILED\":", "\"CANCELLED\":" };
	char *out = NULL;
	const char *name, *p;

	if (tm_stats(tm, &out) != TM_OK)
		die("tm_stats");
	*finals = 0;
	name = strstr(out, "\"bench\":");
	for (int i = 0; name && i < 3; i++)
		if ((p = strstr(name, keys[i])) != NULL)
			*finals += strtol(p + strlen(keys[i]), NULL, 10);
	p = strstr(out, "\"store_bytes\":");
	*bytes = p ? strtol(p + 14, NULL, 10) : 0;
	tm_free(out);
}

static long file_size(const char *dir)
{
	char path[800];
	struct stat st;

	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

static void *retain_trigger(void *arg)
{
	struct retain_run *r = arg;
	struct timespec tiny = { 0, 100000 };

	while (now_s() < retain.until) {
		char *out = NULL, id[TM_TASK_ID_LEN + 1];

		if (retain.workers > 0 &&
		    atomic_load(&r->triggered) - atomic_load(&r->ended) > RETAIN_BACKLOG) {
			nanosleep(&tiny, NULL); /* the workers are behind: keep the queue short */
			continue;
		}
		if (tm_trigger(r->tm, "bench", body400_nosecret, 0,
		               retain.workers ? NULL : &out) != TM_OK)
			die("tm_trigger");
		atomic_fetch_add(&r->triggered, 1);
		if (retain.workers > 0)
			continue;
		memcpy(id, out + 12, TM_TASK_ID_LEN); /* {"task_id":"..."} */
		id[TM_TASK_ID_LEN] = '\0';
		tm_free(out);
		if (tm_patch(r->tm, "bench", id, "{\"completed\": true}", NULL) != TM_OK)
			die("tm_patch");
		atomic_fetch_add(&r->ended, 1);
	}
	return NULL;
}

static void *retain_sample(void *arg)
{
	struct timespec ms = { 0, 1000000 };

	(void)arg;
	while (!atomic_load(&retain.stop)) {
		struct retain_run *r = retain.run;
		long finals, bytes;

		retain_figures(r->tm, &finals, &bytes);
		atomic_fetch_add(&r->samples, 1);
		if (finals > atomic_load(&r->most))
			atomic_store(&r->most, finals);
		nanosleep(&ms, NULL);
	}
	return NULL;
}

static void retain_open(struct retain_run *r, const char *store, unsigned keep,
                        int workers, int nosync)
{
	tm_options o = TM_OPTIONS_INIT;
	tm_job_def d;

	memset(r, 0, sizeof(*r));
	snprintf(r->dir, sizeof(r->dir), "%s", fresh_dir(store));
	o.path = r->dir;
	o.workers = (unsigned)workers;
	o.flags = nosync ? TM_OPEN_NOSYNC : 0;
	o.map_size_max = 64ull << 30;
	o.keep_count = keep;
	if (tm_open(&o, &r->tm) != TM_OK)
		die("tm_open");
	tm_job_def_init(&d, TM_JOB_DEF_VERSION);
	d.name = "bench";
	d.run = workers ? retain_noop : NULL;
	d.user = r;
	if (tm_register(r->tm, &d) != TM_OK)
		die("tm_register");
}

/* One slice on r: the threads trigger (and end) tasks for `seconds`, then
 * the workers finish what is left; the figures are noted. */
static void retain_slice(struct retain_run *r, double seconds)
{
	pthread_t t[RETAIN_THREADS];
	struct timespec ms = { 0, 1000000 };
	double t0 = now_s();
	long finals, bytes;

	retain.run = r;
	retain.until = t0 + seconds;
	for (int i = 0; i < RETAIN_THREADS; i++)
		pthread_create(&t[i], NULL, retain_trigger, r);
	for (int i = 0; i < RETAIN_THREADS; i++)
		pthread_join(t[i], NULL);
	while (atomic_load(&r->ended) < atomic_load(&r->triggered))
		nanosleep(&ms, NULL);
	r->elapsed += now_s() - t0;
	retain_figures(r->tm, &finals, &bytes);
	if (r->n_at < 64) {
		r->at_t[r->n_at] = r->elapsed;
		r->at_ended[r->n_at] = atomic_load(&r->ended);
		r->at_finals[r->n_at] = finals;
		r->at_bytes[r->n_at] = bytes;
		r->at_file[r->n_at] = file_size(r->dir);
		r->n_at++;
	}
}

static void retain_print(const char *title, const struct retain_run *a,
                         const struct retain_run *b)
{
	char label[80];
	int last = a->n_at - 1, half = a->n_at / 2 - 1;

	header(title, "no pruning");
	row("tasks ended/s", atomic_load(&a->ended) / a->elapsed, "/s",
	    atomic_load(&b->ended) / b->elapsed);
	snprintf(label, sizeof(label), "most final tasks seen (%ld / %ld samples)",
	         atomic_load(&a->samples), atomic_load(&b->samples));
	row(label, (double)atomic_load(&a->most), "", (double)atomic_load(&b->most));
	if (half >= 0 && last > half) {
		snprintf(label, sizeof(label), "store_bytes after %.0f s (MB)", a->at_t[half]);
		row(label, a->at_bytes[half] / 1e6, "MB", b->at_bytes[half] / 1e6);
		snprintf(label, sizeof(label), "store_bytes after %.0f s (MB)", a->at_t[last]);
		row(label, a->at_bytes[last] / 1e6, "MB", b->at_bytes[last] / 1e6);
	}
	printf("\nat the end of each slice (s: the store's own seconds so far):\n"
	       "\n|   s | ended, keep %4d | final tasks | store_bytes |  data.mdb |"
	       " ended, keep all | final tasks | store_bytes |  data.mdb |\n"
	       "|----:|-----------------:|------------:|------------:|----------:|"
	       "----------------:|------------:|------------:|----------:|\n", RETAIN_KEEP);
	for (int i = 0; i < a->n_at && i < b->n_at; i++)
		printf("| %3.0f | %16ld | %11ld | %11ld | %9ld | %15ld | %11ld | %11ld | %9ld |\n",
		       a->at_t[i], a->at_ended[i], a->at_finals[i], a->at_bytes[i], a->at_file[i],
		       b->at_ended[i], b->at_finals[i], b->at_bytes[i], b->at_file[i]);
}

/* ---- 10. scheduling ------------------------------------------------------------- */

/* n tasks of name in batches of 100 (tm_trigger_many), each body `body`. */
static void fill_many(tm_manager *tm, const char *name, long n, const char *body)
{
	size_t per = strlen(body) + 1;
	char *bodies = malloc(100 * per + 3);

	if (bodies == NULL)
		die("malloc");
	for (long done = 0; done < n;) {
		long k = n - done < 100 ? n - done : 100;
		char *p = bodies;
		char *out;

		*p++ = '[';
		for (long i = 0; i < k; i++)
			p += sprintf(p, "%s%s", i ? "," : "", body);
		strcpy(p, "]");
		if (tm_trigger_many(tm, name, bodies, 0, &out) != TM_OK)
			die("tm_trigger_many");
		tm_free(out);
		done += k;
	}
	free(bodies);
}

static void await_ran(int n)
{
	struct timespec ms = { 0, 1000000 };

	while (atomic_load(&ran) < n)
		nanosleep(&ms, NULL);
}

/* Seconds from resuming a paused name with n ready tasks until all ran;
 * the rate of their triggers (batches of 100) to *trig (when not NULL). */
static double drain_ready(tm_manager *tm, const char *name, int n, const char *body,
                          double *trig)
{
	double t0;

	if (tm_pause(tm, name) != TM_OK)
		die("tm_pause");
	atomic_store(&ran, 0);
	t0 = now_s();
	fill_many(tm, name, n, body);
	if (trig)
		*trig = n / (now_s() - t0);
	t0 = now_s();
	if (tm_resume(tm, name) != TM_OK)
		die("tm_resume");
	await_ran(n);
	return now_s() - t0;
}

int bench_schedule(void)
{
	int n = quick ? 25000 : 100000, m = quick ? 5000 : 20000;
	long lots = big;
	char body[96], label[96];
	double ready_s, sched_s, first_s, at, t0, plain, beside, claim_small, claim_big;
	double trig_plain, trig_beside, trig_control, control;
	tm_manager *tm;

	/* a. n tasks scheduled for one second, against n ready ones. */
	tm = open_tm("sched-a", 2, 1);
	reg(tm, "bench", noop);
	ready_s = drain_ready(tm, "bench", n, "{}", NULL);
	atomic_store(&ran, 0);
	/* Far enough ahead for the fill to end first (it ran at over 5000/s
	 * even on a busy machine). */
	at = (double)(int64_t)time_now_s() + 2 + n / 5000;
	if (tm_pause(tm, "bench") != TM_OK) /* none may start before all are stored */
		die("tm_pause");
	snprintf(body, sizeof(body), "{\"not_before\": %.0f}", at);
	fill_many(tm, "bench", n, body);
	if (tm_resume(tm, "bench") != TM_OK)
		die("tm_resume");
	if (time_now_s() > at - 0.2)
		printf("\n(note: storing the scheduled tasks ran past their second)\n");
	{
		struct timespec ms = { 0, 1000000 };

		while (atomic_load(&ran) == 0)
			nanosleep(&ms, NULL);
		first_s = time_now_s() - at;
	}
	await_ran(n);
	sched_s = time_now_s() - at;
	tm_close(tm);
	drop("sched-a");

	/* b. triggers and claims of one name, beside another name with `lots`
	 * tasks scheduled for tomorrow. */
	tm = open_tm("sched-b", 2, 1);
	reg(tm, "bench", noop);
	reg(tm, "later", noop);
	plain = m / drain_ready(tm, "bench", m, "{}", &trig_plain);
	snprintf(body, sizeof(body), "{\"not_before\": %.0f}", time_now_s() + 86400);
	t0 = now_s();
	fill_many(tm, "later", lots, body);
	printf("\n(stored %s scheduled tasks in %.1f s)\n", count_name(lots), now_s() - t0);
	beside = m / drain_ready(tm, "bench", m, "{}", &trig_beside);
	tm_close(tm);
	drop("sched-b");

	/* The control: as many tasks on another name, ready but without a
	 * handler here (they wait, and the claims pass them): a store as big,
	 * with nothing scheduled. */
	tm = open_tm("sched-b2", 2, 1);
	reg(tm, "bench", noop);
	reg(tm, "idle", NULL);
	fill_many(tm, "idle", lots, "{}");
	control = m / drain_ready(tm, "bench", m, "{}", &trig_control);
	tm_close(tm);
	drop("sched-b2");

	/* c. claims of a name whose own queue holds 10k, then `lots`, tasks
	 * scheduled for tomorrow behind its ready ones. */
	tm = open_tm("sched-c", 2, 1);
	reg(tm, "bench", noop);
	fill_many(tm, "bench", 10000, body);
	claim_small = m / drain_ready(tm, "bench", m, "{}", NULL);
	fill_many(tm, "bench", lots - 10000, body);
	claim_big = m / drain_ready(tm, "bench", m, "{}", NULL);
	tm_close(tm);
	drop("sched-c");

	header("10. scheduling: not_before and priorities in the queue (no-sync stores, 2 workers)",
	       "base");
	snprintf(label, sizeof(label), "%s ready tasks: resume to all ran (s)", count_name(n));
	row(label, ready_s, "s", 0);
	snprintf(label, sizeof(label), "%s tasks due in one second: due to all ran (s)",
	         count_name(n));
	row(label, sched_s, "s", ready_s);
	row("  of which, due to the first one's start (s)", first_s, "s", 0);
	snprintf(label, sizeof(label), "%s triggers of a name, alone (tasks/s)", count_name(m));
	row(label, trig_plain, "/s", 0);
	snprintf(label, sizeof(label), "the same, %s scheduled on another name", count_name(lots));
	row(label, trig_beside, "/s", trig_plain);
	snprintf(label, sizeof(label), "the same, %s ready on another name, no handler", count_name(lots));
	row(label, trig_control, "/s", trig_plain);
	snprintf(label, sizeof(label), "%s claims and runs of a name, alone (tasks/s)", count_name(m));
	row(label, plain, "/s", 0);
	snprintf(label, sizeof(label), "the same, %s scheduled on another name", count_name(lots));
	row(label, beside, "/s", plain);
	snprintf(label, sizeof(label), "the same, %s ready on another name, no handler", count_name(lots));
	row(label, control, "/s", plain);
	snprintf(label, sizeof(label), "%s claims and runs, 10k of its own scheduled (/s)",
	         count_name(m));
	row(label, claim_small, "/s", 0);
	snprintf(label, sizeof(label), "the same, %s of its own scheduled", count_name(lots));
	row(label, claim_big, "/s", claim_small);
	printf("\ngoals: tasks due in one second start within 2x the ready ones' time;\n"
	       "a name's rate beside %s scheduled tasks, and with %s of its own, "
	       "about 1x (no measurable cost).\n(\"no handler\": a store as big, nothing "
	       "scheduled: what the store's size costs alone.)\n", count_name(lots), count_name(lots));
	return 0;
}

int bench_retention(void)
{
	static struct retain_run a, b;
	double seconds = quick ? 10 : 60;
	const char *ns = getenv("BENCH_NOSYNC");
	int nosync = ns && atoi(ns) > 0, slices = (int)(seconds / RETAIN_SLICE);
	pthread_t sampler;
	char title[240];

	for (int workers = 0; workers <= 2; workers += 2) {
		retain_open(&a, "retain", RETAIN_KEEP, workers, nosync);
		retain_open(&b, "retain-all", 4000000000u, workers, nosync);
		retain.workers = workers;
		retain.run = &a;
		atomic_store(&retain.stop, 0);
		pthread_create(&sampler, NULL, retain_sample, NULL);
		for (int i = 0; i < slices; i++) {
			int a_first = i % 2 == 0; /* A B, B A, A B, ... */

			retain_slice(a_first ? &a : &b, RETAIN_SLICE);
			retain_slice(a_first ? &b : &a, RETAIN_SLICE);
		}
		atomic_store(&retain.stop, 1);
		pthread_join(sampler, NULL);
		snprintf(title, sizeof(title), "7%s. retention keeps up: %s, %s, keep_count %d vs "
		         "4e9 (nothing pruned), %.0f s each in %.0f-s slices",
		         workers ? "b" : "a",
		         workers ? "8 threads trigger, 2 workers end each task (no-op handler)"
		                 : "8 threads trigger and end each task (tm_patch completed)",
		         nosync ? "NO-SYNC store" : "durable", RETAIN_KEEP, seconds, RETAIN_SLICE);
		retain_print(title, &a, &b);
		tm_close(a.tm);
		tm_close(b.tm);
		drop("retain");
		drop("retain-all");
	}
	printf("\ngoals: most final tasks seen <= %d (2 x keep_count); store_bytes flat once "
	       "steady; tasks ended/s >= 0.8x nothing pruned\n", 2 * RETAIN_KEEP);
	return 0;
}
