/* SPDX-License-Identifier: MIT */
/* qb-store.c — opening the experiment store, and writing to it.
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
#include "qb-json.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 10000

G_DEFINE_QUARK (qb-store-error-quark, qb_store_error)

char *
qb_store_default_path (void)
{
  return g_build_filename (g_get_user_data_dir (), "quantbench", "experiments.db", NULL);
}

/* -- statements and errors ------------------------------------------------ */

gboolean
qb_store_fail (QbStore *store, GError **error, const char *doing)
{
  int code = sqlite3_errcode (store->db);
  QbStoreError kind = QB_STORE_ERROR_FAILED;

  if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB)
    kind = QB_STORE_ERROR_CORRUPT;
  g_set_error (error, QB_STORE_ERROR, kind, "%s: %s: %s",
               store->path, doing, sqlite3_errmsg (store->db));
  return FALSE;
}

/* Statements are prepared once per connection and kept, keyed by their
 * text; g_autoptr(QbStmt) resets one after each use. */
QbStmt *
qb_store_stmt (QbStore *store, const char *sql, GError **error)
{
  sqlite3_stmt *stmt = g_hash_table_lookup (store->stmts, sql);

  if (stmt != NULL)
    return stmt;
  if (sqlite3_prepare_v3 (store->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) != SQLITE_OK)
    {
      qb_store_fail (store, error, "preparing a query");
      return NULL;
    }
  g_hash_table_insert (store->stmts, g_strdup (sql), stmt);
  return stmt;
}

/* Steps a statement that returns no rows. */
gboolean
qb_store_exec_step (QbStore *store, QbStmt *stmt, GError **error, const char *doing)
{
  int rc = sqlite3_step (stmt);

  if (rc == SQLITE_DONE || rc == SQLITE_ROW)
    return TRUE;
  return qb_store_fail (store, error, doing);
}

static gboolean
exec_sql (QbStore *store, const char *sql, GError **error)
{
  g_autoptr(QbStmt) stmt = qb_store_stmt (store, sql, error);

  return stmt != NULL && qb_store_exec_step (store, stmt, error, sql);
}

gboolean
qb_store_begin (QbStore *store, GError **error)
{
  return exec_sql (store, "BEGIN IMMEDIATE", error);
}

gboolean
qb_store_commit (QbStore *store, GError **error)
{
  if (exec_sql (store, "COMMIT", error))
    return TRUE;
  qb_store_rollback (store);
  return FALSE;
}

void
qb_store_rollback (QbStore *store)
{
  if (!sqlite3_get_autocommit (store->db))
    exec_sql (store, "ROLLBACK", NULL);
}

/* A read transaction: several queries see one snapshot. */
gboolean
qb_store_begin_read (QbStore *store, GError **error)
{
  return exec_sql (store, "BEGIN", error);
}

void
qb_store_end_read (QbStore *store)
{
  if (!sqlite3_get_autocommit (store->db))
    exec_sql (store, "COMMIT", NULL);
}

void
qb_bind_text (QbStmt *stmt, int index, const char *text)
{
  if (text != NULL)
    sqlite3_bind_text (stmt, index, text, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null (stmt, index);
}

/* SQLite stores NAN as NULL; it comes back as NAN. */
double
qb_column_double (QbStmt *stmt, int index)
{
  if (sqlite3_column_type (stmt, index) == SQLITE_NULL)
    return NAN;
  return sqlite3_column_double (stmt, index);
}

char *
qb_column_strdup (QbStmt *stmt, int index)
{
  return g_strdup ((const char *) sqlite3_column_text (stmt, index));
}

static gboolean
not_found (QbStore *store, GError **error, const char *what, gint64 id)
{
  g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_NOT_FOUND,
               "%s: no %s with id %" G_GINT64_FORMAT, store->path, what, id);
  return FALSE;
}

/* -- opening ------------------------------------------------------------------ */

static void
finalize_stmt (gpointer stmt)
{
  sqlite3_finalize (stmt);
}

static QbStore *
connect (const char *path, GError **error)
{
  QbStore *store = g_new0 (QbStore, 1);
  static const char * const settings[] = {
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA cache_size = -16384",
  };

  g_rec_mutex_init (&store->lock);
  store->path = g_strdup (path);
  store->stmts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, finalize_stmt);
  for (guint i = 0; i < G_N_ELEMENTS (store->blob); i++)
    store->blob[i] = g_byte_array_new ();
  /* Calls on a QbStore are serialized by its lock, so SQLite's own
   * per-connection mutex is not needed. */
  if (sqlite3_open_v2 (path, &store->db,
                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                       NULL) != SQLITE_OK)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_FAILED, "%s: cannot open: %s", path,
                   store->db ? sqlite3_errmsg (store->db) : "out of memory");
      qb_store_close (store);
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
        qb_store_close (store);
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
  if ((store = connect (path, error)) == NULL)
    return NULL;
  if (!qb_store_schema_migrate (store->db, path, QB_STORE_SCHEMA_VERSION, error))
    return NULL;
  if (!qb_store_recover_interrupted (store, NULL, error))
    return NULL;
  return g_steal_pointer (&store);
}

QbStore *
qb_store_open_connection (QbStore *store, GError **error)
{
  return connect (store->path, error);
}

void
qb_store_close (QbStore *store)
{
  if (store == NULL)
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

/* -- who runs an experiment ---------------------------------------------------- */

/* A process is known by pid, host, boot and its start time (in clock
 * ticks since boot, /proc/PID/stat field 22), so that a recycled pid is
 * not taken for the process that died. */
typedef struct {
  gint    pid;
  char   *host;
  char   *boot;
  gint64  start;    /* -1: unknown */
} Owner;

static void
owner_clear (Owner *o)
{
  g_free (o->host);
  g_free (o->boot);
}

/* Start time of a process, -1 when unknown; *zombie when it has exited
 * and waits to be reaped. */
static gint64
process_start (gint pid, gboolean *zombie)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", pid);
  g_autofree char *text = NULL;
  g_auto(GStrv) fields = NULL;
  const char *after;

  *zombie = FALSE;
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return -1;
  /* The command name in parentheses may hold spaces: fields resume after
   * the last ')'.  The state is field 3, the start time field 22. */
  if ((after = strrchr (text, ')')) == NULL)
    return -1;
  fields = g_strsplit (g_strstrip ((char *) after + 1), " ", 0);
  if (g_strv_length (fields) < 20)
    return -1;
  *zombie = fields[0][0] == 'Z';
  return g_ascii_strtoll (fields[19], NULL, 10);
}

