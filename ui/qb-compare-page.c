/* SPDX-License-Identifier: MIT */
/* qb-compare-page.c — scatter, per-layer bars and format differences. */
#include "qb-compare-page.h"

#include <math.h>

#include "qb-ui.h"

typedef enum {
  LAYER_SQNR,
  LAYER_RMSE,
  LAYER_BPW,
} LayerMeasure;

struct _QbComparePage
{
  GtkWidget          parent_instance;

  GtkLabel          *title_label;
  GtkWidget         *scatter_controls;
  GtkDropDown       *x_dropdown;
  GtkDropDown       *metric_dropdown;
  GtkDropDown       *layer_measure_dropdown;
  GtkCheckButton    *only_diff_check;
  GtkStack          *view_stack;
  GtkWidget         *scatter;
  GtkWidget         *bars;
  GtkColumnView     *format_view;
  GtkStringList     *format_names;     /* tensor names, model order */
  GtkFilterListModel *format_rows;
  GtkCustomFilter   *diff_filter;

  QbStore           *store;
  QbComparison      *comparison;
  GHashTable        *row_by_name;      /* tensor name -> QbCompareRow* */
  guint              generation;
  guint              n_pending;
};

G_DEFINE_FINAL_TYPE (QbComparePage, qb_compare_page, GTK_TYPE_WIDGET)

