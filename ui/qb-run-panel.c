/* SPDX-License-Identifier: MIT */
/* qb-run-panel.c — a run's progress, time and Cancel. */
#include "qb-run-panel.h"

#include <string.h>
#include "qb-ui.h"

#include <math.h>

struct _QbRunPanel
{
  GtkWidget       parent_instance;

  GtkLabel       *status_label;
  GtkLabel       *time_label;
  GtkProgressBar *overall_bar;
  GtkWidget      *current_box;
  GtkLabel       *current_label;
  GtkProgressBar *current_bar;
  GtkWidget      *cancel_button;
  GtkWidget      *close_button;

  QbRun          *run;
  QbStudyRunner  *study;          /* or a study, not both */
  guint           tick_id;
  char           *note;
};

G_DEFINE_FINAL_TYPE (QbRunPanel, qb_run_panel, GTK_TYPE_WIDGET)

static char *
format_duration (double seconds)
{
  guint s = (guint) round (seconds);

  if (s >= 3600)
    return g_strdup_printf ("%u:%02u:%02u", s / 3600, (s / 60) % 60, s % 60);
  return g_strdup_printf ("%u:%02u", s / 60, s % 60);
}

static char *
format_seconds (double seconds)
{
  return seconds < 10 ? g_strdup_printf ("%.2f s", seconds) : g_strdup_printf ("%.1f s", seconds);
}

static void
update_time (QbRunPanel *self)
{
  g_autofree char *elapsed = NULL;
  double remaining;
  g_autofree char *text = NULL;

  if (self->study != NULL)
    {
      double seconds = qb_study_runner_get_elapsed (self->study);
      g_autofree char *spent = format_duration (seconds);
      text = qb_study_runner_is_running (self->study) ? g_strdup_printf ("%s elapsed", spent)
                                                       : format_seconds (seconds);
      gtk_label_set_text (self->time_label, text);
      return;
    }
  if (self->run == NULL)
    return;
  elapsed = format_duration (qb_run_get_elapsed (self->run));
  remaining = qb_run_get_remaining (self->run);
  if (!qb_run_is_running (self->run))
    text = format_seconds (qb_run_get_elapsed (self->run));
  else if (isnan (remaining))
    text = g_strdup_printf ("%s elapsed", elapsed);
  else
    {
      g_autofree char *left = format_duration (remaining);
      text = g_strdup_printf ("%s elapsed · about %s left", elapsed, left);
    }
  gtk_label_set_text (self->time_label, text);
}

static char *
export_summary (QbRunPanel *self)
{
  QbRun *run = self->run;
  g_autofree char *name = g_path_get_basename (qb_run_get_export_path (run));
  guint done = qb_run_get_tensors_done (run), n = qb_run_get_n_tensors (run);

  switch (qb_run_get_status (run))
    {
    case QB_RUN_DONE:
      {
        /* The core says "GGUF PATH: 23 tensors…": the path once, here. */
        const char *what = qb_run_get_export_summary (run);
        const char *after = strstr (what, qb_run_get_export_path (run));

        if (after != NULL && g_str_has_prefix (after + strlen (qb_run_get_export_path (run)), ": "))
          what = after + strlen (qb_run_get_export_path (run)) + 2;
        return g_strdup_printf ("Exported %s: %s", name, what);
      }
    case QB_RUN_CANCELLED:
      return n ? g_strdup_printf ("Export cancelled after %u of %u tensors: %s was not written", done, n, name)
               : g_strdup_printf ("Export cancelled: %s was not written", name);
    case QB_RUN_FAILED:
      return g_strdup_printf ("The export failed: %s",
                              qb_run_get_error (run) ? qb_run_get_error (run)->message : "unknown error");
    case QB_RUN_RUNNING:
      return n ? g_strdup_printf ("Exporting %s · %u of %u tensors", name, done, n)
               : g_strdup_printf ("Exporting %s…", name);
    case QB_RUN_READY:
    default:
      return g_strdup ("");
    }
}

static char *
summary (QbRunPanel *self)
{
  QbRun *run = self->run;
  guint done = qb_run_get_tensors_done (run), n = qb_run_get_n_tensors (run);
  const char *note = self->note ? self->note : "";
  g_autofree char *elapsed = format_seconds (qb_run_get_elapsed (run));

  if (qb_run_get_export_path (run) != NULL)
    return export_summary (self);
  switch (qb_run_get_status (run))
    {
    case QB_RUN_DONE:
      return g_strdup_printf ("Quantized %u tensors in %s%s", done, elapsed, note);
    case QB_RUN_CANCELLED:
      return g_strdup_printf ("Cancelled after %u of %u tensors%s", done, n, note);
    case QB_RUN_FAILED:
      return g_strdup_printf ("The run failed: %s%s",
                              qb_run_get_error (run) ? qb_run_get_error (run)->message : "unknown error", note);
    case QB_RUN_RUNNING:
      return n ? g_strdup_printf ("Quantizing · %u of %u tensors", done, n)
               : g_strdup ("Starting…");
    case QB_RUN_READY:
    default:
      return g_strdup ("");
    }
}

