/* The runtime: worker threads and the supervisor.  Not built yet (issue 3):
 * until it is, tasks of registered names wait in REQUEST_SENT. */
#include "internal.h"

int tm__runtime_start(tm_manager *tm)
{
	tm->rt = NULL;
	return TM_OK;
}

void tm__runtime_stop(tm_manager *tm)
{
	(void)tm;
}

void tm__runtime_wake(tm_manager *tm)
{
	(void)tm;
}

void tm__runtime_cancel(tm_manager *tm, const char *id)
{
	(void)tm;
	(void)id;
}
