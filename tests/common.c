#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

/* ---- a test's store ------------------------------------------------------ */

char *tt_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *dir;

	if (asprintf(&dir, "%s/tmtest-XXXXXX", base && *base ? base : "/tmp") < 0)
		ck_abort_msg("out of memory");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	return dir;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(path);
}

void tt_rmdir(const char *dir)
{
	if (dir) {
		tt_store_drop(dir);
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	}
}

tm_options tt_options(const char *dir)
{
	tm_options o = TM_OPTIONS_INIT;

	o.path = tt_store_path(dir);
	o.workers = 0;
	o.flags = TM_OPEN_NOSYNC;
	return o;
}

tm_manager *tt_open(const char *dir, unsigned workers)
{
	tm_options o = tt_options(dir);
	tm_manager *tm = NULL;

	o.workers = workers;
	ck_assert_ok(tm_open(&o, &tm));
	return tm;
}

tm_manager *tt_open_tmp(char **dir, unsigned workers)
{
	*dir = tt_tmpdir();
	return tt_open(*dir, workers);
}

tm_manager *tt_open_with_task(char **dir, const char *name, unsigned flags,
                              const char *body, char id[21])
{
	tm_manager *tm = tt_open_tmp(dir, 0);

	tt_register_with_task(tm, name, flags, body, id);
	return tm;
}

void tt_close_tmp(tm_manager *tm, char *dir)
{
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}

void tt_register(tm_manager *tm, const char *name, unsigned flags)
{
	tm_job_def d = TM_JOB_DEF_INIT;

	d.name = name;
	d.flags = flags;
	ck_assert_ok(tm_register(tm, &d));
}

void tt_register_with_task(tm_manager *tm, const char *name, unsigned flags,
                           const char *body, char id[21])
{
	tt_register(tm, name, flags);
	tt_trigger(tm, name, body, id);
}

/* ---- tasks ----------------------------------------------------------------- */

cJSON *tt_json(char *text)
{
	cJSON *j;

	ck_assert_ptr_nonnull(text);
	j = cJSON_Parse(text);
	ck_assert_msg(j != NULL, "not JSON: %s", text);
	tm_free(text);
	return j;
}

cJSON *tt_parse(const char *text)
{
	cJSON *j = cJSON_Parse(text);

	ck_assert_msg(j != NULL, "bad test JSON: %s", text);
	return j;
}

void tt_trigger(tm_manager *tm, const char *name, const char *body, char id[21])
{
	char *out = NULL;
	cJSON *j;

	ck_assert_ok(tm_trigger(tm, name, body, 0, &out));
	j = tt_json(out);
	ck_assert(cJSON_IsString(cJSON_GetObjectItem(j, "task_id")));
	snprintf(id, 21, "%s", cJSON_GetObjectItem(j, "task_id")->valuestring);
	cJSON_Delete(j);
}

void tt_task_in(tm_manager *tm, const char *name, const char *status, char id[21])
{
	char body[64];

	tt_trigger(tm, name, NULL, id);
	if (status == NULL)
		return;
	/* CANCELLED_REQUESTED is a request to stop a run: one must be going. */
	if (strcmp(status, "CANCELLED_REQUESTED") == 0)
		ck_assert_ok(tm_patch(tm, name, id, "{\"status\":\"RUNNING\"}", NULL));
	snprintf(body, sizeof(body), "{\"status\":\"%s\"}", status);
	ck_assert_ok(tm_patch(tm, name, id, body, NULL));
}

const char *tt_status(tm_manager *tm, const char *name, const char *id, char buf[32])
{
	cJSON *j = tt_task(tm, name, id, 0);

	snprintf(buf, 32, "%s", cJSON_GetObjectItem(j, "status")->valuestring);
	cJSON_Delete(j);
	return buf;
}

char *tt_get(tm_manager *tm, const char *name, const char *id, unsigned flags)
{
	char *out = NULL;

	ck_assert_ok(tm_get(tm, name, id, flags, &out));
	ck_assert_ptr_nonnull(out);
	return out;
}

cJSON *tt_task(tm_manager *tm, const char *name, const char *id, unsigned flags)
{
	return tt_json(tt_get(tm, name, id, flags));
}

