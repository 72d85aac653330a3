/*-------------------------------------------------------------------------
 *
 * kafka.c
 *		Thin layer over librdkafka: configuration, logging, error
 *		reporting, and the administrative calls made by SQL functions.
 *
 * librdkafka runs threads of its own.  None of them may call into
 * PostgreSQL: every client is configured with log.queue=true and its log
 * and error callbacks are served by rd_kafka_poll() on the backend's own
 * thread.  Callbacks never raise errors (a longjmp out of librdkafka would
 * skip its cleanup); they record what happened and the caller reports it
 * after the poll returns.
 *
 * Waits for Kafka are cut into short slices with the latch and
 * CHECK_FOR_INTERRUPTS() in between, so a query cancel or a shutdown is
 * never held up by the broker, and every wait is bounded by
 * replkafka.request_timeout.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/kafka.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#include <syslog.h>

#include <librdkafka/rdkafka.h>

#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "kafka.h"
#include "message.h"
#include "options.h"
#include "settings.h"

/* Longest single wait inside librdkafka before we look at interrupts. */
#define KAFKA_POLL_SLICE_MS		200

/* Pause between two attempts to reach an unavailable cluster. */
#define KAFKA_RETRY_PAUSE_MS	100

static bool check_kafka_options(char **newval, void **extra, GucSource source);
static bool kafka_apply_options(rd_kafka_conf_t *conf,
								const ReplkafkaOptions *options, char **detail);
static void kafka_conf_set(rd_kafka_conf_t *conf, const char *name,
						   const char *value);
static void kafka_sync_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg,
							 void *opaque);
static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
						 const char *buf);
static void kafka_error_cb(rd_kafka_t *rk, int err, const char *reason,
						   void *opaque);
static int	kafka_remaining_ms(TimestampTz deadline);
static void kafka_pause(long timeout_ms);
static int	kafka_topic_partitions(rd_kafka_t *rk, const char *topic,
								   TimestampTz deadline, bool wait_ready);
static bool kafka_create_topic(rd_kafka_t *rk, const ReplkafkaTopicSpec *spec,
							   TimestampTz deadline);
static void kafka_report_unreachable(rd_kafka_resp_err_t err) pg_attribute_noreturn();
static bool kafka_transient(rd_kafka_resp_err_t err);
static void kafka_serve_logs(rd_kafka_t *rk);
static void kafka_read(rd_kafka_t *consumer, const char *topic,
					   int partition, int64 from, int64 to,
					   TimestampTz deadline, int stall_ms,
					   ReplkafkaRecordCallback cb, void *arg);
static void kafka_read_loop(rd_kafka_t *consumer, const char *topic,
							int partition, int64 next, int64 to,
							TimestampTz deadline, int stall_ms,
							ReplkafkaRecordCallback cb, void *arg);

/* GUC variables of the Kafka clients */
char	   *replkafka_brokers = NULL;
char	   *replkafka_kafka_options = NULL;
int			replkafka_request_timeout = 10000;

/* Last error reported by librdkafka's error callback, for error details. */
static char kafka_last_error[512];

/* Set when librdkafka reports a fatal error. */
static bool kafka_fatal = false;

/* How many errors the clients of this process reported, and the last one's code. */
static uint64 kafka_errors = 0;
static rd_kafka_resp_err_t kafka_last_error_code = RD_KAFKA_RESP_ERR_NO_ERROR;

/* kafka_errors when a request for offsets was last answered. */
static uint64 kafka_errors_answered = 0;


/*
 * Define the parameters of the Kafka clients; called from _PG_init while
 * preloading.
 */
