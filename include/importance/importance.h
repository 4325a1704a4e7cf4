/*
 * libimportance — Mach-style IPC importance donation, outside the kernel.
 *
 * One header, opaque handles.  Everything lives in an imp_domain: tasks,
 * their ports, the messages queued on those ports and the vouchers that
 * carry importance from one task to the next.  When an important task (a
 * "donor") sends to a task that accepts boosts (a "receiver"), the receiver
 * is boosted until it has consumed the message; if it passes the work on
 * with the voucher it received, the boost follows; when the donor stops
 * being important every boost it caused drops.  De-nap receivers drop their
 * voucher boosts only after a 1100 ms hysteresis.
 *
 * Conventions
 * -----------
 *  - Functions returning int return 0 on success, a negative errno value on
 *    misuse or resource failure (nothing changed in that case), or one of the
 *    positive IMP_KERN_* outcome codes where the reference model itself
 *    answers with a Mach kern_return_t (e.g. over-releasing a legacy
 *    assertion is IMP_KERN_FAILURE: the call was valid, the answer is no).
 *    imp_strerror() names any code; imp_last_error() gives a sentence about
 *    the last failure on the calling thread.
 *  - The library never aborts on caller input.
 *  - Handles are reference counted.  A function that creates an object
 *    (…_create, imp_msg_send, imp_voucher_self, …) hands the caller one
 *    reference, which the caller gives back with the matching …_unref
 *    (imp_voucher_release for vouchers).  The domain keeps whatever else it
 *    needs alive by itself: a queued message holds its port, a port holds
 *    its owner task, a message holds its voucher.
 *  - A NULL imp_voucher * is the null voucher: it holds no importance, has
 *    no object and no references.
 *  - imp_domain_free() frees every object of the domain; handles are dead
 *    afterwards whether or not they were unreferenced.
 *  - Every function is thread-safe.  The policy and trace callbacks are
 *    called without the domain lock held; from inside the policy callback,
 *    functions that change importance state return -EDEADLK (getters work).
 */
#ifndef IMPORTANCE_IMPORTANCE_H
#define IMPORTANCE_IMPORTANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* IMP_EXTERN marks what the library exports.  It is built with hidden
 * visibility, so the functions declared with IMP_EXTERN in this header are
 * the whole of the shared library's ABI. */
#if defined(__GNUC__) && __GNUC__ >= 4
#define IMP_EXTERN __attribute__((visibility("default")))
#else
#define IMP_EXTERN
#endif

/* The version of this header.  imp_version() gives the library's, which
 * differs when a program runs against another build than it was compiled
 * with; the same major version means the same ABI. */
#define IMP_VERSION_MAJOR 0
#define IMP_VERSION_MINOR 1
#define IMP_VERSION_PATCH 0
#define IMP_VERSION_HEX ((IMP_VERSION_MAJOR << 16) | (IMP_VERSION_MINOR << 8) | IMP_VERSION_PATCH)
#define IMP_VERSION_STRING "0.1.0"

/* The library's version as IMP_VERSION_HEX (major << 16 | minor << 8 | patch). */
IMP_EXTERN unsigned imp_version(void);
/* The library's version as "MAJOR.MINOR.PATCH" (a static string). */
IMP_EXTERN const char *imp_version_string(void);

/* ------------------------------------------------------------------ */
/* Result codes                                                         */
/* ------------------------------------------------------------------ */

/* Positive outcome codes, with the values of the Mach codes they stand for. */
enum {
	IMP_KERN_SUCCESS = 0,
	IMP_KERN_INVALID_ARGUMENT = 4,
	IMP_KERN_FAILURE = 5,
	IMP_KERN_NOT_SUPPORTED = 46,
};

/* Names a code: 0, a positive IMP_KERN_* or a negative errno value. */
IMP_EXTERN const char *imp_strerror(int code);

/* A sentence about the most recent failing call on this thread ("" if none). */
IMP_EXTERN const char *imp_last_error(void);

/* ------------------------------------------------------------------ */
/* Handles                                                              */
/* ------------------------------------------------------------------ */

typedef struct imp_domain imp_domain;
typedef struct imp_task imp_task;
typedef struct imp_port imp_port;
typedef struct imp_msg imp_msg;
typedef struct imp_voucher imp_voucher;

/* ------------------------------------------------------------------ */
/* Domain                                                               */
/* ------------------------------------------------------------------ */

/* The hysteresis a de-nap receiver waits before a dropped voucher boost is
 * applied (DENAP_DROP_TARGET + DENAP_DROP_SKEW in the reference). */
