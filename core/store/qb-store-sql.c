/* SPDX-License-Identifier: MIT */
/* qb-store-sql.c — what every store file uses: cached statements,
 * transactions, binding and reading columns, and the errors. */
#include "qb-store-private.h"

#include <math.h>

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

gboolean
qb_store_exec_sql (QbStore *store, const char *sql, GError **error)
{
  g_autoptr(QbStmt) stmt = qb_store_stmt (store, sql, error);

  return stmt != NULL && qb_store_exec_step (store, stmt, error, sql);
}

gboolean
qb_store_begin (QbStore *store, GError **error)
{
  return qb_store_exec_sql (store, "BEGIN IMMEDIATE", error);
}

gboolean
qb_store_commit (QbStore *store, GError **error)
{
  if (qb_store_exec_sql (store, "COMMIT", error))
    return TRUE;
  qb_store_rollback (store);
  return FALSE;
}

void
qb_store_rollback (QbStore *store)
{
  if (!sqlite3_get_autocommit (store->db))
    qb_store_exec_sql (store, "ROLLBACK", NULL);
}

/* A read transaction: several queries see one snapshot. */
gboolean
qb_store_begin_read (QbStore *store, GError **error)
{
  return qb_store_exec_sql (store, "BEGIN", error);
}

void
qb_store_end_read (QbStore *store)
{
  if (!sqlite3_get_autocommit (store->db))
    qb_store_exec_sql (store, "COMMIT", NULL);
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

gboolean
qb_store_not_found (QbStore *store, GError **error, const char *what, gint64 id)
{
  g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_NOT_FOUND,
               "%s: no %s with id %" G_GINT64_FORMAT, store->path, what, id);
  return FALSE;
}

/* Runs a one-row UPDATE of an experiment; NOT_FOUND when no row matched. */
gboolean
qb_store_update_experiment (QbStore *store, QbStmt *stmt, gint64 id, GError **error, const char *doing)
{
  if (!qb_store_exec_step (store, stmt, error, doing))
    return FALSE;
  if (sqlite3_changes (store->db) == 0)
    return qb_store_not_found (store, error, "experiment", id);
  return TRUE;
}

/* Steps a statement that returns at most one row of one integer (an id):
 * the integer, 0 when there is no row, -1 (error set) on failure. */
gint64
qb_store_step_id (QbStore *store, QbStmt *stmt, GError **error, const char *doing)
{
  switch (sqlite3_step (stmt))
    {
    case SQLITE_ROW:
      return sqlite3_column_int64 (stmt, 0);
    case SQLITE_DONE:
      return 0;
    default:
      qb_store_fail (store, error, doing);
      return -1;
    }
}

/* NOT_FOUND when there is no experiment `id`. */
gboolean
qb_store_experiment_exists (QbStore *store, gint64 id, GError **error)
{
  g_autoptr(QbStmt) stmt = qb_store_stmt (store, "SELECT 1 FROM experiment WHERE id = ?1", error);

  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, id);
  switch (qb_store_step_id (store, stmt, error, "looking up an experiment"))
    {
    case 0:
      return qb_store_not_found (store, error, "experiment", id);
    case -1:
      return FALSE;
    default:
      return TRUE;
    }
}
