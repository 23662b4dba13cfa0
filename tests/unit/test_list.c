/* tm_list_recent (doc/api.md, "The five calls"): pages, defaults, bounds,
 * order, views. */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

TT_STORE_FIXTURE

/* A clock seam, the one way to give tasks equal start times: while
 * frozen_us is set, CLOCK_REALTIME reads it.  This executable's
 * clock_gettime interposes the one libtaskmgr.so calls; every other clock
 * passes through to the kernel. */
static _Atomic long long frozen_us;

int clock_gettime(clockid_t clk, struct timespec *ts)
{
	long long f = atomic_load(&frozen_us);

	if (clk == CLOCK_REALTIME && f != 0) {
		ts->tv_sec = (time_t)(f / 1000000);
		ts->tv_nsec = (long)(f % 1000000) * 1000;
		return 0;
	}
	return (int)syscall(SYS_clock_gettime, clk, ts);
}

/* The ids in a list document's tasks, in order, into ids (n returned). */
static int ids_of(const cJSON *list, char ids[][21], int max)
{
	const cJSON *t;
	int n = 0;

	cJSON_ArrayForEach(t, cJSON_GetObjectItem(list, "tasks")) {
		ck_assert_int_lt(n, max);
		snprintf(ids[n++], 21, "%s", cJSON_GetObjectItem(t, "task_id")->valuestring);
	}
	return n;
}

static cJSON *list(tm_manager *tm, const char *name, int page, int amt, unsigned flags)
{
	char *out = NULL;

	ck_assert_ok(tm_list_recent(tm, name, page, amt, flags, &out));
	return tt_json(out);
}

/* Check a page's shape: has_next and next_page as given, n tasks. */
static void assert_page(const cJSON *l, int n, int has_next, int next_page)
{
	const cJSON *tasks = cJSON_GetObjectItem(l, "tasks");

	ck_assert_int_eq(cJSON_GetArraySize(l), 3);
	ck_assert(cJSON_IsBool(cJSON_GetObjectItem(l, "has_next")));
	ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(l, "next_page")));
	ck_assert(cJSON_IsArray(tasks));
	ck_assert_int_eq(cJSON_GetArraySize(tasks), n);
	ck_assert_int_eq(cJSON_IsTrue(cJSON_GetObjectItem(l, "has_next")), has_next);
	ck_assert_int_eq(cJSON_GetObjectItem(l, "next_page")->valueint, next_page);
	ck_assert(cJSON_GetObjectItem(l, "next_page")->valuedouble == next_page);
}

/* Page `page` of amt tasks of "job" (private view) has that shape. */
static void assert_job_page(tm_manager *tm, int page, int amt, int n, int has_next,
                            int next_page)
{
	cJSON *l = list(tm, "job", page, amt, 0);

	assert_page(l, n, has_next, next_page);
	cJSON_Delete(l);
}

/* The two pages of "job" read back as the same text. */
static void assert_same_page(tm_manager *tm, int page_a, int amt_a, int page_b, int amt_b)
{
	char *a = NULL, *b = NULL;

	ck_assert_ok(tm_list_recent(tm, "job", page_a, amt_a, 0, &a));
	ck_assert_ok(tm_list_recent(tm, "job", page_b, amt_b, 0, &b));
	ck_assert_str_eq(a, b);
	tm_free(a);
	tm_free(b);
}

static void trigger_n(tm_manager *tm, const char *name, int n, char ids[][21])
{
	char id[21];

	for (int i = 0; i < n; i++)
		tt_trigger(tm, name, NULL, ids ? ids[i] : id);
}

/* All tasks newest first, through amt-64 pages. */
static int all_ids(tm_manager *tm, const char *name, char ids[][21], int max)
{
	cJSON *all = tt_list_all(tm, name, 64, 0), *t;
	int n = 0;

	cJSON_ArrayForEach(t, all) {
		ck_assert_int_lt(n, max);
		snprintf(ids[n++], 21, "%s", cJSON_GetObjectItem(t, "task_id")->valuestring);
	}
	cJSON_Delete(all);
	return n;
}

