/*
 * dbus-wire: a monitor's byte stream cut into messages, read in bulk.
 *
 * sd-bus reads a connection one message at a time, in two reads each (the
 * fixed header, then the rest), so that descriptors passed with a message
 * stay with it.  A monitor is passed none (it negotiates none), and on a
 * busy bus those reads were most of what importanced did (bench-dbus,
 * docs/dbus.md): so the watcher reads its monitor in large chunks and
 * this module finds the messages in them, taking what the handler uses
 * (struct dbus_event, as dbus_event_from_message fills it) and stepping
 * over the rest.
 *
 * The bytes are the bus's, and a bus is untrusted: every length, offset,
 * string and signature is checked against the bytes there; both byte
 * orders are read; header fields of unknown codes are stepped over by
 * their signature (nesting bounded).  A leaf: no state, no allocation.
 */
#ifndef IMPD_DBUS_WIRE_H
#define IMPD_DBUS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dbus-event.h"

/* the fixed part of a header: byte order, type, flags, version, body
 * length, serial, header fields' length */
#define DBUS_WIRE_FIXED 16
/* the longest message the specification allows */
#define DBUS_WIRE_MAX (128u << 20)

/*
 * The message that starts at p, of which avail bytes are there.
 *   0        ev is filled (its strings point into p); the message is
 *            *total bytes long (possibly more than avail: the rest of its
 *            body is not needed)
 *   -ENOMSG  a well-formed message the handler has no use for (a type
 *            unknown to it, a reply that does not say to what): *total
 *            bytes long
 *   -EAGAIN  more bytes are needed: *need of them from p; *total is set
 *            once avail >= DBUS_WIRE_FIXED
 *   -EBADMSG the bytes are no D-Bus message: the stream cannot be read on
 * total and need are always written.
 */
int dbus_wire_parse(const uint8_t *p, size_t avail, size_t *total, size_t *need, struct dbus_event *ev);

/* the bytes a stream holds between reads; a message whose header (or, for
 * one whose body is read, whole) is longer is stepped over unread */
#define DBUS_WIRE_IN (64 * 1024)
/* messages handed over at once */
#define DBUS_WIRE_BATCH 256

/* A monitor's stream being cut: the bytes read and not used yet.  Zeroed
 * (or dbus_wire_reset): at the start of a stream. */
struct dbus_wire {
	uint8_t in[DBUS_WIRE_IN];
	size_t n;       /* bytes in in[] */
	size_t discard; /* bytes of a message stepped over still to come */
	bool bad;       /* the stream was found no D-Bus: nothing more is read of it */
};

void dbus_wire_reset(struct dbus_wire *w);

/* Where the next read goes: *room bytes (never 0) at the pointer. */
uint8_t *dbus_wire_room(struct dbus_wire *w, size_t *room);

/* got bytes were read into the room: the messages now complete are handed
 * to fn, in order, in batches of up to DBUS_WIRE_BATCH (their strings
 * valid during the call); the bytes of one not complete are kept.  The
 * number of messages cut (handed over or stepped over), or -EBADMSG when
 * the stream is no D-Bus (the batches before it were handed over; the
 * stream cannot be read on: every feed until dbus_wire_reset says so, and
 * hands nothing over). */
int dbus_wire_feed(struct dbus_wire *w, size_t got, void (*fn)(void *ctx, const struct dbus_event *evs, size_t n),
		   void *ctx);

#endif
