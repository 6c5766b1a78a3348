/* SPDX-License-Identifier: MIT */
/* qb-cli-plan.h — plan options shared by `quantize`, `plan` and `demo`. */
#pragma once

#include <glib.h>

#include "qb-model.h"
#include "qb-plan.h"

G_BEGIN_DECLS

typedef struct {
  char     *plan_file;
  char     *preset;
  char     *default_format;
  char     *method;
  char    **rules;
  gboolean  quantize_1d;
  gboolean  list_presets;
  /* Automatic plans: at most one target; costs from a study or proxies. */
  char     *target_bpw;
  char     *target_size;
  char     *target_kld;
  gint64    study;
  char     *candidates;
  char    **allow;            /* ROLE=FMT,FMT...: the formats a role may take */
  char     *embedding_floor;  /* bits per weight token_embd and output stay at or above */
  gboolean  ggml_only;        /* set by quantize -o X.gguf: the default ladder keeps only ggml types */
  const char *study_db;   /* borrowed: the command's --db, where --study is read; NULL: the default */
} QbCliPlanOptions;

void      qb_cli_plan_add_entries   (GOptionContext         *context,
                                     QbCliPlanOptions       *options);
void      qb_cli_plan_options_clear (QbCliPlanOptions       *options);
/* The plan the options describe: --plan's file (or a new plan), then the
 * preset, default, method, 1-D choice and rules on top. */
QbPlan   *qb_cli_plan_build         (const QbCliPlanOptions *options,
                                     GError                **error);
void      qb_cli_print_presets      (void);
/* TRUE when the options ask for an automatic plan (--target-*). */
gboolean  qb_cli_plan_has_target   (const QbCliPlanOptions *options);
/* With a --target-* option: chooses a format per tensor of the model
 * under that budget (from --study's costs, else from weight proxies,
 * saying so) and writes the choice into the plan; prints the target, the
 * size, bits per weight and predicted KLD (on stderr when to_stderr).
 * Without one: does nothing, TRUE. */
gboolean  qb_cli_plan_apply_target (const QbCliPlanOptions *options,
                                    QbModel                *model,
                                    QbPlan                 *plan,
                                    gboolean                to_stderr,
                                    GError                **error);

typedef struct _QbActivationStats QbActivationStats;   /* qb-activation-stats.h */

typedef struct {
  char     *imatrix;
  QbActivationStats *stats;   /* calibration statistics (importance, XᵀX), or NULL */
  gboolean  stats_output;     /* with stats: importance for output.weight too */
  int       threads;      /* 0: all cores */
  char     *out;          /* .gguf or .safetensors, or NULL */
  gboolean  json;
  gboolean  no_metrics;
  gboolean  save;         /* save the run as an experiment */
  char     *db;           /* that experiment database; NULL: the default */
  char     *name;         /* the experiment's name; NULL: one from the plan */
} QbCliQuantizeOptions;

/* Runs the plan and prints the per-tensor table and totals (or JSON). */
int       qb_cli_quantize_and_print (QbModel                    *model,
                                     QbPlan                     *plan,
                                     const QbCliQuantizeOptions *options);

void      qb_cli_print_totals       (const QbPlanResolution *res);
/* The same with the run's count of fallbacks (the plan's and the ones the
 * run itself made, such as expert tensors rounded without XᵀX per expert). */
void      qb_cli_print_run_totals   (const QbPlanResolution *res,
                                     guint                   n_fallbacks);
void      qb_cli_print_fallbacks    (QbModel                *model,
                                     const QbPlanResolution *res);

G_END_DECLS
