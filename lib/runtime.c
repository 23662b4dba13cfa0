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
	tm__wake_signal(tm->wake);
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

/* ---- claiming ------------------------------------------------------------ */

struct claim_ctx {
	tm_manager *tm;
	int64_t now;
	uint64_t token;
	char id[TM_TASK_ID_LEN + 1];  /* scan result */
	const tm__jobreg *reg;
	tm__task task;                /* the claimed task, as written */
	char *secret;
	bool claimed;
};

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
	if (reg == NULL || reg->def.run == NULL)
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

static int claim_txn(tm__txn *txn, void *p)
{
	struct claim_ctx *c = p;

	tm__task_free(&c->task);
	free(c->secret);
	c->secret = NULL;
	c->claimed = false;
	for (int step = 0; step < CLAIM_STEPS; step++) {
		tm__task t, old;
		int err;

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
				err = tm__store_secret_get(txn, t.id, &c->secret);
			c->claimed = !err;
		}
		if (!err)
			err = tm__store_put(txn, &old, &t);
		if (err || c->claimed) {
			if (err)
				tm__task_free(&t);
			else
				c->task = t;
			return err;
		}
		tm__task_free(&t);
	}
	return TM_OK;
}

/* Claim one task and return its job, already on the running list; *out is
 * NULL when there is nothing to run. */
static int claim(tm_manager *tm, tm_job **out)
{
	struct tm__runtime *rt = tm->rt;
	struct claim_ctx c = { .tm = tm };
	int err;

	*out = NULL;
	c.now = tm__now_us();
	c.token = tm__random64();
	err = tm__store_write(tm->store, claim_txn, &c);
	if (!err && c.claimed)
		err = tm__job_new(tm, c.reg, &c.task, c.secret, out);
	tm__task_free(&c.task);
	free(c.secret);
	if (err || *out == NULL)
		return err;
	(*out)->thread = pthread_self();
	pthread_mutex_lock(&rt->mu);
	if (rt->stopping) {
		pthread_mutex_unlock(&rt->mu);
		tm__runtime_requeue(tm, out, 1);
		tm__job_unref(*out);
		*out = NULL;
		return TM_OK;
	}
	(*out)->next = rt->running;
	rt->running = *out;
	pthread_mutex_unlock(&rt->mu);
	return TM_OK;
}

/* ---- finishing ------------------------------------------------------------ */

struct finish_ctx {
	tm_job *job;
	tm_status st;
	bool closing;
	tm__job_mark mark;
};

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

