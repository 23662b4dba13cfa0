/* Pipelines (doc/runtime.md, "Pipelines"): a task whose name has a `then`
 * is followed, when it COMPLETES, by a task of that name, created in the
 * write that records the completion, with the finished task's
 * details.output as context_task, create_reason "after <name> <id>" and
 * links both ways (details.after, details.then).  Nothing follows a FAILED
 * or CANCELLED task; what cannot follow is a warning on the finished task;
 * three processes completing the same tasks make one next task each. */
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "rt.h"

static struct {
	atomic_int runs;
	atomic_int output_rc[5];
} h;

/* ---- helpers --------------------------------------------------------------- */

static tm_job_def then_def(const char *name, const char *then,
                           tm_status (*run)(tm_job *, void *), void *user)
{
	tm_job_def d = rt_def(name, run, user);

	d.then = then;
	return d;
}

static void reg(tm_manager *tm, const char *name, const char *then)
{
	tm_job_def d = then_def(name, then, NULL, NULL);

	ck_assert_ok(tm_register(tm, &d));
}

/* details.<key>.<field> of a parsed task, or "". */
static const char *link_of(const cJSON *task, const char *key, const char *field)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(tt_detail(task, key), field);

	return cJSON_IsString(v) ? v->valuestring : "";
}

/* Whether one of the task's warnings begins with prefix. */
static int has_warning_starting(const cJSON *task, const char *prefix)
{
	const cJSON *w;

	cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(task, "warnings"))
		if (cJSON_IsString(w) && strncmp(w->valuestring, prefix, strlen(prefix)) == 0)
			return 1;
	return 0;
}

/* The next task of the finished task id of name (its details.then), which
 * must exist, be of next, and link back: parsed, to cJSON_Delete. */
static cJSON *next_of(tm_manager *tm, const char *name, const char *id, const char *next)
{
	cJSON *a = tt_task(tm, name, id, 0), *b;
	char reason[128];

	ck_assert_str_eq(rt_status_of(a), "COMPLETED");
	ck_assert_str_eq(link_of(a, "then", "name"), next);
	b = tt_task(tm, next, link_of(a, "then", "task_id"), 0);
	snprintf(reason, sizeof(reason), "after %s %s", name, id);
	ck_assert_str_eq(rt_detail_str(b, "create_reason"), reason);
	ck_assert_str_eq(link_of(b, "after", "name"), name);
	ck_assert_str_eq(link_of(b, "after", "task_id"), id);
	cJSON_Delete(a);
	return b;
}

static void assert_payload(const cJSON *task, const char *json)
{
	cJSON *want = tt_parse(json);

	ck_assert_msg(cJSON_Compare(tt_detail(task, "payload"), want, 1),
	              "payload is %s, expected %s",
	              cJSON_PrintUnformatted(tt_detail(task, "payload")), json);
	cJSON_Delete(want);
}

/* ---- handlers ---------------------------------------------------------------- */

/* An output over a quarter of max_details_bytes (the default's: 64 KiB). */
static int over_the_share(tm_job *job)
{
	static char big[70 * 1024];

	memcpy(big, "{\"x\": \"", 7);
	memset(big + 7, 'x', sizeof(big) - 10);
	memcpy(big + sizeof(big) - 3, "\"}", 3);
	return tm_job_output(job, big);
}

static tm_status output_items(tm_job *job, void *user)
{
	(void)user;
	atomic_fetch_add(&h.runs, 1);
	/* Refused: not an object, not JSON, no text; and the output is the
	 * last one set. */
	atomic_store(&h.output_rc[0], tm_job_output(job, "[1, 2]"));
	atomic_store(&h.output_rc[1], tm_job_output(job, "{"));
	atomic_store(&h.output_rc[2], tm_job_output(job, NULL));
	atomic_store(&h.output_rc[4], over_the_share(job));
	tm_job_output(job, "{\"table\": \"old\"}");
	atomic_store(&h.output_rc[3], tm_job_output(job, "{\"table\": \"items.csv\", \"rows\": 3}"));
	return TM_COMPLETED;
}

