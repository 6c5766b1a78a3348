/* SPDX-License-Identifier: MIT */
/* qb-tensor-details.c — facts, metrics and charts of the selected tensor. */
#include "qb-tensor-details.h"
#include "qb-ui.h"

#include <math.h>

#include "qb-format-levels.h"

typedef enum {
  SRC_ROW,      /* known from the model and plan */
  SRC_STATS,    /* the original weights' statistics */
  SRC_RESULT,   /* the last run */
} FactSource;

typedef struct {
  const char *id;
  const char *label;
  FactSource  source;
} Fact;

static const Fact facts[] = {
  { "shape",      "Shape",            SRC_ROW },
  { "params",     "Parameters",       SRC_ROW },
  { "dtype",      "Stored as",        SRC_ROW },
  { "format",     "Planned format",   SRC_ROW },
  { "source",     "Chosen by",        SRC_ROW },
  { "planned",    "Planned size",     SRC_ROW },
  { "fallback",   "Fallback",         SRC_ROW },
  { "mean",       "Mean ± std",       SRC_STATS },
  { "range",      "Range",            SRC_STATS },
  { "kurtosis",   "Excess kurtosis",  SRC_STATS },
  { "outliers",   "Outliers (>6σ)",   SRC_STATS },
  { "used",       "Run format",       SRC_RESULT },
  { "bpw",        "Bits per weight",  SRC_RESULT },
  { "nonfinite",  "Non-finite weights", SRC_RESULT },
  { "sqnr",       "SQNR",             SRC_RESULT },
  { "rmse",       "Relative RMSE",    SRC_RESULT },
  { "experts",    "Experts' SQNR",    SRC_RESULT },
  { "cosine",     "Cosine",           SRC_RESULT },
  { "maxerr",     "Max |error|",      SRC_RESULT },
  { "seconds",    "Time",             SRC_RESULT },
};

struct _QbTensorDetails
{
  GtkWidget           parent_instance;

  GtkLabel           *title_label;
  GtkGrid            *facts_grid;
  GtkStack           *chart_stack;
  GtkWidget          *histogram;
  GtkWidget          *error_view;
  GtkWidget          *channel_view;
  GtkLabel           *fact_labels[G_N_ELEMENTS (facts)];
  GtkLabel           *fact_keys[G_N_ELEMENTS (facts)];

  QbDocument         *document;
  QbTensorRow        *row;
};

G_DEFINE_FINAL_TYPE (QbTensorDetails, qb_tensor_details, GTK_TYPE_WIDGET)

/* What an error metric that is NaN means: "undefined" when the weights
 * hold NaN or infinities (never a number that looks measured), "not
 * measured" for a run without metrics. */
static char *
no_metric (const QbTensorResult *result)
{
  return g_strdup (result->n_nonfinite > 0 ? "undefined" : "not measured");
}

/* A 3-D expert tensor's experts: the spread of their SQNR and the worst. */
static char *
experts_value (const QbTensorResult *result)
{
  guint worst = 0;
  double lo = INFINITY, hi = -INFINITY;

  if (result->n_experts == 0 || result->expert_metrics == NULL)
    return NULL;
  for (guint e = 0; e < result->n_experts; e++)
    {
      double v = result->expert_metrics[e].sqnr_db;
      if (v < lo)
        {
          lo = v;
          worst = e;
        }
      hi = MAX (hi, v);
    }
  if (isnan (lo) || isnan (hi))
    return g_strdup ("undefined");
  return g_strdup_printf ("%.2f … %.2f dB · worst: expert %u of %u", lo, hi, worst,
                          result->n_experts);
}

/* The error metrics a row shows: its tensor's, or an expert's own. */
static const QbTensorMetrics *
row_metrics (QbTensorRow *row, const QbTensorResult *result)
{
  int e = qb_tensor_row_get_expert (row);

  if (e < 0)
    return &result->metrics;
  return result->expert_metrics && (guint) e < result->n_experts ? &result->expert_metrics[e] : NULL;
}

/* Facts an expert's row shows its own way: TRUE with *value set (NULL:
 * hidden).  Its range, outlier share and moments are measured with the
 * run (moments not in runs stored before schema 10: hidden); its time is
 * not; the format is one for all experts. */
