/* SPDX-License-Identifier: MIT */
/* qb-sensitivity-page.c — the model's studies, shown and used for costs. */
#include "qb-sensitivity-page.h"

#include <math.h>

#include "qb-sensitivity-table.h"
#include "qb-study-record.h"

struct _QbSensitivityPage
{
  GtkWidget          parent_instance;

  GtkStack          *stack;           /* "empty" or "study" */
  GtkLabel          *empty_label;
  GtkDropDown       *study_dropdown;
  GtkDropDown       *candidate_dropdown;
  GtkDropDown       *show_dropdown;   /* the tensors, or one kind's experts */
  GtkWidget         *show_box;
  GArray            *show_roles;      /* per show_dropdown entry: QbTensorRole (OTHER: tensors) */
  GtkWidget         *resume_button;
  GtkLabel          *info_label;
  QbSensitivityView *view;

  QbStore           *store;
  QbDocument        *document;
  GArray            *ids;             /* per dropdown entry: study id, -1 the proxies */
  gint64             study_id;        /* shown; 0: none */
  QbExperimentStatus status;
  GCancellable      *cancellable;     /* of the read under way */
  gboolean           syncing;
};

G_DEFINE_FINAL_TYPE (QbSensitivityPage, qb_sensitivity_page, GTK_TYPE_WIDGET)

enum {
  ERROR,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

/* -- reading a study on a worker thread -------------------------------------- */

typedef struct {
  QbStore            *store;
  QbModel            *model;
  gint64              requested;   /* 0: newest; -1: none */
  GPtrArray          *records;     /* QbStudyRecord of the model, newest first */
  QbSensitivityStudy *study;
  QbCostTable        *table;
} Load;

static void
load_free (Load *load)
{
  qb_store_unref (load->store);
  g_object_unref (load->model);
  g_clear_pointer (&load->records, g_ptr_array_unref);
  g_clear_pointer (&load->study, qb_sensitivity_study_free);
  g_clear_pointer (&load->table, qb_cost_table_free);
  g_free (load);
}

static void
load_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  Load *load = data;
  const char *fingerprint = qb_model_get_fingerprint (load->model);
  g_autoptr(GPtrArray) all = NULL;
  GError *error = NULL;
  gint64 id = 0;

