/* SPDX-License-Identifier: MIT */
/* qb-stored-tensors-view.c — a stored experiment's tensors and experts. */
#include "qb-stored-tensors-view.h"

#include <math.h>

/* -- columns -------------------------------------------------------------- */

typedef struct {
  const char *id;
  const char *title;
  const char *tooltip;
  char     *(*text) (QbStoredTensorItem *item);
  double    (*key)  (QbStoredTensorItem *item);   /* NULL: by text */
  int         width;
} Column;

static char *
number_or_dash (double      v,
                const char *format)
{
  if (isnan (v))
    return g_strdup ("–");
  if (isinf (v))
    return g_strdup (v > 0 ? "∞" : "−∞");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
  return g_strdup_printf (format, v);
#pragma GCC diagnostic pop
}

static const QbTensorResult *
result_of (QbStoredTensorItem *item)
{
  return qb_stored_tensor_item_get_stored (item)->result;
}

static char *text_name (QbStoredTensorItem *i) { return g_strdup (qb_stored_tensor_item_get_name (i)); }
static char *text_format (QbStoredTensorItem *i) { return g_strdup (result_of (i)->format ? result_of (i)->format : "?"); }
static char *text_bpw (QbStoredTensorItem *i) { return number_or_dash (result_of (i)->bpw, "%.2f"); }
static char *text_sqnr (QbStoredTensorItem *i) { return number_or_dash (qb_stored_tensor_item_get_metrics (i)->sqnr_db, "%.2f"); }
static char *text_rmse (QbStoredTensorItem *i) { return number_or_dash (qb_stored_tensor_item_get_metrics (i)->rmse_rel, "%.5f"); }
static char *text_cosine (QbStoredTensorItem *i) { return number_or_dash (qb_stored_tensor_item_get_metrics (i)->cosine, "%.6f"); }
static char *text_maxerr (QbStoredTensorItem *i) { return number_or_dash (qb_stored_tensor_item_get_metrics (i)->max_abs_err, "%.4g"); }
static char *text_mean (QbStoredTensorItem *i) { return number_or_dash (qb_stored_tensor_item_get_metrics (i)->mean, "%.3g"); }
static char *text_std (QbStoredTensorItem *i) { return number_or_dash (qb_stored_tensor_item_get_metrics (i)->std, "%.4g"); }
static char *text_kurtosis (QbStoredTensorItem *i) { return number_or_dash (qb_stored_tensor_item_get_metrics (i)->kurtosis, "%.2f"); }
static char *text_outliers (QbStoredTensorItem *i) { return number_or_dash (qb_stored_tensor_item_get_metrics (i)->outlier_share * 100, "%.3f"); }

/* Tensors in model order, an expert tensor's experts in theirs. */
static double
key_name (QbStoredTensorItem *i)
{
  int e = qb_stored_tensor_item_get_expert (i);
  return e >= 0 ? e : qb_stored_tensor_item_get_stored (i)->position;
}

static double key_bpw (QbStoredTensorItem *i) { return result_of (i)->bpw; }
static double key_sqnr (QbStoredTensorItem *i) { return qb_stored_tensor_item_get_metrics (i)->sqnr_db; }
static double key_rmse (QbStoredTensorItem *i) { return qb_stored_tensor_item_get_metrics (i)->rmse_rel; }
static double key_cosine (QbStoredTensorItem *i) { return qb_stored_tensor_item_get_metrics (i)->cosine; }
static double key_maxerr (QbStoredTensorItem *i) { return qb_stored_tensor_item_get_metrics (i)->max_abs_err; }
static double key_mean (QbStoredTensorItem *i) { return qb_stored_tensor_item_get_metrics (i)->mean; }
static double key_std (QbStoredTensorItem *i) { return qb_stored_tensor_item_get_metrics (i)->std; }
static double key_kurtosis (QbStoredTensorItem *i) { return qb_stored_tensor_item_get_metrics (i)->kurtosis; }
static double key_outliers (QbStoredTensorItem *i) { return qb_stored_tensor_item_get_metrics (i)->outlier_share; }

static const Column columns[] = {
  { "name", "Tensor", "Tensor, or one expert of a 3-D expert tensor (the arrow opens its experts)",
    text_name, key_name, 250 },
  { "format", "Format", "The format the run used (one for all of a tensor's experts)", text_format, NULL, 70 },
  { "bpw", "bpw", "Bits per weight, scales included", text_bpw, key_bpw, 56 },
  { "sqnr", "SQNR dB", "Signal-to-quantization-noise ratio", text_sqnr, key_sqnr, 76 },
  { "rmse", "Rel. RMSE", "RMS error relative to the weights' RMS", text_rmse, key_rmse, 80 },
  { "cosine", "Cosine", "Cosine similarity of original and quantized weights", text_cosine, key_cosine, 80 },
  { "maxerr", "Max err", "Largest absolute error", text_maxerr, key_maxerr, 70 },
  { "mean", "Mean", "Mean of the original weights", text_mean, key_mean, 76 },
  { "std", "Std", "Standard deviation of the original weights", text_std, key_std, 70 },
  { "kurtosis", "Kurtosis", "Excess kurtosis of the original weights (0: normal; heavy tails are hard to quantize)",
    text_kurtosis, key_kurtosis, 72 },
  { "outliers", "Outl. %", "Share of weights beyond 6σ of the tensor's mean", text_outliers, key_outliers, 64 },
};

/* -- the widget ----------------------------------------------------------- */

#define FILL_CHUNK 8

struct _QbStoredTensorsView
{
  GtkWidget            parent_instance;

  GtkWidget           *box;
  GtkLabel            *title_label;
  GtkLabel            *summary_label;
  GtkWidget           *tools;         /* search and commands: with an experiment only */
  GtkSearchEntry      *search_entry;
  GtkStack            *stack;
  GtkLabel            *empty_label;
  GtkColumnView       *column_view;
  GtkLabel            *facts_label;
  GtkWidget           *histogram;
  GtkWidget           *error_view;

  GListStore          *root;          /* QbStoredTensorItem, every stored tensor */
  GtkStringFilter     *name_filter;
  GtkCustomFilter     *experts_filter;
  GtkFilterListModel  *filtered;
  GtkTreeListModel    *tree;
  GtkSortListModel    *sorted;
  GtkSliceListModel   *shown;         /* grows frame by frame (see start_fill) */
  GtkSingleSelection  *selection;

