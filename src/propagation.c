/*
 * Propagation of boosts and drops.
 *
 * The model
 * ---------
 * A task element counts the reasons its task is important in `assertcnt`.
 * Some of those reasons are "external": they are held on the task's behalf
 * by inherits (voucher boosts) or by the task itself after a legacy receive;
 * `externcnt - externdrop` counts them, and the legacy part is counted again
 * in `legacy_externcnt - legacy_externdrop`.  A receiver with assertcnt > 0
 * is boosted and is itself a donor: every message it has sent that is still
 * queued, and every inherit made from it, passes the boost on.
 *
 * Edges
 * -----
 * Only an edge matters: 0 -> 1 (a boost) and 1 -> 0 (a drop) of assertcnt.
 * imp__check_transition() changes the count and reports whether it crossed
 * the edge.  When it did, the task's policy must be updated (updatepolicy),
 * unless an update is already pending on a queue: a pending update on a
 * caller's update queue is simply cancelled (the new edge reverses it), and
 * a task on the delayed-drop queue stays there, so that a de-nap receiver
 * that is boosted again within its hysteresis sees no policy change at all.
 *
 * Walking downstream
 * ------------------
 * imp__propagate() runs breadth first over a local FIFO of task elements,
 * each holding a reference while queued.  For every task taken from it that
 * is a plain receiver and not a marked donor, propagate_helper() visits:
 *   - its linked messages: a message carries a boost iff its RAISEIMP bit is
 *     set, so on a boost the bit is set on every message that lacks it and
 *     the destination port's count goes up by one (on a drop, the reverse);
 *     the port's owner then gains or loses one internal assertion;
 *   - its inherits: an inherit with external boosts left either donates
 *     them all to its to-task or none; on a boost it starts donating (the
 *     to-task's extern counts grow by the inherit's), on a drop it stops.
 *     A dormant inherit (internal.h) has none and is passed over.
 * Every task that crosses its own edge on the way is appended to the FIFO,
 * so the walk goes as deep as the edges go and stops where a task was
 * already boosted (or still is).  Each task crosses at most one edge per
 * walk, so the walk is linear in the messages and inherits it visits.
 *
 * Applying policy
 * ---------------
 * Tasks that need an update are collected on a local update queue, boosts
 * in the order found and drops in reverse order (so that a drop is applied
 * downstream first, as the reference does), and process_updates() applies
 * them.  The importance lock (domain->lock) is held throughout the walk; it
 * is dropped only around each policy callback, while domain->apply_lock is
 * held.  apply_lock is the reference's task lock: it is taken with a
 * try-lock while the importance lock is held; when that fails the task
 * goes to a private second-chance queue and the thread waits for the
 * apply_lock without the importance lock, so the two are never waited for
 * in the wrong order.  While the importance lock is dropped, another thread
 * may reverse a pending update by taking the task off whichever update
 * queue it is on (check_transition does that): the queues are always
 * reachable from the task (updateq) for exactly this reason.
 *
 * The delayed drop
 * ----------------
 * A de-nap receiver whose voucher boost is dropped is put on the domain's
 * delayed-drop queue, stamped with the time.  One timer call serves the
 * whole queue: it is armed for the first entry's time + 1100 ms and, when it
 * runs, applies every entry stamped up to that deadline, skipping the tasks
 * that are boosted again (or gone); if entries are left it re-arms for the
 * new first one.  Because a task moves to the tail with a new stamp when
 * it drops again, a task queued after the first one is still handled by the
 * first call: the hysteresis is "at least 1100 ms after the first drop of
 * the batch", as in the reference.
 *
 * The voucher pair
 * ----------------
 * The pattern every voucher server repeats (a donor's message received with
 * a voucher, the voucher released once the work is done) crosses no edge
 * while the receiver stays boosted.  The send is direct as it is: it links
 * the message to the donor's element, raises it and its port, and gives the
 * receiver one internal assertion (imp__check_transition's inline case).
 * The receive and the release have straight paths of their own, each
 * condition tested once.  The receive revives the receiver's dormant
 * inherit from that donor (imp__receive_revive in message.c), moves the
 * message's boost from the port to it (the receiver's extern count grows,
 * its assertion count does not change) and makes the voucher in the
 * inherit's slot.  The release takes the boost back from the receiver (one
 * assertion dropped, again the inline case) and puts the inherit back to
 * sleep (imp__inherit_sleep).  An edge on the way is taken as always
 * (imp__check_edge, then imp__propagate).  A receive the straight path does
 * not cover (a live inherit with the key, a message linked to an inherit, a
 * static boost, a failed copy-out) goes through imp__inherit_from; the
 * release of an inherit that others still reference, or that came from an
 * inherit, through imp__elem_release_last.
 *
 * Differences from the reference, on purpose
 * ------------------------------------------
 *  - Tasks queued for propagation hold a reference that is released after
 *    they are processed (the reference leaked it).
 *  - An over-release of internal assertions never wraps: when the task
 *    holds fewer non-external assertions than asked, only those go.
 */
