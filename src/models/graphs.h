/* graphs.h — the graphs models build from the training part of a split (graphs.c), and how a
 * graph is kept in a model file.
 *
 *   split ─▶ sq_graph_user_item        ─▶ Â of the user–item bipartite graph (LightGCN)
 *         ─▶ sq_graph_item_transitions ─▶ Â of the item-transition graph (the item encoders)
 *   Â ─▶ sq_saved_graph ─▶ three blobs "<prefix>.row_ptr|col|val" in the .sqm ─▶ back at load
 *
 * Only events at positions [0, train_end[u]) of each user enter a graph: validation and test
 * events never do, so a model cannot see its evaluation targets through the graph.
 *
 * Ownership: each builder fills an sq_nn_csr freed by sq_nn_csr_free; sq_saved_graph owns its
 * matrix and the 32-bit row offsets written to the file, freed by sq_saved_graph_free. */
#ifndef SEQREC_MODELS_GRAPHS_H
#define SEQREC_MODELS_GRAPHS_H

#include "seqrec/model.h"

/* Nodes 0..n_users−1 are users, n_users + k is item k; an edge for every distinct (user, item)
 * among the training events; no self-loops (LightGCN). Errors: SQ_ERR_ARG (split of another
 * dataset), SQ_ERR_NOMEM. */
sq_status sq_graph_user_item(sq_nn_csr *A, const sq_dataset *d, const sq_split *s, sq_error *err);

/* Nodes are item-table rows 0..n_items (row k + 1 = item k, row 0 = padding: no edge, no loop):
 * an undirected edge between every two consecutive training events of a user (distinct items),
 * a self-loop on every item row (GCN). Errors: as above. */
sq_status sq_graph_item_transitions(sq_nn_csr *A, const sq_dataset *d, const sq_split *s,
                                    sq_error *err);

typedef struct {
    sq_nn_csr A;  /* the graph (owned); n_rows == 0 when none was built */
    uint32_t *rp; /* A.row_ptr as 32-bit offsets, for the file */
} sq_saved_graph;

/* Takes ownership of *A (zeroed on return) and prepares it for saving. Errors: SQ_ERR_ARG (more
 * than 2^32 − 1 edges), SQ_ERR_NOMEM (A is freed then). */
sq_status sq_saved_graph_set(sq_saved_graph *g, sq_nn_csr *A, sq_error *err);
/* The three blobs describing g under `prefix` (pointers into g). */
void sq_saved_graph_blobs(const sq_saved_graph *g, const char *prefix, sq_blob out[3]);
/* Reads the blobs under prefix back for a graph of n × n. Errors: SQ_ERR_FORMAT (missing blob,
 * wrong sizes, offsets not increasing, a column ≥ n: each named with path-less blob names),
 * SQ_ERR_NOMEM. */
sq_status sq_saved_graph_load(sq_saved_graph *g, const sq_sqm *f, const char *prefix, uint32_t n,
                              sq_error *err);
void sq_saved_graph_free(sq_saved_graph *g);

#endif
