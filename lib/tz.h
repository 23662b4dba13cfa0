/* IANA time zones read from TZif files (tz.c); the civil calendar beneath
 * them is tz_rule.h's, which this header brings along.
 *
 * A loaded zone is immutable: any number of threads may use one at once,
 * and nothing here keeps state outside the tm__tz it returns (no TZ
 * environment, no tzset(), no cache).
 *
 * Times are int64_t seconds.  "UTC" ones count from 1970-01-01T00:00:00Z
 * without leap seconds (time_t).  "Local" ones are the wall clock of the
 * zone written the same way, as if it were UTC: the local time
 * 2026-03-29 02:30 is tm__days_from_civil(2026, 3, 29) * 86400 + 9000. */
#ifndef TM_TZ_H
#define TM_TZ_H

#include <stdint.h>

#include "tz_rule.h"

typedef struct tm__tz tm__tz;

/* Load the zone named `zone` into *out.  NULL, "", "UTC" and "Etc/UTC"
 * are UTC and read no file.  Any other name is a file under $TZDIR, or
 * /usr/share/zoneinfo when TZDIR is unset or empty, in TZif format
 * (RFC 8536; from version 2 its 64-bit data and the POSIX TZ footer that
 * rules after the last transition).
 *
 * Returns 0; TM_EINVAL, with a message that quotes the name, for a name
 * that is absolute, has an empty component or "..", or a character outside
 * [A-Za-z0-9_+-/], for a zone with no file ("no such time zone"), for a
 * file that cannot be read or is not valid TZif, and for one that counts
 * leap seconds (the right/ zones: their clock is not time_t's);
 * TM_ENOMEM.  *out is NULL on failure. */
int tm__tz_load(const char *zone, tm__tz **out);
/* Free a zone; NULL is a no-op. */
void tm__tz_free(tm__tz *tz);

/* The zone's UTC offset at utc_s, in seconds east of Greenwich (3600 for
 * CET, -14400 for EDT).  Before the first transition the file's first
 * type applies (RFC 8536), after the last its footer, and after the last
 * of a file without a footer the last type. */
int32_t tm__tz_offset(const tm__tz *tz, int64_t utc_s);

/* The UTC instants whose wall clock reads local_s.  Returns how many there
 * are:
 * - 1: *first = *second = the instant;
 * - 2, the time repeats where the clock was set back: *first is the
 *   earlier instant (before the transition), *second the later;
 * - 0, the time is skipped where the clock was set forward: *first =
 *   *second = the transition, the first instant after the gap (02:30 on
 *   the day Berlin moves from 02:00 CET to 03:00 CEST gives 01:00:00Z).
 * A zone whose clock passed one wall time more than twice (none since the
 * 19th century) answers 2 with the first and last instant.  first and
 * second may be NULL. */
int tm__tz_local_to_utc(const tm__tz *tz, int64_t local_s, int64_t *first,
                        int64_t *second);

#endif
