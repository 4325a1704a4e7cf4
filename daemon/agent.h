/*
 * agent: buses watched by session agents (protocol.h, "The session agent").
 *
 * A session bus refuses root, so its user's own process watches it
 * (importanced-agent) and relays, over the agent's connection to us, the
 * messages the bus routes and the answers to our questions.  Each bus an
 * agent attaches is one bus model (bus.h) of ours, fed with what the agent
 * relays; the model's questions (who is this connection, who owns this
 * name) go to the agent as IMPP_EVT_AGENT_QUESTION events.
 *
 * Trust: the model's owner is the agent's uid as the kernel gave it for
 * the connection (SO_PEERCRED), so the model believes it only about
 * processes of that uid (bus.h, Identity); a pidfd the agent passes is
 * checked like a bus's ProcessFD.  Bounds: IMPP_AGENT_BUSES_PER_UID buses
 * per uid and IMPP_AGENT_BUSES_MAX in all; IMPP_AGENT_QUESTIONS_MAX
 * questions open per bus, each taken as unknown after
 * IMPP_AGENT_QUESTION_MS; the model's own tables (dbus-max-*); a frame's
 * work is bounded by its size.  An agent that goes takes its buses and
 * every boost from them with it.
 *
 * Ownership: a bus belongs to the peer that attached it; agent_peer_gone
 * frees them.  Files passed with a request are taken (set to -1) only
 * when kept.
 */
#ifndef IMPD_AGENT_H
#define IMPD_AGENT_H

#include <stddef.h>
#include <stdint.h>

struct broker;
struct peer;

/* One AGENT_* request of peer c (type, its body of len bytes, the files
 * passed with it).  0 with *bus set for ATTACH (the caller replies), or
 * -errno having changed nothing. */
int agent_request(struct broker *b, struct peer *c, uint16_t type, const uint8_t *body, size_t len, int *fds,
		  size_t n_fds, uint32_t *bus);

/* The peer is going: its buses go, with every boost from them. */
void agent_peer_gone(struct broker *b, struct peer *c);

#endif
