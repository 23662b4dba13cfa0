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

static char runs_path[RT_PATH_MAX];

/* ---- two processes, one store -------------------------------------------- */

#define PER_CHILD 100

static tm_status record_run(tm_job *job, void *user)
{
	char progress[64];
	struct timespec ms = { 0, 1000000 };

	(void)user;
	rt_append_run(runs_path, job);
	snprintf(progress, sizeof(progress), "{\"pid\": %d}", (int)getpid());
	tm_job_progress(job, progress);
	nanosleep(&ms, NULL);
	return TM_COMPLETED;
}

/* A peer's work once told to go: trigger its share, then wait (without
 * Check) until both peers' tasks are all done. */
static int trigger_share(tm_manager *tm, void *arg)
{
	struct timespec ms = { 0, 5000000 };
	double end = rt_mono() + 60;
	char *out;

	(void)arg;
	for (int i = 0; i < PER_CHILD; i++)
		if (tm_trigger(tm, "job", NULL, 0, NULL) != TM_OK)
			return 5;
	for (;;) {
		cJSON *j, *n;
		int done;

		if (tm_stats(tm, &out) != TM_OK)
			return 6;
		j = cJSON_Parse(out);
		tm_free(out);
		n = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "names"),
		                                            "job"), "COMPLETED");
		done = cJSON_IsNumber(n) && n->valueint >= 2 * PER_CHILD;
		cJSON_Delete(j);
		if (done)
			return 0;
		if (rt_mono() > end) {
			/* Say what the store holds, for whoever reads the log. */
			if (tm_stats(tm, &out) == TM_OK) {
				fprintf(stderr, "not all COMPLETED after 60 s: %s\n", out);
				tm_free(out);
			}
			return 7;
		}
		nanosleep(&ms, NULL);
	}
}

START_TEST(two_processes_run_each_task_exactly_once)
{
	char store[RT_PATH_MAX], *dir = rt_shared_dir(store, runs_path);
	struct rt_peer peers[2];
	tm_job_def d = rt_def("job", record_run, NULL);
	tm_options o;
	tm_manager *tm;
	cJSON *tasks, *task;
	int by[2] = { 0, 0 };

	rt_options(&o, store, 2);
	/* Nothing here is meant to be recovered: a lease that outlasts a slow
	 * commit on a busy machine, so that no run is taken for lost. */
	o.lease_ms = 5000;
	for (int c = 0; c < 2; c++)
		rt_peer_start(&peers[c], &o, rt_peer_register, trigger_share, &d);
	for (int c = 0; c < 2; c++)
		rt_peer_tell(&peers[c], "go");
	for (int c = 0; c < 2; c++)
		rt_peer_reap(&peers[c]);

	/* Both peers are gone: open the store and audit it. */
	tm = rt_open(store, 0);
	ck_assert_ok(tm_register(tm, &d));
	tasks = tt_list_all(tm, "job", 64, 0);
	ck_assert_int_eq(cJSON_GetArraySize(tasks), 2 * PER_CHILD);
	ck_assert_int_eq(rt_file_lines(runs_path), 2 * PER_CHILD);
	cJSON_ArrayForEach(task, tasks) {
		const char *id = cJSON_GetObjectItem(task, "task_id")->valuestring;
		int pid = (int)rt_progress_num(task, "pid"), c = pid == (int)peers[0].pid ? 0 : 1;
		char line[64];

		ck_assert_str_eq(rt_status_of(task), "COMPLETED");
		ck_assert_int_eq((int)rt_detail_num(task, "attempts"), 1);
		ck_assert_int_eq(pid, (int)peers[c].pid);
		snprintf(line, sizeof(line), "%s %d\n", id, pid);
		ck_assert_int_eq(rt_file_count(runs_path, id), 1);
		ck_assert_int_eq(rt_file_count(runs_path, line), 1);
		by[c]++;
	}
	printf("200 tasks: %d run by process %d, %d by process %d\n",
	       by[0], (int)peers[0].pid, by[1], (int)peers[1].pid);
	ck_assert_msg(by[0] > 0 && by[1] > 0, "one process ran nothing");
	cJSON_Delete(tasks);
	tt_assert_check(tm, -1);
	tt_close_tmp(tm, dir);
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

	(void)job;
	(void)user;
	rt_count_running(&x.active, &x.max);
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

	return tt_stat(tm, "excl", "COMPLETED") == atomic_load(&x.accepted);
}

START_TEST(exclusive_name_never_has_two_active)
{
	char *dir = tt_tmpdir();
	tm_options o;
	tm_manager *tm;
	tm_job_def d = rt_def("excl", exclusive_run, NULL);
	pthread_t th[THREADS], watcher;

	/* No run is meant to be lost: a lease no slow commit outlasts (a run
	 * taken for lost would end FAILED, not COMPLETED). */
	rt_options(&o, dir, 4);
	o.lease_ms = 5000;
	tm = rt_open_with(&o);

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
	tt_assert_check(tm, -1);
	tt_close_tmp(tm, dir);
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
	char *dir, (*ids)[21] = calloc(MIXED, 21);
	tm_manager *tm = rt_open_tmp(&dir, 4);
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
		task = tt_task(tm, "mixed", ids[k], 0);
		if (attempts[k % 5] > 0) {
			ck_assert_int_eq((int)rt_detail_num(task, "attempts"), attempts[k % 5]);
			ck_assert_int_eq(atomic_load(&mixed_runs[k]), attempts[k % 5]);
		} else {
			ck_assert_int_le(atomic_load(&mixed_runs[k]), 1);
		}
		cJSON_Delete(task);
	}
	tt_assert_check(tm, -1);
	free(ids);
	tt_close_tmp(tm, dir);
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
	/* About warnings, not leases: rt_options' 300 ms lease can run out
	 * under a sanitizer on a loaded machine, and a lost run ends FAILED. */
	o.lease_ms = 10000;
	tm = rt_open_with(&o);
	ck_assert_ok(tm_register(tm, &d));
	for (int i = 0; i < WARNED_TASKS; i++)
		tt_trigger(tm, "warn", NULL, ids[i]);
	for (int i = 0; i < WARNED_TASKS; i++) {
		cJSON *task, *w;
		int k = 0, ok = 1;

		rt_await_status(tm, "warn", ids[i], "COMPLETED");
		task = tt_task(tm, "warn", ids[i], 0);
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
	free(ids);
	tt_close_tmp(tm, dir);
}
END_TEST