  QbStore             *store;
  gint64               id;
  guint                n_done;
  guint                generation;    /* of the latest read of a list */
  guint                n_reading;     /* reads in flight */
  guint                fill_tick;
  guint                drain_source;  /* idle letting go of the rows shown, see begin_drain */
  GPtrArray           *pending;       /* items read while the view let go of the old ones */
  GHashTable          *name_items;    /* the bound GtkListItems of the name column */
  guint                n_rows_built;
  guint                n_rows_freed;
  guint                built_at_tick;
  gboolean             experts_only;
  QbStoredTensorItem  *worst;         /* tensor of the expert of lowest SQNR, or NULL */
  int                  worst_expert;
  QbStoredTensorItem  *loading;       /* tensor whose histograms are being read */
};

G_DEFINE_FINAL_TYPE (QbStoredTensorsView, qb_stored_tensors_view, GTK_TYPE_WIDGET)

enum {
  PROP_0,
  PROP_EXPERTS_ONLY,
  PROP_DIFFERENCE,
  N_PROPS
};

static GParamSpec *props[N_PROPS];

static QbStoredTensorItem *
row_item (gpointer row)
{
  return QB_STORED_TENSOR_ITEM (gtk_tree_list_row_get_item (GTK_TREE_LIST_ROW (row)));
}

/* -- cells ------------------------------------------------------------------ */

static void
setup_name (GtkSignalListItemFactory *factory,
            GtkListItem              *item,
            QbStoredTensorsView      *self)
{
  GtkWidget *expander = gtk_tree_expander_new ();
  GtkWidget *label = gtk_label_new (NULL);

  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_label_set_ellipsize (GTK_LABEL (label), PANGO_ELLIPSIZE_MIDDLE);
  gtk_tree_expander_set_child (GTK_TREE_EXPANDER (expander), label);
  gtk_list_item_set_child (item, expander);
  self->n_rows_built++;
}

static void
teardown_name (GtkSignalListItemFactory *factory,
               GtkListItem              *item,
               QbStoredTensorsView      *self)
{
  self->n_rows_freed++;
}

static void
bind_name (GtkSignalListItemFactory *factory,
           GtkListItem              *item,
           QbStoredTensorsView      *self)
{
  GtkTreeListRow *row = gtk_list_item_get_item (item);
  GtkWidget *expander = gtk_list_item_get_child (item);
  GtkWidget *label = gtk_tree_expander_get_child (GTK_TREE_EXPANDER (expander));
  g_autoptr(QbStoredTensorItem) it = row_item (row);

  g_hash_table_add (self->name_items, item);
  gtk_tree_expander_set_list_row (GTK_TREE_EXPANDER (expander), row);
  gtk_label_set_text (GTK_LABEL (label), qb_stored_tensor_item_get_name (it));
  gtk_widget_set_tooltip_text (label, qb_stored_tensor_item_get_expert (it) >= 0
                                      ? NULL : qb_stored_tensor_item_get_name (it));
}

static void
unbind_name (GtkSignalListItemFactory *factory,
             GtkListItem              *item,
             QbStoredTensorsView      *self)
{
  if (self->name_items)          /* NULL once disposed */
    g_hash_table_remove (self->name_items, item);
  gtk_tree_expander_set_list_row (GTK_TREE_EXPANDER (gtk_list_item_get_child (item)), NULL);
}

static void
setup_cell (GtkSignalListItemFactory *factory,
            GtkListItem              *item,
            gpointer                  data)
{
  const Column *col = data;
  GtkWidget *label = gtk_label_new (NULL);

  gtk_label_set_xalign (GTK_LABEL (label), col->key ? 1.0 : 0.0);
  gtk_widget_add_css_class (label, "numeric");
  gtk_list_item_set_child (item, label);
}

static void
bind_cell (GtkSignalListItemFactory *factory,
           GtkListItem              *item,
           gpointer                  data)
{
  const Column *col = data;
  g_autoptr(QbStoredTensorItem) it = row_item (gtk_list_item_get_item (item));
  g_autofree char *text = col->text (it);
  GtkWidget *label = gtk_list_item_get_child (item);

  gtk_label_set_text (GTK_LABEL (label), text);
  /* An expert's format is its tensor's: said once, on the tensor's row. */
  if (qb_stored_tensor_item_get_expert (it) >= 0 && col->key == NULL)
    gtk_widget_add_css_class (label, "dim-label");
  else
    gtk_widget_remove_css_class (label, "dim-label");
}

/* NaN (not measured) last in either order would need the sort order;
 * here it compares as the lowest value. */
static int
compare_items (gconstpointer a,
               gconstpointer b,
               gpointer      data)
{
  const Column *col = data;
  QbStoredTensorItem *x = QB_STORED_TENSOR_ITEM ((gpointer) a);
  QbStoredTensorItem *y = QB_STORED_TENSOR_ITEM ((gpointer) b);

  if (col->key)
    {
      double u = col->key (x), v = col->key (y);
      if (isnan (u) || isnan (v))
        return isnan (u) && isnan (v) ? 0 : isnan (u) ? -1 : 1;
      return u < v ? -1 : u > v ? 1 : 0;
    }
  else
    {
      g_autofree char *s = col->text (x);
      g_autofree char *t = col->text (y);
      return g_utf8_collate (s, t);
    }
}

static void
add_columns (QbStoredTensorsView *self)
{
  for (gsize i = 0; i < G_N_ELEMENTS (columns); i++)
    {
      const Column *col = &columns[i];
      GtkListItemFactory *factory = gtk_signal_list_item_factory_new ();
      GtkColumnViewColumn *column;
      GtkSorter *sorter;

      if (i == 0)
        {
          g_signal_connect (factory, "setup", G_CALLBACK (setup_name), self);
          g_signal_connect (factory, "teardown", G_CALLBACK (teardown_name), self);
          g_signal_connect (factory, "bind", G_CALLBACK (bind_name), self);
          g_signal_connect (factory, "unbind", G_CALLBACK (unbind_name), self);
        }
      else
        {
          g_signal_connect (factory, "setup", G_CALLBACK (setup_cell), (gpointer) col);
          g_signal_connect (factory, "bind", G_CALLBACK (bind_cell), (gpointer) col);
        }
      column = gtk_column_view_column_new (col->title, factory);
      g_object_set_data (G_OBJECT (column), "qb-id", (gpointer) col->id);
      gtk_column_view_column_set_resizable (column, TRUE);
      gtk_column_view_column_set_fixed_width (column, col->width);
      gtk_column_view_column_set_expand (column, i == 0);
      sorter = GTK_SORTER (gtk_custom_sorter_new (compare_items, (gpointer) col, NULL));
      gtk_column_view_column_set_sorter (column, sorter);
      g_object_unref (sorter);
      gtk_column_view_append_column (self->column_view, column);
      g_object_unref (column);
    }
}

static const Column *
column_by_id (const char *id)
{
  for (gsize i = 0; i < G_N_ELEMENTS (columns); i++)
    if (g_str_equal (columns[i].id, id))
      return &columns[i];
  return NULL;
}

