/* SPDX-License-Identifier: MIT */
/* qb-tokenizer-private.h — the tokenizer's insides, shared by the kinds. */
#pragma once

#include "qb-tokenizer.h"

G_BEGIN_DECLS

/* An open-addressing hash of byte strings to ids.  Keys point into storage
 * owned elsewhere (the tokenizer's string chunk). */
typedef struct {
  const char **keys;
  guint32     *lens;
  gint32      *values;
  guint32      mask;      /* capacity - 1; capacity is a power of two */
  guint32      n;
} QbTextIndex;

void     qb_text_index_init    (QbTextIndex *ix, guint32 expected);
void     qb_text_index_clear   (QbTextIndex *ix);
/* Sets key -> value, replacing the value of an equal key. */
void     qb_text_index_insert  (QbTextIndex *ix, const char *key, guint32 len, gint32 value);
/* -1 when absent. */
gint32   qb_text_index_lookup  (const QbTextIndex *ix, const char *key, guint32 len);

typedef struct {
  const char  *text;      /* in the tokenizer's string chunk, NUL-terminated */
  guint32      len;
  float        score;
  QbTokenType  type;
} QbTokenEntry;

struct _QbTokenizer {
  gatomicrefcount  ref;
  QbTokenizerKind  kind;
  GStringChunk    *strings;
  QbTokenEntry    *tokens;
  guint            n_tokens;
  QbTextIndex      index;          /* text -> id; the last of equal texts wins, as in llama.cpp */

  gint32           bos, eos, unk;
  gboolean         add_bos, add_eos;
  gint32          *specials;       /* control/user-defined/unknown ids, longest text first */
  guint            n_specials;

  /* SPM, and the escaped-space flavour of BPE */
  gboolean         escape_spaces;  /* ' ' -> "▁" */
  gboolean         add_space_prefix;
  gint32           byte_tokens[256];   /* <0xNN> ids (or the byte's own token), -1 */

  /* BPE */
  QbTextIndex      merges;         /* key: 4-byte left length, left, right -> rank */
  GStringChunk    *merge_keys;
  GPtrArray       *regexes;        /* GRegex, applied in turn; empty: no split */
  gboolean         byte_level;     /* words go through GPT-2's byte-to-character map */
  gboolean         byte_fallback;  /* unknown symbols become <0xNN> tokens (else dropped) */
  gboolean         ignore_merges;  /* a word that is a token is taken whole */
};

/* Allocates a tokenizer with the vocabulary in place (index, specials,
 * byte tokens); the caller sets the kind-specific parts. */
QbTokenizer *qb_tokenizer_alloc        (QbTokenizerKind     kind,
                                        const char * const *tokens,
                                        const guint32      *lens,      /* NULL: NUL-terminated */
                                        const float        *scores,
                                        const int          *types,
                                        guint               n_tokens,
                                        GError            **error);
/* Adds "left right" merges (split at the first space after the first byte,
 * as llama.cpp does); FALSE with an error naming the bad entry. */
gboolean     qb_tokenizer_add_merges   (QbTokenizer        *tok,
                                        const char * const *merges,
                                        guint               n_merges,
                                        GError            **error);
gboolean     qb_tokenizer_add_merge    (QbTokenizer        *tok,
                                        const char         *left,
                                        gsize               left_len,
                                        const char         *right,
                                        gsize               right_len,
                                        gint32              rank);
/* Compiles and appends a pre-tokenizer pattern. */
gboolean     qb_tokenizer_add_pattern  (QbTokenizer        *tok,
                                        const char         *pattern,
                                        GError            **error);

/* Bytes of the UTF-8 character that starts with this byte, as llama.cpp
 * counts them (a stray continuation byte counts as one). */
static inline guint
qb_utf8_len (guint8 c)
{
  static const guint8 lens[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
  return lens[c >> 4];
}

/* The algorithms append ids to out for one piece of raw text. */
gboolean     qb_spm_encode             (QbTokenizer        *tok,
                                        const char         *text,
                                        gsize               len,
                                        GArray             *out,
                                        GCancellable       *cancellable,
                                        GError            **error);
gboolean     qb_bpe_encode             (QbTokenizer        *tok,
                                        const char         *text,
                                        gsize               len,
                                        GArray             *out,
                                        GCancellable       *cancellable,
                                        GError            **error);

/* GPT-2's byte-level map: the byte a character stands for (-1 when it
 * stands for no byte). */
int          qb_bpe_char_byte          (gunichar            c);

G_END_DECLS
