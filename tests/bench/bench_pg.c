/* tm-bench pg: the PostgreSQL store against raw libpq, on the same server
 * in the same run (built only when libpq is found; bench_pg.h).
 *
 *   tm-bench [--quick] [--pg URI] pg      (URI else $TM_TEST_PG_URL)
 *   scripts/pg-cluster run build/tests/bench/tm-bench pg
 *
 * Measured, one table:
 *   - baseline: raw libpq autocommit INSERTs of a 400-byte row (a 20-char
 *     random text key, as a task id) into a scratch table, synchronous_commit
 *     on: rows/s from 1 connection, and from 8 connections (8 threads);
 *   - durable tm_trigger (workers=0, no NOSYNC) from 1 thread, and from 8:
 *     triggers/s against the raw rate;
 *   - durable end to end, trigger -> RUNNING -> COMPLETED with a handler
 *     that does nothing: 8 triggering threads in node A, two nodes (this
 *     process and a forked one), 2 workers each: jobs/s from the first
 *     trigger until tm_stats counts every task COMPLETED;
 *   - tm_list_recent(name, page 1, amt 64) at 10k tasks and at BENCH_BIG
 *     (1M; --quick 100k) tasks of the name: the 10k are made by tm_trigger
 *     and run to COMPLETED by the library, the rest are cloned from them
 *     in SQL (fresh ids, distinct times, the record's head rewritten to
 *     match), and tm_check must find both stores consistent;
 *   - trigger on node A (workers=0) -> handler start on node B (another
 *     process, workers=2): p50 and p99 of a few hundred triggers, each
 *     sent 20 ms after the last one started (CLOCK_MONOTONIC, one machine).
 *
 * Each store is a fresh schema tmbench_PID_N (the scratch table's too),
 * dropped once measured; bench_pg_cleanup() drops what is left, also on
 * failure and on SIGINT/SIGTERM/SIGHUP (tm-bench's cleanup calls it). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "bench_pg.h"
#include "clock.h"
#include "taskmgr.h"

#define MAX_SCHEMAS 16
#define MAX_KIDS 4
#define LAT_MAX 1000
#define NAME "bench"

static const char *given_uri; /* as given: the stores' URIs add taskmgr_schema */
static char *raw_uri;         /* without taskmgr_* parameters: for libpq itself */
static int quick_, scale_;

/* What bench_pg_cleanup() undoes: schemas made, node processes started. */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static pid_t pg_owner;
static char schemas[MAX_SCHEMAS][64];
static int schema_live[MAX_SCHEMAS];
static int n_schemas;
static pid_t kids[MAX_KIDS];
static PGcancel *long_sql;    /* the connection that fills the big store */
static atomic_int stopping;   /* cleanup began: failures from here are its doing */

/* A call that fails once cleanup has dropped the schemas under it: the
 * process is ending anyway (a stop signal, or an exit in another thread). */
static void quiet_if_stopping(void)
{
	if (atomic_load(&stopping))
		for (;;)
			pause();
}

/* Shared with the node processes (MAP_SHARED, made before they fork). */
struct shared {
	atomic_long ran[2];        /* handler runs, node A (0) and node B (1) */
	atomic_long seen;          /* latency: handler starts */
	int64_t start_ns[LAT_MAX]; /* latency: when each handler started */
};
static struct shared *shm;
static int node_idx;           /* 0 in this process, 1 in node B */

static int ops(int full)
{
	return quick_ ? full * scale_ / 4 : full * scale_;
}

static void sleep_ms(double ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6) };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void die_tm(const char *what)
{
	quiet_if_stopping();
	fprintf(stderr, "tm-bench pg: %s: %s\n", what, tm_last_error());
	exit(1);
}

static void die_pg(const char *what, PGconn *c, PGresult *r)
{
	quiet_if_stopping();
	fprintf(stderr, "tm-bench pg: %s: %s", what,
	        r ? PQresultErrorMessage(r) : PQerrorMessage(c));
	exit(1);
}

/* ---- the server, through libpq ------------------------------------------- */

/* The URI without our own query parameters (taskmgr_schema,
 * taskmgr_timeout_ms), which libpq would refuse. */
