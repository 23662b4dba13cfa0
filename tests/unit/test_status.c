/* The status ordering rule (doc/contract.md, "Statuses and the ordering
 * rule"): a change from s to t is allowed when t == s or t ranks higher;
 * every (from, to) pair of statuses, through tm_patch. */
#include <string.h>

#include "common.h"

TT_STORE_FIXTURE

START_TEST(every_status_pair_follows_the_ordering_rule)
{
	tt_register(tm, "job", 0);
	for (int from = 0; from < 6; from++) {
		for (int to = 1; to < 6; to++) {
			const char *was = tt_status_names[from], *want = tt_status_names[to];
			char id[21], body[64], buf[32], *out = NULL;
			int rc;

			tt_task_in(tm, "job", from ? was : NULL, id);
			ck_assert_str_eq(tt_status(tm, "job", id, buf), was);
			snprintf(body, sizeof(body), "{\"status\":\"%s\"}", want);
			rc = tm_patch(tm, "job", id, body, &out);
			if (to == from || tt_rank(want) > tt_rank(was)) {
				ck_assert_msg(rc == TM_OK, "%s -> %s refused: %s", was, want,
				              tm_last_error());
				ck_assert_ptr_nonnull(out);
				tm_free(out);
				ck_assert_str_eq(tt_status(tm, "job", id, buf), want);
			} else {
				ck_assert_msg(rc == TM_ELOWER_STATUS, "%s -> %s gave %s", was,
				              want, tm_error_name(rc));
				ck_assert_ptr_null(out);
				ck_assert_str_eq(tt_status(tm, "job", id, buf), was);
			}
		}
	}
}
END_TEST

START_TEST(request_sent_is_never_a_patch_target)
{
	char id[21], buf[32];

	tt_register_with_task(tm, "job", 0, NULL, id);
	ck_assert_err(tm_patch(tm, "job", id, "{\"status\":\"REQUEST_SENT\"}", NULL),
	              TM_EWRONG_DATA);
	ck_assert_str_eq(tt_status(tm, "job", id, buf), "REQUEST_SENT");
}
END_TEST

START_TEST(status_names_match_the_seed)
{
	for (int s = 0; s < 6; s++)
		ck_assert_str_eq(tm_status_name((tm_status)s), tt_status_names[s]);
	ck_assert_ptr_null(tm_status_name((tm_status)6));
	ck_assert_ptr_null(tm_status_name((tm_status)-1));
}
END_TEST

TT_STORE_MAIN("status",
	every_status_pair_follows_the_ordering_rule,
	request_sent_is_never_a_patch_target,
	status_names_match_the_seed)
