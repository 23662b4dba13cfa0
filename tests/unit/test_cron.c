/* Cron expressions (lib/cron.c) and the time zones they run in (lib/tz.c,
 * lib/tz_rule.c): parsing, every refusal and its message, due times in UTC
 * and across daylight saving time, zones read from TZif files and their
 * footers, and
 * a randomized comparison with a brute-force reference on the C library's
 * localtime_r.  Linked against the internal static library.  The zones
 * are the system's (Debian's tzdata); the tests that point TZDIR or TZ
 * elsewhere put them back, since under valgrind all run in one process. */
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "cron.h"
#include "tz.h"

/* ---- helpers --------------------------------------------------------- */

/* An instant given in UTC (timegm: the test's own calendar, not the
 * library's). */
static int64_t utc(int y, int mo, int d, int h, int mi)
{
	struct tm tm = { 0 };

	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	return (int64_t)timegm(&tm);
}

/* A wall time of a zone, written as tz.h counts local times. */
static int64_t wall(int y, int mo, int d, int h, int mi)
{
	return utc(y, mo, d, h, mi);
}

static tm__tz *zone(const char *name)
{
	tm__tz *tz = NULL;
	int err = tm__tz_load(name, &tz);

	ck_assert_msg(err == TM_OK, "tm__tz_load(%s): %d %s", name ? name : "NULL",
	              err, tm_last_error());
	ck_assert_ptr_nonnull(tz);
	return tz;
}

static tm__cron cron(const char *expr)
{
	tm__cron c;
	int err = tm__cron_parse(expr, &c);

	ck_assert_msg(err == TM_OK, "parse \"%s\": %d %s", expr, err, tm_last_error());
	return c;
}

