#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rt.h"

void rt_options(tm_options *o, const char *dir, unsigned workers)
{
	tm_options_init(o, TM_OPTIONS_VERSION);
	o->path = tt_store_path(dir);
	o->workers = workers;
	o->flags = TM_OPEN_NOSYNC;
	o->poll_ms = 20;
	/* Short, so that recovery tests are quick; on PostgreSQL a renewal is
	 * a round trip to a server that shares this loaded machine, and a
	 * lease must outlast a few slow ticks. */
	o->lease_ms = tt_backend_pg() ? 1500 : 300;
	o->progress_ms = 20;
	o->grace_ms = 2000;
}

tm_manager *rt_open_with(const tm_options *o)
{
	tm_manager *tm = NULL;

	ck_assert_ok(tm_open(o, &tm));
	ck_assert_ptr_nonnull(tm);
	return tm;
}

tm_manager *rt_open(const char *dir, unsigned workers)
{
	tm_options o;

	rt_options(&o, dir, workers);
	return rt_open_with(&o);
}

tm_manager *rt_open_tmp(char **dir, unsigned workers)
{
	*dir = tt_tmpdir();
	return rt_open(*dir, workers);
}

tm_job_def rt_def(const char *name, tm_status (*run)(tm_job *, void *), void *user)
{
	tm_job_def d = TM_JOB_DEF_INIT;

	d.name = name;
	d.run = run;
	d.user = user;
	return d;
}

tm_status rt_complete(tm_job *job, void *user)
{
	(void)job;
	(void)user;
	return TM_COMPLETED;
}

tm_status rt_answer(tm_job *job, void *user)
{
	(void)job;
	return *(const tm_status *)user;
}

const char *rt_status_of(const cJSON *task)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(task, "status");

	return cJSON_IsString(s) ? s->valuestring : "";
}

const char *rt_detail_str(const cJSON *task, const char *key)
{
	const cJSON *v = tt_detail(task, key);

	return cJSON_IsString(v) ? v->valuestring : "";
}

double rt_detail_num(const cJSON *task, const char *key)
{
	const cJSON *v = tt_detail(task, key);

	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

const char *rt_message(const cJSON *task)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(tt_detail(task, "progress"),
	                                                  "message");

	return cJSON_IsString(m) ? m->valuestring : "";
}

double rt_progress_num(const cJSON *task, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(tt_detail(task, "progress"),
	                                                  key);

	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

int rt_has_warning(const cJSON *task, const char *text)
{
	const cJSON *w;

	cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(task, "warnings"))
		if (cJSON_IsString(w) && strcmp(w->valuestring, text) == 0)
			return 1;
	return 0;
}

int rt_n_warnings(const cJSON *task)
{
	return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(task, "warnings"));
}

void rt_assert_cancel_gives(tm_manager *tm, const char *name, const char *id,
                            const char *status)
{
	char *out = NULL;
	cJSON *after;

	ck_assert_ok(tm_cancel(tm, name, id, &out));
	after = tt_json(out);
	ck_assert_str_eq(rt_status_of(after), status);
	cJSON_Delete(after);
}

void rt_assert_attempts(tm_manager *tm, const char *name, const char *id, int n)
{
	cJSON *task = tt_task(tm, name, id, 0);

	ck_assert_msg((int)rt_detail_num(task, "attempts") == n,
	              "task %s has %g attempts, expected %d", id,
	              rt_detail_num(task, "attempts"), n);
	cJSON_Delete(task);
}

cJSON *rt_job_task(tm_manager *tm, const tm_job *job)
{
	char *out = NULL;
	cJSON *j;

	if (tm_get(tm, tm_job_name(job), tm_job_task_id(job), 0, &out) != TM_OK)
		return NULL;
	j = cJSON_Parse(out);
	tm_free(out);
	return j;
}

struct task_wait {
	tm_manager *tm;
	const char *name, *id;
	int (*ok)(const cJSON *task, const void *arg);
	const void *arg;
};

static int task_is(void *p)
{
	struct task_wait *w = p;
	cJSON *task = tt_task(w->tm, w->name, w->id, 0);
	int ok = w->ok(task, w->arg);

	cJSON_Delete(task);
	return ok;
}

int rt_wait_task(tm_manager *tm, const char *name, const char *id,
                 int (*ok)(const cJSON *task, const void *arg), const void *arg,
                 double seconds)
{
	struct task_wait w = { tm, name, id, ok, arg };

	return tt_wait(task_is, &w, seconds);
}

static int has_status(const cJSON *task, const void *status)
{
	return strcmp(rt_status_of(task), status) == 0;
}

int rt_wait_status(tm_manager *tm, const char *name, const char *id,
                   const char *status, double seconds)
{
	return rt_wait_task(tm, name, id, has_status, status, seconds);
}

struct flag_wait {
	atomic_int *flag;
	int value;
};

static int flag_reached(void *p)
{
	struct flag_wait *w = p;

	return atomic_load(w->flag) >= w->value;
}

int rt_wait_atleast(atomic_int *flag, int value, double seconds)
{
	struct flag_wait w = { flag, value };

	return tt_wait(flag_reached, &w, seconds);
}

