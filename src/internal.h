/*
 * Internal object model of libimportance.  Public names start with imp_,
 * internal ones with imp__.
 *
 * Two kinds of importance element exist, as in the reference:
 *  - a task element (struct imp__task_elem), one per task, which carries the
 *    task's assertion counts and the two lists through which boosts flow on:
 *    the messages it has sent that are still queued (kmsgs) and the inherits
 *    made from it (inherits);
 *  - an inherit (struct imp__inherit), made when a receiver takes a message
 *    with a voucher: it represents "to_task is boosted because from_elem
 *    was", and is itself the value the receiver's voucher holds.
 * Messages and inherits linked to an inherit are kept on that inherit's
 * to-task lists, so propagation only ever walks task elements.
 *
 * An inherit from a task element whose last reference goes is not unlinked
 * but left dormant on its three lists (inherits, inbound, all_inherits),
 * with no boosts and no references, as its to-task's `dormant`; the next
 * receive that would make the same inherit (same source, to-task and
 * depth) revives it instead (element.c).  A dormant inherit is invisible:
 * not in stats or graphs, skipped by every walk (only the lists' lengths
 * count it, n_inherits and n_inbound, and the domain's n_inherits beside
 * n_dormant); it is freed for real
 * when another inherit to the same task goes dormant or either end is
 * freed.
 *
 * Locking
 * -------
 * Three mutexes per domain, and a key on every field shared between
 * threads saying what guards it:
 *
 *   (L)  domain->lock, the importance lock: the object graph, every count,
 *        list and reference count, the delayed-drop queue, the trace ring
 *        and the timer thread's state.  Every public call takes it; the
 *        propagation drops it only around a policy callback, with the
 *        operation marked unsettled (domain->unsettled) meanwhile.
 *   (A)  domain->apply_lock, the reference's task lock: held while one
 *        policy update is applied, so the updates of a domain reach the
 *        callback one at a time and in order.
 *   (T)  domain->trace_lock: held by the one thread delivering trace
 *        events, so they reach the callback in order; it guards no field
 *        (the ring itself is (L)).
 *   (I)  immutable: written before the object is shared (creation), read
 *        without a lock.
 *   (U)  the caller's: userdata, set and read without a lock; the library
 *        never reads it.
 *   (@)  atomic: read anywhere; the tag says who writes.
 *
 * Order: apply_lock, then lock; trace_lock, then lock.  The importance
 * lock is never held while waiting for another: with it held, apply_lock
 * is only try-locked, and trace_lock only try-locked without it (see
 * imp__process_updates and imp__trace_flush).
 */
#ifndef IMP_INTERNAL_H
#define IMP_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "importance/importance.h"

#define IMP__DEPTH_MAX 32u
#define IMP__DEPTH_RESET 0x80u
#define IMP__DEPTH_MASK 0x7fu
#define IMP__FILELOCK_MASK 0xffffffu /* iit_filelocks is a 24-bit field */

enum imp__elem_type { IMP__ELEM_TASK = 1, IMP__ELEM_INHERIT = 2 };

struct imp__elem;
struct imp__task_elem;
struct imp__inherit;

TAILQ_HEAD(imp__msg_list, imp_msg);
TAILQ_HEAD(imp__inherit_list, imp__inherit);
TAILQ_HEAD(imp__task_elem_list, imp__task_elem);
TAILQ_HEAD(imp__port_list, imp_port);
TAILQ_HEAD(imp__task_list, imp_task);

/*
 * A voucher object.  Vouchers are deduplicated, so a value (a task element
 * or an inherit) has at most one voucher object at a time, and the object
 * keeps its value alive through a made reference: the object lives inside
 * its value (imp__voucher_slot()) and is never allocated on its own.
 */
struct imp_voucher {
	imp_domain *domain;          /* (I) */
	uint32_t refs;               /* (L) */
	uint32_t made;               /* (L) voucher layer's made count for the value */
	struct imp__elem *value;     /* (L) */
};

