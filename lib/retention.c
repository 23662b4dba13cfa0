/* Retention: each name keeps its newest keep_count final tasks (by start
 * time), none started more than keep_age_s ago, and never more than
 * keep_count + slack final tasks at any commit (PostgreSQL: see below),
 * whatever the rate they end at.
 *
 * By count, where tasks become final.  A write whose puts make tasks of a
 * name final runs the store's final hook for that name at its end, in the
 * same transaction (store.c).  The hook reads the name's count of final
 * tasks, which is cheap on both engines (LMDB's figures record,
 * PostgreSQL's counter rows), and once it exceeds keep_count + slack
 * deletes the oldest final tasks down to keep_count: once every slack + 1
 * finals or so, as many.  One deletion per final task, amortised; no race
 * with a background thread.  A task the write itself ended is pruned with
 * the others if it started before the newest keep_count.  Only names
 * registered in this process are pruned: another process's names keep
 * its policy.
 *
 * Pruners hold the name's retention lock, apart from the name's own lock
 * (store.h), so that pruning never waits for a trigger or a claim.  At the
 * end of a write it is only tried: a write that finds it taken (PostgreSQL:
 * another node's or session's write prunes the name at this moment)
 * leaves the work to that one and does not wait, unless the name is over
 * keep_count + 2 x slack (writes committed while the holder works): then
 * it waits, and prunes after the holder.  A wait could only deadlock with a
 * holder deleting a final task this write locked without changing it
 * (rare: the database breaks it, and the write runs again).  Under the
 * lock the count is read again.  LMDB has one writer at a time and always
 * takes the lock.
 *
 * By age, and down to keep_count exactly: the supervisor's pass, once a
 * second per name, counting the tasks themselves (which mends
 * PostgreSQL's counter, should it ever drift), in transactions of at most
 * TM__RETAIN_BATCH deletions, as many as the backlog needs (supervisor.c
 * bounds its time per tick and goes on at the next tick while work is
 * left). */
#include <stdlib.h>

#include "error.h"
#include "registry.h"
#include "retention.h"
#include "store.h"

#define SLACK_MAX 64

uint64_t tm__retention_slack(uint64_t keep)
{
	return keep / 4 < SLACK_MAX ? keep / 4 : SLACK_MAX;
}

/* ---- the oldest final tasks to delete -------------------------------------- */

struct victims {
	int64_t over;        /* final tasks beyond keep_count */
	int64_t cutoff_us;   /* final tasks that started before are too old */
	size_t max;          /* stop at this many */
	size_t n;
	tm__task *heads;     /* their fixed fields, as the scan read them */
};

static int pick(tm__txn *txn, const char *id, void *p)
{
	struct victims *v = p;
	tm__task t;

	if (tm__store_get_head(txn, id, &t) != TM_OK)
		return 0;
	if (v->over <= 0 && t.start_us >= v->cutoff_us)
		return TM__SCAN_STOP; /* oldest first: everything after is kept too */
	if (!tm__status_final(t.status))
		return 0; /* active tasks are never pruned */
	if (v->heads)
		v->heads[v->n] = t;
	v->n++;
	v->over--;
	return v->n == v->max ? TM__SCAN_STOP : 0;
}

/* Find the victims of name: the oldest final tasks while it holds more
 * than `keep` of them, and those older than cutoff_us.  Nothing when the
 * count is at most `above` and no age applies.  exact: count the tasks
 * (store.h), else read the count kept beside them. */
static int find(tm__txn *txn, const char *name, uint64_t keep, uint64_t above,
                bool exact, struct victims *v)
{
	uint64_t finals;
	int err = tm__store_name_finals(txn, name, exact, &finals);

	v->n = 0;
	if (err)
		return err;
	v->over = finals > above && finals > keep ? (int64_t)(finals - keep) : 0;
	if (v->over == 0 && v->cutoff_us == INT64_MIN)
		return TM_OK;
	return tm__store_oldest(txn, name, pick, v);
}

