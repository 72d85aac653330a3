/*-------------------------------------------------------------------------
 *
 * peer.c
 *		A libpq connection to another node of the cluster, waited on
 *		through the latch so that the caller stays interruptible.
 *
 * A bootstrap reads a partition's rows from a peer: its catalog, a
 * snapshot, and COPY.  libpq is used asynchronously, as PostgreSQL's own
 * walreceiver does, so that a backend or a worker waiting for a slow peer
 * still answers a cancel, a terminate, or the postmaster's death.  Errors
 * become ereport()s that name the peer (never its password) and keep the
 * peer's SQLSTATE, so that a caller can tell a peer that went away
 * (class 08) from one that refused.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/peer.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "peer.h"

static bool peer_wait(PGconn *conn, int events, long timeout_ms);

ReplkafkaPeerWaitCheck replkafka_peer_wait_check = NULL;
static void peer_report(PGconn *conn, PGresult *res, const char *what)
			pg_attribute_noreturn();

/*
 * How the peer is named in messages: its host, port, database and user,
 * as the connection string gives them (never its password).
 */
char *
replkafka_peer_describe(const char *conninfo)
{
	PQconninfoOption *opts;
	StringInfoData buf;
	char	   *err = NULL;

	opts = PQconninfoParse(conninfo, &err);
	if (opts == NULL)
	{
		if (err)
			PQfreemem(err);
		return pstrdup("(invalid connection string)");
	}
	initStringInfo(&buf);
	for (PQconninfoOption *o = opts; o->keyword; o++)
	{
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (strcmp(o->keyword, "host") != 0 &&
			strcmp(o->keyword, "hostaddr") != 0 &&
			strcmp(o->keyword, "port") != 0 &&
			strcmp(o->keyword, "dbname") != 0 &&
			strcmp(o->keyword, "user") != 0)
			continue;
		appendStringInfo(&buf, "%s%s=%s", buf.len > 0 ? " " : "",
						 o->keyword, o->val);
	}
	PQconninfoFree(opts);
	return buf.data;
}

/*
 * Wait for the peer's socket (events), the latch, or timeout_ms (-1: no
 * timeout); interrupts are served.  False if the time ran out.
 */
static bool
peer_wait(PGconn *conn, int events, long timeout_ms)
{
	int			rc;

	rc = WaitLatchOrSocket(MyLatch,
						   WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | events |
						   (timeout_ms >= 0 ? WL_TIMEOUT : 0),
						   PQsocket(conn), timeout_ms, PG_WAIT_EXTENSION);
	if (rc & WL_LATCH_SET)
		ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	if (replkafka_peer_wait_check)
		replkafka_peer_wait_check();
	return (rc & WL_TIMEOUT) == 0 || (rc & (events | WL_LATCH_SET)) != 0;
}

/*
 * Report a failed call on the peer: its SQLSTATE if it sent one (a
 * connection failure otherwise), its message, and what we were doing.
 */
static void
peer_report(PGconn *conn, PGresult *res, const char *what)
{
	const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
	char	   *message;
	int			code = ERRCODE_CONNECTION_FAILURE;

	if (sqlstate && strlen(sqlstate) == 5)
		code = MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2],
							 sqlstate[3], sqlstate[4]);
	message = pchomp(primary ? primary : PQerrorMessage(conn));
	if (res)
		PQclear(res);
	ereport(ERROR,
			errcode(code),
			errmsg("peer %s failed %s: %s", PQhost(conn) ? PQhost(conn) : "",
				   what, message),
			detail ? errdetail_internal("%s", detail) : 0,
			hint ? errhint("%s", hint) : 0);
}

/*
 * Connect to the peer conninfo names, as a logical replication connection
 * if replication (which can create a slot and run SQL); NULL-free: fails
 * with an error.  Values travel in ISO forms, in this database's encoding,
 * so that COPY in text reads them back whatever the peer's settings.
 */
PGconn *
replkafka_peer_connect(const char *conninfo, bool replication,
					   const char *appname)
{
	const char *keys[10];
	const char *vals[10];
	int			n = 0;
	PGconn	   *conn;
	volatile PostgresPollingStatusType status = PGRES_POLLING_WRITING;

	keys[n] = "dbname";
	vals[n++] = conninfo;
	if (replication)
	{
		keys[n] = "replication";
		vals[n++] = "database";
	}
	keys[n] = "fallback_application_name";
	vals[n++] = appname;
	keys[n] = "client_encoding";
	vals[n++] = GetDatabaseEncodingName();
	keys[n] = "options";
	vals[n++] = "-c datestyle=ISO -c intervalstyle=postgres -c extra_float_digits=3 -c search_path=pg_catalog";
	/* a peer that went away is noticed within a minute */
	keys[n] = "keepalives_idle";
	vals[n++] = "20";
	keys[n] = "keepalives_interval";
	vals[n++] = "10";
	keys[n] = "keepalives_count";
	vals[n++] = "3";
	keys[n] = "tcp_user_timeout";
	vals[n++] = "60000";
	keys[n] = NULL;
	vals[n] = NULL;

	conn = PQconnectStartParams(keys, vals, true);
	if (conn == NULL)
		ereport(ERROR,
				errcode(ERRCODE_OUT_OF_MEMORY),
				errmsg("out of memory"));
	while (status != PGRES_POLLING_OK && status != PGRES_POLLING_FAILED &&
		   PQstatus(conn) != CONNECTION_BAD)
	{
		PG_TRY();
		{
			peer_wait(conn, status == PGRES_POLLING_READING ?
					  WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE, -1);
		}
		PG_CATCH();
		{
			PQfinish(conn);
			PG_RE_THROW();
		}
		PG_END_TRY();
		status = PQconnectPoll(conn);
	}
	if (PQstatus(conn) != CONNECTION_OK)
	{
		char	   *message = pchomp(PQerrorMessage(conn));

		PQfinish(conn);
		ereport(ERROR,
				errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				errmsg("could not connect to peer %s: %s",
					   replkafka_peer_describe(conninfo), message));
	}
	return conn;
}

