/* SPDX-License-Identifier: MIT */
/* qb-tokenizer-hf.c — a Hugging Face tokenizer.json of a BPE model.
 *
 * Two families are understood:
 *  - byte-level BPE (GPT-2, LLaMA-3, Qwen2, SmolLM): a ByteLevel
 *    pre-tokenizer, possibly after Split (regex) and Digits steps; the
 *    regexes run through GRegex in the order given;
 *  - SentencePiece-converted BPE (LLaMA-2, Mistral, TinyLlama): spaces
 *    escaped to "▁" by a normalizer or a Metaspace pre-tokenizer, with
 *    byte_fallback to <0xNN> tokens.
 * Added tokens become control tokens (special) or user-defined ones; the
 * BOS/EOS the model adds come from the post-processor template, or from
 * tokenizer_config.json beside the file.  Anything else is refused with a
 * message naming the part of the file.
 */
#include "qb-tokenizer-private.h"
#include "qb-file.h"
#include "qb-json.h"

#include <json-glib/json-glib.h>
#include <string.h>

typedef struct {
  const char *path;
  GPtrArray  *patterns;        /* char*, in order */
  gboolean    byte_level;
  gboolean    escape_spaces;
  gboolean    space_prefix;
} PreTok;

/* tokenizer.json comes with a downloaded model: a regular file of bounded
 * size (the largest vocabularies take tens of MiB) and nesting. */
#define TOKENIZER_JSON_MAX_BYTES ((gsize) 512 << 20)

static gboolean
load_json (JsonParser *parser, const char *path, GError **error)
{
  g_autofree char *text = NULL;
  gsize len = 0;

  return qb_file_read (path, TOKENIZER_JSON_MAX_BYTES, &text, &len, error) &&
         qb_json_parser_load (parser, text, (gssize) len, QB_JSON_MAX_NESTING, path, error);
}

static gboolean
unsupported (GError **error, const char *path, const char *what, const char *name)
{
  g_set_error (error, QB_TOKENIZER_ERROR, QB_TOKENIZER_ERROR_UNSUPPORTED,
               "%s: %s '%s' is not supported", path, what, name ? name : "(none)");
  return FALSE;
}

static const char *
member_string (JsonObject *o, const char *name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;
  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING
         ? json_node_get_string (n) : NULL;
}

static gboolean
member_bool (JsonObject *o, const char *name, gboolean fallback)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;
  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_BOOLEAN
         ? json_node_get_boolean (n) : fallback;
}

static JsonObject *
member_object (JsonObject *o, const char *name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;
  return n && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
}

static JsonArray *
member_array (JsonObject *o, const char *name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;
  return n && JSON_NODE_HOLDS_ARRAY (n) ? json_node_get_array (n) : NULL;
}

static gboolean read_pre_tokenizer (PreTok *pt, JsonObject *o, GError **error);

static gboolean
read_split (PreTok *pt, JsonObject *o, GError **error)
{
  JsonObject *pattern = member_object (o, "pattern");
  const char *regex = member_string (pattern, "Regex");
  const char *string = member_string (pattern, "String");
  const char *behavior = member_string (o, "behavior");

  if (member_bool (o, "invert", FALSE) || g_strcmp0 (behavior, "Isolated") != 0)
    return unsupported (error, pt->path, "Split behaviour", behavior);
  if (regex != NULL)
    g_ptr_array_add (pt->patterns, g_strdup (regex));
  else if (string != NULL)
    g_ptr_array_add (pt->patterns, g_regex_escape_string (string, -1));
  else
    return unsupported (error, pt->path, "Split pattern", NULL);
  return TRUE;
}

static gboolean
read_metaspace (PreTok *pt, JsonObject *o, GError **error)
{
  const char *repl = member_string (o, "replacement");
  const char *scheme = member_string (o, "prepend_scheme");

  if (g_strcmp0 (repl, "\xe2\x96\x81") != 0)
    return unsupported (error, pt->path, "Metaspace replacement", repl);
  if (member_bool (o, "split", FALSE))
    return unsupported (error, pt->path, "Metaspace option", "split");
  pt->escape_spaces = TRUE;
  if (scheme != NULL)
    pt->space_prefix = g_strcmp0 (scheme, "never") != 0;
  else
    pt->space_prefix = member_bool (o, "add_prefix_space", TRUE);
  return TRUE;
}

