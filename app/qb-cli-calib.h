/* SPDX-License-Identifier: MIT */
/* qb-cli-calib.h — calibration options shared by `quantize` and `imatrix`. */
#pragma once

#include <glib.h>

#include "qb-activation-stats.h"
#include "qb-model.h"
#include "qb-plan.h"

G_BEGIN_DECLS

typedef struct {
  char     **calib;           /* --calib FILE, repeatable */
  int        chunks;
  int        ctx;
  gint64     seed;            /* --calib-random SEED */
  gboolean   random;
  int        skip;
  gboolean   gram_all;
  double     expert_gram_max_gib;  /* --calib-expert-gram-max; 0: the default */
  gboolean   process_output;
  gboolean   no_cache;
  char      *cache_dir;
  /* Method options. */
  double     gptq_damp;
  gboolean   gptq_act_order;
  int        gptq_block;
  char     **options;         /* --option KEY=VALUE */
  const char *expect_hash;    /* rebuilding a stored set: its hash (not an option) */
} QbCliCalibOptions;

void      qb_cli_calib_add_entries   (GOptionContext     *context,
                                      QbCliCalibOptions  *options);
void      qb_cli_calib_options_clear (QbCliCalibOptions  *options);
/* Puts the method options (--gptq-*, --option) into the plan. */
gboolean  qb_cli_calib_apply_options (const QbCliCalibOptions *options,
                                      QbPlan             *plan,
                                      GError            **error);
/* Tokenizes the texts and computes the statistics the plan needs (the
 * importance matrix, and XᵀX for tensors whose method needs it; every
 * tensor's with --calib-gram-all), with a progress bar on a terminal.
 * plan may be NULL (importance only). */
QbActivationStats *qb_cli_calib_compute (QbModel                 *model,
                                         QbPlan                  *plan,
                                         const QbCliCalibOptions *options,
                                         int                      threads,
                                         gboolean                 quiet,
                                         GCancellable            *cancellable,
                                         GError                 **error);

/* Draws calibration progress on a QbCliProgress (the data). */
void      qb_cli_calib_draw_progress (const QbStatsProgress *progress,
                                      gpointer               bar);

G_END_DECLS
