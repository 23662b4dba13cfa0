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
#include "tz_rule.h"

/* Messages name the setting a user wrote the zone in. */
#define WHAT "cron_tz"
#define DEFAULT_TZDIR "/usr/share/zoneinfo"
#define ZONE_NAME_MAX 255
/* The biggest zone files are a few KiB; this only stops a wrong path from
 * reading something huge. */
#define TZIF_MAX (256 * 1024)

struct tm__tz {
	int32_t first_off; /* before the first transition: type 0's */
	bool has_rule;     /* a footer, which rules after the last one */
	struct tm__tz_rule rule;
	size_t ntrans;
	int32_t *trans_off; /* the offset from each transition on */
	int64_t trans[];    /* the transition instants, ascending */
};

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
	struct tm__tz_rule rule;
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

		if (!tm__tz_offset_ok((int32_t)be32(t)) || t[4] > 1 || t[5] >= h->chars)
			return "a bad local time type";
	}
	if (has_rule && !tm__tz_rule_parse(footer, &rule))
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

	utc_s = tm__tz_clamp(utc_s);
	if (tz->ntrans == 0)
		return tz->has_rule ? tm__tz_rule_offset(&tz->rule, utc_s) : tz->first_off;
	i = trans_after(tz, utc_s);
	if (i == 0)
		return tz->first_off;
	if (i == tz->ntrans && tz->has_rule && utc_s > tz->trans[i - 1])
		return tm__tz_rule_offset(&tz->rule, utc_s);
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
	return tz->has_rule ? tm__tz_rule_next(&tz->rule, t, off) : INT64_MAX;
}

/* Walk the spans of one offset that can hold an instant of this wall
 * time: every offset lies in [TM__TZ_UTOFF_MIN, TM__TZ_UTOFF_MAX], so the instants lie
 * in [local - TM__TZ_UTOFF_MAX, local - TM__TZ_UTOFF_MIN]. */
int tm__tz_local_to_utc(const tm__tz *tz, int64_t local_s, int64_t *first,
                        int64_t *second)
{
	int64_t from, hi, a = 0, b = 0, gap_end = 0;
	int32_t off;
	bool in_gap = false;
	int n = 0;

	local_s = tm__tz_clamp(local_s);
	from = local_s - TM__TZ_UTOFF_MAX;
	hi = local_s - TM__TZ_UTOFF_MIN;
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
