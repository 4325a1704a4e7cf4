/* donor.c: rules decided about real processes through their pidfds. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "config.h"
#include "donor.h"
#include "process.h"

#define UNIFIED "/sys/fs/cgroup/unified"

/* A child that runs exe (NULL: stays this program) and waits. */
static pid_t child(const char *exe, int *pidfd)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		if (exe)
			execl(exe, exe, "30", (char *)NULL);
		pause();
		_exit(0);
	}
	*pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	assert_true(*pidfd >= 0);
	return pid;
}

static void reap(pid_t pid, int pidfd)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(pidfd);
}

static bool matches(const struct donor_rules *r, pid_t pid, int pidfd)
{
	struct ident who;

	if (process_ident(pidfd, &who) < 0)
		return false;
	assert_int_equal(who.pid, pid);
	return donor_match(r, pidfd, &who);
}

static void test_cgroup_components(void **state)
{
	(void)state;
	assert_true(donor_cgroup_covers("/app", "/app"));
	assert_true(donor_cgroup_covers("/app", "/app/session-1"));
	assert_false(donor_cgroup_covers("/app", "/app-evil"));
	assert_false(donor_cgroup_covers("/app", "/ap"));
	assert_false(donor_cgroup_covers("/app/x", "/app"));
	assert_true(donor_cgroup_covers("/", "/anything"));
}

static void test_uid(void **state)
{
	struct donor_rules r = { .uids = { getuid() }, .n_uids = 1 };
	struct donor_rules other = { .uids = { getuid() + 1 }, .n_uids = 1 };
	struct ident who;
	int pidfd;
	pid_t pid = child(NULL, &pidfd);

	(void)state;
	assert_true(matches(&r, pid, pidfd));
	assert_false(matches(&other, pid, pidfd));
	/* gone: its pidfd says so, whatever now has its pid */
	assert_int_equal(process_ident(pidfd, &who), 0);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	assert_false(donor_match(&r, pidfd, &who));
	assert_int_equal(process_alive(pidfd), -ESRCH);
	close(pidfd);
}

/* The rule names a file: through a symlink or "..", it still matches the
 * process running that file; a copy of the file elsewhere does not. */
static void test_exe_by_file(void **state)
{
	char dir[] = "/tmp/impd-donor-XXXXXX", link[64], dotdot[128], copy[64], cmd[256];
	struct donor_rules r = { .n_exes = 1 };
	int pidfd;
	pid_t pid;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(link, sizeof(link), "%s/sleep-link", dir);
	snprintf(copy, sizeof(copy), "%s/sleep-copy", dir);
	snprintf(dotdot, sizeof(dotdot), "%s/../%s/sleep-link", dir, strrchr(dir, '/') + 1);
	assert_int_equal(symlink("/bin/sleep", link), 0);
	snprintf(cmd, sizeof(cmd), "cp /bin/sleep %s", copy);
	assert_int_equal(system(cmd), 0);

	snprintf(r.exes[0], IMPD_RULE_LEN, "%s", link);
	pid = child("/bin/sleep", &pidfd);
	usleep(50000); /* exec done */
	assert_true(matches(&r, pid, pidfd));
	snprintf(r.exes[0], IMPD_RULE_LEN, "%s", dotdot);
	assert_true(matches(&r, pid, pidfd));
	reap(pid, pidfd);

	pid = child(copy, &pidfd);
	usleep(50000);
	assert_false(matches(&r, pid, pidfd));
	reap(pid, pidfd);

	/* the process that has not exec'ed yet runs this test, not sleep */
	pid = child(NULL, &pidfd);
	assert_false(matches(&r, pid, pidfd));
	reap(pid, pidfd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static int write_pid(const char *dir, pid_t pid)
{
	char path[512];
	FILE *f;
	int r;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	if (!(f = fopen(path, "w")))
		return -errno;
	r = fprintf(f, "%d\n", (int)pid) < 0 ? -EIO : 0;
	if (fclose(f) != 0)
		r = -errno;
	return r;
}

/* Components, not string prefixes: /app does not cover /app-evil. */
static void test_cgroup(void **state)
{
	struct donor_rules r = { .n_cgroups = 1 };
	char app[200], evil[220], sub[240];
	struct stat st;
	int pidfd;
	pid_t pid;

	(void)state;
	if (geteuid() != 0 || stat(UNIFIED "/cgroup.procs", &st) < 0) {
		print_message("skipped: needs root and a cgroup v2 mount at " UNIFIED "\n");
		skip();
	}
	snprintf(app, sizeof(app), UNIFIED "/impd-test-app-%d", (int)getpid());
	snprintf(evil, sizeof(evil), "%s-evil", app);
	snprintf(sub, sizeof(sub), "%s/session", app);
	assert_int_equal(mkdir(app, 0755), 0);
	assert_int_equal(mkdir(evil, 0755), 0);
	assert_int_equal(mkdir(sub, 0755), 0);
	snprintf(r.cgroups[0], IMPD_RULE_LEN, "%s", app + strlen(UNIFIED));

	pid = child(NULL, &pidfd);
	assert_int_equal(write_pid(evil, pid), 0);
	assert_false(matches(&r, pid, pidfd));
	assert_int_equal(write_pid(sub, pid), 0);
	assert_true(matches(&r, pid, pidfd));
	assert_int_equal(write_pid(app, pid), 0);
	assert_true(matches(&r, pid, pidfd));
	reap(pid, pidfd);
	usleep(20000);
	rmdir(sub);
	rmdir(evil);
	rmdir(app);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cgroup_components),
		cmocka_unit_test(test_uid),
		cmocka_unit_test(test_exe_by_file),
		cmocka_unit_test(test_cgroup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