struct imp__elem {
	uint32_t refs;             /* (L) */
	uint32_t made;             /* (L) made references handed to vouchers */
	uint8_t type;              /* (I) */
	uint64_t id;               /* (I) stable id for graphs */
	struct imp_voucher *voucher; /* (L) the voucher object holding this
					value: NULL or its slot */
};

/* Every field (L), but for the embedded elem's (I) ones. */
struct imp__task_elem {
	struct imp__elem elem;
	struct imp__msg_list kmsgs;        /* messages linked here or to inherits to us */
	struct imp__inherit_list inherits; /* inherits from us or from inherits to us */
	struct imp__inherit_list inbound;  /* inherits whose to-task we are */
	uint32_t n_inherits, n_inbound;    /* inherits on the two lists above, dormant
					      ones included (imp__live_inbound) */
	struct imp__inherit *dormant;      /* the dormant inherit to us, if any */
	struct imp_task *task;             /* iit_task: NULL once disconnected */
	struct imp_task *owner;            /* weak: the task object, for its snapshot */
	struct imp__task_elem_list *updateq; /* update queue we are on, if any */
	TAILQ_ENTRY(imp__task_elem) update_link;
	TAILQ_ENTRY(imp__task_elem) prop_link;
	TAILQ_ENTRY(imp__task_elem) all_link;
	uint64_t updatetime;
	unsigned receiver : 1, denap : 1, donor : 1, live_donor : 1, updatepolicy : 1;
	unsigned on_prop : 1;
	uint32_t filelocks;
	uint32_t transitions;
	uint32_t assertcnt;
	uint32_t externcnt, externdrop;
	uint32_t legacy_externcnt, legacy_externdrop;
	struct imp_voucher voucher_slot; /* last: propagation never reads it */
};

/* Every field (L), but for the embedded elem's (I) ones. */
struct imp__inherit {
	struct imp__elem elem;
	struct imp__elem *from_elem;     /* holds a reference */
	struct imp__task_elem *to_task;  /* holds a reference */
	TAILQ_ENTRY(imp__inherit) link;  /* on the from side's task list */
	TAILQ_ENTRY(imp__inherit) to_link; /* on the to-task's inbound list */
	TAILQ_ENTRY(imp__inherit) all_link;
	uint32_t externcnt, externdrop;
	uint32_t depth;
	bool donating;
	bool dormant;                    /* freed, kept linked for reuse */
	struct imp_voucher voucher_slot; /* last: propagation never reads it */
};

/* Where the voucher object of a value lives. */
static inline struct imp_voucher *imp__voucher_slot(struct imp__elem *e)
{
	return e->type == IMP__ELEM_TASK ? &((struct imp__task_elem *)e)->voucher_slot
					 : &((struct imp__inherit *)e)->voucher_slot;
}

#define IMP__TASK_EXTERN(t) ((t)->externcnt - (t)->externdrop)
#define IMP__TASK_LEGACY(t) ((t)->legacy_externcnt - (t)->legacy_externdrop)
#define IMP__INHERIT_EXTERN(i) ((i)->externcnt - (i)->externdrop)

struct imp_task {
	imp_domain *domain;        /* (I) */
	uint32_t refs;             /* (L) handles + ports owned + messages sent */
	int pid;                   /* (I) */
	bool active;               /* (L) */
	bool live_donor_state;     /* (L) */
	atomic_bool boosted;       /* (@) written by the thread applying the update:
				      under (A), or under (L) when the domain has
				      no policy callback */
	struct imp__task_elem *imp;        /* (L) task_imp_base */
	struct imp__task_elem *former_imp; /* (L) weak, after disconnect */
	imp_task_info snapshot;            /* (L) values when the element was freed */
	bool has_snapshot;                 /* (L) */
	struct imp__port_list ports;       /* (L) owned ports, creation order */
	TAILQ_ENTRY(imp_task) link;        /* (L) on the domain's list */
	void *userdata;                    /* (U) */
};

