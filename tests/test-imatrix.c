/* SPDX-License-Identifier: MIT */
/* test-imatrix.c — llama.cpp importance matrices: files built to the
 * documented layouts, round trips, damaged files. */
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "qb-gguf.h"
#include "qb-imatrix.h"
#include "qb-test-util.h"

/* ---- the legacy .dat layout, byte by byte ------------------------------- */

static void
put_i32 (GByteArray *b, gint32 v)
{
  v = GINT32_TO_LE (v);
  g_byte_array_append (b, (const guint8 *) &v, 4);
}

static void
put_f32 (GByteArray *b, float f)
{
  guint32 u;
  memcpy (&u, &f, 4);
  u = GUINT32_TO_LE (u);
  g_byte_array_append (b, (const guint8 *) &u, 4);
}

static void
put_str (GByteArray *b, const char *s)
{
  put_i32 (b, (gint32) strlen (s));
  g_byte_array_append (b, (const guint8 *) s, strlen (s));
}

/* Two entries, as llama.cpp's imatrix tool writes them: values are the
 * mean of squares times ncall. */
static GByteArray *
build_dat (gboolean trailer)
{
  GByteArray *b = g_byte_array_new ();

  put_i32 (b, 2);
  put_str (b, "blk.0.attn_q.weight");
  put_i32 (b, 4);                       /* ncall */
  put_i32 (b, 3);                       /* nval */
  put_f32 (b, 4.0f);
  put_f32 (b, 8.0f);
  put_f32 (b, 2.0f);
  put_str (b, "blk.0.ffn_down.weight");
  put_i32 (b, 0);                       /* ncall 0: values taken as they are */
  put_i32 (b, 2);
  put_f32 (b, 0.5f);
  put_f32 (b, 0.25f);
  if (trailer)
    {
      put_i32 (b, 17);                  /* chunks */
      put_str (b, "calibration.txt");
    }
  return b;
}

static char *
write_bytes (const char *dir, const char *name, const guint8 *data, gsize n)
{
  char *path = g_build_filename (dir, name, NULL);
  g_assert_true (g_file_set_contents (path, (const char *) data, n, NULL));
  return path;
}

static void
test_dat_load (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autoptr(GByteArray) b = build_dat (TRUE);
  g_autofree char *path = write_bytes (dir, "im.dat", b->data, b->len);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbImatrix) im = qb_imatrix_load (path, &error);
  const float *v;
  guint n;

  g_assert_no_error (error);
  g_assert_cmpuint (qb_imatrix_get_n_entries (im), ==, 2);
  g_assert_cmpstr (qb_imatrix_get_name (im, 0), ==, "blk.0.attn_q.weight");
  v = qb_imatrix_get (im, "blk.0.attn_q.weight", &n);
  g_assert_cmpuint (n, ==, 3);
  g_assert_cmpfloat (v[0], ==, 1.0f);
  g_assert_cmpfloat (v[1], ==, 2.0f);
  g_assert_cmpfloat (v[2], ==, 0.5f);
  g_assert_cmpuint (qb_imatrix_get_samples (im, "blk.0.attn_q.weight"), ==, 4);
  v = qb_imatrix_get (im, "blk.0.ffn_down.weight", &n);
  g_assert_cmpuint (n, ==, 2);
  g_assert_cmpfloat (v[0], ==, 0.5f);
  g_assert_cmpfloat (v[1], ==, 0.25f);
  g_assert_null (qb_imatrix_get (im, "blk.1.attn_q.weight", &n));
  g_assert_cmpuint (n, ==, 0);
  g_assert_cmpstr (qb_imatrix_get_dataset (im), ==, "calibration.txt");
  g_assert_cmpuint (qb_imatrix_get_n_chunks (im), ==, 17);

  /* Without the optional trailer. */
  {
    g_autoptr(GByteArray) b2 = build_dat (FALSE);
    g_autofree char *p2 = write_bytes (dir, "im2.dat", b2->data, b2->len);
    g_autoptr(QbImatrix) im2 = qb_imatrix_load (p2, &error);
    g_assert_no_error (error);
    g_assert_null (qb_imatrix_get_dataset (im2));
    g_assert_cmpuint (qb_imatrix_get_n_entries (im2), ==, 2);
  }
}

