/*
 * importanced-agent: watches a user's session bus for importanced.
 *
 * A session bus lets only its own user connect, so importanced (root)
 * cannot watch it.  This program runs as that user (a systemd user unit,
 * or an XDG autostart entry where there is no systemd user instance),
 * becomes a monitor of the bus, and relays to importanced, over its
 * socket, the messages the bus routes (method calls that expect a reply,
 * their returns and errors, the driver's NameOwnerChanged) and the
 * answers to importanced's questions (who a connection is, who owns a
 * name), which it asks of the bus driver.  importanced feeds them to the
 * same bus model as a bus it watches itself, and believes them only about
 * this user's processes (daemon/agent.h).
 *
 * With an X display ($DISPLAY or --display) it is also the desktop's
 * foreground source: it watches the active window (agent/x11.h) and tells
 * importanced which process of this user is in front (FOREGROUND, request
 * 22).  A window's _NET_WM_PID is whatever its client wrote: the daemon
 * believes the agent only about its own uid's processes, and a pid it
 * refuses (another user's, or no live process) is told as "nothing of
 * mine is in front".  Run as root (whom the daemon would believe about
 * anyone) the agent names only root's processes itself.  The foreground
 * is told again whenever importanced comes back; when X goes away the
 * agent says "forget" (the static donor rules decide again) and connects
 * to X again every RETRY_USEC; it says "forget" too when it ends.
 *
 * Both sides may go and come back: the bus is connected again every
 * RETRY_USEC, the daemon's connection by the client library
 * (IMPC_RECONNECT); each time both are up the bus is attached again, and
 * importanced starts from what it sees from then on.  The bus and the
 * display are independent: either works without the other.
 *
 * Nothing here blocks on the bus after the monitor is set up, nor on the
 * X server at all (x11.h): the driver's and the server's answers come back
 * through the loop.  Calls to importanced are blocking round trips bounded
 * by CALL_TIMEOUT_MS.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "dbus-event.h"
#include "importance/client.h"
#include "x11.h"

#define RETRY_USEC (2 * 1000 * 1000)
#define LOOKUP_USEC (500 * 1000)
#define CALL_TIMEOUT_MS 2000
#define BATCH_MAX 256
/* driver calls remembered until their reply (the oldest forgotten first) */
#define DRIVER_CALLS 256
#define DRIVER_CALLER_MAX 47 /* longer unique names are relayed */

/* A call to the bus driver not relayed, whose reply is not relayed either. */
struct driver_call {
	uint64_t serial; /* 0: a free slot */
	char caller[DRIVER_CALLER_MAX + 1];
};

struct agent {
	sd_event *ev;
	const char *where; /* --bus: "session" (default), "system" or an address */
	const char *socket;
	bool verbose;
	/* the bus */
	sd_bus *monitor, *lookups;
	sd_event_source *monitor_io, *drain, *retry;
	sd_bus_message *batch[BATCH_MAX];
	size_t n_batch;
	bool bus_warned;
	struct driver_call driver_calls[DRIVER_CALLS];
	unsigned driver_next;       /* the slot the next one takes */
	uint64_t relayed, skipped, driver_skipped; /* messages, for --verbose */
	/* importanced */
	impc *c;
	sd_event_source *daemon_io;
	bool attached;
	uint32_t bus;
	uint64_t refused_at; /* CLOCK_MONOTONIC usec: the last refused attach */
	bool daemon_warned;
	/* the desktop's foreground */
	bool foreground;     /* false: --no-foreground */
	unsigned fg_flags;   /* IMPC_FOREGROUND_CGROUP with --foreground-cgroup */
	const char *display; /* --display, or NULL: $DISPLAY */
	char manager_display[64]; /* else: DISPLAY in the user manager's environment */
	bool asking_manager;
	struct x11_source *x11;
	sd_event_source *x11_retry;
	bool x11_up, x11_warned;
	pid_t front; /* the active window's pid, 0: none, -1: not known */
	bool told;   /* importanced has been told a foreground since the last forget */
};

