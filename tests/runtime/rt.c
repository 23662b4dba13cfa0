#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rt.h"

void rt_options(tm_options *o, const char *dir, unsigned workers)
{
	tm_options_init(o, TM_OPTIONS_VERSION);
	o->path = dir;
	o->workers = workers;
	o->flags = TM_OPEN_NOSYNC;
	o->poll_ms = 20;
	o->lease_ms = 300;
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

tm_job_def rt_def(const char *name, tm_status (*run)(tm_job *, void *), void *user)
{
	tm_job_def d;

	tm_job_def_init(&d, TM_JOB_DEF_VERSION);
	d.name = name;
	d.run = run;
	d.user = user;
	return d;
}

cJSON *rt_task(tm_manager *tm, const char *name, const char *id)
{
	return tt_json(tt_get(tm, name, id, 0));
}

const char *rt_status_of(const cJSON *task)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(task, "status");

	return cJSON_IsString(s) ? s->valuestring : "";
}

static const cJSON *detail(const cJSON *task, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(task, "details"), key);
}

const char *rt_detail_str(const cJSON *task, const char *key)
{
	const cJSON *v = detail(task, key);

	return cJSON_IsString(v) ? v->valuestring : "";
}

double rt_detail_num(const cJSON *task, const char *key)
{
	const cJSON *v = detail(task, key);

	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

const char *rt_message(const cJSON *task)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(detail(task, "progress"),
	                                                  "message");

	return cJSON_IsString(m) ? m->valuestring : "";
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

struct status_wait {
	tm_manager *tm;
	const char *name, *id, *status;
};

static int has_status(void *p)
{
	struct status_wait *w = p;
	char buf[32];

	return strcmp(tt_status(w->tm, w->name, w->id, buf), w->status) == 0;
}

int rt_wait_status(tm_manager *tm, const char *name, const char *id,
                   const char *status, double seconds)
{
	struct status_wait w = { tm, name, id, status };

	return tt_wait(has_status, &w, seconds);
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

static cJSON *stats(tm_manager *tm)
{
	char *out = NULL;

	ck_assert_ok(tm_stats(tm, &out));
	return tt_json(out);
}

int rt_stat(tm_manager *tm, const char *name, const char *status)
{
	cJSON *j = stats(tm);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(j, "names"), name), status);
	int n = cJSON_IsNumber(v) ? v->valueint : 0;

	cJSON_Delete(j);
	return n;
}

double rt_commits(tm_manager *tm)
{
	cJSON *j = stats(tm);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "commits");
	double n;

	ck_assert_msg(cJSON_IsNumber(v), "tm_stats has no commits figure");
	n = v->valuedouble;
	cJSON_Delete(j);
	return n;
}

void rt_assert_check_ok(tm_manager *tm)
{
	char *out = NULL, *text;
	cJSON *j;

	ck_assert_ok(tm_check(tm, &out));
	j = tt_json(out);
	text = cJSON_PrintUnformatted(j);
	ck_assert_msg(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ok")),
	              "tm_check: %s", text);
	cJSON_free(text);
	cJSON_Delete(j);
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

void rt_reap(pid_t pid)
{
	int st = 0;

	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	              "child %d ended with status 0x%x", (int)pid, st);
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