/* -- the selected row ------------------------------------------------------- */

/* "blk.3.ffn_down_exps.weight · expert 2 of 8 · Q4_K · SQNR 21.31 dB · …" */
static char *
describe (QbStoredTensorItem *item)
{
  const QbTensorMetrics *m = qb_stored_tensor_item_get_metrics (item);
  const QbTensorResult *r = result_of (item);
  int e = qb_stored_tensor_item_get_expert (item);
  GString *s = g_string_new (qb_stored_tensor_item_get_tensor_name (item));
  g_autofree char *sqnr = number_or_dash (m->sqnr_db, "%.2f");

  if (e >= 0)
    g_string_append_printf (s, " · expert %d of %u", e, r->n_experts);
  else if (r->n_experts > 0)
    g_string_append_printf (s, " · %u experts", r->n_experts);
  g_string_append_printf (s, " · %s · SQNR %s dB · rel. RMSE %.5f · cosine %.6f · max |err| %.4g",
                          r->format ? r->format : "?", sqnr, m->rmse_rel, m->cosine, m->max_abs_err);
  if (!isnan (m->mean))
    g_string_append_printf (s, " · mean %.3g ± %.3g · kurtosis %.2f", m->mean, m->std, m->kurtosis);
  if (!isnan (m->outlier_share))
    g_string_append_printf (s, " · outliers %.3f %%", m->outlier_share * 100);
  return g_string_free (s, FALSE);
}

static void
show_charts (QbStoredTensorsView *self,
             QbStoredTensorItem  *item)
{
  QbHistogramView *weights = QB_HISTOGRAM_VIEW (self->histogram);
  QbHistogramView *errors = QB_HISTOGRAM_VIEW (self->error_view);
  g_autofree char *title = NULL;

  if (item == NULL || !qb_stored_tensor_item_has_data (item))
    {
      const char *text = item == NULL ? "Select a tensor or an expert" : "Reading…";
      qb_histogram_view_set_histograms (weights, NULL, NULL);
      qb_histogram_view_set_histograms (errors, NULL, NULL);
      qb_histogram_view_set_placeholder (weights, text);
      qb_histogram_view_set_placeholder (errors, text);
      return;
    }
  qb_histogram_view_set_histograms (weights, qb_stored_tensor_item_get_histogram (item, 0),
                                    qb_stored_tensor_item_get_histogram (item, 1));
  qb_histogram_view_set_histograms (errors, qb_stored_tensor_item_get_histogram (item, 2), NULL);
  qb_histogram_view_set_placeholder (weights, "No histogram stored");
  qb_histogram_view_set_placeholder (errors, "No histogram stored");
  title = qb_stored_tensor_item_get_expert (item) >= 0
          ? g_strdup_printf ("%s #%d", qb_stored_tensor_item_get_tensor_name (item),
                             qb_stored_tensor_item_get_expert (item))
          : g_strdup (qb_stored_tensor_item_get_name (item));
  qb_histogram_view_set_title (weights, title);
  qb_histogram_view_set_title (errors, title);
}

typedef struct {
  QbStore            *store;
  QbStoredTensor     *tensor;     /* a copy, read into */
  QbStoredTensorItem *item;
  guint               generation;
} DataLoad;

static void
data_load_free (DataLoad *load)
{
  qb_store_unref (load->store);
  qb_stored_tensor_free (load->tensor);
  g_object_unref (load->item);
  g_free (load);
}

static void
data_load_thread (GTask        *task,
                  gpointer      source,
                  gpointer      data,
                  GCancellable *cancellable)
{
  DataLoad *load = data;
  GError *error = NULL;

  if (qb_store_load_tensor_data (load->store, load->tensor, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void update_selected (QbStoredTensorsView *self);

static void
data_load_done (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  QbStoredTensorsView *self = QB_STORED_TENSORS_VIEW (source);
  DataLoad *load = g_task_get_task_data (G_TASK (result));
  g_autoptr(GError) error = NULL;

  self->n_reading--;
  if (self->loading == load->item)
    g_clear_object (&self->loading);
  if (load->generation != self->generation)
    return;
  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      gtk_label_set_text (self->facts_label, error->message);
      return;
    }
  qb_stored_tensor_item_set_stored (load->item, g_steal_pointer (&load->tensor));
  update_selected (self);
}

/* Reads a tensor's histograms (its experts' too) in the background. */
static void
load_data (QbStoredTensorsView *self,
           QbStoredTensorItem  *tensor)
{
  const QbStoredTensor *src = qb_stored_tensor_item_get_stored (tensor);
  g_autoptr(GTask) task = NULL;
  DataLoad *load;

  if (self->store == NULL || self->loading == tensor)
    return;
  load = g_new0 (DataLoad, 1);
  load->store = qb_store_ref (self->store);
  load->tensor = qb_stored_tensor_new ();
  qb_tensor_result_free (load->tensor->result);
  load->tensor->result = qb_tensor_result_copy (src->result);
  load->tensor->id = src->id;
  load->tensor->position = src->position;
  load->tensor->original_bytes = src->original_bytes;
  load->item = g_object_ref (tensor);
  load->generation = self->generation;
  g_set_object (&self->loading, tensor);
  self->n_reading++;
  task = g_task_new (self, NULL, data_load_done, NULL);
  g_task_set_source_tag (task, load_data);
  g_task_set_task_data (task, load, (GDestroyNotify) data_load_free);
  g_task_run_in_thread (task, data_load_thread);
}

static void
update_selected (QbStoredTensorsView *self)
{
  QbStoredTensorItem *item = qb_stored_tensors_view_get_selected (self);
  g_autofree char *facts = item ? describe (item) : NULL;

  gtk_label_set_text (self->facts_label, facts ? facts : "");
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->facts_label), facts);
  show_charts (self, item);
  if (item != NULL && !qb_stored_tensor_item_has_data (item))
    {
      QbStoredTensorItem *tensor = qb_stored_tensor_item_get_parent (item);
      load_data (self, tensor ? tensor : item);
    }
}

static void
on_selection_changed (GtkSelectionModel   *model,
                      guint                position,
                      guint                n_items,
                      QbStoredTensorsView *self)
{
  update_selected (self);
}

/* -- filling the view ------------------------------------------------------ */

/* As the layer table does (qb-layer-table.c): GTK 4.8's column view makes
 * the cells of up to ~200 rows at once when its model gets them, so the
 * view is given FILL_CHUNK more rows a frame while it still makes rows for
 * them, then the rest at once. */
static void
end_fill (QbStoredTensorsView *self)
{
  gtk_slice_list_model_set_size (self->shown, G_MAXUINT);
  self->fill_tick = 0;
}

