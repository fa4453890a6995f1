/** The two layouts of a product's right operand B, shared by the backends' drivers. */

/** b [N,K] with row stride ldb: the product is a·bᵀ (a linear's weight, attention keys). */
export const B_TRANS = 1;
/** b [K,N] with row stride ldb: the product is a·b (attention values). */
export const B_PLAIN = 2;