static char *strip_tm_params(const char *uri)
{
	const char *q = strchr(uri, '?');
	char *out = malloc(strlen(uri) + 1), *o;
	int first = 1;

	if (out == NULL)
		exit(1);
	memcpy(out, uri, q ? (size_t)(q - uri) : strlen(uri));
	o = out + (q ? (size_t)(q - uri) : strlen(uri));
	while (q && *q) {
		const char *p = q + 1, *end = strchr(p, '&');
		size_t n;

		if (end == NULL)
			end = p + strlen(p);
		n = (size_t)(end - p);
		if (n > 0 && strncmp(p, "taskmgr_", 8) != 0) {
			*o++ = first ? '?' : '&';
			memcpy(o, p, n);
			o += n;
			first = 0;
		}
		q = *end ? end : NULL;
	}
	*o = '\0';
	return out;
}

/* The server's notices (DROP ... CASCADE lists what it drops) are noise here. */
static void quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static PGconn *connect_raw(const char *timeout_s)
{
	const char *keys[] = { "dbname", "connect_timeout", "application_name", NULL };
	const char *vals[] = { raw_uri, timeout_s, "tm-bench", NULL };
	PGconn *c = PQconnectdbParams(keys, vals, 1);

	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "tm-bench pg: connecting to the server: %s",
		        c ? PQerrorMessage(c) : "out of memory\n");
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, quiet, NULL);
	return c;
}

static PGconn *connect_or_die(void)
{
	PGconn *c = connect_raw("10");

	if (c == NULL)
		exit(1);
	return c;
}

/* Run SQL (no parameters) and die on failure; the result is returned
 * when want is set, else cleared. */
static PGresult *sql(PGconn *c, int want, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static PGresult *sql(PGconn *c, int want, const char *fmt, ...)
{
	char text[4096];
	va_list ap;
	PGresult *r;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	r = PQexec(c, text);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		die_pg(text, c, r);
	if (want)
		return r;
	PQclear(r);
	return NULL;
}

static long long sql_int(PGconn *c, const char *fmt, const char *arg)
{
	char text[1024];
	PGresult *r;
	long long v;

	snprintf(text, sizeof(text), fmt, arg);
	r = sql(c, 1, "%s", text);
	v = PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : -1;
	PQclear(r);
	return v;
}

/* ---- schemas and node processes: made, then undone ------------------------- */

static const char *new_schema(void)
{
	const char *s;

	pthread_mutex_lock(&reg_mu);
	if (n_schemas == MAX_SCHEMAS) {
		fprintf(stderr, "tm-bench pg: too many schemas\n");
		exit(1);
	}
	snprintf(schemas[n_schemas], sizeof(schemas[0]), "tmbench_%ld_%d", (long)getpid(),
	         n_schemas);
	schema_live[n_schemas] = 1;
	s = schemas[n_schemas++];
	pthread_mutex_unlock(&reg_mu);
	return s;
}

static int drop_schema(PGconn *c, const char *s)
{
	PGresult *r;
	char text[160];
	int ok;

	snprintf(text, sizeof(text), "DROP SCHEMA IF EXISTS %s CASCADE", s);
	r = PQexec(c, text);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "tm-bench pg: cannot drop schema %s: %s", s,
		        PQresultErrorMessage(r));
	PQclear(r);
	return ok;
}

/* Drop a schema once its measurement is done (every store on it closed). */
static void drop(const char *s)
{
	PGconn *c = connect_or_die();

	pthread_mutex_lock(&reg_mu);
	for (int i = 0; i < n_schemas; i++)
		if (schema_live[i] && strcmp(schemas[i], s) == 0 && drop_schema(c, s))
			schema_live[i] = 0;
	pthread_mutex_unlock(&reg_mu);
	PQfinish(c);
}

void bench_pg_cleanup(void)
{
	PGconn *c = NULL;
	int live = 0;

	if (pg_owner == 0 || getpid() != pg_owner)
		return;
	atomic_store(&stopping, 1);
	pthread_mutex_lock(&reg_mu);
	if (long_sql) {
		char err[256];

		PQcancel(long_sql, err, sizeof(err)); /* a fill under way: it holds locks */
	}
	for (int i = 0; i < MAX_KIDS; i++) {
		if (kids[i] > 0) {
			kill(kids[i], SIGKILL);
			waitpid(kids[i], NULL, 0);
			kids[i] = 0;
		}
	}
	for (int i = 0; i < n_schemas; i++)
		live += schema_live[i];
	if (live)
		c = connect_raw("5");
	if (c) {
		/* Bounded: a lock held by a stuck session must not hang the exit. */
		PQclear(PQexec(c, "SET lock_timeout = '15s'"));
		PQclear(PQexec(c, "SET statement_timeout = '120s'"));
	}
	for (int i = 0; i < n_schemas; i++) {
		if (!schema_live[i])
			continue;
		if (c && drop_schema(c, schemas[i]))
			schema_live[i] = 0;
		else
			fprintf(stderr, "tm-bench pg: schema %s is left on the server; "
			        "DROP SCHEMA %s CASCADE removes it\n", schemas[i], schemas[i]);
	}
	PQfinish(c);
	pthread_mutex_unlock(&reg_mu);
}