#include "internal.h"

bool imp__is_receiver(const struct imp__task_elem *t)
{
	return t && t->receiver;
}

bool imp__is_any_receiver(const struct imp__task_elem *t)
{
	return t && (t->receiver || t->denap);
}

bool imp__is_donor(const struct imp__task_elem *t)
{
	return t && (t->donor || (t->receiver && t->assertcnt > 0));
}

bool imp__is_never_donor(const struct imp__task_elem *t)
{
	return t && !t->donor && !t->live_donor && !t->receiver;
}

static void imp__updateq_remove(imp_domain *d, struct imp__task_elem *t)
{
	TAILQ_REMOVE(t->updateq, t, update_link);
	if (t->updateq == &d->delayed_queue)
		d->n_delayed--;
	t->updateq = NULL;
}

static void imp__updateq_insert(imp_domain *d, struct imp__task_elem *t,
				struct imp__task_elem_list *q, bool at_head)
{
	if (at_head)
		TAILQ_INSERT_HEAD(q, t, update_link);
	else
		TAILQ_INSERT_TAIL(q, t, update_link);
	if (q == &d->delayed_queue)
		d->n_delayed++;
	t->updateq = q;
}

static int imp__task_pid_of(const struct imp__task_elem *t)
{
	return t->task ? t->task->pid : -1;
}

/* imp__check_transition's general case (internal.h has the common one). */
bool imp__check_edge(imp_domain *d, struct imp__task_elem *t, bool hold, uint32_t delta)
{
	bool before, after;

	if (!imp__is_any_receiver(t))
		return false;

	before = t->assertcnt > 0;
	if (hold) {
		t->assertcnt += delta;
		imp__trace(d, IMP_TRACE_ASSERT_HOLD, imp__task_pid_of(t), -1, delta, t->assertcnt);
	} else {
		uint32_t ext = IMP__TASK_EXTERN(t);
		uint32_t internal = t->assertcnt > ext ? t->assertcnt - ext : 0;

		if (delta > internal) {
			/* Over-release of kernel-internal assertions: the
			 * reference logs it and keeps the external ones. */
			imp__trace(d, IMP_TRACE_OVER_RELEASE, imp__task_pid_of(t), -1, delta, internal);
			t->assertcnt -= internal;
		} else {
			t->assertcnt -= delta;
		}
		imp__trace(d, IMP_TRACE_ASSERT_DROP, imp__task_pid_of(t), -1, delta, t->assertcnt);
	}
	after = t->assertcnt > 0;

	if (after == before)
		return false;

	if (t->updateq) {
		/* The new edge reverses a pending update, unless the task waits
		 * out its hysteresis: then it stays queued and the delayed call
		 * decides. */
		if (t->updateq != &d->delayed_queue) {
			imp__updateq_remove(d, t);
			imp__elem_release(d, &t->elem);
		}
	} else {
		t->updatepolicy = 1;
	}
	return true;
}

static void imp__prop_enqueue(imp_domain *d, struct imp__task_elem_list *prop,
			      struct imp__task_elem *t)
{
	/* The caller donates a reference. */
	if (t->on_prop) {
		imp__elem_release(d, &t->elem);
		return;
	}
	t->on_prop = 1;
	TAILQ_INSERT_TAIL(prop, t, prop_link);
}

static void imp__propagate_helper(imp_domain *d, struct imp__task_elem *t, bool hold,
				  struct imp__task_elem_list *prop)
{
	struct imp_msg *m;
	struct imp__inherit *i;

	TAILQ_FOREACH(m, &t->kmsgs, imp_link) {
		struct imp__task_elem *dest;

		if (m->raised == hold)
			continue;
		m->raised = hold;
		dest = imp__port_delta_internal(m->port, hold ? 1 : -1);
		if (!dest)
			continue;
		if (imp__check_transition(d, dest, hold, 1))
			imp__prop_enqueue(d, prop, dest);
		else
			imp__elem_release(d, &dest->elem);
	}