/* A question being asked of the driver. */
struct lookup {
	struct agent *a;
	uint32_t bus; /* as attached when asked */
	char name[256];
};

static void bus_close(struct agent *a);
static void schedule_retry(struct agent *a, uint64_t usec);
static void foreground_tell(struct agent *a);

/* ------------------------------------------------------------------ */
/* importanced                                                          */
/* ------------------------------------------------------------------ */

static void detach(struct agent *a)
{
	if (a->attached && a->c && impc_connected(a->c))
		impc_agent_detach(a->c, a->bus);
	a->attached = false;
}

/* Attaches the bus once both sides are up. */
static void attach(struct agent *a)
{
	uint64_t now;
	int e;

	if (a->attached || !a->monitor || !a->c || !impc_connected(a->c))
		return;
	sd_event_now(a->ev, CLOCK_MONOTONIC, &now);
	if (a->refused_at && now - a->refused_at < RETRY_USEC) {
		schedule_retry(a, RETRY_USEC - (now - a->refused_at)); /* not again at once */
		return;
	}
	if ((e = impc_agent_attach(a->c, a->where, &a->bus)) < 0) {
		a->refused_at = now;
		fprintf(stderr, "importanced-agent: importanced refused to take bus %s: %s (trying again every %d s)\n",
			a->where, strerror(-e), RETRY_USEC / 1000000);
		schedule_retry(a, RETRY_USEC);
		return;
	}
	a->attached = true;
	a->refused_at = 0;
	fprintf(stderr, "importanced-agent: relaying bus %s to importanced\n", a->where);
}

/* Whether ev is our own look-ups' traffic (nothing importanced needs). */
static bool ours(struct agent *a, const struct dbus_event *ev)
{
	const char *me = NULL;

	if (!a->lookups || sd_bus_get_unique_name(a->lookups, &me) < 0 || !me)
		return false;
	return (ev->sender && !strcmp(ev->sender, me)) || (ev->destination && !strcmp(ev->destination, me));
}

/*
 * What can never matter, left out: a method call to the bus driver, and the
 * driver's reply to it.  importanced's model takes no call to the driver
 * (bus_call: the driver is no process to boost), so such a call is never a
 * record there, and a reply finds a call by its caller and serial, which a
 * caller never gives twice.  The driver's other replies (its errors in a
 * service's place, for calls that were relayed) are relayed: a reply is left
 * out only when it is the driver's to a call left out, matched exactly by the
 * caller's unique name and the serial.  A call forgotten (the table is full,
 * or its caller's name is long) only costs its reply being relayed.
 */
static bool driver_call_skipped(struct agent *a, const struct dbus_event *ev)
{
	struct driver_call *d;

	if (ev->type != SD_BUS_MESSAGE_METHOD_CALL || !ev->destination || strcmp(ev->destination, DBUS_DRIVER))
		return false;
	if (ev->expect_reply && ev->sender && ev->serial && strlen(ev->sender) <= DRIVER_CALLER_MAX) {
		d = &a->driver_calls[a->driver_next++ % DRIVER_CALLS];
		d->serial = ev->serial;
		strcpy(d->caller, ev->sender);
	}
	return true;
}

static bool driver_reply_skipped(struct agent *a, const struct dbus_event *ev)
{
	if ((ev->type != SD_BUS_MESSAGE_METHOD_RETURN && ev->type != SD_BUS_MESSAGE_METHOD_ERROR) || !ev->sender ||
	    strcmp(ev->sender, DBUS_DRIVER) || !ev->destination || !ev->reply_serial)
		return false;
	for (unsigned i = 0; i < DRIVER_CALLS; i++) {
		struct driver_call *d = &a->driver_calls[i];

		if (d->serial == ev->reply_serial && !strcmp(d->caller, ev->destination)) {
			d->serial = 0;
			return true;
		}
	}
	return false;
}