enum {
  ERROR,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

/* -- (a) size against error ------------------------------------------------- */

static QbMetric
current_metric (QbComparePage *self)
{
  guint pos = gtk_drop_down_get_selected (self->metric_dropdown);
  return pos < QB_METRIC_N ? (QbMetric) pos : QB_METRIC_SQNR;
}

/* Perplexity, KLD and the rest come from an evaluation, which depends on
 * its text, context and number of chunks. */
static gboolean
metric_is_evaluation (QbMetric metric)
{
  return metric == QB_METRIC_PERPLEXITY || metric == QB_METRIC_KLD_MEAN || metric == QB_METRIC_KLD_P99
         || metric == QB_METRIC_TOP1 || metric == QB_METRIC_DP_RMS;
}

static char *
evaluation_key (const QbExperiment *e)
{
  const QbEvaluation *ev = e->evaluation;

  return g_strdup_printf ("%s|%u|%u", ev->text_hash ? ev->text_hash : "", ev->n_ctx, ev->n_chunks);
}

/* The evaluation setting most of the experiments share (the first one's
 * on a tie): only evaluations on the same text, context and chunks are
 * comparable. */
static const QbExperiment *
common_setting (QbComparison *c,
                QbMetric      metric)
{
  g_autoptr(GHashTable) counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  const QbExperiment *best = NULL;
  guint best_n = 0;

  for (guint i = 0; i < c->n_experiments; i++)
    {
      const QbExperiment *e = c->experiments[i];
      char *key;
      guint n;

      if (e->evaluation == NULL || isnan (qb_experiment_metric (e, metric)))
        continue;
      key = evaluation_key (e);
      n = GPOINTER_TO_UINT (g_hash_table_lookup (counts, key)) + 1;
      g_hash_table_replace (counts, key, GUINT_TO_POINTER (n));
      if (n > best_n)
        {
          best_n = n;
          best = e;
        }
    }
  return best;
}

/* Says what the points are and which experiments are not among them. */
static char *
describe_left_out (const QbExperiment *setting,
                   guint               no_value,
                   guint               other_setting,
                   gboolean            evaluation)
{
  GString *s = g_string_new (NULL);

  if (setting)
    g_string_append_printf (s, "Evaluated on %s, %u chunks of %u tokens",
                            setting->evaluation->text_name ? setting->evaluation->text_name : "?",
                            setting->evaluation->n_chunks, setting->evaluation->n_ctx);
  if (no_value > 0)
    g_string_append_printf (s, "%s%u experiment%s left out: %s", s->len ? " · " : "", no_value,
                            no_value == 1 ? "" : "s", evaluation ? "no evaluation" : "no value");
  if (other_setting > 0)
    g_string_append_printf (s, "%s%u left out: evaluated on another text or chunking",
                            s->len ? " · " : "", other_setting);
  return g_string_free (s, s->len == 0);
}

static void
update_scatter (QbComparePage *self)
{
  QbComparison *c = self->comparison;
  QbMetric metric = current_metric (self);
  gboolean bytes = gtk_drop_down_get_selected (self->x_dropdown) == 1;
  gboolean evaluation = metric_is_evaluation (metric);
  const QbExperiment *setting = NULL;
  g_autofree char *setting_key = NULL;
  g_autofree char *note = NULL;
  g_autofree const char **labels = NULL;
  g_autofree double *x = NULL;
  g_autofree double *y = NULL;
  guint n = 0, no_value = 0, other_setting = 0;

  qb_scatter_view_set_axes (QB_SCATTER_VIEW (self->scatter), bytes ? "size (MB)" : "bits per weight",
                            qb_metric_label (metric), qb_metric_higher_is_better (metric));
  if (c == NULL)
    {
      qb_scatter_view_set_points (QB_SCATTER_VIEW (self->scatter), NULL, NULL, NULL, 0);
      qb_scatter_view_set_note (QB_SCATTER_VIEW (self->scatter), NULL);
      return;
    }
  if (evaluation && (setting = common_setting (c, metric)) != NULL)
    setting_key = evaluation_key (setting);
  labels = g_new (const char *, c->n_experiments);
  x = g_new (double, c->n_experiments);
  y = g_new (double, c->n_experiments);
  for (guint i = 0; i < c->n_experiments; i++)
    {
      const QbExperiment *e = c->experiments[i];
      double v = qb_experiment_metric (e, metric);

      if (isnan (v))
        {
          no_value++;
          continue;
        }
      if (setting_key)
        {
          g_autofree char *key = evaluation_key (e);
          if (!g_str_equal (key, setting_key))
            {
              other_setting++;
              continue;
            }
        }
      labels[n] = e->name;
      x[n] = bytes ? e->totals.quantized_bytes / 1e6 : e->totals.bpw;
      y[n] = v;
      n++;
    }
  qb_scatter_view_set_points (QB_SCATTER_VIEW (self->scatter), labels, x, y, n);
  note = describe_left_out (setting, no_value, other_setting, evaluation);
  qb_scatter_view_set_note (QB_SCATTER_VIEW (self->scatter), note);
  qb_scatter_view_set_placeholder (QB_SCATTER_VIEW (self->scatter),
                                   evaluation ? "None of these experiments has been evaluated: "
                                                "Evaluate… on the Experiments page"
                                              : "None of these experiments has this measure");
}

/* -- (b) per layer ------------------------------------------------------------ */

/* Layers in order, tensors outside the blocks first as "other". */
static GArray *
layers_of (QbComparison *c)
{
  GArray *layers = g_array_new (FALSE, FALSE, sizeof (int));
  g_autoptr(GHashTable) seen = g_hash_table_new (NULL, NULL);

  for (guint r = 0; r < c->n_rows; r++)
    {
      int layer;
      QbTensorRole role;
      gboolean bias;

      qb_tensor_name_parse (c->rows[r].tensor_name, &layer, &role, &bias);
      if (!g_hash_table_contains (seen, GINT_TO_POINTER (layer + 1)))
        {
          g_hash_table_add (seen, GINT_TO_POINTER (layer + 1));
          g_array_append_val (layers, layer);
        }
    }
  return layers;
}

static int
compare_int (gconstpointer a,
             gconstpointer b)
{
  return *(const int *) a - *(const int *) b;
}

/* Sums over a layer's tensors, so measures aggregate exactly: a tensor's
 * signal power is mean² + std², its noise power rmse_rel² times that. */
typedef struct {
  double signal;
  double noise;
  double bits;
  double params;
} LayerSums;

static double
layer_value (const LayerSums *s,
             LayerMeasure     measure)
{
  if (!(s->params > 0))
    return NAN;
  switch (measure)
    {
    case LAYER_SQNR:
      return s->noise > 0 ? 10 * log10 (s->signal / s->noise) : NAN;
    case LAYER_RMSE:
      return s->signal > 0 ? sqrt (s->noise / s->signal) : NAN;
    case LAYER_BPW:
    default:
      return s->bits / s->params;
    }
}

static void
update_bars (QbComparePage *self)
{
  static const char *titles[] = { "SQNR (dB)", "relative RMSE", "bits per weight" };
  QbComparison *c = self->comparison;
  LayerMeasure measure = (LayerMeasure) gtk_drop_down_get_selected (self->layer_measure_dropdown);
  g_autoptr(GArray) layers = NULL;
  g_autoptr(GPtrArray) series = NULL;
  g_autoptr(GPtrArray) groups = NULL;
  g_autofree LayerSums *sums = NULL;
  g_autofree double *values = NULL;
  guint n_l;

  if (c == NULL || c->n_experiments == 0)
    {
      qb_layer_bars_view_set_data (QB_LAYER_BARS_VIEW (self->bars), 0, NULL, 0, NULL, NULL, NULL);
      return;
    }
  layers = layers_of (c);
  g_array_sort (layers, compare_int);
  n_l = layers->len;
  sums = g_new0 (LayerSums, c->n_experiments * n_l);

  for (guint r = 0; r < c->n_rows; r++)
    {
      int layer;
      QbTensorRole role;
      gboolean bias;
      guint g = 0;

      qb_tensor_name_parse (c->rows[r].tensor_name, &layer, &role, &bias);
      while (g_array_index (layers, int, g) != layer)
        g++;
      for (guint e = 0; e < c->n_experiments; e++)
        {
          QbStoredTensor *cell = c->rows[r].cells[e];
          const QbTensorResult *res = cell ? cell->result : NULL;
          LayerSums *s = &sums[e * n_l + g];
          double power, n;

          if (res == NULL)
            continue;
          n = res->n_params;
          power = res->metrics.mean * res->metrics.mean + res->metrics.std * res->metrics.std;
          s->params += n;
          s->bits += res->bytes * 8.0;
          if (!isnan (res->metrics.rmse_rel))
            {
              s->signal += n * power;
              s->noise += n * power * res->metrics.rmse_rel * res->metrics.rmse_rel;
            }
        }
    }

  series = g_ptr_array_new ();
  for (guint e = 0; e < c->n_experiments; e++)
    g_ptr_array_add (series, c->experiments[e]->name);
  g_ptr_array_add (series, NULL);
  groups = g_ptr_array_new_with_free_func (g_free);
  for (guint g = 0; g < n_l; g++)
    {
      int layer = g_array_index (layers, int, g);
      g_ptr_array_add (groups, layer < 0 ? g_strdup ("other") : g_strdup_printf ("%d", layer));
    }
  g_ptr_array_add (groups, NULL);
  values = g_new (double, c->n_experiments * n_l);
  for (guint i = 0; i < c->n_experiments * n_l; i++)
    values[i] = layer_value (&sums[i], measure);

  qb_layer_bars_view_set_data (QB_LAYER_BARS_VIEW (self->bars), c->n_experiments,
                               (const char * const *) series->pdata, n_l,
                               (const char * const *) groups->pdata, values, titles[measure]);
}

/* -- (c) formats ------------------------------------------------------------- */

static QbCompareRow *
row_for_item (QbComparePage *self,
              gpointer       item)
{
  if (self->row_by_name == NULL)
    return NULL;
  return g_hash_table_lookup (self->row_by_name, gtk_string_object_get_string (item));
}

static gboolean
filter_diff (gpointer item,
             gpointer data)
{
  QbComparePage *self = data;
  QbCompareRow *row = row_for_item (self, item);

  return row && (!gtk_check_button_get_active (self->only_diff_check) || row->differs);
}

static const char *
cell_format (QbCompareRow *row,
             guint         e)
{
  QbStoredTensor *cell = row->cells[e];
  return cell && cell->result && cell->result->format ? cell->result->format : "–";
}

static void
setup_label (GtkSignalListItemFactory *factory,
             GtkListItem              *item,
             gpointer                  data)
{
  GtkWidget *label = gtk_label_new (NULL);

  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_label_set_ellipsize (GTK_LABEL (label), PANGO_ELLIPSIZE_MIDDLE);
  gtk_list_item_set_child (item, label);
}

static void
bind_name (GtkSignalListItemFactory *factory,
           GtkListItem              *item,
           gpointer                  data)
{
  gtk_label_set_text (GTK_LABEL (gtk_list_item_get_child (item)),
                      gtk_string_object_get_string (gtk_list_item_get_item (item)));
}

/* A stored 3-D expert tensor's experts: "4 experts 41.2…42.9 dB, cos ≥
 * 0.99585" (the cosine where stored: from schema 9 on), or NULL. */
static char *
experts_range (const QbStoredTensor *cell)
{
  const QbTensorResult *r = cell ? cell->result : NULL;
  double lo = INFINITY, hi = -INFINITY, cos_lo = INFINITY;

  if (r == NULL || r->n_experts == 0)
    return NULL;
  for (guint x = 0; x < r->n_experts; x++)
    {
      const QbTensorMetrics *m = &r->expert_metrics[x];
      if (!isnan (m->sqnr_db))
        {
          lo = MIN (lo, m->sqnr_db);
          hi = MAX (hi, m->sqnr_db);
        }
      if (!isnan (m->cosine))
        cos_lo = MIN (cos_lo, m->cosine);
    }
  if (!(lo <= hi))
    return NULL;
  if (isfinite (cos_lo))
    return g_strdup_printf ("%u experts %.1f…%.1f dB, cos ≥ %.5f", r->n_experts, lo, hi, cos_lo);
  return g_strdup_printf ("%u experts %.1f…%.1f dB", r->n_experts, lo, hi);
}

/* A cell differing from the first experiment's is marked. */
static void
bind_format (GtkSignalListItemFactory *factory,
             GtkListItem              *item,
             gpointer                  data)
{
  QbComparePage *self = g_object_get_data (G_OBJECT (factory), "qb-page");
  guint e = GPOINTER_TO_UINT (data);
  QbCompareRow *row = row_for_item (self, gtk_list_item_get_item (item));
  GtkWidget *label = gtk_list_item_get_child (item);
  const char *format = row ? cell_format (row, e) : "";
  g_autofree char *experts = row ? experts_range (row->cells[e]) : NULL;
  g_autofree char *text = experts ? g_strdup_printf ("%s · %s", format, experts) : NULL;

  gtk_label_set_text (GTK_LABEL (label), text ? text : format);
  if (row && e > 0 && g_strcmp0 (format, cell_format (row, 0)) != 0)
    gtk_widget_add_css_class (label, "format-diff");
  else
    gtk_widget_remove_css_class (label, "format-diff");
}

static GtkColumnViewColumn *
new_column (QbComparePage *self,
            const char    *title,
            GCallback      bind,
            gpointer       data)
{
  GtkListItemFactory *factory = gtk_signal_list_item_factory_new ();
  GtkColumnViewColumn *column;

  g_object_set_data (G_OBJECT (factory), "qb-page", self);
  g_signal_connect (factory, "setup", G_CALLBACK (setup_label), NULL);
  g_signal_connect (factory, "bind", bind, data);
  column = gtk_column_view_column_new (title, factory);
  gtk_column_view_column_set_resizable (column, TRUE);
  return column;
}

static void
update_formats (QbComparePage *self)
{
  GListModel *columns = gtk_column_view_get_columns (self->format_view);
  QbComparison *c = self->comparison;
  g_autoptr(GPtrArray) names = g_ptr_array_new ();

  while (g_list_model_get_n_items (columns) > 0)
    {
      g_autoptr(GtkColumnViewColumn) column = g_list_model_get_item (columns, 0);
      gtk_column_view_remove_column (self->format_view, column);
    }
  g_clear_pointer (&self->row_by_name, g_hash_table_unref);
  if (c == NULL)
    {
      gtk_string_list_splice (self->format_names, 0, g_list_model_get_n_items (G_LIST_MODEL (self->format_names)), NULL);
      return;
    }

  self->row_by_name = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint r = 0; r < c->n_rows; r++)
    {
      g_hash_table_insert (self->row_by_name, c->rows[r].tensor_name, &c->rows[r]);
      g_ptr_array_add (names, c->rows[r].tensor_name);
    }
  g_ptr_array_add (names, NULL);

