/* tm-bench: libtaskmgr against raw LMDB, measured in the same run.
 *
 *   tm-bench [--quick] [--dir DIR] [section]...   (no section: all of them)
 *
 *   tm-bench trigger   durable tm_trigger, 1 and 8 threads, vs raw LMDB
 *                      one durable transaction per 400-byte record
 *   tm-bench e2e       durable trigger -> RUNNING -> COMPLETED, 8 triggering
 *                      threads, 2 workers, no-op handler: jobs/s
 *   tm-bench get       tm_get vs raw mdb_get (read txn per call, copy out)
 *   tm-bench list      tm_list_recent(amt=64) vs a raw 64-record cursor scan,
 *                      at 10k and at BENCH_BIG (default 1M) tasks
 *   tm-bench bulk      durable tm_trigger_many, batches of 100 400-byte
 *                      bodies, vs raw LMDB durable transactions of 100
 *                      random-key 400-byte records
 *   tm-bench latency   trigger -> handler start, p50 and p99, same process
 *                      (no-sync store) and across processes; BENCH_SAMPLES=DIR
 *                      writes every sample too (save_samples())
 *   tm-bench size      store bytes per task; resident memory at BENCH_BIG
 *   tm-bench retention tasks ending as fast as they can for 60 s (--quick
 *                      10 s), durable, keep_count 1000, against keep_count
 *                      4e9 (nothing pruned), in alternating slices: the
 *                      most final tasks ever seen, the store's size over
 *                      time, and the rate with and without pruning.  Twice:
 *                      8 threads that trigger and end each task with
 *                      tm_patch, and 8 triggering threads with 2 workers
 *                      running a no-op handler.  BENCH_NOSYNC=1: no-sync
 *                      stores (when the disk's syncs cap the rate)
 *   tm-bench tick      the supervisor's CPU per tick with 10k tasks waiting
 *                      and with BENCH_BIG (no handler: they stay waiting)
 *   tm-bench schedule  no-sync stores, 2 workers, no-op handler: 100k tasks
 *                      (--quick 25k) scheduled for one second, from that
 *                      second until all ran, against as many ready tasks;
 *                      20k tasks of a name (drained from a pause) alone,
 *                      beside BENCH_BIG tasks scheduled for tomorrow on
 *                      another name, and behind 10k and BENCH_BIG of its own
 *   tm-bench pg        the PostgreSQL store against raw libpq on the same
 *                      server (bench_pg.c): --pg URI, else TM_TEST_PG_URL;
 *                      without either, or without libpq, skipped
 *
 * Every section prints a table: the figure, the baseline, and their ratio.
 * BENCH_SCALE (default 1) multiplies the operation counts.  --quick measures
 * every ratio at a smaller scale: a quarter of the durable operations and a
 * big store of 100k tasks, not 1M.  The machine's core count and the
 * scale head the output.  Ratios, not absolute times, are the goals: these
 * machines are shared and noisy.
 *
 * The stores go in a directory of their own, DIR/tm-bench-PID, where DIR is
 * --dir, else BENCH_DIR, else /var/tmp/tm-bench (disk, not tmpfs).  The run
 * says first how much free space that needs and refuses to start without
 * it; it removes each store once measured, and the directory when it ends,
 * also on failure and on SIGINT, SIGTERM or SIGHUP. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "bench_pg.h"
#include "clock.h"
#include "taskmgr.h"

static char root[512];     /* --dir, BENCH_DIR or the default */
static char run_dir[600];  /* root/tm-bench-PID: this run's stores */
static int root_made;      /* root did not exist before this run */
static pid_t owner;        /* the process that removes run_dir */
static int scale = 1;      /* BENCH_SCALE */
static int quick;          /* --quick */
static long big;           /* BENCH_BIG: the big store of list and size */
static unsigned long long peak_bytes; /* run_dir's use, largest seen */
static const char *pg_uri; /* --pg: the server of section pg */

/* Durable operation counts: BENCH_SCALE times full, a quarter with --quick.
 * (The reads of get and list are cheap, and --quick leaves them as they are.) */
static int ops(int full)
{
	return quick ? full * scale / 4 : full * scale;
}

static void die(const char *what)
{
	fprintf(stderr, "tm-bench: %s: %s\n", what, tm_last_error());
	exit(1);
}