static char *
boot_id (void)
{
  char *text = NULL;

  if (!g_file_get_contents ("/proc/sys/kernel/random/boot_id", &text, NULL, NULL))
    return g_strdup ("");
  return g_strstrip (text);
}

static void
owner_self (Owner *o)
{
  gboolean zombie;

  o->pid = getpid ();
  o->host = g_strdup (g_get_host_name ());
  o->boot = boot_id ();
  o->start = process_start (o->pid, &zombie);
}

/* Only a process on this host can be checked; one elsewhere is taken to
 * be alive. */
static gboolean
owner_alive (const Owner *o, const Owner *self)
{
  gboolean zombie = FALSE;
  gint64 start;

  if (g_strcmp0 (o->host, self->host) != 0)
    return TRUE;
  if (o->boot && *o->boot && *self->boot && strcmp (o->boot, self->boot) != 0)
    return FALSE;               /* the machine rebooted since */
  if (o->pid <= 0 || (kill (o->pid, 0) != 0 && errno == ESRCH))
    return FALSE;
  start = process_start (o->pid, &zombie);
  if (zombie)
    return FALSE;
  if (o->start >= 0 && start >= 0 && start != o->start)
    return FALSE;               /* the pid now belongs to another process */
  return TRUE;
}

/* -- models and calibration sets ---------------------------------------------- */

static char *normalize_json_object (const char *json, const char *what, GError **error);

static gboolean
model_is_valid (const QbModelRecord *m, GError **error)
{
  if (m == NULL || m->fingerprint == NULL || *m->fingerprint == '\0')
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID,
                   "a model record needs a fingerprint");
      return FALSE;
    }
  return TRUE;
}

/* Matches by fingerprint; a run updates where the file is now, an import
 * keeps the local record as it is. */
gint64
qb_store_add_model_locked (QbStore *store, const QbModelRecord *m, gboolean update_location,
                           GError **error)
{
  g_autoptr(QbStmt) find = NULL;
  g_autoptr(QbStmt) stmt = NULL;
  g_autofree char *arch = NULL;
  gint64 now = g_get_real_time (), id = 0;

  if (!model_is_valid (m, error) ||
      (arch = normalize_json_object (m->arch_json, "the model's architecture", error)) == NULL)
    return 0;
  if ((find = qb_store_stmt (store, "SELECT id FROM model WHERE fingerprint = ?1", error)) == NULL)
    return 0;
  qb_bind_text (find, 1, m->fingerprint);
  switch (sqlite3_step (find))
    {
    case SQLITE_ROW:
      id = sqlite3_column_int64 (find, 0);
      break;
    case SQLITE_DONE:
      break;
    default:
      qb_store_fail (store, error, "looking up a model");
      return 0;
    }
  if (id != 0 && !update_location)
    return id;
  if (id != 0)
    {
      stmt = qb_store_stmt (store, "UPDATE model SET path = ?2, file_size = ?3, last_seen = ?4 "
                                   "WHERE id = ?1", error);
      if (stmt == NULL)
        return 0;
      sqlite3_bind_int64 (stmt, 1, id);
      qb_bind_text (stmt, 2, m->path ? m->path : "");
      sqlite3_bind_int64 (stmt, 3, m->file_size);
      sqlite3_bind_int64 (stmt, 4, now);
      return qb_store_exec_step (store, stmt, error, "updating a model") ? id : 0;
    }
  stmt = qb_store_stmt (store,
                        "INSERT INTO model (fingerprint, path, file_size, name, family, n_params, "
                        "n_tensors, arch_json, first_seen, last_seen) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)", error);
  if (stmt == NULL)
    return 0;
  qb_bind_text (stmt, 1, m->fingerprint);
  qb_bind_text (stmt, 2, m->path ? m->path : "");
  sqlite3_bind_int64 (stmt, 3, m->file_size);
  qb_bind_text (stmt, 4, m->name);
  qb_bind_text (stmt, 5, m->family);
  sqlite3_bind_int64 (stmt, 6, m->n_params);
  sqlite3_bind_int64 (stmt, 7, m->n_tensors);
  qb_bind_text (stmt, 8, arch);
  sqlite3_bind_int64 (stmt, 9, m->first_seen ? m->first_seen : now);
  sqlite3_bind_int64 (stmt, 10, now);
  if (!qb_store_exec_step (store, stmt, error, "storing a model"))
    return 0;
  return sqlite3_last_insert_rowid (store->db);
}

gboolean
qb_store_add_model (QbStore *store, const QbModelRecord *model, gint64 *id, GError **error)
{
  QB_STORE_LOCK (store);
  gint64 model_id;

  if (!qb_store_begin (store, error))
    return FALSE;
  if ((model_id = qb_store_add_model_locked (store, model, TRUE, error)) == 0)
    {
      qb_store_rollback (store);
      return FALSE;
    }
  if (!qb_store_commit (store, error))
    return FALSE;
  if (id != NULL)
    *id = model_id;
  return TRUE;
}

static char *
strv_to_json (char **strv)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_array (b);
  for (guint i = 0; strv && strv[i]; i++)
    json_builder_add_string_value (b, strv[i]);
  json_builder_end_array (b);
  root = json_builder_get_root (b);
  return qb_json_to_string (root);
}

