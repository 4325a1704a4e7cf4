/*
 * libimportance-client — talk to importanced.
 *
 * One impc handle is one connection, and one task for the daemon: it owns
 * ports (receive rights), holds send rights and voucher handles, and is
 * boosted when it is a receiver and a donor's message waits for it.
 *
 * Two ways to call, on the same handle:
 *   - blocking calls (impc_send, impc_receive, ...): one request, wait for
 *     its reply;
 *   - asynchronous calls (impc_send_async, impc_receive_async,
 *     impc_send_receive_async): submit and return at once; the result is
 *     a completion, collected with impc_next_completion().  impc_fd() is a
 *     descriptor for an event loop: it is readable while the handle has
 *     something to do or to hand over (a frame from the daemon, a
 *     completion, an event, a reconnect due); then call impc_process()
 *     and drain impc_next_completion() and impc_next_event().  Nothing of
 *     this blocks.  Several receives may wait at once, one per port.
 * A blocking receive waits on its port, not on the connection: other
 * threads' calls on the same handle go on meanwhile.
 *
 * Errors are a negative errno: the daemon's answer (-EACCES: no send
 * right; -EDQUOT: a quota; -ETIMEDOUT, -EAGAIN for receives; -EPERM: not
 * allowed to you; -EBUSY: a receive already waits on that port) or a local
 * failure.  Two of them say who is gone:
 *   -EPIPE       the peer: the port's receiver is gone (the port was
 *                destroyed, or its owner exited); the connection is fine.
 *   -ECONNRESET  the daemon: the connection is lost.  Every call then in
 *                flight ends with it; later calls get -ENOTCONN until a
 *                reconnect (IMPC_RECONNECT) succeeds.
 * and two say the daemon misbehaved, after which the connection is closed
 * the same way (calls in flight end with the same error):
 *   -EPROTO      a frame that is not this protocol (a bad header, a
 *                reply of another type than its request's, one too short
 *                for what it must hold or whose own lengths run past it);
 *   -ETIMEDOUT   with a call timeout (impc_set_timeout), a blocking
 *                call's reply did not come in time.
 *
 * Thread safety: every function may be called from any thread on a
 * shared handle, concurrently, except impc_close(), which must be the
 * last call on it.  Blocking calls of several threads proceed together
 * (one thread reads the socket for all of them).  A completion or an
 * event is handed to exactly one caller of impc_next_completion() /
 * impc_next_event().
 *
 * Ownership: what a call hands out (a message's data and files, a text)
 * is the caller's; the arguments are only read during the call.
 */
#ifndef IMPORTANCE_CLIENT_H
#define IMPORTANCE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* IMPC_EXTERN marks what the library exports: it is built with hidden
 * visibility, so the functions declared with it are its whole ABI. */
#if defined(__GNUC__) && __GNUC__ >= 4
#define IMPC_EXTERN __attribute__((visibility("default")))
#else
#define IMPC_EXTERN
#endif

typedef struct impc impc;

enum {
	IMPC_RECEIVER = 1u << 0,       /* accept importance boosts */
	IMPC_DENAP_RECEIVER = 1u << 1, /* accept de-nap boosts (App Nap) */
	IMPC_MONITOR = 1u << 2,        /* observer only: impctl */
	/* When the daemon goes away, connect again (in impc_process(), on a
	 * timer that impc_fd() signals, and before a blocking call) and
	 * restore what the handle set up: the ports it allocated (their
	 * handles stay valid: the library maps them to the new ports), the
	 * names it registered, the names it looked up (resolved again: their
	 * handles stay valid too), the asynchronous receives waiting on them,
	 * a monitor subscription.  Not restored: vouchers (their boosts are
	 * gone; releasing one returns 0), send rights from received messages
	 * (-EPIPE), messages in flight.  IMPC_EVENT_DISCONNECTED and
	 * IMPC_EVENT_RECONNECTED say when. */
	IMPC_RECONNECT = 1u << 8,
};

/* Connects to path (NULL: $IMPORTANCED_SOCKET or /run/importanced.sock)
 * and says hello with flags.  *donor (may be NULL) gets the donor status
 * the daemon's policy gave us. */
