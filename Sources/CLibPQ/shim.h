#ifndef CAREHUB_CLIBPQ_SHIM_H
#define CAREHUB_CLIBPQ_SHIM_H

#include <libpq-fe.h>
#include <poll.h>

/* The field codes of PQresultErrorField are character macros, which Swift does not import. */

static inline int carehub_pq_diag_sqlstate(void) { return PG_DIAG_SQLSTATE; }
static inline int carehub_pq_diag_message_primary(void) { return PG_DIAG_MESSAGE_PRIMARY; }
static inline int carehub_pq_diag_message_detail(void) { return PG_DIAG_MESSAGE_DETAIL; }

#endif
