/*
 * The Unix-socket source (daemon/unix.c), measured: an unmodified server
 * nobody here wrote (redis-server, as a second uid at nice 10) behind
 * its Unix socket, four CPU loops at nice 0, and a foreground client's
 * requests (PING, one at a time, a pause between them), in the inversion
 * bench's layouts; importance off (no daemon), a donor's requests, a
 * non-donor's, and the unloaded machine, alternated in one run.  Then
 * what everyone else pays for the tracer (socketpair ping-pong pinned to
 * one CPU, tracer attached or not), the boost latency under load, and the
 * event rate held without loss.
 *
 * usage: bench-unix IMPORTANCED [ROUNDS]
 * Prints markdown.  Needs root (BPF, cgroups, a second uid).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LOOPS 4
#define MAXN 20000

static const char *daemon_bin;
static uid_t auid;
static gid_t agid;
static char dir[64], redis_sock[128], imp_sock[128], log_path[128];
static pid_t daemon_pid, redis_pid, loops[LOOPS];

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, size_t n, double p)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return n ? v[(size_t)((double)(n - 1) * p)] : 0;
}

static void become(void)
{
	if (setgroups(0, NULL) < 0 || setgid(agid) < 0 || setuid(auid) < 0)
		_exit(126);
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static int connect_to(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memcpy(a.sun_path, path, strlen(path) + 1);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void kill_all(void);

static void wait_for(const char *path)
{
	for (int i = 0; i < 6000; i++) {
		int fd = connect_to(path);

		if (fd >= 0) {
			close(fd);
			return;
		}
		usleep(10000);
	}
	fprintf(stderr, "bench-unix: %s did not come up\n", path);
	kill_all();
	exit(1);
}

static void stop(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGTERM);
		waitpid(*pid, NULL, 0);
	}
	*pid = 0;
}

/* Whatever happens, nothing of the bench outlives it: the loops spin at
 * nice 0 and would take the machine.  A watchdog (SIGALRM, re-armed per
 * section) and every exit path kill the sessions it started. */
static void kill_all(void)
{
	for (int i = 0; i < LOOPS; i++)
		if (loops[i] > 0)
			kill(loops[i], SIGKILL);
	if (redis_pid > 0)
		kill(-redis_pid, SIGKILL);
	if (daemon_pid > 0)
		kill(daemon_pid, SIGTERM);
}

static void on_alarm(int sig)
{
	(void)sig;
	kill_all();
	_exit(3);
}

/* ------------------------------------------------------------------ */

static void start_daemon(const char *backend, const char *extra)
{
	char cmd[1024];

	snprintf(imp_sock, sizeof(imp_sock), "%s/imp.sock", dir);
	snprintf(log_path, sizeof(log_path), "%s/daemon.log", dir);
	snprintf(cmd, sizeof(cmd),
		 "exec %s --no-config --socket %s --backend %s --unix yes --donor-uid 0 --unix-receiver-uid %u %s "
		 "2>>%s",
		 daemon_bin, imp_sock, backend, (unsigned)auid, extra, log_path);
	if ((daemon_pid = fork()) == 0) {
		setsid();
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 6000 && access(imp_sock, F_OK) < 0; i++)
		usleep(10000); /* a seqpacket socket: it is there once it listens */
	usleep(200000);
}

/* layout 0: load in the server's session; 1: load in other sessions */
static void start_redis_and_load(int layout, bool load)
{
	snprintf(redis_sock, sizeof(redis_sock), "%s/redis.sock", dir);
	if ((redis_pid = fork()) == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		setsid();
		if (layout == 0 && load)
			for (int i = 0; i < LOOPS; i++)
				if (fork() == 0)
					for (;;)
						;
		setpriority(PRIO_PROCESS, 0, 10);
		become();
		execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", redis_sock, "--unixsocketperm",
		       "777", "--save", "", "--appendonly", "no", "--dir", dir, (char *)NULL);
		_exit(127);
	}
	if (layout == 1 && load)
		for (int i = 0; i < LOOPS; i++)
			if ((loops[i] = fork()) == 0) {
				setsid();
				for (;;)
					;
			}
	wait_for(redis_sock);
}