IMPC_EXTERN int impc_connect(const char *path, unsigned flags, impc **out, bool *donor);
/* Closes the connection; completions not collected are dropped (their
 * messages' data freed, files closed). */
IMPC_EXTERN void impc_close(impc *c);
/* For an event loop: readable (level-triggered) while impc_process(),
 * impc_next_completion() or impc_next_event() has something to do.  The
 * same descriptor for the handle's whole life, across reconnects. */
IMPC_EXTERN int impc_fd(const impc *c);
/* Does what is waiting, without blocking: takes the frames the daemon
 * sent (turning replies into completions and events), reconnects when it
 * is due (a connect and a round trip per port and name to restore).
 * Returns how many frames it took, or -ENOTCONN, -ECONNRESET. */
IMPC_EXTERN int impc_process(impc *c);
/* Whether the connection is up now. */
IMPC_EXTERN bool impc_connected(impc *c);
/* A bound on every blocking call's wait for the daemon's reply, in ms (-1,
 * the default: none).  A receive that waits (impc_receive,
 * impc_send_receive, impc_exchange with a timeout of their own) is given
 * its own timeout plus this one; one that waits for ever (-1) is not
 * bounded.  Past it the call returns -ETIMEDOUT and the connection is
 * closed (its late reply would have no call to go to): the other calls
 * then in flight end with -ETIMEDOUT too, and with IMPC_RECONNECT a new
 * connection is made.  0, or -EINVAL (timeout_ms < -1). */
IMPC_EXTERN int impc_set_timeout(impc *c, int timeout_ms);

/* Ports: a receive right we own (donate: it takes boosts), destroyed with
 * its queued messages (their senders are told). */
IMPC_EXTERN int impc_port_allocate(impc *c, bool donate, uint64_t *port);
IMPC_EXTERN int impc_port_destroy(impc *c, uint64_t port);
/* The bootstrap name service: register a port we own; look one up to get
 * a send right.  With IMPC_RECONNECT a name looked up keeps its handle,
 * lookup after lookup: when a send to it says -EPIPE (the server went, or
 * was not back yet when we reconnected), look the name up again and send
 * to the same handle. */
IMPC_EXTERN int impc_register(impc *c, const char *name, uint64_t port);
IMPC_EXTERN int impc_lookup(impc *c, const char *name, uint64_t *port);

enum { IMPC_SEND_NOIMPORTANCE = 1u << 1 };

/* Sends len bytes (<= 65536) to a port we hold a send right for
 * (-EPIPE: its receiver is gone).
 * voucher: 0 or a voucher handle of ours (pass importance on).
 * reply_port: 0 or a port we hold a send right for; the receiver gets one.
 * *msg_id (may be NULL) identifies it in IMPC_EVENT_MSG_DESTROYED. */
IMPC_EXTERN int impc_send(impc *c, uint64_t port, const void *data, size_t len, uint64_t voucher,
	      uint64_t reply_port, unsigned options, uint64_t *msg_id);

enum { IMPC_RECV_VOUCHER = 1u << 0 };

/* Files a message may carry. */
#define IMPC_MAX_FDS 16u

typedef struct impc_message {
	uint64_t msg_id;
	int sender_pid;
	uint64_t voucher;    /* with IMPC_RECV_VOUCHER: ours to release (0: none) */
	uint64_t reply_port; /* a send right we now hold, or 0 */
	size_t len;
	void *data;          /* malloc'd: free() it */
	size_t n_fds;        /* files it carried, ours (close them); fewer than
	                        were sent if we could not take them all (EMFILE) */
	int fds[IMPC_MAX_FDS];
} impc_message;

/* Frees m's data and closes its files still >= 0 (set one to -1 to keep
 * it). */
IMPC_EXTERN void impc_message_clear(impc_message *m);

/* Receives the first message of a port we own.  timeout_ms: -1 waits, 0
 * polls (-EAGAIN when empty), > 0 waits that long (-ETIMEDOUT).  The boost
 * the message carried is consumed: with IMPC_RECV_VOUCHER it moves into the
 * voucher (release it when the work is done), without it becomes a legacy
 * assertion (impc_legacy_complete() when done). */
