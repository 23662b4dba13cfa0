/* The manager: what a tm_manager holds.  The façade (api.c) opens and
 * closes it; the runtime's modules read its parts. */
#ifndef TM_MANAGER_H
#define TM_MANAGER_H

#include <sys/types.h>

#include "registry.h"
#include "store.h"
#include "taskmgr.h"

struct tm__runtime;

struct tm_manager {
	tm_options opts;          /* current version; path points at `path` */
	char *path;
	pid_t pid;                /* the opener: calls after fork() are refused */
	tm__store *store;
	tm__registry *reg;
	struct tm__runtime *rt;   /* NULL until started (running.h) */
};

#endif