static gboolean
read_pre_tokenizer (PreTok *pt, JsonObject *o, GError **error)
{
  const char *type = member_string (o, "type");

  if (o == NULL)
    return TRUE;
  if (g_strcmp0 (type, "Sequence") == 0)
    {
      JsonArray *list = member_array (o, "pretokenizers");
      for (guint i = 0; list != NULL && i < json_array_get_length (list); i++)
        if (!read_pre_tokenizer (pt, json_array_get_object_element (list, i), error))
          return FALSE;
      return TRUE;
    }
  if (g_strcmp0 (type, "ByteLevel") == 0)
    {
      /* add_prefix_space is ignored, as llama.cpp ignores it. */
      pt->byte_level = TRUE;
      if (member_bool (o, "use_regex", TRUE))
        g_ptr_array_add (pt->patterns, g_strdup (QB_PRETOKENIZE_GPT2));
      return TRUE;
    }
  if (g_strcmp0 (type, "Split") == 0)
    return read_split (pt, o, error);
  if (g_strcmp0 (type, "Digits") == 0)
    {
      g_ptr_array_add (pt->patterns, g_strdup (member_bool (o, "individual_digits", FALSE)
                                               ? "\\p{N}" : "\\p{N}+"));
      return TRUE;
    }
  if (g_strcmp0 (type, "Metaspace") == 0)
    return read_metaspace (pt, o, error);
  return unsupported (error, pt->path, "pre-tokenizer", type);
}

/* LLaMA-2 style: Prepend("▁") and Replace(" ", "▁"); NFC is taken as a
 * no-op (text is expected in NFC already). */
static gboolean
read_normalizer (PreTok *pt, JsonObject *o, GError **error)
{
  const char *type = member_string (o, "type");

  if (o == NULL || g_strcmp0 (type, "NFC") == 0)
    return TRUE;
  if (g_strcmp0 (type, "Sequence") == 0)
    {
      JsonArray *list = member_array (o, "normalizers");
      for (guint i = 0; list != NULL && i < json_array_get_length (list); i++)
        if (!read_normalizer (pt, json_array_get_object_element (list, i), error))
          return FALSE;
      return TRUE;
    }
  if (g_strcmp0 (type, "Prepend") == 0
      && g_strcmp0 (member_string (o, "prepend"), "\xe2\x96\x81") == 0)
    {
      pt->space_prefix = TRUE;
      return TRUE;
    }
  if (g_strcmp0 (type, "Replace") == 0
      && g_strcmp0 (member_string (member_object (o, "pattern"), "String"), " ") == 0
      && g_strcmp0 (member_string (o, "content"), "\xe2\x96\x81") == 0)
    {
      pt->escape_spaces = TRUE;
      return TRUE;
    }
  return unsupported (error, pt->path, "normalizer", type);
}

/* Vocabulary: model.vocab plus added_tokens, by id; holes become unused
 * "[PADn]" tokens as llama.cpp's converter writes them. */
static gboolean
read_vocab (const char *path, JsonObject *model, JsonArray *added, GPtrArray **texts_out,
            GArray **types_out, GError **error)
{
  JsonObject *vocab = member_object (model, "vocab");
  g_autoptr(GPtrArray) texts = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GArray) types = g_array_new (FALSE, TRUE, sizeof (int));
  g_autoptr(GList) members = NULL;
  const gint64 max_tokens = 1 << 24;

  if (vocab == NULL)
    {
      g_set_error (error, QB_TOKENIZER_ERROR, QB_TOKENIZER_ERROR_INVALID,
                   "%s: model.vocab is missing", path);
      return FALSE;
    }

  members = json_object_get_members (vocab);
  for (guint pass = 0; pass < 2; pass++)
    {
      guint n = pass == 0 ? g_list_length (members) : (added ? json_array_get_length (added) : 0);
      GList *l = members;

      for (guint i = 0; i < n; i++)
        {
          const char *text;
          gint64 id;
          int type;

          if (pass == 0)
            {
              JsonNode *node = json_object_get_member (vocab, l->data);
              text = l->data;
              l = l->next;
              id = JSON_NODE_HOLDS_VALUE (node) ? json_node_get_int (node) : -1;
              type = g_str_has_prefix (text, "<0x") && strlen (text) == 6 ? QB_TOKEN_BYTE
                                                                          : QB_TOKEN_NORMAL;
            }
          else
            {
              JsonObject *a = json_array_get_object_element (added, i);
              JsonNode *node = a ? json_object_get_member (a, "id") : NULL;
              text = member_string (a, "content");
              id = node && JSON_NODE_HOLDS_VALUE (node) ? json_node_get_int (node) : -1;
              type = member_bool (a, "special", FALSE) ? QB_TOKEN_CONTROL : QB_TOKEN_USER_DEFINED;
            }
          if (text == NULL || id < 0 || id >= max_tokens)
            {
              g_set_error (error, QB_TOKENIZER_ERROR, QB_TOKENIZER_ERROR_INVALID,
                           "%s: %s entry %u has no valid id", path,
                           pass == 0 ? "model.vocab" : "added_tokens", i);
              return FALSE;
            }
          if ((guint) id >= texts->len)
            {
              g_ptr_array_set_size (texts, (guint) id + 1);
              g_array_set_size (types, (guint) id + 1);
            }
          g_free (g_ptr_array_index (texts, id));
          g_ptr_array_index (texts, id) = g_strdup (text);
          g_array_index (types, int, id) = type;
        }
    }

  for (guint i = 0; i < texts->len; i++)
    if (g_ptr_array_index (texts, i) == NULL)
      {
        g_ptr_array_index (texts, i) = g_strdup_printf ("[PAD%u]", i);
        g_array_index (types, int, i) = QB_TOKEN_UNUSED;
      }
  *texts_out = g_steal_pointer (&texts);
  *types_out = g_steal_pointer (&types);
  return TRUE;
}