  if ((all = qb_store_list_studies (load->store, 0, &error)) == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  load->records = g_ptr_array_new_with_free_func ((GDestroyNotify) qb_study_record_free);
  for (guint i = 0; i < all->len; i++)
    {
      QbStudyRecord *r = g_ptr_array_index (all, i);
      if (g_strcmp0 (r->model_fingerprint, fingerprint) == 0)
        g_ptr_array_add (load->records, g_ptr_array_steal_index (all, i--));
    }
  if (load->requested > 0)
    id = load->requested;
  else if (load->requested == 0 && load->records->len > 0)
    id = ((QbStudyRecord *) g_ptr_array_index (load->records, 0))->id;
  if (id > 0)
    {
      load->study = qb_sensitivity_study_load (load->store, id, &error);
      if (load->study)
        load->table = qb_sensitivity_study_to_cost_table (load->study, load->model, &error);
      if (load->table == NULL)
        {
          g_task_return_error (task, error);
          return;
        }
    }
  g_task_return_boolean (task, TRUE);
}

/* -- showing it ----------------------------------------------------------------- */

static char *
describe_record (const QbStudyRecord *r)
{
  guint n = 1;

  for (const char *c = r->candidates; c && *c; c++)
    n += *c == ',';
  return g_strdup_printf ("Study %" G_GINT64_FORMAT " · %s · %u candidates · %s", r->id, r->method, n,
                          qb_experiment_status_name (r->status));
}

static char *
describe_study (QbSensitivityStudy *st)
{
  const QbStudyRecord *r = st->record;
  guint studied = 0;
  GString *s = g_string_new (NULL);

  for (guint t = 0; t < st->n_tensors; t++)
    for (guint k = 0; k < st->n_candidates; k++)
      studied += qb_sensitivity_study_get (st, t, k)->cost != NULL;
  /* A study stopped early lists only the tensors it reached. */
  if (r->status != QB_EXPERIMENT_DONE && r->status != QB_EXPERIMENT_RUNNING)
    g_string_append_printf (s, "%s after %u costs (Resume measures the rest) · ",
                            r->status == QB_EXPERIMENT_CANCELLED ? "Cancelled" : "Stopped", studied);
  g_string_append_printf (s, "%u tensors × %u candidates · %u measured end to end", st->n_tensors,
                          st->n_candidates, st->n_measured);
  if (st->expert_costs->len > 0)
    g_string_append_printf (s, " + %u per-expert measurements (bars “tensor #expert”; Show: a kind's "
                            "experts in the heatmap)", st->expert_costs->len);
  if (isfinite (st->alpha))
    g_string_append_printf (s, " · fit α %.2f", st->alpha);
  if (isfinite (st->loo_spearman))
    g_string_append_printf (s, ", Spearman %.3f", st->loo_spearman);
  g_string_append_printf (s, " · evaluated on %s, %u × %u tokens", r->eval_text_name ? r->eval_text_name : "?",
                          r->eval_n_chunks, r->eval_n_ctx);
  if (isfinite (r->base_ppl) && r->base_ppl > 0)
    g_string_append_printf (s, " · float PPL %.3f", r->base_ppl);
  return g_string_free (s, FALSE);
}

static void
show_empty (QbSensitivityPage *self, const char *text)
{
  gtk_label_set_text (self->empty_label, text);
  gtk_stack_set_visible_child_name (self->stack, "empty");
}

static void
fill_study_dropdown (QbSensitivityPage *self, GPtrArray *records, gint64 shown)
{
  g_autoptr(GtkStringList) list = gtk_string_list_new (NULL);
  guint selected = 0;

  g_array_set_size (self->ids, 0);
  for (guint i = 0; i < records->len; i++)
    {
      const QbStudyRecord *r = g_ptr_array_index (records, i);
      g_autofree char *label = describe_record (r);
      gtk_string_list_append (list, label);
      g_array_append_val (self->ids, r->id);
      if (r->id == shown)
        selected = i;
    }
  gtk_string_list_append (list, "Weight proxies (no study)");
  {
    gint64 none = -1;
    g_array_append_val (self->ids, none);
  }
  if (shown <= 0)
    selected = records->len;
  self->syncing = TRUE;
  gtk_drop_down_set_model (self->study_dropdown, G_LIST_MODEL (list));
  gtk_drop_down_set_selected (self->study_dropdown, selected);
  self->syncing = FALSE;
}

static void
fill_candidates (QbSensitivityPage *self, QbSensitivityStudy *study)
{
  g_autoptr(GtkStringList) list = gtk_string_list_new (NULL);
  guint pick = 0;

  for (guint k = 0; study && k < study->n_candidates; k++)
    {
      gtk_string_list_append (list, study->candidates[k]);
      /* Open on a mid-ladder 4-bit format: differences show best there. */
      if (g_str_has_prefix (study->candidates[k], "Q4") && pick == 0)
        pick = k;
    }
  self->syncing = TRUE;
  gtk_drop_down_set_model (self->candidate_dropdown, G_LIST_MODEL (list));
  gtk_drop_down_set_selected (self->candidate_dropdown, pick);
  self->syncing = FALSE;
  gtk_widget_set_sensitive (GTK_WIDGET (self->candidate_dropdown), study != NULL);
  qb_sensitivity_view_set_candidate (self->view, pick);
}

/* The Show selector: the tensors, then each kind with per-expert
 * measurements; hidden for a study without them. */
static void
sync_show (QbSensitivityPage *self)
{
  QbTensorRole shown = qb_sensitivity_view_get_expert_role (self->view);

  self->syncing = TRUE;
  for (guint i = 0; i < self->show_roles->len; i++)
    if (g_array_index (self->show_roles, QbTensorRole, i) == shown)
      gtk_drop_down_set_selected (self->show_dropdown, i);
  self->syncing = FALSE;
}

static void
fill_show (QbSensitivityPage *self)
{
  g_autoptr(GtkStringList) list = gtk_string_list_new (NULL);
  QbTensorRole roles[QB_ROLE_N_ROLES], none = QB_ROLE_OTHER;
  guint n = qb_sensitivity_view_get_expert_roles (self->view, roles, G_N_ELEMENTS (roles));

  g_array_set_size (self->show_roles, 0);
  g_array_append_val (self->show_roles, none);
  gtk_string_list_append (list, "Tensors");
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *label = g_strdup_printf ("Experts of %s", qb_tensor_role_name (roles[i]));
      gtk_string_list_append (list, label);
      g_array_append_val (self->show_roles, roles[i]);
    }
  self->syncing = TRUE;
  gtk_drop_down_set_model (self->show_dropdown, G_LIST_MODEL (list));
  self->syncing = FALSE;
  gtk_widget_set_visible (self->show_box, n > 0);
  sync_show (self);
}