void
replkafka_kafka_define_settings(void)
{
	DefineCustomStringVariable("replkafka.brokers",
							   gettext_noop("Sets the Kafka bootstrap servers, as host:port pairs separated by commas."),
							   NULL,
							   &replkafka_brokers,
							   "",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("replkafka.kafka_options",
							   gettext_noop("Sets extra librdkafka properties, as key=value pairs separated by commas."),
							   gettext_noop("Use \"\\,\" for a comma inside a value.  Used for TLS, SASL and tuning."),
							   &replkafka_kafka_options,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   check_kafka_options, NULL, NULL);

	DefineCustomIntVariable("replkafka.request_timeout",
							gettext_noop("Sets how long SQL functions wait for Kafka before failing."),
							NULL,
							&replkafka_request_timeout,
							10000,
							100, INT_MAX / 2,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
}

/*
 * GUC check hook for replkafka.kafka_options: the list must parse, name no
 * property replkafka sets itself, and be accepted by librdkafka.
 */
static bool
check_kafka_options(char **newval, void **extra, GucSource source)
{
	char	   *detail;

	if (!replkafka_kafka_validate_options(*newval, &detail))
	{
		/* the value may hold a password: the message does not quote it */
		GUC_check_errmsg("invalid value for parameter \"replkafka.kafka_options\"");
		GUC_check_errdetail("%s", detail);
		return false;
	}
	return true;
}

/*
 * Apply parsed options to a librdkafka configuration.  Returns false with a
 * sentence for errdetail in *detail if replkafka_options_check() refuses
 * one, or librdkafka does.  A rejected value is never repeated: it may be
 * a password.
 */
static bool
kafka_apply_options(rd_kafka_conf_t *conf, const ReplkafkaOptions *options,
					char **detail)
{
	char		value[64];
	size_t		size = sizeof(value);

	if (!replkafka_options_check(options, detail))
		return false;
	for (int i = 0; i < options->n; i++)
	{
		const ReplkafkaOption *opt = &options->items[i];
		char		errstr[512];
		size_t		len;

		if (rd_kafka_conf_set(conf, opt->name, opt->value,
							  errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
		{
			len = strlen(errstr);
			if (len > 0 && errstr[len - 1] == '.')
				errstr[len - 1] = '\0';
			if (opt->value[0] != '\0' && strstr(errstr, opt->value) != NULL)
				*detail = psprintf("librdkafka rejected the value of property \"%s\".",
								   opt->name);
			else
				*detail = psprintf("librdkafka rejected property \"%s\": %s.",
								   opt->name, errstr);
			return false;
		}
	}

	/* A chunk of the smallest size must fit a message. */
	if (rd_kafka_conf_get(conf, "message.max.bytes", value, &size) == RD_KAFKA_CONF_OK &&
		atoi(value) < REPLKAFKA_MIN_CHUNK_SIZE + REPLKAFKA_RECORD_OVERHEAD)
	{
		*detail = psprintf("Property \"message.max.bytes\" must be at least %d, to hold a chunk of %d bytes.",
						   REPLKAFKA_MIN_CHUNK_SIZE + REPLKAFKA_RECORD_OVERHEAD,
						   REPLKAFKA_MIN_CHUNK_SIZE);
		return false;
	}
	return true;
}

/*
 * Validate a replkafka.kafka_options value without raising errors, for the
 * GUC check hook.  On failure, *detail is a sentence saying what is wrong.
 */
bool
replkafka_kafka_validate_options(const char *options, char **detail)
{
	MemoryContext cxt;
	MemoryContext oldcxt;
	ReplkafkaOptions parsed;
	rd_kafka_conf_t *conf;
	bool		ok;

	cxt = AllocSetContextCreate(CurrentMemoryContext,
								"replkafka options check",
								ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);

	ok = replkafka_options_parse(options, &parsed, detail);
	if (ok)
	{
		conf = rd_kafka_conf_new();
		ok = kafka_apply_options(conf, &parsed, detail);
		rd_kafka_conf_destroy(conf);
	}

	MemoryContextSwitchTo(oldcxt);
	if (!ok)
		*detail = pstrdup(*detail);
	MemoryContextDelete(cxt);
	return ok;
}

/*
 * rd_kafka_conf_set that raises an error (after destroying conf) on failure.
 */
static void
kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
	char		errstr[512];

	if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
	{
		rd_kafka_conf_destroy(conf);
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("could not set Kafka client property \"%s\" to \"%s\"",
					   name, value),
				errdetail("%s", errstr));
	}
}

/*
 * Create a Kafka client handle of the given kind from replkafka's settings.
 * A producer's delivery reports go to dr_cb (NULL: none), served by
 * rd_kafka_poll() like the log lines.
 *
 * The fixed settings follow the delivery contract: the producer is
 * idempotent (acks=all, ordered retries) and never gives up on a message;
 * consumers never commit offsets to Kafka and never jump to another offset
 * on their own, because replkafka stores its positions in its own catalog.
 */
rd_kafka_t *
replkafka_kafka_new(ReplkafkaClientKind kind, ReplkafkaDeliveryCallback dr_cb)
{
	static const char *const kind_names[] = {"admin", "producer", "consumer", "control", "reader"};

	StaticAssertDecl(lengthof(kind_names) == REPLKAFKA_CLIENT_READER + 1,
					 "kind_names must name every ReplkafkaClientKind");
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	ReplkafkaOptions options;
	char	   *detail;
	char		errstr[512];

	if (replkafka_brokers == NULL || replkafka_brokers[0] == '\0')
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("no Kafka brokers are configured"),
				errhint("Set \"replkafka.brokers\" to the Kafka bootstrap servers and reload the configuration."));

	/* The GUC check hook already validated the options; this cannot fail. */
	if (!replkafka_options_parse(replkafka_kafka_options, &options, &detail))
		elog(ERROR, "invalid \"replkafka.kafka_options\": %s", detail);

	conf = rd_kafka_conf_new();

	/* Defaults users may override. */
	switch (kind)
	{
		case REPLKAFKA_CLIENT_PRODUCER:

			/*
			 * Bounded memory.  No lingering: a record goes out at once, and
			 * the records produced while a request is in flight make the next
			 * batch (one request at a time, below), so a busy shipper still
			 * sends large batches.
			 */
			kafka_conf_set(conf, "queue.buffering.max.kbytes", "65536");
			kafka_conf_set(conf, "linger.ms", "0");
			break;
		case REPLKAFKA_CLIENT_CONSUMER:
		case REPLKAFKA_CLIENT_READER:

			/*
			 * How long the broker holds a fetch that finds no record.  A
			 * record appended meanwhile answers the fetch at once, so this
			 * does not delay what is applied.  It bounds how late a partition
			 * newly assigned or rewound is first fetched (librdkafka has one
			 * fetch in flight per broker), which for a reader is the start of
			 * its next range; and it sets how often an idle apply worker
			 * asks: at 20 ms, one idle replica of 8 partitions took a fifth
			 * of a core of the broker.
			 */
			kafka_conf_set(conf, "fetch.wait.max.ms",
						   kind == REPLKAFKA_CLIENT_READER ? "20" : "100");

			/*
			 * Bounded memory: librdkafka fetches while its queue of records
			 * fetched ahead of the worker holds less than 16MB (32 chunks of
			 * a large transaction, tens of thousands of small ones), and
			 * lowers fetch.max.bytes, the most a fetch response holds, to as
			 * much, unless fetch.max.bytes is set too.  Its defaults, 64MB
			 * and 50MB per response, let a worker hold over 100MB while it
			 * applies a large transaction.
			 */
			kafka_conf_set(conf, "queued.max.messages.kbytes", "16384");
			break;
		default:
			break;
	}

	if (!kafka_apply_options(conf, &options, &detail))
	{
		rd_kafka_conf_destroy(conf);
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid value for parameter \"replkafka.kafka_options\""),
				errdetail("%s", detail));
	}

	/* Then the fixed settings, which nothing given above changes. */
	kafka_conf_set(conf, "bootstrap.servers", replkafka_brokers);
	kafka_conf_set(conf, "client.id",
				   psprintf("replkafka-%s-%s",
							replkafka_node_name[0] ? replkafka_node_name : "unnamed",
							kind_names[kind]));
	kafka_conf_set(conf, "log.queue", "true");
	/* A deleted topic must stay deleted, not come back with one partition. */
	kafka_conf_set(conf, "allow.auto.create.topics", "false");
	rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
	rd_kafka_conf_set_error_cb(conf, kafka_error_cb);

	switch (kind)
	{
		case REPLKAFKA_CLIENT_ADMIN:
			break;
		case REPLKAFKA_CLIENT_PRODUCER:
			kafka_conf_set(conf, "enable.idempotence", "true");
			kafka_conf_set(conf, "message.timeout.ms", "0");

			/*
			 * A record that fails for good must not be followed by one that
			 * succeeds: the log would have a hole no replica can get past.
			 * Such a failure is fatal instead, and the shipper starts again
			 * from what Kafka holds.
			 */
			kafka_conf_set(conf, "enable.gapless.guarantee", "true");

			/*
			 * One produce request at a time per broker.  A broker reads the
			 * next request of a connection only once it has answered the one
			 * before, which with acks=all waits for the followers: requests
			 * queued behind it would land whenever that happens, even long
			 * after this process is gone, and after the records of the next
			 * shipper, which would ship their transactions again.  With one,
			 * what a crashed shipper sent is appended when it is read, and
			 * the next shipper's read-back up to its HEARTBEAT finds it.
			 */
			kafka_conf_set(conf, "max.in.flight.requests.per.connection", "1");
			break;
		case REPLKAFKA_CLIENT_CONTROL:

			/*
			 * One record, acknowledged by all in-sync replicas.  No
			 * idempotence: getting a producer id first costs a round trip,
			 * and up to a second when it is retried, in the middle of a
			 * promotion.  A retry may write the record twice, with other
			 * records between the copies: the second copy of a NEW_GEN is a
			 * lost election, of an END_GEN a repeated one, and promote()
			 * takes the first copy, not the acknowledged one, for its
			 * producer checkpoint.
			 */
			kafka_conf_set(conf, "enable.idempotence", "false");
			kafka_conf_set(conf, "acks", "all");
			kafka_conf_set(conf, "max.in.flight.requests.per.connection", "1");
			kafka_conf_set(conf, "linger.ms", "0");
			break;
		case REPLKAFKA_CLIENT_CONSUMER:
		case REPLKAFKA_CLIENT_READER:
			/* librdkafka 2.0 wants a group even for manual assignment. */
			kafka_conf_set(conf, "group.id",
						   psprintf("replkafka-%s", replkafka_node_name));
			kafka_conf_set(conf, "enable.auto.commit", "false");
			kafka_conf_set(conf, "enable.auto.offset.store", "false");
			kafka_conf_set(conf, "auto.offset.reset", "error");
			break;
	}
	if (dr_cb)
		rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);

	rk = rd_kafka_new(REPLKAFKA_CLIENT_IS_CONSUMER(kind) ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER,
					  conf, errstr, sizeof(errstr));
	if (rk == NULL)
	{
		rd_kafka_conf_destroy(conf);
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("could not create Kafka client"),
				errdetail("%s", errstr));
	}

	/* Route log lines to the main queue, served by rd_kafka_poll(). */
	rd_kafka_set_log_queue(rk, NULL);
	/* A consumer serves the main queue from rd_kafka_consumer_poll(). */
	if (REPLKAFKA_CLIENT_IS_CONSUMER(kind))
		rd_kafka_poll_set_consumer(rk);
	kafka_last_error[0] = '\0';
	return rk;
}