/* ---- stores ---------------------------------------------------------------------- */

static tm_manager *open_store(const char *schema, unsigned workers, int nosync)
{
	tm_options o = TM_OPTIONS_INIT;
	tm_manager *tm = NULL;
	char *uri;

	if (asprintf(&uri, "%s%ctaskmgr_schema=%s", given_uri,
	             strchr(given_uri, '?') ? '&' : '?', schema) < 0)
		exit(1);
	o.path = uri;
	o.workers = workers;
	o.flags = nosync ? TM_OPEN_NOSYNC : 0;
	o.keep_count = 4000000000u; /* no retention: every task stays */
	if (tm_open(&o, &tm) != TM_OK)
		tm = NULL;
	free(uri);
	return tm;
}

static tm_manager *open_or_die(const char *schema, unsigned workers, int nosync)
{
	tm_manager *tm = open_store(schema, workers, nosync);

	if (tm == NULL)
		die_tm("tm_open");
	return tm;
}

static int reg(tm_manager *tm, const char *name, tm_status (*run)(tm_job *, void *))
{
	tm_job_def d;

	tm_job_def_init(&d, TM_JOB_DEF_VERSION);
	d.name = name;
	d.run = run;
	return tm_register(tm, &d);
}

static tm_status noop(tm_job *job, void *user)
{
	(void)job;
	(void)user;
	atomic_fetch_add(&shm->ran[node_idx], 1);
	return TM_COMPLETED;
}

static tm_status stamp(tm_job *job, void *user)
{
	long i = atomic_load(&shm->seen);

	(void)job;
	(void)user;
	if (i < LAT_MAX)
		shm->start_ns[i] = now_ns();
	atomic_fetch_add(&shm->seen, 1);
	return TM_COMPLETED;
}

/* Node B: a process of its own, forked before this one opens the store
 * (nothing of libpq or the library crosses the fork).  It opens the store
 * with `workers`, registers `name` with run, says so on a pipe, and runs
 * until this process closes the other pipe (or dies). */
struct node {
	pid_t pid;
	int stop_fd;
};

static struct node start_node(const char *schema, unsigned workers, const char *name,
                              tm_status (*run)(tm_job *, void *))
{
	int ready[2], stop[2];
	pid_t parent = getpid();
	struct node n;
	char ch;

	if (pipe(ready) != 0 || pipe(stop) != 0) {
		perror("tm-bench pg: pipe");
		exit(1);
	}
	fflush(stdout);
	fflush(stderr);
	n.pid = fork();
	if (n.pid < 0) {
		perror("tm-bench pg: fork");
		exit(1);
	}
	if (n.pid == 0) {
		sigset_t stops;
		tm_manager *tm;

		sigemptyset(&stops);
		sigaddset(&stops, SIGINT);
		sigaddset(&stops, SIGTERM);
		sigaddset(&stops, SIGHUP);
		pthread_sigmask(SIG_UNBLOCK, &stops, NULL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		close(ready[0]);
		close(stop[1]);
		node_idx = 1;
		tm = open_store(schema, workers, 0);
		if (tm == NULL || reg(tm, name, run) != TM_OK) {
			fprintf(stderr, "tm-bench pg: node B: %s\n", tm_last_error());
			_exit(1);
		}
		if (write(ready[1], "k", 1) != 1)
			_exit(1);
		while (read(stop[0], &ch, 1) < 0 && errno == EINTR)
			;
		tm_close(tm);
		_exit(0);
	}
	close(ready[1]);
	close(stop[0]);
	pthread_mutex_lock(&reg_mu);
	for (int i = 0; i < MAX_KIDS; i++)
		if (kids[i] == 0) {
			kids[i] = n.pid;
			break;
		}
	pthread_mutex_unlock(&reg_mu);
	if (read(ready[0], &ch, 1) != 1) {
		fprintf(stderr, "tm-bench pg: node B did not start\n");
		exit(1);
	}
	close(ready[0]);
	n.stop_fd = stop[1];
	return n;
}

static void stop_node(struct node *n)
{
	int st = 0;

	close(n->stop_fd);
	waitpid(n->pid, &st, 0);
	pthread_mutex_lock(&reg_mu);
	for (int i = 0; i < MAX_KIDS; i++)
		if (kids[i] == n->pid)
			kids[i] = 0;
	pthread_mutex_unlock(&reg_mu);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "tm-bench pg: node B failed (status %d)\n", st);
		exit(1);
	}
}

