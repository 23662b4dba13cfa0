/* The two sides of the crash loop, each in a fresh process.
 *
 *   crash-child load STORE SEED   a mixed load (triggers, patches, cancels,
 *                                 jobs with progress) on a durable store,
 *                                 writing one line to stdout per operation
 *                                 the library acknowledged; killed by
 *                                 SIGKILL at a random instant.
 *   crash-child check STORE ACKS  reopens the store, checks that every
 *                                 acknowledged operation is there and every
 *                                 index agrees, then lets recovery resolve
 *                                 the orphaned tasks.  Exit 0 when all hold.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "taskmgr.h"

static const char *const statuses[] = {
	"REQUEST_SENT", "RUNNING", "CANCELLED_REQUESTED",
	"FAILED", "CANCELLED", "COMPLETED",
};

static int rank_of(const char *s)
{
	for (int i = 0; i < 6; i++)
		if (strcmp(s, statuses[i]) == 0)
			return i >= 3 ? 3 : i;
	return -1;
}

static tm_status job(tm_job *j, void *user)
{
	(void)user;
	for (int i = 0; i < 50 && !tm_job_cancelled(j); i++) {
		char p[64];

		snprintf(p, sizeof(p), "{\"step\": %d}", i);
		tm_job_progress(j, p);
		tm_job_message(j, "step %d", i);
		usleep(200);
	}
	return tm_job_cancelled(j) ? TM_CANCELLED : TM_COMPLETED;
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
	o.keep_count = 1000000; /* nothing acknowledged may be pruned */
	o.grace_ms = 100;
	if (tm_open(&o, &tm) != TM_OK) {
		fprintf(stderr, "open: %s\n", tm_last_error());
		exit(2);
	}
	tm_job_def_init(&d, TM_JOB_DEF_VERSION);
	d.name = "crash_job";
	d.run = job;
	d.max_attempts = 3;
	d.retry_backoff_s = 0.01;
	if (tm_register(tm, &d) != TM_OK) {
		fprintf(stderr, "register crash_job: %s\n", tm_last_error());
		exit(2);
	}
	tm_job_def_init(&d, TM_JOB_DEF_VERSION);
	d.name = "ext"; /* driven by tm_patch, as an external worker would */
	if (tm_register(tm, &d) != TM_OK) {
		fprintf(stderr, "register ext: %s\n", tm_last_error());
		exit(2);
	}
	return tm;
}

static void ack(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ack(const char *fmt, ...)
{
	char line[160];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One write(2) per line, below PIPE_BUF: a kill never tears a line. */
	if (write(STDOUT_FILENO, line, (size_t)n) != n)
		exit(3);
}

static _Noreturn void load(const char *path, unsigned seed)
{
	tm_manager *tm = open_store(path, 2);
	char ids[256][TM_TASK_ID_LEN + 1];
	char names[256][16];
	int n = 0;

	srand(seed);
	for (;;) {
		int op = rand() % 10, k = n ? rand() % n : 0;
		char *out = NULL;

		if (op < 4 || n == 0) {
			const char *name = rand() % 2 ? "crash_job" : "ext";
			char body[128];

			snprintf(body, sizeof(body),
			         "{\"context_task\": {\"n\": %d}, \"refresh_token\": \"t%d\"}",
			         rand(), rand());
			if (tm_trigger(tm, name, body, 0, &out) == TM_OK) {
				cJSON *j = cJSON_Parse(out);
				const char *id = cJSON_GetObjectItem(j, "task_id")->valuestring;
				int slot = n < 256 ? n++ : rand() % 256;

				snprintf(ids[slot], sizeof(ids[slot]), "%s", id);
				snprintf(names[slot], sizeof(names[slot]), "%s", name);
				ack("T %s %s\n", name, id);
				cJSON_Delete(j);
			}
		} else if (op < 8 && strcmp(names[k], "ext") == 0) {
			static const char *const to[] = {
				"RUNNING", "CANCELLED_REQUESTED", "FAILED", "CANCELLED", "COMPLETED",
			};
			const char *st = to[rand() % 5];
			char body[160];

			snprintf(body, sizeof(body),
			         "{\"status\": \"%s\", \"details\": {\"progress\": {\"message\": \"m%d\"}}}",
			         st, rand());
			if (tm_patch(tm, "ext", ids[k], body, NULL) == TM_OK)
				ack("P %s %s %s\n", names[k], ids[k], st);
		} else if (tm_cancel(tm, names[k], ids[k], NULL) == TM_OK) {
			ack("C %s %s\n", names[k], ids[k]);
		}
		tm_free(out);
	}
}

/* The rank a task must have reached at least, from the acknowledged ops. */
static int check(const char *path, const char *acks)
{
	FILE *f = fopen(acks, "r");
	tm_manager *tm = open_store(path, 2);
	char line[256], *out;
	int bad = 0, n = 0;
	cJSON *j;

	if (f == NULL) {
		perror(acks);
		return 2;
	}
	while (fgets(line, sizeof(line), f)) {
		char op, name[32], id[32], st[32] = "";
		int min = 0, have;

		if (sscanf(line, "%c %31s %31s %31s", &op, name, id, st) < 3)
			continue;
		n++;
		if (tm_get(tm, name, id, 0, &out) != TM_OK) {
			fprintf(stderr, "acknowledged %c of %s %s is lost: %s\n", op, name,
			        id, tm_last_error());
			bad++;
			continue;
		}
		j = cJSON_Parse(out);
		tm_free(out);
		have = rank_of(cJSON_GetObjectItem(j, "status")->valuestring);
		if (op == 'P')
			min = rank_of(st);
		else if (op == 'C')
			min = 2; /* any cancel leaves CANCELLED_REQUESTED or final */
		if (have < min) {
			fprintf(stderr, "%s %s: status %s after acknowledged %c %s\n",
			        name, id, cJSON_GetObjectItem(j, "status")->valuestring,
			        op, st);
			bad++;
		}
		cJSON_Delete(j);
	}
	fclose(f);
	if (tm_check(tm, &out) != TM_OK || strstr(out, "\"ok\":true") == NULL) {
		fprintf(stderr, "store check: %s\n", out ? out : tm_last_error());
		bad++;
	}
	tm_free(out);
	/* Recovery: orphaned runs of crash_job end (retried or "worker lost")
	 * once their leases expire; every one must reach a final status. */
	for (int waited = 0;; waited += 20) {
		int active = 0;

		if (tm_stats(tm, &out) != TM_OK) {
			fprintf(stderr, "stats: %s\n", tm_last_error());
			return 2;
		}
		j = cJSON_Parse(out);
		tm_free(out);
		{
			cJSON *c = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "names"), "crash_job");
			for (int s = 0; c && s < 3; s++)
				active += cJSON_GetObjectItem(c, statuses[s])->valueint;
		}
		cJSON_Delete(j);
		if (active == 0)
			break;
		if (waited > 60000) {
			fprintf(stderr, "%d crash_job tasks still active after 60 s\n", active);
			bad++;
			break;
		}
		usleep(20000);
	}
	tm_close(tm);
	printf("checked %d acknowledged operations, %d problems\n", n, bad);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "load") == 0)
		load(argv[2], (unsigned)strtoul(argv[3], NULL, 10));
	if (argc == 4 && strcmp(argv[1], "check") == 0)
		return check(argv[2], argv[3]);
	fprintf(stderr, "usage: %s load STORE SEED | check STORE ACKS\n", argv[0]);
	return 2;
}
