/* SPDX-License-Identifier: MIT */
/* test-gguf-damaged.c — damaged and hostile GGUF files, built here byte by
 * byte: each must give a GError that names the field, never a crash, and
 * the reader must not allocate anything large on their behalf (outside
 * sanitizer builds the data segment is limited to enforce that).
 */
#include <string.h>
#include <sys/resource.h>

#include "qb-gguf.h"
#include "qb-test-util.h"

/* ---- building files -------------------------------------------------- */

static void
put (GByteArray *b, gconstpointer p, gsize n)
{
  g_byte_array_append (b, p, n);
}

static void put_u32 (GByteArray *b, guint32 v) { put (b, &v, 4); }
static void put_u64 (GByteArray *b, guint64 v) { put (b, &v, 8); }

static void
put_str (GByteArray *b, const char *s)
{
  put_u64 (b, strlen (s));
  put (b, s, strlen (s));
}

static GByteArray *
begin_file (guint32 version, guint64 n_tensors, guint64 n_kv)
{
  GByteArray *b = g_byte_array_new ();

  put (b, "GGUF", 4);
  put_u32 (b, version);
  put_u64 (b, n_tensors);
  put_u64 (b, n_kv);
  return b;
}

static void
put_kv_u32 (GByteArray *b, const char *key, guint32 v)
{
  put_str (b, key);
  put_u32 (b, 4);
  put_u32 (b, v);
}

static void
put_kv_str (GByteArray *b, const char *key, const char *v)
{
  put_str (b, key);
  put_u32 (b, 8);
  put_str (b, v);
}

static void
put_tensor (GByteArray *b, const char *name, guint32 n_dims, const gint64 *ne, guint32 type, guint64 offset)
{
  put_str (b, name);
  put_u32 (b, n_dims);
  for (guint d = 0; d < n_dims; d++)
    put_u64 (b, (guint64) ne[d]);
  put_u32 (b, type);
  put_u64 (b, offset);
}

/* Pads to 32 and appends data_size zero bytes. */
static GBytes *
finish_file (GByteArray *b, gsize data_size)
{
  gsize pad = (32 - b->len % 32) % 32;
  guint old = b->len;

  g_byte_array_set_size (b, b->len + pad + data_size);
  memset (b->data + old, 0, pad + data_size);
  return g_byte_array_free_to_bytes (b);
}

/* A small valid file: every kind of section. */
static GBytes *
make_valid (gsize *header_end)
{
  GByteArray *b = begin_file (3, 3, 4);
  gint64 ne2[2] = { 8, 4 }, ne1[1] = { 64 }, neq[2] = { 32, 2 };

  put_kv_str (b, "general.architecture", "llama");
  put_kv_u32 (b, "llama.block_count", 1);
  put_str (b, "tokenizer.ggml.tokens");             /* array of 3 strings */
  put_u32 (b, 9);
  put_u32 (b, 8);
  put_u64 (b, 3);
  put_str (b, "<unk>");
  put_str (b, "a");
  put_str (b, "");
  put_str (b, "nested");                            /* [[1, 2], []] */
  put_u32 (b, 9);
  put_u32 (b, 9);
  put_u64 (b, 2);
  put_u32 (b, 5);
  put_u64 (b, 2);
  put_u32 (b, 1);
  put_u32 (b, 2);
  put_u32 (b, 0);
  put_u64 (b, 0);
  put_tensor (b, "blk.0.attn_q.weight", 2, ne2, 0, 0);          /* F32, 128 bytes */
  put_tensor (b, "output_norm.weight", 1, ne1, 1, 128);         /* F16, 128 bytes */
  put_tensor (b, "blk.0.ffn_up.weight", 2, neq, 2, 256);        /* Q4_0, 36 bytes */
  *header_end = b->len;
  return finish_file (b, 256 + 36);
}

/* ---- checking --------------------------------------------------------- */

