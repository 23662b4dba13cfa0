/* The LMDB store's task records, the indexes that tm__lmdb_put() and
 * tm__lmdb_delete() keep in step with them, and the per-name figures. */
#include <stdlib.h>
#include <string.h>

#include "id.h"
#include "store_lmdb.h"
#include "task.h"

/* ---- tasks ------------------------------------------------------------- */

/* ---- hints: a record's key by id ------------------------------------------ */

static struct tm__lmdb_hint *hint_of(tm__lmdb *s, const char *id)
{
	return &s->hints[tm__hash64(id, TM_TASK_ID_LEN) & (HINTS - 1)];
}

static void hint_put(tm__lmdb *s, const char *id, const MDB_val *key)
{
	unsigned char b[HINT_WORDS * 8] = { 0 };
	struct tm__lmdb_hint *h;

	if (s->hints == NULL || key->mv_size >= sizeof(b))
		return;
	h = hint_of(s, id);
	b[0] = (unsigned char)key->mv_size;
	memcpy(b + 1, key->mv_data, key->mv_size);
	for (int i = 0; i < HINT_WORDS; i++) {
		uint64_t w;

		memcpy(&w, b + 8 * i, 8);
		atomic_store_explicit(&h->w[i], w, memory_order_relaxed);
	}
}

/* The remembered key of id into key (b holds its bytes); false when none
 * is remembered, or what is there ends in another id. */
static bool hint_get(tm__lmdb *s, const char *id, unsigned char b[HINT_WORDS * 8],
                     MDB_val *key)
{
	struct tm__lmdb_hint *h;
	size_t n;

	if (s->hints == NULL)
		return false;
	h = hint_of(s, id);
	for (int i = 0; i < HINT_WORDS; i++) {
		uint64_t w = atomic_load_explicit(&h->w[i], memory_order_relaxed);

		memcpy(b + 8 * i, &w, 8);
	}
	n = b[0];
	if (n < 1 + 8 + TM_TASK_ID_LEN || n >= HINT_WORDS * 8)
		return false;
	for (int i = 0; i < TM_TASK_ID_LEN; i++)
		if ((unsigned char)~b[1 + n - TM_TASK_ID_LEN + i] != (unsigned char)id[i])
			return false;
	*key = tm__lmdb_val(b + 1, n);
	return true;
}

/* The record of task id: the row a scan is on, or found through ids.
 * With name not NULL, a task of another name is not found: its record's
 * key begins with its name. */
static int find(tm__lmdb_txn *t, const char *id, const char *name, MDB_val *v)
{
	MDB_val k = tm__lmdb_val(id, TM_TASK_ID_LEN), key;
	unsigned char hint[HINT_WORDS * 8];
	tm__task head;
	int rc, err;

	v->mv_data = NULL;
	if (t->on_row && memcmp(t->row_id, id, TM_TASK_ID_LEN) == 0) {
		*v = t->row;
		if (name == NULL)
			return TM_OK;
		err = tm__task_decode_head(id, v->mv_data, v->mv_size, &head);
		if (err || strcmp(head.name, name) == 0)
			return err;
		return tm_errorf(TM_ETASK_NOT_FOUND, "task %s not found in %s", id, name);
	}
	/* A remembered key that finds a record finds this task's: the key
	 * ends in its id.  One that does not (the task is gone, or never
	 * committed) is asked of ids again. */
	if (hint_get(t->s, id, hint, &key) && mdb_get(t->txn, t->s->records, &key, v) == 0) {
		rc = 0;
	} else {
		v->mv_data = NULL;
		rc = mdb_get(t->txn, t->s->ids, &k, &key);
		if (rc == 0)
			hint_put(t->s, id, &key);
	}
	if (rc == MDB_NOTFOUND)
		return tm_errorf(TM_ETASK_NOT_FOUND, "task %s not found", id);
	if (rc)
		return tm__lmdb_fail(t, rc, "reading a task");
	if (name != NULL && (key.mv_size <= strlen(name) ||
	                     memcmp(key.mv_data, name, strlen(name) + 1) != 0))
		return tm_errorf(TM_ETASK_NOT_FOUND, "task %s not found in %s", id, name);
	if (v->mv_data == NULL)
		rc = mdb_get(t->txn, t->s->records, &key, v);
	if (rc == MDB_NOTFOUND)
		return tm_errorf(TM_ESTORAGE, "task %s: its record is missing", id);
	return rc ? tm__lmdb_fail(t, rc, "reading a task") : TM_OK;
}