static gboolean
expert_fact_value (const Fact           *fact,
                   QbTensorRow          *row,
                   const QbTensorResult *result,
                   char                **value)
{
  guint e = (guint) qb_tensor_row_get_expert (row);
  const QbTensorMetrics *m = result ? row_metrics (row, result) : NULL;
  const char *id = fact->id;

  *value = NULL;
  if (g_str_equal (id, "format"))
    *value = g_strdup_printf ("%s · one format for all %u experts (llama.cpp's 3-D tensor)",
                              qb_tensor_row_get_format_label (row), qb_tensor_row_get_n_experts (row));
  else if (fact->source == SRC_ROW)
    return FALSE;
  else if (m == NULL)
    return TRUE;
  else if (g_str_equal (id, "range") && isfinite (m->min) && isfinite (m->max))
    *value = g_strdup_printf ("%.4g … %.4g", m->min, m->max);
  else if (g_str_equal (id, "outliers") && !isnan (m->outlier_share))
    *value = g_strdup_printf ("%.4f %% (beyond the tensor's 6σ)", m->outlier_share * 100);
  else if (g_str_equal (id, "mean") && !isnan (m->mean))
    *value = g_strdup_printf ("%.4g ± %.4g", m->mean, m->std);
  else if (g_str_equal (id, "kurtosis") && !isnan (m->kurtosis))
    *value = g_strdup_printf ("%.2f", m->kurtosis);
  else if (fact->source == SRC_STATS || g_str_equal (id, "seconds"))
    return TRUE;
  else if (g_str_equal (id, "experts") && e < result->n_experts)
    *value = g_strdup_printf ("expert %u of %u · whole tensor %.2f dB", e, result->n_experts,
                              result->metrics.sqnr_db);
  else if (g_str_equal (id, "bpw") && result->n_experts > 0)
    {
      g_autofree char *size = g_format_size (result->bytes / result->n_experts);
      *value = g_strdup_printf ("%.3f · %s", result->bpw, size);
    }
  else
    return FALSE;   /* the run's format, and the error metrics as a tensor's */
  return TRUE;
}

static char *
fact_value (const Fact           *fact,
            QbTensorRow          *row,
            const QbTensorResult *stats,
            const QbTensorResult *result)
{
  const QbTensorMetrics *m;
  char *expert_value = NULL;

  if (qb_tensor_row_get_expert (row) >= 0 && expert_fact_value (fact, row, result, &expert_value))
    return expert_value;
  if (fact->source == SRC_ROW)
    {
      if (g_str_equal (fact->id, "shape"))
        return g_strdup (qb_tensor_row_get_shape (row));
      if (g_str_equal (fact->id, "params"))
        return g_strdup_printf ("%'" G_GINT64_FORMAT, qb_tensor_row_get_n_params (row));
      if (g_str_equal (fact->id, "dtype"))
        {
          g_autofree char *size = g_format_size (qb_tensor_row_get_original_bytes (row));
          return g_strdup_printf ("%s · %s", qb_tensor_row_get_dtype (row), size);
        }
      if (g_str_equal (fact->id, "format"))
        return g_strdup (qb_tensor_row_get_format_label (row));
      if (g_str_equal (fact->id, "source"))
        return g_strdup (qb_tensor_row_get_source (row));
      if (g_str_equal (fact->id, "planned"))
        {
          g_autofree char *size = g_format_size (qb_tensor_row_get_bytes (row));
          return g_strdup_printf ("%s · %.2f bpw", size, qb_tensor_row_get_bpw (row));
        }
      if (g_str_equal (fact->id, "fallback"))
        return g_strdup (qb_tensor_row_get_fallback (row));
      return NULL;
    }

  if (fact->source == SRC_STATS)
    {
      /* A result carries the original's moments too. */
      const QbTensorResult *s = result ? result : stats;
      if (s == NULL)
        return NULL;
      m = &s->metrics;
      if (g_str_equal (fact->id, "mean"))
        return g_strdup_printf ("%.4g ± %.4g", m->mean, m->std);
      if (g_str_equal (fact->id, "range"))
        return g_strdup_printf ("%.4g … %.4g", m->min, m->max);
      if (g_str_equal (fact->id, "kurtosis"))
        return g_strdup_printf ("%.2f", m->kurtosis);
      if (g_str_equal (fact->id, "outliers"))
        return g_strdup_printf ("%.4f %%", m->outlier_share * 100);
      return NULL;
    }

  if (result == NULL || (m = row_metrics (row, result)) == NULL)
    return NULL;
  if (g_str_equal (fact->id, "used"))
    return g_strdup_printf ("%s%s%s", result->format ? result->format : "?",
                            result->method ? " · " : "", result->method ? result->method : "");
  if (g_str_equal (fact->id, "bpw"))
    {
      g_autofree char *size = g_format_size (result->bytes);
      return g_strdup_printf ("%.3f · %s", result->bpw, size);
    }
  if (g_str_equal (fact->id, "nonfinite"))
    return result->n_nonfinite > 0
           ? g_strdup_printf ("%'" G_GINT64_FORMAT " NaN or ±inf (error metrics undefined)",
                              result->n_nonfinite)
           : NULL;
  if (g_str_equal (fact->id, "sqnr"))
    return isnan (m->sqnr_db) ? no_metric (result) : g_strdup_printf ("%.2f dB", m->sqnr_db);
  if (g_str_equal (fact->id, "rmse"))
    return isnan (m->rmse_rel) ? no_metric (result) : g_strdup_printf ("%.5f", m->rmse_rel);
  if (g_str_equal (fact->id, "experts"))
    return experts_value (result);
  if (g_str_equal (fact->id, "cosine"))
    return isnan (m->cosine) ? no_metric (result) : g_strdup_printf ("%.6f", m->cosine);
  if (g_str_equal (fact->id, "maxerr"))
    return isnan (m->max_abs_err) ? no_metric (result)
                                  : g_strdup_printf ("%.4g", m->max_abs_err);
  if (g_str_equal (fact->id, "seconds"))
    return result->seconds < 1 ? g_strdup_printf ("%.1f ms", result->seconds * 1e3)
                               : g_strdup_printf ("%.2f s", result->seconds);
  return NULL;
}

