/*
 * The importanced wire protocol, version 3 (docs/protocol.md says it in
 * prose).  This header is public and installed: it is the documented wire
 * format, for programs that speak to importanced without
 * libimportance-client.  Its structs and values change only with
 * IMPP_VERSION; the sizes and the flags shared with the engine and the
 * client library are checked at the end of this file.
 *
 * A Unix SOCK_SEQPACKET socket: one frame per packet, so frames are
 * delimited by the kernel.  Integers are in the host's byte order (the
 * socket never leaves the machine).  Every frame is a header followed by
 * `length` bytes of body; bodies are the packed structs below, some
 * followed by variable data.
 */
#ifndef IMPORTANCE_PROTOCOL_H
#define IMPORTANCE_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "importance/client.h"
#include "importance/importance.h"

#define IMPP_MAGIC 0x31504d49u /* "IMP1" */
#define IMPP_VERSION 3u
#define IMPP_MAX_PAYLOAD 65536u  /* message data */
#define IMPP_MAX_NAME 255u
#define IMPP_MAX_TEXT (1u << 20) /* graph and task listings */
#define IMPP_MAX_REQUEST (sizeof(struct impp_header) + 64u + IMPP_MAX_PAYLOAD)
/* BATCH frames, both ways: room for two full-size messages; a batch reply
 * stops adding messages before it would pass this (the first one always
 * fits). */
#define IMPP_MAX_BATCH (sizeof(struct impp_header) + 256u + 2u * IMPP_MAX_PAYLOAD)
#define IMPP_MAX_BATCH_ITEMS 1024u /* releases, sends or messages */
/* The largest frame the daemon sends: a text reply (TASKS, GRAPH) of
 * IMPP_MAX_TEXT bytes; larger than any BATCH reply.  Clients receive into
 * a buffer this big; the daemon sizes its sockets' send buffers for it. */
#define IMPP_MAX_FRAME (sizeof(struct impp_header) + 8u + IMPP_MAX_TEXT)
/* File descriptors passed with one frame (SCM_RIGHTS), either way: the
 * files of one SEND, of all the sends of one BATCH, of the messages of one
 * receive reply.  A frame with more is refused (-ETOOMANYREFS). */
#define IMPP_MAX_FDS 16u
/* Room for the control message that passes a frame's files. */
#define IMPP_FDS_CONTROL_SIZE CMSG_SPACE(IMPP_MAX_FDS * sizeof(int))
#define IMPP_DEFAULT_SOCKET "/run/importanced.sock"

struct impp_header {
	uint32_t magic;
	uint16_t type;   /* IMPP_REQ_*, IMPP_REPLY(type), IMPP_EVT_* */
	uint16_t flags;  /* 0 */
	uint32_t serial; /* chosen by the client, echoed in the reply */
	uint32_t length; /* bytes of body after the header */
} __attribute__((packed));

enum impp_request {
	IMPP_REQ_HELLO = 1,
	IMPP_REQ_PORT_ALLOCATE = 2,
	IMPP_REQ_PORT_DESTROY = 3,
	IMPP_REQ_NAME_REGISTER = 4,
	IMPP_REQ_NAME_LOOKUP = 5,
	IMPP_REQ_SEND = 6,
	IMPP_REQ_RECEIVE = 7,
	IMPP_REQ_VOUCHER_RELEASE = 8,
	IMPP_REQ_VOUCHER_DROP_EXTERNAL = 9,
	IMPP_REQ_VOUCHER_DESCRIBE = 10,
	IMPP_REQ_LEGACY_COMPLETE = 11,
	IMPP_REQ_FILELOCK = 12,
	IMPP_REQ_STATUS = 13,
	IMPP_REQ_TASKS = 14,
	IMPP_REQ_GRAPH = 15,
	IMPP_REQ_MONITOR = 16,
	IMPP_REQ_DONOR = 17,
	IMPP_REQ_SEND_RECEIVE = 18,
	IMPP_REQ_BATCH = 19,
	IMPP_REQ_CONFIRM = 20,
	IMPP_REQ_WHY = 21,
	IMPP_REQ_FOREGROUND = 22,
	IMPP_REQ_AGENT_ATTACH = 23,   /* the session agent (below) */
	IMPP_REQ_AGENT_EVENTS = 24,
	IMPP_REQ_AGENT_IDENTITY = 25,
	IMPP_REQ_AGENT_UNKNOWN = 26,
	IMPP_REQ_AGENT_OWNER = 27,
	IMPP_REQ_AGENT_DETACH = 28,
	IMPP_REQ_MAX_
};