static QbImatrix *
sample_imatrix (void)
{
  QbImatrix *im = qb_imatrix_new ();
  float a[5] = { 1.5f, 0.0f, 3.25f, 100.0f, 1e-8f };
  float c[3] = { 7.0f, 8.0f, 9.0f };

  qb_imatrix_set (im, "blk.1.attn_k.weight", a, 5, 12);
  qb_imatrix_set (im, "blk.0.attn_k.weight", c, 3, 3);
  qb_imatrix_set_dataset (im, "tinystories-val.txt", 42, 128);
  return im;
}

static void
assert_same_importance (QbImatrix *a, QbImatrix *b)
{
  g_assert_cmpuint (qb_imatrix_get_n_entries (a), ==, qb_imatrix_get_n_entries (b));
  for (guint i = 0; i < qb_imatrix_get_n_entries (a); i++)
    {
      const char *name = qb_imatrix_get_name (a, i);
      guint na, nb;
      const float *va = qb_imatrix_get (a, name, &na);
      const float *vb = qb_imatrix_get (b, name, &nb);

      g_assert_nonnull (vb);
      g_assert_cmpuint (na, ==, nb);
      g_assert_cmpmem (va, 4 * na, vb, 4 * nb);
      g_assert_cmpuint (qb_imatrix_get_samples (a, name), ==, qb_imatrix_get_samples (b, name));
    }
  g_assert_cmpstr (qb_imatrix_get_dataset (a), ==, qb_imatrix_get_dataset (b));
  g_assert_cmpuint (qb_imatrix_get_n_chunks (a), ==, qb_imatrix_get_n_chunks (b));
}

/* Through .dat the importance is stored times ncall and divided back:
 * equal to float rounding. */
static void
assert_close_importance (QbImatrix *a, QbImatrix *b)
{
  g_assert_cmpuint (qb_imatrix_get_n_entries (a), ==, qb_imatrix_get_n_entries (b));
  for (guint i = 0; i < qb_imatrix_get_n_entries (a); i++)
    {
      const char *name = qb_imatrix_get_name (a, i);
      guint na, nb;
      const float *va = qb_imatrix_get (a, name, &na);
      const float *vb = qb_imatrix_get (b, name, &nb);

      g_assert_nonnull (vb);
      g_assert_cmpuint (na, ==, nb);
      for (guint j = 0; j < na; j++)
        g_assert_cmpfloat_with_epsilon (va[j], vb[j], 1e-6 * fabsf (va[j]) + 1e-30);
    }
}

static void
test_dat_round_trip (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "rt.dat", NULL);
  g_autoptr(QbImatrix) im = sample_imatrix ();
  g_autoptr(QbImatrix) back = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *contents = NULL;
  gsize size;
  gint32 ncall;

  g_assert_true (qb_imatrix_save_dat (im, path, &error));
  g_assert_no_error (error);
  back = qb_imatrix_load (path, &error);
  g_assert_no_error (error);
  assert_close_importance (im, back);

  /* The layout: n_entries, then the first entry's name and ncall (the
   * chunk count, as llama-imatrix writes it). */
  g_assert_true (g_file_get_contents (path, &contents, &size, NULL));
  g_assert_cmpint (GINT32_FROM_LE (*(gint32 *) contents), ==, 2);
  g_assert_cmpint (GINT32_FROM_LE (*(gint32 *) (contents + 4)), ==, 19);
  g_assert_cmpmem (contents + 8, 19, "blk.1.attn_k.weight", 19);
  memcpy (&ncall, contents + 27, 4);
  g_assert_cmpint (GINT32_FROM_LE (ncall), ==, 42);
  g_assert_cmpuint (size, ==, 4 + (4 + 19 + 8 + 20) + (4 + 19 + 8 + 12) + 8 + 19);
}

