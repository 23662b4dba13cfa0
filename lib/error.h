/* Errors: the thread-local message behind tm_last_error() (error.c). */
#ifndef TM_ERROR_H
#define TM_ERROR_H

#include "taskmgr.h"

/* Set the thread's message to "<context>: <strerror(err)>" and return
 * TM_ESTORAGE (TM_ENOMEM for ENOMEM). */
int tm__error_sys(int err, const char *context);
/* Clear the thread's message at the start of a successful public call. */
void tm__error_clear(void);
/* TM_ENOMEM with the message "out of memory". */
int tm__error_oom(void);

#endif
