/* SPDX-License-Identifier: MIT */
/* qb-rules-editor.h — the plan's ordered name rules, editable in place.
 *
 * One row per rule: pattern, glob or regex, format, how many tensors it
 * matches, and buttons to move or remove it.  Typing a pattern updates the
 * plan as you type (an invalid regex is marked and left out of the plan),
 * and the rows the selected rule matches are highlighted in the layer
 * table through the document.
 */
#pragma once

#include <gtk/gtk.h>

#include "qb-document.h"

G_BEGIN_DECLS

#define QB_TYPE_RULES_EDITOR (qb_rules_editor_get_type ())
G_DECLARE_FINAL_TYPE (QbRulesEditor, qb_rules_editor, QB, RULES_EDITOR, GtkWidget)

GtkWidget *qb_rules_editor_new              (void);
void       qb_rules_editor_set_document     (QbRulesEditor *self,
                                             QbDocument    *document);
guint      qb_rules_editor_get_n_rows       (QbRulesEditor *self);
/* The rule whose matches are highlighted, or -1. */
int        qb_rules_editor_get_active       (QbRulesEditor *self);
void       qb_rules_editor_set_active       (QbRulesEditor *self,
                                             int            index);
/* Types into a rule's pattern entry, as a user would. */
void       qb_rules_editor_set_pattern_text (QbRulesEditor *self,
                                             guint          index,
                                             const char    *text);
/* TRUE when the rule's pattern is shown as invalid. */
/* Chooses a rule's method as the user would (NULL: the plan's method). */
void       qb_rules_editor_set_method       (QbRulesEditor *self,
                                             guint          index,
                                             const char    *method);
gboolean   qb_rules_editor_row_has_error    (QbRulesEditor *self,
                                             guint          index);
/* The "N tensors" count shown for a rule. */
guint      qb_rules_editor_get_match_count  (QbRulesEditor *self,
                                             guint          index);

G_END_DECLS
