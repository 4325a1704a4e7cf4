/*
 * imp-x11-foreground — the X11 source's driver until the session agent
 * takes it in: watches the active window of an X display and tells
 * importanced, with FOREGROUND, which process of this user is in front.
 *
 *   imp-x11-foreground [--socket PATH] [--display DISPLAY] [--cgroup]
 *
 * A window whose pid is not this user's (or names no live process) means
 * "nothing of mine is in front": the daemon refuses the pid, and the
 * driver says none instead.  It ends, status 1, when the X connection or
 * the daemon goes away.  A line "active PID" on stdout per change, for
 * tests and for watching.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-event.h>

#include "importance/client.h"
#include "importance/protocol.h"
#include "x11.h"

struct driver {
	sd_event *ev;
	impc *c;
	unsigned flags;
	int status;
};

static void on_active(pid_t pid, void *ud)
{
	struct driver *d = ud;
	int e;

	if (pid < 0) {
		fprintf(stderr, "imp-x11-foreground: lost the X connection\n");
		d->status = 1;
		sd_event_exit(d->ev, 1);
		return;
	}
	e = pid ? impc_foreground(d->c, pid, d->flags) : impc_foreground(d->c, 0, 0);
	if (e == -EPERM || e == -ESRCH)
		e = impc_foreground(d->c, 0, 0); /* not one of ours */
	if (e < 0) {
		fprintf(stderr, "imp-x11-foreground: foreground %d: %s\n", (int)pid, strerror(-e));
		if (e == -EPIPE || e == -ECONNRESET || e == -ENOTCONN) {
			d->status = 1;
			sd_event_exit(d->ev, 1);
			return;
		}
	}
	printf("active %d\n", (int)pid);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	const char *sock = getenv("IMPORTANCED_SOCKET"), *display = NULL;
	struct driver d = { 0 };
	struct x11_source *x = NULL;
	int e;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--socket") && i + 1 < argc) {
			sock = argv[++i];
		} else if (!strcmp(argv[i], "--display") && i + 1 < argc) {
			display = argv[++i];
		} else if (!strcmp(argv[i], "--cgroup")) {
			d.flags = IMPC_FOREGROUND_CGROUP;
		} else {
			fprintf(stderr, "usage: imp-x11-foreground [--socket PATH] [--display DISPLAY] [--cgroup]\n"
					"imp-x11-foreground: '%s' is not an option here\n", argv[i]);
			return 2;
		}
	}
	if ((e = impc_connect(sock ? sock : IMPP_DEFAULT_SOCKET, IMPC_MONITOR, &d.c, NULL)) < 0) {
		fprintf(stderr, "imp-x11-foreground: cannot connect to importanced: %s\n", strerror(-e));
		return 1;
	}
	if ((e = sd_event_default(&d.ev)) < 0 || (e = x11_source_new(d.ev, display, on_active, &d, &x)) < 0) {
		fprintf(stderr, "imp-x11-foreground: X display %s: %s\n", display ? display : getenv("DISPLAY") ? getenv("DISPLAY") : "(none)",
			strerror(-e));
		impc_close(d.c);
		return 1;
	}
	sd_event_loop(d.ev);
	x11_source_free(x);
	sd_event_unref(d.ev);
	impc_close(d.c);
	return d.status;
}
