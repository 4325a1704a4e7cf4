/*
 * Importance elements: references, linking onto propagation lists, and
 * freeing.  A task element is referenced by its task (until disconnect),
 * by every message and inherit linked to it, by its made references (one
 * reference stands for all of them, as in the reference) and by the update
 * queues it sits on.  An inherit is referenced by its made references, by
 * the messages and inherits linked to it.  Freeing an inherit releases the
 * element it came from and its to-task, which may free in turn.
 */
#include <string.h>

#include "internal.h"

struct imp__task_elem *imp__elem_link_task(struct imp__elem *elem)
{
	if (elem->type == IMP__ELEM_INHERIT)
		return ((struct imp__inherit *)elem)->to_task;
	return (struct imp__task_elem *)elem;
}

int imp__elem_pid(struct imp__elem *elem)
{
	struct imp__task_elem *t = imp__elem_link_task(elem);

	return t->task ? t->task->pid : -1;
}

void imp__task_elem_fill_info(const struct imp__task_elem *t, imp_task_info *info)
{
	info->receiver = t->receiver;
	info->denap_receiver = t->denap;
	info->donor_marked = t->donor;
	info->live_donor_marked = t->live_donor;
	info->is_donor = imp__is_donor(t);
	info->assertcnt = t->assertcnt;
	info->externcnt = t->externcnt;
	info->externdrop = t->externdrop;
	info->legacy_externcnt = t->legacy_externcnt;
	info->legacy_externdrop = t->legacy_externdrop;
	info->extern_boosts = IMP__TASK_EXTERN(t);
	info->legacy_boosts = IMP__TASK_LEGACY(t);
	info->filelocks = t->filelocks;
	info->transitions = t->transitions;
}

struct imp__task_elem *imp__task_elem_new(imp_domain *d, imp_task *task)
{
	struct imp__task_elem *t = imp__alloc(d, sizeof(*t));

	if (!t)
		return NULL;
	t->elem.type = IMP__ELEM_TASK;
	t->elem.refs = 1; /* the task's reference */
	t->elem.id = d->next_elem_id++;
	TAILQ_INIT(&t->kmsgs);
	TAILQ_INIT(&t->inherits);
	TAILQ_INIT(&t->inbound);
	t->task = task;
	t->owner = task;
	imp__voucher_slot_init(d, &t->elem);
	TAILQ_INSERT_TAIL(&d->all_task_elems, t, all_link);
	d->n_task_elems++;
	return t;
}

void imp__msg_link(struct imp_msg *msg, struct imp__elem *elem)
{
	struct imp__task_elem *on = imp__elem_link_task(elem);

	TAILQ_INSERT_TAIL(&on->kmsgs, msg, imp_link);
	msg->importance = elem;
}

struct imp__elem *imp__msg_unlink(struct imp_msg *msg)
{
	struct imp__elem *elem = msg->importance;

	if (elem) {
		TAILQ_REMOVE(&imp__elem_link_task(elem)->kmsgs, msg, imp_link);
		msg->importance = NULL;
	}
	return elem;
}

/* Links a new inherit from elem to its to-task (already set). */
void imp__inherit_link(struct imp__inherit *inherit, struct imp__elem *elem)
{
	struct imp__task_elem *on = imp__elem_link_task(elem);

	TAILQ_INSERT_TAIL(&on->inherits, inherit, link);
	on->n_inherits++;
	TAILQ_INSERT_TAIL(&inherit->to_task->inbound, inherit, to_link);
	inherit->to_task->n_inbound++;
	inherit->from_elem = elem;
}

/*
 * The inherit from `from` to `to` at `depth`, if there is one.  Both ends
 * index it: the list the from side's boosts flow on, and the to-task's
 * inbound list.  A donor feeding many receivers has a long first list and
 * each receiver a short second one; a receiver fed by many donors the
 * opposite; so the shorter one is searched, which keeps a fan-out to n
 * receivers (or a fan-in from n donors) linear in n.
 */
struct imp__inherit *imp__inherit_find(struct imp__elem *from, struct imp__task_elem *to, uint32_t depth)
{
	struct imp__task_elem *on = imp__elem_link_task(from);
	struct imp__inherit *i;

	if (on->n_inherits <= to->n_inbound) {
		TAILQ_FOREACH(i, &on->inherits, link)
			if (i->from_elem == from && i->to_task == to && i->depth == depth && !i->dormant)
				return i;
	} else {
		TAILQ_FOREACH(i, &to->inbound, to_link)
			if (i->from_elem == from && i->depth == depth && !i->dormant)
				return i;
	}
	return NULL;
}

/*
 * Dormant inherits.  The common voucher pattern (a donor's message
 * received with a voucher, the voucher released) makes and frees one
 * inherit per message; the one freed is left linked, dormant, and the next
 * receive from the same source to the same task revives it, which saves
 * unlinking it from three lists and linking it again.  A dormant inherit
 * must be indistinguishable from a freed one: it holds no references and
 * no counts, every walk skips it, and on revival it moves to the tail of
 * its lists (where a new one would go) and takes a new id.  The lists'
 * lengths (n_inherits, n_inbound, the domain's n_inherits) count it, so
 * that going to sleep and reviving change no length: what is reported
 * counts live inherits (the domain's n_inherits - n_dormant, a task's
 * imp__live_inbound).  Only inherits from a task element go dormant, at
 * most one per to-task: so both ends know theirs and free them (reap)
 * when they are freed themselves.
 */
