/*
 * Broker benchmarks, side by side in one run: request/reply round trips
 * (64-byte request, 4-byte reply) between two processes
 *   - over a socketpair (the floor: no broker at all),
 *   - through importanced (send with a reply port, receive, reply),
 *   - through dbus-daemon and dbus-broker (an sd-bus method call),
 * with p50/p99 latency and sequential throughput; and the boost latency:
 * from a donor's send to the receiver's changed nice value.
 *
 *   bench-broker IMPORTANCED_BINARY [ROUNDS]
 * D-Bus peers are skipped (and said so) when their daemons are missing.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "importance/client.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct result {
	const char *name;
	double p50_us, p99_us, per_s;
	bool ok;
};

static struct result summarize(const char *name, uint64_t *lat, int n, uint64_t total_ns)
{
	struct result r = { name, 0, 0, 0, true };

	qsort(lat, (size_t)n, sizeof(*lat), cmp_u64);
	r.p50_us = (double)lat[n / 2] / 1e3;
	r.p99_us = (double)lat[(n * 99) / 100] / 1e3;
	r.per_s = (double)n / ((double)total_ns / 1e9);
	return r;
}

static pid_t child(void)
{
	pid_t p = fork();

	if (p == 0)
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	return p;
}

/* ---- floor: a socketpair ---- */

static struct result bench_socketpair(int rounds)
{
	int sv[2];
	char buf[64] = { 0 };
	uint64_t *lat = calloc((size_t)rounds, sizeof(*lat)), start;
	pid_t p;
	struct result r;

	socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv);
	p = child();
	if (p == 0) {
		close(sv[0]);
		for (;;) {
			if (recv(sv[1], buf, sizeof(buf), 0) <= 0)
				_exit(0);
			send(sv[1], "done", 4, 0);
		}
	}
	close(sv[1]);
	start = now_ns();
	for (int i = 0; i < rounds; i++) {
		uint64_t t0 = now_ns();

		send(sv[0], buf, sizeof(buf), 0);
		recv(sv[0], buf, sizeof(buf), 0);
		lat[i] = now_ns() - t0;
	}
	r = summarize("socketpair (floor)", lat, rounds, now_ns() - start);
	close(sv[0]);
	waitpid(p, NULL, 0);
	free(lat);
	return r;
}

/* ---- importanced ---- */

static char sock[108];

