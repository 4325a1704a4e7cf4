/*
 * Peers: the daemon's connections.
 *
 * A peer is one connection and the process that made it, identified by
 * the kernel (SO_PEERCRED and SO_PEERPIDFD) when it connected.  Requests
 * are accepted only from that process: every frame carries the sender's
 * credentials (SCM_CREDENTIALS), and a frame from any other process (a
 * child that inherited the socket, a process it was passed to) is refused.
 * When the process exits the peer goes with it, even if another process
 * still holds the socket.
 */
#ifndef IMPD_PEER_H
#define IMPD_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "importance/importance.h"
#include "importance/protocol.h"
#include "process.h"

struct broker;
struct process;
struct user;
struct lockwait;

struct outframe {
	TAILQ_ENTRY(outframe) link;
	size_t n_fds;
	int fds[IMPP_MAX_FDS]; /* passed with the frame, closed once sent */
	size_t len;
	uint8_t data[];
};

/* A blocking receive waiting for a message: on the peer (the connection
 * is parked) or, for an ASYNC receive, on the port alone. */
struct park {
	bool on;
	uint16_t type;    /* RECEIVE, SEND_RECEIVE or BATCH */
	uint32_t serial;
	uint64_t port;
	uint32_t flags;
	bool input;       /* the peer sent more while parked */
	uint32_t max;     /* BATCH: messages wanted */
	uint8_t *prefix;  /* BATCH: the reply's statuses so far */
	size_t prefix_len;
	sd_event_source *timer;
};

struct peer {
	uint64_t id; /* first: the key of broker.peers */
	struct broker *b;
	int fd;
	sd_event_source *io, *exit_watch;
	/* who, from the kernel at connect time */
	struct actor actor;
	int pidfd;
	struct user *user;
	bool hello, confirmed, monitor, receiver, denap, donor, dead;
	bool live; /* a donor that is a live donor now (foreground.h) */
	/* HELLO's challenge, and what the process ran when HELLO was read */
	uint64_t challenge;
	dev_t exe_dev;
	ino_t exe_ino;
	uid_t hello_euid;
	imp_task *task;
	void *rights;   /* tsearch of uint64_t* port ids */
	void *vouchers; /* tsearch of struct voucher* */
	unsigned n_rights, n_vouchers, n_ports, n_inflight, n_inflight_fds, n_names, n_lockwaits, errors;
	size_t inflight_bytes;
	uint64_t next_voucher, next_lockwait;
	/* ids of the messages it sends: from a random base, so that they say
	 * nothing of what others send */
	uint64_t msg_base, msg_seq;
	TAILQ_HEAD(, port) ports;
	LIST_HEAD(, lockwait) lockwaits; /* as the waiter */
	LIST_HEAD(, lockwait) lockheld;  /* as the holder */
	struct park park;
	TAILQ_HEAD(, outframe) out; /* replies it has not read yet */
	size_t out_bytes, out_fds;
	bool reading_paused;
	uint32_t io_events; /* as last given to sd-event */
	TAILQ_ENTRY(peer) link;
};

/* A voucher handle held by a peer. */
struct voucher {
	uint64_t handle; /* first: the key of peer.vouchers */
	imp_voucher *voucher;
};

/* The listening socket is readable. */
int peer_accept(struct broker *b, int listen_fd);

/* A connected peer by id (NULL if gone or going). */
struct peer *peer_by_id(struct broker *b, uint64_t id);

void peer_free(struct broker *b, struct peer *c);

/* Queues a frame for c (straight to its socket when nothing is queued). */
void peer_send(struct peer *c, uint16_t type, uint32_t serial, const void *body, size_t len,
	       const void *extra, size_t extra_len);
/* The same, passing n_fds files (at most IMPP_MAX_FDS) with the frame;
 * they are ours from here (closed once sent, or if it cannot be). */
void peer_send_fds(struct peer *c, uint16_t type, uint32_t serial, const void *body, size_t len,
		   const void *extra, size_t extra_len, int *fds, size_t n_fds);
void peer_reply_status(struct peer *c, uint16_t req, uint32_t serial, int status);
void peer_update_io(struct peer *c);

/* Voucher handles: 0 or -errno (-EDQUOT at the limit). */
int peer_voucher_store(struct peer *c, imp_voucher *v, uint64_t *handle);
struct voucher *peer_voucher(struct peer *c, uint64_t handle);
int peer_voucher_release(struct peer *c, uint64_t handle);

#endif
