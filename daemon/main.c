/*
 * importanced — routes messages between processes and gives their
 * receivers real boosts, driven by libimportance.
 *
 * Signals: SIGTERM and SIGINT stop it (every boost it applied is undone
 * as its peers go); SIGHUP reads the configuration again (config.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "broker.h"
#include "config.h"
#include "rt.h"

static int listen_on(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, probe, on = 1;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* connections inherit it: credentials on every frame from the first */
	setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EADDRINUSE)
			goto fail;
		/* Something is there.  Only a socket is ours to replace, and
		 * only when no daemon answers on it. */
		if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode)) {
			close(fd);
			return -EEXIST;
		}
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

struct daemon {
	int argc;
	char **argv;
	struct broker *broker;
};

static int on_stop(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	(void)si;
	(void)userdata;
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int on_reload(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct daemon *d = userdata;
	struct broker_config cfg;
	char err[512];

	(void)s;
	(void)si;
	sd_notify(0, "RELOADING=1");
	if (config_from_args(&cfg, d->argc, d->argv, err, sizeof(err)) != 0)
		fprintf(stderr, "importanced: reload refused, the configuration in force stays: %s\n", err);
	else {
		broker_reload(d->broker, &cfg);
		fprintf(stderr, "importanced: configuration reloaded\n");
	}
	sd_notify(0, "READY=1");
	return 0;
}

/* Room for the connections the configuration allows, the files their
 * messages in flight may carry, the pidfds of bus connections, and some. */
static void raise_fd_limit(unsigned connections, unsigned files_in_flight, unsigned bus_connections)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)connections * 2 + files_in_flight + bus_connections + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want;
	if (rl.rlim_max < want)
		rl.rlim_max = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	struct daemon d = { argc, argv, NULL };
	struct broker_config cfg;
	sd_event *ev = NULL;
	char err[512], why[512], backends[1024];
	sigset_t ss;
	int fd, r, n;

	r = config_from_args(&cfg, argc, argv, err, sizeof(err));
	if (r == 1)
		return 0;
	if (r < 0) {
		fprintf(stderr, "importanced: %s\n", err);
		return 2;
	}
	if (backend_init(&cfg.backend, why, sizeof(why)) < 0) {
		fprintf(stderr, "importanced: %s\n", why);
		return 2;
	}
	if (rt_start(cfg.backend.daemon_rt_priority, cfg.backend.daemon_rt_budget_us, cfg.backend.daemon_rt_window_us,
		     why, sizeof(why)) < 0)
		fprintf(stderr, "importanced: %s\n", why);
	backend_describe(&cfg.backend, backends, sizeof(backends));
	fprintf(stderr, "importanced: %s", backends);
	raise_fd_limit(cfg.limits.connections, cfg.limits.all_inflight_fds, cfg.limits.all_bus_connections);

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGHUP);
	sigprocmask(SIG_BLOCK, &ss, NULL);

	n = sd_listen_fds(1);
	if (n > 1) {
		fprintf(stderr, "importanced: expected one socket from the service manager, got %d\n", n);
		return 1;
	} else if (n == 1) {
		int on = 1;

		fd = SD_LISTEN_FDS_START;
		if (sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0) <= 0) {
			fprintf(stderr, "importanced: the activated socket is not a listening SOCK_SEQPACKET Unix socket\n");
			return 1;
		}
		setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on));
	} else if ((fd = listen_on(cfg.socket_path)) < 0) {
		fprintf(stderr, "importanced: %s: %s%s\n", cfg.socket_path, strerror(-fd),
			fd == -EEXIST ? " (and it is not a socket: not replaced)" :
			fd == -EADDRINUSE ? " (another importanced answers there)" : "");
		return 1;
	}

	/* a loop of our own, not the thread's default: sd-event checks the
	 * default loop's thread with a gettid() at every iteration */
	if ((r = sd_event_new(&ev)) < 0 || (r = broker_new(ev, &cfg, fd, &d.broker)) < 0 ||
	    (r = sd_event_add_signal(ev, NULL, SIGTERM, on_stop, NULL)) < 0 ||
	    (r = sd_event_add_signal(ev, NULL, SIGINT, on_stop, NULL)) < 0 ||
	    (r = sd_event_add_signal(ev, NULL, SIGHUP, on_reload, &d)) < 0) {
		fprintf(stderr, "importanced: start: %s\n", strerror(-r));
		return 1;
	}
	fprintf(stderr, "importanced: listening on %s, backend %s\n", n == 1 ? "(activated socket)" : cfg.socket_path,
		backend_name(cfg.backend.kind));
	sd_notify(0, "READY=1");
	r = sd_event_loop(ev);
	sd_notify(0, "STOPPING=1");
	broker_free(d.broker);
	sd_event_unref(ev);
	if (n != 1)
		unlink(cfg.socket_path);
	return r < 0 ? 1 : 0;
}
