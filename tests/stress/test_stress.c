/* The runtime under load: two processes sharing a store run every task
 * exactly once; an exclusive name hammered by threads never has two active
 * tasks; many tasks with every outcome and concurrent cancels all end as
 * their handler decided; SIGKILL under load loses no acknowledged task. */
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rt.h"

static char runs_path[512];

/* All task ids of name, through every page. */
static char (*all_ids(tm_manager *tm, const char *name, int *n))[21]
{
	int cap = 64;
	char (*ids)[21] = malloc((size_t)cap * 21);

	*n = 0;
	for (int page = 1;; page++) {
		char *out = NULL;
		cJSON *j, *t;
		int more;

		ck_assert_ok(tm_list_recent(tm, name, page, 64, 0, &out));
		j = tt_json(out);
		cJSON_ArrayForEach(t, cJSON_GetObjectItem(j, "tasks")) {
			if (*n == cap)
				ids = realloc(ids, (size_t)(cap *= 2) * 21);
			snprintf(ids[(*n)++], 21, "%s", cJSON_GetObjectItem(t, "task_id")->valuestring);
		}
		more = cJSON_IsTrue(cJSON_GetObjectItem(j, "has_next"));
		cJSON_Delete(j);
		if (!more)
			return ids;
	}
}

/* ---- two processes, one store -------------------------------------------- */

#define PER_CHILD 100

static tm_status record_run(tm_job *job, void *user)
{
	char line[64];
	struct timespec ms = { 0, 1000000 };

	(void)user;
	snprintf(line, sizeof(line), "%s %d", tm_job_task_id(job), (int)getpid());
	rt_append(runs_path, line);
	snprintf(line, sizeof(line), "{\"pid\": %d}", (int)getpid());
	tm_job_progress(job, line);
	nanosleep(&ms, NULL);
	return TM_COMPLETED;
}

static int child_completed(tm_manager *tm)
{
	char *out = NULL;
	cJSON *j;
	int n = -1;

	if (tm_stats(tm, &out) != TM_OK)
		return -1;
	j = cJSON_Parse(out);
	tm_free(out);
	{
		const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(
			cJSON_GetObjectItem(j, "names"), "job"), "COMPLETED");
		if (cJSON_IsNumber(v))
			n = v->valueint;
	}
	cJSON_Delete(j);
	return n;
}

static void worker_process(const char *store, int ready_fd, int go_fd)
{
	tm_options o;
	tm_manager *tm;
	tm_job_def d = rt_def("job", record_run, NULL);
	struct timespec ms = { 0, 5000000 };
	char buf[16];
	double end;

	rt_options(&o, store, 2);
	tm = rt_child_open(&o);
	if (tm == NULL || tm_register(tm, &d) != TM_OK)
		_exit(3);
	rt_send(ready_fd, "ready");
	if (!rt_recv(go_fd, buf, sizeof(buf)))
		_exit(4);
	for (int i = 0; i < PER_CHILD; i++)
		if (tm_trigger(tm, "job", NULL, 0, NULL) != TM_OK)
			_exit(5);
	end = rt_mono() + 60;
	while (child_completed(tm) < 2 * PER_CHILD) {
		if (rt_mono() > end)
			_exit(6);
		nanosleep(&ms, NULL);
	}
	tm_close(tm);
	_exit(0);
}

