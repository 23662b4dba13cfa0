/* SPEC section 6, several processes on one store: a cancel made by another
 * process reaches the handler within the poll interval; a process opened
 * with workers = 0 only stores and serves, another process runs its tasks.
 * Children are forked before the parent opens the store, and never call
 * Check. */
#include <string.h>
#include <unistd.h>

#include "rt.h"

#define TASKS 5

static struct {
	atomic_int started, saw_cancel, runs;
} h;

static char runs_path[512];

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
	char *dir = tt_tmpdir(), store[512], id[21];
	int fds[2];
	pid_t pid;
	tm_manager *tm;
	tm_job_def d = rt_def("job", cooperative, NULL);

	memset(&h, 0, sizeof(h));
	snprintf(store, sizeof(store), "%s/store", dir);
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
	rt_reap(pid);
	ck_assert_int_eq(atomic_load(&h.saw_cancel), 1);
	ck_assert_int_eq(atomic_load(&h.runs), 1);
	tm_close(tm);
	close(fds[1]);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

static tm_status record_pid(tm_job *job, void *user)
{
	char line[64];

	(void)user;
	snprintf(line, sizeof(line), "%s %d", tm_job_task_id(job), (int)getpid());
	rt_append(runs_path, line);
	return TM_COMPLETED;
}

/* Child: runs the tasks until told to stop (or the pipe closes). */
static void runner(const char *store, int ready_fd, int ctl_fd)
{
	tm_options o;
	tm_manager *tm;
	tm_job_def d = rt_def("job", record_pid, NULL);
	char buf[16];

	rt_options(&o, store, 1);
	tm = rt_child_open(&o);
	if (tm == NULL || tm_register(tm, &d) != TM_OK)
		_exit(3);
	rt_send(ready_fd, "ready");
	rt_recv(ctl_fd, buf, sizeof(buf));
	tm_close(tm);
	_exit(0);
}

START_TEST(workers_zero_process_triggers_another_runs)
{
	char *dir = tt_tmpdir(), store[512], ids[TASKS][21], buf[16], line[160];
	int ready[2], ctl[2];
	pid_t pid;
	tm_manager *tm;
	tm_job_def d = rt_def("job", record_pid, NULL);

	snprintf(store, sizeof(store), "%s/store", dir);
	snprintf(runs_path, sizeof(runs_path), "%s/runs", dir);
	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(ctl), 0);
	pid = rt_fork();
	if (pid == 0) {
		close(ready[0]);
		close(ctl[1]);
		runner(store, ready[1], ctl[0]);
	}
	close(ready[1]);
	close(ctl[0]);
	ck_assert_msg(rt_recv(ready[0], buf, sizeof(buf)), "the child did not start");

	tm = rt_open(store, 0);
	ck_assert_ok(tm_register(tm, &d));
	for (int i = 0; i < TASKS; i++)
		tt_trigger(tm, "job", NULL, ids[i]);
	for (int i = 0; i < TASKS; i++) {
		rt_await_status(tm, "job", ids[i], "COMPLETED");
		snprintf(line, sizeof(line), "%s %d\n", ids[i], (int)pid);
		ck_assert_msg(rt_file_count(runs_path, line) == 1,
		              "task %s was not run once by the child", ids[i]);
	}
	ck_assert_int_eq(rt_file_lines(runs_path), TASKS);
	rt_send(ctl[1], "stop");
	rt_reap(pid);
	tm_close(tm);
	close(ready[0]);
	close(ctl[1]);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("runtime_processes");

	tt_add(s, cancel_from_another_process_reaches_the_handler);
	tt_add(s, workers_zero_process_triggers_another_runs);
	return tt_run(s);
}
