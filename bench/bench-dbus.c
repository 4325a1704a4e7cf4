/*
 * importanced on D-Bus, measured on a private dbus-daemon and a private
 * dbus-broker:
 *   - the cost to the bus: sd-bus method-call round trips (64-byte
 *     argument, empty reply) from a donor to a service, with importanced
 *     monitoring the bus, with a monitor that only reads, and without,
 *     alternating, REPS times each;
 *   - priority inversion: a service at nice 10 sharing one CPU with
 *     CPU-bound processes at nice 0, a donor calling its method that does
 *     WORK_US of CPU work (an sd-bus call, as busctl makes): the calls'
 *     latency with importanced attached (the service boosted to nice 0
 *     while a call waits) and without; and the boost latency, from a
 *     donor's call to the service's changed nice value.
 * Markdown on stdout.
 *
 *   bench-dbus [--pin CPU] IMPORTANCED [ROUNDS]
 * --pin puts every process on one CPU (the round trips only): what the
 * software costs, without cross-CPU wakeups.
 * dbus-broker comes from DBUS_BROKER_ROOT where it is not installed
 * (scripts/dbus-broker-root.sh); a bus that cannot be started is reported
 * as not run.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <dirent.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "buslaunch.h"
#include "importance/client.h"

#define REPS 7
#define SERVICE "org.importance.BenchService"
#define IFACE "org.importance.Bench"
#define WORK_US 2000
/* calls with importanced attached, and without it: each of those waits
 * out a nice-10 process's share of CPU 0 against the hogs, 40-50 ms on a
 * quiet machine, and their p50 moves little from run to run: fewer */
#define INVERSION_CALLS 150
#define INVERSION_CALLS_OFF 50
#define HOGS 2
#define BOOST_SAMPLES 100
#define BOOST_WORK_US 20000
/* the batch window's trade-off: dbus-batch-usec against what watching
 * costs (pinned, pairs of runs) and the boost latency (under load) */
#define WINDOWS 5
static const long windows[WINDOWS] = { 0, 250, 500, 1000, 2000 };
#define WINDOW_PAIRS 5
#define WINDOW_ROUNDS 2000
#define WINDOW_SAMPLES 30
/* on a busy bus: fewer, as many of them take up to boost_latency's 1 s
 * (a boost that comes late or not at all) */
#define WINDOW_BUSY_SAMPLES 10

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const double *in, int n)
{
	double v[REPS];

	memcpy(v, in, sizeof(double) * (size_t)n);
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	return v[n / 2];
}

static pid_t fork_dies_with_parent(void)
{
	pid_t p = fork();

	if (p == 0)
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	return p;
}

static void stop(pid_t p)
{
	if (p <= 0)
		return;
	kill(p, SIGTERM);
	waitpid(p, NULL, 0);
}

