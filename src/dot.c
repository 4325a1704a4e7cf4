/*
 * imp_graph_dot(): a graph snapshot as Graphviz DOT.
 *
 * Nodes are named by kind and index in the snapshot: t<i> for tasks, p<i>
 * for ports, m<i> for messages, and e<id> (the element id) for inherits,
 * so that an edge to an element is t<i> when the element is a task's.
 * With a task filter, visibility follows ownership: a port is drawn when
 * its owner is, a message when its port is, an inherit when its to-task
 * is, and an edge only when both of its ends are.  Ends are found through
 * sorted indexes of the snapshot (task by pointer and by element, port by
 * pointer, inherit by element): drawing is O(n log n), so a daemon can
 * draw a large domain in bounded time.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define IMP__DOT_LABEL_MAX 256

/* The fields of the first version of imp_graph_dot_options. */
#define IMP__DOT_OPTIONS_SIZE_V0 (offsetof(imp_graph_dot_options, ctx) + sizeof(void *))

/* An index of the snapshot: a key (a pointer or an element id) and the
 * position of what it names, sorted by key, so that every edge is found
 * by binary search and drawing is O(n log n) in the snapshot's size. */
struct dot_key {
	uint64_t key;
	size_t at;
};

struct dot {
	const imp_graph *g;
	imp_graph_dot_options opt;
	FILE *out;
	bool *shown;                /* per task: the filter's answer */
	struct dot_key *task_by_ptr, *task_by_elem, *port_by_ptr, *inherit_by_elem;
};

static bool dot_task_shown(const struct dot *w, size_t i)
{
	return w->shown[i];
}

static int dot_key_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct dot_key *)a)->key, y = ((const struct dot_key *)b)->key;

	return x < y ? -1 : x > y;
}

static size_t dot_find(const struct dot_key *index, size_t n, uint64_t key)
{
	struct dot_key k = { key, 0 };
	const struct dot_key *found = n ? bsearch(&k, index, n, sizeof(k), dot_key_cmp) : NULL;

	return found ? found->at : SIZE_MAX;
}

static struct dot_key *dot_index(size_t n, uint64_t (*key)(const imp_graph *, size_t), const imp_graph *g)
{
	struct dot_key *index = malloc((n ? n : 1) * sizeof(*index));

	if (!index)
		return NULL;
	for (size_t i = 0; i < n; i++)
		index[i] = (struct dot_key){ key(g, i), i };
	qsort(index, n, sizeof(*index), dot_key_cmp);
	return index;
}

static uint64_t key_task_ptr(const imp_graph *g, size_t i)
{
	return (uint64_t)(uintptr_t)g->tasks[i].task;
}

static uint64_t key_task_elem(const imp_graph *g, size_t i)
{
	return g->tasks[i].elem_id;
}

static uint64_t key_port_ptr(const imp_graph *g, size_t i)
{
	return (uint64_t)(uintptr_t)g->ports[i].port;
}

static uint64_t key_inherit_elem(const imp_graph *g, size_t i)
{
	return g->inherits[i].elem_id;
}

static void dot_free(struct dot *w)
{
	free(w->shown);
	free(w->task_by_ptr);
	free(w->task_by_elem);
	free(w->port_by_ptr);
	free(w->inherit_by_elem);
}

static int dot_prepare(struct dot *w)
{
	const imp_graph *g = w->g;

	w->shown = malloc((g->n_tasks ? g->n_tasks : 1) * sizeof(bool));
	w->task_by_ptr = dot_index(g->n_tasks, key_task_ptr, g);
	w->task_by_elem = dot_index(g->n_tasks, key_task_elem, g);
	w->port_by_ptr = dot_index(g->n_ports, key_port_ptr, g);
	w->inherit_by_elem = dot_index(g->n_inherits, key_inherit_elem, g);
	if (!w->shown || !w->task_by_ptr || !w->task_by_elem || !w->port_by_ptr || !w->inherit_by_elem) {
		dot_free(w);
		return imp__error(-ENOMEM, "imp_graph_dot: no memory for the graph's indexes");
	}
	for (size_t i = 0; i < g->n_tasks; i++)
		w->shown[i] = !w->opt.task_filter || w->opt.task_filter(&g->tasks[i], w->opt.ctx);
	return 0;
}

/* Writes s inside a DOT string: quotes and backslashes escaped, control
 * characters dropped. */
static void dot_escaped(FILE *out, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fputc('\\', out);
		if (c >= 0x20)
			fputc(c, out);
	}
}

