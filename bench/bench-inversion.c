/*
 * bench-inversion — priority inversion with and without importance, per
 * boost backend, on this machine.
 *
 *   bench-inversion IMPORTANCED [--blocks N] [--block-on N] [--block-off N] [--work-us N] [--nice N]
 *                   [--latency-only 1] [--latency-rounds N] [--noharm-rounds N] [--noharm-requests N]
 *                   [--noharm-only 1]
 *
 * A background server (nice 10 by default) does a fixed unit of CPU work
 * per request.  Four busy loops load the machine, placed by the setup: in
 * the server's session, each in a session of its own, or each in a cpu
 * cgroup of its own.  A client sends one request at a time and times the
 * reply.  Per setup and per backend, in one run: the unloaded time first,
 * then with the load, blocks alternate between a donor's requests carrying
 * importance ("on") and the same client's requests without it ("off").
 * Then no harm, side by side: per setup, in rounds, every backend and
 * "none" (importanced relaying, changing no scheduling: the stand-in for
 * importanced not running) once each in an order rotated from round to
 * round, each a fresh daemon and server under the same load, where a donor
 * boosts the server and then a client that is not a donor ("non-donor";
 * it must get no boost) times its requests; the ratio of its p50 to
 * none's is taken within each round, and the table shows the median and
 * spread over the rounds.  "none" runs twice in each round, the second
 * time as a control: its ratio to the first is the noise.  Then the boost latency under load: from the
 * donor's send to the boost being visible where the scheduler reads it
 * (the leaf's cpu.shares, the autogroup's nice, the thread's nice; in the
 * cpu root, the autogroup's nice and the thread's).
 *
 * Prints markdown tables.  Needs root (cgroups, a second uid, SCHED_FIFO).
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "importance/client.h"

#define LOOPS 4
#define NON_DONOR_UID 65534

static const char *daemon_path;
static char sock[108], state_dir[128];
/* per block: block_on requests with importance, block_off without and
 * from the non-donor (the slow ones: fewer); under "none", whose requests
 * with importance are served as those without, block_off with it too */
static int blocks = 4, block_on = 50, block_off = 10, work_us = 5000, server_nice = 10;
static unsigned long work_iters;
static bool latency_only, noharm_only;
/* boosts per latency row back to back; the rows with a pause between
 * boosts take a sixth of it (200 ms apart) or a thirtieth (1.5 s apart) */
static int latency_rounds = 300;
/* no harm: rounds, and the non-donor's requests per contender per round */
static int noharm_rounds = 5, noharm_requests = 10;

/* what the targets table is made of, per backend (index in backends[]) */
struct outcome {
	bool measured;
	double on_p50, on_p99;   /* the worst ratio over the setups */
	const char *on_p50_where, *on_p99_where;
	double lat_p99_us;
};
#define N_BACKENDS 6
#define NONE_INDEX (N_BACKENDS - 1) /* "none": importanced relays, changes no scheduling */
static struct outcome outcomes[N_BACKENDS];
static double worst_off_p50;
static const char *worst_off_where;
static uint64_t nondonor_boosts;

enum setup { SAME_SESSION, OWN_SESSIONS, OWN_CGROUPS, N_SETUPS };
/* no harm: the non-donor's p50 over none's, median over the rounds, per
 * setup and backend (0: not measured); CONTROL_INDEX is none run a second
 * time in the same rounds, against itself: the noise */
#define CONTROL_INDEX N_BACKENDS
static double noharm_ratio[N_SETUPS][N_BACKENDS + 1];
static const char *const setup_names[] = {
	"load in the server's session", "load in other sessions", "load in other cgroups",
};

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void pause_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static volatile unsigned long sink;

static void burn(unsigned long iters)
{
	unsigned long x = sink;

	for (unsigned long i = 0; i < iters; i++)
		x = x * 6364136223846793005ul + 1442695040888963407ul;
	sink = x;
}

/* Iterations of burn() that take work_us of CPU time here. */
static unsigned long calibrate(void)
{
	unsigned long n = 100000;

	for (;;) {
		uint64_t t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID), dt;

		burn(n);
		dt = clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
		if (dt > 20000000u)
			return (unsigned long)((double)n * work_us * 1000.0 / (double)dt);
		n *= 2;
	}
}

static void write_str(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (write(fd, text, strlen(text)) < 0)
			perror(path);
		close(fd);
	}
}

/* ------------------------------------------------------------------ */
/* the processes                                                        */
/* ------------------------------------------------------------------ */

static pid_t fork_child(void)
{
	pid_t p = fork();

	if (p == 0)
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	return p;
}

