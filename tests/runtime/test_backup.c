/* tm_backup (include/taskmgr.h): a copy of a store in use opens with
 * tm_open and holds the same tasks, byte for byte, and the refresh tokens
 * of its active tasks for their handlers; a destination that exists and is
 * not an empty directory is refused and left as it was; a failure leaves
 * nothing behind; copies taken while other threads write are consistent,
 * and no token in them is ever another task's.  PostgreSQL stores are
 * refused, with the way to back them up. */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rt.h"

/* ---- helpers -------------------------------------------------------------- */

static char *path_in(const char *dir, const char *name)
{
	char *p;

	ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
	return p;
}

static int mode_of(const char *path)
{
	struct stat st;

	ck_assert_msg(stat(path, &st) == 0, "%s is missing", path);
	return (int)(st.st_mode & 0777);
}

/* The names in dir, but . and .., joined by spaces (sorted by readdir's
 * order: compared only with itself or with ""). */
static void listing(const char *dir, char *buf, size_t n)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	buf[0] = '\0';
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			snprintf(buf + strlen(buf), n - strlen(buf), "%s ", e->d_name);
	closedir(d);
}

/* Nothing named like the temporary sibling is left in dir. */
static void assert_no_leftovers(const char *dir)
{
	char names[4096];

	listing(dir, names, sizeof(names));
	ck_assert_msg(strstr(names, ".tmp-") == NULL, "left behind in %s: %s", dir, names);
}

/* A handler that records the secret it is given, per task id. */
#define MAX_SEEN 4096
static struct {
	pthread_mutex_t mu;
	int n;
	char id[MAX_SEEN][21];
	char secret[MAX_SEEN][64];   /* "(null)" when none */
	char payload[MAX_SEEN][64];
} seen = { .mu = PTHREAD_MUTEX_INITIALIZER };

static tm_status record(tm_job *job, void *user)
{
	const char *s = tm_job_secret(job);

	(void)user;
	pthread_mutex_lock(&seen.mu);
	if (seen.n < MAX_SEEN) {
		snprintf(seen.id[seen.n], 21, "%s", tm_job_task_id(job));
		snprintf(seen.secret[seen.n], 64, "%s", s ? s : "(null)");
		snprintf(seen.payload[seen.n], 64, "%s", tm_job_payload(job));
		seen.n++;
	}
	pthread_mutex_unlock(&seen.mu);
	return TM_COMPLETED;
}

static const char *secret_seen(const char *id)
{
	const char *s = NULL;

	pthread_mutex_lock(&seen.mu);
	for (int i = 0; i < seen.n; i++)
		if (strcmp(seen.id[i], id) == 0)
			s = seen.secret[i];
	pthread_mutex_unlock(&seen.mu);
	return s;
}

/* ---- a copy holds what the store held ------------------------------------- */

