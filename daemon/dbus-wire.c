/* dbus-wire (dbus-wire.h): the messages in a monitor's bytes. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "dbus-wire.h"

/* header field codes (the D-Bus specification's) */
enum {
	FIELD_PATH = 1,
	FIELD_INTERFACE,
	FIELD_MEMBER,
	FIELD_ERROR_NAME,
	FIELD_REPLY_SERIAL,
	FIELD_DESTINATION,
	FIELD_SENDER,
	FIELD_SIGNATURE,
	FIELD_UNIX_FDS,
};

/* the one type each known field code takes */
static const char field_type[] = {
	[FIELD_PATH] = 'o',
	[FIELD_INTERFACE] = 's',
	[FIELD_MEMBER] = 's',
	[FIELD_ERROR_NAME] = 's',
	[FIELD_REPLY_SERIAL] = 'u',
	[FIELD_DESTINATION] = 's',
	[FIELD_SENDER] = 's',
	[FIELD_SIGNATURE] = 'g',
	[FIELD_UNIX_FDS] = 'u',
};

#define FLAG_NO_REPLY_EXPECTED 0x1
/* containers inside one another in one signature (the specification
 * allows 32 arrays and 32 structures), and values read inside one another
 * (structures and variants: a variant's signature has a depth of its own,
 * so this bounds the recursion, not any one type) */
#define MAX_DEPTH 64
/* the longest array, the header fields' among them */
#define MAX_ARRAY (64u << 20)

/* Reading bytes p[at..end), aligned as the message is (p is its start). */
struct cursor {
	const uint8_t *p;
	size_t at, end;
	bool big; /* big-endian */
};

static bool align(struct cursor *c, size_t a)
{
	size_t at = (c->at + a - 1) & ~(a - 1);

	if (at > c->end)
		return false;
	c->at = at;
	return true;
}

static bool skip(struct cursor *c, size_t a, size_t n)
{
	if (!align(c, a) || c->end - c->at < n)
		return false;
	c->at += n;
	return true;
}

