/* The task lifecycle: the rules, in one place.  Each function works on a
 * task inside a write transaction, or runs its own; none of them calls up
 * into the façade or the runtime. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "id.h"
#include "json.h"
#include "lifecycle.h"
#include "status.h"

/* ---- create ---------------------------------------------------------------- */

/* details[key] = {"name": name, "task_id": id}: a pipeline's link. */
static bool add_link(cJSON *d, const char *key, const char *name, const char *id)
{
	cJSON *o = cJSON_AddObjectToObject(d, key);

	return o && cJSON_AddStringToObject(o, "name", name) &&
	       cJSON_AddStringToObject(o, "task_id", id);
}

static int new_task(const tm__jobreg *job, const tm__new_task *item,
                    int64_t now, tm__task *t)
{
	cJSON *d;
	int err;

	memset(t, 0, sizeof(*t));
	err = tm__id_new(t->id);
	if (err)
		return err;
	strcpy(t->name, job->name);
	t->status = TM_REQUEST_SENT;
	t->queued = true;
	t->priority = item->has_priority ? item->priority : 0;
	t->start_us = now;
	t->ready_us = t->start_us;
	/* Scheduled: it waits in the queue until then, and its timeout
	 * counts from then.  A time past means now. */
	if (item->scheduled && (int64_t)(item->not_before * 1e6) > now)
		t->ready_us = (int64_t)(item->not_before * 1e6);
	t->timeout_us = t->ready_us + (int64_t)(job->def.timeout_s * 1e6);
	t->warnings = cJSON_CreateArray();
	t->details = d = cJSON_CreateObject();
	if (t->warnings == NULL || d == NULL ||
	    !cJSON_AddItemToObject(d, "payload", cJSON_Duplicate(item->context, 1)) ||
	    (item->after && !add_link(d, "after", item->after->name, item->after->id)) ||
	    !cJSON_AddObjectToObject(d, "progress") ||
	    !cJSON_AddItemToObject(d, "timeout_at", tm__json_time(t->timeout_us)) ||
	    !cJSON_AddStringToObject(d, "create_reason", item->reason) ||
	    !cJSON_AddNumberToObject(d, "attempts", 0) ||
	    (item->retry_of && !cJSON_AddStringToObject(d, "retry_of", item->retry_of)) ||
	    (item->scheduled && !cJSON_AddItemToObject(d, "not_before",
	                                               tm__json_time((int64_t)(item->not_before * 1e6)))) ||
	    (item->has_priority && !cJSON_AddNumberToObject(d, "priority", item->priority))) {
		tm__task_free(t);
		return tm__error_oom();
	}
	return TM_OK;
}

struct create_ctx {
	const tm__jobreg *job;
	tm__task *tasks;
	const tm__new_task *items;
	size_t n;
	const tm__create_how *how;
	bool created;
	bool handed;            /* claimed at once (how->token) */
};

/* The claim of a trigger that hands its task to an idle worker: made in
 * the commit that creates the task, so the handler starts one sync after
 * the trigger began.  A crash after that commit leaves a RUNNING task with
 * a lease, which recovery retries or fails like any other run. */
static int claim_at_create(tm__txn *txn, const tm__create_how *how, tm__task *t,
                           bool *handed)
{
	int64_t now = tm__txn_now(txn);
	bool run = false, paused = false;
	int err = TM_OK;

	*handed = false;
	if (t->status != TM_REQUEST_SENT) { /* the write runs again */
		t->status = TM_REQUEST_SENT;
		t->queued = true;
		t->ready_us = t->start_us;
		t->owner = 0;
		t->lease_us = 0;
		err = tm__task_set_attempts(t, 0);
	}
	/* A paused name's task waits in the queue like any other, and so
	 * does a task scheduled for later. */
	if (!err && t->ready_us <= now)
		err = tm__store_paused(txn, t->name, &paused);
	if (err || paused || t->ready_us > now)
		return err;
	*handed = true;
	err = tm__lifecycle_claim(txn, t, now, how->token, now + how->lease_us, &run);
	if (!err && !run) /* cannot be: a new task is neither cancelled nor late */
		err = tm_errorf(TM_ESTORAGE, "task %s could not be claimed at once", t->id);
	return err;
}

static int first_id(tm__txn *txn, const char *id, void *ctx)
{
	(void)txn;
	memcpy(ctx, id, TM_TASK_ID_LEN + 1);
	return TM__SCAN_STOP;
}

