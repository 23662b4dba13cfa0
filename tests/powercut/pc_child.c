/* The two sides of a power cut, each in a fresh process.
 *
 *   pc-child load STORE ACKS SEED   a mixed load on a durable store, run
 *       under the power-cut layer (powercut.c), which ends it at a call of
 *       its choosing: three threads trigger (bodies derived from a number
 *       R, so that the checker can rebuild them), patch, cancel and read
 *       tasks; two workers run a handler that checks its payload and its
 *       refresh token, reports progress and ends COMPLETED, FAILED or
 *       CANCELLED.  After each call returned, one line is appended to ACKS
 *       with one write(2):
 *         T NAME ID R        a trigger acknowledged
 *         S NAME ID STATUS   a status seen in a returned task (patch,
 *                            cancel, get): committed, so durable
 *         V ID               a handler found its payload and token intact
 *         X ID WHAT          a handler found them wrong (a failure)
 *   pc-child check STORE ACKS [drain]
 *       reopens the store (no layer) and checks every line of ACKS: each
 *       acknowledged task is there with its payload and create_reason byte
 *       for byte, at least at the rank of every status seen, and at exactly
 *       the final status seen, if any; tm_check says ok.  With "drain", the
 *       workers then run every waiting task (the handler checking tokens)
 *       until none is active.  Prints "checked ..."; exit 0 when all hold.
 *
 * POWERCUT_FAKE_ACK=1 makes load acknowledge one trigger it never made:
 * the check must fail (the test proves so). */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <lmdb.h>

#include "taskmgr.h"

#define ID_MAX 4096
#define LOADERS 3

static const char *const statuses[] = {
	"REQUEST_SENT", "RUNNING", "CANCELLED_REQUESTED",
	"FAILED", "CANCELLED", "COMPLETED",
};

static int status_index(const char *s)
{
	for (int i = 0; i < 6; i++)
		if (strcmp(s, statuses[i]) == 0)
			return i;
	return -1;
}

static int rank_of(int index)
{
	return index >= 3 ? 3 : index;
}

static int ack_fd = -1;
static atomic_int problems, verified;

static void ack(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ack(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (ack_fd < 0) { /* check mode: a handler's finding */
		if (line[0] == 'X') {
			fprintf(stderr, "handler: %s", line + 2);
			atomic_fetch_add(&problems, 1);
		} else if (line[0] == 'V') {
			atomic_fetch_add(&verified, 1);
		}
		return;
	}
	/* One write(2), O_APPEND, short: lines of threads never mix. */
	if (write(ack_fd, line, (size_t)n) != n)
		_exit(3);
}

/* ---- the bodies, from R ----------------------------------------------------- */

static size_t blob_len(unsigned r)
{
	/* Mostly under a page; one in eight spills onto overflow pages. */
	return r % 8 == 0 ? 4000 + r % 8000 : r % 2500;
}

static char *blob_of(unsigned r)
{
	size_t n = blob_len(r);
	char *b = malloc(n + 1);
	uint64_t x = r * 0x9e3779b97f4a7c15ull + 1;

	if (b == NULL)
		exit(2);
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[x % 36];
	}
	b[n] = '\0';
	return b;
}

/* The payload (context_task) of R, printed as cJSON prints it. */
static char *payload_of(unsigned r)
{
	cJSON *o = cJSON_CreateObject();
	char *blob = blob_of(r), *s;

	cJSON_AddNumberToObject(o, "n", r);
	cJSON_AddStringToObject(o, "blob", blob);
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	free(blob);
	return s;
}

static char *body_of(unsigned r)
{
	char *payload = payload_of(r), *body;
	size_t n = strlen(payload) + 128;

	body = malloc(n);
	if (body == NULL)
		exit(2);
	snprintf(body, n, "{\"context_task\": %s, \"refresh_token\": \"t%u\", "
	         "\"create_reason\": \"pc %u\"}", payload, r, r);
	free(payload);
	return body;
}

/* ---- the handler ----------------------------------------------------------------- */