/*
 * Serve the log lines and errors queued on a client's main queue.  A
 * consumer's main queue is forwarded to its consumer queue, which holds
 * fetched records too and is served by rd_kafka_consumer_poll() alone
 * (rd_kafka_poll() on it trips an assertion in librdkafka).
 */
static void
kafka_serve_logs(rd_kafka_t *rk)
{
	if (rd_kafka_type(rk) == RD_KAFKA_PRODUCER)
		rd_kafka_poll(rk, 0);
}

/*
 * librdkafka log callback, run by rd_kafka_poll() on the backend's thread
 * (log.queue=true).  Broker trouble goes to the server log, not the client.
 */
static void
kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	int			elevel;

	if (level <= LOG_WARNING)
		elevel = LOG;
	else if (level <= LOG_INFO)
		elevel = DEBUG1;
	else
		elevel = DEBUG2;

	/* no error may leave librdkafka's poll: no interrupt is served */
	HOLD_INTERRUPTS();
	ereport(elevel,
			errmsg_internal("librdkafka %s: %s: %s", rd_kafka_name(rk), fac, buf));
	RESUME_INTERRUPTS();
}

/*
 * librdkafka error callback.  Only remembers the error; the code waiting on
 * Kafka reports it when it gives up.
 */
static void
kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	replkafka_kafka_note_error(err, reason);
	if (err == RD_KAFKA_RESP_ERR__FATAL)
		kafka_fatal = true;
}