static int create_txn(tm__txn *txn, void *p)
{
	struct create_ctx *c = p;
	const char *name = c->job->name;
	char busy[TM_TASK_ID_LEN + 1] = "";
	bool go = true;
	int err = TM_OK;

	c->created = false; /* a write may run again */
	/* Checks over the name's tasks hold across processes under its lock. */
	if (c->how->gate || (c->job->def.flags & TM_JOB_EXCLUSIVE)) {
		err = tm__store_lock_name(txn, name);
		if (err)
			return err;
	}
	if (c->how->gate) {
		err = c->how->gate(txn, c->how->gctx, &go);
		if (err || !go)
			return err;
	}
	/* Checked and inserted in one write transaction: the check holds
	 * across threads and processes. */
	if (c->job->def.flags & TM_JOB_EXCLUSIVE) {
		err = tm__store_active(txn, name, first_id, busy);
		if (err)
			return err;
		if (busy[0])
			return tm_errorf(TM_EALREADY_RUNNING, "task %s is already "
			                 "running (task %s)", name, busy);
	}
	if (c->how->token)
		err = claim_at_create(txn, c->how, &c->tasks[0], &c->handed);
	for (size_t i = 0; i < c->n && !err; i++) {
		err = tm__store_put(txn, NULL, &c->tasks[i]);
		if (!err && c->items[i].secret)
			err = tm__store_secret_put(txn, c->tasks[i].id, c->items[i].secret);
	}
	if (!err)
		err = tm__store_reset_changes(txn, name);
	if (!err)
		err = tm__txn_note(txn, TM__EV_CREATED, name, TM_REQUEST_SENT, (uint32_t)c->n, 0);
	c->created = !err;
	return err;
}

/* Build the n tasks and check them against lim (when given), each and, for
 * a batch, together; on failure none is left. */
static int new_tasks(const tm__jobreg *job, const tm__limits *lim,
                     const tm__new_task *items, size_t n, int64_t now,
                     tm__task *tasks)
{
	uint64_t total = 0;
	int err = TM_OK;
	size_t i;

	for (i = 0; i < n && !err; i++) {
		size_t size = 0;

		err = new_task(job, &items[i], now, &tasks[i]);
		if (!err && lim)
			err = tm__task_check_limits(&tasks[i], lim, "context_task", &size);
		if (!err && lim && n > 1) {
			total += size;
			if (total > lim->list_bytes) { /* bounds so far: now exactly */
				total = 0;
				for (size_t k = 0; k <= i; k++)
					total += tm__task_size(&tasks[k], NULL);
			}
			if (total > lim->list_bytes)
				err = tm_errorf(TM_EWRONG_DATA, "the batch's tasks add up "
				                "to more than %llu bytes (max_list_bytes)",
				                (unsigned long long)lim->list_bytes);
		}
		if (err && n > 1 && err == TM_EWRONG_DATA) {
			char msg[256];

			snprintf(msg, sizeof(msg), "%s", tm_last_error());
			tm_errorf(err, "bodies_json[%zu]: %s", i, msg);
		}
	}
	for (size_t k = 0; err && k < i; k++)
		tm__task_free(&tasks[k]); /* a failed new_task left NULLs */
	return err;
}

int tm__lifecycle_create_many(tm__store *s, const tm__limits *lim,
                              const tm__jobreg *job, const tm__new_task *items,
                              size_t n, const tm__create_how *how,
                              char (*ids)[TM_TASK_ID_LEN + 1], bool *created)
{
	static const tm__create_how plain;
	tm__task one, *tasks = n == 1 ? &one : calloc(n, sizeof(*tasks));
	struct create_ctx c = { job, tasks, items, n, how ? how : &plain, false, false };
	int err;

	*created = false;
	if (tasks == NULL)
		return tm__error_oom();
	if (n > 1 && (job->def.flags & TM_JOB_EXCLUSIVE))
		err = tm_errorf(TM_EALREADY_RUNNING, "%s is exclusive: it takes one "
		                "task at a time, and the batch has %zu", job->name, n);
	else
		err = new_tasks(job, lim, items, n, tm__store_now(s), tasks);
	if (!err) {
		err = tm__store_write(s, create_txn, &c);
		for (size_t i = 0; i < n; i++) {
			if (err == TM_OK && c.created)
				memcpy(ids[i], tasks[i].id, sizeof(tasks[i].id));
			if (i == 0 && c.how->claimed && err == TM_OK && c.created && c.handed)
				*c.how->claimed = tasks[0]; /* the caller's now */
			else
				tm__task_free(&tasks[i]);
		}
		*created = err == TM_OK && c.created;
	}
	if (tasks != &one)
		free(tasks);
	return err;
}

