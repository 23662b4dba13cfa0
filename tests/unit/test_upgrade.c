/* A store of the first layout (schema 1: records by id, a separate listing
 * index, format-2 records) opened by this library: it is upgraded in place,
 * lists and reads every task as before, passes tm_check, and its running
 * and waiting tasks are found again by the runtime (the deadlines and the
 * queue carried over).  The old store is written here byte by byte, as the
 * first layout's code wrote it.  Linked against the internal static
 * library for the store's key helpers. */
#include <lmdb.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "id.h"
#include "store_lmdb.h"

struct head2 {                  /* a format-2 record's head */
	uint8_t format, status, flags, name_len;
	uint32_t warnings_len, details_len, message_len;
	int64_t start_us, timeout_us, ready_us, lease_us;
	uint64_t owner;
};

struct old_task {
	const char *id;
	tm_status status;
	bool queued;
	int64_t start_s, lease_s;
	uint64_t owner;
	const char *details, *message;
};

#define S 1000000LL

/* Times are seconds after base, a while ago: recent enough that no
 * retention by age takes the final ones. */
static int64_t base;

static void put(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kn,
                const void *v, size_t vn)
{
	MDB_val key = { kn, (void *)k }, val = { vn, (void *)v };

	ck_assert_int_eq(mdb_put(txn, dbi, &key, &val, 0), 0);
}

static MDB_dbi db(MDB_txn *txn, const char *name)
{
	MDB_dbi dbi;

	ck_assert_int_eq(mdb_dbi_open(txn, name, MDB_CREATE, &dbi), 0);
	return dbi;
}

/* Write tasks as the schema-1 code did: "tasks" id -> format-2 record,
 * "recent", "active", "queue", the per-name figures, schema 1. */