struct imp_port {
	imp_domain *domain;         /* (I) */
	uint32_t refs;              /* (L) */
	bool active;                /* (L) */
	bool donate;                /* (I) */
	uint32_t impcount;          /* (L) */
	size_t queued;              /* (L) */
	struct imp_task *owner;     /* (I) holds a task reference */
	struct imp__msg_list queue; /* (L) send order */
	TAILQ_ENTRY(imp_port) owner_link; /* (L) */
	TAILQ_ENTRY(imp_port) link;       /* (L) */
	void *userdata;             /* (U) */
};

struct imp_msg {
	imp_domain *domain;          /* (I) */
	uint32_t refs;               /* (L) */
	imp_msg_state state;         /* (L) */
	bool raised;                 /* (L) MACH_MSGH_BITS_RAISEIMP */
	struct imp__elem *importance; /* (L) ikm_importance, holds a reference */
	struct imp_task *sender;     /* (I) holds a task reference */
	struct imp_port *port;       /* (I) holds a port reference */
	struct imp_voucher *voucher; /* (L) holds a voucher reference */
	TAILQ_ENTRY(imp_msg) imp_link;   /* (L) on a task element's kmsgs */
	TAILQ_ENTRY(imp_msg) queue_link; /* (L) on the port queue */
	TAILQ_ENTRY(imp_msg) link;       /* (L) on the domain's list */
	void *userdata;              /* (U) */
};

#define IMP__TRACE_RING 1024u
#define IMP__CACHE_MAX 256u

/* A free list of same-sized objects (see imp__cache_get); (L). */
struct imp__cache {
	void *head;
	unsigned n;
	size_t size; /* (I) */
};

struct imp_domain {
	pthread_mutex_t lock;       /* (L) the importance lock */
	pthread_mutex_t apply_lock; /* (A) held while a policy update is applied */
	pthread_mutex_t trace_lock; /* (T) held while trace events are delivered */

	/* the configuration, (I) */
	uint64_t (*clock_now)(void *ctx);
	void *clock_ctx;
	void (*policy)(const imp_policy_event *, void *);
	void *policy_ctx;
	void (*trace)(const imp_trace_event *, void *);
	void *trace_ctx;
	imp_allocator allocator;
	bool verify_each_step;

	bool broken;        /* (L) verify_each_step found an inconsistency */
	unsigned unsettled; /* (L) operations paused mid-way (lock dropped for a
			       policy update): counts are not checked meanwhile */

	/* delayed drop (App Nap hysteresis), (L) */
	struct imp__task_elem_list delayed_queue;
	uint64_t delayed_deadline;
	bool delayed_requested;

	/* timer thread: timer_thread is written by the start call under (L)
	 * and joined by the stop call that saw timer_running; timer_cond is
	 * waited on with (L) */
	pthread_t timer_thread;
	pthread_cond_t timer_cond;
	bool timer_running, timer_stop; /* (L) */

	/* all objects, for stats, graphs, verification and teardown, (L) */
	struct imp__task_elem_list all_task_elems;
	struct imp__inherit_list all_inherits;
	struct imp__task_list tasks;
	struct imp__port_list ports;
	struct imp__msg_list msgs;
	size_t n_task_elems, n_inherits, n_vouchers, n_tasks, n_ports, n_msgs, n_delayed;
	size_t n_dormant; /* dormant inherits: on all_inherits, and in n_inherits,
			     which counts every inherit on it */
	uint64_t next_elem_id;

	/* freed inherits kept for the next voucher receive, (L) */
	struct imp__cache inherit_cache;

	/* trace ring, (L): filled by the operations, emptied in batches by the
	 * thread holding (T), which delivers each batch without (L) */
	imp_trace_event trace_ring[IMP__TRACE_RING];
	unsigned trace_head, trace_count;
	uint32_t trace_lost;
};

/* ---- domain.c ---- */
void *imp__alloc(imp_domain *d, size_t size);
void imp__free(imp_domain *d, void *p);
/* lock held; NULL, or an object with stale contents, which the caller
 * initialises field by field (the voucher path does not clear it first) */