static void
refresh_facts (QbTensorDetails *self)
{
  const QbTensorResult *stats = self->row ? qb_tensor_row_get_stats (self->row) : NULL;
  const QbTensorResult *result = self->row ? qb_tensor_row_get_result (self->row) : NULL;

  for (guint i = 0; i < G_N_ELEMENTS (facts); i++)
    {
      g_autofree char *value = self->row ? fact_value (&facts[i], self->row, stats, result) : NULL;

      gtk_label_set_text (self->fact_labels[i], value ? value : "");
      /* The whole value on hover, for one the pane's width cut. */
      gtk_widget_set_tooltip_text (GTK_WIDGET (self->fact_labels[i]), value);
      gtk_widget_set_visible (GTK_WIDGET (self->fact_labels[i]), value != NULL);
      gtk_widget_set_visible (GTK_WIDGET (self->fact_keys[i]), value != NULL);
    }
}

/* The grid marks where the format puts values: the run's format once
 * measured, otherwise the planned one. */
static void
refresh_grid (QbTensorDetails      *self,
              const QbHistogram    *original,
              const QbTensorResult *result)
{
  const char *name = result && result->format ? result->format : qb_tensor_row_get_format (self->row);
  const QbFormat *format = qb_format_find (name);
  double levels[QB_FORMAT_LEVELS_MAX];
  g_autofree char *label = NULL;
  guint n = qb_format_levels_typical (format, original, qb_tensor_row_get_row_length (self->row),
                                   levels, &label);

  qb_histogram_view_set_grid (QB_HISTOGRAM_VIEW (self->histogram), levels, n, label);
}

/* An expert's rows among its tensor's channel buckets, when the buckets
 * do not straddle experts. */
static gboolean
expert_buckets (QbTensorRow *row, const QbTensorResult *ranges, guint *first, guint *n)
{
  guint e = (guint) qb_tensor_row_get_expert (row), n_experts = qb_tensor_row_get_n_experts (row);
  gint64 n_rows = qb_tensor_row_get_n_params (row) / MAX (1, qb_tensor_row_get_row_length (row));
  gint64 per_bucket = qb_channel_rows_per_bucket (n_rows * n_experts);

  if (ranges == NULL || ranges->n_channels == 0 || n_rows % per_bucket != 0)
    return FALSE;
  *n = (guint) (n_rows / per_bucket);
  *first = e * *n;
  return *first + *n <= ranges->n_channels;
}

/* An expert's own histograms once a run measured it; before, its
 * tensor's (of all its experts), and the charts say so. */
