/* SPDX-License-Identifier: MIT */
/* qb-store-schema.c — checking a database file before use, and the
 * schema's versions with their forward migrations.
 *
 * A database's version is PRAGMA user_version; a Quantbench database is
 * marked with PRAGMA application_id.  migrations[v] takes version v to
 * v + 1; a new database runs them all, so a migrated database and a fresh
 * one have the same schema by construction.  A published step is never
 * edited: a change is a new step.
 *
 * Version 1: models, experiments, tags, per-tensor results and their
 * histograms.
 * Version 2: calibration sets, linked from experiments; per-tensor and
 * total output error from calibration statistics; evaluations with
 * per-chunk results; a stored-tensor count on each experiment (filled in
 * for existing experiments); indexes for listing experiments by date, all
 * of them or a model's, without sorting.
 * Version 3: the chunks a calibration set skipped at the start of its
 * texts, so that a set made with a skip can be built again from its record.
 * Version 4: the count of NaN and infinite weights of each tensor (NULL for
 * results stored before: not counted).
 * Version 6: sensitivity studies (core/sensitivity/): what a study ran on
 * and how, and per (tensor, candidate) its proxies and measured KLD.
 * Version 7: the experts of a 3-D mixture-of-experts tensor, one row each
 * under its tensor result: SQNR, relative RMSE and the three histograms.
 * Version 8: a sensitivity study's per-expert costs.
 * Version 9: every other error metric per expert, its range and outliers.
 * Version 10: each expert's weight moments (mean, std, kurtosis).
 */
#include "qb-store-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

static const char migration_v1[] =
  "CREATE TABLE model ("
  "  id          INTEGER PRIMARY KEY,"
  "  fingerprint TEXT NOT NULL UNIQUE,"
  "  path        TEXT NOT NULL,"
  "  file_size   INTEGER NOT NULL,"
  "  name        TEXT,"
  "  family      TEXT,"
  "  n_params    INTEGER NOT NULL,"
  "  n_tensors   INTEGER NOT NULL,"
  "  arch_json   TEXT NOT NULL,"
  "  first_seen  INTEGER NOT NULL,"
  "  last_seen   INTEGER NOT NULL"
  ");"
  "CREATE TABLE experiment ("
  "  id              INTEGER PRIMARY KEY,"
  "  uuid            TEXT NOT NULL UNIQUE,"
  "  model_id        INTEGER NOT NULL REFERENCES model (id),"
  "  name            TEXT NOT NULL,"
  "  created         INTEGER NOT NULL,"
  "  updated         INTEGER NOT NULL,"
  "  finished        INTEGER,"
  "  status          TEXT NOT NULL CHECK (status IN"
  "                    ('running', 'done', 'cancelled', 'failed', 'interrupted')),"
  "  plan_json       TEXT NOT NULL,"
  "  threads         INTEGER NOT NULL,"
  "  backend         TEXT NOT NULL,"
  "  n_tensors       INTEGER NOT NULL,"
  "  n_params        INTEGER,"
  "  original_bytes  INTEGER,"
  "  quantized_bytes INTEGER,"
  "  bpw             REAL,"
  "  compression     REAL,"
  "  seconds         REAL,"
  "  sqnr_db         REAL,"
  "  rmse_rel        REAL,"
  "  cosine_min      REAL,"
  "  max_abs_err     REAL,"
  "  n_fallbacks     INTEGER,"
  "  notes           TEXT NOT NULL DEFAULT '',"
  "  error           TEXT,"
  "  owner_pid       INTEGER,"
  "  owner_host      TEXT,"
  "  owner_boot      TEXT,"
  "  owner_start     INTEGER"
  ");"
  "CREATE INDEX experiment_model ON experiment (model_id);"
  "CREATE INDEX experiment_status ON experiment (status);"
  "CREATE TABLE tag ("
  "  id   INTEGER PRIMARY KEY,"
  "  name TEXT NOT NULL UNIQUE"
  ");"
  "CREATE TABLE experiment_tag ("
  "  experiment_id INTEGER NOT NULL REFERENCES experiment (id) ON DELETE CASCADE,"
  "  tag_id        INTEGER NOT NULL REFERENCES tag (id) ON DELETE CASCADE,"
  "  PRIMARY KEY (experiment_id, tag_id)"
  ") WITHOUT ROWID;"
  "CREATE INDEX experiment_tag_tag ON experiment_tag (tag_id);"
  "CREATE TABLE tensor_result ("
  "  id               INTEGER PRIMARY KEY,"
  "  experiment_id    INTEGER NOT NULL REFERENCES experiment (id) ON DELETE CASCADE,"
  "  position         INTEGER NOT NULL,"
  "  name             TEXT NOT NULL,"
  "  format           TEXT,"
  "  requested_format TEXT,"
  "  fallback_reason  TEXT,"
  "  method           TEXT,"
  "  n_params         INTEGER NOT NULL,"
  "  original_bytes   INTEGER NOT NULL,"
  "  bytes            INTEGER NOT NULL,"
  "  bpw              REAL,"
  "  seconds          REAL,"
  "  mse              REAL,"
  "  rmse_rel         REAL,"
  "  sqnr_db          REAL,"
  "  cosine           REAL,"
  "  max_abs_err      REAL,"
  "  wmse             REAL,"
  "  w_mean           REAL,"
  "  w_std            REAL,"
  "  w_min            REAL,"
  "  w_max            REAL,"
  "  kurtosis         REAL,"
  "  outlier_share    REAL,"
  "  UNIQUE (experiment_id, name)"
  ");"
  "CREATE TABLE tensor_data ("
  "  tensor_id      INTEGER PRIMARY KEY REFERENCES tensor_result (id) ON DELETE CASCADE,"
  "  hist_original  BLOB,"
  "  hist_quantized BLOB,"
  "  hist_error     BLOB,"
  "  channels       BLOB"
  ");"
  "PRAGMA application_id = 1363301204;";   /* QB_STORE_APPLICATION_ID */

