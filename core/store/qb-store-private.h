/* SPDX-License-Identifier: MIT */
/* qb-store-private.h — what the store's files share; not for the UI. */
#pragma once

#include <sqlite3.h>

#include "qb-store.h"

G_BEGIN_DECLS

/* PRAGMA application_id of a Quantbench store: "QBST". */
#define QB_STORE_APPLICATION_ID 0x51425354

struct _QbStore {
  gint        ref_count;
  GRecMutex   lock;      /* serializes calls on this connection */
  sqlite3    *db;
  char       *path;
  GHashTable *stmts;     /* SQL text -> prepared sqlite3_stmt, reused */
  GByteArray *blob[4];   /* scratch for encoding a tensor's BLOBs */
};

#define QB_STORE_LOCK(store) \
  g_autoptr(GRecMutexLocker) G_PASTE (locker_, __LINE__) = g_rec_mutex_locker_new (&(store)->lock)

/* A cached statement; g_autoptr(QbStmt) resets it and clears its
 * bindings when it goes out of scope, so it is ready for the next use. */
typedef sqlite3_stmt QbStmt;

static inline void
qb_stmt_release (QbStmt *stmt)
{
  sqlite3_reset (stmt);
  sqlite3_clear_bindings (stmt);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbStmt, qb_stmt_release)

/* qb-store-sql.c — statements, transactions, errors. */
QbStmt   *qb_store_stmt        (QbStore *store, const char *sql, GError **error);
gboolean  qb_store_fail        (QbStore *store, GError **error, const char *doing);
gboolean  qb_store_exec_step   (QbStore *store, QbStmt *stmt, GError **error, const char *doing);
/* Steps a query of one integer (an id): it, 0 when no row, -1 on failure. */
gint64    qb_store_step_id     (QbStore *store, QbStmt *stmt, GError **error, const char *doing);
/* Runs SQL text that returns no rows (cached like any statement). */
gboolean  qb_store_exec_sql    (QbStore *store, const char *sql, GError **error);
gboolean  qb_store_begin       (QbStore *store, GError **error);
gboolean  qb_store_commit      (QbStore *store, GError **error);
void      qb_store_rollback    (QbStore *store);
gboolean  qb_store_begin_read  (QbStore *store, GError **error);
void      qb_store_end_read    (QbStore *store);
void      qb_bind_text         (QbStmt *stmt, int index, const char *text);   /* NULL: NULL */
double    qb_column_double     (QbStmt *stmt, int index);                     /* NULL: NAN */
char     *qb_column_strdup     (QbStmt *stmt, int index);                     /* NULL: NULL */
/* Sets NOT_FOUND ("no <what> with id <id>") and returns FALSE. */
gboolean  qb_store_not_found   (QbStore *store, GError **error, const char *what, gint64 id);
/* Runs a one-row UPDATE or DELETE of an experiment; NOT_FOUND when no row matched. */
gboolean  qb_store_update_experiment (QbStore *store, QbStmt *stmt, gint64 id, GError **error,
                                      const char *doing);
gboolean  qb_store_experiment_exists (QbStore *store, gint64 id, GError **error);

/* qb-store-owner.c — the process that runs an experiment. */
typedef struct {
  gint    pid;
  char   *host;
  char   *boot;
  gint64  start;    /* clock ticks since boot; -1: unknown */
} QbStoreOwner;

void      qb_store_owner_self  (QbStoreOwner *owner);
/* Only a process on this host can be checked; one elsewhere is taken to be alive. */
gboolean  qb_store_owner_alive (const QbStoreOwner *owner, const QbStoreOwner *self);
void      qb_store_owner_clear (QbStoreOwner *owner);

/* qb-store-query.c — reads inside the caller's lock (and transaction). */
GPtrArray *qb_store_get_tensors_locked (QbStore *store, gint64 experiment_id, GError **error);
gboolean   qb_store_load_tensor_data_locked (QbStore *store, QbStoredTensor *t, GError **error);
QbExperiment *qb_store_get_experiment_locked (QbStore *store, gint64 id, GError **error);
GPtrArray *qb_store_list_evaluations_locked (QbStore *store, gint64 experiment_id, GError **error);

