/* SPDX-License-Identifier: MIT */
/* test-gguf.c — the GGUF reader and writer on real and generated files. */
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qb-gguf.h"
#include "qb-test-util.h"

/* ---- stories260K ------------------------------------------------------ */

static void
test_stories_facts (void)
{
  g_autofree char *path = qb_test_shared_path ("models/stories260K.gguf");
  g_autoptr(GError) error = NULL;
  g_autoptr(QbGguf) g = NULL;
  const QbGgufTensorInfo *t;
  const QbGgufString *tokens;
  const float *scores;
  const gint32 *types;
  guint64 n, u;
  double eps;

  if (path == NULL)
    return;
  g = qb_gguf_open (path, &error);
  g_assert_no_error (error);

  g_assert_cmpuint (qb_gguf_get_version (g), ==, 3);
  g_assert_cmpuint (qb_gguf_get_n_kv (g), ==, 19);
  g_assert_cmpuint (qb_gguf_get_n_tensors (g), ==, 48);
  g_assert_cmpuint (qb_gguf_get_alignment (g), ==, 32);
  g_assert_cmpuint (qb_gguf_get_data_offset (g), ==, 14176);   /* header ends at 14152 */
  g_assert_cmpuint (qb_gguf_get_file_size (g), ==, 1185376);

  g_assert_cmpstr (qb_gguf_get_string (g, "general.architecture"), ==, "llama");
  g_assert_true (qb_gguf_get_uint (g, "llama.block_count", &u));
  g_assert_cmpuint (u, ==, 5);
  g_assert_true (qb_gguf_get_uint (g, "llama.feed_forward_length", &u));
  g_assert_cmpuint (u, ==, 172);
  g_assert_true (qb_gguf_get_double (g, "llama.attention.layer_norm_rms_epsilon", &eps));
  g_assert_cmpfloat_with_epsilon (eps, 1e-5, 1e-9);
  /* uint32 max is not a signed 32-bit value but fits int64 */
  g_assert_true (qb_gguf_get_uint (g, "tokenizer.ggml.padding_token_id", &u));
  g_assert_cmpuint (u, ==, G_MAXUINT32);
  g_assert_null (qb_gguf_get_string (g, "llama.block_count"));   /* wrong kind */
  g_assert_false (qb_gguf_get_uint (g, "no.such.key", &u));

  tokens = qb_gguf_get_string_array (g, "tokenizer.ggml.tokens", &n);
  g_assert_nonnull (tokens);
  g_assert_cmpuint (n, ==, 512);
  g_assert_cmpstr (tokens[0].str, ==, "<unk>");
  g_assert_cmpstr (tokens[3].str, ==, "<0x00>");
  g_assert_cmpuint (tokens[258].len, ==, 6);                     /* <0xFF> */
  scores = qb_gguf_get_array (g, "tokenizer.ggml.scores", QB_GGUF_TYPE_FLOAT32, &n);
  g_assert_nonnull (scores);
  g_assert_cmpuint (n, ==, 512);
  types = qb_gguf_get_array (g, "tokenizer.ggml.token_type", QB_GGUF_TYPE_INT32, &n);
  g_assert_nonnull (types);
  g_assert_cmpint (types[0], ==, 2);
  g_assert_cmpint (types[1], ==, 3);
  g_assert_cmpint (types[3], ==, 6);
  g_assert_null (qb_gguf_get_array (g, "tokenizer.ggml.scores", QB_GGUF_TYPE_INT32, &n));

  t = qb_gguf_get_tensor (g, 0);
  g_assert_cmpstr (t->name.str, ==, "token_embd.weight");
  g_assert_cmpuint (t->n_dims, ==, 2);
  g_assert_cmpint (t->ne[0], ==, 64);
  g_assert_cmpint (t->ne[1], ==, 512);
  g_assert_cmpint (t->dtype, ==, QB_DTYPE_F32);
  g_assert_cmpuint (t->n_bytes, ==, 64 * 512 * 4);
  g_assert_cmpuint (t->offset, ==, 0);

  t = qb_gguf_find_tensor (g, "blk.4.ffn_down.weight");
  g_assert_nonnull (t);
  g_assert_cmpint (t->ne[0], ==, 172);
  g_assert_cmpint (t->ne[1], ==, 64);
  g_assert_cmpint (t->ne[2], ==, 1);
  g_assert_cmpuint (t->offset, ==, 1082880);
  g_assert_true ((const guint8 *) t->data == (const guint8 *) qb_gguf_get_tensor (g, 0)->data + 1082880);

  t = qb_gguf_find_tensor (g, "output_norm.weight");
  g_assert_cmpuint (t->n_dims, ==, 1);
  g_assert_cmpint (t->ne[0], ==, 64);
  g_assert_null (qb_gguf_find_tensor (g, "blk.5.attn_q.weight"));
}

