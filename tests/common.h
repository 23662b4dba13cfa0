/* Helpers shared by the Check suites. */
#ifndef TM_TEST_COMMON_H
#define TM_TEST_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <check.h>
#include <cjson/cJSON.h>

#include "taskmgr.h"

/* ---- the store under test -------------------------------------------------- */

/* Every test names its store by a directory; TM_TEST_BACKEND (meson test
 * --setup pg sets it to "pg") says what tm_open gets for it.  Unset or
 * "lmdb": the directory itself, an LMDB store.  "pg": a PostgreSQL store
 * in the database at TM_TEST_PG_URL, in the schema t_<16 hex digits of a
 * 64-bit hash of the directory's path> (taskmgr_schema=, added to the
 * URI), so that reopening a directory reopens its store, and every
 * spelling of one directory ("d", "d/./") names the same one.
 * tests/backend.c; tests/tmbackend.py maps paths the same way. */

/* Whether the tests run against PostgreSQL (TM_TEST_BACKEND=pg). */
int tt_backend_pg(void);
/* The path tm_open gets for the store named by dir: dir itself, or its
 * PostgreSQL URI (kept until tt_rmdir() of dir or a directory above it).
 * Every path a test hands tm_open, or a helper process, comes from here. */
const char *tt_store_path(const char *dir);
/* Drop the PostgreSQL schemas of dir and of every path under it that
 * this process mapped (tt_rmdir does this; nothing under LMDB). */
void tt_store_drop(const char *dir);
/* A test about LMDB itself (its files, map, file system): test under
 * LMDB; under PostgreSQL NULL, which the TT_MAIN family leaves out, after
 * printing "skipped on PostgreSQL: <test> (<reason>)". */
const TTest *tt_lmdb_only(const TTest *test, const char *reason);

/* ---- a test's store ------------------------------------------------------ */

/* A fresh temporary directory for one test (malloc'd: free it after
 * tt_rmdir() removed the directory and the store it names). */
char *tt_tmpdir(void);
void tt_rmdir(const char *dir);

/* The options of a no-sync store at dir (tt_store_path) without workers. */
tm_options tt_options(const char *dir);
/* Open a no-sync store at dir with `workers` threads. */
tm_manager *tt_open(const char *dir, unsigned workers);
/* tt_open() on a fresh tt_tmpdir(), whose path goes to *dir. */
tm_manager *tt_open_tmp(char **dir, unsigned workers);
/* A store of tt_open_tmp() without workers, `name` registered with flags and
 * one task of it triggered with body: where most tests of one call begin. */
tm_manager *tt_open_with_task(char **dir, const char *name, unsigned flags,
                              const char *body, char id[21]);
/* The end of a test that made its store with tt_open_tmp(): close the
 * manager, remove the directory and free its path. */
void tt_close_tmp(tm_manager *tm, char *dir);

/* For a program whose every test wants a store of its own: declares the
 * file's `dir` and `tm`, and the checked fixture TT_STORE_MAIN runs around
 * each test, which opens a no-sync store without workers in a fresh
 * directory before the test and closes and removes it after. */
#define TT_STORE_FIXTURE \
	static char *dir; \
	static tm_manager *tm; \
	static void tt_store_setup(void) { tm = tt_open_tmp(&dir, 0); } \
	static void tt_store_teardown(void) { tt_close_tmp(tm, dir); }

/* Register name with the given flags and no handler (external worker). */
void tt_register(tm_manager *tm, const char *name, unsigned flags);
/* tt_register(), then one task of the name triggered with body. */
void tt_register_with_task(tm_manager *tm, const char *name, unsigned flags,
                           const char *body, char id[21]);

/* ---- tasks ----------------------------------------------------------------- */

/* Parse JSON text (ck_assert on failure), then free the text with tm_free. */
cJSON *tt_json(char *text);
/* Parse JSON text the test wrote itself (ck_assert on failure). */
cJSON *tt_parse(const char *text);
/* Trigger name with body; the new task id goes to id. */
void tt_trigger(tm_manager *tm, const char *name, const char *body, char id[21]);
/* A new task of name moved to `status` by tm_patch, as an external worker
 * would move it (through RUNNING where the rule asks); NULL leaves it
 * REQUEST_SENT. */
void tt_task_in(tm_manager *tm, const char *name, const char *status, char id[21]);
/* Status string of a task (private get). */
const char *tt_status(tm_manager *tm, const char *name, const char *id, char buf[32]);
/* tm_get's text of a task (ck_assert on failure); free it with tm_free. */
char *tt_get(tm_manager *tm, const char *name, const char *id, unsigned flags);
/* The same, parsed; cJSON_Delete it. */
cJSON *tt_task(tm_manager *tm, const char *name, const char *id, unsigned flags);
/* A member of a parsed task's details (NULL when absent). */
cJSON *tt_detail(const cJSON *task, const char *key);

/* The six status names in tm_status order, and the rank of a name under
 * the ordering rule (0, 1, 2, or 3 for the finals; -1 for no status). */
extern const char *const tt_status_names[6];
int tt_rank(const char *status);

/* ---- listing and figures ---------------------------------------------------- */

/* Every task of name, newest first, read through tm_list_recent pages of
 * amt: a JSON array to cJSON_Delete. */
cJSON *tt_list_all(tm_manager *tm, const char *name, int amt, unsigned flags);
/* Number of tasks of name, counted through every tm_list_recent page. */
int tt_count(tm_manager *tm, const char *name);
/* A figure of tm_stats: names.<name>.<key>, or the top-level <key> when
 * name is NULL; 0 when absent. */