static int get(tm__lmdb_txn *t, const char *id, tm__task *out, bool head_only)
{
	MDB_val v;
	int err = find(t, id, NULL, &v);

	if (err)
		return err;
	return head_only ? tm__task_decode_head(id, v.mv_data, v.mv_size, out)
	                 : tm__task_decode(id, v.mv_data, v.mv_size, out);
}

int tm__lmdb_render(tm__txn *txn, const char *id, const char *name,
                     bool with_details, tm__buf *out)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	MDB_val v;
	int err = find(t, id, name, &v);

	return err ? err : tm__task_render(id, v.mv_data, v.mv_size, with_details, out);
}

int tm__lmdb_get(tm__txn *txn, const char *id, tm__task *out)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	return get(t, id, out, false);
}

int tm__lmdb_get_head(tm__txn *txn, const char *id, tm__task *out)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	return get(t, id, out, true);
}

static int name_get(tm__lmdb_txn *t, const char *name, struct tm__lmdb_name_rec *r)
{
	MDB_val k = tm__lmdb_val(name, strlen(name)), v;
	int rc = mdb_get(t->txn, t->s->names, &k, &v);

	memset(r, 0, sizeof(*r));
	if (rc == MDB_NOTFOUND) {
		r->since_us = t->s->base.ops->now(&t->s->base);
		return TM_OK;
	}
	if (rc)
		return tm__lmdb_fail(t, rc, "reading name figures");
	if (v.mv_size != sizeof(*r))
		return tm_errorf(TM_ESTORAGE, "figures of %s are corrupt", name);
	memcpy(r, v.mv_data, sizeof(*r));
	return TM_OK;
}

static int name_put(tm__lmdb_txn *t, const char *name, const struct tm__lmdb_name_rec *r)
{
	return tm__lmdb_put(t, t->s->names, tm__lmdb_val(name, strlen(name)), tm__lmdb_val(r, sizeof(*r)),
	           "writing name figures");
}

static int count_status(tm__lmdb_txn *t, const char *name, int from, int to)
{
	struct tm__lmdb_name_rec r;
	int err = name_get(t, name, &r);

	if (err)
		return err;
	if (from >= 0 && r.by_status[from] > 0)
		r.by_status[from]--;
	if (to >= 0)
		r.by_status[to]++;
	return name_put(t, name, &r);
}

/* Move task id's deadline entry from the one old called for (when old is
 * not NULL) to the one t calls for. */
static int move_deadline(tm__lmdb_txn *t, const tm__task *old, const tm__task *task)
{
	unsigned char k[KEY_MAX];
	int64_t was = 0, at = 0;
	bool had = old && tm__lmdb_deadline(old, &was);
	bool has = tm__lmdb_deadline(task, &at);
	int err = TM_OK;

	if (had && has && was == at)
		return TM_OK;
	if (had)
		err = tm__lmdb_del(t, t->s->deadlines, tm__lmdb_val(k, tm__lmdb_time_key(k, was, task->id)),
		                   "moving a deadline");
	if (!err && has)
		err = tm__lmdb_put(t, t->s->deadlines, tm__lmdb_val(k, tm__lmdb_time_key(k, at, task->id)),
		                   tm__lmdb_val("", 0), "setting a deadline");
	return err;
}

