/* Worker threads: claim, run with no transaction held, write the outcome.
 * What each step means for the task is lifecycle.c's to decide. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "id.h"
#include "lifecycle.h"
#include "running.h"
#include "worker.h"

#define CLAIM_STEPS 64 /* tasks ended without running, per claim transaction */

/* ---- claiming ------------------------------------------------------------
 *
 * A worker claims a small batch of tasks in one write transaction, runs
 * them, and writes their outcomes in the transaction that claims the next
 * batch: one commit per batch instead of two per task.  A batch holds more
 * than one task only while the names' handlers have been quick (their
 * recent runs average under SHORT_RUN_US): a long job is claimed alone, so
 * it never waits behind another on one worker while others idle. */

#define BATCH_MAX 16
#define SHORT_RUN_US 2000
#define RATE_MEMO 16 /* rate-limited names remembered per claim */

struct outcome {
	tm_job *job;
	tm_status st;
};

struct claim_ctx {
	tm_manager *tm;
	int64_t now;                        /* as the transaction began (store clock) */
	int64_t mono;                       /* and on the monotonic clock */
	uint64_t token;
	unsigned want;                      /* claim at most this many */
	bool closing;                       /* outcomes: tm_close() is under way */
	struct outcome *outs;               /* outcomes to write first */
	size_t n_outs;
	char id[TM_TASK_ID_LEN + 1];        /* scan result */
	const tm__jobreg *reg;
	unsigned n;                         /* claimed */
	tm__task tasks[BATCH_MAX];          /* as written */
	char *secrets[BATCH_MAX];
	const tm__jobreg *regs[BATCH_MAX];
	/* Rate-limited names whose bucket this claim left, or found, without
	 * a whole token, and how long until the next (store clock, us);
	 * and the earliest next token of those it passed by rate_due_us
	 * (monotonic; 0: none). */
	struct { const tm__jobreg *reg; int64_t wait_us; } dry[RATE_MEMO];
	unsigned n_dry;
	int64_t due_mono;
};

static bool runs_short(const tm__jobreg *reg)
{
	int64_t us = atomic_load(&((tm__jobreg *)reg)->run_us);

	return us > 0 && us < SHORT_RUN_US;
}

struct count_ctx {
	unsigned running;
};

static int count_running(tm__txn *txn, const char *id, void *p)
{
	struct count_ctx *c = p;
	tm__task t;

	if (tm__store_get_head(txn, id, &t) == TM_OK && !t.queued && t.owner != 0)
		c->running++;
	return 0;
}

/* ---- rate limits -----------------------------------------------------------
 *
 * A name's bucket lives in the store (tm__store_rate_take), so that every
 * process draws on one.  A claim takes a token for each task it starts,
 * in its own transaction; a task it ends without running takes none.  A
 * bucket left or found without a whole token is remembered, on the name
 * (rate_due_us) and as the runtime's next wake-up (rt->rate_due_us): until
 * its next token, claims pass the name without asking the store, and then
 * an idle worker wakes by itself to claim. */

/* Whether the claim passes reg's tasks: its bucket is known to hold no
 * whole token yet. */
static bool rate_dry(struct claim_ctx *c, const tm__jobreg *reg)
{
	int64_t due = atomic_load(&((tm__jobreg *)reg)->rate_due_us);

	for (unsigned i = 0; i < c->n_dry; i++)
		if (c->dry[i].reg == reg)
			return true;
	if (due <= c->mono)
		return false;
	if (c->due_mono == 0 || due < c->due_mono)
		c->due_mono = due;
	return true;
}

/* Take a token of reg's bucket for a task about to start (*taken). */
static int rate_take(tm__txn *txn, struct claim_ctx *c, const tm__jobreg *reg,
                     bool *taken)
{
	double rate = reg->def.rate_per_s, left;
	int err = tm__store_rate_take(txn, reg->name, rate, reg->def.burst, taken, &left);

	if (err)
		return err;
	/* None taken, though the bucket seemed to hold one (a rival took it
	 * first): a token's whole time is the most the next can take. */
	if (!*taken && left >= 1)
		left = 0;
	if (left >= 1 || c->n_dry == RATE_MEMO)
		return TM_OK;
	c->dry[c->n_dry].reg = reg;
	/* Rounded up, and a microsecond more: woken then, it finds a token. */
	c->dry[c->n_dry++].wait_us = (int64_t)((1 - left) * 1e6 / rate) + 1;
	return TM_OK;
}