	TAILQ_FOREACH(i, &t->inherits, link) {
		struct imp__task_elem *to = i->to_task;
		uint32_t boosts = IMP__INHERIT_EXTERN(i);

		if (boosts == 0 || i->donating == hold)
			continue;
		i->donating = hold;
		if (hold) {
			to->externcnt += i->externcnt;
			to->externdrop += i->externdrop;
		} else {
			to->externcnt -= i->externcnt;
			to->externdrop -= i->externdrop;
		}
		if (imp__check_transition(d, to, hold, boosts)) {
			imp__elem_ref(&to->elem);
			imp__prop_enqueue(d, prop, to);
		}
	}
}

/*
 * Applies the policy updates queued on `queue` (entries stamped up to
 * max_time), each holding a reference.  Entered and left with the
 * importance lock held; drops it around each policy callback.
 */
static void imp__process_updates(imp_domain *d, struct imp__task_elem_list *queue,
				 bool boost, uint64_t max_time)
{
	struct imp__task_elem_list second_chance;
	struct imp__task_elem_list *q = queue;

	TAILQ_INIT(&second_chance);
retry:
	while (!TAILQ_EMPTY(q)) {
		struct imp__task_elem *t = TAILQ_FIRST(q);
		imp_task *task;
		imp_policy_event ev;

		if (t->updatetime > max_time)
			break;
		imp__updateq_remove(d, t);
		task = t->task;

		/* disconnected on its way out */
		if (!task) {
			imp__elem_release(d, &t->elem);
			continue;
		}
		/* boosted again while it waited out the hysteresis */
		if (t->assertcnt > 0 && q == &d->delayed_queue) {
			imp__elem_release(d, &t->elem);
			continue;
		}
		if (!d->policy) {
			/* nobody to tell: record the update, keep the lock */
			if (task->active) {
				if (boost)
					t->transitions++;
				atomic_store(&task->boosted, boost);
				imp__trace(d, IMP_TRACE_POLICY, task->pid, -1, boost, t->assertcnt);
			}
			imp__elem_release(d, &t->elem);
			continue;
		}
		if (pthread_mutex_trylock(&d->apply_lock) != 0) {
			bool wait = (q == &second_chance);

			/* Someone is applying an update.  Retry from a private
			 * queue; on the second miss, wait for them without the
			 * importance lock. */
			imp__updateq_insert(d, t, &second_chance, wait);
			d->unsettled++;
			pthread_mutex_unlock(&d->lock);
			if (wait) {
				pthread_mutex_lock(&d->apply_lock);
				pthread_mutex_unlock(&d->apply_lock);
			}
			pthread_mutex_lock(&d->lock);
			d->unsettled--;
			continue;
		}
		/* exiting: no more policy for it */
		if (!task->active) {
			pthread_mutex_unlock(&d->apply_lock);
			imp__elem_release(d, &t->elem);
			continue;
		}
		task->refs++;
		if (boost)
			t->transitions++;
		imp__trace(d, IMP_TRACE_POLICY, task->pid, -1, boost, t->assertcnt);
		ev.task = task;
		ev.pid = task->pid;
		ev.boosted = boost;
		ev.time_ns = imp__now(d);
		d->unsettled++;
		pthread_mutex_unlock(&d->lock);

		atomic_store(&task->boosted, boost);
		if (d->policy) {
			imp__set_in_policy_callback(true);
			d->policy(&ev, d->policy_ctx);
			imp__set_in_policy_callback(false);
		}

		pthread_mutex_lock(&d->lock);
		d->unsettled--;
		imp__elem_release(d, &t->elem);
		imp__task_unref_locked(d, task);
		pthread_mutex_unlock(&d->apply_lock);
	}

	if (!TAILQ_EMPTY(&second_chance)) {
		q = &second_chance;
		goto retry;
	}
}

