/* SPEC section 5: an exclusive name's check and insert are one write
 * transaction, so among racing triggers exactly one wins, across threads
 * of one manager and across processes on one store. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
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

START_TEST(racing_threads_on_an_exclusive_name_create_one_task)
{
	static const char *const finish[] = {
		"{\"completed\":true}", "{\"failed\":true}", "{\"status\":\"CANCELLED\"}",
	};
	char *dir = tt_tmpdir();
	tm_manager *tm = tt_open(dir, 0);
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
	assert_check_ok(tm, ROUNDS);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

/* ---- across processes ---------------------------------------------------- */

enum { HELPERS = 4, PROC_ROUNDS = 3 };

struct helper {
	pid_t pid;
	FILE *out;
};

/* Start a helper on dir that waits for start_fd to close. */
static void spawn(const char *path, const char *dir, int start_fd, struct helper *h)
{
	int out[2];
	char fd_arg[16];

	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	snprintf(fd_arg, sizeof(fd_arg), "%d", start_fd);
	h->pid = fork();
	ck_assert_int_ge(h->pid, 0);
	if (h->pid == 0) {
		/* The child keeps the read end of the start pipe across exec;
		 * every write end is close-on-exec. */
		fcntl(start_fd, F_SETFD, 0);
		if (dup2(out[1], STDOUT_FILENO) < 0)
			_exit(126);
		execl(path, path, dir, fd_arg, "excl", (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	h->out = fdopen(out[0], "r");
	ck_assert_ptr_nonnull(h->out);
}

static void finish_store(const char *dir, int round, const char *winner)
{
	tm_manager *tm = tt_open(dir, 0);

	tt_register(tm, "excl", TM_JOB_EXCLUSIVE);
	ck_assert_int_eq(tt_count(tm, "excl"), round + 1);
	ck_assert_str_eq(tt_status(tm, "excl", winner, (char[32]){ 0 }), "REQUEST_SENT");
	ck_assert_ok(tm_patch(tm, "excl", winner, "{\"completed\":true}", NULL));
	assert_check_ok(tm, round + 1);
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
		struct helper h[HELPERS];
		int start[2], ok = 0, busy = 0;
		char winner[21] = "", line[256];

		ck_assert_int_eq(pipe2(start, O_CLOEXEC), 0);
		for (int i = 0; i < HELPERS; i++)
			spawn(path, dir, start[0], &h[i]);
		close(start[0]);
		for (int i = 0; i < HELPERS; i++) {
			ck_assert_ptr_nonnull(fgets(line, sizeof(line), h[i].out));
			ck_assert_msg(strcmp(line, "ready\n") == 0, "helper said %s", line);
		}
		close(start[1]); /* go */
		for (int i = 0; i < HELPERS; i++) {
			int rc, status;
			char id[32];

			ck_assert_ptr_nonnull(fgets(line, sizeof(line), h[i].out));
			ck_assert_msg(sscanf(line, "%d %31s", &rc, id) == 2, "helper said %s", line);
			if (rc == TM_OK) {
				ok++;
				ck_assert_uint_eq(strlen(id), 20);
				snprintf(winner, sizeof(winner), "%.20s", id);
			} else {
				ck_assert_msg(rc == TM_EALREADY_RUNNING, "helper said %s", line);
				busy++;
			}
			fclose(h[i].out);
			ck_assert_int_eq(waitpid(h[i].pid, &status, 0), h[i].pid);
			ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
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

int main(void)
{
	Suite *s = suite_create("race");

	tt_add(s, racing_threads_on_an_exclusive_name_create_one_task);
	tt_add(s, racing_processes_on_an_exclusive_name_create_one_task);
	return tt_run(s);
}
