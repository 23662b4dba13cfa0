/* LOCAL tables: names, connections, CSV and .csv.gz reading and writing,
 * and the context_task checks of the table jobs. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "common.h"
#include "csv.h"
#include "jobs.h"

static char *dir;
static int dirfd_;

static void setup(void)
{
	dir = tt_tmpdir();
	ck_assert_ok(srv_tables_dir_open(dir, &dirfd_));
}

static void teardown(void)
{
	close(dirfd_);
	tt_rmdir(dir);
	free(dir);
}

static void put(const char *name, const char *data, size_t len, int gzip)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (gzip) {
		gzFile g = gzopen(path, "wb");
		ck_assert_ptr_nonnull(g);
		ck_assert_int_eq(gzwrite(g, data, (unsigned)len), (int)len);
		gzclose(g);
	} else {
		FILE *f = fopen(path, "wb");
		ck_assert_ptr_nonnull(f);
		ck_assert_uint_eq(fwrite(data, 1, len, f), len);
		fclose(f);
	}
}

static srv_table table(const char *name)
{
	srv_table t;

	ck_assert_ok(srv_table_set(&t, name, "test", 1));
	return t;
}

START_TEST(table_names_are_plain_file_names)
{
	const char *bad[] = { "", ".", "..", "../x.csv", "a/b.csv", "/etc/passwd",
	                      ".hidden.csv", "a..b.csv", "a\\b.csv", "x\n.csv",
	                      "\xc3\xa9.csv", "x.csv/" };
	char longname[260];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_err(srv_table_name_check(bad[i], "t"), TM_EWRONG_DATA);
	memset(longname, 'a', 201);
	longname[201] = '\0';
	ck_assert_err(srv_table_name_check(longname, "t"), TM_EWRONG_DATA);
	longname[200] = '\0';
	ck_assert_ok(srv_table_name_check(longname, "t"));
	ck_assert_ok(srv_table_name_check("input-myfile.csv.gz", "t"));
	ck_assert_ok(srv_table_name_check("analytics_report_123xyz", "t"));
}
END_TEST

START_TEST(only_local_has_a_driver)
{
	cJSON *j = cJSON_Parse("[\"LOCAL\", \"GCS\", \"S3\", \"local\", 5]");

	ck_assert_ok(srv_table_connection_check(NULL, "t"));
	ck_assert_ok(srv_table_connection_check(cJSON_GetArrayItem(j, 0), "t"));
	ck_assert_err(srv_table_connection_check(cJSON_GetArrayItem(j, 1), "t"),
	              TM_EWRONG_DATA);
	ck_assert_ptr_nonnull(strstr(tm_last_error(), "GCS"));
	ck_assert_err(srv_table_connection_check(cJSON_GetArrayItem(j, 2), "t"),
	              TM_EWRONG_DATA);
	ck_assert_ptr_nonnull(strstr(tm_last_error(), "S3"));
	ck_assert_err(srv_table_connection_check(cJSON_GetArrayItem(j, 3), "t"),
	              TM_EWRONG_DATA);
	ck_assert_err(srv_table_connection_check(cJSON_GetArrayItem(j, 4), "t"),
	              TM_EWRONG_DATA);
	cJSON_Delete(j);
}
END_TEST

/* Read every row of a table into "a|b;c|d;" form. */
static int slurp(const char *name, char *out, size_t len)
{
	srv_table t = table(name);
	const char *const *f;
	srv_csv *r;
	size_t n;
	int rc;

	out[0] = '\0';
	rc = srv_csv_open(dirfd_, &t, &r);
	if (rc)
		return rc;
	while ((rc = srv_csv_next(r, &f, &n)) == 1) {
		for (size_t i = 0; i < n; i++) {
			strncat(out, f[i], len - strlen(out) - 1);
			strncat(out, i + 1 < n ? "|" : ";", len - strlen(out) - 1);
		}
	}
	srv_csv_close(r);
	return rc;
}