/* After the claim committed: the names it left dry, and the runtime's
 * next wake-up; a sleeping worker wakes sooner when that moved closer. */
static void rate_publish(struct tm__runtime *rt, struct claim_ctx *c)
{
	int64_t now = tm__mono_us(), due = c->due_mono;

	for (unsigned i = 0; i < c->n_dry; i++) {
		int64_t at = now + c->dry[i].wait_us;

		atomic_store(&((tm__jobreg *)c->dry[i].reg)->rate_due_us, at);
		if (due == 0 || at < due)
			due = at;
	}
	if (due != 0 && (rt->rate_due_us == 0 || due < rt->rate_due_us)) {
		rt->rate_due_us = due;
		pthread_cond_broadcast(&rt->work);
	}
}

/* An idle worker's turn to claim for a token now due: the first to see
 * the time pass (rt->mu held). */
static bool rate_token_due(struct tm__runtime *rt)
{
	if (rt->rate_due_us == 0 || tm__mono_us() < rt->rate_due_us)
		return false;
	rt->rate_due_us = 0;
	return true;
}

/* Wait for a wake-up, or for the next token due (rt->mu held). */
static void idle_wait(struct tm__runtime *rt)
{
	struct timespec ts;

	if (rt->rate_due_us == 0) {
		pthread_cond_wait(&rt->work, &rt->mu);
		return;
	}
	ts.tv_sec = (time_t)(rt->rate_due_us / 1000000);
	ts.tv_nsec = (long)(rt->rate_due_us % 1000000) * 1000;
	pthread_cond_timedwait(&rt->work, &rt->mu, &ts); /* CLOCK_MONOTONIC */
}

/* ---- the claim ------------------------------------------------------------- */

/* The first queued task this process can act on: one to run, or one to end
 * without running (cancelled or timed out while waiting).  The scan offers
 * each name's next task, by priority, in the order of their ready times,
 * so a name's priorities never hold another name back. */
static int claim_scan(tm__txn *txn, int64_t ready_us, const char *id,
                      const char *name, void *p)
{
	struct claim_ctx *c = p;
	const tm__jobreg *reg;

	(void)ready_us;
	reg = tm__registry_find(c->tm->reg, name);
	if (reg == NULL || reg->def.run == NULL || (c->n > 0 && !runs_short(reg)))
		return 0;
	if (reg->def.rate_per_s > 0 && rate_dry(c, reg))
		return 0; /* no token before the next is due: other names go first */
	if (reg->def.concurrency > 0) {
		struct count_ctx cc = { 0 };
		/* Counted and claimed under the name's lock: the limit holds
		 * across processes. */
		int err = tm__store_lock_name(txn, name);

		if (!err)
			err = tm__store_active(txn, name, count_running, &cc);
		if (err)
			return err;
		if (cc.running >= reg->def.concurrency)
			return 0;
	}
	memcpy(c->id, id, sizeof(c->id));
	c->reg = reg;
	return TM__SCAN_STOP;
}

static void forget_claims(struct claim_ctx *c)
{
	for (unsigned i = 0; i < c->n; i++) {
		tm__task_free(&c->tasks[i]);
		free(c->secrets[i]);
		c->secrets[i] = NULL;
	}
	c->n = 0;
}

static int write_outcome(tm__txn *txn, tm_job *job, tm_status st, bool closing,
                         tm__follow *f);

/* Rows before names.  An outcome that COMPLETES a task of a name with a
 * `then` takes the next name's lock (a pipeline: lifecycle.c); were a
 * later outcome's task read (row-locked, on PostgreSQL) after that, a
 * write that holds that task and waits for the same name's lock — a patch
 * completing it — would deadlock with this one.  So when a pipeline may
 * follow, every outcome's task is read first, in id order. */