static bool read_u32(struct cursor *c, uint32_t *v)
{
	const uint8_t *q;

	if (!align(c, 4) || c->end - c->at < 4)
		return false;
	q = c->p + c->at;
	if (c->big)
		*v = (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
	else
		*v = (uint32_t)q[3] << 24 | (uint32_t)q[2] << 16 | (uint32_t)q[1] << 8 | q[0];
	c->at += 4;
	return true;
}

/* n bytes and a NUL, none inside */
static bool read_text(struct cursor *c, size_t n, const char **s)
{
	const uint8_t *q = c->p + c->at;

	if (c->end - c->at < n + 1 || q[n] != 0 || memchr(q, 0, n))
		return false;
	*s = (const char *)q;
	c->at += n + 1;
	return true;
}

/* a string or an object path: a 32-bit length, the bytes, a NUL */
static bool read_string(struct cursor *c, const char **s)
{
	uint32_t n;

	return read_u32(c, &n) && n < MAX_ARRAY && read_text(c, n, s);
}

/* a signature: an 8-bit length, the bytes, a NUL */
static bool read_signature(struct cursor *c, const char **s, size_t *len)
{
	if (c->at >= c->end)
		return false;
	*len = c->p[c->at++];
	return read_text(c, *len, s);
}

static bool is_basic(char t)
{
	return t && strchr("ybnqiuxtdhsog", t);
}

static size_t alignment(char t)
{
	switch (t) {
	case 'n':
	case 'q':
		return 2;
	case 'b':
	case 'i':
	case 'u':
	case 'h':
	case 's':
	case 'o':
	case 'a':
		return 4;
	case 'x':
	case 't':
	case 'd':
	case '(':
	case '{':
		return 8;
	default: /* y g v */
		return 1;
	}
}

/* The end of the one complete type at s[i] (of len), inside depth
 * containers of the same signature, or -1. */
static long type_end(const char *s, size_t len, size_t i, int depth)
{
	size_t j;
	long k;

	if (i >= len || depth > MAX_DEPTH)
		return -1;
	if (is_basic(s[i]) || s[i] == 'v')
		return (long)i + 1;
	if (s[i] == 'a') {
		if (i + 1 < len && s[i + 1] == '{') { /* a dict entry: a basic key and one value */
			if (i + 2 >= len || !is_basic(s[i + 2]))
				return -1;
			k = type_end(s, len, i + 3, depth + 1);
			return k >= 0 && (size_t)k < len && s[k] == '}' ? k + 1 : -1;
		}
		return type_end(s, len, i + 1, depth + 1);
	}
	if (s[i] == '(') {
		j = i + 1;
		if (j < len && s[j] == ')')
			return -1; /* no empty structure */
		while (j < len && s[j] != ')') {
			if ((k = type_end(s, len, j, depth + 1)) < 0)
				return -1;
			j = (size_t)k;
		}
		return j < len ? (long)j + 1 : -1;
	}
	return -1;
}

/* Steps over one value of the complete type at s[i] (of a signature
 * type_end found whole), inside depth values; the type's end, or -1. */
static long skip_value(struct cursor *c, const char *s, size_t len, size_t i, int depth)
{
	const char *inner, *text;
	size_t inner_len;
	uint32_t n;
	long end;

	if (depth > MAX_DEPTH || (end = type_end(s, len, i, 0)) < 0)
		return -1;
	switch (s[i]) {
	case 'y':
		return skip(c, 1, 1) ? end : -1;
	case 'n':
	case 'q':
		return skip(c, 2, 2) ? end : -1;
	case 'b':
	case 'i':
	case 'u':
	case 'h':
		return skip(c, 4, 4) ? end : -1;
	case 'x':
	case 't':
	case 'd':
		return skip(c, 8, 8) ? end : -1;
	case 's':
	case 'o':
		return read_string(c, &text) ? end : -1;
	case 'g':
		return read_signature(c, &text, &inner_len) ? end : -1;
	case 'v':
		if (!read_signature(c, &inner, &inner_len) || type_end(inner, inner_len, 0, 0) != (long)inner_len)
			return -1;
		return skip_value(c, inner, inner_len, 0, depth + 1) >= 0 ? end : -1;
	case 'a': /* stepped over by its length, elements unread */
		if (!read_u32(c, &n) || n > MAX_ARRAY)
			return -1;
		return skip(c, alignment(s[i + 1]), n) ? end : -1;
	case '(':
		if (!align(c, 8))
			return -1;
		for (size_t j = i + 1; s[j] != ')';) {
			long k = skip_value(c, s, len, j, depth + 1);

			if (k < 0)
				return -1;
			j = (size_t)k;
		}
		return end;
	default:
		return -1;
	}
}

/* A field's value, of the one type a known code takes. */
static bool read_field(struct cursor *c, const char *sig, char want, const char **s, uint32_t *u)
{
	size_t len;

	if (sig[0] != want || sig[1])
		return false;
	switch (want) {
	case 'u':
		return read_u32(c, u);
	case 'g':
		return read_signature(c, s, &len);
	default:
		return read_string(c, s);
	}
}

int dbus_wire_parse(const uint8_t *p, size_t avail, size_t *total, size_t *need, struct dbus_event *ev)
{
	struct cursor c = { p, 4, DBUS_WIRE_FIXED, false };
	const char *signature = "";
	/* where the strings of the fields we use go */
	const char **kept[] = { [FIELD_INTERFACE] = &ev->interface, [FIELD_MEMBER] = &ev->member,
				[FIELD_DESTINATION] = &ev->destination, [FIELD_SENDER] = &ev->sender,
				[FIELD_SIGNATURE] = &signature };
	uint32_t body_len, serial, fields_len, reply_serial = 0;
	size_t fields_end, body;
	uint8_t type, flags;

	*total = 0;
	*need = DBUS_WIRE_FIXED;
	if (avail < DBUS_WIRE_FIXED)
		return -EAGAIN;
	if (p[0] != 'l' && p[0] != 'B')
		return -EBADMSG;
	c.big = p[0] == 'B';
	type = p[1];
	flags = p[2];
	if (p[3] != 1 || !read_u32(&c, &body_len) || !read_u32(&c, &serial) || !read_u32(&c, &fields_len) ||
	    fields_len > MAX_ARRAY || serial == 0)
		return -EBADMSG;
	fields_end = DBUS_WIRE_FIXED + fields_len;
	body = (fields_end + 7) & ~(size_t)7;
	if (body_len > DBUS_WIRE_MAX - body)
		return -EBADMSG;
	*total = body + body_len;
	*need = fields_end;
	if (type < SD_BUS_MESSAGE_METHOD_CALL || type > SD_BUS_MESSAGE_SIGNAL)
		return -ENOMSG; /* a type we do not know: stepped over, as the specification says */
	if (avail < fields_end)
		return -EAGAIN;

	memset(ev, 0, sizeof(*ev));
	c.end = fields_end;
	while (c.at < fields_end) {
		const char *sig, *text = NULL;
		uint32_t number = 0;
		size_t sig_len;
		uint8_t code;
		char want;
		bool ok;

		if (!align(&c, 8) || c.at >= fields_end)
			return -EBADMSG;
		code = p[c.at++];
		if (!read_signature(&c, &sig, &sig_len) || type_end(sig, sig_len, 0, 0) != (long)sig_len)
			return -EBADMSG;
		want = code < sizeof(field_type) ? field_type[code] : 0;
		if (!want) /* not a field code (0), or one we do not know: stepped over */
			ok = code && skip_value(&c, sig, sig_len, 0, 1) >= 0;
		else if ((ok = read_field(&c, sig, want, &text, &number))) {
			if (code < sizeof(kept) / sizeof(kept[0]) && kept[code])
				*kept[code] = text;
			if (code == FIELD_REPLY_SERIAL)
				reply_serial = number;
		}
		if (!ok)
			return -EBADMSG;
	}

	ev->type = type;
	ev->serial = serial;
	switch (type) {
	case SD_BUS_MESSAGE_METHOD_CALL:
		ev->expect_reply = !(flags & FLAG_NO_REPLY_EXPECTED);
		break;
	case SD_BUS_MESSAGE_METHOD_RETURN:
	case SD_BUS_MESSAGE_METHOD_ERROR:
		if (!reply_serial)
			return -ENOMSG; /* well-formed, and of no use: what is it the reply to? */
		ev->reply_serial = reply_serial;
		break;
	default: /* a signal: the driver's three names are read from its body */
		if (!ev->sender || strcmp(ev->sender, DBUS_DRIVER) || strcmp(signature, "sss"))
			break;
		*need = *total;
		if (avail < *total)
			return -EAGAIN;
		c.at = body;
		c.end = *total;
		for (int i = 0; i < 3; i++)
			if (!read_string(&c, &ev->args[i]))
				return -EBADMSG;
		break;
	}
	return 0;
}

void dbus_wire_reset(struct dbus_wire *w)
{
	w->n = 0;
	w->discard = 0;
	w->bad = false;
}

uint8_t *dbus_wire_room(struct dbus_wire *w, size_t *room)
{
	*room = DBUS_WIRE_IN - w->n;
	return w->in + w->n;
}

int dbus_wire_feed(struct dbus_wire *w, size_t got, void (*fn)(void *ctx, const struct dbus_event *evs, size_t n),
		   void *ctx)
{
	struct dbus_event evs[DBUS_WIRE_BATCH];
	size_t at = 0, n = 0;
	int r = 0, cut = 0;

	/* where it stopped is lost (and, stepping over, may be inside a
	 * message's body): nothing after it is read as messages */
	if (w->bad)
		return -EBADMSG;
	w->n += got;
	for (;;) {
		size_t left = w->n - at, total, need;

		if (w->discard) {
			size_t k = w->discard < left ? w->discard : left;

			at += k;
			w->discard -= k;
			if (w->discard)
				break;
			continue;
		}
		if (n == DBUS_WIRE_BATCH) {
			fn(ctx, evs, n);
			n = 0;
		}
		r = dbus_wire_parse(w->in + at, left, &total, &need, &evs[n]);
		if (r == -EBADMSG)
			break;
		/* the rest is still to come, and will fit: kept (it is less than
		 * the buffer, moved to its start below) */
		if (r == -EAGAIN && (left < DBUS_WIRE_FIXED || need <= DBUS_WIRE_IN))
			break;
		if (r == 0)
			n++;
		cut++;
		/* used, of no use, or too long to use: stepped over */
		if (total > left) {
			w->discard = total - left;
			total = left;
		}
		at += total;
	}
	if (n)
		fn(ctx, evs, n);
	if (r == -EBADMSG) {
		w->bad = true;
		w->n = 0;
		w->discard = 0;
		return r;
	}
	memmove(w->in, w->in + at, w->n - at);
	w->n -= at;
	return cut;
}
