/* The example jobs of the eight task names of the REST API, and what they
 * share: the manager, the LOCAL tables directory and the simulated
 * duration. */
#ifndef SRV_JOBS_H
#define SRV_JOBS_H

#include "taskmgr.h"
#include "tables.h"

typedef struct srv_jobs {
	tm_manager *tm;
	const char *tables_dir;
	double simulate_s;  /* duration of each simulated ML job */
} srv_jobs;

/* ---- contexts.c: the context_task of each table job ------------------- */

typedef struct srv_import_ctx {
	srv_table in;
	char resource[32];   /* "resource" given by the caller, or "" */
} srv_import_ctx;

typedef struct srv_reco_ctx {
	srv_table in, out;
	int amt;             /* recommendations per user, 1..100 (default 10) */
	int n_filters;
} srv_reco_ctx;

typedef struct srv_output_ctx {
	srv_table out;
} srv_output_ctx;

/* Parse and check a context_task.  With @p dirfd >= 0 the input table must
 * also exist (TM_ETABLE_NOT_FOUND) and, for reco_export, have a user_id
 * column.  Return TM_OK or a tm_error with its message set. */
int srv_ctx_import(const char *json, int dirfd, srv_import_ctx *out);
int srv_ctx_reco(const char *json, int dirfd, srv_reco_ctx *out);
/* user_id_whitelist_export (need_csv) and analytics_report_export. */
int srv_ctx_output(const char *json, int need_csv, srv_output_ctx *out);

/* The validate hooks of tm_job_def; @p user is a srv_jobs.  A missing
 * tables directory is TM_ERESOURCE_NOT_FOUND. */
int srv_validate_import(const char *context_json, void *user);
int srv_validate_reco(const char *context_json, void *user);
int srv_validate_whitelist(const char *context_json, void *user);
int srv_validate_report(const char *context_json, void *user);

/* ---- the handlers' shared parts --------------------------------------- */

/* End a task FAILED with "what: <tm_last_error()>". */
tm_status srv_job_fail_last(tm_job *job, const char *what);

/* analytics_report_export (jobs_report.c). */
tm_status srv_run_report(tm_job *job, void *user);

/* ---- registration ------------------------------------------------------ */

/* ml_model_retrain, item_popularity_score_recalibrate, ml_new_users,
 * ml_new_items: public, exclusive, simulated (jobs_ml.c). */
int srv_jobs_register_ml(srv_jobs *jobs);
/* data_import, reco_export, user_id_whitelist_export (jobs_tables.c) and
 * analytics_report_export (jobs_report.c): private. */
int srv_jobs_register_tables(srv_jobs *jobs);

#endif
