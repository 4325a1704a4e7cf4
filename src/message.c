/*
 * Messages: send (link to the donor's element, raise the port), receive
 * (turn the boost into an inherit held by the received voucher, or into a
 * legacy external assertion), the undo of a failed receive, and destroy.
 */
#include "internal.h"

void imp__msg_unref_locked(imp_domain *d, struct imp_msg *msg)
{
	if (--msg->refs > 0)
		return;
	TAILQ_REMOVE(&d->msgs, msg, link);
	d->n_msgs--;
	if (msg->voucher)
		imp__voucher_unref_locked(d, msg->voucher);
	imp__port_unref_locked(d, msg->port);
	imp__task_unref_locked(d, msg->sender);
	imp__free(d, msg);
}

static void imp__msg_dequeue(struct imp_msg *msg, imp_msg_state state)
{
	TAILQ_REMOVE(&msg->port->queue, msg, queue_link);
	msg->port->queued--;
	msg->state = state;
}

/* Drops a message's voucher reference (which may release its value). */
static void imp__msg_drop_voucher(imp_domain *d, struct imp_msg *msg)
{
	struct imp_voucher *v = msg->voucher;

	msg->voucher = NULL;
	if (v)
		imp__voucher_unref_locked(d, v);
}

/* ipc_importance_clean followed by the voucher drop, for a queued message. */
void imp__msg_destroy_locked(imp_domain *d, struct imp_msg *msg)
{
	struct imp__elem *elem;

	imp__msg_dequeue(msg, IMP_MSG_DESTROYED);
	elem = imp__msg_unlink(msg);
	if (elem)
		imp__elem_release(d, elem);
	if (msg->raised) {
		msg->raised = false;
		/* a dead port already gave its boosts back */
		if (msg->port->active)
			imp__port_delta(d, msg->port, -1);
	}
	imp__msg_drop_voucher(d, msg);
	imp__msg_unref_locked(d, msg); /* the queue's reference */
}

/* ipc_importance_send: link and raise, with the sender as current task. */
static void imp__importance_send(imp_domain *d, struct imp_msg *msg, unsigned options)
{
	struct imp_port *port = msg->port;
	struct imp__task_elem *t;
	struct imp__elem *elem = NULL;

	if (!port->donate || (options & IMP_SEND_NOIMPORTANCE))
		return;
	if (options & IMP_SEND_IMPORTANCE) {
		/* a static boost: raised, but linked to nobody */
		msg->raised = true;
		imp__port_delta(d, port, 1);
		return;
	}
	t = msg->sender->imp;
	if (imp__is_never_donor(t))
		return;

	/* A receiver passing work on with a voucher donates what the voucher
	 * holds, if that importance is its own (directly or through an
	 * inherit made for it); anything else donates its own element. */
	if (msg->voucher && imp__is_receiver(t)) {
		struct imp__elem *value = msg->voucher->value;

		if (value->type == IMP__ELEM_INHERIT) {
			if (((struct imp__inherit *)value)->to_task == t)
				elem = value;
		} else if (value == &t->elem) {
			elem = value;
		}
	}
	if (!elem)
		elem = &t->elem;
	imp__elem_ref(elem);
	imp__msg_link(msg, elem);

	if (!imp__is_donor(t))
		return; /* linked: it will carry a boost when the sender has one */
	msg->raised = true;
	imp__port_delta(d, port, 1);
}