/* ---- automatic triggers with three processes watching ---------------------- */

#define NOTIFIES 15
#define TICK_S 0.3

static int register_auto(tm_manager *tm, void *arg)
{
	tm_job_def t = rt_def("tick", rt_complete, NULL), b = rt_def("batch", rt_complete, NULL);

	(void)arg;
	t.interval_s = TICK_S;
	b.change_threshold = 10;
	return tm_register(tm, &t) || tm_register(tm, &b);
}

/* Every process decides, one write transaction creates: never twice. */
START_TEST(automatic_triggers_fire_once_across_processes)
{
	char store[RT_PATH_MAX], *dir = rt_shared_dir(store, NULL);
	struct rt_peer peers[2];
	tm_options o;
	tm_manager *tm;
	cJSON *tasks, *task;
	double prev = 0;

	rt_options(&o, store, 1);
	for (int c = 0; c < 2; c++)
		rt_peer_start(&peers[c], &o, register_auto, NULL, NULL);
	tm = rt_open(store, 1);
	ck_assert_int_eq(register_auto(tm, NULL), 0);
	for (int i = 0; i < NOTIFIES; i++) {
		ck_assert_ok(tm_notify(tm, "batch", 10));
		rt_await_count_atleast(tm, "batch", i + 1);
	}
	rt_await_count_atleast(tm, "tick", 4);
	for (int c = 0; c < 2; c++) {
		rt_peer_tell(&peers[c], "stop");
		rt_peer_reap(&peers[c]);
	}
	rt_barrier(tm);

	tasks = tt_list_all(tm, "batch", 64, 0);
	ck_assert_msg(cJSON_GetArraySize(tasks) == NOTIFIES, "%d changes of 10 fired %d tasks",
	              NOTIFIES, cJSON_GetArraySize(tasks));
	cJSON_ArrayForEach(task, tasks)
		ck_assert_str_eq(rt_detail_str(task, "create_reason"),
		                 "automatic: 10 changes since last run");
	cJSON_Delete(tasks);
	tasks = tt_list_all(tm, "tick", 64, 0); /* newest first */
	for (int i = cJSON_GetArraySize(tasks) - 1; i >= 0; i--) {
		double start = cJSON_GetObjectItem(cJSON_GetArrayItem(tasks, i),
		                                   "start_time")->valuedouble;

		if (prev > 0)
			ck_assert_msg(start - prev >= TICK_S, "interval fired twice: %.3f s apart",
			              start - prev);
		prev = start;
	}
	printf("automatic: %d threshold tasks for %d notifies, %d interval tasks, "
	       "three processes\n", NOTIFIES, NOTIFIES, cJSON_GetArraySize(tasks));
	cJSON_Delete(tasks);
	tt_assert_check(tm, -1);
	tt_close_tmp(tm, dir);
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

	return tt_stat(tm, "load", "REQUEST_SENT") + tt_stat(tm, "load", "RUNNING") +
	       tt_stat(tm, "load", "CANCELLED_REQUESTED") == 0;
}

START_TEST(sigkill_under_load_loses_no_acknowledged_task)
{
	char store[RT_PATH_MAX], *dir = rt_shared_dir(store, NULL);
	char (*acked)[21] = calloc(ROUNDS * BURST, 21);
	int n_acked = 0, retried = 0;
	unsigned seed = (unsigned)getpid();
	tm_job_def d = rt_def("load", short_run, NULL);

	d.max_attempts = 2;
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
		for (int i = 0; i < n_acked; i++)
			ck_assert_msg(tm_get(tm, "load", acked[i], 0, NULL) == TM_OK,
			              "acknowledged task %s is lost: %s", acked[i], tm_last_error());
		ck_assert_msg(tt_wait(all_final, tm, RT_DEADLINE), "tasks left unfinished");
		if (r == ROUNDS - 1) {
			/* Each task was in at most one killed process: its retry
			 * completed it. */
			cJSON *tasks = tt_list_all(tm, "load", 64, 0), *task;

			ck_assert_int_ge(cJSON_GetArraySize(tasks), n_acked);
			cJSON_ArrayForEach(task, tasks) {
				int attempts = (int)rt_detail_num(task, "attempts");

				ck_assert_str_eq(rt_status_of(task), "COMPLETED");
				ck_assert_msg(attempts == 1 || attempts == 2, "%d attempts", attempts);
				retried += attempts == 2;
			}
			cJSON_Delete(tasks);
		}
		tt_assert_check(tm, -1);
		tm_close(tm);
	}
	printf("%d acknowledged tasks over %d kills, none lost, %d retried after "
	       "their worker was killed\n", n_acked, ROUNDS, retried);
	free(acked);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

TT_MAIN("stress",
	two_processes_run_each_task_exactly_once,
	exclusive_name_never_has_two_active,
	every_outcome_under_load_ends_as_decided,
	warnings_are_stored_exactly_once,
	automatic_triggers_fire_once_across_processes,
	sigkill_under_load_loses_no_acknowledged_task)
