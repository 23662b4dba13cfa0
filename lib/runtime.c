/* The runtime: the only module that creates threads.  Workers claim the
 * oldest runnable task, run its handler with no transaction held, and write
 * the outcome; the supervisor thread (supervisor.c) renews leases, flushes
 * progress and watches timeouts, lost workers, automatic triggers and
 * retention.  doc/runtime.md tells the whole story. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime.h"

#define CLAIM_STEPS 64 /* tasks ended without running, per claim transaction */

/* ---- jobs and the running list ------------------------------------------ */

void tm__job_ref(tm_job *job)
{
	atomic_fetch_add(&job->refs, 1);
}

void tm__job_unref(tm_job *job)
{
	if (job && atomic_fetch_sub(&job->refs, 1) == 1)
		tm__job_free(job);
}

tm_job **tm__runtime_snapshot(tm_manager *tm, size_t *n)
{
	struct tm__runtime *rt = tm->rt;
	tm_job **jobs = NULL;
	size_t k = 0;

	pthread_mutex_lock(&rt->mu);
	for (tm_job *j = rt->running; j; j = j->next)
		k++;
	if (k > 0 && (jobs = malloc(k * sizeof(*jobs))) != NULL) {
		k = 0;
		for (tm_job *j = rt->running; j; j = j->next) {
			tm__job_ref(j);
			jobs[k++] = j;
		}
	}
	pthread_mutex_unlock(&rt->mu);
	*n = jobs ? k : 0;
	return jobs;
}

void tm__runtime_unref_all(tm_job **jobs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		tm__job_unref(jobs[i]);
	free(jobs);
}

void tm__runtime_stop_job(tm_manager *tm, const char *id, int bits)
{
	struct tm__runtime *rt = tm->rt;

	if (rt == NULL)
		return;
	pthread_mutex_lock(&rt->mu);
	for (tm_job *j = rt->running; j; j = j->next)
		if (strcmp(j->id, id) == 0)
			atomic_fetch_or(&j->stop, bits);
	pthread_mutex_unlock(&rt->mu);
}

void tm__runtime_cancel(tm_manager *tm, const char *id)
{
	tm__runtime_stop_job(tm, id, TM__STOP_CANCEL);
}

void tm__runtime_announce(tm_manager *tm)
{
	tm__runtime_wake(tm);
	tm__wake_signal(tm->wake, false);
}

void tm__runtime_wake(tm_manager *tm)
{
	struct tm__runtime *rt = tm->rt;

	if (rt == NULL)
		return;
	pthread_mutex_lock(&rt->mu);
	rt->wake_seq++;
	pthread_cond_broadcast(&rt->work);
	pthread_mutex_unlock(&rt->mu);
}

static void unlink_job(struct tm__runtime *rt, tm_job *job)
{
	for (tm_job **pp = &rt->running; *pp; pp = &(*pp)->next) {
		if (*pp == job) {
			*pp = job->next;
			break;
		}
	}
	pthread_cond_broadcast(&rt->idle);
}

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

struct outcome {
	tm_job *job;
	tm_status st;
};