static const char *daemon_rt = "1"; /* --daemon-rt-priority */
/* the server alone in a top-level cpu cgroup of its own (the lingering
 * leaf's case, docs/backends.md) */
static bool server_own_cgroup;
static char server_cgroup[128];

static bool daemon_answers(void)
{
	impc *c;
	bool up = impc_connect(sock, IMPC_MONITOR, &c, NULL) == 0;

	if (up)
		impc_close(c);
	return up;
}

/* spec: a policy, optionally followed by one option and its value */
static pid_t daemon_start(const char *spec)
{
	char policy[32] = "", opt[32] = "", val[32] = "";
	pid_t p;

	sscanf(spec, "%31s %31s %31s", policy, opt, val);
	p = fork_child();
	if (p == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 2);
		execl(daemon_path, daemon_path, "--socket", sock, "--backend", policy, "--donor-uid", "0",
		      "--state-dir", state_dir, "--daemon-rt-priority", daemon_rt, opt[0] ? opt : NULL, val,
		      (char *)NULL);
		_exit(127);
	}
	for (int tries = 500; tries > 0 && !daemon_answers(); tries--)
		pause_ms(10);
	if (!daemon_answers()) {
		fprintf(stderr, "bench-inversion: importanced --backend %s did not start\n", spec);
		exit(1);
	}
	return p;
}

static void reap(pid_t p, int sig)
{
	if (p > 0) {
		kill(p, sig);
		waitpid(p, NULL, 0);
	}
}

static void busy_loop(void)
{
	for (;;)
		burn(1000000);
}

/*
 * The server: nice server_nice, in a session of its own, serving "work"
 * requests (a unit of CPU work each) or, in latency mode, waiting for a
 * byte on `hold` before it takes each request.  With same_session, it first
 * starts the load spawner: a process of its session that forks the busy
 * loops on a 'g' on `go` and stops them on an 's'.
 */
static pid_t server_start(bool same_session, int go, int hold, pid_t *spawner)
{
	int pfd[2];
	pid_t p;

	if (pipe(pfd) < 0)
		exit(1);
	p = fork_child();
	if (p == 0) {
		impc *c;
		uint64_t port;
		pid_t sp = 0;
		char b;

		setsid();
		if (same_session) {
			sp = fork_child();
			if (sp == 0) {
				pid_t mine[LOOPS] = { 0 };

				while (read(go, &b, 1) == 1)
					for (int i = 0; i < LOOPS; i++) {
						if (b == 's') {
							reap(mine[i], SIGKILL);
							mine[i] = 0;
						} else if (!mine[i] && (mine[i] = fork_child()) == 0) {
							busy_loop();
						}
					}
				_exit(0);
			}
		}
		if (write(pfd[1], &sp, sizeof(sp)) < 0)
			_exit(1);
		setpriority(PRIO_PROCESS, 0, server_nice);
		if (impc_connect(sock, IMPC_RECEIVER, &c, NULL) < 0 || impc_port_allocate(c, true, &port) < 0 ||
		    impc_register(c, "bench.work", port) < 0)
			_exit(1);
		for (;;) {
			impc_message m;

			if (hold >= 0 && read(hold, &b, 1) != 1)
				_exit(0);
			if (impc_receive(c, port, -1, IMPC_RECV_VOUCHER, &m) < 0)
				_exit(0);
			if (hold < 0)
				burn(work_iters);
			if (m.reply_port)
				impc_send(c, m.reply_port, "r", 1, 0, 0, 0, NULL);
			impc_voucher_release(c, m.voucher);
			free(m.data);
		}
	}
	close(pfd[1]);
	if (read(pfd[0], spawner, sizeof(*spawner)) != sizeof(*spawner))
		*spawner = 0;
	close(pfd[0]);
	return p;
}

/* The busy loops for setups other than SAME_SESSION; pids into loops. */
static void load_start(enum setup s, pid_t *loops)
{
	for (int i = 0; i < LOOPS; i++) {
		char dir[128], num[32];

		snprintf(dir, sizeof(dir), "/sys/fs/cgroup/cpu/bench-load-%d", i);
		if (s == OWN_CGROUPS)
			mkdir(dir, 0755);
		loops[i] = fork_child();
		if (loops[i] == 0) {
			setsid();
			if (s == OWN_CGROUPS) {
				snprintf(num, sizeof(num), "%d", (int)getpid());
				strcat(dir, "/cgroup.procs");
				write_str(dir, num);
			}
			busy_loop();
		}
	}
}

static void load_stop(enum setup s, pid_t *loops)
{
	for (int i = 0; i < LOOPS; i++) {
		char dir[128];

		reap(loops[i], SIGKILL);
		snprintf(dir, sizeof(dir), "/sys/fs/cgroup/cpu/bench-load-%d", i);
		if (s == OWN_CGROUPS)
			rmdir(dir);
	}
}