static void
expect_error (GBytes *bytes, int code, const char *const *needles)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbGguf) g = qb_gguf_new_from_bytes (bytes, "bad.gguf", &error);

  g_assert_null (g);
  g_assert_nonnull (error);
  if (error->domain != QB_GGUF_ERROR || (code >= 0 && error->code != code))
    g_error ("wrong error %s/%d (wanted %d): %s", g_quark_to_string (error->domain),
             error->code, code, error->message);
  g_assert_true (g_str_has_prefix (error->message, "bad.gguf: byte "));
  for (; needles && *needles; needles++)
    if (strstr (error->message, *needles) == NULL)
      g_error ("message lacks \"%s\": %s", *needles, error->message);
  if (g_test_verbose ())
    g_test_message ("%s", error->message);
}

#define NEEDLES(...) ((const char *const[]) { __VA_ARGS__, NULL })

static void
expect_error_bytes (GByteArray *b, int code, const char *const *needles)
{
  g_autoptr(GBytes) bytes = g_byte_array_free_to_bytes (b);
  expect_error (bytes, code, needles);
}

/* ---- cases ------------------------------------------------------------ */

static void
test_valid_base (void)
{
  gsize header_end;
  g_autoptr(GBytes) bytes = make_valid (&header_end);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbGguf) g = qb_gguf_new_from_bytes (bytes, "ok.gguf", &error);

  g_assert_no_error (error);
  g_assert_cmpuint (qb_gguf_get_n_tensors (g), ==, 3);
  g_assert_cmpuint (qb_gguf_find_kv (g, "nested")->n, ==, 2);
}

/* Cut anywhere before the last tensor's end: always TRUNCATED. */
static void
test_truncated_everywhere (void)
{
  gsize header_end;
  g_autoptr(GBytes) full = make_valid (&header_end);
  gsize size = g_bytes_get_size (full);
  const guint8 *data = g_bytes_get_data (full, NULL);

  for (gsize len = 0; len < size; len++)
    {
      g_autoptr(GBytes) cut = g_bytes_new (data, len);
      expect_error (cut, QB_GGUF_ERROR_TRUNCATED, NULL);
    }
}

static void
test_bad_magic_version (void)
{
  GByteArray *b;

  b = g_byte_array_new ();
  put (b, "GGUG", 4);
  put_u32 (b, 3);
  expect_error_bytes (b, QB_GGUF_ERROR_BAD_MAGIC, NEEDLES ("magic", "byte 0"));

  b = begin_file (1, 0, 0);
  expect_error_bytes (b, QB_GGUF_ERROR_BAD_VERSION, NEEDLES ("version", "version 1", "byte 4"));
  b = begin_file (4, 0, 0);
  expect_error_bytes (b, QB_GGUF_ERROR_BAD_VERSION, NEEDLES ("version", "4"));
  b = begin_file (0, 0, 0);
  expect_error_bytes (b, QB_GGUF_ERROR_BAD_VERSION, NEEDLES ("version"));
  b = begin_file (GUINT32_SWAP_LE_BE (3), 0, 0);
  expect_error_bytes (b, QB_GGUF_ERROR_BAD_VERSION, NEEDLES ("big-endian"));
}

static void
test_absurd_counts (void)
{
  GByteArray *b;

  b = begin_file (3, 0, G_GUINT64_CONSTANT (1) << 62);
  expect_error_bytes (b, QB_GGUF_ERROR_TRUNCATED, NEEDLES ("key count", "byte 16"));
  b = begin_file (3, G_MAXUINT64, 0);
  expect_error_bytes (b, QB_GGUF_ERROR_TRUNCATED, NEEDLES ("tensor count", "byte 8"));
  /* Counts that fit separately but not together. */
  b = begin_file (3, 2, 2);
  put_kv_u32 (b, "a", 1);
  put_kv_u32 (b, "b", 1);
  expect_error_bytes (b, QB_GGUF_ERROR_TRUNCATED, NEEDLES ("tensor count"));
  /* A valid file with one extra tensor announced. */
  b = begin_file (3, 1, 0);
  expect_error_bytes (b, QB_GGUF_ERROR_TRUNCATED, NEEDLES ("tensor count"));
}