  {
    g_autoptr(GtkColumnViewColumn) name_col = new_column (self, "Tensor", G_CALLBACK (bind_name), NULL);
    gtk_column_view_column_set_expand (name_col, TRUE);
    gtk_column_view_append_column (self->format_view, name_col);
  }
  for (guint e = 0; e < c->n_experiments; e++)
    {
      g_autoptr(GtkColumnViewColumn) col = new_column (self, c->experiments[e]->name, G_CALLBACK (bind_format),
                                                       GUINT_TO_POINTER (e));
      gtk_column_view_column_set_fixed_width (col, 140);
      gtk_column_view_append_column (self->format_view, col);
    }
  gtk_string_list_splice (self->format_names, 0, g_list_model_get_n_items (G_LIST_MODEL (self->format_names)),
                          (const char * const *) names->pdata);
  gtk_filter_changed (GTK_FILTER (self->diff_filter), GTK_FILTER_CHANGE_DIFFERENT);
}

/* -- loading ------------------------------------------------------------- */

typedef struct {
  QbStore       *store;
  gint64        *ids;
  guint          n;
  guint          generation;
} CompareRequest;

static void
request_free (CompareRequest *req)
{
  qb_store_unref (req->store);
  g_free (req->ids);
  g_free (req);
}

static void
compare_thread (GTask        *task,
                gpointer      source,
                gpointer      data,
                GCancellable *cancellable)
{
  CompareRequest *req = data;
  GError *error = NULL;
  QbComparison *c = qb_store_compare (req->store, req->ids, req->n, &error);

  if (c)
    g_task_return_pointer (task, c, (GDestroyNotify) qb_comparison_free);
  else
    g_task_return_error (task, error);
}