/* "1M", "100k": a task count as the tables name it. */
static const char *count_name(long n)
{
	static char s[32];

	if (n >= 1000000 && n % 1000000 == 0)
		snprintf(s, sizeof(s), "%ldM", n / 1000000);
	else if (n >= 1000 && n % 1000 == 0)
		snprintf(s, sizeof(s), "%ldk", n / 1000);
	else
		snprintf(s, sizeof(s), "%ld", n);
	return s;
}

static void fail(const char *what, const char *path)
{
	fprintf(stderr, "tm-bench: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

/* ---- the stores' directory: made fresh, measured, removed ------------------ */

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)st;
	(void)f;
	if ((type == FTW_DP ? rmdir(path) : unlink(path)) != 0 && errno != ENOENT)
		return -1;
	return 0;
}

static int rm_tree(const char *path)
{
	if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
		return -1;
	return 0;
}

static unsigned long long du_sum;

static int du_entry(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)path;
	(void)type;
	(void)f;
	du_sum += (unsigned long long)st->st_blocks * 512;
	return 0;
}

/* Bytes the file system gives the files under path. */
static unsigned long long du_bytes(const char *path)
{
	du_sum = 0;
	nftw(path, du_entry, 16, FTW_PHYS);
	return du_sum;
}

static pthread_mutex_t cleanup_lock = PTHREAD_MUTEX_INITIALIZER;
static int cleaned;

/* Removes this run's stores (atexit, and on a stop signal): once, and only
 * in the process that made them, not in the latency benchmark's child. */
static void cleanup(void)
{
	if (getpid() != owner)
		return;
	bench_pg_cleanup(); /* its node processes and schemas */
	pthread_mutex_lock(&cleanup_lock);
	if (!cleaned && run_dir[0]) {
		cleaned = 1;
		if (rm_tree(run_dir) != 0)
			fprintf(stderr, "tm-bench: cannot remove %s: %s\n", run_dir,
			        strerror(errno));
		if (root_made)
			rmdir(root); /* only if empty: another run may use it */
	}
	pthread_mutex_unlock(&cleanup_lock);
}

static sigset_t stop_signals;

/* SIGINT, SIGTERM and SIGHUP are blocked in every thread and taken here,
 * outside any handler, so the stores can be removed with ordinary calls;
 * then the signal ends the process as it would have. */
static void *signal_thread(void *arg)
{
	int sig;

	(void)arg;
	if (sigwait(&stop_signals, &sig) != 0)
		return NULL;
	fprintf(stderr, "\ntm-bench: %s: removing %s\n", strsignal(sig), run_dir);
	cleanup();
	signal(sig, SIG_DFL);
	pthread_sigmask(SIG_UNBLOCK, &stop_signals, NULL);
	raise(sig);
	_exit(128 + sig);
}

static char *fresh_dir(const char *name)
{
	static char path[700];

	snprintf(path, sizeof(path), "%s/%s", run_dir, name);
	if (rm_tree(path) != 0)
		fail("cannot remove", path);
	if (mkdir(path, 0755) != 0)
		fail("cannot create", path);
	return path;
}

/* Removes the store name once its measurement is done; first notes the
 * run's disk use, at its largest now that the store is full. */
static void drop(const char *name)
{
	char path[700];
	unsigned long long used = du_bytes(run_dir);

	if (used > peak_bytes)
		peak_bytes = used;
	snprintf(path, sizeof(path), "%s/%s", run_dir, name);
	if (rm_tree(path) != 0)
		fail("cannot remove", path);
}

/* The store at path, with room for every benchmark and no retention;
 * NULL when it cannot be opened. */
static tm_manager *open_at(const char *path, unsigned workers, int nosync)
{
	tm_options o = TM_OPTIONS_INIT;
	tm_manager *tm = NULL;

	o.path = path;
	o.workers = workers;
	o.flags = nosync ? TM_OPEN_NOSYNC : 0;
	o.map_size_max = 64ull << 30;
	o.keep_count = 4000000000u;
	return tm_open(&o, &tm) == TM_OK ? tm : NULL;
}

static tm_manager *open_tm(const char *name, unsigned workers, int nosync)
{
	tm_manager *tm = open_at(fresh_dir(name), workers, nosync);

	if (tm == NULL)
		die("tm_open");
	return tm;
}

static void reg(tm_manager *tm, const char *name, tm_status (*run)(tm_job *, void *))
{
	tm_job_def d;

	tm_job_def_init(&d, TM_JOB_DEF_VERSION);
	d.name = name;
	d.run = run;
	if (tm_register(tm, &d) != TM_OK)
		die("tm_register");
}

