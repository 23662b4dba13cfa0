/* All calls are thread-safe on one manager (doc/api.md, "Thread safety"):
 * eight threads mix the five calls on a few names; afterwards the indexes
 * agree with the records, the figures with the tasks, and no thread ever
 * saw a status go back (the ordering rule, doc/contract.md). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

enum { THREADS = 8, OPS = 500, MAX_IDS = THREADS * OPS, N_NAMES = 4 };

static const char *const names[N_NAMES] = { "m0", "m1", "m2", "excl" };

static const char *const patches[] = {
	"{\"status\":\"RUNNING\"}",
	"{\"status\":\"RUNNING\",\"details\":{\"progress\":{\"message\":\"working\"}}}",
	"{\"status\":\"CANCELLED_REQUESTED\"}",
	"{\"completed\":true}",
	"{\"failed\":true,\"details\":{\"error\":\"boom\"}}",
	"{\"status\":\"CANCELLED\"}",
	"{\"details\":{\"k\":{\"v\":1}}}",
};

/* Every task created, shared by the threads. */
static struct {
	pthread_mutex_t mu;
	char id[MAX_IDS][21];
	int name[MAX_IDS];
	int n;
} created = { .mu = PTHREAD_MUTEX_INITIALIZER };

struct worker {
	tm_manager *tm;
	unsigned seed;
	signed char seen[MAX_IDS]; /* highest rank this thread saw, -1 none */
	int bad;                   /* unexpected results */
	char why[256];
};

static void bad(struct worker *w, const char *what, int rc)
{
	if (w->bad++ == 0)
		snprintf(w->why, sizeof(w->why), "%s: %s (%s)", what, tm_error_name(rc),
		         tm_last_error());
}

/* Check a task document against what this thread saw of it before. */
static void observe(struct worker *w, int idx, char *out)
{
	cJSON *t = cJSON_Parse(out);
	const cJSON *st = cJSON_GetObjectItem(t, "status");
	int r = tt_rank(cJSON_GetStringValue(st));

	if (r < 0)
		bad(w, "task without a valid status", 0);
	else if (r < w->seen[idx])
		bad(w, "a status went back", 0);
	else
		w->seen[idx] = (signed char)r;
	cJSON_Delete(t);
	tm_free(out);
}

static int pick(struct worker *w, char id[21], int *name)
{
	int idx;

	pthread_mutex_lock(&created.mu);
	if (created.n == 0) {
		pthread_mutex_unlock(&created.mu);
		return -1;
	}
	idx = rand_r(&w->seed) % created.n;
	memcpy(id, created.id[idx], 21);
	*name = created.name[idx];
	pthread_mutex_unlock(&created.mu);
	return idx;
}

static void *work(void *p)
{
	struct worker *w = p;

	for (int op = 0; op < OPS; op++) {
		int dice = rand_r(&w->seed) % 100, name, idx, rc;
		char id[21], *out = NULL;

		if (dice < 30) {
			name = rand_r(&w->seed) % N_NAMES;
			rc = tm_trigger(w->tm, names[name], "{\"context_task\":{\"x\":1},"
			                "\"refresh_token\":\"t\"}", 0, &out);
			if (rc == TM_OK) {
				cJSON *j = cJSON_Parse(out);
				pthread_mutex_lock(&created.mu);
				snprintf(created.id[created.n], 21, "%s",
				         cJSON_GetObjectItem(j, "task_id")->valuestring);
				created.name[created.n++] = name;
				pthread_mutex_unlock(&created.mu);
				cJSON_Delete(j);
				tm_free(out);
			} else if (!(rc == TM_EALREADY_RUNNING && name == N_NAMES - 1)) {
				bad(w, "trigger", rc);
			}
			continue;
		}
		if (dice >= 85) {
			unsigned flags = rand_r(&w->seed) % 2 ? TM_PUBLIC : 0;

			name = rand_r(&w->seed) % N_NAMES;
			rc = tm_list_recent(w->tm, names[name], 1 + rand_r(&w->seed) % 3,
			                    1 + rand_r(&w->seed) % 64, flags, &out);
			if (rc == TM_EWRONG_DATA && flags && (name == 1 || name == 2))
				continue; /* private names under TM_PUBLIC */
			if (rc != TM_OK)
				bad(w, "list", rc);
			tm_free(out);
			continue;
		}
		idx = pick(w, id, &name);
		if (idx < 0)
			continue;
		if (dice < 55) {
			const char *body = patches[rand_r(&w->seed) %
			                           (sizeof(patches) / sizeof(patches[0]))];
			rc = tm_patch(w->tm, names[name], id, body, &out);
			if (rc == TM_OK)
				observe(w, idx, out);
			else if (rc != TM_ELOWER_STATUS)
				bad(w, "patch", rc);
		} else if (dice < 70) {
			rc = tm_cancel(w->tm, names[name], id, &out);
			if (rc == TM_OK)
				observe(w, idx, out);
			else
				bad(w, "cancel", rc);
		} else {
			rc = tm_get(w->tm, names[name], id, 0, &out);
			if (rc == TM_OK)
				observe(w, idx, out);
			else
				bad(w, "get", rc);
		}
	}
	return NULL;
}

START_TEST(mixed_calls_from_many_threads_keep_the_store_consistent)
{
	char *dir;
	tm_manager *tm = tt_open_tmp(&dir, 0);
	static struct worker w[THREADS];
	pthread_t th[THREADS];
	int total = 0;

	tt_register(tm, "m0", TM_JOB_PUBLIC);
	tt_register(tm, "m1", 0);
	tt_register(tm, "m2", 0);
	tt_register(tm, "excl", TM_JOB_EXCLUSIVE | TM_JOB_PUBLIC);
	for (int i = 0; i < THREADS; i++) {
		w[i].tm = tm;
		w[i].seed = 12345u + (unsigned)i * 7919u;
		memset(w[i].seen, -1, sizeof(w[i].seen));
		ck_assert_int_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < THREADS; i++)
		ck_assert_msg(w[i].bad == 0, "thread %d: %d unexpected results, first %s",
		              i, w[i].bad, w[i].why);

	tt_assert_check(tm, created.n);
	for (int n = 0; n < N_NAMES; n++) {
		cJSON *all = tt_list_all(tm, names[n], 64, 0), *t;
		int tally[6] = { 0 }, made = 0, active;

		cJSON_ArrayForEach(t, all) {
			const char *st = cJSON_GetObjectItem(t, "status")->valuestring;

			for (int s = 0; s < 6; s++)
				tally[s] += strcmp(st, tt_status_names[s]) == 0;
		}
		for (int i = 0; i < created.n; i++)
			made += created.name[i] == n;
		ck_assert_int_eq(cJSON_GetArraySize(all), made);
		for (int s = 0; s < 6; s++)
			ck_assert_msg(tt_stat(tm, names[n], tt_status_names[s]) == tally[s],
			              "%s %s: stats %g, listed %d", names[n], tt_status_names[s],
			              tt_stat(tm, names[n], tt_status_names[s]), tally[s]);
		active = tally[0] + tally[1] + tally[2];
		if (strcmp(names[n], "excl") == 0)
			ck_assert_int_le(active, 1);
		total += cJSON_GetArraySize(all);
		cJSON_Delete(all);
	}
	ck_assert_int_eq(total, created.n);
	ck_assert_int_gt(created.n, THREADS * OPS / 10);
	tt_close_tmp(tm, dir);
}
END_TEST

TT_MAIN("mixed",
	mixed_calls_from_many_threads_keep_the_store_consistent)