cJSON *tt_detail(const cJSON *task, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(task, "details"), key);
}

const char *const tt_status_names[6] = {
	"REQUEST_SENT", "RUNNING", "CANCELLED_REQUESTED",
	"FAILED", "CANCELLED", "COMPLETED",
};

int tt_rank(const char *status)
{
	for (int i = 0; status && i < 6; i++)
		if (strcmp(status, tt_status_names[i]) == 0)
			return i < 3 ? i : 3;
	return -1;
}

/* ---- listing and figures ---------------------------------------------------- */

cJSON *tt_list_all(tm_manager *tm, const char *name, int amt, unsigned flags)
{
	cJSON *all = cJSON_CreateArray();

	for (int page = 1;; page++) {
		char *out = NULL;
		cJSON *l, *t;
		int more;

		ck_assert_ok(tm_list_recent(tm, name, page, amt, flags, &out));
		l = tt_json(out);
		more = cJSON_IsTrue(cJSON_GetObjectItem(l, "has_next"));
		while ((t = cJSON_DetachItemFromArray(cJSON_GetObjectItem(l, "tasks"), 0)))
			cJSON_AddItemToArray(all, t);
		cJSON_Delete(l);
		if (!more)
			return all;
	}
}

int tt_count(tm_manager *tm, const char *name)
{
	cJSON *all = tt_list_all(tm, name, 64, 0);
	int n = cJSON_GetArraySize(all);

	cJSON_Delete(all);
	return n;
}

double tt_stat(tm_manager *tm, const char *name, const char *key)
{
	char *out = NULL;
	const cJSON *v;
	cJSON *j;
	double n;

	ck_assert_ok(tm_stats(tm, &out));
	j = tt_json(out);
	v = name ? cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(
	                   cJSON_GetObjectItemCaseSensitive(j, "names"), name), key)
	         : cJSON_GetObjectItemCaseSensitive(j, key);
	n = cJSON_IsNumber(v) ? v->valuedouble : 0;
	cJSON_Delete(j);
	return n;
}

double tt_metric(tm_manager *tm, const char *series)
{
	char *out = NULL;
	size_t n = strlen(series);
	double v = -1;

	ck_assert_ok(tm_metrics(tm, &out));
	for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, series, n) == 0 && l[n] == ' ') {
			v = strtod(l + n + 1, NULL);
			break;
		}
	tm_free(out);
	return v;
}

void tt_assert_check(tm_manager *tm, int tasks)
{
	char *out = NULL, *text;
	cJSON *j;

	ck_assert_ok(tm_check(tm, &out));
	j = tt_json(out);
	text = cJSON_PrintUnformatted(j);
	ck_assert_msg(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ok")),
	              "tm_check: %s", text);
	if (tasks >= 0)
		ck_assert_msg(cJSON_GetObjectItemCaseSensitive(j, "tasks")->valueint == tasks,
		              "tm_check counts other than %d tasks: %s", tasks, text);
	cJSON_free(text);
	cJSON_Delete(j);
}

/* ---- refusals ---------------------------------------------------------------- */

void tt_clear_error(void)
{
	tm_errorf(TM_OK, "%s", "");
}

void tt_assert_patch_refused(tm_manager *tm, const char *name, const char *id,
                             const char *body, int code)
{
	char *before = tt_get(tm, name, id, 0), *after;
	char sentinel, *out = &sentinel;
	int rc;

	tt_clear_error();
	rc = tm_patch(tm, name, id, body, &out);
	ck_assert_msg(rc == code, "%s gave %s (%s), expected %s",
	              body ? body : "(null)", tm_error_name(rc), tm_last_error(),
	              tm_error_name(code));
	ck_assert_ptr_null(out);
	ck_assert_msg(tm_last_error()[0] != '\0', "no message for %s",
	              body ? body : "(null)");
	after = tt_get(tm, name, id, 0);
	ck_assert_str_eq(before, after);
	tm_free(before);
	tm_free(after);
}

/* ---- large tasks (store growth) --------------------------------------------- */

char *tt_big_body(int i, size_t bytes)
{
	char *body = malloc(bytes + 128);
	int n;

	ck_assert_ptr_nonnull(body);
	n = sprintf(body, "{\"context_task\":{\"i\":%d,\"blob\":\"", i);
	for (size_t k = 0; k < bytes; k++)
		body[n + k] = (char)('a' + ((size_t)i + k) % 26);
	strcpy(body + n + bytes, "\"}}");
	return body;
}