/* The GGUF layout, built directly with the GGUF writer. */
static char *
build_gguf (const char *dir, const char *name, gboolean with_meta)
{
  g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
  g_autoptr(GError) error = NULL;
  char *path = g_build_filename (dir, name, NULL);
  const char *datasets[] = { "a.txt", "b.txt" };
  float sums[2 * 3] = { 2, 4, 6, 30, 0, 3 };   /* two experts of 3 columns */
  float counts[2] = { 2, 3 };
  float dense[4] = { 10, 20, 30, 40 };
  float dense_counts[1] = { 10 };
  gint64 ne_sums[2] = { 3, 2 }, ne_counts[2] = { 1, 2 };
  gint64 ne_dense[2] = { 4, 1 }, ne_dense_counts[2] = { 1, 1 };

  if (with_meta)
    {
      qb_gguf_writer_set_string (w, "general.type", "imatrix");
      qb_gguf_writer_set_string_array (w, "imatrix.datasets", datasets, 2);
      qb_gguf_writer_set_uint32 (w, "imatrix.chunk_count", 9);
      qb_gguf_writer_set_uint32 (w, "imatrix.chunk_size", 512);
    }
  qb_gguf_writer_add_tensor (w, "blk.0.ffn_up_exps.weight.in_sum2", 2, ne_sums, QB_DTYPE_F32);
  qb_gguf_writer_add_tensor (w, "blk.0.ffn_up_exps.weight.counts", 2, ne_counts, QB_DTYPE_F32);
  qb_gguf_writer_add_tensor (w, "output.weight.counts", 2, ne_dense_counts, QB_DTYPE_F32);
  qb_gguf_writer_add_tensor (w, "output.weight.in_sum2", 2, ne_dense, QB_DTYPE_F32);
  g_assert_true (qb_gguf_writer_begin (w, path, &error));
  g_assert_true (qb_gguf_writer_write_tensor (w, 0, sums, sizeof sums, &error));
  g_assert_true (qb_gguf_writer_write_tensor (w, 1, counts, sizeof counts, &error));
  g_assert_true (qb_gguf_writer_write_tensor (w, 2, dense_counts, sizeof dense_counts, &error));
  g_assert_true (qb_gguf_writer_write_tensor (w, 3, dense, sizeof dense, &error));
  g_assert_true (qb_gguf_writer_finish (w, &error));
  return path;
}

static void
test_gguf_load (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = build_gguf (dir, "im.gguf", TRUE);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbImatrix) im = qb_imatrix_load (path, &error);
  const float *v;
  guint n;

  g_assert_no_error (error);
  g_assert_cmpuint (qb_imatrix_get_n_entries (im), ==, 2);
  v = qb_imatrix_get (im, "output.weight", &n);
  g_assert_cmpuint (n, ==, 4);
  g_assert_cmpfloat (v[0], ==, 1.0f);
  g_assert_cmpfloat (v[3], ==, 4.0f);
  g_assert_cmpuint (qb_imatrix_get_samples (im, "output.weight"), ==, 10);
  /* Stacked experts: each matrix divided by its own count. */
  v = qb_imatrix_get (im, "blk.0.ffn_up_exps.weight", &n);
  g_assert_cmpuint (n, ==, 6);
  g_assert_cmpfloat (v[0], ==, 1.0f);
  g_assert_cmpfloat (v[2], ==, 3.0f);
  g_assert_cmpfloat (v[3], ==, 10.0f);
  g_assert_cmpfloat (v[5], ==, 1.0f);
  g_assert_cmpstr (qb_imatrix_get_dataset (im), ==, "a.txt");
  g_assert_cmpuint (qb_imatrix_get_n_chunks (im), ==, 9);
  g_assert_cmpuint (qb_imatrix_get_chunk_size (im), ==, 512);
}

