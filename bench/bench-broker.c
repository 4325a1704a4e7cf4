/*
 * Broker benchmarks, side by side in one run: request/reply round trips
 * (64-byte request, 4-byte reply) between two processes
 *   - over a socketpair (the floor: no broker at all),
 *   - through importanced (send with a reply port, receive, reply),
 *   - through dbus-daemon and dbus-broker (an sd-bus method call),
 * with p50/p99 latency and sequential throughput; and the boost latency:
 * from a donor's send to the receiver's changed nice value.
 *
 *   bench-broker [--pin CPU] [--quick] IMPORTANCED_BINARY [ROUNDS]
 * D-Bus peers are skipped (and said so) when their daemons are missing.
 * --quick runs the ping-pong alone (socketpair, relay, importanced on and
 * off), for profiling; BENCH_WRAP="strace -c -o FILE" (any command
 * prefix) runs importanced under it; BENCH_VERSUS=OTHER_IMPORTANCED adds
 * a row for another build of the daemon, run alternating with the others.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "buslaunch.h"
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

/* ---- the floor for any broker: a relay that only forwards ---- */

/* Three processes: client, a relay forwarding frames between two
 * socketpairs from an epoll loop (no protocol, no lookups), and server.
 * Every broker pays at least this: four socket hops and the relay's
 * wakeups.  With RELAY_CREDS, the relay's sockets have SO_PASSCRED, so
 * that the kernel attaches the sender's credentials to every frame, and
 * the relay compares the pid in each with its peer's: what knowing the
 * sender of every frame costs any broker.  With RELAY_PIDFD they have
 * SO_PASSPIDFD instead: every frame comes with a pidfd of its sender,
 * which the relay compares (its inode) with its peer's and closes. */
enum relay_ident { RELAY_NONE, RELAY_CREDS, RELAY_PIDFD };

#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif
#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif

static struct result bench_relay(int rounds, enum relay_ident ident)
{
	static const char *const names[] = { "epoll relay (floor for a broker)",
					      "epoll relay, SCM_CREDENTIALS on every frame",
					      "epoll relay, SCM_PIDFD on every frame" };
	bool creds = ident != RELAY_NONE;
	int a[2], z[2];
	char buf[128] = { 0 };
	uint64_t *lat = calloc((size_t)rounds, sizeof(*lat)), start;
	pid_t srv, relay;
	struct result r;

	socketpair(AF_UNIX, SOCK_SEQPACKET, 0, a);
	socketpair(AF_UNIX, SOCK_SEQPACKET, 0, z);
	if (creds) {
		int on = 1, opt = ident == RELAY_CREDS ? SO_PASSCRED : SO_PASSPIDFD;

		setsockopt(a[1], SOL_SOCKET, opt, &on, sizeof(on));
		setsockopt(z[0], SOL_SOCKET, opt, &on, sizeof(on));
	}
	srv = child();
	if (srv == 0) {
		for (;;) {
			if (recv(z[1], buf, sizeof(buf), 0) <= 0)
				_exit(0);
			send(z[1], "done", 4, 0);
		}
	}
	relay = child();
	if (relay == 0) {
		int ep = epoll_create1(0);
		struct epoll_event e = { .events = EPOLLIN };
		pid_t client = getppid();
		ino_t known[2] = { 0, 0 }; /* the pidfds' inodes: client's, server's */

		e.data.fd = a[1];
		epoll_ctl(ep, EPOLL_CTL_ADD, a[1], &e);
		e.data.fd = z[0];
		epoll_ctl(ep, EPOLL_CTL_ADD, z[0], &e);
		for (;;) {
			struct epoll_event ev[4];
			int k = epoll_wait(ep, ev, 4, -1);

			for (int i = 0; i < k; i++) {
				int from = ev[i].data.fd;
				union {
					struct cmsghdr align;
					char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int))];
				} control;
				struct iovec iov = { buf, sizeof(buf) };
				struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
						     .msg_controllen = creds ? sizeof(control.buf) : 0 };
				ssize_t n = recvmsg(from, &mh, MSG_DONTWAIT);
				struct cmsghdr *cm = creds && n > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
				struct ucred u;

				if (n == 0)
					_exit(0);
				if (cm && cm->cmsg_type == SCM_CREDENTIALS) {
					memcpy(&u, CMSG_DATA(cm), sizeof(u));
					if (u.pid != (from == a[1] ? client : srv))
						_exit(1);
				} else if (cm && cm->cmsg_type == SCM_PIDFD) {
					ino_t *seen = &known[from == a[1] ? 0 : 1];
					struct stat st;
					int pfd;

					memcpy(&pfd, CMSG_DATA(cm), sizeof(pfd));
					if (fstat(pfd, &st) < 0 || (*seen && st.st_ino != *seen))
						_exit(1);
					*seen = st.st_ino;
					close(pfd);
				}
				if (n > 0)
					send(from == a[1] ? z[0] : a[1], buf, (size_t)n, 0);
			}
		}
	}
	close(a[1]);
	close(z[0]);
	close(z[1]);
	start = now_ns();
	for (int i = 0; i < rounds; i++) {
		uint64_t t0 = now_ns();

		send(a[0], buf, 64, 0);
		recv(a[0], buf, sizeof(buf), 0);
		lat[i] = now_ns() - t0;
	}
	r = summarize(names[ident], lat, rounds, now_ns() - start);
	close(a[0]);
	kill(relay, SIGKILL);
	kill(srv, SIGKILL);
	waitpid(relay, NULL, 0);
	waitpid(srv, NULL, 0);
	free(lat);
	return r;
}