/* The fill stops where it is (the rows not given yet stay out). */
static void
remove_fill_tick (QbStoredTensorsView *self)
{
  if (self->fill_tick != 0)
    gtk_widget_remove_tick_callback (GTK_WIDGET (self), self->fill_tick);
  self->fill_tick = 0;
}

static void
stop_fill (QbStoredTensorsView *self)
{
  if (self->fill_tick != 0)
    {
      remove_fill_tick (self);
      end_fill (self);
    }
}

static gboolean
fill_step (GtkWidget     *widget,
           GdkFrameClock *clock,
           gpointer       data)
{
  QbStoredTensorsView *self = QB_STORED_TENSORS_VIEW (widget);
  guint size = gtk_slice_list_model_get_size (self->shown);
  gboolean built = self->n_rows_built != self->built_at_tick;

  if (!built || size >= g_list_model_get_n_items (G_LIST_MODEL (self->sorted)))
    {
      end_fill (self);
      return G_SOURCE_REMOVE;
    }
  self->built_at_tick = self->n_rows_built;
  gtk_slice_list_model_set_size (self->shown, size + FILL_CHUNK);
  return G_SOURCE_CONTINUE;
}

static void
start_fill (QbStoredTensorsView *self)
{
  stop_fill (self);
  self->built_at_tick = self->n_rows_built;
  gtk_slice_list_model_set_size (self->shown, FILL_CHUNK);
  self->fill_tick = gtk_widget_add_tick_callback (GTK_WIDGET (self), fill_step, NULL, NULL);
}

/* And the other way: freeing the ~200 rows of cells of a 1,000-tensor
 * experiment at once, when another experiment (or none) is shown, held
 * the main loop for ~70 ms.  So the view first lets go of the rows it
 * has, DRAIN_CHUNK an iteration from the end (rows past the last with
 * cells at once: they cost nothing), blank meanwhile; the experiment read
 * meanwhile is shown after (show_items).  An idle rather than a tick
 * callback: the page may be off screen, and its cells cost the same to
 * free there. */
#define DRAIN_CHUNK 16

static void show_items (QbStoredTensorsView *self, GPtrArray *items);

/* One past the last row shown that has cells. */
static guint
rows_with_cells_end (QbStoredTensorsView *self)
{
  GHashTableIter iter;
  gpointer item;
  guint end = 0;

  g_hash_table_iter_init (&iter, self->name_items);
  while (g_hash_table_iter_next (&iter, &item, NULL))
    end = MAX (end, gtk_list_item_get_position (item) + 1);
  return end;
}

/* The view has no rows left: the old items go (unseen, so at once) and
 * what was read meanwhile comes. */
static void
end_drain (QbStoredTensorsView *self)
{
  g_autoptr(GPtrArray) items = g_steal_pointer (&self->pending);

  g_clear_handle_id (&self->drain_source, g_source_remove);
  g_list_store_remove_all (self->root);
  gtk_slice_list_model_set_size (self->shown, G_MAXUINT);
  if (items)
    show_items (self, items);
}

static gboolean
drain_step (gpointer data)
{
  QbStoredTensorsView *self = data;
  guint size = g_list_model_get_n_items (G_LIST_MODEL (self->shown));

  if (size == 0)
    {
      self->drain_source = 0;
      end_drain (self);
      return G_SOURCE_REMOVE;
    }
  gtk_slice_list_model_set_size (self->shown, size - MIN (size, DRAIN_CHUNK));
  return G_SOURCE_CONTINUE;
}

/* The view lets go of the rows shown before others come (or none). */
static void
begin_drain (QbStoredTensorsView *self)
{
  guint end;

  gtk_single_selection_set_selected (self->selection, GTK_INVALID_LIST_POSITION);
  /* Not stop_fill (): that gives the view every row first. */
  remove_fill_tick (self);
  g_clear_pointer (&self->pending, g_ptr_array_unref);
  if (self->drain_source != 0)
    return;
  end = rows_with_cells_end (self);
  gtk_slice_list_model_set_size (self->shown, end);
  if (end == 0)
    {
      end_drain (self);
      return;
    }
  self->drain_source = g_idle_add (drain_step, self);
}

/* -- reading an experiment's tensors --------------------------------------- */

/* The expert of lowest SQNR among all, and the summary line. */
static char *
summarize (QbStoredTensorsView *self,
           GPtrArray           *items)
{
  guint n_expert_tensors = 0, n_experts_max = 0;
  double worst = INFINITY;
  GString *s = g_string_new (NULL);

  g_clear_object (&self->worst);
  for (guint i = 0; i < items->len; i++)
    {
      QbStoredTensorItem *item = g_ptr_array_index (items, i);
      const QbTensorResult *r = result_of (item);
      guint n = qb_stored_tensor_item_get_n_experts (item);

      n_expert_tensors += n > 0;
      n_experts_max = MAX (n_experts_max, n);
      for (guint e = 0; e < n; e++)
        if (r->expert_metrics[e].sqnr_db < worst)
          {
            worst = r->expert_metrics[e].sqnr_db;
            g_set_object (&self->worst, item);
            self->worst_expert = (int) e;
          }
    }
  g_string_append_printf (s, "%u tensor%s", items->len, items->len == 1 ? "" : "s");
  if (n_expert_tensors > 0)
    g_string_append_printf (s, " · %u expert tensor%s of %u experts", n_expert_tensors,
                            n_expert_tensors == 1 ? "" : "s", n_experts_max);
  if (self->worst != NULL)
    g_string_append_printf (s, " · lowest expert SQNR %.2f dB: %s #%d", worst,
                            qb_stored_tensor_item_get_name (self->worst), self->worst_expert);
  return g_string_free (s, FALSE);
}

typedef struct {
  QbStore *store;
  gint64   id;
  guint    generation;
} ListLoad;

static void
list_load_free (ListLoad *load)
{
  qb_store_unref (load->store);
  g_free (load);
}

static void
list_load_thread (GTask        *task,
                  gpointer      source,
                  gpointer      data,
                  GCancellable *cancellable)
{
  ListLoad *load = data;
  GError *error = NULL;
  GPtrArray *tensors = qb_store_get_tensors (load->store, load->id, &error);

  if (tensors)
    g_task_return_pointer (task, tensors, (GDestroyNotify) g_ptr_array_unref);
  else
    g_task_return_error (task, error);
}

static void
update_actions (QbStoredTensorsView *self)
{
  gtk_widget_set_sensitive (self->tools, self->id > 0);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "tensors.select-worst-expert", self->worst != NULL);
}

