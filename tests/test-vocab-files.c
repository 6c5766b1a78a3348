/* SPDX-License-Identifier: MIT */
/* test-vocab-files.c — the tokenizers on real vocabularies.
 *
 * Runs only when QB_VOCAB_DIR names a folder of llama.cpp's vocabulary-only
 * test files (models/ggml-vocab-NAME.gguf with NAME.gguf.inp and .out, from
 * a llama.cpp checkout); otherwise it skips, so CI skips it.  For every
 * vocabulary there it loads the GGUF the way the evaluator does
 * (qb_tokenizer_new_from_gguf) and compares our ids, without BOS/EOS and
 * without parsing special tokens (as llama.cpp's test-tokenizer-0 does),
 * with the .out line of each input.  A vocabulary we refuse must be refused
 * with QB_TOKENIZER_ERROR_UNSUPPORTED; the test names it and goes on.
 *
 * QB_VOCAB_TEXT=FILE also compares the ids of a whole text file with
 * NAME.gguf.BASENAME.ids beside the vocabulary (see check_text).
 * QB_VOCAB_ONLY=NAME,NAME limits the run; QB_VOCAB_VERBOSE=1 prints every
 * mismatch.  The .inp format: inputs separated by "\n__ggml_vocab_test__\n";
 * the .out file: one line of space-separated ids per input.
 */
#include <stdlib.h>
#include <string.h>

#include "qb-gguf.h"
#include "qb-tokenizer.h"

typedef struct {
  guint matched, total;
} Tally;

static GPtrArray *
split_inputs (const char *raw, gsize len)
{
  static const char sep[] = "\n__ggml_vocab_test__\n";
  GPtrArray *inputs = g_ptr_array_new_with_free_func (g_free);
  gsize pos = 0;

  while (pos < len)
    {
      const char *next = g_strstr_len (raw + pos, len - pos, sep);
      gsize end = next ? (gsize) (next - raw) : len;

      g_ptr_array_add (inputs, g_strndup (raw + pos, end - pos));
      pos = next ? end + strlen (sep) : len;
    }
  return inputs;
}

static GArray *
parse_ids (const char *line)
{
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autofree char *copy = g_strstrip (g_strdup (line));
  g_auto(GStrv) parts = g_strsplit (copy, " ", -1);

  for (guint i = 0; parts[i] != NULL; i++)
    if (parts[i][0] != '\0')
      {
        gint32 id = (gint32) g_ascii_strtoll (parts[i], NULL, 10);
        g_array_append_val (ids, id);
      }
  return ids;
}

static char *
ids_text (const GArray *ids)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < ids->len; i++)
    g_string_append_printf (s, "%s%d", i ? " " : "", g_array_index (ids, gint32, i));
  return g_string_free (s, FALSE);
}

static gboolean
same_ids (const GArray *a, const GArray *b)
{
  /* An empty GArray may have no data at all: no memcmp on it. */
  return a->len == b->len && (a->len == 0 || memcmp (a->data, b->data, a->len * sizeof (gint32)) == 0);
}

/* The .inp inputs against the .out ids. */
static void
check_inputs (QbTokenizer *tok, const char *gguf_path, Tally *t)
{
  g_autofree char *inp_path = g_strconcat (gguf_path, ".inp", NULL);
  g_autofree char *out_path = g_strconcat (gguf_path, ".out", NULL);
  g_autofree char *raw = NULL, *out_raw = NULL;
  gsize raw_len = 0;
  g_autoptr(GPtrArray) inputs = NULL;
  g_auto(GStrv) lines = NULL;
  gboolean verbose = g_getenv ("QB_VOCAB_VERBOSE") != NULL;

  if (!g_file_get_contents (inp_path, &raw, &raw_len, NULL))
    return;
  g_assert_true (g_file_get_contents (out_path, &out_raw, NULL, NULL));
  inputs = split_inputs (raw, raw_len);
  lines = g_strsplit (out_raw, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), >=, inputs->len);

  for (guint i = 0; i < inputs->len; i++)
    {
      const char *text = g_ptr_array_index (inputs, i);
      g_autoptr(GError) error = NULL;
      g_autoptr(GArray) want = parse_ids (lines[i]);
      g_autoptr(GArray) got = qb_tokenizer_encode (tok, text, -1, FALSE, FALSE, NULL, &error);

      g_assert_no_error (error);
      t->total++;
      if (same_ids (got, want))
        t->matched++;
      else if (verbose)
        {
          g_autofree char *g = ids_text (got), *w = ids_text (want);
          g_autofree char *esc = g_strescape (text, NULL);
          g_printerr ("# input %u \"%s\"\n#   got  %s\n#   want %s\n", i, esc, g, w);
        }
    }
  g_printerr ("# %s: %u/%u inputs match\n", gguf_path, t->matched, t->total);
}