static void
load_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  QbSensitivityPage *self = user_data;   /* alive: cancelled on dispose before this runs */
  Load *load = g_task_get_task_data (G_TASK (result));
  g_autoptr(GError) error = NULL;
  g_autofree char *source_name = NULL;

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      g_clear_object (&self->cancellable);
      g_signal_emit (self, signals[ERROR], 0, error->message);
      return;
    }
  g_clear_object (&self->cancellable);
  if (self->document == NULL || load->model != qb_document_get_model (self->document))
    return;
  if (load->records->len == 0)
    {
      self->study_id = 0;
      qb_sensitivity_view_set_study (self->view, NULL);
      show_empty (self, "No sensitivity study of this model yet.");
      qb_document_set_cost_table (self->document, NULL, NULL);
      return;
    }
  self->study_id = load->study ? load->study->record->id : 0;
  self->status = load->study ? load->study->record->status : QB_EXPERIMENT_DONE;
  fill_study_dropdown (self, load->records, self->study_id);
  qb_sensitivity_view_set_study (self->view, load->study);
  fill_candidates (self, load->study);
  fill_show (self);
  gtk_widget_set_visible (self->resume_button, load->study && self->status != QB_EXPERIMENT_DONE
                                               && self->status != QB_EXPERIMENT_RUNNING);
  gtk_actionable_set_action_target (GTK_ACTIONABLE (self->resume_button), "x", (gint64) self->study_id);
  {
    g_autofree char *info = load->study ? describe_study (load->study)
                                        : g_strdup ("Costs from weight proxies: estimates, not measured "
                                                    "on this model.");
    gtk_label_set_text (self->info_label, info);
    gtk_widget_set_tooltip_text (GTK_WIDGET (self->info_label), info);
  }
  gtk_stack_set_visible_child_name (self->stack, "study");
  /* The budget fill and the totals' prediction now use this study. */
  source_name = g_strdup_printf ("study %" G_GINT64_FORMAT, self->study_id);
  qb_document_set_cost_table (self->document, g_steal_pointer (&load->table),
                              load->study ? source_name : NULL);
}

void
qb_sensitivity_page_reload (QbSensitivityPage *self, gint64 id)
{
  g_autoptr(GTask) task = NULL;
  Load *load;

  g_return_if_fail (QB_IS_SENSITIVITY_PAGE (self));
  if (self->cancellable)
    g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  if (self->document == NULL)
    {
      show_empty (self, "Open a model to see its sensitivity studies.");
      return;
    }
  if (self->store == NULL)
    {
      show_empty (self, "The experiment database is not open: studies cannot be read or stored.");
      return;
    }
  self->cancellable = g_cancellable_new ();
  load = g_new0 (Load, 1);
  load->store = qb_store_ref (self->store);
  load->model = g_object_ref (qb_document_get_model (self->document));
  load->requested = id;
  task = g_task_new (NULL, self->cancellable, load_done, self);
  g_task_set_source_tag (task, qb_sensitivity_page_reload);
  g_task_set_task_data (task, load, (GDestroyNotify) load_free);
  g_task_run_in_thread (task, load_thread);
}