START_TEST(csv_follows_rfc4180)
{
	static const char data[] = "\xef\xbb\xbfuser_id,name,note\r\n"
	                           "u1,\"Doe, Jane\",\"said \"\"hi\"\"\"\r\n"
	                           "\n"
	                           "u2,Bob,\"two\nlines\"\n"
	                           "u3,,\n"
	                           "u4,last,no newline";
	const char *want = "user_id|name|note;u1|Doe, Jane|said \"hi\";"
	                   "u2|Bob|two\nlines;u3||;u4|last|no newline;";
	char got[512];

	put("a.csv", data, sizeof(data) - 1, 0);
	put("a.csv.gz", data, sizeof(data) - 1, 1);
	ck_assert_int_eq(slurp("a.csv", got, sizeof(got)), 0);
	ck_assert_str_eq(got, want);
	ck_assert_int_eq(slurp("a.csv.gz", got, sizeof(got)), 0);
	ck_assert_str_eq(got, want);
	put("empty.csv", "", 0, 0);
	ck_assert_int_eq(slurp("empty.csv", got, sizeof(got)), 0);
	ck_assert_str_eq(got, "");
	put("q.csv", "a,\"open\n", 8, 0);
	ck_assert_err(slurp("q.csv", got, sizeof(got)), TM_EWRONG_DATA);
}
END_TEST

START_TEST(bad_tables_are_refused)
{
	static const char gz_head[] = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage";
	char got[64], path[512], target[512];
	srv_table t = table("missing.csv");
	srv_csv *r;

	ck_assert_err(srv_csv_open(dirfd_, &t, &r), TM_ETABLE_NOT_FOUND);
	ck_assert_err(srv_table_exists(dirfd_, &t, "t"), TM_ETABLE_NOT_FOUND);
	put("plain.csv.gz", "a,b\n", 4, 0);
	ck_assert_err(slurp("plain.csv.gz", got, sizeof(got)), TM_EWRONG_DATA);
	put("corrupt.csv.gz", gz_head, sizeof(gz_head) - 1, 0);
	ck_assert_err(slurp("corrupt.csv.gz", got, sizeof(got)), TM_EWRONG_DATA);
	/* a symbolic link is not followed, even to a table of the directory */
	put("real.csv", "a\n", 2, 0);
	snprintf(path, sizeof(path), "%s/link.csv", dir);
	snprintf(target, sizeof(target), "%s/real.csv", dir);
	ck_assert_int_eq(symlink(target, path), 0);
	ck_assert_err(slurp("link.csv", got, sizeof(got)), TM_EWRONG_DATA);
	t = table("link.csv");
	ck_assert_err(srv_table_exists(dirfd_, &t, "t"), TM_EWRONG_DATA);
	snprintf(path, sizeof(path), "%s/sub.csv", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	t = table("sub.csv");
	ck_assert_err(srv_table_exists(dirfd_, &t, "t"), TM_EWRONG_DATA);
}
END_TEST

START_TEST(missing_directory_is_resource_not_found)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/nope", dir);
	ck_assert_err(srv_tables_dir_open(path, &fd), TM_ERESOURCE_NOT_FOUND);
}
END_TEST

START_TEST(outputs_appear_whole_plain_or_gzip)
{
	const char *row[] = { "u,1", "say \"x\"", "plain" };
	const char *names[] = { "out.csv", "out.csv.gz" };
	char got[256];

	for (int i = 0; i < 2; i++) {
		srv_table t = table(names[i]);
		srv_out *o;

		ck_assert_ok(srv_out_create(dirfd_, &t, &o));
		ck_assert_ok(srv_csv_write_row(o, row, 3));
		ck_assert_err(srv_table_exists(dirfd_, &t, "t"), TM_ETABLE_NOT_FOUND);
		ck_assert_ok(srv_out_commit(o));
		ck_assert_int_eq(slurp(names[i], got, sizeof(got)), 0);
		ck_assert_str_eq(got, "u,1|say \"x\"|plain;");
		/* an aborted output leaves the old table and no temporary file */
		ck_assert_ok(srv_out_create(dirfd_, &t, &o));
		ck_assert_ok(srv_out_printf(o, "changed\n"));
		srv_out_abort(o);
		ck_assert_int_eq(slurp(names[i], got, sizeof(got)), 0);
		ck_assert_str_eq(got, "u,1|say \"x\"|plain;");
	}
	{
		/* the .gz one really is gzip */
		char path[512];
		int fd;
		unsigned char magic[2];

		snprintf(path, sizeof(path), "%s/out.csv.gz", dir);
		fd = open(path, O_RDONLY);
		ck_assert_int_eq(read(fd, magic, 2), 2);
		close(fd);
		ck_assert(magic[0] == 0x1f && magic[1] == 0x8b);
	}
	{
		/* only the two tables remain */
		int n = 0;
		DIR *d = opendir(dir);
		struct dirent *e;

		while ((e = readdir(d)) != NULL)
			n += e->d_name[0] != '.';
		closedir(d);
		ck_assert_int_eq(n, 2);
	}
}
END_TEST