START_TEST(two_processes_run_each_task_exactly_once)
{
	char *dir = tt_tmpdir(), store[512], (*ids)[21], line[64];
	int ready[2][2], go[2][2], n, by[2] = { 0, 0 };
	pid_t pids[2];
	tm_manager *tm;
	tm_job_def d = rt_def("job", record_run, NULL);

	snprintf(store, sizeof(store), "%s/store", dir);
	snprintf(runs_path, sizeof(runs_path), "%s/runs", dir);
	for (int c = 0; c < 2; c++) {
		ck_assert_int_eq(pipe(ready[c]), 0);
		ck_assert_int_eq(pipe(go[c]), 0);
		pids[c] = rt_fork();
		if (pids[c] == 0) {
			close(ready[c][0]);
			close(go[c][1]);
			worker_process(store, ready[c][1], go[c][0]);
		}
		close(ready[c][1]);
		close(go[c][0]);
	}
	for (int c = 0; c < 2; c++)
		ck_assert_msg(rt_recv(ready[c][0], line, sizeof(line)), "child %d did not start", c);
	for (int c = 0; c < 2; c++)
		rt_send(go[c][1], "go");
	for (int c = 0; c < 2; c++)
		rt_reap(pids[c]);

	/* Both children are gone: open the store and audit it. */
	tm = rt_open(store, 0);
	ck_assert_ok(tm_register(tm, &d));
	ids = all_ids(tm, "job", &n);
	ck_assert_int_eq(n, 2 * PER_CHILD);
	ck_assert_int_eq(rt_file_lines(runs_path), 2 * PER_CHILD);
	for (int i = 0; i < n; i++) {
		cJSON *task = rt_task(tm, "job", ids[i]);
		const cJSON *pid = cJSON_GetObjectItem(cJSON_GetObjectItem(
			cJSON_GetObjectItem(task, "details"), "progress"), "pid");
		int c;

		ck_assert_str_eq(rt_status_of(task), "COMPLETED");
		ck_assert_int_eq((int)rt_detail_num(task, "attempts"), 1);
		ck_assert_int_eq(rt_file_count(runs_path, ids[i]), 1);
		ck_assert(cJSON_IsNumber(pid));
		c = pid->valueint == (int)pids[0] ? 0 : 1;
		ck_assert_int_eq(pid->valueint, (int)pids[c]);
		snprintf(line, sizeof(line), "%s %d\n", ids[i], pid->valueint);
		ck_assert_int_eq(rt_file_count(runs_path, line), 1);
		by[c]++;
		cJSON_Delete(task);
	}
	printf("200 tasks: %d run by process %d, %d by process %d\n",
	       by[0], (int)pids[0], by[1], (int)pids[1]);
	ck_assert_msg(by[0] > 0 && by[1] > 0, "one process ran nothing");
	rt_assert_check_ok(tm);
	tm_close(tm);
	for (int c = 0; c < 2; c++) {
		close(ready[c][0]);
		close(go[c][1]);
	}
	free(ids);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

/* ---- an exclusive name hammered by threads ---------------------------------- */

#define THREADS 4
#define TRIES 300

static struct {
	tm_manager *tm;
	atomic_int active, max, runs, accepted, refused, other_errors, over;
	atomic_int stop;
} x;

static tm_status exclusive_run(tm_job *job, void *user)
{
	struct timespec pause = { 0, 300000 };
	int now = atomic_fetch_add(&x.active, 1) + 1, max = atomic_load(&x.max);

	(void)job;
	(void)user;
	while (now > max && !atomic_compare_exchange_weak(&x.max, &max, now))
		;
	atomic_fetch_add(&x.runs, 1);
	nanosleep(&pause, NULL);
	atomic_fetch_sub(&x.active, 1);
	return TM_COMPLETED;
}

static void *hammer(void *arg)
{
	struct timespec pause = { 0, 100000 };

	(void)arg;
	for (int i = 0; i < TRIES; i++) {
		int rc = tm_trigger(x.tm, "excl", NULL, 0, NULL);

		if (rc == TM_OK)
			atomic_fetch_add(&x.accepted, 1);
		else if (rc == TM_EALREADY_RUNNING)
			atomic_fetch_add(&x.refused, 1);
		else
			atomic_fetch_add(&x.other_errors, 1);
		nanosleep(&pause, NULL);
	}
	return NULL;
}

/* Samples the store: never more than one active task of the name. */
static void *watch(void *arg)
{
	(void)arg;
	while (!atomic_load(&x.stop)) {
		char *out = NULL;
		cJSON *j, *name;
		int active;

		if (tm_stats(x.tm, &out) != TM_OK) {
			atomic_fetch_add(&x.other_errors, 1);
			continue;
		}
		j = cJSON_Parse(out);
		tm_free(out);
		name = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "names"), "excl");
		active = cJSON_GetObjectItem(name, "REQUEST_SENT")->valueint +
		         cJSON_GetObjectItem(name, "RUNNING")->valueint +
		         cJSON_GetObjectItem(name, "CANCELLED_REQUESTED")->valueint;
		if (active > 1)
			atomic_fetch_add(&x.over, 1);
		cJSON_Delete(j);
	}
	return NULL;
}

