/* The civil calendar, and the POSIX TZ rules that zone files' footers
 * give for the years after their last transition (tz_rule.h). */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "tz_rule.h"

/* ---- the calendar ---------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool is_leap(int64_t y)
{
	return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

/* Days are counted in years that start on 1 March, so that a leap day is
 * the last of its year, and in cycles of 400 years (146097 days); 719468
 * is the number of days from 0000-03-01 to 1970-01-01. */
int64_t tm__days_from_civil(int64_t year, int month, int day)
{
	int64_t y = year - (month <= 2);
	int64_t cycle = floor_div(y, 400);
	int64_t yoc = y - cycle * 400;       /* 0-399 */
	int64_t mar = (month + 9) % 12;      /* March 0 ... February 11 */
	int64_t doy = (153 * mar + 2) / 5 + day - 1;
	int64_t doc = yoc * 365 + yoc / 4 - yoc / 100 + doy;

	return cycle * 146097 + doc - 719468;
}

void tm__civil_from_days(int64_t days, int64_t *year, int *month, int *day)
{
	int64_t z = days + 719468;
	int64_t cycle = floor_div(z, 146097);
	int64_t doc = z - cycle * 146097;    /* 0-146096 */
	/* The year of the cycle, the leap days taken out: a day of the
	 * 146097 is one of 365 in every year but the 4th, 100th, 400th. */
	int64_t yoc = (doc - doc / 1460 + doc / 36524 - doc / 146096) / 365;
	int64_t doy = doc - (365 * yoc + yoc / 4 - yoc / 100);
	int64_t mar = (5 * doy + 2) / 153;

	*day = (int)(doy - (153 * mar + 2) / 5 + 1);
	*month = (int)(mar < 10 ? mar + 3 : mar - 9);
	*year = yoc + cycle * 400 + (*month <= 2);
}

int tm__weekday(int64_t days)
{
	return (int)(days + 4 - floor_div(days + 4, 7) * 7);
}

int tm__month_days(int64_t year, int month)
{
	static const unsigned char len[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31,
	};

	if (month == 2 && is_leap(year))
		return 29;
	return len[month - 1];
}

/* ---- the footer's rule ----------------------------------------------- */

/* The day (since 1970) that d names in year y. */
static int64_t rule_day(const struct tm__tz_date *d, int64_t y)
{
	int64_t first, day;

	switch (d->kind) {
	case 'J':
		return tm__days_from_civil(y, 1, 1) + d->n - 1 +
		       (is_leap(y) && d->n >= 60);
	case 'n':
		return tm__days_from_civil(y, 1, 1) + d->n;
	default:
		first = tm__days_from_civil(y, d->m, 1);
		day = first + (d->d - tm__weekday(first) + 7) % 7 + 7 * (d->w - 1);
		while (day >= first + tm__month_days(y, d->m))
			day -= 7; /* week 5: the last */
		return day;
	}
}

/* The instants year y's daylight time starts and ends at. */
static int64_t rule_start(const struct tm__tz_rule *r, int64_t y)
{
	return rule_day(&r->start, y) * 86400 + r->start.time - r->std_off;
}

static int64_t rule_end(const struct tm__tz_rule *r, int64_t y)
{
	return rule_day(&r->end, y) * 86400 + r->end.time - r->dst_off;
}

static int64_t rule_year(const struct tm__tz_rule *r, int64_t t)
{
	int64_t y;
	int m, d;

	tm__civil_from_days(floor_div(t + r->std_off, 86400), &y, &m, &d);
	return y;
}

/* The last change at or before t decides.  A rule's hours may carry a
 * change a week into the next year, so the two years before count too;
 * and where one year's end is the next one's start (daylight time all
 * year, "EST5EDT4,0/0,J365/25"), the later year's change wins. */
int32_t tm__tz_rule_offset(const struct tm__tz_rule *r, int64_t t)
{
	int64_t y, best = INT64_MIN;
	bool dst = false;

	if (!r->has_dst)
		return r->std_off;
	y = rule_year(r, t);
	for (int64_t k = y - 2; k <= y + 1; k++) {
		int64_t s = rule_start(r, k), e = rule_end(r, k);

		if (s <= t && s >= best) {
			best = s;
			dst = true;
		}
		if (e <= t && e >= best) {
			best = e;
			dst = false;
		}
	}
	return dst ? r->dst_off : r->std_off;
}

/* The first change after t, and the offset from it on; INT64_MAX if the
 * rule never changes. */