double tt_stat(tm_manager *tm, const char *name, const char *key);
/* A sample of tm_metrics: the value of the line that begins with series
 * (a metric name and its labels, exactly as printed); -1 when absent. */
double tt_metric(tm_manager *tm, const char *series);
/* tm_check must say ok and count `tasks` tasks (any number when -1). */
void tt_assert_check(tm_manager *tm, int tasks);

/* ---- refusals ---------------------------------------------------------------- */

/* Set this thread's message to "", so a test can see a call leave one. */
void tt_clear_error(void);

#define ck_assert_ok(expr) do { \
	int rc_ = (expr); \
	ck_assert_msg(rc_ == TM_OK, "%s failed: %s (%s)", #expr, \
	              tm_error_name(rc_), tm_last_error()); \
} while (0)

#define ck_assert_err(expr, code) do { \
	int rc_ = (expr); \
	ck_assert_msg(rc_ == (code), "%s gave %s (%s), expected %s", #expr, \
	              tm_error_name(rc_), tm_last_error(), tm_error_name(code)); \
} while (0)

/* expr, which writes its output to the char *out, fails with code and
 * leaves out NULL.  out holds a non-NULL sentinel before the call, so a
 * call that forgets to clear it is caught. */
#define ck_assert_refused(expr, code, out) do { \
	static char sentinel_; \
	(out) = &sentinel_; \
	ck_assert_err(expr, code); \
	ck_assert_ptr_null(out); \
} while (0)

/* tm_patch of body must fail with code, set its output to NULL, leave a
 * message and leave the task byte-identical. */
void tt_assert_patch_refused(tm_manager *tm, const char *name, const char *id,
                             const char *body, int code);

/* ---- large tasks (store growth) --------------------------------------------- */

/* A trigger body whose context_task is {"i": i, "blob": "..."} with a blob
 * of `bytes` letters, distinct per i (malloc'd). */
char *tt_big_body(int i, size_t bytes);
/* Trigger tt_big_body(k, bytes) for k = from, from + 1, ... up to `to` or
 * the first failure; ids[k] receives each id.  Returns the k reached; *rc
 * is the code of the last trigger, and after a failure this thread's
 * message is still the trigger's. */
int tt_fill(tm_manager *tm, const char *name, size_t bytes, char ids[][21],
            int from, int to, int *rc);
/* Exactly the n tasks ids[0..n) of tt_fill are stored under name, each
 * with its payload. */
void tt_assert_filled(tm_manager *tm, const char *name, size_t bytes,
                      char ids[][21], int n);

/* ---- other processes ---------------------------------------------------------- */

/* Wait up to `seconds` for pred(arg) to be true, polling every millisecond:
 * for conditions another thread or process makes true. */
int tt_wait(int (*pred)(void *arg), void *arg, double seconds);

/* Fork and exec argv[0] with argv; keep_fd (unless -1) stays open across
 * the exec, every descriptor made close-on-exec does not.  With out not
 * NULL the program's stdout is a pipe read through *out. */
pid_t tt_spawn(char *const argv[], int keep_fd, FILE **out);
/* The next line read from f must be `want` (with its newline). */
void tt_expect_line(FILE *f, const char *want);
/* A helper program of the integration suite (race_helper.c,
 * ordering_helper.c) started by tt_spawn(argv, gate_fd, out): it opens the
 * store, says "ready", and acts once gate_fd reaches end of file (close
 * the write end of the gate's pipe to let it go).  Returns once it is
 * ready. */
pid_t tt_spawn_ready(char *const argv[], int gate_fd, FILE **out);
/* race_helper's answer, "<rc> <task id or ->": returns rc, the id to id. */
int tt_race_answer(FILE *f, char id[21]);
/* Wait for the child and assert it exited with status 0. */
void tt_reap(pid_t pid);

/* ---- running ------------------------------------------------------------------ */

/* Run a suite and return the process exit code. */
int tt_run(Suite *s);
/* Add test fn to suite s in a TCase of its own, named after it. */
#define tt_add(s, fn) do { \
	TCase *tc_ = tcase_create(#fn); \
	tcase_add_test(tc_, fn); \
	suite_add_tcase((s), tc_); \
} while (0)
/* Run the n tests as suite `name`, each in a TCase of its own named after
 * it (one behaviour per TCase), inside the checked fixture setup/teardown
 * when they are not NULL; returns the process exit code (77, skipped,
 * when every test is NULL: tt_lmdb_only). */
int tt_run_tests(const char *name, const TTest *const tests[], size_t n,
                 void (*setup)(void), void (*teardown)(void));

/* The main() of a test program: the suite's name, then its tests; with
 * TT_STORE_MAIN, each test runs in TT_STORE_FIXTURE's fixture. */
#define TT_MAIN(name, ...) TT_MAIN_FIXTURE(name, NULL, NULL, __VA_ARGS__)
#define TT_STORE_MAIN(name, ...) \
	TT_MAIN_FIXTURE(name, tt_store_setup, tt_store_teardown, __VA_ARGS__)
#define TT_MAIN_FIXTURE(name, setup, teardown, ...) \
	int main(void) \
	{ \
		const TTest *const tests_[] = { __VA_ARGS__ }; \
		return tt_run_tests((name), tests_, sizeof(tests_) / sizeof(tests_[0]), \
		                    (setup), (teardown)); \
	}

#endif
