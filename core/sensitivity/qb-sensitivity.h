/* SPDX-License-Identifier: MIT */
/* qb-sensitivity.h — a sensitivity study: what quantizing each tensor
 * alone, in each candidate format, costs the whole model.
 *
 * For every quantizable tensor (the matrices the LLaMA runtime multiplies:
 * token embedding, attention and FFN projections, output) and every
 * candidate format that fits its rows (one that does not fit is recorded
 * as skipped, never replaced by another), the tensor is quantized with the
 * study's method and measured:
 *  - instant proxies: weight MSE, importance-weighted MSE and the relative
 *    output error ‖(W−Ŵ)X‖²/‖WX‖² through the calibration set's XᵀX;
 *  - end to end, for the candidates chosen for measurement: the mean KL
 *    divergence between the float model and the model with that one tensor
 *    quantized, over the scored positions of the evaluation chunks (the
 *    llama-perplexity protocol: chunks of n_ctx with BOS first, positions
 *    n_ctx/2 .. n_ctx-2), computed exactly in float.  Only the layers from
 *    the tensor's own onward are run again: the float model's residual
 *    stream entering every layer is kept from one float pass
 *    (qb_llama_forward_keep / qb_llama_forward_from).
 * Candidates not measured get kld ≈ S_t · proxy^α: α is fitted over every
 * tensor with two or more measurements (least squares in logs, each
 * tensor with its own intercept), S_t from the tensor's own measurements
 * (the median S of the others when it has none).
 *
 * Evaluation tokens and calibration chunks must not overlap: when the
 * calibration set's first text is the evaluation text, every calibration
 * chunk must start after the evaluated tokens (use skip_chunks), and a
 * later calibration text equal to the evaluation text is refused.
 *
 * With per_expert, each expert of a 3-D expert tensor is also measured
 * alone for the candidates measured end to end (its rows in the candidate,
 * the other experts float): one more KLD pass per expert, stored as
 * per-expert rows (study->expert_costs); the cost table stays per tensor.
 *
 * Everything goes to the store as it is measured, one cost row per
 * transaction; cancelling (at any moment) leaves a `cancelled` study with
 * what it measured, and resuming it (resume_id) measures only what is
 * missing, after checking that the model, method, candidates, calibration
 * set and evaluation tokens are the same.
 *
 * qb_sensitivity_run blocks: call it from a worker thread.  Memory: the
 * float model's residual streams for the evaluation tokens ((n_layer + 1)
 * × tokens × n_embd floats), its log-probabilities of the scored positions
 * (positions × n_vocab floats), one quantized tensor, and the runtime's
 * working memory.
 */
#pragma once

#include <gio/gio.h>

#include "qb-activation-stats.h"
#include "qb-format.h"
#include "qb-model.h"
#include "qb-store.h"
#include "qb-study-record.h"
#include "qb-tokenizer.h"

G_BEGIN_DECLS

#define QB_SENSITIVITY_ERROR (qb_sensitivity_error_quark ())
GQuark qb_sensitivity_error_quark (void);

typedef enum {
  QB_SENSITIVITY_ERROR_INVALID,    /* bad options, unknown method, no quantizable tensor */
  QB_SENSITIVITY_ERROR_OVERLAP,    /* evaluation tokens inside the calibration chunks */
  QB_SENSITIVITY_ERROR_MISMATCH,   /* resuming with other inputs than the study had */
} QbSensitivityError;

/* Evaluation chunks by default: enough positions for a stable mean on
 * small models, few enough to keep the study quick on large ones. */
#define QB_SENSITIVITY_DEFAULT_CHUNKS 8

typedef struct {
  const QbFormat    **candidates;    /* the ladder, in order */
  guint               n_candidates;
  const char         *method;        /* NULL: "rtn" */
  GHashTable         *method_options;/* char* -> char*, may be NULL */
  const char         *eval_text;     /* UTF-8 text file */
  guint               eval_n_ctx;    /* 0: the model's context, at most 512 */
  guint               eval_n_chunks; /* 0: QB_SENSITIVITY_DEFAULT_CHUNKS (fewer if the text is short) */
  QbActivationStats  *stats;         /* calibration statistics (importance, XᵀX), or NULL */
  gint64              calibration_set_id;  /* the stats' set in the store, 0: none */
  guint               measure;       /* candidates measured end to end per tensor; 0: all */
  guint               n_threads;     /* 0: all cores */
  gint64              resume_id;     /* > 0: resume this study */
  /* Mixtures of experts: also measure each expert of a 3-D expert tensor
   * alone (that expert's rows in the candidate, the other experts float),
   * for the candidates measured end to end.  Off by default: it multiplies
   * those tensors' KLD passes by their number of experts. */
  gboolean            per_expert;
} QbSensitivityOptions;

