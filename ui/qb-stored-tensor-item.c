/* SPDX-License-Identifier: MIT */
/* qb-stored-tensor-item.c — a stored tensor or expert as a table row. */
#include "qb-stored-tensor-item.h"

struct _QbStoredTensorItem
{
  GObject             parent_instance;

  QbStoredTensor     *tensor;    /* the tensor's item only */
  QbStoredTensorItem *parent;    /* an expert's item only */
  int                 expert;
  char               *name;
  gboolean            loaded;    /* the tensor's histograms were read (there may be none) */
};

G_DEFINE_FINAL_TYPE (QbStoredTensorItem, qb_stored_tensor_item, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_NAME,
  N_PROPS
};

static GParamSpec *props[N_PROPS];

static void
qb_stored_tensor_item_finalize (GObject *object)
{
  QbStoredTensorItem *self = QB_STORED_TENSOR_ITEM (object);

  g_clear_pointer (&self->tensor, qb_stored_tensor_free);
  g_clear_object (&self->parent);
  g_free (self->name);
  G_OBJECT_CLASS (qb_stored_tensor_item_parent_class)->finalize (object);
}

static void
qb_stored_tensor_item_get_property (GObject    *object,
                                    guint       prop_id,
                                    GValue     *value,
                                    GParamSpec *pspec)
{
  QbStoredTensorItem *self = QB_STORED_TENSOR_ITEM (object);

  switch (prop_id)
    {
    case PROP_NAME:
      g_value_set_string (value, self->name);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qb_stored_tensor_item_class_init (QbStoredTensorItemClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = qb_stored_tensor_item_finalize;
  object_class->get_property = qb_stored_tensor_item_get_property;
  props[PROP_NAME] = g_param_spec_string ("name", NULL, NULL, NULL,
                                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
qb_stored_tensor_item_init (QbStoredTensorItem *self)
{
  self->expert = -1;
}

QbStoredTensorItem *
qb_stored_tensor_item_new (QbStoredTensor *tensor)
{
  QbStoredTensorItem *self = g_object_new (QB_TYPE_STORED_TENSOR_ITEM, NULL);

  self->tensor = tensor;
  self->name = g_strdup (tensor->result->tensor_name ? tensor->result->tensor_name : "?");
  return self;
}

QbStoredTensorItem *
qb_stored_tensor_item_new_expert (QbStoredTensorItem *parent,
                                  guint               expert)
{
  QbStoredTensorItem *self;

  g_return_val_if_fail (parent->parent == NULL, NULL);
  self = g_object_new (QB_TYPE_STORED_TENSOR_ITEM, NULL);
  self->parent = g_object_ref (parent);
  self->expert = (int) expert;
  self->name = g_strdup_printf ("expert %u", expert);
  return self;
}

/* The item holding the result: its own, or its tensor's. */
static QbStoredTensorItem *
owner (QbStoredTensorItem *self)
{
  return self->parent ? self->parent : self;
}

QbStoredTensorItem *
qb_stored_tensor_item_get_parent (QbStoredTensorItem *self)
{
  return self->parent;
}

int
qb_stored_tensor_item_get_expert (QbStoredTensorItem *self)
{
  return self->expert;
}

const char *
qb_stored_tensor_item_get_name (QbStoredTensorItem *self)
{
  return self->name;
}

const char *
qb_stored_tensor_item_get_tensor_name (QbStoredTensorItem *self)
{
  return owner (self)->name;
}

const QbStoredTensor *
qb_stored_tensor_item_get_stored (QbStoredTensorItem *self)
{
  return owner (self)->tensor;
}

guint
qb_stored_tensor_item_get_n_experts (QbStoredTensorItem *self)
{
  const QbTensorResult *r = owner (self)->tensor->result;

  return r->expert_metrics != NULL ? r->n_experts : 0;
}

const QbTensorMetrics *
qb_stored_tensor_item_get_metrics (QbStoredTensorItem *self)
{
  const QbTensorResult *r = owner (self)->tensor->result;

  if (self->expert < 0)
    return &r->metrics;
  return &r->expert_metrics[self->expert];
}

const QbHistogram *
qb_stored_tensor_item_get_histogram (QbStoredTensorItem *self,
                                     guint               k)
{
  const QbTensorResult *r = owner (self)->tensor->result;
  const QbHistogram *whole[3] = { r->hist_original, r->hist_quantized, r->hist_error };

  g_return_val_if_fail (k < 3, NULL);
  if (self->expert < 0)
    return whole[k];
  return qb_tensor_result_expert_histogram (r, (guint) self->expert, k);
}

gboolean
qb_stored_tensor_item_has_data (QbStoredTensorItem *self)
{
  return owner (self)->loaded;
}

void
qb_stored_tensor_item_set_stored (QbStoredTensorItem *self,
                                  QbStoredTensor     *tensor)
{
  if (self->parent != NULL || tensor->result->n_experts != self->tensor->result->n_experts)
    {
      g_critical ("qb_stored_tensor_item_set_stored: not this tensor's item");
      qb_stored_tensor_free (tensor);
      return;
    }
  qb_stored_tensor_free (self->tensor);
  self->tensor = tensor;
  self->loaded = TRUE;
}

GListModel *
qb_stored_tensor_item_get_experts (QbStoredTensorItem *self)
{
  guint n = qb_stored_tensor_item_get_n_experts (self);
  GListStore *experts;

  if (self->parent != NULL || n == 0)
    return NULL;
  experts = g_list_store_new (QB_TYPE_STORED_TENSOR_ITEM);
  for (guint e = 0; e < n; e++)
    {
      g_autoptr(QbStoredTensorItem) item = qb_stored_tensor_item_new_expert (self, e);
      g_list_store_append (experts, item);
    }
  return G_LIST_MODEL (experts);
}
