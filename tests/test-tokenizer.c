/* SPDX-License-Identifier: MIT */
/* test-tokenizer.c — tokenizers against llama.cpp's ids.
 *
 * SentencePiece (SPM): stories260K's vocabulary on the golden texts of
 * ../shared/golden/llama-cpp (llama-tokenize's ids), and on the tokens
 * stored in the golden logits file.
 *
 * Byte-level BPE: a small vocabulary built here (the 256 byte characters
 * plus the merges below), written to GGUF files with the GPT-2 and LLaMA-3
 * pre-tokenizers and to tokenizer.json files.  The expected ids were
 * produced by llama.cpp's llama-tokenize on GGUF files holding this same
 * vocabulary (built outside the test suite; no llama.cpp is needed here).
 */
#include <string.h>

#include <json-glib/json-glib.h>

#include "qb-gguf.h"
#include "qb-test-util.h"
#include "qb-tokenizer.h"

typedef struct {
  const char *text;
  gint32      ids[32];   /* ends with -1 */
} TokCase;

/* The merges, in GPT-2's byte-level characters (\xc4\xa0 is "Ġ", a space). */
static const char * const test_merges[] = {
  "t h", "th e", "\xc4\xa0 t", "\xc4\xa0t h", "\xc4\xa0th e",
  "\xc4\xa0 a", "\xc4\xa0" "a n", "\xc4\xa0" "an d", "\xc4\xa0 w", "\xc4\xa0w a",
  "\xc4\xa0wa s", "\xc4\xa0 c", "\xc4\xa0" "c a", "\xc4\xa0" "ca t", "\xc4\xa0 h",
  "\xc4\xa0h a", "\xc4\xa0ha t", "\xc4\xa0 i", "\xc4\xa0i n", "\xc4\xa0i t",
  "' s", "' l", "'l l", "\xc4\xa0the y", "\xc4\xa0the r",
  "\xc4\xa0ther e", "\xc4\xa0 g", "\xc4\xa0g o", "\xc4\xa0 n", "\xc4\xa0n o",
  "\xc4\xa0no w", "H e", "He l", "Hel l", "Hell o",
  "\xc4\xa0w o", "\xc4\xa0wo r", "\xc4\xa0wor l", "\xc4\xa0worl d", "\xc4\xa0th i",
  "\xc4\xa0thi n", "\xc4\xa0thin g", "\xc4\xa0thing s", "\xc4\xa0" "ca f", "\xc4\xa0" "caf \xc3\x83",
  "\xc4\xa0" "caf\xc3\x83 \xc2\xa9", "\xc4\xa0n a", "\xc4\xa0na \xc3\x83", "\xc4\xa0na\xc3\x83 \xc2\xaf", "\xc4\xa0na\xc3\x83\xc2\xaf v",
  "\xc4\xa0na\xc3\x83\xc2\xafv e", "\xc4\xa0 1", "\xc4\xa0" "1 2", "1 2", "3 4",
  "34 5", "i n", "in g", "\xc4\xa0 e", "\xc4\xa0" "e n",
  "\xc4\xa0" "en d", "\xc4\xa0 T", "\xc4\xa0T h", "\xc4\xa0Th e", "\xc4\xa0 I",
  "\xc4\xa0I t",
};

static const TokCase gpt2_cases[] = {
  { "Hello world, it's 12345 things!",
    { 290, 294, 44, 275, 276, 308, 311, 32, 256, 313, 115, 33, -1 } },
  { "The cat and the hat was in it.",
    { 84, 104, 101, 269, 263, 32, 257, 272, 266, 274, 275, 46, -1 } },
  { "they'll  go\n\nthere   now",
    { 257, 121, 278, 32, 283, 10, 10, 257, 114, 101, 32, 32, 286, -1 } },
  { "caf\xc3\xa9 na\xc3\xafve \xe2\x80\x94 \xf0\x9f\x98\x80",
    { 99, 97, 102, 195, 169, 306, 32, 226, 128, 148, 32, 240, 159, 152, 128, -1 } },
  { "<|endoftext|>The end<tool>x",
    { 322, 84, 104, 101, 316, 323, 120, -1 } },
  { "It'S 3.14 IT'LL",
    { 73, 116, 39, 83, 32, 51, 46, 49, 52, 320, 84, 39, 76, 76, -1 } },
  { "\t tabs\t \n",
    { 9, 258, 97, 98, 115, 9, 32, 10, -1 } },
  { "  leading and trailing  ",
    { 32, 32, 108, 101, 97, 100, 313, 263, 258, 114, 97, 105, 108, 313, 32, 32, -1 } },
};