static void row(const char *what, double figure, const char *unit, double base)
{
	if (base > 0)
		printf("| %-50s | %12.1f %-7s | %12.1f | %6.2fx |\n", what, figure, unit,
		       base, figure / base);
	else
		printf("| %-50s | %12.1f %-7s | %12s | %7s |\n", what, figure, unit, "", "");
}

static void header(const char *title, const char *base)
{
	printf("\n%s\n\n| %-50s | %20s | %12s | %7s |\n|%s|%s|%s|%s|\n", title,
	       "measure", "figure", base, "ratio",
	       "----------------------------------------------------",
	       "----------------------", "--------------", "---------");
}

/* ---- raw LMDB baselines --------------------------------------------------- */

static MDB_env *raw_open(const char *name, unsigned flags)
{
	MDB_env *env;

	if (mdb_env_create(&env) || mdb_env_set_mapsize(env, 64ull << 30) ||
	    mdb_env_open(env, fresh_dir(name), flags, 0644))
		die("raw open");
	return env;
}

static void raw_key(char *k, uint64_t i)
{
	snprintf(k, 21, "%020llu", (unsigned long long)i);
}

/* One durable write transaction per 400-byte record: records/s. */
static double raw_put_rate(int n)
{
	MDB_env *env = raw_open("raw-put", 0);
	char key[21], value[400];
	MDB_dbi dbi;
	MDB_txn *txn;
	double t0;

	memset(value, 'x', sizeof(value));
	mdb_txn_begin(env, NULL, 0, &txn);
	mdb_dbi_open(txn, NULL, 0, &dbi);
	mdb_txn_commit(txn);
	t0 = now_s();
	for (int i = 0; i < n; i++) {
		MDB_val k = { 20, key }, v = { sizeof(value), value };

		raw_key(key, (uint64_t)i);
		mdb_txn_begin(env, NULL, 0, &txn);
		mdb_put(txn, dbi, &k, &v, 0);
		if (mdb_txn_commit(txn))
			die("raw commit");
	}
	t0 = now_s() - t0;
	mdb_env_close(env);
	drop("raw-put");
	return n / t0;
}

/* ---- 1. durable trigger ----------------------------------------------------- */

static tm_manager *shared_tm;
static int per_thread;
static const char *body400 =
	"{\"context_task\": {\"input_table\": {\"connection\": \"LOCAL\", \"name\": "
	"\"input-myfile.csv.gz\"}, \"reco_params\": {\"amt\": 7, \"filters\": "
	"[\"price:eq:10\", \"tags:in:family,fiction\"]}, \"output_table\": "
	"{\"connection\": \"LOCAL\", \"name\": \"output-reco.parquet\"}}, "
	"\"refresh_token\": \"mW+k/K...\"}";

static const char *body400_nosecret =
	"{\"context_task\": {\"input_table\": {\"connection\": \"LOCAL\", \"name\": "
	"\"input-myfile.csv.gz\"}, \"reco_params\": {\"amt\": 7, \"filters\": "
	"[\"price:eq:10\", \"tags:in:family,fiction\"]}, \"output_table\": "
	"{\"connection\": \"LOCAL\", \"name\": \"output-reco.parquet\"}, "
	"\"padding\": \"to-the-same-size\"}}";
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

static int bench_trigger(void)
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

#define BULK 100

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

static int bench_bulk(void)
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

static atomic_int ran;

static tm_status noop(tm_job *job, void *user)
{
	(void)job;
	(void)user;
	atomic_fetch_add(&ran, 1);
	return TM_COMPLETED;
}

static long completed(tm_manager *tm)
{
	char *out = NULL;
	const char *p;
	long n = -1;

	if (tm_stats(tm, &out) != TM_OK)
		die("tm_stats");
	p = strstr(out, "\"COMPLETED\":");
	if (p)
		n = strtol(p + 12, NULL, 10);
	tm_free(out);
	return n;
}

static int bench_e2e(void)
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

/* ---- 3. get ------------------------------------------------------------------ */