void *imp__cache_get(imp_domain *d, struct imp__cache *c);
void *imp__cache_take(imp_domain *d, struct imp__cache *c); /* get, or allocate unlocked */
void imp__cache_put(imp_domain *d, struct imp__cache *c, void *p); /* lock held; NULL-safe */
uint64_t imp__now(imp_domain *d);
int imp__lock(imp_domain *d);     /* -EDEADLK from inside a policy callback */
void imp__lock_any(imp_domain *d); /* getters: allowed from callbacks */
void imp__unlock(imp_domain *d);  /* also verifies (test builds) and flushes the trace */
void imp__trace_record(imp_domain *d, imp_trace_kind kind, int pid, int other_pid,
		       uint32_t value, uint32_t value2) __attribute__((cold));
/* A macro, so that with no trace callback the arguments are not even
 * computed (an inline function's were, before the test): four trace points
 * sit on a voucher pair. */
#define imp__trace(d, kind, pid, other_pid, value, value2)                               \
	do {                                                                             \
		if ((d)->trace)                                                          \
			imp__trace_record(d, kind, pid, other_pid, value, value2);       \
	} while (0)
bool imp__in_policy_callback(void);
void imp__set_in_policy_callback(bool on);

/* ---- error.c ---- */
int imp__error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- element.c ---- */
struct imp__task_elem *imp__elem_link_task(struct imp__elem *elem);
static inline void imp__elem_ref(struct imp__elem *elem)
{
	elem->refs++;
}
void imp__elem_release_last(imp_domain *d, struct imp__elem *elem);
/* Inline for the common case, a reference that is not the last. */
static inline void imp__elem_release(imp_domain *d, struct imp__elem *elem)
{
	if (elem->refs > 1)
		elem->refs--;
	else
		imp__elem_release_last(d, elem);
}
struct imp__task_elem *imp__task_elem_new(imp_domain *d, imp_task *task);
void imp__msg_link(struct imp_msg *msg, struct imp__elem *elem);
struct imp__elem *imp__msg_unlink(struct imp_msg *msg);
void imp__inherit_link(struct imp__inherit *inherit, struct imp__elem *elem);
struct imp__inherit *imp__inherit_find(struct imp__elem *from, struct imp__task_elem *to, uint32_t depth);
void imp__inherit_revive(imp_domain *d, struct imp__inherit *inherit);
void imp__inherit_reap(imp_domain *d, struct imp__inherit *inherit) __attribute__((cold));
/*
 * The last reference of a live inherit from a task element goes: the
 * inherit is left dormant on its lists (see element.c), and what it held
 * on its to-task and its source is released, in that order.  Inline: it is
 * the end of every voucher pair (imp__release_value), and also
 * imp__elem_release_last's case for such an inherit.  The inherit no
 * longer donates (its counts are the to-task's no more).
 */
static inline void imp__inherit_sleep(imp_domain *d, struct imp__inherit *inherit)
{
	struct imp__task_elem *from = (struct imp__task_elem *)inherit->from_elem;
	struct imp__task_elem *to = inherit->to_task;

	inherit->elem.refs = 0;
	imp__trace(d, IMP_TRACE_INHERIT_FREE, to->task ? to->task->pid : -1, -1, 0, 0);
	inherit->externcnt = 0;
	inherit->externdrop = 0;
	inherit->dormant = true;
	d->n_dormant++;
	if (to->dormant)
		imp__inherit_reap(d, to->dormant);
	to->dormant = inherit;
	imp__elem_release(d, &to->elem);
	imp__elem_release(d, &from->elem);
}
int imp__elem_pid(struct imp__elem *elem); /* pid of the element's task, -1 if gone */
/* The live inherits to t: its inbound list counts its dormant one too. */
static inline uint32_t imp__live_inbound(const struct imp__task_elem *t)
{
	return t->n_inbound - (t->dormant != NULL);
}
void imp__task_elem_fill_info(const struct imp__task_elem *t, imp_task_info *info);

