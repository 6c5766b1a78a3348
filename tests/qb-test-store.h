/* SPDX-License-Identifier: MIT */
/* qb-test-store.h — records for the experiment store's tests. */
#pragma once

#include <sqlite3.h>

#include "qb-store.h"

G_BEGIN_DECLS

/* A model record with this fingerprint and name. */
QbModelRecord  *qb_test_model_record  (const char *fingerprint, const char *name);
/* A plausible result for a tensor: metrics derived from seed, 512-bin
 * histograms of a normal sample and n_channels channel ranges when
 * with_data.  Some measures are NAN (wmse) as in a run without importance. */
QbTensorResult *qb_test_tensor_result (const char *name, guint seed, gboolean with_data,
                                       guint n_channels);
/* Starts an experiment, stores n_tensors results (format `format`) and
 * finishes it with `status`; returns its id. */
gint64          qb_test_store_run     (QbStore *store, const QbModelRecord *model,
                                       const char *name, const char *format, guint n_tensors,
                                       QbExperimentStatus status);
/* A NAN-aware equality of doubles (NAN == NAN). */
gboolean        qb_test_same_double   (double a, double b);
/* Asserts that two results are equal in every field, histograms and
 * channel ranges included. */
void            qb_test_assert_same_result (const QbTensorResult *a, const QbTensorResult *b);
/* The integer in the first column of the first row sql gives. */
gint64          qb_test_sql_int       (sqlite3 *db, const char *sql);
/* A file's bytes, for byte-identity checks. */
GBytes         *qb_test_file_bytes    (const char *path);

G_END_DECLS
