/* The PostgreSQL store's per-name state: the figures tm_stats shows, the
 * tm_notify change counters, and the finals counter retention reads (a
 * row per name and session slot, which a transaction changes in memory
 * and adds to just before its COMMIT). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "status.h"
#include "store_pg_shared.h"

/* ---- the finals counter, as this transaction changes it ---------------------- */

struct tm__pg_finals *tm__pg_finals_of(tm__pg_txn *t, const char *name, int *err)
{
	struct tm__pg_finals *f;

	*err = TM_OK;
	for (size_t i = 0; i < t->n_finals; i++)
		if (strcmp(t->finals[i].name, name) == 0)
			return &t->finals[i];
	if (strlen(name) > TM_NAME_MAX) {
		*err = tm_errorf(TM_EINVAL, "task name too long");
		return NULL;
	}
	if (t->n_finals == t->cap_finals) {
		size_t cap = t->cap_finals ? t->cap_finals * 2 : 4;

		f = realloc(t->finals, cap * sizeof(*f));
		if (f == NULL) {
			*err = tm__error_oom();
			return NULL;
		}
		t->finals = f;
		t->cap_finals = cap;
	}
	f = &t->finals[t->n_finals++];
	memset(f, 0, sizeof(*f));
	strcpy(f->name, name);
	return f;
}

/* The name has one final task more (+1) or fewer (-1) at the commit.  A
 * new final task also sends the read of the name's counter ahead, once:
 * the next statement that waits for its answer brings it back with its
 * own, so that retention's check at the end of the write (name_finals)
 * seldom costs a round trip of its own. */
int tm__pg_count_final(tm__pg_txn *t, const char *name, int64_t d)
{
	int err;
	struct tm__pg_finals *f = tm__pg_finals_of(t, name, &err);
	const char *vals[1] = { name };

	if (f == NULL)
		return err;
	f->delta += d;
	if (d > 0 && !f->asked) {
		f->asked = true;
		err = tm__pg_send(t, PG_FINALS, NULL, 1, vals, NULL, PG_EXPECT_ANY);
		if (!err)
			t->c->capture[t->c->n_pending - 1] = (int)(f - t->finals);
		if (!err && t->c->n_pending > TM__PG_PENDING_MAX - 4)
			err = tm__pg_flush(t, NULL);
	}
	return err;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct tm__pg_finals *)a)->name,
	              ((const struct tm__pg_finals *)b)->name);
}

int tm__pg_finals_commit(tm__pg_txn *t)
{
	char slot[I8], delta[I8];
	const char *vals[3] = { NULL, slot, delta };
	int err = TM_OK;

	if (t->n_finals == 0)
		return TM_OK;
	/* Each session of this process has a row of its own. */
	tm__pg_i8(slot, (int64_t)((t->s->slot_base + (unsigned)(t->c - t->s->pool)) %
	                   TM__PG_FINAL_SLOTS));
	qsort(t->finals, t->n_finals, sizeof(*t->finals), by_name);
	for (size_t i = 0; i < t->n_finals && !err; i++) {
		if (t->finals[i].delta == 0)
			continue;
		vals[0] = t->finals[i].name;
		tm__pg_i8(delta, t->finals[i].delta);
		err = tm__pg_defer(t, PG_FINALS_ADD, 3, vals, NULL, PG_EXPECT_ANY);
	}
	return err;
}

/* ---- per-name figures --------------------------------------------------------
 *
 * Counted from the tasks themselves (the active and by-name indexes), not
 * kept in a counter row: a counter every trigger updates would make every
 * trigger of a name wait for the one before it to commit. */

int tm__pg_name_stats(tm__txn *txn, const char *name, tm__name_stats *out)
{
	const char *vals[1] = { name };
	PGresult *r;
	int err = tm__pg_exec(tm__pg_txn_of(txn), PG_NAME_STATS, 1, vals, NULL, &r);

	memset(out, 0, sizeof(*out));
	if (err)
		return err;
	for (int i = 0; i < PQntuples(r); i++) {
		int64_t k = tm__pg_int8(r, i, 0), v = tm__pg_int8(r, i, 1);

		if (k >= 0 && k < TM__STATUS_COUNT)
			out->by_status[k] = (uint64_t)v;
		else if (k == -1)
			out->changes = (uint64_t)v;
		else if (k == -2)
			out->since_us = v;
	}
	PQclear(r);
	return TM_OK;
}

/* Cheap: the counter's rows, plus what this transaction changed.  Exact:
 * the tasks themselves, counted in the snapshot that reads the counter
 * too (as many rows as the name has); in a write the counter is then set
 * to that count at the commit, so a drift (a node of an older version,
 * which does not count) is mended whenever the count is taken exactly. */
int tm__pg_name_finals(tm__txn *txn, const char *name, bool exact, uint64_t *n)
{
	tm__pg_txn *t = tm__pg_txn_of(txn);
	struct tm__pg_finals *f = NULL;
	const char *vals[1] = { name };
	int64_t count, sum;
	PGresult *r;
	int err = TM_OK;

	*n = 0;
	if (t->write) {
		f = tm__pg_finals_of(t, name, &err);
		if (err)
			return err;
	}
	if (!exact && f && f->asked && !f->have_base && t->c->n_pending > 0)
		err = tm__pg_flush(t, NULL); /* the read sent ahead comes back */
	if (err)
		return err;
	if (!exact && f && f->have_base) {
		count = f->base + f->delta;
		*n = count > 0 ? (uint64_t)count : 0;
		return TM_OK;
	}
	err = tm__pg_exec(t, exact ? PG_FINALS_EXACT : PG_FINALS, 1, vals, NULL, &r);
	if (err)
		return err;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return tm_errorf(TM_ESTORAGE, "PostgreSQL: no count of final tasks");
	}
	sum = tm__pg_int8(r, 0, exact ? 1 : 0);
	count = exact ? tm__pg_int8(r, 0, 0) : sum + (f ? f->delta : 0);
	PQclear(r);
	if (f && exact)
		f->delta = count - sum; /* the counter says `count` at the commit */
	if (f) {
		f->base = sum;
		f->have_base = true;
	}
	*n = count > 0 ? (uint64_t)count : 0;
	return TM_OK;
}