/*
 * Remember an error of a client of this process: one its error callback
 * reported, or one a consumer returned for a partition.
 */
void
replkafka_kafka_note_error(int err, const char *reason)
{
	strlcpy(kafka_last_error, reason, sizeof(kafka_last_error));
	kafka_last_error_code = err;
	kafka_errors++;
}

/*
 * How many errors the clients of this process reported so far: a worker
 * that sees the count move asks the cluster whether it is still reachable.
 */
uint64
replkafka_kafka_errors(void)
{
	return kafka_errors;
}

/*
 * True once a client of this process hit a fatal error (an idempotent
 * producer whose guarantees can no longer hold); it must be destroyed.
 * Fills reason with librdkafka's explanation.
 */
bool
replkafka_kafka_fatal(rd_kafka_t *rk, char *reason, size_t size)
{
	if (!kafka_fatal)
		return false;
	if (rd_kafka_fatal_error(rk, reason, size) == RD_KAFKA_RESP_ERR_NO_ERROR)
		strlcpy(reason, kafka_last_error, size);
	return true;
}

/*
 * Milliseconds left until deadline, at least zero.
 */
static int
kafka_remaining_ms(TimestampTz deadline)
{
	long		ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);

	return (int) Min(ms, INT_MAX);
}

/*
 * Sleep on the latch for a while, staying responsive to interrupts.
 */
static void
kafka_pause(long timeout_ms)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 timeout_ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/*
 * Raise the error for a cluster that did not answer in time.
 */
static void
kafka_report_unreachable(rd_kafka_resp_err_t err)
{
	ereport(ERROR,
			errcode(ERRCODE_CONNECTION_FAILURE),
			errmsg("could not reach Kafka brokers \"%s\" within %d ms",
				   replkafka_brokers, replkafka_request_timeout),
			kafka_last_error[0] ?
			errdetail("The last error was: %s.", kafka_last_error) :
			errdetail("The last error was: %s.", rd_kafka_err2str(err)),
			errhint("Check \"replkafka.brokers\" and that the brokers are running, or raise \"replkafka.request_timeout\"."));
}

/*
 * Number of partitions of a topic, or -1 if the topic does not exist.
 *
 * Retries until deadline while the cluster is unreachable.  With
 * wait_ready, also waits until the topic exists and every partition has a
 * leader, as right after its creation, when brokers learn of it one by one.
 */
static int
kafka_topic_partitions(rd_kafka_t *rk, const char *topic, TimestampTz deadline,
					   bool wait_ready)
{
	for (;;)
	{
		const struct rd_kafka_metadata *md;
		rd_kafka_resp_err_t err;
		int			remaining = kafka_remaining_ms(deadline);
		int			result = -1;
		bool		ready = false;

		/*
		 * Ask for all topics: a request naming the topic could make a broker
		 * configured with auto.create.topics.enable create it with the
		 * broker's default partition count.
		 */
		err = rd_kafka_metadata(rk, 1, NULL, &md,
								Max(1, Min(remaining, KAFKA_POLL_SLICE_MS)));
		kafka_serve_logs(rk);

		if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			rd_kafka_resp_err_t topic_err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;

			for (int i = 0; i < md->topic_cnt; i++)
			{
				const rd_kafka_metadata_topic_t *t = &md->topics[i];

				if (strcmp(t->topic, topic) != 0)
					continue;
				topic_err = t->err;
				if (topic_err != RD_KAFKA_RESP_ERR_NO_ERROR)
					break;
				result = t->partition_cnt;
				ready = true;
				for (int j = 0; j < t->partition_cnt; j++)
				{
					if (t->partitions[j].err != RD_KAFKA_RESP_ERR_NO_ERROR ||
						t->partitions[j].leader < 0)
						ready = false;
				}
				break;
			}
			rd_kafka_metadata_destroy(md);

			if (topic_err != RD_KAFKA_RESP_ERR_NO_ERROR &&
				topic_err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART &&
				topic_err != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE)
				ereport(ERROR,
						errcode(ERRCODE_CONNECTION_FAILURE),
						errmsg("could not read metadata of Kafka topic \"%s\": %s",
							   topic, rd_kafka_err2str(topic_err)));
			if (!wait_ready)
				return result;
			if (ready)
				return result;
			if (kafka_remaining_ms(deadline) <= 0)
				ereport(ERROR,
						errcode(ERRCODE_CONNECTION_FAILURE),
						errmsg("Kafka topic \"%s\" did not become available within %d ms",
							   topic, replkafka_request_timeout),
						errdetail("The topic is missing from the brokers' metadata or some of its partitions have no leader."));
		}
		else if (err != RD_KAFKA_RESP_ERR__TIMED_OUT &&
				 err != RD_KAFKA_RESP_ERR__TRANSPORT &&
				 err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
			ereport(ERROR,
					errcode(ERRCODE_CONNECTION_FAILURE),
					errmsg("could not read Kafka metadata: %s",
						   rd_kafka_err2str(err)));
		else if (kafka_remaining_ms(deadline) <= 0)
			kafka_report_unreachable(err);

		kafka_pause(KAFKA_RETRY_PAUSE_MS);
	}
}

