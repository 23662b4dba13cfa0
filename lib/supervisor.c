/* What the supervisor thread checks on each tick: it renews the leases of
 * the tasks running here and flushes their progress; it notices cancels and
 * takeovers made by other processes; it fails tasks past their timeout and
 * recovers tasks whose owner died; it fires automatic triggers and cron
 * schedules and prunes old final tasks (retention.c); and it wakes the
 * workers when another process queued work.  Each check reads first and
 * writes only when there is work. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "id.h"
#include "lifecycle.h"
#include "retention.h"
#include "running.h"
#include "supervisor.h"

#define SCAN_MAX 256  /* tasks acted on per transaction */
#define PRUNE_EVERY_US 1000000 /* retention's pass: once a second, */
#define PRUNE_SLICE_US 50000   /* for at most this long a tick (then the next
                                * tick goes on where it stopped) */

/* ---- the tasks running here: leases, progress, outside changes ----------- */

struct running_ctx {
	tm_manager *tm;
	tm_job **jobs;
	size_t n;
	bool renew;
	int64_t now;
	tm__job_mark *marks;
};

/* Read pass: stop the handlers whose task changed under them. */
static int watch_txn(tm__txn *txn, void *p)
{
	struct running_ctx *c = p;

	for (size_t i = 0; i < c->n; i++) {
		tm_job *job = c->jobs[i];
		tm__task t;

		int err = tm__store_get_head(txn, job->id, &t);

		if (err != TM_OK && err != TM_ETASK_NOT_FOUND)
			continue; /* unknown: no news; the leases decide (sync_running) */
		if (err == TM_ETASK_NOT_FOUND || t.owner != job->owner ||
		    tm__status_final(t.status))
			atomic_fetch_or(&job->stop, TM__STOP_LOST);
		else if (t.status == TM_CANCELLED_REQUESTED)
			atomic_fetch_or(&job->stop, TM__STOP_CANCEL);
	}
	return TM_OK;
}

static int sync_txn(tm__txn *txn, void *p)
{
	struct running_ctx *c = p;

	for (size_t i = 0; i < c->n; i++) {
		tm_job *job = c->jobs[i];
		tm__task t, old;
		bool ours;
		int err = tm__store_get(txn, job->id, &t);

		c->marks[i].gen = 0;
		if (err == TM_ETASK_NOT_FOUND)
			continue;
		if (err)
			return err;
		old = t;
		pthread_mutex_lock(&job->mu);
		err = tm__job_apply(job, &t, &c->marks[i], &ours);
		pthread_mutex_unlock(&job->mu);
		if (!err && ours) {
			if (c->renew)
				t.lease_us = c->now + (int64_t)c->tm->opts.lease_ms * 1000;
			err = tm__store_put(txn, &old, &t);
		}
		tm__task_free(&t);
		if (err)
			return err;
	}
	return TM_OK;
}

/* A lease is renewed once a third of it has gone since the run's claim or
 * its last renewal (its fence is two thirds after either): judged by each
 * job's own clock, so that a run claimed a moment ago is not renewed at
 * once, in a commit of its own. */
static bool renewal_due(tm_job **jobs, size_t n)
{
	int64_t now = tm__mono_us();

	for (size_t i = 0; i < n; i++)
		if (now >= atomic_load(&jobs[i]->fence_us) - jobs[i]->lease_us / 3)
			return true;
	return false;
}

static void sync_running(tm_manager *tm, int64_t now)
{
	struct tm__runtime *rt = tm->rt;
	struct running_ctx c = { .tm = tm, .now = now };
	bool dirty = false;
	int64_t began;

	c.jobs = tm__running_snapshot(tm, &c.n);
	if (c.n == 0)
		return;
	tm__store_read(tm->store, watch_txn, &c);
	for (size_t i = 0; i < c.n; i++) {
		pthread_mutex_lock(&c.jobs[i]->mu);
		dirty |= tm__job_dirty(c.jobs[i]);
		pthread_mutex_unlock(&c.jobs[i]->mu);
	}
	c.renew = renewal_due(c.jobs, c.n);
	if (dirty && now - rt->flushed_at_us < (int64_t)tm->opts.progress_ms * 1000)
		dirty = false; /* coalesce: the window since the last flush is open */
	c.marks = calloc(c.n, sizeof(*c.marks));
	began = tm__mono_us();
	if (c.marks && (c.renew || dirty) &&
	    tm__store_write(tm->store, sync_txn, &c) == TM_OK) {
		for (size_t i = 0; i < c.n; i++) {
			pthread_mutex_lock(&c.jobs[i]->mu);
			tm__job_written(c.jobs[i], &c.marks[i]);
			pthread_mutex_unlock(&c.jobs[i]->mu);
			if (c.renew)
				tm__job_renewed(c.jobs[i], began);
		}
		rt->flushed_at_us = now;
	}
	free(c.marks);
	tm__running_unref_all(c.jobs, c.n);
}