#define IMP_DENAP_DROP_DELAY_NS (1100ull * 1000ull * 1000ull)

/* A policy update: the reference's task_update_boost_locked(). */
typedef struct imp_policy_event {
	imp_task *task;   /* valid for the duration of the callback */
	int pid;
	bool boosted;     /* true: boost applied; false: boost dropped */
	uint64_t time_ns; /* domain clock when the update was decided */
} imp_policy_event;

typedef enum imp_trace_kind {
	IMP_TRACE_POLICY = 1,         /* value = 1 boost, 0 unboost */
	IMP_TRACE_ASSERT_HOLD,        /* value = delta, value2 = assertcnt after */
	IMP_TRACE_ASSERT_DROP,        /* value = delta, value2 = assertcnt after */
	IMP_TRACE_OVER_RELEASE,       /* internal drop beyond what is held */
	IMP_TRACE_LEGACY_MISUSE,      /* legacy hold without a boost / over-release */
	IMP_TRACE_INHERIT_CREATE,     /* pid = to-task, other_pid = source, value = depth */
	IMP_TRACE_INHERIT_FREE,       /* pid = to-task */
	IMP_TRACE_DELAYED_QUEUE,      /* value = deadline in ms */
	IMP_TRACE_DELAYED_RUN,        /* the delayed-drop call ran */
	IMP_TRACE_LOST,               /* value = trace events lost to overflow */
} imp_trace_kind;

typedef struct imp_trace_event {
	imp_trace_kind kind;
	uint64_t time_ns;
	int pid;        /* task concerned, -1 if none or exited */
	int other_pid;  /* other side, -1 if none */
	uint32_t value;
	uint32_t value2;
} imp_trace_event;

/* Allocation hook: every allocation of the domain goes through it. */
typedef struct imp_allocator {
	void *(*alloc)(size_t size, void *ctx); /* NULL on failure */
	void (*free)(void *ptr, void *ctx);
	void *ctx;
} imp_allocator;

/* The domain's settings.  The struct grows at its end from one version to
 * the next: size says which fields the caller knows.  Start from
 * IMP_DOMAIN_CONFIG_INIT or imp_domain_config_init(), which set size to
 * this header's sizeof and every other field to its default (0 / NULL),
 * then set the fields you need.  Fields past size take their defaults. */
typedef struct imp_domain_config {
	size_t size; /* sizeof(imp_domain_config) of the caller's header */
	/* Clock in nanoseconds; NULL: CLOCK_MONOTONIC. */
	uint64_t (*clock_now)(void *ctx);
	void *clock_ctx;
	/* Called for each policy update, in the order the reference applies
	 * them, without the domain lock; updates of one domain are serialized. */
	void (*policy)(const imp_policy_event *event, void *ctx);
	void *policy_ctx;
	/* Optional trace of internal steps, delivered after the operation that
	 * caused them, without the domain lock, in order. */
	void (*trace)(const imp_trace_event *event, void *ctx);
	void *trace_ctx;
	/* NULL: malloc/free. */
	const imp_allocator *allocator;
	/* Check every invariant after every mutating call (slow; for tests).
	 * A violation is reported through imp_domain_verify()'s code on the
	 * next call to it and makes imp_domain_broken() return true. */
	bool verify_each_step;
} imp_domain_config;

#define IMP_DOMAIN_CONFIG_INIT { .size = sizeof(imp_domain_config) }

/* Sets *cfg to IMP_DOMAIN_CONFIG_INIT (for C++ before C++20, which has no
 * designated initializers).  NULL: does nothing. */
IMP_EXTERN void imp_domain_config_init(imp_domain_config *cfg);

/* Creates a domain.  cfg may be NULL (defaults); otherwise cfg->size must
 * be set (-EINVAL when it is 0 or smaller than the first version's struct).
 * *out gets the domain. */
IMP_EXTERN int imp_domain_new(const imp_domain_config *cfg, imp_domain **out);

/* Stops the timer thread if any and frees every object of the domain. */
IMP_EXTERN void imp_domain_free(imp_domain *domain);

/* The domain's clock now, in nanoseconds. */
IMP_EXTERN uint64_t imp_domain_now(imp_domain *domain);

/* Deadline of the armed delayed-drop call: returns 1 and sets *deadline_ns,
 * or 0 when no call is armed. */
IMP_EXTERN int imp_domain_next_deadline(imp_domain *domain, uint64_t *deadline_ns);