/*
 * Create the replication topic with the settings that make Kafka lose no
 * acknowledged record: min.insync.replicas = min(2, RF), no unclean leader
 * election, deletion only (never compaction) and unlimited retention, since
 * a new replica reads the whole log.
 *
 * Returns true if this call created it, false if it already existed (for
 * example because another node created it at the same moment).
 */
static bool
kafka_create_topic(rd_kafka_t *rk, const ReplkafkaTopicSpec *spec,
				   TimestampTz deadline)
{
	rd_kafka_NewTopic_t *newt;
	rd_kafka_AdminOptions_t *options;
	rd_kafka_queue_t *queue;
	rd_kafka_event_t *volatile ev = NULL;
	volatile rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
	char	   *volatile errmsg_text = NULL;
	char		errstr[512];
	char		isr[16];

	newt = rd_kafka_NewTopic_new(spec->name, spec->partitions,
								 spec->replication_factor,
								 errstr, sizeof(errstr));
	if (newt == NULL)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid definition of Kafka topic \"%s\": %s",
					   spec->name, errstr));

	snprintf(isr, sizeof(isr), "%d", Min(2, spec->replication_factor));
	rd_kafka_NewTopic_set_config(newt, "min.insync.replicas", isr);
	rd_kafka_NewTopic_set_config(newt, "unclean.leader.election.enable", "false");
	rd_kafka_NewTopic_set_config(newt, "cleanup.policy",
								 spec->compacted ? "compact" : "delete");
	rd_kafka_NewTopic_set_config(newt, "retention.ms",
								 psprintf(INT64_FORMAT, spec->retention_ms));
	rd_kafka_NewTopic_set_config(newt, "retention.bytes", "-1");

	options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	rd_kafka_AdminOptions_set_request_timeout(options,
											  Max(1, kafka_remaining_ms(deadline)),
											  errstr, sizeof(errstr));
	rd_kafka_AdminOptions_set_operation_timeout(options,
												Max(1, kafka_remaining_ms(deadline)),
												errstr, sizeof(errstr));
	queue = rd_kafka_queue_new(rk);

	PG_TRY();
	{
		const rd_kafka_CreateTopics_result_t *res;
		const rd_kafka_topic_result_t **topics;
		size_t		cnt;

		rd_kafka_CreateTopics(rk, &newt, 1, options, queue);

		/* The request timeout set above makes librdkafka answer in time. */
		while ((ev = rd_kafka_queue_poll(queue, KAFKA_POLL_SLICE_MS)) == NULL)
		{
			rd_kafka_poll(rk, 0);
			CHECK_FOR_INTERRUPTS();
		}

		err = rd_kafka_event_error(ev);
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
			errmsg_text = pstrdup(rd_kafka_event_error_string(ev));
		else
		{
			res = rd_kafka_event_CreateTopics_result(ev);
			topics = rd_kafka_CreateTopics_result_topics(res, &cnt);
			if (cnt == 1)
			{
				err = rd_kafka_topic_result_error(topics[0]);
				if (rd_kafka_topic_result_error_string(topics[0]))
					errmsg_text = pstrdup(rd_kafka_topic_result_error_string(topics[0]));
			}
		}
	}
	PG_FINALLY();
	{
		if (ev)
			rd_kafka_event_destroy(ev);
		rd_kafka_queue_destroy(queue);
		rd_kafka_AdminOptions_destroy(options);
		rd_kafka_NewTopic_destroy(newt);
	}
	PG_END_TRY();

	switch (err)
	{
		case RD_KAFKA_RESP_ERR_NO_ERROR:
			return true;
		case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
			return false;
		case RD_KAFKA_RESP_ERR__TIMED_OUT:
		case RD_KAFKA_RESP_ERR__TRANSPORT:
		case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
			kafka_report_unreachable(err);
			break;
		case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("could not create Kafka topic \"%s\" with replication factor %d",
						   spec->name, spec->replication_factor),
					errdetail("Kafka answered: %s", errmsg_text ? errmsg_text : rd_kafka_err2str(err)),
					errhint("The replication factor cannot exceed the number of Kafka brokers."));
			break;
		default:
			ereport(ERROR,
					errcode(ERRCODE_CONNECTION_FAILURE),
					errmsg("could not create Kafka topic \"%s\": %s",
						   spec->name, rd_kafka_err2str(err)),
					errmsg_text ? errdetail("Kafka answered: %s", errmsg_text) : 0);
	}
	pg_unreachable();
}

/*
 * Make sure the replication topic exists with spec->partitions partitions:
 * create it if missing, check its partition count if present.  Waits at
 * most replkafka.request_timeout for the cluster.
 */