int tm__lifecycle_create(tm__store *s, const tm__limits *lim,
                         const tm__jobreg *job, const cJSON *context,
                         const char *secret, const char *reason,
                         tm__gate_fn gate, void *gctx,
                         char id[TM_TASK_ID_LEN + 1], bool *created)
{
	tm__new_task item = { .context = context, .secret = secret, .reason = reason };
	tm__create_how how = { gate, gctx, 0, 0, NULL };

	return tm__lifecycle_create_many(s, lim, job, &item, 1, &how,
	                                 (char (*)[TM_TASK_ID_LEN + 1])id, created);
}

struct retry_ctx {
	const char *name, *id;
	cJSON *payload;
	int priority;
};

static int retry_source_txn(tm__txn *txn, void *p)
{
	struct retry_ctx *c = p;
	tm__task t;
	int err;

	cJSON_Delete(c->payload); /* a read may run again */
	c->payload = NULL;
	err = tm__store_get(txn, c->id, &t);
	if (err)
		return err;
	if (strcmp(t.name, c->name) != 0)
		err = tm_errorf(TM_ETASK_NOT_FOUND, "task %s not found in %s", c->id, c->name);
	else if (t.status != TM_FAILED && t.status != TM_CANCELLED)
		err = tm_errorf(TM_ELOWER_STATUS, "task %s is %s: only a FAILED or "
		                "CANCELLED task can be retried", c->id, tm_status_name(t.status));
	else {
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(t.details, "payload");

		c->priority = t.priority;
		c->payload = cJSON_IsObject(p) ? cJSON_Duplicate(p, 1) : cJSON_CreateObject();
		if (c->payload == NULL)
			err = tm__error_oom();
	}
	tm__task_free(&t);
	return err;
}

int tm__lifecycle_retry_source(tm__store *s, const char *name, const char *id,
                               cJSON **payload, int *priority)
{
	struct retry_ctx c = { name, id, NULL, 0 };
	int err = tm__store_read(s, retry_source_txn, &c);

	*priority = c.priority;
	if (err) {
		cJSON_Delete(c.payload);
		c.payload = NULL;
	}
	*payload = c.payload;
	return err;
}

/* ---- pipelines ---------------------------------------------------------------- */

#define AFTER_REASON "after "

/* A warning on the task that completed, about its next task: the next task
 * is not made, and the completion stands. */
static int then_warning(tm__task *t, const char *next, const char *why)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "then: no task of %s was created: %s", next, why);
	return tm__task_add_warning(t, msg);
}

/* t has just COMPLETED in txn: create the task its name's `then` names,
 * in the same transaction, with t's details.output as its context_task,
 * as create_txn makes any task (exclusivity under the name's lock, the
 * metrics' note).  The next name's policy is its registration in this
 * process; without one, or when its exclusivity or the limits refuse the
 * task, t gets a warning instead.  Its validate hook does not run: host
 * code has no place inside a write transaction. */
int tm__lifecycle_follow(tm__txn *txn, tm__task *t, tm__follow *f)
{
	const tm__jobreg *me = f ? tm__registry_find(f->reg, t->name) : NULL;
	const tm__jobreg *job;
	const cJSON *out;
	cJSON *empty = NULL;
	char reason[sizeof(AFTER_REASON) + TM_NAME_MAX + 1 + TM_TASK_ID_LEN];
	tm__new_task item = { .reason = reason, .after = t };
	tm__task next;
	struct create_ctx c = { NULL, &next, &item, 1, NULL, false, false };
	static const tm__create_how plain;
	int err;

	if (me == NULL || me->def.then == NULL)
		return TM_OK;
	job = tm__registry_find(f->reg, me->def.then);
	if (job == NULL)
		return then_warning(t, me->def.then, "the name is not registered in "
		                    "the process that completed this task");
	out = cJSON_GetObjectItemCaseSensitive(t->details, "output");
	if (out && !cJSON_IsObject(out)) {
		err = tm__task_add_warning(t, "then: details.output is not a JSON "
		                           "object; the next task's context_task is {}");
		if (err)
			return err;
	}
	if (!cJSON_IsObject(out))
		out = empty = cJSON_CreateObject();
	if (out == NULL)
		return tm__error_oom();
	snprintf(reason, sizeof(reason), "%s%s %s", AFTER_REASON, t->name, t->id);
	item.context = out;
	err = new_task(job, &item, tm__txn_now(txn), &next);
	cJSON_Delete(empty);
	if (err)
		return err;
	if (f->lim)
		err = tm__task_check_limits(&next, f->lim, "details.output", NULL);
	if (!err) {
		c.job = job;
		c.how = &plain;
		err = create_txn(txn, &c);
	}
	if (!err)
		err = add_link(t->details, "then", job->name, next.id) ? TM_OK
		                                                       : tm__error_oom();
	if (err == TM_EALREADY_RUNNING || err == TM_EWRONG_DATA) {
		char why[384];

		snprintf(why, sizeof(why), "%s", tm_last_error());
		err = then_warning(t, job->name, why);
	} else if (!err) {
		f->created = true;
	}
	tm__task_free(&next);
	return err;
}