static pid_t start_importanced(const char *bin, const char *policy)
{
	pid_t p;

	snprintf(sock, sizeof(sock), "/tmp/importanced-bench.%d.sock", (int)getpid());
	p = child();
	if (p == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		dup2(devnull, 2);
		execl(bin, bin, "--socket", sock, "--policy", policy, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		impc *c;

		if (impc_connect(sock, IMPC_MONITOR, &c, NULL) == 0) {
			impc_close(c);
			return p;
		}
		usleep(10000);
	}
	return -1;
}

static void stop(pid_t p)
{
	kill(p, SIGTERM);
	waitpid(p, NULL, 0);
}

static void imp_server_named(const char *name, int nice_value, bool voucher, long hold_us)
{
	impc *c;
	uint64_t port;

	if (nice_value)
		setpriority(PRIO_PROCESS, 0, nice_value);
	if (impc_connect(sock, IMPC_RECEIVER, &c, NULL) < 0 || impc_port_allocate(c, true, &port) < 0 ||
	    impc_register(c, name, port) < 0)
		_exit(1);
	if (hold_us) {
		/* boost-latency mode: hold each request's voucher a while, so
		 * the donor can see the boost before it goes */
		for (;;) {
			impc_message m;

			if (impc_receive(c, port, -1, IMPC_RECV_VOUCHER, &m) < 0)
				_exit(0);
			usleep((useconds_t)hold_us);
			impc_send(c, m.reply_port, "done", 4, 0, 0, 0, NULL);
			impc_voucher_release(c, m.voucher);
			free(m.data);
		}
	}
	/* a server's loop: one round trip per request (reply, release the
	 * voucher, wait for the next) */
	{
		impc_message m;
		impc_send_args reply = { 0, "done", 4, 0, 0, 0 };

		if (impc_receive(c, port, -1, voucher ? IMPC_RECV_VOUCHER : 0, &m) < 0)
			_exit(0);
		for (;;) {
			uint64_t release = m.voucher;

			reply.port = m.reply_port;
			free(m.data);
			if (impc_send_receive(c, &reply, release, port, -1, voucher ? IMPC_RECV_VOUCHER : 0, &m) < 0)
				_exit(0);
		}
	}
}

static void imp_server(int nice_value, bool voucher, long hold_us)
{
	imp_server_named("bench", nice_value, voucher, hold_us);
}

static impc *imp_client_named(const char *name, uint64_t *peer, uint64_t *reply)
{
	impc *c;

	for (int i = 0; i < 500; i++) {
		if (impc_connect(sock, 0, &c, NULL) == 0) {
			if (impc_lookup(c, name, peer) == 0 && impc_port_allocate(c, false, reply) == 0)
				return c;
			impc_close(c);
		}
		usleep(10000);
	}
	return NULL;
}

static impc *imp_client(uint64_t *peer, uint64_t *reply)
{
	return imp_client_named("bench", peer, reply);
}

/* ---- concurrent throughput: PAIRS client/server pairs at once ---- */

#define PAIRS 4

/* Forks the clients, releases them together, returns round trips/s. */
static double run_clients(void (*client_fn)(int idx, int rounds, const char *arg), int rounds,
			  const char *arg)
{
	int go[2];
	pid_t kids[PAIRS];
	uint64_t t0;
	int ok = 1;

	if (pipe(go) < 0)
		return 0;
	for (int i = 0; i < PAIRS; i++) {
		kids[i] = child();
		if (kids[i] == 0) {
			char c;

			close(go[1]);
			if (read(go[0], &c, 1) != 1)
				_exit(1);
			client_fn(i, rounds, arg);
			_exit(0);
		}
	}
	close(go[0]);
	usleep(300 * 1000); /* let them connect */
	t0 = now_ns();
	for (int i = 0; i < PAIRS; i++)
		if (write(go[1], "g", 1) != 1)
			ok = 0;
	for (int i = 0; i < PAIRS; i++) {
		int status;

		waitpid(kids[i], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			ok = 0;
	}
	close(go[1]);
	return ok ? (double)PAIRS * rounds / ((double)(now_ns() - t0) / 1e9) : 0;
}

static void imp_pair_client(int idx, int rounds, const char *arg)
{
	char name[32], buf[64] = { 0 };
	uint64_t peer, reply;
	impc *c;

	(void)arg;
	snprintf(name, sizeof(name), "bench%d", idx);
	if (!(c = imp_client_named(name, &peer, &reply)))
		_exit(1);
	for (int i = 0; i < rounds; i++) {
		impc_message m;
		impc_send_args req = { peer, buf, sizeof(buf), 0, reply, 0 };

		if (impc_send_receive(c, &req, 0, reply, -1, 0, &m) < 0)
			_exit(1);
		free(m.data);
	}
	impc_close(c);
}

static double imp_concurrent(const char *bin, int rounds)
{
	pid_t d, s[PAIRS];
	double r;

	if ((d = start_importanced(bin, "none")) < 0)
		return 0;
	for (int i = 0; i < PAIRS; i++) {
		s[i] = child();
		if (s[i] == 0) {
			char name[32];

			snprintf(name, sizeof(name), "bench%d", i);
			imp_server_named(name, 0, true, 0);
		}
	}
	r = run_clients(imp_pair_client, rounds, NULL);
	for (int i = 0; i < PAIRS; i++) {
		kill(s[i], SIGKILL);
		waitpid(s[i], NULL, 0);
	}
	stop(d);
	return r;
}

static struct result bench_importanced(const char *bin, int rounds)
{
	struct result r = { "importanced", 0, 0, 0, false };
	uint64_t *lat = calloc((size_t)rounds, sizeof(*lat)), start, peer, reply;
	char buf[64] = { 0 };
	pid_t d, s;
	impc *c;

	if ((d = start_importanced(bin, "none")) < 0)
		return r;
	s = child();
	if (s == 0)
		imp_server(0, true, 0);
	if (!(c = imp_client(&peer, &reply)))
		goto out;
	start = now_ns();
	for (int i = 0; i < rounds; i++) {
		impc_message m;
		impc_send_args req = { peer, buf, sizeof(buf), 0, reply, 0 };
		uint64_t t0 = now_ns();

		/* a client's call: send the request and wait for the reply */
		impc_send_receive(c, &req, 0, reply, -1, 0, &m);
		free(m.data);
		lat[i] = now_ns() - t0;
	}
	r = summarize("importanced", lat, rounds, now_ns() - start);
	impc_close(c);
out:
	kill(s, SIGKILL);
	waitpid(s, NULL, 0);
	stop(d);
	free(lat);
	return r;
}

/* The time from a donor's send to the receiver's changed nice value. */
static struct result bench_boost_latency(const char *bin, int rounds)
{
	struct result r = { "boost latency (send -> nice changed)", 0, 0, 0, false };
	uint64_t *lat = calloc((size_t)rounds, sizeof(*lat)), start, peer, reply;
	pid_t d, s;
	impc *c, *admin;
	int n = 0;

	if ((d = start_importanced(bin, "nice")) < 0)
		return r;
	s = child();
	if (s == 0)
		imp_server(10, true, 2000);
	if (!(c = imp_client(&peer, &reply)) || impc_connect(sock, IMPC_MONITOR, &admin, NULL) < 0)
		goto out;
	impc_donor(admin, getpid(), true);
	start = now_ns();
	for (int i = 0; i < rounds; i++) {
		impc_message m;
		uint64_t t0;

		while (getpriority(PRIO_PROCESS, (id_t)s) != 10)
			; /* unboosted again after the previous round */
		t0 = now_ns();
		impc_send(c, peer, "x", 1, 0, reply, 0, NULL);
		while (getpriority(PRIO_PROCESS, (id_t)s) == 10 && now_ns() - t0 < 1000000000ull)
			;
		lat[n++] = now_ns() - t0;
		impc_receive(c, reply, -1, 0, &m);
		free(m.data);
	}
	r = summarize(r.name, lat, n, now_ns() - start);
	r.per_s = 0;
	impc_close(admin);
	impc_close(c);
out:
	kill(s, SIGKILL);
	waitpid(s, NULL, 0);
	stop(d);
	free(lat);
	return r;
}

/* ---- D-Bus: the same request/reply as a method call ---- */

static int on_ping(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	const void *data;
	size_t size;

	(void)userdata;
	(void)err;
	sd_bus_message_read_array(m, 'y', &data, &size);
	return sd_bus_reply_method_return(m, "s", "done");
}

static const sd_bus_vtable bench_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_METHOD("Ping", "ay", "s", on_ping, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_VTABLE_END
};

static sd_bus *bus_open(const char *address)
{
	sd_bus *bus = NULL;

	if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, address) < 0 ||
	    sd_bus_set_bus_client(bus, 1) < 0 || sd_bus_start(bus) < 0) {
		sd_bus_unref(bus);
		return NULL;
	}
	return bus;
}