IMPC_EXTERN int impc_receive(impc *c, uint64_t port, int timeout_ms, unsigned flags, impc_message *msg);

typedef struct impc_send_args {
	uint64_t port;
	const void *data;
	size_t len;
	uint64_t voucher;
	uint64_t reply_port;
	unsigned options;
	/* files to pass with the message (at most IMPC_MAX_FDS; the caller
	 * keeps its own).  The daemon holds them until the message is
	 * received, within quotas per connection and per user (-EDQUOT). */
	const int *fds;
	size_t n_fds;
} impc_send_args;

/* impc_send() with every field of impc_send_args (files included). */
IMPC_EXTERN int impc_send_message(impc *c, const impc_send_args *send, uint64_t *msg_id);

/* Mach's combined mach_msg, in one round trip: release a voucher of ours
 * (0: none), send (NULL: nothing), then receive on recv_port as
 * impc_receive does.  A client's call: send the request with a reply port
 * and wait on it.  A server's loop: reply to the previous request, release
 * its voucher, and wait for the next.  A send error is returned and then
 * nothing is received. */
IMPC_EXTERN int impc_send_receive(impc *c, const impc_send_args *send, uint64_t release_voucher,
		      uint64_t recv_port, int timeout_ms, unsigned flags, impc_message *msg);

/*
 * impc_exchange: many at once, in one round trip (BATCH; docs/protocol.md):
 * release n_release vouchers, send n_send messages, then receive up to
 * max_msgs messages from recv_port (0: receive nothing) -- every message
 * already queued, up to max_msgs, or else the first to arrive within
 * timeout_ms.  A busy server answers many requests per call and a client
 * keeps many requests in flight while paying one wakeup per batch.
 *
 * At most IMPC_BATCH_MAX items of each kind, about 128 KiB of data and
 * IMPC_MAX_FDS files in either direction.  Returns 0 when the daemon processed the batch; then
 * release_status[i] (may be NULL) and send_status[i] (may be NULL) hold
 * each item's own result, as impc_voucher_release() and impc_send() would
 * have returned it, and msg_ids[i] (may be NULL) each sent message's id.
 * One item failing does not stop the others.  *n_msgs is the number of
 * messages received into msgs (free() each one's data); when a receive was
 * asked and none came, *recv_status says why (-EAGAIN, -ETIMEDOUT,
 * -ENOENT...), else it is 0.  A negative return is a failure of the batch
 * as a whole (malformed, too big, connection lost): then nothing was done,
 * except after -EPIPE or -ENOMEM, when the outcome is unknown.
 */
#define IMPC_BATCH_MAX 1024u
typedef struct impc_batch {
	const uint64_t *release;    /* voucher handles to release */
	size_t n_release;
	const impc_send_args *send; /* messages to send */
	size_t n_send;
	uint64_t recv_port;         /* 0: no receive */
	int timeout_ms;
	unsigned recv_flags;        /* IMPC_RECV_VOUCHER */
	impc_message *msgs;         /* room for max_msgs */
	size_t max_msgs;
	/* results */
	int *release_status, *send_status;
	uint64_t *msg_ids;
	size_t n_msgs;
	int recv_status;
} impc_batch;

IMPC_EXTERN int impc_exchange(impc *c, impc_batch *batch);

IMPC_EXTERN int impc_voucher_release(impc *c, uint64_t voucher);
/* Drops refs external boosts of the voucher; *remaining may be NULL.
 * Returns 0, a negative errno, or a positive IMP_KERN_* code. */
IMPC_EXTERN int impc_voucher_drop_external(impc *c, uint64_t voucher, uint32_t refs, uint32_t *remaining);
IMPC_EXTERN int impc_voucher_describe(impc *c, uint64_t voucher, char *buf, size_t size);
/* Done with the work a legacy (voucherless) receive gave us. */
IMPC_EXTERN int impc_legacy_complete(impc *c);
/* File-lock boosts.  The caller, a donor, is about to wait for `lock`
 * (F_RDLCK or F_WRLCK, l_whence SEEK_SET) on the open file fd: the
 * receiver holding a conflicting lock is boosted until impc_filelock_done
 * (or the caller's disconnect, or the holder letting the lock go).  *wait
 * names the wait; *holder (may be NULL) gets the boosted pid.  -EPERM: the
 * caller is not a donor; -ESRCH: no receiver holds a conflicting lock. */