static void
test_bad_strings (void)
{
  GByteArray *b;

  /* Key length beyond the file. */
  b = begin_file (3, 0, 1);
  put_u64 (b, G_GUINT64_CONSTANT (1) << 63);
  put (b, "abcdefghijklmnopqrstuvwxyz", 26);
  expect_error_bytes (b, QB_GGUF_ERROR_TRUNCATED, NEEDLES ("key 0", "key length", "byte 24"));

  /* String value length beyond the file. */
  b = begin_file (3, 0, 1);
  put_str (b, "general.name");
  put_u32 (b, 8);
  put_u64 (b, G_MAXUINT64);
  put (b, "abcdefghijklmnopqrstuvwxyz", 26);
  expect_error_bytes (b, QB_GGUF_ERROR_TRUNCATED, NEEDLES ("key 0 'general.name'", "value length"));

  /* Non-UTF-8 key, control characters, empty key. */
  b = begin_file (3, 0, 1);
  put_u64 (b, 3);
  put (b, "a\xff" "b", 3);
  put_u32 (b, 4);
  put_u32 (b, 1);
  expect_error_bytes (b, QB_GGUF_ERROR_INVALID, NEEDLES ("key 0", "UTF-8", "byte 24"));
  b = begin_file (3, 0, 1);
  put_kv_u32 (b, "a\x1b[31mred", 1);
  expect_error_bytes (b, QB_GGUF_ERROR_INVALID, NEEDLES ("key 0", "control character 0x1b"));
  b = begin_file (3, 0, 1);
  put_u64 (b, 2);
  put (b, "a\0", 2);
  put_u32 (b, 4);
  put_u32 (b, 1);
  expect_error_bytes (b, QB_GGUF_ERROR_INVALID, NEEDLES ("key 0"));
  b = begin_file (3, 0, 1);
  put_kv_u32 (b, "", 1);
  expect_error_bytes (b, QB_GGUF_ERROR_INVALID, NEEDLES ("key 0", "empty"));

  /* Values may hold any bytes. */
  b = begin_file (3, 0, 1);
  put_str (b, "general.name");
  put_u32 (b, 8);
  put_u64 (b, 4);
  put (b, "\xff\0\x1b" "a", 4);
  {
    g_autoptr(GBytes) bytes = finish_file (b, 0);
    g_autoptr(GError) error = NULL;
    g_autoptr(QbGguf) g = qb_gguf_new_from_bytes (bytes, "ok.gguf", &error);
    g_assert_no_error (error);
    g_assert_cmpuint (qb_gguf_find_kv (g, "general.name")->v.str.len, ==, 4);
  }

  /* Non-UTF-8 tensor name. */
  b = begin_file (3, 1, 0);
  put_u64 (b, 2);
  put (b, "\xc3\x28", 2);
  put_u32 (b, 0);
  put_u32 (b, 0);
  put_u64 (b, 0);
  expect_error_bytes (b, QB_GGUF_ERROR_INVALID, NEEDLES ("tensor 0", "name", "UTF-8"));
}

static void
test_duplicates (void)
{
  GByteArray *b;
  gint64 ne[1] = { 8 };

  b = begin_file (3, 0, 3);
  put_kv_u32 (b, "a", 1);
  put_kv_u32 (b, "b", 1);
  put_kv_u32 (b, "a", 2);
  expect_error_bytes (b, QB_GGUF_ERROR_INVALID, NEEDLES ("key 2", "'a'", "twice", "first as key 0"));

  b = begin_file (3, 2, 0);
  put_tensor (b, "w", 1, ne, 0, 0);
  put_tensor (b, "w", 1, ne, 0, 32);
  g_autoptr(GBytes) bytes = finish_file (b, 64);
  expect_error (bytes, QB_GGUF_ERROR_INVALID, NEEDLES ("tensor 1", "name", "twice"));
}