/* ---- timeouts and lost workers -------------------------------------------- */

enum fate { KEEP, TIME_OUT, LOST };

struct scan_ctx {
	tm_manager *tm;
	int64_t now;
	uint64_t *mine;      /* owner tokens of the jobs running here */
	size_t n_mine;
	char (*ids)[TM_TASK_ID_LEN + 1];
	size_t n;
	size_t timed_out;    /* acted on, for the caller */
};

static enum fate fate_of(const struct scan_ctx *c, const tm__task *t)
{
	if (tm__status_final(t->status))
		return KEEP;
	if (c->now >= t->timeout_us)
		return TIME_OUT;
	if (t->owner == 0 || t->queued || t->lease_us >= c->now)
		return KEEP;
	for (size_t i = 0; i < c->n_mine; i++)
		if (c->mine[i] == t->owner)
			return KEEP; /* ours and alive: the renewal is late, not lost */
	return LOST;
}

static int scan_one(tm__txn *txn, const char *id, void *p)
{
	struct scan_ctx *c = p;
	tm__task t;

	if (tm__store_get_head(txn, id, &t) != TM_OK || fate_of(c, &t) == KEEP)
		return 0;
	memcpy(c->ids[c->n++], id, TM_TASK_ID_LEN + 1);
	return c->n == SCAN_MAX ? TM__SCAN_STOP : 0;
}

static int scan_txn(tm__txn *txn, void *p)
{
	struct scan_ctx *c = p;

	c->n = 0;
	return tm__store_expired(txn, c->now, scan_one, c);
}

static int resolve_txn(tm__txn *txn, void *p)
{
	struct scan_ctx *c = p;

	/* This process's runs again, now: a claim here that committed since
	 * the scan is among them (entered before its transaction). */
	free(c->mine);
	c->mine = NULL;
	c->n_mine = 0;
	c->timed_out = 0;
	if (tm__running_owners(c->tm, &c->mine, &c->n_mine) != TM_OK)
		return TM_ENOMEM; /* nothing is taken for lost blindly */
	for (size_t i = 0; i < c->n; i++) {
		tm__task t, old;
		enum fate f;
		bool acted = true;
		int err = tm__store_get(txn, c->ids[i], &t);

		if (err == TM_ETASK_NOT_FOUND)
			continue;
		if (err)
			return err;
		old = t;
		f = fate_of(c, &t); /* again: it may have changed since the scan */
		if (f == TIME_OUT)
			err = tm__lifecycle_time_out(txn, &t);
		else if (f == LOST)
			err = tm__lifecycle_lost(txn, &t, tm__registry_find(c->tm->reg, t.name),
			                         &acted);
		if (!err && f != KEEP && acted)
			err = tm__store_put(txn, &old, &t);
		if (!err && f == TIME_OUT)
			memcpy(c->ids[c->timed_out++], t.id, TM_TASK_ID_LEN + 1);
		tm__task_free(&t);
		if (err)
			return err;
	}
	return TM_OK;
}

