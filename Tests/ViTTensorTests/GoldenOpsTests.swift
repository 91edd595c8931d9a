import Testing
import ViTCheckpoint
import ViTTensor
import ViTTestSupport

/// Ops against PyTorch: Tests/Reference/ops.py computes each case in float64 from float32
/// inputs. Tolerances: float32 rounding of a handful of operations, so 1e-6 absolute plus
/// 1e-5 relative; products and normalizations that sum tens of terms get 1e-5 absolute.
@Suite struct GoldenOpsTests {
    let golden: SafeTensorsFile

    init() throws {
        golden = try SafeTensorsFile(path: repositoryPath("Tests/ViTTensorTests/Golden/ops.safetensors"))
    }

    func t(_ name: String) throws -> Tensor { try golden.tensor(name) }

    func check(
        _ actual: Tensor, _ name: String, atol: Float = 1e-6, rtol: Float = 1e-5,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let expected = try t(name)
        #expect(
            actual.shape == expected.shape, "\(name): shape \(actual.shape), expected \(expected.shape)",
            sourceLocation: sourceLocation)
        let result = compare(actual, expected, atol: atol, rtol: rtol)
        #expect(result.passed, "\(name): \(result)", sourceLocation: sourceLocation)
    }

    @Test func broadcastArithmetic() throws {
        try check(try t("add_broadcast.a") + t("add_broadcast.b"), "add_broadcast.out")
        try check(try t("sub_broadcast.a") - t("sub_broadcast.b"), "sub_broadcast.out")
        try check(try t("mul_broadcast.a") * t("mul_broadcast.b"), "mul_broadcast.out")
        try check(try t("div.a") / t("div.b"), "div.out")
    }

    @Test(arguments: 0..<3) func reductions(axis: Int) throws {
        let x = try t("reduce\(axis).x")
        try check(x.sum(axis: axis), "reduce\(axis).sum")
        try check(x.mean(axis: axis), "reduce\(axis).mean")
    }

    @Test(arguments: 0..<3) func softmax(axis: Int) throws {
        try check(try t("softmax\(axis).x").softmax(axis: axis), "softmax\(axis).out")
    }

    @Test func gelu() throws {
        let x = try t("gelu.x")
        try check(x.gelu(), "gelu.erf")
        try check(x.gelu(approximation: .tanh), "gelu.tanh")
    }

    @Test func layerNorm() throws {
        let x = try t("layernorm.x"), w = try t("layernorm.weight"), b = try t("layernorm.bias")
        try check(x.layerNorm(weight: w, bias: b, eps: 1e-5), "layernorm.out", atol: 1e-5)
        try check(x.layerNorm(weight: w, bias: b, eps: 1e-6), "layernorm.out_eps6", atol: 1e-5)
        try check(x.layerNorm(weight: nil, bias: nil, eps: 1e-12), "layernorm.out_plain", atol: 1e-5)
    }

    @Test func matmul() throws {
        try check(
            ViTTensor.matmul(try t("matmul_broadcast.a"), try t("matmul_broadcast.b")),
            "matmul_broadcast.out", atol: 1e-5)
        try check(
            ViTTensor.matmul(
                try t("matmul_transposed.a"), try t("matmul_transposed.b"),
                transposeA: true, transposeB: true),
            "matmul_transposed.out", atol: 1e-5)
        try check(
            ViTTensor.matmul(try t("matmul_linear.a"), try t("matmul_linear.b"), transposeB: true),
            "matmul_linear.out", atol: 1e-5)
    }

    @Test func shapeOps() throws {
        let x = try t("permute.x")
        try check(x.permuted([2, 0, 3, 1]), "permute.out", atol: 0, rtol: 0)
        try check(x.transposed(1, 3), "permute.transpose", atol: 0, rtol: 0)
        try check(x.sliced(axis: 1, 1..<3), "slice.out", atol: 0, rtol: 0)
        try check(x.sliced(axis: -1, 2..<5), "slice.last", atol: 0, rtol: 0)
        try check(Tensor.concatenate([x, try t("concat.y")], axis: 1), "concat.out", atol: 0, rtol: 0)
    }
}