typedef struct {
  const char *stage;        /* "float pass", "studying", "fitting" */
  guint       done;         /* (tensor, candidate) pairs done */
  guint       total;
  guint       measured;     /* of those, measured end to end */
  const char *tensor;       /* the current tensor, or NULL */
  double      fraction;     /* 0..1 */
} QbSensitivityProgress;

typedef void (*QbSensitivityProgressFunc) (const QbSensitivityProgress *progress,
                                           gpointer                     user_data);

void      qb_sensitivity_options_init (QbSensitivityOptions *opts);

/* The calibration statistics a study uses: the importance matrix (output
 * included) and, with gram, XᵀX of every linear layer's input (for the
 * output-error proxy and for methods such as GPTQ).  Measured on the
 * model's stored weights over the texts; blocks. */
QbActivationStats *qb_sensitivity_compute_stats (QbModel                    *model,
                                                 const char * const         *paths,
                                                 const QbCalibrationOptions *calib_opts,
                                                 gboolean                    gram,
                                                 guint                       n_threads,
                                                 QbStatsProgressFunc         progress,
                                                 gpointer                    progress_data,
                                                 GCancellable               *cancellable,
                                                 GError                    **error);

/* Runs (or resumes) a study of model and stores it; *study_id receives its
 * id as soon as it exists (also when the run fails or is cancelled: the
 * study then keeps what it measured). */
gboolean  qb_sensitivity_run          (QbModel                   *model,
                                       QbTokenizer               *tok,
                                       QbStore                   *store,
                                       const QbSensitivityOptions *opts,
                                       QbSensitivityProgressFunc  progress,
                                       gpointer                   progress_data,
                                       GCancellable              *cancellable,
                                       gint64                    *study_id,
                                       GError                   **error);

/* -- reading a study ---------------------------------------------------- */

/* One tensor of a study with every candidate's cost (measured, or from
 * the fit). */
typedef struct {
  const QbStudyCost *cost;      /* the stored row (owned by the study) */
  double             predicted; /* S_t · proxy^α; NAN when skipped */
  double             value;     /* the cost used: measured kld when measured, else predicted */
  double             proxy;     /* the proxy the fit used */
} QbSensitivityEntry;

typedef struct {
  QbStudyRecord      *record;
  GPtrArray          *costs;        /* of QbStudyCost, by position then rung */
  guint               n_tensors;
  guint               n_candidates; /* rungs */
  char              **candidates;   /* n_candidates format names */
  guint              *positions;    /* n_tensors model indices */
  QbSensitivityEntry *entries;      /* n_tensors × n_candidates, row-major; cost NULL: not studied yet */
  double              alpha;
  double              loo_spearman; /* leave-one-out, predicted vs measured; NAN with too few */
  guint               n_measured;
  /* Per-expert rows (QbStudyCost with expert ≥ 0, by position, rung,
   * expert), empty unless the study ran per expert.  Not part of the fit
   * nor of entries: the allocator's cost stays per tensor, since llama.cpp
   * stores one type per 3-D tensor. */
  GPtrArray          *expert_costs;
} QbSensitivityStudy;

/* Reads a study and fits its proxy → KLD mapping. */
QbSensitivityStudy *qb_sensitivity_study_load  (QbStore            *store,
                                                gint64              id,
                                                GError            **error);
void                qb_sensitivity_study_free  (QbSensitivityStudy *study);
const QbSensitivityEntry *qb_sensitivity_study_get (QbSensitivityStudy *study,
                                                    guint               tensor,
                                                    guint               rung);
/* Spearman's rank correlation of two series (average ranks for ties);
 * NAN for fewer than 3 pairs. */
double              qb_sensitivity_spearman    (const double       *a,
                                                const double       *b,
                                                guint               n);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbSensitivityStudy, qb_sensitivity_study_free)

G_END_DECLS
