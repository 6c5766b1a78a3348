/* SPDX-License-Identifier: MIT */
/* qb-method.h — quantization methods, as plug-ins.
 *
 * A method turns rows of float weights into a format's bytes.  "rtn" calls
 * the format's row quantizer; "search" asks it to search scales; methods
 * that need activation statistics (GPTQ) declare it and receive them.
 * Rows are independent given the per-tensor state, so the engine may hand
 * any chunk of rows to any thread.
 *
 * What a method gets, in order:
 *  - prepare() once per tensor, with the whole context (importance, XᵀX,
 *    the tensor's absmax, options): the place for per-tensor set-up such as
 *    GPTQ's Cholesky factor of the inverse Hessian.  Its state is shared,
 *    read-only, by every thread.
 *  - quantize_rows() on fixed chunks of consecutive rows, from any thread,
 *    never two calls on the same rows.  w holds n_rows * n_cols floats (the
 *    method may not write it: copy rows it wants to update); out holds
 *    n_rows * row_bytes bytes.
 *  - release() when the tensor is done.
 * The format's grid: a block-scoped format's quantize_row/dequantize_row
 * work on any whole number of blocks, and block b of a row is stored at
 * byte b * block_bytes, so a method may quantize a row block by block (GPTQ
 * quantizes a block, propagates its error to the columns not yet
 * quantized, and moves on) and the result is still a valid row of the format.
 */
#pragma once

#include <gio/gio.h>

#include "qb-format.h"

G_BEGIN_DECLS

typedef struct _QbMethod QbMethod;

/* Per-tensor input to a method. */
typedef struct {
  const QbMethod *method;
  const QbFormat *format;
  const char     *tensor_name;
  gint64          n_cols;          /* ne[0]: values per row */
  gint64          n_rows;
  guint64         row_bytes;       /* bytes of one quantized row */
  const float    *importance;      /* n_cols per-column weights, or NULL */
  const double   *gram;            /* n_cols x n_cols XᵀX (row-major), or NULL */
  guint64         gram_samples;    /* number of activation rows summed into gram */
  float           tensor_absmax;   /* max |w| of the whole tensor */
  GHashTable     *options;         /* method options by name (char* -> char*), may be NULL */
} QbMethodContext;

struct _QbMethod {
  const char *name;                /* "rtn", "search", "gptq" */
  const char *summary;
  gboolean    needs_gram;          /* needs XᵀX from calibration */
  gboolean    needs_importance;    /* refuses to run without importance */
  /* Values per quantize_rows call the method works best with (GPTQ wants
   * many rows at once); 0: the engine's default chunks.  Chunks still
   * depend only on the tensor's shape and the method. */
  gint64      chunk_values;
  /* Per-tensor set-up (may be NULL); returns state passed to quantize_rows. */
  gpointer  (*prepare)       (const QbMethodContext *ctx, GError **error);
  /* Quantizes n_rows rows (w: n_rows x n_cols floats) into out, which holds
   * n_rows rows of the format's bytes. */
  void      (*quantize_rows) (const QbMethodContext *ctx,
                              gpointer               state,
                              const float           *w,
                              gint64                 n_rows,
                              guint8                *out);
  void      (*release)       (gpointer state);
};

/* The format parameters a method passes to the format's row functions:
 * format, importance and tensor absmax from ctx, search off. */
void             qb_method_context_params (const QbMethodContext *ctx,
                                           QbQuantParams         *params);

guint            qb_method_count    (void);
const QbMethod  *qb_method_get      (guint index);
const QbMethod  *qb_method_find     (const char *name);
/* Adds a method to the registry (calibration methods register at start-up).
 * The method struct must outlive the process; a second method of the same
 * name is refused with a warning. */
void             qb_method_register (const QbMethod *method);

G_END_DECLS
