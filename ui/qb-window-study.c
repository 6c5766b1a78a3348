/* SPDX-License-Identifier: MIT */
/* qb-window-study.c — sensitivity studies from the window (run, resume,
 * cancel), and the budget fill with its constraints. */
#include "qb-window-private.h"

#include "qb-allocation-plan.h"
#include "qb-study-dialog.h"

/* -- studies ---------------------------------------------------------------- */

static void
on_study_finished (QbStudyRunner *study,
                   QbWindow      *self)
{
  gint64 id = qb_study_runner_get_study_id (study);

  if (id > 0)
    g_hash_table_replace (self->study_runs, g_memdup2 (&id, sizeof id), g_object_ref (study));
  if (qb_study_runner_get_status (study) == QB_RUN_FAILED)
    _qb_window_show_error (self, qb_study_runner_get_error (study)->message);
  /* Shown and used at once, cancelled too: it keeps what it measured. */
  if (id > 0)
    qb_sensitivity_page_reload (self->sensitivity_page, id);
  _qb_window_update_actions (self);
}

static gboolean
busy (QbWindow *self)
{
  return (self->run && qb_run_is_running (self->run))
         || (self->study && qb_study_runner_is_running (self->study));
}

static void
start_study (QbWindow              *self,
             const QbStudySettings *settings)
{
  g_autoptr(QbStudyRunner) study = NULL;

  if (self->document == NULL || self->store == NULL || busy (self))
    return;
  if (settings->eval_path == NULL || !g_file_test (settings->eval_path, G_FILE_TEST_IS_REGULAR))
    {
      g_autofree char *message = g_strdup_printf ("The evaluation text “%s” is not a readable file.",
                                                  settings->eval_path ? settings->eval_path : "");
      _qb_window_show_error (self, message);
      return;
    }
  study = qb_study_runner_new (self->store, qb_document_get_model (self->document), settings);
  if (self->study)
    g_signal_handlers_disconnect_by_data (self->study, self);
  g_set_object (&self->study, study);
  g_signal_connect (study, "finished", G_CALLBACK (on_study_finished), self);
  qb_run_panel_set_study (self->run_panel, study);
  qb_study_runner_start (study);
  _qb_window_update_actions (self);
}

/* (calibration text, evaluation text, candidates, method, tokens per
 * evaluation chunk (0: the model's context, at most 512), evaluation
 * chunks, calibration chunks, study to resume or 0) */
static void
action_start_study (GSimpleAction *action,
                    GVariant      *param,
                    gpointer       data)
{
  QbStudySettings s = { 0 };

  g_variant_get (param, "(&s&s&s&suuux)", &s.calib_path, &s.eval_path, &s.candidates, &s.method,
                 &s.eval_ctx, &s.eval_chunks, &s.calib_chunks, &s.resume_id);
  s.n_threads = g_settings_get_uint (QB_WINDOW (data)->settings, "threads");
  start_study (data, &s);
}

static void
action_run_study (GSimpleAction *action,
                  GVariant      *param,
                  gpointer       data)
{
  QbWindow *self = data;
  const char * const *calib = qb_document_get_calibration (self->document, NULL);

  gtk_window_present (GTK_WINDOW (qb_study_dialog_new (GTK_WINDOW (self),
                                                       calib && calib[0] ? calib[0] : NULL)));
}

/* Resumes a study this window ran, with the same texts and settings. */
static void
action_resume_study (GSimpleAction *action,
                     GVariant      *param,
                     gpointer       data)
{
  QbWindow *self = data;
  gint64 id = g_variant_get_int64 (param);
  QbStudyRunner *before = g_hash_table_lookup (self->study_runs, &id);
  QbStudySettings s;

  if (before == NULL)
    {
      g_autofree char *message = g_strdup_printf ("Study %" G_GINT64_FORMAT " was not run from this window: "
                                                  "resume it with `quantbench sensitivity --resume %"
                                                  G_GINT64_FORMAT "` and the same texts.", id, id);
      _qb_window_show_error (self, message);
      return;
    }
  s = *qb_study_runner_get_settings (before);
  s.resume_id = id;
  start_study (self, &s);
}