START_TEST(copy_opens_with_the_same_tasks_and_tokens)
{
	char *dir, *out = tt_tmpdir(), *dest = path_in(out, "copy"), *f;
	char waiting[21], done[21], running[21], fresh[21], *before[3], *after;
	const char *ids[3] = { waiting, done, running };
	tm_manager *tm = rt_open_tmp(&dir, 0), *copy;
	tm_job_def d = rt_def("ext", record, NULL);

	tt_register(tm, "ext", TM_JOB_PUBLIC);
	tt_trigger(tm, "ext", "{\"refresh_token\": \"tok-waiting\", "
	           "\"context_task\": {\"k\": [1, 2.5, \"x\"]}}", waiting);
	tt_trigger(tm, "ext", "{\"refresh_token\": \"tok-done\"}", done);
	ck_assert_ok(tm_patch(tm, "ext", done, "{\"status\": \"RUNNING\"}", NULL));
	ck_assert_ok(tm_patch(tm, "ext", done, "{\"completed\": true, "
	                      "\"details\": {\"note\": \"by hand\"}}", NULL));
	tt_trigger(tm, "ext", NULL, running);
	ck_assert_ok(tm_patch(tm, "ext", running, "{\"status\": \"RUNNING\", "
	                      "\"details\": {\"progress\": {\"step\": 3}}}", NULL));
	for (int i = 0; i < 3; i++)
		before[i] = tt_get(tm, "ext", ids[i], 0);

	ck_assert_ok(tm_backup(tm, dest)); /* the store stays open: online */
	ck_assert_int_eq(mode_of(dest), 0700);
	f = path_in(dest, "data.mdb");
	ck_assert_int_eq(mode_of(f), 0600);
	free(f);
	f = path_in(dest, "keys");
	ck_assert_int_eq(mode_of(f), 0600);
	free(f);
	assert_no_leftovers(out);
	tm_close(tm);

	/* The same tasks, byte for byte, and a consistent store. */
	copy = rt_open(dest, 0);
	tt_register(copy, "ext", TM_JOB_PUBLIC);
	for (int i = 0; i < 3; i++) {
		after = tt_get(copy, "ext", ids[i], 0);
		ck_assert_str_eq(after, before[i]);
		tm_free(after);
		tm_free(before[i]);
	}
	ck_assert_int_eq(tt_count(copy, "ext"), 3);
	tt_assert_check(copy, 3);
	tt_trigger(copy, "ext", "{\"refresh_token\": \"tok-new\"}", fresh); /* no worker */
	tm_close(copy);

	/* The waiting task's handler, run from the copy, gets its token. */
	memset(seen.id, 0, sizeof(seen.id));
	seen.n = 0;
	copy = rt_open(dest, 1);
	ck_assert_ok(tm_register(copy, &d));
	rt_await_status(copy, "ext", waiting, "COMPLETED");
	ck_assert_ptr_nonnull(secret_seen(waiting));
	ck_assert_str_eq(secret_seen(waiting), "tok-waiting");
	/* So does a token stored in the copy, read back from it (the copy
	 * lists key slots made ahead whose keys it does not hold). */
	rt_await_status(copy, "ext", fresh, "COMPLETED");
	ck_assert_ptr_nonnull(secret_seen(fresh));
	ck_assert_str_eq(secret_seen(fresh), "tok-new");
	tm_close(copy);

	tt_rmdir(out);
	free(out);
	free(dest);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

/* ---- destinations ------------------------------------------------------------ */

START_TEST(destination_must_be_new_or_an_empty_directory)
{
	char *dir, *out = tt_tmpdir(), id[21], names[1024], *after;
	char *file = path_in(out, "file"), *full = path_in(out, "full");
	char *empty = path_in(out, "empty"), *orphan = path_in(out, "no/such/dir");
	char *inside = path_in(full, "mine");
	tm_manager *tm = rt_open_tmp(&dir, 0), *copy;
	int fd;

	tt_register_with_task(tm, "ext", 0, NULL, id);
	fd = open(file, O_WRONLY | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "keep", 4), 4);
	close(fd);
	ck_assert_int_eq(mkdir(full, 0755), 0);
	fd = open(inside, O_WRONLY | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(mkdir(empty, 0755), 0);

	tt_clear_error();
	ck_assert_err(tm_backup(tm, file), TM_EINVAL);
	ck_assert_msg(strstr(tm_last_error(), "not a directory"), "%s", tm_last_error());
	ck_assert_err(tm_backup(tm, full), TM_EINVAL);
	ck_assert_msg(strstr(tm_last_error(), "not an empty directory"), "%s",
	              tm_last_error());
	ck_assert_err(tm_backup(tm, orphan), TM_ESTORAGE);
	ck_assert_msg(tm_last_error()[0] != '\0', "no message");
	ck_assert_err(tm_backup(tm, NULL), TM_EINVAL);
	ck_assert_err(tm_backup(tm, ""), TM_EINVAL);
	ck_assert_err(tm_backup(NULL, empty), TM_EINVAL);
	/* Refused: left as they were, and nothing beside them. */
	fd = open(file, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, names, sizeof(names)), 4);
	ck_assert_int_eq(memcmp(names, "keep", 4), 0);
	close(fd);
	listing(full, names, sizeof(names));
	ck_assert_str_eq(names, "mine ");
	assert_no_leftovers(out);

	/* An empty directory is replaced by the copy (a trailing slash is
	 * the same directory). */
	{
		char *slashed = path_in(empty, "");

		ck_assert_ok(tm_backup(tm, slashed));
		free(slashed);
	}
	ck_assert_int_eq(mode_of(empty), 0700);
	assert_no_leftovers(out);
	copy = rt_open(empty, 0);
	tt_register(copy, "ext", 0);
	after = tt_get(copy, "ext", id, 0);
	tm_free(after);
	tt_assert_check(copy, 1);
	tm_close(copy);
	/* Now it holds a store: a second backup there is refused. */
	ck_assert_err(tm_backup(tm, empty), TM_EINVAL);

	tm_close(tm);
	free(file);
	free(full);
	free(empty);
	free(orphan);
	free(inside);
	tt_rmdir(out);
	free(out);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

/* ---- while others write ------------------------------------------------------ */

/* Tasks of "job", each with its own token, run by the store's workers and
 * so ended, their keys zeroed and their slots reused, all the time. */
static atomic_int writing;

struct writer {
	tm_manager *tm;
	atomic_int made;
};

#define WRITES_MAX 300

static void *write_loop(void *p)
{
	struct writer *w = p;
	struct timespec ts = { 0, 1000 * 1000 };

	while (atomic_load(&writing) && atomic_load(&w->made) < WRITES_MAX) {
		char body[96], *out;
		int i = atomic_load(&w->made);

		snprintf(body, sizeof(body), "{\"refresh_token\": \"tok-%d\", "
		         "\"context_task\": {\"i\": %d}}", i, i);
		if (tm_trigger(w->tm, "job", body, 0, &out) == TM_OK) {
			tm_free(out);
			atomic_fetch_add(&w->made, 1);
		}
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* Slower than the writers, so that tasks wait in the queue (with their
 * tokens) while others end. */
static tm_status slow_some(tm_job *job, void *user)
{
	struct timespec ts = { 0, 3 * 1000 * 1000 };

	(void)user;
	if (tm_job_task_id(job)[19] % 2)
		nanosleep(&ts, NULL);
	return TM_COMPLETED;
}

START_TEST(copies_taken_while_writing_are_consistent_and_give_right_tokens)
{
	char *dir, *out = tt_tmpdir();
	tm_manager *tm = rt_open_tmp(&dir, 1);
	tm_job_def d = rt_def("job", slow_some, NULL);
	struct writer w = { .tm = tm };
	pthread_t th[2];
	int tokens = 0;

	ck_assert_ok(tm_register(tm, &d));
	atomic_store(&writing, 1);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, write_loop, &w), 0);
	for (int k = 0; k < 3; k++) {
		char name[16], *dest;

		rt_await_atleast(&w.made, (k + 1) * WRITES_MAX / 4);
		snprintf(name, sizeof(name), "copy%d", k);
		dest = path_in(out, name);
		ck_assert_ok(tm_backup(tm, dest));
		free(dest);
	}
	atomic_store(&writing, 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	tm_close(tm);
	assert_no_leftovers(out);

	for (int k = 0; k < 3; k++) {
		char name[16], *dest;
		tm_manager *copy;
		tm_job_def r = rt_def("job", record, NULL), q = rt_def("job", NULL, NULL);
		cJSON *all, *t;

		/* Runs the copy found running had a lease from the store, long
		 * over: whoever registers the name requeues them, never fails
		 * them (attempts to spare). */
		r.max_attempts = q.max_attempts = 100;
		snprintf(name, sizeof(name), "copy%d", k);
		dest = path_in(out, name);
		copy = rt_open(dest, 0);
		ck_assert_ok(tm_register(copy, &q));
		tt_assert_check(copy, -1);
		tm_close(copy);

		/* Every task the copy still had to run runs there, with its own
		 * token or, if it ended in the store before its key was copied,
		 * none: never another task's. */
		seen.n = 0;
		copy = rt_open(dest, 2);
		ck_assert_ok(tm_register(copy, &r));
		all = tt_list_all(copy, "job", 64, 0);
		cJSON_ArrayForEach(t, all)
			rt_await_status(copy, "job", cJSON_GetObjectItem(t, "task_id")->valuestring,
			                "COMPLETED");
		cJSON_Delete(all);
		pthread_mutex_lock(&seen.mu);
		for (int i = 0; i < seen.n; i++) {
			char want[32];
			int n = -1;

			ck_assert_int_eq(sscanf(seen.payload[i], "{\"i\":%d}", &n), 1);
			snprintf(want, sizeof(want), "tok-%d", n);
			ck_assert_msg(strcmp(seen.secret[i], want) == 0 ||
			              strcmp(seen.secret[i], "(null)") == 0,
			              "task %s (i = %d) was given the token %s", seen.id[i], n,
			              seen.secret[i]);
			tokens += strcmp(seen.secret[i], "(null)") != 0;
		}
		pthread_mutex_unlock(&seen.mu);
		tt_assert_check(copy, -1);
		tm_close(copy);
		free(dest);
	}
	ck_assert_msg(tokens > 0, "no copy had a task waiting with its token");
	tt_rmdir(out);
	free(out);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

/* ---- PostgreSQL ------------------------------------------------------------------ */

/* Under PostgreSQL the database's tools back up: TM_EINVAL says which, and
 * nothing is written.  (Under LMDB the same call makes the copy.) */
START_TEST(postgresql_store_is_refused_with_pg_dump)
{
	char *dir, *out = tt_tmpdir(), *dest = path_in(out, "copy"), id[21];
	tm_manager *tm = tt_open_with_task(&dir, "ext", 0, NULL, id);
	struct stat st;

	if (tt_backend_pg()) {
		ck_assert_err(tm_backup(tm, dest), TM_EINVAL);
		ck_assert_msg(strstr(tm_last_error(), "pg_dump"), "%s", tm_last_error());
		ck_assert_int_ne(stat(dest, &st), 0);
	} else {
		ck_assert_ok(tm_backup(tm, dest));
		ck_assert_int_eq(stat(dest, &st), 0);
	}
	assert_no_leftovers(out);
	tt_close_tmp(tm, dir);
	tt_rmdir(out);
	free(out);
	free(dest);
}
END_TEST

TT_MAIN("runtime_backup",
	tt_lmdb_only(copy_opens_with_the_same_tasks_and_tokens,
	             "tm_backup copies LMDB stores; PostgreSQL's refusal is tested"),
	tt_lmdb_only(destination_must_be_new_or_an_empty_directory,
	             "tm_backup copies LMDB stores; PostgreSQL's refusal is tested"),
	tt_lmdb_only(copies_taken_while_writing_are_consistent_and_give_right_tokens,
	             "tm_backup copies LMDB stores; PostgreSQL's refusal is tested"),
	postgresql_store_is_refused_with_pg_dump)