static void
test_bad_values (void)
{
  GByteArray *b;

  b = begin_file (3, 0, 1);
  put_str (b, "k");
  put_u32 (b, 13);
  put_u32 (b, 0);
  expect_error_bytes (b, QB_GGUF_ERROR_INVALID, NEEDLES ("key 0 'k'", "value type", "13"));

  b = begin_file (3, 0, 1);
  put_str (b, "k");
  put_u32 (b, 9);
  put_u32 (b, 99);
  put_u64 (b, 1);
  expect_error_bytes (b, QB_GGUF_ERROR_INVALID, NEEDLES ("array element type", "99"));

  /* An array that claims more elements than the file can hold. */
  b = begin_file (3, 0, 1);
  put_str (b, "k");
  put_u32 (b, 9);
  put_u32 (b, 12);
  put_u64 (b, G_GUINT64_CONSTANT (1) << 61);
  put_u64 (b, 0);
  expect_error_bytes (b, QB_GGUF_ERROR_TRUNCATED, NEEDLES ("key 0 'k'", "array length"));

  /* A string array whose count fits only if strings were free. */
  b = begin_file (3, 0, 1);
  put_str (b, "k");
  put_u32 (b, 9);
  put_u32 (b, 8);
  put_u64 (b, 1000);
  for (int i = 0; i < 200; i++)
    put_str (b, "");
  expect_error_bytes (b, QB_GGUF_ERROR_TRUNCATED, NEEDLES ("array length"));

  /* A string array with an element running past the end. */
  b = begin_file (3, 0, 1);
  put_str (b, "k");
  put_u32 (b, 9);
  put_u32 (b, 8);
  put_u64 (b, 3);
  put_str (b, "x");
  put_u64 (b, 1000);
  put_u64 (b, 0);
  expect_error_bytes (b, QB_GGUF_ERROR_TRUNCATED, NEEDLES ("key 0 'k': element 1", "string length"));

  /* general.alignment not a power of two, or not a number. */
  b = begin_file (3, 0, 1);
  put_kv_u32 (b, "general.alignment", 48);
  expect_error_bytes (b, QB_GGUF_ERROR_INVALID, NEEDLES ("general.alignment", "48"));
  b = begin_file (3, 0, 1);
  put_kv_u32 (b, "general.alignment", 0);
  expect_error_bytes (b, QB_GGUF_ERROR_INVALID, NEEDLES ("general.alignment"));
  b = begin_file (3, 0, 1);
  put_kv_str (b, "general.alignment", "32");
  expect_error_bytes (b, QB_GGUF_ERROR_INVALID, NEEDLES ("general.alignment", "string"));
}

static void
test_array_bombs (void)
{
  GByteArray *b;

  /* Arrays nested deeper than allowed. */
  b = begin_file (3, 0, 1);
  put_str (b, "k");
  put_u32 (b, 9);
  for (int d = 0; d < 20; d++)
    {
      put_u32 (b, 9);
      put_u64 (b, 1);
    }
  put_u32 (b, 4);
  put_u64 (b, 0);
  expect_error_bytes (b, QB_GGUF_ERROR_INVALID, NEEDLES ("key 0 'k'", "element 0: element 0", "nested"));

  /* Each level claims a huge count: caught at the first. */
  b = begin_file (3, 0, 1);
  put_str (b, "k");
  put_u32 (b, 9);
  for (int d = 0; d < 4; d++)
    {
      put_u32 (b, 9);
      put_u64 (b, G_MAXUINT64 / 2);
    }
  expect_error_bytes (b, QB_GGUF_ERROR_TRUNCATED, NEEDLES ("array length"));

  /* Many empty arrays is fine (and small): 20000 elements of 12 bytes. */
  b = begin_file (3, 0, 1);
  put_str (b, "k");
  put_u32 (b, 9);
  put_u32 (b, 9);
  put_u64 (b, 20000);
  for (int i = 0; i < 20000; i++)
    {
      put_u32 (b, 0);
      put_u64 (b, 0);
    }
  {
    g_autoptr(GBytes) bytes = finish_file (b, 0);
    g_autoptr(GError) error = NULL;
    g_autoptr(QbGguf) g = qb_gguf_new_from_bytes (bytes, "ok.gguf", &error);
    g_assert_no_error (error);
    g_assert_cmpuint (qb_gguf_find_kv (g, "k")->n, ==, 20000);
  }
}

