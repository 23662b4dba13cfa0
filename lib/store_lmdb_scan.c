/* Iterations over the store's indexes, and the consistency check that
 * proves every index agrees with the task records. */
#include <stdio.h>
#include <stdlib.h>

#include "id.h"
#include "store_lmdb.h"
#include "task.h"

/* ---- scans ------------------------------------------------------------- */

/* Called for each entry of a scan: 0 to go on, 1 to stop, <0 an error. */
typedef int (*entry_fn)(tm__lmdb_txn *t, const MDB_val *k, const MDB_val *v, void *ctx);

static bool has_prefix(const MDB_val *k, const unsigned char *p, size_t n)
{
	return n == 0 || (k->mv_size >= n && memcmp(k->mv_data, p, n) == 0);
}

/* Every entry of dbi whose key starts with the n bytes at p (every entry
 * when n is 0), in key order or backwards. */
static int scan(tm__lmdb_txn *t, MDB_dbi dbi, const unsigned char *p, size_t n,
                bool backward, entry_fn each, void *ctx)
{
	unsigned char after[KEY_MAX];
	MDB_cursor *c;
	MDB_val k = tm__lmdb_val(p, n), v;
	MDB_cursor_op next = backward ? MDB_PREV : MDB_NEXT;
	int rc, err = tm__lmdb_cursor(t, dbi, &c);

	if (err)
		return err;
	if (!backward) {
		rc = mdb_cursor_get(c, &k, &v, n ? MDB_SET_RANGE : MDB_FIRST);
	} else if (n == 0) {
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	} else {
		/* Step back from the first key past the range: the prefix with
		 * its last byte raised (prefixes here end in a NUL byte). */
		memcpy(after, p, n);
		after[n - 1]++;
		k = tm__lmdb_val(after, n);
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		rc = mdb_cursor_get(c, &k, &v, rc == 0 ? MDB_PREV : MDB_LAST);
	}
	for (; rc == 0 && has_prefix(&k, p, n); rc = mdb_cursor_get(c, &k, &v, next)) {
		err = each(t, &k, &v, ctx);
		if (err)
			break;
	}
	mdb_cursor_close(c);
	if (err < 0)
		return err;
	return rc && rc != MDB_NOTFOUND && err == 0 ? tm__lmdb_fail(t, rc, "scanning") : TM_OK;
}

struct ids {
	tm__id_fn fn;
	void *ctx;
	size_t skip;
	size_t prefix;          /* recent keys: bytes of name and NUL */
};

/* A record key's id (stored inverted, at its end) into id. */
static void record_id(const MDB_val *k, char id[TM_TASK_ID_LEN + 1])
{
	const unsigned char *raw = (const unsigned char *)k->mv_data + k->mv_size - TM_TASK_ID_LEN;

	for (int i = 0; i < TM_TASK_ID_LEN; i++)
		id[i] = (char)~raw[i];
	id[TM_TASK_ID_LEN] = '\0';
}

/* A record in listing order: fn reads it as the row the scan is on, with
 * no lookup.  Active keys end in the id itself. */
static int record_entry(tm__lmdb_txn *t, const MDB_val *k, const MDB_val *v, void *p)
{
	struct ids *c = p;
	char id[TM_TASK_ID_LEN + 1];

	if (c->skip > 0) {
		c->skip--;
		return 0;
	}
	if (k->mv_size != c->prefix + 8 + TM_TASK_ID_LEN)
		return 0;
	record_id(k, id);
	t->on_row = true;
	memcpy(t->row_id, id, TM_TASK_ID_LEN);
	t->row = *v;
	return c->fn(&t->base, id, c->ctx);
}

static int records(tm__lmdb_txn *t, const char *name, size_t skip, bool oldest,
                   tm__id_fn fn, void *ctx)
{
	unsigned char p[TM_NAME_MAX + 1];
	struct ids c = { fn, ctx, skip, tm__lmdb_name_prefix(p, name) };
	int err = scan(t, t->s->records, p, c.prefix, oldest, record_entry, &c);

	t->on_row = false;
	return err;
}

static int active_entry(tm__lmdb_txn *t, const MDB_val *k, const MDB_val *v, void *p)
{
	struct ids *c = p;
	char id[TM_TASK_ID_LEN + 1];

	(void)v;
	if (k->mv_size < TM_TASK_ID_LEN)
		return 0;
	memcpy(id, (char *)k->mv_data + k->mv_size - TM_TASK_ID_LEN, TM_TASK_ID_LEN);
	id[TM_TASK_ID_LEN] = '\0';
	return c->fn(&t->base, id, c->ctx);
}

int tm__lmdb_recent(tm__txn *txn, const char *name, size_t skip,
                     tm__id_fn fn, void *ctx)
{
	return records(tm__lmdb_txn_of(txn), name, skip, false, fn, ctx);
}

