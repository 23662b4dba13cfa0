/* The access log on stderr: one line a request, and libmicrohttpd's own
 * messages, with every byte a client chose escaped so that it can neither
 * forge a line nor send terminal escapes. */
#ifndef SRV_HTTP_LOG_H
#define SRV_HTTP_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <time.h>

#include <microhttpd.h>

#define SRV_LOG_METHOD 32   /* bytes of a method kept (longer: not an API's) */

/* One request's line: its method (the first SRV_LOG_METHOD bytes;
 * @p method_len is the whole length), target, status and the time since
 * @p t0.  Status 0 is a request that got no answer of ours: @p cut says the
 * deadline ended it, else @p toe says how it ended. */
void srv_log_request(const char *method, size_t method_len, const char *target,
                     const struct timespec *t0, int status,
                     enum MHD_RequestTerminationCode toe, int cut);

/* MHD_OPTION_EXTERNAL_LOGGER: its messages may quote what a client sent. */
void srv_log_mhd(void *cls, const char *fmt, va_list ap);

#endif