static void stop_redis_and_load(void)
{
	char cmd[256];

	for (int i = 0; i < LOOPS; i++)
		if (loops[i] > 0) {
			kill(loops[i], SIGKILL);
			waitpid(loops[i], NULL, 0);
			loops[i] = 0;
		}
	/* loops in the server's session: its process group */
	if (redis_pid > 0) {
		kill(-redis_pid, SIGKILL);
		waitpid(redis_pid, NULL, 0);
		redis_pid = 0;
	}
	snprintf(cmd, sizeof(cmd), "rm -f %s", redis_sock);
	if (system(cmd) != 0)
		fprintf(stderr, "bench-unix: rm failed\n");
}

/* n PINGs, one at a time with 5 ms between them, as root (a donor) or
 * the second uid: their latencies in ns into out (through a pipe). */
static size_t requests(bool donor, int n, uint64_t *out)
{
	int p[2];
	pid_t pid;
	size_t got = 0;
	ssize_t r;

	if (pipe(p) < 0)
		return 0;
	if ((pid = fork()) == 0) {
		int fd;
		char buf[64];

		close(p[0]);
		alarm(60);
		if (!donor)
			become();
		if ((fd = connect_to(redis_sock)) < 0)
			_exit(1);
		for (int i = 0; i < n; i++) {
			uint64_t t0 = now_ns(), dt;

			if (write(fd, "PING\r\n", 6) != 6 || read(fd, buf, sizeof(buf)) <= 0)
				_exit(2);
			dt = now_ns() - t0;
			if (write(p[1], &dt, sizeof(dt)) != sizeof(dt))
				_exit(3);
			usleep(5000);
		}
		_exit(0);
	}
	close(p[1]);
	while (got < (size_t)n && (r = read(p[0], &out[got], sizeof(*out))) == sizeof(*out))
		got++;
	close(p[0]);
	waitpid(pid, NULL, 0);
	return got;
}

static void foreground_section(int n)
{
	static const char *const layouts[] = { "load in the server's session", "load in other sessions" };
	static uint64_t v[4][MAXN];

	printf("### redis-server at nice 10 (uid %u), four nice-0 loops, PING one at a time (%d each)\n\n", (unsigned)auid,
	       n);
	printf("| layout | unloaded p50 | off p50 / p99 (x unloaded) | donor p50 / p99 | non-donor p50 / p99 |\n");
	printf("|---|---|---|---|---|\n");
	for (int l = 0; l < 2; l++) {
		size_t c[4];
		uint64_t u50, u99;

		start_redis_and_load(l, false);
		c[0] = requests(true, n, v[0]);
		stop_redis_and_load();
		start_redis_and_load(l, true);
		c[1] = requests(true, n, v[1]);
		start_daemon("cgroup-v1", "");
		c[2] = requests(true, n, v[2]);
		c[3] = requests(false, n, v[3]);
		stop(&daemon_pid);
		stop_redis_and_load();
		u50 = pct(v[0], c[0], 0.5);
		u99 = pct(v[0], c[0], 0.99);
		if (!u50 || !u99)
			continue;
		printf("| %s | %.0f us |", layouts[l], (double)u50 / 1000);
		for (int m = 1; m < 4; m++)
			printf(" %.2fx / %.2fx |", (double)pct(v[m], c[m], 0.5) / (double)u50,
			       (double)pct(v[m], c[m], 0.99) / (double)u99);
		printf("\n");
	}
	printf("\n");
}

/* ------------------------------------------------------------------ */

/* A ping-pong over a socketpair, both ends pinned to CPU 0: the parent
 * (root, a donor; or the second uid: unrelated to any rule) and a child
 * as the second uid.  Round trips' p50, ns. */
