#ifndef CAREHUB_CLIBWEBSOCKETS_SHIM_H
#define CAREHUB_CLIBWEBSOCKETS_SHIM_H

#include <libwebsockets.h>
#include <signal.h>

/* Headroom lws_write needs in front of every payload. */
static inline size_t carehub_lws_pre(void) { return LWS_PRE; }

/* A broken connection must surface as a write error, not kill the process. */
static inline void carehub_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }

#endif
