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
 * This file holds the run: its options, its stores' directory, what the
 * sections share (bench.h) and the disk each needs.  The sections are in
 * bench_write.c (trigger, bulk, e2e, latency), bench_read.c (get, list,
 * size, tick), bench_queue.c (retention, schedule) and bench_pg.c (pg).
 *
 * The stores go in a directory of their own, DIR/tm-bench-PID, where DIR is
 * --dir, else BENCH_DIR, else /var/tmp/tm-bench (disk, not tmpfs).  The run
 * says first how much free space that needs and refuses to start without
 * it; it removes each store once measured, and the directory when it ends,
 * also on failure and on SIGINT, SIGTERM or SIGHUP. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <lmdb.h>

#include "bench.h"
#include "bench_pg.h"
#include "clock.h"
#include "taskmgr.h"

static char root[512];     /* --dir, BENCH_DIR or the default */
char run_dir[600];  /* root/tm-bench-PID: this run's stores */
static int root_made;      /* root did not exist before this run */
static pid_t owner;        /* the process that removes run_dir */
int scale = 1;      /* BENCH_SCALE */
int quick;          /* --quick */
long big;           /* BENCH_BIG: the big store of list and size */
static unsigned long long peak_bytes; /* run_dir's use, largest seen */
static const char *pg_uri; /* --pg: the server of section pg */

/* Durable operation counts: BENCH_SCALE times full, a quarter with --quick.
 * (The reads of get and list are cheap, and --quick leaves them as they are.) */
int ops(int full)
{
	return quick ? full * scale / 4 : full * scale;
}

void die(const char *what)
{
	fprintf(stderr, "tm-bench: %s: %s\n", what, tm_last_error());
	exit(1);
}

/* "1M", "100k": a task count as the tables name it. */
const char *count_name(long n)
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

void fail(const char *what, const char *path)
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

sigset_t stop_signals;

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

char *fresh_dir(const char *name)
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
void drop(const char *name)
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
tm_manager *open_at(const char *path, unsigned workers, int nosync)
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

tm_manager *open_tm(const char *name, unsigned workers, int nosync)
{
	tm_manager *tm = open_at(fresh_dir(name), workers, nosync);

	if (tm == NULL)
		die("tm_open");
	return tm;
}

void reg(tm_manager *tm, const char *name, tm_status (*run)(tm_job *, void *))
{
	tm_job_def d;

	tm_job_def_init(&d, TM_JOB_DEF_VERSION);
	d.name = name;
	d.run = run;
	if (tm_register(tm, &d) != TM_OK)
		die("tm_register");
}

void row(const char *what, double figure, const char *unit, double base)
{
	if (base > 0)
		printf("| %-50s | %12.1f %-7s | %12.1f | %6.2fx |\n", what, figure, unit,
		       base, figure / base);
	else
		printf("| %-50s | %12.1f %-7s | %12s | %7s |\n", what, figure, unit, "", "");
}

void header(const char *title, const char *base)
{
	printf("\n%s\n\n| %-50s | %20s | %12s | %7s |\n|%s|%s|%s|%s|\n", title,
	       "measure", "figure", base, "ratio",
	       "----------------------------------------------------",
	       "----------------------", "--------------", "---------");
}

/* ---- raw LMDB baselines --------------------------------------------------- */

MDB_env *raw_open(const char *name, unsigned flags)
{
	MDB_env *env;

	if (mdb_env_create(&env) || mdb_env_set_mapsize(env, 64ull << 30) ||
	    mdb_env_open(env, fresh_dir(name), flags, 0644))
		die("raw open");
	return env;
}

void raw_key(char *k, uint64_t i)
{
	snprintf(k, 21, "%020llu", (unsigned long long)i);
}

/* One durable write transaction per 400-byte record: records/s. */
double raw_put_rate(int n)
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

/* ---- what several sections share --------------------------------------------- */

/* A reco_export body of 400 bytes, with a refresh token and without (the
 * same size, padded). */
const char *body400 =
	"{\"context_task\": {\"input_table\": {\"connection\": \"LOCAL\", \"name\": "
	"\"input-myfile.csv.gz\"}, \"reco_params\": {\"amt\": 7, \"filters\": "
	"[\"price:eq:10\", \"tags:in:family,fiction\"]}, \"output_table\": "
	"{\"connection\": \"LOCAL\", \"name\": \"output-reco.parquet\"}}, "
	"\"refresh_token\": \"mW+k/K...\"}";

const char *body400_nosecret =
	"{\"context_task\": {\"input_table\": {\"connection\": \"LOCAL\", \"name\": "
	"\"input-myfile.csv.gz\"}, \"reco_params\": {\"amt\": 7, \"filters\": "
	"[\"price:eq:10\", \"tags:in:family,fiction\"]}, \"output_table\": "
	"{\"connection\": \"LOCAL\", \"name\": \"output-reco.parquet\"}, "
	"\"padding\": \"to-the-same-size\"}}";

atomic_int ran;

tm_status noop(tm_job *job, void *user)
{
	(void)job;
	(void)user;
	atomic_fetch_add(&ran, 1);
	return TM_COMPLETED;
}

long completed(tm_manager *tm)
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

double stat_figure(tm_manager *tm, const char *key)
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