static uint64_t pingpong(bool donor, int n)
{
	static uint64_t v[MAXN];
	int sp[2], p[2];
	pid_t pid, client;
	size_t got = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0 || pipe(p) < 0)
		return 0;
	if ((pid = fork()) == 0) {
		char b;

		pin(0);
		become();
		close(sp[0]);
		while (read(sp[1], &b, 1) == 1)
			if (write(sp[1], &b, 1) != 1)
				break;
		_exit(0);
	}
	close(sp[1]);
	if ((client = fork()) == 0) {
		char b = 'x';

		pin(0);
		if (!donor)
			become();
		for (int i = 0; i < n; i++) {
			uint64_t t0 = now_ns(), dt;

			if (write(sp[0], &b, 1) != 1 || read(sp[0], &b, 1) != 1)
				_exit(2);
			dt = now_ns() - t0;
			if (write(p[1], &dt, sizeof(dt)) != sizeof(dt))
				_exit(3);
		}
		_exit(0);
	}
	close(p[1]);
	close(sp[0]);
	while (got < (size_t)n && read(p[0], &v[got], sizeof(v[got])) == sizeof(v[got]))
		got++;
	close(p[0]);
	waitpid(client, NULL, 0);
	waitpid(pid, NULL, 0);
	return pct(v, got, 0.5);
}

static void cost_section(int n)
{
	uint64_t off_u, on_u, off_d, on_d;

	/* alternated, each twice, the smaller p50 of each kept */
	off_u = pingpong(false, n);
	off_d = pingpong(true, n);
	start_daemon("nice", "");
	on_u = pingpong(false, n);
	on_d = pingpong(true, n);
	stop(&daemon_pid);
	{
		uint64_t a = pingpong(false, n), b = pingpong(true, n);

		off_u = a < off_u ? a : off_u;
		off_d = b < off_d ? b : off_d;
	}
	start_daemon("nice", "");
	{
		uint64_t a = pingpong(false, n), b = pingpong(true, n);

		on_u = a < on_u ? a : on_u;
		on_d = b < on_d ? b : on_d;
	}
	stop(&daemon_pid);
	printf("### What everyone else pays: socketpair ping-pong pinned to one CPU (%d round trips, p50)\n\n", n);
	printf("| pair | tracer off | tracer attached | ratio |\n|---|---|---|---|\n");
	printf("| two unrelated processes (no donor) | %.2f us | %.2f us | %.3fx |\n", (double)off_u / 1000,
	       (double)on_u / 1000, (double)on_u / (double)off_u);
	printf("| a donor to a receiver | %.2f us | %.2f us | %.3fx |\n\n", (double)off_d / 1000, (double)on_d / 1000,
	       (double)on_d / (double)off_d);
}

/* ------------------------------------------------------------------ */

/* Boost latency under load: a donor's send to a receiver at nice 10 (a
 * child as the second uid that reads, waits 20 ms, answers) until the
 * kernel shows the reader at the boosted nice. */
