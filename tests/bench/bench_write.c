/* tm-bench's write sections (bench.h): 1 durable tm_trigger, 1b bulk
 * tm_trigger_many, 2 durable end to end, 5 trigger -> handler start. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <lmdb.h>

#include "bench.h"
#include "clock.h"
#include "taskmgr.h"

/* ---- 1. durable trigger ----------------------------------------------------- */

static tm_manager *shared_tm;
static int per_thread;
static const char *trigger_body;

static void *trigger_loop(void *arg)
{
	(void)arg;
	for (int i = 0; i < per_thread; i++)
		if (tm_trigger(shared_tm, "bench", trigger_body ? trigger_body : body400,
		               0, NULL) != TM_OK)
			die("tm_trigger");
	return NULL;
}

static double trigger_rate(int threads, int total, unsigned workers)
{
	pthread_t t[64];
	double t0;

	per_thread = total / threads;
	t0 = now_s();
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, trigger_loop, NULL);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	(void)workers;
	return per_thread * threads / (now_s() - t0);
}

int bench_trigger(void)
{
	int n = ops(3000);
	double raw = raw_put_rate(n), one, one_plain, eight, eight_plain;
	tm_manager *tm;

	tm = open_tm("trigger-1", 0, 0);
	reg(tm, "bench", NULL);
	shared_tm = tm;
	one = trigger_rate(1, n, 0);
	tm_close(tm);
	drop("trigger-1");
	/* Without a refresh token: no key to sync beside the commit. */
	tm = open_tm("trigger-1p", 0, 0);
	reg(tm, "bench", NULL);
	shared_tm = tm;
	trigger_body = body400_nosecret;
	one_plain = trigger_rate(1, n, 0);
	trigger_body = NULL;
	tm_close(tm);
	drop("trigger-1p");
	tm = open_tm("trigger-8", 0, 0);
	reg(tm, "bench", NULL);
	shared_tm = tm;
	eight = trigger_rate(8, n * 4, 0);
	tm_close(tm);
	drop("trigger-8");
	tm = open_tm("trigger-8p", 0, 0);
	reg(tm, "bench", NULL);
	shared_tm = tm;
	trigger_body = body400_nosecret;
	eight_plain = trigger_rate(8, n * 4, 0);
	trigger_body = NULL;
	tm_close(tm);
	drop("trigger-8p");
	header("1. durable tm_trigger vs raw LMDB, one durable transaction per 400-byte record",
	       "raw LMDB/s");
	row("raw LMDB, 1 thread (records/s)", raw, "/s", 0);
	row("tm_trigger, 1 thread, refresh token (triggers/s)", one, "/s", raw);
	row("tm_trigger, 1 thread, no token (triggers/s)", one_plain, "/s", raw);
	row("tm_trigger, 8 threads, refresh token (triggers/s)", eight, "/s", raw);
	row("tm_trigger, 8 threads, no token (triggers/s)", eight_plain, "/s", raw);
	printf("\ngoals: 1 thread >= 0.9x, 8 threads >= 5x; with a token >= 0.8x the rate without\n");
	return 0;
}

/* ---- 1b. bulk ------------------------------------------------------------------ */

/* Durable transactions of BULK records of 400 bytes under random keys (as
 * task ids are): records/s. */
static double raw_batch_rate(int batches)
{
	MDB_env *env = raw_open("raw-bulk", 0);
	char key[21], value[400];
	uint64_t x = 88172645463325252ull;
	MDB_dbi dbi;
	MDB_txn *txn;
	double t0;

	memset(value, 'x', sizeof(value));
	mdb_txn_begin(env, NULL, 0, &txn);
	mdb_dbi_open(txn, NULL, 0, &dbi);
	mdb_txn_commit(txn);
	t0 = now_s();
	for (int b = 0; b < batches; b++) {
		mdb_txn_begin(env, NULL, 0, &txn);
		for (int i = 0; i < BULK; i++) {
			MDB_val k = { 20, key }, v = { sizeof(value), value };

			x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift */
			raw_key(key, x % 10000000000000000000ull);
			mdb_put(txn, dbi, &k, &v, 0);
		}
		if (mdb_txn_commit(txn))
			die("raw commit");
	}
	t0 = now_s() - t0;
	mdb_env_close(env);
	drop("raw-bulk");
	return batches * BULK / t0;
}