static gboolean
read_merges (QbTokenizer *tok, const char *path, JsonObject *model, GError **error)
{
  JsonArray *merges = member_array (model, "merges");

  for (guint i = 0; merges != NULL && i < json_array_get_length (merges); i++)
    {
      JsonNode *node = json_array_get_element (merges, i);
      const char *left = NULL, *right = NULL, *sp;
      gsize left_len = 0;

      if (JSON_NODE_HOLDS_ARRAY (node) && json_array_get_length (json_node_get_array (node)) == 2)
        {
          /* Newer files: [ "left", "right" ]. */
          left = json_array_get_string_element (json_node_get_array (node), 0);
          right = json_array_get_string_element (json_node_get_array (node), 1);
          left_len = left ? strlen (left) : 0;
        }
      else if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
        {
          const char *m = json_node_get_string (node);
          sp = m[0] ? strchr (m + 1, ' ') : NULL;
          if (sp != NULL)
            {
              left = m;
              left_len = sp - m;
              right = sp + 1;
            }
        }
      if (left == NULL || right == NULL
          || !qb_tokenizer_add_merge (tok, left, left_len, right, strlen (right), (gint32) i))
        {
          g_set_error (error, QB_TOKENIZER_ERROR, QB_TOKENIZER_ERROR_INVALID,
                       "%s: model.merges[%u] is not a pair of tokens", path, i);
          return FALSE;
        }
    }
  return TRUE;
}

static gint32
token_id (QbTokenizer *tok, const char *text)
{
  return text ? qb_text_index_lookup (&tok->index, text, (guint32) strlen (text)) : -1;
}

/* A token name in tokenizer_config.json: a string or { "content": ... }. */
static const char *
config_token (JsonObject *config, const char *name)
{
  JsonNode *n = config ? json_object_get_member (config, name) : NULL;

  if (n && JSON_NODE_HOLDS_OBJECT (n))
    return member_string (json_node_get_object (n), "content");
  return member_string (config, name);
}

/* The TemplateProcessing step of a post-processor (LLaMA-3 nests it in a
 * Sequence after a ByteLevel step). */
static JsonObject *
find_template (JsonObject *post)
{
  JsonArray *steps = member_array (post, "processors");

  if (g_strcmp0 (member_string (post, "type"), "TemplateProcessing") == 0)
    return post;
  for (guint i = 0; steps != NULL && i < json_array_get_length (steps); i++)
    {
      JsonNode *n = json_array_get_element (steps, i);
      JsonObject *found = JSON_NODE_HOLDS_OBJECT (n) ? find_template (json_node_get_object (n)) : NULL;
      if (found != NULL)
        return found;
    }
  return NULL;
}

/* BOS/EOS: the post-processor's single-sequence template tells what is
 * added; tokenizer_config.json beside the file has the last word. */
