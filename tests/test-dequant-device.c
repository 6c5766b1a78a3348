/* SPDX-License-Identifier: MIT */
/* test-dequant-device.c — ggml storage blocks turned into float32 on an
 * OpenCL device (PoCL's CPU device in CI) give exactly the CPU's values,
 * bit for bit: on llama.cpp's golden blocks, on random bytes (NaN and
 * infinite scales, subnormal halves), and on every stories260K tensor
 * quantized to each type; read from and written to offsets inside
 * buffers, as the forward pass does. */
#include <string.h>

#include "qb-dequant-device-private.h"
#include "qb-format.h"
#include "qb-model.h"
#include "qb-test-util.h"

static const QbDType dtypes[] = {
  QB_DTYPE_F16, QB_DTYPE_BF16, QB_DTYPE_Q4_0, QB_DTYPE_Q4_1, QB_DTYPE_Q5_0, QB_DTYPE_Q5_1,
  QB_DTYPE_Q8_0, QB_DTYPE_Q2_K, QB_DTYPE_Q3_K, QB_DTYPE_Q4_K, QB_DTYPE_Q5_K, QB_DTYPE_Q6_K,
  QB_DTYPE_IQ4_NL, QB_DTYPE_IQ4_XS,
};

typedef struct {
  QbDevice        *device;
  QbDequantDevice *dq;
} Fixture;

/* The device and its kernels, built once; NULL after g_test_skip. */
static Fixture *
fixture (void)
{
  static Fixture f;
  static gboolean tried;

  if (!tried)
    {
      g_autoptr(GPtrArray) list = qb_device_list (NULL);
      g_autoptr(GError) error = NULL;

      tried = TRUE;
      if (list->len > 0)
        {
          f.device = qb_device_open ("opencl:0", &error);
          g_assert_no_error (error);
          f.dq = qb_dequant_device_new (f.device, &error);
          g_assert_no_error (error);
        }
    }
  if (f.dq == NULL)
    {
      g_test_skip ("no OpenCL device (install pocl-opencl-icd)");
      return NULL;
    }
  return &f;
}

/* n values of dtype from blocks, dequantized on the device: the blocks
 * sit src_pad bytes into their buffer, the values dst_pad floats in. */
static float *
device_dequant (Fixture *f, QbDType dtype, const guint8 *blocks, gint64 n)
{
  const QbDTypeInfo *info = qb_dtype_info (dtype);
  gsize bytes = (gsize) (n / info->block_size) * info->type_size, src_pad = 13, dst_pad = 7;
  cl_command_queue queue = qb_device_get_queue (f->device);
  g_autoptr(GError) error = NULL;
  cl_mem src, dst;
  float *out = g_new (float, n);

  src = qb_device_alloc (f->device, CL_MEM_READ_ONLY, bytes + src_pad, &error);
  g_assert_no_error (error);
  dst = qb_device_alloc (f->device, CL_MEM_READ_WRITE, sizeof (float) * (n + dst_pad), &error);
  g_assert_no_error (error);
  g_assert_cmpint (clEnqueueWriteBuffer (queue, src, CL_TRUE, src_pad, bytes, blocks, 0, NULL, NULL),
                   ==, CL_SUCCESS);
  g_assert_cmpint (qb_dequant_device_enqueue (f->dq, queue, dtype, src, src_pad, dst, dst_pad, n),
                   ==, CL_SUCCESS);
  g_assert_cmpint (clEnqueueReadBuffer (queue, dst, CL_TRUE, sizeof (float) * dst_pad,
                                        sizeof (float) * n, out, 0, NULL, NULL), ==, CL_SUCCESS);
  clReleaseMemObject (src);
  clReleaseMemObject (dst);
  return out;
}

/* Bit for bit, except that any NaN equals any NaN (a device may make
 * other NaN bits than x86). */
static void
assert_same (const float *a, const float *b, gint64 n, const char *what)
{
  for (gint64 i = 0; i < n; i++)
    {
      guint32 ua, ub;

      if (a[i] != a[i] && b[i] != b[i])
        continue;
      memcpy (&ua, a + i, 4);
      memcpy (&ub, b + i, 4);
      if (ua != ub)
        g_error ("%s: value %" G_GINT64_FORMAT " is %.9g (0x%08x) on the device, %.9g (0x%08x) on the CPU",
                 what, i, a[i], ua, b[i], ub);
    }
}

/* Device and CPU dequantization of blocks agree. */
static void
check (Fixture *f, QbDType dtype, const guint8 *blocks, gint64 n, const char *what)
{
  g_autofree float *cpu = g_new (float, n);
  g_autofree float *dev = device_dequant (f, dtype, blocks, n);

  qb_dtype_info (dtype)->to_float (blocks, cpu, n);
  assert_same (dev, cpu, n, what);
}

