/* The public façade: tm_open/tm_close/tm_register and the five calls.  Each
 * call checks its arguments and parses its body (request.c) before
 * anything else, so bad input never reaches the store; then writes go
 * through the lifecycle (lifecycle.c) and reads straight to the store. */
#include <math.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "error.h"
#include "id.h"
#include "json.h"
#include "lifecycle.h"
#include "request.h"
#include "running.h"
#include "runtime.h"

#define MIB (1024ull * 1024ull)

/* The bytes of each version of the public structs: the library reads and
 * writes no further into a caller's struct.  A version appends fields, so
 * each size is the end of that version's last field. */
#define END_OF(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

static const size_t options_size[] = {
	[1] = END_OF(tm_options, keep_age_s),
	[2] = END_OF(tm_options, max_list_bytes),
};

static const size_t job_def_size[] = {
	[1] = END_OF(tm_job_def, min_interval_s),
};

static const tm_options options_default = TM_OPTIONS_INIT;
static const tm_job_def job_def_default = TM_JOB_DEF_INIT;

/* A versioned public struct: its current defaults and the size of each
 * version.  Both structs begin with `unsigned int version`. */
struct versioned {
	const char *name;
	const void *defaults;
	size_t full;
	const size_t *sizes;
	size_t n_sizes;
};

static const struct versioned options_v = {
	"tm_options", &options_default, sizeof(tm_options), options_size,
	sizeof(options_size) / sizeof(options_size[0])
};
static const struct versioned job_def_v = {
	"tm_job_def", &job_def_default, sizeof(tm_job_def), job_def_size,
	sizeof(job_def_size) / sizeof(job_def_size[0])
};

static bool known(const struct versioned *v, unsigned version)
{
	return version >= 1 && version < v->n_sizes;
}

/* tm_options_init and tm_job_def_init: the defaults of that version only. */
static int init(const struct versioned *v, void *p, unsigned version)
{
	if (p == NULL)
		return tm_errorf(TM_EINVAL, "%s is NULL", v->name);
	if (!known(v, version))
		return tm_errorf(TM_EINVAL, "%s version %u is unknown to this library "
		                 "(%s)", v->name, version, TM_VERSION_STRING);
	memcpy(p, v->defaults, v->sizes[version]);
	*(unsigned int *)p = version;
	return TM_OK;
}

/* A caller's struct of any known version as a current one: its own fields,
 * and the defaults of the fields its version does not have. */
static int take(const struct versioned *v, const void *in, void *out)
{
	unsigned version = *(const unsigned int *)in;

	if (!known(v, version))
		return tm_errorf(TM_EINVAL, "%s version %u is not supported (use the "
		                 "initialiser of this library, %s)", v->name, version,
		                 TM_VERSION_STRING);
	memcpy(out, v->defaults, v->full);
	memcpy(out, in, v->sizes[version]);
	return TM_OK;
}

int tm_options_init(tm_options *o, unsigned int version)
{
	return init(&options_v, o, version);
}

int tm_job_def_init(tm_job_def *d, unsigned int version)
{
	return init(&job_def_v, d, version);
}

/* getpid() is a system call, and tm__enter runs on every call: each thread
 * caches its pid, and a fork handler clears the cache in the child. */
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static _Thread_local pid_t cached_pid;

static void forget_pid(void)
{
	cached_pid = 0;
}

static void watch_forks(void)
{
	pthread_atfork(NULL, NULL, forget_pid);
}

static pid_t current_pid(void)
{
	if (cached_pid == 0)
		cached_pid = getpid();
	return cached_pid;
}

/* ---- handles -----------------------------------------------------------------
 * A closed handle's memory is kept, marked closed, and handed to the next
 * tm_open(): a call on it until then gets TM_EINVAL, not a crash.  (Once
 * reused, the old pointer names the new manager: the guard catches most
 * misuse, not all.)  The spares are freed at exit, for leak checkers. */

static pthread_mutex_t spare_mu = PTHREAD_MUTEX_INITIALIZER;
static tm_manager *spares;

static tm_manager *handle_new(void)
{
	tm_manager *tm;

	pthread_mutex_lock(&spare_mu);
	tm = spares;
	if (tm)
		spares = tm->spare;
	pthread_mutex_unlock(&spare_mu);
	if (tm == NULL)
		return calloc(1, sizeof(*tm));
	memset((char *)tm + offsetof(tm_manager, spare), 0,
	       sizeof(*tm) - offsetof(tm_manager, spare));
	return tm;
}

static void handle_keep(tm_manager *tm)
{
	pthread_mutex_lock(&spare_mu);
	tm->spare = spares;
	spares = tm;
	pthread_mutex_unlock(&spare_mu);
}

__attribute__((destructor)) static void handles_free(void)
{
	pthread_mutex_lock(&spare_mu);
	while (spares) {
		tm_manager *tm = spares;

		spares = tm->spare;
		free(tm);
	}
	pthread_mutex_unlock(&spare_mu);
}