int tt_fill(tm_manager *tm, const char *name, size_t bytes, char ids[][21],
            int from, int to, int *rc)
{
	int n;

	*rc = TM_OK;
	for (n = from; n < to; n++) {
		char *body = tt_big_body(n, bytes), *out = NULL;
		cJSON *j;

		*rc = tm_trigger(tm, name, body, 0, &out);
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

void tt_assert_filled(tm_manager *tm, const char *name, size_t bytes,
                      char ids[][21], int n)
{
	ck_assert_int_eq(tt_count(tm, name), n);
	for (int i = 0; i < n; i++) {
		char *body = tt_big_body(i, bytes);
		cJSON *t = tt_task(tm, name, ids[i], 0), *want = tt_parse(body);

		ck_assert_msg(cJSON_Compare(tt_detail(t, "payload"),
		                            cJSON_GetObjectItem(want, "context_task"), 1),
		              "task %d (%s) does not hold its payload", i, ids[i]);
		cJSON_Delete(want);
		cJSON_Delete(t);
		free(body);
	}
}

/* ---- other processes ---------------------------------------------------------- */

int tt_wait(int (*pred)(void *arg), void *arg, double seconds)
{
	struct timespec start, now, ms = { 0, 1000000 };

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (pred(arg))
			return 1;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((double)(now.tv_sec - start.tv_sec) +
		    (double)(now.tv_nsec - start.tv_nsec) / 1e9 > seconds)
			return 0;
		nanosleep(&ms, NULL);
	}
}

pid_t tt_spawn(char *const argv[], int keep_fd, FILE **out)
{
	int pipefd[2] = { -1, -1 };
	pid_t pid;

	if (out)
		ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* Only exec here: nothing of a store crosses the fork. */
		if (keep_fd >= 0)
			fcntl(keep_fd, F_SETFD, 0);
		if (out && dup2(pipefd[1], STDOUT_FILENO) < 0)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	if (out) {
		close(pipefd[1]);
		*out = fdopen(pipefd[0], "r");
		ck_assert_ptr_nonnull(*out);
	}
	return pid;
}

void tt_expect_line(FILE *f, const char *want)
{
	char line[512];

	ck_assert_msg(fgets(line, sizeof(line), f) != NULL,
	              "the other process said nothing (expected %s)", want);
	ck_assert_msg(strcmp(line, want) == 0, "the other process said %s", line);
}

pid_t tt_spawn_ready(char *const argv[], int gate_fd, FILE **out)
{
	pid_t pid = tt_spawn(argv, gate_fd, out);

	tt_expect_line(*out, "ready\n");
	return pid;
}

int tt_race_answer(FILE *f, char id[21])
{
	char line[256], word[32];
	int rc;

	ck_assert_msg(fgets(line, sizeof(line), f) != NULL, "the helper said nothing");
	ck_assert_msg(sscanf(line, "%d %31s", &rc, word) == 2, "the helper said %s", line);
	snprintf(id, 21, "%.20s", word);
	return rc;
}

void tt_reap(pid_t pid)
{
	int st = 0;

	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	              "child %d ended with status 0x%x", (int)pid, st);
}

/* ---- running ------------------------------------------------------------------ */

int tt_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

int tt_run_tests(const char *name, const TTest *const tests[], size_t n,
                 void (*setup)(void), void (*teardown)(void))
{
	Suite *s = suite_create(name);
	size_t added = 0;

	for (size_t i = 0; i < n; i++) {
		TCase *tc;

		if (tests[i] == NULL)
			continue; /* tt_lmdb_only() under PostgreSQL */
		tc = tcase_create(tests[i]->name);
		added++;

		if (setup || teardown)
			tcase_add_checked_fixture(tc, setup, teardown);
		tcase_add_test(tc, tests[i]);
		suite_add_tcase(s, tc);
	}
	if (added == 0 && n > 0) {
		printf("every test of %s skipped\n", name);
		srunner_free(srunner_create(s)); /* frees the suite */
		return 77;
	}
	return tt_run(s);
}