int rt_flag_set(void *flag)
{
	return atomic_load((atomic_int *)flag) != 0;
}

void rt_count_running(atomic_int *running, atomic_int *max)
{
	int now = atomic_fetch_add(running, 1) + 1, seen = atomic_load(max);

	while (now > seen && !atomic_compare_exchange_weak(max, &seen, now))
		;
}

struct count_wait {
	tm_manager *tm;
	const char *name;
	int lo, hi;
};

static int count_within(void *p)
{
	struct count_wait *w = p;
	int n = tt_count(w->tm, w->name);

	return n >= w->lo && n <= w->hi;
}

int rt_wait_count(tm_manager *tm, const char *name, int lo, int hi, double seconds)
{
	struct count_wait w = { tm, name, lo, hi };

	return tt_wait(count_within, &w, seconds);
}

void rt_barrier(tm_manager *tm)
{
	tm_job_def d = rt_def(RT_TICK_NAME, NULL, NULL);
	int rc;

	d.timeout_s = 0.001;
	rc = tm_register(tm, &d);
	ck_assert_msg(rc == TM_OK || rc == TM_EINVAL, "registering %s: %s",
	              RT_TICK_NAME, tm_last_error());
	/* The tick that fails the first task scanned after it was made, and ran
	 * its automatic triggers and retention after that; the second task
	 * cannot fail before that tick has ended. */
	for (int i = 0; i < 2; i++) {
		char id[21];

		tt_trigger(tm, RT_TICK_NAME, NULL, id);
		rt_await_status(tm, RT_TICK_NAME, id, "FAILED");
	}
}

double rt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double rt_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *rt_shared_dir(char store[RT_PATH_MAX], char runs[RT_PATH_MAX])
{
	char *dir = tt_tmpdir();

	snprintf(store, RT_PATH_MAX, "%s/store", dir);
	if (runs)
		snprintf(runs, RT_PATH_MAX, "%s/runs", dir);
	return dir;
}

/* ---- the test clock ------------------------------------------------------ */

static _Atomic int64_t *clock_shift; /* the file, mapped shared */

void rt_clock_start(const char *dir)
{
	char path[RT_PATH_MAX];
	int64_t zero = 0;
	int fd;

	ck_assert_ptr_null(clock_shift);
	snprintf(path, sizeof(path), "%s/clock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(write(fd, &zero, sizeof(zero)), sizeof(zero));
	clock_shift = mmap(NULL, sizeof(*clock_shift), PROT_READ | PROT_WRITE,
	                   MAP_SHARED, fd, 0);
	ck_assert_msg(clock_shift != MAP_FAILED, "mmap %s: %s", path, strerror(errno));
	close(fd);
	ck_assert_int_eq(setenv("TM_TEST_CLOCK_FILE", path, 1), 0);
}

void rt_clock_advance(double seconds)
{
	ck_assert_ptr_nonnull(clock_shift);
	atomic_fetch_add(clock_shift, (int64_t)(seconds * 1e6));
}

void rt_clock_set(double t)
{
	ck_assert_ptr_nonnull(clock_shift);
	atomic_store(clock_shift, (int64_t)((t - rt_now()) * 1e6));
}

double rt_clock_now(void)
{
	return rt_now() + (clock_shift ? (double)atomic_load(clock_shift) / 1e6 : 0);
}

void rt_clock_stop(void)
{
	unsetenv("TM_TEST_CLOCK_FILE");
	if (clock_shift)
		munmap(clock_shift, sizeof(*clock_shift));
	clock_shift = NULL;
}

/* ---- children ----------------------------------------------------------- */

pid_t rt_fork(void)
{
	pid_t parent = getpid(), pid;

	fflush(NULL);
	pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
	}
	return pid;
}

tm_manager *rt_child_open(const tm_options *o)
{
	tm_manager *tm = NULL;
	int rc = tm_open(o, &tm);

	if (rc != TM_OK) {
		fprintf(stderr, "child %d: tm_open: %s\n", (int)getpid(), tm_last_error());
		return NULL;
	}
	return tm;
}

const char *rt_child_status(tm_manager *tm, const char *name, const char *id,
                            char buf[32])
{
	char *out = NULL;
	cJSON *j;

	buf[0] = '\0';
	if (tm_get(tm, name, id, 0, &out) != TM_OK)
		return buf;
	j = cJSON_Parse(out);
	tm_free(out);
	if (j && cJSON_IsString(cJSON_GetObjectItem(j, "status")))
		snprintf(buf, 32, "%s", cJSON_GetObjectItem(j, "status")->valuestring);
	cJSON_Delete(j);
	return buf;
}

int rt_child_wait_status(tm_manager *tm, const char *name, const char *id,
                         const char *status, double seconds)
{
	double end = rt_mono() + seconds;
	struct timespec ms = { 0, 1000000 };
	char buf[32];

	while (strcmp(rt_child_status(tm, name, id, buf), status) != 0) {
		if (rt_mono() > end)
			return 0;
		nanosleep(&ms, NULL);
	}
	return 1;
}