static const char migration_v2[] =
  "CREATE TABLE calibration_set ("
  "  id           INTEGER PRIMARY KEY,"
  "  hash         TEXT NOT NULL UNIQUE,"
  "  name         TEXT NOT NULL,"
  "  sources_json TEXT NOT NULL,"
  "  n_tokens     INTEGER NOT NULL,"
  "  chunk_len    INTEGER NOT NULL,"
  "  n_chunks     INTEGER NOT NULL,"
  "  seeded       INTEGER NOT NULL,"
  "  seed         INTEGER NOT NULL,"
  "  created      INTEGER NOT NULL"
  ");"
  "ALTER TABLE experiment ADD COLUMN calibration_set_id INTEGER"
  "  REFERENCES calibration_set (id) ON DELETE SET NULL;"
  "ALTER TABLE experiment ADD COLUMN out_rel_err REAL;"
  "ALTER TABLE experiment ADD COLUMN n_tensors_done INTEGER NOT NULL DEFAULT 0;"
  "UPDATE experiment SET n_tensors_done ="
  "  (SELECT count(*) FROM tensor_result WHERE experiment_id = experiment.id);"
  "ALTER TABLE tensor_result ADD COLUMN out_rel_err REAL;"
  "DROP INDEX experiment_model;"
  "CREATE INDEX experiment_model_created ON experiment (model_id, created);"
  "CREATE INDEX experiment_created ON experiment (created);"
  "CREATE INDEX experiment_calibration ON experiment (calibration_set_id);"
  "CREATE TABLE evaluation ("
  "  id              INTEGER PRIMARY KEY,"
  "  experiment_id   INTEGER NOT NULL REFERENCES experiment (id) ON DELETE CASCADE,"
  "  created         INTEGER NOT NULL,"
  "  text_name       TEXT,"
  "  text_hash       TEXT NOT NULL,"
  "  n_ctx           INTEGER NOT NULL,"
  "  n_chunks        INTEGER NOT NULL,"
  "  n_tokens        INTEGER NOT NULL,"
  "  perplexity      REAL,"
  "  perplexity_err  REAL,"
  "  base_perplexity REAL,"
  "  kld_mean        REAL,"
  "  kld_median      REAL,"
  "  kld_p90         REAL,"
  "  kld_p95         REAL,"
  "  kld_p99         REAL,"
  "  kld_max         REAL,"
  "  top1_agreement  REAL,"
  "  dp_mean         REAL,"
  "  dp_rms          REAL,"
  "  seconds         REAL,"
  "  UNIQUE (experiment_id, text_hash, n_ctx, n_chunks)"
  ");"
  "CREATE INDEX evaluation_latest ON evaluation (experiment_id, created);"
  "CREATE TABLE evaluation_chunk ("
  "  evaluation_id INTEGER NOT NULL REFERENCES evaluation (id) ON DELETE CASCADE,"
  "  chunk         INTEGER NOT NULL,"
  "  perplexity    REAL,"
  "  kld_mean      REAL,"
  "  PRIMARY KEY (evaluation_id, chunk)"
  ") WITHOUT ROWID;";

