/*-------------------------------------------------------------------------
 *
 * options.c
 *		replkafka.kafka_options: its syntax, and which librdkafka
 *		properties it may give.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/options.c
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRONTEND
#include "postgres.h"
#else
#include "postgres_fe.h"
#endif

#include "lib/stringinfo.h"

#include "options.h"

/*
 * Properties replkafka sets itself.  Overriding them would break the
 * delivery guarantees or the integration with the server, so
 * replkafka.kafka_options may not name them.
 */
static const char *const reserved_options[] = {
	"bootstrap.servers", "metadata.broker.list", "client.id",
	"enable.idempotence", "acks", "request.required.acks",
	"message.timeout.ms", "delivery.timeout.ms", "transactional.id",
	"group.id", "enable.auto.commit", "enable.auto.offset.store",
	"auto.offset.reset", "enable.partition.eof", "isolation.level",
	"log.queue", "internal.termination.signal", "enable.gapless.guarantee",
	"max.in.flight.requests.per.connection", "max.in.flight",
};

/*
 * Properties that make librdkafka load code or run commands as the
 * server's operating system user: never accepted, whoever sets them.
 * (Files that TLS and SASL need, certificates and keytabs, stay allowed.)
 */
static const char *const forbidden_options[] = {
	"plugin.library.paths", "sasl.kerberos.kinit.cmd", "ssl.engine.location",
	"ssl.engine.id", "ssl.providers", "ssl_engine_callback_data",
};

/*
 * Properties librdkafka puts into the shell command that renews Kerberos
 * tickets (sasl.kerberos.kinit.cmd): their values are limited to the
 * characters of principals and paths, which a shell takes literally, and
 * may not start with "-", which kinit would take for an option.
 */
static const char *const shell_options[] = {
	"sasl.kerberos.principal", "sasl.kerberos.keytab",
};
#define SHELL_SAFE_CHARS \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-/@+:"

static bool option_in(const char *name, const char *const *names, int n);

/*
 * Split a replkafka.kafka_options string into its properties.
 *
 * The syntax is key=value pairs separated by commas; whitespace around keys
 * and values is ignored, "\," is a comma inside a value and "\\" a
 * backslash.  Empty entries are ignored.  On a syntax error, returns false
 * with a sentence for errdetail in *detail.
 */
bool
replkafka_options_parse(const char *str, ReplkafkaOptions *result,
						char **detail)
{
	const char *p = str;
	int			entry = 0;
	int			cap = 8;

	result->n = 0;
	result->items = palloc(cap * sizeof(ReplkafkaOption));
	while (*p)
	{
		StringInfoData item;
		char	   *eq;
		char	   *name;
		char	   *value;
		ReplkafkaOption *opt;

		initStringInfo(&item);
		for (; *p && *p != ','; p++)
		{
			if (*p == '\\' && (p[1] == ',' || p[1] == '\\'))
				p++;
			appendStringInfoChar(&item, *p);
		}
		if (*p == ',')
			p++;
		entry++;

		name = item.data;
		while (*name == ' ' || *name == '\t')
			name++;
		if (*name == '\0')
		{
			pfree(item.data);
			continue;
		}

		eq = strchr(name, '=');
		if (eq == NULL)
		{
			/* never repeated: it may be a password */
			*detail = psprintf("Entry %d is not of the form key=value.", entry);
			pfree(item.data);
			return false;
		}
		value = eq + 1;
		do
			*eq-- = '\0';
		while (eq >= name && (*eq == ' ' || *eq == '\t'));
		while (*value == ' ' || *value == '\t')
			value++;
		eq = value + strlen(value) - 1;
		while (eq >= value && (*eq == ' ' || *eq == '\t'))
			*eq-- = '\0';

		if (*name == '\0')
		{
			*detail = psprintf("Entry %d has no property name.", entry);
			pfree(item.data);
			return false;
		}

		if (result->n == cap)
		{
			cap *= 2;
			result->items = repalloc(result->items, cap * sizeof(ReplkafkaOption));
		}
		opt = &result->items[result->n++];
		opt->name = pstrdup(name);
		opt->value = pstrdup(value);
		pfree(item.data);
	}
	return true;
}

/*
 * Free what replkafka_options_parse() allocated (also after it failed).
 */
void
replkafka_options_free(ReplkafkaOptions *options)
{
	for (int i = 0; i < options->n; i++)
	{
		pfree(options->items[i].name);
		pfree(options->items[i].value);
	}
	pfree(options->items);
	options->n = 0;
	options->items = NULL;
}

/*
 * Is a property one of names?  librdkafka takes a topic property prefixed
 * with "topic." too.
 */
static bool
option_in(const char *name, const char *const *names, int n)
{
	if (strncmp(name, "topic.", 6) == 0)
		name += 6;
	for (int i = 0; i < n; i++)
		if (strcmp(name, names[i]) == 0)
			return true;
	return false;
}

/*
 * Check the properties against replkafka's rules: none of those it sets
 * itself, none that loads code or runs commands, shell-safe values where
 * librdkafka builds a command from them, each property once.  Returns
 * false with a sentence for errdetail in *detail, which never repeats a
 * value (it may be a password).
 */
bool
replkafka_options_check(const ReplkafkaOptions *options, char **detail)
{
	for (int i = 0; i < options->n; i++)
	{
		const ReplkafkaOption *opt = &options->items[i];

		if (option_in(opt->name, reserved_options, lengthof(reserved_options)))
		{
			*detail = psprintf("Property \"%s\" is set by replkafka and cannot be overridden.",
							   opt->name);
			return false;
		}
		if (option_in(opt->name, forbidden_options, lengthof(forbidden_options)))
		{
			*detail = psprintf("Property \"%s\" would let librdkafka load code or run commands as the server's operating system user.",
							   opt->name);
			return false;
		}
		if (option_in(opt->name, shell_options, lengthof(shell_options)) &&
			(strspn(opt->value, SHELL_SAFE_CHARS) != strlen(opt->value) ||
			 opt->value[0] == '-'))
		{
			*detail = psprintf("The value of property \"%s\" may hold only letters, digits and the characters \"._-/@+:\", and may not start with \"-\": librdkafka puts it into a shell command.",
							   opt->name);
			return false;
		}
		for (int j = 0; j < i; j++)
		{
			if (strcmp(options->items[j].name, opt->name) == 0)
			{
				*detail = psprintf("Property \"%s\" is given more than once.",
								   opt->name);
				return false;
			}
		}
	}
	return true;
}