/* ---- importanced ---- */

static char sock[108];
static bool server_donate = true; /* false: its ports take no donations */

static pid_t start_importanced(const char *bin, const char *policy)
{
	pid_t p;

	snprintf(sock, sizeof(sock), "/tmp/importanced-bench.%d.sock", (int)getpid());
	p = child();
	if (p == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		char uid[16];

		/* we are the donors: the requests carry boosts, as an app's do */
		snprintf(uid, sizeof(uid), "%u", (unsigned)getuid());
		dup2(devnull, 2);
		setpgid(0, 0); /* stop() ends a wrapper and the daemon together */
		if (getenv("BENCH_WRAP"))
			execl("/bin/sh", "sh", "-c", "exec $BENCH_WRAP \"$@\"", "sh", bin, "--socket", sock, "--backend",
			      policy, "--donor-uid", uid, (char *)NULL);
		execl(bin, bin, "--socket", sock, "--backend", policy, "--donor-uid", uid, (char *)NULL);
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
	if (kill(-p, SIGTERM) < 0) /* not a group leader */
		kill(p, SIGTERM);
	waitpid(p, NULL, 0);
}

/* A server's connection with a port registered under name; exits on failure. */
static impc *imp_server_connect(const char *name, bool donate, uint64_t *port)
{
	impc *c;

	if (impc_connect(sock, IMPC_RECEIVER, &c, NULL) < 0 || impc_port_allocate(c, donate, port) < 0 ||
	    impc_register(c, name, *port) < 0)
		_exit(1);
	return c;
}

static void imp_server_named(const char *name, int nice_value, bool voucher, long hold_us)
{
	impc *c;
	uint64_t port;

	if (nice_value)
		setpriority(PRIO_PROCESS, 0, nice_value);
	c = imp_server_connect(name, server_donate, &port);
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

/* In a client of run_clients: where it says it has connected. */
static int ready_fd = -1;

/* A client has connected: says so on ready_fd, then waits for the start
 * on fd. */
static void wait_go(int fd)
{
	char c = 'r';

	if (write(ready_fd, &c, 1) != 1 || read(fd, &c, 1) != 1)
		_exit(1);
}

/* Forks n clients, each of which connects, says so and then waits on
 * go_fd, so that connecting is not timed; once all have connected (or
 * exited), releases them together and returns their round trips per
 * second in all. */
static double run_clients(int n, void (*client_fn)(int idx, int rounds, const char *arg, int go_fd),
			  int rounds, const char *arg)
{
	int go[2], ready[2];
	pid_t kids[PAIRS];
	uint64_t t0;
	int ok = 1;
	char c;

	if (n > PAIRS || pipe(go) < 0)
		return 0;
	if (pipe(ready) < 0) {
		close(go[0]);
		close(go[1]);
		return 0;
	}
	for (int i = 0; i < n; i++) {
		kids[i] = child();
		if (kids[i] == 0) {
			close(go[1]);
			close(ready[0]);
			ready_fd = ready[1];
			client_fn(i, rounds, arg, go[0]);
			_exit(0);
		}
	}
	close(go[0]);
	close(ready[1]);
	/* one byte from each client that connected; end of file once every
	 * other one has exited */
	for (int i = 0; i < n; i++)
		if (read(ready[0], &c, 1) != 1) {
			ok = 0;
			break;
		}
	close(ready[0]);
	t0 = now_ns();
	for (int i = 0; i < n; i++)
		if (write(go[1], "g", 1) != 1)
			ok = 0;
	for (int i = 0; i < n; i++) {
		int status;

		waitpid(kids[i], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			ok = 0;
	}
	close(go[1]);
	return ok ? (double)n * rounds / ((double)(now_ns() - t0) / 1e9) : 0;
}

static void imp_pair_client(int idx, int rounds, const char *arg, int go)
{
	char name[32], buf[64] = { 0 };
	uint64_t peer, reply;
	impc *c;

	(void)arg;
	snprintf(name, sizeof(name), "bench%d", idx);
	if (!(c = imp_client_named(name, &peer, &reply)))
		_exit(1);
	wait_go(go);
	for (int i = 0; i < rounds; i++) {
		impc_message m;
		impc_send_args req = { peer, buf, sizeof(buf), 0, reply, 0 };

		if (impc_send_receive(c, &req, 0, reply, -1, 0, &m) < 0)
			_exit(1);
		free(m.data);
	}
	impc_close(c);
}

/* ---- requests in flight: WINDOW per client ---- */

/*
 * The ping-pong is bound by wakeups (four per round trip for any broker);
 * with requests in flight the queues never run dry and the figure is what
 * the broker and the client libraries cost.  Both sides use their
 * library's way of having many requests out: sd-bus's asynchronous calls
 * (one message per write, replies read as they come), importanced's
 * exchanges (many messages per round trip).
 */
#define WINDOW 16

/* A server answering everything it finds queued, WINDOW at a time, with
 * one exchange per batch: this batch's replies and releases go with the
 * receive of the next. */
static void imp_server_batched(const char *name)
{
	impc_message msgs[WINDOW];
	impc_send_args replies[WINDOW];
	uint64_t release[WINDOW], port;
	impc_batch bt = { 0 };
	impc *c;

	c = imp_server_connect(name, true, &port);
	bt.release = release;
	bt.send = replies;
	bt.recv_port = port;
	bt.timeout_ms = -1;
	bt.recv_flags = IMPC_RECV_VOUCHER;
	bt.msgs = msgs;
	bt.max_msgs = WINDOW;
	for (;;) {
		if (impc_exchange(c, &bt) < 0 || bt.n_msgs == 0)
			_exit(0);
		bt.n_release = 0;
		for (size_t i = 0; i < bt.n_msgs; i++) {
			replies[i] = (impc_send_args){ msgs[i].reply_port, "done", 4, 0, 0, 0 };
			if (msgs[i].voucher)
				release[bt.n_release++] = msgs[i].voucher;
			free(msgs[i].data);
		}
		bt.n_send = bt.n_msgs;
	}
}

/* A client keeping WINDOW requests in flight: each exchange sends as many
 * new requests as replies came back, and takes the replies there are. */
static void imp_window_client(int idx, int rounds, const char *arg, int go)
{
	char name[32], buf[64] = { 0 };
	impc_send_args reqs[WINDOW];
	impc_message msgs[WINDOW];
	impc_batch bt = { 0 };
	uint64_t peer, reply;
	int sent = 0, done = 0, in_flight = 0;
	impc *c;

	(void)arg;
	snprintf(name, sizeof(name), "bench%d", idx);
	if (!(c = imp_client_named(name, &peer, &reply)))
		_exit(1);
	for (int i = 0; i < WINDOW; i++)
		reqs[i] = (impc_send_args){ peer, buf, sizeof(buf), 0, reply, 0 };
	bt.send = reqs;
	bt.recv_port = reply;
	bt.timeout_ms = -1;
	bt.msgs = msgs;
	bt.max_msgs = WINDOW;
	wait_go(go);
	while (done < rounds) {
		bt.n_send = (size_t)(WINDOW - in_flight < rounds - sent ? WINDOW - in_flight : rounds - sent);
		if (impc_exchange(c, &bt) < 0 || bt.n_msgs == 0)
			_exit(1);
		sent += (int)bt.n_send;
		in_flight += (int)bt.n_send - (int)bt.n_msgs;
		done += (int)bt.n_msgs;
		for (size_t i = 0; i < bt.n_msgs; i++)
			free(msgs[i].data);
	}
	impc_close(c);
}

/* Round trips per second through a fresh importanced: n client/server
 * pairs at once, one request at a time or WINDOW in flight. */
static double imp_throughput(const char *bin, int rounds, int n, bool window)
{
	pid_t d, s[PAIRS];
	double r;

	if ((d = start_importanced(bin, "none")) < 0)
		return 0;
	for (int i = 0; i < n; i++) {
		s[i] = child();
		if (s[i] == 0) {
			char name[32];

			snprintf(name, sizeof(name), "bench%d", i);
			if (window)
				imp_server_batched(name);
			imp_server_named(name, 0, true, 0);
		}
	}
	r = run_clients(n, window ? imp_window_client : imp_pair_client, rounds, NULL);
	for (int i = 0; i < n; i++) {
		kill(s[i], SIGKILL);
		waitpid(s[i], NULL, 0);
	}
	stop(d);
	return r;
}

/* BENCH_SWITCHES: the daemon's context switches so far per round trip, on
 * stderr (voluntary: it waited; involuntary: it was preempted). */
static void print_switches(const char *name, pid_t daemon, int rounds)
{
	char path[64], line[128];
	FILE *f;
	long v = 0, nv = 0;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)daemon);
	if (!(f = fopen(path, "r")))
		return;
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "voluntary_ctxt_switches: %ld", &v);
		sscanf(line, "nonvoluntary_ctxt_switches: %ld", &nv);
	}
	fclose(f);
	fprintf(stderr, "%s: the daemon's context switches per round trip: %.2f voluntary, %.2f involuntary\n", name,
		(double)v / rounds, (double)nv / rounds);
}