static int name_exec(tm__txn *txn, enum tm__pg_stmt st, int n, const char *a, const char *b)
{
	tm__pg_txn *t = tm__pg_txn_of(txn);
	char now[I8];
	const char *vals[3] = { a, b, tm__pg_i8(now, t->s->base.ops->now(&t->s->base)) };

	if (n == 2 && b == NULL)
		vals[1] = vals[2]; /* (name, now) */
	return tm__pg_defer(t, st, n, vals, NULL, PG_EXPECT_ANY);
}

int tm__pg_add_changes(tm__txn *txn, const char *name, uint64_t n)
{
	char v[I8];

	return name_exec(txn, PG_ADD_CHANGES, 3, name,
	                 tm__pg_i8(v, n > INT64_MAX ? INT64_MAX : (int64_t)n));
}

int tm__pg_reset_changes(tm__txn *txn, const char *name)
{
	return name_exec(txn, PG_RESET_CHANGES, 1, name, NULL);
}

int tm__pg_name_touch(tm__txn *txn, const char *name)
{
	return name_exec(txn, PG_NAME_TOUCH, 2, name, NULL);
}

int tm__pg_pause(tm__txn *txn, const char *name, bool paused)
{
	return paused ? name_exec(txn, PG_PAUSE, 2, name, NULL)
	              : name_exec(txn, PG_RESUME, 1, name, NULL);
}

int tm__pg_paused(tm__txn *txn, const char *name, bool *paused)
{
	const char *vals[1] = { name };
	PGresult *r;
	int err = tm__pg_exec(tm__pg_txn_of(txn), PG_PAUSED, 1, vals, NULL, &r);

	*paused = false;
	if (err)
		return err;
	*paused = PQntuples(r) > 0;
	PQclear(r);
	return TM_OK;
}

int tm__pg_names(tm__txn *txn, tm__name_fn fn, void *ctx)
{
	PGresult *r;
	int err = tm__pg_exec(tm__pg_txn_of(txn), PG_NAMES, 0, NULL, NULL, &r), rc = 0;

	if (err)
		return err;
	for (int i = 0; i < PQntuples(r) && rc == 0; i++)
		rc = fn(txn, PQgetvalue(r, i, 0), ctx);
	PQclear(r);
	return rc < 0 ? rc : TM_OK;
}


/* ---- rate limits ------------------------------------------------------------- */

/* A float8 result column (binary: IEEE 754, big-endian like an int8). */
static double float8_of(const PGresult *r, int row, int col)
{
	int64_t v = tm__pg_int8(r, row, col);
	double d;

	memcpy(&d, &v, sizeof(d));
	return d;
}

static int rate_exec(tm__txn *txn, enum tm__pg_stmt st, const char *name, double rate,
                     unsigned burst, PGresult **r)
{
	char rs[32], bs[16];
	const char *vals[3] = { name, rs, bs };

	snprintf(rs, sizeof(rs), "%.17g", rate);
	snprintf(bs, sizeof(bs), "%u", burst);
	return tm__pg_exec(tm__pg_txn_of(txn), st, 3, vals, NULL, r);
}

int tm__pg_rate_take(tm__txn *txn, const char *name, double rate,
                     unsigned burst, bool *taken, double *left)
{
	PGresult *r;
	int err = rate_exec(txn, PG_RATE_TAKE, name, rate, burst, &r);

	*taken = false;
	*left = 0;
	if (err)
		return err;
	if (PQntuples(r) == 1) {
		*taken = PQgetvalue(r, 0, 0)[0] != 0; /* a binary boolean */
		*left = float8_of(r, 0, 1);
		tm__pg_txn_of(txn)->wrote |= *taken;
	}
	PQclear(r);
	return TM_OK;
}

int tm__pg_rate_tokens(tm__txn *txn, const char *name, double rate,
                       unsigned burst, double *tokens)
{
	PGresult *r;
	int err = rate_exec(txn, PG_RATE_TOKENS, name, rate, burst, &r);

	*tokens = burst; /* no bucket yet: a full one */
	if (err)
		return err;
	if (PQntuples(r) == 1)
		*tokens = float8_of(r, 0, 0);
	PQclear(r);
	return TM_OK;
}

/* ---- cron schedules ---------------------------------------------------------- */

int tm__pg_cron_get(tm__txn *txn, const char *name, int64_t *due_us, bool *found)
{
	const char *vals[1] = { name };
	PGresult *r;
	int err = tm__pg_exec(tm__pg_txn_of(txn), PG_CRON_GET, 1, vals, NULL, &r);

	*due_us = 0;
	*found = false;
	if (err)
		return err;
	if (PQntuples(r) > 0) {
		*due_us = tm__pg_int8(r, 0, 0);
		*found = true;
	}
	PQclear(r);
	return TM_OK;
}

/* Sent ahead: the commit checks it. */
int tm__pg_cron_set(tm__txn *txn, const char *name, int64_t due_us, bool if_absent)
{
	char v[I8];
	const char *vals[2] = { name, tm__pg_i8(v, due_us) };

	return tm__pg_defer(tm__pg_txn_of(txn), if_absent ? PG_CRON_START : PG_CRON_SET,
	                    2, vals, NULL, PG_EXPECT_ANY);
}
