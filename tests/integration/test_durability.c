/* What a store keeps across close and reopen, and a store from a newer
 * schema being refused. */
#include <stdint.h>
#include <string.h>

#include <lmdb.h>

#include "common.h"

static const struct {
	const char *name;
	unsigned flags;
} names[] = {
	{ "retrain", TM_JOB_PUBLIC | TM_JOB_EXCLUSIVE },
	{ "import", 0 },
	{ "export", TM_JOB_PUBLIC },
};

enum { N_NAMES = 3, PER_NAME = 14 };

static void register_all(tm_manager *tm)
{
	for (int n = 0; n < N_NAMES; n++)
		tt_register(tm, names[n].name, names[n].flags);
}

static int status_index(const char *s)
{
	for (int i = 0; i < 6; i++)
		if (strcmp(tt_status_names[i], s) == 0)
			return i;
	ck_abort_msg("unknown status %s", s);
	return -1;
}

/* Everything the calls can read of the store, as one text per call. */
struct snapshot {
	char *text[N_NAMES * PER_NAME * 2 + N_NAMES * 16];
	int n;
};

static void snap_add(struct snapshot *s, char *text)
{
	ck_assert_int_lt(s->n, (int)(sizeof(s->text) / sizeof(s->text[0])));
	s->text[s->n++] = text;
}

static void snapshot(tm_manager *tm, char ids[N_NAMES][PER_NAME][21],
                     int count[N_NAMES], struct snapshot *s)
{
	s->n = 0;
	for (int n = 0; n < N_NAMES; n++) {
		for (int i = 0; i < count[n]; i++) {
			snap_add(s, tt_get(tm, names[n].name, ids[n][i], 0));
			if (names[n].flags & TM_JOB_PUBLIC)
				snap_add(s, tt_get(tm, names[n].name, ids[n][i], TM_PUBLIC));
		}
		for (int page = 1; page <= 3; page++) {
			char *out = NULL;

			ck_assert_ok(tm_list_recent(tm, names[n].name, page, 5, 0, &out));
			snap_add(s, out);
			if (names[n].flags & TM_JOB_PUBLIC) {
				ck_assert_ok(tm_list_recent(tm, names[n].name, page, 5,
				                            TM_PUBLIC, &out));
				snap_add(s, out);
			}
		}
	}
}

static void snapshot_free(struct snapshot *s)
{
	for (int i = 0; i < s->n; i++)
		tm_free(s->text[i]);
	s->n = 0;
}

static void assert_stats(tm_manager *tm, int tally[N_NAMES][6])
{
	for (int n = 0; n < N_NAMES; n++)
		for (int s = 0; s < 6; s++)
			ck_assert_msg(tt_stat(tm, names[n].name, tt_status_names[s]) ==
			              tally[n][s], "%s %s: stats %g, written %d",
			              names[n].name, tt_status_names[s],
			              tt_stat(tm, names[n].name, tt_status_names[s]),
			              tally[n][s]);
}

