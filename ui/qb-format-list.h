/* SPDX-License-Identifier: MIT */
/* qb-format-list.h — the format registry as a list for drop-downs.
 *
 * "keep" (leave the tensor as stored) first, then every format of the
 * registry in its order.  Built once; shared by every format chooser.
 */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

/* A GtkStringList of format names; owned by the library, do not unref. */
GListModel *qb_format_list_get      (void);

G_END_DECLS
