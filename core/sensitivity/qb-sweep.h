/* SPDX-License-Identifier: MIT */
/* qb-sweep.h — automatic plans for a list of budgets, measured end to end
 * beside uniform formats and llama.cpp presets.
 *
 * From a stored study: for each budget (bits per weight) the allocator's
 * plan over the study's cost table; then, for comparison, each candidate
 * format of the study applied uniformly (rows it does not fit take the
 * registry's fallback, as any plan does) and each llama.cpp preset.  Every
 * plan is quantized with the study's method (calibrated methods with the
 * statistics given), stored as an experiment tagged "study:ID" and "sweep",
 * and evaluated on the study's evaluation text and chunks: PPL, mean KLD
 * against the float model, top-1 agreement.  Its predicted KLD is the sum
 * of its tensors' costs (the additive model); the sweep reports how well
 * prediction ranks measurement (Spearman), over the plans and over
 * single-tensor swaps of one automatic plan.
 *
 * qb_sweep_run blocks: call it from a worker thread.
 */
#pragma once

#include <gio/gio.h>

#include "qb-activation-stats.h"
#include "qb-model.h"
#include "qb-sensitivity.h"
#include "qb-store.h"
#include "qb-tokenizer.h"

G_BEGIN_DECLS

typedef enum {
  QB_SWEEP_AUTO,      /* the allocator's plan for a budget */
  QB_SWEEP_UNIFORM,   /* one candidate format everywhere */
  QB_SWEEP_PRESET,    /* a llama.cpp preset */
  QB_SWEEP_SWAP,      /* an automatic plan with one tensor's format changed */
  QB_SWEEP_REFINED,   /* the middle budget's plan after measured refinement */
} QbSweepKind;

typedef struct {
  QbSweepKind  kind;
  char        *label;          /* "auto 4.50", "uniform Q4_0", "preset Q4_K_M", "swap …",
                                * "refined …" */
  double       target_bpw;     /* auto and swaps: the budget; NAN otherwise */
  double       bpw;            /* of the resolved plan, every tensor counted */
  guint64      bytes;
  double       predicted_kld;  /* additive, from the study */
  guint        n_estimated;    /* tensors in a format the study has no cost for (a fallback):
                                * costed as the candidate nearest in bits */
  double       kld, kld_err;   /* measured */
  double       ppl, top1;
  gint64       experiment_id;
  guint        n_tried;        /* refined: swap pairs measured */
  guint        n_kept;         /* refined: of those, kept (the measured KLD fell) */
} QbSweepPoint;

typedef struct {
  const double       *budgets;      /* bits per weight */
  guint               n_budgets;
  gboolean            uniform;      /* add the uniform formats of the study's ladder */
  gboolean            presets;      /* add the llama.cpp presets */
  double              nearby;       /* keep uniform/presets within this many bpw of the
                                     * budgets' range; 0: all */
  guint               n_swaps;      /* single-tensor swaps of the middle budget's plan */
  double              refine_seconds; /* refine the middle budget's plan with measured
                                     * budget-neutral swaps for this long; 0: none */
  QbActivationStats  *stats;        /* for calibrated methods; NULL otherwise */
  const char         *eval_text;    /* the study's evaluation text (checked by hash) */
  const char         *cache_dir;    /* the float log-probabilities' cache; NULL: default */
  guint               n_threads;
} QbSweepOptions;

typedef struct {
  guint        done;
  guint        total;
  const char  *label;
} QbSweepProgress;

typedef void (*QbSweepProgressFunc) (const QbSweepProgress *progress, gpointer user_data);

void          qb_sweep_options_init (QbSweepOptions *opts);
void          qb_sweep_point_free   (QbSweepPoint   *point);

/* The points (QbSweepPoint), budgets first, then the refined plan, uniform,
 * presets and swaps, each measured and stored.
 *
 * Refinement starts from the middle budget's automatic plan and tries
 * pairs (one tensor a candidate up in bytes, another one down) that keep
 * the plan within the budget, least predicted harm first; each pair is
 * measured on the evaluation chunks and kept when the measured KLD falls.
 * The trials are not stored; the final plan is, with its predicted and
 * measured KLD. */
GPtrArray    *qb_sweep_run          (QbModel               *model,
                                     QbTokenizer           *tok,
                                     QbStore               *store,
                                     gint64                 study_id,
                                     const QbSweepOptions  *opts,
                                     QbSweepProgressFunc    progress,
                                     gpointer               progress_data,
                                     GCancellable          *cancellable,
                                     GError               **error);

/* Spearman of predicted vs measured KLD over the points of these kinds
 * (a mask of 1 << QbSweepKind); NAN with fewer than 3. */
double        qb_sweep_spearman     (GPtrArray             *points,
                                     guint                  kinds);

G_END_DECLS
