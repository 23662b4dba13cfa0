/* The strings handed to callers.  Each is built in a tm__buf and comes
 * from malloc, and tm_free() is free(): one allocator for everything the
 * library returns, whatever cJSON hooks the host installs. */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "error.h"

/* Room for `need` bytes in all; false (and oom set) when there is none. */
static bool room(tm__buf *b, size_t need)
{
	char *p;

	if (b->oom)
		return false;
	if (need <= b->cap)
		return true;
	p = realloc(b->p, need);
	if (p == NULL) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = need;
	return true;
}

void tm__buf_add(tm__buf *b, const char *s, size_t n)
{
	size_t cap = b->cap ? b->cap : 512;

	while (cap < b->len + n + 1)
		cap *= 2;
	if (!room(b, cap))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void tm__buf_reserve(tm__buf *b, size_t n)
{
	room(b, n);
}

void tm__buf_str(tm__buf *b, const char *s)
{
	tm__buf_add(b, s, strlen(s));
}

int tm__buf_take(tm__buf *b, char **out)
{
	if (b->oom) {
		free(b->p);
		*b = (tm__buf){ 0 };
		return tm__error_oom();
	}
	if (out)
		*out = b->p;
	else
		free(b->p);
	*b = (tm__buf){ 0 };
	return TM_OK;
}

void tm_free(void *p)
{
	free(p);
}