static const TokCase llama3_cases[] = {
  { "Hello world, it's 12345 things!",
    { 322, 290, 294, 44, 275, 276, 32, 309, 51, 52, 53, 298, 33, -1 } },
  { "The cat and the hat was in it.",
    { 322, 84, 104, 101, 269, 263, 260, 272, 266, 274, 275, 46, -1 } },
  { "they'll  go\n\nthere   now",
    { 322, 257, 121, 278, 32, 283, 10, 10, 257, 114, 101, 32, 32, 286, -1 } },
  { "caf\xc3\xa9 na\xc3\xafve \xe2\x80\x94 \xf0\x9f\x98\x80",
    { 322, 99, 97, 102, 195, 169, 306, 32, 226, 128, 148, 32, 240, 159, 152, 128, -1 } },
  { "<|endoftext|>The end<tool>x",
    { 322, 322, 84, 104, 101, 316, 323, 120, -1 } },
  { "It'S 3.14 IT'LL",
    { 322, 73, 116, 39, 83, 32, 51, 46, 49, 52, 320, 84, 39, 76, 76, -1 } },
  { "\t tabs\t \n",
    { 322, 9, 258, 97, 98, 115, 9, 32, 10, -1 } },
  { "  leading and trailing  ",
    { 322, 32, 32, 108, 101, 97, 100, 313, 263, 258, 114, 97, 105, 108, 313, 32, 32, -1 } },
};

/* The same vocabulary under the falcon and DeepSeek pre-tokenizers (ids
 * from llama.cpp's llama_tokenize on GGUF files like write_bpe_gguf's, with
 * parse_special and no BOS), to pin where each one cuts words. */
static const TokCase falcon_cases[] = {
  { "Hello, world!! it\'s 12345 things",
    { 290, 44, 294, 33, 33, 275, 39, 115, 32, 309, 51, 52, 53, 32, 256, 313, 115, -1 } },
  { "a+b=c`d 3.14|x~y",
    { 97, 43, 98, 61, 99, 96, 100, 32, 51, 46, 49, 52, 124, 120, 126, 121, -1 } },
  { "they\'ll  go\n\nthere   now  ",
    { 257, 121, 39, 108, 108, 32, 283, 10, 10, 257, 114, 101, 32, 32, 286, 32, 32, -1 } },
  { "caf\xc3\xa9 na\xc3\xafve \xe4\xb8\xad\xe6\x96\x87 end",
    { 99, 97, 102, 195, 169, 306, 32, 228, 184, 173, 230, 150, 135, 316, -1 } },
  { "The cat\r\nin 2024 \xef\xbc\x81 \xe2\x80\x9cit\xe2\x80\x9d",
    { 84, 104, 101, 269, 13, 10, 312, 32, 50, 48, 50, 52, 32, 239, 188, 129, 32, 226, 128, 156,
      105, 116, 226, 128, 157, -1 } },
};
static const TokCase deepseek_llm_cases[] = {
  { "Hello, world!! it\'s 12345 things",
    { 290, 44, 294, 33, 33, 275, 39, 115, 32, 309, 311, 32, 256, 313, 115, -1 } },
  { "a+b=c`d 3.14|x~y",
    { 97, 43, 98, 61, 99, 96, 100, 32, 51, 46, 49, 52, 124, 120, 126, 121, -1 } },
  { "they\'ll  go\n\nthere   now  ",
    { 257, 121, 39, 108, 108, 32, 283, 10, 10, 257, 114, 101, 32, 32, 286, 32, 32, -1 } },
  { "caf\xc3\xa9 na\xc3\xafve \xe4\xb8\xad\xe6\x96\x87 end",
    { 99, 97, 102, 195, 169, 302, 195, 175, 118, 101, 32, 228, 184, 173, 230, 150, 135, 316, -1 } },
  { "The cat\r\nin 2024 \xef\xbc\x81 \xe2\x80\x9cit\xe2\x80\x9d",
    { 84, 104, 101, 269, 13, 10, 312, 32, 50, 48, 50, 52, 32, 239, 188, 129, 32, 226, 128, 156,
      105, 116, 226, 128, 157, -1 } },
};
static const TokCase deepseek_v3_cases[] = {
  { "Hello, world!! it\'s 12345 things",
    { 290, 44, 294, 33, 33, 275, 276, 32, 309, 51, 52, 53, 32, 256, 313, 115, -1 } },
  { "a+b=c`d 3.14|x~y",
    { 97, 43, 98, 61, 99, 96, 100, 32, 51, 46, 49, 52, 124, 120, 126, 121, -1 } },
  { "they\'ll  go\n\nthere   now  ",
    { 257, 121, 278, 32, 283, 10, 10, 257, 114, 101, 32, 32, 286, 32, 32, -1 } },
  { "caf\xc3\xa9 na\xc3\xafve \xe4\xb8\xad\xe6\x96\x87 end",
    { 99, 97, 102, 195, 169, 306, 32, 228, 184, 173, 230, 150, 135, 316, -1 } },
  { "The cat\r\nin 2024 \xef\xbc\x81 \xe2\x80\x9cit\xe2\x80\x9d",
    { 84, 104, 101, 269, 13, 10, 312, 32, 50, 48, 50, 52, 32, 239, 188, 129, 32, 226, 128, 156,
      105, 116, 226, 128, 157, -1 } },
};

static const TokCase deepseek_coder_cases[] = {
  { "Hello, world!! it\'s 12345 things",
    { 290, 44, 294, 33, 33, 275, 39, 115, 32, 49, 50, 51, 52, 53, 32, 256, 313, 115, -1 } },
  { "a+b=c`d 3.14|x~y",
    { 97, 43, 98, 61, 99, 96, 100, 32, 51, 46, 49, 52, 124, 120, 126, 121, -1 } },
  { "they\'ll  go\n\nthere   now  ",
    { 257, 121, 39, 108, 108, 32, 283, 10, 10, 257, 114, 101, 32, 32, 286, 32, 32, -1 } },
  { "caf\xc3\xa9 na\xc3\xafve \xe4\xb8\xad\xe6\x96\x87 end",
    { 99, 97, 102, 195, 169, 306, 32, 228, 184, 173, 230, 150, 135, 316, -1 } },
  { "The cat\r\nin 2024 \xef\xbc\x81 \xe2\x80\x9cit\xe2\x80\x9d",
    { 84, 104, 101, 269, 13, 10, 312, 32, 50, 48, 50, 52, 32, 239, 188, 129, 32, 226, 128, 156,
      105, 116, 226, 128, 157, -1 } },
};

