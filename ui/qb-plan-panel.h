/* SPDX-License-Identifier: MIT */
/* qb-plan-panel.h — the sidebar that edits the plan as a whole: default
 * format, preset, method, 1-D handling, the rules and the overrides count.
 * Its controls go through window actions, as menus and tests do. */
#pragma once

#include <gtk/gtk.h>

#include "qb-constraints-popover.h"
#include "qb-document.h"
#include "qb-rules-editor.h"

G_BEGIN_DECLS

#define QB_TYPE_PLAN_PANEL (qb_plan_panel_get_type ())
G_DECLARE_FINAL_TYPE (QbPlanPanel, qb_plan_panel, QB, PLAN_PANEL, GtkWidget)

GtkWidget     *qb_plan_panel_new               (void);
void           qb_plan_panel_set_document      (QbPlanPanel *self,
                                                QbDocument  *document);
QbRulesEditor *qb_plan_panel_get_rules_editor  (QbPlanPanel *self);
/* The budget control (bits per weight; its Fill button runs win.allocate)
 * and the line under it (predicted KLD and where the costs come from). */
GtkSpinButton *qb_plan_panel_get_budget_spin   (QbPlanPanel *self);
GtkWidget     *qb_plan_panel_get_budget_fill   (QbPlanPanel *self);
const char    *qb_plan_panel_get_budget_text   (QbPlanPanel *self);
/* The popover of the button beside Fill: allowed formats per role, floor. */
QbConstraintsPopover *qb_plan_panel_get_constraints (QbPlanPanel *self);

/* What choosing calibration texts in the file dialog does (NULL: none). */
void           qb_plan_panel_set_calibration_files (QbPlanPanel        *self,
                                                    const char * const *paths);

G_END_DECLS
