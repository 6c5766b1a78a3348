/* SPDX-License-Identifier: MIT */
/* qb-format-button.h — shows a format and lets the user pick another.
 *
 * A flat button with the format's name; clicking opens a searchable list
 * of every format with its summary.  The list is built on the first click:
 * a table of thousands of tensors keeps a few hundred cells alive, and a
 * GtkDropDown builds its whole popover up front (about 16 ms each on the
 * test machine, seconds for a table), while this button is a GtkButton
 * and a label until used.
 */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define QB_TYPE_FORMAT_BUTTON (qb_format_button_get_type ())
G_DECLARE_FINAL_TYPE (QbFormatButton, qb_format_button, QB, FORMAT_BUTTON, GtkWidget)

GtkWidget  *qb_format_button_new        (void);
/* Shows a format without announcing a choice. */
void        qb_format_button_set_format (QbFormatButton *self,
                                         const char     *format);
const char *qb_format_button_get_format (QbFormatButton *self);
/* Picks a format as the user would: sets it and emits "format-chosen". */
void        qb_format_button_choose     (QbFormatButton *self,
                                         const char     *format);
void        qb_format_button_set_flat   (QbFormatButton *self,
                                         gboolean        flat);
/* Offers "Use the plan's choice" in the list, which emits "reset" (for a
 * format set by hand). */
void        qb_format_button_set_resettable (QbFormatButton *self,
                                         gboolean        resettable);

/* Text shown in place of the format (the list still opens on the format):
 * "F16 ← Q6_K" for a tensor whose rows do not fit what was asked.  NULL:
 * the format. */
void        qb_format_button_set_shown_label (QbFormatButton *self,
                                         const char     *label);

G_END_DECLS
