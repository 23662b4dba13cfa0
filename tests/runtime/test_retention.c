/* Retention (doc/runtime.md, "Retention"): final tasks beyond keep_count
 * per name, or older than keep_age_s, are pruned oldest first, with their
 * index entries; active tasks never are.  The write that makes a task
 * final keeps its name at most keep_count + slack final tasks (slack:
 * keep_count / 4, at most 64) at every commit, however fast tasks end;
 * the supervisor trims to keep_count and prunes by age. */
#include <pthread.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <string.h>

#include "rt.h"

#define KEEP 5
#define FINALS 150  /* many times keep_count + slack */

/* How finish() ends the k-th task, and the status that leaves. */
static const struct {
	const char *patch, *status;
} endings[3] = {
	{ "{\"completed\": true}", "COMPLETED" },
	{ "{\"failed\": true}", "FAILED" },
	{ "{\"status\": \"CANCELLED\"}", "CANCELLED" },
};

/* A store without workers whose options keep keep_count final tasks per
 * name and none older than keep_age_s (0: the defaults), with "ext"
 * registered, driven by tm_patch. */
static tm_manager *open_keeping(const char *dir, unsigned keep_count, double keep_age_s)
{
	tm_options o;
	tm_manager *tm;

	rt_options(&o, dir, 0);
	o.keep_count = keep_count;
	o.keep_age_s = keep_age_s;
	tm = rt_open_with(&o);
	tt_register(tm, "ext", 0);
	return tm;
}

/* Three active tasks, the oldest of the name: waiting, running, cancel
 * requested. */
static void make_active(tm_manager *tm, char ids[3][21])
{
	for (int i = 0; i < 3; i++)
		tt_trigger(tm, "ext", "{\"refresh_token\": \"tok\"}", ids[i]);
	ck_assert_ok(tm_patch(tm, "ext", ids[1], "{\"status\": \"RUNNING\"}", NULL));
	ck_assert_ok(tm_patch(tm, "ext", ids[2], "{\"status\": \"RUNNING\"}", NULL));
	ck_assert_ok(tm_cancel(tm, "ext", ids[2], NULL));
}

static void assert_active(tm_manager *tm, char ids[3][21])
{
	static const char *want[3] = { "REQUEST_SENT", "RUNNING", "CANCELLED_REQUESTED" };
	char buf[32];

	for (int i = 0; i < 3; i++)
		ck_assert_str_eq(tt_status(tm, "ext", ids[i], buf), want[i]);
}

/* A new task of "ext" that ran and ended the k-th way of endings. */
static void finished(tm_manager *tm, int k, char id[21])
{
	tt_trigger(tm, "ext", "{\"refresh_token\": \"tok\"}", id);
	ck_assert_ok(tm_patch(tm, "ext", id, "{\"status\": \"RUNNING\"}", NULL));
	ck_assert_ok(tm_patch(tm, "ext", id, endings[k % 3].patch, NULL));
}

