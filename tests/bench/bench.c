/* tm-bench: libtaskmgr against raw LMDB, measured in the same run.
 *
 *   tm-bench trigger   durable tm_trigger, 1 and 8 threads, vs raw LMDB
 *                      one durable transaction per 400-byte record
 *   tm-bench e2e       durable trigger -> RUNNING -> COMPLETED, 8 triggering
 *                      threads, 2 workers, no-op handler: jobs/s
 *   tm-bench get       tm_get vs raw mdb_get (read txn per call, copy out)
 *   tm-bench list      tm_list_recent(amt=64) vs a raw 64-record cursor scan,
 *                      at 10k and at BENCH_BIG (default 1M) tasks
 *   tm-bench latency   trigger -> handler start, p50 and p99, same process
 *                      (no-sync store) and across processes
 *   tm-bench size      store bytes per task; resident memory at BENCH_BIG
 *
 * Every section prints a table: the figure, the baseline, and their ratio.
 * BENCH_SCALE (default 1) multiplies the operation counts.  The machine's
 * core count heads the output.  Ratios, not absolute times, are the goals:
 * these machines are shared and noisy. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "taskmgr.h"

static char root[256];
static int scale = 1;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "tm-bench: %s: %s\n", what, tm_last_error());
	exit(1);
}

static char *fresh_dir(const char *name)
{
	static char path[512];
	char cmd[600];

	snprintf(path, sizeof(path), "%s/%s", root, name);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		die("rm");
	mkdir(path, 0755);
	return path;
}

static tm_manager *open_tm(const char *name, unsigned workers, int nosync)
{
	tm_options o;
	tm_manager *tm;

	tm_options_init(&o, TM_OPTIONS_VERSION);
	o.path = fresh_dir(name);
	o.workers = workers;
	o.flags = nosync ? TM_OPEN_NOSYNC : 0;
	o.map_size_max = 64ull << 30;
	o.keep_count = 4000000000u;
	if (tm_open(&o, &tm) != TM_OK)
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
	int n = 3000 * scale;
	double raw = raw_put_rate(n), one, one_plain, eight;
	tm_manager *tm;

	tm = open_tm("trigger-1", 0, 0);
	reg(tm, "bench", NULL);
	shared_tm = tm;
	one = trigger_rate(1, n, 0);
	tm_close(tm);
	/* Without a refresh token: no key to sync beside the commit. */
	tm = open_tm("trigger-1p", 0, 0);
	reg(tm, "bench", NULL);
	shared_tm = tm;
	trigger_body = body400_nosecret;
	one_plain = trigger_rate(1, n, 0);
	trigger_body = NULL;
	tm_close(tm);
	tm = open_tm("trigger-8", 0, 0);
	reg(tm, "bench", NULL);
	shared_tm = tm;
	eight = trigger_rate(8, n * 4, 0);
	tm_close(tm);
	header("1. durable tm_trigger vs raw LMDB, one durable transaction per 400-byte record",
	       "raw LMDB/s");
	row("raw LMDB, 1 thread (records/s)", raw, "/s", 0);
	row("tm_trigger, 1 thread, refresh token (triggers/s)", one, "/s", raw);
	row("tm_trigger, 1 thread, no token (triggers/s)", one_plain, "/s", raw);
	row("tm_trigger, 8 threads, refresh token (triggers/s)", eight, "/s", raw);
	printf("\ngoals: 1 thread >= 0.9x, 8 threads >= 5x\n");
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
	int n = 8000 * scale;
	double raw = raw_put_rate(3000 * scale), t0, rate;
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
	header("2. durable end to end: trigger -> RUNNING -> COMPLETED, 8 triggering threads, 2 workers",
	       "raw LMDB/s");
	row("raw LMDB single-record durable transactions", raw, "/s", 0);
	row("jobs/s, every step durable", rate, "jobs/s", raw);
	printf("\ngoal: >= 10000 jobs/s\n");
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
	free(value);
	free(answer);
	return n / t0;
}