/* -- the controls ----------------------------------------------------------------- */

static void
on_study_selected (GtkDropDown *dropdown, GParamSpec *pspec, QbSensitivityPage *self)
{
  guint pos = gtk_drop_down_get_selected (dropdown);

  if (self->syncing || pos >= self->ids->len)
    return;
  qb_sensitivity_page_reload (self, g_array_index (self->ids, gint64, pos));
}

static void
on_candidate_selected (GtkDropDown *dropdown, GParamSpec *pspec, QbSensitivityPage *self)
{
  guint pos = gtk_drop_down_get_selected (dropdown);

  if (!self->syncing && pos != GTK_INVALID_LIST_POSITION)
    qb_sensitivity_view_set_candidate (self->view, pos);
}

static void
on_show_selected (GtkDropDown *dropdown, GParamSpec *pspec, QbSensitivityPage *self)
{
  guint pos = gtk_drop_down_get_selected (dropdown);
  QbTensorRole role;

  if (self->syncing || pos >= self->show_roles->len)
    return;
  role = g_array_index (self->show_roles, QbTensorRole, pos);
  gtk_widget_activate_action (GTK_WIDGET (self), "sensitivity.experts", "s",
                              role == QB_ROLE_OTHER ? "" : qb_tensor_role_name (role));
}

/* sensitivity.experts (s): the heatmap shows the experts of a kind
 * ("ffn_down_exps"), or the tensors (""). */
static void
experts_action (GtkWidget *widget, const char *action, GVariant *param)
{
  QbSensitivityPage *self = QB_SENSITIVITY_PAGE (widget);
  const char *name = g_variant_get_string (param, NULL);

  qb_sensitivity_view_set_expert_role (self->view, *name ? qb_tensor_role_from_name (name)
                                                         : QB_ROLE_OTHER);
  sync_show (self);
}

/* A click on a tensor selects it in the plan. */
static void
on_tensor_activated (QbSensitivityView *view, const char *name, QbSensitivityPage *self)
{
  gtk_widget_activate_action (GTK_WIDGET (self), "win.select-tensor", "s", name);
  gtk_widget_activate_action (GTK_WIDGET (self), "win.show-page", "s", "plan");
}

static GtkWidget *
labelled (const char *mnemonic, GtkWidget *widget)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *label = gtk_label_new_with_mnemonic (mnemonic);

  gtk_label_set_mnemonic_widget (GTK_LABEL (label), widget);
  gtk_box_append (GTK_BOX (box), label);
  gtk_box_append (GTK_BOX (box), widget);
  return box;
}

static GtkWidget *
build_empty (QbSensitivityPage *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 12);
  GtkWidget *explain = gtk_label_new ("A study quantizes every tensor alone in each candidate format and "
                                      "measures how much the whole model's output changes (KL divergence "
                                      "against the float model) on held-out text.  The budget Fill then "
                                      "spends bits where they matter, and the predicted KLD in the totals "
                                      "comes from these measurements instead of weight proxies.");
  GtkWidget *run = gtk_button_new_with_mnemonic ("_Run a Study…");

  gtk_widget_set_valign (box, GTK_ALIGN_CENTER);
  gtk_widget_set_halign (box, GTK_ALIGN_CENTER);
  gtk_widget_set_margin_start (box, 24);
  gtk_widget_set_margin_end (box, 24);
  self->empty_label = GTK_LABEL (gtk_label_new (NULL));
  gtk_widget_add_css_class (GTK_WIDGET (self->empty_label), "title-3");
  gtk_label_set_wrap (self->empty_label, TRUE);
  gtk_label_set_wrap (GTK_LABEL (explain), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (explain), 60);
  gtk_label_set_justify (GTK_LABEL (explain), GTK_JUSTIFY_CENTER);
  gtk_widget_add_css_class (explain, "dim-label");
  gtk_actionable_set_action_name (GTK_ACTIONABLE (run), "win.run-study");
  gtk_widget_add_css_class (run, "suggested-action");
  gtk_widget_set_halign (run, GTK_ALIGN_CENTER);
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->empty_label));
  gtk_box_append (GTK_BOX (box), explain);
  gtk_box_append (GTK_BOX (box), run);
  return box;
}

