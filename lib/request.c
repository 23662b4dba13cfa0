/* Parsing and checking the request bodies of tm_trigger() and tm_patch().
 * Everything a body can get wrong is caught here, before any transaction,
 * so a rejected call never touches the store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "json.h"
#include "request.h"
#include "status.h"
#include "task.h"

#define REASON_MAX 1024
#define SECRET_MAX 8192

/* details keys the library owns: a patch may not rewrite them. */
static const char *const owned_details[] = {
	"payload", "timeout_at", "create_reason", "attempts", "end_time", "retry_of",
	"not_before", "priority", "after", "then",
};

static int wrong(const char *fmt, const char *arg)
{
	return tm_errorf(TM_EWRONG_DATA, fmt, arg);
}

void tm__trigger_req_free(tm__trigger_req *req)
{
	cJSON_Delete(req->doc);
	memset(req, 0, sizeof(*req));
}

/* The fields of one trigger body, req->doc, parsed already. */
static int trigger_fields(tm__trigger_req *req)
{
	int err = TM_OK;

	if (!cJSON_IsObject(req->doc))
		return wrong("trigger body must be a JSON object%s", "");
	for (const cJSON *f = req->doc->child; f && !err; f = f->next) {
		if (strcmp(f->string, "context_task") == 0) {
			if (!cJSON_IsObject(f))
				err = wrong("context_task must be an object%s", "");
			else
				req->context = (cJSON *)f;
		} else if (strcmp(f->string, "refresh_token") == 0) {
			if (!cJSON_IsString(f) || strlen(f->valuestring) > SECRET_MAX)
				err = wrong("refresh_token must be a string of at most 8192 bytes%s", "");
			else
				req->secret = f->valuestring;
		} else if (strcmp(f->string, "not_before") == 0) {
			/* The range the REST API gives start_time. */
			if (!cJSON_IsNumber(f) || !(f->valuedouble >= -150000000000.0) ||
			    !(f->valuedouble <= 3500000000.0))
				err = wrong("not_before must be a number of seconds since the "
				            "epoch, from -150000000000 to 3500000000%s", "");
			else {
				req->scheduled = true;
				req->not_before = f->valuedouble;
			}
		} else if (strcmp(f->string, "priority") == 0) {
			if (!cJSON_IsNumber(f) || !(f->valuedouble >= TM__PRIORITY_MIN) ||
			    !(f->valuedouble <= TM__PRIORITY_MAX) ||
			    f->valuedouble != (double)(int)f->valuedouble)
				err = tm_errorf(TM_EWRONG_DATA, "priority must be an integer "
				                "from %d to %d", TM__PRIORITY_MIN, TM__PRIORITY_MAX);
			else {
				req->has_priority = true;
				req->priority = (int)f->valuedouble;
			}
		} else if (strcmp(f->string, "create_reason") == 0) {
			if (!cJSON_IsString(f) || f->valuestring[0] == '\0' ||
			    strlen(f->valuestring) > REASON_MAX)
				err = wrong("create_reason must be a non-empty string of at most 1024 bytes%s", "");
			else
				req->reason = f->valuestring;
		} else {
			err = wrong("unknown field '%.64s' in trigger body", f->string);
		}
	}
	if (!err && req->context == NULL) {
		req->context = cJSON_AddObjectToObject(req->doc, "context_task");
		if (req->context == NULL)
			err = tm__error_oom();
	}
	return err;
}

int tm__trigger_req_parse(const char *body, tm__trigger_req *req)
{
	int err = TM_OK;

	memset(req, 0, sizeof(*req));
	req->doc = body ? tm__json_parse(body, "trigger body", &err)
	                : cJSON_CreateObject();
	if (req->doc == NULL)
		return err ? err : tm__error_oom();
	err = trigger_fields(req);
	if (err)
		tm__trigger_req_free(req);
	return err;
}

void tm__trigger_many_free(tm__trigger_req *reqs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		reqs[i].doc = NULL; /* items of the array, freed with it */
	if (n > 0)
		cJSON_Delete(reqs[0].array);
	free(reqs);
}

