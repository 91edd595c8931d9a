import CBLAS

// Means, covariances and the Fréchet distance between the Gaussians they describe, in
// double precision (the distance subtracts nearly equal traces).

/// The mean [D] and covariance [D, D] (divided by N - 1, as numpy.cov) of N rows of D
/// features, row-major.
public func meanAndCovariance(_ rows: Tensor) -> (mean: [Double], covariance: [Double]) {
    precondition(rows.rank == 2 && rows.shape[0] > 1, "meanAndCovariance needs [N, D] with N > 1")
    let (n, d) = (rows.shape[0], rows.shape[1])
    var mean = [Double](repeating: 0, count: d)
    for r in 0..<n {
        for j in 0..<d { mean[j] += Double(rows.data[r * d + j]) }
    }
    for j in 0..<d { mean[j] /= Double(n) }
    var centered = [Double](repeating: 0, count: n * d)
    for r in 0..<n {
        for j in 0..<d { centered[r * d + j] = Double(rows.data[r * d + j]) - mean[j] }
    }
    var covariance = [Double](repeating: 0, count: d * d)
    // centeredᵀ centered / (n - 1): [D, N] x [N, D].
    cblas_dgemm(
        CblasRowMajor, CblasTrans, CblasNoTrans, Int32(d), Int32(d), Int32(n), 1 / Double(n - 1), centered, Int32(d),
        centered, Int32(d), 0, &covariance, Int32(d))
    return (mean, covariance)
}

/// Eigenvalues (ascending) and, when asked, eigenvectors (the columns of a row-major
/// [D, D] matrix) of a symmetric D x D matrix; nil if LAPACK does not converge.
public func symmetricEigen(_ matrix: [Double], dimension d: Int, vectors: Bool) -> (
    values: [Double], vectors: [Double]
)? {
    precondition(matrix.count == d * d, "symmetricEigen: \(matrix.count) values for \(d) x \(d)")
    // A symmetric matrix is its own transpose: row-major in, column-major to LAPACK.
    var a = matrix, w = [Double](repeating: 0, count: d)
    var n = Int32(d), lda = Int32(max(d, 1)), info: Int32 = 0, lwork: Int32 = -1
    var jobz = Int8(UInt8(ascii: vectors ? "V" : "N")), uplo = Int8(UInt8(ascii: "U"))
    var query = 0.0
    dsyev_(&jobz, &uplo, &n, &a, &lda, &w, &query, &lwork, &info)
    guard info == 0 else { return nil }
    lwork = Int32(query)
    var work = [Double](repeating: 0, count: Int(lwork))
    dsyev_(&jobz, &uplo, &n, &a, &lda, &w, &work, &lwork, &info)
    guard info == 0 else { return nil }
    // Column-major eigenvectors, transposed to row-major: column k holds vector k.
    var rowMajor = [Double](repeating: 0, count: vectors ? d * d : 0)
    if vectors {
        for k in 0..<d {
            for i in 0..<d { rowMajor[i * d + k] = a[k * d + i] }
        }
    }
    return (w, rowMajor)
}

/// The Fréchet distance between the Gaussians fitted to two sets of feature rows
/// ([N1, D] and [N2, D]): |m1 - m2|^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2)
/// (Dowson and Landau 1982; the FID of Heusel et al. 2017 on a classifier's features).
/// tr((S1 S2)^1/2) is computed from symmetric eigendecompositions, so no complex square
/// root appears; negative eigenvalues from rounding count as zero.
public func frechetDistance(_ first: Tensor, _ second: Tensor) -> Double {
    precondition(first.rank == 2 && second.rank == 2 && first.shape[1] == second.shape[1], "frechetDistance: shapes")
    let d = first.shape[1]
    let (m1, s1) = meanAndCovariance(first), (m2, s2) = meanAndCovariance(second)
    var distance = 0.0
    for j in 0..<d { distance += (m1[j] - m2[j]) * (m1[j] - m2[j]) + s1[j * d + j] + s2[j * d + j] }
    guard let (values, vectors) = symmetricEigen(s1, dimension: d, vectors: true) else { return .nan }
    // R = V diag(sqrt(max(l, 0))) Vᵀ, then M = R S2 R.
    var scaled = vectors
    for i in 0..<d {
        for k in 0..<d { scaled[i * d + k] *= max(values[k], 0).squareRoot() }
    }
    var root = [Double](repeating: 0, count: d * d), product = root, middle = root
    cblas_dgemm(
        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(d), Int32(d), Int32(d), 1, scaled, Int32(d), vectors, Int32(d),
        0, &root, Int32(d))
    cblas_dgemm(
        CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(d), Int32(d), Int32(d), 1, root, Int32(d), s2, Int32(d), 0,
        &product, Int32(d))
    cblas_dgemm(
        CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(d), Int32(d), Int32(d), 1, product, Int32(d), root, Int32(d),
        0, &middle, Int32(d))
    // Symmetrize against rounding before the symmetric solver.
    for i in 0..<d {
        for j in (i + 1)..<d {
            let mean = (middle[i * d + j] + middle[j * d + i]) / 2
            middle[i * d + j] = mean
            middle[j * d + i] = mean
        }
    }
    guard let (middleValues, _) = symmetricEigen(middle, dimension: d, vectors: false) else { return .nan }
    distance -= 2 * middleValues.reduce(0) { $0 + max($1, 0).squareRoot() }
    return distance
}
