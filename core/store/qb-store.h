/* SPDX-License-Identifier: MIT */
/* qb-store.h — the experiment store: every run kept in SQLite.
 *
 * One SQLite file per user by default (qb_store_default_path), in WAL mode
 * so that readers never wait for a writer.  Every query lives in core/ and
 * goes through prepared statements cached per connection; callers see
 * records (qb-experiment.h), never SQL.
 *
 * Threads.  A QbStore is one SQLite connection.  Its functions may be
 * called from any thread; calls on one QbStore are serialized by its own
 * lock.  For work in parallel — a run writing its tensors on a worker
 * thread while the UI lists experiments — give each thread its own
 * connection with qb_store_open_connection (): in WAL mode a reader sees
 * the last committed state and never waits, and writers queue behind a
 * busy timeout.  Each write function is one transaction; none is held
 * open between calls.
 *
 * Opening checks the file before anything is written: a file that is not
 * a SQLite database, a corrupt database, a SQLite database of another
 * program, or one written by a newer Quantbench is refused with a clear
 * error and left byte for byte as it was.  An older schema is migrated
 * forward, one transaction per version.
 */
#pragma once

#include <gio/gio.h>

#include "qb-experiment.h"

G_BEGIN_DECLS

#define QB_STORE_ERROR (qb_store_error_quark ())
GQuark qb_store_error_quark (void);

typedef enum {
  QB_STORE_ERROR_NOT_DATABASE,   /* not a SQLite file, or another program's database */
  QB_STORE_ERROR_CORRUPT,        /* a damaged SQLite file, or a damaged stored value */
  QB_STORE_ERROR_NEWER,          /* written by a newer Quantbench */
  QB_STORE_ERROR_NOT_FOUND,      /* no such experiment, model, ... */
  QB_STORE_ERROR_INVALID,        /* bad input: an import file, an empty name, ... */
  QB_STORE_ERROR_STATE,          /* e.g. adding tensors to a finished experiment */
  QB_STORE_ERROR_FAILED,         /* SQLite or the file system failed */
} QbStoreError;

/* The schema this build reads and writes (PRAGMA user_version). */
#define QB_STORE_SCHEMA_VERSION 10

typedef struct _QbStore QbStore;

/* $XDG_DATA_HOME/quantbench/experiments.db (transfer full) */
char     *qb_store_default_path     (void);
/* Opens (creating it and its folder if needed) the database at path, or
 * the default one when path is NULL; checks, migrates, and marks
 * experiments whose process died as interrupted. (transfer full) */
QbStore  *qb_store_open             (const char   *path,
                                     GError      **error);
/* For commands that only read (list, show, compare, export): never
 * creates a file (NOT_FOUND when there is none), never writes (works in a
 * read-only folder and on a full disk); an older schema is migrated first
 * (qb_store_open) when the folder allows it. (transfer full) */
QbStore  *qb_store_open_readonly    (const char   *path,
                                     GError      **error);
/* Another connection to the same database, for another thread; skips the
 * checks the first open made. (transfer full) */
QbStore  *qb_store_open_connection  (QbStore      *store,
                                     GError      **error);
/* A store is shared by reference: the window, its pages and the tasks
 * that read or write hold one each, so the connection closes with the
 * last, never under a worker thread.  (transfer full) */
QbStore  *qb_store_ref              (QbStore      *store);
void      qb_store_unref            (QbStore      *store);
const char *qb_store_get_path       (QbStore      *store);
/* Marks `running` experiments whose owning process is gone (same host)
 * as interrupted, with totals over what they stored.  Done by
 * qb_store_open; n_marked may be NULL. */
gboolean  qb_store_recover_interrupted (QbStore   *store,
                                        guint     *n_marked,
                                        GError   **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbStore, qb_store_unref)

/* -- models and calibration sets ---------------------------------------- */

/* Stores the model (matched by fingerprint; path and size are updated to
 * the latest) and sets *id. */
gboolean          qb_store_add_model            (QbStore  *store,
                                                 const QbModelRecord *model,
                                                 gint64   *id,
                                                 GError  **error);
/* (transfer full) */
QbModelRecord    *qb_store_get_model            (QbStore  *store,
                                                 gint64    id,
                                                 GError  **error);
/* Of QbModelRecord, most recently seen first. (transfer full) */
GPtrArray        *qb_store_list_models          (QbStore  *store,
                                                 GError  **error);
/* Resolves what a user typed: an id, a fingerprint prefix (6+ hex digits),
 * a model name or a path.  0 and an error when none or several match. */