/* Runs the delayed-drop call if its deadline is <= the clock now (at most
 * once; it may re-arm itself for later).  Returns 1 if it ran, 0 if not. */
IMP_EXTERN int imp_domain_run_timers(imp_domain *domain);

/* Starts a helper thread that runs the delayed-drop call when it is due
 * (meant for a real-time clock).  -EALREADY if running. */
IMP_EXTERN int imp_domain_timer_thread_start(imp_domain *domain);
/* Stops it (no-op when not running). */
IMP_EXTERN void imp_domain_timer_thread_stop(imp_domain *domain);

typedef struct imp_stats {
	size_t task_elems;   /* live task importance elements (exited tasks' too
	                        while anything references them) */
	size_t inherits;     /* live inherit elements */
	size_t vouchers;     /* live voucher objects */
	size_t tasks;        /* task handles not yet freed */
	size_t ports;        /* port handles not yet freed */
	size_t messages;     /* message handles not yet freed */
	size_t delayed;      /* tasks waiting on the delayed-drop queue */
} imp_stats;

IMP_EXTERN int imp_domain_get_stats(imp_domain *domain, imp_stats *stats);

/* Recomputes every count from the object graph (assertions from queued
 * messages, inherits and holds; port counts; references; made counts) and
 * compares.  0 when consistent, -EUCLEAN with imp_last_error() naming the
 * first inconsistency otherwise. */
IMP_EXTERN int imp_domain_verify(imp_domain *domain);

/* True once verify_each_step has found an inconsistency. */
IMP_EXTERN bool imp_domain_broken(imp_domain *domain);

/* ------------------------------------------------------------------ */
/* Tasks                                                                */
/* ------------------------------------------------------------------ */

enum {
	IMP_TASK_RECEIVER = 1u << 0,       /* accepts importance boosts */
	IMP_TASK_DENAP_RECEIVER = 1u << 1, /* accepts de-nap boosts (exclusive
	                                      with IMP_TASK_RECEIVER) */
	IMP_TASK_DONOR = 1u << 2,          /* marked donor */
	IMP_TASK_LIVE_DONOR = 1u << 3,     /* donor bit follows the live-donor
	                                      policy state */
};

/* Creates an active task and its importance element.  flags: IMP_TASK_*,
 * applied as the reference does at task creation (receiver or de-nap mark,
 * then donor, then live donor).  The live-donor policy state starts equal
 * to the donor flag.  -EINVAL for both receiver kinds or unknown flags. */
IMP_EXTERN int imp_task_create(imp_domain *domain, int pid, unsigned flags, imp_task **out);

IMP_EXTERN imp_task *imp_task_ref(imp_task *task);     /* NULL-safe; returns task */
IMP_EXTERN void imp_task_unref(imp_task *task);        /* NULL-safe */

IMP_EXTERN int imp_task_pid(const imp_task *task);
IMP_EXTERN void imp_task_set_userdata(imp_task *task, void *userdata);
IMP_EXTERN void *imp_task_get_userdata(const imp_task *task);

/* The reference's mark functions.  Marking a receiver kind requires the
 * task to hold no assertions (-EBUSY otherwise), and the two receiver kinds
 * exclude each other (-EINVAL); unmarking a task with pending boosts is
 * -EBUSY where the reference panics.  Donor marks do not propagate (they
 * are meant for task construction); use imp_task_set_live_donor for that. */
IMP_EXTERN int imp_task_mark_receiver(imp_task *task, bool on);
IMP_EXTERN int imp_task_mark_denap_receiver(imp_task *task, bool on);
IMP_EXTERN int imp_task_mark_donor(imp_task *task, bool on);
IMP_EXTERN int imp_task_mark_live_donor(imp_task *task, bool on);

/* Sets the task's live-donor policy state (foreground / background) and
 * runs the live-donor update: for a task marked live donor, its donor bit
 * follows and a change propagates to every message and inherit it feeds. */
IMP_EXTERN int imp_task_set_live_donor(imp_task *task, bool on);

/* Internal assertions.  No-ops (0) on tasks that are not receivers of
 * either kind.  An over-release is absorbed (traced), as in the reference. */
IMP_EXTERN int imp_task_hold_assertion(imp_task *task, uint32_t count);
IMP_EXTERN int imp_task_drop_assertion(imp_task *task, uint32_t count);

/* File-lock assertions: internal assertions counted in a 24-bit
 * file-lock count.  Dropping more than held: IMP_KERN_INVALID_ARGUMENT. */