int64_t tm__tz_rule_next(const struct tm__tz_rule *r, int64_t t, int32_t *off)
{
	int64_t y, next = INT64_MAX;

	if (!r->has_dst)
		return INT64_MAX;
	y = rule_year(r, t);
	for (int64_t k = y - 1; k <= y + 2; k++) {
		int64_t s = rule_start(r, k), e = rule_end(r, k);

		if (s > t && s < next)
			next = s;
		if (e > t && e < next)
			next = e;
	}
	if (next != INT64_MAX)
		*off = tm__tz_rule_offset(r, next);
	return next;
}

/* ---- POSIX TZ strings ------------------------------------------------ */

/* A zone abbreviation: three or more letters, or <...> of letters, digits,
 * '+' and '-'. */
static bool parse_abbr(const char **s)
{
	const char *p = *s;

	if (*p == '<') {
		const char *q = ++p;

		while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		       (*p >= '0' && *p <= '9') || *p == '+' || *p == '-')
			p++;
		if (*p != '>' || p == q)
			return false;
		*s = p + 1;
		return true;
	}
	while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
		p++;
	if (p - *s < 3)
		return false;
	*s = p;
	return true;
}

/* [+-]h[:mm[:ss]] with hours up to max_h, in seconds. */
static bool parse_hms(const char **s, int max_h, int32_t *out)
{
	const char *p = *s;
	int sign = 1, part[3] = { 0, 0, 0 }, n = 0;

	if (*p == '+' || *p == '-')
		sign = *p++ == '-' ? -1 : 1;
	for (;;) {
		int digits = 0;

		while (*p >= '0' && *p <= '9' && digits < 3) {
			part[n] = part[n] * 10 + (*p++ - '0');
			digits++;
		}
		if (digits == 0 || (n > 0 && (digits > 2 || part[n] > 59)))
			return false;
		if (++n == 3 || *p != ':')
			break;
		p++;
	}
	if (part[0] > max_h)
		return false;
	*out = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
	*s = p;
	return true;
}

static bool parse_number(const char **s, int lo, int hi, int *out)
{
	const char *p = *s;
	int v = 0;

	if (*p < '0' || *p > '9')
		return false;
	while (*p >= '0' && *p <= '9' && v <= hi)
		v = v * 10 + (*p++ - '0');
	if (v < lo || v > hi)
		return false;
	*out = v;
	*s = p;
	return true;
}

/* ",date[/time]": the time is local, 02:00 unless given. */
static bool parse_date(const char **s, struct tm__tz_date *d)
{
	const char *p = *s;

	if (*p++ != ',')
		return false;
	memset(d, 0, sizeof(*d));
	if (*p == 'J') {
		p++;
		d->kind = 'J';
		if (!parse_number(&p, 1, 365, &d->n))
			return false;
	} else if (*p == 'M') {
		p++;
		d->kind = 'M';
		if (!parse_number(&p, 1, 12, &d->m) || *p++ != '.' ||
		    !parse_number(&p, 1, 5, &d->w) || *p++ != '.' ||
		    !parse_number(&p, 0, 6, &d->d))
			return false;
	} else {
		d->kind = 'n';
		if (!parse_number(&p, 0, 365, &d->n))
			return false;
	}
	d->time = 7200;
	/* RFC 8536 widens POSIX's 0-24 hours to -167..167. */
	if (*p == '/') {
		p++;
		if (!parse_hms(&p, 167, &d->time))
			return false;
	}
	*s = p;
	return true;
}

/* std offset [dst [offset] [,start[/time],end[/time]]].  POSIX offsets
 * count west, ours east.  Daylight time without dates follows the US
 * rule, as the C library does. */
bool tm__tz_rule_parse(const char *s, struct tm__tz_rule *r)
{
	int32_t v;

	memset(r, 0, sizeof(*r));
	if (!parse_abbr(&s) || !parse_hms(&s, 24, &v))
		return false;
	r->std_off = -v;
	if (*s == '\0')
		return tm__tz_offset_ok(r->std_off);
	if (!parse_abbr(&s))
		return false;
	r->has_dst = true;
	r->dst_off = r->std_off + 3600;
	if (*s != ',' && *s != '\0') {
		if (!parse_hms(&s, 24, &v))
			return false;
		r->dst_off = -v;
	}
	if (*s == '\0')
		s = ",M3.2.0,M11.1.0";
	if (!parse_date(&s, &r->start) || !parse_date(&s, &r->end) || *s != '\0')
		return false;
	return tm__tz_offset_ok(r->std_off) && tm__tz_offset_ok(r->dst_off);
}
