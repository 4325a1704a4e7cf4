/*
 * importanced — routes messages between processes and gives their
 * receivers real boosts, driven by libimportance.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "broker.h"
#include "importance/protocol.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: importanced [options]\n"
		"  --socket PATH        listen here (default " IMPP_DEFAULT_SOCKET "; or socket activation)\n"
		"  --policy KIND        auto (default), cgroup, cgroup-v2, cgroup-v1, autogroup, nice or none\n"
		"  --boost-nice N       nice value of a boosted thread, -20..19 (default -10)\n"
		"  --autogroup-nice N   nice of a boosted receiver's autogroup, -20..19 (default -10)\n"
		"  --boost-weight N     cgroup v2 cpu.weight of a boosted receiver (default 1000)\n"
		"  --boost-shares N     cgroup v1 cpu.shares of a boosted receiver (default 10240)\n"
		"  --boost-io-level N   best-effort I/O level for held-back threads, -1 (off)..7 (default 4)\n"
		"  --boost-timerslack-ns N  timer slack for a held-back receiver, 0: off (default 50000)\n"
		"  --boost-max-threads N    threads handled per process per boost (default 256)\n"
		"  --daemon-rt-priority N   run importanced at SCHED_FIFO N, 0: off (default 1)\n"
		"  --daemon-rt-budget-us N  real-time CPU without sleeping before it steps down for 1 s (default 50000)\n"
		"  --cgroup-root DIR    the cgroup directory boosted leaves go in (default: the cpu hierarchy's root)\n"
		"  --state-dir DIR      where applied boosts are recorded (default /run/importanced)\n"
		"  --donor-uid UID      clients of this uid are donors (repeatable)\n"
		"  --donor-exe PATH     clients running this executable are donors (repeatable)\n"
		"  --donor-cgroup PFX   clients in a cgroup under this path are donors (repeatable)\n"
		"  --config FILE        the same as \"key value\" lines (donor-uid 1000, ...)\n"
		"  --max-ports N, --max-inflight N, --max-vouchers N   per-client quotas\n"
		"  --max-queued-bytes N unread replies before a client's requests wait (x4: disconnected)\n"
		"  --verbose            log connections and every policy change\n");
}

static int listen_on(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, probe;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EADDRINUSE)
			goto fail;
		/* a stale socket from a daemon that died, or a live daemon? */
		probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			close(fd);
			return -EADDRINUSE;
		}
		if (probe >= 0)
			close(probe);
		unlink(path);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			goto fail;
	}
	chmod(path, 0666); /* any process may connect; rights are per request */
	if (listen(fd, 128) < 0)
		goto fail;
	return fd;
