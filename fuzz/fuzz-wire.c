/* libFuzzer target: a monitor's byte stream cut into messages
 * (daemon/dbus-wire.c), as a bus that lies would send it.
 *
 * The input's first byte picks the sizes of the pieces the rest is read
 * in; the rest is the stream.  Read whole and read in pieces, the same
 * events must come out in the same order, and the same end (read on, or
 * no D-Bus, after which a stream read on hands nothing more over); every
 * string an event carries lies within the bytes read and ends there (ASan
 * watches the reads themselves). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dbus-wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct digest {
	const struct dbus_wire *w;
	uint64_t hash;
	size_t n;
};

static void mix(uint64_t *h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		*h = (*h ^ b[i]) * 1099511628211ull;
}

static void mix_string(struct digest *d, const char *s)
{
	if (!s) {
		mix(&d->hash, "\1", 1);
		return;
	}
	if ((const uint8_t *)s < d->w->in || (const uint8_t *)s >= d->w->in + d->w->n)
		abort(); /* a string outside the bytes read */
	if (!memchr(s, 0, (size_t)(d->w->in + d->w->n - (const uint8_t *)s)))
		abort(); /* one that does not end there */
	mix(&d->hash, s, strlen(s) + 1);
}

static void on_batch(void *ctx, const struct dbus_event *evs, size_t n)
{
	struct digest *d = ctx;

	if (n == 0 || n > DBUS_WIRE_BATCH)
		abort();
	for (size_t i = 0; i < n; i++) {
		const struct dbus_event *e = &evs[i];

		if (e->type < 1 || e->type > 4 || !e->serial)
			abort();
		mix(&d->hash, &e->type, sizeof(e->type));
		mix(&d->hash, &e->expect_reply, sizeof(e->expect_reply));
		mix(&d->hash, &e->serial, sizeof(e->serial));
		mix(&d->hash, &e->reply_serial, sizeof(e->reply_serial));
		mix_string(d, e->sender);
		mix_string(d, e->destination);
		mix_string(d, e->interface);
		mix_string(d, e->member);
		for (int k = 0; k < 3; k++)
			mix_string(d, e->args[k]);
		d->n++;
	}
}

/* Reads stream in pieces of the sizes given (cycled); the digest and the
 * end. */
static int read_stream(struct dbus_wire *w, const uint8_t *stream, size_t len, const size_t *sizes, size_t n_sizes,
		       struct digest *d)
{
	size_t k = 0;

	dbus_wire_reset(w);
	d->w = w;
	d->hash = 1469598103934665603ull;
	d->n = 0;
	for (size_t at = 0; at < len;) {
		size_t room, take = sizes[k++ % n_sizes];
		uint8_t *to = dbus_wire_room(w, &room);

		if (room == 0)
			abort();
		if (take > room)
			take = room;
		if (take > len - at)
			take = len - at;
		memcpy(to, stream + at, take);
		at += take;
		if (dbus_wire_feed(w, take, on_batch, d) < 0) {
			size_t seen = d->n;

			/* read on, it says so again and hands nothing over */
			to = dbus_wire_room(w, &room);
			if (room == 0 || dbus_wire_feed(w, 0, on_batch, d) != -EBADMSG || d->n != seen)
				abort();
			return -1;
		}
		if (w->n >= DBUS_WIRE_IN)
			abort(); /* a full buffer could never be read into */
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dbus_wire w;
	size_t whole[] = { (size_t)-1 }, pieces[4];
	struct digest a, b;
	int ra, rb;

	if (size < 1)
		return 0;
	for (int i = 0; i < 4; i++)
		pieces[i] = 1 + ((data[0] >> (2 * i)) & 3) * 5;
	ra = read_stream(&w, data + 1, size - 1, whole, 1, &a);
	rb = read_stream(&w, data + 1, size - 1, pieces, 4, &b);
	if (ra != rb || a.n != b.n || a.hash != b.hash)
		abort(); /* how it was read changed what it says */
	return 0;
}