typedef struct
{
  QbGgufWriter *w;
  QbGguf       *src;
} CopyJob;

/* Writes tensor data from several threads, each a slice in reverse order,
 * to exercise the positional writes. */
static gpointer
copy_tensors_thread (gpointer data)
{
  CopyJob *job = data;
  static gint next = 0;
  gint i;

  while ((i = g_atomic_int_add (&next, 1)) < (gint) qb_gguf_get_n_tensors (job->src))
    {
      guint64 idx = qb_gguf_get_n_tensors (job->src) - 1 - (guint64) i;
      const QbGgufTensorInfo *t = qb_gguf_get_tensor (job->src, idx);
      guint64 half = t->n_bytes / 2;
      g_autoptr(GError) error = NULL;

      /* second half first: pieces may arrive in any order */
      qb_gguf_writer_write_tensor_range (job->w, idx, half, (const guint8 *) t->data + half,
                                         t->n_bytes - half, &error);
      g_assert_no_error (error);
      qb_gguf_writer_write_tensor_range (job->w, idx, 0, t->data, half, &error);
      g_assert_no_error (error);
    }
  return NULL;
}

/* Copies every key and tensor of src into a new file at path. */
static void
copy_gguf (QbGguf *src, const char *path, gboolean threaded)
{
  g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
  g_autoptr(GError) error = NULL;

  qb_gguf_writer_set_version (w, qb_gguf_get_version (src));
  for (guint64 i = 0; i < qb_gguf_get_n_kv (src); i++)
    qb_gguf_writer_copy_kv (w, qb_gguf_get_kv (src, i));
  for (guint64 i = 0; i < qb_gguf_get_n_tensors (src); i++)
    {
      const QbGgufTensorInfo *t = qb_gguf_get_tensor (src, i);
      g_assert_cmpuint (qb_gguf_writer_add_tensor (w, t->name.str, t->n_dims, t->ne, t->dtype), ==, i);
    }
  qb_gguf_writer_begin (w, path, &error);
  g_assert_no_error (error);
  if (threaded)
    {
      CopyJob job = { w, src };
      GThread *threads[3];
      for (guint k = 0; k < G_N_ELEMENTS (threads); k++)
        threads[k] = g_thread_new ("copy", copy_tensors_thread, &job);
      for (guint k = 0; k < G_N_ELEMENTS (threads); k++)
        g_thread_join (threads[k]);
    }
  else
    for (guint64 i = 0; i < qb_gguf_get_n_tensors (src); i++)
      {
        const QbGgufTensorInfo *t = qb_gguf_get_tensor (src, i);
        qb_gguf_writer_write_tensor (w, i, t->data, t->n_bytes, &error);
        g_assert_no_error (error);
      }
  qb_gguf_writer_finish (w, &error);
  g_assert_no_error (error);
}

static void
assert_files_equal (const char *a, const char *b)
{
  g_autoptr(GBytes) x = qb_test_read_file (a);
  g_autoptr(GBytes) y = qb_test_read_file (b);

  g_assert_cmpuint (g_bytes_get_size (x), ==, g_bytes_get_size (y));
  g_assert_true (g_bytes_equal (x, y));
}

static void
test_stories_round_trip (void)
{
  g_autofree char *path = qb_test_shared_path ("models/stories260K.gguf");
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *out = g_build_filename (dir, "copy.gguf", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbGguf) g = NULL;

  if (path == NULL)
    return;
  g = qb_gguf_open (path, &error);
  g_assert_no_error (error);
  copy_gguf (g, out, TRUE);
  assert_files_equal (path, out);
}

/* ---- every metadata type, every alignment ---------------------------- */