/* A figure of tm_stats: "KEY":n, the first occurrence. */
static long stat_of(tm_manager *tm, const char *key)
{
	char *out = NULL, pat[64];
	const char *p;
	long n = -1;

	if (tm_stats(tm, &out) != TM_OK)
		die_tm("tm_stats");
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(out, pat);
	if (p)
		n = strtol(p + strlen(pat), NULL, 10);
	tm_free(out);
	return n;
}

/* ---- table -------------------------------------------------------------------------- */

static void row(const char *what, double figure, const char *unit, double base,
                const char *goal)
{
	if (base > 0)
		printf("| %-52s | %12.1f %-7s | %12.1f | %6.2fx | %-22s |\n", what, figure,
		       unit, base, figure / base, goal);
	else
		printf("| %-52s | %12.1f %-7s | %12s | %7s | %-22s |\n", what, figure, unit,
		       "", "", goal);
}

/* ---- 1. raw INSERT ------------------------------------------------------------------ */

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

struct raw_arg {
	const char *schema;
	int n;
	unsigned idx;
	pthread_barrier_t *go;
};

static void *raw_thread(void *p)
{
	struct raw_arg *a = p;
	PGconn *c = connect_or_die();
	char text[200], id[21], body[400];
	const char *vals[2] = { id, body };
	const int lens[2] = { 0, (int)sizeof(body) }, formats[2] = { 0, 1 };
	uint64_t x = (uint64_t)now_ns() ^ ((uint64_t)a->idx << 48) ^ (uint64_t)getpid();

	memset(body, 'x', sizeof(body));
	sql(c, 0, "SET synchronous_commit = on");
	snprintf(text, sizeof(text), "INSERT INTO %s.raw (id, body) VALUES ($1, $2)", a->schema);
	PQclear(PQprepare(c, "ins", text, 2, NULL));
	pthread_barrier_wait(a->go);
	for (int i = 0; i < a->n; i++) {
		PGresult *r;

		for (int k = 0; k < 20; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			id[k] = alphabet[x % 62];
		}
		id[20] = '\0';
		r = PQexecPrepared(c, "ins", 2, vals, lens, formats, 0);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			die_pg("raw INSERT", c, r);
		PQclear(r);
	}
	PQfinish(c);
	return NULL;
}

/* Autocommit single-row INSERTs, synchronous_commit on, from `threads`
 * connections: rows/s. */
static double raw_rate(const char *schema, int threads, int total)
{
	pthread_t t[8];
	struct raw_arg a[8];
	pthread_barrier_t go;
	double t0;

	pthread_barrier_init(&go, NULL, (unsigned)threads + 1);
	for (int i = 0; i < threads; i++) {
		a[i] = (struct raw_arg){ schema, total / threads, (unsigned)i, &go };
		pthread_create(&t[i], NULL, raw_thread, &a[i]);
	}
	pthread_barrier_wait(&go);
	t0 = now_s();
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	t0 = now_s() - t0;
	pthread_barrier_destroy(&go);
	return (double)(total / threads * threads) / t0;
}

/* ---- 2. durable trigger ------------------------------------------------------------- */

static const char *body400 =
	"{\"context_task\": {\"input_table\": {\"connection\": \"LOCAL\", \"name\": "
	"\"input-myfile.csv.gz\"}, \"reco_params\": {\"amt\": 7, \"filters\": "
	"[\"price:eq:10\", \"tags:in:family,fiction\"]}, \"output_table\": "
	"{\"connection\": \"LOCAL\", \"name\": \"output-reco.parquet\"}, "
	"\"padding\": \"to-the-same-size\"}}";
static const char *body400_token =
	"{\"context_task\": {\"input_table\": {\"connection\": \"LOCAL\", \"name\": "
	"\"input-myfile.csv.gz\"}, \"reco_params\": {\"amt\": 7, \"filters\": "
	"[\"price:eq:10\", \"tags:in:family,fiction\"]}, \"output_table\": "
	"{\"connection\": \"LOCAL\", \"name\": \"output-reco.parquet\"}}, "
	"\"refresh_token\": \"mW+k/K...\"}";

struct trig_arg {
	tm_manager *tm;
	const char *name, *body;
	int n;
	pthread_barrier_t *go;
};

