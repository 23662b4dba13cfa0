/* SIGKILL a process running a mixed load at random instants; after each
 * batch of kills, a fresh process checks that nothing acknowledged is lost,
 * that every index agrees, and that orphaned tasks are resolved.
 * CRASH_KILLS (default 200) sets the number of kills. */
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static pid_t spawn(char *const argv[], int out_fd)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (out_fd >= 0)
			dup2(out_fd, STDOUT_FILENO);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

/* Copy what the killed child acknowledged into the acks file. */
static void drain(int rfd, int acks)
{
	char buf[4096];
	ssize_t n;

	while ((n = read(rfd, buf, sizeof(buf))) > 0)
		ck_assert_int_eq(write(acks, buf, (size_t)n), n);
}

START_TEST(acknowledged_operations_survive_sigkill)
{
	const char *child = getenv("CRASH_CHILD");
	const char *k = getenv("CRASH_KILLS");
	int kills = k ? atoi(k) : 200, checks = 0;
	char *dir = tt_tmpdir(), store[512], ackpath[512], seed[32];
	int acks;

	ck_assert_msg(child != NULL, "CRASH_CHILD is not set");
	snprintf(store, sizeof(store), "%s/store", dir);
	snprintf(ackpath, sizeof(ackpath), "%s/acks", dir);
	acks = open(ackpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
	ck_assert_int_ge(acks, 0);
	srand((unsigned)time(NULL));
	for (int i = 1; i <= kills; i++) {
		int p[2], status;
		pid_t pid;

		ck_assert_int_eq(pipe(p), 0);
		snprintf(seed, sizeof(seed), "%d", rand());
		pid = spawn((char *[]){ (char *)child, "load", store, seed, NULL }, p[1]);
		close(p[1]);
		/* A random instant: from before the store is open to deep in
		 * the load, including inside commits and handlers. */
		sleep_us(rand() % 60000);
		kill(pid, SIGKILL);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFSIGNALED(status) || WEXITSTATUS(status) == 0,
		              "load child failed on its own: exit %d", WEXITSTATUS(status));
		drain(p[0], acks);
		close(p[0]);
		if (i % 20 == 0 || i == kills) {
			pid = spawn((char *[]){ (char *)child, "check", store, ackpath, NULL }, -1);
			ck_assert_int_eq(waitpid(pid, &status, 0), pid);
			ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			              "check after %d kills failed", i);
			checks++;
		}
	}
	close(acks);
	printf("crash loop: %d kills, %d checks passed\n", kills, checks);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("crash");
	TCase *tc = tcase_create("acknowledged_operations_survive_sigkill");

	tcase_set_timeout(tc, 900);
	tcase_add_test(tc, acknowledged_operations_survive_sigkill);
	suite_add_tcase(s, tc);
	return tt_run(s);
}