static void write_old_store(const char *dir, const struct old_task *ts, size_t n)
{
	struct tm__lmdb_name_rec figures = { .since_us = base * S };
	uint32_t schema = 1;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi tasks, recent, active, queue, names, meta;

	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(env, 16), 0);
	ck_assert_int_eq(mdb_env_open(env, dir, 0, 0600), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	tasks = db(txn, "tasks");
	recent = db(txn, "recent");
	active = db(txn, "active");
	queue = db(txn, "queue");
	db(txn, "secrets");
	db(txn, "slots");
	names = db(txn, "names");
	meta = db(txn, "meta");
	for (size_t i = 0; i < n; i++) {
		tm__task t = { .status = ts[i].status, .queued = ts[i].queued,
		               .start_us = (base + ts[i].start_s) * S,
		               .timeout_us = (base + ts[i].start_s + 86400) * S,
		               .ready_us = (base + ts[i].start_s) * S,
		               .lease_us = (base + ts[i].lease_s) * S, .owner = ts[i].owner };
		struct head2 h = { 2, (uint8_t)t.status, t.queued ? 1 : 0, 3,
		                   2, (uint32_t)strlen(ts[i].details),
		                   (uint32_t)strlen(ts[i].message), t.start_us,
		                   t.timeout_us, t.ready_us, t.lease_us, t.owner };
		unsigned char rec[512], k[KEY_MAX];
		size_t len = 0;

		strcpy(t.id, ts[i].id);
		strcpy(t.name, "job");
		memcpy(rec, &h, sizeof(h));
		len = sizeof(h);
		memcpy(rec + len, "job[]", 5);
		len += 5;
		memcpy(rec + len, ts[i].details, h.details_len);
		len += h.details_len;
		memcpy(rec + len, ts[i].message, h.message_len);
		len += h.message_len;
		put(txn, tasks, t.id, TM_TASK_ID_LEN, rec, len);
		put(txn, recent, k, tm__lmdb_record_key(k, &t), "", 0);
		if (tm__status_active(t.status))
			put(txn, active, k, tm__lmdb_active_key(k, &t), "", 0);
		if (t.queued)
			put(txn, queue, k, tm__lmdb_time_key(k, t.ready_us, t.id), "job", 3);
		figures.by_status[t.status]++;
	}
	put(txn, names, "job", 3, &figures, sizeof(figures));
	put(txn, meta, "schema", 6, &schema, sizeof(schema));
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static struct old_task old[] = {
	{ "AAAAAAAAAAAAAAAAAAA1", TM_COMPLETED, false, 0, 0, 0,
	  "{\"payload\":{\"n\":1},\"end_time\":1001.5}", "\"\"" },
	{ "AAAAAAAAAAAAAAAAAAA2", TM_REQUEST_SENT, true, 100, 0, 0,
	  "{\"payload\":{\"n\":2}}", "\"\"" },
	/* Running under a claim (its lease ends in a day, or, for the
	 * runtime's test, ended long ago: lost). */
	{ "AAAAAAAAAAAAAAAAAAA3", TM_RUNNING, false, 200, 86400, 7,
	  "{\"payload\":{\"n\":3},\"progress\":{\"message\":\"half\"},\"attempts\":1}",
	  "\"half\"" },
};

#define N_OLD (sizeof(old) / sizeof(old[0]))

static atomic_int ran;

static tm_status count_run(tm_job *job, void *user)
{
	(void)job;
	(void)user;
	atomic_fetch_add(&ran, 1);
	return TM_COMPLETED;
}

START_TEST(a_schema_1_store_is_upgraded_and_reads_as_before)
{
	char *dir = tt_tmpdir(), want[512];
	tm_manager *tm;
	cJSON *all;
	char *got;

	base = (int64_t)time(NULL) - 1000;
	write_old_store(dir, old, N_OLD);
	tm = tt_open(dir, 0);
	tt_register(tm, "job", 0);
	tt_assert_check(tm, (int)N_OLD);
	/* Newest first, each task's JSON as the first layout answered it. */
	all = tt_list_all(tm, "job", 2, 0);
	ck_assert_int_eq(cJSON_GetArraySize(all), (int)N_OLD);
	for (size_t i = 0; i < N_OLD; i++) {
		const struct old_task *o = &old[N_OLD - 1 - i];
		const char *st = tt_status_names[o->status];

		snprintf(want, sizeof(want), "{\"task_id\":\"%s\",\"name\":\"job\","
		         "\"start_time\":%lld,\"status\":\"%s\",\"progress\":%s,"
		         "\"warnings\":[],\"details\":%s}", o->id, (long long)(base + o->start_s),
		         st, o->message, o->details);
		got = cJSON_PrintUnformatted(cJSON_GetArrayItem(all, (int)i));
		ck_assert_ptr_nonnull(got);
		cJSON *a = tt_parse(want), *b = tt_parse(got);
		ck_assert_msg(cJSON_Compare(a, b, 1), "task %zu: %s", i, got);
		cJSON_Delete(a);
		cJSON_Delete(b);
		free(got);
		got = tt_get(tm, "job", o->id, 0);
		ck_assert_str_eq(got, want); /* byte for byte */
		tm_free(got);
	}
	cJSON_Delete(all);
	/* A write moves a task to the new record format. */
	ck_assert_int_eq(tm_cancel(tm, "job", old[1].id, NULL), TM_OK);
	ck_assert_str_eq(tt_status(tm, "job", old[1].id, want), "CANCELLED");
	tt_assert_check(tm, (int)N_OLD);
	tm_close(tm);
	/* Upgraded once: it opens as it is now. */
	tm = tt_open(dir, 0);
	tt_assert_check(tm, (int)N_OLD);
	tt_close_tmp(tm, dir);
}
END_TEST

/* Both tasks that were not final are COMPLETED (their outcomes written,
 * not only their handlers returned). */
static int both_completed(void *tm)
{
	char buf[32];

	return strcmp(tt_status(tm, "job", old[1].id, buf), "COMPLETED") == 0 &&
	       strcmp(tt_status(tm, "job", old[2].id, buf), "COMPLETED") == 0;
}

START_TEST(the_upgrade_keeps_the_queue_and_the_deadlines)
{
	char *dir = tt_tmpdir(), buf[32];
	tm_manager *tm;
	tm_job_def d = TM_JOB_DEF_INIT;

	base = (int64_t)time(NULL) - 1000;
	old[2].lease_s = 230;
	write_old_store(dir, old, N_OLD);
	tm = tt_open(dir, 1);
	d.name = "job";
	d.run = count_run;
	d.max_attempts = 3; /* the lost run is retried */
	d.retry_backoff_s = 0.01;
	ck_assert_int_eq(tm_register(tm, &d), TM_OK);
	/* The waiting task from the queue; the running one once the
	 * supervisor finds its lease over, from the deadlines alone. */
	ck_assert_msg(tt_wait(both_completed, tm, 60), "ran %d of 2; %s",
	              atomic_load(&ran), tt_status(tm, "job", old[2].id, buf));
	ck_assert_int_eq(atomic_load(&ran), 2);
	tt_assert_check(tm, (int)N_OLD);
	tt_close_tmp(tm, dir);
}
END_TEST

TT_MAIN("upgrade",
	a_schema_1_store_is_upgraded_and_reads_as_before,
	the_upgrade_keeps_the_queue_and_the_deadlines)
