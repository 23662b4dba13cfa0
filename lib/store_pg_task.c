/* The PostgreSQL store's task records, secrets and scans (the per-name
 * state is store_pg_names.c's).  A record is the same bytes the LMDB store keeps (task.c's
 * encoding) in the `doc` column; the fixed fields that the indexes and
 * the queries need are columns of their own beside it, written from the
 * same tm__task. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "id.h"
#include "status.h"
#include "store_pg_shared.h"
#include "task.h"

#define i8 tm__pg_i8

static int not_found(const char *id)
{
	return tm_errorf(TM_ETASK_NOT_FOUND, "task %s not found", id);
}

/* ---- the row a scan is on --------------------------------------------------- */

static bool on_row(const tm__pg_txn *t, const char *id)
{
	return t->cur.res != NULL && t->cur.doc_col >= 0 &&
	       strcmp(PQgetvalue(t->cur.res, t->cur.row, t->cur.id_col), id) == 0;
}

static bool on_held(const tm__pg_txn *t, const char *id)
{
	return t->held != NULL && strcmp(PQgetvalue(t->held, t->held_row, 0), id) == 0;
}

/* A write to the task makes the held copy stale. */
static void drop_held(tm__pg_txn *t, const char *id)
{
	if (on_held(t, id)) {
		PQclear(t->held);
		t->held = NULL;
	}
}

static const char *row_doc(const tm__pg_txn *t, int *len)
{
	*len = PQgetlength(t->cur.res, t->cur.row, t->cur.doc_col);
	return PQgetvalue(t->cur.res, t->cur.row, t->cur.doc_col);
}

/* ---- tasks ------------------------------------------------------------------- */

static int load(tm__pg_txn *t, const char *id, bool lock, PGresult **r)
{
	const char *vals[1] = { id };
	int err = tm__pg_exec(t, lock ? PG_GET_LOCK : PG_GET, 1, vals, NULL, r);

	if (!err && PQntuples(*r) == 0) {
		PQclear(*r);
		*r = NULL;
		err = not_found(id);
	}
	return err;
}

static int get(tm__txn *txn, const char *id, tm__task *out, bool head_only)
{
	tm__pg_txn *t = tm__pg_txn_of(txn);
	/* A write reads under a row lock: the task cannot change until the
	 * transaction ends, whichever node asks. */
	bool lock = t->write && !head_only;
	PGresult *r;
	const char *doc;
	int len, err;

	if (!lock && on_row(t, id)) {
		doc = row_doc(t, &len);
		return head_only ? tm__task_decode_head(id, doc, (size_t)len, out)
		                 : tm__task_decode(id, doc, (size_t)len, out);
	}
	if (on_held(t, id)) { /* locked by this transaction's queue scan */
		doc = PQgetvalue(t->held, t->held_row, 3);
		len = PQgetlength(t->held, t->held_row, 3);
		return head_only ? tm__task_decode_head(id, doc, (size_t)len, out)
		                 : tm__task_decode(id, doc, (size_t)len, out);
	}
	err = load(t, id, lock, &r);
	if (err)
		return err;
	doc = PQgetvalue(r, 0, 0);
	len = PQgetlength(r, 0, 0);
	err = head_only ? tm__task_decode_head(id, doc, (size_t)len, out)
	                : tm__task_decode(id, doc, (size_t)len, out);
	PQclear(r);
	return err;
}

int tm__pg_get(tm__txn *txn, const char *id, tm__task *out)
{
	return get(txn, id, out, false);
}

int tm__pg_get_head(tm__txn *txn, const char *id, tm__task *out)
{
	return get(txn, id, out, true);
}