int bench_bulk(void)
{
	int batches = ops(200);
	size_t len = strlen(body400_nosecret);
	char *bodies = malloc(BULK * (len + 1) + 3), *p = bodies;
	double raw = raw_batch_rate(batches), rate, t0;
	tm_manager *tm = open_tm("bulk", 0, 0);

	*p++ = '[';
	for (int i = 0; i < BULK; i++) {
		if (i)
			*p++ = ',';
		memcpy(p, body400_nosecret, len);
		p += len;
	}
	strcpy(p, "]");
	reg(tm, "bench", NULL);
	t0 = now_s();
	for (int b = 0; b < batches; b++)
		if (tm_trigger_many(tm, "bench", bodies, 0, NULL) != TM_OK)
			die("tm_trigger_many");
	rate = batches * BULK / (now_s() - t0);
	tm_close(tm);
	drop("bulk");
	free(bodies);
	header("1b. durable tm_trigger_many, batches of 100, vs raw LMDB",
	       "raw LMDB/s");
	row("raw LMDB, 100 random-key records a transaction (records/s)", raw, "/s", 0);
	row("tm_trigger_many, 100 bodies a call (tasks/s)", rate, "/s", raw);
	printf("\ngoals: >= 1.0x raw, and >= 27000 tasks/s on a quiet machine\n");
	return 0;
}

/* ---- 2. durable end to end ---------------------------------------------------- */

int bench_e2e(void)
{
	int n = ops(8000);
	double raw = raw_put_rate(ops(3000)), t0, rate;
	tm_manager *tm = open_tm("e2e", 2, 0);
	pthread_t t[8];
	struct timespec ms = { 0, 1000000 };

	reg(tm, "bench", noop);
	shared_tm = tm;
	per_thread = n / 8;
	t0 = now_s();
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, trigger_loop, NULL);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	while (completed(tm) < n)
		nanosleep(&ms, NULL);
	rate = n / (now_s() - t0);
	tm_close(tm);
	drop("e2e");
	header("2. durable end to end: trigger -> RUNNING -> COMPLETED, 8 triggering threads, 2 workers",
	       "raw LMDB/s");
	row("raw LMDB single-record durable transactions", raw, "/s", 0);
	row("jobs/s, every step durable", rate, "jobs/s", raw);
	printf("\ngoal: >= 15000 jobs/s\n");
	return 0;
}

/* ---- 5. latency ----------------------------------------------------------------- */

#define SAMPLES 2000

struct lat {
	atomic_long seen;          /* handler starts */
	int64_t start_ns[SAMPLES]; /* when each handler started */
};

static struct lat *lat;

