/* SPDX-License-Identifier: MIT */
/* qb-store-recover.c — runs whose process died (a crash, a kill, a
 * power cut) are marked interrupted when a store is opened. */
#include "qb-store-private.h"

typedef struct {
  gint64 id;
  gint64 created;
  gint64 updated;
  QbStoreOwner owner;
} RunningExperiment;

static void
running_experiment_clear (RunningExperiment *r)
{
  qb_store_owner_clear (&r->owner);
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
  QbStoreOwner self = { 0 };
  guint marked = 0;
  gboolean ok = TRUE;

  if (running == NULL)
    return FALSE;
  qb_store_owner_self (&self);
  for (guint i = 0; ok && i < running->len; i++)
    {
      RunningExperiment *r = &g_array_index (running, RunningExperiment, i);
      g_autoptr(GError) local = NULL;

      if (qb_store_owner_alive (&r->owner, &self))
        continue;
      ok = qb_store_begin (store, error);
      if (!ok)
        break;
      if (qb_store_finish_locked (store, r->id, QB_EXPERIMENT_INTERRUPTED,
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
  qb_store_owner_clear (&self);
  if (n_marked != NULL)
    *n_marked = marked;
  return ok;
}

