/* SPDX-License-Identifier: MIT */
/* qb-channel-range-view.h — per-output-channel weight ranges.
 *
 * One vertical bar per output channel from its minimum to its maximum
 * weight; channels whose largest magnitude is far above the typical one are
 * drawn in the error colour, so outlier channels stand out.  Scroll zooms
 * the channel axis, drag pans, hovering reads out the channel.
 */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

/* A channel is an outlier when its largest |w| exceeds this many times the
 * median over channels. */
#define QB_CHANNEL_OUTLIER_FACTOR 3.0

#define QB_TYPE_CHANNEL_RANGE_VIEW (qb_channel_range_view_get_type ())
G_DECLARE_FINAL_TYPE (QbChannelRangeView, qb_channel_range_view, QB, CHANNEL_RANGE_VIEW, GtkWidget)

GtkWidget *qb_channel_range_view_new             (void);
/* Copies n ranges, buckets of the tensor's n_rows rows as core makes them
 * (qb_channel_rows_per_bucket); NULL clears. */
void       qb_channel_range_view_set_ranges      (QbChannelRangeView *self,
                                                  const float        *min,
                                                  const float        *max,
                                                  guint               n,
                                                  gint64              n_rows);
void       qb_channel_range_view_set_placeholder (QbChannelRangeView *self,
                                                  const char         *text);
guint      qb_channel_range_view_get_n_channels  (QbChannelRangeView *self);
guint      qb_channel_range_view_get_n_outliers  (QbChannelRangeView *self);
gboolean   qb_channel_range_view_is_outlier      (QbChannelRangeView *self,
                                                  guint               channel);
void       qb_channel_range_view_reset_zoom      (QbChannelRangeView *self);
/* "channel 12: min -0.3, max 0.4" or, for a bucket of several rows,
 * "rows 96–103 (8 channels): …"; NULL past the end. */
char      *qb_channel_range_view_describe        (QbChannelRangeView *self,
                                                  guint               channel);
/* The chart's title: what a bar is, rows, buckets and outliers
 * ("min–max per bucket of 8 rows · 32000 rows in 4000 buckets · …"). */
char      *qb_channel_range_view_describe_buckets (QbChannelRangeView *self);

G_END_DECLS