int tm__trigger_many_parse(const char *bodies, tm__trigger_req **out, size_t *n)
{
	cJSON *array;
	tm__trigger_req *reqs;
	size_t i = 0, count;
	int err = TM_OK;

	*out = NULL;
	*n = 0;
	if (bodies == NULL)
		return wrong("bodies_json is missing%s", "");
	array = tm__json_parse(bodies, "bodies_json", &err);
	if (array == NULL)
		return err;
	count = (size_t)cJSON_GetArraySize(array);
	if (!cJSON_IsArray(array) || count == 0 || count > TM_TRIGGER_MANY_MAX) {
		cJSON_Delete(array);
		return tm_errorf(TM_EWRONG_DATA, "bodies_json must be an array of 1 to "
		                 "%d trigger bodies", TM_TRIGGER_MANY_MAX);
	}
	reqs = calloc(count, sizeof(*reqs));
	if (reqs == NULL) {
		cJSON_Delete(array);
		return tm__error_oom();
	}
	reqs[0].array = array;
	for (cJSON *b = array->child; b && !err; b = b->next, i++) {
		reqs[i].doc = b;
		err = trigger_fields(&reqs[i]);
	}
	if (err == TM_EWRONG_DATA) {
		char msg[256];

		snprintf(msg, sizeof(msg), "%s", tm_last_error());
		tm_errorf(err, "bodies_json[%zu]: %s", i - 1, msg);
	}
	if (err) {
		tm__trigger_many_free(reqs, count);
		return err;
	}
	*out = reqs;
	*n = count;
	return TM_OK;
}

void tm__patch_req_free(tm__patch_req *req)
{
	cJSON_Delete(req->doc);
	memset(req, 0, sizeof(*req));
}

static int check_details(const cJSON *d)
{
	if (!cJSON_IsObject(d))
		return wrong("details must be an object%s", "");
	for (const cJSON *f = d->child; f; f = f->next) {
		for (size_t i = 0; i < sizeof(owned_details) / sizeof(*owned_details); i++)
			if (strcmp(f->string, owned_details[i]) == 0)
				return wrong("details.%s is kept by the library and cannot be patched",
				             f->string);
		if (strcmp(f->string, "progress") == 0 && !cJSON_IsObject(f))
			return wrong("details.progress must be an object%s", "");
	}
	return TM_OK;
}

/* completed/failed are shorthands for a status; with a status beside them
 * they must agree, or the body contradicts itself. */
static int shorthand(tm__patch_req *req, const cJSON *f, tm_status st)
{
	if (!cJSON_IsBool(f))
		return wrong("%s must be a boolean", f->string);
	if (cJSON_IsTrue(f)) {
		if (req->status >= 0 && req->status != (int)st)
			return wrong("%s contradicts the status in the same body", f->string);
		req->status = (int)st;
	} else if (req->status == (int)st) {
		return wrong("%s: false contradicts the status in the same body", f->string);
	}
	return TM_OK;
}

int tm__patch_req_parse(const char *body, tm__patch_req *req)
{
	const cJSON *status = NULL, *completed = NULL, *failed = NULL;
	int err = TM_OK;

	memset(req, 0, sizeof(*req));
	req->status = -1;
	if (body == NULL)
		return wrong("patch body is missing%s", "");
	req->doc = tm__json_parse(body, "patch body", &err);
	if (req->doc == NULL)
		return err;
	if (!cJSON_IsObject(req->doc)) {
		err = wrong("patch body must be a JSON object%s", "");
		goto out;
	}
	for (const cJSON *f = req->doc->child; f && !err; f = f->next) {
		if (strcmp(f->string, "status") == 0)
			status = f;
		else if (strcmp(f->string, "details") == 0)
			req->details = f;
		else if (strcmp(f->string, "completed") == 0)
			completed = f;
		else if (strcmp(f->string, "failed") == 0)
			failed = f;
		else
			err = wrong("unknown field '%.64s' in patch body", f->string);
	}
	if (!err && status) {
		req->status = cJSON_IsString(status) ? tm__status_parse(status->valuestring) : -1;
		if (req->status < 0 || req->status == TM_REQUEST_SENT)
			err = wrong("status must be one of RUNNING, CANCELLED_REQUESTED, "
			            "CANCELLED, FAILED, COMPLETED%s", "");
	}
	if (!err && completed)
		err = shorthand(req, completed, TM_COMPLETED);
	if (!err && failed)
		err = shorthand(req, failed, TM_FAILED);
	if (!err && completed && failed && cJSON_IsTrue(completed) && cJSON_IsTrue(failed))
		err = wrong("completed and failed cannot both be true%s", "");
	if (!err && req->details)
		err = check_details(req->details);
out:
	if (err)
		tm__patch_req_free(req);
	return err;
}
