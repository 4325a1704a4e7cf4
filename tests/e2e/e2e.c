/* Helpers for end-to-end tests (e2e.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include "e2e.h"
#include "importance/client.h"

const char *e2e_daemon_bin;
char e2e_sock[108];
pid_t e2e_daemon_pid;

static pid_t kids[512];
static int n_kids;

pid_t e2e_fork(void)
{
	pid_t p = fork();

	if (p == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		n_kids = 0;
	} else if (p > 0 && n_kids < 512) {
		kids[n_kids++] = p;
	}
	return p;
}

int e2e_teardown(void **state)
{
	(void)state;
	for (int i = 0; i < n_kids; i++)
		if (kill(kids[i], SIGKILL) == 0)
			waitpid(kids[i], NULL, 0);
	n_kids = 0;
	return 0;
}

uint64_t e2e_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int e2e_fd_count(pid_t pid)
{
	char path[64];
	struct dirent *d;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if (!(dir = opendir(path)))
		return -1;
	while ((d = readdir(dir)))
		n += d->d_name[0] != '.';
	closedir(dir);
	return n;
}

long e2e_cpu_ms(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!p || !(p = strrchr(buf, ')')))
		return -1;
	/* fields 14 and 15, counted from the state (field 3) after ')' */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (long)((ut + st) * 1000 / (unsigned long)sysconf(_SC_CLK_TCK));
}

long e2e_rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

void e2e_start_daemon(const char *extra)
{
	static unsigned n;
	char *copy = strdup(extra ? extra : ""), *save = NULL;
	char *argv[40] = { (char *)e2e_daemon_bin, "--socket", e2e_sock, "--backend", "nice" };
	int k = 5;

	snprintf(e2e_sock, sizeof(e2e_sock), "/tmp/importanced-e2e.%d.%u.sock", (int)getpid(), n++);
	if (!strstr(extra ? extra : "", "--config"))
		argv[k++] = "--no-config"; /* not the machine's /etc/importanced.conf */
	for (char *w = strtok_r(copy, " ", &save); w && k < 39; w = strtok_r(NULL, " ", &save))
		argv[k++] = w;
	argv[k] = NULL;
	e2e_daemon_pid = e2e_fork();
	assert_true(e2e_daemon_pid >= 0);
	if (e2e_daemon_pid == 0) {
		setsid(); /* a session of its own, as a service manager starts it */
		execv(e2e_daemon_bin, argv);
		_exit(127);
	}
	free(copy);
	for (int i = 0; i < 500; i++) {
		impc *c;

		if (impc_connect(e2e_sock, IMPC_MONITOR, &c, NULL) == 0) {
			impc_close(c);
			return;
		}
		usleep(10000);
	}
	fail_msg("importanced did not come up on %s", e2e_sock);
}

int e2e_run_daemon(const char *const *args, char *err, size_t size)
{
	const char *argv[40] = { e2e_daemon_bin };
	int pipefd[2], status, k = 1;
	ssize_t n, got = 0;
	pid_t pid;

	for (; *args && k < 39; args++)
		argv[k++] = *args;
	argv[k] = NULL;
	assert_int_equal(pipe(pipefd), 0);
	pid = e2e_fork();
	if (pid == 0) {
		dup2(pipefd[1], 2);
		close(pipefd[0]);
		execv(e2e_daemon_bin, (char **)argv);
		_exit(127);
	}
	close(pipefd[1]);
	while ((size_t)got + 1 < size && (n = read(pipefd[0], err + got, size - 1 - (size_t)got)) > 0)
		got += n;
	err[got] = '\0';
	close(pipefd[0]);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void e2e_stop_daemon(void)
{
	int status;

	kill(e2e_daemon_pid, SIGTERM);
	waitpid(e2e_daemon_pid, &status, 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(access(e2e_sock, F_OK), -1); /* it removed its socket */
}

int e2e_nice(pid_t pid)
{
	errno = 0;
	return getpriority(PRIO_PROCESS, (id_t)pid);
}

long e2e_wait_nice(pid_t pid, int want, int timeout_ms)
{
	uint64_t start = e2e_now_ms();

	while (e2e_now_ms() - start < (uint64_t)timeout_ms) {
		if (e2e_nice(pid) == want)
			return (long)(e2e_now_ms() - start);
		usleep(2000);
	}
	return -1;
}

void e2e_attacker(uid_t *uid, gid_t *gid)
{
	struct passwd *pw = getpwnam("impattack");

	if (!pw) {
		if (system("useradd -M -s /usr/sbin/nologin impattack >/dev/null 2>&1") != 0)
			fail_msg("useradd impattack failed");
		pw = getpwnam("impattack");
	}
	assert_non_null(pw);
	assert_true(pw->pw_uid != 0);
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
}

void e2e_become(uid_t uid, gid_t gid)
{
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
		_exit(99);
	prctl(PR_SET_PDEATHSIG, SIGKILL); /* cleared by the uid change */
	prctl(PR_SET_DUMPABLE, 1);        /* its /proc files are its own again */
}

int e2e_raw_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", e2e_sock);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

void e2e_raw_send(int fd, uint16_t type, uint32_t serial, const void *body, size_t len)
{
	uint8_t frame[sizeof(struct impp_header) + 512];
	struct impp_header h = { IMPP_MAGIC, type, 0, serial, (uint32_t)len };

	assert_true(len <= 512);
	memcpy(frame, &h, sizeof(h));
	if (len)
		memcpy(frame + sizeof(h), body, len);
	send(fd, frame, sizeof(h) + len, MSG_NOSIGNAL);
}

int e2e_raw_reply(int fd, uint16_t *type, void *body, size_t size, int timeout_ms)
{
	static uint8_t buf[IMPP_MAX_FRAME];
	struct pollfd p = { fd, POLLIN, 0 };
	struct impp_header h;
	int32_t status;
	ssize_t n;

	if (poll(&p, 1, timeout_ms) == 0)
		return -ETIMEDOUT;
	n = recv(fd, buf, sizeof(buf), 0);
	if (n <= 0)
		return -EPIPE;
	if ((size_t)n < sizeof(h) + sizeof(status))
		return -EBADMSG;
	memcpy(&h, buf, sizeof(h));
	memcpy(&status, buf + sizeof(h), sizeof(status));
	if (type)
		*type = h.type;
	if (body)
		memcpy(body, buf + sizeof(h), (size_t)n - sizeof(h) < size ? (size_t)n - sizeof(h) : size);
	return status;
}

void e2e_say(int fd, char c)
{
	if (write(fd, &c, 1) != 1)
		_exit(3);
}

char e2e_hear(int fd, int timeout_ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	char c;

	if (poll(&p, 1, timeout_ms) <= 0 || read(fd, &c, 1) != 1)
		return 0;
	return c;
}

int e2e_stderr_to(const char *path)
{
	int fd, saved;

	assert_true((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) >= 0);
	assert_true((saved = dup(2)) >= 0);
	dup2(fd, 2);
	close(fd);
	return saved;
}

void e2e_stderr_back(int saved)
{
	dup2(saved, 2);
	close(saved);
}
