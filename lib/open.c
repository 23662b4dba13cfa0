/* The manager: the versioned public structs, handles (a closed one stays
 * readable and is refused), tm_open, tm_close, tm_register, and the entry
 * every call on a manager makes (tm__enter). */
#include <math.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "open.h"
#include "error.h"
#include "json.h"
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
	[2] = END_OF(tm_job_def, burst),
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
		err = tm__metrics_new(&tm->metrics);
	if (!err)
		tm__store_on_events(tm->store, tm__metrics_events, tm->metrics);
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
	tm__metrics_free(tm->metrics);
	free(tm->path);
	handle_keep(tm);
}

/* The name's figures start now: the reference of its interval trigger.
 * So does its cron schedule, the first time it has one in this store: no
 * due time before it fires (a registration again keeps what was
 * covered, so a restart fires at most the one it missed). */
static int touch_txn(tm__txn *txn, void *p)
{
	const tm_job_def *def = p;
	int err = tm__store_name_touch(txn, def->name);

	if (!err && def->cron)
		err = tm__store_cron_set(txn, def->name, tm__txn_now(txn), true);
	return err;
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
		err = tm__registry_check_cycle(tm->reg, def);
	if (!err)
		err = tm__store_write(tm->store, touch_txn, def);
	if (!err)
		err = tm__registry_add(tm->reg, def);
	if (!err)
		tm__running_wake(tm); /* old tasks of the name may be waiting */
	return err;
}