START_TEST(first_page_holds_the_newest_and_points_on)
{
	char all[5][21], got[5][21];
	cJSON *l;

	tt_register(tm, "job", 0);
	trigger_n(tm, "job", 5, NULL);
	ck_assert_int_eq(all_ids(tm, "job", all, 5), 5);
	l = list(tm, "job", 1, 2, 0);
	assert_page(l, 2, 1, 2);
	ck_assert_int_eq(ids_of(l, got, 5), 2);
	ck_assert_str_eq(got[0], all[0]);
	ck_assert_str_eq(got[1], all[1]);
	cJSON_Delete(l);
}
END_TEST

START_TEST(last_page_says_no_next)
{
	char all[5][21], got[5][21];
	cJSON *l;

	tt_register(tm, "job", 0);
	trigger_n(tm, "job", 4, NULL);
	/* A last page that is exactly full. */
	assert_job_page(tm, 2, 2, 2, 0, 3);
	/* A last page that is partly full. */
	trigger_n(tm, "job", 1, NULL);
	ck_assert_int_eq(all_ids(tm, "job", all, 5), 5);
	assert_job_page(tm, 2, 2, 2, 1, 3);
	l = list(tm, "job", 3, 2, 0);
	assert_page(l, 1, 0, 4);
	ids_of(l, got, 5);
	ck_assert_str_eq(got[0], all[4]);
	cJSON_Delete(l);
	/* One page holding everything. */
	assert_job_page(tm, 1, 5, 5, 0, 2);
	assert_job_page(tm, 1, 4, 4, 1, 2);
}
END_TEST

START_TEST(page_past_the_end_is_empty)
{
	cJSON *l;

	tt_register(tm, "job", 0);
	trigger_n(tm, "job", 3, NULL);
	tt_register(tm, "none", 0);
	l = list(tm, "none", 1, 10, 0);
	assert_page(l, 0, 0, 2);
	cJSON_Delete(l);
	assert_job_page(tm, 2, 3, 0, 0, 3);
	assert_job_page(tm, 10, 64, 0, 0, 11);
	assert_job_page(tm, 1000000, 64, 0, 0, 1000001);
	l = list(tm, "job", INT_MAX, 64, 0);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(l, "tasks")), 0);
	ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(l, "has_next")));
	ck_assert(cJSON_GetObjectItem(l, "next_page")->valuedouble == (double)INT_MAX + 1);
	cJSON_Delete(l);
}
END_TEST

START_TEST(amt_one_walks_every_task_once)
{
	char all[7][21], got[1][21];

	tt_register(tm, "job", 0);
	trigger_n(tm, "job", 7, NULL);
	ck_assert_int_eq(all_ids(tm, "job", all, 7), 7);
	for (int page = 1; page <= 7; page++) {
		cJSON *l = list(tm, "job", page, 1, 0);
		assert_page(l, 1, page < 7, page + 1);
		ids_of(l, got, 1);
		ck_assert_str_eq(got[0], all[page - 1]);
		cJSON_Delete(l);
	}
}
END_TEST

/* One task more than a page of amt holds (`full`): the first page is full
 * and points on, the second holds the last task. */
static void assert_one_over_a_page(int amt, int full)
{
	tt_register(tm, "job", 0);
	trigger_n(tm, "job", full + 1, NULL);
	assert_job_page(tm, 1, amt, full, 1, 2);
	assert_job_page(tm, 2, amt, 1, 0, 3);
}

START_TEST(amt_64_is_the_largest_page)
{
	assert_one_over_a_page(64, 64);
}
END_TEST

START_TEST(amt_0_means_50)
{
	assert_one_over_a_page(0, 50);
	assert_same_page(tm, 1, 0, 1, 50);
}
END_TEST