int imp_msg_send(imp_task *sender, imp_port *port, imp_voucher *voucher,
		 unsigned options, imp_msg **out)
{
	imp_domain *d;
	imp_msg *m;
	int r;

	IMP__CHECK_ARG(sender && port && out, "imp_msg_send: NULL argument");
	*out = NULL;
	IMP__CHECK_ARG(!(options & ~(IMP_SEND_IMPORTANCE | IMP_SEND_NOIMPORTANCE)),
		       "imp_msg_send: unknown options 0x%x", options);
	IMP__CHECK_ARG((options & (IMP_SEND_IMPORTANCE | IMP_SEND_NOIMPORTANCE)) !=
			       (IMP_SEND_IMPORTANCE | IMP_SEND_NOIMPORTANCE),
		       "imp_msg_send: importance and noimportance exclude each other");
	d = sender->domain;
	if (port->domain != d || (voucher && voucher->domain != d))
		return imp__error(-EXDEV, "imp_msg_send: objects of different domains");
	m = imp__alloc(d, sizeof(*m));
	if (!m)
		return imp__error(-ENOMEM, "imp_msg_send: out of memory");
	if ((r = imp__lock(d)) < 0) {
		imp__free(d, m);
		return r;
	}
	if (!sender->active) {
		imp__unlock(d);
		imp__free(d, m);
		return imp__error(-ESRCH, "imp_msg_send: sender pid %d has exited", sender->pid);
	}
	if (!port->active) {
		imp__unlock(d);
		imp__free(d, m);
		return imp__error(-EPIPE, "imp_msg_send: destination port is dead");
	}
	m->domain = d;
	m->refs = 2; /* the caller's and the queue's */
	m->state = IMP_MSG_QUEUED;
	m->sender = sender;
	sender->refs++;
	m->port = port;
	port->refs++;
	if (voucher) {
		voucher->refs++;
		m->voucher = voucher;
	}
	TAILQ_INSERT_TAIL(&d->msgs, m, link);
	d->n_msgs++;
	/* Queued before the importance work so that a port destroyed while
	 * a policy update runs unlocked finds it and cleans it. */
	TAILQ_INSERT_TAIL(&port->queue, m, queue_link);
	port->queued++;
	imp__importance_send(d, m, options);
	imp__unlock(d);
	*out = m;
	return 0;
}

/* The counts of an inherit made (or revived) for one message, received by
 * its to-task t: one made reference, one external boost, donated to t if
 * the message donated. */
static inline void imp__inherit_start(imp_domain *d, struct imp__inherit *inherit,
				      struct imp__task_elem *t, bool donating)
{
	inherit->elem.refs = 1;
	inherit->elem.made = 1;
	inherit->elem.id = d->next_elem_id++;
	inherit->externcnt = 1;
	inherit->externdrop = 0;
	inherit->donating = donating;
	if (donating)
		t->externcnt++;
}

/*
 * ipc_importance_inherit_from: turns the message's link (or static boost)
 * into a made reference on an inherit from the sender's side to `self`.
 * `spare` is a preallocated inherit; *spare_used says whether it was taken.
 * Returns NULL when no importance is to be inherited.
 */
static struct imp__inherit *imp__inherit_from(imp_domain *d, struct imp_msg *msg,
					      struct imp_task *self,
					      struct imp__inherit *spare, bool *spare_used)
{
	struct imp__task_elem *t = NULL;
	struct imp__elem *from = msg->importance;
	struct imp__inherit *inherit = NULL, *dormant = NULL;
	struct imp_port *port = msg->port;
	bool cleared_self_donation = false;
	bool created = false;
	bool msg_donating;
	bool inherit_donating = false;
	uint32_t depth = 1;

	*spare_used = false;
	if (!msg->importance && !msg->raised)
		return NULL;

	/* only a receiver of either kind inherits; an exiting one does not */
	if (!imp__is_any_receiver(self->imp) || !self->active)
		goto out;
	t = self->imp;
	imp__elem_ref(&t->elem);

	if (from && from->type == IMP__ELEM_INHERIT) {
		struct imp__inherit *fi = (struct imp__inherit *)from;

		if (fi->to_task == t) {
			/* Coming back to the task the inherit already targets:
			 * reuse it.  A message that donates although the
			 * inherit does not is the task boosting itself through
			 * its own voucher; that donation is taken back. */
			if (!fi->donating && msg->raised) {
				msg->raised = false;
				cleared_self_donation = true;
			}
			inherit = fi;
		} else if ((fi->depth & IMP__DEPTH_MASK) == IMP__DEPTH_MAX) {
			/* Chain too long: inherit straight from the last
			 * inherit's to-task, and relink the message there. */
			struct imp__task_elem *to = fi->to_task;

			imp__elem_ref(&to->elem);
			from = &to->elem;
			depth = IMP__DEPTH_RESET | 1;
			imp__msg_unlink(msg);
			imp__msg_link(msg, from);
			imp__elem_release(d, &fi->elem);
		} else {
			depth = fi->depth + 1;
		}
	}

