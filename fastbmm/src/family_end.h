/* family_end.h -- closes the family family_begin.h opened: #undefs its
 * parameters and everything derived from them. */
#undef FBMM_NAME
#undef MR
#undef KC
#undef MC
#undef NC
#undef VL
#undef NR
#undef VEC_T
#undef SMALL_NVMAX
#undef SMALL_ROWS
#undef SMALL_BLOCK
#undef ACC
#undef ACC_T
#undef ACC_BYTES
#undef ACC_IS_INT
