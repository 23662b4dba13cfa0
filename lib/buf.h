/* The strings handed to callers (buf.c).  Every one of them comes from
 * malloc, most through a tm__buf, and tm_free() is free(): one allocator,
 * whatever cJSON hooks the host installs. */
#ifndef TM_BUF_H
#define TM_BUF_H

#include <stdbool.h>
#include <stddef.h>

/* A growing string.  Appends after a failed allocation are dropped and
 * `oom` stays set; tm__buf_take reports it. */
typedef struct tm__buf {
	char *p;
	size_t len, cap;
	bool oom;
} tm__buf;

void tm__buf_add(tm__buf *b, const char *s, size_t n);
void tm__buf_str(tm__buf *b, const char *s);
/* Make room for n bytes in all, up front. */
void tm__buf_reserve(tm__buf *b, size_t n);
/* Hand the string to *out (or free it when out is NULL) and reset b;
 * TM_ENOMEM (message set) if an append failed. */
int tm__buf_take(tm__buf *b, char **out);

#endif