static struct result bench_dbus(const char *name, const char *address, pid_t daemon_pid, int rounds)
{
	struct result r = { name, 0, 0, 0, false };
	uint64_t *lat = calloc((size_t)rounds, sizeof(*lat)), start;
	uint8_t payload[64] = { 0 };
	sd_bus *bus = NULL;
	pid_t s;

	s = child();
	if (s == 0) {
		sd_bus *sb = bus_open(address);

		if (!sb || sd_bus_add_object_vtable(sb, NULL, "/bench", "org.importance.Bench", bench_vtable, NULL) < 0 ||
		    sd_bus_request_name(sb, "org.importance.Bench", 0) < 0)
			_exit(1);
		for (;;) {
			if (sd_bus_process(sb, NULL) > 0)
				continue;
			if (sd_bus_wait(sb, UINT64_MAX) < 0)
				_exit(0);
		}
	}
	for (int i = 0; i < 300 && !bus; i++) {
		bus = bus_open(address);
		if (!bus || sd_bus_get_name_creds(bus, "org.importance.Bench", 0, NULL) < 0) {
			bus = sd_bus_unref(bus);
			usleep(10000);
		}
	}
	if (!bus)
		goto out;
	start = now_ns();
	for (int i = 0; i < rounds; i++) {
		sd_bus_message *reply = NULL, *call = NULL;
		uint64_t t0 = now_ns();

		sd_bus_message_new_method_call(bus, &call, "org.importance.Bench", "/bench",
					       "org.importance.Bench", "Ping");
		sd_bus_message_append_array(call, 'y', payload, sizeof(payload));
		if (sd_bus_call(bus, call, 0, NULL, &reply) < 0)
			goto out;
		sd_bus_message_unref(call);
		sd_bus_message_unref(reply);
		lat[i] = now_ns() - t0;
	}
	r = summarize(name, lat, rounds, now_ns() - start);
out:
	sd_bus_flush_close_unref(bus);
	kill(s, SIGKILL);
	waitpid(s, NULL, 0);
	stop(daemon_pid);
	free(lat);
	return r;
}