static tm_status job(tm_job *j, void *user)
{
	const char *id = tm_job_task_id(j), *secret = tm_job_secret(j);
	cJSON *p = cJSON_Parse(tm_job_payload(j));
	cJSON *n = cJSON_GetObjectItem(p, "n");
	unsigned r;
	char want[32], *payload;
	int steps;

	(void)user;
	if (!cJSON_IsNumber(n)) {
		ack("X %s payload-without-n\n", id);
		cJSON_Delete(p);
		return TM_FAILED;
	}
	r = (unsigned)n->valuedouble;
	payload = payload_of(r);
	{
		char *got = cJSON_PrintUnformatted(p);

		if (strcmp(got, payload) != 0)
			ack("X %s payload-differs\n", id);
		free(got);
	}
	free(payload);
	cJSON_Delete(p);
	snprintf(want, sizeof(want), "t%u", r);
	if (secret == NULL || strcmp(secret, want) != 0)
		ack("X %s token %s expected %s\n", id, secret ? "differs" : "missing", want);
	else
		ack("V %s\n", id);
	steps = 2 + (int)(r % 8);
	for (int i = 0; i < steps && !tm_job_cancelled(j); i++) {
		char progress[64];

		snprintf(progress, sizeof(progress), "{\"step\": %d, \"of\": %d}", i, steps);
		tm_job_progress(j, progress);
		tm_job_message(j, "step %d of %d", i, steps);
		usleep(300);
	}
	if (tm_job_cancelled(j))
		return TM_CANCELLED;
	if (r % 10 == 0)
		return tm_job_fail(j, "failed on purpose (R %% 10 == 0)");
	return TM_COMPLETED;
}

static tm_manager *open_store(const char *path, unsigned workers)
{
	tm_options o;
	tm_job_def d;
	tm_manager *tm;

	tm_options_init(&o, TM_OPTIONS_VERSION);
	o.path = path;
	o.workers = workers;
	o.poll_ms = 20;
	o.lease_ms = 300;
	o.grace_ms = 100;
	o.progress_ms = 20;
	o.keep_count = 1000000; /* nothing acknowledged may be pruned */
	/* Durable: no TM_OPEN_NOSYNC. */
	if (tm_open(&o, &tm) != TM_OK) {
		/* On stdout too: the test reads a check's first line. */
		printf("open failed: %s\n", tm_last_error());
		fprintf(stderr, "open: %s\n", tm_last_error());
		exit(2);
	}
	tm_job_def_init(&d, TM_JOB_DEF_VERSION);
	d.name = "pc_job";
	d.run = job;
	d.max_attempts = 3;
	d.retry_backoff_s = 0.01;
	if (tm_register(tm, &d) != TM_OK)
		exit(2);
	tm_job_def_init(&d, TM_JOB_DEF_VERSION);
	d.name = "ext"; /* driven by tm_patch, as an external worker would */
	if (tm_register(tm, &d) != TM_OK)
		exit(2);
	return tm;
}

/* ---- load ---------------------------------------------------------------------------- */

static tm_manager *ltm;
static pthread_mutex_t ids_mu = PTHREAD_MUTEX_INITIALIZER;
static char ids[ID_MAX][TM_TASK_ID_LEN + 1];
static int ext_of[ID_MAX];
static int n_ids;

/* The status of a returned task, acknowledged. */
static void ack_status(const char *name, const char *id, const char *doc)
{
	cJSON *j = cJSON_Parse(doc);
	cJSON *s = cJSON_GetObjectItem(j, "status");

	if (cJSON_IsString(s))
		ack("S %s %s %s\n", name, id, s->valuestring);
	cJSON_Delete(j);
}