int tm__pg_render(tm__txn *txn, const char *id, const char *name,
                  bool with_details, tm__buf *out)
{
	tm__pg_txn *t = tm__pg_txn_of(txn);
	const char *vals[1] = { id };
	PGresult *r = NULL;
	const char *doc;
	tm__task head;
	int len, err = TM_OK;

	if (on_row(t, id)) {
		doc = row_doc(t, &len);
	} else {
		err = tm__pg_exec(t, PG_RENDER, 1, vals, NULL, &r);
		if (err)
			return err;
		if (PQntuples(r) == 0) {
			PQclear(r);
			return not_found(id);
		}
		doc = PQgetvalue(r, 0, 0);
		len = PQgetlength(r, 0, 0);
	}
	if (name != NULL) {
		err = tm__task_decode_head(id, doc, (size_t)len, &head);
		if (!err && strcmp(head.name, name) != 0)
			err = tm_errorf(TM_ETASK_NOT_FOUND, "task %s not found in %s", id, name);
	}
	if (!err)
		err = tm__task_render(id, doc, (size_t)len, with_details, out);
	PQclear(r);
	return err;
}

int tm__pg_put(tm__txn *txn, const tm__task *old, const tm__task *task)
{
	tm__pg_txn *t = tm__pg_txn_of(txn);
	char st[I8], start[I8], ready[I8], timeout[I8], lease[I8], owner[I8], prio[I8];
	void *doc = NULL;
	size_t len = 0;
	int err = tm__task_encode(task, &doc, &len);

	drop_held(t, task->id);
	if (err)
		return err;
	i8(st, task->status);
	i8(start, task->start_us);
	i8(ready, task->ready_us);
	i8(timeout, task->timeout_us);
	i8(lease, task->lease_us);
	i8(owner, (int64_t)task->owner); /* the token's bits, as a signed int8 */
	if (old == NULL) {
		/* A task's priority never changes: only its insert writes it. */
		const char *vals[11] = { task->id, task->name, st, task->queued ? "t" : "f",
		                         start, ready, timeout, lease, owner, doc,
		                         i8(prio, task->priority) };
		const int lens[11] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, (int)len, 0 };

		err = tm__pg_defer(t, PG_INSERT, 11, vals, lens, 1);
	} else {
		const char *vals[8] = { task->id, st, task->queued ? "t" : "f", ready,
		                        timeout, lease, owner, doc };
		const int lens[8] = { 0, 0, 0, 0, 0, 0, 0, (int)len };

		err = tm__pg_defer(t, PG_UPDATE, 8, vals, lens, 1);
	}
	free(doc);
	if (!err && tm__status_final(task->status) != (old && tm__status_final(old->status)))
		err = tm__pg_count_final(t, task->name, tm__status_final(task->status) ? 1 : -1);
	/* Tell the other nodes at commit: work to take, or a run to stop, or
	 * a slot of a concurrency limit come free. */
	if (task->queued || task->status == TM_CANCELLED_REQUESTED ||
	    (old && old->status != task->status && tm__status_final(task->status)))
		t->notify = true;
	return err;
}

int tm__pg_delete(tm__txn *txn, const tm__task *task)
{
	tm__pg_txn *t = tm__pg_txn_of(txn);
	const char *vals[1] = { task->id };

	int err;

	drop_held(t, task->id);
	err = tm__pg_defer(t, PG_DELETE, 1, vals, NULL, PG_EXPECT_ANY); /* its secret too */
	if (!err && tm__status_final(task->status))
		err = tm__pg_count_final(t, task->name, -1);
	return err;
}

/* Counts read before the retention lock may be out of date under it (a
 * pruner that held it committed since): read again. */
static void forget_reads(tm__pg_txn *t)
{
	for (size_t i = 0; i < t->n_finals; i++)
		t->finals[i].have_base = false;
}

/* The retention lock's key: a hash of schema, name and "retention", apart
 * from the name lock's (a collision only makes the two wait for each
 * other). */