static sd_bus *bus_open(const char *address);

static void dbus_pair_client(int idx, int rounds, const char *address)
{
	char name[64];
	uint8_t payload[64] = { 0 };
	sd_bus *bus = bus_open(address);

	snprintf(name, sizeof(name), "org.importance.Bench%d", idx);
	if (!bus)
		_exit(1);
	for (int i = 0; i < rounds; i++) {
		sd_bus_message *reply = NULL, *call = NULL;

		sd_bus_message_new_method_call(bus, &call, name, "/bench", "org.importance.Bench", "Ping");
		sd_bus_message_append_array(call, 'y', payload, sizeof(payload));
		if (sd_bus_call(bus, call, 0, NULL, &reply) < 0)
			_exit(1);
		sd_bus_message_unref(call);
		sd_bus_message_unref(reply);
	}
	sd_bus_flush_close_unref(bus);
}

static double dbus_concurrent(const char *address, int rounds)
{
	pid_t s[PAIRS];
	double r;

	for (int i = 0; i < PAIRS; i++) {
		s[i] = child();
		if (s[i] == 0) {
			char name[64];
			sd_bus *sb = bus_open(address);

			snprintf(name, sizeof(name), "org.importance.Bench%d", i);
			if (!sb || sd_bus_add_object_vtable(sb, NULL, "/bench", "org.importance.Bench", bench_vtable, NULL) < 0 ||
			    sd_bus_request_name(sb, name, 0) < 0)
				_exit(1);
			for (;;) {
				if (sd_bus_process(sb, NULL) > 0)
					continue;
				if (sd_bus_wait(sb, UINT64_MAX) < 0)
					_exit(0);
			}
		}
	}
	usleep(300 * 1000);
	r = run_clients(dbus_pair_client, rounds, address);
	for (int i = 0; i < PAIRS; i++) {
		kill(s[i], SIGKILL);
		waitpid(s[i], NULL, 0);
	}
	return r;
}

static const char *dbus_config(const char *path, const char *address)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return NULL;
	fprintf(f,
		"<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
		" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
		"<busconfig><type>session</type><listen>%s</listen>\n"
		"<policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>"
		"<allow eavesdrop=\"true\"/><allow own=\"*\"/><allow user=\"*\"/></policy></busconfig>\n",
		address);
	fclose(f);
	return path;
}

static pid_t start_dbus_daemon(const char *config, const char *sock_path)
{
	pid_t p = child();

	if (p == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		dup2(devnull, 1);
		dup2(devnull, 2);
		execlp("dbus-daemon", "dbus-daemon", "--nofork", "--config-file", config, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 300 && access(sock_path, F_OK) != 0; i++)
		usleep(10000);
	return access(sock_path, F_OK) == 0 ? p : -1;
}

/* dbus-broker takes its listening socket from a launcher; we are one. */
static pid_t start_dbus_broker(const char *sock_path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd;
	pid_t p;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.107s", sock_path);
	unlink(sock_path);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 64) < 0)
		return -1;
	p = child();
	if (p == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		dup2(devnull, 1);
		dup2(devnull, 2);
		dup2(lfd, 3);
		setenv("LISTEN_FDS", "1", 1);
		{
			char pid[16];

			snprintf(pid, sizeof(pid), "%d", (int)getpid());
			setenv("LISTEN_PID", pid, 1);
		}
		execlp("dbus-broker-launch", "dbus-broker-launch", "--scope", "user", (char *)NULL);
		_exit(127);
	}
	close(lfd);
	return p;
}

static void print(const struct result *r, const struct result *floor_r)
{
	if (!r->ok) {
		printf("| %s | not run | | | |\n", r->name);
		return;
	}
	printf("| %s | %.1f | %.1f | %.0f | %.2f |\n", r->name, r->p50_us, r->p99_us, r->per_s,
	       r->p50_us / floor_r->p50_us);
}

static double median(double *v, int n)
{
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (v[j] < v[i]) {
				double t = v[i];

				v[i] = v[j];
				v[j] = t;
			}
	return v[n / 2];
}