static void *loader(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;

	for (;;) {
		int op = (int)(rand_r(&seed) % 100), k = -1, ext = 0;
		char id[TM_TASK_ID_LEN + 1], *out = NULL;
		const char *name;

		pthread_mutex_lock(&ids_mu);
		if (n_ids > 0) {
			k = (int)(rand_r(&seed) % (unsigned)n_ids);
			memcpy(id, ids[k], sizeof(id));
			ext = ext_of[k];
		}
		pthread_mutex_unlock(&ids_mu);
		name = ext ? "ext" : "pc_job";
		if (op < 35 || k < 0) {
			unsigned r = (unsigned)rand_r(&seed) & 0x7fffffff;
			char *body = body_of(r);

			ext = rand_r(&seed) % 2;
			name = ext ? "ext" : "pc_job";
			if (tm_trigger(ltm, name, body, 0, &out) == TM_OK) {
				cJSON *j = cJSON_Parse(out);
				const char *nid = cJSON_GetObjectItem(j, "task_id")->valuestring;

				ack("T %s %s %u\n", name, nid, r);
				pthread_mutex_lock(&ids_mu);
				k = n_ids < ID_MAX ? n_ids++ : (int)(rand_r(&seed) % ID_MAX);
				snprintf(ids[k], sizeof(ids[k]), "%s", nid);
				ext_of[k] = ext;
				pthread_mutex_unlock(&ids_mu);
				cJSON_Delete(j);
			}
			free(body);
		} else if (op < 60 && ext) {
			static const char *const to[] = {
				"RUNNING", "RUNNING", "CANCELLED_REQUESTED", "FAILED",
				"CANCELLED", "COMPLETED",
			};
			char body[160];

			snprintf(body, sizeof(body),
			         "{\"status\": \"%s\", \"details\": {\"progress\": {\"message\": \"m%u\"}}}",
			         to[rand_r(&seed) % 6], rand_r(&seed));
			if (tm_patch(ltm, "ext", id, body, &out) == TM_OK)
				ack_status("ext", id, out);
		} else if (op < 70) {
			if (tm_cancel(ltm, name, id, &out) == TM_OK)
				ack_status(name, id, out);
		} else if (tm_get(ltm, name, id, 0, &out) == TM_OK) {
			ack_status(name, id, out);
		}
		tm_free(out);
		if (rand_r(&seed) % 4 == 0)
			usleep(rand_r(&seed) % 1000);
	}
	return NULL;
}