static char **
strv_from_json (const char *json)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  GPtrArray *strv = g_ptr_array_new ();
  JsonNode *root;

  if (json != NULL && json_parser_load_from_data (parser, json, -1, NULL) &&
      (root = json_parser_get_root (parser)) != NULL && JSON_NODE_HOLDS_ARRAY (root))
    {
      JsonArray *array = json_node_get_array (root);
      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          const char *s = json_array_get_string_element (array, i);
          if (s != NULL)
            g_ptr_array_add (strv, g_strdup (s));
        }
    }
  g_ptr_array_add (strv, NULL);
  return (char **) g_ptr_array_free (strv, FALSE);
}

/* Inside a transaction: the set's id, stored now or found by its hash. */
gint64
qb_store_add_calibration_set_locked (QbStore *store, const QbCalibrationSet *set, GError **error)
{
  g_autoptr(QbStmt) stmt = NULL;
  g_autofree char *sources = NULL;

  if (set->hash == NULL || *set->hash == '\0' || set->name == NULL)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID,
                   "a calibration set needs a name and a hash");
      return 0;
    }
  /* The no-op update makes RETURNING give the id of an existing set. */
  stmt = qb_store_stmt (store,
                        "INSERT INTO calibration_set (hash, name, sources_json, n_tokens, "
                        "chunk_len, n_chunks, seeded, seed, created, skip_chunks) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
                        "ON CONFLICT (hash) DO UPDATE SET hash = excluded.hash RETURNING id",
                        error);
  if (stmt == NULL)
    return 0;
  sources = strv_to_json (set->sources);
  qb_bind_text (stmt, 1, set->hash);
  qb_bind_text (stmt, 2, set->name);
  qb_bind_text (stmt, 3, sources);
  sqlite3_bind_int64 (stmt, 4, set->n_tokens);
  sqlite3_bind_int64 (stmt, 5, set->chunk_len);
  sqlite3_bind_int64 (stmt, 6, set->n_chunks);
  sqlite3_bind_int (stmt, 7, set->seeded != FALSE);
  sqlite3_bind_int64 (stmt, 8, (gint64) set->seed);
  sqlite3_bind_int64 (stmt, 9, set->created ? set->created : g_get_real_time ());
  sqlite3_bind_int64 (stmt, 10, set->skip_chunks);
  if (sqlite3_step (stmt) != SQLITE_ROW)
    {
      qb_store_fail (store, error, "storing a calibration set");
      return 0;
    }
  return sqlite3_column_int64 (stmt, 0);
}

gboolean
qb_store_add_calibration_set (QbStore *store, const QbCalibrationSet *set, gint64 *id,
                              GError **error)
{
  QB_STORE_LOCK (store);
  gint64 set_id = qb_store_add_calibration_set_locked (store, set, error);

  if (set_id == 0)
    return FALSE;
  if (id != NULL)
    *id = set_id;
  return TRUE;
}

#define CALIBRATION_COLUMNS \
  "id, hash, name, sources_json, n_tokens, chunk_len, n_chunks, seeded, seed, created, skip_chunks"

static QbCalibrationSet *
read_calibration_set (QbStmt *stmt)
{
  QbCalibrationSet *c = g_new0 (QbCalibrationSet, 1);

  c->id = sqlite3_column_int64 (stmt, 0);
  c->hash = qb_column_strdup (stmt, 1);
  c->name = qb_column_strdup (stmt, 2);
  c->sources = strv_from_json ((const char *) sqlite3_column_text (stmt, 3));
  c->n_tokens = sqlite3_column_int64 (stmt, 4);
  c->chunk_len = sqlite3_column_int64 (stmt, 5);
  c->n_chunks = sqlite3_column_int64 (stmt, 6);
  c->seeded = sqlite3_column_int (stmt, 7) != 0;
  c->seed = (guint64) sqlite3_column_int64 (stmt, 8);
  c->created = sqlite3_column_int64 (stmt, 9);
  c->skip_chunks = sqlite3_column_int64 (stmt, 10);
  return c;
}

QbCalibrationSet *
qb_store_get_calibration_set (QbStore *store, gint64 id, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(QbStmt) stmt = qb_store_stmt (store, "SELECT " CALIBRATION_COLUMNS
                                          " FROM calibration_set WHERE id = ?1", error);

  if (stmt == NULL)
    return NULL;
  sqlite3_bind_int64 (stmt, 1, id);
  switch (sqlite3_step (stmt))
    {
    case SQLITE_ROW:
      return read_calibration_set (stmt);
    case SQLITE_DONE:
      not_found (store, error, "calibration set", id);
      return NULL;
    default:
      qb_store_fail (store, error, "reading a calibration set");
      return NULL;
    }
}

GPtrArray *
qb_store_list_calibration_sets (QbStore *store, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(QbStmt) stmt = qb_store_stmt (store, "SELECT " CALIBRATION_COLUMNS
                                          " FROM calibration_set ORDER BY created DESC, id DESC",
                                          error);
  g_autoptr(GPtrArray) sets = g_ptr_array_new_with_free_func ((GDestroyNotify) qb_calibration_set_free);
  int rc;

  if (stmt == NULL)
    return NULL;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_ptr_array_add (sets, read_calibration_set (stmt));
  if (rc != SQLITE_DONE)
    {
      qb_store_fail (store, error, "listing calibration sets");
      return NULL;
    }
  return g_steal_pointer (&sets);
}

/* Runs a one-row UPDATE of an experiment; NOT_FOUND when no row matched. */
static gboolean
update_experiment (QbStore *store, QbStmt *stmt, gint64 id, GError **error, const char *doing)
{
  if (!qb_store_exec_step (store, stmt, error, doing))
    return FALSE;
  if (sqlite3_changes (store->db) == 0)
    return not_found (store, error, "experiment", id);
  return TRUE;
}

gboolean
qb_store_set_calibration_set (QbStore *store, gint64 experiment_id, gint64 calibration_set_id,
                              GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(QbStmt) stmt = qb_store_stmt (store, "UPDATE experiment SET calibration_set_id = ?2 "
                                          "WHERE id = ?1", error);

  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, experiment_id);
  if (calibration_set_id != 0)
    sqlite3_bind_int64 (stmt, 2, calibration_set_id);
  return update_experiment (store, stmt, experiment_id, error, "linking a calibration set");
}