/* llama.cpp's blocks (plain and importance-weighted) give its values. */
static void
test_golden (gconstpointer data)
{
  QbDType dtype = GPOINTER_TO_INT (data);
  const QbDTypeInfo *info = qb_dtype_info (dtype);
  /* Importance changes nothing in how these are made: no such files. */
  gboolean plain_only = dtype == QB_DTYPE_F16 || dtype == QB_DTYPE_BF16 || dtype == QB_DTYPE_Q8_0;
  const char *suffixes[] = { "", "-IMATRIX" };
  Fixture *f = fixture ();

  if (f == NULL)
    return;
  for (gsize s = 0; s < (plain_only ? 1 : G_N_ELEMENTS (suffixes)); s++)
    {
      g_autofree char *bin_name = g_strdup_printf ("%s%s.bin", info->name, suffixes[s]);
      g_autofree char *deq_name = g_strdup_printf ("%s%s.dequant.f32", info->name, suffixes[s]);
      g_autoptr(GBytes) bin = qb_test_golden (bin_name), deq = NULL;
      g_autofree float *dev = NULL;
      gint64 n;

      if (bin == NULL)
        return;   /* skipped: no shared folder */
      deq = qb_test_golden (deq_name);
      g_assert_nonnull (deq);
      n = (gint64) g_bytes_get_size (deq) / 4;
      g_assert_cmpuint (g_bytes_get_size (bin), ==, (gsize) (n / info->block_size) * info->type_size);
      dev = device_dequant (f, dtype, g_bytes_get_data (bin, NULL), n);
      assert_same (dev, g_bytes_get_data (deq, NULL), n, bin_name);
      check (f, dtype, g_bytes_get_data (bin, NULL), n, bin_name);
    }
}

/* Random bytes: every scale pattern, NaN, infinities and subnormal
 * halves among them. */
static void
test_random (gconstpointer data)
{
  QbDType dtype = GPOINTER_TO_INT (data);
  const QbDTypeInfo *info = qb_dtype_info (dtype);
  Fixture *f = fixture ();
  gint64 n_blocks = 8192, n = n_blocks * info->block_size;
  g_autofree guint8 *blocks = NULL;
  g_autoptr(GRand) rand = g_rand_new_with_seed (13 + dtype);

  if (f == NULL)
    return;
  blocks = g_malloc ((gsize) n_blocks * info->type_size);
  for (gsize i = 0; i < (gsize) n_blocks * info->type_size; i++)
    blocks[i] = (guint8) g_rand_int (rand);
  check (f, dtype, blocks, n, "random bytes");
}

/* Every stories260K tensor (read whole, cut into rows of 256) quantized
 * by the CPU to each type: the device's values are the CPU's. */
static void
test_stories260k (void)
{
  g_autofree char *path = qb_test_shared_path ("models/stories260K.gguf");
  g_autoptr(QbModel) model = NULL;
  g_autoptr(GError) error = NULL;
  Fixture *f = fixture ();
  guint checked = 0;

  if (f == NULL || path == NULL)
    return;
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < qb_model_get_n_tensors (model); i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, i);
      gint64 n = t->n_params / 256 * 256;
      g_autofree float *x = NULL;

      if (n == 0)
        continue;
      x = g_new (float, t->n_params);
      g_assert_true (qb_model_read_range (model, i, 0, t->n_params, x, &error));
      g_assert_no_error (error);
      for (gsize k = 0; k < G_N_ELEMENTS (dtypes); k++)
        {
          const QbFormat *fmt = qb_format_for_dtype (dtypes[k]);
          QbQuantParams params = { .format = fmt };
          guint64 row_bytes = 0;
          g_autofree guint8 *q = NULL;
          g_autofree char *what = g_strdup_printf ("%s as %s", t->name, fmt->name);

          g_assert_true (qb_format_row_bytes (fmt, 256, &row_bytes));
          q = g_malloc (row_bytes * (n / 256));
          for (gint64 r = 0; r < n / 256; r++)
            fmt->quantize_row (&params, x + r * 256, q + r * row_bytes, 256);
          check (f, dtypes[k], q, n, what);
          checked++;
        }
    }
  g_test_message ("%u tensor × type pairs identical", checked);
  g_assert_cmpuint (checked, >, G_N_ELEMENTS (dtypes));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (gsize k = 0; k < G_N_ELEMENTS (dtypes); k++)
    {
      const char *name = qb_dtype_info (dtypes[k])->name;
      g_autofree char *p1 = g_strdup_printf ("/dequant-device/%s/golden", name);
      g_autofree char *p2 = g_strdup_printf ("/dequant-device/%s/random", name);

      g_test_add_data_func (p1, GINT_TO_POINTER (dtypes[k]), test_golden);
      g_test_add_data_func (p2, GINT_TO_POINTER (dtypes[k]), test_random);
    }
  g_test_add_func ("/dequant-device/stories260K", test_stories260k);
  return g_test_run ();
}