static char *
study_summary (QbRunPanel *self)
{
  QbStudyRunner *study = self->study;
  gint64 id = qb_study_runner_get_study_id (study);
  const GError *error = qb_study_runner_get_error (study);

  switch (qb_study_runner_get_status (study))
    {
    case QB_RUN_DONE:
      return g_strdup_printf ("Sensitivity study %" G_GINT64_FORMAT " done", id);
    case QB_RUN_CANCELLED:
      return id > 0 ? g_strdup_printf ("Study %" G_GINT64_FORMAT " cancelled: what it measured is kept "
                                       "(Resume on the Sensitivity page)", id)
                    : g_strdup ("Study cancelled before it began");
    case QB_RUN_FAILED:
      return g_strdup_printf ("The study failed: %s", error ? error->message : "unknown error");
    case QB_RUN_RUNNING:
      return g_strdup (qb_study_runner_get_text (study));
    case QB_RUN_READY:
    default:
      return g_strdup ("");
    }
}

/* The widgets as a run or study has them: status line, bars, buttons. */
static void
show_state (QbRunPanel *self,
            const char *status,
            double      fraction,
            const char *current,
            double      current_fraction,
            gboolean    running,
            gboolean    failed)
{
  g_autofree char *percent = g_strdup_printf ("%.0f %%", 100 * fraction);

  gtk_label_set_text (self->status_label, status);
  gtk_progress_bar_set_fraction (self->overall_bar, fraction);
  gtk_progress_bar_set_text (self->overall_bar, percent);
  gtk_label_set_text (self->current_label, current ? current : "");
  gtk_progress_bar_set_fraction (self->current_bar, current_fraction);
  gtk_widget_set_visible (self->current_box, running);
  gtk_widget_set_visible (self->cancel_button, running);
  gtk_widget_set_visible (self->close_button, !running);
  if (failed)
    gtk_widget_add_css_class (GTK_WIDGET (self->status_label), "error");
  else
    gtk_widget_remove_css_class (GTK_WIDGET (self->status_label), "error");
  update_time (self);
}

static void
update_study (QbRunPanel *self)
{
  g_autofree char *status = study_summary (self);
  double fraction = qb_study_runner_get_fraction (self->study);

  gtk_widget_set_tooltip_text (GTK_WIDGET (self->status_label), status);
  show_state (self, status, fraction, qb_study_runner_get_tensor (self->study), fraction,
              qb_study_runner_is_running (self->study),
              qb_study_runner_get_status (self->study) == QB_RUN_FAILED);
}

static void
update (QbRunPanel *self)
{
  g_autofree char *status = NULL;
  g_autofree char *percent = NULL;
  gboolean running;

  if (self->study != NULL)
    {
      update_study (self);
      return;
    }
  if (self->run == NULL)
    return;
  running = qb_run_is_running (self->run);
  status = summary (self);
  gtk_label_set_text (self->status_label, status);
  /* The line may be cut: the whole of it, and the full path of an export. */
  if (qb_run_get_export_path (self->run) != NULL)
    {
      g_autofree char *tip = g_strdup_printf ("%s\n%s", status, qb_run_get_export_path (self->run));
      gtk_widget_set_tooltip_text (GTK_WIDGET (self->status_label), tip);
    }
  else
    gtk_widget_set_tooltip_text (GTK_WIDGET (self->status_label), status);
  gtk_progress_bar_set_fraction (self->overall_bar, qb_run_get_fraction (self->run));
  percent = g_strdup_printf ("%.0f %%", 100 * qb_run_get_fraction (self->run));
  gtk_progress_bar_set_text (self->overall_bar, percent);
  if (qb_run_get_stage (self->run) != NULL)
    gtk_label_set_text (self->current_label, qb_run_get_stage (self->run));
  else
    gtk_label_set_text (self->current_label, qb_run_get_current_name (self->run)
                                             ? qb_run_get_current_name (self->run) : "");
  gtk_progress_bar_set_fraction (self->current_bar, qb_run_get_current_fraction (self->run));
  gtk_widget_set_visible (self->current_box, running);
  gtk_widget_set_visible (self->cancel_button, running);
  gtk_widget_set_visible (self->close_button, !running);
  if (qb_run_get_status (self->run) == QB_RUN_FAILED)
    gtk_widget_add_css_class (GTK_WIDGET (self->status_label), "error");
  else
    gtk_widget_remove_css_class (GTK_WIDGET (self->status_label), "error");
  update_time (self);
}

