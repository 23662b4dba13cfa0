/* Several processes on one store (doc/runtime.md, "Workers"): a cancel
 * made by another process reaches the handler within the poll interval; a
 * process opened with workers = 0 only stores and serves, another process
 * runs its tasks.  Children are forked before the parent opens the store,
 * and never call Check. */
#include <string.h>
#include <unistd.h>

#include "rt.h"

#define TASKS 5

static struct {
	atomic_int started, saw_cancel, runs;
} h;

static char runs_path[RT_PATH_MAX];

static int cancelled(void *job)
{
	return tm_job_cancelled(job);
}

static tm_status cooperative(tm_job *job, void *user)
{
	(void)user;
	atomic_fetch_add(&h.runs, 1);
	atomic_store(&h.started, 1);
	tt_wait(cancelled, job, 60);
	atomic_store(&h.saw_cancel, tm_job_cancelled(job) != 0);
	return TM_CANCELLED;
}

/* Child: receives a task id, waits until it runs, cancels it. */
static void canceller(const char *store, int id_fd)
{
	tm_options o;
	tm_manager *tm;
	tm_job_def d = rt_def("job", NULL, NULL);
	char id[32], buf[32], *out = NULL;
	int ok;

	if (!rt_recv(id_fd, id, sizeof(id)))
		_exit(2);
	rt_options(&o, store, 0);
	tm = rt_child_open(&o);
	if (tm == NULL || tm_register(tm, &d) != TM_OK)
		_exit(3);
	if (!rt_child_wait_status(tm, "job", id, "RUNNING", RT_DEADLINE))
		_exit(4);
	if (tm_cancel(tm, "job", id, &out) != TM_OK)
		_exit(5);
	ok = strstr(out, "CANCELLED_REQUESTED") != NULL;
	tm_free(out);
	fprintf(stderr, "child: cancel gave %s\n", rt_child_status(tm, "job", id, buf));
	tm_close(tm);
	_exit(ok ? 0 : 6);
}

START_TEST(cancel_from_another_process_reaches_the_handler)
{
	char store[RT_PATH_MAX], *dir = rt_shared_dir(store, NULL), id[21];
	int fds[2];
	pid_t pid;
	tm_manager *tm;
	tm_job_def d = rt_def("job", cooperative, NULL);

	memset(&h, 0, sizeof(h));
	ck_assert_int_eq(pipe(fds), 0);
	pid = rt_fork();
	if (pid == 0) {
		close(fds[1]);
		canceller(store, fds[0]);
	}
	close(fds[0]);
	tm = rt_open(store, 1);
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "job", NULL, id);
	rt_send(fds[1], id);
	rt_await_status(tm, "job", id, "CANCELLED");
	tt_reap(pid);
	ck_assert_int_eq(atomic_load(&h.saw_cancel), 1);
	ck_assert_int_eq(atomic_load(&h.runs), 1);
	close(fds[1]);
	tt_close_tmp(tm, dir);
}
END_TEST

static tm_status record_pid(tm_job *job, void *user)
{
	(void)user;
	rt_append_run(runs_path, job);
	return TM_COMPLETED;
}

START_TEST(workers_zero_process_triggers_another_runs)
{
	char store[RT_PATH_MAX], *dir = rt_shared_dir(store, runs_path), ids[TASKS][21];
	tm_job_def d = rt_def("job", record_pid, NULL);
	struct rt_peer runner;
	tm_options o;
	tm_manager *tm;

	/* The other process runs the tasks until told to stop. */
	rt_options(&o, store, 1);
	rt_peer_start(&runner, &o, rt_peer_register, NULL, &d);
	tm = rt_open(store, 0);
	ck_assert_ok(tm_register(tm, &d));
	for (int i = 0; i < TASKS; i++)
		tt_trigger(tm, "job", NULL, ids[i]);
	rt_assert_ran_once(tm, "job", ids, TASKS, runs_path, runner.pid);
	rt_peer_tell(&runner, "stop");
	rt_peer_reap(&runner);
	tt_close_tmp(tm, dir);
}
END_TEST

TT_MAIN("runtime_processes",
	cancel_from_another_process_reaches_the_handler,
	workers_zero_process_triggers_another_runs)
