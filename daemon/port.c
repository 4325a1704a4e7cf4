/*
 * Ports and messages (port.h).
 *
 * What a message costs is charged to its sender, per connection and per
 * uid (the files it carries too), from the send until it is received or
 * destroyed.  Send rights are
 * kept per peer in a tree of port ids; ids are never reused, so a right to
 * a port that is gone is dead weight, and dead rights are dropped when a
 * peer reaches its limit of rights.
 */
#include <errno.h>
#include <search.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>

#include "broker.h"
#include "name.h"
#include "peer.h"
#include "port.h"
#include "receive.h"
#include "user.h"

struct port *port_owned(struct broker *b, struct peer *c, uint64_t id)
{
	struct port *p = port_by_id(b, id);

	return p && p->owner == c ? p : NULL;
}

struct port *port_by_id(struct broker *b, uint64_t id)
{
	void *r = tfind(&id, &b->ports, cmp_u64);

	return r ? *(struct port **)r : NULL;
}

/* Port ids are random (48 bits, as clients may keep the top 16 of a
 * handle for themselves) rather than counted: a count would tell anyone
 * who makes a port how many others made since. */
static int new_port_id(struct broker *b, uint64_t *id)
{
	for (int tries = 0; tries < 16; tries++) {
		uint64_t x;

		if (getrandom(&x, sizeof(x), 0) != sizeof(x))
			return -EAGAIN;
		x &= (UINT64_C(1) << 48) - 1;
		if (x && !port_by_id(b, x)) {
			*id = x;
			return 0;
		}
	}
	return -EAGAIN;
}

int port_new(struct broker *b, struct peer *owner, bool donation, struct port **out)
{
	struct port *p;
	int e;

	if (owner->n_ports >= b->cfg.limits.ports)
		return -EDQUOT;
	if ((e = user_charge(b, owner->user, USAGE_PORTS, 1)) < 0)
		return e;
	if (!(p = calloc(1, sizeof(*p)))) {
		e = -ENOMEM;
		goto fail;
	}
	if ((e = imp_port_create(owner->task, donation, &p->port)) < 0) {
		free(p);
		goto fail;
	}
	if ((e = new_port_id(b, &p->id)) < 0) {
		imp_port_destroy(p->port);
		imp_port_unref(p->port);
		free(p);
		goto fail;
	}
	p->owner = owner;
	TAILQ_INIT(&p->queue);
	if (!tsearch(p, &b->ports, cmp_u64) || (e = right_grant(b, owner, p->id)) < 0) {
		tdelete(p, &b->ports, cmp_u64);
		imp_port_destroy(p->port);
		imp_port_unref(p->port);
		free(p);
		e = e < 0 ? e : -ENOMEM;
		goto fail;
	}
	TAILQ_INSERT_TAIL(&owner->ports, p, owner_link);
	owner->n_ports++;
	*out = p;
	return 0;
fail:
	user_uncharge(b, owner->user, USAGE_PORTS, 1);
	return e;
}

/* The sender of m, if still connected, pays no more for it. */
static struct peer *release_sender(struct broker *b, struct message *m)
{
	struct peer *sender = peer_by_id(b, m->sender_id);

	if (sender) {
		sender->n_inflight--;
		sender->inflight_bytes -= m->len;
		sender->n_inflight_fds -= m->n_fds;
	}
	user_uncharge(b, m->sender_user, USAGE_INFLIGHT, 1);
	user_uncharge(b, m->sender_user, USAGE_BYTES, m->len);
	user_uncharge(b, m->sender_user, USAGE_FDS, m->n_fds);
	user_put(b, m->sender_user);
	m->sender_user = NULL;
	return sender;
}

void port_destroy(struct broker *b, struct port *p, bool engine_too)
{
	struct message *m;

	if (p->waiter) /* its owner is told, unless it is the one going */
		receive_fail_waiter(b, p, engine_too ? -ECANCELED : 0);
	while ((m = TAILQ_FIRST(&p->queue))) {
		struct impp_evt_msg_destroyed ev = { m->id, p->id };
		struct peer *sender;

		TAILQ_REMOVE(&p->queue, m, link);
		if ((sender = release_sender(b, m)))
			peer_send(sender, IMPP_EVT_MSG_DESTROYED, 0, &ev, sizeof(ev), NULL, 0);
		message_free(m);
	}
	if (engine_too)
		imp_port_destroy(p->port); /* the engine drops the boosts */
	name_release(b, p);
	tdelete(&p->id, &b->ports, cmp_u64);
	TAILQ_REMOVE(&p->owner->ports, p, owner_link);
	p->owner->n_ports--;
	user_uncharge(b, p->owner->user, USAGE_PORTS, 1);
	imp_port_unref(p->port);
	free(p);
}

void port_enqueue(struct broker *b, struct port *p, struct message *m, struct peer *sender)
{
	(void)b;
	m->port = p;
	m->sender_id = sender->id;
	m->sender_pid = sender->actor.pid;
	m->sender_user = sender->user;
	sender->user->refs++;
	TAILQ_INSERT_TAIL(&p->queue, m, link);
	p->queued++;
	sender->n_inflight++;
	sender->inflight_bytes += m->len;
	sender->n_inflight_fds += m->n_fds;
}

struct message *port_dequeue(struct broker *b, struct port *p)
{
	struct message *m = TAILQ_FIRST(&p->queue);

	if (!m)
		return NULL;
	TAILQ_REMOVE(&p->queue, m, link);
	p->queued--;
	release_sender(b, m);
	return m;
}

void message_free(struct message *m)
{
	for (uint32_t i = 0; i < m->n_fds; i++)
		close(m->fds[i]);
	free(m->fds);
	imp_msg_unref(m->msg);
	free(m->data);
	free(m);
}

bool right_has(const struct peer *c, uint64_t port)
{
	return tfind(&port, &c->rights, cmp_u64) != NULL;
}

struct purge {
	struct broker *b;
	uint64_t *dead[64];
	size_t n;
};

static void find_dead(const void *node, VISIT which, void *ctx)
{
	uint64_t *key = *(uint64_t *const *)node;
	struct purge *pg = ctx;

	if ((which == postorder || which == leaf) && pg->n < 64 && !port_by_id(pg->b, *key))
		pg->dead[pg->n++] = key;
}

/* Drops rights to ports that are gone, up to 64 a walk; returns how many. */
static size_t purge_rights(struct broker *b, struct peer *c)
{
	struct purge pg = { .b = b };

	twalk_r(c->rights, find_dead, &pg);
	for (size_t i = 0; i < pg.n; i++) {
		tdelete(pg.dead[i], &c->rights, cmp_u64);
		free(pg.dead[i]);
	}
	c->n_rights -= (unsigned)pg.n;
	return pg.n;
}

int right_grant(struct broker *b, struct peer *c, uint64_t port)
{
	uint64_t *key;

	if (right_has(c, port))
		return 0;
	if (c->n_rights >= b->cfg.limits.rights && purge_rights(b, c) == 0)
		return -EDQUOT;
	if (!(key = malloc(sizeof(*key))))
		return -ENOMEM;
	*key = port;
	if (!tsearch(key, &c->rights, cmp_u64)) {
		free(key);
		return -ENOMEM;
	}
	c->n_rights++;
	return 0;
}

void right_free_all(struct peer *c)
{
	tdestroy(c->rights, free);
	c->rights = NULL;
	c->n_rights = 0;
}