int tm__lmdb_put_task(tm__txn *txn, const tm__task *old, const tm__task *task)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	tm__lmdb *s = t->s;
	unsigned char k[KEY_MAX], rk[KEY_MAX];
	size_t rn = tm__lmdb_record_key(rk, task);
	void *buf;
	size_t len;
	bool was_active = old && tm__status_active(old->status);
	bool is_active = tm__status_active(task->status);
	bool moved;
	int err;

	err = tm__task_encode(task, &buf, &len);
	if (err)
		return err;
	/* A record's key (name, start time, id) never changes. */
	err = tm__lmdb_put(t, s->records, tm__lmdb_val(rk, rn), tm__lmdb_val(buf, len),
	                   "writing a task");
	free(buf);
	if (!err && old == NULL) {
		MDB_val key = tm__lmdb_val(rk, rn);

		err = tm__lmdb_put(t, s->ids, tm__lmdb_val(task->id, TM_TASK_ID_LEN), key,
		                   "indexing a task");
		hint_put(s, task->id, &key); /* a hint: harmless if this write aborts */
	}
	if (err)
		return err;
	if (is_active && !was_active)
		err = tm__lmdb_put(t, s->active, tm__lmdb_val(k, tm__lmdb_active_key(k, task)), tm__lmdb_val("", 0),
		          "indexing an active task");
	else if (was_active && !is_active)
		err = tm__lmdb_del(t, s->active, tm__lmdb_val(k, tm__lmdb_active_key(k, task)),
		          "unindexing an active task");
	if (!err)
		err = move_deadline(t, old, task);
	if (err)
		return err;
	moved = old && old->queued && task->queued &&
	        (old->ready_us != task->ready_us || old->priority != task->priority);
	if (old && old->queued && (!task->queued || moved)) {
		err = tm__lmdb_del(t, s->queue, tm__lmdb_val(k, tm__lmdb_task_queue_key(k, old)),
		          "dequeuing a task");
		if (err)
			return err;
	}
	if (task->queued && (old == NULL || !old->queued || moved)) {
		err = tm__lmdb_put(t, s->queue, tm__lmdb_val(k, tm__lmdb_task_queue_key(k, task)),
		          tm__lmdb_val("", 0), "queuing a task");
		if (err)
			return err;
	}
	if (old == NULL || old->status != task->status)
		err = count_status(t, task->name, old ? (int)old->status : -1,
		                   (int)task->status);
	return err;
}

int tm__lmdb_delete(tm__txn *txn, const tm__task *task)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	tm__lmdb *s = t->s;
	unsigned char k[KEY_MAX];
	int64_t at;
	int err;

	err = tm__lmdb_del(t, s->records, tm__lmdb_val(k, tm__lmdb_record_key(k, task)), "deleting a task");
	if (!err)
		err = tm__lmdb_del(t, s->ids, tm__lmdb_val(task->id, TM_TASK_ID_LEN), "unindexing a task");
	if (!err && tm__status_active(task->status))
		err = tm__lmdb_del(t, s->active, tm__lmdb_val(k, tm__lmdb_active_key(k, task)), "unindexing a task");
	if (!err && tm__lmdb_deadline(task, &at))
		err = tm__lmdb_del(t, s->deadlines, tm__lmdb_val(k, tm__lmdb_time_key(k, at, task->id)),
		                   "unindexing a task");
	if (!err && task->queued)
		err = tm__lmdb_del(t, s->queue, tm__lmdb_val(k, tm__lmdb_task_queue_key(k, task)),
		          "dequeuing a task");
	if (!err)
		err = tm__lmdb_secret_del(txn, task->id);
	if (!err)
		err = count_status(t, task->name, (int)task->status, -1);
	return err;
}

/* ---- per-name figures ---------------------------------------------------- */

int tm__lmdb_name_stats(tm__txn *txn, const char *name, tm__name_stats *out)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	struct tm__lmdb_name_rec r;
	int err = name_get(t, name, &r);

	if (err)
		return err;
	memcpy(out->by_status, r.by_status, sizeof(r.by_status));
	out->changes = r.changes;
	out->since_us = r.since_us;
	return TM_OK;
}

/* Kept exactly by put and delete: the cheap figure is the exact one. */
int tm__lmdb_name_finals(tm__txn *txn, const char *name, bool exact, uint64_t *n)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	struct tm__lmdb_name_rec r;
	int err = name_get(t, name, &r);

	(void)exact;
	*n = err ? 0 : r.by_status[TM_FAILED] + r.by_status[TM_CANCELLED] +
	               r.by_status[TM_COMPLETED];
	return err;
}