int tm__enter(tm_manager *tm, char **out)
{
	if (out)
		*out = NULL;
	if (tm == NULL)
		return tm_errorf(TM_EINVAL, "tm_manager is NULL");
	if (atomic_load_explicit(&tm->state, memory_order_acquire) != TM__HANDLE_OPEN)
		return tm_errorf(TM_EINVAL, "tm_manager is closed (tm_close was "
		                 "called), or is not one");
	if (current_pid() != tm->pid)
		return tm_errorf(TM_EINVAL, "tm_manager used across fork(); "
		                 "open the store again in the child");
	tm__error_clear();
	return TM_OK;
}

int tm__emit(cJSON *j, char **out)
{
	char *s;

	if (j == NULL)
		return tm__error_oom();
	if (out == NULL) {
		cJSON_Delete(j);
		return TM_OK;
	}
	s = tm__json_print(j);
	cJSON_Delete(j);
	if (s == NULL)
		return tm__error_oom();
	*out = s;
	return TM_OK;
}

static int check_flags(unsigned flags)
{
	if (flags & ~TM_PUBLIC)
		return tm_errorf(TM_EINVAL, "unknown call flags 0x%x", flags & ~TM_PUBLIC);
	return TM_OK;
}

/* ---- open, close, register ------------------------------------------------ */

static int check_options(const tm_options *in, tm_options *o)
{
	int err = take(&options_v, in, o);

	if (err)
		return err;
	if (o->path == NULL || o->path[0] == '\0')
		return tm_errorf(TM_EINVAL, "tm_options.path is not set");
#define TAKE(f) if (!o->f) o->f = options_default.f
	TAKE(map_size);
	TAKE(map_size_max);
	TAKE(poll_ms);
	TAKE(lease_ms);
	TAKE(grace_ms);
	TAKE(progress_ms);
	TAKE(keep_count);
	TAKE(keep_age_s);
	TAKE(max_task_bytes);
	TAKE(max_details_bytes);
	TAKE(max_keys);
	TAKE(max_list_bytes);
#undef TAKE
	if (o->flags & ~TM_OPEN_NOSYNC)
		return tm_errorf(TM_EINVAL, "unknown open flags 0x%x",
		                 o->flags & ~TM_OPEN_NOSYNC);
	if (o->workers > 256)
		return tm_errorf(TM_EINVAL, "workers must be at most 256");
	if (o->map_size < MIB || o->map_size > o->map_size_max)
		return tm_errorf(TM_EINVAL, "map_size must be at least 1 MiB and at "
		                 "most map_size_max");
	if (o->lease_ms < 100 || o->poll_ms > o->lease_ms)
		return tm_errorf(TM_EINVAL, "lease_ms must be at least 100 and at "
		                 "least poll_ms");
	if (!isfinite(o->keep_age_s) || o->keep_age_s < 0)
		return tm_errorf(TM_EINVAL, "keep_age_s must be finite and non-negative");
	if (o->max_task_bytes > UINT32_MAX || o->max_details_bytes > o->max_task_bytes)
		return tm_errorf(TM_EINVAL, "max_details_bytes must be at most "
		                 "max_task_bytes, and that below 4 GiB");
	if (o->max_list_bytes / 2 < o->max_task_bytes)
		return tm_errorf(TM_EINVAL, "max_list_bytes must be at least twice "
		                 "max_task_bytes, so that a page of one task fits");
	return TM_OK;
}

int tm_open(const tm_options *opts, tm_manager **out)
{
	tm__store_opts so;
	tm_manager *tm;
	int err;

	if (out)
		*out = NULL;
	if (out == NULL || opts == NULL)
		return tm_errorf(TM_EINVAL, "tm_open needs options and an out pointer");
	tm = handle_new();
	if (tm == NULL)
		return tm__error_oom();
	atomic_store(&tm->state, TM__HANDLE_OPEN);
	err = check_options(opts, &tm->opts);
	if (err)
		goto fail;
	tm->path = strdup(opts->path);
	if (tm->path == NULL) {
		err = tm__error_oom();
		goto fail;
	}
	tm->opts.path = tm->path;
	tm->limits.task_bytes = tm->opts.max_task_bytes;
	tm->limits.details_bytes = tm->opts.max_details_bytes;
	tm->limits.list_bytes = tm->opts.max_list_bytes;
	tm->limits.keys = tm->opts.max_keys;
	pthread_once(&fork_once, watch_forks);
	tm->pid = current_pid();
	so.nosync = (tm->opts.flags & TM_OPEN_NOSYNC) != 0;
	so.map_size = tm->opts.map_size;
	so.map_size_max = tm->opts.map_size_max;
	err = tm__store_open(tm->path, &so, &tm->store);
	if (!err)
		err = tm__registry_new(&tm->reg);
	if (!err)
		err = tm__runtime_start(tm);
	if (err)
		goto fail;
	tm__error_clear();
	*out = tm;
	return TM_OK;
fail:
	tm_close(tm);
	return err;
}

