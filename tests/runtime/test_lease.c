/* SPEC section 6, leases: a runtime thread renews the lease of a running
 * task, never the handler, so a CPU-bound handler that runs for several
 * lease periods keeps its task, and a live owner's task is never run twice
 * by another process watching for expired leases. */
#include <string.h>
#include <unistd.h>

#include "rt.h"

#define LEASE_MS 500
#define TASKS 2

static char runs_path[512];

/* Spins for four lease periods without a single library call. */
static tm_status spin(tm_job *job, void *user)
{
	char line[64];
	double end;
	volatile unsigned long n = 0;

	(void)user;
	snprintf(line, sizeof(line), "%s %d", tm_job_task_id(job), (int)getpid());
	rt_append(runs_path, line);
	end = rt_mono() + 4 * LEASE_MS / 1000.0;
	while (rt_mono() < end)
		n++;
	return TM_COMPLETED;
}

static void options(tm_options *o, const char *store)
{
	rt_options(o, store, 1);
	o->lease_ms = LEASE_MS;
}

static tm_job_def def(void)
{
	tm_job_def d = rt_def("cpu", spin, NULL);

	d.max_attempts = 2; /* a lost lease would run it again */
	d.retry_backoff_s = 0.01;
	return d;
}

/* The other process: the same handler, watching the same store. */
static void child(const char *store, int ready_fd, int ctl_fd)
{
	tm_options o;
	tm_job_def d = def();
	tm_manager *tm;
	char buf[16];

	options(&o, store);
	tm = rt_child_open(&o);
	if (tm == NULL || tm_register(tm, &d) != TM_OK)
		_exit(2);
	rt_send(ready_fd, "ready");
	rt_recv(ctl_fd, buf, sizeof(buf)); /* "stop", or EOF */
	tm_close(tm);
	_exit(0);
}

START_TEST(cpu_bound_handler_keeps_its_lease)
{
	char *dir = tt_tmpdir(), store[512], ids[TASKS][21], buf[16];
	int ready[2], ctl[2];
	tm_options o;
	tm_job_def d = def();
	tm_manager *tm;
	pid_t pid;

	snprintf(store, sizeof(store), "%s/store", dir);
	snprintf(runs_path, sizeof(runs_path), "%s/runs", dir);
	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(ctl), 0);
	pid = rt_fork();
	if (pid == 0) {
		close(ready[0]);
		close(ctl[1]);
		child(store, ready[1], ctl[0]);
	}
	close(ready[1]);
	close(ctl[0]);
	ck_assert_msg(rt_recv(ready[0], buf, sizeof(buf)), "the child did not start");

	options(&o, store);
	tm = rt_open_with(&o);
	ck_assert_ok(tm_register(tm, &d));
	for (int i = 0; i < TASKS; i++)
		tt_trigger(tm, "cpu", NULL, ids[i]);
	for (int i = 0; i < TASKS; i++) {
		cJSON *task;

		rt_await_status(tm, "cpu", ids[i], "COMPLETED");
		task = rt_task(tm, "cpu", ids[i]);
		ck_assert_int_eq((int)rt_detail_num(task, "attempts"), 1);
		ck_assert_int_eq(rt_n_warnings(task), 0);
		cJSON_Delete(task);
		ck_assert_int_eq(rt_file_count(runs_path, ids[i]), 1);
	}
	ck_assert_int_eq(rt_file_lines(runs_path), TASKS);
	rt_send(ctl[1], "stop");
	rt_reap(pid);
	rt_assert_check_ok(tm);
	tm_close(tm);
	close(ready[0]);
	close(ctl[1]);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("runtime_lease");

	tt_add(s, cpu_bound_handler_keeps_its_lease);
	return tt_run(s);
}