/* Writes a DOT ID: as it is when it is a plain identifier, quoted if not. */
static void dot_id(FILE *out, const char *s)
{
	size_t i;
	bool plain = *s && !(*s >= '0' && *s <= '9');

	for (i = 0; s[i] && plain; i++)
		plain = s[i] == '_' || (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
			(s[i] >= 'A' && s[i] <= 'Z');
	if (plain) {
		fputs(s, out);
		return;
	}
	fputc('"', out);
	dot_escaped(out, s);
	fputc('"', out);
}

/* Opens node <kind><number>'s attributes and its label with line, the
 * text of a label callback (cut at IMP__DOT_LABEL_MAX, escaped; may be
 * empty): the caller writes the rest of the label and closes both. */
static void dot_node_open(FILE *out, char kind, uint64_t number, const char *shape,
			  const char *style, const char *fill, char *line)
{
	line[IMP__DOT_LABEL_MAX - 1] = '\0';
	fprintf(out, "  %c%" PRIu64 " [shape=%s, style=\"%s\", fillcolor=%s, label=\"", kind, number,
		shape, style, fill);
	dot_escaped(out, line);
}

static size_t dot_task_of(const struct dot *w, const imp_task *task)
{
	return task ? dot_find(w->task_by_ptr, w->g->n_tasks, (uint64_t)(uintptr_t)task) : SIZE_MAX;
}

static size_t dot_task_of_elem(const struct dot *w, uint64_t id)
{
	return id ? dot_find(w->task_by_elem, w->g->n_tasks, id) : SIZE_MAX;
}

/* Whether the element id is drawn, and its node name in out. */
static bool dot_elem(const struct dot *w, uint64_t id, char *out, size_t size)
{
	size_t i = dot_task_of_elem(w, id);

	if (i != SIZE_MAX) {
		snprintf(out, size, "t%zu", i);
		return dot_task_shown(w, i);
	}
	snprintf(out, size, "e%" PRIu64, id);
	if (id && (i = dot_find(w->inherit_by_elem, w->g->n_inherits, id)) != SIZE_MAX) {
		size_t to = dot_task_of_elem(w, w->g->inherits[i].to_elem_id);

		return to != SIZE_MAX ? dot_task_shown(w, to) : !w->opt.task_filter;
	}
	return false;
}

static bool dot_port_shown(const struct dot *w, size_t i)
{
	size_t owner = dot_task_of(w, w->g->ports[i].owner);

	return owner != SIZE_MAX ? dot_task_shown(w, owner) : !w->opt.task_filter;
}

static size_t dot_port_of(const struct dot *w, const imp_port *port)
{
	return dot_find(w->port_by_ptr, w->g->n_ports, (uint64_t)(uintptr_t)port);
}

static void dot_tasks(struct dot *w)
{
	char label[IMP__DOT_LABEL_MAX];
	size_t i;

	for (i = 0; i < w->g->n_tasks; i++) {
		const imp_graph_task *t = &w->g->tasks[i];
		const char *color = !t->active ? "grey85" : t->boosted ? "tomato" :
				    t->donor ? "gold" : (t->receiver || t->denap) ? "lightblue" : "white";

		if (!dot_task_shown(w, i))
			continue;
		label[0] = '\0';
		if (w->opt.task_label)
			w->opt.task_label(t, label, sizeof(label), w->opt.ctx);
		dot_node_open(w->out, 't', i, "box", t->active ? "rounded,filled" : "rounded,filled,dashed",
			      color, label);
		fprintf(w->out, "%spid %d%s%s\\nassert %u extern %u legacy %u\"];\n",
			label[0] ? "\\n" : "", t->pid,
			t->receiver ? " receiver" : t->denap ? " denap" : "", t->boosted ? " BOOSTED" : "",
			t->assertcnt, t->extern_boosts, t->legacy_boosts);
	}
}

static void dot_ports(struct dot *w)
{
	char label[IMP__DOT_LABEL_MAX];
	size_t i, owner;

	for (i = 0; i < w->g->n_ports; i++) {
		const imp_graph_port *p = &w->g->ports[i];

		if (!dot_port_shown(w, i))
			continue;
		strcpy(label, "port");
		if (w->opt.port_label)
			w->opt.port_label(p, label, sizeof(label), w->opt.ctx);
		dot_node_open(w->out, 'p', i, "cds", "filled", p->impcount ? "lightsalmon" : "grey95", label);
		fprintf(w->out, "\\nimpcount %u%s\"];\n", p->impcount,
			p->active ? (p->donate ? "" : "\\nno donation") : "\\ndead");
		owner = dot_task_of(w, p->owner);
		if (owner != SIZE_MAX)
			fprintf(w->out, "  p%zu -> t%zu [style=dotted, arrowhead=none, label=\"owned by\"];\n",
				i, owner);
	}
}

static void dot_msgs(struct dot *w)
{
	char label[IMP__DOT_LABEL_MAX], node[32];
	size_t i, port;

	for (i = 0; i < w->g->n_msgs; i++) {
		const imp_graph_msg *m = &w->g->msgs[i];

		port = dot_port_of(w, m->port);
		if (port != SIZE_MAX ? !dot_port_shown(w, port) : w->opt.task_filter != NULL)
			continue;
		strcpy(label, "msg");
		if (w->opt.msg_label)
			w->opt.msg_label(m, label, sizeof(label), w->opt.ctx);
		dot_node_open(w->out, 'm', i, "note", "filled", m->raised ? "tomato" : "white", label);
		fprintf(w->out, "%s\"];\n", m->raised ? "\\nraised" : "");
		if (port != SIZE_MAX)
			fprintf(w->out, "  m%zu -> p%zu [label=\"queued\"];\n", i, port);
		if (m->linked_elem_id && dot_elem(w, m->linked_elem_id, node, sizeof(node)))
			fprintf(w->out, "  %s -> m%zu [color=%s, label=\"linked\"];\n", node, i,
				m->raised ? "red" : "black");
	}
}

static void dot_inherits(struct dot *w)
{
	char self[32], other[32], none[IMP__DOT_LABEL_MAX] = "";
	size_t i;

	for (i = 0; i < w->g->n_inherits; i++) {
		const imp_graph_inherit *in = &w->g->inherits[i];

		if (!dot_elem(w, in->elem_id, self, sizeof(self)))
			continue;
		dot_node_open(w->out, 'e', in->elem_id, "ellipse", "filled",
			      in->donating ? "lightsalmon" : "white", none);
		fprintf(w->out, "inherit depth %u%s\\n%u of %u boosts, made %u\\n%s\"];\n",
			in->depth & IMP__DEPTH_MASK,
			(in->depth & IMP__DEPTH_RESET) ? " (reset)" : "", in->externcnt - in->externdrop,
			in->externcnt, in->made, in->donating ? "donating" : "linked");
		if (dot_elem(w, in->from_elem_id, other, sizeof(other)))
			fprintf(w->out, "  %s -> %s [label=\"from\"];\n", other, self);
		if (dot_elem(w, in->to_elem_id, other, sizeof(other)))
			fprintf(w->out, "  %s -> %s [color=%s, penwidth=%d, label=\"to\"];\n", self, other,
				in->donating ? "red" : "black", in->donating ? 2 : 1);
	}
}

int imp_graph_dot(const imp_graph *graph, const imp_graph_dot_options *options, FILE *out)
{
	struct dot w = { .g = graph, .out = out, .opt = IMP_GRAPH_DOT_OPTIONS_INIT };
	int e;

	IMP__CHECK_ARG(graph && out, "imp_graph_dot: NULL argument");
	if (options) {
		IMP__CHECK_ARG(options->size >= IMP__DOT_OPTIONS_SIZE_V0,
			       "imp_graph_dot: options->size is %zu: start from IMP_GRAPH_DOT_OPTIONS_INIT",
			       options->size);
		memcpy(&w.opt, options, options->size < sizeof(w.opt) ? options->size : sizeof(w.opt));
	}
	if ((e = dot_prepare(&w)) < 0)
		return e;
	fputs("digraph ", out);
	dot_id(out, w.opt.name ? w.opt.name : "importance");
	fprintf(out, " {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=10];\n"
		"  edge [fontname=\"Helvetica\", fontsize=9];\n  label=\"");
	if (w.opt.title) {
		dot_escaped(out, w.opt.title);
		fputc(' ', out);
	}
	fprintf(out, "(red: boosted, gold: donor, blue: receiver not boosted, grey: exited)\";\n");
	dot_tasks(&w);
	dot_ports(&w);
	dot_msgs(&w);
	dot_inherits(&w);
	fprintf(out, "}\n");
	dot_free(&w);
	if (fflush(out) != 0 || ferror(out))
		return imp__error(-EIO, "imp_graph_dot: writing the graph failed");
	return 0;
}
