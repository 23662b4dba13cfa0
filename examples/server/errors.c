/* Error bodies: {"error_code", "error_name", "message",
 * "error_data": {"name"}}, and the HTTP status of each library error
 * (doc/contract.md, Errors). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "router.h"

static char *sanitize(const char *msg)
{
	size_t n = msg ? strlen(msg) : 0;
	char *s;

	if (n > 512)
		n = 512;
	s = malloc(n + 1);
	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)msg[i];
		s[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	s[n] = '\0';
	return s;
}

void srv_error(srv_response *out, int status, int code, const char *cls,
               const char *name, const char *message)
{
	cJSON *j = cJSON_CreateObject(), *data;
	char *msg = sanitize(message);

	memset(out, 0, sizeof(*out));
	out->status = status;
	if (j == NULL || msg == NULL ||
	    !cJSON_AddNumberToObject(j, "error_code", code) ||
	    !cJSON_AddStringToObject(j, "error_name", cls) ||
	    !cJSON_AddStringToObject(j, "message", msg) ||
	    (data = cJSON_AddObjectToObject(j, "error_data")) == NULL ||
	    !cJSON_AddStringToObject(data, "name", name)) {
		out->status = 500;
	} else {
		out->body = cJSON_PrintUnformatted(j);
		if (out->body == NULL)
			out->status = 500;
	}
	free(msg);
	cJSON_Delete(j);
}

/* The HTTP status and error_code follow the error's class: WrongData 400/40,
 * DuplicatedError 400/42, NotFoundError 404/60, anything else 500/0. */
void srv_lib_error(srv_response *out, int err)
{
	const char *cls = tm_error_class(err);
	int status = 500, code = 0;

	if (strcmp(cls, "WrongData") == 0) {
		status = 400;
		code = 40;
	} else if (strcmp(cls, "DuplicatedError") == 0) {
		status = 400;
		code = 42;
	} else if (strcmp(cls, "NotFoundError") == 0) {
		status = 404;
		code = 60;
	} else {
		cls = "ServerError";
	}
	srv_error(out, status, code, cls, tm_error_name(err), tm_last_error());
}

void srv_response_free(srv_response *r)
{
	if (r == NULL)
		return;
	/* One allocator for every body: the library's answers are malloc'd
	 * (tm_free is free), and so are cJSON's texts, since this server never
	 * installs cJSON hooks. */
	free(r->body);
	r->body = NULL;
	if (r->file) {
		if (r->file->fd >= 0)
			close(r->file->fd);
		free(r->file);
		r->file = NULL;
	}
}