static void pin_to_cpu0(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(0, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* CPU 0 alone (pin), or every CPU */
static void cpus(cpu_set_t *set, bool pin)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	CPU_ZERO(set);
	for (long i = 0; i < (pin ? 1 : n); i++)
		CPU_SET((int)i, set);
}

/* Every thread of pid, and of every process under it, on CPU 0 (pin) or on
 * every CPU: a bus started unpinned (dbus-broker under its launcher), for
 * the pinned runs. */
static void pin_tree(pid_t pid, bool pin)
{
	char path[64], buf[512], *save = NULL;
	struct dirent *d;
	cpu_set_t set;
	DIR *dir;
	FILE *f;

	cpus(&set, pin);
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if ((dir = opendir(path))) {
		while ((d = readdir(dir)))
			if (d->d_name[0] != '.')
				sched_setaffinity((pid_t)atoi(d->d_name), sizeof(set), &set);
		closedir(dir);
	}
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	if (!(f = fopen(path, "r")))
		return;
	if (fgets(buf, sizeof(buf), f))
		for (char *t = strtok_r(buf, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
			pin_tree((pid_t)atoi(t), pin);
	fclose(f);
}

/* ---- the service ---- */

/* where the busy loops write, so that they are not optimized away */
static volatile uint64_t sink;

static int method_ping(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	(void)userdata;
	(void)err;
	return sd_bus_reply_method_return(m, "");
}

/* Work(u us): us microseconds of this thread's CPU time. */
static int method_work(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	uint32_t us;
	uint64_t end;
	int r;

	(void)userdata;
	(void)err;
	if ((r = sd_bus_message_read(m, "u", &us)) < 0)
		return r;
	end = thread_cpu_ns() + (uint64_t)us * 1000;
	while (thread_cpu_ns() < end)
		for (int i = 0; i < 1000; i++)
			sink += (uint64_t)i;
	return sd_bus_reply_method_return(m, "");
}

static const sd_bus_vtable service_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_METHOD("Ping", "ay", "", method_ping, 0),
	SD_BUS_METHOD("Work", "u", "", method_work, 0),
	SD_BUS_VTABLE_END,
};

static pid_t start_service(const char *address, int nice, bool pinned)
{
	pid_t p = fork_dies_with_parent();

	if (p == 0) {
		sd_bus *bus;

		if (pinned)
			pin_to_cpu0();
		setpriority(PRIO_PROCESS, 0, nice);
		if (!(bus = buslaunch_connect(address)) ||
		    sd_bus_add_object_vtable(bus, NULL, "/bench", IFACE, service_vtable, NULL) < 0 ||
		    sd_bus_request_name(bus, SERVICE, 0) < 0)
			_exit(1);
		for (;;) {
			int r = sd_bus_process(bus, NULL);

			if (r < 0 || (r == 0 && sd_bus_wait(bus, UINT64_MAX) < 0))
				_exit(0);
		}
	}
	return p;
}

/* A client connection once the service has its name, or NULL. */
static sd_bus *client(const char *address)
{
	for (int i = 0; i < 300; i++) {
		sd_bus *bus = buslaunch_connect(address);

		if (bus && sd_bus_get_name_creds(bus, SERVICE, 0, NULL) >= 0)
			return bus;
		sd_bus_unref(bus);
		usleep(10000);
	}
	return NULL;
}

/* ---- importanced ---- */

static char imp_sock[128], imp_log[128];

/* Whether importanced's stderr (imp_log) has said that it monitors the bus. */
static bool imp_monitoring(void)
{
	char buf[16384];
	int fd = open(imp_log, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, ": monitoring") != NULL;
}

/* importanced monitoring address, root a donor, with dbus-batch-usec
 * window (-1: its default), on CPU 0 when pinned; its pid once it says
 * that it monitors the bus. */
static pid_t start_importanced_with(const char *bin, const char *address, long window, bool pinned)
{
	pid_t p;

	unlink(imp_log);
	p = fork_dies_with_parent();
	if (p == 0) {
		int log = open(imp_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		char w[24];

		if (log < 0 || dup2(log, 2) < 0)
			_exit(127);
		if (pinned)
			pin_to_cpu0();
		snprintf(w, sizeof(w), "%ld", window);
		if (window >= 0)
			execl(bin, bin, "--no-config", "--socket", imp_sock, "--backend", "nice", "--donor-uid", "0",
			      "--dbus", address, "--dbus-batch-usec", w, (char *)NULL);
		else
			execl(bin, bin, "--no-config", "--socket", imp_sock, "--backend", "nice", "--donor-uid", "0",
			      "--dbus", address, (char *)NULL);
		_exit(127);
	}
	/* it attaches to the bus after it starts listening: once BecomeMonitor
	 * is answered it says so */
	for (int i = 0; i < 1500; i++) {
		if (imp_monitoring())
			return p;
		usleep(2000);
	}
	stop(p);
	return -1;
}

static pid_t start_importanced(const char *bin, const char *address)
{
	return start_importanced_with(bin, address, -1, false);
}

static uint64_t boost_events(void)
{
	impc_status st = { 0 };
	impc *c;

	if (impc_connect(imp_sock, IMPC_MONITOR, &c, NULL) < 0)
		return 0;
	impc_status_get(c, &st);
	impc_close(c);
	return st.boosts_applied;
}

/* A monitor that reads what importanced's reads (the same match rules)
 * and does nothing with it: what watching the bus costs by itself. */
static int discard(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	(void)m;
	(void)userdata;
	(void)err;
	return 1;
}

/* Its pid once it has become a monitor. */
static pid_t start_idle_monitor(const char *address)
{
	int ready[2];
	pid_t p;
	char c;

	if (pipe(ready) < 0)
		return -1;
	p = fork_dies_with_parent();
	if (p == 0) {
		sd_bus *bus = NULL;

		close(ready[0]);
		if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, address) < 0 || sd_bus_set_bus_client(bus, 1) < 0 ||
		    sd_bus_set_monitor(bus, 1) < 0 || sd_bus_start(bus) < 0 ||
		    sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
				       "org.freedesktop.DBus.Monitoring", "BecomeMonitor", NULL, NULL, "asu", 4,
				       "type='method_call'", "type='method_return'", "type='error'",
				       "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
				       "member='NameOwnerChanged'",
				       0) < 0 ||
		    sd_bus_add_filter(bus, NULL, discard, NULL) < 0 || write(ready[1], "r", 1) != 1)
			_exit(1);
		close(ready[1]);
		for (;;) {
			int r = sd_bus_process(bus, NULL);

			if (r < 0 || (r == 0 && sd_bus_wait(bus, UINT64_MAX) < 0))
				_exit(0);
		}
	}
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1) { /* it failed: the runs go on without it */
		waitpid(p, NULL, 0);
		p = -1;
	}
	close(ready[0]);
	return p;
}

