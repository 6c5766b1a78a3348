/* SPDX-License-Identifier: MIT */
/* qb-imatrix.h — importance matrices: per-column mean squared activation
 * of every linear layer's input, keyed by tensor name.  Reads and writes
 * llama.cpp's formats: the legacy .dat and the GGUF imatrix. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define QB_IMATRIX_ERROR (qb_imatrix_error_quark ())
GQuark qb_imatrix_error_quark (void);

typedef enum {
  QB_IMATRIX_ERROR_INVALID,
  QB_IMATRIX_ERROR_IO,
} QbImatrixError;

typedef struct _QbImatrix QbImatrix;

/* (transfer full) */
QbImatrix    *qb_imatrix_new          (void);
QbImatrix    *qb_imatrix_ref          (QbImatrix *im);
void          qb_imatrix_unref        (QbImatrix *im);
/* Detects the format (.dat or GGUF) from the contents.  Files are
 * untrusted: every length and count is checked, values must be finite and
 * not negative, names unique; errors name the file, the field and where. (transfer full) */
QbImatrix    *qb_imatrix_load         (const char *path, GError **error);
gboolean      qb_imatrix_save_dat     (QbImatrix *im, const char *path, GError **error);
gboolean      qb_imatrix_save_gguf    (QbImatrix *im, const char *path, GError **error);

/* Sets a tensor's sums of squares over n_samples activation rows (sum2
 * holds n_cols values) — the stored form; importance = sum2 / n_samples. */
void          qb_imatrix_set          (QbImatrix *im, const char *tensor_name,
                                       const float *sum2, guint n_cols, guint64 n_samples);
/* The same for a stack of n_mat matrices (a 3-D expert tensor): sum2
 * holds n_cols values per matrix, matrix after matrix, counts the rows each
 * one summed (llama-imatrix's per-expert counts). */
void          qb_imatrix_set_stacked  (QbImatrix *im, const char *tensor_name,
                                       const float *sum2, guint n_cols, guint n_mat,
                                       const guint64 *counts);
/* The rows each matrix of an entry summed (n_mat of them), or NULL. */
const guint64 *qb_imatrix_get_counts  (QbImatrix *im, const char *tensor_name, guint *n_mat);
/* Per-column importance (mean of squares) for a tensor, or NULL.  Looks up
 * by exact name.  Valid while im lives (and until the entry is set again).
 * For stacked experts (GGUF entries with n_mat > 1) n_cols counts all
 * matrices' columns, expert after expert. */
const float  *qb_imatrix_get          (QbImatrix *im, const char *tensor_name, guint *n_cols);
guint64       qb_imatrix_get_samples  (QbImatrix *im, const char *tensor_name);
guint         qb_imatrix_get_n_entries(QbImatrix *im);
const char   *qb_imatrix_get_name     (QbImatrix *im, guint index);
/* Dataset and chunk facts stored with the matrix. */
void          qb_imatrix_set_dataset  (QbImatrix *im, const char *dataset, guint n_chunks, guint chunk_size);
const char   *qb_imatrix_get_dataset  (QbImatrix *im);
guint         qb_imatrix_get_n_chunks (QbImatrix *im);
guint         qb_imatrix_get_chunk_size (QbImatrix *im);   /* 0 when unknown (.dat) */

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbImatrix, qb_imatrix_unref)

G_END_DECLS