START_TEST(job_contexts_are_checked)
{
	srv_import_ctx ic;
	srv_reco_ctx rc;
	srv_output_ctx oc;

	put("users.csv", "user_id,x\nu1,1\n", 15, 0);
	put("items.csv", "item_id\ni1\n", 11, 0);
	ck_assert_ok(srv_ctx_import("{\"connection\": \"LOCAL\", \"table_name\": "
	                            "\"users.csv\"}", dirfd_, &ic));
	ck_assert_str_eq(ic.in.name, "users.csv");
	ck_assert_ok(srv_ctx_import("{\"name\": \"users.csv\", \"resource\": \"USER\"}",
	                            dirfd_, &ic));
	ck_assert_str_eq(ic.resource, "USER");
	ck_assert_err(srv_ctx_import("{\"table_name\": \"nope.csv\"}", dirfd_, &ic),
	              TM_ETABLE_NOT_FOUND);
	ck_assert_ok(srv_ctx_import("{\"table_name\": \"nope.csv\"}", -1, &ic));
	ck_assert_err(srv_ctx_import("{\"connection\": \"GCS\", \"table_name\": "
	                             "\"users.csv\"}", dirfd_, &ic), TM_EWRONG_DATA);
	ck_assert_err(srv_ctx_import("{\"name\": \"a.csv\", \"table_name\": \"a.csv\"}",
	                             -1, &ic), TM_EWRONG_DATA);
	ck_assert_err(srv_ctx_import("{}", -1, &ic), TM_EWRONG_DATA);
	ck_assert_err(srv_ctx_import("{\"table_name\": \"a.csv\", \"resource\": \"x\"}",
	                             -1, &ic), TM_EWRONG_DATA);

	ck_assert_ok(srv_ctx_reco("{\"input_table\": {\"connection\": \"LOCAL\", "
	                          "\"name\": \"users.csv\"}, \"reco_params\": {\"amt\": 7, "
	                          "\"filters\": [\"price:eq:10\", \"tags:in:family,fiction\"]}, "
	                          "\"output_table\": {\"connection\": \"LOCAL\", "
	                          "\"name\": \"out.csv.gz\"}}", dirfd_, &rc));
	ck_assert_int_eq(rc.amt, 7);
	ck_assert_int_eq(rc.n_filters, 2);
	ck_assert(rc.out.gzip);
	ck_assert_err(srv_ctx_reco("{\"input_table\": {\"name\": \"items.csv\"}, "
	                           "\"output_table\": {\"name\": \"o.csv\"}}", dirfd_, &rc),
	              TM_EWRONG_DATA);   /* no user_id column */
	ck_assert_err(srv_ctx_reco("{\"input_table\": {\"name\": \"users.csv\"}, "
	                           "\"output_table\": {\"name\": \"users.csv\"}}", -1, &rc),
	              TM_EWRONG_DATA);
	ck_assert_err(srv_ctx_reco("{\"input_table\": {\"name\": \"users.csv\"}, "
	                           "\"output_table\": {\"name\": \"o.parquet\"}}", -1, &rc),
	              TM_EWRONG_DATA);
	ck_assert_err(srv_ctx_reco("{\"input_table\": {\"name\": \"users.csv\"}, "
	                           "\"reco_params\": {\"amt\": 2.5}, "
	                           "\"output_table\": {\"name\": \"o.csv\"}}", -1, &rc),
	              TM_EWRONG_DATA);
	ck_assert_err(srv_ctx_reco("{\"input_table\": {\"name\": \"users.csv\"}, "
	                           "\"reco_params\": {\"filters\": [\"a:zz:1\"]}, "
	                           "\"output_table\": {\"name\": \"o.csv\"}}", -1, &rc),
	              TM_EWRONG_DATA);

	ck_assert_ok(srv_ctx_output("{\"output_table\": {\"name\": \"w.csv\"}}", 1, &oc));
	ck_assert_err(srv_ctx_output("{\"output_table\": {\"name\": \"w\"}}", 1, &oc),
	              TM_EWRONG_DATA);
	ck_assert_ok(srv_ctx_output("{\"output_table\": {\"name\": \"analytics_report_1\"}}",
	                            0, &oc));
	ck_assert_err(srv_ctx_output("{\"output_table\": {\"name\": \"w.csv\", "
	                             "\"x\": 1}}", 1, &oc), TM_EWRONG_DATA);
	ck_assert_err(srv_ctx_output("[]", 1, &oc), TM_EWRONG_DATA);
}
END_TEST

