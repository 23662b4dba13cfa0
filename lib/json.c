/* JSON helpers on cJSON: strict parsing, RFC 7396 merge patch, printing.
 * Debian's cJSON ships without cJSON_Utils, so the merge patch lives here. */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "id.h"
#include "json.h"

static int cmp_keys(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* True when some object in the tree repeats a key.  Sorting the keys keeps
 * this O(n log n) for a hostile object with many keys. */
static bool has_duplicate_keys(const cJSON *j)
{
	const cJSON *c;
	size_t n = 0, i;
	const char **keys;
	bool dup = false;

	if (!cJSON_IsObject(j) && !cJSON_IsArray(j))
		return false;
	for (c = j->child; c != NULL; c = c->next) {
		if (has_duplicate_keys(c))
			return true;
		n++;
	}
	if (!cJSON_IsObject(j) || n < 2)
		return false;
	keys = malloc(n * sizeof(*keys));
	if (keys == NULL)
		return false; /* the caller fails on memory soon enough */
	for (c = j->child, i = 0; c != NULL; c = c->next)
		keys[i++] = c->string;
	qsort(keys, n, sizeof(*keys), cmp_keys);
	for (i = 1; i < n && !dup; i++)
		dup = strcmp(keys[i - 1], keys[i]) == 0;
	free(keys);
	return dup;
}

/* True when a number in the tree is infinite. */
static bool has_infinity(const cJSON *j)
{
	if (cJSON_IsNumber(j))
		return isinf(j->valuedouble);
	for (const cJSON *c = j->child; c != NULL; c = c->next)
		if ((cJSON_IsObject(c) || cJSON_IsArray(c) || cJSON_IsNumber(c)) &&
		    has_infinity(c))
			return true;
	return false;
}

/* ---- strict RFC 8259 check --------------------------------------------------
 * cJSON accepts more than JSON (leading zeros, "1.", raw control characters,
 * invalid UTF-8) and truncates strings at \u0000.  Bodies are checked here
 * first, so what is stored is exactly what was sent, and nesting is bounded
 * before cJSON recurses. */

struct scan {
	const unsigned char *p;
	int depth;
	const char *why;  /* a refusal more precise than "not valid JSON" */
};

static void ws(struct scan *s)
{
	while (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')
		s->p++;
}

static bool digits(struct scan *s)
{
	const unsigned char *start = s->p;

	while (*s->p >= '0' && *s->p <= '9')
		s->p++;
	return s->p > start;
}

/* 2^53: integers beyond it cannot all be held exactly by a double. */
#define EXACT_INT_DIGITS "9007199254740992"

/* A number, and one a double holds without changing it beyond rounding
 * in the last place: no integer beyond +-2^53 (its digits would change),
 * nothing that overflows to infinity or vanishes to zero. */
static bool number(struct scan *s)
{
	const unsigned char *int_at, *sig = NULL;
	long ndigits, point = 0, exp = 0, e10;
	bool exact = true;

	if (*s->p == '-')
		s->p++;
	int_at = s->p;
	if (*s->p == '0')
		s->p++;
	else if (!(*s->p >= '1' && *s->p <= '9') || !digits(s))
		return false;
	ndigits = (long)(s->p - int_at);
	point = ndigits; /* the decimal point's place among the digits */
	if (*int_at != '0')
		sig = int_at;
	if (*s->p == '.') {
		const unsigned char *f = ++s->p;

		exact = false;
		if (!digits(s))
			return false;
		for (const unsigned char *q = f; sig == NULL && q < s->p; q++)
			if (*q != '0')
				sig = q;
		if (sig != NULL && sig >= f)
			point = -(long)(sig - f); /* 0.00ddd: -2 */
	}
	if (*s->p == 'e' || *s->p == 'E') {
		bool neg;

		exact = false;
		s->p++;
		neg = *s->p == '-';
		if (*s->p == '+' || *s->p == '-')
			s->p++;
		if (!(*s->p >= '0' && *s->p <= '9'))
			return false;
		for (; *s->p >= '0' && *s->p <= '9'; s->p++)
			if (exp < 100000)
				exp = exp * 10 + (*s->p - '0');
		if (neg)
			exp = -exp;
	}
	if (exact && (ndigits > 16 || (ndigits == 16 &&
	              memcmp(int_at, EXACT_INT_DIGITS, 16) > 0))) {
		s->why = "an integer beyond 2^53 (9007199254740992) that a double "
		         "cannot hold exactly";
		return false;
	}
	if (sig == NULL)
		return true; /* zero */
	/* The decimal exponent of the first significant digit. */
	e10 = (sig < int_at + ndigits ? point - (long)(sig - int_at) : point) - 1 + exp;
	if (e10 > 308 || e10 < -307) {
		s->why = "a number out of the range of a double (about 1e-307 to "
		         "1.7e308 in magnitude)";
		return false;
	}
	return true;
}

static int hex4(const unsigned char *p)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		int c = p[i], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* One UTF-8 sequence of 2 to 4 bytes, well-formed (no overlongs, no
 * surrogates, at most U+10FFFF); advances past it. */
static bool utf8(struct scan *s)
{
	const unsigned char *p = s->p;
	int n;
	unsigned cp;

	if (p[0] >= 0xC2 && p[0] <= 0xDF) {
		n = 1;
		cp = p[0] & 0x1F;
	} else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
		n = 2;
		cp = p[0] & 0x0F;
	} else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
		n = 3;
		cp = p[0] & 0x07;
	} else {
		return false;
	}
	for (int i = 1; i <= n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return false;
		cp = cp << 6 | (p[i] & 0x3F);
	}
	if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
	    (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
		return false;
	s->p += n + 1;
	return true;
}

static bool string(struct scan *s)
{
	s->p++; /* the opening quote */
	for (;;) {
		unsigned char c = *s->p;

		if (c == '"') {
			s->p++;
			return true;
		}
		if (c < 0x20)
			return false; /* control characters, and the end of the text */
		if (c >= 0x80) {
			if (!utf8(s))
				return false;
			continue;
		}
		s->p++;
		if (c != '\\')
			continue;
		c = *s->p;
		if (c == '\0')
			return false; /* never step past the end of the text */
		s->p++;
		if (c == 'u') {
			int u = hex4(s->p);
			if (u <= 0) /* malformed, or \u0000 that C strings cannot hold */
				return false;
			s->p += 4;
			if (u >= 0xDC00 && u <= 0xDFFF)
				return false;
			if (u >= 0xD800 && u <= 0xDBFF) {
				int lo = s->p[0] == '\\' && s->p[1] == 'u' ? hex4(s->p + 2) : -1;
				if (lo < 0xDC00 || lo > 0xDFFF)
					return false;
				s->p += 6;
			}
		} else if (!strchr("\"\\/bfnrt", c)) {
			return false;
		}
	}
}

static bool value(struct scan *s);

static bool members(struct scan *s, unsigned char close, bool keyed)
{
	if (++s->depth > TM__JSON_DEPTH_MAX)
		return false;
	s->p++;
	ws(s);
	if (*s->p == close) {
		s->p++;
		s->depth--;
		return true;
	}
	for (;;) {
		if (keyed) {
			if (*s->p != '"' || !string(s))
				return false;
			ws(s);
			if (*s->p != ':')
				return false;
			s->p++;
		}
		if (!value(s))
			return false;
		if (*s->p == ',') {
			s->p++;
			ws(s);
			continue;
		}
		if (*s->p != close)
			return false;
		s->p++;
		s->depth--;
		return true;
	}
}

static bool literal(struct scan *s, const char *word)
{
	size_t n = strlen(word);

	if (strncmp((const char *)s->p, word, n) != 0)
		return false;
	s->p += n;
	return true;
}

static bool value(struct scan *s)
{
	bool ok;

	ws(s);
	switch (*s->p) {
	case '{': ok = members(s, '}', true); break;
	case '[': ok = members(s, ']', false); break;
	case '"': ok = string(s); break;
	case 't': ok = literal(s, "true"); break;
	case 'f': ok = literal(s, "false"); break;
	case 'n': ok = literal(s, "null"); break;
	default: ok = number(s); break;
	}
	if (ok)
		ws(s);
	return ok;
}

bool tm__json_valid(const char *text, size_t *bad_at, const char **why)
{
	struct scan s = { (const unsigned char *)text, 0, NULL };
	bool ok = value(&s) && *s.p == '\0';

	*bad_at = (size_t)((const char *)s.p - text);
	*why = s.why;
	return ok;
}

cJSON *tm__json_parse(const char *text, const char *what, int *err)
{
	const char *end = NULL, *why;
	size_t at;
	cJSON *j;

	if (!tm__json_valid(text, &at, &why)) {
		if (why)
			*err = tm_errorf(TM_EWRONG_DATA, "%s has %s (near byte %zu)",
			                 what, why, at);
		else
			*err = tm_errorf(TM_EWRONG_DATA, "%s is not valid JSON (near "
			                 "byte %zu; nesting is limited to %d levels)",
			                 what, at, TM__JSON_DEPTH_MAX);
		return NULL;
	}
	j = cJSON_ParseWithOpts(text, &end, 1);
	if (j == NULL) {
		/* valid JSON that cJSON could not hold: out of memory */
		*err = tm_errorf(TM_ENOMEM, "out of memory parsing %s", what);
		return NULL;
	}
	if (has_infinity(j)) {
		/* 1.8e308: past the range check's precision, parsed as inf */
		cJSON_Delete(j);
		*err = tm_errorf(TM_EWRONG_DATA, "%s has a number out of the range "
		                 "of a double (about 1e-307 to 1.7e308 in magnitude)", what);
		return NULL;
	}
	if (has_duplicate_keys(j)) {
		cJSON_Delete(j);
		*err = tm_errorf(TM_EWRONG_DATA, "%s has a duplicate key", what);
		return NULL;
	}
	*err = TM_OK;
	return j;
}

/* ---- merge patch -----------------------------------------------------------
 * Linear in the sizes of target and patch: an object with more than a few
 * keys is looked up through a hash index of its keys built once per merge,
 * not by cJSON's linear search per key. */

/* Objects with at most this many keys are searched linearly. */
#define INDEX_MIN 8

struct key_index {
	cJSON **slot;   /* open addressing; NULL empty, `gone` a removed key */
	size_t mask;
	size_t n;       /* the object's keys when the merge began */
};

static cJSON gone; /* the mark of a slot whose item left the object */

static size_t key_hash(const char *k)
{
	return (size_t)tm__hash64(k, strlen(k));
}

/* Index obj's keys; false on out of memory.  An object with few keys gets
 * no index (slot NULL). */
static bool index_build(struct key_index *ix, const cJSON *obj)
{
	size_t n = 0, cap = 16;

	ix->slot = NULL;
	for (const cJSON *c = obj->child; c != NULL; c = c->next)
		n++;
	ix->n = n;
	if (n <= INDEX_MIN)
		return true;
	while (cap < 2 * n)
		cap *= 2;
	ix->slot = calloc(cap, sizeof(*ix->slot));
	if (ix->slot == NULL)
		return false;
	ix->mask = cap - 1;
	for (cJSON *c = obj->child; c != NULL; c = c->next) {
		size_t i = key_hash(c->string) & ix->mask;

		while (ix->slot[i] != NULL)
			i = (i + 1) & ix->mask;
		ix->slot[i] = c;
	}
	return true;
}

/* obj's item under key, or NULL; *at is its slot (for index_set). */
static cJSON *index_get(const struct key_index *ix, const cJSON *obj,
                        const char *key, size_t *at)
{
	*at = 0;
	if (ix->slot == NULL) {
		/* Only the keys the object had can match: the merge appends
		 * the patch's keys, and never looks one of them up again. */
		size_t i = 0;

		for (cJSON *c = obj->child; c != NULL && i < ix->n; c = c->next, i++)
			if (strcmp(c->string, key) == 0)
				return c;
		return NULL;
	}
	for (size_t i = key_hash(key) & ix->mask;; i = (i + 1) & ix->mask) {
		cJSON *c = ix->slot[i];

		if (c == NULL)
			return NULL;
		if (c != &gone && strcmp(c->string, key) == 0) {
			*at = i;
			return c;
		}
	}
}

/* The item found at slot `at` was replaced by item, or removed (NULL). */
static void index_set(struct key_index *ix, size_t at, cJSON *item)
{
	if (ix->slot != NULL)
		ix->slot[at] = item ? item : &gone;
}

/* Give item the key `key` (cJSON_ReplaceItemViaPointer keeps the
 * replacement's own). */
static bool set_key(cJSON *item, const char *key)
{
	size_t n = strlen(key) + 1;
	char *k = cJSON_malloc(n);

	if (k == NULL)
		return false;
	memcpy(k, key, n);
	if (!(item->type & cJSON_StringIsConst))
		cJSON_free(item->string);
	item->string = k;
	item->type &= ~cJSON_StringIsConst;
	return true;
}

/* Merge an object patch into the object obj, in place, keeping key order.
 * The patch's keys are unique (tm__json_parse refuses duplicates, and the
 * merges of job.c only take its output), so each is looked up once. */
static int merge_into(cJSON *obj, const cJSON *patch)
{
	struct key_index ix;
	int err = 0;

	if (!index_build(&ix, obj))
		return -1;
	for (const cJSON *p = patch->child; p != NULL && !err; p = p->next) {
		size_t at = 0;
		cJSON *cur = index_get(&ix, obj, p->string, &at), *repl;

		if (cJSON_IsNull(p)) {
			if (cur != NULL) {
				cJSON_Delete(cJSON_DetachItemViaPointer(obj, cur));
				index_set(&ix, at, NULL);
			}
			continue;
		}
		if (cJSON_IsObject(cur) && cJSON_IsObject(p)) {
			err = merge_into(cur, p);
			continue;
		}
		if (cJSON_IsObject(p)) {
			/* Merging into "nothing" still drops the patch's nulls. */
			repl = cJSON_CreateObject();
			if (repl != NULL && merge_into(repl, p) != 0) {
				cJSON_Delete(repl);
				repl = NULL;
			}
		} else {
			repl = cJSON_Duplicate(p, 1);
		}
		if (repl == NULL) {
			err = -1;
		} else if (cur != NULL) {
			if (set_key(repl, p->string) &&
			    cJSON_ReplaceItemViaPointer(obj, cur, repl)) {
				index_set(&ix, at, repl);
			} else {
				cJSON_Delete(repl);
				err = -1;
			}
		} else if (!cJSON_AddItemToObject(obj, p->string, repl)) {
			cJSON_Delete(repl);
			err = -1;
		}
	}
	free(ix.slot);
	return err;
}

size_t tm__json_bound(const cJSON *j)
{
	size_t n;

	if (cJSON_IsString(j))
		return 2 + 6 * strlen(j->valuestring); /* every byte as \uXXXX */
	if (cJSON_IsRaw(j))
		return strlen(j->valuestring);
	if (cJSON_IsNumber(j))
		return 32; /* "-2.2250738585072014e-308" is 24 */
	if (!cJSON_IsArray(j) && !cJSON_IsObject(j))
		return 5; /* false */
	n = 2;
	for (const cJSON *c = j->child; c != NULL; c = c->next)
		n += 1 + tm__json_bound(c) +
		     (cJSON_IsObject(j) ? 3 + 6 * strlen(c->string) : 0);
	return n;
}

size_t tm__json_keys(const cJSON *j)
{
	size_t n = 0;

	for (const cJSON *c = j ? j->child : NULL; c != NULL; c = c->next)
		n += (cJSON_IsObject(j) ? 1 : 0) + tm__json_keys(c);
	return n;
}

cJSON *tm__json_merge(cJSON *target, const cJSON *patch)
{
	if (!cJSON_IsObject(patch)) {
		cJSON *copy = cJSON_Duplicate(patch, 1);
		cJSON_Delete(target);
		return copy;
	}
	if (!cJSON_IsObject(target)) {
		cJSON_Delete(target);
		target = cJSON_CreateObject();
		if (target == NULL)
			return NULL;
	}
	if (merge_into(target, patch) != 0) {
		cJSON_Delete(target);
		return NULL;
	}
	return target;
}

/* ---- printing ----------------------------------------------------------------
 * cJSON prints a number with 15 significant digits whenever that reads
 * back within a relative epsilon, which changes integers such as
 * 9007199254740992 (printed 9.00719925474099e+15).  Numbers are printed
 * here instead, with the fewest digits that read back exactly: the tree's
 * numbers become raw text for the print (marked, so that the raw numbers
 * the library made itself stay as they are), then numbers again. */

#define EXACT_MARK 0x400 /* a type bit cJSON does not use */

static void number_text(double d, char *buf, size_t size)
{
	char point = localeconv()->decimal_point[0];

	if (d == trunc(d) && fabs(d) <= 9007199254740992.0) {
		snprintf(buf, size, "%.0f", d);
		return;
	}
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, size, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	for (char *p = buf; *p; p++)
		if (*p == point)
			*p = '.'; /* JSON's decimal point, whatever the locale's */
}

/* Numbers to marked raw text (to_raw), or back; false on out of memory
 * (the caller turns the tree back either way). */
static bool exact_numbers(cJSON *j, bool to_raw)
{
	for (cJSON *c = j; c != NULL; c = c->next) {
		if (to_raw && cJSON_IsNumber(c)) {
			char buf[40];

			number_text(c->valuedouble, buf, sizeof(buf));
			c->valuestring = cJSON_malloc(strlen(buf) + 1);
			if (c->valuestring == NULL)
				return false;
			strcpy(c->valuestring, buf);
			c->type = (c->type & ~0xFF) | cJSON_Raw | EXACT_MARK;
		} else if (!to_raw && (c->type & EXACT_MARK)) {
			cJSON_free(c->valuestring);
			c->valuestring = NULL;
			c->type = (c->type & ~(0xFF | EXACT_MARK)) | cJSON_Number;
		}
		if (c->child && !exact_numbers(c->child, to_raw))
			return false;
		if (c == j)
			break; /* j's siblings are not part of it */
	}
	return true;
}

char *tm__json_print(const cJSON *j)
{
	cJSON *w = (cJSON *)j; /* turned back before returning */
	char *text = NULL, *out = NULL;

	if (exact_numbers(w, true))
		text = cJSON_PrintUnformatted(j);
	exact_numbers(w, false);
	if (text == NULL)
		return NULL;
	/* Moved to malloc's memory: the string may be handed to a caller,
	 * and cJSON's allocator is whatever hooks the host installed. */
	out = strdup(text);
	cJSON_free(text);
	return out;
}
