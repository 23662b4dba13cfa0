/* The runtime (runtime.c): the only module that creates threads. */
#ifndef TM_RUNTIME_H
#define TM_RUNTIME_H

#include "manager.h"

/* Start the workers and the supervisor of tm. */
int tm__runtime_start(tm_manager *tm);
/* Stop them gracefully: stop taking tasks, tell handlers to stop, wait up
 * to grace_ms, requeue what is unfinished (doc/runtime.md, "Closing"). */
void tm__runtime_stop(tm_manager *tm);

#endif