int tm__pg_lock_retention(tm__txn *txn, const char *name, bool wait, bool *got)
{
	tm__pg_txn *t = tm__pg_txn_of(txn);
	const char *parts[3] = { t->s->schema, name, "retention" };
	uint64_t h = 1469598103934665603ULL;
	char key[I8];
	const char *vals[1] = { key };
	PGresult *r;
	int err;

	for (int i = 0; i < 3; i++) {
		for (const char *p = parts[i]; *p; p++)
			h = (h ^ (unsigned char)*p) * 1099511628211ULL;
		h = (h ^ 0xff) * 1099511628211ULL;
	}
	i8(key, (int64_t)h);
	*got = false;
	if (wait) {
		/* Reads sent ahead come back first, or they would land after
		 * forget_reads(). */
		err = t->c->n_pending > 0 ? tm__pg_flush(t, NULL) : TM_OK;
		if (err)
			return err;
		*got = true; /* sent ahead: what follows waits for it on the server */
		forget_reads(t);
		return tm__pg_defer(t, PG_LOCK_NAME, 1, vals, NULL, PG_EXPECT_ANY);
	}
	err = tm__pg_exec(t, PG_TRY_LOCK, 1, vals, NULL, &r);
	if (!err && PQntuples(r) == 1)
		*got = PQgetvalue(r, 0, 0)[0] != 0; /* a binary boolean */
	if (!err && *got)
		forget_reads(t);
	PQclear(r);
	return err;
}

/* A transaction-scoped advisory lock on a 64-bit hash of schema and name:
 * a collision only makes two names wait for each other. */
int tm__pg_lock_name(tm__txn *txn, const char *name)
{
	tm__pg_txn *t = tm__pg_txn_of(txn);
	uint64_t h = tm__hash64(t->s->schema, strlen(t->s->schema));
	char key[I8];
	const char *vals[1] = { key };

	/* 0xff between schema and name: the keys of earlier versions, so
	 * that nodes of both exclude each other during an upgrade. */
	h = tm__hash64_more(h, "\xff", 1);
	h = tm__hash64_more(h, name, strlen(name));
	i8(key, (int64_t)h);
	/* Sent ahead: the statements after it wait for it on the server. */
	return tm__pg_defer(t, PG_LOCK_NAME, 1, vals, NULL, PG_EXPECT_ANY);
}

/* ---- secrets ------------------------------------------------------------------ */

int tm__pg_secret_put(tm__txn *txn, const char *id, const char *secret)
{
	tm__pg_txn *t = tm__pg_txn_of(txn);
	const char *vals[2] = { id, secret };
	const int lens[2] = { 0, (int)strlen(secret) };

	drop_held(t, id);
	return tm__pg_defer(t, PG_SECRET_PUT, 2, vals, lens, PG_EXPECT_ANY);
}

int tm__pg_secret_get(tm__txn *txn, const char *id, char **out)
{
	tm__pg_txn *t = tm__pg_txn_of(txn);
	const char *vals[1] = { id };
	PGresult *r = NULL;
	int err = TM_OK;

	*out = NULL;
	if (on_held(t, id)) {
		if (!PQgetisnull(t->held, t->held_row, 4)) {
			int len = PQgetlength(t->held, t->held_row, 4);

			if ((*out = malloc((size_t)len + 1)) == NULL)
				return tm__error_oom();
			memcpy(*out, PQgetvalue(t->held, t->held_row, 4), (size_t)len);
			(*out)[len] = '\0';
		}
		return TM_OK;
	}
	err = tm__pg_exec(t, PG_SECRET_GET, 1, vals, NULL, &r);
	if (!err && PQntuples(r) == 1) {
		int len = PQgetlength(r, 0, 0);

		*out = malloc((size_t)len + 1);
		if (*out == NULL) {
			err = tm__error_oom();
		} else {
			memcpy(*out, PQgetvalue(r, 0, 0), (size_t)len);
			(*out)[len] = '\0';
		}
	}
	PQclear(r);
	return err;
}

int tm__pg_secret_del(tm__txn *txn, const char *id)
{
	tm__pg_txn *t = tm__pg_txn_of(txn);
	const char *vals[1] = { id };

	drop_held(t, id);
	return tm__pg_defer(t, PG_SECRET_DEL, 1, vals, NULL, PG_EXPECT_ANY);
}