IMP_EXTERN int imp_task_hold_file_lock(imp_task *task, uint32_t count);
IMP_EXTERN int imp_task_drop_file_lock(imp_task *task, uint32_t count);

/* Legacy external assertions, the user-space side of a legacy (voucherless)
 * boost.  Hold needs an existing legacy assertion (IMP_KERN_FAILURE
 * otherwise); drop takes 0 or 1 (IMP_KERN_INVALID_ARGUMENT above) and
 * fails with IMP_KERN_FAILURE when none is held. */
IMP_EXTERN int imp_task_hold_legacy_assertion(imp_task *task, uint32_t count);
IMP_EXTERN int imp_task_drop_legacy_assertion(imp_task *task, uint32_t count);

/* exec: removes the legacy external assertions; a resulting loss of donor
 * status propagates downstream. */
IMP_EXTERN int imp_task_reset(imp_task *task);

/* The task exits: it becomes inactive, its ports are destroyed in creation
 * order (their queued messages destroyed) and its element is disconnected.
 * The handle stays valid until unreferenced; imp_task_get_info keeps
 * working (with the values the element had when it was freed). */
IMP_EXTERN int imp_task_exit(imp_task *task);

typedef struct imp_task_info {
	int pid;
	bool active;
	bool boosted;           /* last policy update applied */
	bool connected;         /* still has its importance element */
	bool receiver, denap_receiver, donor_marked, live_donor_marked;
	bool live_donor_state;  /* the policy state fed to the live-donor update */
	bool is_donor;          /* ipc_importance_task_is_donor */
	uint32_t assertcnt;     /* iit_assertcnt */
	uint32_t externcnt, externdrop;
	uint32_t legacy_externcnt, legacy_externdrop;
	uint32_t extern_boosts; /* IIT_EXTERN */
	uint32_t legacy_boosts; /* IIT_LEGACY_EXTERN */
	uint32_t filelocks;     /* 24 bits */
	uint32_t transitions;
	bool delayed_drop_pending;
} imp_task_info;

IMP_EXTERN int imp_task_get_info(imp_task *task, imp_task_info *info);

/* task_importance_list_pids(TASK_IMP_LIST_DONATING_PIDS): the pids this
 * task donates to, through its inherits then its linked boosting messages
 * (for those, its own pid).  Returns the count written (<= max), or a
 * negative error. */
IMP_EXTERN int imp_task_donating_pids(imp_task *task, int *pids, size_t max);

/* ------------------------------------------------------------------ */
/* Ports                                                                */
/* ------------------------------------------------------------------ */

/* Creates an active receive right owned by an active task.  donate sets
 * impdonation: only such ports carry boosts. */
IMP_EXTERN int imp_port_create(imp_task *owner, bool donate, imp_port **out);

/* Destroys the port: inactive, its boosts dropped from the owner, its
 * queued messages destroyed in send order.  -EPIPE if already dead. */
IMP_EXTERN int imp_port_destroy(imp_port *port);

IMP_EXTERN imp_port *imp_port_ref(imp_port *port);
IMP_EXTERN void imp_port_unref(imp_port *port);
IMP_EXTERN void imp_port_set_userdata(imp_port *port, void *userdata);
IMP_EXTERN void *imp_port_get_userdata(const imp_port *port);
/* The owner (borrowed: valid while the port is referenced). */
IMP_EXTERN imp_task *imp_port_owner(const imp_port *port);

typedef struct imp_port_info {
	bool active;
	bool donate;
	uint32_t impcount; /* boosts held by messages queued on it */
	size_t queued;
} imp_port_info;

IMP_EXTERN int imp_port_get_info(imp_port *port, imp_port_info *info);

/* The first queued message (borrowed: ref it to keep it), or NULL. */
IMP_EXTERN imp_msg *imp_port_peek(imp_port *port);

/* ------------------------------------------------------------------ */
/* Messages                                                             */
/* ------------------------------------------------------------------ */

enum {
	IMP_SEND_IMPORTANCE = 1u << 0,   /* MACH_SEND_IMPORTANCE: static boost */
	IMP_SEND_NOIMPORTANCE = 1u << 1, /* MACH_SEND_NOIMPORTANCE */
};

/* sender sends a message to port (both active, -ESRCH / -EPIPE otherwise),
 * carrying voucher (may be NULL; the message takes its own reference), and
 * the message is queued.  *out gets a caller reference on it. */