static char *iso(int64_t t, char buf[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == -1)
		return strcpy(buf, "-1");
	gmtime_r(&tt, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

/* next(expr, zone, after) is want. */
static void assert_next(const char *expr, const tm__tz *tz, int64_t after,
                        int64_t want)
{
	tm__cron c = cron(expr);
	int64_t got = tm__cron_next(&c, tz, after);
	char a[32], g[32], w[32];

	ck_assert_msg(got == want, "\"%s\" after %s: %s, expected %s", expr,
	              iso(after, a), iso(got, g), iso(want, w));
}

/* The due times of expr from after on, one by one, are want[0..n-1]. */
static void assert_sequence(const char *expr, const tm__tz *tz, int64_t after,
                            const int64_t *want, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		assert_next(expr, tz, after, want[i]);
		after = want[i];
	}
}

/* Bits lo..hi by step. */
static uint64_t bits(int lo, int hi, int step)
{
	uint64_t m = 0;

	for (int v = lo; v <= hi; v += step)
		m |= (uint64_t)1 << v;
	return m;
}

static void assert_refused(const char *expr, const char *want)
{
	tm__cron c;

	memset(&c, 0x5a, sizeof(c));
	ck_assert_int_eq(tm__cron_parse(expr, &c), TM_EINVAL);
	ck_assert_msg(strstr(tm_last_error(), want) != NULL,
	              "\"%s\": message \"%s\" lacks \"%s\"", expr ? expr : "NULL",
	              tm_last_error(), want);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_tree(char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

static void copy_file(const char *from, const char *to, size_t max)
{
	static unsigned char buf[1 << 16];
	FILE *f = fopen(from, "rb");
	size_t n;

	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	write_file(to, buf, n < max ? n : max);
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* A TZif version 2 file with no transitions, one type of offset utoff, and
 * the footer: the footer then rules at every instant.  leap: one leap
 * second record (right/ zones). */
static void write_tzif(const char *path, int32_t utoff, const char *footer, int leap)
{
	unsigned char buf[512];
	size_t n = 0;

	for (int block = 0; block < 2; block++) {
		size_t tsize = block == 0 ? 4 : 8;

		memset(buf + n, 0, 44);
		memcpy(buf + n, "TZif2", 5);
		put32(buf + n + 28, (uint32_t)leap);
		put32(buf + n + 36, 1); /* typecnt */
		put32(buf + n + 40, 4); /* charcnt */
		n += 44;
		put32(buf + n, (uint32_t)utoff);
		buf[n + 4] = 0;
		buf[n + 5] = 0;
		memcpy(buf + n + 6, "ZZZ", 4);
		n += 10;
		if (leap) {
			memset(buf + n, 0, tsize + 4);
			buf[n + tsize - 1] = 1;
			buf[n + tsize + 3] = 1;
			n += tsize + 4;
		}
	}
	n += (size_t)snprintf((char *)buf + n, sizeof(buf) - n, "\n%s\n", footer);
	write_file(path, buf, n);
}

/* Point TZDIR at dir, or back to unset. */
static void set_tzdir(const char *dir)
{
	if (dir)
		ck_assert_int_eq(setenv("TZDIR", dir, 1), 0);
	else
		ck_assert_int_eq(unsetenv("TZDIR"), 0);
}

/* The C library's zone, for the references. */
static void set_tz(const char *tz)
{
	if (tz)
		setenv("TZ", tz, 1);
	else
		unsetenv("TZ");
	tzset();
}

/* Called millions of times: a passing ck_assert costs a write to Check's
 * pipe, so only failures reach Check here and in the reference. */
static int32_t libc_offset(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL)
		ck_abort_msg("localtime_r(%lld) failed", (long long)t);
	return (int32_t)tm.tm_gmtoff;
}

/* A small fixed-seed generator, the same on every libc. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static int rnd_in(int lo, int hi)
{
	return lo + (int)(rnd() % (uint64_t)(hi - lo + 1));
}

/* ---- parsing --------------------------------------------------------- */

START_TEST(parse_accepts_every_syntax_form)
{
	tm__cron c;

	c = cron("* * * * *");
	ck_assert(c.minute == bits(0, 59, 1) && c.hour == bits(0, 23, 1));
	ck_assert(c.dom == bits(1, 31, 1) && c.month == bits(1, 12, 1));
	ck_assert(c.dow == bits(0, 6, 1) && c.dom_star && c.dow_star);

	c = cron("5 4 3 2 1");
	ck_assert(c.minute == bits(5, 5, 1) && c.hour == bits(4, 4, 1));
	ck_assert(c.dom == bits(3, 3, 1) && c.month == bits(2, 2, 1));
	ck_assert(c.dow == bits(1, 1, 1) && !c.dom_star && !c.dow_star);

	c = cron("10-20 0-23 1-31 1-12 0-6");
	ck_assert(c.minute == bits(10, 20, 1) && c.hour == bits(0, 23, 1));
	ck_assert(c.dom == bits(1, 31, 1) && c.dow == bits(0, 6, 1));
	ck_assert(!c.dom_star && !c.dow_star);

	c = cron("1,2,59 0,12 1,15,31 6,12 0,3");
	ck_assert(c.minute == (bits(1, 2, 1) | bits(59, 59, 1)));
	ck_assert(c.hour == (bits(0, 0, 1) | bits(12, 12, 1)));
	ck_assert(c.dom == (bits(1, 1, 1) | bits(15, 15, 1) | bits(31, 31, 1)));
	ck_assert(c.month == (bits(6, 6, 1) | bits(12, 12, 1)));
	ck_assert(c.dow == (bits(0, 0, 1) | bits(3, 3, 1)));

	c = cron("*/15 */5 */10 */4 */2");
	ck_assert(c.minute == bits(0, 59, 15) && c.hour == bits(0, 23, 5));
	ck_assert(c.dom == bits(1, 31, 10) && c.month == bits(1, 12, 4));
	ck_assert(c.dow == bits(0, 6, 2));
	/* Vixie cron: a day field that begins with '*' is a star. */
	ck_assert(c.dom_star && c.dow_star);

	c = cron("10-40/7 1-23/2 5-25/5 2-11/3 1-5/2");
	ck_assert(c.minute == bits(10, 40, 7) && c.hour == bits(1, 23, 2));
	ck_assert(c.dom == bits(5, 25, 5) && c.month == bits(2, 11, 3));
	ck_assert(c.dow == bits(1, 5, 2));

	/* a/n: from a to the field's last value. */
	c = cron("7/20 3/6 2/10 5/3 1/2");
	ck_assert(c.minute == bits(7, 59, 20) && c.hour == bits(3, 23, 6));
	ck_assert(c.dom == bits(2, 31, 10) && c.month == bits(5, 12, 3));
	ck_assert(c.dow == bits(1, 6, 2));

	/* Names, in any case, alone, in lists and in ranges. */
	c = cron("0 0 * JAN,jun,Dec Sun,WED");
	ck_assert(c.month == (bits(1, 1, 1) | bits(6, 6, 1) | bits(12, 12, 1)));
	ck_assert(c.dow == (bits(0, 0, 1) | bits(3, 3, 1)));
	c = cron("0 0 * mar-MAY mon-fri");
	ck_assert(c.month == bits(3, 5, 1) && c.dow == bits(1, 5, 1));
	c = cron("0 0 * feb-nov/3 SUN-SAT/3");
	ck_assert(c.month == bits(2, 11, 3) && c.dow == bits(0, 6, 3));
	c = cron("0 0 * 1-MAR MON-5");
	ck_assert(c.month == bits(1, 3, 1) && c.dow == bits(1, 5, 1));

	/* 7 is Sunday, alone and closing a range. */
	ck_assert(cron("0 0 * * 7").dow == bits(0, 0, 1));
	ck_assert(cron("0 0 * * 5-7").dow == (bits(5, 6, 1) | bits(0, 0, 1)));
	ck_assert(cron("0 0 * * 0-7").dow == bits(0, 6, 1));

	/* Leading zeros; spaces and tabs between, before and after. */
	c = cron(" \t 05 \t\t 007 01  1\t0 \t ");
	ck_assert(c.minute == bits(5, 5, 1) && c.hour == bits(7, 7, 1));
	ck_assert(c.dom == bits(1, 1, 1) && c.month == bits(1, 1, 1));
	ck_assert(c.dow == bits(0, 0, 1));

	/* Steps up to the field's count of values. */
	ck_assert(cron("*/60 */24 */31 */12 */7").minute == bits(0, 0, 1));
}
END_TEST

START_TEST(parse_expands_the_macros)
{
	static const struct {
		const char *macro, *same;
	} m[] = {
		{ "@yearly", "0 0 1 1 *" },
		{ "@annually", "0 0 1 1 *" },
		{ "@monthly", "0 0 1 * *" },
		{ "@weekly", "0 0 * * 0" },
		{ "@daily", "0 0 * * *" },
		{ "@midnight", "0 0 * * *" },
		{ "@hourly", "0 * * * *" },
		{ "  @Daily\t", "0 0 * * *" },
		{ "@HOURLY", "0 * * * *" },
	};

	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		tm__cron a = cron(m[i].macro), b = cron(m[i].same);

		ck_assert_msg(memcmp(&a, &b, sizeof(a)) == 0, "%s", m[i].macro);
	}
}
END_TEST

START_TEST(parse_refuses_with_a_message_naming_the_field)
{
	static const struct {
		const char *expr, *msg;
	} bad[] = {
		/* out of range, whole field and inside a list or range */
		{ "0 25 * * *", "cron \"0 25 * * *\": field 2 (hour) \"25\" is out of range 0-23" },
		{ "60 * * * *", "field 1 (minute) \"60\" is out of range 0-59" },
		{ "0 0 0 * *", "field 3 (day of month) \"0\" is out of range 1-31" },
		{ "0 0 32 * *", "field 3 (day of month) \"32\" is out of range 1-31" },
		{ "0 0 * 13 *", "field 4 (month) \"13\" is out of range 1-12" },
		{ "0 0 * 0 *", "field 4 (month) \"0\" is out of range 1-12" },
		{ "0 0 * * 8", "field 5 (day of week) \"8\" is out of range 0-7" },
		{ "0 1,25 * * *", "field 2 (hour) \"1,25\": 25 is out of range 0-23" },
		{ "0 20-24 * * *", "field 2 (hour) \"20-24\": 24 is out of range 0-23" },
		{ "99999999999999999999 * * * *", "field 1 (minute) \"99999999999999999999\" is out of range 0-59" },
		/* steps */
		{ "*/0 * * * *", "field 1 (minute) \"*/0\": step 0 is not allowed (1-60)" },
		{ "* 1-5/0 * * *", "field 2 (hour) \"1-5/0\": step 0" },
		{ "* * * * */8", "field 5 (day of week) \"*/8\": step 8 is out of range 1-7" },
		{ "*/61 * * * *", "field 1 (minute) \"*/61\": step 61 is out of range 1-60" },
		{ "*/ * * * *", "field 1 (minute) \"*/\": the step after \"/\" is missing" },
		{ "* * */x * *", "field 3 (day of month) \"*/x\": the step after \"/\" is missing" },
		/* reversed ranges */
		{ "0 5-2 * * *", "field 2 (hour) \"5-2\": range 5-2 is reversed" },
		{ "0 0 * DEC-JAN *", "field 4 (month) \"DEC-JAN\": range DEC-JAN is reversed" },
		{ "0 0 * * SAT-SUN", "field 5 (day of week) \"SAT-SUN\": range SAT-SUN is reversed" },
		/* names */
		{ "0 0 * FOO *", "field 4 (month) \"FOO\": unknown name \"FOO\"" },
		{ "0 0 * * MONDAY", "field 5 (day of week) \"MONDAY\": unknown name \"MONDAY\"" },
		{ "0 0 * JANUARY *", "field 4 (month) \"JANUARY\": unknown name \"JANUARY\"" },
		{ "0 0 * * MON-XYZ", "field 5 (day of week) \"MON-XYZ\": unknown name \"XYZ\"" },
		{ "0 MON * * *", "field 2 (hour) \"MON\": \"MON\" is not a number" },
		{ "0 0 JAN * *", "field 3 (day of month) \"JAN\": \"JAN\" is not a number" },
		/* empty list items */
		{ "1,,2 * * * *", "field 1 (minute) \"1,,2\": empty list item" },
		{ "0 0 * * ,1", "field 5 (day of week) \",1\": empty list item" },
		{ "0 0 1, * *", "field 3 (day of month) \"1,\": empty list item" },
		/* junk */
		{ "5x * * * *", "field 1 (minute) \"5x\": unexpected \"x\"" },
		{ "0 0 * * 1;", "field 5 (day of week) \"1;\": unexpected \";\"" },
		{ "*5 * * * *", "field 1 (minute) \"*5\": unexpected \"5\"" },
		{ "0 1- * * *", "field 2 (hour) \"1-\": a number is missing" },
		{ "0 -1 * * *", "field 2 (hour) \"-1\": unexpected \"-1\"" },
		{ "0 0 1-2-3 * *", "field 3 (day of month) \"1-2-3\": unexpected \"-3\"" },
		{ "0 0 ? * *", "field 3 (day of month) \"?\": unexpected \"?\"" },
		{ "0 0 * * 1\n", "field 5 (day of week) \"1?\": unexpected \"?\"" },
		/* the count of fields */
		{ "0 0 * *", "cron \"0 0 * *\": 4 fields, expected 5" },
		{ "0 0 * * * *", "cron \"0 0 * * * *\": 6 fields, expected 5" },
		{ "*", "cron \"*\": 1 field, expected 5" },
		{ "0 0 * * * 2026 x", "7 fields, expected 5" },
		/* the expression as a whole */
		{ NULL, "cron: the expression is NULL" },
		{ "", "cron \"\": the expression is empty" },
		{ " \t ", "cron \" ? \": the expression is empty" },
		{ "@reboot", "cron \"@reboot\": unknown macro \"@reboot\"" },
		{ "@daily 5", "cron \"@daily 5\": unexpected \"5\" after @daily" },
		{ "@ * * * *", "unknown macro \"@\"" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_refused(bad[i].expr, bad[i].msg);
}
END_TEST

START_TEST(parse_refuses_an_overlong_expression)
{
	char expr[400];

	/* 256 bytes are fine, 257 are not. */
	memset(expr, ' ', sizeof(expr));
	memcpy(expr, "* * * * *", 9);
	expr[TM__CRON_MAX] = '\0';
	cron(expr);
	expr[TM__CRON_MAX] = ' ';
	expr[TM__CRON_MAX + 1] = '\0';
	assert_refused(expr, "longer than 256 bytes");
	assert_refused(expr, "cron \"* * * * *");
	/* Not read past the limit: a huge one is refused the same. */
	memset(expr, '1', sizeof(expr) - 1);
	expr[sizeof(expr) - 1] = '\0';
	assert_refused(expr, "longer than 256 bytes");
}
END_TEST

START_TEST(parse_leaves_out_unchanged_on_failure)
{
	tm__cron c, before;

	memset(&c, 0x33, sizeof(c));
	before = c;
	ck_assert_int_eq(tm__cron_parse("0 0 * * 9", &c), TM_EINVAL);
	ck_assert(memcmp(&c, &before, sizeof(c)) == 0);
}
END_TEST

/* ---- next, in UTC ---------------------------------------------------- */

START_TEST(next_in_utc_hand_checked)
{
	tm__tz *tz = zone("UTC");

	/* Every 15 minutes: strictly after, from on and off the minute. */
	assert_next("*/15 * * * *", tz, utc(2026, 1, 1, 0, 0), utc(2026, 1, 1, 0, 15));
	assert_next("*/15 * * * *", tz, utc(2026, 1, 1, 0, 0) - 1, utc(2026, 1, 1, 0, 0));
	assert_next("*/15 * * * *", tz, utc(2026, 1, 1, 0, 7) + 30, utc(2026, 1, 1, 0, 15));
	assert_next("*/15 * * * *", tz, utc(2026, 12, 31, 23, 50), utc(2027, 1, 1, 0, 0));
	assert_next("* * * * *", tz, utc(2026, 2, 28, 23, 59) + 59, utc(2026, 3, 1, 0, 0));

	/* Weekdays at 09:30: 2026-01-02 is a Friday. */
	assert_next("30 9 * * 1-5", tz, utc(2026, 1, 2, 9, 29), utc(2026, 1, 2, 9, 30));
	assert_next("30 9 * * 1-5", tz, utc(2026, 1, 2, 9, 30), utc(2026, 1, 5, 9, 30));
	assert_next("30 9 * * MON-FRI", tz, utc(2026, 1, 2, 10, 0), utc(2026, 1, 5, 9, 30));

	/* Both day fields restricted: the 1st, the 15th, and every Friday. */
	{
		static const int days[][2] = {
			{ 1, 2 }, { 1, 9 }, { 1, 15 }, { 1, 16 }, { 1, 23 }, { 1, 30 },
			{ 2, 1 }, { 2, 6 }, { 2, 13 }, { 2, 15 }, { 2, 20 },
		};
		int64_t want[sizeof(days) / sizeof(days[0])];

		for (size_t i = 0; i < sizeof(days) / sizeof(days[0]); i++)
			want[i] = utc(2026, days[i][0], days[i][1], 0, 0);
		assert_sequence("0 0 1,15 * 5", tz, utc(2026, 1, 1, 0, 0), want,
		                sizeof(want) / sizeof(want[0]));
	}
	/* One day field a star: the other alone decides. */
	assert_next("0 0 13 * *", tz, utc(2026, 1, 1, 0, 0), utc(2026, 1, 13, 0, 0));
	assert_next("0 0 * * 5", tz, utc(2026, 1, 2, 0, 0), utc(2026, 1, 9, 0, 0));
	/* Vixie: "*" then a step is a star too, so both must match: the
	 * odd days that are Fridays. */
	assert_next("0 0 */2 * 5", tz, utc(2026, 1, 2, 0, 0), utc(2026, 1, 9, 0, 0));
	assert_next("0 0 */2 * 5", tz, utc(2026, 1, 9, 0, 0), utc(2026, 1, 23, 0, 0));

	/* Names: Mondays and Wednesdays of January to March at noon;
	 * 2026-03-31 is a Tuesday, 2027-01-04 a Monday. */
	assert_next("0 12 * JAN-MAR MON,wed", tz, utc(2026, 3, 31, 12, 0),
	            utc(2027, 1, 4, 12, 0));
	assert_next("0 12 * JAN-MAR MON,wed", tz, utc(2027, 1, 4, 12, 0),
	            utc(2027, 1, 6, 12, 0));
	/* Sunday as 7 and as 0; @weekly is Sunday midnight. */
	assert_next("0 0 * * 7", tz, utc(2026, 1, 1, 0, 0), utc(2026, 1, 4, 0, 0));
	assert_next("@weekly", tz, utc(2026, 1, 1, 0, 0), utc(2026, 1, 4, 0, 0));
	assert_next("@weekly", tz, utc(2026, 1, 4, 0, 0), utc(2026, 1, 11, 0, 0));
	assert_next("@yearly", tz, utc(2026, 6, 1, 0, 0), utc(2027, 1, 1, 0, 0));
	assert_next("@monthly", tz, utc(2026, 1, 31, 12, 0), utc(2026, 2, 1, 0, 0));
	assert_next("@hourly", tz, utc(2026, 1, 31, 23, 0), utc(2026, 2, 1, 0, 0));
	assert_next("@daily", tz, utc(2026, 1, 31, 0, 0), utc(2026, 2, 1, 0, 0));

	/* The 31st only in months that have one. */
	assert_next("0 0 31 * *", tz, utc(2026, 1, 31, 0, 0), utc(2026, 3, 31, 0, 0));
	/* 29 February: the next leap year, and 2096 to 2104 (2100 is not). */
	assert_next("0 0 29 2 *", tz, utc(2026, 1, 1, 0, 0), utc(2028, 2, 29, 0, 0));
	assert_next("0 0 29 FEB *", tz, utc(2028, 2, 29, 0, 0), utc(2032, 2, 29, 0, 0));
	assert_next("0 0 29 2 *", tz, utc(2096, 3, 1, 0, 0), utc(2104, 2, 29, 0, 0));
	/* Before 1970 too. */
	assert_next("0 0 1 1 *", tz, utc(1969, 6, 1, 0, 0), utc(1970, 1, 1, 0, 0));
	assert_next("30 6 * * *", tz, utc(1960, 6, 1, 12, 0), utc(1960, 6, 2, 6, 30));
	tm__tz_free(tz);
}
END_TEST

START_TEST(next_is_minus_one_when_never_due)
{
	tm__tz *tz = zone("UTC");

	assert_next("0 0 30 2 *", tz, utc(2026, 1, 1, 0, 0), -1);
	assert_next("0 0 31 4,6,9,11 *", tz, utc(2026, 1, 1, 0, 0), -1);
	assert_next("0 0 30,31 FEB *", tz, utc(2026, 1, 1, 0, 0), -1);
	/* The day-of-week rule can still save it: OR with Mondays. */
	assert_next("0 0 30 2 1", tz, utc(2026, 1, 1, 0, 0), utc(2026, 2, 2, 0, 0));
	/* An after_s the calendar does not cover. */
	assert_next("* * * * *", tz, INT64_MAX, -1);
	assert_next("* * * * *", tz, INT64_MIN, -1);
	tm__tz_free(tz);
}
END_TEST

START_TEST(next_skips_by_field_not_by_minute)
{
	tm__tz *tz = zone("Europe/Berlin");
	tm__cron never = cron("0 0 30 2 *"), rare = cron("59 23 29 2 *");
	clock_t start = clock();

	/* 20000 searches of 8 years each; stepping minutes would be 4
	 * million steps a search.  A generous bound, for valgrind. */
	for (int i = 0; i < 10000; i++) {
		int64_t after = utc(2026, 1, 1, 0, 0) + i * 3600;

		if (tm__cron_next(&never, tz, after) != -1 ||
		    tm__cron_next(&rare, tz, after) != utc(2028, 2, 29, 22, 59))
			ck_abort_msg("wrong answer after %lld", (long long)after);
	}
	ck_assert_msg((double)(clock() - start) / CLOCKS_PER_SEC < 60.0,
	              "too slow: %.1f s", (double)(clock() - start) / CLOCKS_PER_SEC);
	tm__tz_free(tz);
}
END_TEST

/* ---- next, across daylight saving time ------------------------------- */

/* Europe/Berlin 2026: 2026-03-29 01:00Z, 02:00 CET becomes 03:00 CEST;
 * 2026-10-25 01:00Z, 03:00 CEST becomes 02:00 CET. */
START_TEST(next_follows_dst_in_berlin_2026)
{
	tm__tz *tz = zone("Europe/Berlin");
	int64_t spring = utc(2026, 3, 29, 1, 0), fall = utc(2026, 10, 25, 1, 0);

	/* A skipped time is due at the transition, once. */
	{
		int64_t want[] = { spring, utc(2026, 3, 30, 0, 30), utc(2026, 3, 31, 0, 30) };

		assert_sequence("30 2 * * *", tz, utc(2026, 3, 28, 12, 0), want, 3);
	}
	/* Four skipped times, and 03:00 right after the gap: one firing. */
	{
		int64_t want[] = { spring, utc(2026, 3, 30, 0, 0) };

		assert_sequence("*/15 2 * * *", tz, utc(2026, 3, 28, 12, 0), want, 2);
		assert_sequence("0,15,30,45 2 * * *", tz, utc(2026, 3, 28, 12, 0), want, 2);
	}
	assert_next("0 3 * * *", tz, utc(2026, 3, 28, 12, 0), spring);
	{
		int64_t want[] = {
			utc(2026, 3, 29, 0, 30), /* 01:30 CET */
			spring,                  /* 02:00, 02:30, 03:00 */
			utc(2026, 3, 29, 1, 30), /* 03:30 CEST */
		};

		assert_sequence("*/30 * * * *", tz, utc(2026, 3, 29, 0, 0), want, 3);
	}
	/* A time that repeats is due at its first occurrence only. */
	{
		int64_t want[] = { utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30) };

		assert_sequence("30 2 * * *", tz, utc(2026, 10, 24, 12, 0), want, 2);
	}
	{
		int64_t want[] = {
			utc(2026, 10, 25, 0, 0),  /* 02:00 CEST */
			utc(2026, 10, 25, 0, 30), /* 02:30 CEST */
			fall + 3600,              /* 03:00 CET; 02:00-02:30 CET again are not */
			fall + 5400,
		};

		assert_sequence("*/30 * * * *", tz, utc(2026, 10, 24, 23, 45), want, 4);
	}
	/* From inside the second pass: its times were due already. */
	assert_next("*/30 * * * *", tz, fall + 600, fall + 3600);
	assert_next("* * * * *", tz, fall + 600, fall + 3600);
	assert_next("15 2 * * *", tz, fall + 600, utc(2026, 10, 26, 1, 15));
	/* Hourly: 02:00 CEST fires, 02:00 CET does not. */
	{
		int64_t want[] = { utc(2026, 10, 25, 0, 0), fall + 3600, fall + 7200 };

		assert_sequence("0 * * * *", tz, utc(2026, 10, 24, 23, 30), want, 3);
	}
	tm__tz_free(tz);
}
END_TEST

/* America/New_York 2026: 2026-03-08 07:00Z, 02:00 EST becomes 03:00 EDT;
 * 2026-11-01 06:00Z, 02:00 EDT becomes 01:00 EST. */
START_TEST(next_follows_dst_in_new_york_2026)
{
	tm__tz *tz = zone("America/New_York");
	int64_t spring = utc(2026, 3, 8, 7, 0), fall = utc(2026, 11, 1, 6, 0);

	{
		int64_t want[] = { spring, utc(2026, 3, 9, 6, 30) };

		assert_sequence("30 2 * * *", tz, utc(2026, 3, 7, 12, 0), want, 2);
	}
	{
		int64_t want[] = { utc(2026, 3, 8, 6, 59), spring, utc(2026, 3, 8, 7, 1) };

		assert_sequence("* 1-3 8 3 *", tz, utc(2026, 3, 8, 6, 58), want, 3);
	}
	{
		int64_t want[] = { utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30) };

		assert_sequence("30 1 * * *", tz, utc(2026, 10, 31, 12, 0), want, 2);
	}
	/* Every minute across the fall: 01:59 EDT, then 02:00 EST. */
	{
		int64_t want[] = { fall - 60, fall + 3600, fall + 3660 };

		assert_sequence("* * * * *", tz, fall - 120, want, 3);
	}
	/* Weekdays at 09:00 on both sides. */
	assert_next("0 9 * * 1-5", tz, utc(2026, 3, 6, 15, 0), utc(2026, 3, 9, 13, 0));
	assert_next("0 9 * * 1-5", tz, utc(2026, 10, 30, 15, 0), utc(2026, 11, 2, 14, 0));
	tm__tz_free(tz);
}
END_TEST

/* After Debian's last listed transition (2037) the footer rules. */
START_TEST(next_follows_the_footer_rule_in_2040)
{
	tm__tz *berlin = zone("Europe/Berlin"), *ny = zone("America/New_York");

	/* Berlin: 2040-03-25 and 2040-10-28, 01:00Z. */
	assert_next("30 2 * * *", berlin, utc(2040, 3, 24, 12, 0), utc(2040, 3, 25, 1, 0));
	assert_next("30 2 * * *", berlin, utc(2040, 3, 25, 1, 0), utc(2040, 3, 26, 0, 30));
	assert_next("30 2 * * *", berlin, utc(2040, 10, 27, 12, 0), utc(2040, 10, 28, 0, 30));
	assert_next("30 2 * * *", berlin, utc(2040, 10, 28, 0, 30), utc(2040, 10, 29, 1, 30));
	/* New York: 2040-03-11 07:00Z and 2040-11-04 06:00Z. */
	assert_next("30 2 * * *", ny, utc(2040, 3, 10, 12, 0), utc(2040, 3, 11, 7, 0));
	assert_next("30 1 * * *", ny, utc(2040, 11, 3, 12, 0), utc(2040, 11, 4, 5, 30));
	assert_next("30 1 * * *", ny, utc(2040, 11, 4, 5, 30), utc(2040, 11, 5, 6, 30));
	/* Far: 2100, and a century's midnights on 1 July in Berlin. */
	assert_next("0 12 * * *", berlin, utc(2100, 7, 1, 0, 0), utc(2100, 7, 1, 10, 0));
	assert_next("0 12 * * *", berlin, utc(2100, 1, 1, 0, 0), utc(2100, 1, 1, 11, 0));
	tm__tz_free(berlin);
	tm__tz_free(ny);
}
END_TEST

/* Australia/Lord_Howe moves by 30 minutes: 2026-04-05 02:00 (+11) becomes
 * 01:30 (+10:30) at 2026-04-04 15:00Z; 2026-10-04 02:00 (+10:30) becomes
 * 02:30 (+11) at 2026-10-03 15:30Z. */
START_TEST(next_follows_lord_howe_half_hour_dst)
{
	tm__tz *tz = zone("Australia/Lord_Howe");

	assert_next("45 1 * * *", tz, utc(2026, 4, 4, 0, 0), utc(2026, 4, 4, 14, 45));
	assert_next("45 1 * * *", tz, utc(2026, 4, 4, 14, 45), utc(2026, 4, 5, 15, 15));
	assert_next("15 2 * * *", tz, utc(2026, 10, 3, 0, 0), utc(2026, 10, 3, 15, 30));
	assert_next("15 2 * * *", tz, utc(2026, 10, 3, 15, 30), utc(2026, 10, 4, 15, 15));
	{
		int64_t want[] = {
			utc(2026, 10, 3, 15, 20), /* 01:50 */
			utc(2026, 10, 3, 15, 30), /* 02:00-02:20 skipped, 02:30 */
			utc(2026, 10, 3, 15, 40), /* 02:40 */
		};

		assert_sequence("*/10 * * * *", tz, utc(2026, 10, 3, 15, 15), want, 3);
	}
	tm__tz_free(tz);
}
END_TEST

/* The due times of expr after `after` in the C library's zone (set_tz),
 * stepping minute by minute: a wall minute is due when the clock first
 * reaches or skips it.  Searches until limit; -1 if none by then. */
static bool ref_matches(const tm__cron *c, int64_t w)
{
	time_t t = (time_t)w;
	struct tm tm;
	bool dom, dow;

	gmtime_r(&t, &tm);
	dom = c->dom >> tm.tm_mday & 1;
	dow = c->dow >> tm.tm_wday & 1;
	if (!(c->dom_star || c->dow_star) ? !(dom || dow) : !(dom && dow))
		return false;
	return (c->minute >> tm.tm_min & 1) && (c->hour >> tm.tm_hour & 1) &&
	       (c->month >> (tm.tm_mon + 1) & 1);
}

static int64_t ref_next(const tm__cron *c, int64_t after, int64_t limit)
{
	/* A day back, so the highest wall time already shown is known when
	 * after lies in a repeated hour. */
	int64_t u = (after - (after % 60 + 60) % 60) - 86400;
	int64_t shown = u + libc_offset(u);

	for (u += 60; u <= limit; u += 60) {
		int64_t w = u + libc_offset(u);

		if (w % 60 != 0)
			ck_abort_msg("wall time %lld is not a whole minute", (long long)w);
		if (u > after)
			for (int64_t m = shown + 60; m <= w; m += 60)
				if (ref_matches(c, m))
					return u;
		if (w > shown)
			shown = w;
	}
	return -1;
}

/* A random field: mostly the forms that fire often, so the reference
 * finds each due time within its window. */
static void random_field(int f, char *out, size_t size)
{
	static const char *const months[] = { "jan", "FEB", "Mar", "apr", "MAY", "jun",
	                                      "JUL", "aug", "SEP", "oct", "NOV", "dec" };
	static const char *const days[] = { "sun", "MON", "Tue", "wed", "THU", "fri", "SAT" };
	static const int lo[] = { 0, 0, 1, 1, 0 }, hi[] = { 59, 23, 31, 12, 7 };
	int a = rnd_in(lo[f], hi[f]), b = rnd_in(lo[f], hi[f]), kind = rnd_in(0, 9);

	if (a > b) {
		int t = a;
		a = b;
		b = t;
	}
	/* Hours from 22:00 to 03:00 meet the transitions (Nuuk's are at
	 * 22:00 and 23:00, the others' after midnight). */
	if (f == 1 && kind < 3) {
		snprintf(out, size, "%d,%d", (rnd_in(0, 5) + 22) % 24, rnd_in(0, 3));
		return;
	}
	if (f >= 1 && kind < 5) {
		strcpy(out, "*");
		return;
	}
	/* Months: most of the year, or a search may run for months. */
	if (f == 3) {
		a = rnd_in(1, 3);
		if (kind < 7)
			snprintf(out, size, "%d-%d", a, a + 9);
		else if (kind < 9)
			snprintf(out, size, "*/2");
		else
			snprintf(out, size, "%s-%s", months[a - 1], months[a + 8]);
		return;
	}
	switch (kind) {
	case 0: case 1:
		strcpy(out, "*");
		break;
	case 2:
		snprintf(out, size, "%d", a);
		break;
	case 3:
		snprintf(out, size, "%d,%d,%d", a, b, rnd_in(lo[f], hi[f]));
		break;
	case 4:
		snprintf(out, size, "%d-%d", a, b);
		break;
	case 5:
		snprintf(out, size, "*/%d", rnd_in(1, f == 0 ? 30 : 4));
		break;
	case 6:
		snprintf(out, size, "%d-%d/%d", a, b, rnd_in(1, 5));
		break;
	case 7:
		snprintf(out, size, "%d/%d", a, rnd_in(1, 6));
		break;
	default:
		if (f == 3)
			snprintf(out, size, "%s-%s", months[a - 1], months[b - 1]);
		else if (f == 4)
			snprintf(out, size, "%s,%s", days[a % 7], days[b % 7]);
		else
			snprintf(out, size, "%d-%d", a, b);
		break;
	}
}

/* A transition of the zone near a random spring or autumn, found with the
 * C library (hour by hour), or a random instant where there is none. */
static int64_t random_start(void)
{
	int year = rnd_in(2024, 2045);
	int64_t t = rnd() % 2 ? utc(year, 3, 1, 0, 0) : utc(year, 9, 1, 0, 0);
	int32_t off = libc_offset(t);

	if (rnd() % 4 != 0) {
		for (int h = 0; h < 80 * 24; h++, t += 3600) {
			if (libc_offset(t) != off) {
				/* The transition is within this hour: near it,
				 * mostly a little before. */
				if (rnd() % 2)
					return t + rnd_in(-8 * 3600, 2 * 3600);
				return t + rnd_in(-36 * 3600, 36 * 3600);
			}
		}
	}
	return utc(year, 1, 1, 0, 0) + (int64_t)(rnd() % (366 * 86400));
}

START_TEST(next_agrees_with_a_brute_force_reference)
{
	static const char *const zones[] = {
		"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
		"Asia/Kolkata", "America/Nuuk", "America/Santiago", "Europe/Dublin",
		"Asia/Kathmandu",
	};
	const int cases = 320, window = 70 * 86400;
	int far = 0;

	rng_state = 0x2545f4914f6cdd1du;
	for (int i = 0; i < cases; i++) {
		const char *name = zones[i % (sizeof(zones) / sizeof(zones[0]))];
		char expr[208], field[5][40], a[32], g[32], w[32];
		tm__tz *tz = zone(name);
		int64_t after, got, want;
		tm__cron c;

		set_tz(name);
		for (int f = 0; f < 5; f++)
			random_field(f, field[f], sizeof(field[f]));
		snprintf(expr, sizeof(expr), "%s %s %s %s %s", field[0], field[1],
		         field[2], field[3], field[4]);
		c = cron(expr);
		after = random_start();
		got = tm__cron_next(&c, tz, after);
		want = ref_next(&c, after, after + window);
		if (want == -1) {
			/* Beyond the reference's window: at least later. */
			ck_assert_msg(got == -1 || got > after + window,
			              "%s \"%s\" after %s: %s, none within %d days",
			              name, expr, iso(after, a), iso(got, g), window / 86400);
			far++;
		} else {
			ck_assert_msg(got == want, "%s \"%s\" after %s: %s, reference %s",
			              name, expr, iso(after, a), iso(got, g), iso(want, w));
			/* And the one after that, from the due instant itself. */
			got = tm__cron_next(&c, tz, want);
			want = ref_next(&c, want, want + window);
			if (want != -1)
				ck_assert_msg(got == want, "%s \"%s\" second: %s, reference %s",
				              name, expr, iso(got, g), iso(want, w));
		}
		tm__tz_free(tz);
	}
	/* Most cases must have been compared, not just bounded. */
	ck_assert_msg(far < cases / 10, "%d of %d cases beyond the window", far, cases);
	set_tz(NULL);
}
END_TEST

/* ---- time zones ------------------------------------------------------ */

START_TEST(tz_utc_reads_no_file)
{
	static const char *const names[] = { NULL, "", "UTC", "Etc/UTC" };
	char *dir = tt_tmpdir();

	/* An empty zone directory: no file to read. */
	set_tzdir(dir);
	for (size_t i = 0; i < 4; i++) {
		tm__tz *tz = zone(names[i]);
		int64_t first, second;

		ck_assert_int_eq(tm__tz_offset(tz, 0), 0);
		ck_assert_int_eq(tm__tz_offset(tz, utc(2040, 7, 1, 0, 0)), 0);
		ck_assert_int_eq(tm__tz_local_to_utc(tz, 12345, &first, &second), 1);
		ck_assert(first == 12345 && second == 12345);
		tm__tz_free(tz);
	}
	set_tzdir(NULL);
	rm_tree(dir);
}
END_TEST

START_TEST(tz_offsets_at_known_instants)
{
	static const struct {
		const char *zone;
		int y, mo, d, h, mi, s;
		int32_t off;
	} k[] = {
		{ "Europe/Berlin", 2026, 1, 15, 12, 0, 0, 3600 },
		{ "Europe/Berlin", 2026, 7, 1, 12, 0, 0, 7200 },
		{ "Europe/Berlin", 2026, 3, 29, 0, 59, 59, 3600 },
		{ "Europe/Berlin", 2026, 3, 29, 1, 0, 0, 7200 },
		{ "Europe/Berlin", 2026, 10, 25, 0, 59, 59, 7200 },
		{ "Europe/Berlin", 2026, 10, 25, 1, 0, 0, 3600 },
		{ "America/New_York", 2026, 3, 8, 6, 59, 59, -18000 },
		{ "America/New_York", 2026, 3, 8, 7, 0, 0, -14400 },
		{ "America/New_York", 2026, 11, 1, 5, 59, 59, -14400 },
		{ "America/New_York", 2026, 11, 1, 6, 0, 0, -18000 },
		{ "Australia/Lord_Howe", 2026, 4, 4, 14, 59, 59, 39600 },
		{ "Australia/Lord_Howe", 2026, 4, 4, 15, 0, 0, 37800 },
		{ "Australia/Lord_Howe", 2026, 10, 3, 15, 29, 59, 37800 },
		{ "Australia/Lord_Howe", 2026, 10, 3, 15, 30, 0, 39600 },
		{ "Asia/Kolkata", 2026, 6, 1, 0, 0, 0, 19800 },
		{ "Asia/Kathmandu", 2026, 6, 1, 0, 0, 0, 20700 },
		/* the footer: Berlin and New York in 2040 */
		{ "Europe/Berlin", 2040, 3, 25, 0, 59, 59, 3600 },
		{ "Europe/Berlin", 2040, 3, 25, 1, 0, 0, 7200 },
		{ "Europe/Berlin", 2040, 10, 28, 1, 0, 0, 3600 },
		{ "America/New_York", 2040, 3, 11, 7, 0, 0, -14400 },
		{ "America/New_York", 2040, 11, 4, 6, 0, 0, -18000 },
		/* Nuuk's footer changes at -1:00 and 0:00 local time:
		 * "<-02>2<-01>,M3.5.0/-1,M10.5.0/0" */
		{ "America/Nuuk", 2040, 3, 25, 0, 59, 59, -7200 },
		{ "America/Nuuk", 2040, 3, 25, 1, 0, 0, -3600 },
		{ "America/Nuuk", 2040, 10, 28, 0, 59, 59, -3600 },
		{ "America/Nuuk", 2040, 10, 28, 1, 0, 0, -7200 },
		/* no daylight time: "<+0330>-3:30" */
		{ "Asia/Tehran", 2040, 7, 1, 0, 0, 0, 12600 },
		/* Dublin's winter time is its "daylight" one (negative save) */
		{ "Europe/Dublin", 2040, 1, 1, 0, 0, 0, 0 },
		{ "Europe/Dublin", 2040, 7, 1, 0, 0, 0, 3600 },
		/* before 1970, from the 64-bit data */
		{ "Europe/Berlin", 1945, 6, 1, 0, 0, 0, 10800 },
		{ "America/New_York", 1900, 1, 1, 0, 0, 0, -18000 },
	};

	for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
		tm__tz *tz = zone(k[i].zone);
		int64_t t = utc(k[i].y, k[i].mo, k[i].d, k[i].h, k[i].mi) + k[i].s;
		char b[32];

		ck_assert_msg(tm__tz_offset(tz, t) == k[i].off, "%s at %s: %d, expected %d",
		              k[i].zone, iso(t, b), tm__tz_offset(tz, t), k[i].off);
		tm__tz_free(tz);
	}
}
END_TEST

START_TEST(tz_offsets_agree_with_the_c_library)
{
	static const char *const zones[] = {
		"Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
		"Asia/Kolkata", "America/Nuuk", "America/Santiago", "Europe/Dublin",
		"Asia/Jerusalem", "Africa/Casablanca", "Pacific/Apia",
		"America/St_Johns", "Asia/Tehran", "Pacific/Chatham", "Europe/London",
		"America/Sao_Paulo", "Antarctica/Troll",
	};

	rng_state = 0x853c49e6748fea9bu;
	for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
		tm__tz *tz = zone(zones[z]);

		set_tz(zones[z]);
		for (int i = 0; i < 4000; i++) {
			/* 1900 to 2150, and half of them in 2030-2060 around
			 * where the footer takes over. */
			int64_t t = i % 2 ? utc(1900, 1, 1, 0, 0) + (int64_t)(rnd() % (INT64_C(250) * 365 * 86400))
			                  : utc(2030, 1, 1, 0, 0) + (int64_t)(rnd() % (INT64_C(30) * 365 * 86400));
			char b[32];

			if (tm__tz_offset(tz, t) != libc_offset(t))
				ck_abort_msg("%s at %s: %d, the C library %d", zones[z],
				             iso(t, b), tm__tz_offset(tz, t), libc_offset(t));
		}
		tm__tz_free(tz);
	}
	set_tz(NULL);
}
END_TEST