static void
read_specials (QbTokenizer *tok, const char *path, JsonObject *root)
{
  JsonObject *post = find_template (member_object (root, "post_processor"));
  JsonArray *single = member_array (post, "single");
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *config_path = g_build_filename (dir, "tokenizer_config.json", NULL);
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *config = NULL;
  gint32 bos = -1, eos = -1, unk;
  gboolean add_bos = FALSE, add_eos = FALSE, seen_sequence = FALSE;

  for (guint i = 0; single != NULL && i < json_array_get_length (single); i++)
    {
      JsonObject *item = json_array_get_object_element (single, i);
      JsonObject *special = member_object (item, "SpecialToken");

      if (member_object (item, "Sequence") != NULL)
        seen_sequence = TRUE;
      else if (special != NULL && !seen_sequence)
        {
          bos = token_id (tok, member_string (special, "id"));
          add_bos = bos >= 0;
        }
      else if (special != NULL)
        {
          eos = token_id (tok, member_string (special, "id"));
          add_eos = eos >= 0;
        }
    }

  if (g_file_test (config_path, G_FILE_TEST_IS_REGULAR)
      && load_json (parser, config_path, NULL)
      && JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    config = json_node_get_object (json_parser_get_root (parser));
  if (config != NULL)
    {
      gint32 b = token_id (tok, config_token (config, "bos_token"));
      gint32 e = token_id (tok, config_token (config, "eos_token"));
      if (b >= 0)
        bos = b;
      if (e >= 0)
        eos = e;
      add_bos = member_bool (config, "add_bos_token", add_bos);
      add_eos = member_bool (config, "add_eos_token", add_eos);
    }
  unk = token_id (tok, member_string (member_object (root, "model"), "unk_token"));
  qb_tokenizer_set_special (tok, bos, eos, unk, add_bos, add_eos);
}

QbTokenizer *
qb_tokenizer_new_from_hf_json (const char *path, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) local = NULL;
  g_autoptr(GPtrArray) texts = NULL;
  g_autoptr(GArray) types = NULL;
  g_autoptr(QbTokenizer) tok = NULL;
  PreTok pt = { path, NULL, FALSE, FALSE, FALSE };
  JsonObject *root, *model;
  gboolean ok;

  if (!load_json (parser, path, &local))
    {
      g_set_error (error, QB_TOKENIZER_ERROR, QB_TOKENIZER_ERROR_INVALID,
                   "%s: %s", path, local->message);
      return NULL;
    }
  root = JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))
         ? json_node_get_object (json_parser_get_root (parser)) : NULL;
  model = member_object (root, "model");
  if (g_strcmp0 (member_string (model, "type"), "BPE") != 0)
    {
      unsupported (error, path, "tokenizer model", member_string (model, "type"));
      return NULL;
    }
  if (!read_vocab (path, model, member_array (root, "added_tokens"), &texts, &types, error))
    return NULL;

  pt.patterns = g_ptr_array_new_with_free_func (g_free);
  ok = read_normalizer (&pt, member_object (root, "normalizer"), error)
       && read_pre_tokenizer (&pt, member_object (root, "pre_tokenizer"), error);
  if (ok && pt.byte_level == pt.escape_spaces)
    ok = unsupported (error, path, "tokenizer family (neither byte-level nor SentencePiece-like)",
                      member_string (member_object (root, "pre_tokenizer"), "type"));
  if (ok)
    {
      tok = qb_tokenizer_alloc (QB_TOKENIZER_BPE, (const char * const *) texts->pdata, NULL, NULL,
                                (const int *) (void *) types->data, texts->len, error);
      ok = tok != NULL;
    }
  for (guint i = 0; ok && i < pt.patterns->len; i++)
    ok = qb_tokenizer_add_pattern (tok, g_ptr_array_index (pt.patterns, i), error);
  g_ptr_array_unref (pt.patterns);
  if (!ok || !read_merges (tok, path, model, error))
    return NULL;

  tok->byte_level = pt.byte_level;
  tok->escape_spaces = pt.escape_spaces;
  tok->add_space_prefix = pt.space_prefix;
  tok->byte_fallback = member_bool (model, "byte_fallback", FALSE);
  tok->ignore_merges = member_bool (model, "ignore_merges", FALSE);
  read_specials (tok, path, root);
  return g_steal_pointer (&tok);
}

QbTokenizer *
qb_tokenizer_new_for_model (QbModel *model, GError **error)
{
  const char *path = qb_model_get_path (model);
  g_autofree char *dir = NULL, *json = NULL;

  if (qb_model_get_gguf (model) != NULL)
    return qb_tokenizer_new_from_gguf (qb_model_get_gguf (model), error);
  dir = g_file_test (path, G_FILE_TEST_IS_DIR) ? g_strdup (path) : g_path_get_dirname (path);
  json = g_build_filename (dir, "tokenizer.json", NULL);
  if (!g_file_test (json, G_FILE_TEST_IS_REGULAR))
    {
      g_set_error (error, QB_TOKENIZER_ERROR, QB_TOKENIZER_ERROR_MISSING,
                   "%s: no tokenizer.json beside the model", path);
      return NULL;
    }
  return qb_tokenizer_new_from_hf_json (json, error);
}
