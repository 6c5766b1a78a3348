/* SPDX-License-Identifier: MIT */
/* qb-tensor-row.c — one tensor of the open model, for the layer table. */
#include "qb-tensor-row.h"

#include <math.h>

struct _QbTensorRow
{
  GObject           parent_instance;

  /* Facts from the model. */
  guint             index;
  char             *name;
  int               layer;
  QbTensorRole      role;
  char             *shape;
  QbDType           dtype;
  gint64            n_params;
  gint64            row_length;
  guint64           original_bytes;

  /* The plan's choice. */
  char             *requested;
  char             *format;
  char             *format_label;
  char             *source;
  char             *fallback;
  gboolean          overridden;
  double            bpw;
  guint64           bytes;

  /* The last run. */
  QbTensorResult   *result;
  QbTensorRowState  state;
  double            progress;

  gboolean          highlighted;
  QbTensorResult   *stats;

  /* A 3-D expert tensor's experts (n_experts > 1); an expert's row has its
   * tensor's row as parent and follows it: one format for all experts. */
  guint             n_experts;
  QbTensorRow      *parent;
  int               expert;
};

G_DEFINE_FINAL_TYPE (QbTensorRow, qb_tensor_row, G_TYPE_OBJECT)

/* The plan, the run and the rule highlight are the tensor's: an expert's
 * row reads them from its parent. */
static QbTensorRow *
src (QbTensorRow *self)
{
  return self->parent ? self->parent : self;
}

