/* JSON helpers on cJSON: strict parsing, RFC 7396 merge patch, printing.
 * Debian's cJSON ships without cJSON_Utils, so the merge patch lives here. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

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

cJSON *tm__json_parse(const char *text, const char *what, int *err)
{
	const char *end = NULL;
	cJSON *j;

	j = cJSON_ParseWithOpts(text, &end, 1);
	if (j == NULL) {
		size_t at = end != NULL && end >= text ? (size_t)(end - text) : 0;
		*err = tm_errorf(TM_EWRONG_DATA, "%s is not valid JSON (near byte %zu)",
		                 what, at);
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
	return cJSON_PrintUnformatted(j);
}

cJSON *tm__json_time(int64_t us)
{
	return cJSON_CreateNumber((double)us / 1e6);
}
