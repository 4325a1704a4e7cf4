/*
 * Shared by the Unix-socket source's end-to-end tests (test-unix.c,
 * test-attack-unix.c): a private directory, importanced with the source
 * on, redis-server as the second uid at nice 10, redis-cli, small servers
 * of the test's own and what the scheduler shows of a process.  Define
 * E2E_UNIX_NAME (the directory's name) before including it.
 */
#ifndef IMP_E2E_UNIX_H
#define IMP_E2E_UNIX_H

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"

#define BOOSTED -10 /* importanced's default boost-nice */
#define BACKGROUND 10

static uid_t auid; /* the second uid: servers, non-donors */
static gid_t agid;
static uid_t duid; /* the donors' uid (impdonor): no other test's traffic is a donor's */
static gid_t dgid;

static inline void donor_user(void)
{
	struct passwd *pw = getpwnam("impdonor");

	if (!pw) {
		if (system("useradd -M -s /usr/sbin/nologin impdonor >/dev/null 2>&1") != 0)
			fail_msg("useradd impdonor failed");
		pw = getpwnam("impdonor");
	}
	assert_non_null(pw);
	duid = pw->pw_uid;
	dgid = pw->pw_gid;
}
static char dir[64]; /* the test's own, for sockets and logs */

static inline void make_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/imp-unix-%s.%d", E2E_UNIX_NAME, (int)getpid());
	mkdir(dir, 0777);
	chmod(dir, 0777);
}

static inline int cleanup(void **state)
{
	char cmd[128];

	e2e_teardown(state);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "test-unix: could not remove %s\n", dir);
	return 0;
}

/* The daemon with the Unix source on: root is a donor; readers of
 * sockets in dir, and of uid impattack, accept boosts. */
static inline void start_daemon(const char *extra)
{
	char args[512];

	snprintf(args, sizeof(args), "--unix yes --donor-uid impdonor --unix-receiver-path %s/*.sock %s", dir,
		 extra ? extra : "");
	e2e_start_daemon(args);
}

static inline int unix_connect(const char *path, int type)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_true(strlen(path) < sizeof(a.sun_path));
	memcpy(a.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* redis-server as impattack at nice 10 on dir/NAME; its pid. */
static inline pid_t start_redis(const char *name, char *sock, size_t size)
{
	pid_t pid;

	snprintf(sock, size, "%s/%s", dir, name);
	pid = e2e_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		setpriority(PRIO_PROCESS, 0, BACKGROUND);
		e2e_become(auid, agid);
		execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", sock, "--unixsocketperm", "777",
		       "--save", "", "--appendonly", "no", "--enable-debug-command", "yes", "--dir", dir, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		int fd = unix_connect(sock, SOCK_STREAM);

		if (fd >= 0) {
			close(fd);
			return pid;
		}
		usleep(10000);
	}
	fail_msg("redis-server did not come up on %s", sock);
	return -1;
}