static void latency_section(int n)
{
	static uint64_t v[MAXN];
	size_t got = 0;
	int sp[2];
	pid_t reader;

	start_redis_and_load(1, true);
	start_daemon("nice", "");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return;
	if ((reader = fork()) == 0) {
		char b;

		setpriority(PRIO_PROCESS, 0, 10);
		become();
		close(sp[0]);
		while (read(sp[1], &b, 1) == 1) {
			usleep(20000);
			if (write(sp[1], &b, 1) != 1)
				break;
		}
		_exit(0);
	}
	close(sp[1]);
	for (int i = 0; i < n; i++) {
		char b = 'x';
		uint64_t t0 = now_ns(), dt = 0;

		if (write(sp[0], &b, 1) != 1)
			break;
		while (now_ns() - t0 < 20000000u) {
			errno = 0;
			if (getpriority(PRIO_PROCESS, (id_t)reader) == -10) {
				dt = now_ns() - t0;
				break;
			}
		}
		if (read(sp[0], &b, 1) != 1)
			break;
		if (i > 0 && dt) /* the first only tells who reads (a socketpair) */
			v[got++] = dt;
		usleep(5000);
	}
	close(sp[0]);
	waitpid(reader, NULL, 0);
	stop(&daemon_pid);
	stop_redis_and_load();
	printf("### Boost latency under load (a donor's send to the reader at the boosted nice; %zu of %d)\n\n", got,
	       n - 1);
	printf("| p50 | p99 | max |\n|---|---|---|\n| %.0f us | %.0f us | %.0f us |\n\n", (double)pct(v, got, 0.5) / 1000,
	       (double)pct(v, got, 0.99) / 1000, got ? (double)v[got - 1] / 1000 : 0.0);
}

/* Events held without loss: a donor's ping-pong to a receiver as fast as
 * it goes (three events a round trip), for two seconds; then with the
 * daemon stopped meanwhile (it cannot read: the ring buffer fills). */
static void rate_section(void)
{
	char line[512];
	bool lost = false;
	uint64_t t0, trips = 0;
	int sp[2];
	pid_t echo;
	FILE *f;

	start_daemon("nice", "");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return;
	if ((echo = fork()) == 0) {
		char b;

		become();
		close(sp[0]);
		while (read(sp[1], &b, 1) == 1)
			if (write(sp[1], &b, 1) != 1)
				break;
		_exit(0);
	}
	close(sp[1]);
	t0 = now_ns();
	while (now_ns() - t0 < 2000000000u) {
		char b = 'x';

		if (write(sp[0], &b, 1) != 1 || read(sp[0], &b, 1) != 1)
			break;
		trips++;
	}
	close(sp[0]);
	waitpid(echo, NULL, 0);
	stop(&daemon_pid);
	if ((f = fopen(log_path, "r"))) {
		while (fgets(line, sizeof(line), f))
			if (strstr(line, "events lost"))
				lost = true;
		fclose(f);
	}
	printf("### Events held\n\n");
	printf("A donor's ping-pong to a receiver, as fast as it goes for 2 s: %.0f round trips/s, about %.0f events/s, "
	       "%s.\n\n",
	       (double)trips / 2, (double)trips * 3 / 2, lost ? "events were lost" : "none lost");
}

int main(int argc, char **argv)
{
	struct passwd *pw;
	int rounds = argc > 2 ? atoi(argv[2]) : 400;

	if (argc < 2) {
		fprintf(stderr, "usage: %s IMPORTANCED [ROUNDS]\n", argv[0]);
		return 2;
	}
	if (geteuid() != 0) {
		printf("Not run: needs root (BPF, cgroups, a second uid).\n");
		return 0;
	}
	/* a uid of the bench's own: no other test's traffic goes to it */
	if (!(pw = getpwnam("impbench"))) {
		if (system("useradd -M -s /usr/sbin/nologin impbench >/dev/null 2>&1") != 0 || !(pw = getpwnam("impbench")))
			return 1;
	}
	auid = pw->pw_uid;
	agid = pw->pw_gid;
	if (rounds < 10 || rounds > MAXN)
		rounds = 400;
	daemon_bin = argv[1];
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	signal(SIGTERM, on_alarm);
	signal(SIGINT, on_alarm);
	snprintf(dir, sizeof(dir), "/tmp/bench-unix.%d", (int)getpid());
	mkdir(dir, 0777);
	chmod(dir, 0777);
	alarm(300);
	foreground_section(rounds);
	alarm(300);
	cost_section(rounds * 25);
	alarm(120);
	latency_section(rounds / 2);
	alarm(60);
	rate_section();
	alarm(0);
	kill_all();
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench-unix: could not remove %s\n", dir);
	}
	return 0;
}
