import CKernels
import Dispatch
import Foundation

/// The CPU the products run on, as benchmarks report it: its name, its vector features and
/// its measured peak of fused multiply-adds.
public enum Machine {
    private static let cpuinfo: [Substring] =
        (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n") ?? []

    private static func field(_ name: String) -> String? {
        guard let line = cpuinfo.first(where: { $0.hasPrefix(name) }), let colon = line.firstIndex(of: ":") else {
            return nil
        }
        return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }

    /// The feature flags Linux lists for the CPU (only those whose state the kernel saves).
    public static let cpuFlags: Set<String> = Set((field("flags") ?? "").split(separator: " ").map(String.init))

    /// The CPU's name with its family and model numbers, e.g. "Intel(R) Xeon(R) Processor
    /// (family 6, model 207)".
    public static let cpuName: String = {
        let name = field("model name") ?? "unknown CPU"
        guard let family = field("cpu family"), let model = field("model") else { return name }
        return "\(name) (family \(family), model \(model))"
    }()

    /// Whether the CPU has AVX-512F, which CKernels' AVX-512 functions need.
    public static let hasAVX512F = cpuFlags.contains("avx512f")

    /// Whether the CPU has the bfloat16 dot products (AVX512-BF16, with AVX-512F, BW and VL)
    /// that `ProductPrecision.bfloat16` needs.
    public static let hasBFloat16Products =
        hasAVX512F && cpuFlags.isSuperset(of: ["avx512bw", "avx512vl", "avx512_bf16"])

    /// Whether the CPU has AVX2 and FMA, which CKernels' AVX2 functions need.
    public static let hasAVX2FMA = cpuFlags.isSuperset(of: ["avx2", "fma"])

    /// The widest fused multiply-add the CPU has: "avx512" (16 lanes), "avx2" (8), or nil.
    public static let fmaKind: String? = hasAVX512F ? "avx512" : hasAVX2FMA ? "avx2" : nil

    /// GFLOP/s of `threads` threads, each running chains of fused multiply-adds of `kind`
    /// ("avx512" or "avx2", the widest by default) on registers for about `seconds` (no
    /// memory traffic), the best of three runs: the ceiling for the products.
    /// Nil on a CPU without FMA.
    public static func fmaPeak(threads: Int, seconds: Double = 0.25, kind: String? = fmaKind) -> Double? {
        guard let kind, kind == fmaKind || (kind == "avx2" && hasAVX2FMA) else { return nil }
        return peak(threads: threads, seconds: seconds, flopsPerStep: kind == "avx512" ? 768 : 224) {
            kind == "avx512" ? ck_avx512_fma_loop($0, 1) : ck_avx2_fma_loop($0, 1)
        }
    }

    /// GFLOP/s of `threads` threads running chains of bfloat16 dot products (VDPBF16PS, two
    /// multiply-adds per lane) on registers, as `fmaPeak`: the ceiling for bfloat16
    /// products. Nil on a CPU without them.
    public static func bfloat16Peak(threads: Int, seconds: Double = 0.25) -> Double? {
        guard hasBFloat16Products else { return nil }
        return peak(threads: threads, seconds: seconds, flopsPerStep: 1536) { ck_bf16_dot_loop($0, 1) }
    }

    /// The best of three timed runs of `loop` on `threads` threads at once, in GFLOP/s,
    /// after calibrating its steps to about `seconds` on one thread.
    private static func peak(
        threads: Int, seconds: Double, flopsPerStep: Double, _ loop: @escaping @Sendable (Int) -> Float
    ) -> Double {
        // Calibrate on one thread, then run all threads at once.
        var steps = 100_000
        while true {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = loop(steps)
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if elapsed > seconds / 10 {
                steps = Int(Double(steps) * seconds / elapsed)
                break
            }
            steps *= 4
        }
        // The best of three runs: a peak is what the machine can do when nothing else runs.
        let calibrated = steps
        return (0..<3).map { _ in
            let start = DispatchTime.now().uptimeNanoseconds
            DispatchQueue.concurrentPerform(iterations: threads) { _ in _ = loop(calibrated) }
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            return Double(threads) * Double(calibrated) * flopsPerStep / elapsed / 1e9
        }.max()!
    }
}
