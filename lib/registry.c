/* The job registry: task names, their handlers and their policies. */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "id.h"
#include "registry.h"

#define KNOWN_JOB_FLAGS (TM_JOB_PUBLIC | TM_JOB_EXCLUSIVE)

struct tm__registry {
	pthread_rwlock_t lock;
	tm__jobreg **entries; /* entries never move: callers keep pointers */
	size_t n, cap;
	tm__jobreg **index;   /* open addressing by name, 2 * cap slots: a
	                       * queue scan looks a name up per task */
};

int tm__registry_new(tm__registry **out)
{
	tm__registry *r = calloc(1, sizeof(*r));

	*out = NULL;
	if (r == NULL)
		return tm__error_oom();
	pthread_rwlock_init(&r->lock, NULL);
	*out = r;
	return TM_OK;
}

void tm__registry_free(tm__registry *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++) {
		tm__tz_free(r->entries[i]->tz);
		free(r->entries[i]);
	}
	free(r->entries);
	free(r->index);
	pthread_rwlock_destroy(&r->lock);
	free(r);
}

static bool valid_name(const char *name)
{
	size_t n = 0;

	for (const char *p = name; *p; p++, n++) {
		char c = *p;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
			return false;
	}
	return n > 0 && n <= TM_NAME_MAX;
}

static bool valid_seconds(double s)
{
	return isfinite(s) && s >= 0 && s < 1e10;
}

/* The slot of name in the index: its entry, or the empty slot for it. */
static size_t slot_of(tm__jobreg *const *index, size_t cap, const char *name)
{
	size_t mask = 2 * cap - 1, i = (size_t)tm__hash64(name, strlen(name)) & mask;

	while (index[i] != NULL && strcmp(index[i]->name, name) != 0)
		i = (i + 1) & mask;
	return i;
}

static const tm__jobreg *find_locked(tm__registry *r, const char *name)
{
	return r->n ? r->index[slot_of(r->index, r->cap, name)] : NULL;
}

/* Room for one more entry: both arrays doubled when full. */
static int grow_locked(tm__registry *r)
{
	size_t cap = r->cap ? r->cap * 2 : 16;
	tm__jobreg **e, **ix;

	if (r->n < r->cap)
		return TM_OK;
	e = realloc(r->entries, cap * sizeof(*e));
	if (e == NULL)
		return tm__error_oom();
	r->entries = e;
	ix = calloc(2 * cap, sizeof(*ix));
	if (ix == NULL)
		return tm__error_oom();
	for (size_t i = 0; i < r->n; i++)
		ix[slot_of(ix, cap, e[i]->name)] = e[i];
	free(r->index);
	r->index = ix;
	r->cap = cap;
	return TM_OK;
}

/* The message of the error just set, after the task name. */
static int with_name(int err, const char *name)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "%s", tm_last_error());
	return tm_errorf(err, "%s: %s", name, msg);
}

/* Parse def's cron schedule into *c and load its zone into *tz (the
 * caller frees it).  A schedule with no due time in the 8 years from now
 * (30 February) would never fire: refused as a mistake. */
static int load_cron(const tm_job_def *def, tm__cron *c, tm__tz **tz)
{
	int err = tm__cron_parse(def->cron, c);

	*tz = NULL;
	if (err)
		return with_name(err, def->name);
	err = tm__tz_load(def->cron_tz, tz);
	if (err)
		return with_name(err, def->name);
	if (tm__cron_next(c, *tz, tm__now_us() / 1000000) < 0) {
		tm__tz_free(*tz);
		*tz = NULL;
		return tm_errorf(TM_EINVAL, "%s: cron \"%s\" is never due: no day "
		                 "matches it", def->name, def->cron);
	}
	return TM_OK;
}

/* Everything but the cron schedule's contents. */
static int check_fields(const tm_job_def *def)
{
	if (def->name == NULL || !valid_name(def->name))
		return tm_errorf(TM_EINVAL, "task name must be 1 to %d characters "
		                 "of [A-Za-z0-9_.-]", TM_NAME_MAX);
	if (def->flags & ~KNOWN_JOB_FLAGS)
		return tm_errorf(TM_EINVAL, "unknown job flags 0x%x",
		                 def->flags & ~KNOWN_JOB_FLAGS);
	if (!valid_seconds(def->timeout_s) || def->timeout_s == 0 ||
	    !valid_seconds(def->retry_backoff_s) ||
	    !valid_seconds(def->interval_s) || !valid_seconds(def->min_interval_s))
		return tm_errorf(TM_EINVAL, "durations of %s must be finite, "
		                 "non-negative and below 1e10 s (timeout_s above 0)",
		                 def->name);
	if (def->max_attempts == 0)
		return tm_errorf(TM_EINVAL, "max_attempts of %s must be at least 1",
		                 def->name);
	if (def->then != NULL && !valid_name(def->then))
		return tm_errorf(TM_EINVAL, "then of %s must be a task name: 1 to %d "
		                 "characters of [A-Za-z0-9_.-]", def->name, TM_NAME_MAX);
	if (def->then != NULL && strcmp(def->then, def->name) == 0)
		return tm_errorf(TM_EINVAL, "then of %s names %s itself: a cycle",
		                 def->name, def->name);
	if (def->cron != NULL && strlen(def->cron) > TM__CRON_MAX)
		return tm_errorf(TM_EINVAL, "cron of %s is longer than %d bytes",
		                 def->name, TM__CRON_MAX);
	if (def->cron_tz != NULL && strlen(def->cron_tz) > TM__TZ_MAX)
		return tm_errorf(TM_EINVAL, "cron_tz of %s is longer than %d bytes",
		                 def->name, TM__TZ_MAX);
	if (def->cron_tz != NULL && def->cron == NULL)
		return tm_errorf(TM_EINVAL, "cron_tz of %s is set without cron", def->name);
	if (!isfinite(def->rate_per_s) || def->rate_per_s < 0 || def->rate_per_s > 1e6)
		return tm_errorf(TM_EINVAL, "rate_per_s of %s must be finite, from 0 "
		                 "(no limit) to 1e6", def->name);
	if (def->burst != 0 && def->rate_per_s == 0)
		return tm_errorf(TM_EINVAL, "burst of %s is set without rate_per_s",
		                 def->name);
	return TM_OK;
}