static struct result bench_importanced(const char *bin, int rounds, bool donate)
{
	struct result r = { donate ? "importanced" : "importanced, importance off", 0, 0, 0, false };
	uint64_t *lat = calloc((size_t)rounds, sizeof(*lat)), start, peer, reply;
	char buf[64] = { 0 };
	pid_t d, s;
	impc *c;

	if ((d = start_importanced(bin, "none")) < 0)
		return r;
	s = child();
	if (s == 0) {
		server_donate = donate;
		imp_server(0, true, 0);
	}
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
	r = summarize(r.name, lat, rounds, now_ns() - start);
	if (getenv("BENCH_SWITCHES"))
		print_switches(r.name, d, rounds);
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

/* A D-Bus server process owning `name` and answering Ping. */
static pid_t dbus_server(const char *address, const char *name)
{
	pid_t s = child();

	if (s == 0) {
		sd_bus *sb = buslaunch_connect(address);

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
	return s;
}

/* A connection to the bus once `name` has an owner, or NULL. */
static sd_bus *dbus_client(const char *address, const char *name)
{
	sd_bus *bus = NULL;

	for (int i = 0; i < 300 && !bus; i++) {
		bus = buslaunch_connect(address);
		if (!bus || sd_bus_get_name_creds(bus, name, 0, NULL) < 0) {
			bus = sd_bus_unref(bus);
			usleep(10000);
		}
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

	s = dbus_server(address, "org.importance.Bench");
	bus = dbus_client(address, "org.importance.Bench");
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

struct dbus_window {
	const char *name; /* the server's */
	int sent, done, rounds;
	bool failed;
};

static int dbus_send_ping(sd_bus *bus, struct dbus_window *w);

static int on_pong(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	struct dbus_window *w = userdata;

	(void)err;
	if (sd_bus_message_is_method_error(m, NULL))
		w->failed = true;
	w->done++;
	if (w->sent < w->rounds && dbus_send_ping(sd_bus_message_get_bus(m), w) < 0)
		w->failed = true;
	return 0;
}

static int dbus_send_ping(sd_bus *bus, struct dbus_window *w)
{
	uint8_t payload[64] = { 0 };
	sd_bus_message *call = NULL;
	int r;

	r = sd_bus_message_new_method_call(bus, &call, w->name, "/bench", "org.importance.Bench", "Ping");
	if (r >= 0)
		r = sd_bus_message_append_array(call, 'y', payload, sizeof(payload));
	if (r >= 0)
		r = sd_bus_call_async(bus, NULL, call, on_pong, w, 0);
	sd_bus_message_unref(call);
	if (r >= 0)
		w->sent++;
	return r;
}

/* WINDOW calls in flight with sd-bus's asynchronous calls. */
static void dbus_window_client(int idx, int rounds, const char *address, int go)
{
	char name[64];
	struct dbus_window w = { name, 0, 0, rounds, false };
	sd_bus *bus;

	snprintf(name, sizeof(name), "org.importance.Bench%d", idx);
	if (!(bus = dbus_client(address, name)))
		_exit(1);
	wait_go(go);
	for (int i = 0; i < WINDOW && i < rounds; i++)
		if (dbus_send_ping(bus, &w) < 0)
			_exit(1);
	while (w.done < rounds && !w.failed) {
		int r = sd_bus_process(bus, NULL);

		if (r < 0 || (r == 0 && sd_bus_wait(bus, UINT64_MAX) < 0))
			_exit(1);
	}
	sd_bus_flush_close_unref(bus);
	if (w.failed)
		_exit(1);
}

/* One call at a time. */
static void dbus_pair_client(int idx, int rounds, const char *address, int go)
{
	char name[64];
	uint8_t payload[64] = { 0 };
	sd_bus *bus;

	snprintf(name, sizeof(name), "org.importance.Bench%d", idx);
	if (!(bus = dbus_client(address, name)))
		_exit(1);
	wait_go(go);
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

/* Round trips per second through a running D-Bus daemon: n client/server
 * pairs at once, one call at a time or WINDOW in flight. */
static double dbus_throughput(const char *address, int rounds, int n, bool window)
{
	pid_t s[PAIRS];
	double r;

	for (int i = 0; i < n; i++) {
		char name[64];

		snprintf(name, sizeof(name), "org.importance.Bench%d", i);
		s[i] = dbus_server(address, name);
	}
	r = run_clients(n, window ? dbus_window_client : dbus_pair_client, rounds, address);
	for (int i = 0; i < n; i++) {
		kill(s[i], SIGKILL);
		waitpid(s[i], NULL, 0);
	}
	return r;
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

/* Each contender runs REPS times, alternating with the others. */
#define REPS 5

/* One D-Bus daemon to compare with, started afresh for each measurement. */
struct peer {
	const char *name;
	bool ok;
	char why[200];
	struct result pingpong[REPS];
	double tp[3][REPS]; /* throughput: PAIRS pairs; one pair, WINDOW; PAIRS pairs, WINDOW */
};

static pid_t start_peer(int k, const char *cfg, const char *path, const char *addr, struct peer *pe)
{
	pid_t p;

	if (k == 0) {
		p = buslaunch_dbus_daemon(cfg, path);
		if (p < 0)
			snprintf(pe->why, sizeof(pe->why), "dbus-daemon did not start (is it installed?)");
		return p;
	}
	return buslaunch_dbus_broker(cfg, path, addr, pe->why, sizeof(pe->why));
}

static double med_of(const double *in)
{
	double v[REPS];

	memcpy(v, in, sizeof(v));
	return median(v, REPS);
}

int main(int argc, char **argv)
{
	enum { NPEERS = 2 };
	int pin = -1, rounds;
	bool quick = false;
	const char *versus = getenv("BENCH_VERSUS");
	struct result fl[REPS], rl[REPS], cr[REPS], pr[REPS], vs[REPS] = { 0 }, imp[REPS], off[REPS], boost = { 0 };
	struct peer peers[NPEERS] = { { .name = "dbus-daemon", .ok = true }, { .name = "dbus-broker", .ok = true } };
	double v[REPS], imp_tp[3][REPS];
	char cfg[100], path[100], addr[160];
	pid_t p;

	/* everything on one CPU, children included: what the software costs,
	 * without this VM's cross-CPU wakeup latency */
	if ((pin = buslaunch_pin_args(&argc, &argv)) == -2)
		return 2;
	if (argc > 1 && !strcmp(argv[1], "--quick")) {
		quick = true;
		argv[1] = argv[0];
		argc--;
		argv++;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: bench-broker [--pin CPU] [--quick] IMPORTANCED [ROUNDS]\n");
		return 2;
	}
	rounds = argc > 2 ? atoi(argv[2]) : 10000;
	signal(SIGPIPE, SIG_IGN);
	snprintf(path, sizeof(path), "/tmp/bench-dbus.%d.sock", (int)getpid());
	snprintf(addr, sizeof(addr), "unix:path=%s", path);
	snprintf(cfg, sizeof(cfg), "/tmp/bench-dbus.%d.conf", (int)getpid());
	buslaunch_config(cfg, addr);
	/* alternate the contenders, REPS times, and keep medians: this
	 * machine's wakeup latency drifts from one second to the next */
	for (int r = 0; r < REPS; r++) {
		fl[r] = bench_socketpair(rounds);
		rl[r] = bench_relay(rounds, RELAY_NONE);
		cr[r] = bench_relay(rounds, RELAY_CREDS);
		pr[r] = bench_relay(rounds, RELAY_PIDFD);
		imp[r] = bench_importanced(argv[1], rounds, true);
		off[r] = bench_importanced(argv[1], rounds, false);
		if (versus) {
			vs[r] = bench_importanced(versus, rounds, true);
			vs[r].name = "importanced, BENCH_VERSUS";
		}
		if (quick) {
			for (int k = 0; k < NPEERS; k++) {
				peers[k].ok = false;
				snprintf(peers[k].why, sizeof(peers[k].why), "--quick");
			}
			continue;
		}
		imp_tp[0][r] = imp_throughput(argv[1], rounds / 2, PAIRS, false);
		imp_tp[1][r] = imp_throughput(argv[1], rounds * 2, 1, true);
		imp_tp[2][r] = imp_throughput(argv[1], rounds, PAIRS, true);
		for (int k = 0; k < NPEERS; k++) {
			struct peer *pe = &peers[k];

			if (!pe->ok)
				continue;
			if ((p = start_peer(k, cfg, path, addr, pe)) < 0) {
				pe->ok = false;
				continue;
			}
			pe->tp[0][r] = dbus_throughput(addr, rounds / 2, PAIRS, false);
			pe->tp[1][r] = dbus_throughput(addr, rounds * 2, 1, true);
			pe->tp[2][r] = dbus_throughput(addr, rounds, PAIRS, true);
			pe->pingpong[r] = bench_dbus(pe->name, addr, p, rounds); /* stops the daemon */
			unlink(path);
			if (!pe->pingpong[r].ok || pe->tp[0][r] <= 0 || pe->tp[1][r] <= 0 || pe->tp[2][r] <= 0) {
				snprintf(pe->why, sizeof(pe->why), "a run failed");
				pe->ok = false;
			}
		}
	}
	unlink(cfg);
	if (pin < 0 && !quick)
		boost = bench_boost_latency(argv[1], rounds / 20 > 200 ? rounds / 20 : 200);

	if (pin >= 0)
		printf("All processes pinned to CPU %d (`--pin %d`).\n\n", pin, pin);
	printf("### Request/reply round trips\n\n%d round trips per run, one client and one server, "
	       "64-byte request, one request at a time; each contender run %d times, alternating; medians.\n\n",
	       rounds, REPS);
	printf("| path | p50 (us) | p99 (us) | round trips/s | p50 / socketpair | p50 / relay |\n"
	       "| --- | ---: | ---: | ---: | ---: | ---: |\n");
	{
		double floor50, relay50;
		struct result *sets[7 + NPEERS] = { fl, rl, cr, pr, off, imp, vs, peers[0].pingpong, peers[1].pingpong };
		const char *names[7 + NPEERS] = { fl[0].name, rl[0].name, cr[0].name, pr[0].name, off[0].name,
						  imp[0].name, vs[0].name, peers[0].name, peers[1].name };

		for (int r = 0; r < REPS; r++)
			v[r] = fl[r].p50_us;
		floor50 = median(v, REPS);
		for (int r = 0; r < REPS; r++)
			v[r] = rl[r].p50_us;
		relay50 = median(v, REPS);
		for (int k = 0; k < 7 + NPEERS; k++) {
			struct result m = { names[k], 0, 0, 0, true };

			if (k == 6 && !versus)
				continue;
			if (k >= 7 && !peers[k - 7].ok) {
				printf("| %s | not run: %s | | | | |\n", names[k], peers[k - 7].why);
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
			printf("| %s | %.1f | %.1f | %.0f | %.2f | %.2f |\n", m.name, m.p50_us, m.p99_us, m.per_s,
			       m.p50_us / floor50, m.p50_us / relay50);
		}
	}

	if (quick)
		return 0;
	printf("\n### Throughput\n\nRound trips per second (medians of %d): one pair one request at a time "
	       "(the ping-pong above), %d client/server pairs at once (%d round trips each), one pair "
	       "with %d requests in flight (%d round trips), and %d pairs with %d in flight each (%d round trips "
	       "each).\n\n",
	       REPS, PAIRS, rounds / 2, WINDOW, rounds * 2, PAIRS, WINDOW, rounds);
	printf("| broker | one pair | %d pairs | one pair, %d in flight | %d pairs, %d in flight |\n"
	       "| --- | ---: | ---: | ---: | ---: |\n",
	       PAIRS, WINDOW, PAIRS, WINDOW);
	for (int r = 0; r < REPS; r++)
		v[r] = imp[r].per_s;
	printf("| importanced | %.0f | %.0f | %.0f | %.0f |\n", median(v, REPS), med_of(imp_tp[0]),
	       med_of(imp_tp[1]), med_of(imp_tp[2]));
	for (int k = 0; k < NPEERS; k++) {
		struct peer *pe = &peers[k];

		if (!pe->ok) {
			printf("| %s | not run | | | |\n", pe->name);
			continue;
		}
		for (int r = 0; r < REPS; r++)
			v[r] = pe->pingpong[r].per_s;
		printf("| %s | %.0f | %.0f | %.0f | %.0f |\n", pe->name, median(v, REPS), med_of(pe->tp[0]),
		       med_of(pe->tp[1]), med_of(pe->tp[2]));
	}
	for (int k = 0; k < NPEERS; k++) {
		struct peer *pe = &peers[k];
		double x[4][REPS];

		if (!pe->ok)
			continue;
		printf("\nimportanced / %s throughput, per run (same run, side by side):\n\n"
		       "| run | one pair | %d pairs | one pair, %d in flight | %d pairs, %d in flight |\n"
		       "| ---: | ---: | ---: | ---: | ---: |\n",
		       pe->name, PAIRS, WINDOW, PAIRS, WINDOW);
		for (int r = 0; r < REPS; r++) {
			x[0][r] = imp[r].per_s / pe->pingpong[r].per_s;
			for (int c = 0; c < 3; c++)
				x[c + 1][r] = imp_tp[c][r] / pe->tp[c][r];
			printf("| %d | %.2fx | %.2fx | %.2fx | %.2fx |\n", r + 1, x[0][r], x[1][r], x[2][r], x[3][r]);
		}
		printf("| **median** | **%.2fx** | **%.2fx** | **%.2fx** | **%.2fx** |\n", median(x[0], REPS),
		       median(x[1], REPS), median(x[2], REPS), median(x[3], REPS));
	}
	if (pin >= 0)
		return 0;
	printf("\n### Boost latency\n\nFrom just before a donor's send to the moment the receiver's nice "
	       "value has changed (read with getpriority in a loop), %s.\n\n",
	       boost.ok ? "policy nice" : "not run");
	if (boost.ok)
		printf("| p50 (us) | p99 (us) |\n| ---: | ---: |\n| %.1f | %.1f |\n\n", boost.p50_us, boost.p99_us);
	return 0;
}
