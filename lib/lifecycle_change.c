/* The lifecycle's changes asked by callers: tm_patch() and tm_cancel()
 * (lifecycle.h, tm__lifecycle_change), on the rules of lifecycle.c. */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "json.h"
#include "lifecycle.h"
#include "status.h"

/* tm_cancel(): a task that is not running yet (new, or waiting to retry)
 * ends at once; a running one is asked to stop; any other is left alone. */
static int cancel(tm__txn *txn, tm__task *t)
{
	if (t->status == TM_REQUEST_SENT || (t->status == TM_RUNNING && t->queued))
		return tm__lifecycle_enter(txn, t, TM_CANCELLED);
	if (t->status == TM_RUNNING)
		return tm__lifecycle_enter(txn, t, TM_CANCELLED_REQUESTED);
	return TM_OK;
}

/* What the library keeps in details; once a task is final, a change may
 * add or change other keys but none of these. */
static const char *const own_keys[] = {
	"payload", "progress", "timeout_at", "create_reason", "attempts",
	"end_time", "error", "retry_of", "not_before", "priority", "after", "then"
};

static int keep_own_keys(const tm__task *t, const cJSON *before, const cJSON *after)
{
	for (size_t i = 0; i < sizeof(own_keys) / sizeof(own_keys[0]); i++) {
		const cJSON *a = cJSON_GetObjectItemCaseSensitive(before, own_keys[i]);
		const cJSON *b = cJSON_GetObjectItemCaseSensitive(after, own_keys[i]);

		if (a == b || (a && b && cJSON_Compare(a, b, true)))
			continue;
		return tm_errorf(TM_ELOWER_STATUS, "task %s is %s: details.%s of a "
		                 "final task cannot change", t->id,
		                 tm_status_name(t->status), own_keys[i]);
	}
	return TM_OK;
}

struct change_ctx {
	const char *name, *id;
	const tm__change *ch;
	const tm__limits *lim;
	const cJSON *merged;   /* details merged before the write, or NULL */
	uint64_t merged_from;  /* the details_hash they were merged from */
	tm__follow *f;
	tm__buf *out;
	bool stop_handler;
};

/* The task's details after the change: those merged before the write if
 * the task's have not changed since, else merged now and checked again
 * (a handler's progress landed in between). */
static int new_details(struct change_ctx *c, tm__task *t, cJSON **out)
{
	int err = TM_OK;

	if (c->merged && t->details_hash == c->merged_from) {
		*out = cJSON_Duplicate(c->merged, 1);
		return *out ? TM_OK : tm__error_oom();
	}
	*out = tm__json_merge(cJSON_Duplicate(t->details, 1), c->ch->details);
	if (*out == NULL)
		return tm__error_oom();
	if (c->lim) {
		cJSON *keep = t->details;

		t->details = *out;
		err = tm__task_check_limits(t, c->lim, "the patch", NULL);
		t->details = keep;
	}
	if (err) {
		cJSON_Delete(*out);
		*out = NULL;
	}
	return err;
}

static int change_txn(tm__txn *txn, void *p)
{
	struct change_ctx *c = p;
	const tm__change *ch = c->ch;
	tm__task t, old;
	bool changed = false;
	int err;

	tm__buf_take(c->out, NULL); /* a write may run again */
	if (c->f)
		c->f->created = false;
	err = tm__store_get(txn, c->id, &t);
	if (err)
		return err;
	if (strcmp(t.name, c->name) != 0) {
		tm__task_free(&t);
		return tm_errorf(TM_ETASK_NOT_FOUND, "task %s not found in %s",
		                 c->id, c->name);
	}
	old = t; /* tm__store_put reads only the fixed fields of old */
	if (ch->details) {
		/* First, so that entering a status below has the last word on
		 * end_time, attempts and the default error. */
		cJSON *d;

		err = new_details(c, &t, &d);
		if (!err && tm__status_final(t.status))
			err = keep_own_keys(&t, t.details, d);
		if (!err) {
			cJSON_Delete(t.details);
			t.details = d;
			changed = true;
		} else {
			cJSON_Delete(d);
		}
	}
	if (!err && ch->status >= 0) {
		changed |= t.status != (tm_status)ch->status;
		err = tm__lifecycle_enter(txn, &t, (tm_status)ch->status);
	}
	if (!err && ch->cancel) {
		err = cancel(txn, &t);
		changed = t.status != old.status;
	}
	/* Completed by this change (an external worker's patch): its next
	 * task is created here, in the same transaction. */
	if (!err && t.status == TM_COMPLETED && old.status != TM_COMPLETED)
		err = tm__lifecycle_follow(txn, &t, c->f);
	if (!err && changed)
		err = tm__store_put(txn, &old, &t);
	if (!err) {
		c->stop_handler = old.status == TM_RUNNING && t.status != TM_RUNNING;
		err = tm__store_render(txn, c->id, NULL, true, c->out);
	}
	tm__task_free(&t);
	return err;
}

struct read_ctx {
	const char *id;
	tm__task t;
};

static int read_task(tm__txn *txn, void *p)
{
	struct read_ctx *r = p;

	tm__task_free(&r->t); /* a read may run again */
	return tm__store_get(txn, r->id, &r->t);
}

/* Merge a details patch before the write transaction, so that a large one
 * does not hold the writer lock: read the task, merge, check the limits.
 * The write then only checks that the task's details did not change. */
static int merge_ahead(tm__store *s, struct change_ctx *c, cJSON **merged)
{
	struct read_ctx r = { .id = c->id };
	int err = tm__store_read(s, read_task, &r);

	*merged = NULL;
	if (err == TM_ETASK_NOT_FOUND || (!err && strcmp(r.t.name, c->name) != 0))
		err = TM_OK; /* the write refuses it, with the checks in order */
	else if (!err) {
		r.t.details = tm__json_merge(r.t.details, c->ch->details);
		err = r.t.details ? TM_OK : tm__error_oom();
		if (!err && c->lim)
			err = tm__task_check_limits(&r.t, c->lim, "the patch", NULL);
		if (!err) {
			c->merged_from = r.t.details_hash;
			*merged = r.t.details;
			r.t.details = NULL;
		}
	}
	tm__task_free(&r.t);
	return err;
}

int tm__lifecycle_change(tm__store *s, const tm__limits *lim, const char *name,
                         const char *id, const tm__change *ch, tm__follow *f,
                         tm__buf *out, bool *stop_handler)
{
	struct change_ctx c = { name, id, ch, lim, NULL, 0, f, out, false };
	cJSON *merged = NULL;
	int err = ch->details ? merge_ahead(s, &c, &merged) : TM_OK;

	c.merged = merged;
	if (!err)
		err = tm__store_write(s, change_txn, &c);
	cJSON_Delete(merged);
	*stop_handler = !err && c.stop_handler;
	return err;
}
