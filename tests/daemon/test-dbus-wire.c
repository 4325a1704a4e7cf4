/* dbus-wire.c: messages built by sd-bus, written to a socket as sd-bus
 * writes them, cut from the bytes and compared with what sd-bus itself
 * reads of the same messages (dbus_event_from_message); messages of the
 * other byte order and with fields we do not know, built by hand; every
 * prefix of a stream; and bytes that are no D-Bus. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "dbus-event.h"
#include "dbus-wire.h"

/* ---- sd-bus's own bytes ---- */

static sd_bus *builder;
static int wire = -1; /* where the builder's bytes come out */

/* A bus object on a socketpair, authenticated by hand: what it sends is
 * what a bus connection carries. */
static int setup(void **state)
{
	int fds[2];
	const char ok[] = "DATA\r\nOK 0123456789abcdef0123456789abcdef\r\n";
	char buf[512];
	size_t n = 0;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
	assert_true(sd_bus_new(&builder) >= 0);
	assert_true(sd_bus_set_fd(builder, fds[0], fds[0]) >= 0);
	assert_true(sd_bus_negotiate_fds(builder, 0) >= 0);
	assert_true(sd_bus_start(builder) >= 0);
	wire = fds[1];
	assert_int_equal(write(wire, ok, sizeof(ok) - 1), (ssize_t)(sizeof(ok) - 1));
	/* sd-bus sends AUTH and BEGIN; once it has read OK it is running */
	while (!strstr(buf, "BEGIN\r\n")) {
		ssize_t got;

		assert_true(sd_bus_process(builder, NULL) >= 0);
		got = recv(wire, buf + n, sizeof(buf) - 1 - n, MSG_DONTWAIT);
		if (got > 0)
			n += (size_t)got;
		buf[n] = 0;
		if (got <= 0)
			usleep(1000);
		if (buf[0] == 0 && n > 0) /* the leading NUL byte */
			memmove(buf, buf + 1, n--);
	}
	for (int i = 0; i < 100 && sd_bus_is_ready(builder) <= 0; i++) {
		sd_bus_process(builder, NULL);
		usleep(1000);
	}
	assert_true(sd_bus_is_ready(builder) > 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sd_bus_flush_close_unref(builder);
	close(wire);
	return 0;
}

/* Sends m and returns its bytes as they came out (a buffer of *len). */
static uint8_t *send_bytes(sd_bus_message *m, size_t *len)
{
	size_t cap = 1 << 20, n = 0;
	uint8_t *out = malloc(cap);
	size_t total = 0, need = 0;
	struct dbus_event ev;
	uint64_t cookie; /* (asked for: without it sd-bus sends a call as expecting no reply) */

	assert_non_null(out);
	assert_true(sd_bus_send(builder, m, &cookie) >= 0);
	assert_true(sd_bus_flush(builder) >= 0);
	for (;;) {
		ssize_t got = recv(wire, out + n, cap - n, MSG_DONTWAIT);

		if (got > 0)
			n += (size_t)got;
		if (n >= DBUS_WIRE_FIXED) {
			int r = dbus_wire_parse(out, n, &total, &need, &ev);

			assert_int_not_equal(r, -EBADMSG);
			if (total && n >= total)
				break;
		}
		if (got <= 0)
			usleep(1000);
	}
	assert_int_equal(n, total);
	*len = n;
	return out;
}

static void assert_same_string(const char *a, const char *b)
{
	if (!a || !b)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

/* What we cut from m's bytes is what sd-bus reads of m. */
static void assert_same_event(sd_bus_message *m, const uint8_t *bytes, size_t len)
{
	struct dbus_event mine, theirs;
	size_t total, need;

	assert_int_equal(dbus_wire_parse(bytes, len, &total, &need, &mine), 0);
	assert_int_equal(total, len);
	assert_true(sd_bus_message_rewind(m, true) >= 0);
	assert_int_equal(dbus_event_from_message(m, &theirs), 0);
	assert_int_equal(mine.type, theirs.type);
	assert_int_equal(mine.expect_reply, theirs.expect_reply);
	assert_int_equal(mine.serial, theirs.serial);
	assert_int_equal(mine.reply_serial, theirs.reply_serial);
	assert_same_string(mine.sender, theirs.sender);
	assert_same_string(mine.destination, theirs.destination);
	assert_same_string(mine.interface, theirs.interface);
	assert_same_string(mine.member, theirs.member);
	for (int i = 0; i < 3; i++)
		assert_same_string(mine.args[i], theirs.args[i]);
}

/* Every prefix of bytes (one or more messages) waits for more, and never
 * reads past what it was given (ASan would say so). */
static void assert_prefixes_wait(const uint8_t *bytes, size_t len)
{
	for (size_t k = 0; k < len; k++) {
		uint8_t *copy = malloc(k ? k : 1);
		struct dbus_event ev;
		size_t total, need;
		int r;

		memcpy(copy, bytes, k);
		r = dbus_wire_parse(copy, k, &total, &need, &ev);
		/* 0 only where the rest of the body is not needed */
		assert_true(r == -EAGAIN || (r == 0 && total > k));
		if (r == -EAGAIN)
			assert_true(need > k);
		free(copy);
	}
}

static void test_sd_bus_messages(void **state)
{
	sd_bus_message *call = NULL, *oneway = NULL, *ret = NULL, *err = NULL, *sig = NULL, *other = NULL;
	uint8_t *b;
	size_t len;

	(void)state;
	/* a call expecting a reply, with a body */
	assert_true(sd_bus_message_new_method_call(builder, &call, ":1.42", "/org/x", "org.x.Iface", "Work") >= 0);
	assert_true(sd_bus_message_set_sender(call, ":1.7") >= 0);
	assert_true(sd_bus_message_append(call, "su", "hello", 42) >= 0);
	b = send_bytes(call, &len);
	assert_same_event(call, b, len);
	assert_prefixes_wait(b, len);
	free(b);
	/* one expecting none, to a well-known name, no interface */
	assert_true(sd_bus_message_new_method_call(builder, &oneway, "org.x.Service", "/", NULL, "Poke") >= 0);
	assert_true(sd_bus_message_set_expect_reply(oneway, 0) >= 0);
	b = send_bytes(oneway, &len);
	assert_same_event(oneway, b, len);
	free(b);
	/* its return and an error */
	assert_true(sd_bus_message_new_method_return(call, &ret) >= 0);
	assert_true(sd_bus_message_set_sender(ret, ":1.42") >= 0);
	assert_true(sd_bus_message_append(ret, "u", 7) >= 0);
	b = send_bytes(ret, &len);
	assert_same_event(ret, b, len);
	assert_prefixes_wait(b, len);
	free(b);
	assert_true(sd_bus_message_new_method_errorf(call, &err, "org.x.Error.Nope", "no: %d", 3) >= 0);
	b = send_bytes(err, &len);
	assert_same_event(err, b, len);
	free(b);
	/* the driver's NameOwnerChanged: its names from the body */
	assert_true(sd_bus_message_new_signal(builder, &sig, DBUS_DRIVER_PATH, DBUS_DRIVER, "NameOwnerChanged") >= 0);
	assert_true(sd_bus_message_set_sender(sig, DBUS_DRIVER) >= 0);
	assert_true(sd_bus_message_append(sig, "sss", "org.x.Service", "", ":1.42") >= 0);
	b = send_bytes(sig, &len);
	assert_same_event(sig, b, len);
	assert_prefixes_wait(b, len);
	free(b);
	/* the same signal from anyone else: its body is not read */
	assert_true(sd_bus_message_new_signal(builder, &other, "/x", DBUS_DRIVER, "NameOwnerChanged") >= 0);
	assert_true(sd_bus_message_set_sender(other, ":1.9") >= 0);
	assert_true(sd_bus_message_append(other, "sss", "a.b", "", ":1.9") >= 0);
	b = send_bytes(other, &len);
	assert_same_event(other, b, len);
	free(b);
	sd_bus_message_unref(call);
	sd_bus_message_unref(oneway);
	sd_bus_message_unref(ret);
	sd_bus_message_unref(err);
	sd_bus_message_unref(sig);
	sd_bus_message_unref(other);
}

/* A call with a 300 kB body: its header is enough. */
static void test_long_body(void **state)
{
	sd_bus_message *m = NULL;
	size_t len, total, need;
	uint8_t *b, *blob = calloc(1, 300000);
	struct dbus_event ev;

	(void)state;
	assert_true(sd_bus_message_new_method_call(builder, &m, ":1.5", "/big", "org.x.Big", "Put") >= 0);
	assert_true(sd_bus_message_append_array(m, 'y', blob, 300000) >= 0);
	b = send_bytes(m, &len);
	assert_true(len > 300000);
	assert_int_equal(dbus_wire_parse(b, 4096, &total, &need, &ev), 0);
	assert_int_equal(total, len);
	assert_string_equal(ev.member, "Put");
	assert_same_event(m, b, len);
	free(b);
	free(blob);
	sd_bus_message_unref(m);
}

/* ---- by hand: the other byte order, fields we do not know ---- */

struct out {
	uint8_t b[80000];
	size_t n;
	bool big;
};

static void pad(struct out *o, size_t a)
{
	while (o->n % a)
		o->b[o->n++] = 0;
}

static void u8(struct out *o, uint8_t v)
{
	o->b[o->n++] = v;
}

static void u32(struct out *o, uint32_t v)
{
	pad(o, 4);
	for (int i = 0; i < 4; i++)
		o->b[o->n++] = (uint8_t)(o->big ? v >> (24 - 8 * i) : v >> (8 * i));
}

static void str(struct out *o, const char *s)
{
	u32(o, (uint32_t)strlen(s));
	memcpy(o->b + o->n, s, strlen(s) + 1);
	o->n += strlen(s) + 1;
}

static void sig(struct out *o, const char *s)
{
	u8(o, (uint8_t)strlen(s));
	memcpy(o->b + o->n, s, strlen(s) + 1);
	o->n += strlen(s) + 1;
}

/* A field: code, signature, and the caller writes the value. */
static void field(struct out *o, uint8_t code, const char *signature)
{
	pad(o, 8);
	u8(o, code);
	sig(o, signature);
}

/* The fixed header of a call of serial 9; the fields' length is patched
 * by finish(). */
static void start(struct out *o, bool big, uint8_t type, uint8_t flags)
{
	memset(o, 0, sizeof(*o));
	o->big = big;
	u8(o, big ? 'B' : 'l');
	u8(o, type);
	u8(o, flags);
	u8(o, 1);
	u32(o, 0); /* body length */
	u32(o, 9); /* serial */
	u32(o, 0); /* fields' length */
}

static void finish(struct out *o)
{
	size_t fields = o->n - DBUS_WIRE_FIXED;
	struct out len = { .big = o->big };

	u32(&len, (uint32_t)fields);
	memcpy(o->b + 12, len.b, 4);
	pad(o, 8);
}

static void test_big_endian_and_unknown_fields(void **state)
{
	struct out o;
	struct dbus_event ev;
	size_t total, need;

	(void)state;
	for (int big = 0; big < 2; big++) {
		start(&o, big, SD_BUS_MESSAGE_METHOD_CALL, 0);
		field(&o, 1, "o");
		str(&o, "/a");
		/* an unknown field: a{sv} with a string and a nested variant */
		field(&o, 200, "a{sv}");
		{
			size_t at;

			u32(&o, 0);
			at = o.n;
			pad(&o, 8);
			{
				size_t begin = o.n;

				str(&o, "k");
				sig(&o, "s");
				str(&o, "v");
				pad(&o, 8);
				str(&o, "n");
				sig(&o, "v");
				sig(&o, "(yt)");
				pad(&o, 8);
				u8(&o, 1);
				pad(&o, 8);
				u32(&o, 5);
				u32(&o, 0);
				{
					struct out len = { .big = o.big };

					u32(&len, (uint32_t)(o.n - begin));
					memcpy(o.b + at - 4, len.b, 4);
				}
			}
		}
		field(&o, 3, "s");
		str(&o, "M");
		field(&o, 6, "s");
		str(&o, ":1.2");
		field(&o, 7, "s");
		str(&o, ":1.3");
		finish(&o);
		assert_int_equal(dbus_wire_parse(o.b, o.n, &total, &need, &ev), 0);
		assert_int_equal(total, o.n);
		assert_int_equal(ev.type, SD_BUS_MESSAGE_METHOD_CALL);
		assert_true(ev.expect_reply);
		assert_int_equal(ev.serial, 9);
		assert_string_equal(ev.member, "M");
		assert_string_equal(ev.destination, ":1.2");
		assert_string_equal(ev.sender, ":1.3");
		assert_null(ev.interface);
		assert_prefixes_wait(o.b, o.n);
	}
}

/* The deepest types the specification allows (32 arrays and 32 structures
 * in one signature), in a field we do not know, as dbus-broker forwards
 * it: each signature's depth is its own, a variant's as much as the
 * field's, and the message is read on. */
static void test_deepest_types(void **state)
{
	struct out o;
	struct dbus_event ev;
	size_t total, need;
	char deep[128], inner[160];

	(void)state;
	/* a{32}({32}y){32}: 64 containers */
	memset(deep, 'a', 32);
	memset(deep + 32, '(', 32);
	deep[64] = 'y';
	memset(deep + 65, ')', 32);
	deep[97] = 0;
	/* the same but for one array, inside a variant */
	snprintf(inner, sizeof(inner), "%s", deep + 1);
	for (int v = 0; v < 2; v++) {
		start(&o, false, SD_BUS_MESSAGE_METHOD_CALL, 0);
		field(&o, 1, "o");
		str(&o, "/a");
		if (v) {
			field(&o, 100, "v");
			sig(&o, inner);
		} else
			field(&o, 100, deep);
		u32(&o, 0); /* an empty array */
		pad(&o, 8);
		field(&o, 3, "s");
		str(&o, "M");
		finish(&o);
		assert_int_equal(dbus_wire_parse(o.b, o.n, &total, &need, &ev), 0);
		assert_int_equal(total, o.n);
		assert_string_equal(ev.member, "M");
	}
	/* one container more is past the specification's */
	snprintf(inner, sizeof(inner), "a%s", deep);
	start(&o, false, SD_BUS_MESSAGE_METHOD_CALL, 0);
	field(&o, 100, inner);
	u32(&o, 0);
	pad(&o, 8);
	finish(&o);
	assert_int_equal(dbus_wire_parse(o.b, o.n, &total, &need, &ev), -EBADMSG);
}

static void test_useless_and_malformed(void **state)
{
	struct out o;
	struct dbus_event ev;
	size_t total, need;

	(void)state;
	/* a type we do not know: stepped over, its length known */
	start(&o, false, 9, 0);
	field(&o, 1, "o");
	str(&o, "/a");
	finish(&o);
	assert_int_equal(dbus_wire_parse(o.b, o.n, &total, &need, &ev), -ENOMSG);
	assert_int_equal(total, o.n);
	/* a return that says not what it answers */
	start(&o, false, SD_BUS_MESSAGE_METHOD_RETURN, 0);
	field(&o, 7, "s");
	str(&o, ":1.3");
	finish(&o);
	assert_int_equal(dbus_wire_parse(o.b, o.n, &total, &need, &ev), -ENOMSG);
	/* no D-Bus: byte order, version, serial 0 */
	start(&o, false, 1, 0);
	finish(&o);
	o.b[0] = 'x';
	assert_int_equal(dbus_wire_parse(o.b, o.n, &total, &need, &ev), -EBADMSG);
	o.b[0] = 'l';
	o.b[3] = 2;
	assert_int_equal(dbus_wire_parse(o.b, o.n, &total, &need, &ev), -EBADMSG);
	o.b[3] = 1;
	memset(o.b + 8, 0, 4);
	assert_int_equal(dbus_wire_parse(o.b, o.n, &total, &need, &ev), -EBADMSG);
	/* a string without its NUL, a known field of another type, a field code 0 */
	start(&o, false, 1, 0);
	field(&o, 3, "s");
	str(&o, "Member");
	finish(&o);
	o.b[DBUS_WIRE_FIXED + 8 + 6] = 'x';
	assert_int_equal(dbus_wire_parse(o.b, o.n, &total, &need, &ev), -EBADMSG);
	start(&o, false, 1, 0);
	field(&o, 3, "u");
	u32(&o, 1);
	finish(&o);
	assert_int_equal(dbus_wire_parse(o.b, o.n, &total, &need, &ev), -EBADMSG);
	start(&o, false, 1, 0);
	field(&o, 0, "u");
	u32(&o, 1);
	finish(&o);
	assert_int_equal(dbus_wire_parse(o.b, o.n, &total, &need, &ev), -EBADMSG);
	/* a signature of two types, one that does not close, an empty structure */
	static const char *bad_sigs[] = { "ss", "a", "(s", "()", "a{vs}", "a{s}", "{ss}", "z" };
	for (size_t i = 0; i < sizeof(bad_sigs) / sizeof(bad_sigs[0]); i++) {
		start(&o, false, 1, 0);
		field(&o, 100, bad_sigs[i]);
		u32(&o, 0);
		finish(&o);
		assert_int_equal(dbus_wire_parse(o.b, o.n, &total, &need, &ev), -EBADMSG);
	}
	/* variants inside variants past any sane depth */
	start(&o, false, 1, 0);
	field(&o, 100, "v");
	for (int i = 0; i < 200; i++)
		sig(&o, "v");
	finish(&o);
	assert_int_equal(dbus_wire_parse(o.b, o.n, &total, &need, &ev), -EBADMSG);
	/* fields claiming more than the specification's longest message */
	start(&o, false, 1, 0);
	finish(&o);
	{
		struct out len = { .big = false };

		u32(&len, 0xfffffff0u);
		memcpy(o.b + 12, len.b, 4);
	}
	assert_int_equal(dbus_wire_parse(o.b, o.n, &total, &need, &ev), -EBADMSG);
}

/* ---- a stream, read in pieces ---- */

struct seen {
	char what[64][80];
	size_t n, batches;
};

static void on_batch(void *ctx, const struct dbus_event *evs, size_t n)
{
	struct seen *seen = ctx;

	assert_true(n > 0 && n <= DBUS_WIRE_BATCH);
	seen->batches++;
	for (size_t i = 0; i < n && seen->n < 64; i++)
		snprintf(seen->what[seen->n++], sizeof(seen->what[0]), "%u %llu %s %s %s", evs[i].type,
			 (unsigned long long)evs[i].serial, evs[i].member ? evs[i].member : "-",
			 evs[i].sender ? evs[i].sender : "-", evs[i].args[2] ? evs[i].args[2] : "-");
}

static void append(uint8_t **stream, size_t *len, const uint8_t *b, size_t n)
{
	*stream = realloc(*stream, *len + n);
	assert_non_null(*stream);
	memcpy(*stream + *len, b, n);
	*len += n;
}

/* Messages one after another, among them one whose body and one whose
 * header are longer than the stream holds: in pieces of every size, the
 * same events come out, and the one with the long header is stepped over. */
static void test_stream_in_pieces(void **state)
{
	static const size_t pieces[] = { 1, 3, 16, 100, 4096, 65536, 1 << 20 };
	static struct out o;
	sd_bus_message *m[4] = { NULL };
	uint8_t *stream = NULL, *b;
	size_t len = 0, n, expected = 0;
	struct dbus_wire *w = calloc(1, sizeof(*w));
	uint8_t *blob = calloc(1, 100000);
	struct seen want = { 0 };

	(void)state;
	assert_true(sd_bus_message_new_method_call(builder, &m[0], ":1.42", "/a", "org.x.I", "First") >= 0);
	assert_true(sd_bus_message_new_method_call(builder, &m[1], ":1.5", "/big", "org.x.Big", "Put") >= 0);
	assert_true(sd_bus_message_append_array(m[1], 'y', blob, 100000) >= 0);
	assert_true(sd_bus_message_new_signal(builder, &m[2], DBUS_DRIVER_PATH, DBUS_DRIVER, "NameOwnerChanged") >= 0);
	assert_true(sd_bus_message_set_sender(m[2], DBUS_DRIVER) >= 0);
	assert_true(sd_bus_message_append(m[2], "sss", ":1.77", "", ":1.77") >= 0);
	assert_true(sd_bus_message_new_method_call(builder, &m[3], ":1.42", "/a", "org.x.I", "Last") >= 0);
	for (int i = 0; i < 3; i++) {
		b = send_bytes(m[i], &n);
		append(&stream, &len, b, n);
		free(b);
	}
	/* a call whose header has a 70 kB field we do not know */
	start(&o, false, SD_BUS_MESSAGE_METHOD_CALL, 0);
	field(&o, 100, "ay");
	u32(&o, 70000);
	o.n += 70000;
	field(&o, 3, "s");
	str(&o, "Hidden");
	finish(&o);
	append(&stream, &len, o.b, o.n);
	b = send_bytes(m[3], &n);
	append(&stream, &len, b, n);
	free(b);
	/* what comes out whole (all but the hidden one) */
	for (int i = 0; i < 4; i++) {
		struct dbus_event ev;

		assert_true(sd_bus_message_rewind(m[i], true) >= 0);
		assert_int_equal(dbus_event_from_message(m[i], &ev), 0);
		on_batch(&want, &ev, 1);
		expected++;
	}
	for (size_t k = 0; k < sizeof(pieces) / sizeof(pieces[0]); k++) {
		struct seen got = { 0 };

		dbus_wire_reset(w);
		for (size_t at = 0; at < len;) {
			size_t room, take;
			uint8_t *to = dbus_wire_room(w, &room);

			assert_true(room > 0);
			take = pieces[k] < room ? pieces[k] : room;
			if (take > len - at)
				take = len - at;
			memcpy(to, stream + at, take);
			at += take;
			assert_true(dbus_wire_feed(w, take, on_batch, &got) >= 0);
		}
		assert_int_equal(got.n, expected);
		for (size_t i = 0; i < expected; i++)
			assert_string_equal(got.what[i], want.what[i]);
		assert_int_equal(w->n, 0);
		assert_int_equal(w->discard, 0);
	}
	/* and bytes that are no D-Bus after them: what came before is handed over */
	{
		struct seen got = { 0 };
		size_t room;
		uint8_t *to;

		dbus_wire_reset(w);
		to = dbus_wire_room(w, &room);
		b = send_bytes(m[0], &n);
		memcpy(to, b, n);
		memcpy(to + n, "xxxxxxxxxxxxxxxxxxxx", 20);
		assert_int_equal(dbus_wire_feed(w, n + 20, on_batch, &got), -EBADMSG);
		assert_int_equal(got.n, 1);
		free(b);
	}
	/* and a stream once no D-Bus stays so: read on (as the watcher may,
	 * before it reconnects), nothing more comes out of it, neither what
	 * came before again nor the body of a message being stepped over read
	 * as messages */
	{
		struct seen got = { 0 };
		size_t room, forged_len;
		uint8_t *to;

		/* a body that looks like a message of its own */
		start(&o, false, SD_BUS_MESSAGE_METHOD_CALL, 0);
		field(&o, 3, "s");
		str(&o, "Forged");
		finish(&o);
		forged_len = o.n;
		memmove(o.b + 16, o.b, forged_len);
		/* ... in a call whose header comes in one read, its body in the next */
		{
			struct out h;

			start(&h, false, SD_BUS_MESSAGE_METHOD_CALL, 0);
			field(&h, 3, "s");
			str(&h, "Carrier");
			finish(&h);
			h.b[4] = (uint8_t)forged_len; /* body length */
			dbus_wire_reset(w);
			to = dbus_wire_room(w, &room);
			memcpy(to, h.b, h.n);
			assert_int_equal(dbus_wire_feed(w, h.n, on_batch, &got), 1);
			assert_int_equal(got.n, 1);
			assert_int_equal(w->discard, forged_len);
		}
		to = dbus_wire_room(w, &room);
		memcpy(to, o.b + 16, forged_len);
		memcpy(to + forged_len, "xxxxxxxxxxxxxxxxxxxx", 20);
		assert_int_equal(dbus_wire_feed(w, forged_len + 20, on_batch, &got), -EBADMSG);
		assert_int_equal(got.n, 1);
		to = dbus_wire_room(w, &room);
		assert_true(room > 0);
		assert_int_equal(dbus_wire_feed(w, 0, on_batch, &got), -EBADMSG);
		assert_int_equal(got.n, 1);
		dbus_wire_reset(w);
		to = dbus_wire_room(w, &room);
		b = send_bytes(m[0], &n);
		memcpy(to, b, n);
		free(b);
		assert_int_equal(dbus_wire_feed(w, n, on_batch, &got), 1);
		assert_int_equal(got.n, 2);
	}
	for (int i = 0; i < 4; i++)
		sd_bus_message_unref(m[i]);
	free(stream);
	free(blob);
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sd_bus_messages),
		cmocka_unit_test(test_long_body),
		cmocka_unit_test(test_big_endian_and_unknown_fields),
		cmocka_unit_test(test_deepest_types),
		cmocka_unit_test(test_useless_and_malformed),
		cmocka_unit_test(test_stream_in_pieces),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
