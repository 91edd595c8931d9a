import Testing
import ViTCheckpoint
import ViTTensor
import ViTTestSupport

/// The Fréchet distance against hand-computed values and against scipy's matrix square
/// root as pytorch-fid uses it (Tests/Reference/frechet_distance.py).
@Suite struct FrechetDistanceTests {
    /// One feature: the distance is (m1 - m2)^2 + (s1 - s2)^2. [0, 2] has mean 1 and
    /// variance 2; [10, 14] has mean 12 and variance 8: 121 + (sqrt 2 - sqrt 8)^2 = 123.
    @Test func oneDimensionByHand() {
        let d = frechetDistance(Tensor(shape: [2, 1], values: [0, 2]), Tensor(shape: [2, 1], values: [10, 14]))
        #expect(abs(d - 123) < 1e-9, "\(d)")
    }

    /// Uncorrelated features: the sum over features of the one-dimensional distances. The
    /// rows (1, 0), (3, 4), (1, 4), (3, 0) have means (2, 2), variances (4/3, 16/3) and
    /// covariance 0; (0, 5), (0, 7), (0, 5), (0, 7) have means (0, 6), variances (0, 4/3).
    @Test func independentFeaturesByHand() {
        let first = Tensor(shape: [4, 2], values: [1, 0, 3, 4, 1, 4, 3, 0])
        let second = Tensor(shape: [4, 2], values: [0, 5, 0, 7, 0, 5, 0, 7])
        let expected =
            (4.0 + 4 / 3.0 + 0 - 0) + (16.0 + 16 / 3.0 + 4 / 3.0 - 2 * (16 / 3.0 * 4 / 3.0).squareRoot())
        let d = frechetDistance(first, second)
        #expect(abs(d - expected) < 1e-9, "\(d), expected \(expected)")
    }

    @Test(arguments: ["correlated", "same", "scaled"]) func againstScipy(name: String) throws {
        let golden = try SafeTensorsFile(path: repositoryPath("Tests/ViTTensorTests/Golden/frechet.safetensors"))
        let expected = try #require(golden.metadata[name].flatMap(Double.init))
        let d = frechetDistance(try golden.tensor("\(name).first"), try golden.tensor("\(name).second"))
        #expect(abs(d - expected) <= 1e-6 * expected, "\(name): \(d), expected \(expected)")
    }
}