static tm_status stamp(tm_job *job, void *user)
{
	long i;

	(void)job;
	(void)user;
	i = atomic_load(&lat->seen);
	if (i < SAMPLES)
		lat->start_ns[i] = now_ns();
	atomic_fetch_add(&lat->seen, 1);
	return TM_COMPLETED;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Trigger SAMPLES tasks one after another, each once the last one started. */
static void measure(tm_manager *tm, int64_t *lat_us, int n)
{
	struct timespec tiny = { 0, 20000 };

	for (int i = 0; i < n; i++) {
		int64_t t0 = now_ns();

		if (tm_trigger(tm, "bench", NULL, 0, NULL) != TM_OK)
			die("tm_trigger");
		while (atomic_load(&lat->seen) <= i)
			nanosleep(&tiny, NULL);
		lat_us[i] = (lat->start_ns[i] - t0) / 1000;
	}
	qsort(lat_us, (size_t)n, sizeof(*lat_us), cmp64);
}

/* Raw durable commits of one 400-byte record, each timed: the baseline of
 * the durable trigger -> start latency, taken turn about with its samples
 * (measure_idle) so that both see the disk as it is at the time. */
struct raw_lat {
	MDB_env *env;
	MDB_dbi dbi;
	char value[400];
};

static void raw_lat_open(struct raw_lat *r)
{
	MDB_txn *txn;

	r->env = raw_open("raw-lat", 0);
	memset(r->value, 'x', sizeof(r->value));
	mdb_txn_begin(r->env, NULL, 0, &txn);
	mdb_dbi_open(txn, NULL, 0, &r->dbi);
	mdb_txn_commit(txn);
}

static int64_t raw_lat_commit(struct raw_lat *r, int i)
{
	char key[21];
	MDB_val k = { 20, key }, v = { sizeof(r->value), r->value };
	MDB_txn *txn;
	int64_t t0 = now_ns();

	raw_key(key, (uint64_t)i);
	mdb_txn_begin(r->env, NULL, 0, &txn);
	mdb_put(txn, r->dbi, &k, &v, 0);
	if (mdb_txn_commit(txn))
		die("raw commit");
	return (now_ns() - t0) / 1000;
}

static void raw_lat_close(struct raw_lat *r)
{
	mdb_env_close(r->env);
	drop("raw-lat");
}

/* BENCH_SAMPLES=DIR: a series of latencies also goes to
 * DIR/latency-NAME.txt, one a line in microseconds, in ascending order,
 * for tests/bench/charts.  The tables are printed as without it. */
static void save_samples(const char *name, const int64_t *lat_us, int n)
{
	const char *dir = getenv("BENCH_SAMPLES");
	char path[1024];
	FILE *f;

	if (dir == NULL || *dir == '\0')
		return;
	snprintf(path, sizeof(path), "%s/latency-%s.txt", dir, name);
	if ((f = fopen(path, "w")) == NULL)
		fail("cannot create", path);
	for (int i = 0; i < n; i++)
		fprintf(f, "%lld\n", (long long)lat_us[i]);
	if (fclose(f) != 0)
		fail("cannot write", path);
}

/* Like measure(), one trigger at a time, each once the worker waits for
 * work again (the last run's outcome written): a lone trigger meeting an
 * idle worker, which it hands its task to.  Each sample is followed by
 * one raw commit (raw_us), timed the same way. */
static void measure_idle(tm_manager *tm, int64_t *lat_us, int64_t *raw_us, int n)
{
	struct timespec tiny = { 0, 20000 };
	struct raw_lat raw;

	raw_lat_open(&raw);
	for (int i = 0; i < n; i++) {
		int64_t t0;

		while (stat_figure(tm, "workers_idle") < 1)
			nanosleep(&tiny, NULL);
		t0 = now_ns();
		if (tm_trigger(tm, "bench", body400_nosecret, 0, NULL) != TM_OK)
			die("tm_trigger");
		while (atomic_load(&lat->seen) <= i)
			nanosleep(&tiny, NULL);
		lat_us[i] = (lat->start_ns[i] - t0) / 1000;
		while (stat_figure(tm, "workers_idle") < 1) /* its outcome written */
			nanosleep(&tiny, NULL);
		raw_us[i] = raw_lat_commit(&raw, i);
	}
	raw_lat_close(&raw);
	qsort(lat_us, (size_t)n, sizeof(*lat_us), cmp64);
	qsort(raw_us, (size_t)n, sizeof(*raw_us), cmp64);
}

int bench_latency(void)
{
	int n = 1000;
	int64_t *same = calloc(SAMPLES, sizeof(int64_t));
	int64_t *cross = calloc(SAMPLES, sizeof(int64_t));
	tm_manager *tm;
	pid_t pid;
	int go[2];
	char c, cross_dir[512];

	int nd = quick ? 100 : 400;
	int64_t *durable = calloc(SAMPLES, sizeof(int64_t));
	int64_t *raw = calloc(SAMPLES, sizeof(int64_t));

	lat = mmap(NULL, sizeof(*lat), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	tm = open_tm("latency", 1, 1);
	reg(tm, "bench", stamp);
	measure(tm, same, n);
	tm_close(tm);
	drop("latency");

	/* Durable: one commit, the trigger's, before the handler starts. */
	atomic_store(&lat->seen, 0);
	tm = open_tm("latency-d", 1, 0);
	reg(tm, "bench", stamp);
	measure_idle(tm, durable, raw, nd);
	tm_close(tm);
	drop("latency-d");

	/* Across processes: fork first, open after (never share an LMDB env
	 * across fork).  The child runs the jobs; this process only triggers. */
	atomic_store(&lat->seen, 0);
	snprintf(cross_dir, sizeof(cross_dir), "%s", fresh_dir("latency-x"));
	if (pipe(go) != 0)
		die("pipe");
	pid = fork();
	if (pid == 0) {
		/* The parent stops this child with SIGTERM, also by ending. */
		pthread_sigmask(SIG_UNBLOCK, &stop_signals, NULL);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if ((tm = open_at(cross_dir, 1, 1)) == NULL)
			_exit(1);
		reg(tm, "bench", stamp);
		if (write(go[1], "k", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	if (read(go[0], &c, 1) != 1)
		die("child");
	if ((tm = open_at(cross_dir, 0, 1)) == NULL)
		die("tm_open");
	reg(tm, "bench", NULL);
	measure(tm, cross, n / 4);
	tm_close(tm);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	drop("latency-x");
	header("5. trigger -> handler start latency", "raw commit p50");
	row("raw durable LMDB commit, 400 bytes, p50 (us)", (double)raw[nd / 2], "us", 0);
	row("durable trigger -> start, idle worker, p50 (us)", (double)durable[nd / 2], "us",
	    (double)raw[nd / 2]);
	row("durable trigger -> start, idle worker, p99 (us)", (double)durable[nd * 99 / 100],
	    "us", 0);
	row("no-sync, same process, p50 (us)", (double)same[n / 2], "us", 0);
	row("no-sync, same process, p99 (us)", (double)same[n * 99 / 100], "us", 0);
	row("no-sync, across processes, p50 (us)", (double)cross[n / 8], "us", 0);
	row("no-sync, across processes, p99 (us)", (double)cross[(n / 4) * 99 / 100], "us", 0);
	printf("\ngoals: durable p50 <= 1.2x the raw commit; same process p50 <= 50 us, "
	       "p99 <= 500 us; across processes p99 <= 5000 us\n");
	save_samples("durable", durable, nd);
	save_samples("raw-commit", raw, nd);
	save_samples("nosync", same, n);
	save_samples("nosync-cross", cross, n / 4);
	free(durable);
	free(raw);
	return 0;
}
