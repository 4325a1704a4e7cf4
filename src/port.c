/*
 * Ports: receive rights owned by a task, with the count of boosts held by
 * the messages queued on them (impcount).  The rules for adjusting that
 * count are the ones of SPEC.md, "Ports": an over-release is absorbed, and
 * the owner is adjusted only while the port and its owner are active and
 * the owner accepts boosts.
 */
#include "internal.h"

void imp__port_impcount_delta(struct imp_port *port, int delta)
{
	if (delta < 0 && port->impcount == 0)
		return; /* over-release absorbed */
	port->impcount += (uint32_t)delta;
}

/* Applies delta to the port and returns its owner's element when that
 * owner is to be adjusted, or NULL. */
static struct imp__task_elem *imp__port_delta_target(struct imp_port *port, int delta)
{
	struct imp_task *owner = port->owner;

	imp__port_impcount_delta(port, delta);
	if (!port->active || !owner->active || !imp__is_any_receiver(owner->imp))
		return NULL;
	return owner->imp;
}

/* The same, with a reference on the element for the caller. */
struct imp__task_elem *imp__port_delta_internal(struct imp_port *port, int delta)
{
	struct imp__task_elem *t = imp__port_delta_target(port, delta);

	if (t)
		imp__elem_ref(&t->elem);
	return t;
}

void imp__port_delta(imp_domain *d, struct imp_port *port, int delta)
{
	/* No reference of our own is needed: the owner's task holds one on
	 * its element, and a propagation takes its own before it can drop
	 * the lock. */
	struct imp__task_elem *t = imp__port_delta_target(port, delta);

	if (!t)
		return;
	if (delta > 0)
		imp__hold_internal_locked(d, t, 1);
	else
		imp__drop_internal_locked(d, t, 1);
}

void imp__port_unref_locked(imp_domain *d, struct imp_port *port)
{
	if (--port->refs > 0)
		return;
	TAILQ_REMOVE(&port->owner->ports, port, owner_link);
	TAILQ_REMOVE(&d->ports, port, link);
	d->n_ports--;
	imp__task_unref_locked(d, port->owner);
	imp__free(d, port);
}

void imp__port_destroy_locked(imp_domain *d, struct imp_port *port)
{
	struct imp__task_elem *t = port->owner->imp;
	uint32_t held = port->impcount;

	port->active = false;
	port->impcount = 0;
	if (held > 0 && imp__is_any_receiver(t))
		imp__drop_internal_locked(d, t, held);
	/* Messages still queued go in send order; the port being inactive,
	 * cleaning them leaves the owner's assertions alone. */
	while (!TAILQ_EMPTY(&port->queue))
		imp__msg_destroy_locked(d, TAILQ_FIRST(&port->queue));
	imp__port_unref_locked(d, port); /* the reference an active port keeps */
}

int imp_port_create(imp_task *owner, bool donate, imp_port **out)
{
	imp_domain *d;
	imp_port *p;
	int r;

	IMP__CHECK_ARG(owner && out, "imp_port_create: NULL argument");
	*out = NULL;
	d = owner->domain;
	p = imp__alloc(d, sizeof(*p));
	if (!p)
		return imp__error(-ENOMEM, "imp_port_create: out of memory");
	if ((r = imp__lock(d)) < 0) {
		imp__free(d, p);
		return r;
	}
	if (!owner->active) {
		imp__unlock(d);
		imp__free(d, p);
		return imp__error(-ESRCH, "imp_port_create: owner pid %d has exited", owner->pid);
	}
	p->domain = d;
	p->refs = 2; /* the caller's and the one an active port keeps */
	p->active = true;
	p->donate = donate;
	p->owner = owner;
	owner->refs++;
	TAILQ_INIT(&p->queue);
	TAILQ_INSERT_TAIL(&owner->ports, p, owner_link);
	TAILQ_INSERT_TAIL(&d->ports, p, link);
	d->n_ports++;
	imp__unlock(d);
	*out = p;
	return 0;
}

int imp_port_destroy(imp_port *port)
{
	imp_domain *d;
	int r;

	IMP__CHECK_ARG(port, "imp_port_destroy: NULL port");
	d = port->domain;
	if ((r = imp__lock(d)) < 0)
		return r;
	if (!port->active) {
		imp__unlock(d);
		return imp__error(-EPIPE, "imp_port_destroy: port is already dead");
	}
	imp__port_destroy_locked(d, port);
	imp__unlock(d);
	return 0;
}

imp_port *imp_port_ref(imp_port *port)
{
	if (port) {
		imp__lock_any(port->domain);
		port->refs++;
		pthread_mutex_unlock(&port->domain->lock);
	}
	return port;
}

void imp_port_unref(imp_port *port)
{
	imp_domain *d;

	if (!port)
		return;
	d = port->domain;
	imp__lock_any(d);
	imp__port_unref_locked(d, port);
	pthread_mutex_unlock(&d->lock);
}

void imp_port_set_userdata(imp_port *port, void *userdata)
{
	if (port)
		port->userdata = userdata;
}

void *imp_port_get_userdata(const imp_port *port)
{
	return port ? port->userdata : NULL;
}

imp_task *imp_port_owner(const imp_port *port)
{
	return port ? port->owner : NULL;
}

int imp_port_get_info(imp_port *port, imp_port_info *info)
{
	IMP__CHECK_ARG(port && info, "imp_port_get_info: NULL argument");
	imp__lock_any(port->domain);
	info->active = port->active;
	info->donate = port->donate;
	info->impcount = port->impcount;
	info->queued = port->queued;
	pthread_mutex_unlock(&port->domain->lock);
	return 0;
}

imp_msg *imp_port_peek(imp_port *port)
{
	imp_msg *m;

	if (!port)
		return NULL;
	imp__lock_any(port->domain);
	m = TAILQ_FIRST(&port->queue);
	pthread_mutex_unlock(&port->domain->lock);
	return m;
}