static void *trigger_thread(void *p)
{
	struct trig_arg *a = p;

	if (a->go)
		pthread_barrier_wait(a->go);
	for (int i = 0; i < a->n; i++)
		if (tm_trigger(a->tm, a->name, a->body, 0, NULL) != TM_OK)
			die_tm("tm_trigger");
	return NULL;
}

/* total triggers of name from `threads` threads: triggers/s. */
static double trigger_rate(tm_manager *tm, const char *name, const char *body,
                           int threads, int total)
{
	pthread_t t[8];
	struct trig_arg a[8];
	double t0 = now_s();

	for (int i = 0; i < threads; i++) {
		a[i] = (struct trig_arg){ tm, name, body, total / threads, NULL };
		pthread_create(&t[i], NULL, trigger_thread, &a[i]);
	}
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	return (double)(total / threads * threads) / (now_s() - t0);
}

/* A few calls first: connections made, statements prepared. */
static void warm(tm_manager *tm, const char *name, const char *body)
{
	for (int i = 0; i < 5; i++)
		if (tm_trigger(tm, name, body, 0, NULL) != TM_OK)
			die_tm("tm_trigger");
}

/* ---- 3. end to end, two nodes ----------------------------------------------------- */

static double e2e_rate(int n, long *on_a, long *on_b)
{
	const char *schema = new_schema();
	struct node b;
	tm_manager *a;
	double t0, rate;

	atomic_store(&shm->ran[0], 0);
	atomic_store(&shm->ran[1], 0);
	b = start_node(schema, 2, NAME, noop);
	a = open_or_die(schema, 2, 0);
	if (reg(a, NAME, noop) != TM_OK)
		die_tm("tm_register");
	t0 = now_s();
	trigger_rate(a, NAME, body400, 8, n);
	while (atomic_load(&shm->ran[0]) + atomic_load(&shm->ran[1]) < n) {
		if (now_s() - t0 > 1800) {
			fprintf(stderr, "tm-bench pg: e2e: %ld of %d ran in 30 minutes\n",
			        atomic_load(&shm->ran[0]) + atomic_load(&shm->ran[1]), n);
			exit(1);
		}
		sleep_ms(2);
	}
	/* Every handler has returned; now until every outcome is stored. */
	while (stat_of(a, "COMPLETED") < n)
		sleep_ms(2);
	rate = n / (now_s() - t0);
	*on_a = atomic_load(&shm->ran[0]);
	*on_b = atomic_load(&shm->ran[1]);
	tm_close(a);
	stop_node(&b);
	drop(schema);
	return rate;
}

/* ---- 4. list_recent at 10k and at BENCH_BIG ----------------------------------------- */

static double list_rate(tm_manager *tm)
{
	double t0, t;
	int n = 0;

	for (int i = 0; i < 3; i++) { /* warm up */
		if (tm_list_recent(tm, NAME, 1, 64, 0, NULL) != TM_OK)
			die_tm("tm_list_recent");
	}
	t0 = now_s();
	do {
		char *out;

		if (tm_list_recent(tm, NAME, 1, 64, 0, &out) != TM_OK)
			die_tm("tm_list_recent");
		tm_free(out);
		n++;
		t = now_s() - t0;
	} while ((t < 2.0 || n < 10) && n < 100000);
	return n / t;
}

/* tm_check: dies unless the store is consistent; returns its task count. */
static long check(tm_manager *tm, const char *what)
{
	char *out = NULL;
	const char *p;
	long n;

	if (tm_check(tm, &out) != TM_OK)
		die_tm("tm_check");
	if (strstr(out, "\"ok\":true") == NULL) {
		fprintf(stderr, "tm-bench pg: tm_check of the %s store: %.2000s\n", what, out);
		exit(1);
	}
	p = strstr(out, "\"tasks\":");
	n = p ? strtol(p + 8, NULL, 10) : -1;
	tm_free(out);
	return n;
}

/* A stored record's head (task.c) holds start, timeout and ready times as
 * native int64 at bytes 17..40 (1-based) of the doc column; le8() is an
 * int8 as 8 little-endian bytes.  Checked against the 10k real rows before
 * it is used. */
static void make_le8(PGconn *c, const char *scratch)
{
	sql(c, 0, "CREATE FUNCTION %s.le8(x bigint) RETURNS bytea IMMUTABLE LANGUAGE sql AS $$"
	    " SELECT decode(substr(h, 15, 2) || substr(h, 13, 2) || substr(h, 11, 2) ||"
	    " substr(h, 9, 2) || substr(h, 7, 2) || substr(h, 5, 2) || substr(h, 3, 2) ||"
	    " substr(h, 1, 2), 'hex') FROM (SELECT lpad(to_hex(x), 16, '0') AS h) s $$",
	    scratch);
}

