/* SPDX-License-Identifier: MIT */
/* qb-evaluator.h — perplexity and KL divergence of a saved experiment.
 *
 * On a worker thread: the experiment's plan is run again with the tensors'
 * bytes kept in memory, the LLaMA forward pass takes exactly those bytes,
 * and the text is evaluated with llama.cpp's protocol (optionally against
 * the float model, whose log-probabilities are cached).  The result is
 * stored with the experiment.  Progress reaches the main loop at most ten
 * times a second; Cancel stops within one tensor or one layer.
 */
#pragma once

#include <gio/gio.h>

#include "qb-model.h"
#include "qb-store.h"

G_BEGIN_DECLS

typedef enum {
  QB_EVALUATOR_READY,
  QB_EVALUATOR_RUNNING,
  QB_EVALUATOR_DONE,
  QB_EVALUATOR_CANCELLED,
  QB_EVALUATOR_FAILED,
} QbEvaluatorStatus;

typedef struct {
  const char *text_path;    /* UTF-8 text */
  guint       n_ctx;        /* 0: 512, or the model's context if shorter */
  guint       n_chunks;     /* 0: all */
  gboolean    kld;          /* against the float model */
  guint       n_threads;    /* 0: one per core */
} QbEvaluatorOptions;

#define QB_TYPE_EVALUATOR (qb_evaluator_get_type ())
G_DECLARE_FINAL_TYPE (QbEvaluator, qb_evaluator, QB, EVALUATOR, GObject)

/* model must be the experiment's model. */
QbEvaluator        *qb_evaluator_new           (QbStore                  *store,
                                                QbModel                  *model,
                                                gint64                    experiment_id,
                                                const QbEvaluatorOptions *options);
void                qb_evaluator_start         (QbEvaluator              *self);
void                qb_evaluator_cancel        (QbEvaluator              *self);
QbEvaluatorStatus   qb_evaluator_get_status    (QbEvaluator              *self);
gboolean            qb_evaluator_is_running    (QbEvaluator              *self);
gint64              qb_evaluator_get_experiment_id (QbEvaluator          *self);
/* Progress: a line for the user ("quantizing 12 of 48 tensors",
 * "chunk 3 of 10 · PPL 12.41") and the share of the current stage. */
const char         *qb_evaluator_get_text      (QbEvaluator              *self);
double              qb_evaluator_get_fraction  (QbEvaluator              *self);
const GError       *qb_evaluator_get_error     (QbEvaluator              *self);
/* After DONE: what was stored (NULL before). */
const QbEvaluation *qb_evaluator_get_evaluation (QbEvaluator             *self);

G_END_DECLS
