#ifndef CAREHUB_CLIBWEBSOCKETS_SHIM_H
#define CAREHUB_CLIBWEBSOCKETS_SHIM_H

#include <libwebsockets.h>
#include <ev.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h> /* ReadinessSet: the client tools' sockets (not exported by Swift's Glibc) */
#include <sys/prctl.h>

/* Headroom lws_write needs in front of every payload. */
static inline size_t carehub_lws_pre(void) { return LWS_PRE; }

/* A broken connection must surface as a write error, not kill the process. */
static inline void carehub_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }

/* The event loop a context runs on: libev over epoll, so a wake-up costs what is ready rather
   than a poll over every open socket. NULL if the kernel refuses an epoll instance. */
static inline void *carehub_event_loop_new(void) {
    return ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOSIGMASK);
}
/* Makes the loop's ev_run (inside lws_service) return after the current callback. */
static inline void carehub_event_loop_break(void *loop) { ev_break((struct ev_loop *)loop, EVBREAK_ALL); }
static inline void carehub_event_loop_destroy(void *loop) { ev_loop_destroy((struct ev_loop *)loop); }

/* A repeating timer on the loop that wakes the context (lws_cancel_service) every `seconds`, so
   that lws runs the timeouts that have fallen due. lws 4.1's libev glue re-arms its own timer with
   ev_timer_start, which libev ignores while that timer is running: a timeout due before the armed
   expiry (up to lws's 30-second housekeeping) otherwise waits for the next socket event.
   NULL if no memory. */
static inline void carehub_wake_fired(struct ev_loop *loop, ev_timer *timer, int revents) {
    (void)loop;
    (void)revents;
    lws_cancel_service((struct lws_context *)timer->data);
}
static inline void *carehub_wake_every(void *loop, double seconds, struct lws_context *context) {
    ev_timer *timer = malloc(sizeof *timer);
    if (!timer) return NULL;
    ev_timer_init(timer, carehub_wake_fired, seconds, seconds);
    timer->data = context;
    ev_timer_start((struct ev_loop *)loop, timer);
    return timer;
}
/* Stops and frees a timer from carehub_wake_every (NULL is ignored). */
static inline void carehub_wake_stop(void *loop, void *timer) {
    if (!timer) return;
    ev_timer_stop((struct ev_loop *)loop, (ev_timer *)timer);
    free(timer);
}

/* Names the calling thread as `top -H`, `ps -L` and profilers show it (at most 15 bytes kept).
 * prctl is variadic, which Swift cannot call. */
static inline void carehub_name_thread(const char *name) { prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0); }

#endif