/* Messages read together go to importanced in one call. */
static void batch_flush(struct agent *a)
{
	impc_bus_message m[BATCH_MAX];
	size_t n = 0;
	int e;

	for (size_t i = 0; i < a->n_batch; i++) {
		struct dbus_event ev;

		if (dbus_event_from_message(a->batch[i], &ev) < 0 ||
		    (ev.type == SD_BUS_MESSAGE_SIGNAL && !dbus_event_is_owner_change(&ev)) ||
		    (ev.type == SD_BUS_MESSAGE_METHOD_CALL && !ev.expect_reply) || ours(a, &ev)) {
			a->skipped++;
			continue;
		}
		if (driver_call_skipped(a, &ev) || driver_reply_skipped(a, &ev)) {
			a->skipped++;
			a->driver_skipped++;
			continue;
		}
		m[n++] = (impc_bus_message){ ev.type,      ev.expect_reply, ev.sender, ev.destination, ev.interface,
					     ev.member,    ev.serial,       ev.reply_serial,
					     { ev.args[0], ev.args[1], ev.args[2] } };
	}
	if (n && a->attached && (e = impc_agent_events(a->c, a->bus, m, n)) < 0 && a->verbose)
		fprintf(stderr, "importanced-agent: relaying %zu messages: %s\n", n, strerror(-e));
	if (a->attached)
		a->relayed += n;
	for (size_t i = 0; i < a->n_batch; i++)
		sd_bus_message_unref(a->batch[i]);
	a->n_batch = 0;
}

static int on_creds(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	struct lookup *l = userdata;
	struct agent *a = l->a;
	struct bus_identity id;
	int r;

	(void)err;
	r = sd_bus_message_is_method_error(m, NULL) ? dbus_reply_errno(m) : dbus_read_creds(m, &id);
	if (a->attached && a->bus == l->bus) {
		if (r < 0)
			impc_agent_unknown(a->c, l->bus, l->name, r);
		else
			impc_agent_identity(a->c, l->bus, l->name, id.pid, id.uid, id.pidfd);
	}
	if (r >= 0 && id.pidfd >= 0)
		close(id.pidfd);
	return 1;
}

static int on_owner(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	struct lookup *l = userdata;
	const char *owner = NULL;

	(void)err;
	if (sd_bus_message_is_method_error(m, NULL) || sd_bus_message_read(m, "s", &owner) < 0)
		owner = NULL;
	if (l->a->attached && l->a->bus == l->bus)
		impc_agent_owner(l->a->c, l->bus, l->name, owner);
	return 1;
}

/* One of importanced's questions, asked of the bus driver. */
static void ask(struct agent *a, const impc_agent_question *q)
{
	bool who = q->what == IMPC_AGENT_WHO;
	struct lookup *l;
	sd_bus_slot *slot = NULL;
	int r = -ENOTCONN;

	if (!a->lookups || !(l = calloc(1, sizeof(*l))))
		goto fail;
	l->a = a;
	l->bus = q->bus;
	snprintf(l->name, sizeof(l->name), "%s", q->name);
	r = sd_bus_call_method_async(a->lookups, &slot, DBUS_DRIVER, DBUS_DRIVER_PATH, DBUS_DRIVER,
				     who ? "GetConnectionCredentials" : "GetNameOwner", who ? on_creds : on_owner, l,
				     "s", q->name);
	if (r < 0) {
		free(l);
		goto fail;
	}
	/* l goes with the slot, answered or not */
	sd_bus_slot_set_destroy_callback(slot, free);
	sd_bus_slot_set_floating(slot, 1);
	sd_bus_slot_unref(slot);
	return;
fail:
	if (!a->attached || a->bus != q->bus)
		return;
	if (who)
		impc_agent_unknown(a->c, q->bus, q->name, r);
	else
		impc_agent_owner(a->c, q->bus, q->name, NULL);
}

static int on_daemon(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct agent *a = userdata;
	impc_agent_question q;
	impc_event ev;

	(void)s;
	(void)fd;
	(void)revents;
	impc_process(a->c);
	while (impc_next_event(a->c, 0, &ev) == 0) {
		if (ev.kind == IMPC_EVENT_DISCONNECTED) {
			a->attached = false;
			fprintf(stderr, "importanced-agent: importanced went away; waiting for it\n");
		} else if (ev.kind == IMPC_EVENT_RECONNECTED) {
			a->attached = false;
			attach(a);
			foreground_tell(a); /* a new importanced knows nothing */
		}
	}
	while (impc_agent_next_question(a->c, &q) == 0)
		if (a->attached && q.bus == a->bus)
			ask(a, &q);
	return 0;
}