void
replkafka_kafka_ensure_topic(const ReplkafkaTopicSpec *spec)
{
	TimestampTz deadline;
	rd_kafka_t *rk;
	int			existing;

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   replkafka_request_timeout);
	rk = replkafka_kafka_new(REPLKAFKA_CLIENT_ADMIN, NULL);
	PG_TRY();
	{
		existing = kafka_topic_partitions(rk, spec->name, deadline, false);
		if (existing < 0)
		{
			/* Created now or by another node meanwhile: wait until usable. */
			(void) kafka_create_topic(rk, spec, deadline);
			existing = kafka_topic_partitions(rk, spec->name, deadline, true);
		}

		if (existing >= 0 && existing != spec->partitions)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("Kafka topic \"%s\" has %d partitions, not %d",
						   spec->name, existing, spec->partitions),
					errdetail("Each database partition is one partition of the topic, so the counts must be equal."),
					errhint("Create the cluster with %d partitions, or set \"replkafka.topic\" to another topic.",
							existing));
	}
	PG_FINALLY();
	{
		rd_kafka_destroy(rk);
	}
	PG_END_TRY();
}


/* ----------------------------------------------------------------
 * Reading and writing records
 * ----------------------------------------------------------------
 */

/*
 * Errors that a retry can cure: the cluster is (still) unreachable, or a
 * leader is moving.
 */
static bool
kafka_transient(rd_kafka_resp_err_t err)
{
	switch (err)
	{
		case RD_KAFKA_RESP_ERR__TIMED_OUT:
		case RD_KAFKA_RESP_ERR__TRANSPORT:
		case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
		case RD_KAFKA_RESP_ERR__WAIT_COORD:
		case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
		case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
		case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
		case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
		case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
		case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
		case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:	/* metadata not caught up */
			return true;
		default:
			return false;
	}
}

/*
 * One offset of partition: where it starts (RD_KAFKA_OFFSET_BEGINNING) or
 * where its next record goes (RD_KAFKA_OFFSET_END), asking its leader and
 * waiting at most timeout_ms.  rd_kafka_query_watermark_offsets() asks the
 * same, but librdkafka 2.0 waits for its answer whatever the timeout, and a
 * request sent to a broker that just went away waits for minutes.
 */
static rd_kafka_resp_err_t
kafka_list_offset(rd_kafka_t *rk, const char *topic, int partition,
				  int64 which, int64 *offset, int timeout_ms)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_t *elem;
	rd_kafka_resp_err_t err;

	elem = rd_kafka_topic_partition_list_add(list, topic, partition);
	elem->offset = which;
	err = rd_kafka_offsets_for_times(rk, list, timeout_ms);
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
		err = elem->err;
	/* a partition the answer did not name keeps what was asked */
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR && elem->offset < 0)
		err = RD_KAFKA_RESP_ERR__TIMED_OUT;
	*offset = elem->offset;
	rd_kafka_topic_partition_list_destroy(list);
	return err;
}

/*
 * The low and high watermarks of a partition: the offset of its first
 * record and the offset the next record will get.  Retries until deadline.
 */
void
replkafka_kafka_watermarks(rd_kafka_t *rk, const char *topic, int partition,
						   int64 *low, int64 *high, TimestampTz deadline)
{
	for (;;)
	{
		rd_kafka_resp_err_t err;
		int			remaining = kafka_remaining_ms(deadline);
		char		reason[256];
		int			sqlerrcode;

		/*
		 * librdkafka retries a request for offsets to a leader it cannot
		 * reach far past the timeout given.  After an error, ask the metadata
		 * first (bounded), and retry here while it shows no reachable cluster
		 * or a partition without a leader.
		 */
		if (kafka_errors != kafka_errors_answered &&
			!replkafka_kafka_probe(rk, topic, Max(1, Min(remaining, 1000)),
								   reason, sizeof(reason), &sqlerrcode))
			err = RD_KAFKA_RESP_ERR__TRANSPORT;
		else
		{
			err = kafka_list_offset(rk, topic, partition, RD_KAFKA_OFFSET_BEGINNING,
									low, Max(1, Min(remaining, 1000)));
			if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
				err = kafka_list_offset(rk, topic, partition, RD_KAFKA_OFFSET_END, high,
										Max(1, Min(kafka_remaining_ms(deadline), 1000)));
		}
		kafka_serve_logs(rk);
		if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			kafka_errors_answered = kafka_errors;
			return;
		}
		if (!kafka_transient(err))
			ereport(ERROR,
					errcode(ERRCODE_CONNECTION_FAILURE),
					errmsg("could not read the offsets of partition %d of Kafka topic \"%s\": %s",
						   partition, topic, rd_kafka_err2str(err)));
		if (kafka_remaining_ms(deadline) <= 0)
			kafka_report_unreachable(err);
		kafka_pause(KAFKA_RETRY_PAUSE_MS);
	}
}

/*
 * The SQLSTATE of a Kafka error a worker cannot get past.
 */
static int
kafka_sqlstate(rd_kafka_resp_err_t err)
{
	switch (err)
	{
		case RD_KAFKA_RESP_ERR__AUTHENTICATION:
		case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
			return ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;
		case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
		case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
		case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
			return ERRCODE_INSUFFICIENT_PRIVILEGE;
		case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
			return ERRCODE_UNDEFINED_OBJECT;
		default:
			return ERRCODE_CONNECTION_FAILURE;
	}
}

/*
 * Ask the cluster once, within timeout_ms, for the metadata of topic: can
 * this client reach a broker, get through its authentication, and find
 * topic, readable, with a leader for every partition?  If not, fills
 * reason with why and *sqlerrcode with its SQLSTATE.
 *
 * Metadata, not offsets: a request for offsets waits for the partition's
 * leader as long as the client believes a dead broker leads it.  The
 * clients do not let brokers create topics, so asking for one creates none.
 */
