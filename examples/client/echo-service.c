/* The echo service (echo-service.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "echo-service.h"

int echo_service_start(struct echo_service *s, char **names, size_t n)
{
	int e;

	memset(s, 0, sizeof(*s));
	if (n == 0 || n > ECHO_MAX_NAMES)
		return -EINVAL;
	if ((e = impc_connect(NULL, IMPC_RECEIVER | IMPC_RECONNECT, &s->c, NULL)) < 0)
		return e;
	for (s->n = 0; s->n < n; s->n++) {
		size_t i = s->n;

		s->names[i] = names[i];
		/* the port's index is the receive's userdata */
		if ((e = impc_port_allocate(s->c, true, &s->ports[i])) < 0 ||
		    (e = impc_register(s->c, names[i], s->ports[i])) < 0 ||
		    (e = impc_receive_async(s->c, s->ports[i], IMPC_RECV_VOUCHER, (void *)i)) < 0)
			return e;
	}
	printf("ready\n");
	fflush(stdout);
	return 0;
}

/* Answers the request m that came on port i, releasing its voucher (the
 * boost lasts as long as the work), and waits for the next. */
static void answer(struct echo_service *s, size_t i, impc_message *m)
{
	char text[512];
	int len = snprintf(text, sizeof(text), "%s:%.*s", s->names[i], (int)(m->len < 256 ? m->len : 256),
			   (const char *)m->data);
	impc_send_args reply = { m->reply_port, text, (size_t)len, 0, 0, 0, NULL, 0 };
	int e;

	if (m->n_fds && write(m->fds[0], text, (size_t)len) != len)
		fprintf(stderr, "echo: cannot write the reply into the file passed: %s\n", strerror(errno));
	s->served++;
	e = impc_send_receive_async(s->c, m->reply_port ? &reply : NULL, m->voucher, s->ports[i], IMPC_RECV_VOUCHER,
				    (void *)i);
	if (e < 0) {
		/* nothing was submitted: the voucher is still ours and the port
		 * has no receive waiting; give the one back, re-arm the other */
		fprintf(stderr, "echo: cannot answer on %s: %s\n", s->names[i], strerror(-e));
		if (m->voucher)
			impc_voucher_release(s->c, m->voucher);
		if ((e = impc_receive_async(s->c, s->ports[i], IMPC_RECV_VOUCHER, (void *)i)) < 0)
			fprintf(stderr, "echo: cannot wait on %s: %s\n", s->names[i], strerror(-e));
	}
	impc_message_clear(m);
}

void echo_service_ready(impc *c, void *userdata)
{
	struct echo_service *s = userdata;
	impc_completion done;
	impc_event ev;

	while (impc_next_completion(c, &done) == 0) {
		size_t i = (size_t)done.userdata;

		if (done.status == 0) {
			answer(s, i, &done.msg);
			continue;
		}
		if (done.status == -EPIPE) {
			/* the client went before its answer: serve the others */
			s->peers_gone++;
			printf("peer-gone %s\n", s->names[i]);
		} else if (done.status != -ECONNRESET) {
			fprintf(stderr, "echo: %s: %s\n", s->names[i], strerror(-done.status));
			/* a failed answer's send ended it before its receive */
			if (done.kind != IMPC_OP_SEND_RECEIVE || done.status == -ECANCELED)
				continue;
		}
		/* after -ECONNRESET this waits from the reconnect on */
		impc_receive_async(c, s->ports[i], IMPC_RECV_VOUCHER, (void *)i);
	}
	while (impc_next_event(c, 0, &ev) == 0) {
		if (ev.kind == IMPC_EVENT_DISCONNECTED) {
			printf("disconnected\n");
		} else if (ev.kind == IMPC_EVENT_RECONNECTED) {
			s->reconnects++;
			printf("reconnected %d\n", ev.status);
		}
	}
	fflush(stdout);
}