static int finish_txn(tm__txn *txn, void *p)
{
	struct finish_ctx *c = p;
	tm_job *job = c->job;
	tm__task t, old;
	bool ours;
	int err = tm__store_get(txn, job->id, &t);

	if (err)
		return err;
	old = t;
	pthread_mutex_lock(&job->mu);
	ours = tm__job_apply(job, &t, &c->mark);
	pthread_mutex_unlock(&job->mu);
	if (!ours) {
		/* Someone decided first (timeout, a patch, lease lost): final is
		 * final, and the handler's answer is ignored. */
		tm__task_free(&t);
		return 1;
	}
	if (c->st != TM_COMPLETED && c->st != TM_FAILED && c->st != TM_CANCELLED) {
		err = tm__task_set_detail(&t, "error", cJSON_CreateStringReference(
		                          "the handler returned an invalid status"));
		c->st = TM_FAILED;
	}
	if (err) {
		/* out of memory: fall through to FAILED below */
	} else if (c->closing && c->st != TM_COMPLETED && t.status == TM_RUNNING) {
		/* Stopped by tm_close(): resume at the next open, uncounted. */
		t.queued = true;
		t.ready_us = tm__now_us();
		t.owner = 0;
		t.lease_us = 0;
		tm__task_set_attempts(&t, tm__task_attempts(&t) - 1);
	} else if (c->st == TM_COMPLETED) {
		err = tm__task_enter(txn, &t, TM_COMPLETED);
	} else if (c->st == TM_CANCELLED || t.status == TM_CANCELLED_REQUESTED) {
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

static void finish(tm_manager *tm, tm_job *job, tm_status st)
{
	struct finish_ctx c = { job, st, false, { 0, 0 } };
	struct tm__runtime *rt = tm->rt;

	pthread_mutex_lock(&rt->mu);
	c.closing = rt->stopping;
	pthread_mutex_unlock(&rt->mu);
	/* On a storage error the task stays RUNNING under a lease nobody renews:
	 * lease expiry recovers it (retry, or FAILED "worker lost"). */
	if (tm__store_write(tm->store, finish_txn, &c) == TM_OK)
		tm__runtime_announce(tm); /* a retry queued, or a slot came free */
}

/* Run a claimed job.  Returns false when tm_close() abandoned it: then the
 * manager may be gone, and the caller must touch nothing. */
static bool run_job(tm_manager *tm, tm_job *job)
{
	struct tm__runtime *rt = tm->rt;
	tm_status st = job->reg->def.run(job, job->reg->def.user);

	pthread_mutex_lock(&job->mu);
	if (job->abandoned) {
		pthread_mutex_unlock(&job->mu);
		tm__job_unref(job);
		return false;
	}
	job->returned = true;
	pthread_mutex_unlock(&job->mu);
	finish(tm, job, st);
	pthread_mutex_lock(&rt->mu);
	unlink_job(rt, job);
	pthread_mutex_unlock(&rt->mu);
	tm__job_unref(job);
	return true;
}

/* ---- requeue ------------------------------------------------------------- */

struct requeue_ctx {
	tm_job **jobs;
	size_t n;
};

static int requeue_txn(tm__txn *txn, void *p)
{
	struct requeue_ctx *c = p;

	for (size_t i = 0; i < c->n; i++) {
		tm_job *job = c->jobs[i];
		tm__job_mark mark;
		tm__task t, old;
		bool ours;
		int err = tm__store_get(txn, job->id, &t);

		if (err == TM_ETASK_NOT_FOUND)
			continue;
		if (err)
			return err;
		old = t;
		pthread_mutex_lock(&job->mu);
		ours = tm__job_apply(job, &t, &mark);
		pthread_mutex_unlock(&job->mu);
		if (ours && !t.queued) {
			t.queued = true;
			t.ready_us = tm__now_us();
			t.owner = 0;
			t.lease_us = 0;
			tm__task_set_attempts(&t, tm__task_attempts(&t) - 1);
			err = tm__store_put(txn, &old, &t);
		}
		tm__task_free(&t);
		if (err)
			return err;
	}
	return TM_OK;
}

void tm__runtime_requeue(tm_manager *tm, tm_job **jobs, size_t n)
{
	struct requeue_ctx c = { jobs, n };

	/* On failure the leases expire and recovery retries the tasks. */
	if (n > 0 && tm__store_write(tm->store, requeue_txn, &c) == TM_OK)
		tm__wake_signal(tm->wake); /* another process may take them now */
}

/* ---- threads ------------------------------------------------------------- */

static void *worker_main(void *arg)
{
	tm_manager *tm = arg;
	struct tm__runtime *rt = tm->rt;
	uint64_t seen = 0;

	for (;;) {
		tm_job *job;

		pthread_mutex_lock(&rt->mu);
		while (!rt->stopping && rt->wake_seq == seen)
			pthread_cond_wait(&rt->work, &rt->mu);
		if (rt->stopping) {
			pthread_mutex_unlock(&rt->mu);
			return NULL;
		}
		seen = rt->wake_seq;
		pthread_mutex_unlock(&rt->mu);
		while (claim(tm, &job) == TM_OK && job != NULL)
			if (!run_job(tm, job))
				return NULL;
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

static bool any_unabandoned(struct tm__runtime *rt)
{
	for (tm_job *j = rt->running; j; j = j->next)
		if (!j->abandoned)
			return true;
	return false;
}

/* Handlers still running after the grace period: mark them abandoned (their
 * workers will free the job and touch nothing else), take them off the
 * list, and return them with a reference each. */
static tm_job **abandon_running(struct tm__runtime *rt, size_t *n)
{
	tm_job **out;
	size_t k = 0;

	for (tm_job *j = rt->running; j; j = j->next)
		k++;
	out = malloc((k ? k : 1) * sizeof(*out));
	*n = 0;
	for (tm_job **pp = &rt->running; *pp;) {
		tm_job *j = *pp;
		bool gone;

		pthread_mutex_lock(&j->mu);
		gone = !j->returned && out != NULL;
		if (gone)
			j->abandoned = true;
		pthread_mutex_unlock(&j->mu);
		if (gone) {
			tm__job_ref(j);
			out[(*n)++] = j;
			*pp = j->next;
		} else {
			pp = &j->next;
		}
	}
	return out;
}

void tm__runtime_stop(tm_manager *tm)
{
	struct tm__runtime *rt = tm->rt;
	struct timespec ts;
	tm_job **left;
	size_t n_left = 0;

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
	left = abandon_running(rt, &n_left);
	while (any_unabandoned(rt)) /* returned: writing their outcome */
		pthread_cond_wait(&rt->idle, &rt->mu);
	pthread_mutex_unlock(&rt->mu);

	tm__runtime_requeue(tm, left, n_left);
	for (size_t i = 0; i < n_left; i++) {
		for (unsigned w = 0; w < rt->n_workers; w++) {
			if (!rt->detached[w] && pthread_equal(rt->workers[w], left[i]->thread)) {
				pthread_detach(rt->workers[w]);
				rt->detached[w] = true;
			}
		}
		tm__job_unref(left[i]);
	}
	free(left);
	for (unsigned w = 0; w < rt->n_workers; w++)
		if (!rt->detached[w])
			pthread_join(rt->workers[w], NULL);
	if (rt->sup_started) {
		atomic_store(&rt->sup_stop, true);
		tm__wake_signal(tm->wake);
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