static int bench_list(void)
{
	const char *b = getenv("BENCH_BIG");
	long big = b ? atol(b) : 1000000;
	int n = 5000 * scale;
	tm_manager *tm = open_tm("list", 0, 1);
	double small_rate, big_rate, raw;
	size_t len;
	char *out;

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
	header("4. tm_list_recent(amt=64) vs a raw 64-record cursor scan", "raw scans/s");
	row("raw cursor scan, 64 records", raw, "/s", 0);
	row("tm_list_recent, 10k tasks stored", small_rate, "/s", raw);
	printf("| %-50s | %12.1f %-7s | %12.1f | %6.2fx |\n", "tm_list_recent, 1M tasks stored",
	       big_rate, "/s", small_rate, big_rate / small_rate);
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

static int bench_latency(void)
{
	int n = 1000;
	int64_t *same = calloc(SAMPLES, sizeof(int64_t));
	int64_t *cross = calloc(SAMPLES, sizeof(int64_t));
	tm_manager *tm;
	pid_t pid;
	int go[2];
	char c;

	lat = mmap(NULL, sizeof(*lat), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	tm = open_tm("latency", 1, 1);
	reg(tm, "bench", stamp);
	measure(tm, same, n);
	tm_close(tm);

	/* Across processes: fork first, open after (never share an LMDB env
	 * across fork).  The child runs the jobs; this process only triggers. */
	atomic_store(&lat->seen, 0);
	fresh_dir("latency-x");
	if (pipe(go) != 0)
		die("pipe");
	pid = fork();
	if (pid == 0) {
		tm_options o;

		tm_options_init(&o, TM_OPTIONS_VERSION);
		o.path = strcat(strcpy(malloc(600), root), "/latency-x");
		o.workers = 1;
		o.flags = TM_OPEN_NOSYNC;
		if (tm_open(&o, &tm) != TM_OK)
			_exit(1);
		reg(tm, "bench", stamp);
		if (write(go[1], "k", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	if (read(go[0], &c, 1) != 1)
		die("child");
	{
		tm_options o;

		tm_options_init(&o, TM_OPTIONS_VERSION);
		o.path = strcat(strcpy(malloc(600), root), "/latency-x");
		o.workers = 0;
		o.flags = TM_OPEN_NOSYNC;
		if (tm_open(&o, &tm) != TM_OK)
			die("tm_open");
		reg(tm, "bench", NULL);
	}
	measure(tm, cross, n / 4);
	tm_close(tm);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	header("5. trigger -> handler start latency (no-sync store)", "");
	row("same process, p50 (us)", (double)same[n / 2], "us", 0);
	row("same process, p99 (us)", (double)same[n * 99 / 100], "us", 0);
	row("across processes, p50 (us)", (double)cross[n / 8], "us", 0);
	row("across processes, p99 (us)", (double)cross[(n / 4) * 99 / 100], "us", 0);
	printf("\ngoals: same process p50 <= 50 us, p99 <= 500 us; across processes p99 <= 5000 us\n");
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
	const char *b = getenv("BENCH_BIG");
	long big = b ? atol(b) : 1000000;
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
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(void);
	} sections[] = {
		{ "trigger", bench_trigger }, { "e2e", bench_e2e }, { "get", bench_get },
		{ "list", bench_list }, { "latency", bench_latency }, { "size", bench_size },
	};
	const char *dir = getenv("BENCH_DIR");
	const char *s = getenv("BENCH_SCALE");
	int rc = 0, any = 0;

	if (s)
		scale = atoi(s) > 0 ? atoi(s) : 1;
	snprintf(root, sizeof(root), "%s", dir ? dir : "/var/tmp/tm-bench");
	mkdir(root, 0755);
	printf("tm-bench: %ld cores, libtaskmgr %s, LMDB %s, stores under %s\n",
	       sysconf(_SC_NPROCESSORS_ONLN), tm_version(),
	       mdb_version(NULL, NULL, NULL), root);
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		int want = argc < 2;

		for (int a = 1; a < argc; a++)
			want |= strcmp(argv[a], sections[i].name) == 0;
		if (want) {
			any = 1;
			rc |= sections[i].run();
			fflush(stdout);
		}
	}
	if (!any) {
		fprintf(stderr, "usage: %s [trigger|e2e|get|list|latency|size]...\n", argv[0]);
		return 2;
	}
	return rc;
}