static void
test_gguf_round_trip (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "rt.gguf", NULL);
  g_autofree char *dat = g_build_filename (dir, "rt.dat", NULL);
  g_autoptr(QbImatrix) im = sample_imatrix ();
  g_autoptr(QbImatrix) back = NULL;
  g_autoptr(QbImatrix) via_dat = NULL;
  g_autoptr(QbGguf) gguf = NULL;
  g_autoptr(GError) error = NULL;
  const QbGgufTensorInfo *t;
  guint64 v;

  g_assert_true (qb_imatrix_save_gguf (im, path, &error));
  g_assert_no_error (error);
  back = qb_imatrix_load (path, &error);
  g_assert_no_error (error);
  assert_same_importance (im, back);
  g_assert_cmpuint (qb_imatrix_get_chunk_size (back), ==, 128);

  /* The file as llama.cpp reads it. */
  gguf = qb_gguf_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (qb_gguf_get_string (gguf, "general.type"), ==, "imatrix");
  g_assert_true (qb_gguf_get_uint (gguf, "imatrix.chunk_count", &v));
  g_assert_cmpuint (v, ==, 42);
  g_assert_true (qb_gguf_get_uint (gguf, "imatrix.chunk_size", &v));
  g_assert_cmpuint (v, ==, 128);
  g_assert_nonnull (qb_gguf_get_string_array (gguf, "imatrix.datasets", &v));
  g_assert_cmpuint (v, ==, 1);
  g_assert_cmpuint (qb_gguf_get_n_tensors (gguf), ==, 4);
  /* Sorted by name: blk.0 first. */
  t = qb_gguf_get_tensor (gguf, 0);
  g_assert_cmpstr (t->name.str, ==, "blk.0.attn_k.weight.in_sum2");
  g_assert_cmpint (t->dtype, ==, QB_DTYPE_F32);
  g_assert_cmpint (t->ne[0], ==, 3);
  g_assert_cmpint (t->ne[1], ==, 1);
  t = qb_gguf_get_tensor (gguf, 1);
  g_assert_cmpstr (t->name.str, ==, "blk.0.attn_k.weight.counts");
  g_assert_cmpint (t->ne[0], ==, 1);
  g_assert_cmpfloat (((const float *) t->data)[0], ==, 3.0f);

  /* GGUF -> .dat -> load keeps the importance. */
  g_assert_true (qb_imatrix_save_dat (back, dat, &error));
  via_dat = qb_imatrix_load (dat, &error);
  g_assert_no_error (error);
  assert_close_importance (im, via_dat);
}

static void
expect_invalid (const char *path, const char *fragment)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbImatrix) im = qb_imatrix_load (path, &error);

  g_assert_null (im);
  g_assert_nonnull (error);
  g_assert_true (error->domain == QB_IMATRIX_ERROR);
  if (fragment && strstr (error->message, fragment) == NULL)
    g_error ("message '%s' does not mention '%s'", error->message, fragment);
}