static int id_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void resolve_orphans(tm_manager *tm, int64_t now)
{
	struct scan_ctx c = { .tm = tm, .now = now };

	/* Owners here: the jobs running and the claims in flight, whose jobs
	 * are not on the list yet (running.h). */
	c.ids = malloc(SCAN_MAX * sizeof(*c.ids));
	if (c.ids == NULL || tm__running_owners(tm, &c.mine, &c.n_mine) != TM_OK ||
	    tm__store_read(tm->store, scan_txn, &c) != TM_OK || c.n == 0)
		goto out;
	qsort(c.ids, c.n, sizeof(*c.ids), id_cmp); /* rows locked in id order (running.h) */
	if (tm__store_write(tm->store, resolve_txn, &c) == TM_OK) {
		for (size_t i = 0; i < c.timed_out; i++)
			tm__running_stop(tm, c.ids[i], TM__STOP_TIMEOUT);
		tm__running_announce(tm); /* recovered tasks wait in the queue */
	}
out:
	free(c.mine);
	free(c.ids);
}

/* ---- automatic triggers ----------------------------------------------------- */

struct auto_ctx {
	const tm__jobreg *reg;
	int64_t now;
	char reason[128];
};

static int newest_start(tm__txn *txn, const char *id, void *p)
{
	tm__task t;

	if (tm__store_get_head(txn, id, &t) == TM_OK)
		*(int64_t *)p = t.start_us;
	return TM__SCAN_STOP;
}

static int any_active(tm__txn *txn, const char *id, void *p)
{
	(void)txn;
	(void)id;
	*(bool *)p = true;
	return TM__SCAN_STOP;
}

/* Decide whether the name's automatic trigger fires now (*go).  Runs in a
 * read pass and again, as the creation's gate, inside the write
 * transaction that creates the task: two processes (or a restart) never
 * fire the same rule twice. */
static int auto_decide(tm__txn *txn, void *p, bool *go)
{
	struct auto_ctx *c = p;
	const tm_job_def *d = &c->reg->def;
	tm__name_stats st;
	int64_t last = INT64_MIN, since;
	bool busy = false;
	int err = tm__store_name_stats(txn, c->reg->name, &st);

	*go = false;
	if (!err)
		err = tm__store_recent(txn, c->reg->name, 0, newest_start, &last);
	if (!err && (d->flags & TM_JOB_EXCLUSIVE))
		err = tm__store_active(txn, c->reg->name, any_active, &busy);
	if (err || busy) /* busy: the count is kept; it fires once the task ends */
		return err;
	if (last != INT64_MIN && c->now - last < (int64_t)(d->min_interval_s * 1e6))
		return TM_OK;
	since = last != INT64_MIN ? last : st.since_us;
	if (d->change_threshold > 0 && st.changes >= d->change_threshold) {
		snprintf(c->reason, sizeof(c->reason),
		         "automatic: %llu changes since last run",
		         (unsigned long long)st.changes);
		*go = true;
	} else if (d->interval_s > 0 && c->now - since >= (int64_t)(d->interval_s * 1e6)) {
		snprintf(c->reason, sizeof(c->reason),
		         "automatic: last run older than %g s", d->interval_s);
		*go = true;
	}
	return TM_OK;
}

struct auto_read {
	struct auto_ctx *c;
	bool go;
};

static int auto_read_txn(tm__txn *txn, void *p)
{
	struct auto_read *r = p;

	return auto_decide(txn, r->c, &r->go);
}

static void auto_trigger(tm_manager *tm, const tm__jobreg *reg, int64_t now)
{
	struct auto_ctx c = { reg, now, "" };
	struct auto_read r = { &c, false };
	char id[TM_TASK_ID_LEN + 1];
	bool created = false;
	cJSON *empty;

	if (tm__store_read(tm->store, auto_read_txn, &r) != TM_OK || !r.go)
		return;
	empty = cJSON_CreateObject();
	if (empty &&
	    tm__lifecycle_create(tm->store, NULL, reg, empty, NULL, c.reason,
	                         auto_decide, &c, id, &created) == TM_OK && created)
		tm__running_announce(tm);
	cJSON_Delete(empty);
}

/* ---- cron schedules ---------------------------------------------------------- *
 *
 * Each name's schedule keeps one instant in the store: every due time up
 * to it has been dealt with.  A due time after it that has come fires one
 * task and moves the instant to now, in one write under the name's lock:
 * every due time up to now is dealt with by that one task (after downtime,
 * one run, not a backlog), and a process that takes the lock after the
 * commit finds nothing due. */

struct cron_ctx {
	const tm__jobreg *reg;
	int64_t state;  /* the name's instant, as last read (store clock, us) */
	bool found;
};