/* -- writing a run ------------------------------------------------------------------ */

/* The plan is kept as qb_json_to_string writes it, so that an export and
 * import give the same text back. */
static char *
normalize_json_object (const char *json, const char *what, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) local = NULL;
  JsonNode *root;

  if (json == NULL)
    json = "{}";
  if (!json_parser_load_from_data (parser, json, -1, &local))
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID,
                   "%s is not valid JSON: %s", what, local->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID,
                   "%s is not a JSON object", what);
      return NULL;
    }
  return qb_json_to_string (root);
}

static char *
default_name (void)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();

  return g_date_time_format (now, "Run %Y-%m-%d %H:%M");
}

gboolean
qb_tag_is_valid (const char *tag)
{
  if (tag == NULL || *tag == '\0' || !g_utf8_validate (tag, -1, NULL))
    return FALSE;
  for (const char *p = tag; *p; p++)
    if ((guchar) *p < 0x20 || *p == 0x7f)
      return FALSE;
  return TRUE;
}

gint64
qb_store_find_tag_locked (QbStore *store, const char *name, gboolean create, GError **error)
{
  g_autoptr(QbStmt) stmt = NULL;
  const char *sql = create
    ? "INSERT INTO tag (name) VALUES (?1) ON CONFLICT (name) DO UPDATE SET name = name RETURNING id"
    : "SELECT id FROM tag WHERE name = ?1";

  if ((stmt = qb_store_stmt (store, sql, error)) == NULL)
    return -1;
  qb_bind_text (stmt, 1, name);
  switch (sqlite3_step (stmt))
    {
    case SQLITE_ROW:
      return sqlite3_column_int64 (stmt, 0);
    case SQLITE_DONE:
      return 0;
    default:
      qb_store_fail (store, error, "looking up a tag");
      return -1;
    }
}

static gboolean
check_tags (const char * const *tags, GError **error)
{
  for (guint i = 0; tags && tags[i]; i++)
    {
      g_autofree char *tag = g_strstrip (g_strdup (tags[i]));
      if (!qb_tag_is_valid (tag))
        {
          g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID,
                       "'%s' is not a valid tag (empty, or with control characters)", tags[i]);
          return FALSE;
        }
    }
  return TRUE;
}

/* Inside a transaction; the tags have passed check_tags. */
gboolean
qb_store_tag_locked (QbStore *store, gint64 id, const char * const *tags, GError **error)
{
  for (guint i = 0; tags && tags[i]; i++)
    {
      g_autofree char *tag = g_strstrip (g_strdup (tags[i]));
      g_autoptr(QbStmt) link = NULL;
      gint64 tag_id = qb_store_find_tag_locked (store, tag, TRUE, error);

      if (tag_id <= 0)
        return FALSE;
      link = qb_store_stmt (store, "INSERT OR IGNORE INTO experiment_tag (experiment_id, tag_id) "
                                   "VALUES (?1, ?2)", error);
      if (link == NULL)
        return FALSE;
      sqlite3_bind_int64 (link, 1, id);
      sqlite3_bind_int64 (link, 2, tag_id);
      if (!qb_store_exec_step (store, link, error, "tagging an experiment"))
        return FALSE;
    }
  return TRUE;
}

static gint64
insert_experiment (QbStore *store, gint64 model_id, const QbExperimentSpec *spec,
                   const char *plan, GError **error)
{
  g_autoptr(QbStmt) stmt = NULL;
  g_autofree char *uuid = g_uuid_string_random ();
  g_autofree char *name = spec->name && *spec->name ? g_strdup (spec->name) : default_name ();
  gint64 now = g_get_real_time ();
  Owner self = { 0 };

  stmt = qb_store_stmt (store,
                        "INSERT INTO experiment (uuid, model_id, name, created, updated, status, "
                        "plan_json, threads, backend, n_tensors, notes, calibration_set_id, "
                        "owner_pid, owner_host, owner_boot, owner_start) "
                        "VALUES (?1, ?2, ?3, ?4, ?4, 'running', ?5, ?6, ?7, ?8, ?9, ?10, "
                        "?11, ?12, ?13, ?14)", error);
  if (stmt == NULL)
    return 0;
  owner_self (&self);
  qb_bind_text (stmt, 1, uuid);
  sqlite3_bind_int64 (stmt, 2, model_id);
  qb_bind_text (stmt, 3, name);
  sqlite3_bind_int64 (stmt, 4, now);
  qb_bind_text (stmt, 5, plan);
  sqlite3_bind_int64 (stmt, 6, spec->threads);
  qb_bind_text (stmt, 7, spec->backend ? spec->backend : "cpu");
  sqlite3_bind_int64 (stmt, 8, spec->n_tensors);
  qb_bind_text (stmt, 9, spec->notes ? spec->notes : "");
  if (spec->calibration_set_id != 0)
    sqlite3_bind_int64 (stmt, 10, spec->calibration_set_id);
  sqlite3_bind_int64 (stmt, 11, self.pid);
  qb_bind_text (stmt, 12, self.host);
  qb_bind_text (stmt, 13, self.boot);
  if (self.start >= 0)
    sqlite3_bind_int64 (stmt, 14, self.start);
  owner_clear (&self);
  if (!qb_store_exec_step (store, stmt, error, "starting an experiment"))
    return 0;
  return sqlite3_last_insert_rowid (store->db);
}

gint64
qb_store_begin_experiment (QbStore *store, const QbModelRecord *model,
                           const QbExperimentSpec *spec, GError **error)
{
  QB_STORE_LOCK (store);
  g_autofree char *plan = NULL;
  gint64 model_id, id;

  if (!model_is_valid (model, error) || !check_tags (spec->tags, error))
    return 0;
  if ((plan = normalize_json_object (spec->plan_json, "the plan", error)) == NULL)
    return 0;
  if (!qb_store_begin (store, error))
    return 0;
  if ((model_id = qb_store_add_model_locked (store, model, TRUE, error)) == 0 ||
      (id = insert_experiment (store, model_id, spec, plan, error)) == 0 ||
      !qb_store_tag_locked (store, id, spec->tags, error) ||
      !qb_store_commit (store, error))
    {
      qb_store_rollback (store);
      return 0;
    }
  return id;
}

