/*
 * dtypes.c -- dtypes.def's rows as data, for the Python layer: fastbmm._dtypes
 * builds dtype_code's lookup and torch's names from them, so that Python and
 * the compiled engine read one registry.
 */
#include "fastbmm.h"
#include "elements.h"

#define FBMM_FAMILY(name, acc_t, arithmetic) enum { fbmm_arithmetic_##name = arithmetic };
#define FBMM_DTYPE(...)
#include "dtypes.def"
#undef FBMM_FAMILY
#undef FBMM_DTYPE

static const fbmm_dtype_info rows[FBMM_NUM_DTYPES] = {
#define FBMM_FAMILY(...)
#define FBMM_DTYPE(CODE, kind, family, in, out, flags, np_in, np_out, torch, torch_cpp, scalar_cpp) \
    [FBMM_##CODE] = { #CODE, #kind, #family, np_in, np_out, torch, torch_cpp, scalar_cpp,           \
                      flags, fbmm_arithmetic_##family,                                              \
                      (int64_t)sizeof(fbmm_##in##_t) * ((flags) & FBMM_COMPLEX ? 2 : 1),            \
                      (int64_t)sizeof(fbmm_##out##_t) * ((flags) & FBMM_COMPLEX ? 2 : 1) },
#include "dtypes.def"
#undef FBMM_FAMILY
#undef FBMM_DTYPE
};

const fbmm_dtype_info *fbmm_dtype_at(int code)
{
    return (code >= 0 && code < FBMM_NUM_DTYPES) ? &rows[code] : 0;
}