START_TEST(page_0_means_1)
{
	tt_register(tm, "job", 0);
	trigger_n(tm, "job", 3, NULL);
	assert_same_page(tm, 0, 2, 1, 2);
	assert_job_page(tm, 0, 2, 2, 1, 2);
	assert_same_page(tm, 0, 0, 1, 50);
}
END_TEST

START_TEST(bad_page_or_amt_is_wrong_data)
{
	static const int pages[] = { -1, -2, INT_MIN };
	static const int amts[] = { 65, 66, 1000, INT_MAX, -1, -64, INT_MIN };
	char *out;

	tt_register(tm, "job", 0);
	trigger_n(tm, "job", 2, NULL);
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		tt_clear_error();
		ck_assert_refused(tm_list_recent(tm, "job", pages[i], 10, 0, &out),
		                  TM_EWRONG_DATA, out);
		ck_assert_uint_gt(strlen(tm_last_error()), 0);
	}
	for (size_t i = 0; i < sizeof(amts) / sizeof(amts[0]); i++) {
		tt_clear_error();
		ck_assert_refused(tm_list_recent(tm, "job", 1, amts[i], 0, &out),
		                  TM_EWRONG_DATA, out);
		ck_assert_uint_gt(strlen(tm_last_error()), 0);
		ck_assert_err(tm_list_recent(tm, "job", 0, amts[i], TM_PUBLIC, NULL),
		              TM_EWRONG_DATA);
	}
	ck_assert_err(tm_list_recent(tm, "job", -1, -1, 0, NULL), TM_EWRONG_DATA);
}
END_TEST

static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

enum { RACERS = 8, PER_RACER = 100, N = RACERS * PER_RACER };

struct racer {
	tm_manager *tm;
	pthread_barrier_t *go;
	char (*ids)[21];
	int failed;
};

/* Trigger PER_RACER tasks as fast as possible: racing threads read the
 * clock in the same microsecond now and then, which makes the ties that
 * the API gives no other way to create. */
static void *race(void *p)
{
	struct racer *r = p;

	pthread_barrier_wait(r->go);
	for (int i = 0; i < PER_RACER; i++) {
		char *out = NULL;
		cJSON *j;

		if (tm_trigger(r->tm, "job", NULL, 0, &out) != TM_OK) {
			r->failed++;
			continue;
		}
		j = cJSON_Parse(out);
		snprintf(r->ids[i], 21, "%s", cJSON_GetObjectItem(j, "task_id")->valuestring);
		cJSON_Delete(j);
		tm_free(out);
	}
	return NULL;
}

/* The tasks of "job" as listed through pages of amt, newest first: each
 * start_time no later than the one before, equal ones by task_id
 * descending.  Returns the number listed. */
static int assert_listed_in_order(tm_manager *tm, int amt, char (*listed)[21], int max)
{
	cJSON *all = tt_list_all(tm, "job", amt, 0), *t;
	double prev_time = 0;
	char prev_id[21] = "";
	int n = 0;

	cJSON_ArrayForEach(t, all) {
		double st = cJSON_GetObjectItem(t, "start_time")->valuedouble;
		const char *id = cJSON_GetObjectItem(t, "task_id")->valuestring;

		ck_assert_int_lt(n, max);
		if (n > 0) {
			ck_assert_msg(st <= prev_time, "%s (%.6f) listed after %s (%.6f)",
			              id, st, prev_id, prev_time);
			if (st == prev_time)
				ck_assert_msg(strcmp(id, prev_id) < 0, "tie: %s listed after %s",
				              id, prev_id);
		}
		prev_time = st;
		snprintf(prev_id, sizeof(prev_id), "%s", id);
		if (listed)
			snprintf(listed[n], 21, "%s", id);
		n++;
	}
	cJSON_Delete(all);
	return n;
}