static int bench_get(void)
{
	int n = 200000 * scale, stored = 1000;
	tm_manager *tm = open_tm("get", 0, 1);
	char (*ids)[TM_TASK_ID_LEN + 1] = malloc((size_t)stored * sizeof(*ids));
	size_t rec_len = 0;
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *txn;
	double t0, ours, raw;

	reg(tm, "bench", NULL);
	for (int i = 0; i < stored; i++) {
		char *out;

		if (tm_trigger(tm, "bench", body400, 0, &out) != TM_OK)
			die("tm_trigger");
		memcpy(ids[i], out + 12, TM_TASK_ID_LEN);
		ids[i][TM_TASK_ID_LEN] = '\0';
		tm_free(out);
	}
	t0 = now_s();
	for (int i = 0; i < n; i++) {
		char *out;

		if (tm_get(tm, "bench", ids[i % stored], 0, &out) != TM_OK)
			die("tm_get");
		rec_len = strlen(out);
		tm_free(out);
	}
	ours = n / (now_s() - t0);
	tm_close(tm);
	drop("get");

	env = raw_open("raw-get", MDB_NOSYNC);
	mdb_txn_begin(env, NULL, 0, &txn);
	mdb_dbi_open(txn, NULL, 0, &dbi);
	for (int i = 0; i < stored; i++) {
		char key[21], *value = calloc(1, rec_len);
		MDB_val k = { 20, key }, v = { rec_len, value };

		raw_key(key, (uint64_t)i);
		mdb_put(txn, dbi, &k, &v, 0);
		free(value);
	}
	mdb_txn_commit(txn);
	t0 = now_s();
	for (int i = 0; i < n; i++) {
		char key[21];
		MDB_val k = { 20, key }, v;
		char *copy;

		raw_key(key, (uint64_t)(i % stored));
		mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
		if (mdb_get(txn, dbi, &k, &v))
			die("mdb_get");
		copy = malloc(v.mv_size);
		memcpy(copy, v.mv_data, v.mv_size);
		mdb_txn_abort(txn);
		free(copy);
	}
	raw = n / (now_s() - t0);
	mdb_env_close(env);
	drop("raw-get");
	free(ids);
	header("3. tm_get vs raw mdb_get of a record the same size (read txn per call, copied out)",
	       "raw gets/s");
	row("raw mdb_get", raw, "/s", 0);
	row("tm_get (private view)", ours, "/s", raw);
	printf("\ngoal: >= 0.5x (record: %zu bytes)\n", rec_len);
	return 0;
}

/* ---- 4. list ------------------------------------------------------------------- */

static void fill(tm_manager *tm, long n)
{
	for (long i = 0; i < n; i++)
		if (tm_trigger(tm, "bench", "{\"context_task\": {\"n\": 1}}", 0, NULL) != TM_OK)
			die("tm_trigger");
}

static double list_rate(tm_manager *tm, int n)
{
	double t0 = now_s();

	for (int i = 0; i < n; i++) {
		char *out;

		if (tm_list_recent(tm, "bench", 1 + i % 4, 64, 0, &out) != TM_OK)
			die("tm_list_recent");
		tm_free(out);
	}
	return n / (now_s() - t0);
}

static double raw_scan_rate(long stored, size_t len, int n)
{
	MDB_env *env = raw_open("raw-scan", MDB_NOSYNC);
	char *value = calloc(1, len), *answer = malloc(64 * len + 1);
	size_t used = 0;
	unsigned sum = 0;
	MDB_dbi dbi;
	MDB_txn *txn;
	double t0;

	memset(value, 'v', len);
	mdb_txn_begin(env, NULL, 0, &txn);
	mdb_dbi_open(txn, NULL, 0, &dbi);
	for (long i = 0; i < stored; i++) {
		char key[21];
		MDB_val k = { 20, key }, v = { len, value };

		raw_key(key, (uint64_t)i);
		mdb_put(txn, dbi, &k, &v, MDB_APPEND);
	}
	mdb_txn_commit(txn);
	t0 = now_s();
	for (int i = 0; i < n; i++) {
		char key[21];
		MDB_val k = { 20, key }, v;
		MDB_cursor *c;
		int rc;

		raw_key(key, (uint64_t)((i % 4) * 64));
		mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
		mdb_cursor_open(txn, dbi, &c);
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		/* Copy the 64 values out into one answer, as tm_list_recent
		 * does; a checksum keeps the compiler from eliding the copy. */
		used = 0;
		for (int j = 0; j < 64 && rc == 0; j++) {
			memcpy(answer + used, v.mv_data, v.mv_size);
			used += v.mv_size;
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
		}
		mdb_cursor_close(c);
		mdb_txn_abort(txn);
		sum += (unsigned char)answer[used / 2];
	}
	if (sum == 1)
		printf(" ");
	t0 = now_s() - t0;
	mdb_env_close(env);
	drop("raw-scan");
	free(value);
	free(answer);
	return n / t0;
}

