/* The public façade's calls on tasks: tm_trigger, tm_trigger_many and the
 * other four of the REST API.  Each call checks its arguments and parses
 * its body (request.c) before anything else, so bad input never reaches
 * the store; then writes go through the lifecycle (lifecycle.c) and reads
 * straight to the store.  Opening and closing a manager is open.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "open.h"
#include "error.h"
#include "id.h"
#include "json.h"
#include "lifecycle.h"
#include "request.h"
#include "running.h"

static int check_flags(unsigned flags)
{
	if (flags & ~TM_PUBLIC)
		return tm_errorf(TM_EINVAL, "unknown call flags 0x%x", flags & ~TM_PUBLIC);
	return TM_OK;
}

/* The checks every call on a name makes, in the order their errors take
 * precedence: handle, flags, name.  The name's entry, or NULL and *err. */
static const tm__jobreg *name_enter(tm_manager *tm, const char *name,
                                    unsigned flags, char **out_json, int *err)
{
	*err = tm__enter(tm, out_json);
	if (!*err)
		*err = check_flags(flags);
	return *err ? NULL : tm__registry_lookup(tm->reg, name, flags, err);
}

/* ---- trigger ------------------------------------------------------------- */

/* The name's validate hook on one context_task, if it has one. */
static int validate(const tm__jobreg *job, const cJSON *context)
{
	char *context_json;
	int err;

	if (job->def.validate == NULL)
		return TM_OK;
	/* Printed only for a hook: most names have none. */
	context_json = tm__json_print(context);
	tm__error_clear();
	err = context_json ? job->def.validate(context_json, job->def.user)
	                   : tm__error_oom();
	free(context_json);
	if (err > 0 || err < TM_EINVAL)
		err = tm_errorf(TM_EINVAL, "the validate hook of %s returned %d, "
		                "which is not a tm_error", job->name, err);
	else if (err && tm_last_error()[0] == '\0')
		tm_errorf(err, "context_task was refused by %s", job->name);
	return err;
}

/* Tell the workers: here if the name has a handler here, else only the
 * other processes, which alone can run it. */
static void announce(tm_manager *tm, const tm__jobreg *job)
{
	if (job->def.run)
		tm__running_announce(tm);
	else
		tm__store_wake(tm->store, false);
}

#define MANUAL_REASON "manually triggered by endpoint"

/* {"task_id": id}, the answer of a trigger, to *out_json (when asked). */
static int answer_id(const char id[TM_TASK_ID_LEN + 1], char **out_json)
{
	tm__buf out = { 0 };

	if (out_json == NULL)
		return TM_OK;
	tm__buf_add(&out, "{\"task_id\":\"", 12);
	tm__buf_add(&out, id, TM_TASK_ID_LEN);
	tm__buf_add(&out, "\"}", 2);
	return tm__buf_take(&out, out_json);
}

/* Create the task of one trigger.  When a worker here is idle (and the
 * name has a handler here, and no concurrency limit to count nor rate
 * limit to draw on: those are a worker's claim's to apply), the task is
 * claimed in the same commit and handed to that worker: the handler starts
 * one sync after the trigger, instead of after the trigger's commit and
 * then the worker's claim. */
static int create_one(tm_manager *tm, const tm__jobreg *job,
                      const tm__new_task *item, char id[TM_TASK_ID_LEN + 1],
                      bool *created)
{
	tm__task claimed = { .details = NULL };
	tm__create_how how = { NULL, NULL, 0, 0, &claimed };
	struct tm__claiming claim;
	tm_job *run = NULL;
	int64_t mono = tm__mono_us();
	int err;

	if (job->def.run && job->def.concurrency == 0 && job->def.rate_per_s == 0) {
		uint64_t token = tm__random64();

		if (tm__running_reserve(tm, &claim, token)) {
			how.token = token;
			how.lease_us = (int64_t)tm->opts.lease_ms * 1000;
		}
	}
	err = tm__lifecycle_create_many(tm->store, &tm->limits, job, item, 1, &how,
	                                (char (*)[TM_TASK_ID_LEN + 1])id, created);
	if (how.token && *created && claimed.details &&
	    tm__job_new(job, &claimed, item->secret, tm->opts.lease_ms, &tm->limits,
	                mono, &run) == TM_OK)
		tm__running_hand(tm, run, &claim);
	else if (how.token) /* not made; or out of memory: the lease expires */
		tm__running_release(tm, &claim);
	tm__task_free(&claimed);
	if (*created && run == NULL)
		announce(tm, job);
	return err;
}