static QbGgufKv
scalar_kv (const char *key, QbGgufType type)
{
  QbGgufKv kv = { .key = { strlen (key), key }, .type = type };
  return kv;
}

/* Sets one pair of each scalar type, arrays of each, nested arrays. */
static void
set_all_types (QbGgufWriter *w)
{
  static const guint8 u8s[] = { 0, 1, 255 };
  static const gint8 i8s[] = { -128, 0, 127 };
  static const guint16 u16s[] = { 0, 65535 };
  static const gint16 i16s[] = { -32768, 32767 };
  static const guint32 u32s[] = { 1, 2, 3, G_MAXUINT32 };
  static const gint32 i32s[] = { G_MININT32, -1, G_MAXINT32 };
  static const float f32s[] = { 0.5f, -1e30f, 3.25f };
  static const guint8 bools[] = { 1, 0, 1 };
  static const guint64 u64s[] = { G_MAXUINT64, 0 };
  static const gint64 i64s[] = { G_MININT64, G_MAXINT64 };
  static const double f64s[] = { 1e300, -2.5 };
  static const char *const strs[] = { "a", "", "ü€", "with\nnewline" };
  QbGgufKv kv;

  kv = scalar_kv ("t.u8", QB_GGUF_TYPE_UINT8); kv.v.u64 = 200; qb_gguf_writer_copy_kv (w, &kv);
  kv = scalar_kv ("t.i8", QB_GGUF_TYPE_INT8); kv.v.i64 = -100; qb_gguf_writer_copy_kv (w, &kv);
  kv = scalar_kv ("t.u16", QB_GGUF_TYPE_UINT16); kv.v.u64 = 60000; qb_gguf_writer_copy_kv (w, &kv);
  kv = scalar_kv ("t.i16", QB_GGUF_TYPE_INT16); kv.v.i64 = -30000; qb_gguf_writer_copy_kv (w, &kv);
  qb_gguf_writer_set_uint32 (w, "t.u32", 4000000000u);
  qb_gguf_writer_set_int32 (w, "t.i32", -2000000000);
  qb_gguf_writer_set_float32 (w, "t.f32", 0.1f);
  qb_gguf_writer_set_bool (w, "t.bool", TRUE);
  qb_gguf_writer_set_string (w, "t.string", "héllo");
  qb_gguf_writer_set_uint64 (w, "t.u64", G_MAXUINT64);
  kv = scalar_kv ("t.i64", QB_GGUF_TYPE_INT64); kv.v.i64 = G_MININT64; qb_gguf_writer_copy_kv (w, &kv);
  kv = scalar_kv ("t.f64", QB_GGUF_TYPE_FLOAT64); kv.v.f64 = -1.0 / 3.0; qb_gguf_writer_copy_kv (w, &kv);

  qb_gguf_writer_set_array (w, "a.u8", QB_GGUF_TYPE_UINT8, u8s, 3);
  qb_gguf_writer_set_array (w, "a.i8", QB_GGUF_TYPE_INT8, i8s, 3);
  qb_gguf_writer_set_array (w, "a.u16", QB_GGUF_TYPE_UINT16, u16s, 2);
  qb_gguf_writer_set_array (w, "a.i16", QB_GGUF_TYPE_INT16, i16s, 2);
  qb_gguf_writer_set_array (w, "a.u32", QB_GGUF_TYPE_UINT32, u32s, 4);
  qb_gguf_writer_set_array (w, "a.i32", QB_GGUF_TYPE_INT32, i32s, 3);
  qb_gguf_writer_set_array (w, "a.f32", QB_GGUF_TYPE_FLOAT32, f32s, 3);
  qb_gguf_writer_set_array (w, "a.bool", QB_GGUF_TYPE_BOOL, bools, 3);
  qb_gguf_writer_set_array (w, "a.u64", QB_GGUF_TYPE_UINT64, u64s, 2);
  qb_gguf_writer_set_array (w, "a.i64", QB_GGUF_TYPE_INT64, i64s, 2);
  qb_gguf_writer_set_array (w, "a.f64", QB_GGUF_TYPE_FLOAT64, f64s, 2);
  qb_gguf_writer_set_array (w, "a.empty", QB_GGUF_TYPE_UINT32, NULL, 0);
  qb_gguf_writer_set_string_array (w, "a.string", strs, G_N_ELEMENTS (strs));

  /* [[["a", "", "ü€", ...], []], [[1, 2, 3, max]]]: three levels */
  {
    QbGgufString s[4];
    QbGgufKv inner[3] = { 0 }, middle[2] = { 0 };

    for (guint i = 0; i < 4; i++)
      s[i] = (QbGgufString) { strlen (strs[i]), strs[i] };
    inner[0] = (QbGgufKv) { .type = QB_GGUF_TYPE_ARRAY, .array_type = QB_GGUF_TYPE_STRING, .n = 4, .array = s };
    inner[1] = (QbGgufKv) { .type = QB_GGUF_TYPE_ARRAY, .array_type = QB_GGUF_TYPE_INT8, .n = 0, .array = NULL };
    inner[2] = (QbGgufKv) { .type = QB_GGUF_TYPE_ARRAY, .array_type = QB_GGUF_TYPE_UINT32, .n = 4, .array = u32s };
    middle[0] = (QbGgufKv) { .type = QB_GGUF_TYPE_ARRAY, .array_type = QB_GGUF_TYPE_ARRAY, .n = 2, .array = inner };
    middle[1] = (QbGgufKv) { .type = QB_GGUF_TYPE_ARRAY, .array_type = QB_GGUF_TYPE_ARRAY, .n = 1, .array = inner + 2 };
    kv = scalar_kv ("a.nested", QB_GGUF_TYPE_ARRAY);
    kv.array_type = QB_GGUF_TYPE_ARRAY;
    kv.n = 2;
    kv.array = middle;
    qb_gguf_writer_copy_kv (w, &kv);
  }
}