static GtkWidget *
build_study (QbSensitivityPage *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  GtkWidget *bar = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 12);
  GtkWidget *spacer = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 0);
  GtkWidget *run = gtk_button_new_with_mnemonic ("_New Study…");

  self->study_dropdown = GTK_DROP_DOWN (gtk_drop_down_new_from_strings ((const char *[]) { NULL }));
  self->candidate_dropdown = GTK_DROP_DOWN (gtk_drop_down_new_from_strings ((const char *[]) { NULL }));
  self->show_dropdown = GTK_DROP_DOWN (gtk_drop_down_new_from_strings ((const char *[]) { NULL }));
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->show_dropdown),
                               "The heatmap's columns: the tensors' roles, or each expert of one kind "
                               "alone (a study run per expert)");
  self->show_box = labelled ("Sho_w", GTK_WIDGET (self->show_dropdown));
  gtk_widget_set_visible (self->show_box, FALSE);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->study_dropdown),
                               "The study whose measured costs the budget fill and the predicted KLD use");
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->candidate_dropdown),
                               "The format each tensor is quantized to, alone, in the colours and bars");
  self->resume_button = gtk_button_new_with_mnemonic ("Res_ume");
  gtk_actionable_set_action_target (GTK_ACTIONABLE (self->resume_button), "x", (gint64) 0);
  gtk_actionable_set_action_name (GTK_ACTIONABLE (self->resume_button), "win.resume-study");
  gtk_widget_set_tooltip_text (self->resume_button, "Measure what the study has not measured yet");
  gtk_actionable_set_action_name (GTK_ACTIONABLE (run), "win.run-study");
  gtk_widget_set_hexpand (spacer, TRUE);
  gtk_box_append (GTK_BOX (bar), labelled ("_Study", GTK_WIDGET (self->study_dropdown)));
  gtk_box_append (GTK_BOX (bar), labelled ("_Candidate", GTK_WIDGET (self->candidate_dropdown)));
  gtk_box_append (GTK_BOX (bar), self->show_box);
  gtk_box_append (GTK_BOX (bar), spacer);
  gtk_box_append (GTK_BOX (bar), self->resume_button);
  gtk_box_append (GTK_BOX (bar), run);
  self->info_label = GTK_LABEL (gtk_label_new (NULL));
  gtk_label_set_xalign (self->info_label, 0);
  gtk_label_set_ellipsize (self->info_label, PANGO_ELLIPSIZE_END);
  gtk_widget_add_css_class (GTK_WIDGET (self->info_label), "dim-label");
  self->view = QB_SENSITIVITY_VIEW (qb_sensitivity_view_new ());
  gtk_widget_set_vexpand (GTK_WIDGET (self->view), TRUE);
  gtk_widget_set_hexpand (GTK_WIDGET (self->view), TRUE);
  gtk_box_append (GTK_BOX (box), bar);
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->info_label));
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->view));
  gtk_widget_set_margin_start (box, 12);
  gtk_widget_set_margin_end (box, 12);
  gtk_widget_set_margin_top (box, 8);
  gtk_widget_set_margin_bottom (box, 8);
  g_signal_connect (self->study_dropdown, "notify::selected", G_CALLBACK (on_study_selected), self);
  g_signal_connect (self->candidate_dropdown, "notify::selected", G_CALLBACK (on_candidate_selected), self);
  g_signal_connect (self->show_dropdown, "notify::selected", G_CALLBACK (on_show_selected), self);
  g_signal_connect (self->view, "tensor-activated", G_CALLBACK (on_tensor_activated), self);
  return box;
}

