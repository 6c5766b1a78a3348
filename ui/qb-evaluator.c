/* SPDX-License-Identifier: MIT */
/* qb-evaluator.c — evaluates a saved experiment and stores the result. */
#include "qb-evaluator.h"

#include <math.h>

#include "qb-experiment-eval.h"
#include "qb-progress-note.h"
#include "qb-relay.h"
#include "qb-ui.h"

/* Progress reaches the main loop at most this often. */
#define RELAY_INTERVAL_MS 100

struct _QbEvaluator
{
  GObject            parent_instance;

  QbStore           *store;
  QbModel           *model;
  gint64             id;
  char              *text_path;
  guint              n_ctx;
  guint              n_chunks;
  gboolean           kld;
  guint              n_threads;

  GCancellable      *cancellable;
  QbEvaluatorStatus  status;
  GError            *error;
  QbEvaluation      *evaluation;

  QbProgressNote     note;        /* the worker's progress ... */
  QbRelay           *relay;       /* ... taken by the main loop */
};

G_DEFINE_FINAL_TYPE (QbEvaluator, qb_evaluator, G_TYPE_OBJECT)

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
  QbEvaluator *self = data;

  qb_progress_note_take (&self->note);
  g_signal_emit (self, signals[PROGRESS], 0);
  return G_SOURCE_REMOVE;
}

/* Takes text. */
static void
report (QbEvaluator *self,
        char        *text,
        double       fraction)
{
  qb_progress_note_post (&self->note, text, NULL, fraction);
  qb_relay_schedule (self->relay);
}

static void
on_job_progress (const QbJobProgress *p,
                 gpointer             data)
{
  report (data, g_strdup_printf ("Quantizing with the experiment's plan · %u of %u tensors",
                                 p->tensors_done, p->n_tensors),
          p->bytes_total ? (double) p->bytes_done / p->bytes_total : 0);
}

static void
on_stats_progress (const QbStatsProgress *p,
                   gpointer               data)
{
  report (data, g_strdup_printf ("Calibrating on the experiment's set · chunk %u of %u",
                                 MIN (p->chunk + 1, p->n_chunks), p->n_chunks),
          p->fraction);
}

static void
on_eval_progress (const QbEvalProgress *p,
                  gpointer              data)
{
  if (p->ppl > 0)
    report (data, g_strdup_printf ("Evaluating · chunk %u of %u · PPL %.4f · %.0f tokens/s",
                                   p->chunk, p->n_chunks, p->ppl, p->tokens_per_second),
            p->fraction);
  else
    report (data, g_strdup_printf ("Evaluating · %s", p->stage), p->fraction);
}

/* -- the work ---------------------------------------------------------------- */

typedef struct {
  QbEvaluator   *self;
  QbStore       *conn;
  QbEvaluation  *evaluation;
  GError        *error;
} Work;

/* The whole evaluation runs at low priority: the window stays responsive. */
static gpointer
run_evaluation (gpointer data)
{
  Work *w = data;
  QbEvaluator *self = w->self;
  QbExperimentEvalOptions opts;

  qb_experiment_eval_options_init (&opts);
  opts.text_path = self->text_path;
  opts.eval.n_ctx = self->n_ctx;
  opts.eval.n_chunks = self->n_chunks;
  opts.eval.kld = self->kld;
  opts.n_threads = self->n_threads;
  opts.stats_progress = on_stats_progress;
  opts.job_progress = on_job_progress;
  opts.eval_progress = on_eval_progress;
  opts.progress_data = self;
  w->evaluation = qb_experiment_evaluate (w->conn, self->id, self->model, &opts, NULL,
                                          self->cancellable, &w->error);
  return NULL;
}

static void
evaluate_thread (GTask        *task,
                 gpointer      source,
                 gpointer      data,
                 GCancellable *cancellable)
{
  QbEvaluator *self = source;
  g_autoptr(QbStore) conn = NULL;
  Work w = { self };

  conn = qb_store_open_connection (self->store, &w.error);
  if (conn != NULL)
    {
      w.conn = conn;
      qb_ui_call_at_low_priority (run_evaluation, &w);
    }
  if (w.evaluation != NULL)
    g_task_return_pointer (task, w.evaluation, (GDestroyNotify) qb_evaluation_free);
  else
    g_task_return_error (task, w.error);
}

