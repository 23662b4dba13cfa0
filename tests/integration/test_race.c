/* An exclusive name's check and insert are one write transaction
 * (doc/api.md, "Registering task names"), so among racing triggers exactly
 * one wins, across threads of one manager and across processes on one
 * store. */
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

enum { THREADS = 16, ROUNDS = 5 };

struct racer {
	tm_manager *tm;
	pthread_barrier_t *go;
	int rc;
	char id[21];
};

static void *race(void *p)
{
	struct racer *r = p;
	char *out = NULL;
	cJSON *j;

	pthread_barrier_wait(r->go);
	r->rc = tm_trigger(r->tm, "excl", NULL, 0, &out);
	if (r->rc == TM_OK && (j = cJSON_Parse(out)) != NULL) {
		const cJSON *id = cJSON_GetObjectItem(j, "task_id");
		if (cJSON_IsString(id))
			snprintf(r->id, sizeof(r->id), "%s", id->valuestring);
		cJSON_Delete(j);
	}
	tm_free(out);
	return NULL;
}

START_TEST(racing_threads_on_an_exclusive_name_create_one_task)
{
	static const char *const finish[] = {
		"{\"completed\":true}", "{\"failed\":true}", "{\"status\":\"CANCELLED\"}",
	};
	char *dir;
	tm_manager *tm = tt_open_tmp(&dir, 0);
	pthread_barrier_t go;
	struct racer r[THREADS];
	pthread_t th[THREADS];

	tt_register(tm, "excl", TM_JOB_EXCLUSIVE);
	for (int round = 0; round < ROUNDS; round++) {
		int ok = 0, busy = 0, winner = -1;

		pthread_barrier_init(&go, NULL, THREADS);
		for (int i = 0; i < THREADS; i++) {
			r[i] = (struct racer){ tm, &go, 1, "" };
			ck_assert_int_eq(pthread_create(&th[i], NULL, race, &r[i]), 0);
		}
		for (int i = 0; i < THREADS; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&go);
		for (int i = 0; i < THREADS; i++) {
			if (r[i].rc == TM_OK) {
				ok++;
				winner = i;
			} else if (r[i].rc == TM_EALREADY_RUNNING) {
				busy++;
			} else {
				ck_abort_msg("round %d: a trigger gave %s", round,
				             tm_error_name(r[i].rc));
			}
		}
		ck_assert_int_eq(ok, 1);
		ck_assert_int_eq(busy, THREADS - 1);
		ck_assert_uint_eq(strlen(r[winner].id), 20);
		ck_assert_int_eq(tt_count(tm, "excl"), round + 1);
		ck_assert_str_eq(tt_status(tm, "excl", r[winner].id, (char[32]){ 0 }),
		                 "REQUEST_SENT");
		/* End it, so the next round may start a new one. */
		if (round % 2)
			ck_assert_ok(tm_patch(tm, "excl", r[winner].id,
			             "{\"status\":\"RUNNING\"}", NULL));
		ck_assert_ok(tm_patch(tm, "excl", r[winner].id,
		             finish[round % 3], NULL));
	}
	tt_assert_check(tm, ROUNDS);
	tt_close_tmp(tm, dir);
}
END_TEST

/* ---- across processes ---------------------------------------------------- */

enum { HELPERS = 4, PROC_ROUNDS = 3 };

static void finish_store(const char *dir, int round, const char *winner)
{
	tm_manager *tm = tt_open(dir, 0);

	tt_register(tm, "excl", TM_JOB_EXCLUSIVE);
	ck_assert_int_eq(tt_count(tm, "excl"), round + 1);
	ck_assert_str_eq(tt_status(tm, "excl", winner, (char[32]){ 0 }), "REQUEST_SENT");
	ck_assert_ok(tm_patch(tm, "excl", winner, "{\"completed\":true}", NULL));
	tt_assert_check(tm, round + 1);
	tm_close(tm);
}

START_TEST(racing_processes_on_an_exclusive_name_create_one_task)
{
	const char *path = getenv("RACE_HELPER");
	char *dir = tt_tmpdir();
	tm_manager *tm;

	ck_assert_msg(path != NULL, "RACE_HELPER is not set");
	/* Create the store before any helper, then close it: the parent never
	 * holds the store open across fork(). */
	tm = tt_open(dir, 0);
	tt_register(tm, "excl", TM_JOB_EXCLUSIVE);
	tm_close(tm);
	for (int round = 0; round < PROC_ROUNDS; round++) {
		pid_t pids[HELPERS];
		FILE *from[HELPERS];
		int gate[2], ok = 0, busy = 0;
		char gate_arg[16], winner[21] = "";

		ck_assert_int_eq(pipe2(gate, O_CLOEXEC), 0);
		snprintf(gate_arg, sizeof(gate_arg), "%d", gate[0]);
		for (int i = 0; i < HELPERS; i++)
			pids[i] = tt_spawn_ready((char *[]){ (char *)path,
			                                     (char *)tt_store_path(dir),
			                                     gate_arg, "excl",
			                                     NULL }, gate[0], &from[i]);
		close(gate[0]);
		close(gate[1]); /* go */
		for (int i = 0; i < HELPERS; i++) {
			char id[21];
			int rc = tt_race_answer(from[i], id);

			if (rc == TM_OK) {
				ok++;
				ck_assert_uint_eq(strlen(id), 20);
				snprintf(winner, sizeof(winner), "%s", id);
			} else {
				ck_assert_msg(rc == TM_EALREADY_RUNNING, "a helper's trigger gave %s",
				              tm_error_name(rc));
				busy++;
			}
			fclose(from[i]);
			tt_reap(pids[i]);
		}
		ck_assert_int_eq(ok, 1);
		ck_assert_int_eq(busy, HELPERS - 1);
		ck_assert_uint_eq(strlen(winner), 20);
		finish_store(dir, round, winner);
	}
	tt_rmdir(dir);
	free(dir);
}
END_TEST

TT_MAIN("race",
	racing_threads_on_an_exclusive_name_create_one_task,
	racing_processes_on_an_exclusive_name_create_one_task)
