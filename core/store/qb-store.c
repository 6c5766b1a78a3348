/* SPDX-License-Identifier: MIT */
/* qb-store.c — opening the experiment store: the connection and its settings.
 *
 * The store's files, each on one job (each uses only those before it):
 *   qb-store-sql.c      statements, transactions, errors
 *   qb-store-owner.c    which process runs an experiment, and whether it lives
 *   qb-store-query.c    reads
 *   qb-store-write.c    writes: models, calibration sets, runs, tensors, evaluations
 *   qb-store-recover.c  marking the runs of dead processes interrupted
 *   qb-store-edit.c     renames, notes, tags, deletes
 *   qb-store.c          opening (here): schema, settings, recovery
 *   qb-store-export.c, qb-store-import.c   JSON and CSV out, JSON in
 *
 * Connection settings, each for a reason:
 *   journal_mode=WAL   readers see the last commit and never wait for a
 *                      writer; a writer never waits for readers.
 *   synchronous=NORMAL in WAL mode a commit is still atomic and the file
 *                      never corrupt; only a power cut (not a crash of the
 *                      program: the OS keeps the written pages) can lose
 *                      the last commits.  FULL would fsync once per tensor
 *                      — hundreds per run — for that, and an experiment
 *                      cut short by a power cut is marked interrupted
 *                      anyway.  The WAL is synced at every checkpoint.
 *   foreign_keys=ON    deletes cascade to tensors, histograms, tags and
 *                      evaluations.
 *   busy_timeout       a second writer (the UI and a command line on the
 *                      same file) waits its turn instead of failing.
 *   temp_store=MEMORY, cache_size 16 MiB
 *                      sorting 10,000 listed experiments stays in memory
 *                      instead of spilling to a temporary file.
 * Write transactions start with BEGIN IMMEDIATE so that two writers queue
 * at the start instead of failing when a reader upgrades to a writer.
 */
#include "qb-store-private.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 10000

G_DEFINE_QUARK (qb-store-error-quark, qb_store_error)

char *
qb_store_default_path (void)
{
  return g_build_filename (g_get_user_data_dir (), "quantbench", "experiments.db", NULL);
}

/* -- opening ------------------------------------------------------------------ */

static void
finalize_stmt (gpointer stmt)
{
  sqlite3_finalize (stmt);
}

/* A store with no connection yet, one reference. */
static QbStore *
store_new (const char *path)
{
  QbStore *store = g_new0 (QbStore, 1);

  store->ref_count = 1;
  g_rec_mutex_init (&store->lock);
  store->path = g_strdup (path);
  store->stmts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, finalize_stmt);
  for (guint i = 0; i < G_N_ELEMENTS (store->blob); i++)
    store->blob[i] = g_byte_array_new ();
  return store;
}

static QbStore *
connect (const char *path, GError **error)
{
  QbStore *store = store_new (path);
  static const char * const settings[] = {
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA cache_size = -16384",
  };

  /* Calls on a QbStore are serialized by its lock, so SQLite's own
   * per-connection mutex is not needed. */
  if (sqlite3_open_v2 (path, &store->db,
                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                       NULL) != SQLITE_OK)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_FAILED, "%s: cannot open: %s", path,
                   store->db ? sqlite3_errmsg (store->db) : "out of memory");
      qb_store_unref (store);
      return NULL;
    }
  sqlite3_extended_result_codes (store->db, FALSE);
  sqlite3_busy_timeout (store->db, BUSY_TIMEOUT_MS);
  /* The settings run outside the statement cache: PRAGMA journal_mode
   * returns a row, and they run once. */
  for (guint i = 0; i < G_N_ELEMENTS (settings); i++)
    if (sqlite3_exec (store->db, settings[i], NULL, NULL, NULL) != SQLITE_OK)
      {
        qb_store_fail (store, error, settings[i]);
        qb_store_unref (store);
        return NULL;
      }
  return store;
}

QbStore *
qb_store_open (const char *path, GError **error)
{
  g_autofree char *default_path = NULL;
  g_autofree char *dir = NULL;
  g_autoptr(QbStore) store = NULL;
  int version = 0;

  if (path == NULL)
    path = default_path = qb_store_default_path ();
  dir = g_path_get_dirname (path);
  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_FAILED,
                   "%s: cannot create the folder: %s", dir, g_strerror (errno));
      return NULL;
    }
  /* Everything that could refuse the file is asked before it is opened
   * for writing. */
  if (!qb_store_schema_check (path, &version, error))
    return NULL;
  /* SQLite would only say "unable to open database file". */
  if (access (dir, W_OK | X_OK) != 0)
    {
      int saved = errno;
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_FAILED,
                   "%s: cannot write in the folder %s (%s); the database is fine, but saving "
                   "needs a writable folder", path, dir, g_strerror (saved));
      return NULL;
    }
  if ((store = connect (path, error)) == NULL)
    return NULL;
  if (!qb_store_schema_migrate (store->db, path, QB_STORE_SCHEMA_VERSION, error))
    return NULL;
  if (!qb_store_recover_interrupted (store, NULL, error))
    return NULL;
  return g_steal_pointer (&store);
}

QbStore *
qb_store_open_readonly (const char *path, GError **error)
{
  g_autofree char *default_path = NULL;
  g_autoptr(QbStore) store = NULL;
  int version = 0;

  if (path == NULL)
    path = default_path = qb_store_default_path ();
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_NOT_FOUND,
                   "%s: no experiment database there (none was created)", path);
      return NULL;
    }
  if (!qb_store_schema_check (path, &version, error))
    return NULL;
  if (version < QB_STORE_SCHEMA_VERSION)
    return qb_store_open (path, error);
  store = store_new (path);
  if (qb_store_schema_open_readonly (path, &store->db) != SQLITE_OK)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_FAILED, "%s: cannot open: %s", path,
                   store->db ? sqlite3_errmsg (store->db) : "out of memory");
      return NULL;
    }
  sqlite3_extended_result_codes (store->db, FALSE);
  return g_steal_pointer (&store);
}

QbStore *
qb_store_open_connection (QbStore *store, GError **error)
{
  return connect (store->path, error);
}

QbStore *
qb_store_ref (QbStore *store)
{
  g_atomic_int_inc (&store->ref_count);
  return store;
}

void
qb_store_unref (QbStore *store)
{
  if (store == NULL || !g_atomic_int_dec_and_test (&store->ref_count))
    return;
  g_clear_pointer (&store->stmts, g_hash_table_unref);   /* finalizes the statements */
  if (store->db != NULL)
    sqlite3_close (store->db);
  for (guint i = 0; i < G_N_ELEMENTS (store->blob); i++)
    g_byte_array_unref (store->blob[i]);
  g_rec_mutex_clear (&store->lock);
  g_free (store->path);
  g_free (store);
}

const char *
qb_store_get_path (QbStore *store)
{
  return store->path;
}