/* ---- measurements ---- */

struct lat {
	double p50_us, p99_us;
	bool ok;
};

static struct lat summarize(uint64_t *ns, int n)
{
	struct lat l = { 0, 0, true };

	qsort(ns, (size_t)n, sizeof(*ns), cmp_u64);
	l.p50_us = (double)ns[n / 2] / 1e3;
	l.p99_us = (double)ns[(n * 99) / 100] / 1e3;
	return l;
}

/* rounds calls of method (Ping with 64 bytes, or Work(WORK_US)) */
static struct lat calls(sd_bus *bus, const char *method, int rounds)
{
	uint64_t *ns = calloc((size_t)rounds, sizeof(*ns));
	uint8_t payload[64] = { 0 };
	struct lat l = { 0, 0, false };

	if (!ns)
		return l;
	for (int i = 0; i < rounds; i++) {
		sd_bus_message *m = NULL, *reply = NULL;
		uint64_t t0 = now_ns();
		int r = sd_bus_message_new_method_call(bus, &m, SERVICE, "/bench", IFACE, method);

		if (r >= 0)
			r = !strcmp(method, "Ping") ? sd_bus_message_append_array(m, 'y', payload, sizeof(payload)) :
						      sd_bus_message_append(m, "u", (uint32_t)WORK_US);
		if (r >= 0)
			r = sd_bus_call(bus, m, 0, NULL, &reply);
		sd_bus_message_unref(m);
		sd_bus_message_unref(reply);
		if (r < 0)
			goto out;
		ns[i] = now_ns() - t0;
	}
	l = summarize(ns, rounds);
out:
	free(ns);
	return l;
}

static int on_work_reply(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	(void)m;
	(void)err;
	*(bool *)userdata = true;
	return 0;
}

/* the moment our own monitor saw a Work call routed (0: not yet) */
static int on_routed(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	uint64_t *seen = userdata;

	(void)err;
	if (!*seen && sd_bus_message_is_method_call(m, IFACE, "Work"))
		*seen = now_ns();
	return 1;
}

/* A monitor of our own for the Work calls: when the bus routed each. */
static sd_bus *routed_monitor(const char *address, uint64_t *seen)
{
	sd_bus *m = NULL;

	if (sd_bus_new(&m) < 0 || sd_bus_set_address(m, address) < 0 || sd_bus_set_bus_client(m, 1) < 0 ||
	    sd_bus_set_monitor(m, 1) < 0 || sd_bus_start(m) < 0 ||
	    sd_bus_call_method(m, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.Monitoring",
			       "BecomeMonitor", NULL, NULL, "asu", 1,
			       "type='method_call',interface='" IFACE "',member='Work'", 0) < 0 ||
	    sd_bus_add_filter(m, NULL, on_routed, seen) < 0)
		return sd_bus_unref(m);
	return m;
}

/* From a donor's call to the moment the service's nice value has changed
 * (read with getpriority every 20 us), n times; the service back at its own
 * value before each call.  With address, also from the call to the moment
 * a monitor of ours saw the bus route it (routed), and from then to the
 * boost (after).  The measuring thread runs at SCHED_FIFO 2, above
 * importanced's 1, where it may: what is measured is when the boost
 * happens, not when a loaded machine lets us look. */