static void
bind_blob (QbStmt *stmt, int index, GByteArray *buf)
{
  if (buf->len > 0)
    sqlite3_bind_blob (stmt, index, buf->data, buf->len, SQLITE_STATIC);
  else
    sqlite3_bind_null (stmt, index);
}

static gboolean
result_is_valid (QbStore *store, const QbTensorResult *r, GError **error)
{
  const QbHistogram *hists[3] = { r->hist_original, r->hist_quantized, r->hist_error };

  if (r->tensor_name == NULL || *r->tensor_name == '\0')
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID, "a tensor result needs a name");
      return FALSE;
    }
  for (guint i = 0; i < 3; i++)
    if (hists[i] != NULL && (hists[i]->n_bins == 0 || hists[i]->n_bins > QB_STORE_MAX_BINS ||
                             hists[i]->counts == NULL))
      {
        g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID,
                     "tensor %s: a histogram of %u bins cannot be stored (1 to %u)",
                     r->tensor_name, hists[i]->n_bins, QB_STORE_MAX_BINS);
        return FALSE;
      }
  if (r->n_channels > QB_STORE_MAX_CHANNELS ||
      (r->n_channels > 0 && (r->channel_min == NULL || r->channel_max == NULL)))
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID,
                   "tensor %s: %u channel ranges cannot be stored", r->tensor_name, r->n_channels);
      return FALSE;
    }
  return TRUE;
}

static gboolean
write_tensor_data (QbStore *store, gint64 tensor_id, const QbTensorResult *r, GError **error)
{
  g_autoptr(QbStmt) stmt = NULL;
  const QbHistogram *hists[3] = { r->hist_original, r->hist_quantized, r->hist_error };

  if (hists[0] == NULL && hists[1] == NULL && hists[2] == NULL && r->n_channels == 0)
    return TRUE;
  stmt = qb_store_stmt (store, "INSERT INTO tensor_data (tensor_id, hist_original, hist_quantized, "
                               "hist_error, channels) VALUES (?1, ?2, ?3, ?4, ?5)", error);
  if (stmt == NULL)
    return FALSE;
  for (guint i = 0; i < 4; i++)
    g_byte_array_set_size (store->blob[i], 0);
  for (guint i = 0; i < 3; i++)
    if (hists[i] != NULL)
      qb_histogram_encode (hists[i], store->blob[i]);
  if (r->n_channels > 0)
    qb_channel_ranges_encode (r->n_channels, r->channel_min, r->channel_max, store->blob[3]);
  sqlite3_bind_int64 (stmt, 1, tensor_id);
  for (guint i = 0; i < 4; i++)
    bind_blob (stmt, i + 2, store->blob[i]);
  return qb_store_exec_step (store, stmt, error, "storing histograms");
}

/* Inside a transaction: the tensor's row and its data, replacing any
 * earlier row of the same name. */
gboolean
qb_store_write_tensor_locked (QbStore *store, gint64 experiment_id, const QbStoredTensor *t,
                              GError **error)
{
  const QbTensorResult *r = t->result;
  const QbTensorMetrics *m = &r->metrics;
  const double values[] = {
    r->bpw, r->seconds, m->mse, m->rmse_rel, m->sqnr_db, m->cosine, m->max_abs_err, m->wmse,
    m->out_rel_err, m->mean, m->std, m->min, m->max, m->kurtosis, m->outlier_share,
  };
  g_autoptr(QbStmt) remove = NULL;
  g_autoptr(QbStmt) stmt = NULL;

  if (!result_is_valid (store, r, error))
    return FALSE;
  remove = qb_store_stmt (store, "DELETE FROM tensor_result WHERE experiment_id = ?1 AND name = ?2",
                          error);
  if (remove == NULL)
    return FALSE;
  sqlite3_bind_int64 (remove, 1, experiment_id);
  qb_bind_text (remove, 2, r->tensor_name);
  if (!qb_store_exec_step (store, remove, error, "replacing a tensor result"))
    return FALSE;
  stmt = qb_store_stmt (store,
                        "INSERT INTO tensor_result (experiment_id, position, name, format, "
                        "requested_format, fallback_reason, method, n_params, original_bytes, "
                        "bytes, bpw, seconds, mse, rmse_rel, sqnr_db, cosine, max_abs_err, wmse, "
                        "out_rel_err, w_mean, w_std, w_min, w_max, kurtosis, outlier_share, "
                        "n_nonfinite) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
                        "?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, experiment_id);
  sqlite3_bind_int64 (stmt, 2, t->position);
  qb_bind_text (stmt, 3, r->tensor_name);
  qb_bind_text (stmt, 4, r->format);
  qb_bind_text (stmt, 5, r->requested_format);
  qb_bind_text (stmt, 6, r->fallback_reason);
  qb_bind_text (stmt, 7, r->method);
  sqlite3_bind_int64 (stmt, 8, r->n_params);
  sqlite3_bind_int64 (stmt, 9, t->original_bytes);
  sqlite3_bind_int64 (stmt, 10, r->bytes);
  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    sqlite3_bind_double (stmt, 11 + i, values[i]);   /* NAN binds as NULL */
  if (r->n_nonfinite >= 0)
    sqlite3_bind_int64 (stmt, 26, r->n_nonfinite);
  else
    sqlite3_bind_null (stmt, 26);
  if (!qb_store_exec_step (store, stmt, error, "storing a tensor result"))
    return FALSE;
  return write_tensor_data (store, sqlite3_last_insert_rowid (store->db), r, error);
}

gboolean
qb_store_add_tensor_result (QbStore *store, gint64 experiment_id, guint position,
                            guint64 original_bytes, const QbTensorResult *result, GError **error)
{
  QB_STORE_LOCK (store);
  QbStoredTensor t = { 0, position, original_bytes, (QbTensorResult *) result };
  g_autoptr(QbStmt) touch = NULL;

  if (!qb_store_begin (store, error))
    return FALSE;
  /* Only a running experiment takes tensors: the update says whether it is. */
  touch = qb_store_stmt (store, "UPDATE experiment SET updated = ?2 "
                                "WHERE id = ?1 AND status = 'running'", error);
  if (touch == NULL)
    goto fail;
  sqlite3_bind_int64 (touch, 1, experiment_id);
  sqlite3_bind_int64 (touch, 2, g_get_real_time ());
  if (!qb_store_exec_step (store, touch, error, "updating an experiment"))
    goto fail;
  if (sqlite3_changes (store->db) == 0)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_STATE,
                   "%s: experiment %" G_GINT64_FORMAT " is not running (missing or finished)",
                   store->path, experiment_id);
      goto fail;
    }
  g_clear_pointer (&touch, qb_stmt_release);
  if (!qb_store_write_tensor_locked (store, experiment_id, &t, error))
    goto fail;
  touch = qb_store_stmt (store, "UPDATE experiment SET n_tensors_done = (SELECT count(*) "
                                "FROM tensor_result WHERE experiment_id = ?1) WHERE id = ?1", error);
  if (touch == NULL)
    goto fail;
  sqlite3_bind_int64 (touch, 1, experiment_id);
  if (!qb_store_exec_step (store, touch, error, "counting stored tensors") ||
      !qb_store_commit (store, error))
    goto fail;
  return TRUE;