/* ---- scans ----------------------------------------------------------------------
 *
 * A scan runs its first statement, then its next one from the last row
 * seen (keyset paging), TM__PG_SCAN_CHUNK rows at a time, until the
 * callback stops it or a chunk comes back short. */

struct scan {
	enum tm__pg_stmt first, next;
	const char *vals[6];
	int n_first, n_next;
	int key_at;            /* next's first keyset parameter */
	int key_cols[3];       /* the keyset's columns in the result */
	bool key_int[3];       /* int8 (else text) */
	int n_keys;
	int id_col, doc_col, name_col;
	int chunk;             /* rows a statement; 0: TM__PG_SCAN_CHUNK */
	bool hold;             /* keep the row it stops on (t->held) */
	int (*row)(tm__pg_txn *t, const PGresult *r, int i, void *ctx);
	void *ctx;
};

static int scan(tm__pg_txn *t, struct scan *sc)
{
	char keys[3][TM_NAME_MAX + I8];
	char limit[I8];
	struct tm__pg_row saved = t->cur;
	PGresult *r;
	int chunk = sc->chunk ? sc->chunk : TM__PG_SCAN_CHUNK;
	int err, rc = 0;

	i8(limit, chunk);
	for (int i = 0; i < 6; i++)
		if (sc->vals[i] == NULL)
			sc->vals[i] = limit; /* the one parameter left open is the limit */
	err = tm__pg_exec(t, sc->first, sc->n_first, sc->vals, NULL, &r);
	while (!err) {
		int n = PQntuples(r);

		int i;

		for (i = 0; i < n && rc == 0; i++) {
			t->cur = (struct tm__pg_row){ r, i, sc->id_col, sc->doc_col, sc->name_col };
			rc = sc->row(t, r, i, sc->ctx);
		}
		t->cur = saved;
		if (rc == TM__SCAN_STOP && sc->hold) {
			PQclear(t->held);
			t->held = r;
			t->held_row = i - 1;
			break;
		}
		if (rc != 0 || n < chunk) {
			PQclear(r);
			break;
		}
		for (int k = 0; k < sc->n_keys; k++) {
			if (sc->key_int[k])
				i8(keys[k], tm__pg_int8(r, n - 1, sc->key_cols[k]));
			else
				snprintf(keys[k], sizeof(keys[k]), "%s",
				         PQgetvalue(r, n - 1, sc->key_cols[k]));
			sc->vals[sc->key_at + k] = keys[k];
		}
		PQclear(r);
		err = tm__pg_exec(t, sc->next, sc->n_next, sc->vals, NULL, &r);
	}
	if (err)
		return err;
	return rc < 0 ? rc : TM_OK;
}

struct id_scan {
	tm__id_fn fn;
	void *ctx;
};

static int id_row(tm__pg_txn *t, const PGresult *r, int i, void *p)
{
	struct id_scan *c = p;

	return c->fn(&t->base, PQgetvalue(r, i, 0), c->ctx);
}

/* Columns id, doc, start_us: keyset (start_us, id). */
static int name_scan(tm__txn *txn, enum tm__pg_stmt first, enum tm__pg_stmt next,
                     const char *name, const char *skip, tm__id_fn fn, void *ctx)
{
	struct id_scan c = { fn, ctx };
	struct scan sc = {
		.first = first, .next = next, .vals = { name, NULL, skip },
		.n_first = skip ? 3 : 2, .n_next = 4, .key_at = 2,
		.key_cols = { 2, 0 }, .key_int = { true, false }, .n_keys = 2,
		.id_col = 0, .doc_col = 1, .name_col = -1, .row = id_row, .ctx = &c,
	};

	return scan(tm__pg_txn_of(txn), &sc);
}