static int all_done(void *p)
{
	tm_manager *tm = p;

	return rt_stat(tm, "excl", "COMPLETED") == atomic_load(&x.accepted);
}

START_TEST(exclusive_name_never_has_two_active)
{
	char *dir = tt_tmpdir();
	tm_manager *tm = rt_open(dir, 4);
	tm_job_def d = rt_def("excl", exclusive_run, NULL);
	pthread_t th[THREADS], watcher;

	memset(&x, 0, sizeof(x));
	x.tm = tm;
	d.flags = TM_JOB_EXCLUSIVE;
	ck_assert_ok(tm_register(tm, &d));
	ck_assert_int_eq(pthread_create(&watcher, NULL, watch, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, hammer, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	ck_assert_msg(tt_wait(all_done, tm, RT_DEADLINE), "accepted tasks did not all complete");
	atomic_store(&x.stop, 1);
	pthread_join(watcher, NULL);
	printf("exclusive: %d accepted, %d refused, at most %d handler(s) at once\n",
	       atomic_load(&x.accepted), atomic_load(&x.refused), atomic_load(&x.max));
	ck_assert_int_eq(atomic_load(&x.other_errors), 0);
	ck_assert_int_eq(atomic_load(&x.over), 0);
	ck_assert_int_eq(atomic_load(&x.max), 1);
	ck_assert_int_gt(atomic_load(&x.accepted), 0);
	ck_assert_int_eq(atomic_load(&x.runs), atomic_load(&x.accepted));
	ck_assert_int_eq(atomic_load(&x.accepted) + atomic_load(&x.refused), THREADS * TRIES);
	rt_assert_check_ok(tm);
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

/* ---- every outcome at once ------------------------------------------------ */

#define MIXED 300

static atomic_int mixed_runs[MIXED];

static int stop_asked(void *job)
{
	return tm_job_cancelled(job);
}

/* Payload {"k": k}; k % 5: 0 completes, 1 always fails (3 attempts), 2 fails
 * once then completes, 3 cancels itself, 4 waits for the test's cancel. */
static tm_status mixed_run(tm_job *job, void *user)
{
	cJSON *p = cJSON_Parse(tm_job_payload(job));
	int k = cJSON_GetObjectItem(p, "k")->valueint;

	(void)user;
	cJSON_Delete(p);
	atomic_fetch_add(&mixed_runs[k], 1);
	for (int i = 0; i < 20; i++) {
		char json[32];

		snprintf(json, sizeof(json), "{\"step\": %d}", i);
		tm_job_progress(job, json);
	}
	switch (k % 5) {
	case 0:
		return TM_COMPLETED;
	case 1:
		return tm_job_fail(job, "always %d", k);
	case 2:
		return tm_job_attempt(job) == 1 ? tm_job_fail(job, "once") : TM_COMPLETED;
	case 3:
		return TM_CANCELLED;
	default:
		tt_wait(stop_asked, job, 30);
		return TM_CANCELLED;
	}
}

START_TEST(every_outcome_under_load_ends_as_decided)
{
	static const char *want[5] = { "COMPLETED", "FAILED", "COMPLETED", "CANCELLED", "CANCELLED" };
	static const int attempts[5] = { 1, 3, 2, 1, -1 };
	char *dir = tt_tmpdir(), (*ids)[21] = calloc(MIXED, 21);
	tm_manager *tm = rt_open(dir, 4);
	tm_job_def d = rt_def("mixed", mixed_run, NULL);

	for (int k = 0; k < MIXED; k++)
		atomic_store(&mixed_runs[k], 0);
	d.max_attempts = 3;
	d.retry_backoff_s = 0.001;
	ck_assert_ok(tm_register(tm, &d));
	for (int k = 0; k < MIXED; k++) {
		char body[64];

		snprintf(body, sizeof(body), "{\"context_task\": {\"k\": %d}, "
		         "\"refresh_token\": \"t%d\"}", k, k);
		tt_trigger(tm, "mixed", body, ids[k]);
		if (k % 5 == 4) /* waiting or running: either way it ends CANCELLED */
			ck_assert_ok(tm_cancel(tm, "mixed", ids[k], NULL));
	}
	for (int k = 0; k < MIXED; k++) {
		cJSON *task;

		rt_await_status(tm, "mixed", ids[k], want[k % 5]);
		task = rt_task(tm, "mixed", ids[k]);
		if (attempts[k % 5] > 0) {
			ck_assert_int_eq((int)rt_detail_num(task, "attempts"), attempts[k % 5]);
			ck_assert_int_eq(atomic_load(&mixed_runs[k]), attempts[k % 5]);
		} else {
			ck_assert_int_le(atomic_load(&mixed_runs[k]), 1);
		}
		cJSON_Delete(task);
	}
	rt_assert_check_ok(tm);
	tm_close(tm);
	free(ids);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

/* ---- warnings written by the supervisor while the handler finishes ------- */

#define WARNED_TASKS 1000

static atomic_int warned_seq;

/* Warns every ~20 us for 0 to 1.8 ms, then returns: the final write lands
 * at every phase of the supervisor's 1 ms flushes. */
static tm_status warner(tm_job *job, void *user)
{
	int k = atomic_fetch_add(&warned_seq, 1), n = 0;
	double end = rt_mono() + (k % 7) * 0.0003;

	(void)user;
	do {
		double next = rt_mono() + 0.00002;

		tm_job_warn(job, "w %d", n++);
		while (rt_mono() < next)
			;
	} while (rt_mono() < end);
	return TM_COMPLETED;
}

/* Each warning is stored once, in order, however the supervisor's flushes
 * and the final write interleave (durable commits, so writes batch). */
START_TEST(warnings_are_stored_exactly_once)
{
	char *dir = tt_tmpdir(), (*ids)[21] = calloc(WARNED_TASKS, 21);
	tm_options o;
	tm_manager *tm;
	tm_job_def d = rt_def("warn", warner, NULL);
	int bad = 0;

	atomic_store(&warned_seq, 0);
	rt_options(&o, dir, 4);
	o.flags = 0;
	o.poll_ms = 1;
	o.progress_ms = 1;
	o.keep_count = 100000;
	tm = rt_open_with(&o);
	ck_assert_ok(tm_register(tm, &d));
	for (int i = 0; i < WARNED_TASKS; i++)
		tt_trigger(tm, "warn", NULL, ids[i]);
	for (int i = 0; i < WARNED_TASKS; i++) {
		cJSON *task, *w;
		int k = 0, ok = 1;

		rt_await_status(tm, "warn", ids[i], "COMPLETED");
		task = rt_task(tm, "warn", ids[i]);
		cJSON_ArrayForEach(w, cJSON_GetObjectItem(task, "warnings")) {
			char want[16];

			snprintf(want, sizeof(want), "w %d", k++);
			ok &= cJSON_IsString(w) && strcmp(w->valuestring, want) == 0;
		}
		if (!ok || k == 0) {
			char *text = cJSON_PrintUnformatted(cJSON_GetObjectItem(task, "warnings"));
			if (bad < 3)
				fprintf(stderr, "task %s: %.200s\n", ids[i], text);
			cJSON_free(text);
			bad++;
		}
		cJSON_Delete(task);
	}
	printf("warnings: %d of %d tasks with lost, repeated or reordered warnings\n",
	       bad, WARNED_TASKS);
	ck_assert_msg(bad == 0, "%d of %d tasks lost, repeated or reordered warnings",
	              bad, WARNED_TASKS);
	tm_close(tm);
	free(ids);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

/* ---- automatic triggers with three processes watching ---------------------- */

#define NOTIFIES 15
#define TICK_S 0.3

static tm_status auto_run(tm_job *job, void *user)
{
	(void)job;
	(void)user;
	return TM_COMPLETED;
}

static int register_auto(tm_manager *tm)
{
	tm_job_def t = rt_def("tick", auto_run, NULL), b = rt_def("batch", auto_run, NULL);

	t.interval_s = TICK_S;
	b.change_threshold = 10;
	return tm_register(tm, &t) || tm_register(tm, &b);
}

static void auto_process(const char *store, int ready_fd, int ctl_fd)
{
	tm_options o;
	tm_manager *tm;
	char buf[16];

	rt_options(&o, store, 1);
	tm = rt_child_open(&o);
	if (tm == NULL || register_auto(tm) != 0)
		_exit(3);
	rt_send(ready_fd, "ready");
	rt_recv(ctl_fd, buf, sizeof(buf));
	tm_close(tm);
	_exit(0);
}

struct count_wait {
	tm_manager *tm;
	const char *name;
	int n;
};

static int count_reached(void *p)
{
	struct count_wait *w = p;

	return tt_count(w->tm, w->name) >= w->n;
}

/* Every process decides, one write transaction creates: never twice. */
START_TEST(automatic_triggers_fire_once_across_processes)
{
	char *dir = tt_tmpdir(), store[512], buf[16];
	int ready[2][2], ctl[2][2], n;
	pid_t pids[2];
	tm_manager *tm;
	char (*ids)[21];
	double prev = 0;

	snprintf(store, sizeof(store), "%s/store", dir);
	for (int c = 0; c < 2; c++) {
		ck_assert_int_eq(pipe(ready[c]), 0);
		ck_assert_int_eq(pipe(ctl[c]), 0);
		pids[c] = rt_fork();
		if (pids[c] == 0) {
			close(ready[c][0]);
			close(ctl[c][1]);
			auto_process(store, ready[c][1], ctl[c][0]);
		}
		close(ready[c][1]);
		close(ctl[c][0]);
	}
	for (int c = 0; c < 2; c++)
		ck_assert_msg(rt_recv(ready[c][0], buf, sizeof(buf)), "child %d did not start", c);
	tm = rt_open(store, 1);
	ck_assert_int_eq(register_auto(tm), 0);
	for (int i = 0; i < NOTIFIES; i++) {
		struct count_wait w = { tm, "batch", i + 1 };

		ck_assert_ok(tm_notify(tm, "batch", 10));
		ck_assert_msg(tt_wait(count_reached, &w, RT_DEADLINE), "notify %d fired nothing", i);
	}
	{
		struct count_wait w = { tm, "tick", 4 };
		ck_assert_msg(tt_wait(count_reached, &w, RT_DEADLINE), "the interval never fired");
	}
	for (int c = 0; c < 2; c++) {
		rt_send(ctl[c][1], "stop");
		rt_reap(pids[c]);
	}
	rt_barrier(tm);

	ids = all_ids(tm, "batch", &n);
	ck_assert_msg(n == NOTIFIES, "%d changes of 10 fired %d tasks", NOTIFIES, n);
	for (int i = 0; i < n; i++) {
		cJSON *task = rt_task(tm, "batch", ids[i]);

		ck_assert_str_eq(rt_detail_str(task, "create_reason"),
		                 "automatic: 10 changes since last run");
		cJSON_Delete(task);
	}
	free(ids);
	ids = all_ids(tm, "tick", &n); /* newest first */
	for (int i = n - 1; i >= 0; i--) {
		cJSON *task = rt_task(tm, "tick", ids[i]);
		double start = cJSON_GetObjectItem(task, "start_time")->valuedouble;

		if (i < n - 1)
			ck_assert_msg(start - prev >= TICK_S, "interval fired twice: %.3f s apart",
			              start - prev);
		prev = start;
		cJSON_Delete(task);
	}
	printf("automatic: %d threshold tasks for %d notifies, %d interval tasks, "
	       "three processes\n", NOTIFIES, NOTIFIES, n);
	free(ids);
	rt_assert_check_ok(tm);
	tm_close(tm);
	for (int c = 0; c < 2; c++) {
		close(ready[c][0]);
		close(ctl[c][1]);
	}
	tt_rmdir(dir);
	free(dir);
}
END_TEST

/* ---- SIGKILL under load ------------------------------------------------------ */

#define ROUNDS 3
#define BURST 60

static tm_status short_run(tm_job *job, void *user)
{
	struct timespec ms = { 0, 2000000 };

	(void)user;
	tm_job_message(job, "working");
	nanosleep(&ms, NULL);
	return TM_COMPLETED;
}

/* Child: triggers tasks, reporting each acknowledged id, until killed. */
static void producer(const char *store, int ack_fd)
{
	tm_options o;
	tm_manager *tm;
	tm_job_def d = rt_def("load", short_run, NULL);

	d.max_attempts = 2;
	rt_options(&o, store, 2);
	tm = rt_child_open(&o);
	if (tm == NULL || tm_register(tm, &d) != TM_OK)
		_exit(3);
	for (int i = 0; i < BURST; i++) {
		char *out = NULL;
		cJSON *j;

		if (tm_trigger(tm, "load", "{\"refresh_token\": \"x\"}", 0, &out) != TM_OK)
			_exit(4);
		j = cJSON_Parse(out);
		tm_free(out);
		rt_send(ack_fd, cJSON_GetObjectItem(j, "task_id")->valuestring);
		cJSON_Delete(j);
	}
	for (;;)
		pause();
}

static int all_final(void *p)
{
	tm_manager *tm = p;

	return rt_stat(tm, "load", "REQUEST_SENT") + rt_stat(tm, "load", "RUNNING") +
	       rt_stat(tm, "load", "CANCELLED_REQUESTED") == 0;
}

START_TEST(sigkill_under_load_loses_no_acknowledged_task)
{
	char *dir = tt_tmpdir(), store[512], (*acked)[21] = calloc(ROUNDS * BURST, 21);
	int n_acked = 0, retried = 0;
	unsigned seed = (unsigned)getpid();
	tm_job_def d = rt_def("load", short_run, NULL);

	d.max_attempts = 2;
	snprintf(store, sizeof(store), "%s/store", dir);
	for (int r = 0; r < ROUNDS; r++) {
		int fds[2], kill_after = 5 + (int)(rand_r(&seed) % (BURST - 10));
		pid_t pid;
		tm_manager *tm;

		ck_assert_int_eq(pipe(fds), 0);
		pid = rt_fork(); /* no manager open in this process now */
		if (pid == 0) {
			close(fds[0]);
			producer(store, fds[1]);
		}
		close(fds[1]);
		for (int i = 0; i < kill_after; i++)
			ck_assert_msg(rt_recv(fds[0], acked[n_acked++], 21), "producer died");
		rt_kill(pid);
		close(fds[0]);

		tm = rt_open(store, 2);
		ck_assert_ok(tm_register(tm, &d));
		for (int i = 0; i < n_acked; i++) {
			char buf[32];
			tt_status(tm, "load", acked[i], buf); /* asserts it exists */
		}
		ck_assert_msg(tt_wait(all_final, tm, RT_DEADLINE), "tasks left unfinished");
		if (r == ROUNDS - 1) {
			/* Each task was in at most one killed process: its retry
			 * completed it. */
			int n;
			char (*ids)[21] = all_ids(tm, "load", &n);

			for (int i = 0; i < n; i++) {
				cJSON *task = rt_task(tm, "load", ids[i]);

				ck_assert_str_eq(rt_status_of(task), "COMPLETED");
				retried += rt_detail_num(task, "attempts") == 2;
				cJSON_Delete(task);
			}
			free(ids);
		}
		rt_assert_check_ok(tm);
		tm_close(tm);
	}
	printf("%d acknowledged tasks over %d kills, none lost, %d retried after "
	       "their worker was killed\n", n_acked, ROUNDS, retried);
	free(acked);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("stress");

	tt_add(s, two_processes_run_each_task_exactly_once);
	tt_add(s, exclusive_name_never_has_two_active);
	tt_add(s, every_outcome_under_load_ends_as_decided);
	tt_add(s, warnings_are_stored_exactly_once);
	tt_add(s, automatic_triggers_fire_once_across_processes);
	tt_add(s, sigkill_under_load_loses_no_acknowledged_task);
	return tt_run(s);
}