static int lock_outcome_rows(tm__txn *txn, const struct claim_ctx *c)
{
	bool follows = false;
	int err = TM_OK;

	for (size_t i = 0; i < c->n_outs; i++)
		follows |= c->outs[i].st == TM_COMPLETED && c->outs[i].job->reg->def.then != NULL;
	if (!follows || c->n_outs < 2)
		return TM_OK;
	for (size_t i = 0; i < c->n_outs && !err; i++) { /* in id order: claim() sorted them */
		tm__task t;

		err = tm__store_get(txn, c->outs[i].job->id, &t); /* a write's read locks */
		if (!err)
			tm__task_free(&t);
		else if (err == TM_ETASK_NOT_FOUND)
			err = TM_OK; /* pruned: write_outcome passes it too */
	}
	return err;
}

static int claim_txn(tm__txn *txn, void *p)
{
	struct claim_ctx *c = p;
	int64_t lease_until;
	/* The next tasks of pipelines go in this write too; claim() wakes
	 * the workers after any outcome anyway. */
	tm__follow f = { c->tm->reg, &c->tm->limits, false };
	int err = TM_OK;

	/* The clocks are read as the transaction runs, not before it waited
	 * for the store (the writer's lock, a starved thread): a slow claim
	 * must not write a lease that is already running out, one the
	 * supervisors would take for lost while the run has not begun.  The
	 * monotonic clock first: the run's fence, two thirds of a lease
	 * after it, falls before the lease ends. */
	c->mono = tm__mono_us();
	c->now = tm__txn_now(txn);
	lease_until = c->now + (int64_t)c->tm->opts.lease_ms * 1000;
	forget_claims(c); /* a write may run again */
	c->n_dry = 0;
	c->due_mono = 0;
	err = lock_outcome_rows(txn, c);
	for (size_t i = 0; i < c->n_outs && !err; i++)
		err = write_outcome(txn, c->outs[i].job, c->outs[i].st, c->closing, &f);
	for (int step = 0; !err && step < CLAIM_STEPS && c->n < c->want; step++) {
		tm__task t, old;
		bool run = false, stopping;

		c->id[0] = '\0';
		err = tm__store_queue(txn, c->now, claim_scan, c);
		if (err || c->id[0] == '\0')
			return err;
		/* tm_close() may have begun while the scan waited (for a name's
		 * lock, or a round trip): it takes no new task.  Checked after
		 * the scan, so that a slot the closing freed is never taken. */
		pthread_mutex_lock(&c->tm->rt->mu);
		stopping = c->tm->rt->stopping;
		pthread_mutex_unlock(&c->tm->rt->mu);
		if (stopping)
			break;
		err = tm__store_get(txn, c->id, &t);
		if (err)
			return err;
		if (c->reg->def.rate_per_s > 0 && tm__lifecycle_claim_runs(&t, c->now)) {
			bool taken;

			err = rate_take(txn, c, c->reg, &taken);
			if (err || !taken) {
				tm__task_free(&t);
				if (err)
					return err;
				continue; /* it waits, untouched; the scan passes its name now */
			}
		}
		old = t;
		err = tm__lifecycle_claim(txn, &t, c->now, c->token, lease_until, &run);
		if (!err && run)
			err = tm__store_secret_get(txn, t.id, &c->secrets[c->n]);
		if (!err)
			err = tm__store_put(txn, &old, &t);
		if (!err && run) {
			c->regs[c->n] = c->reg;
			c->tasks[c->n++] = t;
		} else {
			tm__task_free(&t);
		}
	}
	return err;
}

static int by_id(const void *a, const void *b)
{
	return strcmp(((const struct outcome *)a)->job->id,
	              ((const struct outcome *)b)->job->id);
}

/* Write the outcomes of the last batch and claim the next one: jobs[] gets
 * the claimed jobs, already on the running list; returns how many. */
