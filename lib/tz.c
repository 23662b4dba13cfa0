/* IANA time zones: TZif files (RFC 8536) and their POSIX TZ footers.
 *
 * Debian builds its zoneinfo "fat": transitions are listed up to 2037 and
 * the footer rules after that.  Upstream's default is "slim", where the
 * footer rules from the last rule change on, so that part is not optional
 * either way. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "tz.h"

/* Messages name the setting a user wrote the zone in. */
#define WHAT "cron_tz"
#define DEFAULT_TZDIR "/usr/share/zoneinfo"
#define ZONE_NAME_MAX 255
/* The biggest zone files are a few KiB; this only stops a wrong path from
 * reading something huge. */
#define TZIF_MAX (256 * 1024)
/* RFC 8536 asks offsets to lie above -25 h and below 26 h.  Files beyond
 * are refused, which bounds how far from a wall time its instants can be:
 * tm__tz_local_to_utc looks no further. */
#define UTOFF_MIN (-89999)
#define UTOFF_MAX 93599
/* Times are clamped to +-2^55 s (a billion years) so that no sum of a time,
 * an offset and a rule's hours can overflow. */
#define TIME_LIMIT ((int64_t)1 << 55)

/* A day of a POSIX TZ rule and the local time on it when the clock
 * changes: Jn (1-365, 29 February never counted), n (0-365, counted from
 * 0) or Mm.w.d (weekday d of week w of month m, week 5 the last). */
struct tz_date {
	char kind; /* 'J', 'n' or 'M' */
	int n, m, w, d;
	int32_t time; /* seconds from local midnight, -167 h to 167 h */
};

/* The footer: standard time, and maybe a daylight time each year from
 * start (a local standard time) to end (a local daylight time). */
struct tz_rule {
	int32_t std_off, dst_off; /* UTC offsets, seconds east */
	bool has_dst;
	struct tz_date start, end;
};

struct tm__tz {
	int32_t first_off; /* before the first transition: type 0's */
	bool has_rule;     /* a footer, which rules after the last one */
	struct tz_rule rule;
	size_t ntrans;
	int32_t *trans_off; /* the offset from each transition on */
	int64_t trans[];    /* the transition instants, ascending */
};

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

static int64_t clamp_time(int64_t t)
{
	return t > TIME_LIMIT ? TIME_LIMIT : t < -TIME_LIMIT ? -TIME_LIMIT : t;
}

/* ---- the footer's rule ----------------------------------------------- */

/* The day (since 1970) that d names in year y. */
static int64_t rule_day(const struct tz_date *d, int64_t y)
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
static int64_t rule_start(const struct tz_rule *r, int64_t y)
{
	return rule_day(&r->start, y) * 86400 + r->start.time - r->std_off;
}

static int64_t rule_end(const struct tz_rule *r, int64_t y)
{
	return rule_day(&r->end, y) * 86400 + r->end.time - r->dst_off;
}

static int64_t rule_year(const struct tz_rule *r, int64_t t)
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
static int32_t rule_offset(const struct tz_rule *r, int64_t t)
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
static int64_t rule_next(const struct tz_rule *r, int64_t t, int32_t *off)
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
		*off = rule_offset(r, next);
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
static bool parse_date(const char **s, struct tz_date *d)
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

static bool offset_ok(int32_t off)
{
	return off >= UTOFF_MIN && off <= UTOFF_MAX;
}

/* std offset [dst [offset] [,start[/time],end[/time]]].  POSIX offsets
 * count west, ours east.  Daylight time without dates follows the US
 * rule, as the C library does. */
static bool parse_posix_tz(const char *s, struct tz_rule *r)
{
	int32_t v;

	memset(r, 0, sizeof(*r));
	if (!parse_abbr(&s) || !parse_hms(&s, 24, &v))
		return false;
	r->std_off = -v;
	if (*s == '\0')
		return offset_ok(r->std_off);
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
	return offset_ok(r->std_off) && offset_ok(r->dst_off);
}