int tm__pg_recent(tm__txn *txn, const char *name, size_t skip, tm__id_fn fn, void *ctx)
{
	char s[I8];

	return name_scan(txn, PG_RECENT, PG_RECENT_NEXT, name, i8(s, (int64_t)skip), fn, ctx);
}

int tm__pg_oldest(tm__txn *txn, const char *name, tm__id_fn fn, void *ctx)
{
	return name_scan(txn, PG_OLDEST, PG_OLDEST_NEXT, name, NULL, fn, ctx);
}

int tm__pg_active(tm__txn *txn, const char *name, tm__id_fn fn, void *ctx)
{
	struct id_scan c = { fn, ctx };
	struct scan all = {
		.first = PG_ACTIVE_ALL, .next = PG_ACTIVE_ALL_NEXT,
		.n_first = 1, .n_next = 4, .key_at = 1,
		.key_cols = { 3, 2, 0 }, .key_int = { false, true, false }, .n_keys = 3,
		.id_col = 0, .doc_col = 1, .name_col = 3, .row = id_row, .ctx = &c,
	};

	if (name != NULL)
		return name_scan(txn, PG_ACTIVE, PG_ACTIVE_NEXT, name, NULL, fn, ctx);
	return scan(tm__pg_txn_of(txn), &all);
}

/* Straight from the timeout and lease indexes: no walk over a backlog. */
int tm__pg_expired(tm__txn *txn, int64_t now, tm__id_fn fn, void *ctx)
{
	char at[I8];
	struct id_scan c = { fn, ctx };
	struct scan sc = {
		.first = PG_EXPIRED, .next = PG_EXPIRED_NEXT, .vals = { NULL, i8(at, now) },
		.n_first = 2, .n_next = 3, .key_at = 2,
		.key_cols = { 0 }, .key_int = { false }, .n_keys = 1,
		.id_col = 0, .doc_col = 1, .name_col = -1, .row = id_row, .ctx = &c,
	};

	return scan(tm__pg_txn_of(txn), &sc);
}

struct queue_scan {
	tm__queue_fn fn;
	void *ctx;
};

static int queue_row(tm__pg_txn *t, const PGresult *r, int i, void *p)
{
	struct queue_scan *c = p;

	return c->fn(&t->base, tm__pg_int8(r, i, 2), PQgetvalue(r, i, 0),
	             PQgetvalue(r, i, 1), c->ctx);
}

/* In a write, the rows come locked and rows other nodes hold are skipped
 * (FOR UPDATE SKIP LOCKED): each waiting task is taken by one node. */
int tm__pg_queue(tm__txn *txn, int64_t now, tm__queue_fn fn, void *ctx)
{
	tm__pg_txn *t = tm__pg_txn_of(txn);
	char at[I8];
	struct queue_scan c = { fn, ctx };
	struct scan sc = {
		.first = t->write ? PG_QUEUE_LOCK : PG_QUEUE,
		.next = t->write ? PG_QUEUE_LOCK_NEXT : PG_QUEUE_NEXT,
		.vals = { NULL, i8(at, now) },
		.n_first = 2, .n_next = 5, .key_at = 2,
		/* Keyset (ready_us, start_us, id); start_us comes last. */
		.key_cols = { 2, t->write ? 5 : 3, 0 }, .key_int = { true, true, false },
		.n_keys = 3,
		.id_col = 0, .doc_col = -1, .name_col = 1, .row = queue_row, .ctx = &c,
		/* Locked rows stay locked until the commit: take few at a time. */
		.chunk = t->write ? 4 : 0, .hold = t->write,
	};

	return scan(t, &sc);
}

int tm__pg_queue_head(tm__txn *txn, uint64_t *depth, int64_t *head_us)
{
	PGresult *r;
	int err = tm__pg_exec(tm__pg_txn_of(txn), PG_QUEUE_HEAD, 0, NULL, NULL, &r);

	*depth = 0;
	*head_us = 0;
	if (!err && PQntuples(r) == 1) {
		*depth = (uint64_t)tm__pg_int8(r, 0, 0);
		*head_us = tm__pg_int8(r, 0, 1);
	}
	PQclear(r);
	return err;
}

