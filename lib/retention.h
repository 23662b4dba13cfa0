/* Retention (retention.c): how many final tasks each name keeps
 * (keep_count), and for how long (keep_age_s).  doc/runtime.md,
 * "Retention", states the rule and its bound. */
#ifndef TM_RETENTION_H
#define TM_RETENTION_H

#include <stdbool.h>
#include <stdint.h>

#include "manager.h"

/* Deleted in one transaction, at most: by a write that took a name over
 * its bound, or by one step of the supervisor's pass. */
#define TM__RETAIN_BATCH 256

/* Final tasks a name may hold beyond keep_count before a write that makes
 * one more final prunes it back to keep_count: keep_count / 4, at most 64.
 * keep_count + 2 x slack <= 1.5 x keep_count: room, below 2 x keep_count,
 * for what concurrent writers commit (retention.c). */
uint64_t tm__retention_slack(uint64_t keep);

/* Install the bound by count on tm's store (its final hook): every write
 * that makes a task of a name registered in tm final also prunes that
 * name, in the same transaction, once it holds more than keep_count +
 * slack final tasks.  Call before the first write. */
void tm__retention_start(tm_manager *tm);

/* One step of the supervisor's pass over name at `now`: final tasks beyond
 * keep_count, or started more than keep_age_s ago, oldest first, at most
 * TM__RETAIN_BATCH of them in one write transaction (read first: no write
 * when there is nothing to delete).  *more: a full batch went, so more
 * may be left. */
int tm__retention_pass(tm_manager *tm, const char *name, int64_t now, bool *more);

#endif