START_TEST(retention_prunes_oldest_first_down_to_keep_count)
{
	char *dir = tt_tmpdir(), active[3][21], (*ids)[21] = calloc(FINALS, 21), buf[32];
	tm_manager *tm = open_keeping(dir, KEEP, 0);

	make_active(tm, active);
	for (int i = 0; i < FINALS; i++)
		finished(tm, i, ids[i]);
	rt_await_count(tm, "ext", 3 + KEEP);
	rt_barrier(tm);
	ck_assert_int_eq(tt_count(tm, "ext"), 3 + KEEP);
	assert_active(tm, active);
	/* The newest finals are the ones kept, each as it ended. */
	for (int i = FINALS - KEEP; i < FINALS; i++)
		ck_assert_str_eq(tt_status(tm, "ext", ids[i], buf), endings[i % 3].status);
	for (int i = 0; i < FINALS - KEEP; i++)
		ck_assert_err(tm_get(tm, "ext", ids[i], 0, NULL), TM_ETASK_NOT_FOUND);
	ck_assert_int_eq(tt_stat(tm, "ext", "COMPLETED") + tt_stat(tm, "ext", "FAILED") +
	                 tt_stat(tm, "ext", "CANCELLED"), KEEP);
	tt_assert_check(tm, -1);
	free(ids);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(retention_prunes_finals_older_than_keep_age)
{
	char *dir = tt_tmpdir(), active[3][21], done[2][21];
	tm_manager *tm = open_keeping(dir, 0, 0.3);

	make_active(tm, active);
	for (int i = 0; i < 2; i++)
		finished(tm, i, done[i]);
	rt_await_count(tm, "ext", 3);
	for (int i = 0; i < 2; i++)
		ck_assert_err(tm_get(tm, "ext", done[i], 0, NULL), TM_ETASK_NOT_FOUND);
	/* Older than keep_age_s, and kept: they are active. */
	rt_barrier(tm);
	assert_active(tm, active);
	tt_assert_check(tm, -1);
	tt_close_tmp(tm, dir);
}
END_TEST

/* Finals of a name with a handler are pruned too; the running one is kept. */
static atomic_int release;

static tm_status job(tm_job *j, void *user)
{
	(void)user;
	if (strstr(tm_job_payload(j), "block"))
		tt_wait(rt_flag_set, &release, 60);
	return TM_COMPLETED;
}

START_TEST(retention_never_prunes_a_running_task)
{
	char *dir = tt_tmpdir(), first[21], id[21], buf[32];
	tm_options o;
	tm_manager *tm;
	tm_job_def d = rt_def("job", job, NULL);

	atomic_store(&release, 0);
	rt_options(&o, dir, 2);
	o.keep_count = 2;
	o.keep_age_s = 0.2;
	tm = rt_open_with(&o);
	ck_assert_ok(tm_register(tm, &d));
	tt_trigger(tm, "job", "{\"context_task\": {\"block\": true}}", first);
	rt_await_status(tm, "job", first, "RUNNING");
	for (int i = 0; i < 10; i++)
		tt_trigger(tm, "job", NULL, id);
	rt_await_count(tm, "job", 1);
	ck_assert_str_eq(tt_status(tm, "job", first, buf), "RUNNING");
	atomic_store(&release, 1);
	rt_await_status(tm, "job", first, "COMPLETED");
	tt_close_tmp(tm, dir);
}
END_TEST

/* ---- the bound, kept by the writes themselves ----------------------------- */

/* The name's final tasks, as tm_stats counts them. */
static long finals_in(const cJSON *stats, const char *name)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(stats, "names"), name);
	static const char *const keys[3] = { "COMPLETED", "FAILED", "CANCELLED" };
	long sum = 0;

	for (int i = 0; i < 3; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(n, keys[i]);

		sum += cJSON_IsNumber(v) ? (long)v->valuedouble : 0;
	}
	return sum;
}

static long finals_now(tm_manager *tm, const char *name)
{
	char *out = NULL;
	cJSON *j;
	long n;

	ck_assert_ok(tm_stats(tm, &out));
	j = tt_json(out);
	n = finals_in(j, name);
	cJSON_Delete(j);
	return n;
}

static long slack_of(long keep)
{
	return keep / 4 < 64 ? keep / 4 : 64;
}

/* keep_count + slack, the documented bound at every commit. */
static long bound_of(long keep)
{
	return keep + slack_of(keep);
}

/* One writer: right after each write that ends a task, whatever the
 * supervisor did meanwhile, the name holds at most keep_count + slack
 * final tasks, and never fewer than keep_count once it had them.  On
 * PostgreSQL the supervisor's pass is a second pruner: a write that finds
 * it holding the name's retention lock leaves the pruning to it, up to
 * keep_count + 2 x slack. */
START_TEST(retention_bound_holds_after_every_final_write)
{
	char *dir = tt_tmpdir(), id[21];
	tm_manager *tm = open_keeping(dir, 10, 0);
	long most = 0, limit = bound_of(10) + (tt_backend_pg() ? slack_of(10) : 0);

	for (int i = 0; i < 200; i++) {
		long n;

		finished(tm, i, id);
		n = finals_now(tm, "ext");
		ck_assert_msg(n <= limit, "%ld final tasks after write %d", n, i);
		ck_assert_msg(n >= (i + 1 < 10 ? i + 1 : 10), "%ld final tasks after write %d",
		              n, i);
		if (n > most)
			most = n;
	}
	/* It went up to the bound: pruned by the writes, not by the
	 * supervisor's pass, which takes it down to keep_count once a second. */
	ck_assert_int_ge(most, bound_of(10));
	tt_assert_check(tm, -1);
	tt_close_tmp(tm, dir);
}
END_TEST