/* ---- TZif ------------------------------------------------------------ */

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int64_t be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* A TZif header: version and the six counts (isutcnt, isstdcnt, leapcnt,
 * timecnt, typecnt, charcnt), and the size of the block that follows it
 * with times of tsize bytes. */
struct tzif_head {
	char version;
	uint32_t isut, isstd, leap, time, type, chars;
	size_t block;
};

static const char *read_head(const unsigned char *p, size_t len, size_t tsize,
                             struct tzif_head *h)
{
	if (len < 44 || memcmp(p, "TZif", 4) != 0)
		return "no TZif header";
	h->version = (char)p[4];
	h->isut = be32(p + 20);
	h->isstd = be32(p + 24);
	h->leap = be32(p + 28);
	h->time = be32(p + 32);
	h->type = be32(p + 36);
	h->chars = be32(p + 40);
	/* Bounded by the file's size, the products below cannot overflow. */
	if (h->isut > TZIF_MAX || h->isstd > TZIF_MAX || h->leap > TZIF_MAX ||
	    h->time > TZIF_MAX || h->type > TZIF_MAX || h->chars > TZIF_MAX)
		return "counts larger than the file";
	h->block = h->time * (tsize + 1) + h->type * 6 + h->chars +
	           h->leap * (tsize + 4) + h->isstd + h->isut;
	if (h->block > len - 44)
		return "truncated";
	return NULL;
}

/* Build the zone from a data block (after its header) and its footer. */
static const char *read_block(const unsigned char *p, const struct tzif_head *h,
                              size_t tsize, const char *footer, tm__tz **out)
{
	const unsigned char *times = p, *idx = p + h->time * tsize;
	const unsigned char *types = idx + h->time;
	struct tz_rule rule;
	bool has_rule = footer != NULL && footer[0] != '\0';
	tm__tz *tz;

	if (h->type == 0 || h->type > 256)
		return "no local time types";
	if ((h->isstd != 0 && h->isstd != h->type) ||
	    (h->isut != 0 && h->isut != h->type))
		return "inconsistent counts";
	if (h->leap != 0)
		return "it counts leap seconds";
	for (uint32_t i = 0; i < h->type; i++) {
		const unsigned char *t = types + 6 * i;

		if (!offset_ok((int32_t)be32(t)) || t[4] > 1 || t[5] >= h->chars)
			return "a bad local time type";
	}
	if (has_rule && !parse_posix_tz(footer, &rule))
		return "a bad TZ string in its footer";

	tz = calloc(1, sizeof(*tz) + h->time * (sizeof(int64_t) + sizeof(int32_t)));
	if (tz == NULL)
		return NULL;
	tz->ntrans = h->time;
	tz->trans_off = (int32_t *)(tz->trans + h->time);
	tz->first_off = (int32_t)be32(types);
	tz->has_rule = has_rule;
	if (has_rule)
		tz->rule = rule;
	for (uint32_t i = 0; i < h->time; i++) {
		int64_t t = tsize == 8 ? be64(times + 8 * i)
		                       : (int64_t)(int32_t)be32(times + 4 * i);

		if (idx[i] >= h->type || (i > 0 && t <= tz->trans[i - 1])) {
			free(tz);
			return idx[i] >= h->type ? "a bad transition type"
			                         : "transitions out of order";
		}
		tz->trans[i] = t;
		tz->trans_off[i] = (int32_t)be32(types + 6 * idx[i]);
	}
	*out = tz;
	return NULL;
}

/* Parse a whole file.  Returns NULL with *out set, NULL with *out NULL
 * when out of memory, or why the file is not valid. */