/* The load on or off: in the server's session through its spawner (go),
 * else forked here. */
static void load_switch(enum setup s, int go, pid_t *loops, bool on)
{
	if (s != SAME_SESSION)
		(on ? load_start : load_stop)(s, loops);
	else if (write(go, on ? "g" : "s", 1) < 0)
		exit(1);
}

/* ------------------------------------------------------------------ */
/* the clients                                                          */
/* ------------------------------------------------------------------ */

struct client {
	impc *c;
	uint64_t peer, reply;
};

static int client_open(struct client *cl)
{
	bool donor;
	int e;

	if ((e = impc_connect(sock, 0, &cl->c, &donor)) < 0 || (e = impc_lookup(cl->c, "bench.work", &cl->peer)) < 0 ||
	    (e = impc_port_allocate(cl->c, false, &cl->reply)) < 0)
		return e;
	return donor ? 1 : 0;
}

/* A daemon with this backend, the server (with its load spawner for
 * SAME_SESSION; taking requests only on a byte on hold[0] in latency
 * mode) and a donor client connected to it. */
struct rig {
	pid_t daemon, server, spawner, loops[LOOPS];
	int go[2], hold[2];
	struct client cl;
};

static void rig_start(struct rig *r, const char *backend, enum setup s, bool hold)
{
	int e;

	memset(r, 0, sizeof(*r));
	r->hold[0] = r->hold[1] = -1;
	if (pipe(r->go) < 0 || (hold && pipe(r->hold) < 0))
		exit(1);
	r->daemon = daemon_start(backend);
	r->server = server_start(s == SAME_SESSION, r->go[0], r->hold[0], &r->spawner);
	if (server_own_cgroup) {
		char path[200], num[32];

		snprintf(server_cgroup, sizeof(server_cgroup), "/sys/fs/cgroup/cpu/bench-server-%d", (int)getpid());
		mkdir(server_cgroup, 0755);
		snprintf(path, sizeof(path), "%s/cgroup.procs", server_cgroup);
		snprintf(num, sizeof(num), "%d", (int)r->server);
		write_str(path, num);
	}
	/* the server is ready once its port has its name (it registers it
	 * after its nice value is set) */
	for (int tries = 2500; (e = client_open(&r->cl)) < 0 && tries > 0; tries--) {
		impc_close(r->cl.c);
		r->cl.c = NULL;
		pause_ms(2);
	}
	if (e != 1) {
		fprintf(stderr, "bench-inversion: %s\n", e < 0 ? "the server did not register" : "the client is not a donor");
		exit(1);
	}
}

static void rig_stop(struct rig *r)
{
	impc_close(r->cl.c);
	reap(r->server, SIGKILL);
	reap(r->spawner, SIGKILL);
	reap(r->daemon, SIGTERM);
	if (server_own_cgroup) {
		pause_ms(20);
		rmdir(server_cgroup);
	}
	for (int i = 0; i < 2; i++) {
		close(r->go[i]);
		if (r->hold[i] >= 0)
			close(r->hold[i]);
	}
}

/* One request, waited for; its time in ns. */
static uint64_t request(struct client *cl, bool importance)
{
	impc_message m;
	uint64_t t0 = clock_ns(CLOCK_MONOTONIC);

	if (impc_send(cl->c, cl->peer, "w", 1, 0, cl->reply, importance ? 0 : IMPC_SEND_NOIMPORTANCE, NULL) < 0 ||
	    impc_receive(cl->c, cl->reply, -1, 0, &m) < 0) {
		fprintf(stderr, "bench-inversion: request failed\n");
		exit(1);
	}
	free(m.data);
	return clock_ns(CLOCK_MONOTONIC) - t0;
}

/*
 * The non-donor: a child of another uid, making n requests when a byte
 * arrives on its pipe and writing their times back.
 */
struct nondonor {
	pid_t pid;
	int cmd, out;
};

static struct nondonor nondonor_start(void)
{
	struct nondonor nd;
	int a[2], b[2];

	if (pipe(a) < 0 || pipe(b) < 0)
		exit(1);
	nd.pid = fork_child();
	if (nd.pid == 0) {
		struct client cl;
		int n;

		if (setgid(NON_DONOR_UID) < 0 || setuid(NON_DONOR_UID) < 0 || client_open(&cl) != 0)
			_exit(1);
		while (read(a[0], &n, sizeof(n)) == sizeof(n))
			for (int i = 0; i < n; i++) {
				uint64_t t = request(&cl, true);

				if (write(b[1], &t, sizeof(t)) < 0)
					_exit(1);
			}
		_exit(0);
	}
	close(a[0]);
	close(b[1]);
	nd.cmd = a[1];
	nd.out = b[0];
	return nd;
}