static unsigned claim(tm_manager *tm, struct outcome *outs, size_t n_outs,
                      tm_job **jobs)
{
	struct tm__runtime *rt = tm->rt;
	struct claim_ctx *c = calloc(1, sizeof(*c));
	struct tm__claiming claiming;
	unsigned n = 0;
	int err;

	if (c == NULL)
		return 0;
	c->tm = tm;
	c->token = tm__random64();
	if (n_outs > 1) /* rows locked in id order (tm__running_sort) */
		qsort(outs, n_outs, sizeof(*outs), by_id);
	c->outs = outs;
	c->n_outs = n_outs;
	pthread_mutex_lock(&rt->mu);
	c->closing = rt->stopping;
	c->want = rt->stopping ? 0 : BATCH_MAX;
	/* The supervisor must not take what this claim commits for lost
	 * while its jobs are not on `running` yet. */
	tm__running_claiming(rt, &claiming, c->token);
	pthread_mutex_unlock(&rt->mu);
	err = tm__store_write(tm->store, claim_txn, c);
	if (err && n_outs > 0) {
		/* Do not lose the outcomes to a failed claim: write them alone.
		 * If that fails too, the leases expire and recovery retries. */
		c->want = 0;
		err = tm__store_write(tm->store, claim_txn, c);
	}
	if (!err && (c->n_dry > 0 || c->due_mono != 0)) {
		pthread_mutex_lock(&rt->mu);
		rate_publish(rt, c);
		pthread_mutex_unlock(&rt->mu);
	}
	for (unsigned i = 0; !err && i < c->n; i++) {
		if (tm__job_new(c->regs[i], &c->tasks[i], c->secrets[i], tm->opts.lease_ms,
		                &tm->limits, c->mono, &jobs[n]) == TM_OK)
			jobs[n++]->thread = pthread_self();
		/* else: out of memory; the lease expires and recovery retries */
	}
	forget_claims(c);
	free(c);
	pthread_mutex_lock(&rt->mu);
	for (size_t i = 0; i < n_outs; i++)
		tm__running_remove(rt, outs[i].job);
	for (unsigned i = 0; i < n; i++) {
		tm__running_add(rt, jobs[i]);
		if (rt->stopping) /* tm_close() began during the claim */
			atomic_fetch_or(&jobs[i]->stop, TM__STOP_CLOSE);
	}
	tm__running_claimed(rt, &claiming);
	pthread_mutex_unlock(&rt->mu);
	for (size_t i = 0; i < n_outs; i++)
		tm__job_unref(outs[i].job);
	if (n_outs > 0 && !err)
		tm__running_announce(tm); /* a retry queued, or a slot came free */
	return n;
}

/* ---- outcomes ------------------------------------------------------------- */

/* Write what a run came to: the handler's answer (st), with its last
 * progress.  Fenced: a task that is no longer this run's (a timeout, a
 * patch or a takeover decided first) is left alone, and the answer is
 * ignored. */
static int write_outcome(tm__txn *txn, tm_job *job, tm_status st, bool closing,
                         tm__follow *f)
{
	tm__job_mark mark;
	tm__task t, old;
	bool ours = false;
	int err = tm__store_get(txn, job->id, &t);

	if (err)
		return err == TM_ETASK_NOT_FOUND ? TM_OK : err; /* pruned */
	old = t;
	pthread_mutex_lock(&job->mu);
	err = tm__job_apply(job, &t, &mark, &ours);
	pthread_mutex_unlock(&job->mu);
	/* A run stopped because its lease was in doubt (tm_job_cancelled's
	 * fence) was not the task's fault either: like one stopped by
	 * tm_close(), it goes back to the queue. */
	if (!err && ours)
		err = tm__lifecycle_outcome(txn, &t, job->reg, st,
		                            closing || (atomic_load(&job->stop) & TM__STOP_LOST),
		                            f);
	if (!err && ours)
		err = tm__store_put(txn, &old, &t);
	tm__task_free(&t);
	return err;
}

/* Run one job of a batch.  Returns false when tm_close() abandoned it: the
 * manager may then be gone, and the worker must touch nothing but its own
 * jobs. */
