/*-------------------------------------------------------------------------
 *
 * peer.h
 *		A libpq connection to another node of the cluster, waited on
 *		through the latch so that the caller stays interruptible.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/peer.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_PEER_H
#define REPLKAFKA_PEER_H

#include "libpq-fe.h"

/*
 * Called whenever a wait for a peer wakes: may end the wait with an error
 * (a bootstrap that is no longer wanted).
 */
typedef void (*ReplkafkaPeerWaitCheck) (void);
extern ReplkafkaPeerWaitCheck replkafka_peer_wait_check;

extern PGconn *replkafka_peer_connect(const char *conninfo, bool replication,
									  const char *appname);
extern void replkafka_peer_close(PGconn *conn);
extern void replkafka_peer_check_conninfo(const char *conninfo);
extern PGresult *replkafka_peer_query(PGconn *conn, const char *sql,
									  ExecStatusType expected);
extern void replkafka_peer_copy_begin(PGconn *conn, const char *sql);
extern int	replkafka_peer_copy_read(PGconn *conn, char **buf, int stall_ms);
extern char *replkafka_peer_describe(const char *conninfo);

#endif							/* REPLKAFKA_PEER_H */