static void nondonor_run(struct nondonor *nd, int n, uint64_t *times)
{
	if (write(nd->cmd, &n, sizeof(n)) < 0)
		exit(1);
	for (int i = 0; i < n; i++)
		if (read(nd->out, &times[i], sizeof(times[i])) != sizeof(times[i]))
			exit(1);
}

/* ------------------------------------------------------------------ */
/* figures                                                              */
/* ------------------------------------------------------------------ */

static int by_value(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct pcts {
	double p50, p90, p99; /* ms */
};

static struct pcts pcts_of(uint64_t *v, int n)
{
	struct pcts p;

	qsort(v, (size_t)n, sizeof(*v), by_value);
	p.p50 = (double)v[n / 2] / 1e6;
	p.p90 = (double)v[n * 90 / 100] / 1e6;
	p.p99 = (double)v[(n * 99 + 99) / 100 - 1] / 1e6;
	return p;
}

static uint64_t boosts_so_far(void)
{
	impc_status st;
	impc *c;

	if (impc_connect(sock, IMPC_MONITOR, &c, NULL) < 0)
		return 0;
	if (impc_status_get(c, &st) < 0)
		st.boosts_applied = 0;
	impc_close(c);
	return st.boosts_applied;
}

static void row(const char *setup, const char *backend, const char *cond, struct pcts p, struct pcts base)
{
	printf("| %s | %s | %s | %.2f | %.2f | %.2f | %.2fx | %.2fx |\n", setup, backend, cond, p.p50, p.p90,
	       p.p99, p.p50 / base.p50, p.p99 / base.p99);
}

/* One setup through one backend: the rows of the latency table. */
static void run_inversion(enum setup s, const char *backend, int index)
{
	struct outcome *out = &outcomes[index];
	int per_on = index == NONE_INDEX ? block_off : block_on;
	int n = blocks * block_on, n_off = blocks * block_off, n_on = blocks * per_on;
	uint64_t *unloaded = calloc((size_t)n, sizeof(uint64_t)), *on = calloc((size_t)n_on, sizeof(uint64_t));
	uint64_t *off = calloc((size_t)n_off, sizeof(uint64_t));
	struct pcts base;
	struct rig r;

	rig_start(&r, backend, s, false);
	/* the machine is not ours alone: the unloaded run alternates too, so
	 * that whatever else runs here weighs on it as on the others */
	for (int b = 0; b < blocks; b++) {
		for (int i = 0; i < block_on; i++)
			unloaded[b * block_on + i] = request(&r.cl, false);
		load_switch(s, r.go[1], r.loops, true);
		pause_ms(200);
		for (int i = 0; i < block_off; i++)
			off[b * block_off + i] = request(&r.cl, false);
		for (int i = 0; i < per_on; i++)
			on[b * per_on + i] = request(&r.cl, true);
		load_switch(s, r.go[1], r.loops, false);
		pause_ms(50);
	}
	base = pcts_of(unloaded, n);
	{
		struct pcts p_off = pcts_of(off, n_off), p_on = pcts_of(on, n_on);

		row(setup_names[s], backend, "unloaded", base, base);
		row(setup_names[s], backend, "importance off", p_off, base);
		row(setup_names[s], backend, "**importance on**", p_on, base);
		out->measured = true;
		if (p_on.p50 / base.p50 > out->on_p50) {
			out->on_p50 = p_on.p50 / base.p50;
			out->on_p50_where = setup_names[s];
		}
		if (p_on.p99 / base.p99 > out->on_p99) {
			out->on_p99 = p_on.p99 / base.p99;
			out->on_p99_where = setup_names[s];
		}
		if (p_off.p50 / base.p50 > worst_off_p50) {
			worst_off_p50 = p_off.p50 / base.p50;
			worst_off_where = setup_names[s];
		}
	}
	fflush(stdout);
	rig_stop(&r);
	free(unloaded);
	free(on);
	free(off);
}

/* ------------------------------------------------------------------ */
/* no harm, side by side                                                */
/* ------------------------------------------------------------------ */

/* One contender of one round: a fresh daemon with this backend and a
 * server under the load (the setup's; SAME_SESSION's is the server's own,
 * the others' are running already), a donor's requests boosting it, then
 * the non-donor's; their p50 in ms, the boosts during them in *boosts. */
static double noharm_once(enum setup s, const char *backend, uint64_t *boosts)
{
	uint64_t *times = calloc((size_t)noharm_requests, sizeof(uint64_t)), before;
	struct nondonor nd;
	struct rig r;
	double p50;

	rig_start(&r, backend, s, false);
	nd = nondonor_start();
	if (s == SAME_SESSION) {
		load_switch(s, r.go[1], r.loops, true);
		pause_ms(200);
	}
	for (int i = 0; i < block_off; i++)
		request(&r.cl, true);
	before = boosts_so_far();
	nondonor_run(&nd, noharm_requests, times);
	*boosts += boosts_so_far() - before;
	p50 = pcts_of(times, noharm_requests).p50;
	if (s == SAME_SESSION)
		load_switch(s, r.go[1], r.loops, false);
	reap(nd.pid, SIGKILL);
	close(nd.cmd);
	close(nd.out);
	rig_stop(&r);
	free(times);
	return p50;
}

static double median_of(double *v, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
			double x = v[j];

			v[j] = v[j - 1];
			v[j - 1] = x;
		}
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void run_noharm(enum setup s, const char *const *backends, const bool *usable)
{
	enum { ROUNDS_MAX = 32 };
	double p50[N_BACKENDS + 1][ROUNDS_MAX], ratio[N_BACKENDS + 1][ROUNDS_MAX];
	int order[N_BACKENDS + 1], n = 0, rounds = noharm_rounds < ROUNDS_MAX ? noharm_rounds : ROUNDS_MAX;
	uint64_t boosts[N_BACKENDS + 1] = { 0 };
	pid_t loops[LOOPS];

	for (int b = 0; b < N_BACKENDS; b++)
		if (usable[b])
			order[n++] = b;
	order[n++] = CONTROL_INDEX;
	if (!usable[NONE_INDEX] || rounds < 1)
		return;
	if (s != SAME_SESSION) {
		load_start(s, loops);
		pause_ms(200);
	}
	for (int r = 0; r < rounds; r++) {
		for (int k = 0; k < n; k++) {
			int b = order[(k + r) % n];

			p50[b][r] = noharm_once(s, backends[b == CONTROL_INDEX ? NONE_INDEX : b], &boosts[b]);
		}
		for (int k = 0; k < n; k++)
			ratio[order[k]][r] = p50[order[k]][r] / p50[NONE_INDEX][r];
	}
	if (s != SAME_SESSION)
		load_stop(s, loops);
	for (int k = 0; k < n; k++) {
		int b = order[k];
		double med = median_of(p50[b], rounds), rmed = median_of(ratio[b], rounds);

		printf("| %s | %s | %.2f | %.2f - %.2f | %.2fx | %.2fx - %.2fx | %llu |\n", setup_names[s],
		       b == CONTROL_INDEX ? "none, again (the noise: none against itself)" : backends[b],
		       med, p50[b][0], p50[b][rounds - 1], rmed, ratio[b][0], ratio[b][rounds - 1],
		       (unsigned long long)boosts[b]);
		noharm_ratio[s][b] = rmed;
		nondonor_boosts += boosts[b];
	}
	fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* boost latency                                                        */
/* ------------------------------------------------------------------ */

/* What the scheduler reads for the server, as a number that a boost
 * lowers or raises; the backend in force decides which. */
static long sched_view(const char *backend, pid_t server)
{
	char path[512], buf[512];
	FILE *f;
	long v = -1;

	if (!strncmp(backend, "nice", 4))
		return getpriority(PRIO_PROCESS, (id_t)server);
	if (!strcmp(backend, "autogroup")) {
		snprintf(path, sizeof(path), "/proc/%d/autogroup", (int)server);
		if ((f = fopen(path, "re"))) {
			if (fscanf(f, "/autogroup-%*u nice %ld", &v) != 1)
				v = -1;
			fclose(f);
		}
		return v;
	}
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)server);
	if (!(f = fopen(path, "re")))
		return -1;
	while (fgets(buf, sizeof(buf), f)) {
		char *p = strstr(buf, ":cpu:");

		if (p && !strcmp(p + 5, "/\n")) {
			/* in the root: its autogroup is what competes with the
			 * other sessions, its nice inside it (a boost of a
			 * server sharing its session starts there:
			 * cgroup-leaf-delay-ms) */
			v = 100000 + 100 * sched_view("autogroup", server) + getpriority(PRIO_PROCESS, (id_t)server);
		} else if (p) {
			char file[700];
			FILE *g;

			p[strcspn(p, "\n")] = '\0';
			snprintf(file, sizeof(file), "/sys/fs/cgroup/cpu%s/cpu.shares", p + 5);
			if ((g = fopen(file, "re"))) {
				if (fscanf(g, "%ld", &v) != 1)
					v = -1;
				fclose(g);
			}
		}
	}
	fclose(f);
	return v;
}