void rt_peer_start(struct rt_peer *p, const tm_options *o,
                   int (*setup)(tm_manager *tm, void *arg),
                   int (*then)(tm_manager *tm, void *arg), void *arg)
{
	int ready[2], ctl[2];
	char buf[16];

	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(ctl), 0);
	p->pid = rt_fork();
	if (p->pid == 0) {
		tm_manager *tm;
		int rc = 0;

		close(ready[0]);
		close(ctl[1]);
		tm = rt_child_open(o);
		if (tm == NULL || setup(tm, arg) != 0)
			_exit(3);
		rt_send(ready[1], "ready");
		if (!rt_recv(ctl[0], buf, sizeof(buf)))
			_exit(4);
		if (then)
			rc = then(tm, arg);
		tm_close(tm);
		_exit(rc);
	}
	close(ready[1]);
	close(ctl[0]);
	p->ready = ready[0];
	p->ctl = ctl[1];
	ck_assert_msg(rt_recv(p->ready, buf, sizeof(buf)), "the peer process did not start");
}

void rt_peer_tell(struct rt_peer *p, const char *line)
{
	rt_send(p->ctl, line);
}

void rt_peer_reap(struct rt_peer *p)
{
	tt_reap(p->pid);
	close(p->ready);
	close(p->ctl);
}

int rt_peer_register(tm_manager *tm, void *def)
{
	return tm_register(tm, def);
}

void rt_kill(pid_t pid)
{
	int st = 0;

	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

void rt_send(int fd, const char *line)
{
	size_t n = strlen(line);
	char buf[256];

	snprintf(buf, sizeof(buf), "%s\n", line);
	if (write(fd, buf, n + 1) != (ssize_t)(n + 1)) {
		fprintf(stderr, "rt_send: %s\n", strerror(errno));
		_exit(98);
	}
}

int rt_recv(int fd, char *buf, size_t size)
{
	size_t n = 0;

	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		if (c == '\n')
			break;
		if (n + 1 < size) /* the rest of a longer line is dropped */
			buf[n++] = c;
	}
	buf[n] = '\0';
	return 1;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *s = NULL;
	size_t cap = 0, n = 0;

	if (f == NULL)
		return strdup("");
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			s = realloc(s, cap);
			if (s == NULL)
				abort();
		}
		size_t r = fread(s + n, 1, 4096, f);
		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	s[n] = '\0';
	return s;
}

int rt_file_lines(const char *path)
{
	char *s = slurp(path);
	int n = 0;

	for (char *p = s; *p; p++)
		n += *p == '\n';
	free(s);
	return n;
}

int rt_file_count(const char *path, const char *needle)
{
	char *s = slurp(path);
	int n = 0;

	for (char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
		n++;
	free(s);
	return n;
}

void rt_append(const char *path, const char *line)
{
	char buf[256];
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	int n = snprintf(buf, sizeof(buf), "%s\n", line);

	if (fd < 0 || write(fd, buf, (size_t)n) != n) {
		fprintf(stderr, "rt_append %s: %s\n", path, strerror(errno));
		abort();
	}
	close(fd);
}

void rt_append_run(const char *path, const tm_job *job)
{
	char line[64];

	snprintf(line, sizeof(line), "%s %d", tm_job_task_id(job), (int)getpid());
	rt_append(path, line);
}

void rt_assert_ran_once(tm_manager *tm, const char *name, char ids[][21], int n,
                        const char *runs, pid_t pid)
{
	for (int i = 0; i < n; i++) {
		cJSON *task;
		char line[64];

		rt_await_status(tm, name, ids[i], "COMPLETED");
		task = tt_task(tm, name, ids[i], 0);
		ck_assert_int_eq((int)rt_detail_num(task, "attempts"), 1);
		ck_assert_int_eq(rt_n_warnings(task), 0);
		cJSON_Delete(task);
		if (pid)
			snprintf(line, sizeof(line), "%s %d\n", ids[i], (int)pid);
		else
			snprintf(line, sizeof(line), "%s ", ids[i]);
		ck_assert_msg(rt_file_count(runs, line) == 1,
		              "task %s did not run once (in process %d)", ids[i], (int)pid);
	}
	ck_assert_int_eq(rt_file_lines(runs), n);
}

const char *rt_status_why(tm_manager *tm, const char *name, const char *id, char buf[256])
{
	char *text = NULL;
	cJSON *t;

	if (tm_get(tm, name, id, 0, &text) != TM_OK)
		return "unreadable";
	t = cJSON_Parse(text);
	tm_free(text);
	snprintf(buf, 256, "%s%s%s", rt_status_of(t), rt_detail_str(t, "error")[0] ? ": " : "",
	         rt_detail_str(t, "error"));
	cJSON_Delete(t);
	return buf;
}

struct metric_wait {
	tm_manager *tm;
	const char *series;
	double value;
};

static int metric_is(void *p)
{
	struct metric_wait *w = p;

	return tt_metric(w->tm, w->series) == w->value;
}

int rt_wait_metric(tm_manager *tm, const char *series, double value, double seconds)
{
	struct metric_wait w = { tm, series, value };

	return tt_wait(metric_is, &w, seconds);
}