static void
update_title (QbComparePage *self)
{
  QbComparison *c = self->comparison;
  guint differ = 0;
  g_autofree char *text = NULL;

  if (c == NULL)
    {
      gtk_label_set_text (self->title_label, "Select two or more experiments and press Compare");
      return;
    }
  for (guint r = 0; r < c->n_rows; r++)
    differ += c->rows[r].differs;
  text = g_strdup_printf ("%u experiments · %u tensors · %u in different formats",
                          c->n_experiments, c->n_rows, differ);
  gtk_label_set_text (self->title_label, text);
}

/* Takes c (NULL: none). */
static void
show_comparison (QbComparePage *self,
                 QbComparison  *c)
{
  /* The format rows point into the old comparison: clear them first. */
  QbComparison *old = g_steal_pointer (&self->comparison);

  update_formats (self);
  g_clear_pointer (&old, qb_comparison_free);
  self->comparison = c;
  update_title (self);
  update_scatter (self);
  update_bars (self);
  update_formats (self);
}

static void
compare_done (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  QbComparePage *self = QB_COMPARE_PAGE (object);
  CompareRequest *req = g_task_get_task_data (G_TASK (result));
  g_autoptr(GError) error = NULL;
  QbComparison *c = g_task_propagate_pointer (G_TASK (result), &error);

  self->n_pending--;
  /* Closed while the task ran, or superseded by a newer comparison. */
  if (req->generation != self->generation || self->format_names == NULL)
    {
      g_clear_pointer (&c, qb_comparison_free);
      return;
    }
  if (c == NULL)
    {
      g_signal_emit (self, signals[ERROR], 0, error->message);
      return;
    }
  show_comparison (self, c);
}