/* Each step's output: its payload's step plus one. */
static tm_status step(tm_job *job, void *user)
{
	cJSON *p = cJSON_Parse(tm_job_payload(job));
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(p, "step");
	char out[64];

	(void)user;
	snprintf(out, sizeof(out), "{\"step\": %d}", cJSON_IsNumber(s) ? s->valueint + 1 : 1);
	cJSON_Delete(p);
	tm_job_output(job, out);
	return TM_COMPLETED;
}

/* The first attempt sets an output and fails; the second completes
 * without one. */
static tm_status output_then_fail(tm_job *job, void *user)
{
	(void)user;
	if (tm_job_attempt(job) == 1) {
		tm_job_output(job, "{\"stale\": true}");
		return tm_job_fail(job, "first attempt");
	}
	return TM_COMPLETED;
}

static int refuse(const char *context_json, void *user)
{
	(void)context_json;
	(void)user;
	return tm_errorf(TM_EWRONG_DATA, "refused by the hook");
}

/* ---- what follows a completed task ---------------------------------------- */

START_TEST(completed_task_is_followed_by_the_next_with_its_output)
{
	char *dir, id[21], plain[21];
	tm_manager *tm = rt_open_tmp(&dir, 1);
	tm_job_def a = then_def("import", "fit", output_items, NULL);
	tm_job_def quiet = then_def("quiet", "fit", rt_complete, NULL);
	cJSON *b;

	memset(&h, 0, sizeof(h));
	reg(tm, "fit", NULL); /* no handler here: the next task waits */
	ck_assert_ok(tm_register(tm, &a));
	ck_assert_ok(tm_register(tm, &quiet));
	tt_trigger(tm, "import", "{\"context_task\": {\"table\": \"in.csv\"}, "
	           "\"refresh_token\": \"tok\"}", id);
	rt_await_status(tm, "import", id, "COMPLETED");
	ck_assert_err(atomic_load(&h.output_rc[0]), TM_EWRONG_DATA);
	ck_assert_err(atomic_load(&h.output_rc[1]), TM_EWRONG_DATA);
	ck_assert_err(atomic_load(&h.output_rc[2]), TM_EINVAL);
	ck_assert_err(atomic_load(&h.output_rc[4]), TM_EWRONG_DATA);
	ck_assert_ok(atomic_load(&h.output_rc[3]));

	b = next_of(tm, "import", id, "fit");
	ck_assert_str_eq(rt_status_of(b), "REQUEST_SENT");
	assert_payload(b, "{\"table\": \"items.csv\", \"rows\": 3}");
	ck_assert_int_eq(rt_n_warnings(b), 0);
	cJSON_Delete(b);
	b = tt_task(tm, "import", id, 0);
	ck_assert_int_eq(rt_n_warnings(b), 0);
	cJSON_Delete(b);

	/* No output: the next task's context_task is {}. */
	tt_trigger(tm, "quiet", NULL, plain);
	rt_await_status(tm, "quiet", plain, "COMPLETED");
	b = next_of(tm, "quiet", plain, "fit");
	assert_payload(b, "{}");
	cJSON_Delete(b);
	ck_assert_int_eq(tt_count(tm, "fit"), 2);
	/* The links are the library's: no patch writes them. */
	tt_trigger(tm, "fit", NULL, plain);
	ck_assert_err(tm_patch(tm, "fit", plain, "{\"details\": {\"after\": {}}}", NULL),
	              TM_EWRONG_DATA);
	ck_assert_err(tm_patch(tm, "fit", plain, "{\"details\": {\"then\": 1}}", NULL),
	              TM_EWRONG_DATA);
	/* Counted as triggers of the next name. */
	rt_await_metric(tm, "taskmgr_triggers_total{name=\"fit\"}", 3);
	tt_assert_check(tm, 5);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(failed_and_cancelled_tasks_are_followed_by_nothing)
{
	char *dir, id[21];
	tm_status fail = TM_FAILED, cancel = TM_CANCELLED;
	tm_manager *tm = rt_open_tmp(&dir, 1);
	tm_job_def fails = then_def("fails", "next", rt_answer, &fail);
	tm_job_def cancels = then_def("cancels", "next", rt_answer, &cancel);

	reg(tm, "next", NULL);
	reg(tm, "ext", "next");
	ck_assert_ok(tm_register(tm, &fails));
	ck_assert_ok(tm_register(tm, &cancels));
	tt_trigger(tm, "fails", NULL, id);
	rt_await_status(tm, "fails", id, "FAILED");
	tt_trigger(tm, "cancels", NULL, id);
	rt_await_status(tm, "cancels", id, "CANCELLED");
	tt_task_in(tm, "ext", "FAILED", id);
	tt_task_in(tm, "ext", "CANCELLED", id);
	tt_trigger(tm, "ext", NULL, id);
	rt_assert_cancel_gives(tm, "ext", id, "CANCELLED");
	ck_assert_int_eq(tt_count(tm, "next"), 0);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(external_worker_completing_by_patch_is_followed)
{
	char *dir, id[21], again[21], *out = NULL;
	tm_manager *tm = rt_open_tmp(&dir, 0);
	cJSON *b;

	reg(tm, "ext", "next");
	reg(tm, "next", NULL);
	tt_trigger(tm, "ext", NULL, id);
	ck_assert_ok(tm_patch(tm, "ext", id, "{\"status\": \"RUNNING\"}", NULL));
	ck_assert_ok(tm_patch(tm, "ext", id, "{\"status\": \"COMPLETED\", "
	                      "\"details\": {\"output\": {\"table\": \"t\"}}}", &out));
	/* The answer shows the completed task with its link. */
	b = tt_json(out);
	ck_assert_str_eq(link_of(b, "then", "name"), "next");
	cJSON_Delete(b);
	b = next_of(tm, "ext", id, "next");
	assert_payload(b, "{\"table\": \"t\"}");
	cJSON_Delete(b);
	/* Completing it again changes nothing, and makes no other task. */
	ck_assert_ok(tm_patch(tm, "ext", id, "{\"status\": \"COMPLETED\"}", NULL));
	ck_assert_ok(tm_patch(tm, "ext", id, "{\"completed\": true}", NULL));
	ck_assert_int_eq(tt_count(tm, "next"), 1);
	/* "completed": true is a completion too, straight from REQUEST_SENT. */
	tt_trigger(tm, "ext", NULL, again);
	ck_assert_ok(tm_patch(tm, "ext", again, "{\"completed\": true}", NULL));
	b = next_of(tm, "ext", again, "next");
	assert_payload(b, "{}");
	cJSON_Delete(b);
	ck_assert_int_eq(tt_count(tm, "next"), 2);
	tt_assert_check(tm, 4);
	tt_close_tmp(tm, dir);
}
END_TEST

/* ---- the next task is in the write that completes -------------------------- */

/* Poll the task until it is first seen COMPLETED; then, at once, its next
 * task must be there, and at least n_next tasks of next in all (the tasks
 * completed before it were followed too). */
static void assert_seen_together(tm_manager *tm, const char *name, const char *id,
                                 const char *next, int n_next)
{
	double end = rt_mono() + RT_DEADLINE;
	char buf[32];

	while (strcmp(tt_status(tm, name, id, buf), "COMPLETED") != 0)
		ck_assert_msg(rt_mono() < end, "task %s never completed (it is %s)", id, buf);
	ck_assert_int_ge(tt_count(tm, next), n_next);
	cJSON_Delete(next_of(tm, name, id, next));
}

struct patcher {
	tm_manager *tm;
	char (*ids)[21];
	int n;
};

static void *patch_all(void *arg)
{
	struct patcher *p = arg;

	for (int i = 0; i < p->n; i++)
		if (tm_patch(p->tm, "ext", p->ids[i], "{\"status\": \"COMPLETED\"}", NULL) != TM_OK)
			return (void *)1;
	return NULL;
}

#define TOGETHER 20

START_TEST(a_read_that_sees_the_completion_sees_the_next_task)
{
	char *dir, ids[TOGETHER][21];
	tm_manager *tm = rt_open_tmp(&dir, 2);
	tm_job_def a = then_def("a", "b", rt_complete, NULL);
	struct patcher p = { tm, ids, TOGETHER };
	pthread_t th;
	void *rc;

	ck_assert_ok(tm_register(tm, &a));
	reg(tm, "b", NULL);
	reg(tm, "ext", "b2");
	reg(tm, "b2", NULL);
	/* A handler's outcome. */
	for (int i = 0; i < TOGETHER; i++) {
		tt_trigger(tm, "a", NULL, ids[i]);
		assert_seen_together(tm, "a", ids[i], "b", i + 1);
	}
	/* An external worker's patch, on another thread. */
	for (int i = 0; i < TOGETHER; i++)
		tt_trigger(tm, "ext", NULL, ids[i]);
	ck_assert_int_eq(pthread_create(&th, NULL, patch_all, &p), 0);
	for (int i = 0; i < TOGETHER; i++)
		assert_seen_together(tm, "ext", ids[i], "b2", i + 1);
	pthread_join(th, &rc);
	ck_assert_ptr_null(rc);
	tt_close_tmp(tm, dir);
}
END_TEST

/* ---- what cannot follow: a warning on the finished task ------------------- */

START_TEST(exclusive_next_with_an_active_task_gets_a_warning_not_a_task)
{
	char *dir, busy[21], id[21];
	tm_manager *tm = rt_open_tmp(&dir, 0);
	tm_job_def next = rt_def("next", NULL, NULL);
	cJSON *a;

	next.flags = TM_JOB_EXCLUSIVE;
	ck_assert_ok(tm_register(tm, &next));
	reg(tm, "ext", "next");
	tt_trigger(tm, "next", NULL, busy);
	tt_trigger(tm, "ext", NULL, id);
	ck_assert_ok(tm_patch(tm, "ext", id, "{\"status\": \"COMPLETED\"}", NULL));
	a = tt_task(tm, "ext", id, 0);
	ck_assert_str_eq(rt_status_of(a), "COMPLETED");
	ck_assert_msg(has_warning_starting(a, "then: no task of next was created: "),
	              "no warning in %s", cJSON_PrintUnformatted(a));
	ck_assert_ptr_null(tt_detail(a, "then"));
	cJSON_Delete(a);
	ck_assert_int_eq(tt_count(tm, "next"), 1);
	/* Once the next name is free, a completion is followed again. */
	rt_assert_cancel_gives(tm, "next", busy, "CANCELLED");
	tt_trigger(tm, "ext", NULL, id);
	ck_assert_ok(tm_patch(tm, "ext", id, "{\"completed\": true}", NULL));
	cJSON_Delete(next_of(tm, "ext", id, "next"));
	ck_assert_int_eq(tt_count(tm, "next"), 2);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(next_name_not_registered_here_gets_a_warning_not_a_task)
{
	char *dir, id[21];
	tm_manager *tm = rt_open_tmp(&dir, 0);
	cJSON *a;

	reg(tm, "ext", "elsewhere");
	tt_trigger(tm, "ext", NULL, id);
	ck_assert_ok(tm_patch(tm, "ext", id, "{\"status\": \"COMPLETED\"}", NULL));
	a = tt_task(tm, "ext", id, 0);
	ck_assert_str_eq(rt_status_of(a), "COMPLETED");
	ck_assert(rt_has_warning(a, "then: no task of elsewhere was created: the name "
	                         "is not registered in the process that completed "
	                         "this task"));
	cJSON_Delete(a);
	reg(tm, "elsewhere", NULL);
	ck_assert_int_eq(tt_count(tm, "elsewhere"), 0);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(output_that_is_not_an_object_gives_an_empty_context_and_a_warning)
{
	char *dir, id[21];
	tm_manager *tm = rt_open_tmp(&dir, 0);
	cJSON *a, *b;

	reg(tm, "ext", "next");
	reg(tm, "next", NULL);
	tt_trigger(tm, "ext", NULL, id);
	ck_assert_ok(tm_patch(tm, "ext", id, "{\"status\": \"COMPLETED\", "
	                      "\"details\": {\"output\": [\"items.csv\"]}}", NULL));
	b = next_of(tm, "ext", id, "next");
	assert_payload(b, "{}");
	cJSON_Delete(b);
	a = tt_task(tm, "ext", id, 0);
	ck_assert(rt_has_warning(a, "then: details.output is not a JSON object; the "
	                         "next task's context_task is {}"));
	cJSON_Delete(a);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(next_task_over_the_limits_gets_a_warning_not_a_task)
{
	tm_options o;
	char *dir = tt_tmpdir(), id[21], body[512];
	tm_manager *tm;
	cJSON *a;

	/* The next task's details hold the output and the library's keys,
	 * its link back among them: an output that nearly fills the finished
	 * task's details (6 keys of its own and the output's 13) does not fit
	 * in the next task's (8 and 13). */
	rt_options(&o, dir, 0);
	o.max_keys = 20;
	tm = rt_open_with(&o);
	reg(tm, "ext", "next");
	reg(tm, "next", NULL);
	tt_trigger(tm, "ext", NULL, id);
	strcpy(body, "{\"status\": \"COMPLETED\", \"details\": {\"output\": {");
	for (int k = 0; k < 13; k++)
		sprintf(body + strlen(body), "%s\"k%d\": %d", k ? ", " : "", k, k);
	strcat(body, "}}}");
	ck_assert_ok(tm_patch(tm, "ext", id, body, NULL));
	a = tt_task(tm, "ext", id, 0);
	ck_assert_str_eq(rt_status_of(a), "COMPLETED");
	ck_assert_msg(has_warning_starting(a, "then: no task of next was created: "),
	              "no warning in %s", cJSON_PrintUnformatted(a));
	cJSON_Delete(a);
	ck_assert_int_eq(tt_count(tm, "next"), 0);
	tt_close_tmp(tm, dir);
}
END_TEST

/* ---- what the next task is -------------------------------------------------- */

START_TEST(chain_runs_through)
{
	char *dir, id[21];
	tm_manager *tm = rt_open_tmp(&dir, 2);
	tm_job_def a = then_def("s1", "s2", step, NULL);
	tm_job_def b = then_def("s2", "s3", step, NULL);
	tm_job_def c = then_def("s3", NULL, step, NULL);
	const char *names[] = { "s1", "s2", "s3" };
	cJSON *t;

	/* Registered last to first: a name's `then` may come before it. */
	ck_assert_ok(tm_register(tm, &c));
	ck_assert_ok(tm_register(tm, &b));
	ck_assert_ok(tm_register(tm, &a));
	tt_trigger(tm, "s1", "{\"context_task\": {\"step\": 1}}", id);
	for (int i = 0; i < 2; i++) {
		char want[32];

		rt_await_status(tm, names[i], id, "COMPLETED");
		t = next_of(tm, names[i], id, names[i + 1]);
		snprintf(want, sizeof(want), "{\"step\": %d}", i + 2);
		assert_payload(t, want);
		snprintf(id, sizeof(id), "%s", cJSON_GetObjectItemCaseSensitive(t, "task_id")->valuestring);
		cJSON_Delete(t);
	}
	rt_await_status(tm, "s3", id, "COMPLETED");
	t = tt_task(tm, "s3", id, 0);
	ck_assert_ptr_null(tt_detail(t, "then"));
	cJSON_Delete(t);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(next_task_skips_the_validate_hook_and_waits_while_paused)
{
	char *dir, id[21];
	tm_manager *tm = rt_open_tmp(&dir, 0);
	tm_job_def next = rt_def("next", NULL, NULL);
	cJSON *b;

	next.validate = refuse;
	ck_assert_ok(tm_register(tm, &next));
	reg(tm, "ext", "next");
	ck_assert_err(tm_trigger(tm, "next", NULL, 0, NULL), TM_EWRONG_DATA);
	ck_assert_ok(tm_pause(tm, "next"));
	tt_trigger(tm, "ext", NULL, id);
	ck_assert_ok(tm_patch(tm, "ext", id, "{\"completed\": true}", NULL));
	b = next_of(tm, "ext", id, "next");
	ck_assert_str_eq(rt_status_of(b), "REQUEST_SENT");
	cJSON_Delete(b);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(each_attempt_starts_without_an_output)
{
	char *dir, id[21];
	tm_manager *tm = rt_open_tmp(&dir, 1);
	tm_job_def a = then_def("a", "b", output_then_fail, NULL);
	cJSON *b;

	a.max_attempts = 2;
	a.retry_backoff_s = 0.001;
	ck_assert_ok(tm_register(tm, &a));
	reg(tm, "b", NULL);
	tt_trigger(tm, "a", NULL, id);
	rt_await_status(tm, "a", id, "COMPLETED");
	b = next_of(tm, "a", id, "b");
	assert_payload(b, "{}");
	cJSON_Delete(b);
	tt_close_tmp(tm, dir);
}
END_TEST

/* ---- cycles ----------------------------------------------------------------- */

static int reg_rc(tm_manager *tm, const char *name, const char *then)
{
	tm_job_def d = then_def(name, then, NULL, NULL);

	return tm_register(tm, &d);
}

START_TEST(a_cycle_is_refused_at_registration_in_either_order)
{
	char *dir;
	tm_manager *tm = rt_open_tmp(&dir, 0);

	/* Itself. */
	ck_assert_err(reg_rc(tm, "self", "self"), TM_EINVAL);
	ck_assert_ptr_nonnull(strstr(tm_last_error(), "cycle"));
	/* Two names, the first registered names a second not yet known. */
	ck_assert_ok(reg_rc(tm, "a", "b"));
	ck_assert_err(reg_rc(tm, "b", "a"), TM_EINVAL);
	ck_assert_ptr_nonnull(strstr(tm_last_error(), "cycle"));
	/* The other order: the second name first. */
	ck_assert_ok(reg_rc(tm, "y", "x"));
	ck_assert_err(reg_rc(tm, "x", "y"), TM_EINVAL);
	/* A longer chain, closed by its middle or by its end. */
	ck_assert_ok(reg_rc(tm, "c1", "c2"));
	ck_assert_ok(reg_rc(tm, "c3", "c4"));
	ck_assert_ok(reg_rc(tm, "c4", "c1"));
	ck_assert_err(reg_rc(tm, "c2", "c3"), TM_EINVAL); /* c1 c2 c3 c4 c1 */
	ck_assert_ok(reg_rc(tm, "c2", "c5"));           /* refused left nothing */
	ck_assert_err(reg_rc(tm, "c5", "c3"), TM_EINVAL); /* c1 c2 c5 c3 c4 c1 */
	/* Refused definitions registered nothing; without `then` they go in. */
	ck_assert_ok(reg_rc(tm, "self", NULL));
	ck_assert_ok(reg_rc(tm, "b", NULL));
	ck_assert_ok(reg_rc(tm, "x", "end"));
	ck_assert_ok(reg_rc(tm, "c5", NULL));
	/* Not a task name. */
	ck_assert_err(reg_rc(tm, "d", "not a name"), TM_EINVAL);
	ck_assert_err(reg_rc(tm, "d", ""), TM_EINVAL);
	tt_close_tmp(tm, dir);
}
END_TEST

/* ---- several processes: exactly one next task per completion ------------- */

#define RACE_N 30

static tm_job_def race_defs[4];

static int race_setup(tm_manager *tm, void *arg)
{
	(void)arg;
	for (int i = 0; i < 4; i++)
		if (tm_register(tm, &race_defs[i]) != TM_OK)
			return 1;
	return 0;
}

/* The ids of every task of name (at most n), read page by page. */
static int list_ids(tm_manager *tm, const char *name, char ids[][21], int n)
{
	int k = 0;

	for (int page = 1; k < n; page++) {
		char *out = NULL;
		cJSON *j, *t;
		int more;

		if (tm_list_recent(tm, name, page, 64, 0, &out) != TM_OK)
			return -1;
		j = cJSON_Parse(out);
		tm_free(out);
		cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(j, "tasks"))
			if (k < n)
				snprintf(ids[k++], 21, "%s",
				         cJSON_GetObjectItemCaseSensitive(t, "task_id")->valuestring);
		more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "has_next"));
		cJSON_Delete(j);
		if (!more)
			break;
	}
	return k;
}

static int all_completed(tm_manager *tm, const char *name)
{
	char *out = NULL;
	cJSON *j, *v;
	int done;

	if (tm_stats(tm, &out) != TM_OK)
		return 0;
	j = cJSON_Parse(out);
	tm_free(out);
	v = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "names"), name),
		"COMPLETED");
	done = cJSON_IsNumber(v) && v->valueint == RACE_N;
	cJSON_Delete(j);
	return done;
}

/* A peer: complete every task of "ext" (in its order: forward or
 * backward), racing the other processes, while its workers run tasks of
 * "a"; then wait until every task of "a" is done. */
static int race_peer(tm_manager *tm, void *arg)
{
	char ids[RACE_N][21];
	int n = list_ids(tm, "ext", ids, RACE_N), backward = arg != NULL;
	double end = rt_mono() + RT_DEADLINE;

	if (n != RACE_N)
		return 10;
	for (int i = 0; i < n; i++) {
		int rc = tm_patch(tm, "ext", ids[backward ? n - 1 - i : i],
		                  "{\"status\": \"COMPLETED\"}", NULL);

		if (rc != TM_OK)
			return 11;
	}
	while (!all_completed(tm, "a"))
		if (rt_mono() > end)
			return 12;
	return 0;
}

/* Every task of next follows exactly one task of ids, each a distinct one. */
static void assert_one_next_each(tm_manager *tm, const char *name, char ids[][21],
                                 const char *next)
{
	cJSON *all = tt_list_all(tm, next, 64, 0), *t;
	int seen[RACE_N] = { 0 };

	ck_assert_int_eq(cJSON_GetArraySize(all), RACE_N);
	cJSON_ArrayForEach(t, all) {
		const char *reason = rt_detail_str(t, "create_reason");
		int found = 0;

		for (int i = 0; i < RACE_N && !found; i++) {
			char want[64];

			snprintf(want, sizeof(want), "after %s %s", name, ids[i]);
			if (strcmp(reason, want) == 0) {
				ck_assert_msg(seen[i]++ == 0, "two tasks of %s %s", next, want);
				found = 1;
			}
		}
		ck_assert_msg(found, "task of %s with create_reason %s", next, reason);
	}
	cJSON_Delete(all);
}

START_TEST(three_processes_make_one_next_task_per_completion)
{
	char store[RT_PATH_MAX], *dir = rt_shared_dir(store, NULL);
	char a_ids[RACE_N][21], ext_ids[RACE_N][21];
	struct rt_peer peers[2];
	tm_options o;
	tm_manager *tm;

	race_defs[0] = then_def("a", "b", rt_complete, NULL);
	race_defs[1] = then_def("b", NULL, NULL, NULL);
	race_defs[2] = then_def("ext", "b2", NULL, NULL);
	race_defs[3] = then_def("b2", NULL, NULL, NULL);
	rt_options(&o, store, 2);
	o.lease_ms = 10000; /* no run is lost here: a loaded machine is no reason */
	rt_peer_start(&peers[0], &o, race_setup, race_peer, NULL);
	rt_peer_start(&peers[1], &o, race_setup, race_peer, (void *)1);
	tm = rt_open_with(&o);
	ck_assert_int_eq(race_setup(tm, NULL), 0);
	for (int i = 0; i < RACE_N; i++)
		tt_trigger(tm, "ext", NULL, ext_ids[i]);
	rt_peer_tell(&peers[0], "go");
	rt_peer_tell(&peers[1], "go");
	for (int i = 0; i < RACE_N; i++) {
		tt_trigger(tm, "a", NULL, a_ids[i]);
		ck_assert_ok(tm_patch(tm, "ext", ext_ids[i], "{\"status\": \"COMPLETED\"}", NULL));
	}
	for (int i = 0; i < RACE_N; i++)
		rt_await_status(tm, "a", a_ids[i], "COMPLETED");
	rt_peer_reap(&peers[0]);
	rt_peer_reap(&peers[1]);
	assert_one_next_each(tm, "a", a_ids, "b");
	assert_one_next_each(tm, "ext", ext_ids, "b2");
	tt_assert_check(tm, 4 * RACE_N);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

TT_MAIN("runtime_pipeline",
	completed_task_is_followed_by_the_next_with_its_output,
	failed_and_cancelled_tasks_are_followed_by_nothing,
	external_worker_completing_by_patch_is_followed,
	a_read_that_sees_the_completion_sees_the_next_task,
	exclusive_next_with_an_active_task_gets_a_warning_not_a_task,
	next_name_not_registered_here_gets_a_warning_not_a_task,
	output_that_is_not_an_object_gives_an_empty_context_and_a_warning,
	next_task_over_the_limits_gets_a_warning_not_a_task,
	chain_runs_through,
	next_task_skips_the_validate_hook_and_waits_while_paused,
	each_attempt_starts_without_an_output,
	a_cycle_is_refused_at_registration_in_either_order,
	three_processes_make_one_next_task_per_completion)
