/* SPDX-License-Identifier: MIT */
/* qb-window-study.c — sensitivity studies from the window (run, resume,
 * cancel), and the budget fill with its constraints. */
#include "qb-window-private.h"

#include "qb-allocation-plan.h"
#include "qb-study-record.h"
#include "qb-ui.h"
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
 * chunks, calibration chunks, study to resume or 0, each expert alone too) */
static void
action_start_study (GSimpleAction *action,
                    GVariant      *param,
                    gpointer       data)
{
  QbStudySettings s = { 0 };

  g_variant_get (param, "(&s&s&s&suuuxb)", &s.calib_path, &s.eval_path, &s.candidates, &s.method,
                 &s.eval_ctx, &s.eval_chunks, &s.calib_chunks, &s.resume_id, &s.per_expert);
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

/* -- resuming a study run before (another session, or the command line) --- */

typedef struct {
  QbStore  *store;
  gint64    id;
  GStrv     texts;          /* where the evaluation text may be */
  QbStudySettings settings; /* strings owned */
} ResumeLookup;

static void
resume_lookup_free (ResumeLookup *r)
{
  qb_store_unref (r->store);
  g_strfreev (r->texts);
  g_free ((char *) r->settings.calib_path);
  g_free ((char *) r->settings.eval_path);
  g_free ((char *) r->settings.candidates);
  g_free ((char *) r->settings.method);
  g_free (r);
}

/* The study's settings from the store; its evaluation text found by its
 * hash among the calibration texts and the texts the window knows. */
static void
resume_lookup_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  ResumeLookup *r = data;
  GError *error = NULL;
  g_autoptr(QbStudyRecord) rec = qb_store_get_study (r->store, r->id, &error);
  g_autoptr(QbCalibrationSet) set = NULL;
  g_autoptr(GPtrArray) texts = g_ptr_array_new ();

  if (rec == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (rec->calibration_set_id > 0
      && (set = qb_store_get_calibration_set (r->store, rec->calibration_set_id, &error)) == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  for (guint i = 0; set && set->sources && set->sources[i]; i++)
    g_ptr_array_add (texts, set->sources[i]);
  for (guint i = 0; r->texts[i]; i++)
    g_ptr_array_add (texts, r->texts[i]);
  for (guint i = 0; i < texts->len && r->settings.eval_path == NULL; i++)
    {
      g_autofree char *hash = qb_ui_file_sha256 (g_ptr_array_index (texts, i));
      if (g_strcmp0 (hash, rec->eval_text_hash) == 0)
        r->settings.eval_path = g_strdup (g_ptr_array_index (texts, i));
    }
  if (r->settings.eval_path == NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                               "Study %" G_GINT64_FORMAT " was measured on “%s”, which is not among the "
                               "texts known here: run a New Study with it once (or `quantbench "
                               "sensitivity --resume %" G_GINT64_FORMAT "`).", r->id,
                               rec->eval_text_name ? rec->eval_text_name : "?", r->id);
      return;
    }
  r->settings.calib_path = set && set->sources && set->sources[0] ? g_strdup (set->sources[0]) : NULL;
  r->settings.calib_chunks = set ? set->n_chunks : 0;
  r->settings.candidates = g_strdup (rec->candidates);
  r->settings.method = g_strdup (rec->method);
  r->settings.eval_ctx = rec->eval_n_ctx;
  r->settings.eval_chunks = rec->eval_n_chunks;
  r->settings.resume_id = r->id;
  g_task_return_boolean (task, TRUE);
}

static void
resume_lookup_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(QbWindow) self = user_data;
  ResumeLookup *r = g_task_get_task_data (G_TASK (result));
  g_autoptr(GError) error = NULL;

  self->n_pending--;
  if (gtk_widget_in_destruction (GTK_WIDGET (self)))
    return;
  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      _qb_window_show_error (self, error->message);
      return;
    }
  r->settings.n_threads = g_settings_get_uint (self->settings, "threads");
  start_study (self, &r->settings);
}

/* Resumes a study: with the settings it ran with when this window ran it,
 * else with what the store says (the core refuses any mismatch). */
static void
action_resume_study (GSimpleAction *action,
                     GVariant      *param,
                     gpointer       data)
{
  QbWindow *self = data;
  gint64 id = g_variant_get_int64 (param);
  QbStudyRunner *before = g_hash_table_lookup (self->study_runs, &id);
  g_autoptr(GStrvBuilder) texts = g_strv_builder_new ();
  g_autofree char *eval = g_settings_get_string (self->settings, "evaluation-text");
  const char * const *calib = qb_document_get_calibration (self->document, NULL);
  g_autoptr(GTask) task = NULL;
  ResumeLookup *r;

  if (before != NULL)
    {
      QbStudySettings s = *qb_study_runner_get_settings (before);
      s.resume_id = id;
      start_study (self, &s);
      return;
    }
  if (*eval)
    g_strv_builder_add (texts, eval);
  for (guint i = 0; calib && calib[i]; i++)
    g_strv_builder_add (texts, calib[i]);
  r = g_new0 (ResumeLookup, 1);
  r->store = qb_store_ref (self->store);
  r->id = id;
  r->texts = g_strv_builder_end (texts);
  self->n_pending++;
  task = g_task_new (NULL, NULL, resume_lookup_done, g_object_ref (self));
  g_task_set_source_tag (task, action_resume_study);
  g_task_set_task_data (task, r, (GDestroyNotify) resume_lookup_free);
  g_task_run_in_thread (task, resume_lookup_thread);
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
  { "start-study", action_start_study, "(ssssuuuxb)" },
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