static int cron_read_txn(tm__txn *txn, void *p)
{
	struct cron_ctx *c = p;

	return tm__store_cron_get(txn, c->reg->name, &c->state, &c->found);
}

/* The creation's gate, inside the write under the name's lock: the store
 * decides.  A name with no instant yet (its schedule was registered
 * before the store kept one) starts from now, and fires nothing.  An
 * exclusive name with an active task lets the due time pass (the instant
 * still moves); a paused one gets its task, which waits. */
static int cron_gate(tm__txn *txn, void *p, bool *go)
{
	struct cron_ctx *c = p;
	const char *name = c->reg->name;
	int64_t now = tm__txn_now(txn), next;
	bool busy = false;
	int err = tm__store_cron_get(txn, name, &c->state, &c->found);

	*go = false;
	if (err)
		return err;
	if (c->found) {
		next = tm__registry_cron_next(c->reg, c->state);
		if (next < 0 || next > now)
			return TM_OK;
		if (c->reg->def.flags & TM_JOB_EXCLUSIVE)
			err = tm__store_active(txn, name, any_active, &busy);
		*go = !busy;
	}
	if (!err)
		err = tm__store_cron_set(txn, name, now, false);
	if (!err) {
		c->state = now;
		c->found = true;
	}
	return err;
}

/* Remember when the schedule is next due (none: never), so that the ticks
 * before it open no transaction. */
static void cron_remember(const tm__jobreg *reg, int64_t state)
{
	int64_t next = tm__registry_cron_next(reg, state);

	atomic_store(&((tm__jobreg *)reg)->cron_due_us, next < 0 ? INT64_MAX : next);
}

static void cron_fire(tm_manager *tm, const tm__jobreg *reg, int64_t now)
{
	struct cron_ctx c = { reg, 0, false };
	int64_t due = atomic_load(&reg->cron_due_us);
	char id[TM_TASK_ID_LEN + 1];
	bool created = false;
	cJSON *empty;
	int err;

	if (due != 0 && now < due)
		return;
	/* Read first: another process may have dealt with it already. */
	if (tm__store_read(tm->store, cron_read_txn, &c) != TM_OK)
		return;
	if (c.found && (due = tm__registry_cron_next(reg, c.state), due < 0 || now < due)) {
		cron_remember(reg, c.state);
		return;
	}
	empty = cJSON_CreateObject();
	err = empty ? tm__lifecycle_create(tm->store, NULL, reg, empty, NULL, "cron",
	                                   cron_gate, &c, id, &created)
	            : TM_ENOMEM;
	cJSON_Delete(empty);
	if (err) {
		/* Read again at the next tick. */
		atomic_store(&((tm__jobreg *)reg)->cron_due_us, 0);
		return;
	}
	cron_remember(reg, c.state);
	if (created)
		tm__running_announce(tm);
}

static void fire_crons(tm_manager *tm, const tm__jobreg **regs, size_t n, int64_t now)
{
	for (size_t i = 0; i < n; i++)
		if (regs[i]->def.cron != NULL)
			cron_fire(tm, regs[i], now);
}

/* ---- retention ------------------------------------------------------------ */

/* Writes that make tasks final keep each name under keep_count + slack
 * (retention.c).  This pass takes each name down to keep_count, and
 * prunes by age, in transactions of TM__RETAIN_BATCH: as many as the
 * backlog needs, but for at most PRUNE_SLICE_US a tick, so that leases
 * are renewed on time; a backlog left goes on at the next tick. */
static void retain(tm_manager *tm, const tm__jobreg **regs, size_t n, int64_t now)
{
	int64_t until = tm__mono_us() + PRUNE_SLICE_US;
	bool left = false;

	for (size_t i = 0; i < n; i++) {
		bool more = false;

		do {
			if (tm__retention_pass(tm, regs[i]->name, now, &more) != TM_OK)
				more = false; /* the next pass tries again */
		} while (more && tm__mono_us() < until);
		left |= more;
	}
	tm->rt->prune_at_us = left ? now : now + PRUNE_EVERY_US;
}

/* ---- wake-ups for other processes' work ------------------------------------ */