/* Kept are the newest by start time: a write that ends the oldest task of
 * a name at its bound prunes that very task, after it answered with it. */
START_TEST(retention_prunes_the_oldest_even_as_it_ends)
{
	char *dir = tt_tmpdir(), old[21], id[21], buf[32];
	tm_manager *tm = open_keeping(dir, 2, 0);
	bool pruned = false;

	/* A round fills the name to its bound, then ends a task older than
	 * all the others; the supervisor may trim to keep_count in between
	 * (once a second), so a round may prune nothing: try a few. */
	for (int round = 0; round < 10 && !pruned; round++) {
		char *out = NULL;
		cJSON *task;

		tt_trigger(tm, "ext", NULL, old);
		do
			finished(tm, 0, id);
		while (finals_now(tm, "ext") < bound_of(2));
		ck_assert_ok(tm_patch(tm, "ext", old, "{\"completed\": true}", &out));
		task = tt_json(out);
		ck_assert_str_eq(rt_status_of(task), "COMPLETED");
		cJSON_Delete(task);
		ck_assert_int_le(finals_now(tm, "ext"), bound_of(2));
		ck_assert_str_eq(tt_status(tm, "ext", id, buf), "COMPLETED");
		pruned = tm_get(tm, "ext", old, 0, NULL) == TM_ETASK_NOT_FOUND;
	}
	ck_assert(pruned);
	tt_assert_check(tm, -1);
	tt_close_tmp(tm, dir);
}
END_TEST

/* Tasks end fast, from several threads at once: through workers (many
 * outcomes in one transaction) and through tm_patch.  Another thread
 * reads tm_stats all along: no name ever shows more than 2 x keep_count
 * final tasks.  (20000 tasks; 8000 on PostgreSQL, where they take some
 * ten times longer on a small machine.) */
#define FLOOD_KEEP 100
#define FLOOD_TASKS (sanitized() ? 4000 : tt_backend_pg() ? 8000 : 20000)

/* Under a sanitizer (tests/meson.build sets TM_TEST_SANITIZED): the flood
 * is smaller, still forty times keep_count. */
static int sanitized(void)
{
	const char *s = getenv("TM_TEST_SANITIZED");

	return s && strcmp(s, "1") == 0;
}
#define FLOOD_THREADS 4   /* half trigger "job", half trigger and end "ext" */

struct flood {
	tm_manager *tm;
	atomic_int producers;   /* still at work */
	atomic_int errors;
	atomic_long most_job, most_ext, samples;
	atomic_int stop;
};

static void raise_to(atomic_long *most, long n)
{
	long m = atomic_load(most);

	while (n > m && !atomic_compare_exchange_weak(most, &m, n))
		;
}

static void *flood_sample(void *p)
{
	struct flood *f = p;

	while (!atomic_load(&f->stop)) {
		char *out = NULL;
		cJSON *j;

		if (tm_stats(f->tm, &out) != TM_OK || (j = cJSON_Parse(out)) == NULL) {
			atomic_fetch_add(&f->errors, 1);
			tm_free(out);
			break;
		}
		raise_to(&f->most_job, finals_in(j, "job"));
		raise_to(&f->most_ext, finals_in(j, "ext"));
		atomic_fetch_add(&f->samples, 1);
		cJSON_Delete(j);
		tm_free(out);
	}
	return NULL;
}

static void *flood_job(void *p)
{
	struct flood *f = p;

	for (int i = 0; i < FLOOD_TASKS / FLOOD_THREADS; i++)
		if (tm_trigger(f->tm, "job", NULL, 0, NULL) != TM_OK)
			atomic_fetch_add(&f->errors, 1);
	atomic_fetch_sub(&f->producers, 1);
	return NULL;
}

static void *flood_ext(void *p)
{
	struct flood *f = p;

	for (int i = 0; i < FLOOD_TASKS / FLOOD_THREADS; i++) {
		char *out = NULL, id[21];

		if (tm_trigger(f->tm, "ext", NULL, 0, &out) != TM_OK) {
			atomic_fetch_add(&f->errors, 1);
			continue;
		}
		memcpy(id, out + 12, 20); /* {"task_id":"<20>"} */
		id[20] = '\0';
		tm_free(out);
		if (tm_patch(f->tm, "ext", id, endings[i % 3].patch, NULL) != TM_OK)
			atomic_fetch_add(&f->errors, 1);
	}
	atomic_fetch_sub(&f->producers, 1);
	return NULL;
}