int tm_trigger(tm_manager *tm, const char *name, const char *body_json,
               unsigned flags, char **out_json)
{
	const tm__jobreg *job;
	tm__trigger_req req;
	char id[TM_TASK_ID_LEN + 1];
	bool created = false;
	int err;

	job = name_enter(tm, name, flags, out_json, &err);
	if (job == NULL)
		return err;
	err = tm__trigger_req_parse(body_json, &req);
	if (err)
		return err;
	err = validate(job, req.context);
	if (!err) {
		tm__new_task item = { req.context, req.secret,
		                      req.reason ? req.reason : MANUAL_REASON, NULL,
		                      req.scheduled, req.not_before,
		                      req.has_priority, req.priority, NULL };

		err = create_one(tm, job, &item, id, &created);
	}
	tm__trigger_req_free(&req);
	return err ? err : answer_id(id, out_json);
}

/* ---- trigger_many ------------------------------------------------------------ */

static int create_many(tm_manager *tm, const tm__jobreg *job,
                       const tm__trigger_req *reqs, size_t n,
                       char (*ids)[TM_TASK_ID_LEN + 1], bool *created)
{
	tm__new_task *items = calloc(n, sizeof(*items));
	int err = items ? TM_OK : tm__error_oom();

	for (size_t i = 0; i < n && !err; i++) {
		items[i].context = reqs[i].context;
		items[i].secret = reqs[i].secret;
		items[i].reason = reqs[i].reason ? reqs[i].reason : MANUAL_REASON;
		items[i].scheduled = reqs[i].scheduled;
		items[i].not_before = reqs[i].not_before;
		items[i].has_priority = reqs[i].has_priority;
		items[i].priority = reqs[i].priority;
		err = validate(job, reqs[i].context);
		if (err) {
			char msg[256];

			snprintf(msg, sizeof(msg), "%s", tm_last_error());
			tm_errorf(err, "bodies_json[%zu]: %s", i, msg);
		}
	}
	if (!err)
		err = tm__lifecycle_create_many(tm->store, &tm->limits, job, items, n,
		                                NULL, ids, created);
	free(items);
	return err;
}

int tm_trigger_many(tm_manager *tm, const char *name, const char *bodies_json,
                    unsigned flags, char **out_json)
{
	const tm__jobreg *job;
	tm__trigger_req *reqs;
	char (*ids)[TM_TASK_ID_LEN + 1] = NULL;
	tm__buf out = { 0 };
	bool created = false;
	size_t n;
	int err;

	job = name_enter(tm, name, flags, out_json, &err);
	if (job == NULL)
		return err;
	err = tm__trigger_many_parse(bodies_json, &reqs, &n);
	if (err)
		return err;
	ids = calloc(n, sizeof(*ids));
	err = ids ? create_many(tm, job, reqs, n, ids, &created) : tm__error_oom();
	tm__trigger_many_free(reqs, n);
	if (created)
		announce(tm, job);
	if (!err && out_json) {
		tm__buf_reserve(&out, 16 + n * (TM_TASK_ID_LEN + 3));
		tm__buf_add(&out, "{\"task_ids\":[", 13);
		for (size_t i = 0; i < n; i++) {
			tm__buf_add(&out, i ? ",\"" : "\"", i ? 2 : 1);
			tm__buf_add(&out, ids[i], TM_TASK_ID_LEN);
			tm__buf_add(&out, "\"", 1);
		}
		tm__buf_add(&out, "]}", 2);
		err = tm__buf_take(&out, out_json);
	}
	free(ids);
	return err;
}

/* ---- list_recent --------------------------------------------------------- */

struct list_ctx {
	const char *name;
	uint64_t max_bytes;
	int page, amt, n;
	bool with_details;
	bool has_next;
	tm__buf out;
};

