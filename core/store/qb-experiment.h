/* SPDX-License-Identifier: MIT */
/* qb-experiment.h — the records the experiment store keeps.
 *
 * Plain structs with explicit ownership: every char * and array is owned
 * by its record and freed by its free function.  Times are Unix time in
 * microseconds (g_get_real_time ()).  A metric that was not measured is
 * NAN (stored as NULL in the database, null in exported JSON).
 */
#pragma once

#include <glib.h>

#include "qb-model.h"
#include "qb-tensor-result.h"

G_BEGIN_DECLS

typedef enum {
  QB_EXPERIMENT_RUNNING,
  QB_EXPERIMENT_DONE,
  QB_EXPERIMENT_CANCELLED,
  QB_EXPERIMENT_FAILED,
  QB_EXPERIMENT_INTERRUPTED,   /* its process died while it was running */
} QbExperimentStatus;

#define QB_EXPERIMENT_N_STATUS (QB_EXPERIMENT_INTERRUPTED + 1)

const char *qb_experiment_status_name  (QbExperimentStatus  status);   /* "running", ... */
gboolean    qb_experiment_status_parse (const char         *name,
                                        QbExperimentStatus *status);

/* -- models ------------------------------------------------------------ */

/* A model file as the store knows it; experiments of the same model (same
 * fingerprint) share one record, wherever the file lies now. */
typedef struct {
  gint64   id;            /* in this database; 0 before it is stored */
  char    *fingerprint;   /* qb_model_get_fingerprint (): hex SHA-256 of header and tensor table */
  char    *path;          /* where it was last seen */
  guint64  file_size;
  char    *name;          /* display name; may be NULL */
  char    *family;        /* "llama", ...; may be NULL */
  gint64   n_params;
  guint    n_tensors;
  char    *arch_json;     /* a JSON object of the architecture facts; "{}" when unknown */
  gint64   first_seen;
} QbModelRecord;

/* (transfer full) */
QbModelRecord *qb_model_record_new   (void);
void           qb_model_record_free  (QbModelRecord       *m);
/* The architecture facts as a JSON object. */
char          *qb_arch_info_to_json  (const QbArchInfo    *arch);
/* A record describing an open model (qb-store-model.c, the only part of
 * the store that needs QbModel's implementation). (transfer full) */
QbModelRecord *qb_model_record_new_from_model (QbModel *model);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbModelRecord, qb_model_record_free)

/* -- calibration sets (issue 7) ----------------------------------------- */

typedef struct {
  gint64    id;
  char     *name;
  char    **sources;      /* NULL-terminated paths of the text files */
  char     *hash;         /* identity: the same texts, tokenizer and chunking give the same hash */
  guint64   n_tokens;
  guint     chunk_len;    /* tokens per chunk */
  guint     n_chunks;
  guint     skip_chunks;  /* chunks left out at the start of the joined texts */
  gboolean  seeded;       /* chunks drawn at random with seed; FALSE: sequential */
  guint64   seed;
  gint64    created;
} QbCalibrationSet;

/* (transfer full) */
QbCalibrationSet *qb_calibration_set_new  (void);
QbCalibrationSet *qb_calibration_set_copy (const QbCalibrationSet *c);
void              qb_calibration_set_free (QbCalibrationSet       *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbCalibrationSet, qb_calibration_set_free)

/* -- evaluations (issue 6) ---------------------------------------------- */

/* Perplexity and KL divergence of an experiment's quantized model on one
 * text.  An experiment holds one evaluation per (text, context, chunks). */
typedef struct {
  gint64   id;
  gint64   created;
  char    *text_name;        /* file name of the text, for display */
  char    *text_hash;        /* hex SHA-256 of the text */
  guint    n_ctx;
  guint    n_chunks;
  guint64  n_tokens;         /* tokens scored */
  double   perplexity;
  double   perplexity_err;   /* standard error, as llama-perplexity prints it */
  double   base_perplexity;  /* of the float model on the same text; NAN without */
  double   kld_mean;         /* per-token KL divergence to the float model: */
  double   kld_median;
  double   kld_p90;
  double   kld_p95;
  double   kld_p99;
  double   kld_max;
  double   top1_agreement;   /* share of positions with the same top token, 0..1 */
  double   dp_mean;          /* mean Δp of the correct token (quantized − float) */
  double   dp_rms;           /* RMS of that Δp */
  double   seconds;
  char    *device;           /* what ran the forward passes: "cpu" or "opencl:N (name)"; NULL: not recorded */
  guint    n_chunk_results;  /* per-chunk results, may be 0: */
  double  *chunk_ppl;        /* n_chunk_results perplexities */
  double  *chunk_kld;        /* n_chunk_results mean KLDs (NAN without KLD) */
} QbEvaluation;

/* (transfer full) */
QbEvaluation *qb_evaluation_new        (void);   /* every measure NAN */
QbEvaluation *qb_evaluation_copy       (const QbEvaluation *e);
void          qb_evaluation_free       (QbEvaluation       *e);
/* Copies n per-chunk results into e (chunk_kld may be NULL: NAN). */
void          qb_evaluation_set_chunks (QbEvaluation       *e,
                                        guint               n,
                                        const double       *ppl,
                                        const double       *kld);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbEvaluation, qb_evaluation_free)

/* -- experiments ------------------------------------------------------- */