static void
refresh_expert_charts (QbTensorDetails      *self,
                       const QbTensorResult *stats,
                       const QbTensorResult *result)
{
  QbHistogramView *hist = QB_HISTOGRAM_VIEW (self->histogram);
  QbHistogramView *err = QB_HISTOGRAM_VIEW (self->error_view);
  QbChannelRangeView *ch = QB_CHANNEL_RANGE_VIEW (self->channel_view);
  guint e = (guint) qb_tensor_row_get_expert (self->row), first = 0, n = 0;
  const QbHistogram *original = qb_tensor_result_expert_histogram (result, e, 0);
  const QbTensorResult *ranges = result && result->n_channels ? result : stats;

  if (original != NULL)
    {
      qb_histogram_view_set_histograms (hist, original, qb_tensor_result_expert_histogram (result, e, 1));
      refresh_grid (self, original, result);
      qb_histogram_view_set_histograms (err, qb_tensor_result_expert_histogram (result, e, 2), NULL);
    }
  else
    {
      qb_histogram_view_set_histograms (hist, NULL, NULL);
      qb_histogram_view_set_grid (hist, NULL, 0, NULL);
      qb_histogram_view_set_placeholder (hist, result ? "This run kept no histograms of this expert"
                                                      : "Quantize to see this expert's own weights");
      qb_histogram_view_set_histograms (err, NULL, NULL);
    }
  qb_histogram_view_set_placeholder (err, "Quantize to see the error of this expert");
  if (expert_buckets (self->row, ranges, &first, &n))
    qb_channel_range_view_set_ranges (ch, ranges->channel_min + first, ranges->channel_max + first, n,
                                      qb_tensor_row_get_n_params (self->row)
                                      / MAX (1, qb_tensor_row_get_row_length (self->row)));
  else
    {
      qb_channel_range_view_set_ranges (ch, NULL, NULL, 0, 0);
      qb_channel_range_view_set_placeholder (ch, ranges ? "No channel ranges of this expert alone"
                                                        : "Computing channel ranges…");
    }
}

static void
refresh_charts (QbTensorDetails *self)
{
  QbHistogramView *hist = QB_HISTOGRAM_VIEW (self->histogram);
  QbHistogramView *err = QB_HISTOGRAM_VIEW (self->error_view);
  QbChannelRangeView *ch = QB_CHANNEL_RANGE_VIEW (self->channel_view);
  const QbTensorResult *stats, *result, *ranges;

  if (self->row == NULL)
    {
      qb_histogram_view_set_histograms (hist, NULL, NULL);
      qb_histogram_view_set_placeholder (hist, "Select a tensor to see its weights");
      qb_histogram_view_set_grid (hist, NULL, 0, NULL);
      qb_histogram_view_set_histograms (err, NULL, NULL);
      qb_histogram_view_set_placeholder (err, "Select a tensor");
      qb_channel_range_view_set_ranges (ch, NULL, NULL, 0, 0);
      qb_channel_range_view_set_placeholder (ch, "Select a tensor");
      return;
    }

  stats = qb_tensor_row_get_stats (self->row);
  result = qb_tensor_row_get_result (self->row);

  if (qb_tensor_row_get_expert (self->row) >= 0)
    {
      refresh_expert_charts (self, stats, result);
      return;
    }
  if (result && result->hist_original)
    {
      qb_histogram_view_set_histograms (hist, result->hist_original, result->hist_quantized);
      refresh_grid (self, result->hist_original, result);
    }
  else if (stats)
    {
      qb_histogram_view_set_histograms (hist, stats->hist_original, NULL);
      refresh_grid (self, stats->hist_original, NULL);
    }
  else
    {
      qb_histogram_view_set_histograms (hist, NULL, NULL);
      qb_histogram_view_set_grid (hist, NULL, 0, NULL);
      qb_histogram_view_set_placeholder (hist, "Computing the histogram…");
    }

  qb_histogram_view_set_histograms (err, result ? result->hist_error : NULL, NULL);
  qb_histogram_view_set_placeholder (err, "Quantize to see the error of this tensor");

  ranges = result && result->n_channels ? result : stats;
  if (ranges && ranges->n_channels)
    qb_channel_range_view_set_ranges (ch, ranges->channel_min, ranges->channel_max, ranges->n_channels,
                                      qb_tensor_row_get_n_params (self->row)
                                      / MAX (1, qb_tensor_row_get_row_length (self->row)));
  else
    {
      qb_channel_range_view_set_ranges (ch, NULL, NULL, 0, 0);
      qb_channel_range_view_set_placeholder (ch, stats || result ? "No channel ranges"
                                                                 : "Computing channel ranges…");
    }
}

