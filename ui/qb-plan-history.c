/* SPDX-License-Identifier: MIT */
/* qb-plan-history.c — undo and redo for the plan of a document. */
#include "qb-plan-history.h"

#define MAX_STEPS 200

struct _QbPlanHistory
{
  GObject     parent_instance;

  QbDocument *document;
  char       *current;        /* the plan's JSON as last seen */
  GPtrArray  *undo;           /* JSON, oldest first */
  GPtrArray  *redo;           /* JSON, the next redo last */
  int         typing_rule;    /* the rule whose pattern the last step edited, or -1 */
  gboolean    restoring;      /* the change is ours */
};

G_DEFINE_FINAL_TYPE (QbPlanHistory, qb_plan_history, G_TYPE_OBJECT)

enum { CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS];

/* The index of the one rule whose pattern alone differs between the plans
 * (the rest identical), or -1. */
static int
pattern_edit (const char *before_json,
              QbPlan     *after)
{
  g_autoptr(QbPlan) before = qb_plan_new_from_json (before_json, NULL);
  g_autofree char *after_json = NULL;
  g_autofree char *patched_json = NULL;
  int edited = -1;

  if (before == NULL || qb_plan_get_n_rules (before) != qb_plan_get_n_rules (after))
    return -1;
  for (guint i = 0; i < qb_plan_get_n_rules (after); i++)
    if (g_strcmp0 (qb_plan_get_rule (before, i)->pattern, qb_plan_get_rule (after, i)->pattern) != 0)
      {
        if (edited >= 0)
          return -1;
        edited = (int) i;
      }
  if (edited < 0)
    return -1;
  {
    const QbPlanRule *rule = qb_plan_get_rule (after, edited);

    qb_plan_remove_rule (before, edited);
    if (!qb_plan_insert_rule (before, edited, rule->pattern, rule->kind, rule->format, rule->method, NULL))
      return -1;
  }
  after_json = qb_plan_to_json (after);
  patched_json = qb_plan_to_json (before);
  return g_str_equal (after_json, patched_json) ? edited : -1;
}

static void
push (GPtrArray *stack,
      char      *json)
{
  if (stack->len >= MAX_STEPS)
    g_ptr_array_remove_index (stack, 0);
  g_ptr_array_add (stack, json);
}

static void
on_totals_changed (QbDocument    *document,
                   QbPlanHistory *self)
{
  QbPlan *plan = qb_document_get_plan (document);
  g_autofree char *json = qb_plan_to_json (plan);
  int typing;

  if (g_strcmp0 (json, self->current) == 0)
    return;
  if (self->restoring)
    {
      g_free (self->current);
      self->current = g_steal_pointer (&json);
      return;
    }
  typing = pattern_edit (self->current, plan);
  /* Keystrokes in one pattern: the step already recorded covers them. */
  if (typing < 0 || typing != self->typing_rule || self->undo->len == 0)
    push (self->undo, g_steal_pointer (&self->current));
  self->typing_rule = typing;
  g_free (self->current);
  self->current = g_steal_pointer (&json);
  g_ptr_array_set_size (self->redo, 0);
  g_signal_emit (self, signals[CHANGED], 0);
}

/* Moves the top of `from` into the document, the current plan onto `to`. */
static void
step (QbPlanHistory *self,
      GPtrArray     *from,
      GPtrArray     *to)
{
  g_autofree char *json = NULL;
  g_autoptr(QbPlan) plan = NULL;

  if (from->len == 0)
    return;
  json = g_ptr_array_steal_index (from, from->len - 1);
  /* Every snapshot was written by qb_plan_to_json: it reads back. */
  plan = qb_plan_new_from_json (json, NULL);
  g_return_if_fail (plan != NULL);
  push (to, g_strdup (self->current));
  self->typing_rule = -1;
  self->restoring = TRUE;
  qb_document_set_plan (self->document, plan);
  self->restoring = FALSE;
  g_signal_emit (self, signals[CHANGED], 0);
}

void
qb_plan_history_undo (QbPlanHistory *self)
{
  g_return_if_fail (QB_IS_PLAN_HISTORY (self));
  step (self, self->undo, self->redo);
}

void
qb_plan_history_redo (QbPlanHistory *self)
{
  g_return_if_fail (QB_IS_PLAN_HISTORY (self));
  step (self, self->redo, self->undo);
}

gboolean
qb_plan_history_can_undo (QbPlanHistory *self)
{
  g_return_val_if_fail (QB_IS_PLAN_HISTORY (self), FALSE);
  return self->undo->len > 0;
}

gboolean
qb_plan_history_can_redo (QbPlanHistory *self)
{
  g_return_val_if_fail (QB_IS_PLAN_HISTORY (self), FALSE);
  return self->redo->len > 0;
}

static void
qb_plan_history_dispose (GObject *object)
{
  QbPlanHistory *self = QB_PLAN_HISTORY (object);

  if (self->document)
    g_signal_handlers_disconnect_by_data (self->document, self);
  g_clear_object (&self->document);
  G_OBJECT_CLASS (qb_plan_history_parent_class)->dispose (object);
}

static void
qb_plan_history_finalize (GObject *object)
{
  QbPlanHistory *self = QB_PLAN_HISTORY (object);

  g_free (self->current);
  g_ptr_array_unref (self->undo);
  g_ptr_array_unref (self->redo);
  G_OBJECT_CLASS (qb_plan_history_parent_class)->finalize (object);
}

static void
qb_plan_history_class_init (QbPlanHistoryClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = qb_plan_history_dispose;
  object_class->finalize = qb_plan_history_finalize;

  /* A step was recorded, undone or redone (can_undo/can_redo may differ). */
  signals[CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                   0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
qb_plan_history_init (QbPlanHistory *self)
{
  self->undo = g_ptr_array_new_with_free_func (g_free);
  self->redo = g_ptr_array_new_with_free_func (g_free);
  self->typing_rule = -1;
}

QbPlanHistory *
qb_plan_history_new (QbDocument *document)
{
  QbPlanHistory *self = g_object_new (QB_TYPE_PLAN_HISTORY, NULL);

  self->document = g_object_ref (document);
  self->current = qb_plan_to_json (qb_document_get_plan (document));
  g_signal_connect (document, "totals-changed", G_CALLBACK (on_totals_changed), self);
  return self;
}