	/* never inherit from oneself: it would keep the task boosted forever */
	if (from == &t->elem)
		goto out;

	/* A static boost (no source) may boost its receiver permanently. */
	if (!from) {
		imp__elem_ref(&t->elem);
		from = &t->elem;
	}

	/* (the reference looked on the inherit's own list, always empty).  A
	 * dormant inherit with the key means no live one has it. */
	if (!inherit) {
		if (t->dormant && t->dormant->from_elem == from && t->dormant->depth == depth)
			dormant = t->dormant;
		else
			inherit = imp__inherit_find(from, t, depth);
	}

	msg_donating = msg->raised;
	if (inherit) {
		if (inherit->elem.made++ == 0)
			imp__elem_ref(&inherit->elem);
		if (IMP__INHERIT_EXTERN(inherit) == 0) {
			inherit->donating = msg_donating;
			if (msg_donating) {
				t->externcnt += inherit->externcnt;
				t->externdrop += inherit->externdrop;
			}
		}
		/* Where the reference asserts that the message and the inherit
		 * agree, the message's boost follows the inherit instead. */
		inherit_donating = inherit->donating;
		inherit->externcnt++;
		if (inherit_donating)
			t->externcnt++;
	} else {
		created = true;
		if (dormant) {
			/* the one freed last, still linked: takes our references */
			inherit = dormant;
			imp__inherit_revive(d, inherit);
		} else {
			inherit = spare;
			*spare_used = true;
			/* every field: spares come from the free list uncleared */
			inherit->elem.type = IMP__ELEM_INHERIT;
			inherit->elem.voucher = NULL;
			imp__voucher_slot_init(d, &inherit->elem);
			inherit->depth = depth;
			inherit->to_task = t;
			inherit->dormant = false;
			imp__inherit_link(inherit, from); /* takes our reference on from */
			TAILQ_INSERT_TAIL(&d->all_inherits, inherit, all_link);
			d->n_inherits++;
		}
		imp__inherit_start(d, inherit, t, msg_donating);
		inherit_donating = msg_donating;
		imp__trace(d, IMP_TRACE_INHERIT_CREATE, self->pid, imp__elem_pid(from), depth, 0);
	}

out:
	msg_donating = msg->raised;
	imp__msg_unlink(msg);
	if (!created) {
		/* the message's reference (or our own on a static source) and
		 * ours on the task were not handed to a new inherit */
		if (from)
			imp__elem_release(d, from);
		if (t)
			imp__elem_release(d, &t->elem);
	}

	if (inherit && msg_donating && !inherit_donating) {
		/* the inherit does not donate: the message's boost goes */
		imp__port_delta(d, port, -1);
	} else if (inherit && !msg_donating && inherit_donating) {
		/* the inherit donates the extra boost it just took */
		imp__hold_internal_locked(d, t, 1);
	} else if (msg_donating) {
		if (inherit)
			imp__port_impcount_delta(port, -1); /* moved to the inherit */
		else
			imp__port_delta(d, port, -1);
	} else if (cleared_self_donation) {
		imp__port_delta(d, port, -1);
	}
	msg->raised = inherit != NULL;
	return inherit;
}

/* The legacy (voucherless) receive: the boost becomes the receiver's
 * responsibility as a legacy external assertion. */
static void imp__receive_legacy(imp_domain *d, struct imp_msg *msg, struct imp_task *self)
{
	struct imp__elem *elem = imp__msg_unlink(msg);
	struct imp__task_elem *t = self->imp;

	if (elem)
		imp__elem_release(d, elem);
	if (!msg->raised)
		return;
	imp__port_impcount_delta(msg->port, -1);
	if (t && t->task && imp__is_any_receiver(t)) {
		t->legacy_externcnt++;
		t->externcnt++;
	} else {
		msg->raised = false; /* the boost never applied to the task */
	}
}

