/*
 * systemd-logind as a foreground source (logind.h).
 *
 * A table of the sessions followed (object path -> audit session id) lets
 * SessionRemoved, which names only the path, say the session is gone (and
 * so counts as active: it constrains nothing).  Every read is a GetAll
 * whose answer comes in its own callback; a session whose answer says it
 * has no audit id is not followed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>

#include "broker.h"
#include "foreground.h"
#include "logind.h"

#define LOGIN1 "org.freedesktop.login1"
#define LOGIN1_PATH "/org/freedesktop/login1"

struct session {
	char path[128];
	uint32_t audit;
};

struct logind {
	struct broker *b;
	sd_bus *bus;
	struct session *sessions;
	size_t n_sessions;
};

static struct session *session_find(struct logind *l, const char *path)
{
	for (size_t i = 0; i < l->n_sessions; i++)
		if (!strcmp(l->sessions[i].path, path))
			return &l->sessions[i];
	return NULL;
}

static void session_gone(struct logind *l, const char *path)
{
	struct session *s = session_find(l, path);

	if (!s)
		return;
	foreground_session(l->b, s->audit, true);
	*s = l->sessions[--l->n_sessions];
}

static void all_gone(struct logind *l)
{
	while (l->n_sessions)
		session_gone(l, l->sessions[0].path);
}

static int on_getall(sd_bus_message *m, void *ud, sd_bus_error *ret)
{
	struct logind *l = ud;
	const char *path = NULL, *key, *id = "";
	uint32_t audit = FOREGROUND_NO_SESSION;
	int active = 1, locked = 0, r;
	struct session *s;
	char *end;

	(void)ret;
	if (sd_bus_message_is_method_error(m, NULL))
		return 0; /* gone meanwhile: SessionRemoved says so */
	if ((r = sd_bus_message_enter_container(m, 'a', "{sv}")) < 0)
		return 0;
	while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
		if (sd_bus_message_read(m, "s", &key) < 0)
			return 0;
		if (!strcmp(key, "Id"))
			r = sd_bus_message_read(m, "v", "s", &id);
		else if (!strcmp(key, "Audit"))
			r = sd_bus_message_read(m, "v", "u", &audit);
		else if (!strcmp(key, "Active"))
			r = sd_bus_message_read(m, "v", "b", &active);
		else if (!strcmp(key, "LockedHint"))
			r = sd_bus_message_read(m, "v", "b", &locked);
		else
			r = sd_bus_message_skip(m, "v");
		if (r < 0 || sd_bus_message_exit_container(m) < 0)
			return 0;
	}
	if (audit == FOREGROUND_NO_SESSION) {
		unsigned long v = strtoul(id, &end, 10);

		if (!*id || *end || v >= FOREGROUND_NO_SESSION)
			return 0;
		audit = (uint32_t)v;
	}
	/* a reply names no object: the path is the call's slot's description */
	if (sd_bus_slot_get_description(sd_bus_get_current_slot(l->bus), &path) < 0 || !path)
		return 0;
	if (!(s = session_find(l, path))) {
		if (l->n_sessions >= FOREGROUND_MAX_SESSIONS || strlen(path) >= sizeof(s->path))
			return 0;
		if (!(s = realloc(l->sessions, (l->n_sessions + 1) * sizeof(*s))))
			return 0;
		l->sessions = s;
		s = &l->sessions[l->n_sessions++];
		strcpy(s->path, path);
	}
	s->audit = audit;
	if (l->b->cfg.verbose)
		fprintf(stderr, "importanced: logind: session %s (audit %u)%s%s\n", id, (unsigned)audit,
			active ? " active" : " inactive", locked ? " locked" : "");
	foreground_session(l->b, audit, active && !locked);
	return 0;
}