gint64            qb_store_find_model           (QbStore    *store,
                                                 const char *spec,
                                                 GError    **error);

/* Stores a calibration set, or finds the one with the same hash. */
gboolean          qb_store_add_calibration_set  (QbStore  *store,
                                                 const QbCalibrationSet *set,
                                                 gint64   *id,
                                                 GError  **error);
/* (transfer full) */
QbCalibrationSet *qb_store_get_calibration_set  (QbStore  *store,
                                                 gint64    id,
                                                 GError  **error);
GPtrArray        *qb_store_list_calibration_sets (QbStore *store,
                                                  GError **error);
/* Links an experiment to a calibration set (0: unlinks). */
gboolean          qb_store_set_calibration_set  (QbStore  *store,
                                                 gint64    experiment_id,
                                                 gint64    calibration_set_id,
                                                 GError  **error);

/* -- writing a run, as it proceeds ---------------------------------------- */

/* Stores the model if new and starts a `running` experiment owned by this
 * process.  Returns its id, 0 on error. */
gint64    qb_store_begin_experiment   (QbStore                *store,
                                       const QbModelRecord    *model,
                                       const QbExperimentSpec *spec,
                                       GError                **error);
/* Stores one tensor's result, histograms and channel ranges in one
 * transaction (a tensor stored again replaces the earlier row).
 * position is the tensor's index in the model; original_bytes its size
 * before quantization (0 when unknown). */
gboolean  qb_store_add_tensor_result  (QbStore                *store,
                                       gint64                  experiment_id,
                                       guint                   position,
                                       guint64                 original_bytes,
                                       const QbTensorResult   *result,
                                       GError                **error);
/* Ends a running experiment: status (done, cancelled or failed), the
 * run's wall time and, for failures, the message.  Totals are computed
 * from the stored tensors. */
gboolean  qb_store_finish_experiment  (QbStore                *store,
                                       gint64                  experiment_id,
                                       QbExperimentStatus      status,
                                       double                  seconds,
                                       const char             *error_message,
                                       GError                **error);
/* Attaches an evaluation; one with the same text hash, context and chunks
 * is replaced.  *id (may be NULL) receives its id. */
gboolean  qb_store_set_evaluation     (QbStore                *store,
                                       gint64                  experiment_id,
                                       const QbEvaluation     *evaluation,
                                       gint64                 *id,
                                       GError                **error);

/* -- reading ------------------------------------------------------------- */

typedef enum {
  QB_SORT_CREATED,
  QB_SORT_NAME,
  QB_SORT_MODEL,
  QB_SORT_STATUS,
  QB_SORT_TENSORS,
  QB_SORT_SIZE,
  QB_SORT_BPW,
  QB_SORT_COMPRESSION,
  QB_SORT_SECONDS,
  QB_SORT_SQNR,
  QB_SORT_RMSE_REL,
  QB_SORT_COSINE_MIN,
  QB_SORT_MAX_ABS_ERR,
  QB_SORT_OUT_REL_ERR,
  QB_SORT_PERPLEXITY,
  QB_SORT_KLD_MEAN,
  QB_SORT_ID,
  QB_SORT_N
} QbExperimentSort;

const char *qb_experiment_sort_name  (QbExperimentSort  sort);   /* "created", "bpw", ... */
gboolean    qb_experiment_sort_parse (const char       *name,
                                      QbExperimentSort *sort);

typedef struct {
  gint64            model_id;     /* 0: every model */
  const char       *tag;          /* exact tag name; NULL: any */
  const char       *text;         /* substring of name, notes, model name or a tag; NULL: any */
  int               status;       /* a QbExperimentStatus; -1: any */
  QbExperimentSort  sort;
  gboolean          descending;
  guint             limit;        /* 0: no limit */
  guint             offset;
} QbExperimentQuery;

/* Every experiment, newest first. */
void        qb_experiment_query_init  (QbExperimentQuery *query);

/* Of QbExperiment, without plans; missing values (NAN) sort last. (transfer full) */
GPtrArray  *qb_store_list_experiments (QbStore                 *store,
                                       const QbExperimentQuery *query,
                                       GError                 **error);
gboolean    qb_store_count_experiments (QbStore                 *store,
                                        const QbExperimentQuery *query,
                                        guint                   *count,
                                        GError                 **error);
/* One experiment with its plan, tags and latest evaluation. (transfer full) */
QbExperiment *qb_store_get_experiment (QbStore  *store,
                                       gint64    id,
                                       GError  **error);
/* Every evaluation of an experiment with per-chunk results, newest first. (transfer full) */
GPtrArray  *qb_store_list_evaluations (QbStore  *store,
                                       gint64    experiment_id,
                                       GError  **error);
