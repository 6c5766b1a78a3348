/* qb-ggml-quants.c — placeholder until the bit-exact implementation lands. */
#include "qb-ggml-quants.h"

#define QB_GGML_QUANT_PENDING(t)                                                   \
  void qb_dequantize_row_##t (const void *src, float *dst, gint64 n)             \
  { g_error ("%s is not implemented yet", G_STRFUNC); }                          \
  gsize qb_quantize_##t (const float *src, void *dst, gint64 n_rows,             \
                         gint64 n_per_row, const float *imatrix)                 \
  { g_error ("%s is not implemented yet", G_STRFUNC); return 0; }

QB_GGML_QUANT_PENDING (q4_0)
QB_GGML_QUANT_PENDING (q4_1)
QB_GGML_QUANT_PENDING (q5_0)
QB_GGML_QUANT_PENDING (q5_1)
QB_GGML_QUANT_PENDING (q8_0)
QB_GGML_QUANT_PENDING (q2_K)
QB_GGML_QUANT_PENDING (q3_K)
QB_GGML_QUANT_PENDING (q4_K)
QB_GGML_QUANT_PENDING (q5_K)
QB_GGML_QUANT_PENDING (q6_K)
QB_GGML_QUANT_PENDING (iq4_nl)
QB_GGML_QUANT_PENDING (iq4_xs)
