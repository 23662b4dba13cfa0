/* The civil calendar and the POSIX TZ rules of zone files' footers
 * (tz_rule.c), beneath tz.c's zones.  Times are as in tz.h: int64_t
 * seconds, UTC or local wall clock written the same way. */
#ifndef TM_TZ_RULE_H
#define TM_TZ_RULE_H

#include <stdbool.h>
#include <stdint.h>

/* RFC 8536 asks offsets to lie above -25 h and below 26 h.  Files beyond
 * are refused, which bounds how far from a wall time its instants can be:
 * tm__tz_local_to_utc looks no further. */
#define TM__TZ_UTOFF_MIN (-89999)
#define TM__TZ_UTOFF_MAX 93599
/* Times are clamped to +-2^55 s (a billion years) so that no sum of a time,
 * an offset and a rule's hours can overflow. */
#define TM__TZ_TIME_LIMIT ((int64_t)1 << 55)

static inline int64_t tm__tz_clamp(int64_t t)
{
	return t > TM__TZ_TIME_LIMIT ? TM__TZ_TIME_LIMIT : t < -TM__TZ_TIME_LIMIT ? -TM__TZ_TIME_LIMIT : t;
}

static inline bool tm__tz_offset_ok(int32_t off)
{
	return off >= TM__TZ_UTOFF_MIN && off <= TM__TZ_UTOFF_MAX;
}

/* The proleptic Gregorian calendar, for any year that fits.  Days count
 * from 1970-01-01 (day 0, a Thursday); month 1-12, day 1-31. */
int64_t tm__days_from_civil(int64_t year, int month, int day);
void tm__civil_from_days(int64_t days, int64_t *year, int *month, int *day);
/* Day of the week of a day count, 0 (Sunday) to 6 (Saturday). */
int tm__weekday(int64_t days);
/* 28-31. */
int tm__month_days(int64_t year, int month);

/* A day of a POSIX TZ rule and the local time on it when the clock
 * changes: Jn (1-365, 29 February never counted), n (0-365, counted from
 * 0) or Mm.w.d (weekday d of week w of month m, week 5 the last). */
struct tm__tz_date {
	char kind; /* 'J', 'n' or 'M' */
	int n, m, w, d;
	int32_t time; /* seconds from local midnight, -167 h to 167 h */
};

/* The footer: standard time, and maybe a daylight time each year from
 * start (a local standard time) to end (a local daylight time). */
struct tm__tz_rule {
	int32_t std_off, dst_off; /* UTC offsets, seconds east */
	bool has_dst;
	struct tm__tz_date start, end;
};

/* Parse a POSIX TZ string (a footer) into *r: false when it is not one,
 * or names an offset beyond the bounds above. */
bool tm__tz_rule_parse(const char *s, struct tm__tz_rule *r);
/* r's UTC offset at utc_s, seconds east. */
int32_t tm__tz_rule_offset(const struct tm__tz_rule *r, int64_t utc_s);
/* r's first change after utc_s, and the offset from it on (*off);
 * INT64_MAX if r never changes. */
int64_t tm__tz_rule_next(const struct tm__tz_rule *r, int64_t utc_s, int32_t *off);

#endif
