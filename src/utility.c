/*-------------------------------------------------------------------------
 *
 * utility.c
 *		The ProcessUtility hook: utility statements replkafka follows.
 *
 *	- PREPARE TRANSACTION, COMMIT PREPARED and ROLLBACK PREPARED: a
 *	  prepared transaction stays a writer of its partition until it ends,
 *	  and COMMIT PREPARED waits for Kafka as COMMIT does (fence.c).
 *	- ALTER TABLE, ALTER DOMAIN, DROP and DROP OWNED must leave every
 *	  replicated table replicable (table.c).
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/utility.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/parsenodes.h"
#include "tcop/utility.h"

#include "fence.h"
#include "table.h"
#include "utility.h"

static void utility_hook(PlannedStmt *pstmt, const char *queryString,
						 bool readOnlyTree, ProcessUtilityContext context,
						 ParamListInfo params, QueryEnvironment *queryEnv,
						 DestReceiver *dest, QueryCompletion *qc);

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/*
 * Install the hook; called from _PG_init while preloading.
 */
void
replkafka_utility_init(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = utility_hook;
}

static void
utility_hook(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			 ProcessUtilityContext context, ParamListInfo params,
			 QueryEnvironment *queryEnv, DestReceiver *dest,
			 QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	TransactionStmt *xact = NULL;
	TableGuard *guard = NULL;

	if (IsA(parsetree, TransactionStmt))
	{
		xact = (TransactionStmt *) parsetree;
		if (xact->kind == TRANS_STMT_PREPARE)
			replkafka_fence_preparing(xact->gid);
	}
	else
		guard = replkafka_table_before_utility(parsetree);

	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
							queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);

	if (xact && (xact->kind == TRANS_STMT_COMMIT_PREPARED ||
				 xact->kind == TRANS_STMT_ROLLBACK_PREPARED))
		replkafka_fence_finish_prepared(xact->gid,
										xact->kind == TRANS_STMT_COMMIT_PREPARED);
	replkafka_table_after_utility(guard);
}