static int daemon_connect(struct agent *a)
{
	int e;

	if (a->c)
		return 0;
	if ((e = impc_connect(a->socket, IMPC_MONITOR | IMPC_RECONNECT, &a->c, NULL)) < 0) {
		if (!a->daemon_warned)
			fprintf(stderr, "importanced-agent: importanced at %s: %s (trying again every %d s)\n",
				a->socket ? a->socket : "its socket", strerror(-e), RETRY_USEC / 1000000);
		a->daemon_warned = true;
		a->c = NULL;
		return e;
	}
	impc_set_timeout(a->c, CALL_TIMEOUT_MS);
	if ((e = sd_event_add_io(a->ev, &a->daemon_io, impc_fd(a->c), EPOLLIN, on_daemon, a)) < 0) {
		impc_close(a->c);
		a->c = NULL;
		return e;
	}
	a->daemon_warned = false;
	foreground_tell(a);
	return 0;
}

/* ------------------------------------------------------------------ */
/* the desktop's foreground                                             */
/* ------------------------------------------------------------------ */

/* Whether pid is a live process of this user's (for root, whom importanced
 * believes about anyone: a window may claim any pid). */
static bool of_mine(pid_t pid)
{
	char path[64], line[256];
	unsigned ruid, euid = (unsigned)-1;
	bool found = false;
	FILE *f;
	int fd;

	if ((fd = (int)syscall(SYS_pidfd_open, pid, 0)) < 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "re"))) {
		while (!found && fgets(line, sizeof(line), f))
			found = sscanf(line, "Uid: %u %u", &ruid, &euid) == 2;
		fclose(f);
	}
	/* still the process the pidfd holds, so the file was its */
	found = found && euid == geteuid() && syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0) == 0;
	close(fd);
	return found;
}

/* Tells importanced what is in front, when X has said. */
static void foreground_tell(struct agent *a)
{
	pid_t pid = a->front;
	int e;

	if (pid < 0 || !a->c || !impc_connected(a->c))
		return;
	if (pid && geteuid() == 0 && !of_mine(pid))
		e = -EPERM;
	else
		e = impc_foreground(a->c, pid, pid ? a->fg_flags : 0);
	if (e == -EPERM || e == -ESRCH) {
		/* another user's process or none: nothing of ours is in front */
		if (a->verbose)
			fprintf(stderr, "importanced-agent: the active window claims pid %d: %s; telling none\n",
				(int)pid, strerror(-e));
		pid = 0;
		e = impc_foreground(a->c, 0, 0);
	}
	if (e < 0) {
		fprintf(stderr, "importanced-agent: foreground %d: %s\n", (int)pid, strerror(-e));
		return;
	}
	a->told = true;
	if (a->verbose)
		fprintf(stderr, "importanced-agent: foreground pid %d\n", (int)pid);
}

/* The static donor rules decide again for this user. */
static void foreground_forget(struct agent *a)
{
	if (a->told && a->c && impc_connected(a->c) && impc_foreground(a->c, 0, IMPC_FOREGROUND_FORGET) == 0) {
		a->told = false;
		if (a->verbose)
			fprintf(stderr, "importanced-agent: foreground forgotten\n");
	}
}

static void schedule_x11(struct agent *a, uint64_t usec);
static const char *display_of(struct agent *a);

static void on_active(pid_t pid, void *userdata)
{
	struct agent *a = userdata;

	if (pid < 0) {
		if (!a->x11_warned)
			fprintf(stderr, "importanced-agent: X display %s: %s (trying again every %d s)\n",
				display_of(a) ? display_of(a) : "(none)", a->x11_up ? "lost" : "cannot connect",
				RETRY_USEC / 1000000);
		a->x11_warned = true;
		a->x11_up = false;
		a->front = -1;
		foreground_forget(a);
		/* the source is freed by the timer, not in its own callback */
		schedule_x11(a, RETRY_USEC);
		return;
	}
	if (!a->x11_up)
		fprintf(stderr, "importanced-agent: watching the foreground on X display %s\n", display_of(a));
	a->x11_up = true;
	a->x11_warned = false;
	a->front = pid;
	foreground_tell(a);
}

