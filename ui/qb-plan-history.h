/* SPDX-License-Identifier: MIT */
/* qb-plan-history.h — undo and redo for the plan of a document.
 *
 * Watches the document: every change of its plan (a format set, a rule
 * edited, the whole plan replaced by an experiment's or a file's) becomes
 * one step, kept as the plan's JSON.  Edits that reach the plan in one
 * main-loop turn (a bulk edit) are one step, and consecutive keystrokes
 * in one rule's pattern are merged into one.  Undo and redo put the
 * earlier plan back with qb_document_set_plan().
 */
#pragma once

#include "qb-document.h"

G_BEGIN_DECLS

#define QB_TYPE_PLAN_HISTORY (qb_plan_history_get_type ())
G_DECLARE_FINAL_TYPE (QbPlanHistory, qb_plan_history, QB, PLAN_HISTORY, GObject)

QbPlanHistory *qb_plan_history_new      (QbDocument    *document);
gboolean       qb_plan_history_can_undo (QbPlanHistory *self);
gboolean       qb_plan_history_can_redo (QbPlanHistory *self);
void           qb_plan_history_undo     (QbPlanHistory *self);
void           qb_plan_history_redo     (QbPlanHistory *self);

G_END_DECLS
