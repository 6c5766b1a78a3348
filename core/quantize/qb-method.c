/* SPDX-License-Identifier: MIT */
/* qb-method.c — the method registry: "rtn", "search", "gptq", and plug-ins. */
#include "qb-method.h"
#include "qb-gptq.h"

#include <string.h>

void
qb_method_context_params (const QbMethodContext *ctx,
                          QbQuantParams         *params)
{
  memset (params, 0, sizeof *params);
  params->format = ctx->format;
  params->importance = ctx->importance;
  params->tensor_absmax = ctx->tensor_absmax;
}

/* Both built-in methods call the format's row quantizer on each row; they
 * differ only in whether the format searches its scales. */
static void
quantize_rows_with (const QbMethodContext *ctx,
                    gboolean               search,
                    const float           *w,
                    gint64                 n_rows,
                    guint8                *out)
{
  QbQuantParams params;

  qb_method_context_params (ctx, &params);
  params.search = search;
  for (gint64 r = 0; r < n_rows; r++)
    ctx->format->quantize_row (&params, w + r * ctx->n_cols,
                               out + r * ctx->row_bytes, ctx->n_cols);
}

static void
rtn_quantize_rows (const QbMethodContext *ctx, gpointer state,
                   const float *w, gint64 n_rows, guint8 *out)
{
  quantize_rows_with (ctx, FALSE, w, n_rows, out);
}

static void
search_quantize_rows (const QbMethodContext *ctx, gpointer state,
                      const float *w, gint64 n_rows, guint8 *out)
{
  quantize_rows_with (ctx, TRUE, w, n_rows, out);
}

static const QbMethod method_rtn = {
  .name = "rtn",
  .summary = "Round to nearest on the format's own scales",
  .quantize_rows = rtn_quantize_rows,
};

static const QbMethod method_search = {
  .name = "search",
  .summary = "Search each group's scale (and zero point) for the least "
             "(importance-weighted) squared error",
  .quantize_rows = search_quantize_rows,
};

/* The registry: built-ins first, then plug-ins in registration order.
 * Registration happens at start-up, but a lock keeps a late one safe. */
static GMutex registry_lock;
static GPtrArray *registry;

static GPtrArray *
get_registry (void)
{
  if (registry == NULL)
    {
      registry = g_ptr_array_new ();
      g_ptr_array_add (registry, (gpointer) &method_rtn);
      g_ptr_array_add (registry, (gpointer) &method_search);
      /* The plug-ins that ship with the engine. */
      g_ptr_array_add (registry, (gpointer) qb_gptq_method ());
    }
  return registry;
}

guint
qb_method_count (void)
{
  guint n;

  g_mutex_lock (&registry_lock);
  n = get_registry ()->len;
  g_mutex_unlock (&registry_lock);
  return n;
}

const QbMethod *
qb_method_get (guint index)
{
  const QbMethod *m = NULL;

  g_mutex_lock (&registry_lock);
  if (index < get_registry ()->len)
    m = g_ptr_array_index (get_registry (), index);
  g_mutex_unlock (&registry_lock);
  return m;
}

const QbMethod *
qb_method_find (const char *name)
{
  const QbMethod *found = NULL;
  GPtrArray *reg;

  if (name == NULL)
    return NULL;
  g_mutex_lock (&registry_lock);
  reg = get_registry ();
  for (guint i = 0; i < reg->len && found == NULL; i++)
    {
      const QbMethod *m = g_ptr_array_index (reg, i);
      if (g_ascii_strcasecmp (m->name, name) == 0)
        found = m;
    }
  g_mutex_unlock (&registry_lock);
  return found;
}

void
qb_method_register (const QbMethod *method)
{
  g_return_if_fail (method != NULL && method->name != NULL);
  g_return_if_fail (method->quantize_rows != NULL);

  if (qb_method_find (method->name) != NULL)
    {
      g_warning ("a quantization method named '%s' is already registered", method->name);
      return;
    }
  g_mutex_lock (&registry_lock);
  g_ptr_array_add (get_registry (), (gpointer) method);
  g_mutex_unlock (&registry_lock);
}