#define IMPP_REPLY_BIT 0x8000u
#define IMPP_REPLY(type) ((uint16_t)((type) | IMPP_REPLY_BIT))

enum impp_event {
	IMPP_EVT_POLICY = 0x4001,        /* struct impp_evt_policy (monitors) */
	IMPP_EVT_MSG_DESTROYED = 0x4002, /* struct impp_evt_msg_destroyed (senders) */
	IMPP_EVT_ERROR = 0x4003,         /* struct impp_reply_status: a frame that
	                                    could not be answered (bad header) */
	IMPP_EVT_AGENT_QUESTION = 0x4004, /* struct impp_evt_agent_question (agents) */
};

/* HELLO: the first request of every connection. */
#define IMPP_HELLO_RECEIVER 1u       /* accepts importance boosts */
#define IMPP_HELLO_DENAP_RECEIVER 2u /* accepts de-nap boosts */
#define IMPP_HELLO_MONITOR 4u        /* an observer: no task of its own */
struct impp_req_hello {
	uint32_t version;
	uint32_t flags;
} __attribute__((packed));
struct impp_reply_hello {
	int32_t status; /* every reply starts with a status: 0 or -errno */
	uint32_t version;
	int32_t pid;    /* as the kernel reported it */
	uint32_t donor; /* donor status given by the daemon's donor rules */
	uint64_t challenge; /* HELLO: to be sent back by CONFIRM */
} __attribute__((packed));

/*
 * CONFIRM: the second half of the handshake of a connection with a task
 * (not a monitor's).  HELLO makes the task, not a donor; CONFIRM sends
 * back HELLO's challenge, and only then do the donor rules decide, about
 * the process as it is then, provided it still runs what it ran when its
 * HELLO was read.  A frame says nothing of the program that wrote it: a
 * process could queue requests and then exec a donor's program.  The
 * challenge is known only to code that read HELLO's reply, and the
 * executable is checked at both ends, so donor status goes only to a
 * program that took part in the handshake itself.  Reply: as HELLO's.
 */
struct impp_req_confirm {
	uint64_t challenge;
} __attribute__((packed));

struct impp_reply_status {
	int32_t status;
} __attribute__((packed));

/* PORT_ALLOCATE: a receive right owned by the caller. */
#define IMPP_PORT_NO_DONATION 1u
struct impp_req_port_allocate {
	uint32_t flags;
} __attribute__((packed));
struct impp_reply_port {
	int32_t status;
	uint32_t pad;
	uint64_t port;
} __attribute__((packed));

/* PORT_DESTROY, VOUCHER_RELEASE, VOUCHER_DESCRIBE: one handle. */
struct impp_req_handle {
	uint64_t handle;
} __attribute__((packed));

/* NAME_REGISTER {port, len, name}; NAME_LOOKUP {0, len, name} -> port. */
struct impp_req_name {
	uint64_t port;
	uint16_t len;
	char name[];
} __attribute__((packed));

/* SEND: data follows.  voucher 0: none.  reply_port 0: none (else the
 * receiver is given a send right to it).  n_fds: files passed with the
 * frame (SCM_RIGHTS) that travel with the message, as many as the frame
 * carries.  A send to a port whose receiver is gone fails with -EPIPE. */
#define IMPP_SEND_NOIMPORTANCE 2u /* IMP_SEND_NOIMPORTANCE */
struct impp_req_send {
	uint64_t port;
	uint64_t voucher;
	uint64_t reply_port;
	uint32_t options;
	uint32_t len;
	uint32_t n_fds;
	uint8_t data[];
} __attribute__((packed));
struct impp_reply_send {
	int32_t status;
	uint32_t pad;
	uint64_t msg_id;
} __attribute__((packed));

