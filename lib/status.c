/* The status ordering rule (doc/api.md, "Statuses"): the one place that decides
 * whether a task may move from one status to another. */
#include <string.h>

#include "error.h"
#include "status.h"

static const char *const names[] = {
	"REQUEST_SENT", "RUNNING", "CANCELLED_REQUESTED",
	"FAILED", "CANCELLED", "COMPLETED",
};

const char *tm_status_name(tm_status s)
{
	if ((int)s < 0 || (int)s >= (int)(sizeof(names) / sizeof(names[0])))
		return NULL;
	return names[s];
}

int tm__status_parse(const char *name)
{
	for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

int tm__status_rank(tm_status s)
{
	switch (s) {
	case TM_REQUEST_SENT: return 0;
	case TM_RUNNING: return 1;
	case TM_CANCELLED_REQUESTED: return 2;
	default: return 3;
	}
}

bool tm__status_final(tm_status s)
{
	return tm__status_rank(s) == 3;
}

bool tm__status_active(tm_status s)
{
	return !tm__status_final(s);
}

int tm__status_check(tm_status from, tm_status to)
{
	if (to == from || tm__status_rank(to) > tm__status_rank(from))
		return TM_OK;
	return tm_errorf(TM_ELOWER_STATUS, "status %s cannot follow %s",
	                 tm_status_name(to), tm_status_name(from));
}