/* One writer at a time already: every write holds it. */
int tm__lmdb_lock_retention(tm__txn *txn, const char *name, bool wait, bool *got)
{
	(void)txn;
	(void)name;
	(void)wait;
	*got = true;
	return TM_OK;
}

int tm__lmdb_add_changes(tm__txn *txn, const char *name, uint64_t n)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	struct tm__lmdb_name_rec r;
	int err = name_get(t, name, &r);

	if (err)
		return err;
	r.changes = r.changes + n < r.changes ? UINT64_MAX : r.changes + n;
	return name_put(t, name, &r);
}

int tm__lmdb_name_touch(tm__txn *txn, const char *name)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	MDB_val k = tm__lmdb_val(name, strlen(name)), v;
	struct tm__lmdb_name_rec r;
	int rc = mdb_get(t->txn, t->s->names, &k, &v), err;

	if (rc != MDB_NOTFOUND)
		return rc ? tm__lmdb_fail(t, rc, "reading name figures") : TM_OK;
	err = name_get(t, name, &r);
	return err ? err : name_put(t, name, &r);
}

int tm__lmdb_reset_changes(tm__txn *txn, const char *name)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	struct tm__lmdb_name_rec r;
	int err = name_get(t, name, &r);

	if (err || r.changes == 0)
		return err; /* nothing to write: the common case of every trigger */
	r.changes = 0;
	return name_put(t, name, &r);
}

/* A paused name is a key "paused:<name>" of meta: no schema change, and
 * the names' figures keep their fixed size. */
static MDB_val paused_key(char k[8 + TM_NAME_MAX], const char *name)
{
	size_t n = strlen(name);

	memcpy(k, "paused:", 7);
	memcpy(k + 7, name, n);
	return tm__lmdb_val(k, 7 + n);
}

int tm__lmdb_pause(tm__txn *txn, const char *name, bool paused)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	char k[8 + TM_NAME_MAX];
	MDB_val key;
	int rc;

	if (strlen(name) > TM_NAME_MAX)
		return tm_errorf(TM_EINVAL, "task name too long");
	key = paused_key(k, name);
	if (paused)
		return tm__lmdb_put(t, t->s->meta, key, tm__lmdb_val("", 0), "pausing a name");
	t->on_row = false;
	rc = mdb_del(t->txn, t->s->meta, &key, NULL);
	return rc && rc != MDB_NOTFOUND ? tm__lmdb_fail(t, rc, "resuming a name") : TM_OK;
}

int tm__lmdb_paused(tm__txn *txn, const char *name, bool *paused)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	char k[8 + TM_NAME_MAX];
	MDB_val key, v;
	int rc;

	*paused = false;
	if (strlen(name) > TM_NAME_MAX)
		return TM_OK;
	key = paused_key(k, name);
	rc = mdb_get(t->txn, t->s->meta, &key, &v);
	if (rc && rc != MDB_NOTFOUND)
		return tm__lmdb_fail(t, rc, "reading a pause");
	*paused = rc == 0;
	return TM_OK;
}

/* A rate-limited name's bucket is a key "rate:<name>" of meta, holding a
 * struct rate_rec: the tokens it held at at_us.  No key: a full bucket. */
struct rate_rec {
	double tokens;
	int64_t at_us;
};

static MDB_val rate_key(char k[8 + TM_NAME_MAX], const char *name)
{
	size_t n = strlen(name);

	memcpy(k, "rate:", 5);
	memcpy(k + 5, name, n);
	return tm__lmdb_val(k, 5 + n);
}

/* The bucket refilled to now (never backwards: a clock stepped back adds
 * nothing). */