bool
replkafka_kafka_probe(rd_kafka_t *rk, const char *topic, int timeout_ms,
					  char *reason, size_t size, int *sqlerrcode)
{
	const struct rd_kafka_metadata *md;
	rd_kafka_topic_t *rkt;
	rd_kafka_resp_err_t err;
	bool		ok = false;

	rkt = rd_kafka_topic_new(rk, topic, NULL);
	if (rkt == NULL)
	{
		strlcpy(reason, rd_kafka_err2str(rd_kafka_last_error()), size);
		*sqlerrcode = ERRCODE_CONNECTION_FAILURE;
		return false;
	}
	err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
	rd_kafka_topic_destroy(rkt);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		/* a timeout says less than what the brokers last answered */
		if ((err == RD_KAFKA_RESP_ERR__TIMED_OUT ||
			 err == RD_KAFKA_RESP_ERR__TRANSPORT ||
			 err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) &&
			kafka_last_error[0] != '\0')
		{
			strlcpy(reason, kafka_last_error, size);
			*sqlerrcode = kafka_sqlstate(kafka_last_error_code);
		}
		else
		{
			strlcpy(reason, rd_kafka_err2str(err), size);
			*sqlerrcode = kafka_sqlstate(err);
		}
		return false;
	}

	if (md->topic_cnt != 1)
	{
		strlcpy(reason, rd_kafka_err2str(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART), size);
		*sqlerrcode = ERRCODE_UNDEFINED_OBJECT;
	}
	else if (md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		strlcpy(reason, rd_kafka_err2str(md->topics[0].err), size);
		*sqlerrcode = kafka_sqlstate(md->topics[0].err);
	}
	else
	{
		ok = true;
		for (int i = 0; i < md->topics[0].partition_cnt && ok; i++)
			if (md->topics[0].partitions[i].leader < 0)
			{
				snprintf(reason, size, "partition %d has no leader",
						 md->topics[0].partitions[i].id);
				*sqlerrcode = ERRCODE_CONNECTION_FAILURE;
				ok = false;
			}
	}
	rd_kafka_metadata_destroy(md);
	/* what the brokers said before no longer explains anything */
	if (ok)
	{
		kafka_last_error[0] = '\0';
		kafka_last_error_code = RD_KAFKA_RESP_ERR_NO_ERROR;
	}
	return ok;
}

/*
 * The reading loop of replkafka_kafka_read(), once the partition is
 * assigned.  With stall_ms > 0, deadline moves stall_ms past every record
 * of the range received (not past errors): a long read that makes
 * progress never times out.
 */
static void
kafka_read_loop(rd_kafka_t *consumer, const char *topic, int partition,
				int64 next, int64 to, TimestampTz first_deadline,
				int stall_ms, ReplkafkaRecordCallback cb, void *arg)
{
	volatile TimestampTz start = GetCurrentTimestamp();
	volatile TimestampTz deadline = first_deadline;

	while (next < to)
	{
		rd_kafka_message_t *msg;
		bool		more = true;

		CHECK_FOR_INTERRUPTS();
		msg = rd_kafka_consumer_poll(consumer, KAFKA_POLL_SLICE_MS);
		if (msg == NULL)
		{
			if (kafka_remaining_ms(deadline) <= 0)
				ereport(ERROR,
						errcode(ERRCODE_CONNECTION_FAILURE),
						errmsg("could not read offsets %lld to %lld of partition %d of Kafka topic \"%s\" within %ld ms",
							   (long long) next, (long long) to - 1,
							   partition, topic,
							   TimestampDifferenceMilliseconds(start, deadline)),
						kafka_last_error[0] ?
						errdetail("The last error was: %s.", kafka_last_error) : 0);
			continue;
		}
		if (msg->err)
		{
			rd_kafka_resp_err_t merr = msg->err;
			char	   *text = pstrdup(rd_kafka_message_errstr(msg));

			rd_kafka_message_destroy(msg);
			if (kafka_transient(merr))
				continue;
			ereport(ERROR,
					errcode(ERRCODE_CONNECTION_FAILURE),
					errmsg("could not read partition %d of Kafka topic \"%s\" at offset %lld: %s",
						   partition, topic, (long long) next, text));
		}
		if (msg->partition == partition && msg->offset >= next)
		{
			/* progress: a long read goes on */
			if (stall_ms > 0)
			{
				start = GetCurrentTimestamp();
				deadline = TimestampTzPlusMilliseconds(start, stall_ms);
			}
			if (msg->offset < to)
			{
				/* the message must be destroyed whatever cb does */
				PG_TRY();
				{
					more = cb(arg, msg->offset, msg->payload, msg->len);
				}
				PG_CATCH();
				{
					rd_kafka_message_destroy(msg);
					PG_RE_THROW();
				}
				PG_END_TRY();
			}
			next = msg->offset + 1;
		}
		rd_kafka_message_destroy(msg);
		if (!more)
			break;
	}
}

/*
 * Read the records of a partition with offsets in [from, to), in order,
 * with a consumer handle, passing each to cb until it returns false.
 * Fails if the records cannot all be read before deadline.
 */
void
replkafka_kafka_read(rd_kafka_t *consumer, const char *topic, int partition,
					 int64 from, int64 to, TimestampTz deadline,
					 ReplkafkaRecordCallback cb, void *arg)
{
	kafka_read(consumer, topic, partition, from, to, deadline, 0, cb, arg);
}