static const char *parse_tzif(const unsigned char *buf, size_t len, tm__tz **out)
{
	struct tzif_head h1, h2;
	const unsigned char *p, *end;
	const char *why;
	char footer[256];
	size_t flen;

	*out = NULL;
	if ((why = read_head(buf, len, 4, &h1)) != NULL)
		return why;
	if (h1.version == '\0')
		return read_block(buf + 44, &h1, 4, NULL, out);
	if (h1.version < '2')
		return "an unknown version";
	/* Version 2 on: skip the 32-bit data for the 64-bit. */
	p = buf + 44 + h1.block;
	if ((why = read_head(p, len - (size_t)(p - buf), 8, &h2)) != NULL)
		return why;
	p += 44;
	end = p + h2.block;
	/* The footer: "\n" TZ string "\n". */
	if (end >= buf + len || *end != '\n')
		return "no footer";
	flen = 0;
	for (const unsigned char *q = end + 1; ; q++) {
		if (q >= buf + len || flen >= sizeof(footer))
			return "a bad footer";
		if (*q == '\n')
			break;
		if (*q == '\0')
			return "a bad footer";
		footer[flen++] = (char)*q;
	}
	footer[flen] = '\0';
	return read_block(p, &h2, 8, footer, out);
}

/* ---- loading --------------------------------------------------------- */

/* The name for a message: at most 64 bytes, the unprintable as '?'. */
static const char *quoted(const char *name, char buf[72])
{
	size_t n = 0;

	for (; name[n] != '\0' && n < 64; n++)
		buf[n] = name[n] >= 0x20 && name[n] < 0x7f ? name[n] : '?';
	strcpy(buf + n, name[n] ? "..." : "");
	return buf;
}

/* Only names of files below the zone directory: relative, with no empty
 * or ".." component, in the characters IANA names use. */
static const char *name_problem(const char *zone)
{
	const char *c;

	if (zone[0] == '/')
		return "an absolute path";
	if (strlen(zone) > ZONE_NAME_MAX)
		return "too long";
	if (strstr(zone, "..") != NULL)
		return "\"..\" in it";
	for (c = zone; *c; c++) {
		if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
		      (*c >= '0' && *c <= '9') || *c == '_' || *c == '+' ||
		      *c == '-' || *c == '/'))
			return "a character outside A-Z a-z 0-9 _ + - /";
		if (*c == '/' && (c[1] == '/' || c[1] == '\0'))
			return "an empty component";
	}
	return NULL;
}

static int make_utc(tm__tz **out)
{
	tm__tz *tz = calloc(1, sizeof(*tz));

	if (tz == NULL)
		return tm__error_oom();
	*out = tz;
	return TM_OK;
}

/* The whole file into *buf (free it), *len bytes. */
static int read_zone_file(const char *zone, const char *path,
                          unsigned char **buf, size_t *len)
{
	struct stat st;
	unsigned char *b;
	size_t n = 0;
	int fd, err;

	*buf = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		err = errno;
		if (err == ENOENT || err == ENOTDIR)
			return tm_errorf(TM_EINVAL, WHAT " \"%s\": no such time zone", zone);
		if (err == ENOMEM)
			return tm__error_oom();
		return tm_errorf(TM_EINVAL, WHAT " \"%s\": cannot read %s: %s", zone,
		                 path, strerror(err));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return tm_errorf(TM_EINVAL, WHAT " \"%s\": no such time zone", zone);
	}
	if (st.st_size > TZIF_MAX) {
		close(fd);
		return tm_errorf(TM_EINVAL, WHAT " \"%s\": %s is not a TZif file (too large)",
		                 zone, path);
	}
	b = malloc((size_t)st.st_size + 1);
	if (b == NULL) {
		close(fd);
		return tm__error_oom();
	}
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, b + n, (size_t)st.st_size - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = errno;
			close(fd);
			free(b);
			return tm_errorf(TM_EINVAL, WHAT " \"%s\": cannot read %s: %s",
			                 zone, path, strerror(err));
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*buf = b;
	*len = n;
	return TM_OK;
}