IMP_EXTERN int imp_msg_send(imp_task *sender, imp_port *port, imp_voucher *voucher,
		 unsigned options, imp_msg **out);

enum {
	IMP_RECV_VOUCHER = 1u << 0,      /* MACH_RCV_VOUCHER */
	IMP_RECV_COPYOUT_FAILED = 1u << 1, /* the copy-out failed: undo */
};

/* The owner of the message's port receives it (-EALREADY if it is not
 * queued).  With IMP_RECV_VOUCHER the boost becomes an inherit and
 * *voucher_out (may be NULL only without that flag) gets a reference on the
 * received voucher (NULL: the null voucher); without it the boost becomes a
 * legacy external assertion of the receiver.  With IMP_RECV_COPYOUT_FAILED
 * the importance received is undone (ipc_importance_unreceive) and
 * *voucher_out is NULL. */
IMP_EXTERN int imp_msg_receive(imp_msg *msg, unsigned flags, imp_voucher **voucher_out);

/* Destroys a queued message: its boost and links are dropped. */
IMP_EXTERN int imp_msg_destroy(imp_msg *msg);

IMP_EXTERN imp_msg *imp_msg_ref(imp_msg *msg);
IMP_EXTERN void imp_msg_unref(imp_msg *msg);
IMP_EXTERN void imp_msg_set_userdata(imp_msg *msg, void *userdata);
IMP_EXTERN void *imp_msg_get_userdata(const imp_msg *msg);

typedef enum imp_msg_state {
	IMP_MSG_QUEUED = 1,
	IMP_MSG_RECEIVED,
	IMP_MSG_DESTROYED,
} imp_msg_state;

typedef struct imp_msg_info {
	imp_msg_state state;
	bool raised;          /* MACH_MSGH_BITS_RAISEIMP */
	bool linked;          /* linked to an importance element */
	int sender_pid;
	imp_task *sender;     /* borrowed */
	imp_port *port;       /* borrowed */
} imp_msg_info;

IMP_EXTERN int imp_msg_get_info(imp_msg *msg, imp_msg_info *info);

/* ------------------------------------------------------------------ */
/* Vouchers (the importance attribute manager)                          */
/* ------------------------------------------------------------------ */

/* MACH_VOUCHER_ATTR_IMPORTANCE_SELF: a voucher holding the task's own
 * element (a made reference).  An exited task gives the null voucher. */
IMP_EXTERN int imp_voucher_self(imp_task *task, imp_voucher **out);

/* MACH_VOUCHER_ATTR_REDEEM: the same value again (made + 1, same object). */
IMP_EXTERN int imp_voucher_redeem(imp_voucher *previous, imp_voucher **out);

IMP_EXTERN imp_voucher *imp_voucher_ref(imp_voucher *voucher); /* NULL-safe */
/* Drops a reference; the last one releases the value (release_value with
 * sync = made), which drops any boosts it still holds. */
IMP_EXTERN void imp_voucher_release(imp_voucher *voucher);

/* MACH_VOUCHER_IMPORTANCE_ATTR_DROP_EXTERNAL: drops refs external boosts
 * of the voucher's inherit; *remaining (may be NULL) gets the count left.
 * refs = 0 only reads.  IMP_KERN_INVALID_ARGUMENT for a voucher without an
 * inherit (null voucher included), IMP_KERN_FAILURE when fewer are left. */
IMP_EXTERN int imp_voucher_drop_external(imp_voucher *voucher, uint32_t refs, uint32_t *remaining);

#define IMP_VOUCHER_CMD_DROP_EXTERNAL 2u /* the reference's command number */

/* The attribute manager's command entry with raw content, as the reference
 * takes it: in must be 4 bytes (a uint32_t count); *out_size 0 or 4.
 * Unknown commands: IMP_KERN_NOT_SUPPORTED. */
IMP_EXTERN int imp_voucher_command(imp_voucher *voucher, uint32_t command,
			const void *in, size_t in_size, void *out, size_t *out_size);

/* extract_content: "Importance for pid …" with the chain of inherits.
 * Writes at most size bytes, always terminated when size > 0, and sets
 * *needed (may be NULL) to the length the full text needs, terminator
 * included (0 for the null voucher).  Any size is safe, 0 included. */
IMP_EXTERN int imp_voucher_describe(imp_voucher *voucher, char *buf, size_t size, size_t *needed);