/* ---- propagation.c ---- */
bool imp__is_receiver(const struct imp__task_elem *t);   /* marked receiver */
bool imp__is_any_receiver(const struct imp__task_elem *t);
bool imp__is_donor(const struct imp__task_elem *t);
bool imp__is_never_donor(const struct imp__task_elem *t);
bool imp__check_edge(imp_domain *d, struct imp__task_elem *t, bool hold, uint32_t delta);
void imp__propagate(imp_domain *d, struct imp__task_elem *t, bool hold, bool update_self);
/*
 * Changes a receiver's assertion count by delta and reports whether it
 * crossed the 0 <-> 1 edge (see propagation.c).  Inline for the common
 * case, a count that stays on the same side: a boosted receiver gaining
 * or losing one of several boosts.  Everything else is imp__check_edge's.
 */
static inline bool imp__check_transition(imp_domain *d, struct imp__task_elem *t, bool hold,
					 uint32_t delta)
{
	if (!t || !(t->receiver || t->denap))
		return false;
	if (hold ? t->assertcnt > 0 && t->assertcnt + delta > t->assertcnt
		 : t->assertcnt > delta && t->assertcnt - delta >= IMP__TASK_EXTERN(t)) {
		t->assertcnt = hold ? t->assertcnt + delta : t->assertcnt - delta;
		imp__trace(d, hold ? IMP_TRACE_ASSERT_HOLD : IMP_TRACE_ASSERT_DROP,
			   t->task ? t->task->pid : -1, -1, delta, t->assertcnt);
		return false;
	}
	return imp__check_edge(d, t, hold, delta);
}
static inline void imp__hold_internal_locked(imp_domain *d, struct imp__task_elem *t, uint32_t count)
{
	if (imp__check_transition(d, t, true, count))
		imp__propagate(d, t, true, true);
}
static inline void imp__drop_internal_locked(imp_domain *d, struct imp__task_elem *t, uint32_t count)
{
	if (imp__check_transition(d, t, false, count))
		imp__propagate(d, t, false, true);
}
int imp__drop_legacy_locked(imp_domain *d, struct imp__task_elem *t, uint32_t count);
void imp__delayed_drop(imp_domain *d, struct imp__task_elem *t);
void imp__reset_locked(imp_domain *d, struct imp__task_elem *t, bool donor);

/* ---- port.c ---- */
void imp__port_delta(imp_domain *d, struct imp_port *port, int delta);
struct imp__task_elem *imp__port_delta_internal(struct imp_port *port, int delta);
void imp__port_impcount_delta(struct imp_port *port, int delta);
void imp__port_unref_locked(imp_domain *d, struct imp_port *port);
void imp__port_destroy_locked(imp_domain *d, struct imp_port *port);

/* ---- message.c ---- */
void imp__msg_destroy_locked(imp_domain *d, struct imp_msg *msg);
void imp__msg_unref_locked(imp_domain *d, struct imp_msg *msg);

/* ---- task.c ---- */
void imp__task_unref_locked(imp_domain *d, struct imp_task *task);
/* The references and made references of the task's element (0 and 0 once
 * it is freed); for tests, which link the static library. */
void imp__task_elem_counts(imp_task *task, uint32_t *refs, uint32_t *made);

/* ---- voucher.c ---- */
/* A value's first voucher object, in its slot: one made reference.  The
 * slot's domain and value never change; they are set when its element is
 * made (imp__voucher_slot_init). */
static inline void imp__voucher_slot_init(imp_domain *d, struct imp__elem *value)
{
	struct imp_voucher *slot = imp__voucher_slot(value);

	slot->domain = d;
	slot->value = value;
}
static inline struct imp_voucher *imp__voucher_make(imp_domain *d, struct imp__elem *value,
						   struct imp_voucher *slot)
{
	slot->refs = 1;
	slot->made = 1;
	value->voucher = slot;
	d->n_vouchers++;
	return slot;
}
struct imp_voucher *imp__voucher_for_value(imp_domain *d, struct imp__elem *value);
void imp__voucher_unref_locked(imp_domain *d, struct imp_voucher *v);

/* ---- verify.c ---- */
int imp__verify_locked(imp_domain *d);

#define IMP__CHECK_ARG(cond, ...)                                                  \
	do {                                                                       \
		if (!(cond))                                                       \
			return imp__error(-EINVAL, __VA_ARGS__);                   \
	} while (0)

#endif