int tm__tz_load(const char *zone, tm__tz **out)
{
	char path[PATH_MAX], q[72];
	const char *dir, *why;
	unsigned char *buf;
	size_t len = 0;
	int err, n;

	if (out == NULL)
		return tm_errorf(TM_EINVAL, WHAT ": no place for the zone");
	*out = NULL;
	if (zone == NULL || zone[0] == '\0' || strcmp(zone, "UTC") == 0 ||
	    strcmp(zone, "Etc/UTC") == 0)
		return make_utc(out);
	if ((why = name_problem(zone)) != NULL)
		return tm_errorf(TM_EINVAL, WHAT " \"%s\": not a time zone name (%s)",
		                 quoted(zone, q), why);
	dir = getenv("TZDIR");
	if (dir == NULL || dir[0] == '\0')
		dir = DEFAULT_TZDIR;
	n = snprintf(path, sizeof(path), "%s/%s", dir, zone);
	if (n < 0 || (size_t)n >= sizeof(path))
		return tm_errorf(TM_EINVAL, WHAT " \"%s\": the path is too long", zone);
	if ((err = read_zone_file(zone, path, &buf, &len)) != TM_OK)
		return err;
	why = parse_tzif(buf, len, out);
	free(buf);
	if (why != NULL)
		return tm_errorf(TM_EINVAL, WHAT " \"%s\": %s is not a valid TZif file (%s)",
		                 zone, path, why);
	if (*out == NULL)
		return tm__error_oom();
	return TM_OK;
}

void tm__tz_free(tm__tz *tz)
{
	free(tz);
}

/* ---- lookups --------------------------------------------------------- */

/* The index of the first transition after t (ntrans if none). */
static size_t trans_after(const tm__tz *tz, int64_t t)
{
	size_t lo = 0, hi = tz->ntrans;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (tz->trans[mid] <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int32_t tm__tz_offset(const tm__tz *tz, int64_t utc_s)
{
	size_t i;

	utc_s = clamp_time(utc_s);
	if (tz->ntrans == 0)
		return tz->has_rule ? rule_offset(&tz->rule, utc_s) : tz->first_off;
	i = trans_after(tz, utc_s);
	if (i == 0)
		return tz->first_off;
	if (i == tz->ntrans && tz->has_rule && utc_s > tz->trans[i - 1])
		return rule_offset(&tz->rule, utc_s);
	return tz->trans_off[i - 1];
}

/* The first transition after t and the offset from it on; INT64_MAX if
 * there is none. */
static int64_t next_transition(const tm__tz *tz, int64_t t, int32_t *off)
{
	size_t i = trans_after(tz, t);

	if (i < tz->ntrans) {
		*off = tz->trans_off[i];
		return tz->trans[i];
	}
	return tz->has_rule ? rule_next(&tz->rule, t, off) : INT64_MAX;
}

/* Walk the spans of one offset that can hold an instant of this wall
 * time: every offset lies in [UTOFF_MIN, UTOFF_MAX], so the instants lie
 * in [local - UTOFF_MAX, local - UTOFF_MIN]. */
int tm__tz_local_to_utc(const tm__tz *tz, int64_t local_s, int64_t *first,
                        int64_t *second)
{
	int64_t from, hi, a = 0, b = 0, gap_end = 0;
	int32_t off;
	bool in_gap = false;
	int n = 0;

	local_s = clamp_time(local_s);
	from = local_s - UTOFF_MAX;
	hi = local_s - UTOFF_MIN;
	off = tm__tz_offset(tz, from);
	for (;;) {
		int32_t next_off = off;
		int64_t t = next_transition(tz, from, &next_off);
		int64_t u = local_s - off;

		/* [from, t) has the offset off. */
		if (u >= from && u < t) {
			if (n++ == 0)
				a = u;
			b = u;
		}
		if (t > hi)
			break;
		/* Forward at t: the wall times [t + off, t + next_off) never
		 * show; the first instant after them is t. */
		if (!in_gap && next_off > off && local_s >= t + off &&
		    local_s < t + next_off) {
			gap_end = t;
			in_gap = true;
		}
		from = t;
		off = next_off;
	}
	if (n == 0) {
		/* No instant and no gap cannot happen; answer the last span's
		 * instant rather than nothing. */
		a = b = in_gap ? gap_end : local_s - off;
	}
	if (first)
		*first = a;
	if (second)
		*second = b;
	return n > 2 ? 2 : n;
}