/* ---- helpers ---------------------------------------------------------- */

static GArray *
parse_ids (const char *path)
{
  g_autoptr(GBytes) bytes = qb_test_read_file (path);
  const char *p = g_bytes_get_data (bytes, NULL), *end = p + g_bytes_get_size (bytes);
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));

  while (p < end)
    {
      if (g_ascii_isdigit (*p))
        {
          gint32 v = 0;
          while (p < end && g_ascii_isdigit (*p))
            v = v * 10 + (*p++ - '0');
          g_array_append_val (ids, v);
        }
      else
        p++;
    }
  return ids;
}

static void
assert_ids (GArray *got, const gint32 *want, guint n_want, const char *what)
{
  for (guint i = 0; i < MIN (got->len, n_want); i++)
    if (g_array_index (got, gint32, i) != want[i])
      g_error ("%s: id %u is %d, llama.cpp gives %d", what, i, g_array_index (got, gint32, i), want[i]);
  if (got->len != n_want)
    g_error ("%s: %u ids, llama.cpp gives %u", what, got->len, n_want);
}

static guint
case_len (const TokCase *c)
{
  guint n = 0;
  while (c->ids[n] != -1)
    n++;
  return n;
}

static QbTokenizer *
open_stories_tokenizer (void)
{
  g_autofree char *path = qb_test_shared_path ("models/stories260K.gguf");
  g_autoptr(GError) error = NULL;
  g_autoptr(QbGguf) gguf = NULL;
  QbTokenizer *tok;

  if (path == NULL)
    return NULL;
  gguf = qb_gguf_open (path, &error);
  g_assert_no_error (error);
  tok = qb_tokenizer_new_from_gguf (gguf, &error);
  g_assert_no_error (error);
  return tok;
}

/* GPT-2's printable stand-in of byte b, written independently of the
 * tokenizer's own table. */
static char *
byte_char (guint b)
{
  gboolean printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
  guint extra = 0;
  char buf[8] = { 0 };

  if (!printable)
    for (guint c = 0; c < b; c++)
      if (!((c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || c >= 0xae))
        extra++;
  g_unichar_to_utf8 (printable ? b : 256 + extra, buf);
  return g_strdup (buf);
}

/* The test vocabulary: ids 0-255 the byte characters in byte order, then
 * each merge's result in merge order, then <|endoftext|> (control) and
 * <tool> (user-defined). */
static void
build_vocab (GPtrArray *tokens, GArray *types)
{
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  int normal = 1, control = 3, user = 4;

  for (guint b = 0; b < 256; b++)
    g_ptr_array_add (tokens, byte_char (b));
  for (gsize i = 0; i < G_N_ELEMENTS (test_merges); i++)
    {
      char **pair = g_strsplit (test_merges[i], " ", 2);
      char *joined = g_strconcat (pair[0], pair[1], NULL);
      gboolean dup = FALSE;

      for (guint t = 0; t < tokens->len && !dup; t++)
        dup = strcmp (g_ptr_array_index (tokens, t), joined) == 0;
      if (dup)
        g_free (joined);
      else
        g_ptr_array_add (tokens, joined);
      g_strfreev (pair);
    }
  for (guint t = 0; t < tokens->len; t++)
    g_array_append_val (types, normal);
  g_ptr_array_add (tokens, g_strdup ("<|endoftext|>"));
  g_array_append_val (types, control);
  g_ptr_array_add (tokens, g_strdup ("<tool>"));
  g_array_append_val (types, user);
}

/* Writes the file with one small tensor, as a model file would have. */
static void
finish_gguf (QbGgufWriter *w, const char *path)
{
  static const float value = 1.0f;
  const gint64 ne[1] = { 1 };
  g_autoptr(GError) error = NULL;
  guint index = qb_gguf_writer_add_tensor (w, "dummy.weight", 1, ne, QB_DTYPE_F32);

  qb_gguf_writer_begin (w, path, &error);
  g_assert_no_error (error);
  qb_gguf_writer_write_tensor (w, index, &value, sizeof value, &error);
  g_assert_no_error (error);
  qb_gguf_writer_finish (w, &error);
  g_assert_no_error (error);
}

static char *
write_bpe_gguf (const char *dir, const char *pre)
{
  g_autoptr(GPtrArray) tokens = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GArray) types = g_array_new (FALSE, FALSE, sizeof (int));
  g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
  g_autofree char *name = g_strdup_printf ("bpe-%s.gguf", pre);
  char *path = g_build_filename (dir, name, NULL);

  build_vocab (tokens, types);
  qb_gguf_writer_set_string (w, "general.architecture", "llama");
  qb_gguf_writer_set_string (w, "tokenizer.ggml.model", "gpt2");
  qb_gguf_writer_set_string (w, "tokenizer.ggml.pre", pre);
  qb_gguf_writer_set_string_array (w, "tokenizer.ggml.tokens",
                                   (const char * const *) tokens->pdata, tokens->len);
  qb_gguf_writer_set_array (w, "tokenizer.ggml.token_type", QB_GGUF_TYPE_INT32,
                            types->data, types->len);
  qb_gguf_writer_set_string_array (w, "tokenizer.ggml.merges", test_merges,
                                   G_N_ELEMENTS (test_merges));
  qb_gguf_writer_set_uint32 (w, "tokenizer.ggml.bos_token_id", tokens->len - 2);
  qb_gguf_writer_set_uint32 (w, "tokenizer.ggml.eos_token_id", tokens->len - 2);
  finish_gguf (w, path);
  return path;
}

