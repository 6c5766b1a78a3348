/* SPDX-License-Identifier: MIT */
/* qb-cli-calib.c — calibration options and the statistics run of the
 * command line. */
#include "qb-cli-calib.h"
#include "qb-cli-progress.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "qb-calibration.h"
#include "qb-gptq.h"
#include "qb-llama.h"
#include "qb-tokenizer.h"

static gboolean
parse_seed (const char *name, const char *value, gpointer data, GError **error)
{
  QbCliCalibOptions *o = data;
  char *end;

  o->seed = g_ascii_strtoll (value, &end, 10);
  if (*value == '\0' || *end != '\0')
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--calib-random: '%s' is not a number", value);
      return FALSE;
    }
  o->random = TRUE;
  return TRUE;
}

void
qb_cli_calib_add_entries (GOptionContext *context, QbCliCalibOptions *o)
{
  GOptionEntry entries[] = {
    { "calib", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &o->calib,
      "Calibration text (repeatable): computes the importance matrix and, for GPTQ, XᵀX", "FILE" },
    { "calib-chunks", 0, 0, G_OPTION_ARG_INT, &o->chunks, "Calibration chunks (default 128, fewer if the text is short)", "N" },
    { "calib-ctx", 0, 0, G_OPTION_ARG_INT, &o->ctx, "Tokens per chunk (default 512, or the model's context if shorter)", "N" },
    { "calib-random", 0, 0, G_OPTION_ARG_CALLBACK, (gpointer) parse_seed,
      "Draw the chunks at random with this seed (default: in order)", "SEED" },
    { "calib-skip", 0, 0, G_OPTION_ARG_INT, &o->skip, "Leave out the first N chunks (e.g. kept for evaluation)", "N" },
    { "calib-expert-gram-max", 0, 0, G_OPTION_ARG_DOUBLE, &o->expert_gram_max_gib,
      "Most GiB of XᵀX per expert (GPTQ on expert tensors) to collect in all; above, the expert "
      "tensors are rounded (default 16)", "GIB" },
    { "calib-gram-all", 0, 0, G_OPTION_ARG_NONE, &o->gram_all,
      "XᵀX of every layer's input, for the exact output error of every tensor", NULL },
    { "process-output", 0, 0, G_OPTION_ARG_NONE, &o->process_output,
      "Importance for output.weight too (llama-imatrix --process-output)", NULL },
    { "calib-no-cache", 0, 0, G_OPTION_ARG_NONE, &o->no_cache, "Neither read nor write cached tokens and statistics", NULL },
    { "calib-cache-dir", 0, 0, G_OPTION_ARG_FILENAME, &o->cache_dir,
      "Cache folder (default $XDG_CACHE_HOME/quantbench/calibration)", "DIR" },
    { "gptq-damp", 0, 0, G_OPTION_ARG_DOUBLE, &o->gptq_damp, "GPTQ dampening, a fraction of the mean diagonal (default 0.01)", "F" },
    { "gptq-act-order", 0, 0, G_OPTION_ARG_NONE, &o->gptq_act_order, "GPTQ: columns in order of decreasing activation energy", NULL },
    { "gptq-block", 0, 0, G_OPTION_ARG_INT, &o->gptq_block, "GPTQ lazy-update block in columns (default 128)", "N" },
    { "option", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->options, "A method option KEY=VALUE (e.g. gptq.guard=false)", "KEY=VALUE" },
    { NULL }
  };
  GOptionGroup *group = g_option_group_new ("calib", "Calibration options:", "Show calibration options", o, NULL);

  g_option_group_add_entries (group, entries);
  g_option_context_add_group (context, group);
}

void
qb_cli_calib_options_clear (QbCliCalibOptions *o)
{
  g_clear_pointer (&o->calib, g_strfreev);
  g_clear_pointer (&o->cache_dir, g_free);
  g_clear_pointer (&o->options, g_strfreev);
}

gboolean
qb_cli_calib_apply_options (const QbCliCalibOptions *o, QbPlan *plan, GError **error)
{
  if (o->gptq_damp != 0)
    {
      char buf[G_ASCII_DTOSTR_BUF_SIZE];
      qb_plan_set_option (plan, "gptq.damp", g_ascii_dtostr (buf, sizeof buf, o->gptq_damp));
    }
  if (o->gptq_act_order)
    qb_plan_set_option (plan, "gptq.act_order", "true");
  if (o->gptq_block != 0)
    {
      g_autofree char *v = g_strdup_printf ("%d", o->gptq_block);
      qb_plan_set_option (plan, "gptq.block", v);
    }
  for (guint i = 0; o->options && o->options[i]; i++)
    {
      const char *eq = strchr (o->options[i], '=');
      g_autofree char *key = NULL;

      if (eq == NULL || eq == o->options[i])
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "--option '%s': expected KEY=VALUE", o->options[i]);
          return FALSE;
        }
      key = g_strndup (o->options[i], eq - o->options[i]);
      qb_plan_set_option (plan, key, eq + 1);
    }
  return TRUE;
}

