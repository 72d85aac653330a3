/*-------------------------------------------------------------------------
 *
 * fuzz_options.c
 *		libFuzzer target for the replkafka.kafka_options parser and rules
 *		of src/options.c.
 *
 * Each input is taken as a kafka_options string.  Beyond "no crash, no
 * sanitizer report", it checks:
 *
 * - a string that parses gives properties with a name, no blanks around
 *	 names or values, and no name with "=" in it;
 * - writing the properties back (commas and backslashes escaped) and
 *	 parsing that gives the same properties: nothing is lost or invented;
 * - a parse error names the entry by its number and quotes nothing;
 * - a property list the rules refuse gets one of the rules' sentences,
 *	 which quote a property's name and never a value (values may be
 *	 passwords), and one they accept has no property
 *	 replkafka reserves or forbids, no repeated name, and Kerberos values
 *	 of shell-safe characters only.
 *
 * Built with -DFRONTEND against libpgcommon and libpgport by test/fuzz/run.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		test/fuzz/fuzz_options.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include "lib/stringinfo.h"

#include "options.h"

/* What replkafka_options_check() may say, about a property's name. */
static const char *const refusals[] = {
	"Property \"%s\" is set by replkafka and cannot be overridden.",
	"Property \"%s\" would let librdkafka load code or run commands as the server's operating system user.",
	"The value of property \"%s\" may hold only letters, digits and the characters \"._-/@+:\", and may not start with \"-\": librdkafka puts it into a shell command.",
	"Property \"%s\" is given more than once.",
};

extern int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(bool condition, const char *what)
{
	if (!condition)
	{
		fprintf(stderr, "fuzz_options: invariant violated: %s\n", what);
		abort();
	}
}

static bool
blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Append s, escaping what the parser unescapes. */
static void
append_escaped(StringInfo buf, const char *s)
{
	for (; *s; s++)
	{
		if (*s == ',' || *s == '\\')
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, *s);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *str = pnstrdup((const char *) data, size);
	ReplkafkaOptions options;
	ReplkafkaOptions again;
	StringInfoData buf;
	char	   *detail = NULL;
	int			entry;
	char		rest[64];

	if (!replkafka_options_parse(str, &options, &detail))
	{
		check(detail != NULL, "a parse error says why");
		check((sscanf(detail, "Entry %d is not of the form key=value%63s", &entry, rest) == 2 &&
			   strcmp(rest, ".") == 0) ||
			  (sscanf(detail, "Entry %d has no property name%63s", &entry, rest) == 2 &&
			   strcmp(rest, ".") == 0),
			  "a parse error names the entry and quotes nothing");
		check(entry >= 1, "entries are numbered from 1");
		pfree(detail);
		replkafka_options_free(&options);
		pfree(str);
		return 0;
	}

	initStringInfo(&buf);
	for (int i = 0; i < options.n; i++)
	{
		const ReplkafkaOption *opt = &options.items[i];
		size_t		nlen = strlen(opt->name);
		size_t		vlen = strlen(opt->value);

		check(nlen > 0, "every property has a name");
		check(strchr(opt->name, '=') == NULL, "no name has \"=\" in it");
		check(!blank(opt->name[0]) && !blank(opt->name[nlen - 1]),
			  "names have no blanks around them");
		check(vlen == 0 || (!blank(opt->value[0]) && !blank(opt->value[vlen - 1])),
			  "values have no blanks around them");
		if (i > 0)
			appendStringInfoChar(&buf, ',');
		append_escaped(&buf, opt->name);
		appendStringInfoChar(&buf, '=');
		append_escaped(&buf, opt->value);
	}
	check(replkafka_options_parse(buf.data, &again, &detail),
		  "the properties written back parse");
	check(again.n == options.n, "as many properties");
	for (int i = 0; i < options.n; i++)
		check(strcmp(again.items[i].name, options.items[i].name) == 0 &&
			  strcmp(again.items[i].value, options.items[i].value) == 0,
			  "the same properties");

	detail = NULL;
	if (!replkafka_options_check(&options, &detail))
	{
		bool		known = false;

		/* one of the sentences about a property, which quote its name only */
		check(detail != NULL, "a refusal says why");
		for (int i = 0; i < options.n && !known; i++)
		{
			for (int t = 0; t < lengthof(refusals) && !known; t++)
			{
				char	   *expected = psprintf(refusals[t], options.items[i].name);

				known = strcmp(detail, expected) == 0;
				pfree(expected);
			}
		}
		check(known, "a refusal quotes a property's name, and no value");
	}
	else
	{
		for (int i = 0; i < options.n; i++)
		{
			const char *name = options.items[i].name;
			const char *base = strncmp(name, "topic.", 6) == 0 ? name + 6 : name;

			check(strcmp(base, "acks") != 0 && strcmp(base, "enable.idempotence") != 0 &&
				  strcmp(base, "auto.offset.reset") != 0 &&
				  strcmp(base, "plugin.library.paths") != 0 &&
				  strcmp(base, "sasl.kerberos.kinit.cmd") != 0,
				  "reserved and forbidden properties are refused");
			if (strcmp(base, "sasl.kerberos.principal") == 0 ||
				strcmp(base, "sasl.kerberos.keytab") == 0)
				check(strpbrk(options.items[i].value, " \t;|&$`'\"\\<>()*?!#~{}[]\n") == NULL &&
					  options.items[i].value[0] != '-',
					  "Kerberos values are shell-safe");
			for (int j = 0; j < i; j++)
				check(strcmp(options.items[j].name, name) != 0, "each property once");
		}
	}

	if (detail)
		pfree(detail);
	replkafka_options_free(&options);
	replkafka_options_free(&again);
	pfree(buf.data);
	pfree(str);
	return 0;
}