/* Every "job" task has ended: none waits or runs. */
static int flood_done(void *p)
{
	struct flood *f = p;
	char *out = NULL;
	cJSON *j, *names;
	int done;

	if (atomic_load(&f->producers) > 0)
		return 0;
	ck_assert_ok(tm_stats(f->tm, &out));
	j = tt_json(out);
	names = cJSON_GetObjectItemCaseSensitive(j, "names");
	done = cJSON_GetObjectItemCaseSensitive(j, "queue_depth")->valuedouble == 0 &&
	       cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(names, "job"),
	                                        "RUNNING")->valuedouble == 0;
	cJSON_Delete(j);
	return done;
}

START_TEST(retention_bound_holds_while_tasks_end_fast)
{
	char *dir = tt_tmpdir();
	tm_options o;
	tm_job_def d = rt_def("job", rt_complete, NULL);
	pthread_t producers[FLOOD_THREADS], sampler;
	struct flood f = { 0 };
	long job, ext;

	rt_options(&o, dir, 2);
	o.keep_count = FLOOD_KEEP;
	f.tm = rt_open_with(&o);
	ck_assert_ok(tm_register(f.tm, &d));
	tt_register(f.tm, "ext", 0);
	atomic_store(&f.producers, FLOOD_THREADS);
	ck_assert_int_eq(pthread_create(&sampler, NULL, flood_sample, &f), 0);
	for (int i = 0; i < FLOOD_THREADS; i++)
		ck_assert_int_eq(pthread_create(&producers[i], NULL,
		                                i % 2 ? flood_ext : flood_job, &f), 0);
	for (int i = 0; i < FLOOD_THREADS; i++)
		pthread_join(producers[i], NULL);
	ck_assert_msg(tt_wait(flood_done, &f, 90), "the job tasks never all ended");
	atomic_store(&f.stop, 1);
	pthread_join(sampler, NULL);
	printf("retention_bound_holds_while_tasks_end_fast: at most %ld (job) and %ld (ext) "
	       "final tasks in %ld samples; keep_count %d\n", atomic_load(&f.most_job),
	       atomic_load(&f.most_ext), atomic_load(&f.samples), FLOOD_KEEP);
	ck_assert_int_eq(atomic_load(&f.errors), 0);
	ck_assert_int_gt(atomic_load(&f.samples), 10);
	ck_assert_msg(atomic_load(&f.most_job) <= 2 * FLOOD_KEEP,
	              "job: %ld final tasks seen (keep_count %d)",
	              atomic_load(&f.most_job), FLOOD_KEEP);
	ck_assert_msg(atomic_load(&f.most_ext) <= 2 * FLOOD_KEEP,
	              "ext: %ld final tasks seen (keep_count %d)",
	              atomic_load(&f.most_ext), FLOOD_KEEP);
	/* Every task ended, and keep_count of each name are left. */
	rt_barrier(f.tm);
	job = finals_now(f.tm, "job");
	ext = finals_now(f.tm, "ext");
	ck_assert_msg(job >= FLOOD_KEEP && job <= bound_of(FLOOD_KEEP), "job: %ld", job);
	ck_assert_msg(ext >= FLOOD_KEEP && ext <= bound_of(FLOOD_KEEP), "ext: %ld", ext);
	tt_assert_check(f.tm, -1);
	tt_close_tmp(f.tm, dir);
}
END_TEST

/* The store stops growing once the kept tasks and the pages freed by
 * pruning balance.  20000 tasks end, in 8 rounds; from the 4th round on
 * neither the data in the store (store_bytes less LMDB's free pages) nor
 * the file (data.mdb, store_bytes) grows by more than 16 pages, where the
 * last 10000 tasks alone would take some 5 MB unpruned.  The writes prune
 * (the supervisor ticks once an hour here): a read transaction open
 * meanwhile, as the supervisor's on a busy machine, would keep the pages
 * freed while it lasts from reuse, and the file would take a step up
 * (then stay there). */
