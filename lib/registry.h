/* Registered task names, their handlers and policies (registry.c). */
#ifndef TM_REGISTRY_H
#define TM_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "cron.h"
#include "taskmgr.h"

#define TM__TZ_MAX 127    /* bytes of a time zone's name */

typedef struct tm__jobreg {
	tm_job_def def;          /* the current version; its strings point at
	                          * the copies below (NULL stays NULL) */
	char name[TM_NAME_MAX + 1];
	char then[TM_NAME_MAX + 1];
	char cron[TM__CRON_MAX + 1];
	char cron_tz[TM__TZ_MAX + 1];
	_Atomic int64_t run_us;  /* moving average of run times (worker.c) */
	/* A rate limit's bucket holds no whole token before this time (the
	 * monotonic clock; 0: not known): claims pass the name until then
	 * without asking the store (worker.c). */
	_Atomic int64_t rate_due_us;
	/* A cron schedule (def.cron set): the expression parsed and its zone
	 * loaded at registration, and the due instant the supervisor expects
	 * next (store clock, us; 0: not known yet), which only tells it when
	 * to look: the decision is the store's (supervisor.c). */
	tm__cron sched;
	tm__tz *tz;              /* NULL without a schedule */
	_Atomic int64_t cron_due_us;
} tm__jobreg;

typedef struct tm__registry tm__registry;

int tm__registry_new(tm__registry **out);
void tm__registry_free(tm__registry *r);
/* Check a definition of the current version (TM_EINVAL with a message).
 * A cron schedule is parsed and its zone loaded: the message is
 * tm__cron_parse's or tm__tz_load's, after the name ("nightly: cron
 * \"0 25 * * *\": field 2 (hour) ..."); a schedule never due (30
 * February) is refused too. */
int tm__registry_check(const tm_job_def *def);
/* TM_EINVAL when def's `then` chain, through the names registered, comes
 * back to def's name. */
int tm__registry_check_cycle(tm__registry *r, const tm_job_def *def);
/* Add a checked definition; TM_EINVAL if the name is taken or its `then`
 * closes a cycle. */
int tm__registry_add(tm__registry *r, const tm_job_def *def);
/* Entries are never removed or moved: the pointer stays valid until free. */
const tm__jobreg *tm__registry_find(tm__registry *r, const char *name);
/* Copy the entry pointers out (for the runtime's scans).  *out malloc'd. */
int tm__registry_list(tm__registry *r, const tm__jobreg ***out, size_t *n);
/* Look up a name for a call: NULL and TM_EWRONG_DATA (message set) when it
 * is not registered, or not public while `flags` has TM_PUBLIC. */
const tm__jobreg *tm__registry_lookup(tm__registry *r, const char *name,
                                      unsigned flags, int *err);
/* The first due instant of e's schedule after after_us (store clock, us),
 * in us; -1 when it has none (or none within 8 years). */
int64_t tm__registry_cron_next(const tm__jobreg *e, int64_t after_us);

#endif