void
qb_cli_calib_draw_progress (const QbStatsProgress *p, gpointer data)
{
  qb_cli_progress_draw (data, p->fraction, p->fraction >= 1, "calibrating: pass %u/%u  chunk %u/%u   ",
                        p->pass + 1, p->n_passes, MIN (p->chunk + 1, p->n_chunks), p->n_chunks);
}

typedef struct {
  QbCliProgress bar;
  gboolean      quiet;
  QbModel      *model;
} CalibRun;

/* Says what is about to run, once the set is ready. */
static void
print_calibration_set (QbCalibration *calib, const QbStatsOptions *so, gpointer data)
{
  CalibRun *run = data;
  guint64 largest = 0, experts = 0, gram_bytes;

  if (run->quiet)
    return;
  fprintf (stderr, "calibration: %s, %u chunks of %u tokens (%s)%s\n",
           qb_calibration_get_name (calib), qb_calibration_get_n_chunks (calib),
           qb_calibration_get_n_ctx (calib),
           qb_calibration_get_random (calib) ? "random" : "in order",
           qb_calibration_get_from_cache (calib) ? ", tokens cached" : "");
  gram_bytes = qb_activation_stats_gram_bytes (run->model, so->gram_tensors, &largest, &experts);
  if (gram_bytes > 0)
    {
      g_autofree char *t = g_format_size_full (gram_bytes, G_FORMAT_SIZE_IEC_UNITS);
      g_autofree char *l = g_format_size_full (largest, G_FORMAT_SIZE_IEC_UNITS);
      fprintf (stderr, "calibration: XᵀX for GPTQ: %s in all, %s the largest\n", t, l);
    }
  if (experts > 0)
    {
      guint64 limit = so->max_expert_gram_bytes ? so->max_expert_gram_bytes
                                                : QB_STATS_DEFAULT_EXPERT_GRAM_BYTES;
      g_autofree char *e = g_format_size_full (experts, G_FORMAT_SIZE_IEC_UNITS);
      g_autofree char *l = g_format_size_full (limit, G_FORMAT_SIZE_IEC_UNITS);
      fprintf (stderr, "calibration: of which one XᵀX per expert: %s (limit %s, "
               "--calib-expert-gram-max)%s\n", e, l,
               experts > limit ? ": above it, the expert tensors are rounded" : "");
    }
}

static void
draw_calibration (const QbStatsProgress *p, gpointer data)
{
  CalibRun *run = data;

  if (!run->quiet && isatty (2))
    qb_cli_calib_draw_progress (p, &run->bar);
}

QbActivationStats *
qb_cli_calib_compute (QbModel *model, QbPlan *plan, const QbCliCalibOptions *o, int threads,
                      gboolean quiet, GCancellable *cancellable, GError **error)
{
  CalibRun run = { .quiet = quiet, .model = model };
  QbCalibrationOptions co;
  QbStatsOptions so;
  QbActivationStats *stats;

  qb_calibration_options_init (&co);
  co.n_ctx = (guint) MAX (o->ctx, 0);
  co.n_chunks = (guint) MAX (o->chunks, 0);
  co.skip_chunks = (guint) MAX (o->skip, 0);
  co.random = o->random;
  co.seed = (guint64) o->seed;
  co.cache_dir = o->cache_dir;
  co.no_cache = o->no_cache;
  co.expect_hash = o->expect_hash;
  qb_stats_options_init (&so);
  so.gram_all = o->gram_all;
  so.max_expert_gram_bytes = (guint64) (MAX (o->expert_gram_max_gib, 0) * (double) (1 << 30));

  stats = qb_activation_stats_compute_for_plan_full (model, plan, (const char * const *) o->calib,
                                                     &co, &so, threads > 0 ? (guint) threads : 0,
                                                     print_calibration_set, draw_calibration, &run,
                                                     cancellable, error);
  qb_cli_progress_end (&run.bar);
  if (stats != NULL && !quiet)
    fprintf (stderr, "calibration: %u forward passes%s\n", qb_activation_stats_get_n_forward (stats),
             qb_activation_stats_get_n_forward (stats) == 0 ? " (statistics cached)" : "");
  return stats;
}