fail:
  qb_store_rollback (store);
  return FALSE;
}

/* Inside a transaction: totals over the stored tensors, and the end. */
static gboolean
finish_locked (QbStore *store, gint64 id, QbExperimentStatus status, double seconds,
               gint64 finished, const char *error_message, GError **error)
{
  g_autoptr(GPtrArray) tensors = qb_store_get_tensors_locked (store, id, error);
  g_autoptr(QbStmt) stmt = NULL;
  QbExperimentTotals t;

  if (tensors == NULL)
    return FALSE;
  t.seconds = seconds;
  qb_experiment_totals_compute (&t, (QbStoredTensor * const *) tensors->pdata, tensors->len);
  stmt = qb_store_stmt (store,
                        "UPDATE experiment SET status = ?2, finished = ?3, seconds = ?4, "
                        "n_params = ?5, original_bytes = ?6, quantized_bytes = ?7, bpw = ?8, "
                        "compression = ?9, sqnr_db = ?10, rmse_rel = ?11, cosine_min = ?12, "
                        "max_abs_err = ?13, out_rel_err = ?14, n_fallbacks = ?15, error = ?16 "
                        "WHERE id = ?1 AND status = 'running'", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, id);
  qb_bind_text (stmt, 2, qb_experiment_status_name (status));
  sqlite3_bind_int64 (stmt, 3, finished);
  sqlite3_bind_double (stmt, 4, t.seconds);
  sqlite3_bind_int64 (stmt, 5, t.n_params);
  sqlite3_bind_int64 (stmt, 6, t.original_bytes);
  sqlite3_bind_int64 (stmt, 7, t.quantized_bytes);
  sqlite3_bind_double (stmt, 8, t.bpw);
  sqlite3_bind_double (stmt, 9, t.compression);
  sqlite3_bind_double (stmt, 10, t.sqnr_db);
  sqlite3_bind_double (stmt, 11, t.rmse_rel);
  sqlite3_bind_double (stmt, 12, t.cosine_min);
  sqlite3_bind_double (stmt, 13, t.max_abs_err);
  sqlite3_bind_double (stmt, 14, t.out_rel_err);
  sqlite3_bind_int64 (stmt, 15, t.n_fallbacks);
  qb_bind_text (stmt, 16, error_message);
  if (!qb_store_exec_step (store, stmt, error, "finishing an experiment"))
    return FALSE;
  if (sqlite3_changes (store->db) == 0)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_STATE,
                   "%s: experiment %" G_GINT64_FORMAT " is not running (missing or finished)",
                   store->path, id);
      return FALSE;
    }
  return TRUE;
}

gboolean
qb_store_finish_experiment (QbStore *store, gint64 experiment_id, QbExperimentStatus status,
                            double seconds, const char *error_message, GError **error)
{
  QB_STORE_LOCK (store);

  if (status == QB_EXPERIMENT_RUNNING || (guint) status >= QB_EXPERIMENT_N_STATUS)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID,
                   "an experiment cannot finish as '%s'", qb_experiment_status_name (status));
      return FALSE;
    }
  if (!qb_store_begin (store, error))
    return FALSE;
  if (!finish_locked (store, experiment_id, status, seconds, g_get_real_time (),
                      status == QB_EXPERIMENT_FAILED ? error_message : NULL, error) ||
      !qb_store_commit (store, error))
    {
      qb_store_rollback (store);
      return FALSE;
    }
  return TRUE;
}

/* -- interrupted runs -------------------------------------------------------------- */

typedef struct {
  gint64 id;
  gint64 created;
  gint64 updated;
  Owner  owner;
} RunningExperiment;

static void
running_experiment_clear (RunningExperiment *r)
{
  owner_clear (&r->owner);
}

static GArray *
list_running (QbStore *store, GError **error)
{
  g_autoptr(QbStmt) stmt = qb_store_stmt (store, "SELECT id, created, updated, owner_pid, "
                                          "owner_host, owner_boot, owner_start FROM experiment "
                                          "WHERE status = 'running'", error);
  g_autoptr(GArray) running = g_array_new (FALSE, TRUE, sizeof (RunningExperiment));
  int rc;

  if (stmt == NULL)
    return NULL;
  g_array_set_clear_func (running, (GDestroyNotify) running_experiment_clear);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      RunningExperiment r = {
        .id = sqlite3_column_int64 (stmt, 0),
        .created = sqlite3_column_int64 (stmt, 1),
        .updated = sqlite3_column_int64 (stmt, 2),
        .owner.pid = sqlite3_column_int (stmt, 3),
        .owner.host = qb_column_strdup (stmt, 4),
        .owner.boot = qb_column_strdup (stmt, 5),
        .owner.start = sqlite3_column_type (stmt, 6) == SQLITE_NULL
                       ? -1 : sqlite3_column_int64 (stmt, 6),
      };
      g_array_append_val (running, r);
    }
  if (rc != SQLITE_DONE)
    {
      qb_store_fail (store, error, "listing running experiments");
      return NULL;
    }
  return g_steal_pointer (&running);
}