/* qb-store-write.c — writes inside the caller's transaction. */
gint64    qb_store_add_model_locked (QbStore *store, const QbModelRecord *model,
                                     gboolean update_location, GError **error);
gint64    qb_store_add_calibration_set_locked (QbStore *store, const QbCalibrationSet *set,
                                               GError **error);
gint64    qb_store_find_tag_locked  (QbStore *store, const char *name, gboolean create,
                                     GError **error);
gboolean  qb_tag_is_valid      (const char *tag);
/* INVALID unless every tag (trimmed) is valid. */
gboolean  qb_store_check_tags  (const char * const *tags, GError **error);
/* Adds the tags, which have passed qb_store_check_tags. */
gboolean  qb_store_tag_locked  (QbStore *store, gint64 id, const char * const *tags,
                                GError **error);
gboolean  qb_store_write_tensor_locked (QbStore *store, gint64 experiment_id,
                                        const QbStoredTensor *t, GError **error);
gboolean  qb_store_write_evaluation_locked (QbStore *store, gint64 experiment_id,
                                            const QbEvaluation *ev, gint64 *id,
                                            GError **error);
/* Sets an experiment's count of stored tensors from its rows. */
gboolean  qb_store_count_tensors_locked (QbStore *store, gint64 experiment_id, GError **error);
/* Ends a running experiment with its totals; STATE when it is not running. */
gboolean  qb_store_finish_locked (QbStore *store, gint64 id, QbExperimentStatus status,
                                  double seconds, gint64 finished, const char *error_message,
                                  GError **error);

/* qb-store-schema.c */
/* Checks an existing file without writing to it; *version is its schema
 * version (0 for a new or empty file). */
gboolean  qb_store_schema_check    (const char *path, int *version, GError **error);
/* Opens path read-only (never creating it).  A WAL database in a folder
 * this process cannot write (a read-only mount) cannot get its -shm file:
 * it is then opened immutable — nothing can be writing it either. */
int       qb_store_schema_open_readonly (const char *path, sqlite3 **db);
/* The error for a failed read: "damaged" only when SQLite says the file
 * is (CORRUPT, NOTADB); otherwise the real cause (read-only, full, I/O). */
gboolean  qb_store_schema_read_failed (sqlite3 *db, const char *path, const char *detail,
                                       GError **error);
/* Brings the database to `target`, one transaction per version. */
gboolean  qb_store_schema_migrate  (sqlite3 *db, const char *path, int target, GError **error);

/* An expert's metrics as expert_result stores them, in one order for its
 * columns (QB_EXPERT_METRIC_COLUMNS), the JSON export's keys and the
 * fields of QbTensorMetrics.  Schema 9 added mse … outlier_share, schema
 * 10 the moments (w_mean, w_std, kurtosis). */
#define QB_EXPERT_METRIC_COLUMNS \
  "sqnr_db, rmse_rel, mse, cosine, max_abs_err, wmse, out_rel_err, w_min, w_max, outlier_share, " \
  "w_mean, w_std, kurtosis"
#define QB_N_EXPERT_METRICS 13
typedef struct {
  const char *key;      /* in the JSON export */
  gsize       offset;   /* of its double in QbTensorMetrics */
} QbExpertMetric;
extern const QbExpertMetric qb_expert_metrics[QB_N_EXPERT_METRICS];
/* The double of metric i in m. */
#define QB_EXPERT_METRIC(m, i) ((double *) ((char *) (m) + qb_expert_metrics[i].offset))

/* qb-store-blob.c — the compact BLOB encodings (documented there). */
#define QB_STORE_MAX_BINS     (1u << 20)
#define QB_STORE_MAX_CHANNELS (1u << 24)
#define QB_STORE_MAX_EXPERTS  (1u << 16)
void          qb_histogram_encode      (const QbHistogram *h, GByteArray *out);
QbHistogram  *qb_histogram_decode      (const guint8 *data, gsize len, GError **error);
void          qb_channel_ranges_encode (guint n, const float *min, const float *max,
                                        GByteArray *out);
gboolean      qb_channel_ranges_decode (const guint8 *data, gsize len, guint *n,
                                        float **min, float **max, GError **error);

G_END_DECLS