/* RECEIVE: timeout_ms -1 blocks, 0 polls (-EAGAIN when empty).  A
 * blocking receive parks the connection (no further request is read until
 * it is answered), unless it is ASYNC: then it waits on the port alone,
 * the connection keeps being served, and its reply comes whenever a
 * message does (or the timeout passes; -ECANCELED if the port is
 * destroyed).  One receive waits on a port at a time (-EBUSY). */
#define IMPP_RECV_VOUCHER 1u
#define IMPP_RECV_ASYNC 2u
struct impp_req_receive {
	uint64_t port;
	int32_t timeout_ms;
	uint32_t flags;
} __attribute__((packed));
struct impp_reply_receive {
	int32_t status;
	int32_t sender_pid;
	uint64_t msg_id;
	uint64_t voucher;    /* 0: the null voucher (or not asked) */
	uint64_t reply_port; /* a send right now held by the receiver, or 0 */
	uint32_t len;
	uint32_t n_fds;      /* files passed with the reply frame, in order */
	uint8_t data[];
} __attribute__((packed));

/* SEND_RECEIVE: Mach's combined mach_msg: release a voucher (0: none),
 * send (send_port 0: no send), then receive on recv_port, in one round
 * trip.  The reply is a RECEIVE reply; a send error is the reply's status
 * and then nothing is received. */
struct impp_req_send_receive {
	uint64_t release_voucher;
	uint64_t send_port;
	uint64_t send_voucher;
	uint64_t reply_port;
	uint32_t options;
	uint32_t len;
	uint64_t recv_port;
	int32_t timeout_ms;
	uint32_t recv_flags;
	uint32_t n_fds; /* files passed with the send */
	uint8_t data[];
} __attribute__((packed));

/*
 * BATCH: SEND_RECEIVE for many, so that a busy client or server pays one
 * round trip (and one wakeup of each side) for many messages.  In order:
 * release n_release voucher handles, send n_send messages, then receive
 * up to recv_max messages from recv_port (0: receive nothing): as many as
 * are queued, or, when none is, the first to arrive within timeout_ms.
 *
 * Request body: struct impp_req_batch, n_release uint64_t handles, then
 * n_send records, each a struct impp_req_send followed by its data; the
 * frame's files are the sends' files in order (their n_fds add up to the
 * number passed).  The
 * whole frame is checked before anything is done: a malformed one is
 * refused (status -EBADMSG, -EMSGSIZE, -E2BIG) with nothing released or
 * sent.  Otherwise every release and send has its own status, as if it
 * had been a request of its own, and one failing does not stop the rest.
 *
 * Reply body: struct impp_reply_batch, n_release int32_t statuses, n_send
 * struct impp_reply_send, then n_recv records, each a struct
 * impp_reply_receive followed by its data, the frame's files being the
 * messages' files in order (a reply stops adding messages before it would
 * pass IMPP_MAX_FDS).  recv_flags may be ASYNC.  recv_status says why no
 * message came: -EAGAIN (timeout 0, none queued), -ETIMEDOUT, -ENOENT
 * (not our port), -EINVAL (flags), -EDQUOT (voucher quota).
 */
struct impp_req_batch {
	uint32_t n_release;
	uint32_t n_send;
	uint64_t recv_port;
	int32_t timeout_ms;
	uint32_t recv_flags;
	uint32_t recv_max;
	uint32_t pad;
} __attribute__((packed));
struct impp_reply_batch {
	int32_t status;
	int32_t recv_status;
	uint32_t n_release;
	uint32_t n_send;
	uint32_t n_recv;
	uint32_t pad;
} __attribute__((packed));

struct impp_req_drop_external {
	uint64_t voucher;
	uint32_t refs;
} __attribute__((packed));
/* VOUCHER_DROP_EXTERNAL, LEGACY_COMPLETE: a Mach-style code. */
struct impp_reply_code {
	int32_t status;
	int32_t code;      /* IMP_KERN_* */
	uint32_t remaining;
} __attribute__((packed));

/*
 * FILELOCK: the caller, a donor, is about to wait for a lock on a file (op
 * WAIT, the file's descriptor passed with the request as SCM_RIGHTS, the
 * lock as fcntl's F_RDLCK/F_WRLCK over [start, start + len), len 0: to the
 * end), or has stopped waiting (op DONE, id of the wait).  The daemon
 * boosts the receiver that holds a conflicting lock while the caller
 * waits.  Reply: struct impp_reply_filelock.
 */