void imp__propagate(imp_domain *d, struct imp__task_elem *t, bool hold, bool update_self)
{
	struct imp__task_elem_list prop, updates;

	TAILQ_INIT(&prop);
	TAILQ_INIT(&updates);

	if (update_self) {
		imp__elem_ref(&t->elem);
		imp__prop_enqueue(d, &prop, t);
	} else {
		imp__propagate_helper(d, t, hold, &prop);
	}

	while (!TAILQ_EMPTY(&prop)) {
		struct imp__task_elem *cur = TAILQ_FIRST(&prop);
		bool need_update;

		TAILQ_REMOVE(&prop, cur, prop_link);
		cur->on_prop = 0;

		/* a marked donor's boost does not depend on what it receives */
		if (!cur->donor && cur->receiver)
			imp__propagate_helper(d, cur, hold, &prop);

		need_update = cur->updatepolicy;
		cur->updatepolicy = 0;
		/* A task already on a queue can only be on the delayed-drop
		 * queue here: the delayed call will settle it. */
		if (need_update && cur->task && !cur->updateq) {
			cur->updatetime = 0;
			imp__elem_ref(&cur->elem);
			imp__updateq_insert(d, cur, &updates, !hold);
		}
		imp__elem_release(d, &cur->elem);
	}

	if (!TAILQ_EMPTY(&updates))
		imp__process_updates(d, &updates, hold, 0);
}

int imp__drop_legacy_locked(imp_domain *d, struct imp__task_elem *t, uint32_t count)
{
	if (count > IMP__TASK_LEGACY(t)) {
		imp__trace(d, IMP_TRACE_LEGACY_MISUSE, imp__task_pid_of(t), -1, count,
			   IMP__TASK_LEGACY(t));
		return IMP_KERN_FAILURE;
	}
	t->legacy_externdrop += count;
	t->externdrop += count;
	if (IMP__TASK_LEGACY(t) == 0) {
		/* the last legacy boost is gone: rebase the counters */
		if (IMP__TASK_EXTERN(t) != 0) {
			t->externcnt -= t->legacy_externcnt;
			t->externdrop -= t->legacy_externdrop;
		} else {
			t->externcnt = 0;
			t->externdrop = 0;
		}
		t->legacy_externcnt = 0;
		t->legacy_externdrop = 0;
	}
	imp__drop_internal_locked(d, t, count);
	return IMP_KERN_SUCCESS;
}

void imp__reset_locked(imp_domain *d, struct imp__task_elem *t, bool donor)
{
	bool before = imp__is_donor(t);
	uint32_t legacy = IMP__TASK_LEGACY(t);

	if (donor)
		t->donor = 0;
	t->externcnt -= t->legacy_externcnt;
	t->externdrop -= t->legacy_externdrop;
	if (legacy < t->assertcnt)
		t->assertcnt -= legacy;
	else
		t->assertcnt = 0;
	t->legacy_externcnt = 0;
	t->legacy_externdrop = 0;

	/* The task's own policy is left alone; downstream loses what this
	 * task no longer donates. */
	if (imp__is_donor(t) != before)
		imp__propagate(d, t, false, false);
}

void imp__delayed_drop(imp_domain *d, struct imp__task_elem *t)
{
	uint64_t now = imp__now(d);

	if (t->updateq)
		imp__updateq_remove(d, t); /* keep the queue's reference */
	else
		imp__elem_ref(&t->elem);
	t->updatetime = now;
	imp__updateq_insert(d, t, &d->delayed_queue, false);

	if (!d->delayed_requested) {
		d->delayed_deadline = now + IMP_DENAP_DROP_DELAY_NS;
		d->delayed_requested = true;
		pthread_cond_broadcast(&d->timer_cond);
	}
	imp__trace(d, IMP_TRACE_DELAYED_QUEUE, imp__task_pid_of(t), -1,
		   (uint32_t)(d->delayed_deadline / 1000000ull), 0);
}

int imp_domain_run_timers(imp_domain *d)
{
	int r;

	IMP__CHECK_ARG(d, "imp_domain_run_timers: NULL domain");
	if ((r = imp__lock(d)) < 0)
		return r;
	if (!d->delayed_requested || imp__now(d) < d->delayed_deadline) {
		imp__unlock(d);
		return 0;
	}
	imp__trace(d, IMP_TRACE_DELAYED_RUN, -1, -1, (uint32_t)d->n_delayed, 0);
	imp__process_updates(d, &d->delayed_queue, false, d->delayed_deadline);

	if (!TAILQ_EMPTY(&d->delayed_queue)) {
		d->delayed_deadline = TAILQ_FIRST(&d->delayed_queue)->updatetime +
				      IMP_DENAP_DROP_DELAY_NS;
		pthread_cond_broadcast(&d->timer_cond);
	} else {
		d->delayed_requested = false;
	}
	imp__unlock(d);
	return 1;
}