static QbTokenizer *
open_gguf_tokenizer (const char *path, GError **error)
{
  g_autoptr(QbGguf) gguf = qb_gguf_open (path, error);
  return gguf ? qb_tokenizer_new_from_gguf (gguf, error) : NULL;
}

static void
check_cases (QbTokenizer *tok, const TokCase *cases, gsize n, gboolean add_special,
             guint skip_first, const char *what)
{
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GArray) ids = qb_tokenizer_encode (tok, cases[i].text, -1, add_special, TRUE,
                                                   NULL, &error);
      g_autofree char *label = g_strdup_printf ("%s case %" G_GSIZE_FORMAT, what, i);

      g_assert_no_error (error);
      assert_ids (ids, cases[i].ids + skip_first, case_len (&cases[i]) - skip_first, label);
    }
}

/* ---- SentencePiece ---------------------------------------------------- */

static void
check_golden (const char *name)
{
  g_autoptr(QbTokenizer) tok = open_stories_tokenizer ();
  g_autofree char *txt_rel = g_strdup_printf ("golden/llama-cpp/tok-%s.txt", name);
  g_autofree char *ids_rel = g_strdup_printf ("golden/llama-cpp/tok-%s.ids", name);
  g_autofree char *txt_path = NULL, *ids_path = NULL, *decoded = NULL;
  g_autoptr(GBytes) text = NULL;
  g_autoptr(GArray) want = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *with_space = NULL;

  if (tok == NULL || (txt_path = qb_test_shared_path (txt_rel)) == NULL
      || (ids_path = qb_test_shared_path (ids_rel)) == NULL)
    return;
  text = qb_test_read_file (txt_path);
  want = parse_ids (ids_path);
  g_assert_cmpint (qb_tokenizer_get_kind (tok), ==, QB_TOKENIZER_SPM);

  /* llama-tokenize parses special tokens; these texts have none, so the
   * perplexity setting (parse_special off) must give the same ids. */
  for (int parse_special = 0; parse_special < 2; parse_special++)
    {
      g_autoptr(GArray) got = qb_tokenizer_encode (tok, g_bytes_get_data (text, NULL),
                                                   g_bytes_get_size (text), TRUE, parse_special,
                                                   NULL, &error);
      g_assert_no_error (error);
      assert_ids (got, (const gint32 *) (void *) want->data, want->len, name);
    }
  g_test_message ("%s: %u ids identical to llama-tokenize", name, want->len);

  /* Byte fallback keeps everything: decoding gives the text back, behind
   * the space prefix. */
  decoded = qb_tokenizer_decode (tok, (const gint32 *) (void *) want->data + 1, want->len - 1);
  with_space = g_strdup_printf (" %.*s", (int) g_bytes_get_size (text),
                                (const char *) g_bytes_get_data (text, NULL));
  g_assert_cmpstr (decoded, ==, with_space);
}

static void
test_spm_sample (void)
{
  check_golden ("sample");
}

static void
test_spm_tricky (void)
{
  check_golden ("tricky");
}

/* The whole evaluation text, as llama-perplexity tokenizes it: the golden
 * logits file stores its first 10 × 128 tokens. */
static void
test_spm_perplexity_tokens (void)
{
  g_autoptr(QbTokenizer) tok = open_stories_tokenizer ();
  g_autofree char *text_path = NULL, *kld_path = NULL;
  g_autoptr(GBytes) text = NULL, kld = NULL;
  g_autoptr(GArray) ids = NULL;
  g_autoptr(GError) error = NULL;
  const guint8 *k;
  guint32 n_ctx, n_chunks;

  if (tok == NULL || (text_path = qb_test_shared_path ("text/tinystories-val.txt")) == NULL
      || (kld_path = qb_test_shared_path ("golden/llama-cpp/stories260K-f32-10chunks.kld")) == NULL)
    return;
  text = qb_test_read_file (text_path);
  kld = qb_test_read_file (kld_path);
  ids = qb_tokenizer_encode (tok, g_bytes_get_data (text, NULL), g_bytes_get_size (text),
                             TRUE, FALSE, NULL, &error);
  g_assert_no_error (error);

  k = g_bytes_get_data (kld, NULL);
  memcpy (&n_ctx, k + 8, 4);
  memcpy (&n_chunks, k + 16, 4);
  g_assert_cmpuint (n_ctx * n_chunks, <=, ids->len);
  g_assert_cmpmem (k + 20, (gsize) n_ctx * n_chunks * 4, ids->data, (gsize) n_ctx * n_chunks * 4);
  g_test_message ("whole text: %u tokens; the first %u equal llama-perplexity's", ids->len,
                  n_ctx * n_chunks);
}