/* The observer: a thread that, while armed, reads what the scheduler
 * sees until it changes from `idle`, and notes when. */
struct observer {
	const char *backend;
	pid_t server;
	long idle;
	_Atomic int armed, stop;
	_Atomic uint64_t seen_at;
};

static void *observe(void *arg)
{
	struct observer *o = arg;
	struct sched_param sp = { .sched_priority = 1 };

	/* it must not be what is late */
	pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
	while (!o->stop) {
		if (!o->armed) {
			struct timespec ts = { 0, 20000 };

			nanosleep(&ts, NULL);
			continue;
		}
		if (sched_view(o->backend, o->server) != o->idle) {
			o->seen_at = clock_ns(CLOCK_MONOTONIC);
			o->armed = 0;
		}
	}
	return NULL;
}

static void run_latency(const char *backend, int rounds, enum setup s, int gap_ms, const char *label,
			double *p99_us)
{
	uint64_t *lat = calloc((size_t)rounds, sizeof(uint64_t));
	struct observer o = { .backend = backend };
	struct rig r;
	struct pcts p;
	pthread_t th;
	int got = 0;

	rig_start(&r, backend, s, true);
	load_switch(s, r.go[1], r.loops, true);
	pause_ms(300);
	o.server = r.server;
	{
		/* one boost first, so that whatever a first boost sets up is
		 * done before the idle view is taken */
		impc_message m;

		if (impc_send(r.cl.c, r.cl.peer, "w", 1, 0, r.cl.reply, 0, NULL) == 0 && write(r.hold[1], "r", 1) == 1 &&
		    impc_receive(r.cl.c, r.cl.reply, 2000, 0, &m) == 0)
			free(m.data);
		pause_ms(100);
	}
	o.idle = sched_view(backend, r.server);
	pthread_create(&th, NULL, observe, &o);
	for (int i = 0; i < rounds; i++) {
		uint64_t t0;
		impc_message m;

		if (gap_ms)
			pause_ms(gap_ms);
		o.seen_at = 0;
		o.armed = 1;
		pause_ms(1); /* the observer is reading */
		t0 = clock_ns(CLOCK_MONOTONIC);
		if (impc_send(r.cl.c, r.cl.peer, "l", 1, 0, r.cl.reply, 0, NULL) < 0)
			break;
		while (o.armed && clock_ns(CLOCK_MONOTONIC) - t0 < 100000000u)
			pause_ms(1);
		o.armed = 0;
		/* let the server take it and drop the boost */
		if (write(r.hold[1], "r", 1) < 0 || impc_receive(r.cl.c, r.cl.reply, 2000, 0, &m) < 0)
			break;
		free(m.data);
		for (int k = 0; k < 1000 && sched_view(backend, r.server) != o.idle; k++)
			pause_ms(1);
		if (o.seen_at)
			lat[got++] = o.seen_at - t0;
	}
	o.stop = 1;
	pthread_join(th, NULL);
	if (got) {
		p = pcts_of(lat, got);
		printf("| %s%s | %d of %d | %.0f | %.0f | %.0f | %.0f |\n", backend, label, got, rounds, p.p50 * 1000,
		       p.p90 * 1000, p.p99 * 1000, (double)lat[got - 1] / 1e3);
		if (p99_us)
			*p99_us = p.p99 * 1000;
	}
	load_switch(s, r.go[1], r.loops, false);
	rig_stop(&r);
	free(lat);
}