static void
list_load_done (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  QbStoredTensorsView *self = QB_STORED_TENSORS_VIEW (source);
  ListLoad *load = g_task_get_task_data (G_TASK (result));
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) tensors = g_task_propagate_pointer (G_TASK (result), &error);
  g_autoptr(GPtrArray) items = NULL;

  self->n_reading--;
  if (load->generation != self->generation)
    return;
  if (tensors == NULL)
    {
      gtk_label_set_text (self->empty_label, error->message);
      gtk_stack_set_visible_child_name (self->stack, "empty");
      return;
    }
  items = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < tensors->len; i++)
    {
      /* The items own the results now. */
      g_ptr_array_add (items, qb_stored_tensor_item_new (g_ptr_array_index (tensors, i)));
      tensors->pdata[i] = NULL;
    }
  if (self->drain_source != 0)
    {
      /* Shown once the view has let go of the previous rows. */
      g_clear_pointer (&self->pending, g_ptr_array_unref);
      self->pending = g_steal_pointer (&items);
      return;
    }
  show_items (self, items);
}

/* The rows of the experiment just read, to the view. */
static void
show_items (QbStoredTensorsView *self,
            GPtrArray           *items)
{
  g_autofree char *summary = NULL;

  summary = summarize (self, items);
  gtk_label_set_text (self->summary_label, summary);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->summary_label), summary);
  start_fill (self);
  g_list_store_splice (self->root, 0, g_list_model_get_n_items (G_LIST_MODEL (self->root)),
                       items->pdata, items->len);
  gtk_label_set_text (self->empty_label, "No tensor stored yet.");
  gtk_stack_set_visible_child_name (self->stack, items->len > 0 ? "table" : "empty");
  update_actions (self);
  update_selected (self);
}

static void
read_list (QbStoredTensorsView *self)
{
  g_autoptr(GTask) task = NULL;
  ListLoad *load;

  load = g_new0 (ListLoad, 1);
  load->store = qb_store_ref (self->store);
  load->id = self->id;
  load->generation = self->generation;
  self->n_reading++;
  task = g_task_new (self, NULL, list_load_done, NULL);
  g_task_set_source_tag (task, read_list);
  g_task_set_task_data (task, load, (GDestroyNotify) list_load_free);
  g_task_run_in_thread (task, list_load_thread);
}

/* -- actions --------------------------------------------------------------- */

/* Every row to the view now (a row far down is wanted). */
static void
finish_fill (QbStoredTensorsView *self)
{
  if (self->drain_source != 0)
    end_drain (self);
  stop_fill (self);
}

/* The position of the tensor's row among the rows shown. */
static gboolean
find_tensor (QbStoredTensorsView *self,
             const char          *name,
             guint               *position)
{
  GListModel *rows = G_LIST_MODEL (self->shown);

  for (guint i = 0; i < g_list_model_get_n_items (rows); i++)
    {
      g_autoptr(GtkTreeListRow) row = g_list_model_get_item (rows, i);
      g_autoptr(QbStoredTensorItem) item = row_item (row);

      if (gtk_tree_list_row_get_depth (row) == 0 && g_str_equal (qb_stored_tensor_item_get_name (item), name))
        {
          *position = i;
          return TRUE;
        }
    }
  return FALSE;
}

/* GTK 4.8 has no gtk_column_view_scroll_to(); its inner list view has the
 * "list.scroll-to-item" action. */
static void
scroll_to (QbStoredTensorsView *self,
           guint                position)
{
  for (GtkWidget *child = gtk_widget_get_first_child (GTK_WIDGET (self->column_view));
       child; child = gtk_widget_get_next_sibling (child))
    if (GTK_IS_LIST_VIEW (child))
      gtk_widget_activate_action (child, "list.scroll-to-item", "u", position);
}

/* Selects a tensor's row (expert < 0) or one of its experts' rows,
 * opening the tensor's experts. */
static gboolean
select_row (QbStoredTensorsView *self,
            const char          *name,
            int                  expert)
{
  GListModel *rows = G_LIST_MODEL (self->shown);
  g_autoptr(GtkTreeListRow) tensor = NULL;
  guint at, tensor_at;

  finish_fill (self);
  if (!find_tensor (self, name, &at))
    return FALSE;
  tensor_at = at;
  if (expert >= 0)
    {
      tensor = g_list_model_get_item (rows, at);
      gtk_tree_list_row_set_expanded (tensor, TRUE);
      at = G_MAXUINT;
      /* The expert's row, wherever the sort puts it among its siblings. */
      for (guint i = 0; i < g_list_model_get_n_items (rows) && at == G_MAXUINT; i++)
        {
          g_autoptr(GtkTreeListRow) row = g_list_model_get_item (rows, i);
          g_autoptr(GtkTreeListRow) parent = gtk_tree_list_row_get_parent (row);
          g_autoptr(QbStoredTensorItem) item = row_item (row);

          if (parent == tensor && qb_stored_tensor_item_get_expert (item) == expert)
            at = i;
        }
      if (at == G_MAXUINT)
        return FALSE;
    }
  gtk_selection_model_select_item (GTK_SELECTION_MODEL (self->selection), at, TRUE);
  /* The tensor's row in view too when the expert's is right under it (one
   * scroll: the view makes the last one asked for). */
  if (expert >= 0 && at - tensor_at <= 2)
    scroll_to (self, tensor_at);
  else
    scroll_to (self, at);
  return TRUE;
}

static void
set_all_expanded (QbStoredTensorsView *self,
                  gboolean             expanded)
{
  GListModel *top = G_LIST_MODEL (self->filtered);

  finish_fill (self);
  for (guint i = 0; i < g_list_model_get_n_items (top); i++)
    {
      g_autoptr(GtkTreeListRow) row = gtk_tree_list_model_get_child_row (self->tree, i);
      if (row != NULL && gtk_tree_list_row_is_expandable (row))
        gtk_tree_list_row_set_expanded (row, expanded);
    }
}

static void
action_expand (GtkWidget  *widget,
               const char *name,
               GVariant   *param)
{
  set_all_expanded (QB_STORED_TENSORS_VIEW (widget), TRUE);
}

static void
action_collapse (GtkWidget  *widget,
                 const char *name,
                 GVariant   *param)
{
  set_all_expanded (QB_STORED_TENSORS_VIEW (widget), FALSE);
}

static void
action_select (GtkWidget  *widget,
               const char *name,
               GVariant   *param)
{
  const char *tensor;
  gint32 expert;

  g_variant_get (param, "(&si)", &tensor, &expert);
  select_row (QB_STORED_TENSORS_VIEW (widget), tensor, expert);
}

static void
action_select_worst (GtkWidget  *widget,
                     const char *name,
                     GVariant   *param)
{
  QbStoredTensorsView *self = QB_STORED_TENSORS_VIEW (widget);

  if (self->worst == NULL)
    return;
  /* Shown whatever the search says. */
  gtk_editable_set_text (GTK_EDITABLE (self->search_entry), "");
  gtk_string_filter_set_search (self->name_filter, NULL);
  select_row (self, qb_stored_tensor_item_get_name (self->worst), self->worst_expert);
}