static struct lat boost_latency(sd_bus *bus, pid_t svc, int n, const char *address, struct lat *routed,
				struct lat *after)
{
	uint64_t *ns = calloc((size_t)n, sizeof(*ns)), *rs = calloc((size_t)n, sizeof(*rs)),
		 *as = calloc((size_t)n, sizeof(*as)), seen = 0;
	struct lat l = { 0, 0, false };
	int base = getpriority(PRIO_PROCESS, (id_t)svc), policy = sched_getscheduler(0);
	struct sched_param fifo = { .sched_priority = 2 }, old = { 0 };
	sd_bus *mon = address ? routed_monitor(address, &seen) : NULL;
	int got = 0;

	if (!ns || !rs || !as)
		goto out;
	sched_getparam(0, &old);
	sched_setscheduler(0, SCHED_FIFO, &fifo);
	for (int i = 0; i < n; i++) {
		bool done = false;
		uint64_t t0, limit;

		while (mon && sd_bus_process(mon, NULL) > 0) /* what came before */
			;
		seen = 0;
		t0 = now_ns();
		limit = t0 + 1000000000ull;
		if (sd_bus_call_method_async(bus, NULL, SERVICE, "/bench", IFACE, "Work", on_work_reply, &done, "u",
					     (uint32_t)BOOST_WORK_US) < 0 ||
		    sd_bus_flush(bus) < 0)
			goto out;
		/* polled every 20 us, sleeping between: a loop that spins would take
		 * a CPU the bus and importanced need */
		while (getpriority(PRIO_PROCESS, (id_t)svc) == base && now_ns() < limit) {
			while (mon && sd_bus_process(mon, NULL) > 0)
				;
			usleep(20);
		}
		ns[i] = now_ns() - t0;
		while (mon && !seen && sd_bus_process(mon, NULL) > 0)
			;
		/* (our monitor may read it after the boost: then routed is all) */
		rs[i] = seen && seen - t0 < ns[i] ? seen - t0 : ns[i];
		as[i] = ns[i] - rs[i];
		got++;
		while (!done) {
			int r = sd_bus_process(bus, NULL);

			if (r < 0 || (r == 0 && sd_bus_wait(bus, UINT64_MAX) < 0))
				goto out;
		}
		while (getpriority(PRIO_PROCESS, (id_t)svc) != base && now_ns() < limit + 1000000000ull)
			usleep(100);
	}
	l = summarize(ns, n);
	if (mon && routed && after) {
		*routed = summarize(rs, n);
		*after = summarize(as, n);
	}
out:
	(void)got;
	sched_setscheduler(0, policy, &old);
	sd_bus_flush_close_unref(mon);
	free(ns);
	free(rs);
	free(as);
	return l;
}

struct busrun {
	const char *kind;
	bool ok;
	char why[256];
	struct lat off[REPS], idle[REPS], on[REPS]; /* round trips: no monitor, an idle one, importanced */
	struct lat inv_off, inv_on;       /* priority inversion */
	struct lat boost, routed, after;  /* boost latency; of it, until the bus routed the call, and after */
	uint64_t inv_boosts;
	double win_cost[WINDOWS];         /* p50 on / off pinned, median of pairs, per window */
	struct lat win_boost[WINDOWS];    /* boost latency under load, per window */
	struct lat win_busy[WINDOWS];     /* the same with traffic on the bus */
};

static pid_t start_bus(struct busrun *br, const char *cfg, const char *sock, const char *address)
{
	pid_t p;

	unlink(sock);
	if (!strcmp(br->kind, "dbus-daemon")) {
		if ((p = buslaunch_dbus_daemon(cfg, sock)) < 0)
			snprintf(br->why, sizeof(br->why), "dbus-daemon did not start (is it installed?)");
		return p;
	}
	return buslaunch_dbus_broker(cfg, sock, address, br->why, sizeof(br->why));
}

/* Traffic on the bus that boosts nothing: calls to the bus driver, one at
 * a time, as fast as they go (importanced reads every one of them and its
 * reply, and keeps to its batch window meanwhile). */
