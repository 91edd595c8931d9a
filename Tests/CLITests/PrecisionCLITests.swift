import Foundation
import Testing
import ViTTensor
import ViTTestSupport

/// `--precision bf16`: on a CPU with AVX512-BF16, the shipped model's top-1 class and
/// probability stay those of fp32 (within 0.01; measured 0.9102 against 0.9105) and
/// `vit bench` reports the bf16 peak; on any other CPU, a one-line error and exit 1.
@Suite struct PrecisionCLITests {
    @Test func classifyAndBenchInBFloat16() throws {
        let bf16 = try runVit(["classify", "Images/ankle-boot.png", "--top-k", "1", "--precision", "bf16"])
        guard Machine.hasBFloat16Products else {
            #expect(bf16.status == 1)
            let lines = bf16.stderr.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].contains("AVX512-BF16"), "\(bf16.stderr)")
            return
        }
        #expect(bf16.status == 0, "\(bf16.stderr)")
        let fp32 = try runVit(["classify", "Images/ankle-boot.png", "--top-k", "1"])
        func topOne(_ output: String) -> (String, Double)? {
            let fields = output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ":").last?.split(
                separator: " ")
            guard let fields, let probability = fields.last.flatMap({ Double($0) }) else { return nil }
            return (fields.dropLast().joined(separator: " "), probability)
        }
        let (single, half) = (try #require(topOne(fp32.stdout)), try #require(topOne(bf16.stdout)))
        #expect(single.0 == "Ankle boot" && half.0 == single.0, "\(fp32.stdout) \(bf16.stdout)")
        #expect(abs(half.1 - single.1) < 0.01, "\(fp32.stdout) \(bf16.stdout)")

        let bench = try runVit([
            "bench", "--architecture", "vit-tiny-patch16-224", "--batch-sizes", "1", "--iterations", "1", "--warmup",
            "0", "--precision", "bf16",
        ])
        #expect(bench.status == 0, "\(bench.stderr)")
        #expect(bench.stdout.contains("bf16 peak: ") && bench.stdout.contains(", bf16"), "\(bench.stdout)")
    }
}
