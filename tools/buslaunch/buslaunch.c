/* Private buses (buslaunch.h). */
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buslaunch.h"

static pid_t child_dies_with_parent(void)
{
	pid_t p = fork();

	if (p == 0)
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	return p;
}

const char *buslaunch_config(const char *path, const char *address)
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

pid_t buslaunch_dbus_daemon(const char *config, const char *sock_path)
{
	pid_t p = child_dies_with_parent();

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

/*
 * dbus-broker only runs under its launcher, and the launcher assumes a
 * systemd machine: it logs to the journal's socket and connects to the bus
 * it serves for activation.  Where there is no journal, the launcher gets a
 * private mount namespace with a stand-in journal socket (read and thrown
 * away); its "own bus" is the listener we hand it, and its policy the
 * configuration we give it (its <listen> is not used).  DBUS_BROKER_ROOT, when
 * set, is an unpacked dbus-broker package (make bench unpacks one rather
 * than installing it, as installing it replaces the machine's system bus
 * at the next boot); it is laid over /usr/bin in the namespace, where the
 * launcher looks for the broker.
 */
#define JOURNAL_DIR "/run/systemd/journal"

static int broker_namespace(const char *root)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char opts[600];
	int jfd;

	if (!root && access(JOURNAL_DIR "/socket", F_OK) == 0)
		return 0; /* a systemd machine: nothing to stand in for */
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -1;
	if (root) {
		snprintf(opts, sizeof(opts), "lowerdir=%.256s/usr/bin:/usr/bin", root);
		if (mount("overlay", "/usr/bin", "overlay", MS_RDONLY, opts) < 0)
			return -1;
	}
	if (access(JOURNAL_DIR "/socket", F_OK) == 0)
		return 0;
	mkdir("/run/systemd", 0755);
	if (mount("tmpfs", "/run/systemd", "tmpfs", 0, "mode=0755") < 0 || mkdir(JOURNAL_DIR, 0755) < 0)
		return -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", JOURNAL_DIR "/socket");
	jfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (jfd < 0 || bind(jfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(sa.sun_path, 0666) < 0)
		return -1; /* (a launcher run as a user logs there too) */
	pid_t launcher = getpid();

	if (child_dies_with_parent() == 0) {
		struct timeval tv = { 0, 200 * 1000 };
		char buf[4096];

		/* and ends with the launcher, whatever becomes of the death
		 * signal once the launcher runs as another user */
		setsockopt(jfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		while (getppid() == launcher &&
		       (recv(jfd, buf, sizeof(buf), 0) >= 0 || errno == EINTR || errno == EAGAIN))
			;
		_exit(0);
	}
	close(jfd);
	return 0;
}

pid_t buslaunch_dbus_broker(const char *config, const char *sock_path, const char *address, char *why, size_t why_len)
{
	return buslaunch_dbus_broker_as(config, sock_path, address, (uid_t)-1, (gid_t)-1, why, why_len);
}

pid_t buslaunch_dbus_broker_as(const char *config, const char *sock_path, const char *address, uid_t uid, gid_t gid,
			       char *why, size_t why_len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *root = getenv("DBUS_BROKER_ROOT");
	char launcher[300];
	int lfd, status;
	pid_t p;

	snprintf(launcher, sizeof(launcher), "%s/usr/bin/dbus-broker-launch", root ? root : "");
	if (access(launcher, X_OK) != 0) {
		snprintf(why, why_len, "dbus-broker is not installed (%.150s)", launcher);
		return -1;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.107s", sock_path);
	unlink(sock_path);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 64) < 0) {
		snprintf(why, why_len, "listening socket: %s", strerror(errno));
		return -1;
	}
	chmod(sock_path, 0666); /* any user may connect, as to dbus-daemon's */
	p = child_dies_with_parent();
	if (p == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		char pid[16];

		if (broker_namespace(root) < 0)
			_exit(3); /* needs root (a mount namespace) */
		if (uid != (uid_t)-1 && (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0))
			_exit(4);
		dup2(devnull, 1);
		dup2(devnull, 2);
		dup2(lfd, 3);
		setenv("LISTEN_FDS", "1", 1);
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		setenv("LISTEN_PID", pid, 1);
		setenv("DBUS_SESSION_BUS_ADDRESS", address, 1);
		execl(launcher, "dbus-broker-launch", "--scope", "user", "--config-file", config, (char *)NULL);
		_exit(127);
	}
	close(lfd);
	usleep(100 * 1000);
	if (waitpid(p, &status, WNOHANG) == p) {
		snprintf(why, why_len, "dbus-broker-launch exited (status %d%s)",
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1,
			 WIFEXITED(status) && WEXITSTATUS(status) == 3 ? ": a private mount namespace needs root" : "");
		return -1;
	}
	return p;
}


sd_bus *buslaunch_connect(const char *address)
{
	sd_bus *bus = NULL;

	if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, address) < 0 || sd_bus_set_bus_client(bus, 1) < 0 ||
	    sd_bus_start(bus) < 0)
		return sd_bus_unref(bus);
	return bus;
}

int buslaunch_pin_args(int *argc, char ***argv)
{
	cpu_set_t set;
	int cpu;

	if (*argc < 3 || strcmp((*argv)[1], "--pin"))
		return -1;
	cpu = atoi((*argv)[2]);
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0) {
		perror("sched_setaffinity");
		return -2;
	}
	*argc -= 2;
	*argv += 2;
	return cpu;
}