struct due_ctx {
	tm_manager *tm;
	int64_t now;
	int64_t mono;
	bool due;
};

static int due_one(tm__txn *txn, int64_t ready_us, const char *id,
                   const char *name, void *p)
{
	struct due_ctx *c = p;
	const tm__jobreg *reg;

	(void)txn;
	(void)id;
	(void)ready_us;
	reg = tm__registry_find(c->tm->reg, name);
	/* A name waiting for its next rate token is not due: the worker
	 * that saw its bucket dry wakes for that token by itself. */
	c->due = reg && reg->def.run &&
	         !(reg->def.rate_per_s > 0 &&
	           atomic_load(&((tm__jobreg *)reg)->rate_due_us) > c->mono);
	return c->due ? TM__SCAN_STOP : 0;
}

static int due_txn(tm__txn *txn, void *p)
{
	struct due_ctx *c = p;

	return tm__store_queue(txn, c->now, due_one, p);
}

/* ---- the tick ----------------------------------------------------------------- */

static void supervise(tm_manager *tm)
{
	int64_t now = tm__store_now(tm->store);
	const tm__jobreg **regs;
	struct due_ctx due = { tm, now, tm__mono_us(), false };
	size_t n, scrubbed;

	sync_running(tm, now);
	resolve_orphans(tm, now);
	tm__store_scrub(tm->store, &scrubbed); /* erase the keys of final tasks' secrets */
	if (tm__registry_list(tm->reg, &regs, &n) == TM_OK) {
		for (size_t i = 0; i < n; i++)
			if (regs[i]->def.interval_s > 0 || regs[i]->def.change_threshold > 0)
				auto_trigger(tm, regs[i], now);
		fire_crons(tm, regs, n, now);
		if (now >= tm->rt->prune_at_us)
			retain(tm, regs, n, now);
		free(regs);
	}
	if (tm->opts.workers > 0 && tm__store_read(tm->store, due_txn, &due) == TM_OK &&
	    due.due)
		tm__running_wake(tm);
}

static void supervise_nudge(tm_manager *tm)
{
	struct due_ctx due = { tm, tm__store_now(tm->store), tm__mono_us(), false };
	struct running_ctx c = { .tm = tm };

	c.jobs = tm__running_snapshot(tm, &c.n);
	if (c.n > 0)
		tm__store_read(tm->store, watch_txn, &c);
	tm__running_unref_all(c.jobs, c.n);
	if (tm->opts.workers > 0 && tm__store_read(tm->store, due_txn, &due) == TM_OK &&
	    due.due)
		tm__running_wake(tm);
}

static unsigned supervise_delay(tm_manager *tm)
{
	struct tm__runtime *rt = tm->rt;
	unsigned ms = tm->opts.poll_ms;
	bool busy;

	pthread_mutex_lock(&rt->mu);
	busy = rt->running != NULL;
	pthread_mutex_unlock(&rt->mu);
	if (busy && tm->opts.progress_ms < ms)
		ms = tm->opts.progress_ms;
	return ms;
}

/* ---- the thread ------------------------------------------------------------- */

static int64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The supervisor runs its full round of checks every tick, and sleeps on
 * the store's wake channel in between: a wake-up from any process (a
 * trigger, a cancel, a requeue) gets the quick checks at once. */
void *tm__supervisor_main(void *arg)
{
	tm_manager *tm = arg;
	struct tm__runtime *rt = tm->rt;
	int64_t next = 0;

	while (!atomic_load(&rt->sup_stop)) {
		uint32_t seen = tm__store_wake_seq(tm->store);
		int64_t now = tm__mono_us();

		if (now >= next) {
			int64_t cpu = thread_cpu_ns();

			supervise(tm);
			atomic_fetch_add(&rt->sup_cpu_ns, (uint_fast64_t)(thread_cpu_ns() - cpu));
			atomic_fetch_add(&rt->sup_ticks, 1);
			next = tm__mono_us() + (int64_t)supervise_delay(tm) * 1000;
		} else {
			supervise_nudge(tm);
		}
		now = tm__mono_us();
		if (next > now && !atomic_load(&rt->sup_stop))
			tm__store_wait(tm->store, seen, (unsigned)((next - now + 999) / 1000));
	}
	return NULL;
}