static void
test_dat_damaged (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autoptr(GByteArray) good = build_dat (TRUE);
  g_autofree char *path = g_build_filename (dir, "bad.dat", NULL);

  /* Every truncation fails cleanly, except at the entry boundary before
   * the optional trailer. */
  for (guint len = 0; len < good->len; len++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(QbImatrix) im = NULL;

      g_assert_true (g_file_set_contents (path, (const char *) good->data, len, NULL));
      im = qb_imatrix_load (path, &error);
      if (len == good->len - 23)
        g_assert_no_error (error);
      else
        {
          g_assert_null (im);
          g_assert_nonnull (error);
          g_assert_nonnull (strstr (error->message, path));
        }
    }

#define DAMAGE(offset, value, fragment)                                        \
  do {                                                                         \
    g_autoptr(GByteArray) b = build_dat (TRUE);                                \
    gint32 v = GINT32_TO_LE (value);                                           \
    memcpy (b->data + (offset), &v, 4);                                        \
    g_assert_true (g_file_set_contents (path, (const char *) b->data, b->len, NULL)); \
    expect_invalid (path, fragment);                                           \
  } while (0)
  DAMAGE (0, 0, "number of entries");
  DAMAGE (0, -5, "number of entries");
  DAMAGE (0, 1 << 30, "number of entries");
  DAMAGE (4, -1, "entry name length");
  DAMAGE (4, 1 << 30, "entry name length");
  DAMAGE (27, -2, "ncall");
  DAMAGE (31, 0, "number of values");
  DAMAGE (31, 1 << 29, "number of values");
  DAMAGE (31, 1000, "truncated");
  {
    float nan_value = NAN;
    gint32 bits;
    memcpy (&bits, &nan_value, 4);
    DAMAGE (35, bits, "value 0");
  }
  {
    float neg = -1.0f;
    gint32 bits;
    memcpy (&bits, &neg, 4);
    DAMAGE (39, bits, "value 1");
  }
  /* The second entry renamed to the first: a duplicate. */
  {
    g_autoptr(GByteArray) b = build_dat (TRUE);
    g_byte_array_set_size (b, 0);
    put_i32 (b, 2);
    for (int k = 0; k < 2; k++)
      {
        put_str (b, "same");
        put_i32 (b, 1);
        put_i32 (b, 1);
        put_f32 (b, 1.0f);
      }
    g_assert_true (g_file_set_contents (path, (const char *) b->data, b->len, NULL));
    expect_invalid (path, "twice");
  }
  /* Bytes after the trailer. */
  {
    g_autoptr(GByteArray) b = build_dat (TRUE);
    put_i32 (b, 0);
    g_assert_true (g_file_set_contents (path, (const char *) b->data, b->len, NULL));
    expect_invalid (path, "unexpected bytes");
  }
  /* A name with a NUL byte. */
  {
    g_autoptr(GByteArray) b = build_dat (TRUE);
    b->data[10] = 0;
    g_assert_true (g_file_set_contents (path, (const char *) b->data, b->len, NULL));
    expect_invalid (path, "not text");
  }
#undef DAMAGE

  /* Missing file: an I/O error. */
  {
    g_autoptr(GError) error = NULL;
    g_autofree char *missing = g_build_filename (dir, "missing.dat", NULL);
    g_assert_null (qb_imatrix_load (missing, &error));
    g_assert_error (error, QB_IMATRIX_ERROR, QB_IMATRIX_ERROR_IO);
  }
}