START_TEST(reopened_store_reads_back_byte_for_byte)
{
	char *dir;
	tm_manager *tm = tt_open_tmp(&dir, 0);
	char ids[N_NAMES][PER_NAME][21];
	int count[N_NAMES] = { 0 }, tally[N_NAMES][6] = { { 0 } }, total = 0;
	struct snapshot before, after;

	register_all(tm);
	for (int n = 0; n < N_NAMES; n++) {
		for (int i = 0; i < PER_NAME; i++) {
			char body[256], *id = ids[n][count[n]], *out = NULL;
			const char *patch = NULL;
			int cancel = 0, rc;
			cJSON *t;

			snprintf(body, sizeof(body), "{\"context_task\":{\"i\":%d,\"n\":\"%s\"},"
			         "\"refresh_token\":\"tok%d\",\"create_reason\":\"r%d\"}",
			         i, names[n].name, i, i % 3);
			rc = tm_trigger(tm, names[n].name, body, 0, &out);
			if (rc == TM_EALREADY_RUNNING)
				continue; /* the exclusive name, busy */
			ck_assert_ok(rc);
			t = tt_json(out);
			snprintf(id, 21, "%s", cJSON_GetObjectItem(t, "task_id")->valuestring);
			cJSON_Delete(t);
			count[n]++;
			total++;
			switch (i % 7) {
			case 0: break;
			case 1: patch = "{\"status\":\"RUNNING\",\"details\":{\"progress\":"
			                "{\"message\":\"half\",\"rows\":5}}}"; break;
			case 2: patch = "{\"completed\":true,\"details\":{\"out\":\"x.csv\"}}"; break;
			case 3: patch = "{\"failed\":true,\"details\":{\"error\":\"boom\"}}"; break;
			case 4: cancel = 1; break;
			case 5: patch = "{\"status\":\"RUNNING\"}"; cancel = 1; break;
			default: patch = "{\"details\":{\"note\":[1,{\"a\":null}]}}"; break;
			}
			if (patch)
				ck_assert_ok(tm_patch(tm, names[n].name, id, patch, NULL));
			if (cancel)
				ck_assert_ok(tm_cancel(tm, names[n].name, id, NULL));
			/* The exclusive name is finished unless it is the last. */
			if ((names[n].flags & TM_JOB_EXCLUSIVE) && i < PER_NAME - 2) {
				char st[32];
				tt_status(tm, names[n].name, id, st);
				if (status_index(st) < 3)
					ck_assert_ok(tm_patch(tm, names[n].name, id,
					             "{\"status\":\"CANCELLED\"}", NULL));
			}
			tally[n][status_index(tt_status(tm, names[n].name, id,
			                                (char[32]){ 0 }))]++;
		}
	}
	snapshot(tm, ids, count, &before);
	assert_stats(tm, tally);
	tt_assert_check(tm, total);
	tm_close(tm);

	tm = tt_open(dir, 0);
	register_all(tm);
	snapshot(tm, ids, count, &after);
	ck_assert_int_eq(before.n, after.n);
	for (int i = 0; i < before.n; i++)
		ck_assert_str_eq(before.text[i], after.text[i]);
	assert_stats(tm, tally);
	tt_assert_check(tm, total);
	/* The exclusive name's active task is still active. */
	ck_assert_err(tm_trigger(tm, "retrain", NULL, 0, NULL), TM_EALREADY_RUNNING);
	snapshot_free(&before);
	snapshot_free(&after);
	tt_close_tmp(tm, dir);
}
END_TEST

/* Write the schema record of the store in dir, straight through LMDB. */
static void write_schema(const char *dir, const void *value, size_t len)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { 6, (void *)"schema" }, v = { len, (void *)value };

	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(env, 16), 0);
	ck_assert_int_eq(mdb_env_open(env, dir, 0, 0644), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void assert_refused_open(const char *dir, const char *needle)
{
	tm_options o = tt_options(dir);
	tm_manager *tm = (tm_manager *)&o;

	ck_assert_err(tm_open(&o, &tm), TM_ESTORAGE);
	ck_assert_ptr_null(tm);
	ck_assert_msg(strstr(tm_last_error(), needle) != NULL,
	              "message \"%s\" does not mention %s", tm_last_error(), needle);
}

START_TEST(store_of_a_newer_schema_is_refused)
{
	char *dir, id[21];
	tm_manager *tm = tt_open_with_task(&dir, "job", 0,
	                                   "{\"context_task\":{\"keep\":true}}", id);
	uint32_t schema;

	tm_close(tm);

	schema = 99;
	write_schema(dir, &schema, sizeof(schema));
	assert_refused_open(dir, "schema");
	/* Refusing it did not take the path: restored, it opens, data intact. */
	schema = 1;
	write_schema(dir, &schema, sizeof(schema));
	tm = tt_open(dir, 0);
	tt_register(tm, "job", 0);
	ck_assert_str_eq(tt_status(tm, "job", id, (char[32]){ 0 }), "REQUEST_SENT");
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(store_with_a_corrupt_schema_record_is_refused)
{
	char *dir;
	tm_manager *tm = tt_open_tmp(&dir, 0);
	uint64_t wide = 1;

	tm_close(tm);
	write_schema(dir, &wide, sizeof(wide));
	assert_refused_open(dir, "meta");
	tt_rmdir(dir);
	free(dir);
}
END_TEST

TT_MAIN("durability",
	reopened_store_reads_back_byte_for_byte,
	tt_lmdb_only(store_of_a_newer_schema_is_refused,
	             "writes the schema record into LMDB's meta table directly"),
	tt_lmdb_only(store_with_a_corrupt_schema_record_is_refused,
	             "writes the schema record into LMDB's meta table directly"))