/* ---- byte-level BPE --------------------------------------------------- */

static void
test_bpe_gguf_gpt2 (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = write_bpe_gguf (dir, "gpt-2");
  g_autoptr(GError) error = NULL;
  g_autoptr(QbTokenizer) tok = open_gguf_tokenizer (path, &error);

  g_assert_no_error (error);
  g_assert_cmpint (qb_tokenizer_get_kind (tok), ==, QB_TOKENIZER_BPE);
  g_assert_false (qb_tokenizer_get_add_bos (tok));
  check_cases (tok, gpt2_cases, G_N_ELEMENTS (gpt2_cases), TRUE, 0, "gpt-2");
}

static void
test_bpe_gguf_llama3 (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = write_bpe_gguf (dir, "llama3");
  g_autoptr(GError) error = NULL;
  g_autoptr(QbTokenizer) tok = open_gguf_tokenizer (path, &error);

  g_assert_no_error (error);
  /* LLaMA-3's pre-tokenizer adds BOS unless the file says otherwise. */
  g_assert_true (qb_tokenizer_get_add_bos (tok));
  check_cases (tok, llama3_cases, G_N_ELEMENTS (llama3_cases), TRUE, 0, "llama3");
  check_cases (tok, llama3_cases, G_N_ELEMENTS (llama3_cases), FALSE, 1, "llama3 no BOS");
}

/* Pre-tokenizers whose patterns are not GPT-2's or LLaMA-3's. */
static void
test_bpe_gguf_other_pre (void)
{
  static const struct {
    const char    *pre;
    const TokCase *cases;
    gsize          n;
  } pres[] = {
    { "falcon", falcon_cases, G_N_ELEMENTS (falcon_cases) },
    { "deepseek-llm", deepseek_llm_cases, G_N_ELEMENTS (deepseek_llm_cases) },
    { "deepseek-coder", deepseek_coder_cases, G_N_ELEMENTS (deepseek_coder_cases) },
    { "deepseek-v3", deepseek_v3_cases, G_N_ELEMENTS (deepseek_v3_cases) },
  };
  g_autofree char *dir = qb_test_tmpdir ();

  for (gsize i = 0; i < G_N_ELEMENTS (pres); i++)
    {
      g_autofree char *path = write_bpe_gguf (dir, pres[i].pre);
      g_autoptr(GError) error = NULL;
      g_autoptr(QbTokenizer) tok = open_gguf_tokenizer (path, &error);

      g_assert_no_error (error);
      g_assert_false (qb_tokenizer_get_add_bos (tok));
      check_cases (tok, pres[i].cases, pres[i].n, FALSE, 0, pres[i].pre);
    }
}

/* The building-block constructor gives what the GGUF path gives. */
static void
test_bpe_direct (void)
{
  g_autoptr(GPtrArray) tokens = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GArray) types = g_array_new (FALSE, FALSE, sizeof (int));
  const char *patterns[] = { QB_PRETOKENIZE_GPT2, NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(QbTokenizer) tok = NULL;
  g_autofree char *text = NULL;

  build_vocab (tokens, types);
  tok = qb_tokenizer_new_bpe ((const char * const *) tokens->pdata, (const int *) (void *) types->data,
                              tokens->len, test_merges, G_N_ELEMENTS (test_merges), patterns, TRUE,
                              &error);
  g_assert_no_error (error);
  check_cases (tok, gpt2_cases, G_N_ELEMENTS (gpt2_cases), FALSE, 0, "direct gpt-2");

  /* Byte-level decoding gives any text back (here every byte is a token). */
  text = qb_tokenizer_decode (tok, gpt2_cases[3].ids, case_len (&gpt2_cases[3]));
  g_assert_cmpstr (text, ==, gpt2_cases[3].text);
}

/* ---- tokenizer.json --------------------------------------------------- */

static void
add_string (JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, value);
}

static void
add_bool (JsonBuilder *b, const char *name, gboolean value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_boolean_value (b, value);
}

/* The byte-level pre-tokenizer: GPT-2's ByteLevel with its own regex, or
 * LLaMA-3's Split regex followed by a ByteLevel without one. */
static void
add_byte_level_pre (JsonBuilder *b, gboolean llama3)
{
  json_builder_set_member_name (b, "pre_tokenizer");
  json_builder_begin_object (b);
  if (!llama3)
    {
      add_string (b, "type", "ByteLevel");
      add_bool (b, "add_prefix_space", FALSE);
      add_bool (b, "use_regex", TRUE);
      json_builder_end_object (b);
      return;
    }
  add_string (b, "type", "Sequence");
  json_builder_set_member_name (b, "pretokenizers");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  add_string (b, "type", "Split");
  json_builder_set_member_name (b, "pattern");
  json_builder_begin_object (b);
  /* The pattern as Meta's tokenizer.json writes it. */
  add_string (b, "Regex", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
                          " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+");
  json_builder_end_object (b);
  add_string (b, "behavior", "Isolated");
  add_bool (b, "invert", FALSE);
  json_builder_end_object (b);
  json_builder_begin_object (b);
  add_string (b, "type", "ByteLevel");
  add_bool (b, "use_regex", FALSE);
  json_builder_end_object (b);
  json_builder_end_array (b);
  json_builder_end_object (b);
}