typedef struct imp_voucher_info {
	bool holds_inherit;  /* else a task element */
	uint32_t refs;       /* voucher references */
	uint32_t made;       /* made references handed to the voucher layer */
	int pid;             /* the element's task (to-task of an inherit); -1 exited */
	uint32_t externcnt, externdrop; /* inherit only */
	bool donating;       /* inherit only */
	uint32_t depth;      /* inherit only, reset bit included (0x80) */
} imp_voucher_info;

IMP_EXTERN int imp_voucher_get_info(imp_voucher *voucher, imp_voucher_info *info);

/* ------------------------------------------------------------------ */
/* Graph snapshot (for drawing and inspection)                         */
/* ------------------------------------------------------------------ */

typedef struct imp_graph_task {
	imp_task *task;          /* NULL for an element whose task is gone */
	uint64_t elem_id;        /* 0 when the task has no element */
	int pid;
	bool active, boosted, receiver, denap, donor;
	uint32_t assertcnt, extern_boosts, legacy_boosts;
} imp_graph_task;

typedef struct imp_graph_port {
	imp_port *port;
	imp_task *owner;
	bool active, donate;
	uint32_t impcount;
} imp_graph_port;

typedef struct imp_graph_msg {
	imp_msg *msg;
	imp_port *port;
	imp_task *sender;
	bool raised;
	uint64_t linked_elem_id; /* 0 when not linked */
} imp_graph_msg;

typedef struct imp_graph_inherit {
	uint64_t elem_id;
	uint64_t from_elem_id;   /* a task element or another inherit */
	uint64_t to_elem_id;     /* the to-task's element */
	uint32_t externcnt, externdrop, made, depth;
	bool donating;
} imp_graph_inherit;

typedef struct imp_graph {
	imp_graph_task *tasks;  size_t n_tasks;
	imp_graph_port *ports;  size_t n_ports;
	imp_graph_msg *msgs;    size_t n_msgs;   /* queued messages only */
	imp_graph_inherit *inherits; size_t n_inherits;
} imp_graph;

/* A consistent copy of the donation graph.  Handles in it are borrowed and
 * valid only while the caller keeps its own references. */
IMP_EXTERN int imp_domain_graph(imp_domain *domain, imp_graph **out);
IMP_EXTERN void imp_graph_free(imp_domain *domain, imp_graph *graph);

/* How imp_graph_dot() draws a graph.  Like imp_domain_config, the struct
 * grows at its end: start from IMP_GRAPH_DOT_OPTIONS_INIT (size set, every
 * other field NULL: all tasks, default labels). */
typedef struct imp_graph_dot_options {
	size_t size;            /* sizeof(imp_graph_dot_options) of the caller's header */
	const char *name;       /* the digraph's name; NULL: "importance" */
	const char *title;      /* the graph's caption, before the colour key;
	                           NULL: the key alone */
	/* Which tasks to draw (NULL: all).  A task left out takes with it its
	 * ports, the messages queued on them, the inherits made for it, and
	 * every edge from or to any of those; nothing about it is written.
	 * task->task is NULL for an element whose task is gone.  It may be
	 * called several times for one task and must answer the same. */
	bool (*task_filter)(const imp_graph_task *task, void *ctx);
	/* The first line of a node's label, written into buf (size bytes,
	 * always > 0); leave buf empty for no such line.  NULL: a task's has
	 * none (its second line says "pid N"), a port's is "port", a
	 * message's is "msg".  Quotes and backslashes are escaped. */
	void (*task_label)(const imp_graph_task *task, char *buf, size_t size, void *ctx);
	void (*port_label)(const imp_graph_port *port, char *buf, size_t size, void *ctx);
	void (*msg_label)(const imp_graph_msg *msg, char *buf, size_t size, void *ctx);
	void *ctx;              /* passed to the callbacks */
} imp_graph_dot_options;

#define IMP_GRAPH_DOT_OPTIONS_INIT { .size = sizeof(imp_graph_dot_options) }

/* Writes graph as a Graphviz digraph to out: tasks (boxes: red boosted,
 * gold donor, blue receiver not boosted, grey exited), ports (owned by
 * their task), queued messages (on their port, linked to the element they
 * raise or link to) and inherits (from the element that donates, to the
 * task they boost).  options may be NULL (defaults); otherwise its size
 * must be set (-EINVAL).  Takes O(n log n) time in the graph's size and
 * allocates its indexes (-ENOMEM).  Returns 0, or -EIO when writing to
 * out failed. */
IMP_EXTERN int imp_graph_dot(const imp_graph *graph, const imp_graph_dot_options *options, FILE *out);

#ifdef __cplusplus
}
#endif

#endif
