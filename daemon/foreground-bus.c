/*
 * The foreground on a D-Bus bus (foreground-bus.h).
 *
 * A call is taken in three steps, none of which waits: the method handler
 * keeps the call and asks the bus driver for its sender's credentials
 * (GetConnectionCredentials, asynchronously); the answer's UnixUserID and
 * ProcessID are checked against a pidfd opened on that pid (the process
 * must still be of that uid: a sender that exited and whose pid was reused
 * by someone else is refused); then the decision is foreground.c's, the
 * same as for FOREGROUND, and the call is answered.  At most
 * FOREGROUND_BUS_MAX_PENDING calls wait for the bus at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <systemd/sd-bus.h>

#include "broker.h"
#include "foreground-bus.h"
#include "foreground.h"
#include "process.h"

#define FOREGROUND_BUS_MAX_PENDING 256

struct foreground_bus {
	sd_bus *bus;
	sd_bus_slot *object;
	unsigned pending;
};

enum method { SET_PROCESS, SET_CGROUP, FORGET };

struct pending {
	struct broker *b;
	sd_bus_message *call;
	enum method method;
	uint32_t pid;
	char path[IMPD_RULE_LEN];
};

static void pending_free(void *ud)
{
	struct pending *p = ud;

	if (p->b->fg_bus)
		p->b->fg_bus->pending--;
	sd_bus_message_unref(p->call);
	free(p);
}

static int reply_errno(sd_bus_message *call, int e, const char *what)
{
	const char *name = e == -EPERM || e == -EACCES ? SD_BUS_ERROR_ACCESS_DENIED
			   : e == -EINVAL		 ? SD_BUS_ERROR_INVALID_ARGS
			   : e == -ESRCH		 ? "org.importance.Foreground1.Error.NoSuchProcess"
			   : e == -EDQUOT		 ? SD_BUS_ERROR_LIMITS_EXCEEDED
							 : SD_BUS_ERROR_FAILED;

	return sd_bus_reply_method_errorf(call, name, "%s: %s", what, strerror(-e));
}

/* The caller's uid and pid from the bus driver's a{sv}. */
static int read_creds(sd_bus_message *m, uint32_t *uid, uint32_t *pid)
{
	bool have_uid = false, have_pid = false;
	const char *key;
	int r;

	if ((r = sd_bus_message_enter_container(m, 'a', "{sv}")) < 0)
		return r;
	while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		if ((r = sd_bus_message_read(m, "s", &key)) < 0)
			return r;
		if (!strcmp(key, "UnixUserID")) {
			r = sd_bus_message_read(m, "v", "u", uid);
			have_uid = r >= 0;
		} else if (!strcmp(key, "ProcessID")) {
			r = sd_bus_message_read(m, "v", "u", pid);
			have_pid = r >= 0;
		} else {
			r = sd_bus_message_skip(m, "v");
		}
		if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
			return r;
	}
	if (r < 0)
		return r;
	return have_uid && have_pid ? 0 : -EPERM;
}

/* what a caller of uid `uid` asked, now that the bus said who it is */
static int decide(struct broker *b, struct pending *p, uid_t uid)
{
	bool privileged = uid == 0 || uid == geteuid();
	struct ident who;
	int fd, e;

	switch (p->method) {
	case FORGET:
		foreground_forget(b, uid);
		return 0;
	case SET_CGROUP:
		return foreground_set_cgroup(b, uid, p->path);
	case SET_PROCESS:
		if (!p->pid)
			return foreground_set_none(b, uid);
		if (p->pid > 0x7fffffffu)
			return -EINVAL;
		if ((fd = (int)syscall(SYS_pidfd_open, (pid_t)p->pid, 0)) < 0)
			return errno == EINVAL ? -ESRCH : -errno;
		if ((e = process_ident(fd, &who)) == 0 && (e = process_in_our_namespaces(fd, who.pid)) == 0)
			e = -EPERM;
		if (e >= 0 && !privileged && who.uid != uid)
			e = -EPERM;
		if (e >= 0)
			e = foreground_set_process(b, who.uid, fd, &who, false);
		close(fd);
		return e;
	}
	return -EINVAL;
}

static int on_creds(sd_bus_message *m, void *ud, sd_bus_error *ret)
{
	struct pending *p = ud;
	uint32_t uid = 0, pid = 0;
	struct ident sender;
	int fd, e;

	(void)ret;
	if (sd_bus_message_is_method_error(m, NULL))
		return reply_errno(p->call, -EPERM, "the bus did not say who called");
	if ((e = read_creds(m, &uid, &pid)) < 0)
		return reply_errno(p->call, -EPERM, "the bus did not say who called");
	/* the sender as the kernel sees it now: alive, and of that uid */
	if ((fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0)) < 0)
		return reply_errno(p->call, -EPERM, "the caller is gone");
	e = process_ident(fd, &sender);
	close(fd);
	if (e < 0 || sender.uid != uid)
		return reply_errno(p->call, -EPERM, "the caller is gone");
	if ((e = decide(p->b, p, uid)) < 0)
		return reply_errno(p->call, e, p->method == SET_CGROUP ? "SetForegroundCgroup" : "SetForegroundProcess");
	if (p->b->cfg.verbose)
		fprintf(stderr, "importanced: foreground bus: uid %u pid %u said so\n", (unsigned)uid, (unsigned)pid);
	return sd_bus_reply_method_return(p->call, NULL);
}