fail:
	{
		int e = -errno;

		close(fd);
		return e;
	}
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	(void)si;
	(void)userdata;
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		/* the backend's keys: backend_config_set() */
		{ "policy", required_argument, NULL, 'B' },
		{ "boost-nice", required_argument, NULL, 'B' },
		{ "autogroup-nice", required_argument, NULL, 'B' },
		{ "boost-weight", required_argument, NULL, 'B' },
		{ "boost-shares", required_argument, NULL, 'B' },
		{ "boost-io-level", required_argument, NULL, 'B' },
		{ "boost-timerslack-ns", required_argument, NULL, 'B' },
		{ "boost-max-threads", required_argument, NULL, 'B' },
		{ "daemon-rt-priority", required_argument, NULL, 'B' },
		{ "daemon-rt-budget-us", required_argument, NULL, 'B' },
		{ "cgroup-root", required_argument, NULL, 'B' },
		{ "state-dir", required_argument, NULL, 'B' },
		{ "donor-uid", required_argument, NULL, 'u' },
		{ "donor-exe", required_argument, NULL, 'e' },
		{ "donor-cgroup", required_argument, NULL, 'c' },
		{ "config", required_argument, NULL, 'f' },
		{ "max-ports", required_argument, NULL, 'P' },
		{ "max-inflight", required_argument, NULL, 'I' },
		{ "max-vouchers", required_argument, NULL, 'V' },
		{ "max-queued-bytes", required_argument, NULL, 'Q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct broker_config cfg;
	const char *socket_path = IMPP_DEFAULT_SOCKET;
	struct broker *b = NULL;
	sd_event *ev = NULL;
	char why[512], backends[1024];
	sigset_t ss;
	int o, fd, r, n, idx = 0;
	unsigned line;

	broker_config_defaults(&cfg);
	while ((o = getopt_long(argc, argv, "", opts, &idx)) != -1) {
		switch (o) {
		case 's':
			socket_path = optarg;
			break;
		case 'B':
			if (backend_config_set(&cfg.backend, opts[idx].name, optarg) < 0) {
				fprintf(stderr, "importanced: --%s: bad value '%s'\n", opts[idx].name, optarg);
				return 2;
			}
			break;
		case 'u':
			if (cfg.n_donor_uids < IMPD_MAX_MATCH)
				cfg.donor_uids[cfg.n_donor_uids++] = (uid_t)strtoul(optarg, NULL, 10);
			break;
		case 'e':
			if (cfg.n_donor_exes < IMPD_MAX_MATCH)
				snprintf(cfg.donor_exes[cfg.n_donor_exes++], 256, "%s", optarg);
			break;
		case 'c':
			if (cfg.n_donor_cgroups < IMPD_MAX_MATCH)
				snprintf(cfg.donor_cgroups[cfg.n_donor_cgroups++], 256, "%s", optarg);
			break;
		case 'f':
			if ((r = broker_config_load(&cfg, optarg, &line)) < 0) {
				fprintf(stderr, "importanced: %s:%u: %s\n", optarg, line, strerror(-r));
				return 2;
			}
			break;
		case 'P':
			cfg.max_ports = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'I':
			cfg.max_inflight = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'V':
			cfg.max_vouchers = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'Q':
			cfg.max_out_bytes = strtoul(optarg, NULL, 10);
			break;
		case 'v':
			cfg.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (backend_init(&cfg.backend, why, sizeof(why)) < 0) {
		fprintf(stderr, "importanced: %s\n", why);
		return 2;
	}
	backend_describe(&cfg.backend, backends, sizeof(backends));
	fprintf(stderr, "importanced: %s", backends);

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigprocmask(SIG_BLOCK, &ss, NULL);

	n = sd_listen_fds(1);
	if (n > 1) {
		fprintf(stderr, "importanced: expected one socket from the service manager, got %d\n", n);
		return 1;
	} else if (n == 1) {
		fd = SD_LISTEN_FDS_START;
		if (sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0) <= 0) {
			fprintf(stderr, "importanced: the activated socket is not a listening SOCK_SEQPACKET Unix socket\n");
			return 1;
		}
	} else if ((fd = listen_on(socket_path)) < 0) {
		fprintf(stderr, "importanced: %s: %s\n", socket_path, strerror(-fd));
		return 1;
	}

	if ((r = sd_event_default(&ev)) < 0 || (r = broker_new(ev, &cfg, fd, &b)) < 0 ||
	    (r = sd_event_add_signal(ev, NULL, SIGTERM, on_signal, NULL)) < 0 ||
	    (r = sd_event_add_signal(ev, NULL, SIGINT, on_signal, NULL)) < 0) {
		fprintf(stderr, "importanced: start: %s\n", strerror(-r));
		return 1;
	}
	fprintf(stderr, "importanced: listening on %s, policy %s\n", n == 1 ? "(activated socket)" : socket_path,
		backend_name(cfg.backend.kind));
	sd_notify(0, "READY=1");
	r = sd_event_loop(ev);
	sd_notify(0, "STOPPING=1");
	broker_free(b);
	sd_event_unref(ev);
	if (n != 1)
		unlink(socket_path);
	return r < 0 ? 1 : 0;
}