void imp__inherit_reap(imp_domain *d, struct imp__inherit *inherit)
{
	struct imp__task_elem *from = (struct imp__task_elem *)inherit->from_elem;
	struct imp__task_elem *to = inherit->to_task;

	TAILQ_REMOVE(&from->inherits, inherit, link);
	TAILQ_REMOVE(&to->inbound, inherit, to_link);
	to->dormant = NULL;
	from->n_inherits--;
	to->n_inbound--;
	TAILQ_REMOVE(&d->all_inherits, inherit, all_link);
	d->n_inherits--;
	d->n_dormant--;
	imp__cache_put(d, &d->inherit_cache, inherit);
}

/* Makes the to-task's dormant inherit live again, with no counts yet: the
 * caller sets them as for a new inherit, whose references (on its source
 * and on its to-task) it hands over. */
void imp__inherit_revive(imp_domain *d, struct imp__inherit *inherit)
{
	struct imp__task_elem *from = (struct imp__task_elem *)inherit->from_elem;
	struct imp__task_elem *to = inherit->to_task;

	to->dormant = NULL;
	inherit->dormant = false;
	d->n_dormant--;
	if (TAILQ_NEXT(inherit, link)) {
		TAILQ_REMOVE(&from->inherits, inherit, link);
		TAILQ_INSERT_TAIL(&from->inherits, inherit, link);
	}
	if (TAILQ_NEXT(inherit, to_link)) {
		TAILQ_REMOVE(&to->inbound, inherit, to_link);
		TAILQ_INSERT_TAIL(&to->inbound, inherit, to_link);
	}
	if (TAILQ_NEXT(inherit, all_link)) {
		TAILQ_REMOVE(&d->all_inherits, inherit, all_link);
		TAILQ_INSERT_TAIL(&d->all_inherits, inherit, all_link);
	}
}

static void imp__task_elem_free(imp_domain *d, struct imp__task_elem *t)
{
	imp_task *owner = t->owner;
	struct imp__inherit *i, *next;

	/* what is left on our lists is dormant: no live inherit outlives
	 * either of its ends */
	if (t->dormant)
		imp__inherit_reap(d, t->dormant);
	for (i = TAILQ_FIRST(&t->inherits); i; i = next) {
		next = TAILQ_NEXT(i, link);
		if (i->dormant)
			imp__inherit_reap(d, i);
	}
	if (owner) {
		memset(&owner->snapshot, 0, sizeof(owner->snapshot));
		imp__task_elem_fill_info(t, &owner->snapshot);
		owner->has_snapshot = true;
		owner->former_imp = NULL;
		if (owner->imp == t)
			owner->imp = NULL;
	}
	TAILQ_REMOVE(&d->all_task_elems, t, all_link);
	d->n_task_elems--;
	imp__free(d, t);
}

/* The release of what may be an element's last reference: frees it and,
 * for an inherit, releases what it held in turn. */
void imp__elem_release_last(imp_domain *d, struct imp__elem *elem)
{
	/* Iterative: an inherit chain may be long (depth resets let it grow
	 * past III_DEPTH_MAX through task elements). */
	while (elem) {
		struct imp__inherit *inherit;
		struct imp__elem *from;
		struct imp__task_elem *to, *on;

		if (elem->refs == 0) {
			d->broken = true; /* underflow: the verifier reports it */
			return;
		}
		if (--elem->refs > 0)
			return;

		if (elem->type == IMP__ELEM_TASK) {
			imp__task_elem_free(d, (struct imp__task_elem *)elem);
			return;
		}

		inherit = (struct imp__inherit *)elem;
		to = inherit->to_task;
		from = inherit->from_elem;
		if (inherit->donating) {
			/* Cannot happen through the API (release_value clears it
			 * first); keep the to-task's counts whole regardless. */
			to->externcnt -= inherit->externcnt;
			to->externdrop -= inherit->externdrop;
			inherit->donating = false;
		}
		if (from->type == IMP__ELEM_TASK) {
			/* left linked, dormant; releases its to-task and source,
			 * two task elements: no recursion */
			imp__inherit_sleep(d, inherit);
			return;
		}
		on = imp__elem_link_task(from);
		TAILQ_REMOVE(&on->inherits, inherit, link);
		on->n_inherits--;
		TAILQ_REMOVE(&to->inbound, inherit, to_link);
		to->n_inbound--;
		imp__trace(d, IMP_TRACE_INHERIT_FREE, to->task ? to->task->pid : -1, -1, 0, 0);
		TAILQ_REMOVE(&d->all_inherits, inherit, all_link);
		d->n_inherits--;
		imp__cache_put(d, &d->inherit_cache, inherit);
		/* a task element: no recursion; freeing it reaps the dormant */
		imp__elem_release(d, &to->elem);
		elem = from;
	}
}