static void
check_all_types (QbGguf *g)
{
  const QbGgufKv *kv;
  const QbGgufString *strs;
  const guint32 *u32s;
  const guint8 *bools;
  const double *f64s;
  guint64 n, u;
  gint64 i;
  double d;
  gboolean b;

  g_assert_true (qb_gguf_get_uint (g, "t.u8", &u) && u == 200);
  g_assert_true (qb_gguf_get_int (g, "t.i8", &i) && i == -100);
  g_assert_false (qb_gguf_get_uint (g, "t.i8", &u));            /* negative */
  g_assert_true (qb_gguf_get_uint (g, "t.u16", &u) && u == 60000);
  g_assert_true (qb_gguf_get_int (g, "t.i16", &i) && i == -30000);
  g_assert_true (qb_gguf_get_uint (g, "t.u32", &u) && u == 4000000000u);
  g_assert_true (qb_gguf_get_int (g, "t.i32", &i) && i == -2000000000);
  g_assert_true (qb_gguf_get_double (g, "t.f32", &d) && d == (double) 0.1f);
  g_assert_true (qb_gguf_get_bool (g, "t.bool", &b) && b);
  g_assert_cmpstr (qb_gguf_get_string (g, "t.string"), ==, "héllo");
  g_assert_true (qb_gguf_get_uint (g, "t.u64", &u) && u == G_MAXUINT64);
  g_assert_false (qb_gguf_get_int (g, "t.u64", &i));            /* does not fit */
  g_assert_true (qb_gguf_get_int (g, "t.i64", &i) && i == G_MININT64);
  g_assert_true (qb_gguf_get_double (g, "t.f64", &d) && d == -1.0 / 3.0);

  g_assert_cmpint (((const gint8 *) qb_gguf_get_array (g, "a.i8", QB_GGUF_TYPE_INT8, &n))[0], ==, -128);
  g_assert_cmpint (((const gint16 *) qb_gguf_get_array (g, "a.i16", QB_GGUF_TYPE_INT16, &n))[1], ==, 32767);
  g_assert_cmpuint (((const guint16 *) qb_gguf_get_array (g, "a.u16", QB_GGUF_TYPE_UINT16, &n))[1], ==, 65535);
  g_assert_cmpint (((const gint64 *) qb_gguf_get_array (g, "a.i64", QB_GGUF_TYPE_INT64, &n))[0], ==, G_MININT64);
  g_assert_cmpuint (((const guint64 *) qb_gguf_get_array (g, "a.u64", QB_GGUF_TYPE_UINT64, &n))[0], ==, G_MAXUINT64);
  g_assert_cmpfloat (((const float *) qb_gguf_get_array (g, "a.f32", QB_GGUF_TYPE_FLOAT32, &n))[1], ==, -1e30f);
  g_assert_cmpint (((const gint32 *) qb_gguf_get_array (g, "a.i32", QB_GGUF_TYPE_INT32, &n))[0], ==, G_MININT32);
  g_assert_cmpuint (((const guint8 *) qb_gguf_get_array (g, "a.u8", QB_GGUF_TYPE_UINT8, &n))[2], ==, 255);
  u32s = qb_gguf_get_array (g, "a.u32", QB_GGUF_TYPE_UINT32, &n);
  g_assert_cmpuint (n, ==, 4);
  g_assert_cmpuint (u32s[3], ==, G_MAXUINT32);
  bools = qb_gguf_get_array (g, "a.bool", QB_GGUF_TYPE_BOOL, &n);
  g_assert_true (n == 3 && bools[0] == 1 && bools[1] == 0);
  f64s = qb_gguf_get_array (g, "a.f64", QB_GGUF_TYPE_FLOAT64, &n);
  g_assert_true (n == 2 && f64s[0] == 1e300);
  g_assert_nonnull (qb_gguf_get_array (g, "a.empty", QB_GGUF_TYPE_UINT32, &n));
  g_assert_cmpuint (n, ==, 0);
  strs = qb_gguf_get_string_array (g, "a.string", &n);
  g_assert_cmpuint (n, ==, 4);
  g_assert_cmpstr (strs[2].str, ==, "ü€");
  g_assert_cmpuint (strs[1].len, ==, 0);
  g_assert_cmpstr (strs[3].str, ==, "with\nnewline");

  kv = qb_gguf_find_kv (g, "a.nested");
  g_assert_nonnull (kv);
  g_assert_cmpint (kv->type, ==, QB_GGUF_TYPE_ARRAY);
  g_assert_cmpint (kv->array_type, ==, QB_GGUF_TYPE_ARRAY);
  g_assert_cmpuint (kv->n, ==, 2);
  {
    const QbGgufKv *middle = kv->array;
    const QbGgufKv *inner = middle[0].array;
    const QbGgufKv *last = middle[1].array;

    g_assert_cmpuint (middle[0].n, ==, 2);
    g_assert_cmpint (inner[0].array_type, ==, QB_GGUF_TYPE_STRING);
    g_assert_cmpstr (((const QbGgufString *) inner[0].array)[2].str, ==, "ü€");
    g_assert_cmpuint (inner[1].n, ==, 0);
    g_assert_cmpuint (middle[1].n, ==, 1);
    g_assert_cmpint (last[0].array_type, ==, QB_GGUF_TYPE_UINT32);
    g_assert_cmpuint (((const guint32 *) last[0].array)[2], ==, 3);
  }
}