static void
add_template (JsonBuilder *b, const char *bos)
{
  json_builder_begin_object (b);
  add_string (b, "type", "TemplateProcessing");
  json_builder_set_member_name (b, "single");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "SpecialToken");
  json_builder_begin_object (b);
  add_string (b, "id", bos);
  json_builder_end_object (b);
  json_builder_end_object (b);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "Sequence");
  json_builder_begin_object (b);
  add_string (b, "id", "A");
  json_builder_end_object (b);
  json_builder_end_object (b);
  json_builder_end_array (b);
  json_builder_end_object (b);
}

/* nested: inside a Sequence after a ByteLevel step, as Meta's LLaMA-3
 * tokenizer.json has it. */
static void
add_bos_template (JsonBuilder *b, const char *bos, gboolean nested)
{
  json_builder_set_member_name (b, "post_processor");
  if (!nested)
    {
      add_template (b, bos);
      return;
    }
  json_builder_begin_object (b);
  add_string (b, "type", "Sequence");
  json_builder_set_member_name (b, "processors");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  add_string (b, "type", "ByteLevel");
  json_builder_end_object (b);
  add_template (b, bos);
  json_builder_end_array (b);
  json_builder_end_object (b);
}

static char *
write_json (const char *dir, const char *name, JsonBuilder *b)
{
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  g_autoptr(GError) error = NULL;
  char *path = g_build_filename (dir, name, NULL);

  json_generator_set_root (gen, root);
  json_generator_to_file (gen, path, &error);
  g_assert_no_error (error);
  return path;
}

/* A tokenizer.json of the test vocabulary; llama3 also writes the merges
 * as pairs (the newer form) and a BOS template. */
static char *
write_byte_level_json (const char *dir, gboolean llama3)
{
  g_autoptr(GPtrArray) tokens = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GArray) types = g_array_new (FALSE, FALSE, sizeof (int));
  g_autoptr(JsonBuilder) b = json_builder_new ();
  guint n_normal;

  build_vocab (tokens, types);
  n_normal = tokens->len - 2;
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "added_tokens");
  json_builder_begin_array (b);
  for (guint i = n_normal; i < tokens->len; i++)
    {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "id");
      json_builder_add_int_value (b, i);
      add_string (b, "content", g_ptr_array_index (tokens, i));
      add_bool (b, "special", g_array_index (types, int, i) == QB_TOKEN_CONTROL);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "normalizer");
  json_builder_add_null_value (b);
  add_byte_level_pre (b, llama3);
  if (llama3)
    add_bos_template (b, "<|endoftext|>", TRUE);
  json_builder_set_member_name (b, "model");
  json_builder_begin_object (b);
  add_string (b, "type", "BPE");
  add_bool (b, "byte_fallback", FALSE);
  add_bool (b, "ignore_merges", llama3);
  json_builder_set_member_name (b, "vocab");
  json_builder_begin_object (b);
  for (guint i = 0; i < n_normal; i++)
    {
      json_builder_set_member_name (b, g_ptr_array_index (tokens, i));
      json_builder_add_int_value (b, i);
    }
  json_builder_end_object (b);
  json_builder_set_member_name (b, "merges");
  json_builder_begin_array (b);
  for (gsize i = 0; i < G_N_ELEMENTS (test_merges); i++)
    {
      if (llama3)
        {
          g_auto(GStrv) pair = g_strsplit (test_merges[i], " ", 2);
          json_builder_begin_array (b);
          json_builder_add_string_value (b, pair[0]);
          json_builder_add_string_value (b, pair[1]);
          json_builder_end_array (b);
        }
      else
        json_builder_add_string_value (b, test_merges[i]);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  json_builder_end_object (b);
  return write_json (dir, "tokenizer.json", b);
}

static void
test_hf_gpt2 (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = write_byte_level_json (dir, FALSE);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbTokenizer) tok = qb_tokenizer_new_from_hf_json (path, &error);

  g_assert_no_error (error);
  g_assert_false (qb_tokenizer_get_add_bos (tok));
  check_cases (tok, gpt2_cases, G_N_ELEMENTS (gpt2_cases), TRUE, 0, "tokenizer.json gpt-2");
}

static void
test_hf_llama3 (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = write_byte_level_json (dir, TRUE);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbTokenizer) tok = qb_tokenizer_new_from_hf_json (path, &error);

  g_assert_no_error (error);
  g_assert_true (qb_tokenizer_get_add_bos (tok));
  g_assert_cmpint (qb_tokenizer_get_bos (tok), ==, qb_tokenizer_get_n_tokens (tok) - 2);
  check_cases (tok, llama3_cases, G_N_ELEMENTS (llama3_cases), TRUE, 0, "tokenizer.json llama3");
}

/* A SentencePiece-converted tokenizer.json (LLaMA-2 style): spaces become
 * "▁" with one in front, merges by rank, unknown characters as bytes.
 * Expected ids worked out by hand below. */