/* -- controls --------------------------------------------------------------- */

static void
on_control_changed (GObject       *object,
                    GParamSpec    *pspec,
                    QbComparePage *self)
{
  if (GTK_IS_DROP_DOWN (object) && GTK_DROP_DOWN (object) == self->layer_measure_dropdown)
    update_bars (self);
  else
    update_scatter (self);
}

static void
on_only_diff_toggled (GtkCheckButton *check,
                      QbComparePage  *self)
{
  gtk_filter_changed (GTK_FILTER (self->diff_filter), GTK_FILTER_CHANGE_DIFFERENT);
}

static void
on_view_changed (QbComparePage *self)
{
  const char *name = gtk_stack_get_visible_child_name (self->view_stack);

  gtk_widget_set_visible (self->scatter_controls, g_strcmp0 (name, "scatter") == 0);
  gtk_widget_set_visible (GTK_WIDGET (self->layer_measure_dropdown), g_strcmp0 (name, "layers") == 0);
  gtk_widget_set_visible (GTK_WIDGET (self->only_diff_check), g_strcmp0 (name, "formats") == 0);
}

/* -- GObject -------------------------------------------------------------- */

static void
qb_compare_page_dispose (GObject *object)
{
  QbComparePage *self = QB_COMPARE_PAGE (object);

  g_clear_pointer (&self->store, qb_store_unref);
  qb_ui_dispose_template (GTK_WIDGET (self), QB_TYPE_COMPARE_PAGE);
  g_clear_object (&self->format_rows);
  self->format_names = NULL;    /* owned by format_rows */
  g_clear_pointer (&self->row_by_name, g_hash_table_unref);
  g_clear_pointer (&self->comparison, qb_comparison_free);
  G_OBJECT_CLASS (qb_compare_page_parent_class)->dispose (object);
}