void
_qb_window_forget_studies (QbWindow *self)
{
  if (self->study)
    {
      g_signal_handlers_disconnect_by_data (self->study, self);
      qb_study_runner_cancel (self->study);
    }
  g_clear_object (&self->study);
  if (self->allocate_cancellable)
    g_cancellable_cancel (self->allocate_cancellable);
  g_clear_object (&self->allocate_cancellable);
}

/* -- the budget fill ---------------------------------------------------------- */

static void
allocate_done (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(QbWindow) self = user_data;
  g_autoptr(GError) error = NULL;

  if (!qb_document_allocate_finish (QB_DOCUMENT (source), result, &error)
      && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
      && QB_DOCUMENT (source) == self->document)
    _qb_window_show_error (self, error->message);
  _qb_window_update_actions (self);
}

/* Fills the plan: the least predicted KLD within the bits per weight, on
 * a worker thread. */
static void
action_allocate (GSimpleAction *action,
                 GVariant      *param,
                 gpointer       data)
{
  QbWindow *self = data;
  QbAllocBudget budget = { QB_ALLOC_TARGET_BPW, g_variant_get_double (param) };

  if (self->allocate_cancellable == NULL)
    self->allocate_cancellable = g_cancellable_new ();
  qb_document_allocate_async (self->document, &budget, self->allocate_cancellable, allocate_done,
                              g_object_ref (self));
  _qb_window_update_actions (self);
}

/* (role, formats): the formats a role may take in a fill ("" any). */
static void
action_set_allowed_formats (GSimpleAction *action,
                            GVariant      *param,
                            gpointer       data)
{
  QbWindow *self = data;
  const char *role_name, *formats;
  QbTensorRole role;
  g_autoptr(GError) error = NULL;

  g_variant_get (param, "(&s&s)", &role_name, &formats);
  role = qb_tensor_role_from_name (role_name);
  if (role == QB_ROLE_OTHER)
    {
      g_autofree char *message = g_strdup_printf ("Unknown tensor role “%s”.", role_name);
      _qb_window_show_error (self, message);
      return;
    }
  if (!qb_plan_set_allowed_formats (qb_document_get_plan (self->document), role, formats, &error))
    _qb_window_show_error (self, error->message);
}

static void
action_set_embedding_floor (GSimpleAction *action,
                            GVariant      *param,
                            gpointer       data)
{
  QbWindow *self = data;

  qb_plan_set_embedding_floor (qb_document_get_plan (self->document), g_variant_get_double (param));
}

static const GActionEntry study_entries[] = {
  { "run-study", action_run_study },
  { "start-study", action_start_study, "(ssssuuux)" },
  { "resume-study", action_resume_study, "x" },
  { "allocate", action_allocate, "d" },
  { "set-allowed-formats", action_set_allowed_formats, "(ss)" },
  { "set-embedding-floor", action_set_embedding_floor, "d" },
};

void
_qb_window_install_study_actions (QbWindow *self)
{
  self->study_runs = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_object_unref);
  g_action_map_add_action_entries (G_ACTION_MAP (self), study_entries, G_N_ELEMENTS (study_entries), self);
}

void
_qb_window_update_study_actions (QbWindow *self)
{
  gboolean have = self->document != NULL;
  gboolean can_study = have && self->store != NULL && !busy (self);

  _qb_window_set_enabled (self, "run-study", can_study);
  _qb_window_set_enabled (self, "start-study", can_study);
  _qb_window_set_enabled (self, "resume-study", can_study);
  _qb_window_set_enabled (self, "allocate", have && !qb_document_is_allocating (self->document));
  _qb_window_set_enabled (self, "set-allowed-formats", have);
  _qb_window_set_enabled (self, "set-embedding-floor", have);
}