START_TEST(tz_local_to_utc_shows_gaps_and_repeats)
{
	tm__tz *berlin = zone("Europe/Berlin"), *lh = zone("Australia/Lord_Howe");
	int64_t first = 0, second = 0;

	/* Berlin 2026: 02:30 on 29 March does not exist; the gap ends at
	 * 01:00Z.  02:30 on 25 October comes twice, an hour apart. */
	ck_assert_int_eq(tm__tz_local_to_utc(berlin, wall(2026, 3, 29, 2, 30), &first, &second), 0);
	ck_assert(first == utc(2026, 3, 29, 1, 0) && second == first);
	ck_assert_int_eq(tm__tz_local_to_utc(berlin, wall(2026, 3, 29, 2, 0), &first, NULL), 0);
	ck_assert(first == utc(2026, 3, 29, 1, 0));
	ck_assert_int_eq(tm__tz_local_to_utc(berlin, wall(2026, 3, 29, 3, 0), &first, &second), 1);
	ck_assert(first == utc(2026, 3, 29, 1, 0) && second == first);
	ck_assert_int_eq(tm__tz_local_to_utc(berlin, wall(2026, 3, 29, 1, 59), &first, &second), 1);
	ck_assert(first == utc(2026, 3, 29, 0, 59));
	ck_assert_int_eq(tm__tz_local_to_utc(berlin, wall(2026, 10, 25, 2, 30), &first, &second), 2);
	ck_assert(first == utc(2026, 10, 25, 0, 30) && second == utc(2026, 10, 25, 1, 30));
	ck_assert_int_eq(tm__tz_local_to_utc(berlin, wall(2026, 10, 25, 2, 0), &first, &second), 2);
	ck_assert(first == utc(2026, 10, 25, 0, 0) && second == utc(2026, 10, 25, 1, 0));
	ck_assert_int_eq(tm__tz_local_to_utc(berlin, wall(2026, 10, 25, 3, 0), &first, &second), 1);
	ck_assert(first == utc(2026, 10, 25, 2, 0));
	ck_assert_int_eq(tm__tz_local_to_utc(berlin, wall(2026, 7, 1, 12, 0), NULL, &second), 1);
	ck_assert(second == utc(2026, 7, 1, 10, 0));
	/* The same from the footer, in 2040. */
	ck_assert_int_eq(tm__tz_local_to_utc(berlin, wall(2040, 3, 25, 2, 30), &first, NULL), 0);
	ck_assert(first == utc(2040, 3, 25, 1, 0));
	ck_assert_int_eq(tm__tz_local_to_utc(berlin, wall(2040, 10, 28, 2, 30), &first, &second), 2);
	ck_assert(first == utc(2040, 10, 28, 0, 30) && second == utc(2040, 10, 28, 1, 30));
	/* Half an hour each way at Lord Howe. */
	ck_assert_int_eq(tm__tz_local_to_utc(lh, wall(2026, 10, 4, 2, 15), &first, NULL), 0);
	ck_assert(first == utc(2026, 10, 3, 15, 30));
	ck_assert_int_eq(tm__tz_local_to_utc(lh, wall(2026, 4, 5, 1, 45), &first, &second), 2);
	ck_assert(first == utc(2026, 4, 4, 14, 45) && second == utc(2026, 4, 4, 15, 15));
	tm__tz_free(berlin);
	tm__tz_free(lh);
}
END_TEST