static void
qb_compare_page_class_init (QbComparePageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = qb_compare_page_dispose;

  signals[ERROR] = g_signal_new ("error", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                 0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);

  qb_ui_ensure_resources ();
  gtk_widget_class_set_template_from_resource (widget_class, "/org/quantbench/Quantbench/ui/qb-compare-page.ui");
  gtk_widget_class_bind_template_child (widget_class, QbComparePage, title_label);
  gtk_widget_class_bind_template_child (widget_class, QbComparePage, scatter_controls);
  gtk_widget_class_bind_template_child (widget_class, QbComparePage, x_dropdown);
  gtk_widget_class_bind_template_child (widget_class, QbComparePage, metric_dropdown);
  gtk_widget_class_bind_template_child (widget_class, QbComparePage, layer_measure_dropdown);
  gtk_widget_class_bind_template_child (widget_class, QbComparePage, only_diff_check);
  gtk_widget_class_bind_template_child (widget_class, QbComparePage, view_stack);
  gtk_widget_class_bind_template_callback (widget_class, on_view_changed);
  gtk_widget_class_set_css_name (widget_class, "comparepage");
}

static void
build_format_view (QbComparePage *self)
{
  GtkWidget *scroller = gtk_scrolled_window_new ();

  self->format_names = gtk_string_list_new (NULL);
  self->diff_filter = gtk_custom_filter_new (filter_diff, self, NULL);
  self->format_rows = gtk_filter_list_model_new (G_LIST_MODEL (self->format_names), GTK_FILTER (self->diff_filter));
  self->format_view = GTK_COLUMN_VIEW (gtk_column_view_new (GTK_SELECTION_MODEL (
                        gtk_no_selection_new (G_LIST_MODEL (g_object_ref (self->format_rows))))));
  gtk_widget_add_css_class (GTK_WIDGET (self->format_view), "data-table");
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->format_view), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  "Tensor formats by experiment", -1);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scroller), GTK_WIDGET (self->format_view));
  gtk_stack_add_titled (self->view_stack, scroller, "formats", "Formats");
}

