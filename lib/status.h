/* The ordering rule of statuses (status.c). */
#ifndef TM_STATUS_H
#define TM_STATUS_H

#include <stdbool.h>

#include "taskmgr.h"

/* How many values tm_status has: arrays indexed by status use it. */
#define TM__STATUS_COUNT (TM_COMPLETED + 1)

int tm__status_rank(tm_status s);
bool tm__status_final(tm_status s);
bool tm__status_active(tm_status s);
/* TM_OK, or TM_ELOWER_STATUS with a message, for a change from -> to. */
int tm__status_check(tm_status from, tm_status to);
/* Parse a status name; -1 when unknown. */
int tm__status_parse(const char *name);

#endif