/* Of QbStoredTensor in model order, without histograms (fast). (transfer full) */
GPtrArray  *qb_store_get_tensors      (QbStore  *store,
                                       gint64    experiment_id,
                                       GError  **error);
/* Loads a stored tensor's histograms and channel ranges into t->result. */
gboolean    qb_store_load_tensor_data (QbStore        *store,
                                       QbStoredTensor *t,
                                       GError        **error);
/* Every tag in use, sorted. (transfer full) */
GStrv       qb_store_list_tags        (QbStore  *store,
                                       GError  **error);

/* N experiments tensor by tensor. */
typedef struct {
  char            *tensor_name;
  guint            position;
  QbStoredTensor **cells;       /* one per experiment; NULL where it lacks the tensor */
  gboolean         differs;     /* the experiments hold it in different formats */
} QbCompareRow;

typedef struct {
  guint          n_experiments;
  QbExperiment **experiments;
  guint          n_rows;
  QbCompareRow  *rows;          /* in model order */
} QbComparison;

/* (transfer full) */
QbComparison *qb_store_compare    (QbStore       *store,
                                   const gint64  *ids,
                                   guint          n,
                                   GError       **error);
void          qb_comparison_free  (QbComparison  *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbComparison, qb_comparison_free)

/* The finished (`done`) experiments of a model (0: all models) as points
 * of x against the metric, with on_front set; experiments without the
 * metric are left out.  A GArray of QbParetoPoint sorted by x. (transfer full) */
GArray       *qb_store_pareto     (QbStore       *store,
                                   gint64         model_id,
                                   QbParetoX      x,
                                   QbMetric       metric,
                                   GError       **error);

/* -- editing --------------------------------------------------------------- */

gboolean  qb_store_rename_experiment  (QbStore *store, gint64 id, const char *name, GError **error);
gboolean  qb_store_set_notes          (QbStore *store, gint64 id, const char *notes, GError **error);
/* Tags are trimmed; empty tags and control characters are refused. */
gboolean  qb_store_add_tags           (QbStore *store, gint64 id, const char * const *tags, GError **error);
gboolean  qb_store_remove_tags        (QbStore *store, gint64 id, const char * const *tags, GError **error);
/* Replaces every tag of the experiment, in one transaction. */
gboolean  qb_store_set_tags           (QbStore *store, gint64 id, const char * const *tags, GError **error);
/* Deletes the experiment with its tensors, histograms, evaluations and tags. */
gboolean  qb_store_delete_experiment  (QbStore *store, gint64 id, GError **error);

/* -- export and import (qb-store-export.c) ---------------------------------- */

typedef enum {
  QB_STORE_EXPORT_JSON,         /* lossless: everything, histograms and the model record included */
  QB_STORE_EXPORT_CSV,          /* one row per experiment */
  QB_STORE_EXPORT_CSV_TENSORS,  /* one row per tensor of each experiment */
} QbStoreExportFormat;

/* Writes the experiments to out, one at a time (memory holds one). */
gboolean  qb_store_export          (QbStore             *store,
                                    const gint64        *ids,
                                    guint                n,
                                    QbStoreExportFormat  format,
                                    GOutputStream       *out,
                                    GCancellable        *cancellable,
                                    GError             **error);
/* The same into a file, written to a temporary name, synced and renamed. */
gboolean  qb_store_export_to_file  (QbStore             *store,
                                    const gint64        *ids,
                                    guint                n,
                                    QbStoreExportFormat  format,
                                    const char          *path,
                                    GCancellable        *cancellable,
                                    GError             **error);
/* Imports the experiments of a JSON export in one transaction.  They get
 * new ids; models are matched by fingerprint and calibration sets by
 * hash; an experiment already present (same uuid) is not imported again,
 * only its tags are merged.  new_ids (may be NULL) receives the ids of
 * the experiments imported (a GArray of gint64), n_skipped those already
 * present. */
gboolean  qb_store_import_json     (QbStore             *store,
                                    const char          *json,
                                    gssize               length,
                                    const char          *origin,
                                    GArray             **new_ids,
                                    guint               *n_skipped,
                                    GError             **error);
gboolean  qb_store_import_file     (QbStore             *store,
                                    const char          *path,
                                    GArray             **new_ids,
                                    guint               *n_skipped,
                                    GError             **error);
/* Summaries (no plans, tensors or histograms) as a JSON array. (transfer full) */
char     *qb_experiments_to_json   (GPtrArray           *experiments);

G_END_DECLS