IMPC_EXTERN int impc_filelock_wait(impc *c, int fd, const struct flock *lock, uint64_t *wait, pid_t *holder);
IMPC_EXTERN int impc_filelock_done(impc *c, uint64_t wait);

typedef struct impc_status {
	uint32_t clients;
	uint64_t task_elems, inherits, vouchers, ports, messages, delayed;
	uint64_t boosts_applied, unboosts_applied, requests, protocol_errors;
	char policy[16];     /* the boost backend in use */
	char backends[1024]; /* it, and why each other one was not chosen: a line each */
} impc_status;

IMPC_EXTERN int impc_status_get(impc *c, impc_status *st);
/* A table of connected tasks / the donation graph as DOT; free() *text. */
IMPC_EXTERN int impc_tasks(impc *c, char **text);
IMPC_EXTERN int impc_graph(impc *c, char **text);
/* What boosts the tasks of pid now, as text (free() *text): the senders of
 * the messages queued for it, whose vouchers it holds.  Only about tasks
 * the caller's uid may see; -ESRCH when there is none. */
IMPC_EXTERN int impc_why(impc *c, int pid, char **text);
/* Privileged (root or the daemon's user): make every task of pid a donor
 * or not; the change propagates. */
IMPC_EXTERN int impc_donor(impc *c, int pid, bool on);
/* FOREGROUND (protocol.h): pid (of the caller's own uid unless root) is in
 * front; 0: nothing of the caller's uid is.  flags: IMPC_FOREGROUND_CGROUP
 * (its whole cgroup), IMPC_FOREGROUND_FORGET (pid 0: stop speaking). */
#define IMPC_FOREGROUND_CGROUP 1u
#define IMPC_FOREGROUND_FORGET 2u
IMPC_EXTERN int impc_foreground(impc *c, int pid, unsigned flags);
/* Subscribe to policy events (then read them with impc_next_event). */
IMPC_EXTERN int impc_monitor(impc *c);

typedef enum impc_event_kind {
	IMPC_EVENT_POLICY = 1,        /* pid boosted / unboosted */
	IMPC_EVENT_MSG_DESTROYED = 2, /* a message we sent will never be received */
	IMPC_EVENT_DISCONNECTED = 3,  /* the daemon is gone */
	IMPC_EVENT_RECONNECTED = 4,   /* IMPC_RECONNECT: connected again, status
	                                 0 or the first error restoring */
} impc_event_kind;

typedef struct impc_event {
	impc_event_kind kind;
	int pid;
	bool boosted;
	int applied;       /* 0 or -errno from the daemon's backend */
	int value;         /* nice value or cpu.weight in force */
	uint64_t time_ns;
	uint64_t msg_id, port;
	int status;        /* IMPC_EVENT_RECONNECTED */
} impc_event;

/* Next event: timeout_ms as for receive.  0, -EAGAIN, -ETIMEDOUT, or
 * -ENOTCONN once the connection is gone and IMPC_EVENT_DISCONNECTED was
 * taken. */
IMPC_EXTERN int impc_next_event(impc *c, int timeout_ms, impc_event *ev);

/*
 * The session agent's calls (protocol.h, "The session agent";
 * docs/agent.md): an agent watches a bus the daemon cannot, and relays to
 * the daemon the messages the bus routes and the answers to the daemon's
 * questions about it.  Connect with IMPC_MONITOR.  The daemon believes an
 * agent only about processes of the agent's own uid.
 */
/* One message the bus routed (strings: NULL or "" for none; each at most
 * 255 bytes). */
