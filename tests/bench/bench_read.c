/* tm-bench's read sections (bench.h): 3 tm_get, 4 tm_list_recent, 6 the
 * store's size and the process's memory, 9 the supervisor's tick. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include <lmdb.h>

#include "bench.h"
#include "clock.h"
#include "taskmgr.h"

/* ---- 3. get ------------------------------------------------------------------ */

int bench_get(void)
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

int bench_list(void)
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

int bench_size(void)
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

int bench_tick(void)
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