static int bench_list(void)
{
	int n = 5000 * scale;
	tm_manager *tm = open_tm("list", 0, 1);
	double small_rate, big_rate, raw;
	size_t len;
	char *out, label[64];

	reg(tm, "bench", NULL);
	fill(tm, 10000);
	small_rate = list_rate(tm, n);
	tm_list_recent(tm, "bench", 1, 1, 0, &out);
	len = strlen(out); /* one task's JSON: what the raw scan copies */
	tm_free(out);
	raw = raw_scan_rate(10000, len, n);
	fill(tm, big - 10000);
	big_rate = list_rate(tm, n);
	tm_close(tm);
	drop("list");
	header("4. tm_list_recent(amt=64) vs a raw 64-record cursor scan", "raw scans/s");
	row("raw cursor scan, 64 records", raw, "/s", 0);
	row("tm_list_recent, 10k tasks stored", small_rate, "/s", raw);
	snprintf(label, sizeof(label), "tm_list_recent, %s tasks stored", count_name(big));
	row(label, big_rate, "/s", small_rate);
	printf("\n(last row: ratio to 10k.)  goals: >= 0.25x raw; at %ld tasks no slower "
	       "than 1.5x the 10k time (ratio >= 0.67)\n", big);
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

static double stat_figure(tm_manager *tm, const char *key)
{
	char *out = NULL, pat[64];
	const char *p;
	double v = -1;

	if (tm_stats(tm, &out) != TM_OK)
		die("tm_stats");
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	if ((p = strstr(out, pat)) != NULL)
		v = strtod(p + strlen(pat), NULL);
	tm_free(out);
	return v;
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

static int bench_latency(void)
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

/* ---- 6. size ------------------------------------------------------------------- */

/* The process's resident memory of its own (heap, stacks: RssAnon) and of
 * mapped files (RssFile: LMDB's map, whose pages the kernel may drop). */
static long rss_kib(const char *which)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256], fmt[32];
	long kib = -1;

	snprintf(fmt, sizeof(fmt), "%s: %%ld kB", which);
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, fmt, &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

/* Bytes the store holds: its high-water mark less LMDB's free pages. */
static long store_bytes(tm_manager *tm)
{
	char *out = NULL;
	const char *p, *f;
	long n = 0;

	tm_stats(tm, &out);
	p = strstr(out, "\"store_bytes\":");
	f = strstr(out, "\"free_bytes\":");
	if (p && f)
		n = strtol(p + 14, NULL, 10) - strtol(f + 13, NULL, 10);
	tm_free(out);
	return n;
}

static int bench_size(void)
{
	tm_manager *tm = open_tm("size", 0, 1);
	long base, at10k, anon10k, file10k, anonbig, filebig;

	reg(tm, "bench", NULL);
	base = store_bytes(tm);
	fill(tm, 10000);
	at10k = store_bytes(tm);
	for (int i = 0; i < 100; i++)
		tm_list_recent(tm, "bench", 1, 64, 0, NULL);
	anon10k = rss_kib("RssAnon");
	file10k = rss_kib("RssFile");
	fill(tm, big - 10000);
	for (int i = 0; i < 100; i++)
		tm_list_recent(tm, "bench", 1, 64, 0, NULL);
	anonbig = rss_kib("RssAnon");
	filebig = rss_kib("RssFile");
	header("6. store bytes per task (small payload, all tasks waiting) and resident memory",
	       "at 10k");
	row("store bytes per task, 10k tasks", (double)(at10k - base) / 10000, "B", 0);
	row("store bytes per task, BENCH_BIG tasks", (double)store_bytes(tm) / big, "B", 0);
	row("own resident memory (RssAnon), 10k (KiB)", (double)anon10k, "KiB", 0);
	row("own resident memory (RssAnon), BENCH_BIG", (double)anonbig, "KiB", (double)anon10k);
	row("mapped store pages (RssFile), 10k (KiB)", (double)file10k, "KiB", 0);
	row("mapped store pages (RssFile), BENCH_BIG", (double)filebig, "KiB", (double)file10k);
	printf("\nBENCH_BIG = %ld.  goals: <= 1024 B per task; own resident memory flat "
	       "in the number of tasks (RssFile is the page cache of the store file that "
	       "this process touched while filling it; the kernel reclaims it)\n", big);
	tm_close(tm);
	drop("size");
	return 0;
}

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

/* ---- 9. supervisor tick ------------------------------------------------------- */

/* Nanoseconds on a CPU of every thread but the caller's (the library's:
 * with no workers, its supervisor), kernel time included, from
 * /proc/self/task/TID/schedstat. */
static double library_cpu_ns(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	double ns = 0;

	if (d == NULL)
		die("opendir /proc/self/task");
	while ((e = readdir(d)) != NULL) {
		char path[300];
		unsigned long long run;
		FILE *f;

		if (e->d_name[0] == '.' || atoi(e->d_name) == (int)getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/schedstat", e->d_name);
		f = fopen(path, "r");
		if (f && fscanf(f, "%llu", &run) == 1)
			ns += (double)run;
		if (f)
			fclose(f);
	}
	closedir(d);
	return ns;
}

/* Over `seconds` in which nothing else happens (no workers, no calls):
 * the CPU per tick of the supervisor's checks, as tm_stats counts them
 * (its thread's clock around each round), to *checks_us; and of its
 * thread in all, kernel work included (the wake-ups, and what the kernel
 * charges to whatever runs: the store's writeback, on a no-sync store),
 * to *thread_us. */
static void tick_cpu_us(tm_manager *tm, double seconds, double *checks_us,
                        double *thread_us)
{
	struct timespec settle = { 2, 0 }, nap = { (time_t)seconds, 0 };
	double ticks, cpu, all;

	nanosleep(&settle, NULL); /* the wake-ups of the fill, handled */
	ticks = stat_figure(tm, "supervisor_ticks");
	cpu = stat_figure(tm, "supervisor_cpu_s");
	all = library_cpu_ns();
	nanosleep(&nap, NULL);
	ticks = stat_figure(tm, "supervisor_ticks") - ticks;
	if (ticks < 1)
		die("the supervisor did not tick");
	*checks_us = (stat_figure(tm, "supervisor_cpu_s") - cpu) * 1e6 / ticks;
	*thread_us = (library_cpu_ns() - all) / 1e3 / ticks;
}

static int bench_tick(void)
{
	tm_manager *tm = open_tm("tick", 0, 1);
	double small, large, small_all, large_all;
	char label[96];

	reg(tm, "bench", NULL); /* no workers here: its tasks wait */
	fill(tm, 10000);
	tick_cpu_us(tm, 10, &small, &small_all);
	fill(tm, big - 10000);
	tick_cpu_us(tm, 10, &large, &large_all);
	tm_close(tm);
	drop("tick");
	header("9. the supervisor's CPU per tick, tasks waiting (10 s each)", "10k");
	row("checks per tick, 10k tasks waiting (us)", small, "us", 0);
	snprintf(label, sizeof(label), "checks per tick, %s tasks waiting (us)", count_name(big));
	row(label, large, "us", small);
	row("its thread per tick, 10k tasks waiting (us)", small_all, "us", 0);
	snprintf(label, sizeof(label), "its thread per tick, %s tasks waiting (us)", count_name(big));
	row(label, large_all, "us", small_all);
	printf("\n(ratios to 10k.)  goal: checks <= 1.2x.  \"Checks\" is tm_stats' "
	       "supervisor_cpu_s per tick;\nthe thread's figure adds kernel time.\n");
	return 0;
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

static int bench_schedule(void)
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

static int bench_retention(void)
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

/* ---- 8. PostgreSQL (bench_pg.c) ----------------------------------------------- */

static int section_pg(void)
{
	return bench_pg(pg_uri ? pg_uri : getenv("TM_TEST_PG_URL"), quick, scale, big);
}

/* ---- disk --------------------------------------------------------------------- */

/* Bytes the stores take, measured (ext4, LMDB 0.9.24): a durable task
 * ~0.85-1.0 KB, a raw 400-byte record ~530 B, a task of the big no-sync
 * store ~2.1 KB at 1M tasks (LMDB's free pages included), a store's own
 * files (lock, wake, key file) up to ~0.5 MB.  Rounded up here; the sum
 * gets a quarter more.  A section's need is all its stores together,
 * though each is removed once measured. */
#define TASK_B  1200ull
#define RAW_B   700ull
#define BIG_B   2200ull
#define STORE_B 1000000ull

static unsigned long long need_trigger(void)
{
	unsigned long long n = (unsigned long long)ops(3000);

	return n * RAW_B + (n + n + 4 * n) * TASK_B + 4 * STORE_B;
}

static unsigned long long need_bulk(void)
{
	return (unsigned long long)ops(200) * BULK * (RAW_B + TASK_B) + 2 * STORE_B;
}

static unsigned long long need_e2e(void)
{
	return (unsigned long long)ops(3000) * RAW_B + (unsigned long long)ops(8000) * TASK_B +
	       2 * STORE_B;
}

static unsigned long long need_get(void)
{
	return 1000 * (TASK_B + RAW_B) + 2 * STORE_B;
}

static unsigned long long need_list(void)
{
	return (unsigned long long)big * BIG_B + 10000 * RAW_B + 2 * STORE_B;
}

static unsigned long long need_tick(void)
{
	return (unsigned long long)big * BIG_B + STORE_B;
}

static unsigned long long need_latency(void)
{
	return 1250 * TASK_B + 2 * STORE_B;
}

static unsigned long long need_size(void)
{
	return (unsigned long long)big * BIG_B + STORE_B;
}

static unsigned long long need_retention(void)
{
	/* The store that keeps all: 60 s at up to 25000 tasks/s. */
	return (quick ? 10ull : 60ull) * 25000 * TASK_B + 2 * STORE_B;
}

static unsigned long long need_schedule(void)
{
	return (unsigned long long)big * BIG_B + 3 * STORE_B;
}

static unsigned long long need_pg(void)
{
	return 0; /* on the server's disk, not here */
}

static const char *bytes_name(unsigned long long n)
{
	static char s[4][32];
	static int k;

	k = (k + 1) % 4;
	if (n >= 1000000000ull)
		snprintf(s[k], sizeof(s[k]), "%.1f GB", (double)n / 1e9);
	else
		snprintf(s[k], sizeof(s[k]), "%.0f MB", (double)n / 1e6 + 0.5);
	return s[k];
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: tm-bench [--quick] [--dir DIR] [--pg URI]\n"
	        "                [trigger|bulk|e2e|get|list|latency|size|retention|tick|schedule|pg]...\n"
	        "  Runs the named sections (none named: all) and prints their tables.\n"
	        "  --quick    every ratio at a smaller scale, in about a minute: a quarter\n"
	        "             of the durable operations, a big store of 100k tasks (not 1M)\n"
	        "  --dir DIR  put the stores in DIR/tm-bench-PID (default: $BENCH_DIR, else\n"
	        "             /var/tmp/tm-bench), on disk, not tmpfs; the run says first how\n"
	        "             much free space it needs, and removes them when it ends\n"
	        "  --pg URI   the PostgreSQL server of section pg (default: $TM_TEST_PG_URL;\n"
	        "             neither: pg is skipped); it makes and drops schemas tmbench_*\n"
	        "  environment: BENCH_SCALE multiplies the operation counts (default 1),\n"
	        "  BENCH_BIG sets the big store's tasks (default 1000000, --quick 100000),\n"
	        "  BENCH_DIR as --dir, BENCH_NOSYNC=1 section retention on a no-sync store,\n"
	        "  BENCH_SAMPLES=DIR section latency's samples to DIR/latency-*.txt.\n");
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(void);
		unsigned long long (*need)(void);
	} sections[] = {
		{ "trigger", bench_trigger, need_trigger }, { "bulk", bench_bulk, need_bulk },
		{ "e2e", bench_e2e, need_e2e },
		{ "get", bench_get, need_get },             { "list", bench_list, need_list },
		{ "latency", bench_latency, need_latency }, { "size", bench_size, need_size },
		{ "retention", bench_retention, need_retention }, { "tick", bench_tick, need_tick },
		{ "schedule", bench_schedule, need_schedule },
		{ "pg", section_pg, need_pg },
	};
	enum { NSECTIONS = sizeof(sections) / sizeof(sections[0]) };
	const char *dir = getenv("BENCH_DIR");
	const char *s = getenv("BENCH_SCALE");
	const char *b = getenv("BENCH_BIG");
	int want[NSECTIONS] = { 0 }, any = 0, rc = 0;
	unsigned long long need = 0, avail;
	struct statvfs fs;
	pthread_t stopper;

	for (int a = 1; a < argc; a++) {
		const char *arg = argv[a];
		int known = 0;

		if (strcmp(arg, "--quick") == 0) {
			quick = known = 1;
		} else if (strcmp(arg, "--dir") == 0) {
			if (a + 1 == argc) {
				fprintf(stderr, "tm-bench: --dir needs a directory\n");
				return 2;
			}
			dir = argv[++a];
			known = 1;
		} else if (strncmp(arg, "--dir=", 6) == 0) {
			dir = arg + 6;
			known = 1;
		} else if (strcmp(arg, "--pg") == 0) {
			if (a + 1 == argc) {
				fprintf(stderr, "tm-bench: --pg needs a URI\n");
				return 2;
			}
			pg_uri = argv[++a];
			known = 1;
		} else if (strncmp(arg, "--pg=", 5) == 0) {
			pg_uri = arg + 5;
			known = 1;
		} else if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			usage(stdout);
			return 0;
		}
		for (int i = 0; i < NSECTIONS && !known; i++)
			if (strcmp(arg, sections[i].name) == 0)
				want[i] = any = known = 1;
		if (!known) {
			fprintf(stderr, "tm-bench: unknown argument '%s'\n", arg);
			usage(stderr);
			return 2;
		}
	}
	for (int i = 0; i < NSECTIONS; i++)
		want[i] |= !any;
	if (s)
		scale = atoi(s) > 0 ? atoi(s) : 1;
	big = b && atol(b) > 0 ? atol(b) : quick ? 100000 : 1000000;
	for (int i = 0; i < NSECTIONS; i++)
		if (want[i] && sections[i].need() > need)
			need = sections[i].need();
	need += need / 4;

	/* Stop signals wait for the thread that removes the stores. */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
	snprintf(root, sizeof(root), "%s", dir && *dir ? dir : "/var/tmp/tm-bench");
	if (mkdir(root, 0755) == 0)
		root_made = 1;
	else if (errno != EEXIST)
		fail("cannot create", root);
	snprintf(run_dir, sizeof(run_dir), "%s/tm-bench-%ld", root, (long)getpid());
	if (mkdir(run_dir, 0755) != 0)
		fail("cannot create", run_dir);
	owner = getpid();
	atexit(cleanup);
	if (pthread_create(&stopper, NULL, signal_thread, NULL) != 0)
		fail("cannot start a thread for", "signals");
	pthread_detach(stopper);

	printf("tm-bench: %ld cores, libtaskmgr %s, LMDB %s, stores under %s\n",
	       sysconf(_SC_NPROCESSORS_ONLN), tm_version(),
	       mdb_version(NULL, NULL, NULL), run_dir);
	if (quick)
		printf("scale: QUICK (--quick): a quarter of the full run's durable operations, "
		       "a big store of %s tasks (full run: 1M); the full run's ratios at this "
		       "smaller scale\n", count_name(big));
	else
		printf("scale: full (BENCH_SCALE=%d, a big store of %s tasks); tm-bench --quick "
		       "gives the same ratios at a smaller scale\n", scale, count_name(big));
	if (statvfs(run_dir, &fs) != 0)
		fail("cannot read free space of", run_dir);
	avail = (unsigned long long)fs.f_bavail * fs.f_frsize;
	printf("disk: needs about %s free under %s (has %s); each store is removed once "
	       "measured, the rest when the run ends\n", bytes_name(need), root,
	       bytes_name(avail));
	fflush(stdout);
	if (avail < need) {
		fprintf(stderr, "tm-bench: not enough free space under %s: the stores need about "
		        "%s, the file system has %s.\n  Choose a directory on a larger file system "
		        "(--dir DIR or BENCH_DIR=DIR), or %s.\n", root, bytes_name(need),
		        bytes_name(avail), quick || b ? "set a smaller BENCH_BIG" : "run tm-bench --quick");
		return 1;
	}
	for (int i = 0; i < NSECTIONS; i++)
		if (want[i]) {
			rc |= sections[i].run();
			fflush(stdout);
		}
	if (du_bytes(run_dir) > peak_bytes)
		peak_bytes = du_sum;
	cleanup();
	printf("\ndisk: at most %s used (estimate %s); stores removed\n",
	       bytes_name(peak_bytes), bytes_name(need));
	return rc;
}
