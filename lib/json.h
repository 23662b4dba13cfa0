/* Strict JSON input and RFC 7396 merge patch, on cJSON (json.c). */
#ifndef TM_JSON_H
#define TM_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

/* Deepest nesting of objects and arrays accepted in any JSON input. */
#define TM__JSON_DEPTH_MAX 64

/* Strict RFC 8259 check of a whole text (UTF-8, no \u0000, nesting at most
 * TM__JSON_DEPTH_MAX), and of every number's range: none that a double
 * would change (an integer beyond +-2^53, an overflow to infinity, a
 * nonzero value that would become zero).  *bad_at is where it stopped;
 * *why says what was wrong when more than "not JSON" is known, else NULL. */
bool tm__json_valid(const char *text, size_t *bad_at, const char **why);
/* Parse a whole NUL-terminated text.  Rejects trailing garbage and objects
 * with duplicate keys.  Returns NULL on bad input, with *err set to
 * TM_EWRONG_DATA (message names `what`) or TM_ENOMEM. */
cJSON *tm__json_parse(const char *text, const char *what, int *err);
/* RFC 7396: apply patch to target, returning the new target (which may be a
 * different node; the old one is then freed).  NULL only on out of memory.
 * Linear in the sizes of both. */
cJSON *tm__json_merge(cJSON *target, const cJSON *patch);
/* At least the printed size of j, found without printing it. */
size_t tm__json_bound(const cJSON *j);
/* The object keys in j, at every depth. */
size_t tm__json_keys(const cJSON *j);
/* Print compactly into a string of the callers' allocator (buf.h), to be
 * released with free(); NULL on out of memory. */
char *tm__json_print(const cJSON *j);

#endif
