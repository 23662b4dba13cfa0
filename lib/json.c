/* JSON helpers on cJSON: strict parsing, RFC 7396 merge patch, printing.
 * Debian's cJSON ships without cJSON_Utils, so the merge patch lives here. */
#include <stdlib.h>
#include <string.h>

#include "error.h"
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

/* ---- strict RFC 8259 check --------------------------------------------------
 * cJSON accepts more than JSON (leading zeros, "1.", raw control characters,
 * invalid UTF-8) and truncates strings at \u0000.  Bodies are checked here
 * first, so what is stored is exactly what was sent, and nesting is bounded
 * before cJSON recurses. */

struct scan {
	const unsigned char *p;
	int depth;
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

static bool number(struct scan *s)
{
	if (*s->p == '-')
		s->p++;
	if (*s->p == '0')
		s->p++;
	else if (!(*s->p >= '1' && *s->p <= '9') || !digits(s))
		return false;
	if (*s->p == '.') {
		s->p++;
		if (!digits(s))
			return false;
	}
	if (*s->p == 'e' || *s->p == 'E') {
		s->p++;
		if (*s->p == '+' || *s->p == '-')
			s->p++;
		if (!digits(s))
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

bool tm__json_valid(const char *text, size_t *bad_at)
{
	struct scan s = { (const unsigned char *)text, 0 };
	bool ok = value(&s) && *s.p == '\0';

	*bad_at = (size_t)((const char *)s.p - text);
	return ok;
}

cJSON *tm__json_parse(const char *text, const char *what, int *err)
{
	const char *end = NULL;
	size_t at;
	cJSON *j;

	if (!tm__json_valid(text, &at)) {
		*err = tm_errorf(TM_EWRONG_DATA, "%s is not valid JSON (near byte "
		                 "%zu; nesting is limited to %d levels)", what, at,
		                 TM__JSON_DEPTH_MAX);
		return NULL;
	}
	j = cJSON_ParseWithOpts(text, &end, 1);
	if (j == NULL) {
		/* valid JSON that cJSON could not hold: out of memory */
		*err = tm_errorf(TM_ENOMEM, "out of memory parsing %s", what);
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

/* Merge an object patch into the object obj, in place, keeping key order. */
static int merge_into(cJSON *obj, const cJSON *patch)
{
	for (const cJSON *p = patch->child; p != NULL; p = p->next) {
		cJSON *cur = cJSON_GetObjectItemCaseSensitive(obj, p->string);
		cJSON *repl;

		if (cJSON_IsNull(p)) {
			if (cur != NULL)
				cJSON_Delete(cJSON_DetachItemViaPointer(obj, cur));
			continue;
		}
		if (cJSON_IsObject(cur) && cJSON_IsObject(p)) {
			if (merge_into(cur, p) != 0)
				return -1;
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
		if (repl == NULL)
			return -1;
		if (cur != NULL) {
			if (!cJSON_ReplaceItemInObjectCaseSensitive(obj, p->string, repl)) {
				cJSON_Delete(repl);
				return -1;
			}
		} else if (!cJSON_AddItemToObject(obj, p->string, repl)) {
			cJSON_Delete(repl);
			return -1;
		}
	}
	return 0;
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

char *tm__json_print(const cJSON *j)
{
	char *text = cJSON_PrintUnformatted(j), *out;

	if (text == NULL)
		return NULL;
	/* Moved to malloc's memory: the string may be handed to a caller,
	 * and cJSON's allocator is whatever hooks the host installed. */
	out = strdup(text);
	cJSON_free(text);
	return out;
}
