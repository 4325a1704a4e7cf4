/*
 * The kernel half of the Unix-socket source, attached through libbpf: the
 * skeleton of bpf/unix.bpf.c (built with the daemon) opened, loaded and
 * attached, its maps kept from the daemon's rules and the model's (unix.h)
 * requests, its ring buffer read from the broker's loop.
 *
 * Ownership: a tracer belongs to the broker (unix_start, unix_stop); the
 * model it feeds is its own.
 */
#ifndef IMPD_UNIX_BPF_H
#define IMPD_UNIX_BPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct broker;
struct unix_tracer;

/* Opens, loads and attaches the BPF object.  0, or -errno with a sentence
 * in err saying why it cannot run here (no BTF, no CAP_BPF, a kernel
 * without the tracepoints). */
int unix_tracer_open(struct unix_tracer **out, char *err, size_t size);
void unix_tracer_close(struct unix_tracer *t);

/* The events lost so far (the ring buffer was full), all CPUs together. */
uint64_t unix_tracer_lost(struct unix_tracer *t);

/* Children of boosted processes (issue 15's double fork): fn is called
 * with the parent's and the child's pid for every fork of a process the
 * source tracks (a reader it boosted, a donor), from the broker's loop.
 * NULL stops it.  For the backend to put children back at unboost. */
typedef void unix_fork_fn(void *ctx, pid_t parent, pid_t child);
void unix_watch_forks(struct broker *b, unix_fork_fn *fn, void *ctx);

#endif
