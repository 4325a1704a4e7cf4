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
 * Everything here is protected by domain->lock unless said otherwise.
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
 * its value (imp__voucher_slot()) and is never allocated.  A voucher
 * receive used to take one from a free list, clear it and put it on a
 * domain-wide list, and the release undid all three.
 */
struct imp_voucher {
	imp_domain *domain;
	uint32_t refs;
	uint32_t made;               /* voucher layer's made count for the value */
	struct imp__elem *value;
};

struct imp__elem {
	uint32_t refs;
	uint32_t made;             /* made references handed to vouchers */
	uint8_t type;
	uint64_t id;               /* stable id for graphs */
	struct imp_voucher *voucher; /* the voucher object holding this value:
					NULL or its slot */
};

struct imp__task_elem {
	struct imp__elem elem;
	struct imp__msg_list kmsgs;        /* messages linked here or to inherits to us */
	struct imp__inherit_list inherits; /* inherits from us or from inherits to us */
	struct imp__inherit_list inbound;  /* inherits whose to-task we are */
	uint32_t n_inherits, n_inbound;    /* lengths of the two lists above */
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
	imp_domain *domain;
	uint32_t refs;             /* handles + ports owned + messages sent */
	int pid;
	bool active;
	bool live_donor_state;
	atomic_bool boosted;       /* written under domain->apply_lock */
	struct imp__task_elem *imp;        /* task_imp_base */
	struct imp__task_elem *former_imp; /* weak, after disconnect */
	imp_task_info snapshot;            /* values when the element was freed */
	bool has_snapshot;
	struct imp__port_list ports;       /* owned ports, creation order */
	TAILQ_ENTRY(imp_task) link;
	void *userdata;
};

struct imp_port {
	imp_domain *domain;
	uint32_t refs;
	bool active;
	bool donate;
	uint32_t impcount;
	size_t queued;
	struct imp_task *owner;     /* holds a task reference */
	struct imp__msg_list queue; /* send order */
	TAILQ_ENTRY(imp_port) owner_link;
	TAILQ_ENTRY(imp_port) link;
	void *userdata;
};

struct imp_msg {
	imp_domain *domain;
	uint32_t refs;
	imp_msg_state state;
	bool raised;                 /* MACH_MSGH_BITS_RAISEIMP */
	struct imp__elem *importance; /* ikm_importance, holds a reference */
	struct imp_task *sender;     /* holds a task reference */
	struct imp_port *port;       /* holds a port reference */
	struct imp_voucher *voucher; /* holds a voucher reference */
	TAILQ_ENTRY(imp_msg) imp_link;   /* on a task element's kmsgs */
	TAILQ_ENTRY(imp_msg) queue_link; /* on the port queue */
	TAILQ_ENTRY(imp_msg) link;       /* on the domain's list */
	void *userdata;
};

#define IMP__TRACE_RING 1024u
#define IMP__CACHE_MAX 256u

/* A free list of same-sized objects (see imp__cache_get). */
struct imp__cache {
	void *head;
	unsigned n;
	size_t size;
};

struct imp_domain {
	pthread_mutex_t lock;       /* the importance lock */
	pthread_mutex_t apply_lock; /* held while a policy update is applied */
	pthread_mutex_t trace_lock; /* serializes trace delivery */

	uint64_t (*clock_now)(void *ctx);
	void *clock_ctx;
	void (*policy)(const imp_policy_event *, void *);
	void *policy_ctx;
	void (*trace)(const imp_trace_event *, void *);
	void *trace_ctx;
	imp_allocator allocator;
	bool verify_each_step;
	bool broken;
	unsigned unsettled; /* operations paused mid-way (lock dropped for a policy update) */

	/* delayed drop (App Nap hysteresis) */
	struct imp__task_elem_list delayed_queue;
	uint64_t delayed_deadline;
	bool delayed_requested;

	/* timer thread */
	pthread_t timer_thread;
	pthread_cond_t timer_cond;
	bool timer_running, timer_stop;

	/* all objects, for stats, graphs, verification and teardown */
	struct imp__task_elem_list all_task_elems;
	struct imp__inherit_list all_inherits;
	struct imp__task_list tasks;
	struct imp__port_list ports;
	struct imp__msg_list msgs;
	size_t n_task_elems, n_inherits, n_vouchers, n_tasks, n_ports, n_msgs, n_delayed;
	uint64_t next_elem_id;

	/* recycled inherits and voucher objects, the two allocations every
	 * voucher receive makes */
	struct imp__cache inherit_cache;

	/* trace ring, filled under lock, drained without it */
	imp_trace_event trace_ring[IMP__TRACE_RING];
	unsigned trace_head, trace_count;
	uint32_t trace_lost;
};

/* ---- domain.c ---- */
void *imp__alloc(imp_domain *d, size_t size);
void imp__free(imp_domain *d, void *p);
/* lock held; NULL, or an object the caller initialises field by field
 * (clearing it cost 3-4 ns of a 57 ns voucher send+receive pair) */
void *imp__cache_get(imp_domain *d, struct imp__cache *c);
void *imp__cache_take(imp_domain *d, struct imp__cache *c); /* get, or allocate unlocked */
void imp__cache_put(imp_domain *d, struct imp__cache *c, void *p); /* lock held; NULL-safe */
uint64_t imp__now(imp_domain *d);
int imp__lock(imp_domain *d);     /* -EDEADLK from inside a policy callback */
void imp__lock_any(imp_domain *d); /* getters: allowed from callbacks */
void imp__unlock(imp_domain *d);  /* also verifies (test builds) and flushes the trace */
void imp__trace_record(imp_domain *d, imp_trace_kind kind, int pid, int other_pid,
		       uint32_t value, uint32_t value2) __attribute__((cold));
/* Inline so that, with no trace callback, the arguments are not even
 * computed: four trace points sit on a send+receive pair. */
static inline void imp__trace(imp_domain *d, imp_trace_kind kind, int pid, int other_pid,
			      uint32_t value, uint32_t value2)
{
	if (d->trace)
		imp__trace_record(d, kind, pid, other_pid, value, value2);
}
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
int imp__elem_pid(struct imp__elem *elem); /* pid of the element's task, -1 if gone */
void imp__task_elem_fill_info(const struct imp__task_elem *t, imp_task_info *info);

/* ---- propagation.c ---- */
bool imp__is_receiver(const struct imp__task_elem *t);   /* marked receiver */
bool imp__is_any_receiver(const struct imp__task_elem *t);
bool imp__is_donor(const struct imp__task_elem *t);
bool imp__is_never_donor(const struct imp__task_elem *t);
bool imp__check_transition(imp_domain *d, struct imp__task_elem *t, bool hold, uint32_t delta);
void imp__propagate(imp_domain *d, struct imp__task_elem *t, bool hold, bool update_self);
void imp__hold_internal_locked(imp_domain *d, struct imp__task_elem *t, uint32_t count);
void imp__drop_internal_locked(imp_domain *d, struct imp__task_elem *t, uint32_t count);
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