int tm__lmdb_oldest(tm__txn *txn, const char *name, tm__id_fn fn, void *ctx)
{
	return records(tm__lmdb_txn_of(txn), name, 0, true, fn, ctx);
}

int tm__lmdb_active(tm__txn *txn, const char *name, tm__id_fn fn, void *ctx)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	unsigned char p[TM_NAME_MAX + 1] = "";
	struct ids c = { fn, ctx, 0, 0 };

	return scan(t, t->s->active, p, name ? tm__lmdb_name_prefix(p, name) : 0, false,
	            active_entry, &c);
}

/* The deadlines index up to now: a tick costs the tasks due, however many
 * wait.  Each is checked against its record (a lease ends strictly before
 * now, a timeout at it). */
struct expired {
	int64_t now;
	tm__id_fn fn;
	void *ctx;
};

static int expired_entry(tm__lmdb_txn *t, const MDB_val *k, const MDB_val *v, void *p)
{
	struct expired *c = p;
	char id[TM_TASK_ID_LEN + 1];
	tm__task task;
	int err;

	(void)v;
	if (k->mv_size != 8 + TM_TASK_ID_LEN)
		return 0;
	if (tm__lmdb_get_time(k->mv_data) > c->now)
		return 1;
	memcpy(id, (const char *)k->mv_data + 8, TM_TASK_ID_LEN);
	id[TM_TASK_ID_LEN] = '\0';
	err = tm__lmdb_get_head(&t->base, id, &task);
	if (err)
		return err;
	if (c->now >= task.timeout_us ||
	    (task.owner != 0 && !task.queued && task.lease_us < c->now))
		return c->fn(&t->base, id, c->ctx);
	return 0;
}

int tm__lmdb_expired(tm__txn *txn, int64_t now, tm__id_fn fn, void *ctx)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	struct expired c = { now, fn, ctx };

	return scan(t, t->s->deadlines, NULL, 0, false, expired_entry, &c);
}

/* ---- the queue ---------------------------------------------------------
 *
 * Each name's waiting tasks lie together, by priority band, then ready
 * time.  The scans below visit only the first entry of each band (a seek
 * each), so their cost follows the names and bands present, never the
 * number of tasks waiting, however many are scheduled for later. */

struct band_head {
	char name[TM_NAME_MAX + 1];
	unsigned band;
	int64_t ready_us, start_us;
	char id[TM_TASK_ID_LEN + 1];
};

enum { NEXT_BAND = TM__SCAN_STOP + 1, NEXT_NAME }; /* beside TM__SCAN_STOP */

/* Calls each(head, ctx) with the first entry of every band of every name,
 * in key order; each returns NEXT_BAND, NEXT_NAME, TM__SCAN_STOP or an
 * error. */
static int band_heads(tm__lmdb_txn *t, int (*each)(tm__lmdb_txn *, const struct band_head *, void *),
                      void *ctx)
{
	unsigned char seek[TM_NAME_MAX + 2];
	MDB_cursor *c;
	MDB_val k, v;
	int rc, err = tm__lmdb_cursor(t, t->s->queue, &c);

	if (err)
		return err;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE)) {
		const unsigned char *p = k.mv_data;
		const unsigned char *nul = memchr(p, '\0', k.mv_size < TM_NAME_MAX + 1 ?
		                                            k.mv_size : TM_NAME_MAX + 1);
		struct band_head h;
		size_t n;

		if (nul == NULL || k.mv_size != (size_t)(nul - p) + 1 + TM__LMDB_QUEUE_TAIL) {
			err = tm__lmdb_fail(t, MDB_CORRUPTED, "reading the queue");
			break;
		}
		n = (size_t)(nul - p);
		memcpy(h.name, p, n + 1);
		h.band = p[n + 1];
		h.ready_us = tm__lmdb_get_time(p + n + 2);
		h.start_us = tm__lmdb_get_time(p + n + 10);
		memcpy(h.id, p + n + 18, TM_TASK_ID_LEN);
		h.id[TM_TASK_ID_LEN] = '\0';
		err = each(t, &h, ctx);
		if (err != NEXT_BAND && err != NEXT_NAME)
			break;
		/* On to the next band (name, NUL, band + 1) or past the name
		 * (name, 1: every key of the name has a NUL there). */
		memcpy(seek, h.name, n);
		if (err == NEXT_BAND && h.band < 255) {
			seek[n] = '\0';
			seek[n + 1] = (unsigned char)(h.band + 1);
			k = tm__lmdb_val(seek, n + 2);
		} else {
			seek[n] = 1;
			k = tm__lmdb_val(seek, n + 1);
		}
		err = TM_OK;
	}
	mdb_cursor_close(c);
	if (err < 0)
		return err;
	return rc && rc != MDB_NOTFOUND ? tm__lmdb_fail(t, rc, "reading the queue") : TM_OK;
}