/* -- GObject ------------------------------------------------------------------ */

static void
qb_sensitivity_page_dispose (GObject *object)
{
  QbSensitivityPage *self = QB_SENSITIVITY_PAGE (object);
  GtkWidget *child;

  if (self->cancellable)
    g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->document);
  g_clear_pointer (&self->store, qb_store_unref);
  g_clear_pointer (&self->ids, g_array_unref);
  g_clear_pointer (&self->show_roles, g_array_unref);
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self))) != NULL)
    gtk_widget_unparent (child);
  G_OBJECT_CLASS (qb_sensitivity_page_parent_class)->dispose (object);
}

static void
qb_sensitivity_page_class_init (QbSensitivityPageClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  G_OBJECT_CLASS (klass)->dispose = qb_sensitivity_page_dispose;
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
  gtk_widget_class_install_action (widget_class, "sensitivity.experts", "s", experts_action);
  signals[ERROR] = g_signal_new ("error", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                 0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
qb_sensitivity_page_init (QbSensitivityPage *self)
{
  self->ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  self->show_roles = g_array_new (FALSE, FALSE, sizeof (QbTensorRole));
  self->stack = GTK_STACK (gtk_stack_new ());
  gtk_stack_add_named (self->stack, build_empty (self), "empty");
  gtk_stack_add_named (self->stack, build_study (self), "study");
  gtk_widget_set_parent (GTK_WIDGET (self->stack), GTK_WIDGET (self));
  show_empty (self, "Open a model to see its sensitivity studies.");
}

GtkWidget *
qb_sensitivity_page_new (void)
{
  return g_object_new (QB_TYPE_SENSITIVITY_PAGE, NULL);
}

void
qb_sensitivity_page_set_store (QbSensitivityPage *self, QbStore *store)
{
  g_return_if_fail (QB_IS_SENSITIVITY_PAGE (self));
  g_clear_pointer (&self->store, qb_store_unref);
  self->store = store ? qb_store_ref (store) : NULL;
  qb_sensitivity_page_reload (self, 0);
}

void
qb_sensitivity_page_set_document (QbSensitivityPage *self, QbDocument *document)
{
  g_return_if_fail (QB_IS_SENSITIVITY_PAGE (self));
  g_set_object (&self->document, document);
  self->study_id = 0;
  qb_sensitivity_view_set_study (self->view, NULL);
  qb_sensitivity_page_reload (self, 0);
}

gint64             qb_sensitivity_page_get_study_id (QbSensitivityPage *self) { return self->study_id; }
QbExperimentStatus qb_sensitivity_page_get_study_status (QbSensitivityPage *self) { return self->status; }
gboolean           qb_sensitivity_page_is_loading   (QbSensitivityPage *self) { return self->cancellable != NULL; }
QbSensitivityView *qb_sensitivity_page_get_view     (QbSensitivityPage *self) { return self->view; }
GtkDropDown       *qb_sensitivity_page_get_candidate_dropdown (QbSensitivityPage *self) { return self->candidate_dropdown; }
GtkDropDown       *qb_sensitivity_page_get_study_dropdown (QbSensitivityPage *self) { return self->study_dropdown; }
GtkDropDown       *qb_sensitivity_page_get_show_dropdown (QbSensitivityPage *self) { return self->show_dropdown; }

const char *
qb_sensitivity_page_get_info_text (QbSensitivityPage *self)
{
  if (g_strcmp0 (gtk_stack_get_visible_child_name (self->stack), "empty") == 0)
    return gtk_label_get_text (self->empty_label);
  return gtk_label_get_text (self->info_label);
}