/* Clone the real tasks of schema until it holds `want` tasks of the name:
 * ids 12 hex digits of md5(g) then g as 8 hex digits (unique, 20
 * characters of [A-Za-z0-9]); each clone g of source k is moved back in
 * time by g microseconds more than the oldest real task (start, timeout
 * and ready times alike, in the columns and in the record's head), so
 * every start_us is distinct.  In statements of 100k rows. */
static void clone_to(PGconn *c, const char *schema, const char *scratch, long have,
                     long want)
{
	long long oldest, bad;
	char arg[200];

	snprintf(arg, sizeof(arg), "%s", schema);
	oldest = sql_int(c, "SELECT min(start_us) FROM %s.tasks", arg);
	snprintf(arg, sizeof(arg), "%s.tasks t WHERE substring(t.doc from 17 for 24) <>"
	         " %s.le8(t.start_us) || %s.le8(t.timeout_us) || %s.le8(t.ready_us)",
	         schema, scratch, scratch, scratch);
	bad = sql_int(c, "SELECT count(*) FROM %s", arg);
	if (bad != 0) {
		fprintf(stderr, "tm-bench pg: the record head is not as expected (%lld rows "
		        "differ): not cloning\n", bad);
		exit(1);
	}
	sql(c, 0, "CREATE TABLE %s.src AS SELECT row_number() OVER (ORDER BY id) - 1 AS k, "
	    "name, status, queued, start_us, ready_us, timeout_us, lease_us, owner, doc "
	    "FROM %s.tasks", scratch, schema);
	sql(c, 0, "CREATE UNIQUE INDEX ON %s.src (k)", scratch);
	for (long from = 1; from <= want - have; from += 100000) {
		long to = from + 99999 < want - have ? from + 99999 : want - have;

		sql(c, 0, "INSERT INTO %s.tasks (id, name, status, queued, start_us, ready_us,"
		    " timeout_us, lease_us, owner, doc)"
		    " SELECT substr(md5(g::text), 1, 12) || lpad(to_hex(g), 8, '0'), s.name,"
		    " s.status, s.queued, s.start_us + d, s.ready_us + d, s.timeout_us + d,"
		    " s.lease_us, s.owner, overlay(s.doc placing %s.le8(s.start_us + d) ||"
		    " %s.le8(s.timeout_us + d) || %s.le8(s.ready_us + d) from 17 for 24)"
		    " FROM generate_series(%ld::int8, %ld::int8) g"
		    " JOIN %s.src s ON s.k = g %% %ld"
		    " CROSS JOIN LATERAL (SELECT %lld - g - s.start_us AS d) dd",
		    schema, scratch, scratch, scratch, from, to, scratch, have, oldest);
	}
	sql(c, 0, "DROP TABLE %s.src", scratch);
}

struct list_result {
	double small, big;
	long checked_small, checked_big;
	double fill_s, clone_s;
};