/* -- filters --------------------------------------------------------------- */

static gboolean
filter_experts (gpointer item,
                gpointer data)
{
  QbStoredTensorsView *self = data;

  return !self->experts_only || qb_stored_tensor_item_get_n_experts (item) > 0;
}

static void
on_search_changed (GtkSearchEntry      *entry,
                   QbStoredTensorsView *self)
{
  gtk_string_filter_set_search (self->name_filter, gtk_editable_get_text (GTK_EDITABLE (entry)));
}

static GListModel *
create_experts (gpointer item,
                gpointer data)
{
  return qb_stored_tensor_item_get_experts (item);
}

/* -- building -------------------------------------------------------------- */

static GtkWidget *
icon_button (const char *icon,
             const char *action,
             const char *tooltip)
{
  GtkWidget *button = gtk_button_new_from_icon_name (icon);

  gtk_actionable_set_action_name (GTK_ACTIONABLE (button), action);
  gtk_widget_set_tooltip_text (button, tooltip);
  gtk_accessible_update_property (GTK_ACCESSIBLE (button), GTK_ACCESSIBLE_PROPERTY_LABEL, tooltip, -1);
  return button;
}

/* Two rows, so that a narrow page (1024 pixels wide) keeps them: the
 * title and the summary, then the search and the commands. */
static GtkWidget *
build_header (QbStoredTensorsView *self)
{
  GtkWidget *header = gtk_box_new (GTK_ORIENTATION_VERTICAL, 2);
  GtkWidget *top = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 8);
  GtkWidget *tools = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *check = gtk_check_button_new_with_mnemonic ("E_xperts only");
  GtkWidget *worst = gtk_button_new_with_mnemonic ("_Worst Expert");
  GtkWidget *diff = gtk_toggle_button_new_with_label ("Diff");

  gtk_widget_set_margin_start (header, 6);
  gtk_widget_set_margin_end (header, 6);
  gtk_widget_set_margin_top (header, 4);
  self->title_label = GTK_LABEL (gtk_label_new ("Tensors"));
  gtk_label_set_ellipsize (self->title_label, PANGO_ELLIPSIZE_END);
  gtk_widget_add_css_class (GTK_WIDGET (self->title_label), "heading");
  self->summary_label = GTK_LABEL (gtk_label_new (NULL));
  gtk_label_set_xalign (self->summary_label, 0);
  gtk_label_set_ellipsize (self->summary_label, PANGO_ELLIPSIZE_END);
  gtk_widget_set_hexpand (GTK_WIDGET (self->summary_label), TRUE);
  gtk_widget_add_css_class (GTK_WIDGET (self->summary_label), "dim-label");
  gtk_widget_add_css_class (GTK_WIDGET (self->summary_label), "numeric");
  gtk_box_append (GTK_BOX (top), GTK_WIDGET (self->title_label));
  gtk_box_append (GTK_BOX (top), GTK_WIDGET (self->summary_label));

  self->search_entry = GTK_SEARCH_ENTRY (gtk_search_entry_new ());
  gtk_editable_set_width_chars (GTK_EDITABLE (self->search_entry), 14);
  gtk_widget_set_hexpand (GTK_WIDGET (self->search_entry), TRUE);
  g_object_set (self->search_entry, "placeholder-text", "Filter tensors", NULL);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->search_entry), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  "Filter the experiment's tensors", -1);
  g_signal_connect (self->search_entry, "search-changed", G_CALLBACK (on_search_changed), self);
  gtk_actionable_set_action_name (GTK_ACTIONABLE (check), "tensors.experts-only");
  gtk_widget_set_tooltip_text (check, "Show only the 3-D expert tensors");
  gtk_actionable_set_action_name (GTK_ACTIONABLE (worst), "tensors.select-worst-expert");
  gtk_widget_set_tooltip_text (worst, "Select the expert with the lowest SQNR of this experiment");
  gtk_actionable_set_action_name (GTK_ACTIONABLE (diff), "tensors.difference");
  gtk_widget_set_tooltip_text (diff, "Quantized − original counts per bin instead of the two curves");
  gtk_box_append (GTK_BOX (tools), GTK_WIDGET (self->search_entry));
  gtk_box_append (GTK_BOX (tools), check);
  gtk_box_append (GTK_BOX (tools), worst);
  gtk_box_append (GTK_BOX (tools), diff);
  gtk_box_append (GTK_BOX (tools), icon_button ("view-list-symbolic", "tensors.expand-experts",
                                                "Show every expert tensor's experts"));
  gtk_box_append (GTK_BOX (tools), icon_button ("view-restore-symbolic", "tensors.collapse-experts",
                                                "Hide the experts' rows"));
  gtk_box_append (GTK_BOX (header), top);
  gtk_box_append (GTK_BOX (header), tools);
  self->tools = tools;
  return header;
}

static GtkWidget *
build_table (QbStoredTensorsView *self)
{
  GtkWidget *scrolled = gtk_scrolled_window_new ();
  GtkWidget *empty;

  self->column_view = GTK_COLUMN_VIEW (gtk_column_view_new (NULL));
  gtk_widget_add_css_class (GTK_WIDGET (self->column_view), "data-table");
  gtk_column_view_set_reorderable (self->column_view, FALSE);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->column_view), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  "The experiment's tensors", -1);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scrolled), GTK_WIDGET (self->column_view));
  gtk_widget_set_vexpand (scrolled, TRUE);
  gtk_widget_set_size_request (scrolled, -1, 110);

  self->empty_label = GTK_LABEL (gtk_label_new ("Select an experiment to see its tensors."));
  empty = GTK_WIDGET (self->empty_label);
  gtk_label_set_wrap (self->empty_label, TRUE);
  gtk_widget_add_css_class (empty, "dim-label");
  gtk_widget_set_vexpand (empty, TRUE);

  self->stack = GTK_STACK (gtk_stack_new ());
  gtk_stack_add_named (self->stack, scrolled, "table");
  gtk_stack_add_named (self->stack, empty, "empty");
  gtk_stack_set_visible_child_name (self->stack, "empty");
  return GTK_WIDGET (self->stack);
}

static GtkWidget *
build_charts (QbStoredTensorsView *self)
{
  GtkWidget *charts = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);

  self->histogram = qb_histogram_view_new (QB_HISTOGRAM_KIND_WEIGHTS);
  self->error_view = qb_histogram_view_new (QB_HISTOGRAM_KIND_ERROR);
  gtk_widget_set_hexpand (self->histogram, TRUE);
  gtk_widget_set_hexpand (self->error_view, TRUE);
  /* The table takes the height left. */
  gtk_widget_set_vexpand (self->histogram, FALSE);
  gtk_widget_set_vexpand (self->error_view, FALSE);
  qb_histogram_view_set_natural_height (QB_HISTOGRAM_VIEW (self->histogram), 150);
  qb_histogram_view_set_natural_height (QB_HISTOGRAM_VIEW (self->error_view), 150);
  gtk_box_append (GTK_BOX (charts), self->histogram);
  gtk_box_append (GTK_BOX (charts), self->error_view);
  return charts;
}

