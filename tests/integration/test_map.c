/* Store growth (doc/runtime.md, "Store growth"): the LMDB map grows on
 * demand up to its cap; at the cap a write fails with TM_ESTORAGE and
 * leaves the store whole. */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

#define MIB (1024ull * 1024ull)
enum { BLOB = 64 * 1024, MAX_TASKS = 200 };

static tm_manager *open_capped(const char *dir, uint64_t size, uint64_t cap)
{
	tm_options o = tt_options(dir);
	tm_manager *tm = NULL;

	o.map_size = size;
	o.map_size_max = cap;
	ck_assert_ok(tm_open(&o, &tm));
	tt_register(tm, "big", 0);
	return tm;
}

/* Big tasks of "big" from index from until the first failure or index to;
 * returns the index reached, *rc the last trigger's code. */
static int fill_to(tm_manager *tm, char ids[][21], int from, int to, int *rc)
{
	return tt_fill(tm, "big", BLOB, ids, from, to, rc);
}

static int fill(tm_manager *tm, char ids[][21], int from, int *rc)
{
	return fill_to(tm, ids, from, MAX_TASKS, rc);
}

/* Every stored task reads back with the payload it was given. */
static void assert_tasks_intact(tm_manager *tm, char ids[][21], int n)
{
	tt_assert_filled(tm, "big", BLOB, ids, n);
}

static double map_bytes(tm_manager *tm)
{
	return tt_stat(tm, NULL, "map_bytes");
}

/* A store whose map starts at 1 MiB with a cap of 2 MiB, filled with big
 * tasks until the cap refused one: *ids holds the n stored (free it), and
 * this thread's message is the refusal's. */
static tm_manager *full_store(char **dir, char (**ids)[21], int *n)
{
	tm_manager *tm;
	int rc;

	*dir = tt_tmpdir();
	*ids = calloc(MAX_TASKS, sizeof(**ids));
	ck_assert_ptr_nonnull(*ids);
	tm = open_capped(*dir, 1 * MIB, 2 * MIB);
	*n = fill(tm, *ids, 0, &rc);
	ck_assert_msg(rc == TM_ESTORAGE, "after %d tasks: %s (%s)", *n,
	              tm_error_name(rc), tm_last_error());
	ck_assert_int_gt(*n, 0);
	return tm;
}