static int take(sd_bus_message *m, struct broker *b, enum method method, sd_bus_error *err)
{
	struct foreground_bus *fb = b->fg_bus;
	sd_bus_slot *slot = NULL;
	struct pending *p;
	const char *path;
	int r;

	if (fb->pending >= FOREGROUND_BUS_MAX_PENDING)
		return sd_bus_error_set(err, SD_BUS_ERROR_LIMITS_EXCEEDED, "too many calls waiting");
	if (!(p = calloc(1, sizeof(*p))))
		return -ENOMEM;
	p->b = b;
	p->method = method;
	if (method == SET_PROCESS) {
		r = sd_bus_message_read(m, "u", &p->pid);
	} else if (method == SET_CGROUP) {
		if ((r = sd_bus_message_read(m, "s", &path)) >= 0 && (path[0] != '/' || strlen(path) >= sizeof(p->path)))
			r = -EINVAL;
		else if (r >= 0)
			strcpy(p->path, path);
	} else {
		r = 0;
	}
	if (r < 0) {
		free(p);
		return sd_bus_error_set(err, SD_BUS_ERROR_INVALID_ARGS,
					method == SET_CGROUP ? "the cgroup must be an absolute path under 256 bytes"
							     : "bad arguments");
	}
	p->call = sd_bus_message_ref(m);
	r = sd_bus_call_method_async(fb->bus, &slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
				     "org.freedesktop.DBus", "GetConnectionCredentials", on_creds, p, "s",
				     sd_bus_message_get_sender(m));
	if (r < 0) {
		sd_bus_message_unref(p->call);
		free(p);
		return r;
	}
	fb->pending++;
	sd_bus_slot_set_destroy_callback(slot, pending_free);
	sd_bus_slot_set_floating(slot, 1); /* the bus's now */
	sd_bus_slot_unref(slot);
	return 1; /* answered later */
}

static int m_set_process(sd_bus_message *m, void *ud, sd_bus_error *err)
{
	return take(m, ud, SET_PROCESS, err);
}

static int m_set_cgroup(sd_bus_message *m, void *ud, sd_bus_error *err)
{
	return take(m, ud, SET_CGROUP, err);
}

static int m_forget(sd_bus_message *m, void *ud, sd_bus_error *err)
{
	return take(m, ud, FORGET, err);
}

/* UNPRIVILEGED: sd-bus itself would refuse every caller without
 * CAP_SYS_ADMIN; who may say what is decide()'s. */
static const sd_bus_vtable vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_METHOD_WITH_ARGS("SetForegroundProcess", SD_BUS_ARGS("u", pid), SD_BUS_NO_RESULT, m_set_process, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("SetForegroundCgroup", SD_BUS_ARGS("s", path), SD_BUS_NO_RESULT, m_set_cgroup, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("Forget", "", "", m_forget, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_VTABLE_END,
};

static int on_name(sd_bus_message *m, void *ud, sd_bus_error *ret)
{
	(void)ud;
	(void)ret;
	if (sd_bus_message_is_method_error(m, NULL))
		fprintf(stderr, "importanced: foreground bus: cannot own %s: %s\n", FOREGROUND_BUS_NAME,
			sd_bus_message_get_error(m)->message);
	return 0;
}

int foreground_bus_start(struct broker *b)
{
	const char *where = b->cfg.foreground_bus;
	struct foreground_bus *fb;
	int r;

	if (!where[0])
		return 0;
	if (!(fb = calloc(1, sizeof(*fb))))
		return -ENOMEM;
	if (!strcmp(where, "system")) {
		r = sd_bus_open_system(&fb->bus);
	} else if ((r = sd_bus_new(&fb->bus)) >= 0 && (r = sd_bus_set_address(fb->bus, where)) >= 0 &&
		   (r = sd_bus_set_bus_client(fb->bus, 1)) >= 0) {
		r = sd_bus_start(fb->bus);
	}
	if (r >= 0 && (r = sd_bus_attach_event(fb->bus, b->ev, 0)) >= 0 &&
	    (r = sd_bus_add_object_vtable(fb->bus, &fb->object, FOREGROUND_BUS_PATH, FOREGROUND_BUS_NAME, vtable, b)) >= 0)
		r = sd_bus_request_name_async(fb->bus, NULL, FOREGROUND_BUS_NAME, 0, on_name, NULL);
	if (r < 0) {
		fprintf(stderr, "importanced: foreground bus %s: %s\n", where, strerror(-r));
		sd_bus_close_unref(fb->bus);
		free(fb);
		return r;
	}
	b->fg_bus = fb;
	return 0;
}

void foreground_bus_stop(struct broker *b)
{
	struct foreground_bus *fb = b->fg_bus;

	if (!fb)
		return;
	b->fg_bus = NULL; /* pending calls' destroy callbacks see it gone */
	sd_bus_slot_unref(fb->object);
	sd_bus_close_unref(fb->bus);
	free(fb);
}