/* QB_VOCAB_TEXT=FILE: the whole file against NAME.gguf.BASENAME.ids (llama.cpp's
 * ids for it, space-separated, without BOS) where that file exists. */
static void
check_text (QbTokenizer *tok, const char *gguf_path, Tally *t)
{
  const char *text_path = g_getenv ("QB_VOCAB_TEXT");
  g_autofree char *base = NULL, *ids_path = NULL, *text = NULL, *ids_raw = NULL;
  g_autoptr(GArray) want = NULL, got = NULL;
  g_autoptr(GError) error = NULL;
  gsize len = 0;
  guint same = 0;

  if (text_path == NULL || *text_path == '\0')
    return;
  base = g_path_get_basename (text_path);
  ids_path = g_strdup_printf ("%s.%s.ids", gguf_path, base);
  if (!g_file_get_contents (ids_path, &ids_raw, NULL, NULL))
    return;
  g_assert_true (g_file_get_contents (text_path, &text, &len, NULL));
  want = parse_ids (ids_raw);
  got = qb_tokenizer_encode (tok, text, len, FALSE, FALSE, NULL, &error);
  g_assert_no_error (error);
  while (same < got->len && same < want->len
         && g_array_index (got, gint32, same) == g_array_index (want, gint32, same))
    same++;
  t->total++;
  if (same_ids (got, want))
    t->matched++;
  g_printerr ("# %s: %s: %u ids, llama.cpp %u, the first %u equal\n",
              gguf_path, base, got->len, want->len, same);
}

/* FALSE when the vocabulary is refused (reported, not a failure). */
static gboolean
check_vocab (const char *gguf_path, Tally *t)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbGguf) gguf = qb_gguf_open (gguf_path, &error);
  g_autoptr(QbTokenizer) tok = NULL;

  g_assert_no_error (error);
  tok = qb_tokenizer_new_from_gguf (gguf, &error);
  if (tok == NULL)
    {
      g_assert_error (error, QB_TOKENIZER_ERROR, QB_TOKENIZER_ERROR_UNSUPPORTED);
      g_test_message ("%s: refused: %s", gguf_path, error->message);
      return FALSE;
    }
  check_inputs (tok, gguf_path, t);
  check_text (tok, gguf_path, t);
  return TRUE;
}

static gboolean
wanted (const char *name)
{
  const char *only = g_getenv ("QB_VOCAB_ONLY");
  g_auto(GStrv) names = NULL;

  if (only == NULL || *only == '\0')
    return TRUE;
  names = g_strsplit (only, ",", -1);
  for (guint i = 0; names[i]; i++)
    {
      g_autofree char *file = g_strdup_printf ("ggml-vocab-%s.gguf", names[i]);
      if (strcmp (file, name) == 0)
        return TRUE;
    }
  return FALSE;
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

static void
test_vocab_files (void)
{
  const char *dir_path = g_getenv ("QB_VOCAB_DIR");
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  guint failed = 0, checked = 0;

  if (dir_path == NULL || *dir_path == '\0')
    {
      g_test_skip ("QB_VOCAB_DIR is not set (a folder of llama.cpp's ggml-vocab-*.gguf "
                   "files with their .inp/.out); skipped");
      return;
    }
  dir = g_dir_open (dir_path, 0, NULL);
  if (dir == NULL)
    {
      g_test_skip ("QB_VOCAB_DIR is not a readable folder; skipped");
      return;
    }
  while ((name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_prefix (name, "ggml-vocab-") && g_str_has_suffix (name, ".gguf") && wanted (name))
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);

  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *path = g_build_filename (dir_path, g_ptr_array_index (names, i), NULL);
      Tally t = { 0, 0 };

      if (!check_vocab (path, &t) || t.total == 0)
        continue;
      checked++;
      if (t.matched != t.total)
        failed++;
    }
  if (checked == 0)
    {
      g_test_skip ("no vocabulary in QB_VOCAB_DIR could be checked");
      return;
    }
  g_assert_cmpuint (failed, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/vocab-files/llama-cpp", test_vocab_files);
  return g_test_run ();
}