START_TEST(map_grows_to_its_cap_then_refuses_writes_cleanly)
{
	char *dir, (*ids)[21], msg[512];
	int n, more, rc;
	tm_manager *tm = full_store(&dir, &ids, &n);

	snprintf(msg, sizeof(msg), "%s", tm_last_error());
	ck_assert_msg(strstr(msg, "cap") || strstr(msg, "map_size_max"),
	              "message \"%s\" does not mention the cap", msg);
	/* More went in than the initial 1 MiB map holds: it grew. */
	ck_assert_msg((uint64_t)n * BLOB > 1 * MIB, "only %d tasks fit", n);
	ck_assert(map_bytes(tm) > 1 * MIB);
	ck_assert(map_bytes(tm) <= 2 * MIB);
	/* The refused trigger stored nothing; every earlier task is whole. */
	assert_tasks_intact(tm, ids, n);
	tt_assert_check(tm, n);
	/* Still refused, still consistent. */
	more = fill(tm, ids, n, &rc);
	ck_assert_int_eq(rc, TM_ESTORAGE);
	ck_assert_int_eq(more, n);
	tt_assert_check(tm, n);
	tm_close(tm);

	/* A larger cap makes room again. */
	tm = open_capped(dir, 1 * MIB, 8 * MIB);
	ck_assert_int_eq(tt_count(tm, "big"), n);
	more = fill(tm, ids, n, &rc);
	ck_assert_msg(more > n + 4, "only %d more tasks after raising the cap (%s)",
	              more - n, tm_last_error());
	ck_assert(map_bytes(tm) > 2 * MIB);
	assert_tasks_intact(tm, ids, more);
	tt_assert_check(tm, more);
	free(ids);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(map_full_does_not_block_reads_or_small_changes)
{
	char *dir, (*ids)[21];
	int n, rc;
	tm_manager *tm = full_store(&dir, &ids, &n);

	/* Reads never need room. */
	ck_assert_int_eq(tt_count(tm, "big"), n);
	ck_assert_int_eq(tt_stat(tm, "big", "REQUEST_SENT"), n);
	/* A status change either fits or fails with STORAGE_ERROR; either
	 * way the store stays consistent and the task readable. */
	rc = tm_patch(tm, "big", ids[0], "{\"completed\":true}", NULL);
	ck_assert_msg(rc == TM_OK || rc == TM_ESTORAGE, "patch gave %s", tm_error_name(rc));
	ck_assert_str_eq(tt_status(tm, "big", ids[0], (char[32]){ 0 }),
	                 rc == TM_OK ? "COMPLETED" : "REQUEST_SENT");
	tt_assert_check(tm, n);
	free(ids);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(register_refused_at_the_cap_leaves_no_trace)
{
	char *dir, (*ids)[21], name[32];
	int n, rc, done = 0;
	tm_manager *tm = full_store(&dir, &ids, &n);
	tm_job_def d = TM_JOB_DEF_INIT;

	/* Register names, filling every page freed in between, until the cap
	 * refuses a registration: a registration writes its name's record. */
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
	ck_assert_msg(done, "1000 registrations on a full store were all accepted");
	free(ids);
	tt_close_tmp(tm, dir);
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
		char *body = tt_big_body(i, BLOB), *out = NULL;
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
	ck_assert(map_bytes(tm) >= 4 * MIB);
	assert_tasks_intact(tm, ids, WRITERS * PER_WRITER);
	tt_assert_check(tm, WRITERS * PER_WRITER);
	free(ids);
	tt_close_tmp(tm, dir);
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
	char gate_arg[16], size_arg[32], id[21];
	int gate[2], rc, n;
	pid_t pid;
	FILE *from;
	tm_manager *tm;

	ck_assert_msg(helper != NULL, "RACE_HELPER is not set");
	ck_assert_ptr_nonnull(ids);
	ck_assert_int_eq(pipe2(gate, O_CLOEXEC), 0);
	snprintf(gate_arg, sizeof(gate_arg), "%d", gate[0]);
	snprintf(size_arg, sizeof(size_arg), "%llu", (unsigned long long)MIB);
	/* Started before this process opens the store. */
	pid = tt_spawn_ready((char *[]){ (char *)helper, (char *)tt_store_path(dir),
	                                 gate_arg, "excl", size_arg,
	                                 NULL }, gate[0], &from);
	close(gate[0]);

	tm = open_capped(dir, 1 * MIB, 64 * MIB);
	tt_register(tm, "excl", TM_JOB_EXCLUSIVE);
	n = fill_to(tm, ids, 0, 80, &rc);
	ck_assert_ok(rc);
	ck_assert_int_eq(n, 80);
	ck_assert(map_bytes(tm) >= 4 * MIB);
	close(gate[1]); /* go */
	rc = tt_race_answer(from, id);
	ck_assert_msg(rc == TM_OK, "the other process's trigger gave %s", tm_error_name(rc));
	fclose(from);
	tt_reap(pid);
	ck_assert_str_eq(tt_status(tm, "excl", id, (char[32]){ 0 }), "REQUEST_SENT");
	assert_tasks_intact(tm, ids, n);
	tt_assert_check(tm, n + 1);
	free(ids);
	tt_close_tmp(tm, dir);
}
END_TEST

TT_MAIN("map",
	map_grows_to_its_cap_then_refuses_writes_cleanly,
	map_full_does_not_block_reads_or_small_changes,
	register_refused_at_the_cap_leaves_no_trace,
	map_grows_under_concurrent_writers_and_readers,
	map_grown_by_another_process_is_adopted)