static gboolean
on_tick (gpointer data)
{
  QbRunPanel *self = data;

  /* Elapsed time moves even when no tensor finishes. */
  update_time (self);
  return G_SOURCE_CONTINUE;
}

static void
stop_ticking (QbRunPanel *self)
{
  g_clear_handle_id (&self->tick_id, g_source_remove);
}

static void
on_progress (GObject    *run,
             QbRunPanel *self)
{
  update (self);
}

static void
on_finished (GObject    *run,
             QbRunPanel *self)
{
  stop_ticking (self);
  update (self);
}

static void
on_close (QbRunPanel *self)
{
  gtk_widget_set_visible (GTK_WIDGET (self), FALSE);
}

static void
qb_run_panel_dispose (GObject *object)
{
  QbRunPanel *self = QB_RUN_PANEL (object);

  stop_ticking (self);
  if (self->run)
    g_signal_handlers_disconnect_by_data (self->run, self);
  g_clear_object (&self->run);
  if (self->study)
    g_signal_handlers_disconnect_by_data (self->study, self);
  g_clear_object (&self->study);
  g_clear_pointer (&self->note, g_free);
  qb_ui_dispose_template (GTK_WIDGET (self), QB_TYPE_RUN_PANEL);
  G_OBJECT_CLASS (qb_run_panel_parent_class)->dispose (object);
}

static void
qb_run_panel_class_init (QbRunPanelClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = qb_run_panel_dispose;

  qb_ui_ensure_resources ();
  gtk_widget_class_set_template_from_resource (widget_class, "/org/quantbench/Quantbench/ui/qb-run-panel.ui");
  gtk_widget_class_bind_template_child (widget_class, QbRunPanel, status_label);
  gtk_widget_class_bind_template_child (widget_class, QbRunPanel, time_label);
  gtk_widget_class_bind_template_child (widget_class, QbRunPanel, overall_bar);
  gtk_widget_class_bind_template_child (widget_class, QbRunPanel, current_box);
  gtk_widget_class_bind_template_child (widget_class, QbRunPanel, current_label);
  gtk_widget_class_bind_template_child (widget_class, QbRunPanel, current_bar);
  gtk_widget_class_bind_template_child (widget_class, QbRunPanel, cancel_button);
  gtk_widget_class_bind_template_child (widget_class, QbRunPanel, close_button);
  gtk_widget_class_bind_template_callback (widget_class, on_close);
  gtk_widget_class_set_css_name (widget_class, "runpanel");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_GROUP);
}

static void
qb_run_panel_init (QbRunPanel *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  gtk_progress_bar_set_show_text (self->overall_bar, TRUE);
}

GtkWidget *
qb_run_panel_new (void)
{
  return g_object_new (QB_TYPE_RUN_PANEL, NULL);
}

void
qb_run_panel_set_run (QbRunPanel *self,
                      QbRun      *run)
{
  g_return_if_fail (QB_IS_RUN_PANEL (self));

  stop_ticking (self);
  if (self->run)
    g_signal_handlers_disconnect_by_data (self->run, self);
  if (self->study)
    g_signal_handlers_disconnect_by_data (self->study, self);
  g_clear_object (&self->study);
  g_set_object (&self->run, run);
  g_clear_pointer (&self->note, g_free);
  gtk_widget_set_visible (GTK_WIDGET (self), run != NULL);
  if (run == NULL)
    return;
  g_signal_connect (run, "progress", G_CALLBACK (on_progress), self);
  g_signal_connect (run, "finished", G_CALLBACK (on_finished), self);
  if (qb_run_is_running (run))
    self->tick_id = g_timeout_add (500, on_tick, self);
  update (self);
}

void
qb_run_panel_set_study (QbRunPanel    *self,
                        QbStudyRunner *study)
{
  g_return_if_fail (QB_IS_RUN_PANEL (self));

  qb_run_panel_set_run (self, NULL);
  g_set_object (&self->study, study);
  gtk_widget_set_visible (GTK_WIDGET (self), study != NULL);
  if (study == NULL)
    return;
  g_signal_connect (study, "progress", G_CALLBACK (on_progress), self);
  g_signal_connect (study, "finished", G_CALLBACK (on_finished), self);
  if (qb_study_runner_is_running (study))
    self->tick_id = g_timeout_add (500, on_tick, self);
  update (self);
}

void
qb_run_panel_set_note (QbRunPanel *self,
                       const char *note)
{
  g_return_if_fail (QB_IS_RUN_PANEL (self));

  g_free (self->note);
  self->note = note && *note ? g_strdup_printf (" · %s", note) : NULL;
  update (self);
}

const char *
qb_run_panel_get_status_text (QbRunPanel *self)
{
  return gtk_label_get_text (self->status_label);
}