/* ---- statuses ------------------------------------------------------------------ */

int tm__lifecycle_enter(tm__txn *txn, tm__task *t, tm_status st)
{
	int err = tm__status_check(t->status, st);

	if (err || st == t->status)
		return err;
	if (tm__status_final(st)) {
		if ((t->status == TM_RUNNING || t->status == TM_CANCELLED_REQUESTED) &&
		    !t->queued) {
			/* A run ends: while it ran, ready_us held its start. */
			double s = (double)(tm__txn_now(txn) - t->ready_us) / 1e6;

			err = tm__txn_note(txn, TM__EV_RAN, t->name, st, 1, s > 0 ? s : 0);
			if (err)
				return err;
		}
		/* A failure always says why. */
		if (st == TM_FAILED && !cJSON_GetObjectItemCaseSensitive(t->details, "error"))
			err = tm__task_set_text(t, "error", "failed");
		if (!err)
			err = tm__task_finish(t, st, tm__txn_now(txn));
		return err ? err : tm__store_secret_del(txn, t->id);
	}
	if (st == TM_RUNNING && t->status == TM_REQUEST_SENT) {
		/* An external worker took it: it leaves the queue, and its
		 * queue position, no longer needed, keeps the run's start. */
		t->queued = false;
		t->ready_us = tm__txn_now(txn);
		err = tm__task_set_attempts(t, tm__task_attempts(t) + 1);
	}
	/* CANCELLED_REQUESTED keeps a waiting task queued: the worker that
	 * dequeues it ends it CANCELLED without running it. */
	if (!err)
		t->status = st;
	return err;
}

/* ---- runs ------------------------------------------------------------------------ */

/* Back to the waiting queue, ready at ready_us, with no run on it. */
static void requeue(tm__task *t, int64_t ready_us)
{
	t->queued = true;
	t->ready_us = ready_us;
	t->owner = 0;
	t->lease_us = 0;
}

bool tm__lifecycle_claim_runs(const tm__task *t, int64_t now)
{
	return t->status != TM_CANCELLED_REQUESTED && now < t->timeout_us;
}

int tm__lifecycle_claim(tm__txn *txn, tm__task *t, int64_t now, uint64_t token,
                        int64_t lease_until, bool *run)
{
	int err;

	*run = false;
	if (!tm__lifecycle_claim_runs(t, now))
		return t->status == TM_CANCELLED_REQUESTED ? tm__lifecycle_enter(txn, t, TM_CANCELLED)
		                                           : tm__lifecycle_time_out(txn, t);
	if (t->status == TM_REQUEST_SENT)
		err = tm__lifecycle_enter(txn, t, TM_RUNNING);
	else /* a retry, or a task resumed after close */
		err = tm__task_set_attempts(t, tm__task_attempts(t) + 1);
	if (err)
		return err;
	/* A new attempt starts clean; earlier failures are warnings, and
	 * an output is this attempt's to give (tm_job_output). */
	cJSON_DeleteItemFromObjectCaseSensitive(t->details, "error");
	cJSON_DeleteItemFromObjectCaseSensitive(t->details, "output");
	t->queued = false;
	t->ready_us = now; /* the run's start, while it runs (task.h) */
	t->owner = token;
	t->lease_us = lease_until;
	*run = true;
	return TM_OK;
}