int main(int argc, char **argv)
{
	enum { REPS = 3 };
	int rounds = argc > 2 ? atoi(argv[2]) : 20000;
	struct result fl[REPS], imp[REPS], dd[REPS], boost;
	struct result db = { "dbus-broker", 0, 0, 0, false };
	double v[REPS], imp_conc[REPS] = { 0 }, dd_conc[REPS] = { 0 }, ratio1[REPS], ratio4[REPS];
	char cfg[100], path[100], addr[160];
	bool have_dbus = true;
	pid_t p;

	if (argc < 2) {
		fprintf(stderr, "usage: bench-broker IMPORTANCED [ROUNDS]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	snprintf(path, sizeof(path), "/tmp/bench-dbus.%d.sock", (int)getpid());
	snprintf(addr, sizeof(addr), "unix:path=%s", path);
	snprintf(cfg, sizeof(cfg), "/tmp/bench-dbus.%d.conf", (int)getpid());
	dbus_config(cfg, addr);
	/* alternate the contenders, three times, and keep medians: this
	 * machine's wakeup latency drifts from one second to the next */
	for (int r = 0; r < REPS; r++) {
		fl[r] = bench_socketpair(rounds);
		imp[r] = bench_importanced(argv[1], rounds);
		imp_conc[r] = imp_concurrent(argv[1], rounds / 2);
		dd[r] = (struct result){ "dbus-daemon", 0, 0, 0, false };
		if (have_dbus && (p = start_dbus_daemon(cfg, path)) > 0) {
			dd_conc[r] = dbus_concurrent(addr, rounds / 2);
			dd[r] = bench_dbus("dbus-daemon", addr, p, rounds);
		} else {
			have_dbus = false;
		}
		unlink(path);
		ratio1[r] = dd[r].ok ? imp[r].per_s / dd[r].per_s : 0;
		ratio4[r] = dd_conc[r] > 0 ? imp_conc[r] / dd_conc[r] : 0;
	}
	if ((p = start_dbus_broker(path)) > 0)
		db = bench_dbus("dbus-broker", addr, p, rounds);
	unlink(path);
	unlink(cfg);
	boost = bench_boost_latency(argv[1], rounds / 20 > 200 ? rounds / 20 : 200);

	printf("### Request/reply round trips\n\n%d round trips per run, one client and one server, "
	       "64-byte request; each contender run %d times, alternating; medians.\n\n", rounds, REPS);
	printf("| path | p50 (us) | p99 (us) | round trips/s | p50 / floor |\n| --- | ---: | ---: | ---: | ---: |\n");
	{
		struct result *sets[3] = { fl, imp, dd };

		for (int k = 0; k < 3; k++) {
			struct result m = sets[k][0];

			if (!m.ok) {
				print(&m, &fl[0]);
				continue;
			}
			for (int r = 0; r < REPS; r++)
				v[r] = sets[k][r].p50_us;
			m.p50_us = median(v, REPS);
			for (int r = 0; r < REPS; r++)
				v[r] = sets[k][r].p99_us;
			m.p99_us = median(v, REPS);
			for (int r = 0; r < REPS; r++)
				v[r] = sets[k][r].per_s;
			m.per_s = median(v, REPS);
			printf("| %s | %.1f | %.1f | %.0f | %.2f |\n", m.name, m.p50_us, m.p99_us, m.per_s,
			       m.p50_us / median((double[]){ fl[0].p50_us, fl[1].p50_us, fl[2].p50_us }, REPS));
		}
	}
	print(&db, &fl[0]);
	printf("\n%d client/server pairs at once, %d round trips each (medians of %d):\n\n"
	       "| broker | round trips/s |\n| --- | ---: |\n| importanced | %.0f |\n| dbus-daemon | %.0f |\n\n",
	       PAIRS, rounds / 2, REPS, median(imp_conc, REPS), median(dd_conc, REPS));
	if (have_dbus) {
		printf("importanced / dbus-daemon throughput, per run (same run, side by side):\n\n"
		       "| run | one pair | %d pairs |\n| ---: | ---: | ---: |\n", PAIRS);
		for (int r = 0; r < REPS; r++)
			printf("| %d | %.2fx | %.2fx |\n", r + 1, ratio1[r], ratio4[r]);
		printf("| **median** | **%.2fx** | **%.2fx** |\n", median(ratio1, REPS), median(ratio4, REPS));
	}
	printf("\n### Boost latency\n\nFrom just before a donor's send to the moment the receiver's nice "
	       "value has changed (read with getpriority in a loop), %s.\n\n",
	       boost.ok ? "policy nice" : "not run");
	if (boost.ok)
		printf("| p50 (us) | p99 (us) |\n| ---: | ---: |\n| %.1f | %.1f |\n\n", boost.p50_us, boost.p99_us);
	return 0;
}