#define IMPP_FILELOCK_DONE 0u
#define IMPP_FILELOCK_WAIT 1u
struct impp_req_filelock {
	uint32_t op;
	int16_t type;
	int16_t pad;
	int64_t start;
	int64_t len;
	uint64_t id;
} __attribute__((packed));
struct impp_reply_filelock {
	int32_t status;
	int32_t holder_pid; /* WAIT: the process boosted */
	uint64_t id;        /* WAIT: the wait, for DONE */
} __attribute__((packed));

/* VOUCHER_DESCRIBE, TASKS, GRAPH: text follows (not terminated). */
struct impp_reply_text {
	int32_t status;
	uint32_t len;
	char text[];
} __attribute__((packed));

struct impp_reply_stats {
	int32_t status;
	uint32_t clients;
	uint64_t task_elems, inherits, vouchers, ports, messages, delayed;
	uint64_t boosts_applied, unboosts_applied, requests, protocol_errors;
	char policy[16]; /* the boost backend in use: "cgroup-v1", "nice", ... */
	uint32_t backends_len; /* then that many bytes: the backend in use and
	                          why each other one was not chosen, a line each */
} __attribute__((packed));

/* DONOR (privileged: root or the daemon's user). */
struct impp_req_donor {
	int32_t pid;
	uint32_t on;
} __attribute__((packed));

/* WHY: what boosts the tasks of pid now, as text (struct impp_reply_text):
 * who sent the messages queued for it and whose vouchers it holds.  Any
 * caller, about tasks its uid may see (root: all); -ESRCH when none. */
struct impp_req_why {
	int32_t pid;
	uint32_t flags; /* 0 */
} __attribute__((packed));

/* FOREGROUND: what is in front for a uid (foreground.h).  pid 0: nothing
 * of the caller's uid is; otherwise that process is (with
 * IMPP_FOREGROUND_CGROUP: every process of its uid in its cgroup), which
 * must be of the caller's own effective uid unless the caller is root or
 * the daemon's user.  IMPP_FOREGROUND_FORGET: no source speaks for the
 * caller's uid any more (pid must be 0). */
#define IMPP_FOREGROUND_CGROUP 1u
#define IMPP_FOREGROUND_FORGET 2u
struct impp_req_foreground {
	int32_t pid;
	uint32_t flags;
} __attribute__((packed));

/*
 * The session agent (docs/agent.md): a process of a bus's user that
 * watches that bus (a session bus refuses root) and relays what it sees.
 * The daemon feeds it to a bus model (daemon/bus.h) owned by the uid the
 * kernel gives for the agent's connection, so the agent is believed only
 * about processes of that uid (root's agent: about everyone's).  An agent
 * says HELLO as a monitor.  Every reply is a struct impp_reply_status
 * (ATTACH's a struct impp_reply_agent_attach); -ENOENT: no such bus of
 * this connection's.
 *
 * AGENT_ATTACH {len, address}: the agent watches the bus it calls address
 * (1..IMPP_AGENT_ADDRESS_MAX printable bytes; a label for logs and `impctl
 * why`); the reply names the bus for the other requests.  At most
 * IMPP_AGENT_BUSES_PER_UID per uid (-EDQUOT) and IMPP_AGENT_BUSES_MAX in
 * all (-EUSERS).  AGENT_DETACH {bus}: watched no more; every boost from it
 * drops, as when the connection closes.
 *
 * AGENT_EVENTS {bus, n}: n (1..IMPP_AGENT_EVENTS_MAX) messages the bus
 * routed, in its order and read together (a call answered among them
 * boosts nothing), each a struct impp_agent_event followed by its strings
 * (len[i] bytes each, not terminated, in the order of the fields):
 * sender, destination, interface, member (len 0: none), and
 * NameOwnerChanged's three arguments (len 0: "").  Only method calls, returns, errors and the driver's
 * NameOwnerChanged matter; anything else is ignored.
 *
 * IMPP_EVT_AGENT_QUESTION {bus, what, len, name}: the daemon asks who a
 * connection is (IMPP_AGENT_WHO: GetConnectionCredentials) or who owns a
 * name (IMPP_AGENT_OWNER_OF: GetNameOwner).  At most
 * IMPP_AGENT_QUESTIONS_MAX are asked at once per bus; one not answered
 * within IMPP_AGENT_QUESTION_MS is taken as unknown.  The answers:
 *   AGENT_IDENTITY {bus, pid, uid, len, unique}, with the bus's ProcessFD
 *     passed (SCM_RIGHTS, one file) when the bus gave one;
 *   AGENT_UNKNOWN {bus, error, len, unique}: error a -errno (-ESRCH: no
 *     such connection);
 *   AGENT_OWNER {bus, len, len_owner, name, owner}: len_owner 0, no owner.
 * An answer to nothing asked is refused (-ENOENT) and changes nothing.
 */