/* ---- the store as a whole ------------------------------------------------------ */

void tm__pg_size(tm__txn *txn, uint64_t *used, uint64_t *free_bytes, uint64_t *map)
{
	PGresult *r;

	*used = *free_bytes = *map = 0;
	if (tm__pg_exec(tm__pg_txn_of(txn), PG_SIZE, 0, NULL, NULL, &r) == TM_OK) {
		if (PQntuples(r) == 1)
			*used = (uint64_t)tm__pg_int8(r, 0, 0);
		PQclear(r);
	}
}

struct check_ctx {
	cJSON *problems;
	uint64_t n;
};

static int problem(cJSON *problems, const char *what, const char *id)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "task %s: %s", id, what);
	return cJSON_AddItemToArray(problems, cJSON_CreateString(msg)) ? 0 : tm__error_oom();
}

/* Columns: id, doc, name, status, queued, start_us, ready_us, timeout_us,
 * lease_us, owner, priority.  The columns must say what the record says. */
static int check_row(tm__pg_txn *t, const PGresult *r, int i, void *p)
{
	struct check_ctx *c = p;
	const char *id = PQgetvalue(r, i, 0);
	tm__task h;

	(void)t;
	c->n++;
	if (strlen(id) != TM_TASK_ID_LEN)
		return problem(c->problems, "malformed id", id);
	if (tm__task_decode_head(id, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1), &h))
		return problem(c->problems, "record does not decode", id);
	if (strcmp(h.name, PQgetvalue(r, i, 2)) != 0 ||
	    (int64_t)h.status != tm__pg_int8(r, i, 3) ||
	    h.queued != (PQgetvalue(r, i, 4)[0] != 0) ||
	    h.start_us != tm__pg_int8(r, i, 5) || h.ready_us != tm__pg_int8(r, i, 6) ||
	    h.timeout_us != tm__pg_int8(r, i, 7) || h.lease_us != tm__pg_int8(r, i, 8) ||
	    (int64_t)h.owner != tm__pg_int8(r, i, 9) || h.priority != tm__pg_int8(r, i, 10))
		return problem(c->problems, "columns disagree with the record", id);
	return 0;
}

int tm__pg_check(tm__txn *txn, cJSON *problems, uint64_t *n_tasks)
{
	tm__pg_txn *t = tm__pg_txn_of(txn);
	struct check_ctx c = { problems, 0 };
	struct scan sc = {
		.first = PG_CHECK, .next = PG_CHECK_NEXT, .n_first = 1, .n_next = 2,
		.key_at = 1, .key_cols = { 0 }, .key_int = { false }, .n_keys = 1,
		.id_col = 0, .doc_col = 1, .name_col = 2, .row = check_row, .ctx = &c,
	};
	PGresult *r = NULL;
	int err = scan(t, &sc);

	*n_tasks = c.n;
	if (!err)
		err = tm__pg_exec(t, PG_CHECK_SECRETS, 0, NULL, NULL, &r);
	for (int i = 0; !err && i < PQntuples(r); i++)
		err = problem(problems, "a final task still has a secret", PQgetvalue(r, i, 0));
	PQclear(r);
	r = NULL;
	if (!err)
		err = tm__pg_exec(t, PG_CHECK_FINALS, 0, NULL, NULL, &r);
	for (int i = 0; !err && i < PQntuples(r); i++) {
		char msg[200];

		snprintf(msg, sizeof(msg), "name %s: the finals counter says %lld final "
		         "tasks, the tasks are %lld", PQgetvalue(r, i, 0),
		         (long long)tm__pg_int8(r, i, 1), (long long)tm__pg_int8(r, i, 2));
		if (!cJSON_AddItemToArray(problems, cJSON_CreateString(msg)))
			err = tm__error_oom();
	}
	PQclear(r);
	return err;
}