static void
test_hf_metaspace (void)
{
  static const char * const words[] = { "\xe2\x96\x81", "a", "b", "\xe2\x96\x81" "a", "ab",
                                         "\xe2\x96\x81" "ab" };
  g_autofree char *dir = qb_test_tmpdir ();
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autofree char *path = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(QbTokenizer) tok = NULL;
  g_autoptr(GArray) ids = NULL, ids2 = NULL;
  const gint32 want1[] = { 1, 264, 264 };       /* <s> ▁ab ▁ab */
  const gint32 want2[] = { 1, 264, 3 + 'c' };   /* <s> ▁ab <0x63> */

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "normalizer");
  json_builder_begin_object (b);
  add_string (b, "type", "Sequence");
  json_builder_set_member_name (b, "normalizers");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  add_string (b, "type", "Prepend");
  add_string (b, "prepend", "\xe2\x96\x81");
  json_builder_end_object (b);
  json_builder_begin_object (b);
  add_string (b, "type", "Replace");
  json_builder_set_member_name (b, "pattern");
  json_builder_begin_object (b);
  add_string (b, "String", " ");
  json_builder_end_object (b);
  add_string (b, "content", "\xe2\x96\x81");
  json_builder_end_object (b);
  json_builder_end_array (b);
  json_builder_end_object (b);
  add_bos_template (b, "<s>", FALSE);
  json_builder_set_member_name (b, "model");
  json_builder_begin_object (b);
  add_string (b, "type", "BPE");
  add_string (b, "unk_token", "<unk>");
  add_bool (b, "byte_fallback", TRUE);
  json_builder_set_member_name (b, "vocab");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "<unk>");
  json_builder_add_int_value (b, 0);
  json_builder_set_member_name (b, "<s>");
  json_builder_add_int_value (b, 1);
  json_builder_set_member_name (b, "</s>");
  json_builder_add_int_value (b, 2);
  for (guint i = 0; i < 256; i++)
    {
      g_autofree char *name = g_strdup_printf ("<0x%02X>", i);
      json_builder_set_member_name (b, name);
      json_builder_add_int_value (b, 3 + i);
    }
  for (guint i = 0; i < G_N_ELEMENTS (words); i++)
    {
      json_builder_set_member_name (b, words[i]);
      json_builder_add_int_value (b, 259 + i);
    }
  json_builder_end_object (b);
  json_builder_set_member_name (b, "merges");
  json_builder_begin_array (b);
  json_builder_add_string_value (b, "\xe2\x96\x81 a");
  json_builder_add_string_value (b, "a b");
  json_builder_add_string_value (b, "\xe2\x96\x81" "a b");
  json_builder_end_array (b);
  json_builder_end_object (b);
  json_builder_end_object (b);
  path = write_json (dir, "tokenizer.json", b);

  tok = qb_tokenizer_new_from_hf_json (path, &error);
  g_assert_no_error (error);
  /* "▁ab▁ab": ▁+a (rank 0) twice, then ▁a+b (rank 2) twice. */
  ids = qb_tokenizer_encode (tok, "ab ab", -1, TRUE, FALSE, NULL, &error);
  g_assert_no_error (error);
  assert_ids (ids, want1, G_N_ELEMENTS (want1), "metaspace ab ab");
  /* 'c' is no token: byte fallback. */
  ids2 = qb_tokenizer_encode (tok, "abc", -1, TRUE, FALSE, NULL, &error);
  g_assert_no_error (error);
  assert_ids (ids2, want2, G_N_ELEMENTS (want2), "metaspace abc");
}

/* ---- bad input and cancel --------------------------------------------- */

static void
expect_gguf_error (const char *dir, const char *name, void (*fill) (QbGgufWriter *w), int code)
{
  g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbTokenizer) tok = NULL;

  qb_gguf_writer_set_string (w, "general.architecture", "llama");
  fill (w);
  finish_gguf (w, path);
  tok = open_gguf_tokenizer (path, &error);
  g_assert_null (tok);
  g_assert_error (error, QB_TOKENIZER_ERROR, code);
  g_test_message ("%s: %s", name, error->message);
  g_assert_nonnull (strstr (error->message, path));
}

static const char * const two_tokens[] = { "a", "b" };

static void fill_nothing (QbGgufWriter *w) { }

static void
fill_bert (QbGgufWriter *w)
{
  qb_gguf_writer_set_string (w, "tokenizer.ggml.model", "bert");
  qb_gguf_writer_set_string_array (w, "tokenizer.ggml.tokens", two_tokens, 2);
}

static void
fill_no_merges (QbGgufWriter *w)
{
  qb_gguf_writer_set_string (w, "tokenizer.ggml.model", "gpt2");
  qb_gguf_writer_set_string_array (w, "tokenizer.ggml.tokens", two_tokens, 2);
}

static void
fill_bad_scores (QbGgufWriter *w)
{
  float one = 1;
  qb_gguf_writer_set_string (w, "tokenizer.ggml.model", "llama");
  qb_gguf_writer_set_string_array (w, "tokenizer.ggml.tokens", two_tokens, 2);
  qb_gguf_writer_set_array (w, "tokenizer.ggml.scores", QB_GGUF_TYPE_FLOAT32, &one, 1);
}

static void
fill_bad_pre (QbGgufWriter *w)
{
  const char *merges[] = { "a b" };
  fill_no_merges (w);
  qb_gguf_writer_set_string_array (w, "tokenizer.ggml.merges", merges, 1);
  qb_gguf_writer_set_string (w, "tokenizer.ggml.pre", "no-such-pre-tokenizer");
}