static int rate_get(tm__lmdb_txn *t, const char *name, double rate, unsigned burst,
                    int64_t now, struct rate_rec *r)
{
	char k[8 + TM_NAME_MAX];
	MDB_val key, v;
	int rc;

	r->tokens = burst;
	r->at_us = now;
	if (strlen(name) > TM_NAME_MAX)
		return tm_errorf(TM_EINVAL, "task name too long");
	key = rate_key(k, name);
	rc = mdb_get(t->txn, t->s->meta, &key, &v);
	if (rc == MDB_NOTFOUND)
		return TM_OK;
	if (rc)
		return tm__lmdb_fail(t, rc, "reading a rate bucket");
	if (v.mv_size != sizeof(*r))
		return tm_errorf(TM_ESTORAGE, "the rate bucket of %s is corrupt", name);
	memcpy(r, v.mv_data, sizeof(*r));
	if (now > r->at_us) {
		r->tokens += (double)(now - r->at_us) * rate / 1e6;
		r->at_us = now;
	}
	if (r->tokens > burst)
		r->tokens = burst;
	return TM_OK;
}

int tm__lmdb_rate_take(tm__txn *txn, const char *name, double rate,
                       unsigned burst, bool *taken, double *left)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	struct rate_rec r;
	char k[8 + TM_NAME_MAX];
	/* Read inside the write: one writer at a time, so the bucket's times
	 * follow each other across processes. */
	int err = rate_get(t, name, rate, burst, t->s->base.ops->now(&t->s->base), &r);

	*taken = false;
	*left = 0;
	if (err)
		return err;
	*left = r.tokens;
	if (r.tokens < 1)
		return TM_OK; /* unchanged: refilling later gives the same */
	r.tokens -= 1;
	err = tm__lmdb_put(t, t->s->meta, rate_key(k, name), tm__lmdb_val(&r, sizeof(r)),
	                   "taking a rate token");
	if (!err) {
		*taken = true;
		*left = r.tokens;
	}
	return err;
}

int tm__lmdb_rate_tokens(tm__txn *txn, const char *name, double rate,
                         unsigned burst, double *tokens)
{
	struct rate_rec r;
	int err = rate_get(tm__lmdb_txn_of(txn), name, rate, burst, txn->store->ops->now(txn->store), &r);

	*tokens = err ? 0 : r.tokens;
	return err;
}

/* A name's cron state is a key "cron:<name>" of meta, its value the
 * instant as a native int64_t: like a pause, no schema change. */
static MDB_val cron_key(char k[6 + TM_NAME_MAX], const char *name)
{
	size_t n = strlen(name);

	memcpy(k, "cron:", 5);
	memcpy(k + 5, name, n);
	return tm__lmdb_val(k, 5 + n);
}

int tm__lmdb_cron_get(tm__txn *txn, const char *name, int64_t *due_us, bool *found)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	char k[6 + TM_NAME_MAX];
	MDB_val key, v;
	int rc;

	*due_us = 0;
	*found = false;
	if (strlen(name) > TM_NAME_MAX)
		return TM_OK;
	key = cron_key(k, name);
	rc = mdb_get(t->txn, t->s->meta, &key, &v);
	if (rc == MDB_NOTFOUND)
		return TM_OK;
	if (rc)
		return tm__lmdb_fail(t, rc, "reading a cron schedule");
	if (v.mv_size != sizeof(*due_us))
		return tm_errorf(TM_ESTORAGE, "the cron schedule of %s is corrupt", name);
	memcpy(due_us, v.mv_data, sizeof(*due_us));
	*found = true;
	return TM_OK;
}

int tm__lmdb_cron_set(tm__txn *txn, const char *name, int64_t due_us, bool if_absent)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	char k[6 + TM_NAME_MAX];
	MDB_val key, v = tm__lmdb_val(&due_us, sizeof(due_us));
	int rc;

	if (strlen(name) > TM_NAME_MAX)
		return tm_errorf(TM_EINVAL, "task name too long");
	key = cron_key(k, name);
	rc = mdb_put(t->txn, t->s->meta, &key, &v, if_absent ? MDB_NOOVERWRITE : 0);
	t->on_row = false;
	if (rc == MDB_KEYEXIST)
		return TM_OK;
	return rc ? tm__lmdb_fail(t, rc, "writing a cron schedule") : TM_OK;
}