static void
build_models (QbStoredTensorsView *self)
{
  GtkEveryFilter *filter = gtk_every_filter_new ();
  GtkSorter *sorter;

  self->root = g_list_store_new (QB_TYPE_STORED_TENSOR_ITEM);
  self->name_filter = gtk_string_filter_new (gtk_property_expression_new (QB_TYPE_STORED_TENSOR_ITEM,
                                                                          NULL, "name"));
  gtk_string_filter_set_match_mode (self->name_filter, GTK_STRING_FILTER_MATCH_MODE_SUBSTRING);
  self->experts_filter = gtk_custom_filter_new (filter_experts, self, NULL);
  gtk_multi_filter_append (GTK_MULTI_FILTER (filter), g_object_ref (GTK_FILTER (self->name_filter)));
  gtk_multi_filter_append (GTK_MULTI_FILTER (filter), g_object_ref (GTK_FILTER (self->experts_filter)));
  self->filtered = gtk_filter_list_model_new (g_object_ref (G_LIST_MODEL (self->root)), GTK_FILTER (filter));
  self->tree = gtk_tree_list_model_new (g_object_ref (G_LIST_MODEL (self->filtered)), FALSE, FALSE,
                                        create_experts, NULL, NULL);
  /* Sorting a column sorts the tensors, and each tensor's experts under it. */
  sorter = GTK_SORTER (gtk_tree_list_row_sorter_new (g_object_ref (gtk_column_view_get_sorter (self->column_view))));
  self->sorted = gtk_sort_list_model_new (g_object_ref (G_LIST_MODEL (self->tree)), sorter);
  self->shown = gtk_slice_list_model_new (g_object_ref (G_LIST_MODEL (self->sorted)), 0, G_MAXUINT);
  self->selection = gtk_single_selection_new (g_object_ref (G_LIST_MODEL (self->shown)));
  gtk_single_selection_set_autoselect (self->selection, FALSE);
  gtk_single_selection_set_can_unselect (self->selection, TRUE);
  gtk_column_view_set_model (self->column_view, GTK_SELECTION_MODEL (self->selection));
  g_signal_connect (self->selection, "selection-changed", G_CALLBACK (on_selection_changed), self);
}

/* -- GObject -------------------------------------------------------------- */