static bool run_job(tm_job *job, struct outcome *out)
{
	tm_status st = TM_CANCELLED;
	bool skip;
	int64_t t0;

	pthread_mutex_lock(&job->mu);
	if (job->abandoned) {
		pthread_mutex_unlock(&job->mu);
		return false;
	}
	/* Cancelled, timed out or closing while it waited in the batch; or
	 * its lease already in doubt (tm_job_cancelled's fence, which sets
	 * TM__STOP_LOST): no renewal came in time since the claim (the store
	 * out of reach, or this process starved, maybe before the job was
	 * even on the running list the supervisor renews), so the task may
	 * be another process's by now.  Such a run is not begun: it goes
	 * back to the queue, uncounted, if still ours. */
	skip = tm_job_cancelled(job) != 0;
	pthread_mutex_unlock(&job->mu);
	t0 = tm__now_us();
	if (!skip)
		st = job->reg->def.run(job, job->reg->def.user);
	pthread_mutex_lock(&job->mu);
	if (job->abandoned) {
		/* tm_close() returned meanwhile: the registry may be freed. */
		pthread_mutex_unlock(&job->mu);
		return false;
	}
	job->returned = true;
	job->outcome = st;
	pthread_mutex_unlock(&job->mu);
	if (!skip) {
		/* Remember how long runs of this name take (moving average). */
		tm__jobreg *reg = (tm__jobreg *)job->reg;
		int64_t took = tm__now_us() - t0 + 1, avg = atomic_load(&reg->run_us);

		atomic_store(&reg->run_us, avg ? (avg * 7 + took) / 8 : took);
	}
	out->job = job;
	out->st = st;
	return true;
}

/* ---- tm_close()'s part ------------------------------------------------------ */

struct abandoned_ctx {
	tm_manager *tm;
	tm_job **jobs;
	size_t n;
};

static int abandoned_txn(tm__txn *txn, void *p)
{
	struct abandoned_ctx *c = p;
	tm__follow f = { c->tm->reg, &c->tm->limits, false };
	int err = TM_OK;

	for (size_t i = 0; i < c->n && !err; i++) {
		tm_job *job = c->jobs[i];

		err = write_outcome(txn, job, job->returned ? job->outcome : TM_CANCELLED,
		                    true, &f);
	}
	return err;
}

int tm__worker_write_abandoned(tm_manager *tm, tm_job **jobs, size_t n)
{
	struct abandoned_ctx c = { tm, jobs, n };

	tm__running_sort(jobs, n); /* rows locked in id order */
	return n > 0 ? tm__store_write(tm->store, abandoned_txn, &c) : TM_OK;
}

/* ---- the thread ----------------------------------------------------------- */

void *tm__worker_main(void *arg)
{
	tm_manager *tm = arg;
	struct tm__runtime *rt = tm->rt;
	struct outcome outs[BATCH_MAX];
	tm_job *jobs[BATCH_MAX];
	uint64_t seen = 0;
	unsigned n = 0;
	size_t n_outs = 0;

	for (;;) {
		bool handed = false;

		pthread_mutex_lock(&rt->mu);
		/* Sleep only with nothing to write and nothing just claimed;
		 * idle, take a task a trigger claimed for us first. */
		if (n == 0 && n_outs == 0) {
			/* Idle only while no wake-up is pending for us: a wake-up
			 * takes every waiting worker off n_idle at once
			 * (tm__running_wake), so that neither a trigger's
			 * reservation nor tm_stats counts a worker already on its
			 * way to claim. */
			bool counted = rt->wake_seq == seen;

			if (counted)
				rt->n_idle++;
			while ((!rt->stopping || rt->reserved > 0) &&
			       rt->wake_seq == seen && rt->handoff == NULL &&
			       !rate_token_due(rt))
				idle_wait(rt);
			if (counted && rt->wake_seq == seen)
				rt->n_idle--;
			if (rt->handoff) {
				jobs[0] = rt->handoff;
				rt->handoff = jobs[0]->hnext;
				jobs[0]->thread = pthread_self();
				handed = true;
			}
		}
		seen = rt->wake_seq;
		pthread_mutex_unlock(&rt->mu);
		if (handed) {
			n = 1;
		} else {
			n = claim(tm, outs, n_outs, jobs);
			n_outs = 0;
		}
		if (n == 0) {
			pthread_mutex_lock(&rt->mu);
			/* A promised task is still to come: wait for it. */
			bool stop = rt->stopping && rt->reserved == 0 && rt->handoff == NULL;
			pthread_mutex_unlock(&rt->mu);
			if (stop)
				return NULL;
			continue;
		}
		for (unsigned i = 0; i < n; i++) {
			if (!run_job(jobs[i], &outs[n_outs])) {
				/* Abandoned by tm_close(): so is every job of the batch
				 * not yet returned; drop our references and go. */
				for (unsigned k = 0; k < n; k++)
					tm__job_unref(jobs[k]);
				return NULL;
			}
			n_outs++;
		}
	}
}