START_TEST(temporary_outputs_are_known_by_name)
{
	const char *temp[] = { ".a.csv.0badf00d.tmp", ".x.00000000.tmp",
	                       ".r.json.gz.ffffffff.tmp" };
	const char *other[] = { "a.csv", ".a.csv.0BADF00D.tmp", ".a.csv.0badf00.tmp",
	                        ".a.csv.0badf00d0.tmp", "..a.csv.0badf00d.tmp",
	                        ".a.csv.0badf00d.tmpx", "a.csv.0badf00d.tmp",
	                        ".0badf00d.tmp", "..0badf00d.tmp", ".a/b.0badf00d.tmp",
	                        ".a.csv0badf00d.tmp", "", "." };
	srv_table t = table("out.csv");
	srv_out *o;
	struct dirent *e;
	DIR *d;
	int seen = 0;

	for (size_t i = 0; i < sizeof(temp) / sizeof(temp[0]); i++)
		ck_assert_msg(srv_out_is_temp(temp[i]), "%s", temp[i]);
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
		ck_assert_msg(!srv_out_is_temp(other[i]), "%s", other[i]);
	/* The name an output really uses is one of them. */
	ck_assert_ok(srv_out_create(dirfd_, &t, &o));
	d = opendir(dir);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			seen += srv_out_is_temp(e->d_name);
	closedir(d);
	ck_assert_int_eq(seen, 1);
	srv_out_abort(o);
}
END_TEST

START_TEST(sweep_removes_temporary_outputs_only)
{
	char path[512];

	put(".a.csv.0badf00d.tmp", "x", 1, 0);
	put(".b.csv.12345678.tmp", "x", 1, 0);
	put("a.csv", "x", 1, 0);
	put(".a.csv.0BADF00D.tmp", "x", 1, 0);
	snprintf(path, sizeof(path), "%s/.d.csv.12345678.tmp", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(srv_out_sweep(dirfd_), 2);
	ck_assert_int_eq(faccessat(dirfd_, ".a.csv.0badf00d.tmp", F_OK, 0), -1);
	ck_assert_int_eq(faccessat(dirfd_, "a.csv", F_OK, 0), 0);
	ck_assert_int_eq(faccessat(dirfd_, ".a.csv.0BADF00D.tmp", F_OK, 0), 0);
	ck_assert_int_eq(faccessat(dirfd_, ".d.csv.12345678.tmp", F_OK, 0), 0);
	ck_assert_int_eq(srv_out_sweep(dirfd_), 0);
	ck_assert_int_eq(rmdir(path), 0);
}
END_TEST

TT_MAIN_FIXTURE("tables", setup, teardown,
	table_names_are_plain_file_names,
	only_local_has_a_driver,
	csv_follows_rfc4180,
	bad_tables_are_refused,
	missing_directory_is_resource_not_found,
	outputs_appear_whole_plain_or_gzip,
	temporary_outputs_are_known_by_name,
	sweep_removes_temporary_outputs_only,
	job_contexts_are_checked)