static void
evaluate_done (GObject      *object,
               GAsyncResult *result,
               gpointer      data)
{
  QbEvaluator *self = QB_EVALUATOR (object);
  g_autoptr(GError) error = NULL;

  qb_relay_cancel (self->relay);

  self->evaluation = g_task_propagate_pointer (G_TASK (result), &error);
  if (self->evaluation)
    self->status = QB_EVALUATOR_DONE;
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    self->status = QB_EVALUATOR_CANCELLED;
  else
    self->status = QB_EVALUATOR_FAILED;
  self->error = g_steal_pointer (&error);
  g_signal_emit (self, signals[FINISHED], 0);
}

/* -- GObject ------------------------------------------------------------------ */

static void
qb_evaluator_finalize (GObject *object)
{
  QbEvaluator *self = QB_EVALUATOR (object);

  g_clear_pointer (&self->store, qb_store_unref);
  g_clear_object (&self->model);
  g_clear_object (&self->cancellable);
  g_clear_error (&self->error);
  g_clear_pointer (&self->evaluation, qb_evaluation_free);
  g_free (self->text_path);
  qb_relay_free (self->relay);
  qb_progress_note_clear (&self->note);
  G_OBJECT_CLASS (qb_evaluator_parent_class)->finalize (object);
}

static void
qb_evaluator_class_init (QbEvaluatorClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = qb_evaluator_finalize;

  signals[PROGRESS] = g_signal_new ("progress", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                    0, NULL, NULL, NULL, G_TYPE_NONE, 0);
  signals[FINISHED] = g_signal_new ("finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                    0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
qb_evaluator_init (QbEvaluator *self)
{
  qb_progress_note_init (&self->note);
  self->cancellable = g_cancellable_new ();
  self->relay = qb_relay_new (NULL, RELAY_INTERVAL_MS, "[quantbench] evaluation progress", relay,
                              self, g_object_ref, g_object_unref);
}

QbEvaluator *
qb_evaluator_new (QbStore                  *store,
                  QbModel                  *model,
                  gint64                    experiment_id,
                  const QbEvaluatorOptions *options)
{
  QbEvaluator *self = g_object_new (QB_TYPE_EVALUATOR, NULL);

  self->store = qb_store_ref (store);
  self->model = g_object_ref (model);
  self->id = experiment_id;
  self->text_path = g_strdup (options->text_path);
  self->n_ctx = options->n_ctx;
  self->n_chunks = options->n_chunks;
  self->kld = options->kld;
  self->n_threads = options->n_threads;
  return self;
}

void
qb_evaluator_start (QbEvaluator *self)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (QB_IS_EVALUATOR (self));
  g_return_if_fail (self->status == QB_EVALUATOR_READY);

  self->status = QB_EVALUATOR_RUNNING;
  self->note.text = g_strdup ("Starting…");
  task = g_task_new (self, self->cancellable, evaluate_done, NULL);
  g_task_set_source_tag (task, qb_evaluator_start);
  g_task_run_in_thread (task, evaluate_thread);
}

void
qb_evaluator_cancel (QbEvaluator *self)
{
  g_return_if_fail (QB_IS_EVALUATOR (self));
  g_cancellable_cancel (self->cancellable);
}

QbEvaluatorStatus   qb_evaluator_get_status   (QbEvaluator *self) { return self->status; }
gboolean            qb_evaluator_is_running   (QbEvaluator *self) { return self->status == QB_EVALUATOR_RUNNING; }
gint64              qb_evaluator_get_experiment_id (QbEvaluator *self) { return self->id; }
const char         *qb_evaluator_get_text     (QbEvaluator *self) { return self->note.text; }
double              qb_evaluator_get_fraction (QbEvaluator *self) { return self->note.fraction; }
const GError       *qb_evaluator_get_error    (QbEvaluator *self) { return self->error; }
const QbEvaluation *qb_evaluator_get_evaluation (QbEvaluator *self) { return self->evaluation; }