static pid_t start_traffic(const char *address)
{
	pid_t p = fork_dies_with_parent();

	if (p == 0) {
		sd_bus *bus = buslaunch_connect(address);

		while (bus && sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
						 "org.freedesktop.DBus", "GetId", NULL, NULL, "") >= 0)
			;
		_exit(1);
	}
	return p;
}

static pid_t start_hog(void)
{
	pid_t p = fork_dies_with_parent();

	if (p == 0) {
		pin_to_cpu0();
		for (;;)
			sink++;
	}
	return p;
}

static void run_bus(struct busrun *br, const char *imp_bin, const char *dir, int rounds, bool pinned)
{
	char cfg[160], sock[160], address[200];
	pid_t bus, svc, imp;
	sd_bus *c;

	snprintf(cfg, sizeof(cfg), "%s/bus.conf", dir);
	snprintf(sock, sizeof(sock), "%s/bus", dir);
	snprintf(address, sizeof(address), "unix:path=%s", sock);
	buslaunch_config(cfg, address);
	if ((bus = start_bus(br, cfg, sock, address)) < 0)
		return;
	/* round trips: the service at nice 0, off and on alternating */
	svc = start_service(address, 0, false);
	if (!(c = client(address))) {
		snprintf(br->why, sizeof(br->why), "the service did not appear");
		goto out;
	}
	for (int r = 0; r < REPS; r++) {
		pid_t idle;

		br->off[r] = calls(c, "Ping", rounds);
		idle = start_idle_monitor(address);
		br->idle[r] = calls(c, "Ping", rounds);
		stop(idle);
		if ((imp = start_importanced(imp_bin, address)) < 0) {
			snprintf(br->why, sizeof(br->why), "importanced did not start");
			goto out;
		}
		br->on[r] = calls(c, "Ping", rounds);
		stop(imp);
		if (!br->off[r].ok || !br->idle[r].ok || !br->on[r].ok) {
			snprintf(br->why, sizeof(br->why), "a call failed");
			goto out;
		}
	}
	sd_bus_flush_close_unref(c);
	c = NULL;
	stop(svc);
	svc = -1;
	if (pinned) {
		br->ok = true;
		goto out;
	}
	/* priority inversion: service at nice 10 and hogs on CPU 0 */
	svc = start_service(address, 10, true);
	if (!(c = client(address))) {
		snprintf(br->why, sizeof(br->why), "the service did not appear");
		goto out;
	}
	{
		pid_t hogs[HOGS];

		for (int i = 0; i < HOGS; i++)
			hogs[i] = start_hog();
		usleep(100000);
		br->inv_off = calls(c, "Work", INVERSION_CALLS_OFF);
		imp = start_importanced(imp_bin, address);
		if (imp >= 0) {
			br->inv_on = calls(c, "Work", INVERSION_CALLS);
			br->inv_boosts = boost_events();
		}
		/* the boost latency under the same load, at the default window
		 * and then at each of the table's */
		if (imp >= 0) {
			br->boost = boost_latency(c, svc, BOOST_SAMPLES, address, &br->routed, &br->after);
			stop(imp);
		}
		for (int k = 0; k < WINDOWS; k++)
			if ((imp = start_importanced_with(imp_bin, address, windows[k], false)) >= 0) {
				pid_t traffic;

				br->win_boost[k] = boost_latency(c, svc, WINDOW_SAMPLES, NULL, NULL, NULL);
				traffic = start_traffic(address);
				usleep(50000);
				br->win_busy[k] = boost_latency(c, svc, WINDOW_BUSY_SAMPLES, NULL, NULL, NULL);
				kill(traffic, SIGKILL);
				waitpid(traffic, NULL, 0);
				stop(imp);
			}
		for (int i = 0; i < HOGS; i++) {
			kill(hogs[i], SIGKILL);
			waitpid(hogs[i], NULL, 0);
		}
	}
	br->ok = br->inv_off.ok && br->inv_on.ok;
	if (!br->ok)
		snprintf(br->why, sizeof(br->why), "the inversion run failed");
	/* what watching costs at each window: everything on CPU 0 (the bus
	 * too), pairs of runs without and with importanced, the windows in a
	 * rotated order in each round */
	sd_bus_flush_close_unref(c);
	c = NULL;
	kill(svc, SIGKILL);
	waitpid(svc, NULL, 0);
	{
		double ratio[WINDOWS][WINDOW_PAIRS];
		cpu_set_t all;

		pin_to_cpu0();
		pin_tree(bus, true);
		svc = start_service(address, 0, true);
		if (!(c = client(address))) {
			snprintf(br->why, sizeof(br->why), "the service did not appear");
			br->ok = false;
		}
		for (int p = 0; c && p < WINDOW_PAIRS; p++)
			for (int j = 0; j < WINDOWS; j++) {
				int k = (j + p) % WINDOWS;
				struct lat off = calls(c, "Ping", WINDOW_ROUNDS), on = { 0, 0, false };

				if ((imp = start_importanced_with(imp_bin, address, windows[k], true)) >= 0) {
					on = calls(c, "Ping", WINDOW_ROUNDS);
					stop(imp);
				}
				ratio[k][p] = off.ok && on.ok ? on.p50_us / off.p50_us : 0;
			}
		for (int k = 0; c && k < WINDOWS; k++)
			br->win_cost[k] = median(ratio[k], WINDOW_PAIRS);
		cpus(&all, false);
		sched_setaffinity(0, sizeof(all), &all);
		pin_tree(bus, false);
	}
out:
	sd_bus_flush_close_unref(c);
	if (svc > 0) {
		kill(svc, SIGKILL);
		waitpid(svc, NULL, 0);
	}
	stop(bus);
	unlink(sock);
	unlink(cfg);
}