static int list_one(tm__txn *txn, const char *id, void *p)
{
	struct list_ctx *c = p;
	int err;

	if (c->n == c->amt) {
		c->has_next = true; /* one task beyond the page */
		return TM__SCAN_STOP;
	}
	if (c->n++ > 0)
		tm__buf_add(&c->out, ",", 1);
	err = tm__store_render(txn, id, NULL, c->with_details, &c->out);
	if (!err && c->out.len > c->max_bytes)
		err = tm_errorf(TM_EWRONG_DATA, "the page's first %d tasks exceed %llu "
		                "bytes (max_list_bytes); ask for fewer (amt)", c->n,
		                (unsigned long long)c->max_bytes);
	return err;
}

/* The page's tasks are rendered straight into the answer after room for
 * its head; has_next is known once the scan has looked one task beyond
 * the page, and the head then goes in front.  No count of the name's
 * tasks: a page costs the same however many there are. */
#define LIST_HEAD_MAX 64

static int list_txn(tm__txn *txn, void *p)
{
	struct list_ctx *c = p;
	size_t skip = (size_t)(c->page - 1) * (size_t)c->amt;
	char head[LIST_HEAD_MAX] = "";
	int n, err;

	if (c->out.oom) /* a read may run again: start afresh */
		tm__buf_take(&c->out, NULL);
	c->out.len = 0;
	c->n = 0;
	c->has_next = false;
	tm__buf_add(&c->out, head, sizeof(head)); /* room, filled below */
	err = tm__store_recent(txn, c->name, skip, list_one, c);
	if (err)
		return err;
	tm__buf_add(&c->out, "]}", 2);
	n = snprintf(head, sizeof(head), "{\"has_next\":%s,\"next_page\":%lld,\"tasks\":[",
	             c->has_next ? "true" : "false", (long long)c->page + 1);
	if (c->out.oom || c->out.p == NULL)
		return tm__error_oom();
	memmove(c->out.p + n, c->out.p + sizeof(head), c->out.len - sizeof(head) + 1);
	memcpy(c->out.p, head, (size_t)n);
	c->out.len -= sizeof(head) - (size_t)n;
	return TM_OK;
}

int tm_list_recent(tm_manager *tm, const char *name, int page, int amt,
                   unsigned flags, char **out_json)
{
	struct list_ctx c = { 0 };
	int err;

	if (name_enter(tm, name, flags, out_json, &err) == NULL)
		return err;
	if (page == 0)
		page = 1;
	if (amt == 0)
		amt = 50;
	if (page < 1)
		return tm_errorf(TM_EWRONG_DATA, "page must be at least 1");
	if (amt < 1 || amt > 64)
		return tm_errorf(TM_EWRONG_DATA, "amt must be between 1 and 64");
	c.name = name;
	c.max_bytes = tm->opts.max_list_bytes;
	c.page = page;
	c.amt = amt;
	c.with_details = !(flags & TM_PUBLIC);
	tm__buf_reserve(&c.out, (size_t)amt * (c.with_details ? 640 : 256));
	err = tm__store_read(tm->store, list_txn, &c);
	if (err) {
		tm__buf_take(&c.out, NULL);
		return err;
	}
	return tm__buf_take(&c.out, out_json);
}

/* ---- get, patch, cancel: one task ---------------------------------------- */

struct get_ctx {
	const char *name, *id;
	bool with_details;
	tm__buf out;
};

static int get_txn(tm__txn *txn, void *p)
{
	struct get_ctx *c = p;

	return tm__store_render(txn, c->id, c->name, c->with_details, &c->out);
}

/* The checks every call on one task makes, in the order their errors
 * take precedence: handle, flags, name, id. */
static int one_task_enter(tm_manager *tm, const char *name, const char *id,
                          unsigned flags, char **out_json)
{
	int err;

	if (name_enter(tm, name, flags, out_json, &err) == NULL)
		return err;
	if (!tm__id_valid(id))
		err = tm_errorf(TM_EWRONG_DATA, "task_id must be 20 characters of "
		                "[A-Za-z0-9]");
	return err;
}

int tm_get(tm_manager *tm, const char *name, const char *task_id,
           unsigned flags, char **out_json)
{
	struct get_ctx c = { name, task_id, !(flags & TM_PUBLIC), { 0 } };
	int err = one_task_enter(tm, name, task_id, flags, out_json);

	if (err)
		return err;
	err = tm__store_read(tm->store, get_txn, &c);
	if (err) {
		tm__buf_take(&c.out, NULL);
		return err;
	}
	return tm__buf_take(&c.out, out_json);
}