static void
test_bad_tensors (void)
{
  GByteArray *b;
  gint64 ne[4] = { 8, 4, 1, 1 };

  /* Too many dimensions. */
  b = begin_file (3, 1, 0);
  put_tensor (b, "t", 5, (gint64[]) { 1, 1, 1, 1, 1 }, 0, 0);
  expect_error_bytes (b, QB_GGUF_ERROR_INVALID, NEEDLES ("tensor 0 't'", "dimension count", "5"));

  /* Negative and overflowing dimensions. */
  b = begin_file (3, 1, 0);
  put_tensor (b, "t", 2, (gint64[]) { 8, -1 }, 0, 0);
  expect_error_bytes (b, QB_GGUF_ERROR_INVALID, NEEDLES ("tensor 0 't'", "dimension", "negative"));
  b = begin_file (3, 1, 0);
  put_tensor (b, "t", 3, (gint64[]) { G_GINT64_CONSTANT (1) << 40, G_GINT64_CONSTANT (1) << 40, 2 }, 0, 0);
  expect_error_bytes (b, QB_GGUF_ERROR_INVALID, NEEDLES ("tensor 0 't'", "overflows"));
  /* Elements fit in int64 but bytes do not. */
  b = begin_file (3, 1, 0);
  put_tensor (b, "t", 2, (gint64[]) { G_GINT64_CONSTANT (1) << 31, G_GINT64_CONSTANT (1) << 31 }, 28, 0);
  expect_error_bytes (b, QB_GGUF_ERROR_INVALID, NEEDLES ("tensor 0 't'", "type", "overflows"));
  /* Huge but representable: past the end of the file. */
  b = begin_file (3, 1, 0);
  put_tensor (b, "t", 2, (gint64[]) { G_GINT64_CONSTANT (1) << 30, G_GINT64_CONSTANT (1) << 30 }, 0, 0);
  {
    g_autoptr(GBytes) bytes = finish_file (b, 128);
    expect_error (bytes, QB_GGUF_ERROR_TRUNCATED, NEEDLES ("tensor 0 't'", "offset", "past the end"));
  }

  /* Unknown and removed type ids. */
  b = begin_file (3, 1, 0);
  put_tensor (b, "t", 2, ne, 200, 0);
  expect_error_bytes (b, QB_GGUF_ERROR_UNSUPPORTED, NEEDLES ("tensor 0 't'", "type id 200"));
  b = begin_file (3, 1, 0);
  put_tensor (b, "t", 2, ne, 4, 0);
  expect_error_bytes (b, QB_GGUF_ERROR_UNSUPPORTED, NEEDLES ("type id 4"));
  b = begin_file (3, 1, 0);
  put_tensor (b, "t", 2, ne, 64, 0);     /* a safetensors-only id */
  expect_error_bytes (b, QB_GGUF_ERROR_UNSUPPORTED, NEEDLES ("type id 64"));

  /* Rows that are not whole blocks. */
  b = begin_file (3, 1, 0);
  put_tensor (b, "t", 2, (gint64[]) { 33, 2 }, 2, 0);
  expect_error_bytes (b, QB_GGUF_ERROR_INVALID, NEEDLES ("tensor 0 't'", "Q4_0", "33"));

  /* Offsets: misaligned, past the end, overlapping. */
  b = begin_file (3, 1, 0);
  put_tensor (b, "t", 2, ne, 0, 4);
  expect_error_bytes (b, QB_GGUF_ERROR_INVALID, NEEDLES ("tensor 0 't'", "offset", "alignment"));
  b = begin_file (3, 1, 0);
  put_tensor (b, "t", 2, ne, 0, 1024);
  {
    g_autoptr(GBytes) bytes = finish_file (b, 128);
    expect_error (bytes, QB_GGUF_ERROR_TRUNCATED, NEEDLES ("tensor 0 't'", "offset", "1024"));
  }
  b = begin_file (3, 1, 0);
  put_tensor (b, "t", 2, ne, 0, G_MAXUINT64 - 31);
  {
    g_autoptr(GBytes) bytes = finish_file (b, 128);
    expect_error (bytes, QB_GGUF_ERROR_TRUNCATED, NEEDLES ("tensor 0 't'", "offset"));
  }
  b = begin_file (3, 3, 0);
  put_tensor (b, "a", 2, ne, 0, 0);
  put_tensor (b, "b", 2, ne, 0, 256);
  put_tensor (b, "c", 2, ne, 0, 96);      /* 96..224 overlaps a (0..128) */
  {
    g_autoptr(GBytes) bytes = finish_file (b, 384);
    expect_error (bytes, QB_GGUF_ERROR_INVALID, NEEDLES ("tensor 2 'c'", "overlaps tensor 0 'a'"));
  }
  /* Empty tensors may share an offset. */
  b = begin_file (3, 2, 0);
  put_tensor (b, "a", 2, (gint64[]) { 0, 4 }, 0, 0);
  put_tensor (b, "b", 2, ne, 0, 0);
  {
    g_autoptr(GBytes) bytes = finish_file (b, 128);
    g_autoptr(GError) error = NULL;
    g_autoptr(QbGguf) g = qb_gguf_new_from_bytes (bytes, "ok.gguf", &error);
    g_assert_no_error (error);
    g_assert_cmpuint (qb_gguf_get_tensor (g, 0)->n_bytes, ==, 0);
  }
  /* Types that are known but not readable are listed, not refused. */
  b = begin_file (3, 1, 0);
  put_tensor (b, "iq2", 2, (gint64[]) { 256, 1 }, 16, 0);
  {
    g_autoptr(GBytes) bytes = finish_file (b, 66);
    g_autoptr(GError) error = NULL;
    g_autoptr(QbGguf) g = qb_gguf_new_from_bytes (bytes, "ok.gguf", &error);
    g_assert_no_error (error);
    g_assert_cmpint (qb_gguf_get_tensor (g, 0)->dtype, ==, QB_DTYPE_IQ2_XXS);
  }
}