static _Noreturn void load(const char *path, const char *acks, unsigned seed)
{
	const char *fake = getenv("POWERCUT_FAKE_ACK");
	pthread_t t[LOADERS];

	ack_fd = open(acks, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (ack_fd < 0)
		exit(2);
	if (fake && strcmp(fake, "1") == 0)
		ack("T pc_job %s %u\n", "AAAAAAAAAAAAAAAAAAAA", 7u);
	ltm = open_store(path, 2);
	for (int i = 0; i < LOADERS; i++)
		if (pthread_create(&t[i], NULL, loader, (void *)(uintptr_t)(seed * 7919u + (unsigned)i)))
			exit(2);
	/* The power-cut layer ends the process; the test stops one that
	 * outlives its time. */
	for (;;)
		pause();
}

/* ---- check ------------------------------------------------------------------------------ */

struct task {
	char id[TM_TASK_ID_LEN + 1];
	char name[32];
	int triggered;      /* a T line */
	unsigned r;
	int min_rank;       /* highest rank seen, -1 none */
	int final;          /* final status seen (index), -1 none */
};

static struct task *tasks;
static size_t n_tasks, cap_tasks;
static size_t *slots;   /* open addressing on id */
static size_t n_slots;

static size_t hash_id(const char *id)
{
	size_t h = 1469598103934665603ull;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211ull;
	return h;
}

static struct task *task_of(const char *name, const char *id)
{
	size_t h;

	if (n_tasks * 2 >= n_slots) {
		size_t n = n_slots ? n_slots * 2 : 1024;

		free(slots);
		slots = malloc(n * sizeof(*slots));
		if (slots == NULL)
			exit(2);
		n_slots = n;
		for (size_t i = 0; i < n; i++)
			slots[i] = SIZE_MAX;
		for (size_t t = 0; t < n_tasks; t++) {
			h = hash_id(tasks[t].id) & (n_slots - 1);
			while (slots[h] != SIZE_MAX)
				h = (h + 1) & (n_slots - 1);
			slots[h] = t;
		}
	}
	for (h = hash_id(id) & (n_slots - 1); slots[h] != SIZE_MAX; h = (h + 1) & (n_slots - 1))
		if (strcmp(tasks[slots[h]].id, id) == 0)
			return &tasks[slots[h]];
	if (n_tasks == cap_tasks) {
		cap_tasks = cap_tasks ? cap_tasks * 2 : 1024;
		tasks = realloc(tasks, cap_tasks * sizeof(*tasks));
		if (tasks == NULL)
			exit(2);
	}
	slots[h] = n_tasks;
	memset(&tasks[n_tasks], 0, sizeof(tasks[0]));
	snprintf(tasks[n_tasks].id, sizeof(tasks[0].id), "%s", id);
	snprintf(tasks[n_tasks].name, sizeof(tasks[0].name), "%s", name);
	tasks[n_tasks].min_rank = -1;
	tasks[n_tasks].final = -1;
	return &tasks[n_tasks++];
}

static int problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int problem(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	atomic_fetch_add(&problems, 1);
	return 1;
}

static void check_task(tm_manager *tm, const struct task *t)
{
	char *out = NULL;
	cJSON *j, *details;
	int have;

	if (tm_get(tm, t->name, t->id, 0, &out) != TM_OK) {
		problem("lost: acknowledged %s %s (%s)\n", t->name, t->id, tm_last_error());
		return;
	}
	j = cJSON_Parse(out);
	tm_free(out);
	have = status_index(cJSON_GetObjectItem(j, "status")->valuestring);
	if (t->min_rank >= 0 && rank_of(have) < t->min_rank)
		problem("lower: %s %s is %s after rank %d was seen\n", t->name, t->id,
		        statuses[have], t->min_rank);
	if (t->final >= 0 && have != t->final)
		problem("final changed: %s %s is %s after %s was seen\n", t->name, t->id,
		        statuses[have], statuses[t->final]);
	details = cJSON_GetObjectItem(j, "details");
	if (t->triggered) {
		char *want = payload_of(t->r), *got;
		cJSON *reason = cJSON_GetObjectItem(details, "create_reason");
		char want_reason[32];

		got = cJSON_PrintUnformatted(cJSON_GetObjectItem(details, "payload"));
		if (got == NULL || strcmp(got, want) != 0)
			problem("payload: %s %s differs from the acknowledged body\n", t->name, t->id);
		snprintf(want_reason, sizeof(want_reason), "pc %u", t->r);
		if (!cJSON_IsString(reason) || strcmp(reason->valuestring, want_reason) != 0)
			problem("create_reason: %s %s differs\n", t->name, t->id);
		free(got);
		free(want);
	}
	cJSON_Delete(j);
}

static int active_jobs(tm_manager *tm)
{
	char *out;
	cJSON *j, *c;
	int active = 0;

	if (tm_stats(tm, &out) != TM_OK)
		return -1;
	j = cJSON_Parse(out);
	tm_free(out);
	c = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "names"), "pc_job");
	for (int s = 0; c && s < 3; s++)
		active += cJSON_GetObjectItem(c, statuses[s])->valueint;
	cJSON_Delete(j);
	return active;
}

/* Read the image as the cut left it, before anything reopens it: each
 * refresh token LMDB holds (sub-database "secrets": task id -> 8-byte key
 * slot, ciphertext; doc/design.md) must have its key in the keys file (32
 * bytes at slot * 32), not zeros: a zeroed or missing key is a token lost,
 * which only a handler would notice, much later. */