struct claim_ctx {
	tm_manager *tm;
	int64_t now;
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

/* The first queued task this process can act on: one to run, or one to end
 * without running (cancelled or timed out while waiting). */
static int claim_scan(tm__txn *txn, int64_t ready_us, const char *id,
                      const char *name, void *p)
{
	struct claim_ctx *c = p;
	const tm__jobreg *reg;

	if (ready_us > c->now)
		return 1; /* the queue is in ready order: nothing further is due */
	reg = tm__registry_find(c->tm->reg, name);
	if (reg == NULL || reg->def.run == NULL || (c->n > 0 && !runs_short(reg)))
		return 0;
	if (reg->def.concurrency > 0) {
		struct count_ctx cc = { 0 };
		int err = tm__store_active(txn, name, count_running, &cc);
		if (err)
			return err;
		if (cc.running >= reg->def.concurrency)
			return 0;
	}
	memcpy(c->id, id, sizeof(c->id));
	c->reg = reg;
	return 1;
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

static int write_outcome(tm__txn *txn, tm_job *job, tm_status st, bool closing);

static int claim_txn(tm__txn *txn, void *p)
{
	struct claim_ctx *c = p;
	int err = TM_OK;

	forget_claims(c); /* a write may run again */
	for (size_t i = 0; i < c->n_outs && err >= 0; i++)
		err = write_outcome(txn, c->outs[i].job, c->outs[i].st, c->closing);
	if (err < 0)
		return err;
	for (int step = 0; step < CLAIM_STEPS && c->n < c->want; step++) {
		tm__task t, old;
		bool claimed = false;

		c->id[0] = '\0';
		err = tm__store_queue(txn, claim_scan, c);
		if (err || c->id[0] == '\0')
			return err;
		err = tm__store_get(txn, c->id, &t);
		if (err)
			return err;
		old = t;
		if (t.status == TM_CANCELLED_REQUESTED) {
			err = tm__task_enter(txn, &t, TM_CANCELLED);
		} else if (c->now >= t.timeout_us) {
			err = tm__time_out(txn, &t);
		} else {
			if (t.status == TM_REQUEST_SENT)
				err = tm__task_enter(txn, &t, TM_RUNNING);
			else /* a retry, or a task resumed after close */
				tm__task_set_attempts(&t, tm__task_attempts(&t) + 1);
			/* A new attempt starts clean; earlier failures are warnings. */
			cJSON_DeleteItemFromObjectCaseSensitive(t.details, "error");
			t.queued = false;
			t.owner = c->token;
			t.lease_us = c->now + (int64_t)c->tm->opts.lease_ms * 1000;
			if (!err)
				err = tm__store_secret_get(txn, t.id, &c->secrets[c->n]);
			claimed = !err;
		}
		if (!err)
			err = tm__store_put(txn, &old, &t);
		if (!err && claimed) {
			c->regs[c->n] = c->reg;
			c->tasks[c->n++] = t;
		} else {
			tm__task_free(&t);
		}
		if (err)
			return err;
	}
	return TM_OK;
}

/* Write the outcomes of the last batch and claim the next one: jobs[] gets
 * the claimed jobs, already on the running list; returns how many. */
static unsigned claim(tm_manager *tm, struct outcome *outs, size_t n_outs,
                      tm_job **jobs)
{
	struct tm__runtime *rt = tm->rt;
	struct claim_ctx *c = calloc(1, sizeof(*c));
	unsigned n = 0;
	int err;

	if (c == NULL)
		return 0;
	c->tm = tm;
	c->now = tm__now_us();
	c->token = tm__random64();
	c->outs = outs;
	c->n_outs = n_outs;
	pthread_mutex_lock(&rt->mu);
	c->closing = rt->stopping;
	c->want = rt->stopping ? 0 : BATCH_MAX;
	pthread_mutex_unlock(&rt->mu);
	err = tm__store_write(tm->store, claim_txn, c);
	if (err && n_outs > 0) {
		/* Do not lose the outcomes to a failed claim: write them alone.
		 * If that fails too, the leases expire and recovery retries. */
		c->want = 0;
		err = tm__store_write(tm->store, claim_txn, c);
	}
	for (unsigned i = 0; !err && i < c->n; i++) {
		if (tm__job_new(tm, c->regs[i], &c->tasks[i], c->secrets[i], &jobs[n]) == TM_OK)
			jobs[n++]->thread = pthread_self();
		/* else: out of memory; the lease expires and recovery retries */
	}
	forget_claims(c);
	free(c);
	pthread_mutex_lock(&rt->mu);
	for (size_t i = 0; i < n_outs; i++)
		unlink_job(rt, outs[i].job);
	for (unsigned i = 0; i < n; i++) {
		jobs[i]->next = rt->running;
		rt->running = jobs[i];
		if (rt->stopping) /* tm_close() began during the claim */
			atomic_fetch_or(&jobs[i]->stop, TM__STOP_CLOSE);
	}
	pthread_mutex_unlock(&rt->mu);
	for (size_t i = 0; i < n_outs; i++)
		tm__job_unref(outs[i].job);
	if (n_outs > 0 && !err)
		tm__runtime_announce(tm); /* a retry queued, or a slot came free */
	return n;
}

/* ---- outcomes ------------------------------------------------------------- */

static int retry_later(tm__task *t, const tm__jobreg *reg, const char *why)
{
	unsigned n = tm__task_attempts(t);
	double delay = reg->def.retry_backoff_s;
	char msg[512];

	for (unsigned i = 1; i < n && delay < TM__BACKOFF_CAP_S; i++)
		delay *= 2; /* exponential */
	if (delay > TM__BACKOFF_CAP_S)
		delay = TM__BACKOFF_CAP_S;
	t->queued = true;
	t->ready_us = tm__now_us() + (int64_t)(delay * 1e6);
	t->owner = 0;
	t->lease_us = 0;
	snprintf(msg, sizeof(msg), "attempt %u of %u failed: %s", n,
	         reg->def.max_attempts, why);
	if (tm__task_add_warning(t, msg))
		return TM_ENOMEM;
	snprintf(msg, sizeof(msg), "attempt %u of %u failed (%s); retrying in %g s",
	         n, reg->def.max_attempts, why, delay);
	return tm__task_set_message(t, msg);
}

/* Write what a run came to: the handler's answer (st), with its last
 * progress.  During tm_close() an answer other than COMPLETED puts the task
 * back in the queue, uncounted: the run stopped because the process is
 * closing (a run that never started is written as TM_CANCELLED).  Fenced:
 * a task that is no longer this run's is left alone. */
static int write_outcome(tm__txn *txn, tm_job *job, tm_status st, bool closing)
{
	tm__job_mark mark;
	tm__task t, old;
	bool ours;
	int err = tm__store_get(txn, job->id, &t);

	if (err)
		return err == TM_ETASK_NOT_FOUND ? 0 : err;
	old = t;
	pthread_mutex_lock(&job->mu);
	ours = tm__job_apply(job, &t, &mark);
	pthread_mutex_unlock(&job->mu);
	if (!ours) {
		/* Someone decided first (timeout, a patch, lease lost): final is
		 * final, and the handler's answer is ignored. */
		tm__task_free(&t);
		return 0;
	}
	if (st != TM_COMPLETED && st != TM_FAILED && st != TM_CANCELLED) {
		err = tm__task_set_detail(&t, "error", cJSON_CreateString(
		                          "the handler returned an invalid status"));
		st = TM_FAILED;
	}
	if (err) {
		/* out of memory: give up on this write */
	} else if (closing && st != TM_COMPLETED && t.status == TM_RUNNING) {
		t.queued = true;
		t.ready_us = tm__now_us();
		t.owner = 0;
		t.lease_us = 0;
		tm__task_set_attempts(&t, tm__task_attempts(&t) - 1);
	} else if (st == TM_COMPLETED) {
		err = tm__task_enter(txn, &t, TM_COMPLETED);
	} else if (st == TM_CANCELLED || t.status == TM_CANCELLED_REQUESTED) {
		err = tm__task_enter(txn, &t, TM_CANCELLED);
	} else if (tm__task_attempts(&t) < job->reg->def.max_attempts) {
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(t.details, "error");
		err = retry_later(&t, job->reg,
		                  cJSON_IsString(e) ? e->valuestring : "handler failed");
	} else {
		if (!cJSON_GetObjectItemCaseSensitive(t.details, "error"))
			tm__task_set_detail(&t, "error", cJSON_CreateString("handler failed"));
		err = tm__task_enter(txn, &t, TM_FAILED);
	}
	if (!err)
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
	/* Cancelled, timed out or closing while it waited in the batch. */
	skip = atomic_load(&job->stop) != 0;
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

struct close_ctx {
	tm_job **jobs;
	size_t n;
};

static int close_txn(tm__txn *txn, void *p)
{
	struct close_ctx *c = p;
	int err = TM_OK;

	for (size_t i = 0; i < c->n && err >= 0; i++) {
		tm_job *job = c->jobs[i];
		/* A handler that returned: its answer; one still running or never
		 * started: back to the queue. */
		err = write_outcome(txn, job, job->returned ? job->outcome : TM_CANCELLED, true);
	}
	return err < 0 ? err : TM_OK;
}

/* ---- threads ------------------------------------------------------------- */

static void *worker_main(void *arg)
{
	tm_manager *tm = arg;
	struct tm__runtime *rt = tm->rt;
	struct outcome outs[BATCH_MAX];
	tm_job *jobs[BATCH_MAX];
	uint64_t seen = 0;
	unsigned n = 0;
	size_t n_outs = 0;

	for (;;) {
		pthread_mutex_lock(&rt->mu);
		/* Sleep only with nothing to write and nothing just claimed. */
		while (!rt->stopping && n == 0 && n_outs == 0 && rt->wake_seq == seen)
			pthread_cond_wait(&rt->work, &rt->mu);
		seen = rt->wake_seq;
		pthread_mutex_unlock(&rt->mu);
		n = claim(tm, outs, n_outs, jobs);
		n_outs = 0;
		if (n == 0) {
			pthread_mutex_lock(&rt->mu);
			bool stop = rt->stopping;
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

static void deadline_in(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The supervisor runs its full round of checks every tick, and sleeps on
 * the store's wake channel in between: a wake-up from any process (a
 * trigger, a cancel, a requeue) gets the quick checks at once. */
static void *supervisor_main(void *arg)
{
	tm_manager *tm = arg;
	struct tm__runtime *rt = tm->rt;
	int64_t next = 0;

	while (!atomic_load(&rt->sup_stop)) {
		uint32_t seen = tm__wake_seq(tm->wake);
		int64_t now = mono_us();

		if (now >= next) {
			tm__supervise(tm);
			next = mono_us() + (int64_t)tm__supervise_delay(tm) * 1000;
		} else {
			tm__supervise_nudge(tm);
		}
		now = mono_us();
		if (next > now && !atomic_load(&rt->sup_stop))
			tm__wake_wait(tm->wake, seen, (unsigned)((next - now + 999) / 1000));
	}
	return NULL;
}

static void cond_init(pthread_cond_t *c)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

int tm__runtime_start(tm_manager *tm)
{
	struct tm__runtime *rt = calloc(1, sizeof(*rt));
	unsigned n = tm->opts.workers;

	if (rt == NULL)
		return tm_errorf(TM_ENOMEM, "out of memory");
	rt->workers = calloc(n ? n : 1, sizeof(*rt->workers));
	rt->detached = calloc(n ? n : 1, sizeof(*rt->detached));
	if (rt->workers == NULL || rt->detached == NULL) {
		free(rt->workers);
		free(rt->detached);
		free(rt);
		return tm_errorf(TM_ENOMEM, "out of memory");
	}
	pthread_mutex_init(&rt->mu, NULL);
	cond_init(&rt->work);
	cond_init(&rt->idle);
	tm->rt = rt;
	if (pthread_create(&rt->supervisor, NULL, supervisor_main, tm) != 0)
		goto fail;
	rt->sup_started = true;
	for (; rt->n_workers < n; rt->n_workers++)
		if (pthread_create(&rt->workers[rt->n_workers], NULL, worker_main, tm) != 0)
			goto fail;
	return TM_OK;
fail:
	tm__runtime_stop(tm);
	return tm_errorf(TM_ENOMEM, "cannot start the runtime's threads");
}

/* Past the grace period: every job still on the list becomes tm_close()'s
 * (abandoned, under its lock, so its worker touches nothing more), and
 * comes off the list with a reference for the caller. */
static tm_job **abandon_running(struct tm__runtime *rt, size_t *n)
{
	tm_job **out;
	size_t k = 0;

	for (tm_job *j = rt->running; j; j = j->next)
		k++;
	out = malloc((k ? k : 1) * sizeof(*out));
	*n = 0;
	if (out == NULL)
		return NULL;
	while (rt->running) {
		tm_job *j = rt->running;

		rt->running = j->next;
		pthread_mutex_lock(&j->mu);
		j->abandoned = true;
		pthread_mutex_unlock(&j->mu);
		tm__job_ref(j); /* the worker keeps its own until it lets go */
		out[(*n)++] = j;
	}
	return out;
}

void tm__runtime_stop(tm_manager *tm)
{
	struct tm__runtime *rt = tm->rt;
	struct close_ctx cc;
	struct timespec ts;

	if (rt == NULL)
		return;
	deadline_in(&ts, tm->opts.grace_ms);
	pthread_mutex_lock(&rt->mu);
	rt->stopping = true;
	for (tm_job *j = rt->running; j; j = j->next)
		atomic_fetch_or(&j->stop, TM__STOP_CLOSE);
	pthread_cond_broadcast(&rt->work);
	while (rt->running &&
	       pthread_cond_timedwait(&rt->idle, &rt->mu, &ts) != ETIMEDOUT)
		;
	cc.jobs = abandon_running(rt, &cc.n);
	pthread_mutex_unlock(&rt->mu);

	/* Write what the abandoned runs came to (requeued unless they
	 * returned), then let go of the workers still inside a handler: they
	 * will find their job abandoned and touch nothing else.  A worker
	 * whose jobs had all returned is only writing: wait for it. */
	if (cc.n > 0 && tm__store_write(tm->store, close_txn, &cc) == TM_OK)
		tm__wake_signal(tm->wake, false); /* another process may take them now */
	for (size_t i = 0; i < cc.n; i++) {
		for (unsigned w = 0; w < rt->n_workers; w++) {
			if (!rt->detached[w] && !cc.jobs[i]->returned &&
			    pthread_equal(rt->workers[w], cc.jobs[i]->thread)) {
				pthread_detach(rt->workers[w]);
				rt->detached[w] = true;
			}
		}
	}
	for (size_t i = 0; i < cc.n; i++)
		tm__job_unref(cc.jobs[i]);
	free(cc.jobs);
	for (unsigned w = 0; w < rt->n_workers; w++)
		if (!rt->detached[w])
			pthread_join(rt->workers[w], NULL);
	if (rt->sup_started) {
		atomic_store(&rt->sup_stop, true);
		tm__wake_signal(tm->wake, true);
		pthread_join(rt->supervisor, NULL);
	}
	pthread_mutex_destroy(&rt->mu);
	pthread_cond_destroy(&rt->work);
	pthread_cond_destroy(&rt->idle);
	free(rt->workers);
	free(rt->detached);
	free(rt);
	tm->rt = NULL;
}