/* An interrupted run ends at its last stored tensor; its totals cover
 * what it stored. */
gboolean
qb_store_recover_interrupted (QbStore *store, guint *n_marked, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(GArray) running = list_running (store, error);
  Owner self = { 0 };
  guint marked = 0;
  gboolean ok = TRUE;

  if (running == NULL)
    return FALSE;
  owner_self (&self);
  for (guint i = 0; ok && i < running->len; i++)
    {
      RunningExperiment *r = &g_array_index (running, RunningExperiment, i);
      g_autoptr(GError) local = NULL;

      if (owner_alive (&r->owner, &self))
        continue;
      ok = qb_store_begin (store, error);
      if (!ok)
        break;
      if (finish_locked (store, r->id, QB_EXPERIMENT_INTERRUPTED,
                         (r->updated - r->created) / 1e6, r->updated, NULL, &local) &&
          qb_store_commit (store, &local))
        marked++;
      else
        {
          qb_store_rollback (store);
          /* Another process marked it first: nothing to do. */
          if (!g_error_matches (local, QB_STORE_ERROR, QB_STORE_ERROR_STATE))
            {
              g_propagate_error (error, g_steal_pointer (&local));
              ok = FALSE;
            }
        }
    }
  owner_clear (&self);
  if (n_marked != NULL)
    *n_marked = marked;
  return ok;
}

/* -- evaluations --------------------------------------------------------------------- */

static gboolean
write_chunks (QbStore *store, gint64 evaluation_id, const QbEvaluation *ev, GError **error)
{
  g_autoptr(QbStmt) clear = qb_store_stmt (store, "DELETE FROM evaluation_chunk "
                                           "WHERE evaluation_id = ?1", error);

  if (clear == NULL)
    return FALSE;
  sqlite3_bind_int64 (clear, 1, evaluation_id);
  if (!qb_store_exec_step (store, clear, error, "replacing evaluation chunks"))
    return FALSE;
  for (guint i = 0; i < ev->n_chunk_results; i++)
    {
      g_autoptr(QbStmt) stmt = qb_store_stmt (store, "INSERT INTO evaluation_chunk (evaluation_id, "
                                              "chunk, perplexity, kld_mean) "
                                              "VALUES (?1, ?2, ?3, ?4)", error);
      if (stmt == NULL)
        return FALSE;
      sqlite3_bind_int64 (stmt, 1, evaluation_id);
      sqlite3_bind_int64 (stmt, 2, i);
      sqlite3_bind_double (stmt, 3, ev->chunk_ppl[i]);
      sqlite3_bind_double (stmt, 4, ev->chunk_kld ? ev->chunk_kld[i] : NAN);
      if (!qb_store_exec_step (store, stmt, error, "storing evaluation chunks"))
        return FALSE;
    }
  return TRUE;
}

/* Inside a transaction. */
gboolean
qb_store_write_evaluation_locked (QbStore *store, gint64 experiment_id, const QbEvaluation *ev,
                                  gint64 *id, GError **error)
{
  const double values[] = {
    ev->perplexity, ev->perplexity_err, ev->base_perplexity, ev->kld_mean, ev->kld_median,
    ev->kld_p90, ev->kld_p95, ev->kld_p99, ev->kld_max, ev->top1_agreement, ev->dp_mean,
    ev->dp_rms, ev->seconds,
  };
  g_autoptr(QbStmt) stmt = NULL;
  gint64 evaluation_id;

  if (ev->text_hash == NULL || *ev->text_hash == '\0')
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID,
                   "an evaluation needs the hash of its text");
      return FALSE;
    }
  stmt = qb_store_stmt (store,
                        "INSERT INTO evaluation (experiment_id, created, text_name, text_hash, "
                        "n_ctx, n_chunks, n_tokens, perplexity, perplexity_err, base_perplexity, "
                        "kld_mean, kld_median, kld_p90, kld_p95, kld_p99, kld_max, top1_agreement, "
                        "dp_mean, dp_rms, seconds) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                        "?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20) "
                        "ON CONFLICT (experiment_id, text_hash, n_ctx, n_chunks) DO UPDATE SET "
                        "created = excluded.created, text_name = excluded.text_name, "
                        "n_tokens = excluded.n_tokens, perplexity = excluded.perplexity, "
                        "perplexity_err = excluded.perplexity_err, "
                        "base_perplexity = excluded.base_perplexity, kld_mean = excluded.kld_mean, "
                        "kld_median = excluded.kld_median, kld_p90 = excluded.kld_p90, "
                        "kld_p95 = excluded.kld_p95, kld_p99 = excluded.kld_p99, "
                        "kld_max = excluded.kld_max, top1_agreement = excluded.top1_agreement, "
                        "dp_mean = excluded.dp_mean, dp_rms = excluded.dp_rms, "
                        "seconds = excluded.seconds RETURNING id", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, experiment_id);
  sqlite3_bind_int64 (stmt, 2, ev->created ? ev->created : g_get_real_time ());
  qb_bind_text (stmt, 3, ev->text_name);
  qb_bind_text (stmt, 4, ev->text_hash);
  sqlite3_bind_int64 (stmt, 5, ev->n_ctx);
  sqlite3_bind_int64 (stmt, 6, ev->n_chunks);
  sqlite3_bind_int64 (stmt, 7, ev->n_tokens);
  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    sqlite3_bind_double (stmt, 8 + i, values[i]);
  if (sqlite3_step (stmt) != SQLITE_ROW)
    return qb_store_fail (store, error, "storing an evaluation");
  evaluation_id = sqlite3_column_int64 (stmt, 0);
  g_clear_pointer (&stmt, qb_stmt_release);
  if (!write_chunks (store, evaluation_id, ev, error))
    return FALSE;
  if (id != NULL)
    *id = evaluation_id;
  return TRUE;
}