static const char migration_v3[] =
  "ALTER TABLE calibration_set ADD COLUMN skip_chunks INTEGER NOT NULL DEFAULT 0;";

static const char migration_v4[] =
  "ALTER TABLE tensor_result ADD COLUMN n_nonfinite INTEGER;";

/* The device that evaluated (issue 13). */
static const char migration_v5[] =
  "ALTER TABLE evaluation ADD COLUMN device TEXT;";

static const char migration_v6[] =
  "CREATE TABLE study ("
  "  id                 INTEGER PRIMARY KEY,"
  "  uuid               TEXT NOT NULL UNIQUE,"
  "  model_id           INTEGER NOT NULL REFERENCES model (id),"
  "  created            INTEGER NOT NULL,"
  "  updated            INTEGER NOT NULL,"
  "  status             TEXT NOT NULL CHECK (status IN"
  "                       ('running', 'done', 'cancelled', 'failed', 'interrupted')),"
  "  method             TEXT NOT NULL,"
  "  candidates         TEXT NOT NULL,"
  "  proxy              TEXT NOT NULL,"
  "  calibration_set_id INTEGER REFERENCES calibration_set (id) ON DELETE SET NULL,"
  "  eval_text_name     TEXT,"
  "  eval_text_hash     TEXT NOT NULL,"
  "  eval_tokens_hash   TEXT NOT NULL,"
  "  eval_n_ctx         INTEGER NOT NULL,"
  "  eval_n_chunks      INTEGER NOT NULL,"
  "  eval_first_token   INTEGER NOT NULL,"
  "  base_ppl           REAL,"
  "  fit_alpha          REAL,"
  "  fit_spearman       REAL,"
  "  seconds            REAL,"
  "  settings_json      TEXT NOT NULL,"
  "  error              TEXT"
  ");"
  "CREATE INDEX study_model ON study (model_id, created);"
  "CREATE TABLE study_cost ("
  "  study_id    INTEGER NOT NULL REFERENCES study (id) ON DELETE CASCADE,"
  "  position    INTEGER NOT NULL,"
  "  rung        INTEGER NOT NULL,"
  "  tensor      TEXT NOT NULL,"
  "  format      TEXT NOT NULL,"
  "  skipped     INTEGER NOT NULL,"
  "  note        TEXT,"
  "  n_weights   INTEGER NOT NULL,"
  "  bytes       INTEGER NOT NULL,"
  "  mse         REAL,"
  "  wmse        REAL,"
  "  out_err     REAL,"
  "  kld         REAL,"
  "  kld_err     REAL,"
  "  seconds     REAL,"
  "  PRIMARY KEY (study_id, position, rung)"
  ") WITHOUT ROWID;";

static const char migration_v7[] =
  "CREATE TABLE expert_result ("
  "  tensor_id      INTEGER NOT NULL REFERENCES tensor_result (id) ON DELETE CASCADE,"
  "  expert         INTEGER NOT NULL,"
  "  sqnr_db        REAL,"
  "  rmse_rel       REAL,"
  "  hist_original  BLOB,"
  "  hist_quantized BLOB,"
  "  hist_error     BLOB,"
  "  PRIMARY KEY (tensor_id, expert)"
  ") WITHOUT ROWID;";

/* A study's per-expert measurements: one row per expert of a 3-D expert
 * tensor and candidate, that expert alone quantized (the others float). */