static void
qb_compare_page_init (QbComparePage *self)
{
  g_autoptr(GtkStringList) metrics = gtk_string_list_new (NULL);

  gtk_widget_init_template (GTK_WIDGET (self));

  for (guint m = 0; m < QB_METRIC_N; m++)
    gtk_string_list_append (metrics, qb_metric_label (m));
  gtk_drop_down_set_model (self->metric_dropdown, G_LIST_MODEL (metrics));
  gtk_drop_down_set_selected (self->metric_dropdown, QB_METRIC_SQNR);

  self->scatter = qb_scatter_view_new ();
  self->bars = qb_layer_bars_view_new ();
  qb_scatter_view_set_placeholder (QB_SCATTER_VIEW (self->scatter),
                                   "Select two or more experiments and press Compare");
  qb_layer_bars_view_set_placeholder (QB_LAYER_BARS_VIEW (self->bars),
                                      "Select two or more experiments and press Compare");
  gtk_stack_add_titled (self->view_stack, self->scatter, "scatter", "Size vs. error");
  gtk_stack_add_titled (self->view_stack, self->bars, "layers", "Per layer");
  build_format_view (self);

  g_signal_connect (self->x_dropdown, "notify::selected", G_CALLBACK (on_control_changed), self);
  g_signal_connect (self->metric_dropdown, "notify::selected", G_CALLBACK (on_control_changed), self);
  g_signal_connect (self->layer_measure_dropdown, "notify::selected", G_CALLBACK (on_control_changed), self);
  g_signal_connect (self->only_diff_check, "toggled", G_CALLBACK (on_only_diff_toggled), self);
  update_title (self);
  update_scatter (self);
  on_view_changed (self);
}

GtkWidget *
qb_compare_page_new (void)
{
  return g_object_new (QB_TYPE_COMPARE_PAGE, NULL);
}

void
qb_compare_page_set_store (QbComparePage *self,
                           QbStore       *store)
{
  g_return_if_fail (QB_IS_COMPARE_PAGE (self));

  g_clear_pointer (&self->store, qb_store_unref);
  if (store)
    self->store = qb_store_ref (store);
}

void
qb_compare_page_compare (QbComparePage *self,
                         const gint64  *ids,
                         guint          n)
{
  g_autoptr(GTask) task = NULL;
  CompareRequest *req;

  g_return_if_fail (QB_IS_COMPARE_PAGE (self));

  if (self->store == NULL || n == 0)
    return;
  req = g_new0 (CompareRequest, 1);
  req->store = qb_store_ref (self->store);
  req->ids = g_memdup2 (ids, sizeof (gint64) * n);
  req->n = n;
  req->generation = ++self->generation;
  self->n_pending++;
  task = g_task_new (self, NULL, compare_done, NULL);
  g_task_set_source_tag (task, qb_compare_page_compare);
  g_task_set_task_data (task, req, (GDestroyNotify) request_free);
  g_task_run_in_thread (task, compare_thread);
}

void
qb_compare_page_clear (QbComparePage *self)
{
  g_return_if_fail (QB_IS_COMPARE_PAGE (self));

  /* A comparison still being read is dropped when it arrives. */
  self->generation++;
  show_comparison (self, NULL);
}

gboolean
qb_compare_page_is_busy (QbComparePage *self)
{
  return self->n_pending > 0;
}

const QbComparison *
qb_compare_page_get_comparison (QbComparePage *self)
{
  return self->comparison;
}

void
qb_compare_page_show_view (QbComparePage *self,
                           const char    *name)
{
  if (gtk_stack_get_child_by_name (self->view_stack, name))
    gtk_stack_set_visible_child_name (self->view_stack, name);
}

void
qb_compare_page_set_metric (QbComparePage *self,
                            QbMetric       metric)
{
  gtk_drop_down_set_selected (self->metric_dropdown, metric);
}

QbChart *
qb_compare_page_get_visible_chart (QbComparePage *self)
{
  GtkWidget *child = gtk_stack_get_visible_child (self->view_stack);
  return QB_IS_CHART (child) ? QB_CHART (child) : NULL;
}

QbScatterView *
qb_compare_page_get_scatter (QbComparePage *self)
{
  return QB_SCATTER_VIEW (self->scatter);
}

QbLayerBarsView *
qb_compare_page_get_layer_bars (QbComparePage *self)
{
  return QB_LAYER_BARS_VIEW (self->bars);
}

GListModel *
qb_compare_page_get_format_rows (QbComparePage *self)
{
  return G_LIST_MODEL (self->format_rows);
}