/*
 * Close a connection (NULL: nothing to do).  A command still running there
 * is cancelled first: a peer waiting for a lock (creating a slot) would not
 * notice the connection closed until it got it, and would keep its slot.
 */
void
replkafka_peer_close(PGconn *conn)
{
	if (conn == NULL)
		return;
	/* not on the way out: a cancel waits for the peer's host, unbounded */
	if (PQtransactionStatus(conn) == PQTRANS_ACTIVE && !proc_exit_inprogress)
	{
		PGcancel   *cancel = PQgetCancel(conn);
		char		errbuf[256];

		if (cancel)
		{
			(void) PQcancel(cancel, errbuf, sizeof(errbuf));
			PQfreeCancel(cancel);
		}
	}
	PQfinish(conn);
}

/*
 * Fail unless a non-superuser's connection string gives its own password
 * and no file of the server's (a password file, a client certificate):
 * only superusers may connect with the server's credentials, as in dblink.
 */
void
replkafka_peer_check_conninfo(const char *conninfo)
{
	PQconninfoOption *opts;
	char	   *err = NULL;
	bool		password = false;

	if (superuser())
		return;
	opts = PQconninfoParse(conninfo, &err);
	if (opts == NULL)
	{
		char	   *message = err ? pchomp(err) : pstrdup("out of memory");

		if (err)
			PQfreemem(err);
		ereport(ERROR,
				errcode(ERRCODE_SYNTAX_ERROR),
				errmsg("invalid connection string: %s", message));
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
	{
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (strcmp(o->keyword, "password") == 0)
			password = true;
		else if (strcmp(o->keyword, "passfile") == 0 ||
				 strcmp(o->keyword, "service") == 0 ||
				 strcmp(o->keyword, "sslcert") == 0 ||
				 strcmp(o->keyword, "sslkey") == 0 ||
				 strcmp(o->keyword, "sslpassword") == 0)
		{
			PQconninfoFree(opts);
			ereport(ERROR,
					errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					errmsg("only superusers may give \"%s\" in a source's connection string",
						   o->keyword));
		}
	}
	PQconninfoFree(opts);
	if (!password)
		ereport(ERROR,
				errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
				errmsg("password is required"),
				errdetail("Non-superusers must give a password in the source's connection string."));
}

/*
 * Run sql on the peer, in the simple query protocol (a replication
 * connection takes no other); the result must have status expected.  The
 * caller PQclear()s it.
 */
PGresult *
replkafka_peer_query(PGconn *conn, const char *sql, ExecStatusType expected)
{
	PGresult   *res = NULL;
	PGresult   *last = NULL;

	if (!PQsendQuery(conn, sql))
		peer_report(conn, NULL, "to take a query");

	for (;;)
	{
		while (PQisBusy(conn))
		{
			peer_wait(conn, WL_SOCKET_READABLE, -1);
			if (!PQconsumeInput(conn))
				peer_report(conn, NULL, "to answer");
		}
		res = PQgetResult(conn);
		if (res == NULL)
			break;
		if (PQresultStatus(res) == PGRES_COPY_OUT ||
			PQresultStatus(res) == PGRES_COPY_BOTH)
		{
			last = res;
			break;
		}
		if (last)
			PQclear(last);
		last = res;
	}
	if (last == NULL || PQresultStatus(last) != expected)
		peer_report(conn, last, "to answer a query");
	return last;
}

/*
 * Start a COPY ... TO STDOUT on the peer.
 */
void
replkafka_peer_copy_begin(PGconn *conn, const char *sql)
{
	PQclear(replkafka_peer_query(conn, sql, PGRES_COPY_OUT));
}

/*
 * The next piece of a COPY's data: its length, with *buf pointing at it
 * (PQfreemem() it), or -1 at the end of the data.  Fails if the peer sends
 * nothing for stall_ms.
 */
int
replkafka_peer_copy_read(PGconn *conn, char **buf, int stall_ms)
{
	for (;;)
	{
		int			len = PQgetCopyData(conn, buf, 1);
		PGresult   *res;

		if (len > 0)
			return len;
		if (len == -1)
		{
			/* the end of the data, then the COPY's own result */
			res = PQgetResult(conn);
			if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
				peer_report(conn, res, "to send its rows");
			PQclear(res);
			while ((res = PQgetResult(conn)) != NULL)
				PQclear(res);
			return -1;
		}
		if (len == -2)
			peer_report(conn, PQgetResult(conn), "to send its rows");

		/* nothing yet */
		if (!peer_wait(conn, WL_SOCKET_READABLE, stall_ms))
			ereport(ERROR,
					errcode(ERRCODE_CONNECTION_FAILURE),
					errmsg("peer %s sent no row for %d s",
						   PQhost(conn) ? PQhost(conn) : "", stall_ms / 1000));
		if (!PQconsumeInput(conn))
			peer_report(conn, NULL, "to send its rows");
	}
}