/* Whether a voucher receive of msg would revive its receiver's dormant
 * inherit rather than make one, so that it needs no spare: a message
 * linked to a task element inherits from it at depth 1, and a dormant
 * inherit with that key means no live one has it. */
static bool imp__receive_revives(const struct imp_msg *msg)
{
	const struct imp__task_elem *t = msg->port->owner->imp;

	return msg->importance && msg->importance->type == IMP__ELEM_TASK && t && t->dormant &&
	       t->dormant->from_elem == msg->importance && t->dormant->depth == 1;
}

/*
 * The common voucher receive, whole: a queued message that revives
 * (imp__receive_revives) on a receiver that is active, still takes boosts
 * and did not send it (a static boost's inherit is from its receiver, and
 * may be the dormant one; a task never inherits from itself).  These are
 * imp__inherit_from's steps for that case, each condition tested once.  The
 * message's reference on its source and one on the receiver's element go
 * to the revived inherit, the message's boost (if raised) moves from the
 * port to it, and the received voucher, made in the inherit's slot,
 * replaces the one sent.  The caller holds the lock and the queue's
 * reference, which this drops.
 */
static struct imp_voucher *imp__receive_revive(imp_domain *d, struct imp_msg *msg)
{
	struct imp_port *port = msg->port;
	struct imp_task *self = port->owner;
	struct imp__task_elem *t = self->imp;
	struct imp__task_elem *from = (struct imp__task_elem *)msg->importance;
	struct imp__inherit *inherit = t->dormant;
	struct imp_voucher *received, *sent;
	bool donating = msg->raised;

	imp__msg_dequeue(msg, IMP_MSG_RECEIVED);
	imp__elem_ref(&t->elem);
	imp__inherit_revive(d, inherit);
	imp__inherit_start(d, inherit, t, donating);
	imp__trace(d, IMP_TRACE_INHERIT_CREATE, self->pid, from->task ? from->task->pid : -1, 1, 0);
	TAILQ_REMOVE(&from->kmsgs, msg, imp_link);
	msg->importance = NULL;
	if (donating)
		imp__port_impcount_delta(port, -1); /* moved to the inherit */
	msg->raised = true;

	received = imp__voucher_make(d, &inherit->elem, &inherit->voucher_slot);
	sent = msg->voucher;
	msg->voucher = received;
	if (sent)
		imp__voucher_unref_locked(d, sent);
	msg->voucher = NULL;
	imp__msg_unref_locked(d, msg); /* the queue's reference */
	return received;
}