/* The claim's scan: each name's next task ready at `now` (the first ready
 * one in the highest band), unless the name is paused; then those, by
 * their ready time. */
#define QUEUE_NAMES 32 /* names on the stack; more go to the heap */

struct queue_scan {
	int64_t now;
	struct band_head *heads, local[QUEUE_NAMES];
	size_t n, cap;
};

static int queue_head_of(tm__lmdb_txn *t, const struct band_head *h, void *p)
{
	struct queue_scan *c = p;
	bool paused;
	int err;

	if (h->ready_us > c->now)
		return NEXT_BAND; /* the band's first task is not due: none of it is */
	err = tm__lmdb_paused(&t->base, h->name, &paused);
	if (err || paused)
		return err ? err : NEXT_NAME;
	if (c->n == c->cap) {
		struct band_head *more = malloc(2 * c->cap * sizeof(*more));

		if (more == NULL)
			return tm__error_oom();
		memcpy(more, c->heads, c->n * sizeof(*more));
		if (c->heads != c->local)
			free(c->heads);
		c->heads = more;
		c->cap *= 2;
	}
	c->heads[c->n++] = *h;
	return NEXT_NAME;
}

static bool runs_before(const struct band_head *a, const struct band_head *b)
{
	if (a->ready_us != b->ready_us)
		return a->ready_us < b->ready_us;
	if (a->start_us != b->start_us)
		return a->start_us < b->start_us;
	return memcmp(a->id, b->id, TM_TASK_ID_LEN) < 0;
}

int tm__lmdb_queue(tm__txn *txn, int64_t now, tm__queue_fn fn, void *ctx)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	struct queue_scan c = { .now = now, .cap = QUEUE_NAMES }; /* every claim: no malloc */
	int err;

	c.heads = c.local;
	err = band_heads(t, queue_head_of, &c);
	/* Few names: an insertion sort. */
	for (size_t i = 1; i < c.n && !err; i++) {
		struct band_head h = c.heads[i];
		size_t j = i;

		for (; j > 0 && runs_before(&h, &c.heads[j - 1]); j--)
			c.heads[j] = c.heads[j - 1];
		c.heads[j] = h;
	}
	for (size_t i = 0; i < c.n && !err; i++)
		err = fn(txn, c.heads[i].ready_us, c.heads[i].id, c.heads[i].name, ctx);
	if (c.heads != c.local)
		free(c.heads);
	return err == TM__SCAN_STOP ? TM_OK : err;
}

struct name_scan {
	tm__name_fn fn;
	void *ctx;
};

static int name_entry(tm__lmdb_txn *t, const MDB_val *k, const MDB_val *v, void *p)
{
	struct name_scan *c = p;
	char name[TM_NAME_MAX + 1];

	(void)v;
	if (k->mv_size > TM_NAME_MAX)
		return 0;
	memcpy(name, k->mv_data, k->mv_size);
	name[k->mv_size] = '\0';
	return c->fn(&t->base, name, c->ctx);
}

int tm__lmdb_names(tm__txn *txn, tm__name_fn fn, void *ctx)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	struct name_scan c = { fn, ctx };

	return scan(t, t->s->names, NULL, 0, false, name_entry, &c);
}

/* ---- consistency ------------------------------------------------------- */

static int problem(cJSON *problems, const char *fmt, const char *id)
{
	char msg[160];

	snprintf(msg, sizeof(msg), fmt, id);
	if (!cJSON_AddItemToArray(problems, cJSON_CreateString(msg)))
		return tm__error_oom();
	return TM_OK;
}

static bool exists(tm__lmdb_txn *t, MDB_dbi dbi, const void *k, size_t n)
{
	MDB_val kv = tm__lmdb_val(k, n), v;

	return mdb_get(t->txn, dbi, &kv, &v) == 0;
}

/* Each task's record must lie under its own key and have its index
 * entries, and each index exactly as many entries as the records call for,
 * so no entry can dangle. */