/*
 * The display.  --display, else $DISPLAY.  A user unit starts with the user
 * manager, often before the desktop has imported DISPLAY into the manager's
 * environment (systemctl --user import-environment): then, with no display
 * of its own, the agent asks the manager for its environment on the session
 * bus (asynchronously, each RETRY_USEC while it has none, and while X is
 * down, so that a new session's display is found too).
 */
static const char *display_of(struct agent *a)
{
	const char *env = getenv("DISPLAY");

	if (a->display)
		return a->display;
	if (env && env[0])
		return env;
	return a->manager_display[0] ? a->manager_display : NULL;
}

static void schedule_x11(struct agent *a, uint64_t usec)
{
	uint64_t now;

	sd_event_now(a->ev, CLOCK_MONOTONIC, &now);
	sd_event_source_set_time(a->x11_retry, now + usec);
	sd_event_source_set_enabled(a->x11_retry, SD_EVENT_ONESHOT);
}

static int on_manager_environment(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	struct agent *a = userdata;
	const char *kv;
	char was[sizeof(a->manager_display)];

	(void)err;
	a->asking_manager = false;
	if (sd_bus_message_is_method_error(m, NULL) || sd_bus_message_enter_container(m, 'v', "as") < 0 ||
	    sd_bus_message_enter_container(m, 'a', "s") < 0)
		return 1;
	memcpy(was, a->manager_display, sizeof(was));
	a->manager_display[0] = 0;
	while (sd_bus_message_read(m, "s", &kv) > 0)
		if (!strncmp(kv, "DISPLAY=", 8) && kv[8] && strlen(kv + 8) < sizeof(a->manager_display))
			strcpy(a->manager_display, kv + 8);
	if (a->manager_display[0] && strcmp(was, a->manager_display)) {
		if (a->verbose)
			fprintf(stderr, "importanced-agent: the user manager's DISPLAY is %s\n", a->manager_display);
		if (!a->x11_up)
			schedule_x11(a, 0);
	}
	return 1;
}

/* Under a user manager, with no display of our own: ask it for its own. */
static void ask_manager(struct agent *a)
{
	const char *env = getenv("DISPLAY");

	if (a->display || (env && env[0]) || !getenv("MANAGERPID") || strcmp(a->where, "session") || !a->lookups ||
	    a->asking_manager)
		return;
	if (sd_bus_call_method_async(a->lookups, NULL, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
				     "org.freedesktop.DBus.Properties", "Get", on_manager_environment, a, "ss",
				     "org.freedesktop.systemd1.Manager", "Environment") >= 0)
		a->asking_manager = true;
}

/* (Re)connects to the X display; at once, or for the first time. */
static int on_x11_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct agent *a = userdata;
	int e;

	(void)s;
	(void)usec;
	x11_source_free(a->x11);
	a->x11 = NULL;
	ask_manager(a);
	if ((e = x11_source_new(a->ev, display_of(a), on_active, a, &a->x11)) == -ENXIO) {
		if (a->verbose && !a->x11_warned)
			fprintf(stderr, "importanced-agent: no X display%s\n",
				getenv("MANAGERPID") ? " yet: asking the user manager every 2 s" : ": not watching the foreground");
		a->x11_warned = true;
		if (getenv("MANAGERPID"))
			schedule_x11(a, RETRY_USEC);
	} else if (e < 0) {
		on_active(-1, a);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* the bus                                                              */
/* ------------------------------------------------------------------ */

static int on_monitored(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	struct agent *a = userdata;

	(void)err;
	if (sd_bus_message_is_signal(m, "org.freedesktop.DBus.Local", "Disconnected") > 0) {
		fprintf(stderr, "importanced-agent: bus %s: disconnected\n", a->where);
		schedule_retry(a, 0);
		return 1;
	}
	if (a->n_batch == BATCH_MAX)
		batch_flush(a);
	a->batch[a->n_batch++] = sd_bus_message_ref(m);
	return 1; /* handled: a monitor never answers what it sees */
}

/* Reads what the monitor has, in order, and relays it as one batch. */
static void monitor_drain(struct agent *a)
{
	unsigned budget = 4 * BATCH_MAX;
	int r = 0;

	while (a->monitor && budget-- && (r = sd_bus_process(a->monitor, NULL)) > 0)
		;
	batch_flush(a);
	if (r < 0)
		schedule_retry(a, 0);
	else if (r > 0) /* more is buffered: go on in the next iteration */
		sd_event_source_set_enabled(a->drain, SD_EVENT_ONESHOT);
}

static int on_drain(sd_event_source *s, void *userdata)
{
	(void)s;
	monitor_drain(userdata);
	return 0;
}

static int on_monitor_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	(void)s;
	(void)fd;
	(void)revents;
	monitor_drain(userdata);
	return 0;
}

