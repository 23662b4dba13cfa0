/* The LMDB store's task records, the indexes that tm__lmdb_put() and
 * tm__lmdb_delete() keep in step with them, and the per-name figures. */
#include <stdlib.h>
#include <string.h>

#include "id.h"
#include "store_lmdb.h"
#include "task.h"

/* ---- tasks ------------------------------------------------------------- */

static int get(tm__lmdb_txn *t, const char *id, tm__task *out, bool head_only)
{
	MDB_val k = tm__lmdb_val(id, TM_TASK_ID_LEN), v;
	int rc = mdb_get(t->txn, t->s->tasks, &k, &v);

	if (rc == MDB_NOTFOUND)
		return tm_errorf(TM_ETASK_NOT_FOUND, "task %s not found", id);
	if (rc)
		return tm__lmdb_fail(t, rc, "reading a task");
	return head_only ? tm__task_decode_head(id, v.mv_data, v.mv_size, out)
	                 : tm__task_decode(id, v.mv_data, v.mv_size, out);
}

int tm__lmdb_render(tm__txn *txn, const char *id, const char *name,
                     bool with_details, tm__buf *out)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	MDB_val k = tm__lmdb_val(id, TM_TASK_ID_LEN), v;
	tm__task head;
	int rc = mdb_get(t->txn, t->s->tasks, &k, &v), err;

	if (rc == MDB_NOTFOUND)
		return tm_errorf(TM_ETASK_NOT_FOUND, "task %s not found", id);
	if (rc)
		return tm__lmdb_fail(t, rc, "reading a task");
	if (name != NULL) {
		err = tm__task_decode_head(id, v.mv_data, v.mv_size, &head);
		if (err)
			return err;
		if (strcmp(head.name, name) != 0)
			return tm_errorf(TM_ETASK_NOT_FOUND, "task %s not found in %s",
			                 id, name);
	}
	return tm__task_render(id, v.mv_data, v.mv_size, with_details, out);
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
		r->since_us = tm__now_us();
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

int tm__lmdb_put_task(tm__txn *txn, const tm__task *old, const tm__task *task)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	tm__lmdb *s = t->s;
	unsigned char k[KEY_MAX];
	void *buf;
	size_t len;
	bool was_active = old && tm__status_active(old->status);
	bool is_active = tm__status_active(task->status);
	int err;

	err = tm__task_encode(task, &buf, &len);
	if (err)
		return err;
	err = tm__lmdb_put(t, s->tasks, tm__lmdb_val(task->id, TM_TASK_ID_LEN), tm__lmdb_val(buf, len),
	          "writing a task");
	free(buf);
	if (err)
		return err;
	if (old == NULL) {
		err = tm__lmdb_put(t, s->recent, tm__lmdb_val(k, tm__lmdb_recent_key(k, task)), tm__lmdb_val("", 0),
		          "indexing a task");
		if (err)
			return err;
	}
	if (is_active && !was_active)
		err = tm__lmdb_put(t, s->active, tm__lmdb_val(k, tm__lmdb_active_key(k, task)), tm__lmdb_val("", 0),
		          "indexing an active task");
	else if (was_active && !is_active)
		err = tm__lmdb_del(t, s->active, tm__lmdb_val(k, tm__lmdb_active_key(k, task)),
		          "unindexing an active task");
	if (err)
		return err;
	if (old && old->queued &&
	    (!task->queued || old->ready_us != task->ready_us)) {
		err = tm__lmdb_del(t, s->queue, tm__lmdb_val(k, tm__lmdb_queue_key(k, old->ready_us, old->id)),
		          "dequeuing a task");
		if (err)
			return err;
	}
	if (task->queued &&
	    (old == NULL || !old->queued || old->ready_us != task->ready_us)) {
		err = tm__lmdb_put(t, s->queue, tm__lmdb_val(k, tm__lmdb_queue_key(k, task->ready_us, task->id)),
		          tm__lmdb_val(task->name, strlen(task->name)), "queuing a task");
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
	int err;

	err = tm__lmdb_del(t, s->tasks, tm__lmdb_val(task->id, TM_TASK_ID_LEN), "deleting a task");
	if (!err)
		err = tm__lmdb_del(t, s->recent, tm__lmdb_val(k, tm__lmdb_recent_key(k, task)), "unindexing a task");
	if (!err && tm__status_active(task->status))
		err = tm__lmdb_del(t, s->active, tm__lmdb_val(k, tm__lmdb_active_key(k, task)), "unindexing a task");
	if (!err && task->queued)
		err = tm__lmdb_del(t, s->queue, tm__lmdb_val(k, tm__lmdb_queue_key(k, task->ready_us, task->id)),
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