static void list_bench(const char *scratch, long big, struct list_result *res)
{
	const char *schema = new_schema();
	PGconn *c = connect_or_die();
	PGcancel *cancel = PQgetCancel(c);
	const char *small_body = "{\"context_task\": {\"n\": 1}}";
	tm_manager *tm;
	pthread_t t[4];
	struct trig_arg a[4];
	double t0 = now_s();

	/* 10k real tasks, run to COMPLETED by the library: a no-sync store
	 * (this store is for reading), 4 triggering threads, 2 workers. */
	atomic_store(&shm->ran[0], 0);
	tm = open_or_die(schema, 2, 1);
	if (reg(tm, NAME, noop) != TM_OK)
		die_tm("tm_register");
	for (int i = 0; i < 4; i++) {
		a[i] = (struct trig_arg){ tm, NAME, small_body, 2500, NULL };
		pthread_create(&t[i], NULL, trigger_thread, &a[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	while (stat_of(tm, "COMPLETED") < 10000)
		sleep_ms(20);
	tm_close(tm);
	res->fill_s = now_s() - t0;
	sql(c, 0, "VACUUM ANALYZE %s.tasks", schema);

	/* Read by a node without workers, as a web front end would. */
	tm = open_or_die(schema, 0, 0);
	if (reg(tm, NAME, NULL) != TM_OK)
		die_tm("tm_register");
	res->small = list_rate(tm);
	res->checked_small = check(tm, "10k");
	tm_close(tm);

	t0 = now_s();
	pthread_mutex_lock(&reg_mu);
	long_sql = cancel;
	pthread_mutex_unlock(&reg_mu);
	make_le8(c, scratch);
	clone_to(c, schema, scratch, 10000, big);
	sql(c, 0, "VACUUM ANALYZE %s.tasks", schema);
	res->clone_s = now_s() - t0;
	pthread_mutex_lock(&reg_mu);
	long_sql = NULL;
	pthread_mutex_unlock(&reg_mu);
	PQfreeCancel(cancel);
	tm = open_or_die(schema, 0, 0);
	if (reg(tm, NAME, NULL) != TM_OK)
		die_tm("tm_register");
	res->big = list_rate(tm);
	res->checked_big = check(tm, "big");
	tm_close(tm);
	PQfinish(c);
	drop(schema);
}

/* ---- 5. trigger -> handler start on another node ----------------------------------- */

static int cmp64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;

	return (a > b) - (a < b);
}

static void latency(int n, int64_t *lat_us, int64_t *call_us)
{
	const char *schema = new_schema();
	struct node b;
	tm_manager *a;

	atomic_store(&shm->seen, 0);
	b = start_node(schema, 2, "lat", stamp);
	a = open_or_die(schema, 0, 0);
	if (reg(a, "lat", NULL) != TM_OK)
		die_tm("tm_register");
	for (int i = -5; i < n; i++) { /* five to warm up */
		long want = i + 5;
		int64_t t0 = now_ns();

		if (tm_trigger(a, "lat", NULL, 0, NULL) != TM_OK)
			die_tm("tm_trigger");
		if (i >= 0)
			call_us[i] = (now_ns() - t0) / 1000;
		while (atomic_load(&shm->seen) <= want) {
			if (now_ns() - t0 > 30 * 1000000000LL) {
				fprintf(stderr, "tm-bench pg: latency: a handler did not start "
				        "within 30 s\n");
				exit(1);
			}
			sleep_ms(0.05);
		}
		if (i >= 0)
			lat_us[i] = (shm->start_ns[want] - t0) / 1000;
		sleep_ms(20);
	}
	qsort(lat_us, (size_t)n, sizeof(*lat_us), cmp64);
	qsort(call_us, (size_t)n, sizeof(*call_us), cmp64);
	tm_close(a);
	stop_node(&b);
	drop(schema);
}

/* ---- the section ---------------------------------------------------------------------- */

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

int bench_pg(const char *uri, int quick, int scale, long big)
{
	int n1, n8, ne2e, nlat = quick ? 100 : 300;
	double raw1, raw8, trig1, trig1_tok, trig8, e2e;
	long on_a, on_b;
	int64_t *lat_us = calloc(LAT_MAX, sizeof(int64_t));
	int64_t *call_us = calloc(LAT_MAX, sizeof(int64_t));
	struct list_result lr = { 0 };
	const char *scratch;
	char label[96], goal[40];
	PGconn *c;
	PGresult *r;
	tm_manager *tm;
	double t_all = now_s();

	if (uri == NULL || *uri == '\0') {
		printf("\npg: skipped: no PostgreSQL server given (--pg URI, or TM_TEST_PG_URL; "
		       "scripts/pg-cluster run tm-bench pg starts a throwaway one)\n");
		return 0;
	}
	if (big < 10000)
		big = 10000;
	given_uri = uri;
	quick_ = quick;
	scale_ = scale;
	n1 = ops(2000);
	n8 = ops(4000);
	ne2e = ops(4000);
	raw_uri = strip_tm_params(uri);
	pg_owner = getpid();
	shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED || lat_us == NULL || call_us == NULL) {
		perror("tm-bench pg: mmap");
		exit(1);
	}

	c = connect_or_die();
	r = sql(c, 1, "SELECT current_setting('server_version'), current_setting('fsync'),"
	        " current_setting('synchronous_commit'), current_setting('max_connections')");
	printf("\n7. PostgreSQL store: server %s (fsync %s, synchronous_commit %s by default), "
	       "schemas tmbench_%ld_N dropped when measured\n", PQgetvalue(r, 0, 0),
	       PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2), (long)getpid());
	PQclear(r);
	fflush(stdout);
	scratch = new_schema();
	sql(c, 0, "CREATE SCHEMA %s", scratch);
	sql(c, 0, "CREATE TABLE %s.raw (id text COLLATE \"C\" PRIMARY KEY, body bytea NOT NULL)",
	    scratch);

	/* 1. raw INSERT, then 2. the trigger, alternating nothing: one after
	 * the other on the same server. */
	raw1 = raw_rate(scratch, 1, n1);
	raw8 = raw_rate(scratch, 8, n8);

	{
		const char *s = new_schema();

		tm = open_or_die(s, 0, 0);
		if (reg(tm, NAME, NULL) != TM_OK)
			die_tm("tm_register");
		warm(tm, NAME, body400);
		trig1 = trigger_rate(tm, NAME, body400, 1, n1);
		trig1_tok = trigger_rate(tm, NAME, body400_token, 1, n1);
		trig8 = trigger_rate(tm, NAME, body400, 8, n8);
		tm_close(tm);
		drop(s);
	}

	e2e = e2e_rate(ne2e, &on_a, &on_b);
	list_bench(scratch, big, &lr);
	latency(nlat, lat_us, call_us);
	PQfinish(c);
	drop(scratch);

	printf("\n| %-52s | %20s | %12s | %7s | %-22s |\n|%s|%s|%s|%s|%s|\n", "measure",
	       "figure", "baseline", "ratio", "goal",
	       "------------------------------------------------------",
	       "----------------------", "--------------", "---------",
	       "------------------------");
	row("raw INSERT 400 B, autocommit, 1 connection (rows/s)", raw1, "/s", 0, "");
	row("raw INSERT 400 B, autocommit, 8 connections", raw8, "/s", raw1, "");
	row("tm_trigger durable, 1 thread (triggers/s)", trig1, "/s", raw1, ">= 0.8x raw 1 conn");
	row("tm_trigger durable, 1 thread, refresh token", trig1_tok, "/s", raw1, "");
	row("tm_trigger durable, 8 threads", trig8, "/s", raw8, "(vs raw 8 conns)");
	row("end to end, 8 trig. threads, 2 nodes x 2 workers", e2e, "jobs/s", raw1,
	    ">= 3x raw 1 conn");
	snprintf(label, sizeof(label), "tm_list_recent(64), 10k tasks (calls/s)");
	row(label, lr.small, "/s", 0, "");
	snprintf(label, sizeof(label), "tm_list_recent(64), %s tasks (calls/s)", count_name(big));
	snprintf(goal, sizeof(goal), ">= 0.67x the 10k rate");
	row(label, lr.big, "/s", lr.small, goal);
	row("trigger -> start on another node, p50 (ms)", (double)lat_us[nlat / 2] / 1000, "ms",
	    0, "");
	row("trigger -> start on another node, p99 (ms)",
	    (double)lat_us[nlat * 99 / 100] / 1000, "ms", 0, "<= 50 ms");
	printf("\n%s.  Raw: %d rows from 1 connection, %d from 8.  Triggers: %d per "
	       "1-thread row, %d from 8 threads, 400-byte bodies, workers=0.\n",
	       quick ? "scale: QUICK" : "scale: full", n1, n8, n1, n8);
	printf("End to end: %d jobs, node A (this process: the 8 triggering threads and 2 "
	       "workers) ran %ld, node B (a forked process, 2 workers) ran %ld; end to end "
	       "/ raw 8 connections = %.2fx.\n", ne2e, on_a, on_b, e2e / raw8);
	printf("List: page 1 of %s, the 10k tasks made by tm_trigger and run to COMPLETED "
	       "(no-sync store, %.1f s), the other %ld cloned from them in SQL (INSERT ... "
	       "SELECT: fresh 20-character ids, distinct start_us, the record head's times "
	       "rewritten to match; %.1f s with VACUUM ANALYZE; both stores VACUUM ANALYZEd "
	       "before measuring); tm_check: ok at 10k (%ld tasks) and at %s (%ld tasks); "
	       "cost %s/10k = %.2fx (goal <= 1.5x).\n",
	       NAME, lr.fill_s, big - 10000, lr.clone_s, lr.checked_small, count_name(big),
	       lr.checked_big, count_name(big), lr.small / lr.big);
	printf("Latency: %d triggers on node A (workers=0, durable), each 20 ms after the "
	       "last one started on node B (another process, workers=2); from before "
	       "tm_trigger to the handler's first line; max %.1f ms.  Of it, the durable "
	       "tm_trigger call itself: p50 %.1f ms, p99 %.1f ms, max %.1f ms.\n",
	       nlat, (double)lat_us[nlat - 1] / 1000, (double)call_us[nlat / 2] / 1000,
	       (double)call_us[nlat * 99 / 100] / 1000, (double)call_us[nlat - 1] / 1000);
	printf("pg section: %.0f s\n", now_s() - t_all);
	free(lat_us);
	free(call_us);
	return 0;
}