void tm_close(tm_manager *tm)
{
	unsigned open = TM__HANDLE_OPEN;

	/* Once: a second tm_close() of the handle does nothing. */
	if (tm == NULL || !atomic_compare_exchange_strong(&tm->state, &open,
	                                                  TM__HANDLE_CLOSED))
		return;
	tm__runtime_stop(tm);
	if (tm->store) {
		size_t n;

		tm__store_scrub(tm->store, &n); /* secrets of tasks that just ended */
	}
	tm__store_close(tm->store);
	tm__registry_free(tm->reg);
	free(tm->path);
	handle_keep(tm);
}

/* The name's figures start now: the reference of its interval trigger. */
static int touch_txn(tm__txn *txn, void *name)
{
	return tm__store_name_touch(txn, name);
}

int tm_register(tm_manager *tm, const tm_job_def *in)
{
	tm_job_def d, *def = &d;
	int err = tm__enter(tm, NULL);

	if (err)
		return err;
	if (in == NULL)
		return tm_errorf(TM_EINVAL, "tm_job_def is NULL");
	err = take(&job_def_v, in, &d);
	if (err)
		return err;
	/* Store first: a registration the store refused leaves no trace. */
	err = tm__registry_check(def);
	if (!err && tm__registry_find(tm->reg, def->name) != NULL)
		err = tm_errorf(TM_EINVAL, "task name %s is already registered", def->name);
	if (!err)
		err = tm__store_write(tm->store, touch_txn, (void *)def->name);
	if (!err)
		err = tm__registry_add(tm->reg, def);
	if (!err)
		tm__running_wake(tm); /* old tasks of the name may be waiting */
	return err;
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

/* Create the task of one trigger.  When a worker here is idle (and the
 * name has a handler here and no concurrency limit to count), the task is
 * claimed in the same commit and handed to that worker: the handler starts
 * one sync after the trigger, instead of after the trigger's commit and
 * then the worker's claim. */
static int create_one(tm_manager *tm, const tm__jobreg *job,
                      const tm__trigger_req *req, char id[TM_TASK_ID_LEN + 1],
                      bool *created)
{
	tm__new_task item = { req->context, req->secret,
	                      req->reason ? req->reason : MANUAL_REASON };
	tm__task claimed = { .details = NULL };
	tm__create_how how = { NULL, NULL, 0, 0, &claimed };
	tm_job *run = NULL;
	int64_t mono = tm__mono_us();
	int err;

	if (job->def.run && job->def.concurrency == 0 && tm__running_reserve(tm)) {
		how.token = tm__random64();
		how.lease_us = (int64_t)tm->opts.lease_ms * 1000;
	}
	err = tm__lifecycle_create_many(tm->store, &tm->limits, job, &item, 1, &how,
	                                (char (*)[TM_TASK_ID_LEN + 1])id, created);
	if (how.token && *created &&
	    tm__job_new(job, &claimed, req->secret, tm->opts.lease_ms, &tm->limits,
	                mono, &run) == TM_OK)
		tm__running_hand(tm, run);
	else if (how.token) /* not made; or out of memory: the lease expires */
		tm__running_release(tm);
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
	tm__buf out = { 0 };
	bool created = false;
	int err = tm__enter(tm, out_json);

	if (!err)
		err = check_flags(flags);
	if (err)
		return err;
	job = tm__registry_lookup(tm->reg, name, flags, &err);
	if (job == NULL)
		return err;
	err = tm__trigger_req_parse(body_json, &req);
	if (err)
		return err;
	err = validate(job, req.context);
	if (!err)
		err = create_one(tm, job, &req, id, &created);
	tm__trigger_req_free(&req);
	if (err || out_json == NULL)
		return err;
	tm__buf_add(&out, "{\"task_id\":\"", 12);
	tm__buf_add(&out, id, TM_TASK_ID_LEN);
	tm__buf_add(&out, "\"}", 2);
	return tm__buf_take(&out, out_json);
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
	int err = tm__enter(tm, out_json);

	if (!err)
		err = check_flags(flags);
	if (err)
		return err;
	job = tm__registry_lookup(tm->reg, name, flags, &err);
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
	int err = tm__enter(tm, out_json);

	if (!err)
		err = check_flags(flags);
	if (err)
		return err;
	if (tm__registry_lookup(tm->reg, name, flags, &err) == NULL)
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
	int err = tm__enter(tm, out_json);

	if (!err)
		err = check_flags(flags);
	if (!err && tm__registry_lookup(tm->reg, name, flags, &err) == NULL)
		return err;
	if (!err && !tm__id_valid(id))
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
 * handler here to stop, and the other processes to look, is ours. */
static int change(tm_manager *tm, const char *name, const char *id,
                  const tm__change *ch, char **out_json)
{
	tm__buf out = { 0 };
	bool stop_handler = false;
	int err = tm__lifecycle_change(tm->store, &tm->limits, name, id, ch, &out,
	                               &stop_handler);

	if (err) {
		tm__buf_take(&out, NULL);
		return err;
	}
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
