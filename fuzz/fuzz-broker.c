/* libFuzzer target: the broker's wire protocol.  Two clients connect to
 * an in-process broker; the input is a sequence of frames, each for one of
 * them: [selector][len lo][len hi][body].  The selector picks the client,
 * whether the harness writes a well-formed header (type from the selector)
 * or sends the bytes raw, and whether the client reads its replies.  After
 * each frame the event loop runs until idle.  Nothing may crash or leak,
 * and once both clients are gone no port, message, voucher or inherit may
 * be left. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "broker.h"
#include "importance/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int listen_fd = -1;
static struct sockaddr_un addr;
static socklen_t addr_len;

static void setup(void)
{
	addr.sun_family = AF_UNIX;
	/* an abstract address: nothing on disk */
	snprintf(addr.sun_path + 1, sizeof(addr.sun_path) - 1, "importanced-fuzz-%d", (int)getpid());
	addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(addr.sun_path + 1));
	listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&addr, addr_len) < 0 ||
	    listen(listen_fd, 16) < 0)
		abort();
}

static void run_idle(sd_event *ev)
{
	for (int i = 0; i < 1000 && sd_event_run(ev, 0) > 0; i++)
		;
}

static void drain(int fd)
{
	uint8_t buf[2048];

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct broker_config cfg;
	struct broker *b;
	sd_event *ev;
	int fds[2];
	size_t i = 0;
	imp_stats st;
	uint32_t serial = 100;

	if (listen_fd < 0)
		setup();
	config_defaults(&cfg);
	cfg.backend.kind = BACKEND_NONE;
	cfg.limits.ports = 4;
	cfg.limits.inflight = 16;
	cfg.limits.vouchers = 16;
	if (sd_event_new(&ev) < 0 || broker_new(ev, &cfg, listen_fd, &b) < 0)
		abort();
	for (int k = 0; k < 2; k++) {
		struct {
			struct impp_header h;
			struct impp_req_hello q;
		} __attribute__((packed)) hello = {
			{ IMPP_MAGIC, IMPP_REQ_HELLO, 0, 1, sizeof(struct impp_req_hello) },
			{ IMPP_VERSION, k ? IMPP_HELLO_RECEIVER : IMPP_HELLO_DENAP_RECEIVER }
		};

		fds[k] = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fds[k] < 0 || connect(fds[k], (struct sockaddr *)&addr, addr_len) < 0)
			abort();
		run_idle(ev);
		send(fds[k], &hello, sizeof(hello), MSG_NOSIGNAL);
		run_idle(ev);
	}
	while (i + 3 <= size) {
		uint8_t sel = data[i];
		size_t len = (size_t)data[i + 1] | ((size_t)data[i + 2] << 8);
		int fd = fds[sel & 1];
		uint8_t frame[sizeof(struct impp_header) + 65536];

		i += 3;
		if (len > size - i)
			len = size - i;
		if (sel & 2) {
			send(fd, data + i, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		} else {
			struct impp_header h = { IMPP_MAGIC, (uint16_t)(1 + (sel >> 3) % (IMPP_REQ_MAX_ - 1)),
						 0, serial++, (uint32_t)len };

			memcpy(frame, &h, sizeof(h));
			memcpy(frame + sizeof(h), data + i, len);
			send(fd, frame, sizeof(h) + len, MSG_NOSIGNAL | MSG_DONTWAIT);
		}
		i += len;
		run_idle(ev);
		if (!(sel & 4))
			drain(fd);
	}
	close(fds[0]);
	close(fds[1]);
	run_idle(ev);
	broker_engine_stats(b, &st);
	if (st.ports || st.messages || st.vouchers || st.inherits || st.task_elems > st.delayed)
		abort();
	broker_free(b);
	sd_event_unref(ev);
	return 0;
}