START_TEST(newest_start_time_first_ties_by_task_id_descending)
{
	char (*ids)[21] = calloc(N, sizeof(*ids));
	char (*listed)[21] = calloc(N + 1, sizeof(*listed));
	struct racer r[RACERS];
	pthread_t th[RACERS];
	pthread_barrier_t go;

	tt_register(tm, "job", 0);
	ck_assert_ptr_nonnull(ids);
	ck_assert_ptr_nonnull(listed);
	pthread_barrier_init(&go, NULL, RACERS);
	for (int i = 0; i < RACERS; i++) {
		r[i] = (struct racer){ tm, &go, ids + i * PER_RACER, 0 };
		ck_assert_int_eq(pthread_create(&th[i], NULL, race, &r[i]), 0);
	}
	for (int i = 0; i < RACERS; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(r[i].failed, 0);
	}
	pthread_barrier_destroy(&go);
	/* Pages of 37 do not divide the tasks: ties meet page boundaries, and
	 * the last page is partly full. */
	ck_assert_int_eq(assert_listed_in_order(tm, 37, listed, N), N);
	assert_job_page(tm, (N + 36) / 37, 37, N - (N - 1) / 37 * 37, 0, (N + 36) / 37 + 1);
	/* The listing holds exactly the triggered ids. */
	qsort(ids, N, sizeof(*ids), cmp_id);
	qsort(listed, N, sizeof(*listed), cmp_id);
	for (int i = 0; i < N; i++)
		ck_assert_str_eq(ids[i], listed[i]);
	free(ids);
	free(listed);
}
END_TEST

START_TEST(equal_start_times_list_by_task_id_descending)
{
	enum { TIED = 150 };
	/* Now, not some day in the past: the supervisor would time such old
	 * tasks out (timeout_at is a day after start) and prune them. */
	struct timespec real;
	long long frozen;
	cJSON *all, *t;
	int n = 0;

	tt_register(tm, "job", 0);
	syscall(SYS_clock_gettime, CLOCK_REALTIME, &real);
	frozen = (long long)real.tv_sec * 1000000 + real.tv_nsec / 1000;
	tt_register(tm, "later", 0);
	trigger_n(tm, "later", 1, NULL);
	atomic_store(&frozen_us, frozen);
	trigger_n(tm, "job", TIED, NULL);
	atomic_store(&frozen_us, frozen + 1);
	trigger_n(tm, "job", 1, NULL); /* one newer task, listed first */
	atomic_store(&frozen_us, 0);
	ck_assert_int_eq(assert_listed_in_order(tm, 64, NULL, TIED + 1), TIED + 1);
	all = tt_list_all(tm, "job", 64, 0);
	/* The store's clock is the frozen one, plus (PostgreSQL) a constant
	 * offset to the server's clock: the first task is 1 us newer, the
	 * rest tie. */
	double newest = cJSON_GetObjectItem(cJSON_GetArrayItem(all, 0), "start_time")->valuedouble;
	cJSON_ArrayForEach(t, all) {
		double st = cJSON_GetObjectItem(t, "start_time")->valuedouble;

		ck_assert_msg(n++ == 0 || (long long)(newest * 1e6 + 0.5) - (long long)(st * 1e6 + 0.5) == 1,
		              "start_time %.6f: the clock seam had no effect", st);
	}
	(void)frozen;
	cJSON_Delete(all);
}
END_TEST

START_TEST(public_view_hides_details_and_private_names)
{
	char *out;
	cJSON *l, *t;

	tt_register(tm, "pub", TM_JOB_PUBLIC);
	tt_register(tm, "priv", 0);
	trigger_n(tm, "pub", 3, NULL);
	trigger_n(tm, "priv", 3, NULL);
	l = list(tm, "pub", 1, 10, TM_PUBLIC);
	assert_page(l, 3, 0, 2);
	cJSON_ArrayForEach(t, cJSON_GetObjectItem(l, "tasks")) {
		ck_assert_ptr_null(cJSON_GetObjectItem(t, "details"));
		ck_assert_int_eq(cJSON_GetArraySize(t), 6);
	}
	cJSON_Delete(l);
	l = list(tm, "pub", 1, 10, 0);
	cJSON_ArrayForEach(t, cJSON_GetObjectItem(l, "tasks")) {
		ck_assert(cJSON_IsObject(cJSON_GetObjectItem(t, "details")));
		ck_assert_int_eq(cJSON_GetArraySize(t), 7);
	}
	cJSON_Delete(l);
	ck_assert_refused(tm_list_recent(tm, "priv", 1, 10, TM_PUBLIC, &out),
	                  TM_EWRONG_DATA, out);
	l = list(tm, "priv", 1, 10, 0);
	assert_page(l, 3, 0, 2);
	cJSON_Delete(l);
}
END_TEST