static bool backend_works(const char *spec)
{
	char backend[32] = "";
	pid_t p;
	int status;

	sscanf(spec, "%31s", backend);
	p = fork_child();
	if (p == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 2);
		dup2(null, 1);
		/* a refused backend exits at once; one that works is stopped */
		execl(daemon_path, daemon_path, "--socket", sock, "--backend", backend, "--state-dir", state_dir,
		      (char *)NULL);
		_exit(127);
	}
	for (int tries = 1500; tries > 0; tries--) {
		if (waitpid(p, &status, WNOHANG) == p)
			return false;
		if (daemon_answers())
			break;
		pause_ms(2);
	}
	reap(p, SIGTERM);
	return true;
}

static const char *verdict(double v, double limit, char *buf, size_t size)
{
	if (v <= limit)
		snprintf(buf, size, "met");
	else
		snprintf(buf, size, "**missed by %.0f%%**", (v / limit - 1) * 100);
	return buf;
}

static void print_targets(const char *const *backends)
{
	char v[64];

	printf("\nTargets, from the figures above:\n\n| target | backend | worst case | |\n| --- | --- | ---: | --- |\n");
	for (int b = 0; b < N_BACKENDS; b++) {
		const struct outcome *o = &outcomes[b];
		double worst = 0;
		const char *where = "-";
		int where_s = 0;

		if ((!o->measured && !noharm_only) || b == NONE_INDEX)
			continue;
		for (int s = 0; s < N_SETUPS; s++)
			if (noharm_ratio[s][b] > worst) {
				worst = noharm_ratio[s][b];
				where = setup_names[s];
				where_s = s;
			}
		if (worst > 0)
			printf("| no harm: non-donor p50 <= 1.1x of importanced not boosting (--backend none), side by "
			       "side (median of the rounds) | %s | %.2fx (%s; none against itself there: %.2fx) | %s |\n",
			       backends[b], worst, where, noharm_ratio[where_s][CONTROL_INDEX],
			       verdict(worst, 1.1, v, sizeof(v)));
		if (!o->measured)
			continue;
		printf("| with importance, p50 <= 1.3x unloaded | %s | %.2fx (%s) | %s |\n", backends[b], o->on_p50,
		       o->on_p50_where, verdict(o->on_p50, 1.3, v, sizeof(v)));
		printf("| with importance, p99 <= 2x unloaded | %s | %.2fx (%s) | %s |\n", backends[b], o->on_p99,
		       o->on_p99_where, verdict(o->on_p99, 2.0, v, sizeof(v)));
		printf("| boost latency p99 <= 1 ms under load | %s | %.0f us | %s |\n", backends[b], o->lat_p99_us,
		       verdict(o->lat_p99_us, 1000, v, sizeof(v)));
	}
	if (!noharm_only)
		printf("| without importance, the inversion shows (>= 3x in one setup) | all | %.1fx (%s) | %s |\n",
		       worst_off_p50, worst_off_where ? worst_off_where : "-", worst_off_p50 >= 3 ? "met" : "**missed**");
	printf("| a non-donor gets no boost | all | %llu boosts during its requests | %s |\n",
	       (unsigned long long)nondonor_boosts, nondonor_boosts ? "**missed**" : "met");
}