enum {
  PROP_0,
  PROP_INDEX,
  PROP_NAME,
  PROP_LAYER,
  PROP_ROLE,
  PROP_SHAPE,
  PROP_DTYPE,
  PROP_N_PARAMS,
  PROP_ORIGINAL_BYTES,
  PROP_REQUESTED,
  PROP_FORMAT,
  PROP_FORMAT_LABEL,
  PROP_SOURCE,
  PROP_OVERRIDDEN,
  PROP_BPW,
  PROP_BYTES,
  PROP_HAS_RESULT,
  PROP_SQNR,
  PROP_RMSE_REL,
  PROP_COSINE,
  PROP_STALE,
  PROP_STATE,
  PROP_PROGRESS,
  PROP_HIGHLIGHTED,
  PROP_HAS_STATS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
qb_tensor_row_finalize (GObject *object)
{
  QbTensorRow *self = QB_TENSOR_ROW (object);

  g_free (self->name);
  g_free (self->shape);
  g_free (self->requested);
  g_free (self->format);
  g_free (self->format_label);
  g_free (self->source);
  g_free (self->fallback);
  g_clear_pointer (&self->result, qb_tensor_result_free);
  g_clear_pointer (&self->stats, qb_tensor_result_free);
  g_clear_object (&self->parent);
  G_OBJECT_CLASS (qb_tensor_row_parent_class)->finalize (object);
}

static void
qb_tensor_row_get_property (GObject    *object,
                            guint       prop_id,
                            GValue     *value,
                            GParamSpec *pspec)
{
  QbTensorRow *self = QB_TENSOR_ROW (object);

  switch (prop_id)
    {
    case PROP_INDEX:          g_value_set_uint (value, self->index); break;
    case PROP_NAME:           g_value_set_string (value, self->name); break;
    case PROP_LAYER:          g_value_set_int (value, self->layer); break;
    case PROP_ROLE:           g_value_set_string (value, qb_tensor_row_get_role_name (self)); break;
    case PROP_SHAPE:          g_value_set_string (value, self->shape); break;
    case PROP_DTYPE:          g_value_set_string (value, qb_tensor_row_get_dtype (self)); break;
    case PROP_N_PARAMS:       g_value_set_int64 (value, self->n_params); break;
    case PROP_ORIGINAL_BYTES: g_value_set_uint64 (value, self->original_bytes); break;
    case PROP_REQUESTED:      g_value_set_string (value, qb_tensor_row_get_requested (self)); break;
    case PROP_FORMAT:         g_value_set_string (value, qb_tensor_row_get_format (self)); break;
    case PROP_FORMAT_LABEL:   g_value_set_string (value, qb_tensor_row_get_format_label (self)); break;
    case PROP_SOURCE:         g_value_set_string (value, qb_tensor_row_get_source (self)); break;
    case PROP_OVERRIDDEN:     g_value_set_boolean (value, qb_tensor_row_get_overridden (self)); break;
    case PROP_BPW:            g_value_set_double (value, qb_tensor_row_get_bpw (self)); break;
    case PROP_BYTES:          g_value_set_uint64 (value, qb_tensor_row_get_bytes (self)); break;
    case PROP_HAS_RESULT:     g_value_set_boolean (value, qb_tensor_row_get_result (self) != NULL); break;
    case PROP_SQNR:           g_value_set_double (value, qb_tensor_row_get_sqnr (self)); break;
    case PROP_RMSE_REL:       g_value_set_double (value, qb_tensor_row_get_rmse_rel (self)); break;
    case PROP_COSINE:         g_value_set_double (value, qb_tensor_row_get_cosine (self)); break;
    case PROP_STALE:          g_value_set_boolean (value, qb_tensor_row_get_stale (self)); break;
    case PROP_STATE:          g_value_set_int (value, qb_tensor_row_get_state (self)); break;
    case PROP_PROGRESS:       g_value_set_double (value, qb_tensor_row_get_progress (self)); break;
    case PROP_HIGHLIGHTED:    g_value_set_boolean (value, qb_tensor_row_get_highlighted (self)); break;
    case PROP_HAS_STATS:      g_value_set_boolean (value, src (self)->stats != NULL); break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qb_tensor_row_class_init (QbTensorRowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags flags = G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->finalize = qb_tensor_row_finalize;
  object_class->get_property = qb_tensor_row_get_property;

  properties[PROP_INDEX] = g_param_spec_uint ("index", NULL, NULL, 0, G_MAXUINT, 0, flags);
  properties[PROP_NAME] = g_param_spec_string ("name", NULL, NULL, NULL, flags);
  properties[PROP_LAYER] = g_param_spec_int ("layer", NULL, NULL, -1, G_MAXINT, -1, flags);
  properties[PROP_ROLE] = g_param_spec_string ("role", NULL, NULL, NULL, flags);
  properties[PROP_SHAPE] = g_param_spec_string ("shape", NULL, NULL, NULL, flags);
  properties[PROP_DTYPE] = g_param_spec_string ("dtype", NULL, NULL, NULL, flags);
  properties[PROP_N_PARAMS] = g_param_spec_int64 ("n-params", NULL, NULL, 0, G_MAXINT64, 0, flags);
  properties[PROP_ORIGINAL_BYTES] = g_param_spec_uint64 ("original-bytes", NULL, NULL, 0, G_MAXUINT64, 0, flags);
  properties[PROP_REQUESTED] = g_param_spec_string ("requested", NULL, NULL, NULL, flags);
  properties[PROP_FORMAT] = g_param_spec_string ("format", NULL, NULL, NULL, flags);
  properties[PROP_FORMAT_LABEL] = g_param_spec_string ("format-label", NULL, NULL, NULL, flags);
  properties[PROP_SOURCE] = g_param_spec_string ("source", NULL, NULL, NULL, flags);
  properties[PROP_OVERRIDDEN] = g_param_spec_boolean ("overridden", NULL, NULL, FALSE, flags);
  properties[PROP_BPW] = g_param_spec_double ("bpw", NULL, NULL, 0, G_MAXDOUBLE, 0, flags);
  properties[PROP_BYTES] = g_param_spec_uint64 ("bytes", NULL, NULL, 0, G_MAXUINT64, 0, flags);
  properties[PROP_HAS_RESULT] = g_param_spec_boolean ("has-result", NULL, NULL, FALSE, flags);
  properties[PROP_SQNR] = g_param_spec_double ("sqnr", NULL, NULL, -G_MAXDOUBLE, G_MAXDOUBLE, 0, flags);
  properties[PROP_RMSE_REL] = g_param_spec_double ("rmse-rel", NULL, NULL, -G_MAXDOUBLE, G_MAXDOUBLE, 0, flags);
  properties[PROP_COSINE] = g_param_spec_double ("cosine", NULL, NULL, -G_MAXDOUBLE, G_MAXDOUBLE, 0, flags);
  properties[PROP_STALE] = g_param_spec_boolean ("stale", NULL, NULL, FALSE, flags);
  properties[PROP_STATE] = g_param_spec_int ("state", NULL, NULL, QB_TENSOR_ROW_IDLE,
                                             QB_TENSOR_ROW_DONE, QB_TENSOR_ROW_IDLE, flags);
  properties[PROP_PROGRESS] = g_param_spec_double ("progress", NULL, NULL, 0, 1, 0, flags);
  properties[PROP_HIGHLIGHTED] = g_param_spec_boolean ("highlighted", NULL, NULL, FALSE, flags);
  properties[PROP_HAS_STATS] = g_param_spec_boolean ("has-stats", NULL, NULL, FALSE, flags);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
qb_tensor_row_init (QbTensorRow *self)
{
  self->layer = -1;
  self->expert = -1;
}

static char *
format_shape (const QbTensor *t)
{
  GString *s = g_string_new (NULL);

  for (guint d = 0; d < MAX (t->n_dims, 1); d++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, d ? " × " : "", t->ne[d]);
  return g_string_free (s, FALSE);
}

QbTensorRow *
qb_tensor_row_new (guint           index,
                   const QbTensor *tensor)
{
  QbTensorRow *self = g_object_new (QB_TYPE_TENSOR_ROW, NULL);

  self->index = index;
  self->name = g_strdup (tensor->name);
  self->layer = tensor->layer;
  self->role = tensor->role;
  self->shape = format_shape (tensor);
  self->dtype = tensor->dtype;
  self->n_params = tensor->n_params;
  self->row_length = tensor->ne[0];
  self->original_bytes = tensor->n_bytes;
  self->requested = g_strdup (QB_FORMAT_KEEP);
  self->format = g_strdup (QB_FORMAT_KEEP);
  self->format_label = g_strdup (qb_dtype_name (tensor->dtype));
  self->bpw = tensor->n_params > 0 ? tensor->n_bytes * 8.0 / tensor->n_params : 0;
  self->bytes = tensor->n_bytes;
  self->n_experts = qb_tensor_n_experts (tensor) > 1 ? (guint) qb_tensor_n_experts (tensor) : 0;
  return self;
}

/* The parent's changes are the expert row's changes. */
static void
on_parent_notify (QbTensorRow *parent,
                  GParamSpec  *pspec,
                  QbTensorRow *self)
{
  g_object_notify_by_pspec (G_OBJECT (self), pspec);
}

QbTensorRow *
qb_tensor_row_new_expert (QbTensorRow *parent,
                          guint        expert)
{
  QbTensorRow *self;

  g_return_val_if_fail (QB_IS_TENSOR_ROW (parent) && parent->parent == NULL, NULL);
  g_return_val_if_fail (expert < parent->n_experts, NULL);
  self = g_object_new (QB_TYPE_TENSOR_ROW, NULL);
  self->parent = g_object_ref (parent);
  self->expert = (int) expert;
  self->index = parent->index;
  self->name = g_strdup (parent->name);
  self->layer = parent->layer;
  self->role = parent->role;
  self->dtype = parent->dtype;
  self->row_length = parent->row_length;
  self->n_params = parent->n_params / parent->n_experts;
  self->original_bytes = parent->original_bytes / parent->n_experts;
  self->shape = g_strdup_printf ("%" G_GINT64_FORMAT " × %" G_GINT64_FORMAT, parent->row_length,
                                 parent->row_length > 0 ? self->n_params / parent->row_length : 0);
  g_signal_connect_object (parent, "notify", G_CALLBACK (on_parent_notify), self, 0);
  return self;
}

QbTensorRow *qb_tensor_row_get_parent    (QbTensorRow *self) { return self->parent; }
int          qb_tensor_row_get_expert    (QbTensorRow *self) { return self->expert; }
guint        qb_tensor_row_get_n_experts (QbTensorRow *self) { return src (self)->n_experts; }

guint        qb_tensor_row_get_index          (QbTensorRow *self) { return self->index; }
const char  *qb_tensor_row_get_name           (QbTensorRow *self) { return self->name; }
int          qb_tensor_row_get_layer          (QbTensorRow *self) { return self->layer; }
QbTensorRole qb_tensor_row_get_role           (QbTensorRow *self) { return self->role; }
const char  *qb_tensor_row_get_shape          (QbTensorRow *self) { return self->shape; }
gint64       qb_tensor_row_get_n_params       (QbTensorRow *self) { return self->n_params; }
gint64       qb_tensor_row_get_row_length     (QbTensorRow *self) { return self->row_length; }
guint64      qb_tensor_row_get_original_bytes (QbTensorRow *self) { return self->original_bytes; }
const char  *qb_tensor_row_get_requested      (QbTensorRow *self) { return src (self)->requested; }
const char  *qb_tensor_row_get_format         (QbTensorRow *self) { return src (self)->format; }
const char  *qb_tensor_row_get_format_label   (QbTensorRow *self) { return src (self)->format_label; }
const char  *qb_tensor_row_get_source         (QbTensorRow *self) { return src (self)->source; }
const char  *qb_tensor_row_get_fallback       (QbTensorRow *self) { return src (self)->fallback; }
gboolean     qb_tensor_row_get_overridden     (QbTensorRow *self) { return src (self)->overridden; }
double       qb_tensor_row_get_bpw            (QbTensorRow *self) { return src (self)->bpw; }
guint64      qb_tensor_row_get_bytes          (QbTensorRow *self)
{
  return self->parent ? self->parent->bytes / self->parent->n_experts : self->bytes;
}
const QbTensorResult *qb_tensor_row_get_result (QbTensorRow *self) { return src (self)->result; }
QbTensorRowState qb_tensor_row_get_state      (QbTensorRow *self) { return src (self)->state; }
double       qb_tensor_row_get_progress       (QbTensorRow *self) { return src (self)->progress; }
gboolean     qb_tensor_row_get_highlighted    (QbTensorRow *self) { return src (self)->highlighted; }
const QbTensorResult *qb_tensor_row_get_stats (QbTensorRow *self) { return src (self)->stats; }

const char *
qb_tensor_row_get_role_name (QbTensorRow *self)
{
  return qb_tensor_role_name (self->role);
}

const char *
qb_tensor_row_get_dtype (QbTensorRow *self)
{
  return qb_dtype_name (self->dtype);
}

/* Sets a string field and notifies when it changed. */
static void
set_string (QbTensorRow  *self,
            char        **field,
            const char   *value,
            guint         prop)
{
  if (g_strcmp0 (*field, value) == 0)
    return;
  g_free (*field);
  *field = g_strdup (value);
  if (prop)
    g_object_notify_by_pspec (G_OBJECT (self), properties[prop]);
}

void
qb_tensor_row_set_choice (QbTensorRow          *self,
                          const QbTensorChoice *choice,
                          gboolean              overridden)
{
  const char *format = choice->format ? choice->format->name : QB_FORMAT_KEEP;
  const char *requested = choice->requested ? choice->requested->name : QB_FORMAT_KEEP;
  g_autofree char *label = NULL;
  gboolean was_stale = qb_tensor_row_get_stale (self);

  g_return_if_fail (QB_IS_TENSOR_ROW (self));

  if (choice->format == NULL)
    label = g_strdup_printf ("%s (kept)", qb_dtype_name (self->dtype));
  else if (choice->requested && choice->requested != choice->format)
    label = g_strdup_printf ("%s ← %s", choice->format->name, choice->requested->name);
  else
    label = g_strdup (format);

  g_object_freeze_notify (G_OBJECT (self));
  set_string (self, &self->requested, requested, PROP_REQUESTED);
  set_string (self, &self->format, format, PROP_FORMAT);
  set_string (self, &self->format_label, label, PROP_FORMAT_LABEL);
  set_string (self, &self->source, choice->source, PROP_SOURCE);
  set_string (self, &self->fallback, choice->fallback_reason, 0);
  if (self->overridden != !!overridden)
    {
      self->overridden = !!overridden;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_OVERRIDDEN]);
    }
  if (self->bpw != choice->bpw)
    {
      self->bpw = choice->bpw;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BPW]);
    }
  if (self->bytes != choice->bytes)
    {
      self->bytes = choice->bytes;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BYTES]);
    }
  if (was_stale != qb_tensor_row_get_stale (self))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STALE]);
  g_object_thaw_notify (G_OBJECT (self));
}