typedef struct
{
  const char *name;
  guint       n_dims;
  gint64      ne[4];
  QbDType     dtype;
} TensorSpec;

static const TensorSpec test_tensors[] = {
  { "a.weight", 2, { 3, 5 }, QB_DTYPE_F32 },
  { "b", 1, { 7 }, QB_DTYPE_F16 },
  { "q4", 2, { 64, 3 }, QB_DTYPE_Q4_0 },
  { "k4", 3, { 256, 2, 2 }, QB_DTYPE_Q4_K },
  { "empty", 2, { 0, 4 }, QB_DTYPE_F32 },
  { "i8", 4, { 1, 2, 3, 5 }, QB_DTYPE_I8 },
  { "scalar", 0, { 0 }, QB_DTYPE_F64 },
};

static guint8 *
test_data (guint index, guint64 n)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (index + 1);
  guint8 *p = g_malloc (n + 1);

  for (guint64 i = 0; i < n; i++)
    p[i] = (guint8) g_rand_int (rand);
  return p;
}

static void
write_test_file (const char *path, guint32 version, guint32 alignment)
{
  g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
  g_autoptr(GError) error = NULL;

  qb_gguf_writer_set_version (w, version);
  qb_gguf_writer_set_string (w, "general.architecture", "test");
  if (alignment)
    qb_gguf_writer_set_uint32 (w, "general.alignment", alignment);
  set_all_types (w);
  qb_gguf_writer_remove_kv (w, "t.string");
  qb_gguf_writer_set_string (w, "t.string", "héllo");     /* back, at the end */
  qb_gguf_writer_set_uint32 (w, "t.u32", 4000000000u);    /* replaced in place */
  for (guint i = 0; i < G_N_ELEMENTS (test_tensors); i++)
    qb_gguf_writer_add_tensor (w, test_tensors[i].name, test_tensors[i].n_dims,
                               test_tensors[i].ne, test_tensors[i].dtype);
  qb_gguf_writer_begin (w, path, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (test_tensors); i++)
    {
      const TensorSpec *s = &test_tensors[i];
      gint64 n_elements = 1;
      guint64 n_bytes;
      g_autofree guint8 *data = NULL;

      for (guint d = 0; d < s->n_dims; d++)
        n_elements *= s->ne[d];
      g_assert_true (qb_dtype_bytes (s->dtype, n_elements, &n_bytes));
      data = test_data (i, n_bytes);
      qb_gguf_writer_write_tensor (w, i, data, n_bytes, &error);
      g_assert_no_error (error);
    }
  qb_gguf_writer_finish (w, &error);
  g_assert_no_error (error);
}