static int on_lookups(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	(void)err;
	if (sd_bus_message_is_signal(m, "org.freedesktop.DBus.Local", "Disconnected") > 0)
		schedule_retry(userdata, 0);
	return 0;
}

static void bus_close(struct agent *a)
{
	if (a->verbose && (a->relayed || a->skipped))
		fprintf(stderr, "importanced-agent: bus %s: relayed %llu messages, left out %llu (%llu calls to the driver and its replies to them)\n",
			a->where, (unsigned long long)a->relayed, (unsigned long long)a->skipped,
			(unsigned long long)a->driver_skipped);
	a->relayed = a->skipped = a->driver_skipped = 0;
	a->asking_manager = false; /* its answer goes with the connection */
	memset(a->driver_calls, 0, sizeof(a->driver_calls));
	detach(a);
	for (size_t i = 0; i < a->n_batch; i++)
		sd_bus_message_unref(a->batch[i]);
	a->n_batch = 0;
	a->monitor_io = sd_event_source_disable_unref(a->monitor_io);
	a->monitor = sd_bus_close_unref(a->monitor);
	a->lookups = sd_bus_flush_close_unref(a->lookups);
}

static int bus_connect(struct agent *a)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	sd_bus_message *call = NULL;
	int r;

	if ((r = dbus_open(a->where, false, LOOKUP_USEC, &a->lookups)) < 0 ||
	    (r = dbus_open(a->where, true, LOOKUP_USEC, &a->monitor)) < 0)
		goto fail;
	/* the agent may wait on its own bus once per connect: it serves
	 * nobody meanwhile */
	if ((r = dbus_become_monitor_call(a->monitor, &call)) >= 0)
		r = sd_bus_call(a->monitor, call, 0, &err, NULL);
	sd_bus_message_unref(call);
	if (r < 0 || (r = sd_bus_add_filter(a->monitor, NULL, on_monitored, a)) < 0 ||
	    (r = sd_bus_add_filter(a->lookups, NULL, on_lookups, a)) < 0 ||
	    (r = sd_bus_attach_event(a->lookups, a->ev, SD_EVENT_PRIORITY_NORMAL)) < 0 ||
	    (r = sd_event_add_io(a->ev, &a->monitor_io, sd_bus_get_fd(a->monitor), EPOLLIN, on_monitor_readable,
				 a)) < 0)
		goto fail;
	fprintf(stderr, "importanced-agent: monitoring bus %s\n", a->where);
	a->bus_warned = false;
	attach(a);
	monitor_drain(a); /* what came with BecomeMonitor's reply */
	return 0;
fail:
	if (!a->bus_warned)
		fprintf(stderr, "importanced-agent: bus %s: %s%s%s (trying again every %d s)\n", a->where, strerror(-r),
			err.message ? ": " : "", err.message ? err.message : "", RETRY_USEC / 1000000);
	a->bus_warned = true;
	sd_bus_error_free(&err);
	bus_close(a);
	return r;
}