static void
test_errors (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *json_path = g_build_filename (dir, "broken.json", NULL);
  g_autofree char *wp_path = g_build_filename (dir, "wordpiece.json", NULL);
  const char *bad_pattern[] = { "(unclosed", NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(QbTokenizer) tok = NULL;
  g_autoptr(GArray) ids = NULL;

  expect_gguf_error (dir, "none.gguf", fill_nothing, QB_TOKENIZER_ERROR_MISSING);
  expect_gguf_error (dir, "bert.gguf", fill_bert, QB_TOKENIZER_ERROR_UNSUPPORTED);
  expect_gguf_error (dir, "nomerges.gguf", fill_no_merges, QB_TOKENIZER_ERROR_MISSING);
  expect_gguf_error (dir, "scores.gguf", fill_bad_scores, QB_TOKENIZER_ERROR_INVALID);
  expect_gguf_error (dir, "pre.gguf", fill_bad_pre, QB_TOKENIZER_ERROR_UNSUPPORTED);

  g_assert_null (qb_tokenizer_new_bpe (two_tokens, NULL, 2, NULL, 0, bad_pattern, TRUE, &error));
  g_assert_error (error, QB_TOKENIZER_ERROR, QB_TOKENIZER_ERROR_UNSUPPORTED);
  g_clear_error (&error);

  g_file_set_contents (json_path, "{ \"model\": ", -1, NULL);
  g_assert_null (qb_tokenizer_new_from_hf_json (json_path, &error));
  g_assert_error (error, QB_TOKENIZER_ERROR, QB_TOKENIZER_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, json_path));
  g_clear_error (&error);
  g_file_set_contents (wp_path, "{ \"model\": { \"type\": \"WordPiece\", \"vocab\": {} } }", -1, NULL);
  g_assert_null (qb_tokenizer_new_from_hf_json (wp_path, &error));
  g_assert_error (error, QB_TOKENIZER_ERROR, QB_TOKENIZER_ERROR_UNSUPPORTED);
  g_clear_error (&error);

  /* Byte-level BPE needs UTF-8. */
  tok = qb_tokenizer_new_bpe (two_tokens, NULL, 2, NULL, 0, NULL, TRUE, &error);
  g_assert_no_error (error);
  ids = qb_tokenizer_encode (tok, "ab\xff", -1, FALSE, FALSE, NULL, &error);
  g_assert_null (ids);
  g_assert_error (error, QB_TOKENIZER_ERROR, QB_TOKENIZER_ERROR_TEXT);
}

static void
test_cancel (void)
{
  g_autoptr(QbTokenizer) spm = open_stories_tokenizer ();
  g_autoptr(GCancellable) cancel = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *text_path = NULL;
  g_autoptr(GBytes) text = NULL;
  g_autoptr(GArray) ids = NULL;
  g_autoptr(GPtrArray) tokens = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GArray) types = g_array_new (FALSE, FALSE, sizeof (int));
  const char *patterns[] = { QB_PRETOKENIZE_GPT2, NULL };
  g_autoptr(QbTokenizer) bpe = NULL;
  g_autoptr(GString) words = g_string_new (NULL);

  if (spm == NULL || (text_path = qb_test_shared_path ("text/tinystories-val.txt")) == NULL)
    return;
  text = qb_test_read_file (text_path);
  g_cancellable_cancel (cancel);
  ids = qb_tokenizer_encode (spm, g_bytes_get_data (text, NULL), g_bytes_get_size (text), TRUE,
                             FALSE, cancel, &error);
  g_assert_null (ids);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  build_vocab (tokens, types);
  bpe = qb_tokenizer_new_bpe ((const char * const *) tokens->pdata, (const int *) (void *) types->data,
                              tokens->len, test_merges, G_N_ELEMENTS (test_merges), patterns, TRUE,
                              &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 40000; i++)
    g_string_append (words, " the cat");
  ids = qb_tokenizer_encode (bpe, words->str, words->len, FALSE, FALSE, cancel, &error);
  g_assert_null (ids);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/tokenizer/spm/golden-sample", test_spm_sample);
  g_test_add_func ("/tokenizer/spm/golden-tricky", test_spm_tricky);
  g_test_add_func ("/tokenizer/spm/perplexity-tokens", test_spm_perplexity_tokens);
  g_test_add_func ("/tokenizer/bpe/gguf-gpt2", test_bpe_gguf_gpt2);
  g_test_add_func ("/tokenizer/bpe/gguf-llama3", test_bpe_gguf_llama3);
  g_test_add_func ("/tokenizer/bpe/gguf-other-pre", test_bpe_gguf_other_pre);
  g_test_add_func ("/tokenizer/bpe/direct", test_bpe_direct);
  g_test_add_func ("/tokenizer/hf/gpt2", test_hf_gpt2);
  g_test_add_func ("/tokenizer/hf/llama3", test_hf_llama3);
  g_test_add_func ("/tokenizer/hf/metaspace", test_hf_metaspace);
  g_test_add_func ("/tokenizer/errors", test_errors);
  g_test_add_func ("/tokenizer/cancel", test_cancel);
  return g_test_run ();
}
