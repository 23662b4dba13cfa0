/* Five-field cron expressions: parsing, and the next due instant in a
 * time zone. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cron.h"
#include "error.h"

/* The next due time is looked for this many years ahead: 29 February may
 * be 8 years away (2096 to 2104). */
#define HORIZON_YEARS 8
/* 0001-01-01T00:00:00Z and 9990-01-01T00:00:00Z: the calendar needs no
 * more, and the horizon stays below year 10000. */
#define AFTER_MIN INT64_C(-62135596800)
#define AFTER_MAX INT64_C(253086768000)

static const char *const month_names[] = {
	"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
	"JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
};
static const char *const day_names[] = {
	"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT",
};

/* A field: the values it accepts (min to max), where `*` and `a/s` stop
 * (last: day of week takes 7 for Sunday but counts 0-6), and the names of
 * its values from the first. */
static const struct field {
	const char *name;
	int min, max, last;
	const char *const *names;
	int first_named;
} fields[5] = {
	{ "minute", 0, 59, 59, NULL, 0 },
	{ "hour", 0, 23, 23, NULL, 0 },
	{ "day of month", 1, 31, 31, NULL, 0 },
	{ "month", 1, 12, 12, month_names, 1 },
	{ "day of week", 0, 7, 6, day_names, 0 },
};

static const struct {
	const char *name, *expr;
} macros[] = {
	{ "@yearly", "0 0 1 1 *" },
	{ "@annually", "0 0 1 1 *" },
	{ "@monthly", "0 0 1 * *" },
	{ "@weekly", "0 0 * * 0" },
	{ "@daily", "0 0 * * *" },
	{ "@midnight", "0 0 * * *" },
	{ "@hourly", "0 * * * *" },
};

/* ---- messages -------------------------------------------------------- */

/* The text of a message: unprintable bytes as '?', at most max bytes and
 * then "...". */
static const char *printable(const char *s, size_t len, size_t max,
                             char *buf, size_t size)
{
	size_t n = 0;

	for (; n < len && n < max && n + 4 < size; n++)
		buf[n] = s[n] >= 0x20 && s[n] < 0x7f ? s[n] : '?';
	strcpy(buf + n, n < len ? "..." : "");
	return buf;
}

/* What a parse is looking at, for its messages. */
struct ctx {
	const char *expr;  /* the whole expression */
	int index;         /* of the field, 0-4 */
	const char *text;  /* the field */
};

/* `cron "<expr>": field N (name) "<field>"`, then the detail: ": why",
 * or " why" when the detail is about the field as a whole. */
