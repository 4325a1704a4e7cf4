/* agent (agent.h): buses watched by session agents. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "broker.h"
#include "bus.h"
#include "dbus.h"
#include "peer.h"
#include "process.h"

_Static_assert(SD_BUS_MESSAGE_METHOD_CALL == 1 && SD_BUS_MESSAGE_METHOD_RETURN == 2 &&
		       SD_BUS_MESSAGE_METHOD_ERROR == 3 && SD_BUS_MESSAGE_SIGNAL == 4,
	       "impp_agent_event.type is the D-Bus message type, as sd-bus numbers it");

/* A question sent to the agent and not answered yet. */
struct question {
	bool used;
	uint8_t what;      /* IMPP_AGENT_WHO, IMPP_AGENT_OWNER_OF */
	uint64_t deadline; /* CLOCK_MONOTONIC usec */
	char name[256];
};

/* One bus an agent watches. */
struct agent_bus {
	struct agent_bus *next;
	struct broker *b;
	struct peer *peer; /* the agent's connection */
	uint32_t id;
	uid_t uid;         /* the agent's, from the kernel: the model's owner */
	struct bus *model;
	sd_event_source *timer; /* the next question's deadline */
	struct question q[IMPP_AGENT_QUESTIONS_MAX];
	unsigned n_q;
};

static uint64_t clock_usec(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Names, interfaces, members, addresses: printable ASCII, no NUL. */
static bool printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return false;
	return true;
}

/* Copies n bytes at s into a terminated string of dst (256 bytes); false
 * when they are not a name. */
static bool take_name(char *dst, const char *s, size_t n)
{
	if (!n || n > 255 || !printable(s, n))
		return false;
	memcpy(dst, s, n);
	dst[n] = 0;
	return true;
}

/* ------------------------------------------------------------------ */
/* questions                                                            */
/* ------------------------------------------------------------------ */

static void arm(struct agent_bus *ab)
{
	uint64_t first = UINT64_MAX;

	for (unsigned i = 0; i < IMPP_AGENT_QUESTIONS_MAX; i++)
		if (ab->q[i].used && ab->q[i].deadline < first)
			first = ab->q[i].deadline;
	if (first == UINT64_MAX) {
		sd_event_source_set_enabled(ab->timer, SD_EVENT_OFF);
		return;
	}
	sd_event_source_set_time(ab->timer, first);
	sd_event_source_set_enabled(ab->timer, SD_EVENT_ONESHOT);
}

/* The model's question, to the agent: 0, or -errno (then the model takes
 * the answer as unknown now). */
static int ask(struct agent_bus *ab, uint8_t what, const char *name)
{
	struct impp_evt_agent_question e = { .bus = ab->id, .what = what };
	size_t len = strlen(name);
	unsigned i;

	if (!ab->peer || ab->peer->dead)
		return -ENOTCONN;
	if (!len || len > 255)
		return -EINVAL;
	if (ab->n_q >= IMPP_AGENT_QUESTIONS_MAX)
		return -EBUSY;
	for (i = 0; ab->q[i].used; i++)
		;
	ab->q[i].used = true;
	ab->q[i].what = what;
	ab->q[i].deadline = clock_usec(CLOCK_MONOTONIC) + IMPP_AGENT_QUESTION_MS * 1000ull;
	memcpy(ab->q[i].name, name, len + 1);
	ab->n_q++;
	e.len = (uint8_t)len;
	peer_send(ab->peer, IMPP_EVT_AGENT_QUESTION, 0, &e, sizeof(e), name, len);
	arm(ab);
	return 0;
}

static int resolve(void *ctx, const char *unique)
{
	return ask(ctx, IMPP_AGENT_WHO, unique);
}

static int resolve_name(void *ctx, const char *name)
{
	return ask(ctx, IMPP_AGENT_OWNER_OF, name);
}

static const struct bus_ops agent_ops = { resolve, resolve_name };

/* The question about name is answered: false when none was asked. */
static bool answered(struct agent_bus *ab, uint8_t what, const char *name)
{
	for (unsigned i = 0; i < IMPP_AGENT_QUESTIONS_MAX; i++)
		if (ab->q[i].used && ab->q[i].what == what && !strcmp(ab->q[i].name, name)) {
			ab->q[i].used = false;
			ab->n_q--;
			arm(ab);
			return true;
		}
	return false;
}