int main(int argc, char **argv)
{
	/* each backend this importanced may use, and nice with a boost to 0
	 * (equal to the load, not ahead of it) for comparison */
	static const char *const backends[] = { "cgroup-v2", "cgroup-v1", "autogroup", "nice",
						"nice --boost-nice 0", "none" };
	bool usable[N_BACKENDS];

	if (argc < 2) {
		fprintf(stderr, "usage: bench-inversion IMPORTANCED [--blocks N] [--block-on N] [--block-off N] "
				"[--work-us N] [--nice N] [--latency-only 1] [--latency-rounds N] [--noharm-rounds N] "
				"[--noharm-requests N] [--noharm-only 1]\n");
		return 2;
	}
	daemon_path = argv[1];
	for (int i = 2; i + 1 < argc; i += 2) {
		int v = atoi(argv[i + 1]);

		if (!strcmp(argv[i], "--blocks"))
			blocks = v;
		else if (!strcmp(argv[i], "--block-on"))
			block_on = v;
		else if (!strcmp(argv[i], "--block-off"))
			block_off = v;
		else if (!strcmp(argv[i], "--work-us"))
			work_us = v;
		else if (!strcmp(argv[i], "--nice"))
			server_nice = v;
		else if (!strcmp(argv[i], "--latency-only"))
			latency_only = v;
		else if (!strcmp(argv[i], "--latency-rounds"))
			latency_rounds = v;
		else if (!strcmp(argv[i], "--noharm-rounds"))
			noharm_rounds = v;
		else if (!strcmp(argv[i], "--noharm-requests"))
			noharm_requests = v > 0 ? v : 1;
		else if (!strcmp(argv[i], "--noharm-only"))
			noharm_only = v;
	}
	if (geteuid() != 0) {
		printf("Not run: needs root (cgroups, a second uid, SCHED_FIFO).\n");
		return 0;
	}
	snprintf(sock, sizeof(sock), "/tmp/bench-inversion.%d.sock", (int)getpid());
	snprintf(state_dir, sizeof(state_dir), "/tmp/bench-inversion.%d.state", (int)getpid());
	work_iters = calibrate();
	printf("Server at nice %d, %d us of CPU per request; %d busy loops at nice 0. Per setup and backend, %d "
	       "blocks, each: %d requests on the unloaded machine, then with the load: %d without importance, %d "
	       "with (%d under none, which serves them as those without). Times in ms; ratios are to the unloaded "
	       "requests of the same setup and backend.\n\n",
	       server_nice, work_us, LOOPS, blocks, block_on, block_off, block_on, block_off);
	for (int b = 0; b < N_BACKENDS; b++) {
		usable[b] = backend_works(backends[b]);
		if (!usable[b])
			printf("- backend %s: refused by importanced here (see docs/backends.md)\n", backends[b]);
	}
	if (!latency_only && !noharm_only) {
		printf("\n| setup | backend | requests | p50 | p90 | p99 | p50 ratio | p99 ratio |\n");
		printf("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
		for (int s = 0; s < N_SETUPS; s++)
			for (int b = 0; b < N_BACKENDS; b++)
				if (usable[b])
					run_inversion((enum setup)s, backends[b], b);
	}
	if (!latency_only) {
		printf("\nNo harm, side by side: per setup, %d rounds, each running every backend, none, and none again "
		       "(a control: how far none is from itself) once in an "
		       "order rotated from round to round, under the same load; each a fresh importanced and server, %d "
		       "requests from the donor (boosting the server), then %d from the non-donor, timed. Its p50 in ms "
		       "and its ratio to none's in the same round: median over the rounds, and the spread (lowest - "
		       "highest).\n\n", noharm_rounds, block_off, noharm_requests);
		printf("| setup | backend | non-donor p50 | spread | ratio to none | spread | boosts during its requests |\n");
		printf("| --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
		for (int s = 0; s < N_SETUPS; s++)
			run_noharm((enum setup)s, backends, usable);
	}
	if (noharm_only)
		goto done;
	printf("\nBoost latency under load (the four loops, each in its own session unless the row says otherwise): from the donor's send "
	       "to the value the scheduler reads changed, in us.\n\n");
	printf("| backend | boosts | p50 | p90 | p99 | max |\n| --- | ---: | ---: | ---: | ---: | ---: |\n");
	for (int b = 0; b < NONE_INDEX; b++)
		if (usable[b])
			run_latency(backends[b], latency_rounds, OWN_SESSIONS, 0, "", &outcomes[b].lat_p99_us);
	/* a cgroup backend, the server sharing its session with the load:
	 * boosted through nice at once, and moved into its leaf when the
	 * boost lasts (cgroup-leaf-delay-ms); with 0, each boost moves it
	 * into its leaf and each unboost back: a move right after another is
	 * cheap, one after a pause waits for the kernel's cgroup lock (an RCU
	 * grace period) */
	for (int b = 0; b < 2; b++)
		if (usable[b]) {
			char spec[64];

			run_latency(backends[b], latency_rounds, SAME_SESSION, 0,
				    ", server in the load's session (nice at once, its leaf later), boosts back to back",
				    NULL);
			run_latency(backends[b], latency_rounds / 6, SAME_SESSION, 200,
				    ", server in the load's session (nice at once, its leaf later), boosts 200 ms apart",
				    NULL);
			snprintf(spec, sizeof(spec), "%s --cgroup-leaf-delay-ms 0", backends[b]);
			run_latency(spec, latency_rounds / 6, SAME_SESSION, 200,
				    ", server in the load's session, through its leaf at once, boosts 200 ms apart", NULL);
		}
	/* a server alone in a top-level cgroup of its own: moved into its
	 * leaf at a boost; unboosted, it lingers there at its cgroup's weight
	 * (cgroup-leaf-linger-ms, default 1000) or goes back at once (0) */
	server_own_cgroup = true;
	for (int b = 0; b < 2; b++)
		if (usable[b]) {
			char spec[64];

			run_latency(backends[b], latency_rounds / 6, OWN_SESSIONS, 200,
				    ", server alone in its own cgroup, lingering leaf (default), boosts 200 ms apart", NULL);
			snprintf(spec, sizeof(spec), "%s --cgroup-leaf-linger-ms 0", backends[b]);
			run_latency(spec, latency_rounds / 6, OWN_SESSIONS, 200,
				    ", server alone in its own cgroup, boosts 200 ms apart", NULL);
			run_latency(backends[b], latency_rounds / 30, OWN_SESSIONS, 1500,
				    ", server alone in its own cgroup, lingering leaf (default), boosts 1.5 s apart", NULL);
		}
	server_own_cgroup = false;
	/* the same with importanced as an ordinary process, for comparison */
	daemon_rt = "0";
	for (int b = 0; b < NONE_INDEX; b++)
		if (usable[b]) {
			run_latency(backends[b], latency_rounds, OWN_SESSIONS, 0,
				    ", importanced not real-time (--daemon-rt-priority 0)", NULL);
			break;
		}
done:
	if (!latency_only)
		print_targets(backends);
	{
		char lock[160];

		snprintf(lock, sizeof(lock), "%s/lock", state_dir);
		unlink(lock);
		rmdir(state_dir);
	}
	return 0;
}