#define IMPP_AGENT_ADDRESS_MAX 200u
#define IMPP_AGENT_EVENTS_MAX 256u
#define IMPP_AGENT_BUSES_PER_UID 2u
#define IMPP_AGENT_BUSES_MAX 32u
#define IMPP_AGENT_QUESTIONS_MAX 64u
#define IMPP_AGENT_QUESTION_MS 1000u
#define IMPP_AGENT_WHO 1u
#define IMPP_AGENT_OWNER_OF 2u
#define IMPP_AGENT_EXPECT_REPLY 1u /* impp_agent_event.flags */
#define IMPP_AGENT_STRINGS 7u
struct impp_req_agent_attach {
	uint16_t len;
	char address[];
} __attribute__((packed));
struct impp_reply_agent_attach {
	int32_t status;
	uint32_t bus;
} __attribute__((packed));
struct impp_req_agent_bus {
	uint32_t bus;
} __attribute__((packed));
struct impp_req_agent_events {
	uint32_t bus;
	uint32_t n;
} __attribute__((packed));
struct impp_agent_event {
	uint8_t type;  /* the D-Bus message type: 1 call, 2 return, 3 error, 4 signal */
	uint8_t flags; /* IMPP_AGENT_EXPECT_REPLY */
	uint8_t len[IMPP_AGENT_STRINGS];
	uint8_t pad[7];
	uint64_t serial;       /* the message's */
	uint64_t reply_serial; /* returns and errors: the call's */
} __attribute__((packed));
struct impp_req_agent_identity {
	uint32_t bus;
	int32_t pid;
	uint32_t uid;
	uint8_t len;
	char unique[];
} __attribute__((packed));
struct impp_req_agent_unknown {
	uint32_t bus;
	int32_t error;
	uint8_t len;
	char unique[];
} __attribute__((packed));
struct impp_req_agent_owner {
	uint32_t bus;
	uint8_t len;
	uint8_t len_owner;
	char names[]; /* the name, then its owner */
} __attribute__((packed));
struct impp_evt_agent_question {
	uint32_t bus;
	uint8_t what; /* IMPP_AGENT_WHO, IMPP_AGENT_OWNER_OF */
	uint8_t len;
	char name[];
} __attribute__((packed));

struct impp_evt_policy {
	int32_t pid;
	uint32_t boosted;
	uint64_t time_ns;
	int32_t applied; /* 0, or -errno from the backend */
	int32_t value;   /* nice value or cpu.weight now in force */
} __attribute__((packed));

struct impp_evt_msg_destroyed {
	uint64_t msg_id;
	uint64_t port;
} __attribute__((packed));

/* Passes n_fds files (0 to IMPP_MAX_FDS) with the frame mh sends: lays
 * out its SCM_RIGHTS control message in control (IMPP_FDS_CONTROL_SIZE
 * bytes, aligned as a struct cmsghdr). */
static inline void impp_attach_fds(struct msghdr *mh, void *control, const int *fds, size_t n_fds)
{
	struct cmsghdr *cm;

	if (!n_fds)
		return;
	memset(control, 0, CMSG_SPACE(n_fds * sizeof(int)));
	mh->msg_control = control;
	mh->msg_controllen = CMSG_SPACE(n_fds * sizeof(int));
	cm = CMSG_FIRSTHDR(mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, n_fds * sizeof(int));
}

/* The wire format's sizes (bodies without their variable data), and the
 * flags that mean the same in the engine, the client library and here. */