static const char migration_v8[] =
  "CREATE TABLE study_expert_cost ("
  "  study_id    INTEGER NOT NULL REFERENCES study (id) ON DELETE CASCADE,"
  "  position    INTEGER NOT NULL,"
  "  rung        INTEGER NOT NULL,"
  "  expert      INTEGER NOT NULL,"
  "  tensor      TEXT NOT NULL,"
  "  format      TEXT NOT NULL,"
  "  n_weights   INTEGER NOT NULL,"
  "  bytes       INTEGER NOT NULL,"
  "  mse         REAL,"
  "  kld         REAL,"
  "  kld_err     REAL,"
  "  seconds     REAL,"
  "  PRIMARY KEY (study_id, position, rung, expert)"
  ") WITHOUT ROWID;";

/* Every error metric the whole tensor has, per expert, with its range and
 * outlier share. */
static const char migration_v9[] =
  "ALTER TABLE expert_result ADD COLUMN mse REAL;"
  "ALTER TABLE expert_result ADD COLUMN cosine REAL;"
  "ALTER TABLE expert_result ADD COLUMN max_abs_err REAL;"
  "ALTER TABLE expert_result ADD COLUMN wmse REAL;"
  "ALTER TABLE expert_result ADD COLUMN out_rel_err REAL;"
  "ALTER TABLE expert_result ADD COLUMN w_min REAL;"
  "ALTER TABLE expert_result ADD COLUMN w_max REAL;"
  "ALTER TABLE expert_result ADD COLUMN outlier_share REAL;";

/* Each expert's weight moments, measured in the run's pass (rows stored
 * before read them as not measured). */
static const char migration_v10[] =
  "ALTER TABLE expert_result ADD COLUMN w_mean REAL;"
  "ALTER TABLE expert_result ADD COLUMN w_std REAL;"
  "ALTER TABLE expert_result ADD COLUMN kurtosis REAL;";

const QbExpertMetric qb_expert_metrics[QB_N_EXPERT_METRICS] = {
  { "sqnr_db", G_STRUCT_OFFSET (QbTensorMetrics, sqnr_db) },
  { "rmse_rel", G_STRUCT_OFFSET (QbTensorMetrics, rmse_rel) },
  { "mse", G_STRUCT_OFFSET (QbTensorMetrics, mse) },
  { "cosine", G_STRUCT_OFFSET (QbTensorMetrics, cosine) },
  { "max_abs_err", G_STRUCT_OFFSET (QbTensorMetrics, max_abs_err) },
  { "wmse", G_STRUCT_OFFSET (QbTensorMetrics, wmse) },
  { "out_rel_err", G_STRUCT_OFFSET (QbTensorMetrics, out_rel_err) },
  { "min", G_STRUCT_OFFSET (QbTensorMetrics, min) },
  { "max", G_STRUCT_OFFSET (QbTensorMetrics, max) },
  { "outlier_share", G_STRUCT_OFFSET (QbTensorMetrics, outlier_share) },
  { "mean", G_STRUCT_OFFSET (QbTensorMetrics, mean) },
  { "std", G_STRUCT_OFFSET (QbTensorMetrics, std) },
  { "kurtosis", G_STRUCT_OFFSET (QbTensorMetrics, kurtosis) },
};

static const char * const migrations[] = {
  migration_v1,
  migration_v2,
  migration_v3,
  migration_v4,
  migration_v5,
  migration_v6,
  migration_v7,
  migration_v8,
  migration_v9,
  migration_v10,
};

G_STATIC_ASSERT (G_N_ELEMENTS (migrations) == QB_STORE_SCHEMA_VERSION);

/* -- checking a file without writing to it -------------------------------- */

static gboolean
read_header (const char *path, guint8 header[100], gsize *len, GError **error)
{
  int fd = g_open (path, O_RDONLY | O_CLOEXEC, 0);
  gssize n = 0;

  if (fd < 0)
    {
      int saved = errno;
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_FAILED,
                   "%s: cannot open: %s", path, g_strerror (saved));
      return FALSE;
    }
  while (*len < 100 && (n = read (fd, header + *len, 100 - *len)) > 0)
    *len += n;
  close (fd);
  if (n < 0)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_FAILED,
                   "%s: cannot read: %s", path, g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

