/* Error names, classes and the thread-local message (tm_last_error). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

/* The one piece of per-thread state: the message of the last failure, as
 * libgit2 keeps it.  Everything else hangs off tm_manager. */
static _Thread_local char last_message[512];

static const struct {
	int err;
	const char *name;
	const char *cls;
} errors[] = {
	{ TM_OK, "OK", "" },
	{ TM_EWRONG_DATA, "WRONG_DATA_TYPE", "WrongData" },
	{ TM_ELOWER_STATUS, "LOWER_STATUS_NOT_ALLOWED", "WrongData" },
	{ TM_EALREADY_RUNNING, "TASK_ALREADY_RUNNING", "DuplicatedError" },
	{ TM_ETASK_NOT_FOUND, "TASK_NOT_FOUND", "NotFoundError" },
	{ TM_ETABLE_NOT_FOUND, "TABLE_NOT_FOUND", "NotFoundError" },
	{ TM_ERESOURCE_NOT_FOUND, "RESOURCE_NOT_FOUND", "NotFoundError" },
	{ TM_ESTORAGE, "STORAGE_ERROR", "ServerError" },
	{ TM_ENOMEM, "OUT_OF_MEMORY", "ServerError" },
	{ TM_EINVAL, "INVALID_ARGUMENT", "ServerError" },
};

const char *tm_error_name(int err)
{
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
		if (errors[i].err == err)
			return errors[i].name;
	return "UNKNOWN_ERROR";
}

const char *tm_error_class(int err)
{
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
		if (errors[i].err == err)
			return errors[i].cls;
	return "ServerError";
}

const char *tm_last_error(void)
{
	return last_message;
}

int tm_errorf(int err, const char *fmt, ...)
{
	va_list ap;

	if (fmt == NULL) {
		last_message[0] = '\0';
		return err;
	}
	va_start(ap, fmt);
	vsnprintf(last_message, sizeof(last_message), fmt, ap);
	va_end(ap);
	return err;
}

void tm__error_clear(void)
{
	last_message[0] = '\0';
}

int tm__error_sys(int err, const char *context)
{
	if (err == ENOMEM)
		return tm_errorf(TM_ENOMEM, "%s: out of memory", context);
	return tm_errorf(TM_ESTORAGE, "%s: %s", context, strerror(err));
}

const char *tm_version(void)
{
	return TM_VERSION_STRING;
}

int tm__error_oom(void)
{
	return tm_errorf(TM_ENOMEM, "out of memory");
}