/* Questions past their deadline are taken as unknown. */
static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct agent_bus *ab = userdata;

	(void)s;
	for (unsigned i = 0; i < IMPP_AGENT_QUESTIONS_MAX; i++) {
		struct question q = ab->q[i];

		if (!q.used || q.deadline > usec)
			continue;
		ab->q[i].used = false;
		ab->n_q--;
		/* the model may ask again from here: a slot before i is free */
		if (q.what == IMPP_AGENT_WHO)
			bus_conn_unknown(ab->model, q.name, -ETIMEDOUT);
		else
			bus_name_owner(ab->model, q.name, NULL);
	}
	arm(ab);
	return 0;
}

/* ------------------------------------------------------------------ */
/* buses                                                                */
/* ------------------------------------------------------------------ */

static struct agent_bus *bus_of(struct broker *b, struct peer *c, uint32_t id)
{
	for (struct agent_bus *ab = b->agent_buses; ab; ab = ab->next)
		if (ab->id == id && ab->peer == c)
			return ab;
	return NULL;
}

static void agent_bus_free(struct agent_bus *ab)
{
	struct agent_bus **p;

	for (p = &ab->b->agent_buses; *p; p = &(*p)->next)
		if (*p == ab) {
			*p = ab->next;
			break;
		}
	fprintf(stderr, "importanced: %s: detached: every call's boost from it is dropped\n", bus_where(ab->model));
	bus_free(ab->model);
	sd_event_source_disable_unref(ab->timer);
	free(ab);
}

static int attach(struct broker *b, struct peer *c, const uint8_t *body, size_t len, uint32_t *id)
{
	struct impp_req_agent_attach q;
	struct agent_bus *ab;
	unsigned mine = 0, all = 0;
	char where[IMPD_RULE_LEN];
	int e;

	if (len < sizeof(q))
		return -EBADMSG;
	memcpy(&q, body, sizeof(q));
	if (q.len != len - sizeof(q))
		return -EBADMSG;
	if (!q.len || q.len > IMPP_AGENT_ADDRESS_MAX || !printable((const char *)body + sizeof(q), q.len))
		return -EINVAL;
	if ((e = process_alive(c->pidfd)) < 0)
		return e;
	for (ab = b->agent_buses; ab; ab = ab->next) {
		all++;
		mine += ab->uid == c->actor.uid;
	}
	if (mine >= IMPP_AGENT_BUSES_PER_UID)
		return -EDQUOT;
	if (all >= IMPP_AGENT_BUSES_MAX)
		return -EUSERS;
	if (!(ab = calloc(1, sizeof(*ab))))
		return -ENOMEM;
	ab->b = b;
	ab->peer = c;
	ab->uid = c->actor.uid;
	do
		ab->id = ++b->next_agent_bus;
	while (!ab->id || bus_of(b, c, ab->id));
	snprintf(where, sizeof(where), "agent of uid %u: %.*s", (unsigned)ab->uid, (int)q.len,
		 (const char *)body + sizeof(q));
	if ((e = sd_event_add_time(b->ev, &ab->timer, CLOCK_MONOTONIC, 0, 1000, on_deadline, ab)) < 0) {
		free(ab);
		return e;
	}
	sd_event_source_set_enabled(ab->timer, SD_EVENT_OFF);
	if ((e = bus_new(b, where, ab->uid, &agent_ops, ab, &ab->model)) < 0) {
		sd_event_source_disable_unref(ab->timer);
		free(ab);
		return e;
	}
	bus_attached(ab->model, ab->uid, clock_usec(CLOCK_BOOTTIME));
	ab->next = b->agent_buses;
	b->agent_buses = ab;
	fprintf(stderr, "importanced: %s: attached by pid %d%s\n", where, (int)c->actor.pid,
		ab->uid ? ": only its uid's processes are believed" : "");
	*id = ab->id;
	return 0;
}

/* AGENT_EVENTS' records as the model's events, checked whole before any
 * is handled. */