void
qb_tensor_row_set_result (QbTensorRow    *self,
                          QbTensorResult *result)
{
  g_return_if_fail (QB_IS_TENSOR_ROW (self));

  if (self->result == NULL && result == NULL)
    return;
  g_clear_pointer (&self->result, qb_tensor_result_free);
  self->result = result;
  g_object_freeze_notify (G_OBJECT (self));
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_HAS_RESULT]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SQNR]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RMSE_REL]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_COSINE]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STALE]);
  g_object_thaw_notify (G_OBJECT (self));
}

/* The row's own metrics: its tensor's, or an expert's from its tensor's
 * result; NULL where the result has none for it. */
static const QbTensorMetrics *
row_metrics (QbTensorRow *self)
{
  const QbTensorResult *r = src (self)->result;

  if (r == NULL)
    return NULL;
  if (self->parent == NULL)
    return &r->metrics;
  if (r->expert_metrics == NULL || (guint) self->expert >= r->n_experts)
    return NULL;
  return &r->expert_metrics[self->expert];
}

double
qb_tensor_row_get_sqnr (QbTensorRow *self)
{
  const QbTensorMetrics *m = row_metrics (self);

  return m ? m->sqnr_db : NAN;
}

gint64
qb_tensor_row_get_n_nonfinite (QbTensorRow *self)
{
  const QbTensorResult *r = src (self)->result;

  return r ? MAX (r->n_nonfinite, 0) : 0;
}