/* From the heads the scan read, in the same transaction and under the
 * retention lock: a final task's fixed fields never change, and nobody
 * else deletes it meanwhile.  (Read again, each would cost PostgreSQL a
 * round trip.) */
static int delete_all(tm__txn *txn, const struct victims *v)
{
	int err = TM_OK;

	for (size_t i = 0; !err && i < v->n; i++)
		err = tm__store_delete(txn, &v->heads[i]);
	return err;
}

/* ---- by count, in the write that makes a task final ----------------------------- */

static int on_final(tm__txn *txn, const char *name, void *ctx)
{
	tm_manager *tm = ctx;
	uint64_t keep = tm->opts.keep_count, slack = tm__retention_slack(keep);
	uint64_t bound = keep + slack, finals;
	struct victims v = { .cutoff_us = INT64_MIN, .max = TM__RETAIN_BATCH };
	bool got;
	int err;

	if (tm__registry_find(tm->reg, name) == NULL)
		return TM_OK; /* another process's name: its policy, not ours */
	err = tm__store_name_finals(txn, name, false, &finals);
	if (err || finals <= bound)
		return err;
	/* Tried only: its holder prunes the name now.  Unless the name is
	 * far over (the holder is slow, and others commit meanwhile): then
	 * wait for it, and prune after it. */
	err = tm__store_lock_retention(txn, name, finals > bound + slack, &got);
	if (err || !got)
		return err;
	v.heads = malloc(TM__RETAIN_BATCH * sizeof(*v.heads));
	if (v.heads == NULL)
		return tm__error_oom();
	/* Counted again under the lock: a pruner that held it before may have
	 * done the work already.  From the counter: counting the tasks
	 * themselves would cost as many rows as the name has, waiting ones
	 * included; the supervisor's pass does that, once a second, and
	 * mends the counter if it ever drifted. */
	err = find(txn, name, keep, bound, false, &v);
	if (!err)
		err = delete_all(txn, &v);
	free(v.heads);
	return err;
}

void tm__retention_start(tm_manager *tm)
{
	tm__store_on_final(tm->store, on_final, tm);
}

/* ---- by age, and down to keep_count: the supervisor's pass ------------------------ */

struct pass {
	const char *name;
	uint64_t keep;
	struct victims v;
};

static int pass_read(tm__txn *txn, void *p)
{
	struct pass *c = p;

	return find(txn, c->name, c->keep, c->keep, true, &c->v);
}

static int pass_write(tm__txn *txn, void *p)
{
	struct pass *c = p;
	uint64_t finals;
	bool got;
	/* Counted exactly before the lock, not under it: that count costs as
	 * many rows as the name has (on PostgreSQL; it also mends the
	 * counter), and writes that find the lock taken do not prune. */
	int err = tm__store_name_finals(txn, c->name, true, &finals);

	if (!err)
		err = tm__store_lock_retention(txn, c->name, true, &got);
	if (!err)
		err = find(txn, c->name, c->keep, c->keep, false, &c->v);
	return err ? err : delete_all(txn, &c->v);
}

int tm__retention_pass(tm_manager *tm, const char *name, int64_t now, bool *more)
{
	struct pass c = { .name = name, .keep = tm->opts.keep_count };
	double age_us = tm->opts.keep_age_s * 1e6;
	int err;

	*more = false;
	/* INT64_MIN would mean "no age" (find): a longer age than the clock
	 * covers keeps everything older. */
	c.v.cutoff_us = age_us < (double)now + 9e18 ? now - (int64_t)age_us : INT64_MIN + 1;
	c.v.max = 1; /* the read only asks whether there is any */
	err = tm__store_read(tm->store, pass_read, &c);
	if (err || c.v.n == 0)
		return err;
	c.v.max = TM__RETAIN_BATCH;
	c.v.heads = malloc(TM__RETAIN_BATCH * sizeof(*c.v.heads));
	if (c.v.heads == NULL)
		return tm__error_oom();
	err = tm__store_write(tm->store, pass_write, &c);
	*more = !err && c.v.n == TM__RETAIN_BATCH;
	free(c.v.heads);
	return err;
}
