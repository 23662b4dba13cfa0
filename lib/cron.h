/* Five-field cron expressions and when they are next due (cron.c).
 *
 * A parsed expression is a plain value: no allocation, no state, safe to
 * share between threads and to copy. */
#ifndef TM_CRON_H
#define TM_CRON_H

#include <stdbool.h>
#include <stdint.h>

#include "tz.h"

/* The longest expression accepted, in bytes. */
#define TM__CRON_MAX 256

/* Bit n of a mask is set when value n matches. */
typedef struct tm__cron {
	uint64_t minute; /* 0-59 */
	uint32_t hour;   /* 0-23 */
	uint32_t dom;    /* day of month, 1-31 */
	uint16_t month;  /* 1-12 */
	uint8_t dow;     /* day of week, 0-6 from Sunday (7 is stored as 0) */
	/* The day fields began with '*' ("*" or "*\/n"), as Vixie cron marks
	 * them: see tm__cron_next for what that changes. */
	bool dom_star, dow_star;
} tm__cron;

/* Parse `expr` into *out.
 *
 * Five fields, minute hour day-of-month month day-of-week, separated by
 * spaces or tabs, with any leading and trailing: each a comma list of
 * `*`, `n`, `a-b`, `*\/s`, `a-b/s` and `a/s` (a up to the field's last
 * value).  Months may be named JAN-DEC and days SUN-SAT, in any case and
 * in ranges; day of week 7 is Sunday, as 0 is (but `a/s` and `*` stop at
 * 6).  A step is 1 up to the field's count of values.  Or one of the
 * macros @yearly (@annually) "0 0 1 1 *", @monthly "0 0 1 * *", @weekly
 * "0 0 * * 0", @daily (@midnight) "0 0 * * *", @hourly "0 * * * *".
 *
 * Returns 0, or TM_EINVAL with a message that quotes the expression and
 * names the field at fault by number and name (`cron "0 25 * * *": field 2
 * (hour) "25" is out of range 0-23`): a NULL, empty or over-long
 * (TM__CRON_MAX) expression, not five fields, a value out of range, a step
 * of 0 or above the field's count, a reversed range, an unknown name or
 * macro, an empty list item, anything else in a field.  *out is left
 * unchanged on failure. */
int tm__cron_parse(const char *expr, tm__cron *out);

/* The first instant strictly after after_s (UTC seconds) when `c` is due
 * in zone `tz`; -1 if none is within 8 years (30 February; 8 years is the
 * longest wait for a 29 February, 2096 to 2104), or for an after_s
 * outside the years 1-9990.
 *
 * A wall-clock minute of the zone matches when its minute, hour and month
 * are in their masks and its day matches.  The day rule is Vixie cron's:
 * when both day fields are restricted (neither dom_star nor dow_star) a
 * day matches if EITHER does ("0 0 1,15 * 5": the 1st, the 15th and every
 * Friday); otherwise both must, so the restricted one decides.
 *
 * The daylight saving time rule: every matching wall-clock minute is due
 * once.
 * - A wall time that occurs twice (the clock set back) is due at its FIRST
 *   occurrence only.
 * - A wall time that never occurs (the clock set forward) is due at the
 *   transition, the first instant after the gap: "30 2 * * *" in
 *   Europe/Berlin on 2026-03-29 is due at 01:00:00Z (03:00 CEST).  All
 *   the matching times of one gap, and the wall time right after it, are
 *   one due instant, not several.
 * The answer is the wall minute's instant: a whole UTC minute unless the
 * zone's offset has seconds (local mean time, before 1900 or so). */
int64_t tm__cron_next(const tm__cron *c, const tm__tz *tz, int64_t after_s);

#endif