static gboolean
query_int (sqlite3 *db, const char *sql, gint64 *value)
{
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL);

  if (rc == SQLITE_OK && (rc = sqlite3_step (stmt)) == SQLITE_ROW)
    *value = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  return rc == SQLITE_ROW;
}

static gboolean
damaged (sqlite3 *db, const char *path, const char *detail, GError **error)
{
  g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_CORRUPT,
               "%s is a damaged SQLite database (%s); it was left untouched",
               path, detail ? detail : sqlite3_errmsg (db));
  return FALSE;
}

/* PRAGMA quick_check reads every page once (O(file size), tens of ms per
 * 100 MB): the price of never writing into a damaged file. */
static gboolean
check_integrity (sqlite3 *db, const char *path, GError **error)
{
  sqlite3_stmt *stmt = NULL;
  g_autofree char *problem = NULL;
  int rc = sqlite3_prepare_v2 (db, "PRAGMA quick_check(1)", -1, &stmt, NULL);

  if (rc == SQLITE_OK && (rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      const char *verdict = (const char *) sqlite3_column_text (stmt, 0);
      if (g_strcmp0 (verdict, "ok") != 0)
        problem = g_strdup (verdict ? verdict : "quick_check failed");
    }
  else
    {
      /* Not a verdict: the check could not run (I/O, a read-only folder). */
      sqlite3_finalize (stmt);
      return qb_store_schema_read_failed (db, path, NULL, error);
    }
  sqlite3_finalize (stmt);
  if (problem != NULL)
    return damaged (db, path, problem, error);
  return TRUE;
}

gboolean
qb_store_schema_read_failed (sqlite3 *db, const char *path, const char *detail, GError **error)
{
  int rc = sqlite3_errcode (db) & 0xff;

  if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB)
    return damaged (db, path, detail, error);
  g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_FAILED,
               "%s: cannot read the database: %s%s", path, detail ? detail : sqlite3_errmsg (db),
               rc == SQLITE_CANTOPEN || rc == SQLITE_READONLY || rc == SQLITE_PERM
               ? " (is its folder read-only or not yours?)"
               : rc == SQLITE_FULL || rc == SQLITE_IOERR ? " (is the disk full or failing?)" : "");
  return FALSE;
}

static gboolean
usable (sqlite3 *db)
{
  gint64 n = 0;

  return query_int (db, "SELECT count(*) FROM sqlite_master", &n);
}

int
qb_store_schema_open_readonly (const char *path, sqlite3 **db)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *escaped = NULL, *uri = NULL;
  int rc = sqlite3_open_v2 (path, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);

  if (rc == SQLITE_OK)
    sqlite3_busy_timeout (*db, 10000);
  if (rc != SQLITE_OK || usable (*db) || access (dir, W_OK) == 0)
    return rc;
  escaped = g_uri_escape_string (path, "/", FALSE);
  uri = g_strconcat ("file:", escaped, "?immutable=1", NULL);
  sqlite3_close (*db);
  *db = NULL;
  rc = sqlite3_open_v2 (uri, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, NULL);
  if (rc == SQLITE_OK)
    sqlite3_busy_timeout (*db, 10000);
  return rc;
}

/* Every question is asked through a read-only connection, so nothing in
 * the file can change whatever the answer (SQLite may create the -wal and
 * -shm files beside it, never write into it). */
