/* The in-order delivery queue of tuplecast/support.h. */
#include "tuplecast/support.h"

void tc_order_push(tc_order_t *q, tc_order_item_t *it) {
  it->next = NULL;
  it->finished = 0;
  if (q->tail)
    q->tail->next = it;
  else
    q->head = it;
  q->tail = it;
}

void tc_order_finish(tc_order_item_t *it) { it->finished = 1; }

tc_order_item_t *tc_order_pop(tc_order_t *q) {
  tc_order_item_t *it = q->head;
  if (!it || !it->finished) return NULL;
  q->head = it->next;
  if (!q->head) q->tail = NULL;
  it->next = NULL;
  return it;
}