static void
qb_stored_tensors_view_get_property (GObject    *object,
                                     guint       prop_id,
                                     GValue     *value,
                                     GParamSpec *pspec)
{
  QbStoredTensorsView *self = QB_STORED_TENSORS_VIEW (object);

  switch (prop_id)
    {
    case PROP_EXPERTS_ONLY:
      g_value_set_boolean (value, self->experts_only);
      break;
    case PROP_DIFFERENCE:
      g_value_set_boolean (value, qb_histogram_view_get_difference (QB_HISTOGRAM_VIEW (self->histogram)));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qb_stored_tensors_view_set_property (GObject      *object,
                                     guint         prop_id,
                                     const GValue *value,
                                     GParamSpec   *pspec)
{
  QbStoredTensorsView *self = QB_STORED_TENSORS_VIEW (object);

  switch (prop_id)
    {
    case PROP_EXPERTS_ONLY:
      if (self->experts_only == g_value_get_boolean (value))
        return;
      self->experts_only = g_value_get_boolean (value);
      gtk_filter_changed (GTK_FILTER (self->experts_filter),
                          self->experts_only ? GTK_FILTER_CHANGE_MORE_STRICT : GTK_FILTER_CHANGE_LESS_STRICT);
      g_object_notify_by_pspec (object, props[PROP_EXPERTS_ONLY]);
      break;
    case PROP_DIFFERENCE:
      if (qb_histogram_view_get_difference (QB_HISTOGRAM_VIEW (self->histogram)) == g_value_get_boolean (value))
        return;
      qb_histogram_view_set_difference (QB_HISTOGRAM_VIEW (self->histogram), g_value_get_boolean (value));
      g_object_notify_by_pspec (object, props[PROP_DIFFERENCE]);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qb_stored_tensors_view_dispose (GObject *object)
{
  QbStoredTensorsView *self = QB_STORED_TENSORS_VIEW (object);

  remove_fill_tick (self);
  g_clear_handle_id (&self->drain_source, g_source_remove);
  g_clear_pointer (&self->pending, g_ptr_array_unref);
  if (self->selection)
    g_signal_handlers_disconnect_by_data (self->selection, self);
  g_clear_pointer (&self->box, gtk_widget_unparent);
  g_clear_pointer (&self->name_items, g_hash_table_unref);
  g_clear_object (&self->selection);
  g_clear_object (&self->shown);
  g_clear_object (&self->sorted);
  g_clear_object (&self->tree);
  g_clear_object (&self->filtered);
  g_clear_object (&self->name_filter);
  g_clear_object (&self->experts_filter);
  g_clear_object (&self->root);
  g_clear_object (&self->worst);
  g_clear_object (&self->loading);
  g_clear_pointer (&self->store, qb_store_unref);
  G_OBJECT_CLASS (qb_stored_tensors_view_parent_class)->dispose (object);
}

static void
qb_stored_tensors_view_class_init (QbStoredTensorsViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = qb_stored_tensors_view_dispose;
  object_class->get_property = qb_stored_tensors_view_get_property;
  object_class->set_property = qb_stored_tensors_view_set_property;
  props[PROP_EXPERTS_ONLY] = g_param_spec_boolean ("experts-only", NULL, NULL, FALSE,
                                                   G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY
                                                   | G_PARAM_STATIC_STRINGS);
  /* The weights chart shows quantized − original counts per bin. */
  props[PROP_DIFFERENCE] = g_param_spec_boolean ("difference", NULL, NULL, FALSE,
                                                 G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY
                                                 | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);

  gtk_widget_class_install_action (widget_class, "tensors.expand-experts", NULL, action_expand);
  gtk_widget_class_install_action (widget_class, "tensors.collapse-experts", NULL, action_collapse);
  gtk_widget_class_install_action (widget_class, "tensors.select", "(si)", action_select);
  gtk_widget_class_install_action (widget_class, "tensors.select-worst-expert", NULL, action_select_worst);
  gtk_widget_class_install_property_action (widget_class, "tensors.experts-only", "experts-only");
  gtk_widget_class_install_property_action (widget_class, "tensors.difference", "difference");
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
  gtk_widget_class_set_css_name (widget_class, "storedtensors");
}

static void
qb_stored_tensors_view_init (QbStoredTensorsView *self)
{
  GtkWidget *facts;

  self->name_items = g_hash_table_new (NULL, NULL);
  self->box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);
  gtk_widget_set_parent (self->box, GTK_WIDGET (self));
  gtk_box_append (GTK_BOX (self->box), build_header (self));
  gtk_box_append (GTK_BOX (self->box), build_table (self));
  self->facts_label = GTK_LABEL (gtk_label_new (NULL));
  facts = GTK_WIDGET (self->facts_label);
  gtk_label_set_xalign (self->facts_label, 0);
  gtk_label_set_wrap (self->facts_label, TRUE);
  gtk_label_set_selectable (self->facts_label, TRUE);
  gtk_label_set_lines (self->facts_label, 2);
  gtk_label_set_ellipsize (self->facts_label, PANGO_ELLIPSIZE_END);
  gtk_widget_add_css_class (facts, "numeric");
  gtk_widget_set_margin_start (facts, 6);
  gtk_widget_set_margin_end (facts, 6);
  gtk_box_append (GTK_BOX (self->box), facts);
  gtk_box_append (GTK_BOX (self->box), build_charts (self));
  add_columns (self);
  build_models (self);
  update_actions (self);
  show_charts (self, NULL);
}

/* -- public ---------------------------------------------------------------- */

GtkWidget *
qb_stored_tensors_view_new (void)
{
  return g_object_new (QB_TYPE_STORED_TENSORS_VIEW, NULL);
}

void
qb_stored_tensors_view_set_store (QbStoredTensorsView *self,
                                  QbStore             *store)
{
  g_return_if_fail (QB_IS_STORED_TENSORS_VIEW (self));

  g_clear_pointer (&self->store, qb_store_unref);
  if (store)
    self->store = qb_store_ref (store);
  self->id = -1;   /* whatever was shown came from the other store */
  qb_stored_tensors_view_show (self, 0, NULL, 0);
}

void
qb_stored_tensors_view_show (QbStoredTensorsView *self,
                             gint64               id,
                             const char          *name,
                             guint                n_tensors_done)
{
  g_autofree char *title = NULL;

  g_return_if_fail (QB_IS_STORED_TENSORS_VIEW (self));
  if (id == self->id && n_tensors_done == self->n_done)
    return;
  self->id = self->store ? id : 0;
  self->n_done = n_tensors_done;
  self->generation++;
  g_clear_object (&self->worst);
  begin_drain (self);
  title = self->id ? g_strdup_printf ("Tensors of “%s”", name ? name : "?") : g_strdup ("Tensors");
  gtk_label_set_text (self->title_label, title);
  gtk_label_set_text (self->summary_label, "");
  gtk_label_set_text (self->empty_label, self->id ? "Reading…" : "Select an experiment to see its tensors.");
  gtk_stack_set_visible_child_name (self->stack, "empty");
  update_actions (self);
  update_selected (self);
  if (self->id != 0)
    read_list (self);
}

gint64
qb_stored_tensors_view_get_experiment (QbStoredTensorsView *self)
{
  g_return_val_if_fail (QB_IS_STORED_TENSORS_VIEW (self), 0);
  return self->id;
}

guint
qb_stored_tensors_view_get_n_rows_freed (QbStoredTensorsView *self)
{
  g_return_val_if_fail (QB_IS_STORED_TENSORS_VIEW (self), 0);
  return self->n_rows_freed;
}

gboolean
qb_stored_tensors_view_is_busy (QbStoredTensorsView *self)
{
  g_return_val_if_fail (QB_IS_STORED_TENSORS_VIEW (self), FALSE);
  /* The rows are given frame by frame only while the view is on screen. */
  return self->n_reading > 0 || self->drain_source != 0
         || (self->fill_tick != 0 && gtk_widget_get_mapped (GTK_WIDGET (self)));
}

GListModel *
qb_stored_tensors_view_get_rows (QbStoredTensorsView *self)
{
  g_return_val_if_fail (QB_IS_STORED_TENSORS_VIEW (self), NULL);
  return G_LIST_MODEL (self->shown);
}

QbStoredTensorItem *
qb_stored_tensors_view_get_item (QbStoredTensorsView *self,
                                 guint                position)
{
  g_autoptr(GtkTreeListRow) row = g_list_model_get_item (G_LIST_MODEL (self->shown), position);
  QbStoredTensorItem *item;

  if (row == NULL)
    return NULL;
  item = row_item (row);
  g_object_unref (item);   /* the row holds it */
  return item;
}

QbStoredTensorItem *
qb_stored_tensors_view_get_selected (QbStoredTensorsView *self)
{
  guint position;

  g_return_val_if_fail (QB_IS_STORED_TENSORS_VIEW (self), NULL);
  position = gtk_single_selection_get_selected (self->selection);
  return position == GTK_INVALID_LIST_POSITION ? NULL : qb_stored_tensors_view_get_item (self, position);
}

char *
qb_stored_tensors_view_get_cell (QbStoredTensorsView *self,
                                 guint                position,
                                 const char          *column_id)
{
  const Column *col = column_by_id (column_id);
  QbStoredTensorItem *item = qb_stored_tensors_view_get_item (self, position);

  g_return_val_if_fail (col != NULL, NULL);
  return item ? col->text (item) : NULL;
}

const char *
qb_stored_tensors_view_get_facts (QbStoredTensorsView *self)
{
  return gtk_label_get_text (self->facts_label);
}

const char *
qb_stored_tensors_view_get_summary (QbStoredTensorsView *self)
{
  return gtk_label_get_text (self->summary_label);
}

QbHistogramView *
qb_stored_tensors_view_get_histogram (QbStoredTensorsView *self)
{
  return QB_HISTOGRAM_VIEW (self->histogram);
}

QbHistogramView *
qb_stored_tensors_view_get_error_histogram (QbStoredTensorsView *self)
{
  return QB_HISTOGRAM_VIEW (self->error_view);
}

gboolean
qb_stored_tensors_view_sort_by (QbStoredTensorsView *self,
                                const char          *column_id,
                                GtkSortType          order)
{
  GListModel *list = gtk_column_view_get_columns (self->column_view);

  for (guint i = 0; i < g_list_model_get_n_items (list); i++)
    {
      g_autoptr(GtkColumnViewColumn) column = g_list_model_get_item (list, i);
      if (g_strcmp0 (g_object_get_data (G_OBJECT (column), "qb-id"), column_id) == 0)
        {
          gtk_column_view_sort_by_column (self->column_view, column, order);
          return TRUE;
        }
    }
  return FALSE;
}