static int events(struct agent_bus *ab, const uint8_t *p, size_t len, uint32_t n)
{
	struct dbus_event *evs;
	char *text;
	size_t off = 0, t = 0;
	int e = -EBADMSG;

	if (!n || n > IMPP_AGENT_EVENTS_MAX)
		return -EINVAL;
	evs = calloc(n, sizeof(*evs));
	text = malloc(len + (size_t)n * IMPP_AGENT_STRINGS);
	if (!evs || !text) {
		e = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct impp_agent_event r;
		struct dbus_event *ev = &evs[i];
		const char **slot[IMPP_AGENT_STRINGS] = { &ev->sender, &ev->destination, &ev->interface,
							  &ev->member, &ev->args[0], &ev->args[1], &ev->args[2] };

		if (len - off < sizeof(r))
			goto out;
		memcpy(&r, p + off, sizeof(r));
		off += sizeof(r);
		if (r.type < SD_BUS_MESSAGE_METHOD_CALL || r.type > SD_BUS_MESSAGE_SIGNAL ||
		    (r.flags & ~IMPP_AGENT_EXPECT_REPLY)) {
			e = -EINVAL;
			goto out;
		}
		ev->type = r.type;
		ev->expect_reply = r.flags & IMPP_AGENT_EXPECT_REPLY;
		ev->serial = r.serial;
		ev->reply_serial = r.reply_serial;
		for (unsigned k = 0; k < IMPP_AGENT_STRINGS; k++) {
			size_t l = r.len[k];

			if (len - off < l)
				goto out;
			if (!printable((const char *)p + off, l)) {
				e = -EINVAL;
				goto out;
			}
			/* an empty name is none; an empty argument is "" */
			if (l || k >= 4) {
				memcpy(text + t, p + off, l);
				text[t + l] = 0;
				*slot[k] = text + t;
				t += l + 1;
			}
			off += l;
		}
	}
	if (off != len)
		goto out;
	dbus_handle_batch(ab->model, evs, n, clock_usec(CLOCK_BOOTTIME));
	e = 0;
out:
	free(evs);
	free(text);
	return e;
}

int agent_request(struct broker *b, struct peer *c, uint16_t type, const uint8_t *body, size_t len, int *fds,
		  size_t n_fds, uint32_t *id)
{
	struct agent_bus *ab;
	uint32_t bus;

	if (type == IMPP_REQ_AGENT_ATTACH)
		return attach(b, c, body, len, id);
	if (len < sizeof(bus))
		return -EBADMSG;
	memcpy(&bus, body, sizeof(bus));
	if (!(ab = bus_of(b, c, bus)))
		return -ENOENT;
	switch (type) {
	case IMPP_REQ_AGENT_DETACH:
		if (len != sizeof(struct impp_req_agent_bus))
			return -EBADMSG;
		agent_bus_free(ab);
		return 0;
	case IMPP_REQ_AGENT_EVENTS: {
		struct impp_req_agent_events q;

		if (len < sizeof(q))
			return -EBADMSG;
		memcpy(&q, body, sizeof(q));
		return events(ab, body + sizeof(q), len - sizeof(q), q.n);
	}
	case IMPP_REQ_AGENT_IDENTITY: {
		struct impp_req_agent_identity q;
		struct bus_identity who;
		char unique[256];

		if (len < sizeof(q))
			return -EBADMSG;
		memcpy(&q, body, sizeof(q));
		if (q.len != len - sizeof(q) || n_fds > 1)
			return -EBADMSG;
		if (!take_name(unique, (const char *)body + sizeof(q), q.len))
			return -EINVAL;
		if (!answered(ab, IMPP_AGENT_WHO, unique))
			return -ENOENT;
		who = (struct bus_identity){ .pid = q.pid, .uid = q.uid, .pidfd = n_fds ? fds[0] : -1 };
		if (n_fds)
			fds[0] = -1; /* the model's now */
		bus_conn_identity(ab->model, unique, &who);
		return 0;
	}
	case IMPP_REQ_AGENT_UNKNOWN: {
		struct impp_req_agent_unknown q;
		char unique[256];

		if (len < sizeof(q))
			return -EBADMSG;
		memcpy(&q, body, sizeof(q));
		if (q.len != len - sizeof(q))
			return -EBADMSG;
		if (!take_name(unique, (const char *)body + sizeof(q), q.len) || q.error >= 0 || q.error < -4095)
			return -EINVAL;
		if (!answered(ab, IMPP_AGENT_WHO, unique))
			return -ENOENT;
		bus_conn_unknown(ab->model, unique, q.error);
		return 0;
	}
	case IMPP_REQ_AGENT_OWNER: {
		struct impp_req_agent_owner q;
		char name[256], owner[256] = "";

		if (len < sizeof(q))
			return -EBADMSG;
		memcpy(&q, body, sizeof(q));
		if ((size_t)q.len + q.len_owner != len - sizeof(q))
			return -EBADMSG;
		if (!take_name(name, (const char *)body + sizeof(q), q.len) ||
		    (q.len_owner && !take_name(owner, (const char *)body + sizeof(q) + q.len, q.len_owner)))
			return -EINVAL;
		if (!answered(ab, IMPP_AGENT_OWNER_OF, name))
			return -ENOENT;
		bus_name_owner(ab->model, name, q.len_owner ? owner : NULL);
		return 0;
	}
	default:
		return -EOPNOTSUPP;
	}
}

void agent_peer_gone(struct broker *b, struct peer *c)
{
	struct agent_bus **p = &b->agent_buses;

	while (*p) {
		if ((*p)->peer == c)
			agent_bus_free(*p);
		else
			p = &(*p)->next;
	}
}