/* GetAll of the session at path; the answer comes to on_getall. */
static void session_read(struct logind *l, const char *path)
{
	sd_bus_slot *slot = NULL;

	if (sd_bus_call_method_async(l->bus, &slot, LOGIN1, path, "org.freedesktop.DBus.Properties", "GetAll",
				     on_getall, l, "s", "org.freedesktop.login1.Session") < 0)
		return;
	sd_bus_slot_set_description(slot, path);
	sd_bus_slot_set_floating(slot, 1); /* the bus's now */
	sd_bus_slot_unref(slot);
}

static int on_list(sd_bus_message *m, void *ud, sd_bus_error *ret)
{
	struct logind *l = ud;
	const char *id, *user, *seat, *path;
	uint32_t uid;

	(void)ret;
	if (sd_bus_message_is_method_error(m, NULL)) {
		fprintf(stderr, "importanced: logind: ListSessions: %s\n", sd_bus_message_get_error(m)->message);
		return 0;
	}
	if (sd_bus_message_enter_container(m, 'a', "(susso)") < 0)
		return 0;
	while (sd_bus_message_read(m, "(susso)", &id, &uid, &user, &seat, &path) > 0)
		session_read(l, path);
	return 0;
}

static void list(struct logind *l)
{
	sd_bus_call_method_async(l->bus, NULL, LOGIN1, LOGIN1_PATH, "org.freedesktop.login1.Manager", "ListSessions",
				 on_list, l, "");
}

static int on_props(sd_bus_message *m, void *ud, sd_bus_error *ret)
{
	(void)ret;
	session_read(ud, sd_bus_message_get_path(m));
	return 0;
}

static int on_session_new(sd_bus_message *m, void *ud, sd_bus_error *ret)
{
	const char *id, *path;

	(void)ret;
	if (sd_bus_message_read(m, "so", &id, &path) >= 0)
		session_read(ud, path);
	return 0;
}

static int on_session_removed(sd_bus_message *m, void *ud, sd_bus_error *ret)
{
	const char *id, *path;

	(void)ret;
	if (sd_bus_message_read(m, "so", &id, &path) >= 0)
		session_gone(ud, path);
	return 0;
}

static int on_owner(sd_bus_message *m, void *ud, sd_bus_error *ret)
{
	struct logind *l = ud;
	const char *name, *old, *new;

	(void)ret;
	if (sd_bus_message_read(m, "sss", &name, &old, &new) < 0)
		return 0;
	all_gone(l);
	if (new[0])
		list(l);
	return 0;
}

int logind_start(struct broker *b)
{
	struct logind *l;
	int r;

	if (!b->cfg.logind)
		return 0;
	if (!(l = calloc(1, sizeof(*l))))
		return -ENOMEM;
	l->b = b;
	if ((r = sd_bus_open_system(&l->bus)) < 0 || (r = sd_bus_attach_event(l->bus, b->ev, 0)) < 0 ||
	    (r = sd_bus_add_match_async(l->bus, NULL,
					"type='signal',sender='" LOGIN1 "',interface='org.freedesktop.DBus.Properties',"
					"member='PropertiesChanged',path_namespace='" LOGIN1_PATH "/session'",
					on_props, NULL, l)) < 0 ||
	    (r = sd_bus_match_signal_async(l->bus, NULL, LOGIN1, LOGIN1_PATH, "org.freedesktop.login1.Manager",
					   "SessionNew", on_session_new, NULL, l)) < 0 ||
	    (r = sd_bus_match_signal_async(l->bus, NULL, LOGIN1, LOGIN1_PATH, "org.freedesktop.login1.Manager",
					   "SessionRemoved", on_session_removed, NULL, l)) < 0 ||
	    (r = sd_bus_add_match_async(l->bus, NULL,
					"type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" LOGIN1 "'",
					on_owner, NULL, l)) < 0) {
		fprintf(stderr, "importanced: logind: the system bus: %s\n", strerror(-r));
		sd_bus_close_unref(l->bus);
		free(l);
		return r;
	}
	list(l);
	b->logind = l;
	return 0;
}

void logind_stop(struct broker *b)
{
	struct logind *l = b->logind;

	if (!l)
		return;
	b->logind = NULL;
	sd_bus_close_unref(l->bus);
	free(l->sessions);
	free(l);
}