double
qb_tensor_row_get_rmse_rel (QbTensorRow *self)
{
  const QbTensorMetrics *m = row_metrics (self);

  return m ? m->rmse_rel : NAN;
}

double
qb_tensor_row_get_cosine (QbTensorRow *self)
{
  const QbTensorMetrics *m = row_metrics (self);

  return m ? m->cosine : NAN;
}

double
qb_tensor_row_get_out_rel_err (QbTensorRow *self)
{
  const QbTensorMetrics *m = row_metrics (self);

  return m ? m->out_rel_err : NAN;
}

gboolean
qb_tensor_row_get_stale (QbTensorRow *self)
{
  self = src (self);
  if (self->result == NULL)
    return FALSE;
  /* Both sides are after any fallback, so a fallback is not a change. */
  if (g_strcmp0 (self->format, QB_FORMAT_KEEP) == 0)
    return g_strcmp0 (self->result->method, "keep") != 0;
  return self->result->format == NULL || g_ascii_strcasecmp (self->result->format, self->format) != 0;
}

void
qb_tensor_row_set_state (QbTensorRow      *self,
                         QbTensorRowState  state)
{
  g_return_if_fail (QB_IS_TENSOR_ROW (self));

  if (self->state == state)
    return;
  self->state = state;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
}

void
qb_tensor_row_set_progress (QbTensorRow *self,
                            double       fraction)
{
  g_return_if_fail (QB_IS_TENSOR_ROW (self));

  fraction = CLAMP (fraction, 0, 1);
  if (self->progress == fraction)
    return;
  self->progress = fraction;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PROGRESS]);
}

void
qb_tensor_row_set_highlighted (QbTensorRow *self,
                               gboolean     highlighted)
{
  g_return_if_fail (QB_IS_TENSOR_ROW (self));

  if (self->highlighted == !!highlighted)
    return;
  self->highlighted = !!highlighted;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_HIGHLIGHTED]);
}

void
qb_tensor_row_set_stats (QbTensorRow    *self,
                         QbTensorResult *stats)
{
  g_return_if_fail (QB_IS_TENSOR_ROW (self));

  /* An expert's row shows its tensor's until a run measures it. */
  self = src (self);
  g_clear_pointer (&self->stats, qb_tensor_result_free);
  self->stats = stats;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_HAS_STATS]);
}
