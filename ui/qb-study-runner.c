/* SPDX-License-Identifier: MIT */
/* qb-study-runner.c — a sensitivity study in the background. */
#include "qb-study-runner.h"

#include <math.h>

#include "qb-cost-table.h"
#include "qb-progress-note.h"
#include "qb-relay.h"
#include "qb-sensitivity.h"
#include "qb-tokenizer.h"
#include "qb-ui.h"

#define RELAY_INTERVAL_MS 100
#define DEFAULT_CALIB_CHUNKS 64

struct _QbStudyRunner
{
  GObject          parent_instance;

  QbStore         *store;
  QbModel         *model;
  QbStudySettings  settings;      /* strings owned */

  GCancellable    *cancellable;
  QbRunStatus      status;
  GError          *error;
  gint64           study_id;
  GTimer          *timer;

  QbProgressNote   note;          /* the worker's progress ... */
  QbRelay         *relay;         /* ... taken by the main loop */
};

G_DEFINE_FINAL_TYPE (QbStudyRunner, qb_study_runner, G_TYPE_OBJECT)

enum {
  PROGRESS,
  FINISHED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

/* -- progress, worker to main loop ----------------------------------------- */

static gboolean
relay (gpointer data)
{
  QbStudyRunner *self = data;

  qb_progress_note_take (&self->note);
  g_signal_emit (self, signals[PROGRESS], 0);
  return G_SOURCE_REMOVE;
}

/* Takes text. */
static void
report (QbStudyRunner *self,
        char          *text,
        const char    *tensor,
        double         fraction)
{
  qb_progress_note_post (&self->note, text, tensor, fraction);
  qb_relay_schedule (self->relay);
}

static void
on_stats_progress (const QbStatsProgress *p,
                   gpointer               data)
{
  report (data, g_strdup_printf ("Calibrating · chunk %u of %u", MIN (p->chunk + 1, p->n_chunks),
                                 p->n_chunks),
          NULL, p->fraction);
}

static void
on_study_progress (const QbSensitivityProgress *p,
                   gpointer                     data)
{
  if (p->total > 0 && g_strcmp0 (p->stage, "studying") == 0)
    report (data, g_strdup_printf ("Studying · %u of %u (%u measured end to end)", p->done, p->total,
                                   p->measured),
            p->tensor, p->fraction);
  else
    report (data, g_strdup_printf ("Study · %s", p->stage), p->tensor, p->fraction);
}

/* -- the work ---------------------------------------------------------------- */

/* The model's default chunk: its context, at most 512 tokens. */
static guint
default_ctx (QbModel *model)
{
  guint train = qb_model_get_arch (model)->n_ctx;

  return train > 0 && train < 512 ? train : 512;
}

/* When calibration and evaluation read the same text, calibration starts
 * after the evaluated tokens: the two never share a token. */
static guint
calibration_skip (QbStudyRunner *self)
{
  const QbStudySettings *s = &self->settings;
  g_autofree char *a = qb_ui_file_sha256 (s->calib_path);
  g_autofree char *b = qb_ui_file_sha256 (s->eval_path);
  guint ctx = default_ctx (self->model);
  guint64 eval_tokens;

  if (a == NULL || g_strcmp0 (a, b) != 0)
    return 0;
  eval_tokens = (guint64) (s->eval_ctx ? s->eval_ctx : ctx)
                * (s->eval_chunks ? s->eval_chunks : QB_SENSITIVITY_DEFAULT_CHUNKS);
  return (guint) ((eval_tokens + ctx - 1) / ctx);
}

typedef struct {
  QbStudyRunner *self;
  QbStore       *conn;
  gint64         id;
  GError        *error;
} Work;

static gboolean
compute_stats (Work *w, QbActivationStats **stats, gint64 *set_id)
{
  QbStudyRunner *self = w->self;
  const char *paths[] = { self->settings.calib_path, NULL };
  g_autoptr(QbCalibrationSet) record = NULL;
  QbCalibrationOptions opts;

  qb_calibration_options_init (&opts);
  opts.n_chunks = self->settings.calib_chunks ? self->settings.calib_chunks : DEFAULT_CALIB_CHUNKS;
  opts.skip_chunks = calibration_skip (self);
  *stats = qb_sensitivity_compute_stats (self->model, paths, &opts, TRUE, self->settings.n_threads,
                                         on_stats_progress, self, self->cancellable, &w->error);
  if (*stats == NULL)
    return FALSE;
  record = qb_calibration_to_record (qb_activation_stats_get_calibration (*stats));
  return qb_store_add_calibration_set (w->conn, record, set_id, &w->error);
}

static gpointer
run_study (gpointer data)
{
  Work *w = data;
  QbStudyRunner *self = w->self;
  const QbStudySettings *s = &self->settings;
  g_autoptr(QbTokenizer) tok = NULL;
  g_autofree const QbFormat **candidates = NULL;
  g_autofree char *ladder = NULL;
  QbActivationStats *stats = NULL;
  QbSensitivityOptions opts;
  gint64 set_id = 0;
  guint n = 0;

  ladder = s->candidates && *s->candidates ? g_strdup (s->candidates)
                                           : g_strjoinv (",", (char **) qb_cost_default_candidates ());
  if ((candidates = qb_cost_parse_candidates (ladder, &n, &w->error)) == NULL
      || (tok = qb_tokenizer_new_for_model (self->model, &w->error)) == NULL)
    return NULL;
  if (s->calib_path && *s->calib_path && !compute_stats (w, &stats, &set_id))
    {
      g_clear_pointer (&stats, qb_activation_stats_free);
      return NULL;
    }
  qb_sensitivity_options_init (&opts);
  opts.candidates = candidates;
  opts.n_candidates = n;
  opts.method = s->method;
  opts.eval_text = s->eval_path;
  opts.eval_n_ctx = s->eval_ctx;
  opts.eval_n_chunks = s->eval_chunks;
  opts.stats = stats;
  opts.calibration_set_id = set_id;
  opts.n_threads = s->n_threads;
  opts.resume_id = s->resume_id;
  opts.per_expert = s->per_expert;
  qb_sensitivity_run (self->model, tok, w->conn, &opts, on_study_progress, self, self->cancellable,
                      &w->id, &w->error);
  qb_activation_stats_free (stats);
  return NULL;
}

static void
study_thread (GTask        *task,
              gpointer      source,
              gpointer      data,
              GCancellable *cancellable)
{
  QbStudyRunner *self = source;
  g_autoptr(QbStore) conn = NULL;
  Work w = { self };

  conn = qb_store_open_connection (self->store, &w.error);
  if (conn != NULL)
    {
      w.conn = conn;
      qb_ui_call_at_low_priority (run_study, &w);
    }
  /* The study's id, also when it was cancelled or failed (it keeps what
   * it measured). */
  if (w.error == NULL)
    g_task_return_int (task, w.id);
  else
    {
      g_object_set_data_full (G_OBJECT (task), "partial-id", g_memdup2 (&w.id, sizeof w.id), g_free);
      g_task_return_error (task, w.error);
    }
}

static void
study_done (GObject      *object,
            GAsyncResult *result,
            gpointer      data)
{
  QbStudyRunner *self = QB_STUDY_RUNNER (object);
  g_autoptr(GError) error = NULL;
  gint64 *partial = g_object_get_data (G_OBJECT (result), "partial-id");
  gint64 id = g_task_propagate_int (G_TASK (result), &error);

  qb_relay_cancel (self->relay);
  g_timer_stop (self->timer);
  self->study_id = error == NULL ? id : partial ? *partial : 0;
  if (error == NULL)
    self->status = QB_RUN_DONE;
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    self->status = QB_RUN_CANCELLED;
  else
    self->status = QB_RUN_FAILED;
  self->error = g_steal_pointer (&error);
  self->note.fraction = self->status == QB_RUN_DONE ? 1.0 : self->note.fraction;
  g_signal_emit (self, signals[FINISHED], 0);
}

/* -- GObject ------------------------------------------------------------------ */

static void
qb_study_runner_finalize (GObject *object)
{
  QbStudyRunner *self = QB_STUDY_RUNNER (object);

  g_clear_pointer (&self->store, qb_store_unref);
  g_clear_object (&self->model);
  g_clear_object (&self->cancellable);
  g_clear_error (&self->error);
  g_free ((char *) self->settings.calib_path);
  g_free ((char *) self->settings.eval_path);
  g_free ((char *) self->settings.candidates);
  g_free ((char *) self->settings.method);
  qb_relay_free (self->relay);
  g_timer_destroy (self->timer);
  qb_progress_note_clear (&self->note);
  G_OBJECT_CLASS (qb_study_runner_parent_class)->finalize (object);
}

static void
qb_study_runner_class_init (QbStudyRunnerClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = qb_study_runner_finalize;

  signals[PROGRESS] = g_signal_new ("progress", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                    0, NULL, NULL, NULL, G_TYPE_NONE, 0);
  signals[FINISHED] = g_signal_new ("finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                    0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
qb_study_runner_init (QbStudyRunner *self)
{
  qb_progress_note_init (&self->note);
  self->cancellable = g_cancellable_new ();
  self->timer = g_timer_new ();
  g_timer_stop (self->timer);
  self->relay = qb_relay_new (NULL, RELAY_INTERVAL_MS, "[quantbench] study progress", relay,
                              self, g_object_ref, g_object_unref);
}

QbStudyRunner *
qb_study_runner_new (QbStore               *store,
                     QbModel               *model,
                     const QbStudySettings *settings)
{
  QbStudyRunner *self = g_object_new (QB_TYPE_STUDY_RUNNER, NULL);

  self->store = qb_store_ref (store);
  self->model = g_object_ref (model);
  self->settings = *settings;
  self->settings.calib_path = settings->calib_path && *settings->calib_path
                              ? g_strdup (settings->calib_path) : NULL;
  self->settings.eval_path = g_strdup (settings->eval_path);
  self->settings.candidates = settings->candidates && *settings->candidates
                              ? g_strdup (settings->candidates) : NULL;
  self->settings.method = g_strdup (settings->method && *settings->method ? settings->method : "rtn");
  return self;
}

void
qb_study_runner_start (QbStudyRunner *self)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (QB_IS_STUDY_RUNNER (self));
  g_return_if_fail (self->status == QB_RUN_READY);

  self->status = QB_RUN_RUNNING;
  self->note.text = g_strdup (self->settings.resume_id > 0 ? "Resuming the study…" : "Starting the study…");
  g_timer_start (self->timer);
  task = g_task_new (self, self->cancellable, study_done, NULL);
  g_task_set_source_tag (task, qb_study_runner_start);
  g_task_run_in_thread (task, study_thread);
}

void
qb_study_runner_cancel (QbStudyRunner *self)
{
  g_return_if_fail (QB_IS_STUDY_RUNNER (self));
  g_cancellable_cancel (self->cancellable);
}

QbRunStatus   qb_study_runner_get_status   (QbStudyRunner *self) { return self->status; }
gboolean      qb_study_runner_is_running   (QbStudyRunner *self) { return self->status == QB_RUN_RUNNING; }
gint64        qb_study_runner_get_study_id (QbStudyRunner *self) { return self->study_id; }
const char   *qb_study_runner_get_text     (QbStudyRunner *self) { return self->note.text; }
const char   *qb_study_runner_get_tensor   (QbStudyRunner *self) { return self->note.tensor; }
double        qb_study_runner_get_fraction (QbStudyRunner *self) { return self->note.fraction; }
double        qb_study_runner_get_elapsed  (QbStudyRunner *self) { return g_timer_elapsed (self->timer, NULL); }
const GError *qb_study_runner_get_error    (QbStudyRunner *self) { return self->error; }
const QbStudySettings *qb_study_runner_get_settings (QbStudyRunner *self) { return &self->settings; }