static void
check_test_file (QbGguf *g, guint32 version, guint32 alignment)
{
  g_assert_cmpuint (qb_gguf_get_version (g), ==, version);
  g_assert_cmpuint (qb_gguf_get_alignment (g), ==, alignment ? alignment : 32);
  g_assert_cmpuint (qb_gguf_get_data_offset (g) % qb_gguf_get_alignment (g), ==, 0);
  check_all_types (g);
  g_assert_cmpstr (qb_gguf_get_kv (g, qb_gguf_get_n_kv (g) - 1)->key.str, ==, "t.string");
  g_assert_cmpuint (qb_gguf_get_n_tensors (g), ==, G_N_ELEMENTS (test_tensors));
  for (guint i = 0; i < G_N_ELEMENTS (test_tensors); i++)
    {
      const QbGgufTensorInfo *t = qb_gguf_get_tensor (g, i);
      const TensorSpec *s = &test_tensors[i];
      g_autofree guint8 *data = test_data (i, t->n_bytes);

      g_assert_cmpstr (t->name.str, ==, s->name);
      g_assert_cmpuint (t->n_dims, ==, s->n_dims);
      for (guint d = 0; d < s->n_dims; d++)
        g_assert_cmpint (t->ne[d], ==, s->ne[d]);
      g_assert_cmpint (t->dtype, ==, s->dtype);
      g_assert_cmpuint (t->offset % qb_gguf_get_alignment (g), ==, 0);
      g_assert_true (memcmp (t->data, data, t->n_bytes) == 0);
    }
  g_assert_cmpuint (qb_gguf_get_tensor (g, 4)->n_bytes, ==, 0);
  g_assert_cmpuint (qb_gguf_get_tensor (g, 2)->n_bytes, ==, 3 * 2 * 18);
  g_assert_cmpuint (qb_gguf_get_tensor (g, 3)->n_bytes, ==, 4 * 144);
}

static void
test_writer_all_types (void)
{
  static const guint32 alignments[] = { 0, 1, 8, 32, 64, 4096 };
  g_autofree char *dir = qb_test_tmpdir ();

  for (guint32 version = 2; version <= 3; version++)
    for (guint a = 0; a < G_N_ELEMENTS (alignments); a++)
      {
        g_autofree char *path = g_strdup_printf ("%s/v%u-a%u.gguf", dir, version, alignments[a]);
        g_autofree char *copy = g_strdup_printf ("%s/v%u-a%u-copy.gguf", dir, version, alignments[a]);
        g_autoptr(GError) error = NULL;
        g_autoptr(QbGguf) g = NULL;
        g_autoptr(QbGguf) g2 = NULL;

        write_test_file (path, version, alignments[a]);
        g = qb_gguf_open (path, &error);
        g_assert_no_error (error);
        check_test_file (g, version, alignments[a]);

        /* Reading and writing back gives the same bytes. */
        copy_gguf (g, copy, FALSE);
        assert_files_equal (path, copy);

        /* The same from memory. */
        {
          g_autoptr(GBytes) bytes = qb_test_read_file (path);
          g2 = qb_gguf_new_from_bytes (bytes, "memory", &error);
          g_assert_no_error (error);
          check_test_file (g2, version, alignments[a]);
        }
      }
}