START_TEST(another_names_tasks_never_appear)
{
	static const char *const names[] = { "jo", "job", "job2", "job.a", "jobb", "b" };
	enum { NN = sizeof(names) / sizeof(names[0]) };

	for (int i = 0; i < NN; i++)
		tt_register(tm, names[i], 0);
	tt_register(tm, "empty", 0);
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < NN; i++)
			trigger_n(tm, names[i], i + 1, NULL);
	for (int i = 0; i < NN; i++) {
		cJSON *all = tt_list_all(tm, names[i], 4, 0), *t;

		cJSON_ArrayForEach(t, all)
			ck_assert_str_eq(cJSON_GetObjectItem(t, "name")->valuestring, names[i]);
		ck_assert_int_eq(cJSON_GetArraySize(all), 3 * (i + 1));
		cJSON_Delete(all);
	}
	ck_assert_int_eq(tt_count(tm, "empty"), 0);
}
END_TEST

START_TEST(unregistered_name_is_wrong_data)
{
	char *out;

	tt_register(tm, "job", 0);
	trigger_n(tm, "job", 1, NULL);
	ck_assert_refused(tm_list_recent(tm, "nope", 1, 10, 0, &out), TM_EWRONG_DATA, out);
	ck_assert_err(tm_list_recent(tm, "jo", 1, 10, 0, NULL), TM_EWRONG_DATA);
	ck_assert_err(tm_list_recent(tm, "", 1, 10, 0, NULL), TM_EWRONG_DATA);
	ck_assert_err(tm_list_recent(tm, NULL, 1, 10, 0, NULL), TM_EWRONG_DATA);
}
END_TEST

START_TEST(listed_tasks_equal_their_get)
{
	char id[21];
	cJSON *l, *t;

	tt_register_with_task(tm, "job", TM_JOB_PUBLIC, "{\"context_task\":{\"a\":1}}", id);
	ck_assert_ok(tm_patch(tm, "job", id, "{\"status\":\"RUNNING\",\"details\":"
	             "{\"progress\":{\"message\":\"half\"}}}", NULL));
	tt_trigger(tm, "job", NULL, id);
	for (unsigned flags = 0; flags <= TM_PUBLIC; flags++) {
		l = list(tm, "job", 1, 10, flags);
		ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(l, "tasks")), 2);
		cJSON_ArrayForEach(t, cJSON_GetObjectItem(l, "tasks")) {
			cJSON *g = tt_task(tm, "job",
			                   cJSON_GetObjectItem(t, "task_id")->valuestring, flags);
			ck_assert(cJSON_Compare(t, g, 1));
			cJSON_Delete(g);
		}
		cJSON_Delete(l);
	}
}
END_TEST

TT_STORE_MAIN("list",
	first_page_holds_the_newest_and_points_on,
	last_page_says_no_next,
	page_past_the_end_is_empty,
	amt_one_walks_every_task_once,
	amt_64_is_the_largest_page,
	amt_0_means_50,
	page_0_means_1,
	bad_page_or_amt_is_wrong_data,
	newest_start_time_first_ties_by_task_id_descending,
	equal_start_times_list_by_task_id_descending,
	public_view_hides_details_and_private_names,
	another_names_tasks_never_appear,
	unregistered_name_is_wrong_data,
	listed_tasks_equal_their_get)