static void
refresh (QbTensorDetails *self)
{
  int expert = self->row ? qb_tensor_row_get_expert (self->row) : -1;
  g_autofree char *name = !self->row ? NULL
                          : expert < 0 ? g_strdup (qb_tensor_row_get_name (self->row))
                          : g_strdup_printf ("%s · expert %d", qb_tensor_row_get_name (self->row), expert);

  gtk_label_set_text (self->title_label, name ? name : "");
  /* Exported images carry the tensor's name. */
  qb_histogram_view_set_title (QB_HISTOGRAM_VIEW (self->histogram), name);
  qb_histogram_view_set_title (QB_HISTOGRAM_VIEW (self->error_view), name);
  refresh_facts (self);
  refresh_charts (self);
}

static void
on_row_notify (QbTensorRow     *row,
               GParamSpec      *pspec,
               QbTensorDetails *self)
{
  const char *name = pspec->name;

  if (g_str_equal (name, "has-stats") || g_str_equal (name, "has-result")
      || g_str_equal (name, "format") || g_str_equal (name, "format-label")
      || g_str_equal (name, "source") || g_str_equal (name, "bytes"))
    refresh (self);
}

static void
qb_tensor_details_dispose (GObject *object)
{
  QbTensorDetails *self = QB_TENSOR_DETAILS (object);

  if (self->row)
    g_signal_handlers_disconnect_by_data (self->row, self);
  g_clear_object (&self->row);
  g_clear_object (&self->document);
  qb_ui_dispose_template (GTK_WIDGET (self), QB_TYPE_TENSOR_DETAILS);
  G_OBJECT_CLASS (qb_tensor_details_parent_class)->dispose (object);
}

static void
qb_tensor_details_class_init (QbTensorDetailsClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = qb_tensor_details_dispose;

  qb_ui_ensure_resources ();
  gtk_widget_class_set_template_from_resource (widget_class, "/org/quantbench/Quantbench/ui/qb-tensor-details.ui");
  gtk_widget_class_bind_template_child (widget_class, QbTensorDetails, title_label);
  gtk_widget_class_bind_template_child (widget_class, QbTensorDetails, facts_grid);
  gtk_widget_class_bind_template_child (widget_class, QbTensorDetails, chart_stack);
  gtk_widget_class_set_css_name (widget_class, "tensordetails");
}

static void
add_chart (QbTensorDetails *self,
           GtkWidget       *chart,
           const char      *name,
           const char      *title)
{
  gtk_widget_set_hexpand (chart, TRUE);
  gtk_widget_set_vexpand (chart, TRUE);
  gtk_stack_add_titled (self->chart_stack, chart, name, title);
}

static void
qb_tensor_details_init (QbTensorDetails *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));

  self->histogram = qb_histogram_view_new (QB_HISTOGRAM_KIND_WEIGHTS);
  self->error_view = qb_histogram_view_new (QB_HISTOGRAM_KIND_ERROR);
  self->channel_view = qb_channel_range_view_new ();
  add_chart (self, self->histogram, "histogram", "Weights");
  add_chart (self, self->error_view, "error", "Error");
  add_chart (self, self->channel_view, "channels", "Channels");

  for (guint i = 0; i < G_N_ELEMENTS (facts); i++)
    {
      GtkWidget *key = gtk_label_new (facts[i].label);
      GtkWidget *value = gtk_label_new (NULL);

      gtk_label_set_xalign (GTK_LABEL (key), 0);
      gtk_widget_add_css_class (key, "dim-label");
      gtk_label_set_xalign (GTK_LABEL (value), 0);
      gtk_label_set_selectable (GTK_LABEL (value), TRUE);
      if (g_str_equal (facts[i].id, "fallback"))
        {
          /* A reason is a sentence: read in full, on as many lines as it takes. */
          gtk_label_set_wrap (GTK_LABEL (value), TRUE);
          gtk_label_set_wrap_mode (GTK_LABEL (value), PANGO_WRAP_WORD_CHAR);
          gtk_label_set_width_chars (GTK_LABEL (value), 12);
          gtk_label_set_max_width_chars (GTK_LABEL (value), 40);
        }
      else
        gtk_label_set_ellipsize (GTK_LABEL (value), PANGO_ELLIPSIZE_END);
      gtk_widget_set_hexpand (value, TRUE);
      gtk_widget_add_css_class (value, "numeric");
      gtk_widget_set_tooltip_text (value, NULL);
      gtk_grid_attach (self->facts_grid, key, 0, i, 1, 1);
      gtk_grid_attach (self->facts_grid, value, 1, i, 1, 1);
      self->fact_keys[i] = GTK_LABEL (key);
      self->fact_labels[i] = GTK_LABEL (value);
    }
  refresh (self);
}

