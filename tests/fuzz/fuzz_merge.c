/* Fuzz the RFC 7396 merge patch: input is "TARGET\nPATCH".  Beyond not
 * crashing, the result must hold the RFC's laws: what the patch names
 * comes out as the RFC says (obeys() below), and applying the same patch
 * twice changes nothing more. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* The two values print alike.  Not cJSON_Compare: a number beyond a
 * double's range reads as infinity, which it finds unequal to itself. */
static int same(const cJSON *a, const cJSON *b)
{
	char *x = cJSON_PrintUnformatted(a), *y = cJSON_PrintUnformatted(b);
	int eq = x && y && strcmp(x, y) == 0;

	cJSON_free(x);
	cJSON_free(y);
	return eq;
}

/* RFC 7396 on what the patch names: where the patch is not an object the
 * result is the patch; where it is, the result is an object without the
 * members the patch sets to null, and every other member of the patch
 * merged into the result's member of that name, recursively. */
static int obeys(const cJSON *patch, const cJSON *result)
{
	const cJSON *m;

	if (!cJSON_IsObject(patch))
		return same(patch, result);
	if (!cJSON_IsObject(result))
		return 0;
	cJSON_ArrayForEach(m, patch) {
		const cJSON *r = cJSON_GetObjectItemCaseSensitive(result, m->string);

		if (cJSON_IsNull(m) ? r != NULL : r == NULL || !obeys(m, r))
			return 0;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *nl, *a, *b;
	cJSON *target, *patch, *once, *twice;
	int err;

	memcpy(text, data, size);
	text[size] = '\0';
	nl = strchr(text, '\n');
	if (nl == NULL) {
		free(text);
		return 0;
	}
	*nl = '\0';
	/* Strictly parsed, as the library takes its input (no duplicate keys). */
	target = tm__json_parse(text, "target", &err);
	patch = tm__json_parse(nl + 1, "patch", &err);
	if (target && patch) {
		once = tm__json_merge(cJSON_Duplicate(target, 1), patch);
		if (once && !obeys(patch, once))
			abort(); /* the result is not what the patch asks */
		twice = once ? tm__json_merge(cJSON_Duplicate(once, 1), patch) : NULL;
		if (once && twice) {
			a = cJSON_PrintUnformatted(once);
			b = cJSON_PrintUnformatted(twice);
			if (strcmp(a, b) != 0)
				abort(); /* merge patches are idempotent */
			cJSON_free(a);
			cJSON_free(b);
		}
		cJSON_Delete(once);
		cJSON_Delete(twice);
	}
	cJSON_Delete(target);
	cJSON_Delete(patch);
	free(text);
	return 0;
}