int imp_msg_receive(imp_msg *msg, unsigned flags, imp_voucher **voucher_out)
{
	imp_domain *d;
	struct imp__inherit *spare_inherit = NULL;
	struct imp_task *self;
	bool want_voucher, used = false;
	int r;

	IMP__CHECK_ARG(msg, "imp_msg_receive: NULL message");
	IMP__CHECK_ARG(!(flags & ~(IMP_RECV_VOUCHER | IMP_RECV_COPYOUT_FAILED)),
		       "imp_msg_receive: unknown flags 0x%x", flags);
	want_voucher = flags & IMP_RECV_VOUCHER;
	IMP__CHECK_ARG(!want_voucher || voucher_out,
		       "imp_msg_receive: IMP_RECV_VOUCHER needs voucher_out");
	if (voucher_out)
		*voucher_out = NULL;
	d = msg->domain;
	if ((r = imp__lock(d)) < 0)
		return r;
	if (want_voucher && !(flags & IMP_RECV_COPYOUT_FAILED) && msg->state == IMP_MSG_QUEUED &&
	    imp__receive_revives(msg) && msg->port->owner->active &&
	    imp__is_any_receiver(msg->port->owner->imp) &&
	    msg->importance != &msg->port->owner->imp->elem) {
		*voucher_out = imp__receive_revive(d, msg);
		imp__unlock(d);
		return 0;
	}
	if (want_voucher && (msg->importance || msg->raised) && !imp__receive_revives(msg)) {
		/* Everything the receive may need, before anything changes.  A
		 * message without importance cannot gain any once sent (only
		 * linked messages are raised), so it needs none. */
		spare_inherit = imp__cache_take(d, &d->inherit_cache);
		if (!spare_inherit) {
			r = imp__error(-ENOMEM, "imp_msg_receive: out of memory");
			goto unlock;
		}
	}
	if (msg->state != IMP_MSG_QUEUED) {
		r = imp__error(-EALREADY, "imp_msg_receive: message is not queued (%s)",
			       msg->state == IMP_MSG_RECEIVED ? "already received" : "destroyed");
		goto unlock;
	}
	self = msg->port->owner;
	imp__msg_dequeue(msg, IMP_MSG_RECEIVED);

	if (want_voucher) {
		struct imp__inherit *inherit;
		struct imp_voucher *received = NULL, *sent;

		inherit = imp__inherit_from(d, msg, self, spare_inherit, &used);
		if (used)
			spare_inherit = NULL;
		if (inherit)
			received = imp__voucher_for_value(d, &inherit->elem);
		/* the received voucher replaces the sent one, made first */
		sent = msg->voucher;
		msg->voucher = received;
		if (sent)
			imp__voucher_unref_locked(d, sent);
	} else {
		imp__receive_legacy(d, msg, self);
	}

	if (flags & IMP_RECV_COPYOUT_FAILED) {
		/* ipc_importance_unreceive, with the message's voucher still
		 * aboard: a legacy boost is given back only without one. */
		if (msg->raised) {
			msg->raised = false;
			if (!msg->voucher && self->imp)
				imp__drop_legacy_locked(d, self->imp, 1);
		}
		imp__msg_drop_voucher(d, msg);
	} else if (want_voucher) {
		*voucher_out = msg->voucher;
		msg->voucher = NULL;
	} else {
		imp__msg_drop_voucher(d, msg);
	}
	imp__msg_unref_locked(d, msg); /* the queue's reference */
	r = 0;
unlock:
	imp__cache_put(d, &d->inherit_cache, spare_inherit);
	imp__unlock(d);
	return r;
}

int imp_msg_destroy(imp_msg *msg)
{
	imp_domain *d;
	int r;

	IMP__CHECK_ARG(msg, "imp_msg_destroy: NULL message");
	d = msg->domain;
	if ((r = imp__lock(d)) < 0)
		return r;
	if (msg->state != IMP_MSG_QUEUED) {
		imp__unlock(d);
		return imp__error(-EALREADY, "imp_msg_destroy: message is not queued");
	}
	imp__msg_destroy_locked(d, msg);
	imp__unlock(d);
	return 0;
}

imp_msg *imp_msg_ref(imp_msg *msg)
{
	if (msg) {
		imp__lock_any(msg->domain);
		msg->refs++;
		pthread_mutex_unlock(&msg->domain->lock);
	}
	return msg;
}

void imp_msg_unref(imp_msg *msg)
{
	imp_domain *d;

	if (!msg)
		return;
	d = msg->domain;
	imp__lock_any(d);
	imp__msg_unref_locked(d, msg);
	pthread_mutex_unlock(&d->lock);
}

void imp_msg_set_userdata(imp_msg *msg, void *userdata)
{
	if (msg)
		msg->userdata = userdata;
}

void *imp_msg_get_userdata(const imp_msg *msg)
{
	return msg ? msg->userdata : NULL;
}

int imp_msg_get_info(imp_msg *msg, imp_msg_info *info)
{
	IMP__CHECK_ARG(msg && info, "imp_msg_get_info: NULL argument");
	imp__lock_any(msg->domain);
	info->state = msg->state;
	info->raised = msg->raised;
	info->linked = msg->importance != NULL;
	info->sender = msg->sender;
	info->sender_pid = msg->sender->pid;
	info->port = msg->port;
	pthread_mutex_unlock(&msg->domain->lock);
	return 0;
}