static void
test_gguf_damaged (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *good = build_gguf (dir, "good.gguf", TRUE);
  g_autofree char *contents = NULL;
  g_autofree char *path = g_build_filename (dir, "bad.gguf", NULL);
  gsize size, end = 0;

  /* Truncated anywhere before the end of the last tensor's data (what
   * follows may be padding): refused with a message, never a crash. */
  g_assert_true (g_file_get_contents (good, &contents, &size, NULL));
  {
    g_autoptr(QbGguf) gguf = qb_gguf_open (good, NULL);
    for (guint64 i = 0; i < qb_gguf_get_n_tensors (gguf); i++)
      {
        const QbGgufTensorInfo *t = qb_gguf_get_tensor (gguf, i);
        end = MAX (end, qb_gguf_get_data_offset (gguf) + t->offset + t->n_bytes);
      }
  }
  g_assert_cmpuint (end, <=, size);
  for (gsize len = 4; len < end; len += 7)
    {
      g_assert_true (g_file_set_contents (path, contents, len, NULL));
      expect_invalid (path, NULL);
    }

  /* Sums without counts, counts without sums, wrong type, wrong shape,
   * another kind of GGUF file. */
  {
    g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
    gint64 ne[2] = { 2, 1 };
    float v[2] = { 1, 2 };
    qb_gguf_writer_add_tensor (w, "x.in_sum2", 2, ne, QB_DTYPE_F32);
    g_assert_true (qb_gguf_writer_begin (w, path, NULL));
    g_assert_true (qb_gguf_writer_write_tensor (w, 0, v, sizeof v, NULL));
    g_assert_true (qb_gguf_writer_finish (w, NULL));
    expect_invalid (path, "no counts");
  }
  {
    g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
    gint64 ne[2] = { 1, 1 };
    float v[1] = { 1 };
    qb_gguf_writer_add_tensor (w, "x.counts", 2, ne, QB_DTYPE_F32);
    g_assert_true (qb_gguf_writer_begin (w, path, NULL));
    g_assert_true (qb_gguf_writer_write_tensor (w, 0, v, sizeof v, NULL));
    g_assert_true (qb_gguf_writer_finish (w, NULL));
    expect_invalid (path, "no sums");
  }
  {
    g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
    gint64 ne[2] = { 2, 1 }, nc[2] = { 1, 2 };
    float v[2] = { 1, 2 };
    qb_gguf_writer_add_tensor (w, "x.in_sum2", 2, ne, QB_DTYPE_F32);
    qb_gguf_writer_add_tensor (w, "x.counts", 2, nc, QB_DTYPE_F32);
    g_assert_true (qb_gguf_writer_begin (w, path, NULL));
    g_assert_true (qb_gguf_writer_write_tensor (w, 0, v, sizeof v, NULL));
    g_assert_true (qb_gguf_writer_write_tensor (w, 1, v, sizeof v, NULL));
    g_assert_true (qb_gguf_writer_finish (w, NULL));
    expect_invalid (path, "expected [1, 1]");
  }
  {
    g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
    gint64 ne[2] = { 2, 1 }, nc[2] = { 1, 1 };
    guint16 h[2] = { 0x3c00, 0x3c00 };
    float c[1] = { 1 };
    qb_gguf_writer_add_tensor (w, "x.in_sum2", 2, ne, QB_DTYPE_F16);
    qb_gguf_writer_add_tensor (w, "x.counts", 2, nc, QB_DTYPE_F32);
    g_assert_true (qb_gguf_writer_begin (w, path, NULL));
    g_assert_true (qb_gguf_writer_write_tensor (w, 0, h, sizeof h, NULL));
    g_assert_true (qb_gguf_writer_write_tensor (w, 1, c, sizeof c, NULL));
    g_assert_true (qb_gguf_writer_finish (w, NULL));
    expect_invalid (path, "F32");
  }
  {
    g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
    gint64 ne[2] = { 2, 1 }, nc[2] = { 1, 1 };
    float v[2] = { 1, -2 };
    float c[1] = { 1 };
    qb_gguf_writer_add_tensor (w, "x.in_sum2", 2, ne, QB_DTYPE_F32);
    qb_gguf_writer_add_tensor (w, "x.counts", 2, nc, QB_DTYPE_F32);
    g_assert_true (qb_gguf_writer_begin (w, path, NULL));
    g_assert_true (qb_gguf_writer_write_tensor (w, 0, v, sizeof v, NULL));
    g_assert_true (qb_gguf_writer_write_tensor (w, 1, c, sizeof c, NULL));
    g_assert_true (qb_gguf_writer_finish (w, NULL));
    expect_invalid (path, "value 1");
  }
  {
    g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
    qb_gguf_writer_set_string (w, "general.type", "model");
    g_assert_true (qb_gguf_writer_begin (w, path, NULL));
    g_assert_true (qb_gguf_writer_finish (w, NULL));
    expect_invalid (path, "model");
  }
  {
    g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
    qb_gguf_writer_set_string (w, "general.type", "imatrix");
    g_assert_true (qb_gguf_writer_begin (w, path, NULL));
    g_assert_true (qb_gguf_writer_finish (w, NULL));
    expect_invalid (path, "no importance entries");
  }
}

static void
test_save_refuses_empty (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "empty.dat", NULL);
  g_autoptr(QbImatrix) im = qb_imatrix_new ();
  g_autoptr(GError) error = NULL;

  g_assert_false (qb_imatrix_save_dat (im, path, &error));
  g_assert_error (error, QB_IMATRIX_ERROR, QB_IMATRIX_ERROR_INVALID);
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/imatrix/dat/load", test_dat_load);
  g_test_add_func ("/imatrix/dat/round-trip", test_dat_round_trip);
  g_test_add_func ("/imatrix/dat/damaged", test_dat_damaged);
  g_test_add_func ("/imatrix/gguf/load", test_gguf_load);
  g_test_add_func ("/imatrix/gguf/round-trip", test_gguf_round_trip);
  g_test_add_func ("/imatrix/gguf/damaged", test_gguf_damaged);
  g_test_add_func ("/imatrix/save-refuses-empty", test_save_refuses_empty);
  return g_test_run ();
}
