/* qb-format-list.h — the format registry as a list for drop-downs.
 *
 * "keep" (leave the tensor as stored) first, then every format of the
 * registry in its order.  Built once; shared by all drop-downs.
 */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

/* A GtkStringList of format names; owned by the library, do not unref. */
GListModel *qb_format_list_get      (void);
/* Position of a name (case-insensitive), or GTK_INVALID_LIST_POSITION. */
guint       qb_format_list_find     (const char *name);
const char *qb_format_list_name_at  (guint       position);
/* A drop-down over the list, with search and one-line tooltips. */
GtkWidget  *qb_format_list_new_drop_down (void);

G_END_DECLS