static long file_bytes(const char *dir)
{
	char path[RT_PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	ck_assert_int_eq(stat(path, &st), 0);
	return (long)st.st_size;
}

START_TEST(retention_store_size_plateaus)
{
	enum { ROUNDS = 8, PAGES16 = 16 * 4096 };
	char *dir = tt_tmpdir(), id[21], sizes[1024];
	long used[ROUNDS], live[ROUNDS], file[ROUNDS];
	size_t n = 0;
	tm_options o;
	tm_manager *tm;

	rt_options(&o, dir, 0);
	o.keep_count = FLOOD_KEEP;
	o.poll_ms = o.lease_ms = 3600000;
	tm = rt_open_with(&o);
	tt_register(tm, "ext", 0);
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < FLOOD_TASKS / ROUNDS; i++) {
			char *out = NULL;

			ck_assert_ok(tm_trigger(tm, "ext", "{\"context_task\": {\"pad\": "
			             "\"0123456789012345678901234567890123456789\"}}", 0, &out));
			memcpy(id, out + 12, 20);
			id[20] = '\0';
			tm_free(out);
			ck_assert_ok(tm_patch(tm, "ext", id, endings[i % 3].patch, NULL));
		}
		used[r] = (long)tt_stat(tm, NULL, "store_bytes");
		live[r] = used[r] - (long)tt_stat(tm, NULL, "free_bytes");
		file[r] = file_bytes(dir);
		n += (size_t)snprintf(sizes + n, sizeof(sizes) - n, " [%ld %ld %ld]",
		                      used[r], live[r], file[r]);
	}
	printf("retention_store_size_plateaus: store_bytes, data, data.mdb after each "
	       "round of %d tasks:%s\n", FLOOD_TASKS / ROUNDS, sizes);
	for (int r = 4; r < ROUNDS; r++)
		ck_assert_msg(live[r] <= live[3] + PAGES16 && used[r] <= used[3] + PAGES16 &&
		              file[r] <= file[3] + PAGES16,
		              "store_bytes, data, data.mdb after each round:%s", sizes);
	ck_assert_int_le(finals_now(tm, "ext"), bound_of(FLOOD_KEEP));
	tt_assert_check(tm, -1);
	tt_close_tmp(tm, dir);
}
END_TEST

/* A name this process did not register keeps its tasks, even when this
 * process ends them (its supervisor times them out): another process's
 * name, another process's policy.  Registered, it is pruned. */
static int all_other_failed(void *tm)
{
	return tt_stat(tm, "other", "FAILED") == 10;
}

START_TEST(retention_leaves_names_registered_elsewhere)
{
	char *dir = tt_tmpdir(), id[21];
	tm_options o;
	tm_manager *tm = open_keeping(dir, 1000000, 0);
	tm_job_def d = rt_def("other", NULL, NULL);

	d.timeout_s = 3; /* ends in the process opened next */
	ck_assert_ok(tm_register(tm, &d));
	for (int i = 0; i < 10; i++)
		finished(tm, i, id);
	for (int i = 0; i < 10; i++)
		tt_trigger(tm, "other", NULL, id);
	tm_close(tm);

	rt_options(&o, dir, 0);
	o.keep_count = 2;
	tm = rt_open_with(&o);
	tt_register(tm, "ext", 0);
	/* Unregistered, the name is read through tm_stats only. */
	ck_assert_msg(tt_wait(all_other_failed, tm, RT_DEADLINE),
	              "the tasks of other never timed out");
	rt_barrier(tm);
	ck_assert_int_eq(tt_stat(tm, "other", "total"), 10);
	rt_await_count(tm, "ext", 2);
	ck_assert_ok(tm_register(tm, &d));
	rt_await_count(tm, "other", 2);
	tt_assert_check(tm, -1);
	tt_close_tmp(tm, dir);
}
END_TEST

TT_MAIN("runtime_retention",
	retention_prunes_oldest_first_down_to_keep_count,
	retention_prunes_finals_older_than_keep_age,
	retention_never_prunes_a_running_task,
	retention_bound_holds_after_every_final_write,
	retention_prunes_the_oldest_even_as_it_ends,
	retention_bound_holds_while_tasks_end_fast,
	tt_lmdb_only(retention_store_size_plateaus,
	             "PostgreSQL reclaims deleted rows by VACUUM, on its own schedule"),
	retention_leaves_names_registered_elsewhere)
