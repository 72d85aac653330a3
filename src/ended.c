/*-------------------------------------------------------------------------
 *
 * ended.c
 *		The generations this node ended, kept across a crash.
 *
 * Once demote() may have written END_GEN to a partition, the generation
 * takes no more writes, whatever happens to the demotion: shared memory
 * says so (ended_generation) and the fence stays closed.  The record can
 * land in Kafka long after the write that sent it was given up, even
 * after the node crashed: a node that came back as primary with its fence
 * open would ship a transaction that lands before its own END_GEN, and no
 * replica can get past that (doc/design.md, "END_GEN").  So demote()
 * first records the generation here, in pg_replkafka/ended.<partition> in
 * the data directory, written and synced before the record is sent, the
 * way PostgreSQL keeps a replication slot's state.  The roles are loaded
 * with it at startup: the fence of a partition whose generation this node
 * ended stays closed, and the shipper finishes the handover.
 *
 * The files are not WAL-logged: they say what this node may have written
 * to Kafka, not what its tables hold.  Each names the cluster's topic, and
 * creating a cluster removes them all.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/ended.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file_perm.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"

#include "ended.h"

/* The directory, relative to the data directory (every backend's cwd). */
#define ENDED_DIR		"pg_replkafka"
#define ENDED_MAGIC		0x524B4531	/* "RKE1" */
#define ENDED_TOPIC_LEN 256		/* Kafka allows 249 characters */

/* The contents of pg_replkafka/ended.<partition>. */
typedef struct EndedFile
{
	uint32		magic;
	int32		partition;
	uint32		generation;
	uint32		seq;			/* our last transaction before END_GEN */
	int64		offset;			/* and its Kafka offset */
	char		topic[ENDED_TOPIC_LEN];
	pg_crc32c	crc;			/* of everything before it */
} EndedFile;

static void ended_path(char *path, int partition);

/*
 * The file of partition.
 */
static void
ended_path(char *path, int partition)
{
	snprintf(path, MAXPGPATH, ENDED_DIR "/ended.%d", partition);
}

/*
 * Record, durably, that this node ended a generation of partition of the
 * cluster whose topic is topic, after the transaction ended says.  Fails if
 * the file cannot be written; the caller has not written END_GEN yet.
 */
void
replkafka_ended_save(int partition, const ReplkafkaEnded *ended,
					 const char *topic)
{
	char		path[MAXPGPATH];
	char		tmppath[MAXPGPATH];
	EndedFile	file;
	int			fd;

	memset(&file, 0, sizeof(file));
	file.magic = ENDED_MAGIC;
	file.partition = partition;
	file.generation = ended->generation;
	file.seq = ended->seq;
	file.offset = ended->offset;
	strlcpy(file.topic, topic, sizeof(file.topic));
	INIT_CRC32C(file.crc);
	COMP_CRC32C(file.crc, &file, offsetof(EndedFile, crc));
	FIN_CRC32C(file.crc);

	/* the directory's entry too, whichever demotion created it */
	if (MakePGDirectory(ENDED_DIR) != 0 && errno != EEXIST)
		ereport(ERROR,
				errcode_for_file_access(),
				errmsg("could not create directory \"%s\": %m", ENDED_DIR));
	fsync_fname(".", true);

	ended_path(path, partition);
	snprintf(tmppath, sizeof(tmppath), "%s.tmp", path);
	fd = OpenTransientFile(tmppath, O_CREAT | O_TRUNC | O_WRONLY | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				errcode_for_file_access(),
				errmsg("could not create file \"%s\": %m", tmppath));
	errno = 0;
	pgstat_report_wait_start(PG_WAIT_EXTENSION);
	if (write(fd, &file, sizeof(file)) != sizeof(file))
	{
		int			save_errno = errno;

		pgstat_report_wait_end();
		CloseTransientFile(fd);
		errno = save_errno ? save_errno : ENOSPC;
		ereport(ERROR,
				errcode_for_file_access(),
				errmsg("could not write file \"%s\": %m", tmppath));
	}
	pgstat_report_wait_end();
	if (CloseTransientFile(fd) != 0)
		ereport(ERROR,
				errcode_for_file_access(),
				errmsg("could not close file \"%s\": %m", tmppath));

	/* syncs the file, renames it, syncs the directory */
	durable_rename(tmppath, path, ERROR);
}

/*
 * The generation of partition this node ended, of the cluster whose topic
 * is topic, into *ended (generation 0 if none is recorded).  A file that
 * cannot be read or is corrupt is an error: the partition's fence must not
 * open if the generation was ended, nor close for good if it was not.
 */
void
replkafka_ended_load(int partition, const char *topic, ReplkafkaEnded *ended)
{
	char		path[MAXPGPATH];
	EndedFile	file;
	pg_crc32c	crc;
	int			fd;
	int			nread;

	memset(ended, 0, sizeof(ReplkafkaEnded));
	ended_path(path, partition);
	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return;
		ereport(ERROR,
				errcode_for_file_access(),
				errmsg("could not open file \"%s\": %m", path));
	}
	pgstat_report_wait_start(PG_WAIT_EXTENSION);
	nread = read(fd, &file, sizeof(file));
	pgstat_report_wait_end();
	if (nread < 0)
	{
		int			save_errno = errno;

		CloseTransientFile(fd);
		errno = save_errno;
		ereport(ERROR,
				errcode_for_file_access(),
				errmsg("could not read file \"%s\": %m", path));
	}
	CloseTransientFile(fd);

	if (nread == sizeof(file))
	{
		INIT_CRC32C(crc);
		COMP_CRC32C(crc, &file, offsetof(EndedFile, crc));
		FIN_CRC32C(crc);
	}
	if (nread != sizeof(file) || file.magic != ENDED_MAGIC ||
		!EQ_CRC32C(crc, file.crc) || file.partition != partition)
		ereport(ERROR,
				errcode(ERRCODE_DATA_CORRUPTED),
				errmsg("file \"%s\" is corrupt", path),
				errdetail("It records the generation of partition %d that a demotion on this node ended, if any.",
						  partition),
				errhint("If this node is not the partition's primary, remove the file.  Otherwise remove it and run replkafka.demote() for the partition: it hands the partition over, or finds that another node took it over."));
	if (strcmp(file.topic, topic) != 0)
	{
		ereport(LOG,
				errmsg("file \"%s\" belongs to the cluster of topic \"%s\", not \"%s\"; it is ignored",
					   path, file.topic, topic));
		return;
	}
	ended->generation = file.generation;
	ended->seq = file.seq;
	ended->offset = file.offset;
}

/*
 * A cluster is being created: the generations an earlier one ended mean
 * nothing to it.
 */
void
replkafka_ended_forget_all(void)
{
	DIR		   *dir;
	struct dirent *de;
	bool		removed = false;

	dir = AllocateDir(ENDED_DIR);
	if (dir == NULL && errno == ENOENT)
		return;
	while ((de = ReadDir(dir, ENDED_DIR)) != NULL)
	{
		char		path[MAXPGPATH];

		if (strncmp(de->d_name, "ended.", 6) != 0)
			continue;
		snprintf(path, sizeof(path), ENDED_DIR "/%s", de->d_name);
		if (unlink(path) != 0 && errno != ENOENT)
			ereport(ERROR,
					errcode_for_file_access(),
					errmsg("could not remove file \"%s\": %m", path));
		removed = true;
	}
	FreeDir(dir);
	if (removed)
		fsync_fname(ENDED_DIR, true);
}
