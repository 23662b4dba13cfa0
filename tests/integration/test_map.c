/* SPEC section 6, store growth: the LMDB map grows on demand up to its cap;
 * at the cap a write fails with TM_ESTORAGE and leaves the store whole. */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define MIB (1024ull * 1024ull)
enum { BLOB = 64 * 1024, MAX_TASKS = 200 };

static tm_manager *open_capped(const char *dir, uint64_t size, uint64_t cap)
{
	tm_options o;
	tm_manager *tm = NULL;

	tm_options_init(&o, TM_OPTIONS_VERSION);
	o.path = dir;
	o.workers = 0;
	o.flags = TM_OPEN_NOSYNC;
	o.map_size = size;
	o.map_size_max = cap;
	ck_assert_ok(tm_open(&o, &tm));
	tt_register(tm, "big", 0);
	return tm;
}

/* A trigger body carrying about BLOB bytes, distinct per i. */
static char *big_body(int i)
{
	char *body = malloc(BLOB + 128);
	int n;

	ck_assert_ptr_nonnull(body);
	n = sprintf(body, "{\"context_task\":{\"i\":%d,\"blob\":\"", i);
	for (int k = 0; k < BLOB; k++)
		body[n + k] = (char)('a' + (i + k) % 26);
	strcpy(body + n + BLOB, "\"}}");
	return body;
}

static double stat_number(tm_manager *tm, const char *key)
{
	char *out = NULL;
	cJSON *st;
	double v;

	ck_assert_ok(tm_stats(tm, &out));
	st = tt_json(out);
	ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(st, key)));
	v = cJSON_GetObjectItem(st, key)->valuedouble;
	cJSON_Delete(st);
	return v;
}

static void assert_check_ok(tm_manager *tm, int tasks)
{
	char *out = NULL;
	cJSON *c;

	ck_assert_ok(tm_check(tm, &out));
	c = tt_json(out);
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(c, "ok")));
	ck_assert_int_eq(cJSON_GetObjectItem(c, "tasks")->valueint, tasks);
	cJSON_Delete(c);
}

/* Every stored task reads back with the payload it was given. */
static void assert_tasks_intact(tm_manager *tm, char ids[][21], int n)
{
	for (int i = 0; i < n; i++) {
		cJSON *t = tt_json(tt_get(tm, "big", ids[i], 0));
		cJSON *p = cJSON_GetObjectItem(cJSON_GetObjectItem(t, "details"), "payload");
		char *want = big_body(i);
		cJSON *w = cJSON_Parse(want);

		ck_assert(cJSON_Compare(p, cJSON_GetObjectItem(w, "context_task"), 1));
		cJSON_Delete(w);
		free(want);
		cJSON_Delete(t);
	}
}

/* Trigger big tasks from index from until the first failure or index to;
 * returns the index reached. */
static int fill_to(tm_manager *tm, char ids[][21], int from, int to, int *rc)
{
	int n = from;

	*rc = TM_OK;
	for (; n < to; n++) {
		char *body = big_body(n), *out = NULL;
		cJSON *j;

		*rc = tm_trigger(tm, "big", body, 0, &out);
		free(body);
		if (*rc != TM_OK) {
			ck_assert_ptr_null(out);
			break;
		}
		j = tt_json(out);
		snprintf(ids[n], 21, "%s", cJSON_GetObjectItem(j, "task_id")->valuestring);
		cJSON_Delete(j);
	}
	return n;
}

static int fill(tm_manager *tm, char ids[][21], int from, int *rc)
{
	return fill_to(tm, ids, from, MAX_TASKS, rc);
}