int tm__lmdb_check(tm__txn *txn, cJSON *problems, uint64_t *n_tasks)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	tm__lmdb *s = t->s;
	MDB_cursor *c;
	MDB_val k, v;
	unsigned char key[KEY_MAX];
	uint64_t n = 0, n_active = 0, n_queued = 0;
	cJSON *counts = cJSON_CreateObject();
	int rc, err = counts ? tm__lmdb_cursor(t, s->records, &c) : tm__error_oom();

	if (err) {
		cJSON_Delete(counts);
		return err;
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && !err;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		char id[TM_TASK_ID_LEN + 1] = "";
		MDB_val ik, iv;
		tm__task task;
		char ckey[TM_NAME_MAX + 4];
		int64_t at;
		size_t kn;
		cJSON *cnt;

		n++;
		if (k.mv_size > TM_TASK_ID_LEN)
			record_id(&k, id);
		if (!tm__id_valid(id) ||
		    tm__task_decode(id, v.mv_data, v.mv_size, &task) != TM_OK) {
			err = problem(problems, "record %s is corrupt", id);
			continue;
		}
		kn = tm__lmdb_record_key(key, &task);
		if (kn != k.mv_size || memcmp(key, k.mv_data, kn) != 0)
			err = problem(problems, "task %s is stored under another task's key", id);
		ik = tm__lmdb_val(id, TM_TASK_ID_LEN);
		if (mdb_get(t->txn, s->ids, &ik, &iv) != 0 || iv.mv_size != k.mv_size ||
		    memcmp(iv.mv_data, k.mv_data, k.mv_size) != 0)
			err = problem(problems, "task %s missing from the id index", id);
		if (tm__lmdb_deadline(&task, &at)) {
			n_active++;
			if (!exists(t, s->active, key, tm__lmdb_active_key(key, &task)))
				err = problem(problems, "active task %s missing from the active index", id);
			if (!exists(t, s->deadlines, key, tm__lmdb_time_key(key, at, id)))
				err = problem(problems, "active task %s missing from the deadlines", id);
		} else if (exists(t, s->secrets, id, TM_TASK_ID_LEN)) {
			err = problem(problems, "final task %s still has a secret", id);
		}
		if (task.queued) {
			n_queued++;
			if (!exists(t, s->queue, key, tm__lmdb_task_queue_key(key, &task)))
				err = problem(problems, "queued task %s missing from the queue", id);
		}
		snprintf(ckey, sizeof(ckey), "%s\x1f%d", task.name, (int)task.status);
		cnt = cJSON_GetObjectItemCaseSensitive(counts, ckey);
		if (cnt)
			cJSON_SetNumberValue(cnt, cnt->valuedouble + 1);
		else
			cJSON_AddNumberToObject(counts, ckey, 1);
		tm__task_free(&task);
	}
	mdb_cursor_close(c);
	if (!err && tm__lmdb_entries(t, s->ids) != n)
		err = problem(problems, "id index size differs from the records%s", "");
	if (!err && tm__lmdb_entries(t, s->active) != n_active)
		err = problem(problems, "active index size differs from the records%s", "");
	if (!err && tm__lmdb_entries(t, s->deadlines) != n_active)
		err = problem(problems, "deadlines differ in number from the active tasks%s", "");
	if (!err && tm__lmdb_entries(t, s->queue) != n_queued)
		err = problem(problems, "queue size differs from the records%s", "");
	/* The per-name figures must match the tally of the records. */
	if (!err && (err = tm__lmdb_cursor(t, s->names, &c)) == TM_OK) {
		for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && !err;
		     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			struct tm__lmdb_name_rec r;
			char name[TM_NAME_MAX + 1];

			if (k.mv_size > TM_NAME_MAX || v.mv_size != sizeof(r))
				continue;
			memcpy(name, k.mv_data, k.mv_size);
			name[k.mv_size] = '\0';
			memcpy(&r, v.mv_data, sizeof(r));
			for (int st = 0; st < TM__STATUS_COUNT && !err; st++) {
				char ckey[TM_NAME_MAX + 4];
				cJSON *cnt;
				double want;

				snprintf(ckey, sizeof(ckey), "%s\x1f%d", name, st);
				cnt = cJSON_GetObjectItemCaseSensitive(counts, ckey);
				want = cnt ? cnt->valuedouble : 0;
				if ((double)r.by_status[st] != want)
					err = problem(problems, "status counts of %s differ from the records", name);
				if (cnt)
					cJSON_Delete(cJSON_DetachItemViaPointer(counts, cnt));
			}
		}
		mdb_cursor_close(c);
		if (!err && cJSON_GetArraySize(counts) > 0)
			err = problem(problems, "tasks of a name without figures%s", "");
	}
	cJSON_Delete(counts);
	*n_tasks = n;
	return err;
}

struct earliest {
	bool any;
	int64_t at;
};

static int earliest(tm__lmdb_txn *t, const struct band_head *h, void *p)
{
	struct earliest *e = p;

	(void)t;
	if (!e->any || h->ready_us < e->at)
		e->at = h->ready_us;
	e->any = true;
	return NEXT_BAND;
}

int tm__lmdb_queue_head(tm__txn *txn, uint64_t *depth, int64_t *head_us)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	struct earliest e = { false, 0 };
	int err = band_heads(t, earliest, &e);

	*depth = tm__lmdb_entries(t, t->s->queue);
	*head_us = e.at;
	return err;
}