/* tm_patch() and tm_cancel(): the change is the lifecycle's; telling a
 * handler here to stop, and the workers (here and in the other processes)
 * to look for a pipeline's next task, is ours. */
static int change(tm_manager *tm, const char *name, const char *id,
                  const tm__change *ch, char **out_json)
{
	tm__buf out = { 0 };
	tm__follow f = { tm->reg, &tm->limits, false };
	bool stop_handler = false;
	int err = tm__lifecycle_change(tm->store, &tm->limits, name, id, ch, &f,
	                               &out, &stop_handler);

	if (err) {
		tm__buf_take(&out, NULL);
		return err;
	}
	if (f.created) /* a pipeline's next task waits: here, or elsewhere */
		tm__running_announce(tm);
	if (stop_handler) {
		tm__running_stop(tm, id, TM__STOP_CANCEL);
		tm__store_wake(tm->store, false); /* the handler may run in another process */
	}
	return tm__buf_take(&out, out_json);
}

int tm_patch(tm_manager *tm, const char *name, const char *task_id,
             const char *patch_json, char **out_json)
{
	tm__patch_req req;
	tm__change ch = { -1, NULL, false };
	int err = one_task_enter(tm, name, task_id, 0, out_json);

	if (err)
		return err;
	err = tm__patch_req_parse(patch_json, &req);
	if (err)
		return err;
	ch.status = req.status;
	ch.details = req.details;
	err = change(tm, name, task_id, &ch, out_json);
	tm__patch_req_free(&req);
	return err;
}

int tm_cancel(tm_manager *tm, const char *name, const char *task_id,
              char **out_json)
{
	tm__change ch = { -1, NULL, true };
	int err = one_task_enter(tm, name, task_id, 0, out_json);

	return err ? err : change(tm, name, task_id, &ch, out_json);
}

/* ---- retry by hand ---------------------------------------------------------- */

#define RETRY_REASON "retry of "

int tm_retry(tm_manager *tm, const char *name, const char *task_id, char **out_json)
{
	const tm__jobreg *job;
	char id[TM_TASK_ID_LEN + 1], reason[sizeof(RETRY_REASON) + TM_TASK_ID_LEN];
	cJSON *payload = NULL;
	bool created = false;
	int priority = 0, err = one_task_enter(tm, name, task_id, 0, out_json);

	if (err)
		return err;
	job = tm__registry_lookup(tm->reg, name, 0, &err);
	if (job == NULL)
		return err;
	err = tm__lifecycle_retry_source(tm->store, name, task_id, &payload, &priority);
	/* Checked again: what was valid when it was triggered may not be. */
	if (!err)
		err = validate(job, payload);
	if (!err) {
		/* Its refresh token was erased when it ended: none goes along. */
		tm__new_task item = { payload, NULL, reason, task_id, false, 0,
		                      priority != 0, priority, NULL };

		snprintf(reason, sizeof(reason), "%s%s", RETRY_REASON, task_id);
		err = create_one(tm, job, &item, id, &created);
	}
	cJSON_Delete(payload);
	return err ? err : answer_id(id, out_json);
}

/* ---- pause and resume ----------------------------------------------------------- */

struct pause_ctx {
	const char *name;
	bool paused;
};

static int pause_txn(tm__txn *txn, void *p)
{
	struct pause_ctx *c = p;

	return tm__store_pause(txn, c->name, c->paused);
}

static int set_paused(tm_manager *tm, const char *name, bool paused)
{
	struct pause_ctx c = { name, paused };
	int err;

	if (name_enter(tm, name, 0, NULL, &err) == NULL)
		return err;
	err = tm__store_write(tm->store, pause_txn, &c);
	if (!err && !paused) {
		/* Its waiting tasks may start: here, and in the other processes. */
		tm__running_wake(tm);
		tm__store_wake(tm->store, false);
	}
	return err;
}

int tm_pause(tm_manager *tm, const char *name)
{
	return set_paused(tm, name, true);
}

int tm_resume(tm_manager *tm, const char *name)
{
	return set_paused(tm, name, false);
}