/* Whatever is down is connected again. */
static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct agent *a = userdata;
	bool again = false;

	(void)s;
	(void)usec;
	if (daemon_connect(a) < 0)
		again = true;
	if (!a->monitor || !a->lookups || sd_bus_is_open(a->monitor) <= 0 || sd_bus_is_open(a->lookups) <= 0) {
		bus_close(a);
		if (bus_connect(a) < 0)
			again = true;
	} else {
		attach(a);
		again = !a->attached;
	}
	if (again)
		schedule_retry(a, RETRY_USEC);
	return 0;
}

static void schedule_retry(struct agent *a, uint64_t usec)
{
	uint64_t now;

	sd_event_now(a->ev, CLOCK_MONOTONIC, &now);
	sd_event_source_set_time(a->retry, now + usec);
	sd_event_source_set_enabled(a->retry, SD_EVENT_ONESHOT);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: importanced-agent [--bus ADDRESS] [--socket PATH] [--display DISPLAY] [--no-foreground]\n"
		   "                         [--foreground-cgroup] [--verbose]\n"
		   "  --bus ADDRESS        the bus to watch: session (default), system, or a D-Bus address\n"
		   "  --socket PATH        importanced's socket (default: $IMPORTANCED_SOCKET or /run/importanced.sock)\n"
		   "  --display DISPLAY    the X display whose active window is the foreground (default: $DISPLAY)\n"
		   "  --no-foreground      do not watch the desktop's foreground\n"
		   "  --foreground-cgroup  name the active window's whole cgroup (its app), not only its process\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bus", required_argument, NULL, 'b' },
		{ "socket", required_argument, NULL, 's' },
		{ "display", required_argument, NULL, 'd' },
		{ "no-foreground", no_argument, NULL, 'F' },
		{ "foreground-cgroup", no_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct agent a = { .where = "session", .foreground = true, .front = -1 };
	sigset_t mask;
	int o, r;

	while ((o = getopt_long(argc, argv, "b:s:vh", opts, NULL)) != -1) {
		switch (o) {
		case 'b':
			a.where = optarg;
			break;
		case 's':
			a.socket = optarg;
			break;
		case 'd':
			a.display = optarg;
			break;
		case 'F':
			a.foreground = false;
			break;
		case 'C':
			a.fg_flags = IMPC_FOREGROUND_CGROUP;
			break;
		case 'v':
			a.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || !a.where[0] || strlen(a.where) > 200) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	if ((r = sd_event_default(&a.ev)) < 0 || (r = sd_event_add_signal(a.ev, NULL, SIGTERM, NULL, NULL)) < 0 ||
	    (r = sd_event_add_signal(a.ev, NULL, SIGINT, NULL, NULL)) < 0 ||
	    (r = sd_event_add_defer(a.ev, &a.drain, on_drain, &a)) < 0 ||
	    (r = sd_event_source_set_enabled(a.drain, SD_EVENT_OFF)) < 0 ||
	    (r = sd_event_add_time(a.ev, &a.retry, CLOCK_MONOTONIC, 0, 100000, on_retry, &a)) < 0 ||
	    (r = sd_event_add_time(a.ev, &a.x11_retry, CLOCK_MONOTONIC, 0, 100000, on_x11_retry, &a)) < 0 ||
	    (r = sd_event_source_set_enabled(a.x11_retry, a.foreground ? SD_EVENT_ONESHOT : SD_EVENT_OFF)) < 0) {
		fprintf(stderr, "importanced-agent: %s\n", strerror(-r));
		return 1;
	}
	/* the first attempts at once (the retry timers, enabled for time 0) */
	r = sd_event_loop(a.ev);
	foreground_forget(&a);
	x11_source_free(a.x11);
	sd_event_source_disable_unref(a.x11_retry);
	bus_close(&a);
	sd_event_source_disable_unref(a.daemon_io);
	if (a.c)
		impc_close(a.c);
	sd_event_source_disable_unref(a.retry);
	sd_event_source_disable_unref(a.drain);
	sd_event_unref(a.ev);
	return r < 0 ? 1 : 0;
}
