/* What open.c gives the façade's other files (api.c, stats.c): the entry
 * of every call on a manager, and handing a document to the caller. */
#ifndef TM_OPEN_H
#define TM_OPEN_H

#include <cjson/cJSON.h>

#include "manager.h"

/* Common entry of every call on a manager: clears *out, checks the handle
 * and the process, clears the thread's message. */
int tm__enter(tm_manager *tm, char **out);
/* Hand a document to the caller as text (or drop it when out is NULL) and
 * free the tree; TM_ENOMEM when j is NULL. */
int tm__emit(cJSON *j, char **out);

#endif