START_TEST(tz_refuses_names_outside_the_zone_directory)
{
	static const char *const bad[] = {
		"/etc/localtime", "/usr/share/zoneinfo/UTC", "../UTC", "Europe/../UTC",
		"Europe/..", "..", "Europe//Berlin", "Europe/", "/", "Europe/Berlin ",
		"Europe/Ber lin", "Europe/Berlin\n", "zone.tab", "./UTC", "Europe\\Berlin",
		"Europe/Berlin;rm", "Eur\xc3\xb6pe/Berlin",
	};
	char big[400];

	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (size_t i = 0; i <= sizeof(bad) / sizeof(bad[0]); i++) {
		const char *name = i < sizeof(bad) / sizeof(bad[0]) ? bad[i] : big;
		tm__tz *tz = (tm__tz *)1;

		ck_assert_int_eq(tm__tz_load(name, &tz), TM_EINVAL);
		ck_assert_ptr_null(tz);
		ck_assert_msg(strncmp(tm_last_error(), "cron_tz \"", 9) == 0 &&
		              strstr(tm_last_error(), "not a time zone name") != NULL,
		              "%s: %s", name, tm_last_error());
	}
	ck_assert_int_eq(tm__tz_load("Europe/../UTC", &(tm__tz *){ NULL }), TM_EINVAL);
	ck_assert_str_eq(tm_last_error(),
	                 "cron_tz \"Europe/../UTC\": not a time zone name (\"..\" in it)");
}
END_TEST