GtkWidget *
qb_tensor_details_new (void)
{
  return g_object_new (QB_TYPE_TENSOR_DETAILS, NULL);
}

void
qb_tensor_details_set_document (QbTensorDetails *self,
                                QbDocument      *document)
{
  g_return_if_fail (QB_IS_TENSOR_DETAILS (self));

  qb_tensor_details_set_row (self, NULL);
  g_set_object (&self->document, document);
}

void
qb_tensor_details_set_row (QbTensorDetails *self,
                           QbTensorRow     *row)
{
  g_return_if_fail (QB_IS_TENSOR_DETAILS (self));

  if (self->row == row)
    return;
  if (self->row)
    g_signal_handlers_disconnect_by_data (self->row, self);
  g_set_object (&self->row, row);
  if (row)
    {
      g_signal_connect (row, "notify", G_CALLBACK (on_row_notify), self);
      if (self->document && qb_tensor_row_get_stats (row) == NULL)
        qb_document_request_stats (self->document, row);
    }
  refresh (self);
}

QbTensorRow *
qb_tensor_details_get_row (QbTensorDetails *self)
{
  g_return_val_if_fail (QB_IS_TENSOR_DETAILS (self), NULL);
  return self->row;
}

void
qb_tensor_details_show_chart (QbTensorDetails *self,
                              const char      *name)
{
  g_return_if_fail (QB_IS_TENSOR_DETAILS (self));
  if (gtk_stack_get_child_by_name (self->chart_stack, name))
    gtk_stack_set_visible_child_name (self->chart_stack, name);
}

const char *
qb_tensor_details_get_chart_name (QbTensorDetails *self)
{
  g_return_val_if_fail (QB_IS_TENSOR_DETAILS (self), NULL);
  return gtk_stack_get_visible_child_name (self->chart_stack);
}

QbChart *
qb_tensor_details_get_visible_chart (QbTensorDetails *self)
{
  g_return_val_if_fail (QB_IS_TENSOR_DETAILS (self), NULL);
  return QB_CHART (gtk_stack_get_visible_child (self->chart_stack));
}

QbHistogramView *
qb_tensor_details_get_histogram (QbTensorDetails *self)
{
  return QB_HISTOGRAM_VIEW (self->histogram);
}

QbHistogramView *
qb_tensor_details_get_error_view (QbTensorDetails *self)
{
  return QB_HISTOGRAM_VIEW (self->error_view);
}

QbChannelRangeView *
qb_tensor_details_get_channel_view (QbTensorDetails *self)
{
  return QB_CHANNEL_RANGE_VIEW (self->channel_view);
}

void
qb_tensor_details_set_log_scale (QbTensorDetails *self,
                                 gboolean         log_scale)
{
  qb_histogram_view_set_log_scale (QB_HISTOGRAM_VIEW (self->histogram), log_scale);
  qb_histogram_view_set_log_scale (QB_HISTOGRAM_VIEW (self->error_view), log_scale);
}

void
qb_tensor_details_set_difference (QbTensorDetails *self,
                                  gboolean         difference)
{
  qb_histogram_view_set_difference (QB_HISTOGRAM_VIEW (self->histogram), difference);
}

void
qb_tensor_details_reset_zoom (QbTensorDetails *self)
{
  qb_histogram_view_reset_zoom (QB_HISTOGRAM_VIEW (self->histogram));
  qb_histogram_view_reset_zoom (QB_HISTOGRAM_VIEW (self->error_view));
  qb_channel_range_view_reset_zoom (QB_CHANNEL_RANGE_VIEW (self->channel_view));
}

const char *
qb_tensor_details_get_fact (QbTensorDetails *self,
                            const char      *id)
{
  for (guint i = 0; i < G_N_ELEMENTS (facts); i++)
    if (g_str_equal (facts[i].id, id))
      return gtk_label_get_text (self->fact_labels[i]);
  return NULL;
}