gboolean
qb_store_set_evaluation (QbStore *store, gint64 experiment_id, const QbEvaluation *evaluation,
                         gint64 *id, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(QbStmt) exists = NULL;
  int rc;

  if (!qb_store_begin (store, error))
    return FALSE;
  if ((exists = qb_store_stmt (store, "SELECT 1 FROM experiment WHERE id = ?1", error)) == NULL)
    goto fail;
  sqlite3_bind_int64 (exists, 1, experiment_id);
  rc = sqlite3_step (exists);
  g_clear_pointer (&exists, qb_stmt_release);
  if (rc == SQLITE_DONE)
    {
      not_found (store, error, "experiment", experiment_id);
      goto fail;
    }
  if (rc != SQLITE_ROW)
    {
      qb_store_fail (store, error, "looking up an experiment");
      goto fail;
    }
  if (!qb_store_write_evaluation_locked (store, experiment_id, evaluation, id, error) ||
      !qb_store_commit (store, error))
    goto fail;
  return TRUE;

fail:
  qb_store_rollback (store);
  return FALSE;
}

/* -- editing ---------------------------------------------------------------------- */

gboolean
qb_store_rename_experiment (QbStore *store, gint64 id, const char *name, GError **error)
{
  QB_STORE_LOCK (store);
  g_autofree char *trimmed = g_strstrip (g_strdup (name ? name : ""));
  g_autoptr(QbStmt) stmt = NULL;

  if (*trimmed == '\0' || !g_utf8_validate (trimmed, -1, NULL))
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID,
                   "an experiment's name cannot be empty");
      return FALSE;
    }
  if ((stmt = qb_store_stmt (store, "UPDATE experiment SET name = ?2 WHERE id = ?1", error)) == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, id);
  qb_bind_text (stmt, 2, trimmed);
  return update_experiment (store, stmt, id, error, "renaming an experiment");
}

gboolean
qb_store_set_notes (QbStore *store, gint64 id, const char *notes, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(QbStmt) stmt = NULL;

  if (notes != NULL && !g_utf8_validate (notes, -1, NULL))
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID, "notes must be UTF-8 text");
      return FALSE;
    }
  if ((stmt = qb_store_stmt (store, "UPDATE experiment SET notes = ?2 WHERE id = ?1", error)) == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, id);
  qb_bind_text (stmt, 2, notes ? notes : "");
  return update_experiment (store, stmt, id, error, "annotating an experiment");
}

static gboolean
experiment_exists (QbStore *store, gint64 id, GError **error)
{
  g_autoptr(QbStmt) stmt = qb_store_stmt (store, "SELECT 1 FROM experiment WHERE id = ?1", error);

  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, id);
  switch (sqlite3_step (stmt))
    {
    case SQLITE_ROW:
      return TRUE;
    case SQLITE_DONE:
      return not_found (store, error, "experiment", id);
    default:
      return qb_store_fail (store, error, "looking up an experiment");
    }
}

/* Tags nobody uses any more go, so the tag list stays what is in use. */
static gboolean
drop_unused_tags (QbStore *store, GError **error)
{
  return exec_sql (store, "DELETE FROM tag WHERE NOT EXISTS "
                          "(SELECT 1 FROM experiment_tag WHERE tag_id = tag.id)", error);
}

gboolean
qb_store_add_tags (QbStore *store, gint64 id, const char * const *tags, GError **error)
{
  QB_STORE_LOCK (store);

  if (!check_tags (tags, error) || !qb_store_begin (store, error))
    return FALSE;
  if (!experiment_exists (store, id, error) ||
      !qb_store_tag_locked (store, id, tags, error) ||
      !qb_store_commit (store, error))
    {
      qb_store_rollback (store);
      return FALSE;
    }
  return TRUE;
}

gboolean
qb_store_remove_tags (QbStore *store, gint64 id, const char * const *tags, GError **error)
{
  QB_STORE_LOCK (store);

  if (!qb_store_begin (store, error))
    return FALSE;
  if (!experiment_exists (store, id, error))
    goto fail;
  for (guint i = 0; tags && tags[i]; i++)
    {
      g_autofree char *tag = g_strstrip (g_strdup (tags[i]));
      g_autoptr(QbStmt) stmt = qb_store_stmt (store, "DELETE FROM experiment_tag WHERE "
                                              "experiment_id = ?1 AND tag_id = "
                                              "(SELECT id FROM tag WHERE name = ?2)", error);
      if (stmt == NULL)
        goto fail;
      sqlite3_bind_int64 (stmt, 1, id);
      qb_bind_text (stmt, 2, tag);
      if (!qb_store_exec_step (store, stmt, error, "untagging an experiment"))
        goto fail;
    }
  if (!drop_unused_tags (store, error) || !qb_store_commit (store, error))
    goto fail;
  return TRUE;

fail:
  qb_store_rollback (store);
  return FALSE;
}

gboolean
qb_store_delete_experiment (QbStore *store, gint64 id, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(QbStmt) stmt = NULL;

  if (!qb_store_begin (store, error))
    return FALSE;
  if ((stmt = qb_store_stmt (store, "DELETE FROM experiment WHERE id = ?1", error)) == NULL)
    goto fail;
  sqlite3_bind_int64 (stmt, 1, id);
  if (!update_experiment (store, stmt, id, error, "deleting an experiment"))
    goto fail;
  g_clear_pointer (&stmt, qb_stmt_release);
  if (!drop_unused_tags (store, error) || !qb_store_commit (store, error))
    goto fail;
  return TRUE;

fail:
  qb_store_rollback (store);
  return FALSE;
}