START_TEST(tz_refuses_a_missing_zone)
{
	tm__tz *tz = (tm__tz *)1;

	ck_assert_int_eq(tm__tz_load("Mars/Base", &tz), TM_EINVAL);
	ck_assert_ptr_null(tz);
	ck_assert_str_eq(tm_last_error(), "cron_tz \"Mars/Base\": no such time zone");
	/* A directory of zones is not one. */
	ck_assert_int_eq(tm__tz_load("Europe", &tz), TM_EINVAL);
	ck_assert_str_eq(tm_last_error(), "cron_tz \"Europe\": no such time zone");
	/* Nor a path through a zone file. */
	ck_assert_int_eq(tm__tz_load("Europe/Berlin/x", &tz), TM_EINVAL);
	ck_assert_str_eq(tm_last_error(), "cron_tz \"Europe/Berlin/x\": no such time zone");
}
END_TEST

START_TEST(tz_reads_zones_from_tzdir)
{
	char *dir = tt_tmpdir(), path[512];
	tm__tz *tz;

	snprintf(path, sizeof(path), "%s/Test", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/Test/Zone", dir);
	copy_file("/usr/share/zoneinfo/Europe/Berlin", path, SIZE_MAX);
	set_tzdir(dir);
	tz = zone("Test/Zone");
	ck_assert_int_eq(tm__tz_offset(tz, utc(2026, 7, 1, 0, 0)), 7200);
	ck_assert_int_eq(tm__tz_offset(tz, utc(2040, 1, 1, 0, 0)), 3600);
	tm__tz_free(tz);
	/* Only there: the system's zones are not looked at. */
	tz = (tm__tz *)1;
	ck_assert_int_eq(tm__tz_load("Europe/Berlin", &tz), TM_EINVAL);
	ck_assert_ptr_null(tz);
	ck_assert_str_eq(tm_last_error(), "cron_tz \"Europe/Berlin\": no such time zone");
	/* An empty TZDIR is the default. */
	set_tzdir("");
	tm__tz_free(zone("Europe/Berlin"));
	set_tzdir(NULL);
	rm_tree(dir);
}
END_TEST

START_TEST(tz_refuses_malformed_files)
{
	static const struct {
		const char *name, *why;
	} bad[] = {
		{ "Bad/Text", "not a valid TZif file (no TZif header)" },
		{ "Bad/Empty", "not a valid TZif file (no TZif header)" },
		{ "Bad/Half", "not a valid TZif file (truncated)" },
		{ "Bad/NoFooter", "not a valid TZif file (no footer)" },
		{ "Bad/Leap", "not a valid TZif file (it counts leap seconds)" },
		{ "Bad/Footer1", "not a valid TZif file (a bad TZ string in its footer)" },
		{ "Bad/Footer2", "a bad TZ string in its footer" },
		{ "Bad/Footer3", "a bad TZ string in its footer" },
		{ "Bad/Footer4", "a bad TZ string in its footer" },
		{ "Bad/Footer5", "a bad TZ string in its footer" },
		{ "Bad/Footer6", "a bad TZ string in its footer" },
		{ "Bad/Footer7", "a bad TZ string in its footer" },
	};
	char *dir = tt_tmpdir(), path[512];
	size_t berlin_size;
	struct stat st;

	ck_assert_int_eq(stat("/usr/share/zoneinfo/Europe/Berlin", &st), 0);
	berlin_size = (size_t)st.st_size;
	snprintf(path, sizeof(path), "%s/Bad", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
#define AT(name) (snprintf(path, sizeof(path), "%s/Bad/" name, dir), path)
	write_file(AT("Text"), "Europe/Berlin\n", 14);
	write_file(AT("Empty"), "", 0);
	copy_file("/usr/share/zoneinfo/Europe/Berlin", AT("Half"), berlin_size / 2);
	/* All but the footer's closing newline. */
	copy_file("/usr/share/zoneinfo/Europe/Berlin", AT("NoFooter"),
	          berlin_size - strlen("\nCET-1CEST,M3.5.0,M10.5.0/3\n"));
	write_tzif(AT("Leap"), 0, "UTC0", 1);
	write_tzif(AT("Footer1"), 3600, "CET-1CEST,M3.5.0", 0);
	write_tzif(AT("Footer2"), 3600, "CET-1CEST,M13.5.0,M10.5.0", 0);
	write_tzif(AT("Footer3"), 3600, "CET-1CEST,M3.5.0/168,M10.5.0", 0);
	write_tzif(AT("Footer4"), 3600, "CET", 0);
	write_tzif(AT("Footer5"), 3600, "CET-25", 0);
	write_tzif(AT("Footer6"), 3600, "CE-1", 0);
	write_tzif(AT("Footer7"), 3600, "CET-1CEST,M3.6.0,M10.5.0 ", 0);
#undef AT
	set_tzdir(dir);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tm__tz *tz = (tm__tz *)1;
		char want[64];

		ck_assert_int_eq(tm__tz_load(bad[i].name, &tz), TM_EINVAL);
		ck_assert_ptr_null(tz);
		snprintf(want, sizeof(want), "cron_tz \"%s\": ", bad[i].name);
		ck_assert_msg(strncmp(tm_last_error(), want, strlen(want)) == 0 &&
		              strstr(tm_last_error(), bad[i].why) != NULL,
		              "%s: %s", bad[i].name, tm_last_error());
	}
	set_tzdir(NULL);
	rm_tree(dir);
}
END_TEST

/* Footers alone (files with no transitions), against the C library given
 * the same TZ string. */
START_TEST(tz_footer_rules_agree_with_the_c_library)
{
	static const char *const footers[] = {
		"CET-1CEST,M3.5.0,M10.5.0/3",
		"EST5EDT,M3.2.0,M11.1.0",
		"<+0330>-3:30",
		"<-02>2<-01>,M3.5.0/-1,M10.5.0/0",
		"<-04>4<-03>,M9.1.6/24,M4.1.6/24",
		"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
		"IST-2IDT,M3.4.4/26,M10.5.0",
		"IST-1GMT0,M10.5.0,M3.5.0/1",
		"XXX3YYY,J60/-30,J300/50",
		"AAA-10BBB-11,0/2,300/3",
		"AAA-10BBB-11,59,365",
		"NZST-12:00:00NZDT-13:00:00,M9.5.0,M4.1.0/3",
		"<+0545>-5:45",
	};
	char *dir = tt_tmpdir(), path[512];

	set_tzdir(dir);
	rng_state = 0xda3e39cb94b95bdbu;
	for (size_t i = 0; i < sizeof(footers) / sizeof(footers[0]); i++) {
		tm__tz *tz;

		snprintf(path, sizeof(path), "%s/F%zu", dir, i);
		write_tzif(path, 0, footers[i], 0);
		snprintf(path, sizeof(path), "F%zu", i);
		tz = zone(path);
		set_tz(footers[i]);
		for (int k = 0; k < 3000; k++) {
			int64_t t = utc(1990, 1, 1, 0, 0) + (int64_t)(rnd() % (INT64_C(80) * 365 * 86400));
			time_t tt = (time_t)t;
			struct tm tm;
			char b[32];

			/* The C library works out a rule's changes in the UTC
			 * year of the instant, and misses one that local time
			 * puts in the other year ("0/2" east of Greenwich):
			 * the days around 1 January are checked by hand. */
			gmtime_r(&tt, &tm);
			if (tm.tm_yday < 2 || tm.tm_yday > 362)
				continue;

			if (tm__tz_offset(tz, t) != libc_offset(t))
				ck_abort_msg("\"%s\" at %s: %d, the C library %d", footers[i],
				             iso(t, b), tm__tz_offset(tz, t), libc_offset(t));
		}
		tm__tz_free(tz);
	}
	set_tz(NULL);
	set_tzdir(NULL);
	rm_tree(dir);
}
END_TEST

/* Rules that change near the new year, where the C library is no
 * reference.  Daylight time all year: one year's end is the next one's
 * start, and the start wins ("EST5EDT4,0/0,J365/25", RFC 8536 section
 * 3.3.1); the C library gives standard time in the hours between. */
START_TEST(tz_footer_rules_around_the_new_year)
{
	char *dir = tt_tmpdir(), path[512];
	tm__tz *tz;
	int64_t first;

	snprintf(path, sizeof(path), "%s/AllYear", dir);
	write_tzif(path, -18000, "EST5EDT4,0/0,J365/25", 0);
	set_tzdir(dir);
	tz = zone("AllYear");
	ck_assert_int_eq(tm__tz_offset(tz, utc(2040, 1, 1, 2, 0)), -14400);
	ck_assert_int_eq(tm__tz_offset(tz, utc(2040, 1, 1, 5, 0)), -14400);
	ck_assert_int_eq(tm__tz_offset(tz, utc(2040, 6, 1, 0, 0)), -14400);
	ck_assert_int_eq(tm__tz_offset(tz, utc(2040, 12, 31, 23, 59)), -14400);
	/* No gap and no repeat at the new year. */
	ck_assert_int_eq(tm__tz_local_to_utc(tz, wall(2041, 1, 1, 0, 30), &first, NULL), 1);
	ck_assert(first == utc(2041, 1, 1, 4, 30));
	ck_assert_int_eq(tm__tz_local_to_utc(tz, wall(2040, 12, 31, 23, 30), &first, NULL), 1);
	ck_assert(first == utc(2041, 1, 1, 3, 30));
	tm__tz_free(tz);

	/* Daylight time from 02:00 standard on the year's day 0, ten hours
	 * east: it starts on 31 December in UTC, in the old year. */
	snprintf(path, sizeof(path), "%s/NewYear", dir);
	write_tzif(path, 36000, "AAA-10BBB-11,0/2,300/3", 0);
	tz = zone("NewYear");
	ck_assert_int_eq(tm__tz_offset(tz, utc(2016, 12, 31, 15, 59) + 59), 36000);
	ck_assert_int_eq(tm__tz_offset(tz, utc(2016, 12, 31, 16, 0)), 39600);
	ck_assert_int_eq(tm__tz_local_to_utc(tz, wall(2017, 1, 1, 2, 30), &first, NULL), 0);
	ck_assert(first == utc(2016, 12, 31, 16, 0));
	/* It ends on day 300 (27 October of a leap year), 03:00 daylight. */
	ck_assert_int_eq(tm__tz_offset(tz, utc(2016, 10, 26, 16, 0) - 1), 39600);
	ck_assert_int_eq(tm__tz_offset(tz, utc(2016, 10, 26, 16, 0)), 36000);
	tm__tz_free(tz);
	set_tzdir(NULL);
	rm_tree(dir);
}
END_TEST

START_TEST(tz_free_of_null_does_nothing)
{
	tm__tz_free(NULL);
}
END_TEST

TT_MAIN("cron",
	parse_accepts_every_syntax_form,
	parse_expands_the_macros,
	parse_refuses_with_a_message_naming_the_field,
	parse_refuses_an_overlong_expression,
	parse_leaves_out_unchanged_on_failure,
	next_in_utc_hand_checked,
	next_is_minus_one_when_never_due,
	next_skips_by_field_not_by_minute,
	next_follows_dst_in_berlin_2026,
	next_follows_dst_in_new_york_2026,
	next_follows_the_footer_rule_in_2040,
	next_follows_lord_howe_half_hour_dst,
	next_agrees_with_a_brute_force_reference,
	tz_utc_reads_no_file,
	tz_offsets_at_known_instants,
	tz_offsets_agree_with_the_c_library,
	tz_local_to_utc_shows_gaps_and_repeats,
	tz_refuses_names_outside_the_zone_directory,
	tz_refuses_a_missing_zone,
	tz_reads_zones_from_tzdir,
	tz_refuses_malformed_files,
	tz_footer_rules_agree_with_the_c_library,
	tz_footer_rules_around_the_new_year,
	tz_free_of_null_does_nothing)
