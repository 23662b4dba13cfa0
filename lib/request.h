/* The bodies of tm_trigger() and tm_patch(), parsed and checked before any
 * transaction (request.c). */
#ifndef TM_REQUEST_H
#define TM_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "taskmgr.h"

typedef struct tm__trigger_req {
	cJSON *context;           /* object, never NULL after a parse */
	const char *secret;       /* points into `doc`, or NULL */
	const char *reason;       /* points into `doc`, or NULL */
	bool scheduled;           /* not_before was given: */
	double not_before;        /* epoch seconds, within the range of start_time */
	bool has_priority;        /* priority was given: */
	int priority;             /* TM__PRIORITY_MIN..MAX */
	cJSON *doc;
	cJSON *array;             /* tm__trigger_many_parse: the first holds
	                           * the whole array, which holds every doc */
} tm__trigger_req;

typedef struct tm__patch_req {
	int status;               /* a tm_status, or -1 when not asked */
	const cJSON *details;     /* object to merge, or NULL; points into doc */
	cJSON *doc;
} tm__patch_req;

int tm__trigger_req_parse(const char *body, tm__trigger_req *req);
void tm__trigger_req_free(tm__trigger_req *req);
int tm__patch_req_parse(const char *body, tm__patch_req *req);
/* A JSON array of 1..TM_TRIGGER_MANY_MAX trigger bodies; a bad one is
 * TM_EWRONG_DATA naming its index.  *out is calloc'd, n long. */
int tm__trigger_many_parse(const char *bodies, tm__trigger_req **out, size_t *n);
void tm__trigger_many_free(tm__trigger_req *reqs, size_t n);
void tm__patch_req_free(tm__patch_req *req);

#endif