int tm__registry_check(const tm_job_def *def)
{
	tm__cron c;
	tm__tz *tz;
	int err = check_fields(def);

	if (err || def->cron == NULL)
		return err;
	err = load_cron(def, &c, &tz);
	tm__tz_free(tz);
	return err;
}

/* Whether def's `then` leads back to def's name through the names
 * registered so far.  Every cycle is found by the registration that closes
 * it, so the registered names never hold one. */
static int check_cycle_locked(tm__registry *r, const tm_job_def *def)
{
	const char *next = def->then;

	for (size_t hops = 0; next != NULL && hops <= r->n; hops++) {
		const tm__jobreg *e;

		if (strcmp(next, def->name) == 0)
			return tm_errorf(TM_EINVAL, "then of %s leads back to %s: a cycle",
			                 def->name, def->name);
		e = find_locked(r, next);
		next = e ? e->def.then : NULL;
	}
	return TM_OK;
}

int tm__registry_check_cycle(tm__registry *r, const tm_job_def *def)
{
	int err;

	pthread_rwlock_rdlock(&r->lock);
	err = check_cycle_locked(r, def);
	pthread_rwlock_unlock(&r->lock);
	return err;
}

int tm__registry_add(tm__registry *r, const tm_job_def *def)
{
	tm__jobreg *e;
	int err = check_fields(def);

	if (err)
		return err;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return tm__error_oom();
	if (def->cron && (err = load_cron(def, &e->sched, &e->tz)) != TM_OK) {
		free(e);
		return err;
	}
	e->def = *def;
	strcpy(e->name, def->name);
	e->def.name = e->name;
	if (def->then)
		e->def.then = strcpy(e->then, def->then);
	if (def->cron)
		e->def.cron = strcpy(e->cron, def->cron);
	if (def->cron_tz)
		e->def.cron_tz = strcpy(e->cron_tz, def->cron_tz);
	if (def->rate_per_s > 0 && def->burst == 0)
		e->def.burst = 1;

	pthread_rwlock_wrlock(&r->lock);
	if (find_locked(r, def->name) != NULL)
		err = tm_errorf(TM_EINVAL, "task name %s is already registered",
		                def->name);
	else if ((err = check_cycle_locked(r, def)) == TM_OK)
		err = grow_locked(r);
	if (!err) {
		r->entries[r->n++] = e;
		r->index[slot_of(r->index, r->cap, e->name)] = e;
	}
	pthread_rwlock_unlock(&r->lock);
	if (err) {
		tm__tz_free(e->tz);
		free(e);
	}
	return err;
}

const tm__jobreg *tm__registry_find(tm__registry *r, const char *name)
{
	const tm__jobreg *e;

	pthread_rwlock_rdlock(&r->lock);
	e = find_locked(r, name);
	pthread_rwlock_unlock(&r->lock);
	return e;
}

int tm__registry_list(tm__registry *r, const tm__jobreg ***out, size_t *n)
{
	pthread_rwlock_rdlock(&r->lock);
	*n = r->n;
	*out = malloc((r->n ? r->n : 1) * sizeof(**out));
	if (*out != NULL && r->n > 0)
		memcpy(*out, r->entries, r->n * sizeof(**out));
	pthread_rwlock_unlock(&r->lock);
	return *out ? TM_OK : tm__error_oom();
}

const tm__jobreg *tm__registry_lookup(tm__registry *r, const char *name,
                                      unsigned flags, int *err)
{
	const tm__jobreg *e = name ? tm__registry_find(r, name) : NULL;

	/* A public call learns only that no public name matches: it cannot
	 * tell a private name from one that does not exist. */
	if (flags & TM_PUBLIC) {
		if (e == NULL || !(e->def.flags & TM_JOB_PUBLIC)) {
			*err = tm_errorf(TM_EWRONG_DATA, "no public task is named "
			                 "'%.80s'", name ? name : "(null)");
			return NULL;
		}
	} else if (e == NULL) {
		*err = tm_errorf(TM_EWRONG_DATA, "unknown task name '%.80s'",
		                 name ? name : "(null)");
		return NULL;
	}
	*err = TM_OK;
	return e;
}

int64_t tm__registry_cron_next(const tm__jobreg *e, int64_t after_us)
{
	/* Due times are whole seconds: every one up to after_us, in its
	 * second too, is behind it. */
	int64_t after_s = after_us >= 0 ? after_us / 1000000
	                                : -((-after_us + 999999) / 1000000);
	int64_t next;

	if (e->tz == NULL)
		return -1;
	next = tm__cron_next(&e->sched, e->tz, after_s);
	return next < 0 ? -1 : next * 1000000;
}