/*
 * replkafka_kafka_read() of a range of any length: fails only if no record
 * arrives for stall_ms.
 */
void
replkafka_kafka_read_all(rd_kafka_t *consumer, const char *topic,
						 int partition, int64 from, int64 to, int stall_ms,
						 ReplkafkaRecordCallback cb, void *arg)
{
	kafka_read(consumer, topic, partition, from, to,
			   TimestampTzPlusMilliseconds(GetCurrentTimestamp(), stall_ms),
			   stall_ms, cb, arg);
}

/*
 * The two above.
 */
static void
kafka_read(rd_kafka_t *consumer, const char *topic, int partition,
		   int64 from, int64 to, TimestampTz deadline, int stall_ms,
		   ReplkafkaRecordCallback cb, void *arg)
{
	rd_kafka_topic_partition_list_t *parts;
	rd_kafka_resp_err_t err;

	if (from >= to)
		return;

	parts = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(parts, topic, partition)->offset = from;
	err = rd_kafka_assign(consumer, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		ereport(ERROR,
				errcode(ERRCODE_CONNECTION_FAILURE),
				errmsg("could not assign partition %d of Kafka topic \"%s\": %s",
					   partition, topic, rd_kafka_err2str(err)));

	PG_TRY();
	{
		kafka_read_loop(consumer, topic, partition, from, to, deadline,
						stall_ms, cb, arg);
	}
	PG_FINALLY();
	{
		rd_kafka_assign(consumer, NULL);
	}
	PG_END_TRY();
}

/* Outcome of one synchronously produced record. */
typedef struct KafkaSyncDelivery
{
	bool		done;
	rd_kafka_resp_err_t err;
	int64		offset;
} KafkaSyncDelivery;

/*
 * Delivery report callback of replkafka_kafka_produce_sync().
 */
static void
kafka_sync_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	KafkaSyncDelivery *d = msg->_private;

	if (d == NULL)
		return;
	d->done = true;
	d->err = msg->err;
	d->offset = msg->offset;
}

/*
 * Produce one record to a partition, with key if not NULL, with a new
 * producer and wait for Kafka's acknowledgement; returns the offset of the copy Kafka
 * acknowledged, which may be a second one (see replkafka_kafka_new()).
 * Used for control records written by SQL functions.  Fails if Kafka has
 * not acknowledged the record by deadline; the record may then still
 * arrive, even after this process is gone, which the callers allow for.
 */
int64
replkafka_kafka_produce_sync(const char *topic, int partition,
							 const char *key, const char *data, size_t len,
							 TimestampTz deadline)
{
	rd_kafka_t *rk;
	rd_kafka_topic_t *volatile rkt = NULL;
	KafkaSyncDelivery delivery = {false, RD_KAFKA_RESP_ERR_NO_ERROR, -1};

	rk = replkafka_kafka_new(REPLKAFKA_CLIENT_CONTROL, kafka_sync_dr_cb);
	PG_TRY();
	{
		rd_kafka_resp_err_t err;
		const struct rd_kafka_metadata *md = NULL;

		/*
		 * Learn the partition's leader first: a record produced before the
		 * client knows it waits for librdkafka's next topic scan, up to a
		 * second later.
		 */
		rkt = rd_kafka_topic_new(rk, topic, NULL);
		if (rd_kafka_metadata(rk, 0, rkt, &md,
							  Max(1, kafka_remaining_ms(deadline))) == RD_KAFKA_RESP_ERR_NO_ERROR)
			rd_kafka_metadata_destroy(md);

		err = rd_kafka_producev(rk,
								RD_KAFKA_V_RKT(rkt),
								RD_KAFKA_V_PARTITION(partition),
								RD_KAFKA_V_KEY((void *) key, key ? strlen(key) : 0),
								RD_KAFKA_V_VALUE((void *) data, len),
								RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
								RD_KAFKA_V_OPAQUE(&delivery),
								RD_KAFKA_V_END);
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
			ereport(ERROR,
					errcode(ERRCODE_CONNECTION_FAILURE),
					errmsg("could not produce to partition %d of Kafka topic \"%s\": %s",
						   partition, topic, rd_kafka_err2str(err)));

		while (!delivery.done)
		{
			char		reason[512];

			rd_kafka_poll(rk, KAFKA_POLL_SLICE_MS);
			CHECK_FOR_INTERRUPTS();
			if (replkafka_kafka_fatal(rk, reason, sizeof(reason)))
				ereport(ERROR,
						errcode(ERRCODE_CONNECTION_FAILURE),
						errmsg("Kafka producer failed: %s", reason));
			if (!delivery.done && kafka_remaining_ms(deadline) <= 0)
				kafka_report_unreachable(RD_KAFKA_RESP_ERR__TIMED_OUT);
		}
		if (delivery.err != RD_KAFKA_RESP_ERR_NO_ERROR)
			ereport(ERROR,
					errcode(ERRCODE_CONNECTION_FAILURE),
					errmsg("Kafka did not accept the record for partition %d of topic \"%s\": %s",
						   partition, topic, rd_kafka_err2str(delivery.err)));
	}
	PG_FINALLY();
	{
		/* an undelivered record is abandoned: purge it, do not wait */
		rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_poll(rk, 0);
		if (rkt)
			rd_kafka_topic_destroy(rkt);
		rd_kafka_destroy(rk);
	}
	PG_END_TRY();
	return delivery.offset;
}