#ifdef __cplusplus
#define IMPP_STATIC_ASSERT(cond, what) static_assert(cond, what)
#else
#define IMPP_STATIC_ASSERT(cond, what) _Static_assert(cond, what)
#endif
IMPP_STATIC_ASSERT(sizeof(struct impp_header) == 16, "impp_header");
IMPP_STATIC_ASSERT(sizeof(struct impp_req_hello) == 8, "impp_req_hello");
IMPP_STATIC_ASSERT(sizeof(struct impp_reply_hello) == 24, "impp_reply_hello");
IMPP_STATIC_ASSERT(sizeof(struct impp_req_confirm) == 8, "impp_req_confirm");
IMPP_STATIC_ASSERT(sizeof(struct impp_reply_status) == 4, "impp_reply_status");
IMPP_STATIC_ASSERT(sizeof(struct impp_req_port_allocate) == 4, "impp_req_port_allocate");
IMPP_STATIC_ASSERT(sizeof(struct impp_reply_port) == 16, "impp_reply_port");
IMPP_STATIC_ASSERT(sizeof(struct impp_req_handle) == 8, "impp_req_handle");
IMPP_STATIC_ASSERT(sizeof(struct impp_req_name) == 10, "impp_req_name");
IMPP_STATIC_ASSERT(sizeof(struct impp_req_send) == 36, "impp_req_send");
IMPP_STATIC_ASSERT(sizeof(struct impp_reply_send) == 16, "impp_reply_send");
IMPP_STATIC_ASSERT(sizeof(struct impp_req_receive) == 16, "impp_req_receive");
IMPP_STATIC_ASSERT(sizeof(struct impp_reply_receive) == 40, "impp_reply_receive");
IMPP_STATIC_ASSERT(sizeof(struct impp_req_send_receive) == 60, "impp_req_send_receive");
IMPP_STATIC_ASSERT(sizeof(struct impp_req_batch) == 32, "impp_req_batch");
IMPP_STATIC_ASSERT(sizeof(struct impp_reply_batch) == 24, "impp_reply_batch");
IMPP_STATIC_ASSERT(sizeof(struct impp_req_drop_external) == 12, "impp_req_drop_external");
IMPP_STATIC_ASSERT(sizeof(struct impp_reply_code) == 12, "impp_reply_code");
IMPP_STATIC_ASSERT(sizeof(struct impp_req_filelock) == 32, "impp_req_filelock");
IMPP_STATIC_ASSERT(sizeof(struct impp_reply_filelock) == 16, "impp_reply_filelock");
IMPP_STATIC_ASSERT(sizeof(struct impp_reply_text) == 8, "impp_reply_text");
IMPP_STATIC_ASSERT(sizeof(struct impp_reply_stats) == 108, "impp_reply_stats");
IMPP_STATIC_ASSERT(sizeof(struct impp_req_donor) == 8, "impp_req_donor");
IMPP_STATIC_ASSERT(sizeof(struct impp_req_foreground) == 8, "impp_req_foreground");
IMPP_STATIC_ASSERT(sizeof(struct impp_req_why) == 8, "impp_req_why");
IMPP_STATIC_ASSERT(sizeof(struct impp_evt_policy) == 24, "impp_evt_policy");
IMPP_STATIC_ASSERT(sizeof(struct impp_evt_msg_destroyed) == 16, "impp_evt_msg_destroyed");
IMPP_STATIC_ASSERT(IMPP_SEND_NOIMPORTANCE == IMP_SEND_NOIMPORTANCE &&
		   IMPP_SEND_NOIMPORTANCE == IMPC_SEND_NOIMPORTANCE,
		   "one NOIMPORTANCE flag for the wire, the engine and the client library");
IMPP_STATIC_ASSERT(IMPP_RECV_VOUCHER == IMP_RECV_VOUCHER && IMPP_RECV_VOUCHER == IMPC_RECV_VOUCHER,
		   "one RECV_VOUCHER flag for the wire, the engine and the client library");
IMPP_STATIC_ASSERT(IMPP_HELLO_RECEIVER == IMPC_RECEIVER &&
		   IMPP_HELLO_DENAP_RECEIVER == IMPC_DENAP_RECEIVER &&
		   IMPP_HELLO_MONITOR == IMPC_MONITOR,
		   "impc_connect's flags are HELLO's");

#endif