static int field_error(const struct ctx *x, const char *fmt, ...)
{
	char e[TM__CRON_MAX + 8], f[TM__CRON_MAX + 8], why[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return tm_errorf(TM_EINVAL, "cron \"%s\": field %d (%s) \"%s\"%s",
	                 printable(x->expr, strlen(x->expr), TM__CRON_MAX, e, sizeof(e)),
	                 x->index + 1, fields[x->index].name,
	                 printable(x->text, strlen(x->text), TM__CRON_MAX, f, sizeof(f)),
	                 why);
}

/* A value out of range: said of the field when the value is all of it. */
static int out_of_range(const struct ctx *x, const char *tok, size_t len)
{
	const struct field *f = &fields[x->index];
	char t[40];

	if (strlen(x->text) == len)
		return field_error(x, " is out of range %d-%d", f->min, f->max);
	return field_error(x, ": %s is out of range %d-%d",
	                   printable(tok, len, 32, t, sizeof(t)), f->min, f->max);
}

/* ---- parsing --------------------------------------------------------- */

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static char upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* A number or a name at *p, within the field's range. */
static int parse_value(const struct ctx *x, const char **p, int *v)
{
	const struct field *f = &fields[x->index];
	const char *s = *p, *e = s;
	char t[40];

	if (is_digit(*e)) {
		int n = 0;

		for (; is_digit(*e); e++)
			if (n < 100000)
				n = n * 10 + (*e - '0');
		if (n < f->min || n > f->max)
			return out_of_range(x, s, (size_t)(e - s));
		*v = n;
		*p = e;
		return TM_OK;
	}
	if (!is_alpha(*e)) {
		if (*e == '\0' || *e == ',')
			return field_error(x, ": a number is missing at the end");
		return field_error(x, ": unexpected \"%s\"",
		                   printable(e, strlen(e), 32, t, sizeof(t)));
	}
	while (is_alpha(*e))
		e++;
	if (f->names == NULL)
		return field_error(x, ": \"%s\" is not a number",
		                   printable(s, (size_t)(e - s), 32, t, sizeof(t)));
	if (e - s == 3) {
		for (int i = 0; i <= f->last - f->min; i++) {
			const char *name = f->names[i];

			if (upper(s[0]) == name[0] && upper(s[1]) == name[1] &&
			    upper(s[2]) == name[2]) {
				*v = f->first_named + i;
				*p = e;
				return TM_OK;
			}
		}
	}
	return field_error(x, ": unknown name \"%s\"",
	                   printable(s, (size_t)(e - s), 32, t, sizeof(t)));
}

/* One item of a list, [s, end): `*`, `n`, `a-b`, each with a `/step`. */
static int parse_item(const struct ctx *x, const char *s, const char *end,
                      uint64_t *mask)
{
	const struct field *f = &fields[x->index];
	const char *p = s;
	int lo, hi, step = 1, err;
	char t[40];

	if (s == end)
		return field_error(x, ": empty list item");
	if (*p == '*') {
		lo = f->min;
		hi = f->last;
		p++;
	} else {
		if ((err = parse_value(x, &p, &lo)) != TM_OK)
			return err;
		hi = lo;
		if (*p == '-') {
			p++;
			if ((err = parse_value(x, &p, &hi)) != TM_OK)
				return err;
			if (hi < lo)
				return field_error(x, ": range %.*s is reversed",
				                   (int)(p - s), s);
		} else if (*p == '/') {
			/* a/s: from a to the field's last value. */
			hi = lo > f->last ? lo : f->last;
		}
	}
	if (*p == '/') {
		const char *d = ++p;
		int count = f->last - f->min + 1;

		step = 0;
		for (; is_digit(*p); p++)
			if (step <= count)
				step = step * 10 + (*p - '0');
		if (p == d)
			return field_error(x, ": the step after \"/\" is missing");
		if (step == 0)
			return field_error(x, ": step 0 is not allowed (1-%d)", count);
		if (step > count)
			return field_error(x, ": step %.*s is out of range 1-%d",
			                   (int)(p - d), d, count);
	}
	if (p != end)
		return field_error(x, ": unexpected \"%s\"",
		                   printable(p, (size_t)(end - p), 32, t, sizeof(t)));
	for (int v = lo; v <= hi; v += step)
		*mask |= (uint64_t)1 << v;
	return TM_OK;
}

static int parse_field(const struct ctx *x, uint64_t *mask)
{
	const char *s = x->text;

	*mask = 0;
	for (;;) {
		const char *end = strchr(s, ',');
		int err;

		if (end == NULL)
			end = s + strlen(s);
		if ((err = parse_item(x, s, end, mask)) != TM_OK)
			return err;
		if (*end == '\0')
			return TM_OK;
		s = end + 1;
	}
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Split the five fields of expr (no macro) and parse them. */
static int parse_fields(const char *expr, tm__cron *out)
{
	char buf[TM__CRON_MAX + 1], e[TM__CRON_MAX + 8];
	char *field[5];
	uint64_t masks[5];
	int n = 0;
	tm__cron c;

	strcpy(buf, expr);
	for (char *p = buf; *p != '\0';) {
		while (is_space(*p))
			*p++ = '\0';
		if (*p == '\0')
			break;
		if (n < 5)
			field[n] = p;
		n++;
		while (*p != '\0' && !is_space(*p))
			p++;
	}
	if (n != 5)
		return tm_errorf(TM_EINVAL, "cron \"%s\": %d field%s, expected 5 "
		                 "(minute hour day-of-month month day-of-week)",
		                 printable(expr, strlen(expr), TM__CRON_MAX, e, sizeof(e)),
		                 n, n == 1 ? "" : "s");
	for (int i = 0; i < 5; i++) {
		struct ctx x = { expr, i, field[i] };
		int err = parse_field(&x, &masks[i]);

		if (err != TM_OK)
			return err;
	}
	memset(&c, 0, sizeof(c));
	c.minute = masks[0];
	c.hour = (uint32_t)masks[1];
	c.dom = (uint32_t)masks[2];
	c.month = (uint16_t)masks[3];
	/* 7 is Sunday, as 0 is. */
	c.dow = (uint8_t)((masks[4] | masks[4] >> 7) & 0x7f);
	c.dom_star = field[2][0] == '*';
	c.dow_star = field[4][0] == '*';
	*out = c;
	return TM_OK;
}

static int parse_macro(const char *expr, const char *s, tm__cron *out)
{
	char e[TM__CRON_MAX + 8], t[40];
	size_t len = 0;

	while (s[len] != '\0' && !is_space(s[len]))
		len++;
	for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++) {
		const char *rest = s + len;

		if (strlen(macros[i].name) != len ||
		    strncasecmp(macros[i].name, s, len) != 0)
			continue;
		while (is_space(*rest))
			rest++;
		if (*rest != '\0')
			return tm_errorf(TM_EINVAL, "cron \"%s\": unexpected \"%s\" after %s",
			                 printable(expr, strlen(expr), TM__CRON_MAX, e, sizeof(e)),
			                 printable(rest, strlen(rest), 32, t, sizeof(t)),
			                 macros[i].name);
		return parse_fields(macros[i].expr, out);
	}
	return tm_errorf(TM_EINVAL, "cron \"%s\": unknown macro \"%s\" (@yearly, "
	                 "@annually, @monthly, @weekly, @daily, @midnight, @hourly)",
	                 printable(expr, strlen(expr), TM__CRON_MAX, e, sizeof(e)),
	                 printable(s, len, 32, t, sizeof(t)));
}

int tm__cron_parse(const char *expr, tm__cron *out)
{
	char e[64];
	const char *s;
	size_t len;

	if (expr == NULL)
		return tm_errorf(TM_EINVAL, "cron: the expression is NULL");
	len = strnlen(expr, TM__CRON_MAX + 1);
	if (len > TM__CRON_MAX)
		return tm_errorf(TM_EINVAL, "cron \"%s\": longer than %d bytes",
		                 printable(expr, len, 32, e, sizeof(e)), TM__CRON_MAX);
	for (s = expr; is_space(*s); s++)
		;
	if (*s == '\0')
		return tm_errorf(TM_EINVAL, "cron \"%s\": the expression is empty",
		                 printable(expr, len, 32, e, sizeof(e)));
	if (*s == '@')
		return parse_macro(expr, s, out);
	return parse_fields(expr, out);
}

/* ---- the next due time ----------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The smallest value >= from, up to max, whose bit is set; -1 if none. */
static int next_bit(uint64_t mask, int from, int max)
{
	for (int v = from; v <= max; v++)
		if (mask >> v & 1)
			return v;
	return -1;
}

static bool day_matches(const tm__cron *c, int64_t days, int dom)
{
	bool by_dom = c->dom >> dom & 1;
	bool by_dow = c->dow >> tm__weekday(days) & 1;

	if (c->dom_star || c->dow_star)
		return by_dom && by_dow;
	return by_dom || by_dow;
}

/* The first matching wall time at or after *wall (a whole minute), in a
 * year up to last_year, into *wall; false if none.  A field that does not
 * match moves the fields below it to their start and the one above on. */
static bool next_wall(const tm__cron *c, int64_t *wall, int64_t last_year)
{
	int64_t days = floor_div(*wall, 86400), y;
	int secs = (int)(*wall - days * 86400);
	int mon, day, hour = secs / 3600, min = secs % 3600 / 60;

	tm__civil_from_days(days, &y, &mon, &day);
	for (;;) {
		int h, m;

		if (y > last_year)
			return false;
		if (!(c->month >> mon & 1)) {
			mon = next_bit(c->month, mon + 1, 12);
			if (mon < 0) {
				y++;
				mon = 1;
			}
			day = 1;
			hour = min = 0;
			continue;
		}
		if (day > tm__month_days(y, mon)) {
			if (++mon > 12) {
				y++;
				mon = 1;
			}
			day = 1;
			hour = min = 0;
			continue;
		}
		days = tm__days_from_civil(y, mon, day);
		if (!day_matches(c, days, day) || (h = next_bit(c->hour, hour, 23)) < 0) {
			day++;
			hour = min = 0;
			continue;
		}
		if (h != hour) {
			hour = h;
			min = 0;
		}
		if ((m = next_bit(c->minute, min, 59)) < 0) {
			if (++hour == 24) {
				day++;
				hour = 0;
			}
			min = 0;
			continue;
		}
		*wall = days * 86400 + hour * 3600 + m * 60;
		return true;
	}
}

/* Due instants grow with wall times (a repeated time counts at its first
 * instant, a skipped one at the gap's end), so the answer is the first
 * matching wall time after after_s's whose instant is later than after_s.
 * Only after the clock was set back can a later wall time have an earlier
 * instant: those few minutes are stepped over. */
int64_t tm__cron_next(const tm__cron *c, const tm__tz *tz, int64_t after_s)
{
	int64_t wall, last_year, y;
	int mon, day;

	if (after_s < AFTER_MIN || after_s > AFTER_MAX)
		return -1;
	wall = after_s + tm__tz_offset(tz, after_s);
	tm__civil_from_days(floor_div(wall, 86400), &y, &mon, &day);
	last_year = y + HORIZON_YEARS;
	wall = floor_div(wall, 60) * 60 + 60;
	for (;;) {
		int64_t due;

		if (!next_wall(c, &wall, last_year))
			return -1;
		tm__tz_local_to_utc(tz, wall, &due, NULL);
		if (due > after_s)
			return due;
		wall += 60;
	}
}
