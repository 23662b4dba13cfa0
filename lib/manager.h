/* The manager: what a tm_manager holds.  The façade (api.c) opens and
 * closes it; the runtime's modules read its parts. */
#ifndef TM_MANAGER_H
#define TM_MANAGER_H

#include <sys/types.h>

#include "metrics.h"
#include "registry.h"
#include "store.h"
#include "task.h"
#include "taskmgr.h"

struct tm__runtime;

/* tm_manager.state: a closed handle stays readable (api.c keeps it for
 * the next tm_open), so a call on it is refused instead of crashing. */
enum { TM__HANDLE_OPEN = 0x6f70656e, TM__HANDLE_CLOSED = 0x636c6f73 };

struct tm_manager {
	_Atomic unsigned state;   /* TM__HANDLE_*; 0 before the first open */
	struct tm_manager *spare; /* next closed handle kept for reuse */
	tm_options opts;          /* current version; path points at `path` */
	tm__limits limits;        /* opts' limits, for the lifecycle */
	char *path;
	pid_t pid;                /* the opener: calls after fork() are refused */
	tm__store *store;
	tm__registry *reg;
	tm__metrics *metrics;     /* this process's counters (tm_metrics) */
	struct tm__runtime *rt;   /* NULL until started (running.h) */
};

#endif