static int retry_later(tm__task *t, const tm__jobreg *reg, const char *why,
                       int64_t now)
{
	unsigned n = tm__task_attempts(t);
	double delay = reg->def.retry_backoff_s;
	char msg[512];
	int err;

	for (unsigned i = 1; i < n && delay < TM__BACKOFF_CAP_S; i++)
		delay *= 2; /* exponential */
	if (delay > TM__BACKOFF_CAP_S)
		delay = TM__BACKOFF_CAP_S;
	requeue(t, now + (int64_t)(delay * 1e6));
	snprintf(msg, sizeof(msg), "attempt %u of %u failed: %s", n,
	         reg->def.max_attempts, why);
	err = tm__task_add_warning(t, msg);
	if (err)
		return err;
	snprintf(msg, sizeof(msg), "attempt %u of %u failed (%s); retrying in %g s",
	         n, reg->def.max_attempts, why, delay);
	return tm__task_set_message(t, msg);
}

int tm__lifecycle_outcome(tm__txn *txn, tm__task *t, const tm__jobreg *reg,
                          tm_status st, bool closing, tm__follow *f)
{
	const cJSON *e;
	int err = TM_OK;

	if (st != TM_COMPLETED && st != TM_FAILED && st != TM_CANCELLED) {
		err = tm__task_set_text(t, "error", "the handler returned an invalid status");
		st = TM_FAILED;
	}
	if (err)
		return err;
	if (closing && st != TM_COMPLETED && t->status == TM_RUNNING) {
		/* The run stopped because the process is closing: it was not
		 * the task's fault, so the attempt does not count. */
		requeue(t, tm__txn_now(txn));
		return tm__task_set_attempts(t, tm__task_attempts(t) - 1);
	}
	if (st == TM_COMPLETED) {
		err = tm__lifecycle_enter(txn, t, TM_COMPLETED);
		return err ? err : tm__lifecycle_follow(txn, t, f);
	}
	if (st == TM_CANCELLED || t->status == TM_CANCELLED_REQUESTED)
		return tm__lifecycle_enter(txn, t, TM_CANCELLED);
	e = cJSON_GetObjectItemCaseSensitive(t->details, "error");
	if (tm__task_attempts(t) < reg->def.max_attempts &&
	    (err = tm__txn_note(txn, TM__EV_RETRY, t->name, t->status, 1, 0)) != TM_OK)
		return err;
	if (tm__task_attempts(t) < reg->def.max_attempts)
		return retry_later(t, reg, cJSON_IsString(e) ? e->valuestring : "handler failed",
		                   tm__txn_now(txn));
	if (e == NULL)
		err = tm__task_set_text(t, "error", "handler failed");
	return err ? err : tm__lifecycle_enter(txn, t, TM_FAILED);
}

int tm__lifecycle_time_out(tm__txn *txn, tm__task *t)
{
	char msg[96];
	double s = (double)(t->timeout_us - t->start_us) / 1e6;
	int err;

	snprintf(msg, sizeof(msg), "timed out after %g s", s);
	err = tm__txn_note(txn, TM__EV_TIMEOUT, t->name, TM_FAILED, 1, 0);
	if (!err)
		err = tm__task_add_warning(t, "timed out");
	if (!err)
		err = tm__task_set_text(t, "error", msg);
	return err ? err : tm__lifecycle_enter(txn, t, TM_FAILED);
}

int tm__lifecycle_lost(tm__txn *txn, tm__task *t, const tm__jobreg *reg,
                       bool *acted)
{
	char msg[160];
	int err;

	*acted = reg != NULL || t->status == TM_CANCELLED_REQUESTED;
	if (!*acted)
		return TM_OK;
	err = tm__txn_note(txn, TM__EV_LOST, t->name, t->status, 1, 0);
	if (err)
		return err;
	if (t->status == TM_CANCELLED_REQUESTED) {
		/* Cancel was asked: the ordering rule forbids running it again. */
		err = tm__task_add_warning(t, "worker lost");
		return err ? err : tm__lifecycle_enter(txn, t, TM_CANCELLED);
	}
	if (tm__task_attempts(t) < reg->def.max_attempts) {
		err = tm__txn_note(txn, TM__EV_RETRY, t->name, t->status, 1, 0);
		if (err)
			return err;
		snprintf(msg, sizeof(msg), "worker lost during attempt %u of %u; retrying",
		         tm__task_attempts(t), reg->def.max_attempts);
		requeue(t, tm__txn_now(txn));
		return tm__task_set_message(t, msg);
	}
	err = tm__task_add_warning(t, "worker lost");
	if (!err)
		err = tm__task_set_text(t, "error", "worker lost");
	return err ? err : tm__lifecycle_enter(txn, t, TM_FAILED);
}