START_TEST(map_grows_to_its_cap_then_refuses_writes_cleanly)
{
	char *dir = tt_tmpdir();
	char (*ids)[21] = calloc(MAX_TASKS, sizeof(*ids));
	tm_manager *tm = open_capped(dir, 1 * MIB, 2 * MIB);
	char msg[512];
	int n, more, rc = TM_OK;

	ck_assert_ptr_nonnull(ids);
	n = fill(tm, ids, 0, &rc);
	snprintf(msg, sizeof(msg), "%s", tm_last_error());
	ck_assert_msg(rc == TM_ESTORAGE, "after %d tasks: %s (%s)", n,
	              tm_error_name(rc), msg);
	ck_assert_msg(strstr(msg, "cap") || strstr(msg, "map_size_max"),
	              "message \"%s\" does not mention the cap", msg);
	/* More went in than the initial 1 MiB map holds: it grew. */
	ck_assert_msg((uint64_t)n * BLOB > 1 * MIB, "only %d tasks fit", n);
	ck_assert(stat_number(tm, "map_bytes") > 1 * MIB);
	ck_assert(stat_number(tm, "map_bytes") <= 2 * MIB);
	/* The refused trigger stored nothing; every earlier task is whole. */
	ck_assert_int_eq(tt_count(tm, "big"), n);
	assert_tasks_intact(tm, ids, n);
	assert_check_ok(tm, n);
	/* Still refused, still consistent. */
	more = fill(tm, ids, n, &rc);
	ck_assert_int_eq(rc, TM_ESTORAGE);
	ck_assert_int_eq(more, n);
	assert_check_ok(tm, n);
	tm_close(tm);

	/* A larger cap makes room again. */
	tm = open_capped(dir, 1 * MIB, 8 * MIB);
	ck_assert_int_eq(tt_count(tm, "big"), n);
	more = fill(tm, ids, n, &rc);
	ck_assert_msg(more > n + 4, "only %d more tasks after raising the cap (%s)",
	              more - n, tm_last_error());
	ck_assert(stat_number(tm, "map_bytes") > 2 * MIB);
	assert_tasks_intact(tm, ids, more);
	assert_check_ok(tm, more);
	tm_close(tm);
	free(ids);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(map_full_does_not_block_reads_or_small_changes)
{
	char *dir = tt_tmpdir();
	char (*ids)[21] = calloc(MAX_TASKS, sizeof(*ids));
	tm_manager *tm = open_capped(dir, 1 * MIB, 2 * MIB);
	int n, rc = TM_OK;
	char *out = NULL;

	ck_assert_ptr_nonnull(ids);
	n = fill(tm, ids, 0, &rc);
	ck_assert_int_eq(rc, TM_ESTORAGE);
	ck_assert_int_gt(n, 0);
	/* Reads never need room. */
	ck_assert_ok(tm_list_recent(tm, "big", 1, 64, 0, &out));
	tm_free(out);
	ck_assert_ok(tm_stats(tm, &out));
	tm_free(out);
	/* A status change either fits or fails with STORAGE_ERROR; either
	 * way the store stays consistent and the task readable. */
	rc = tm_patch(tm, "big", ids[0], "{\"completed\":true}", NULL);
	ck_assert_msg(rc == TM_OK || rc == TM_ESTORAGE, "patch gave %s", tm_error_name(rc));
	ck_assert_str_eq(tt_status(tm, "big", ids[0], (char[32]){ 0 }),
	                 rc == TM_OK ? "COMPLETED" : "REQUEST_SENT");
	assert_check_ok(tm, n);
	tm_close(tm);
	free(ids);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(register_refused_at_the_cap_leaves_no_trace)
{
	char *dir = tt_tmpdir();
	char (*ids)[21] = calloc(MAX_TASKS, sizeof(*ids));
	tm_manager *tm = open_capped(dir, 1 * MIB, 2 * MIB);
	tm_job_def d;
	char name[32];
	int rc = TM_OK, done = 0;

	ck_assert_ptr_nonnull(ids);
	fill(tm, ids, 0, &rc);
	ck_assert_int_eq(rc, TM_ESTORAGE);
	/* Register names, filling every page freed in between, until the cap
	 * refuses a registration (if registering ever needs room). */
	tm_job_def_init(&d, TM_JOB_DEF_VERSION);
	d.name = name;
	for (int i = 0; i < 1000 && !done; i++) {
		while (tm_trigger(tm, "big", NULL, 0, NULL) == TM_OK)
			;
		snprintf(name, sizeof(name), "late%d", i);
		rc = tm_register(tm, &d);
		if (rc == TM_OK)
			continue;
		ck_assert_msg(rc == TM_ESTORAGE, "register gave %s", tm_error_name(rc));
		/* Refused: the name must not be left registered. */
		ck_assert_err(tm_trigger(tm, name, NULL, 0, NULL), TM_EWRONG_DATA);
		tm_close(tm);
		tm = open_capped(dir, 1 * MIB, 8 * MIB);
		ck_assert_ok(tm_register(tm, &d));
		ck_assert_ok(tm_trigger(tm, name, NULL, 0, NULL));
		done = 1;
	}
	tm_close(tm);
	free(ids);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

enum { WRITERS = 4, READERS = 4, PER_WRITER = 40, GROW_ROUNDS = 6 };

struct grower {
	tm_manager *tm;
	int first;           /* index of this writer's first task */
	char (*ids)[21];
	atomic_int *writing; /* writers still at work */
	int bad;
	char why[256];
};

static void grower_bad(struct grower *g, const char *what, int rc)
{
	if (g->bad++ == 0)
		snprintf(g->why, sizeof(g->why), "%s: %s (%s)", what, tm_error_name(rc),
		         tm_last_error());
}

static void *grow_writer(void *p)
{
	struct grower *g = p;

	for (int i = g->first; i < g->first + PER_WRITER; i++) {
		char *body = big_body(i), *out = NULL;
		int rc = tm_trigger(g->tm, "big", body, 0, &out);
		cJSON *j;

		free(body);
		if (rc != TM_OK) {
			grower_bad(g, "trigger", rc);
			continue;
		}
		j = cJSON_Parse(out);
		snprintf(g->ids[i], 21, "%s", cJSON_GetObjectItem(j, "task_id")->valuestring);
		cJSON_Delete(j);
		tm_free(out);
	}
	atomic_fetch_sub(g->writing, 1);
	return NULL;
}

static void *grow_reader(void *p)
{
	struct grower *g = p;

	while (atomic_load(g->writing) > 0) {
		char *out = NULL;
		cJSON *l, *t;
		int rc = tm_list_recent(g->tm, "big", 1, 8, 0, &out);

		if (rc != TM_OK) {
			grower_bad(g, "list", rc);
			continue;
		}
		l = cJSON_Parse(out);
		tm_free(out);
		if (l == NULL) {
			grower_bad(g, "list output is not JSON", 0);
			continue;
		}
		cJSON_ArrayForEach(t, cJSON_GetObjectItem(l, "tasks")) {
			const char *id = cJSON_GetObjectItem(t, "task_id")->valuestring;
			cJSON *blob = cJSON_GetObjectItem(cJSON_GetObjectItem(
				cJSON_GetObjectItem(t, "details"), "payload"), "blob");

			if (!cJSON_IsString(blob) || strlen(blob->valuestring) != BLOB)
				grower_bad(g, "a payload read back wrong", 0);
			rc = tm_get(g->tm, "big", id, 0, NULL);
			if (rc != TM_OK)
				grower_bad(g, "get", rc);
		}
		cJSON_Delete(l);
	}
	return NULL;
}

/* Writers fill a 1 MiB map far past its size while readers read: every
 * growth happens under load, and nobody sees an error or a torn read.  A
 * race around a growth is narrow, so several fresh stores go through it. */
static void grow_round(void)
{
	char *dir = tt_tmpdir();
	char (*ids)[21] = calloc(WRITERS * PER_WRITER, sizeof(*ids));
	tm_manager *tm = open_capped(dir, 1 * MIB, 64 * MIB);
	struct grower g[WRITERS + READERS];
	pthread_t th[WRITERS + READERS];
	atomic_int writing = WRITERS;

	ck_assert_ptr_nonnull(ids);
	for (int i = 0; i < WRITERS + READERS; i++) {
		g[i] = (struct grower){ tm, i * PER_WRITER, ids, &writing, 0, "" };
		ck_assert_int_eq(pthread_create(&th[i], NULL,
		                 i < WRITERS ? grow_writer : grow_reader, &g[i]), 0);
	}
	for (int i = 0; i < WRITERS + READERS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < WRITERS + READERS; i++)
		ck_assert_msg(g[i].bad == 0, "thread %d: %d failures, first %s", i,
		              g[i].bad, g[i].why);
	ck_assert(stat_number(tm, "map_bytes") >= 4 * MIB);
	ck_assert_int_eq(tt_count(tm, "big"), WRITERS * PER_WRITER);
	assert_tasks_intact(tm, ids, WRITERS * PER_WRITER);
	assert_check_ok(tm, WRITERS * PER_WRITER);
	tm_close(tm);
	free(ids);
	tt_rmdir(dir);
	free(dir);
}

START_TEST(map_grows_under_concurrent_writers_and_readers)
{
	for (int round = 0; round < GROW_ROUNDS; round++)
		grow_round();
}
END_TEST

/* Another process on the same store, started with a 1 MiB map, is still
 * waiting when this one grows the map well past that: its next write must
 * adopt the larger map, not fail. */
START_TEST(map_grown_by_another_process_is_adopted)
{
	const char *helper = getenv("RACE_HELPER");
	char *dir = tt_tmpdir();
	char (*ids)[21] = calloc(MAX_TASKS, sizeof(*ids));
	char fd_arg[16], size_arg[32], line[256], id[32];
	int start[2], out[2], rc, status, n;
	pid_t pid;
	FILE *from;
	tm_manager *tm;

	ck_assert_msg(helper != NULL, "RACE_HELPER is not set");
	ck_assert_ptr_nonnull(ids);
	ck_assert_int_eq(pipe2(start, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	snprintf(fd_arg, sizeof(fd_arg), "%d", start[0]);
	snprintf(size_arg, sizeof(size_arg), "%llu", (unsigned long long)MIB);
	/* Fork before this process opens the store. */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		fcntl(start[0], F_SETFD, 0);
		if (dup2(out[1], STDOUT_FILENO) < 0)
			_exit(126);
		execl(helper, helper, dir, fd_arg, "excl", size_arg, (char *)NULL);
		_exit(127);
	}
	close(start[0]);
	close(out[1]);
	from = fdopen(out[0], "r");
	ck_assert_ptr_nonnull(from);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), from));
	ck_assert_msg(strcmp(line, "ready\n") == 0, "helper said %s", line);

	tm = open_capped(dir, 1 * MIB, 64 * MIB);
	tt_register(tm, "excl", TM_JOB_EXCLUSIVE);
	n = fill_to(tm, ids, 0, 80, &rc);
	ck_assert_ok(rc);
	ck_assert_int_eq(n, 80);
	ck_assert(stat_number(tm, "map_bytes") >= 4 * MIB);
	close(start[1]); /* go */
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), from));
	ck_assert_msg(sscanf(line, "%d %31s", &rc, id) == 2, "helper said %s", line);
	ck_assert_msg(rc == TM_OK, "the other process's trigger gave %s", line);
	fclose(from);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_str_eq(tt_status(tm, "excl", id, (char[32]){ 0 }), "REQUEST_SENT");
	assert_tasks_intact(tm, ids, n);
	assert_check_ok(tm, n + 1);
	tm_close(tm);
	free(ids);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("map");

	tt_add(s, map_grows_to_its_cap_then_refuses_writes_cleanly);
	tt_add(s, map_full_does_not_block_reads_or_small_changes);
	tt_add(s, register_refused_at_the_cap_leaves_no_trace);
	tt_add(s, map_grows_under_concurrent_writers_and_readers);
	tt_add(s, map_grown_by_another_process_is_adopted);
	return tt_run(s);
}