/* ---- atomic writes ---------------------------------------------------- */

static guint
count_files (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  guint n = 0;

  while (d && g_dir_read_name (d))
    n++;
  return n;
}

static void
test_writer_atomic (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "out.gguf", NULL);
  g_autoptr(GError) error = NULL;
  gint64 ne[2] = { 4, 2 };
  float data[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
  g_autofree char *contents = NULL;

  g_assert_true (g_file_set_contents (path, "old", -1, NULL));

  /* Aborted: the old file stays, no temporary is left. */
  {
    g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
    qb_gguf_writer_add_tensor (w, "x", 2, ne, QB_DTYPE_F32);
    g_assert_true (qb_gguf_writer_begin (w, path, &error));
    g_assert_cmpuint (count_files (dir), ==, 2);
    qb_gguf_writer_abort (w);
    g_assert_cmpuint (count_files (dir), ==, 1);
  }
  /* Freed without finishing: the same. */
  {
    g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
    qb_gguf_writer_add_tensor (w, "x", 2, ne, QB_DTYPE_F32);
    g_assert_true (qb_gguf_writer_begin (w, path, &error));
  }
  g_assert_cmpuint (count_files (dir), ==, 1);
  /* A tensor not fully written: finish fails and removes the temporary. */
  {
    g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
    qb_gguf_writer_add_tensor (w, "x", 2, ne, QB_DTYPE_F32);
    g_assert_true (qb_gguf_writer_begin (w, path, &error));
    g_assert_true (qb_gguf_writer_write_tensor_range (w, 0, 0, data, 16, &error));
    g_assert_false (qb_gguf_writer_write_tensor (w, 0, data, 16, &error));    /* wrong size */
    g_assert_error (error, QB_GGUF_ERROR, QB_GGUF_ERROR_INVALID);
    g_clear_error (&error);
    g_assert_false (qb_gguf_writer_write_tensor_range (w, 0, 24, data, 16, &error));  /* past end */
    g_assert_error (error, QB_GGUF_ERROR, QB_GGUF_ERROR_INVALID);
    g_clear_error (&error);
    g_assert_false (qb_gguf_writer_finish (w, &error));
    g_assert_error (error, QB_GGUF_ERROR, QB_GGUF_ERROR_INVALID);
    g_assert_nonnull (strstr (error->message, "16 of 32"));
    g_clear_error (&error);
  }
  g_assert_cmpuint (count_files (dir), ==, 1);
  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  g_assert_cmpstr (contents, ==, "old");

  /* Invalid layouts are refused before anything is created. */
  {
    g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
    gint64 bad[1] = { 33 };
    qb_gguf_writer_add_tensor (w, "q", 1, bad, QB_DTYPE_Q4_0);
    g_assert_false (qb_gguf_writer_begin (w, path, &error));
    g_assert_error (error, QB_GGUF_ERROR, QB_GGUF_ERROR_INVALID);
    g_clear_error (&error);
  }
  {
    g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
    qb_gguf_writer_set_uint32 (w, "general.alignment", 48);
    g_assert_false (qb_gguf_writer_begin (w, path, &error));
    g_assert_error (error, QB_GGUF_ERROR, QB_GGUF_ERROR_INVALID);
    g_clear_error (&error);
  }
  g_assert_cmpuint (count_files (dir), ==, 1);

  /* A missing folder is an I/O error. */
  {
    g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
    g_autofree char *bad_path = g_build_filename (dir, "no", "such", "x.gguf", NULL);
    g_assert_false (qb_gguf_writer_begin (w, bad_path, &error));
    g_assert_error (error, QB_GGUF_ERROR, QB_GGUF_ERROR_IO);
    g_clear_error (&error);
  }

  /* Finished: replaced. */
  {
    g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
    g_autoptr(QbGguf) g = NULL;
    qb_gguf_writer_add_tensor (w, "x", 2, ne, QB_DTYPE_F32);
    g_assert_true (qb_gguf_writer_begin (w, path, &error));
    g_assert_true (qb_gguf_writer_write_tensor (w, 0, data, sizeof data, &error));
    g_assert_true (qb_gguf_writer_finish (w, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (count_files (dir), ==, 1);
    g = qb_gguf_open (path, &error);
    g_assert_no_error (error);
    g_assert_cmpfloat (((const float *) qb_gguf_get_tensor (g, 0)->data)[7], ==, 8.0f);
    /* The file ends padded to the alignment, as llama.cpp writes it. */
    g_assert_cmpuint (qb_gguf_get_file_size (g) % 32, ==, 0);
  }
}

/* A finished writer replaces the file at its path as rename does, although
 * the replaced file is released on a thread of its own: another link to it
 * keeps its bytes, and a symbolic link at the path is replaced, not the
 * file it points to. */
static void
test_writer_replace_links (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "out.gguf", NULL);
  g_autofree char *keep = g_build_filename (dir, "keep.gguf", NULL);
  g_autofree char *target = g_build_filename (dir, "target.gguf", NULL);
  g_autofree char *slink = g_build_filename (dir, "link.gguf", NULL);
  const char *paths[] = { path, slink };
  gint64 ne[2] = { 4, 2 };
  float data[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

  g_assert_true (g_file_set_contents (path, "old", -1, NULL));
  g_assert_cmpint (link (path, keep), ==, 0);
  g_assert_true (g_file_set_contents (target, "target", -1, NULL));
  g_assert_cmpint (symlink (target, slink), ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
      g_autoptr(QbGguf) g = NULL;
      g_autoptr(GError) error = NULL;
      GStatBuf st;

      qb_gguf_writer_add_tensor (w, "x", 2, ne, QB_DTYPE_F32);
      g_assert_true (qb_gguf_writer_begin (w, paths[i], &error));
      g_assert_true (qb_gguf_writer_write_tensor (w, 0, data, sizeof data, &error));
      g_assert_true (qb_gguf_writer_finish (w, &error));
      g_assert_no_error (error);
      g_assert_cmpint (g_lstat (paths[i], &st), ==, 0);
      g_assert_true (S_ISREG (st.st_mode));
      g = qb_gguf_open (paths[i], &error);
      g_assert_no_error (error);
      g_assert_cmpfloat (((const float *) qb_gguf_get_tensor (g, 0)->data)[7], ==, 8.0f);
    }
  {
    g_autofree char *contents = NULL;
    g_assert_true (g_file_get_contents (keep, &contents, NULL, NULL));
    g_assert_cmpstr (contents, ==, "old");
    g_clear_pointer (&contents, g_free);
    g_assert_true (g_file_get_contents (target, &contents, NULL, NULL));
    g_assert_cmpstr (contents, ==, "target");
  }
  g_assert_cmpuint (count_files (dir), ==, 4);
}

static void
test_open_errors (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *missing = g_build_filename (dir, "missing.gguf", NULL);
  g_autofree char *empty = g_build_filename (dir, "empty.gguf", NULL);
  g_autoptr(GError) error = NULL;

  g_assert_null (qb_gguf_open (missing, &error));
  g_assert_error (error, QB_GGUF_ERROR, QB_GGUF_ERROR_IO);
  g_assert_nonnull (strstr (error->message, "missing.gguf"));
  g_clear_error (&error);

  g_assert_null (qb_gguf_open (dir, &error));
  g_assert_error (error, QB_GGUF_ERROR, QB_GGUF_ERROR_IO);
  g_clear_error (&error);

  g_assert_true (g_file_set_contents (empty, "", 0, NULL));
  g_assert_null (qb_gguf_open (empty, &error));
  g_assert_error (error, QB_GGUF_ERROR, QB_GGUF_ERROR_TRUNCATED);
  g_assert_nonnull (strstr (error->message, "magic"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/gguf/stories/facts", test_stories_facts);
  g_test_add_func ("/gguf/stories/round-trip", test_stories_round_trip);
  g_test_add_func ("/gguf/writer/all-types-and-alignments", test_writer_all_types);
  g_test_add_func ("/gguf/writer/atomic", test_writer_atomic);
  g_test_add_func ("/gguf/writer/replace-links", test_writer_replace_links);
  g_test_add_func ("/gguf/open-errors", test_open_errors);
  return g_test_run ();
}
