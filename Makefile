# replkafka: partitioned replication between PostgreSQL nodes through Apache Kafka

MODULE_big = replkafka
OBJS = \
	$(WIN32RES) \
	src/apply.o \
	src/bootstrap.o \
	src/catalog.o \
	src/decoder.o \
	src/demotion.o \
	src/directory.o \
	src/ended.o \
	src/fence.o \
	src/functions.o \
	src/kafka.o \
	src/logscan.o \
	src/mastership.o \
	src/message.o \
	src/message_json.o \
	src/options.o \
	src/partition.o \
	src/partition_rows.o \
	src/peer.o \
	src/promotion.o \
	src/replkafka.o \
	src/roles.o \
	src/rules.o \
	src/settings.o \
	src/shipper.o \
	src/shmem.o \
	src/table.o \
	src/utility.o \
	src/worker.o

EXTENSION = replkafka
DATA = replkafka--0.1.sql
PGFILEDESC = "replkafka - partitioned replication through Apache Kafka"

PG_CPPFLAGS = -I$(srcdir)/src -I$(libpq_srcdir) $(shell pkg-config --cflags rdkafka)
PG_CFLAGS = -Wextra -Wno-unused-parameter -Wno-sign-compare \
	-Wno-missing-field-initializers $(if $(WERROR),-Werror)
SHLIB_LINK = $(shell pkg-config --libs rdkafka)
SHLIB_LINK_INTERNAL = $(libpq)

# The regression suites need a Kafka broker and several server
# configurations; test/regress/run starts the broker and runs them.
NO_INSTALLCHECK = 1
PROVE_FLAGS = -I $(srcdir)/test/perl
PROVE_TESTS = $(or $(TESTS),test/t/*.pl)

EXTRA_CLEAN = output_regress tmp_regress tmp_check

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Every object depends on every header of the project (PGXS does not track
# header dependencies unless PostgreSQL was configured with them).
$(OBJS): $(wildcard $(srcdir)/src/*.h)

# make installcheck: the pg_regress suites against a real broker, then the
# TAP tests (each starts its own broker and servers).
.PHONY: installcheck regresscheck tapcheck
installcheck: regresscheck tapcheck

regresscheck: submake
	PG_REGRESS='$(pg_regress_installcheck)' $(srcdir)/test/regress/run

tapcheck: submake
	$(prove_installcheck)

# make fuzzcheck: the fuzzers (clang 14, libFuzzer) of the wire format, the
# apply rules and kafka_options, for FUZZ_SECONDS seconds each.
.PHONY: fuzzcheck
FUZZ_SECONDS ?= 60
fuzzcheck:
	$(srcdir)/test/fuzz/run $(FUZZ_SECONDS)

# make soakcheck: a short soak (test/soak/run) against the installed
# extension: SOAK_FAULTS faults of the schedule of seed SOAK_SEED; then a
# sabotaged one of each kind, which passes only if its checker finds the
# sabotage.
.PHONY: soakcheck
SOAK_SEED ?= 1
SOAK_FAULTS ?= 12
soakcheck:
	REPLKAFKA_SOAK_INSTALLED=1 $(srcdir)/test/soak/run --seed $(SOAK_SEED) --faults $(SOAK_FAULTS)
	REPLKAFKA_SOAK_INSTALLED=1 $(srcdir)/test/soak/run --seed $(SOAK_SEED) --faults 2 --sabotage lost
	REPLKAFKA_SOAK_INSTALLED=1 $(srcdir)/test/soak/run --seed $(SOAK_SEED) --faults 2 --sabotage duplicate

# make modelcheck: check the model of the mastership protocol and the apply
# rules (model/replkafka.pml) exhaustively with SPIN: every configuration,
# and every bug switch, which must be found (model/run).
.PHONY: modelcheck
modelcheck:
	$(srcdir)/model/run

# make pgindent: lay out the C files as PostgreSQL's pgindent does
# (tools/pgindent: pg_bsd_indent with PostgreSQL's options and
# typedefs.list).  make pgindent-check: change nothing; print the diff and
# fail if a file would change.
.PHONY: pgindent pgindent-check
pgindent:
	$(srcdir)/tools/pgindent

pgindent-check:
	$(srcdir)/tools/pgindent --check
