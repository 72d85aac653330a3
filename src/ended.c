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
 * Record, durably, that this node ended generation of partition of the
 * cluster whose topic is topic.  Fails if the file cannot be written; the
 * caller has not written END_GEN yet.
 */
void
replkafka_ended_save(int partition, uint32 generation, const char *topic)
{
	char		path[MAXPGPATH];
	char		tmppath[MAXPGPATH];
	EndedFile	file;
	int			fd;

	memset(&file, 0, sizeof(file));
	file.magic = ENDED_MAGIC;
	file.partition = partition;
	file.generation = generation;
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
 * Read the generation of partition this node ended, of the cluster whose
 * topic is topic, into *generation (0 if none is recorded).  Returns false,
 * with a WARNING, if the file cannot be read or is corrupt: the caller must
 * then take the partition's current generation as ended, which is safe
 * (the node takes no more writes in it, and the shipper hands it over).
 */
bool
replkafka_ended_load(int partition, const char *topic, uint32 *generation)
{
	char		path[MAXPGPATH];
	EndedFile	file;
	pg_crc32c	crc;
	int			fd;
	int			nread;

	*generation = 0;
	ended_path(path, partition);
	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return true;
		ereport(WARNING,
				errcode_for_file_access(),
				errmsg("could not open file \"%s\": %m", path),
				errdetail("This node takes its current generation of partition %d for ended: it takes no more writes in it.",
						  partition));
		return false;
	}
	pgstat_report_wait_start(PG_WAIT_EXTENSION);
	nread = read(fd, &file, sizeof(file));
	pgstat_report_wait_end();
	if (nread < 0)
	{
		int			save_errno = errno;

		CloseTransientFile(fd);
		errno = save_errno;
		ereport(WARNING,
				errcode_for_file_access(),
				errmsg("could not read file \"%s\": %m", path),
				errdetail("This node takes its current generation of partition %d for ended: it takes no more writes in it.",
						  partition));
		return false;
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
	{
		ereport(WARNING,
				errcode(ERRCODE_DATA_CORRUPTED),
				errmsg("file \"%s\" is corrupt", path),
				nread != sizeof(file) ?
				errdetail("It has %d bytes instead of %zu.  This node takes its current generation of partition %d for ended: it takes no more writes in it.",
						  nread, sizeof(file), partition) :
				errdetail("Its checksum, or what it names, does not match.  This node takes its current generation of partition %d for ended: it takes no more writes in it.",
						  partition));
		return false;
	}
	if (strcmp(file.topic, topic) != 0)
	{
		ereport(LOG,
				errmsg("file \"%s\" belongs to the cluster of topic \"%s\", not \"%s\"; it is ignored",
					   path, file.topic, topic));
		return true;
	}
	*generation = file.generation;
	return true;
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