/* redis-cli as uid (0: the donor's) running the command words. */
static inline pid_t redis_cli(const char *sock, uid_t uid, const char *a1, const char *a2, const char *a3)
{
	pid_t pid = e2e_fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		if (uid)
			e2e_become(auid, agid);
		else
			e2e_become(duid, dgid);
		execlp("redis-cli", "redis-cli", "-s", sock, a1, a2, a3, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static inline int reap(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* What the scheduler sees of pid besides its nice: its cgroups and
 * autogroup (the text of /proc/PID/cgroup and /proc/PID/autogroup, the
 * autogroup's nice included). */
static inline void sched_state(pid_t pid, char *out, size_t size)
{
	char path[64];
	size_t got = 0;

	for (int i = 0; i < 2; i++) {
		FILE *f;
		size_t n;

		snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, i ? "autogroup" : "cgroup");
		assert_non_null(f = fopen(path, "r"));
		n = fread(out + got, 1, size - 1 - got, f);
		got += n;
		fclose(f);
	}
	out[got] = '\0';
}

/* A small server as impattack at nice 10: reads a request on fd, works
 * ms milliseconds, answers (answer false: never).  With next set, it
 * first asks next (another server's socket path) and waits for its
 * answer. */
struct server {
	int fd; /* its end (socketpairs) or listening socket */
	int type;
	bool listening, answer;
	int ms;
	const char *next;
	bool splice; /* reads with splice() into a pipe (no recvmsg) */
};

/* A read as sv reads: recv(), or splice() through a pipe. */
static inline ssize_t server_read(const struct server *sv, int fd, char *buf, size_t size)
{
	int pp[2];
	ssize_t n;

	if (!sv->splice)
		return recv(fd, buf, size, 0);
	if (pipe(pp) < 0)
		return -1;
	n = splice(fd, NULL, pp[1], NULL, size, 0);
	if (n > 0)
		n = read(pp[0], buf, (size_t)n);
	close(pp[0]);
	close(pp[1]);
	return n;
}

static inline void serve_one(const struct server *sv, int fd)
{
	char buf[256];
	ssize_t n;

	for (;;) {
		if ((n = server_read(sv, fd, buf, sizeof(buf))) <= 0)
			return;
		if (sv->next) {
			int up = unix_connect(sv->next, SOCK_STREAM);
			char reply[64];

			if (up >= 0) {
				/* redis's inline protocol */
				const char *q = "DEBUG SLEEP 0.6\r\n";

				if (write(up, q, strlen(q)) > 0 && read(up, reply, sizeof(reply)) <= 0)
					_exit(3);
				close(up);
			}
		}
		usleep((useconds_t)sv->ms * 1000);
		if (sv->answer && send(fd, "ok", 2, MSG_NOSIGNAL) < 0)
			return;
	}
}

static inline pid_t start_server(const struct server *sv)
{
	pid_t pid = e2e_fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		setpriority(PRIO_PROCESS, 0, BACKGROUND);
		e2e_become(auid, agid);
		if (!sv->listening) {
			serve_one(sv, sv->fd);
			_exit(0);
		}
		for (;;) {
			int c = accept(sv->fd, NULL, NULL);

			if (c < 0)
				_exit(1);
			serve_one(sv, c);
			close(c);
		}
	}
	return pid;
}

static inline int listen_on(const char *path, int type)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_true(strlen(path) < sizeof(a.sun_path));
	memcpy(a.sun_path, path, strlen(path) + 1);
	unlink(path);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	chmod(path, 0777);
	if (type != SOCK_DGRAM)
		assert_int_equal(listen(fd, 16), 0);
	return fd;
}

/* A request in a child of the donor's uid: sends on fd, waits for the
 * answer up to wait_ms. */
static inline pid_t request(int fd, int wait_ms)
{
	pid_t pid = e2e_fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char buf[16];

		e2e_become(duid, dgid);
		if (send(fd, "req", 3, MSG_NOSIGNAL) != 3)
			_exit(1);
		if (poll(&p, 1, wait_ms) != 1)
			_exit(2);
		_exit(recv(fd, buf, sizeof(buf), 0) > 0 ? 0 : 3);
	}
	return pid;
}

/* start(extra) with the daemon's stderr into dir/daemon.log, whose path
 * goes to log. */
static inline void start_logged(void (*start)(const char *), const char *extra, char *log, size_t size)
{
	int saved;

	snprintf(log, size, "%s/daemon.log", dir);
	saved = e2e_stderr_to(log);
	start(extra);
	e2e_stderr_back(saved);
}

/* Whether a line of the log has a (and b, unless NULL). */
static inline bool log_has(const char *log, const char *a, const char *b)
{
	char line[512];
	bool found = false;
	FILE *f = fopen(log, "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, a) && (!b || strstr(line, b)))
			found = true;
	fclose(f);
	return found;
}

#endif
