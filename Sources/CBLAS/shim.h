#include <cblas.h>

/* LAPACK's symmetric eigensolver (in OpenBLAS): eigenvalues in ascending order in w,
   eigenvectors in the columns of a (column-major) when jobz is 'V'. */
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
            double *work, const int *lwork, int *info);
