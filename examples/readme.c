/* The README's example, whole: a donor's message boosts a daemon, the
 * boost moves into the voucher the daemon receives, and releasing the
 * voucher drops it.  Everything created is given back. */
#include <stdio.h>

#include <importance/importance.h>

static void on_policy(const imp_policy_event *event, void *ctx)
{
	(void)ctx;
	printf("pid %d %s\n", event->pid, event->boosted ? "boosted" : "unboosted");
}

int main(void)
{
	imp_domain_config cfg = IMP_DOMAIN_CONFIG_INIT;
	imp_domain *d;
	imp_task *app, *daemon;
	imp_port *port;
	imp_msg *m;
	imp_voucher *v;

	cfg.policy = on_policy;
	if (imp_domain_new(&cfg, &d) < 0) {
		fprintf(stderr, "imp_domain_new: %s\n", imp_last_error());
		return 1;
	}
	imp_task_create(d, 100, IMP_TASK_DONOR, &app);
	imp_task_create(d, 200, IMP_TASK_RECEIVER, &daemon);
	imp_port_create(daemon, true, &port);
	imp_msg_send(app, port, NULL, 0, &m);     /* pid 200 boosted */
	imp_msg_receive(m, IMP_RECV_VOUCHER, &v); /* the boost now lives in v */
	imp_voucher_release(v);                   /* pid 200 unboosted */

	imp_msg_unref(m);
	imp_port_unref(port);
	imp_task_unref(daemon);
	imp_task_unref(app);
	imp_domain_free(d);
	return 0;
}