static gboolean
check_database (const char *path, int *version, GError **error)
{
  sqlite3 *db = NULL;
  gint64 app_id = 0, user_version = 0, n_objects = 0;
  gboolean ok = FALSE;

  if (qb_store_schema_open_readonly (path, &db) != SQLITE_OK)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_FAILED, "%s: cannot open: %s",
                   path, db ? sqlite3_errmsg (db) : "out of memory");
      sqlite3_close (db);
      return FALSE;
    }
  if (!query_int (db, "PRAGMA application_id", &app_id) ||
      !query_int (db, "PRAGMA user_version", &user_version) ||
      !query_int (db, "SELECT count(*) FROM sqlite_master", &n_objects))
    qb_store_schema_read_failed (db, path, NULL, error);
  else if (app_id != QB_STORE_APPLICATION_ID && !(app_id == 0 && n_objects == 0))
    g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_NOT_DATABASE,
                 "%s is a SQLite database of another program, not a Quantbench experiment "
                 "store; it was left untouched", path);
  else if (user_version > QB_STORE_SCHEMA_VERSION)
    g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_NEWER,
                 "%s was written by a newer Quantbench (schema version %" G_GINT64_FORMAT
                 "; this one reads versions up to %d); it was left untouched — "
                 "update Quantbench to open it", path, user_version, QB_STORE_SCHEMA_VERSION);
  else if (user_version < 0)
    damaged (db, path, "negative schema version", error);
  else if (check_integrity (db, path, error))
    {
      *version = user_version;
      ok = TRUE;
    }
  sqlite3_close (db);
  return ok;
}

gboolean
qb_store_schema_check (const char *path, int *version, GError **error)
{
  static const char magic[16] = "SQLite format 3";   /* with its NUL */
  guint8 header[100];
  gsize len = 0;
  GStatBuf st;

  *version = 0;
  if (g_stat (path, &st) != 0)
    {
      if (errno == ENOENT)
        return TRUE;            /* a new database */
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_FAILED,
                   "%s: %s", path, g_strerror (errno));
      return FALSE;
    }
  if (!S_ISREG (st.st_mode))
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_NOT_DATABASE,
                   "%s is not a regular file", path);
      return FALSE;
    }
  if (!read_header (path, header, &len, error))
    return FALSE;
  if (len == 0)
    return TRUE;                /* an empty file is an empty database */
  if (len < 100 || memcmp (header, magic, sizeof magic) != 0)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_NOT_DATABASE,
                   "%s is not a SQLite database (%s); it was left untouched", path,
                   len < 100 ? "shorter than a database header" : "no SQLite header");
      return FALSE;
    }
  return check_database (path, version, error);
}

/* -- migrating -------------------------------------------------------------- */

static gboolean
exec (sqlite3 *db, const char *path, const char *sql, int to_version, GError **error)
{
  char *message = NULL;

  if (sqlite3_exec (db, sql, NULL, NULL, &message) == SQLITE_OK)
    return TRUE;
  g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_FAILED,
               "%s: migrating the schema to version %d: %s", path, to_version,
               message ? message : sqlite3_errmsg (db));
  sqlite3_free (message);
  return FALSE;
}

/* One step in one transaction.  BEGIN IMMEDIATE takes the write lock
 * first, and the version is read again under it: two programs opening an
 * old database at once migrate it once. */
static gboolean
migrate_step (sqlite3 *db, const char *path, int to_version, GError **error)
{
  g_autofree char *set_version = g_strdup_printf ("PRAGMA user_version = %d", to_version);
  gint64 version = 0;

  if (!exec (db, path, "BEGIN IMMEDIATE", to_version, error))
    return FALSE;
  if (!query_int (db, "PRAGMA user_version", &version))
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_FAILED,
                   "%s: reading the schema version: %s", path, sqlite3_errmsg (db));
      sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
      return FALSE;
    }
  if (version >= to_version)
    return exec (db, path, "COMMIT", to_version, error);
  if (!exec (db, path, migrations[to_version - 1], to_version, error) ||
      !exec (db, path, set_version, to_version, error) ||
      !exec (db, path, "COMMIT", to_version, error))
    {
      sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
      return FALSE;
    }
  return TRUE;
}

gboolean
qb_store_schema_migrate (sqlite3 *db, const char *path, int target, GError **error)
{
  gint64 version = 0;

  g_return_val_if_fail (target >= 0 && target <= QB_STORE_SCHEMA_VERSION, FALSE);
  if (!query_int (db, "PRAGMA user_version", &version))
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_FAILED,
                   "%s: reading the schema version: %s", path, sqlite3_errmsg (db));
      return FALSE;
    }
  for (int v = version + 1; v <= target; v++)
    if (!migrate_step (db, path, v, error))
      return FALSE;
  return TRUE;
}
