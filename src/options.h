/*-------------------------------------------------------------------------
 *
 * options.h
 *		replkafka.kafka_options: its syntax, and which librdkafka
 *		properties it may give.
 *
 * The module is pure: no librdkafka, no ereport (a problem comes back as
 * a sentence for errdetail).  It compiles in the backend and in frontend
 * programs (with FRONTEND defined), so that the fuzzer can feed it any
 * string.  kafka.c hands what it accepts to librdkafka.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/options.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_OPTIONS_H
#define REPLKAFKA_OPTIONS_H

/* One librdkafka property given in replkafka.kafka_options. */
typedef struct ReplkafkaOption
{
	char	   *name;
	char	   *value;
} ReplkafkaOption;

/* All of them, in order. */
typedef struct ReplkafkaOptions
{
	int			n;
	ReplkafkaOption *items;
} ReplkafkaOptions;

extern bool replkafka_options_parse(const char *str, ReplkafkaOptions *result,
									char **detail);
extern void replkafka_options_free(ReplkafkaOptions *options);
extern bool replkafka_options_check(const ReplkafkaOptions *options,
									char **detail);

#endif							/* REPLKAFKA_OPTIONS_H */