/* Deterministic random damage to the header: anything but a crash. */
static void
test_random_damage (void)
{
  gsize header_end;
  g_autoptr(GBytes) valid = make_valid (&header_end);
  gsize size = g_bytes_get_size (valid);
  g_autoptr(GRand) rand = g_rand_new_with_seed (1234);
  guint n_ok = 0, n_err = 0;

  for (int iter = 0; iter < 5000; iter++)
    {
      g_autofree guint8 *copy = g_memdup2 (g_bytes_get_data (valid, NULL), size);
      g_autoptr(GBytes) bytes = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(QbGguf) g = NULL;
      int n_changes = g_rand_int_range (rand, 1, 4);

      for (int k = 0; k < n_changes; k++)
        {
          gsize at = g_rand_int_range (rand, 0, (gint32) header_end);
          if (g_rand_boolean (rand))
            copy[at] ^= 1u << g_rand_int_range (rand, 0, 8);
          else
            copy[at] = (guint8) g_rand_int (rand);
        }
      bytes = g_bytes_new (copy, size);
      g = qb_gguf_new_from_bytes (bytes, "fuzz.gguf", &error);
      if (g == NULL)
        {
          g_assert_nonnull (error);
          g_assert_true (error->domain == QB_GGUF_ERROR);
          g_assert_true (g_str_has_prefix (error->message, "fuzz.gguf: byte "));
          n_err++;
        }
      else
        {
          /* Whatever parsed must be consistent. */
          for (guint64 i = 0; i < qb_gguf_get_n_tensors (g); i++)
            {
              const QbGgufTensorInfo *t = qb_gguf_get_tensor (g, i);
              g_assert_true ((const guint8 *) t->data + t->n_bytes <=
                             (const guint8 *) g_bytes_get_data (bytes, NULL) + size);
            }
          n_ok++;
        }
    }
  g_test_message ("random damage: %u parsed, %u refused", n_ok, n_err);
  g_assert_cmpuint (n_err, >, 0);
}

int
main (int argc, char **argv)
{
#ifndef __SANITIZE_ADDRESS__
  /* No case here may allocate much: cap the heap so that a reader that
   * trusted a count would fail the test instead of passing slowly. */
  struct rlimit limit = { 512u << 20, 512u << 20 };
  setrlimit (RLIMIT_DATA, &limit);
#endif

  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/gguf-damaged/valid-base", test_valid_base);
  g_test_add_func ("/gguf-damaged/truncated-everywhere", test_truncated_everywhere);
  g_test_add_func ("/gguf-damaged/magic-version", test_bad_magic_version);
  g_test_add_func ("/gguf-damaged/absurd-counts", test_absurd_counts);
  g_test_add_func ("/gguf-damaged/strings-and-names", test_bad_strings);
  g_test_add_func ("/gguf-damaged/duplicates", test_duplicates);
  g_test_add_func ("/gguf-damaged/values", test_bad_values);
  g_test_add_func ("/gguf-damaged/array-bombs", test_array_bombs);
  g_test_add_func ("/gguf-damaged/tensors", test_bad_tensors);
  g_test_add_func ("/gguf-damaged/random-damage", test_random_damage);
  return g_test_run ();
}