/* Totals over the stored tensors of an experiment, computed by the store
 * when the run ends (qb_experiment_totals_compute). */
typedef struct {
  gint64   n_params;
  guint64  original_bytes;   /* 0 when a tensor's original size is unknown */
  guint64  quantized_bytes;
  double   bpw;              /* quantized_bytes * 8 / n_params */
  double   compression;      /* original / quantized; NAN when original unknown */
  double   seconds;          /* wall time of the run */
  double   sqnr_db;          /* parameter-weighted mean over lossy tensors (+inf: all lossless) */
  double   rmse_rel;         /* parameter-weighted mean */
  double   cosine_min;
  double   max_abs_err;
  double   out_rel_err;      /* parameter-weighted mean over tensors that have it */
  guint    n_fallbacks;      /* tensors held in another format than requested */
} QbExperimentTotals;

void qb_experiment_totals_clear (QbExperimentTotals *t);   /* zero counts, NAN measures */

typedef struct {
  gint64              id;
  char               *uuid;            /* global identity: import matches on it */
  char               *name;
  gint64              model_id;
  char               *model_name;      /* the model's display name (its file name when unnamed) */
  char               *model_fingerprint;
  gint64              calibration_set_id;  /* 0: none */
  gint64              created;
  gint64              updated;         /* last tensor written */
  gint64              finished;        /* 0 while running */
  QbExperimentStatus  status;
  char               *plan_json;       /* NULL in lists: qb_store_get_experiment loads it */
  guint               threads;
  char               *backend;
  guint               n_tensors;       /* planned */
  guint               n_tensors_done;  /* stored */
  QbExperimentTotals  totals;          /* NAN / 0 until the run ends */
  QbEvaluation       *evaluation;      /* the latest, without per-chunk results; NULL: none */
  char               *notes;           /* never NULL */
  char              **tags;            /* NULL-terminated, sorted; never NULL */
  char               *error_message;   /* why it failed; NULL otherwise */
  gint                owner_pid;       /* the process that ran it */
  char               *owner_host;
} QbExperiment;

/* (transfer full) */
QbExperiment *qb_experiment_new  (void);
QbExperiment *qb_experiment_copy (const QbExperiment *e);
void          qb_experiment_free (QbExperiment       *e);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbExperiment, qb_experiment_free)

/* What qb_store_begin_experiment needs to know about a run. */
typedef struct {
  const char         *name;              /* NULL: "Run YYYY-MM-DD HH:MM" */
  const char         *plan_json;         /* qb_plan_to_json (); must be a JSON object */
  guint               threads;
  const char         *backend;           /* NULL: "cpu" */
  guint               n_tensors;         /* tensors the run will process */
  gint64              calibration_set_id;/* 0: none */
  const char         *notes;
  const char * const *tags;              /* NULL-terminated, may be NULL */
} QbExperimentSpec;

/* A tensor result as stored: the result plus where it sits in the model.
 * Histograms and channel ranges stay NULL until qb_store_load_tensor_data. */
typedef struct {
  gint64          id;
  guint           position;        /* index of the tensor in the model */
  guint64         original_bytes;  /* bytes before quantization; 0: unknown */
  QbTensorResult *result;
} QbStoredTensor;

/* (transfer full) */
QbStoredTensor *qb_stored_tensor_new  (void);
void            qb_stored_tensor_free (QbStoredTensor *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbStoredTensor, qb_stored_tensor_free)

/* Totals of a run from its tensors (seconds is left as it is). */
void qb_experiment_totals_compute (QbExperimentTotals    *totals,
                                   QbStoredTensor * const *tensors,
                                   guint                  n);

/* -- metrics for comparisons and Pareto fronts -------------------------- */

typedef enum {
  QB_METRIC_SQNR,
  QB_METRIC_RMSE_REL,
  QB_METRIC_COSINE_MIN,
  QB_METRIC_MAX_ABS_ERR,
  QB_METRIC_OUT_REL_ERR,
  QB_METRIC_PERPLEXITY,
  QB_METRIC_KLD_MEAN,
  QB_METRIC_KLD_P99,
  QB_METRIC_TOP1,
  QB_METRIC_DP_RMS,
  QB_METRIC_N
} QbMetric;

const char *qb_metric_name             (QbMetric    metric);   /* "sqnr", "ppl", ... */
const char *qb_metric_label            (QbMetric    metric);   /* "SQNR (dB)", ... */
gboolean    qb_metric_parse            (const char *name,
                                        QbMetric   *metric);
gboolean    qb_metric_higher_is_better (QbMetric    metric);
/* The experiment's value (totals or latest evaluation); NAN when absent. */
double      qb_experiment_metric       (const QbExperiment *e,
                                        QbMetric            metric);

typedef enum {
  QB_PARETO_X_BYTES,     /* quantized size */
  QB_PARETO_X_BPW,
} QbParetoX;

typedef struct {
  gint64   experiment_id;
  double   x;            /* smaller is better */
  double   y;            /* the metric */
  gboolean on_front;     /* no other point is at least as small and at least as good */
} QbParetoPoint;

/* Sets on_front for n points; sorts them by x (then best y first). */
void qb_pareto_mark (QbParetoPoint *points,
                     guint          n,
                     gboolean       higher_is_better);

G_END_DECLS
