/* SPEC section 3: every (from, to) pair of statuses, through tm_patch. */
#include <string.h>

#include "common.h"

static const char *const names[] = {
	"REQUEST_SENT", "RUNNING", "CANCELLED_REQUESTED",
	"FAILED", "CANCELLED", "COMPLETED",
};

static int rank(int s)
{
	return s >= 3 ? 3 : s;
}

/* Bring a fresh task to status `from` through allowed steps. */
static void reach(tm_manager *tm, const char *id, int from)
{
	char body[64];

	if (from == 0)
		return;
	if (from >= 2) {
		ck_assert_ok(tm_patch(tm, "job", id, "{\"status\":\"RUNNING\"}", NULL));
	}
	snprintf(body, sizeof(body), "{\"status\":\"%s\"}", names[from]);
	ck_assert_ok(tm_patch(tm, "job", id, body, NULL));
}

START_TEST(every_status_pair_follows_the_ordering_rule)
{
	char *dir = tt_tmpdir();
	tm_manager *tm = tt_open(dir, 0);

	tt_register(tm, "job", 0);
	for (int from = 0; from < 6; from++) {
		for (int to = 1; to < 6; to++) {
			char id[21], body[64], buf[32], *out = NULL;
			int rc;

			tt_trigger(tm, "job", NULL, id);
			reach(tm, id, from);
			ck_assert_str_eq(tt_status(tm, "job", id, buf), names[from]);
			snprintf(body, sizeof(body), "{\"status\":\"%s\"}", names[to]);
			rc = tm_patch(tm, "job", id, body, &out);
			if (to == from || rank(to) > rank(from)) {
				ck_assert_msg(rc == TM_OK, "%s -> %s refused: %s",
				              names[from], names[to], tm_last_error());
				ck_assert_ptr_nonnull(out);
				tm_free(out);
				ck_assert_str_eq(tt_status(tm, "job", id, buf), names[to]);
			} else {
				ck_assert_msg(rc == TM_ELOWER_STATUS, "%s -> %s gave %s",
				              names[from], names[to], tm_error_name(rc));
				ck_assert_ptr_null(out);
				ck_assert_str_eq(tt_status(tm, "job", id, buf), names[from]);
			}
		}
	}
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(request_sent_is_never_a_patch_target)
{
	char *dir = tt_tmpdir(), id[21], buf[32];
	tm_manager *tm = tt_open(dir, 0);

	tt_register(tm, "job", 0);
	tt_trigger(tm, "job", NULL, id);
	ck_assert_err(tm_patch(tm, "job", id, "{\"status\":\"REQUEST_SENT\"}", NULL),
	              TM_EWRONG_DATA);
	ck_assert_str_eq(tt_status(tm, "job", id, buf), "REQUEST_SENT");
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(status_names_match_the_seed)
{
	for (int s = 0; s < 6; s++)
		ck_assert_str_eq(tm_status_name((tm_status)s), names[s]);
	ck_assert_ptr_null(tm_status_name((tm_status)6));
	ck_assert_ptr_null(tm_status_name((tm_status)-1));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("status");
	TCase *tc;

	tc = tcase_create("every_status_pair_follows_the_ordering_rule");
	tcase_add_test(tc, every_status_pair_follows_the_ordering_rule);
	suite_add_tcase(s, tc);
	tc = tcase_create("request_sent_is_never_a_patch_target");
	tcase_add_test(tc, request_sent_is_never_a_patch_target);
	suite_add_tcase(s, tc);
	tc = tcase_create("status_names_match_the_seed");
	tcase_add_test(tc, status_names_match_the_seed);
	suite_add_tcase(s, tc);
	return tt_run(s);
}
