/*
 * Ports, the messages queued on them, and send rights.
 *
 * A port is a receive right owned by one peer.  A peer may send to a port
 * only with a send right for it: from owning it, from a name lookup, or
 * handed to it as the reply port of a message it received.  Messages keep
 * their data here and their importance in the engine.
 */
#ifndef IMPD_PORT_H
#define IMPD_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "importance/importance.h"

struct broker;
struct park;
struct peer;
struct user;

struct message {
	uint64_t id;
	imp_msg *msg;
	struct port *port;
	uint64_t sender_id;  /* the sending peer's id; it may be gone */
	struct user *sender_user; /* charged for it while it is in flight */
	pid_t sender_pid;
	uint64_t reply_port;
	uint32_t len;
	uint8_t *data;
	uint32_t n_fds;
	int *fds;            /* files it carries (ours until handed over) */
	TAILQ_ENTRY(message) link;
};

struct port {
	uint64_t id; /* first: the key of broker.ports */
	imp_port *port;
	struct peer *owner;
	TAILQ_HEAD(, message) queue;
	size_t queued;
	char *name;
	struct park *waiter; /* an ASYNC receive of the owner waiting here */
	TAILQ_ENTRY(port) owner_link;
};

struct port *port_by_id(struct broker *b, uint64_t id);
/* The port id if c owns it, else NULL. */
struct port *port_owned(struct broker *b, struct peer *c, uint64_t id);

/* A port for owner (which gets its send right): 0, -EDQUOT, -ENOMEM. */
int port_new(struct broker *b, struct peer *owner, bool donation, struct port **out);

/* The port goes: its queued messages are destroyed (their senders told),
 * a receive waiting on it fails (-ECANCELED, when its owner stays), its
 * name freed.  engine_too: the engine port is destroyed as well (not
 * when the owner's task exits, which does it). */
void port_destroy(struct broker *b, struct port *p, bool engine_too);

/* Queues a message sent by `sender` (charged for it until it is received
 * or destroyed). */
void port_enqueue(struct broker *b, struct port *p, struct message *m, struct peer *sender);

/* Takes the first queued message off p; its sender is no longer charged. */
struct message *port_dequeue(struct broker *b, struct port *p);

/* Frees m, closing the files it still carries. */
void message_free(struct message *m);

/* Send rights of a peer. */
bool right_has(const struct peer *c, uint64_t port);
/* 0, -EDQUOT (at the limit once rights to dead ports are dropped), -ENOMEM. */
int right_grant(struct broker *b, struct peer *c, uint64_t port);
void right_free_all(struct peer *c);

#endif
