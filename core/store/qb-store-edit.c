/* SPDX-License-Identifier: MIT */
/* qb-store-edit.c — editing stored experiments: names, notes, tags,
 * deletes. */
#include "qb-store-private.h"

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
  return qb_store_update_experiment (store, stmt, id, error, "renaming an experiment");
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
  return qb_store_update_experiment (store, stmt, id, error, "annotating an experiment");
}

/* Tags nobody uses any more go, so the tag list stays what is in use. */
static gboolean
drop_unused_tags (QbStore *store, GError **error)
{
  return qb_store_exec_sql (store, "DELETE FROM tag WHERE NOT EXISTS "
                          "(SELECT 1 FROM experiment_tag WHERE tag_id = tag.id)", error);
}

gboolean
qb_store_add_tags (QbStore *store, gint64 id, const char * const *tags, GError **error)
{
  QB_STORE_LOCK (store);

  if (!qb_store_check_tags (tags, error) || !qb_store_begin (store, error))
    return FALSE;
  if (!qb_store_experiment_exists (store, id, error) ||
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
  if (!qb_store_experiment_exists (store, id, error))
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

/* One transaction: a tag that is not valid leaves the old tags as they were. */
gboolean
qb_store_set_tags (QbStore *store, gint64 id, const char * const *tags, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(QbStmt) clear = NULL;

  if (!qb_store_check_tags (tags, error) || !qb_store_begin (store, error))
    return FALSE;
  if (!qb_store_experiment_exists (store, id, error) ||
      (clear = qb_store_stmt (store, "DELETE FROM experiment_tag WHERE experiment_id = ?1",
                              error)) == NULL)
    goto fail;
  sqlite3_bind_int64 (clear, 1, id);
  if (!qb_store_exec_step (store, clear, error, "untagging an experiment"))
    goto fail;
  g_clear_pointer (&clear, qb_stmt_release);
  if (!qb_store_tag_locked (store, id, tags, error) ||
      !drop_unused_tags (store, error) || !qb_store_commit (store, error))
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
  if (!qb_store_update_experiment (store, stmt, id, error, "deleting an experiment"))
    goto fail;
  g_clear_pointer (&stmt, qb_stmt_release);
  if (!drop_unused_tags (store, error) || !qb_store_commit (store, error))
    goto fail;
  return TRUE;

fail:
  qb_store_rollback (store);
  return FALSE;
}