int main(int argc, char **argv)
{
	struct busrun runs[2] = { { .kind = "dbus-daemon" }, { .kind = "dbus-broker" } };
	char dir[] = "/tmp/bench-dbus.XXXXXX";
	int rounds, pin = -1;

	if ((pin = buslaunch_pin_args(&argc, &argv)) == -2)
		return 2;
	if (argc < 2) {
		fprintf(stderr, "usage: bench-dbus [--pin CPU] IMPORTANCED [ROUNDS]\n");
		return 2;
	}
	rounds = argc > 2 ? atoi(argv[2]) : 3000;
	if (rounds < 100)
		rounds = 100;
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir))
		return 1;
	snprintf(imp_sock, sizeof(imp_sock), "%s/imp.sock", dir);
	snprintf(imp_log, sizeof(imp_log), "%s/imp.log", dir);
	for (int k = 0; k < 2; k++)
		run_bus(&runs[k], argv[1], dir, rounds, pin >= 0);
	unlink(imp_log);
	rmdir(dir);

	if (pin >= 0)
		printf("All processes pinned to CPU %d (`--pin %d`).\n\n", pin, pin);
	printf("### Cost to the bus\n\n%d sd-bus method calls per run (64-byte argument, empty reply), one at a time, "
	       "from a donor to a service: with no monitor (off), with a monitor that reads the same messages as "
	       "importanced and does nothing with them (idle monitor), and with importanced monitoring the bus (on), "
	       "alternating, %d runs each; medians (of each run's p50, and of the ratio of each run with importanced to the run "
	       "just before it without).\n\n",
	       rounds, REPS);
	printf("| bus | p50 off (us) | p50 idle monitor (us) | p50 on (us) | p50 on / off | p50 on / off, per pair of runs | "
	       "p50 idle monitor / off | p99 off (us) | p99 on (us) |\n"
	       "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
	for (int k = 0; k < 2; k++) {
		struct busrun *br = &runs[k];
		double p50off[REPS], p50idle[REPS], p50on[REPS], p99off[REPS], p99on[REPS], ratio[REPS], idle_ratio[REPS];

		if (!br->off[REPS - 1].ok) {
			printf("| %s | not run: %s | | | | | | | |\n", br->kind, br->why);
			continue;
		}
		for (int r = 0; r < REPS; r++) {
			ratio[r] = br->on[r].p50_us / br->off[r].p50_us;
			idle_ratio[r] = br->idle[r].p50_us / br->off[r].p50_us;
			p50idle[r] = br->idle[r].p50_us;
			p50off[r] = br->off[r].p50_us;
			p50on[r] = br->on[r].p50_us;
			p99off[r] = br->off[r].p99_us;
			p99on[r] = br->on[r].p99_us;
		}
		printf("| %s | %.1f | %.1f | %.1f | %.2fx | %.2fx | %.2fx | %.1f | %.1f |\n", br->kind, median(p50off, REPS),
		       median(p50idle, REPS), median(p50on, REPS), median(p50on, REPS) / median(p50off, REPS),
		       median(ratio, REPS), median(idle_ratio, REPS), median(p99off, REPS), median(p99on, REPS));
	}
	if (pin >= 0)
		return 0;
	printf("\n### Priority inversion over D-Bus\n\nA service at nice 10 pinned to CPU 0 with %d CPU-bound "
	       "processes at nice 0; a donor calls its method doing %d us of CPU work, one at a time: %d calls with "
	       "importanced (nice backend, boost to nice 0) attached, %d without (the slow ones: "
	       "each waits for a nice-10 share of the CPU).\n\n",
	       HOGS, WORK_US, INVERSION_CALLS, INVERSION_CALLS_OFF);
	printf("| bus | p50 without (ms) | p50 with (ms) | p99 without (ms) | p99 with (ms) | p50 speed-up | boost events |\n"
	       "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
	for (int k = 0; k < 2; k++) {
		struct busrun *br = &runs[k];

		if (!br->ok) {
			printf("| %s | not run: %s | | | | | |\n", br->kind, br->why);
			continue;
		}
		printf("| %s | %.2f | %.2f | %.2f | %.2f | %.1fx | %llu |\n", br->kind, br->inv_off.p50_us / 1e3,
		       br->inv_on.p50_us / 1e3, br->inv_off.p99_us / 1e3, br->inv_on.p99_us / 1e3,
		       br->inv_off.p50_us / br->inv_on.p50_us, (unsigned long long)br->inv_boosts);
	}
	printf("\n### Boost latency over D-Bus\n\nFrom just before a donor's call (%d us of work) to the moment the "
	       "service's nice value has changed (read with getpriority every 20 us), %d calls one at a time, with "
	       "importanced's default batch window, under load: the service at nice 10 on CPU 0 with %d CPU-bound "
	       "processes at nice 0.\n\n",
	       BOOST_WORK_US, BOOST_SAMPLES, HOGS);
	printf("| bus | p50 (us) | p99 (us) | until the bus routed it: p50 (us) | p99 (us) | after: p50 (us) | p99 (us) |\n"
	       "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
	for (int k = 0; k < 2; k++) {
		struct busrun *br = &runs[k];

		if (!br->boost.ok)
			printf("| %s | not run | | | | | |\n", br->kind);
		else
			printf("| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f |\n", br->kind, br->boost.p50_us,
			       br->boost.p99_us, br->routed.p50_us, br->routed.p99_us, br->after.p50_us, br->after.p99_us);
	}
	printf("\n### The batch window: what watching costs against how soon a call boosts\n\n"
	       "For each `dbus-batch-usec`: the cost, the median over %d pairs of runs (%d calls each, every "
	       "process on CPU 0, the bus too) of p50 with importanced / p50 without; and the boost latency as "
	       "above, under the same load (the service at nice 10 on CPU 0 with %d CPU-bound processes), %d calls "
	       "on a quiet bus and %d on a busy one (another client calling the bus driver all the while, one "
	       "call at a time; a call whose boost has not come within 1 s counts as 1 s).\n\n",
	       WINDOW_PAIRS, WINDOW_ROUNDS, HOGS, WINDOW_SAMPLES, WINDOW_BUSY_SAMPLES);
	for (int k = 0; k < 2; k++) {
		struct busrun *br = &runs[k];

		printf("%s| dbus-batch-usec | %s: cost | quiet bus: boost p50 (us) | p99 (us) | busy bus: boost p50 (us) "
		       "| p99 (us) |\n| ---: | ---: | ---: | ---: | ---: | ---: |\n",
		       k ? "\n" : "", br->kind);
		for (int w = 0; w < WINDOWS; w++) {
			if (!br->win_cost[w] || !br->win_boost[w].ok || !br->win_busy[w].ok)
				printf("| %ld | not run | | | | |\n", windows[w]);
			else
				printf("| %ld | %.2fx | %.0f | %.0f | %.0f | %.0f |\n", windows[w], br->win_cost[w],
				       br->win_boost[w].p50_us, br->win_boost[w].p99_us, br->win_busy[w].p50_us,
				       br->win_busy[w].p99_us);
		}
	}
	return 0;
}
