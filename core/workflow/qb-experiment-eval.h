/* SPDX-License-Identifier: MIT */
/* qb-experiment-eval.h — evaluating a stored experiment: its plan is run
 * again on the model (calibrated again on the experiment's stored set when
 * it was calibrated — statistics from the cache when they are there), the
 * quantized bytes are evaluated (perplexity, KL divergence) and the result
 * is stored with the experiment.  `quantbench eval --experiment ID` and the
 * window's Evaluate both run this one function. */
#pragma once

#include "qb-activation-stats.h"
#include "qb-eval.h"
#include "qb-imatrix.h"
#include "qb-store.h"

G_BEGIN_DECLS

typedef struct {
  const char          *text_path;        /* the evaluation text */
  QbEvalOptions        eval;             /* context, chunks, KLD, log-probability cache */
  guint                n_threads;        /* 0: one per CPU */
  QbDequantMode        dequant;
  /* Calibration: the experiment's stored set, or these texts instead
   * (then with calib's chunking); calib's cache settings apply to both. */
  const char * const  *calib_sources;
  QbCalibrationOptions calib;
  gboolean             stats_output;     /* importance for output.weight too */
  QbImatrix           *imatrix;          /* NULL, or the importance to use instead */
  QbStatsProgressFunc  stats_progress;   /* each may be NULL; called on the calling thread */
  QbJobProgressFunc    job_progress;
  QbEvalProgressFunc   eval_progress;
  gpointer             progress_data;
} QbExperimentEvalOptions;

void qb_experiment_eval_options_init (QbExperimentEvalOptions *options);

/* Runs plan over model in memory (stats attached when not NULL, or
 * imatrix) and hands the quantized weights to llama, which evaluates them
 * from then on; *n_quantized (may be NULL) counts the tensors it took.
 * The finished job, for its resolution and timing, or NULL. (transfer full) */
QbJob *qb_quantize_for_eval (QbModel            *model,
                             QbLlama            *llama,
                             QbPlan             *plan,
                             QbActivationStats  *stats,
                             gboolean            stats_output,
                             QbImatrix          *imatrix,
                             guint               n_threads,
                             QbJobProgressFunc   progress,
                             gpointer            progress_data,
                             GCancellable       *cancellable,
                             guint              *n_quantized,
                             GError            **error);

/* What the run did, for a report. */
typedef struct {
  QbEvalResult      result;
  QbCalibrationSet *calibration;   /* the experiment's set (NULL: none) */
  gboolean          calibrated;    /* statistics were computed (or read from the cache) */
  guint             n_forward;     /* calibration forward passes (0: all cached) */
  guint             n_quantized;   /* tensors whose quantized bytes were evaluated */
  double            bpw;
  double            quantize_seconds;
  QbPlanResolution *resolution;    /* what the plan became on the model: its fallbacks (NULL before quantizing) */
} QbExperimentEvalReport;

void qb_experiment_eval_report_clear (QbExperimentEvalReport *report);

/* Evaluates experiment `id` of store on model (the file it was run on:
 * QB_EVAL_ERROR_MISMATCH otherwise) and stores the result with it.
 * Returns the stored evaluation, with its id (transfer full); report, when
 * not NULL, is filled in (clear it with qb_experiment_eval_report_clear). */
QbEvaluation *qb_experiment_evaluate (QbStore                       *store,
                                      gint64                         id,
                                      QbModel                       *model,
                                      const QbExperimentEvalOptions *options,
                                      QbExperimentEvalReport        *report,
                                      GCancellable                  *cancellable,
                                      GError                       **error);

G_END_DECLS
