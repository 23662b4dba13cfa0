/* Helpers shared by the Check suites. */
#ifndef TM_TEST_COMMON_H
#define TM_TEST_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <cjson/cJSON.h>

#include "taskmgr.h"

/* A fresh temporary directory for one test (malloc'd: free it after
 * tt_rmdir() removed the directory). */
char *tt_tmpdir(void);
void tt_rmdir(const char *dir);

/* Open a no-sync store in a fresh directory with `workers` threads. */
tm_manager *tt_open(const char *dir, unsigned workers);
/* Register name with the given flags and no handler (external worker). */
void tt_register(tm_manager *tm, const char *name, unsigned flags);

/* Parse JSON text (ck_assert on failure), then free the text with tm_free. */
cJSON *tt_json(char *text);
/* Trigger name with body; returns the new task id (static buffer per call
 * site is the caller's: copies into id). */
void tt_trigger(tm_manager *tm, const char *name, const char *body, char id[21]);
/* Status string of a task (private get). */
const char *tt_status(tm_manager *tm, const char *name, const char *id, char buf[32]);

/* Wait up to `seconds` for pred(arg) to be true, polling every millisecond:
 * for conditions another thread or process makes true. */
int tt_wait(int (*pred)(void *arg), void *arg, double seconds);

/* tm_get's text of a task (ck_assert on failure); free it with tm_free. */
char *tt_get(tm_manager *tm, const char *name, const char *id, unsigned flags);
/* Number of tasks of name, counted through every tm_list_recent page. */
int tt_count(tm_manager *tm, const char *name);
/* Set this thread's message to "", so a test can see a call leave one. */
void tt_clear_error(void);

/* Run a suite and return the process exit code. */
int tt_run(Suite *s);

/* Add test fn to suite s in a TCase of its own, named after it. */
#define tt_add(s, fn) do { \
	TCase *tc_ = tcase_create(#fn); \
	tcase_add_test(tc_, fn); \
	suite_add_tcase((s), tc_); \
} while (0)

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

#endif