typedef struct impc_bus_message {
	int type; /* the D-Bus type: 1 method call, 2 return, 3 error, 4 signal */
	bool expect_reply;
	const char *sender, *destination, *interface, *member;
	uint64_t serial, reply_serial;
	const char *args[3]; /* the driver's NameOwnerChanged: name, old, new */
} impc_bus_message;
/* A question of the daemon's about a watched bus. */
typedef struct impc_agent_question {
	uint32_t bus;
	unsigned what;  /* IMPC_AGENT_WHO: who is the connection name;
	                   IMPC_AGENT_OWNER_OF: who owns the name */
	char name[256];
} impc_agent_question;
#define IMPC_AGENT_WHO 1u
#define IMPC_AGENT_OWNER_OF 2u
/* Watch the bus called address (a label, at most 200 printable bytes):
 * *bus names it in the calls below.  -EDQUOT: this uid watches as many as
 * it may; -EUSERS: the daemon does. */
IMPC_EXTERN int impc_agent_attach(impc *c, const char *address, uint32_t *bus);
IMPC_EXTERN int impc_agent_detach(impc *c, uint32_t bus);
/* n messages read together from the bus, in its order (sent in as few
 * frames as they fit). */
IMPC_EXTERN int impc_agent_events(impc *c, uint32_t bus, const impc_bus_message *m, size_t n);
/* The next question asked (impc_fd() is readable while one waits): 0, or
 * -EAGAIN when none is.  Not waiting. */
IMPC_EXTERN int impc_agent_next_question(impc *c, impc_agent_question *q);
/* The answers: who the connection unique is (pidfd: the bus's ProcessFD,
 * or -1; only read), that it cannot be told (error: a -errno; -ESRCH: no
 * such connection), who owns name (owner NULL: nobody). */
IMPC_EXTERN int impc_agent_identity(impc *c, uint32_t bus, const char *unique, int pid, unsigned uid, int pidfd);
IMPC_EXTERN int impc_agent_unknown(impc *c, uint32_t bus, const char *unique, int error);
IMPC_EXTERN int impc_agent_owner(impc *c, uint32_t bus, const char *name, const char *owner);

/*
 * Asynchronous calls.  Each returns 0 once the request is on its way (or
 * a negative errno, and then no completion comes) and ends in one
 * completion carrying the userdata given.  Receives are ASYNC on the
 * daemon: they wait on their port, without a timeout, until a message
 * comes (-ECANCELED: the port was destroyed; -EBUSY: a receive already
 * waits on it).  With IMPC_RECONNECT, a receive waiting when the daemon
 * goes (or submitted while it is away) waits again on the restored port
 * once reconnected; the other calls end with -ECONNRESET.
 */
typedef enum impc_op_kind {
	IMPC_OP_SEND = 1,         /* impc_send_async */
	IMPC_OP_RECEIVE = 2,      /* impc_receive_async */
	IMPC_OP_SEND_RECEIVE = 3, /* impc_send_receive_async */
} impc_op_kind;

typedef struct impc_completion {
	impc_op_kind kind;
	int status;       /* 0 or a negative errno, as the blocking call's */
	void *userdata;   /* as submitted */
	uint64_t port;    /* the port received on (RECEIVE, SEND_RECEIVE) or sent to (SEND) */
	uint64_t msg_id;  /* SEND: the message sent */
	impc_message msg; /* a receive with status 0: ours (impc_message_clear) */
} impc_completion;

IMPC_EXTERN int impc_send_async(impc *c, const impc_send_args *send, void *userdata);
/* flags: IMPC_RECV_VOUCHER. */
IMPC_EXTERN int impc_receive_async(impc *c, uint64_t port, unsigned flags, void *userdata);
/* Mach's combined call without waiting: release a voucher (0: none), send
 * (NULL: nothing), then receive on recv_port.  A send error ends it (and
 * then nothing waits on recv_port). */
IMPC_EXTERN int impc_send_receive_async(impc *c, const impc_send_args *send, uint64_t release_voucher, uint64_t recv_port,
			    unsigned flags, void *userdata);
/* The next completion, without blocking: 0, or -EAGAIN when there is none
 * yet (impc_process() takes what has arrived). */
IMPC_EXTERN int impc_next_completion(impc *c, impc_completion *out);

#ifdef __cplusplus
}
#endif

#endif