static void check_keys(const char *path)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *c;
	MDB_val k, v;
	char kpath[4096];
	int fd, rc;

	snprintf(kpath, sizeof(kpath), "%s/keys", path);
	if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 16))
		exit(2);
	if (mdb_env_open(env, path, MDB_RDONLY | MDB_NOLOCK, 0) != 0) {
		mdb_env_close(env); /* tm_open reports it */
		return;
	}
	if (mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0)
		exit(2);
	if (mdb_dbi_open(txn, "secrets", 0, &dbi) != 0) {
		mdb_txn_abort(txn);
		mdb_env_close(env);
		return;
	}
	fd = open(kpath, O_RDONLY | O_CLOEXEC);
	if (mdb_cursor_open(txn, dbi, &c) != 0)
		exit(2);
	while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
		unsigned char key[32];
		uint64_t slot;
		int zero = 1;

		if (v.mv_size < 8) {
			problem("secret of %.*s is corrupt\n", (int)k.mv_size, (char *)k.mv_data);
			continue;
		}
		memcpy(&slot, v.mv_data, 8);
		if (fd < 0 || pread(fd, key, sizeof(key), (off_t)(slot * 32)) != (ssize_t)sizeof(key)) {
			problem("token of %.*s: key slot %llu is past the end of the keys file\n",
			        (int)k.mv_size, (char *)k.mv_data, (unsigned long long)slot);
			continue;
		}
		for (size_t i = 0; i < sizeof(key); i++)
			zero &= key[i] == 0;
		if (zero)
			problem("token of %.*s: key slot %llu is zeroed\n",
			        (int)k.mv_size, (char *)k.mv_data, (unsigned long long)slot);
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	if (fd >= 0)
		close(fd);
}

static int check(const char *path, const char *acks, int drain)
{
	FILE *f = fopen(acks, "r");
	tm_manager *tm;
	char line[512], *out = NULL;
	long lines = 0, torn = 0;

	while (f && fgets(line, sizeof(line), f)) {
		char op, name[32], id[64], word[64];
		struct task *t;
		int k;

		if (strchr(line, '\n') == NULL) {
			torn++; /* a line cut short by the kill: never acknowledged */
			continue;
		}
		lines++;
		if (line[0] == 'V')
			continue;
		if (line[0] == 'X') {
			problem("handler: %s", line + 2);
			continue;
		}
		if (sscanf(line, "%c %31s %63s %63s", &op, name, id, word) != 4 ||
		    strlen(id) != TM_TASK_ID_LEN) {
			problem("unreadable acknowledgement: %s", line);
			continue;
		}
		t = task_of(name, id);
		if (op == 'T') {
			t->triggered = 1;
			t->r = (unsigned)strtoul(word, NULL, 10);
			if (t->min_rank < 0)
				t->min_rank = 0;
		} else if (op == 'S' && (k = status_index(word)) >= 0) {
			if (rank_of(k) > t->min_rank)
				t->min_rank = rank_of(k);
			if (k >= 3) {
				if (t->final >= 0 && t->final != k)
					problem("two finals seen: %s %s %s and %s\n", name, id,
					        statuses[t->final], statuses[k]);
				t->final = k;
			}
		} else {
			problem("unreadable acknowledgement: %s", line);
		}
	}
	if (f)
		fclose(f);
	check_keys(path);
	tm = open_store(path, drain ? 2 : 0);
	for (size_t i = 0; i < n_tasks; i++)
		check_task(tm, &tasks[i]);
	if (tm_check(tm, &out) != TM_OK || strstr(out, "\"ok\":true") == NULL)
		problem("tm_check: %s\n", out ? out : tm_last_error());
	tm_free(out);
	if (drain) {
		/* Every waiting task runs once more, its handler checking its
		 * token; orphans wait for their leases to end first. */
		int active;

		for (int waited = 0; (active = active_jobs(tm)) != 0; waited += 10) {
			if (active < 0 || waited > 60000) {
				problem("%d pc_job tasks still active after 60 s\n", active);
				break;
			}
			usleep(10000);
		}
	}
	tm_close(tm);
	printf("checked %ld acknowledgements (%ld torn) of %zu tasks, %d tokens "
	       "verified by a drain, %d problems\n", lines, torn, n_tasks,
	       atomic_load(&verified), atomic_load(&problems));
	return atomic_load(&problems) ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "load") == 0)
		load(argv[2], argv[3], (unsigned)strtoul(argv[4], NULL, 10));
	if ((argc == 4 || argc == 5) && strcmp(argv[1], "check") == 0)
		return check(argv[2], argv[3], argc == 5 && strcmp(argv[4], "drain") == 0);
	fprintf(stderr, "usage: %s load STORE ACKS SEED | check STORE ACKS [drain]\n", argv[0]);
	return 2;
}
