import Foundation
import ViTTensor

/// The repository's root folder, found from this file's location.
public let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A path inside the repository.
public func repositoryPath(_ relative: String) -> String {
    repositoryRoot.appendingPathComponent(relative).path
}

/// The element-by-element comparison of two arrays: every element must satisfy
/// |actual - expected| <= atol + rtol * |expected|. The description names the worst
/// element and both of its values.
public struct Comparison: CustomStringConvertible {
    public let passed: Bool
    public let count: Int
    public let failures: Int
    public let worstIndex: Int
    public let worstActual: Float
    public let worstExpected: Float
    public let maxAbsoluteError: Float

    public var description: String {
        let verdict = passed ? "ok" : "\(failures) of \(count) elements out of tolerance"
        return
            "\(verdict); max abs error \(maxAbsoluteError) at [\(worstIndex)]: got \(worstActual), expected \(worstExpected)"
    }
}

public func compare(_ actual: [Float], _ expected: [Float], atol: Float, rtol: Float = 0) -> Comparison {
    guard actual.count == expected.count else {
        return Comparison(
            passed: false, count: expected.count, failures: expected.count, worstIndex: -1,
            worstActual: .nan, worstExpected: .nan, maxAbsoluteError: .infinity)
    }
    var failures = 0, worst = 0
    var worstExcess = -Float.infinity, maxError: Float = 0
    for i in 0..<actual.count {
        let error = abs(actual[i] - expected[i])
        let allowed = atol + rtol * abs(expected[i])
        let excess = error.isNaN ? .infinity : error - allowed
        if !(error <= allowed) { failures += 1 }
        if excess > worstExcess {
            worstExcess = excess
            worst = i
        }
        maxError = max(maxError, error.isNaN ? .infinity : error)
    }
    return Comparison(
        passed: failures == 0, count: actual.count, failures: failures, worstIndex: worst,
        worstActual: actual.isEmpty ? 0 : actual[worst],
        worstExpected: expected.isEmpty ? 0 : expected[worst], maxAbsoluteError: maxError)
}

/// Compares two tensors: shapes first, then every element.
public func compare(_ actual: Tensor, _ expected: Tensor, atol: Float, rtol: Float = 0) -> Comparison {
    guard actual.shape == expected.shape else {
        return Comparison(
            passed: false, count: expected.count, failures: expected.count, worstIndex: -1,
            worstActual: .nan, worstExpected: .nan, maxAbsoluteError: .infinity)
    }
    return compare(actual.scalars, expected.scalars, atol: atol, rtol: rtol)
}

/// The central difference (loss(x + h) - loss(x - h)) / 2h for element i of `tensor`,
/// which is perturbed in place and restored; `loss` reads the tensor.
public func centralDifference(_ tensor: Tensor, at i: Int, step h: Float, _ loss: () -> Double) -> Float {
    let saved = tensor.data[i]
    tensor.data[i] = saved + h
    let plus = loss()
    tensor.data[i] = saved - h
    let minus = loss()
    tensor.data[i] = saved
    return Float((plus - minus) / Double(2 * h))
}

/// The test process's scratch folder under the system's temporary directory, removed
/// when the process exits (the first use registers the removal).
private let scratchRoot: String = {
    let path = NSTemporaryDirectory() + "swiftvit-test-" + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: scratchRoot) }
    return path
}()

/// A fresh empty folder inside the test process's scratch folder.
public func makeTemporaryFolder() -> String {
    let path = scratchRoot + "/" + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Writes `bytes` to `folder/name` and returns the path.
public func writeFile(_ folder: String, _ name: String, _ bytes: [UInt8]) -> String {
    let path = "\(folder)/\(name)"
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    return path
}

/// PNG signature and IHDR only, with a correct CRC.
public func pngHeaderOnly(width: UInt32, height: UInt32) -> [UInt8] {
    func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    let body = Array("IHDR".utf8) + be(width) + be(height) + [8, 2, 0, 0, 0]
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in body {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + be(13) + body + be(~crc)
}

/// The text chunks of a PNG file, in order: tEXt (Latin-1) and uncompressed iTXt (UTF-8)
/// as (keyword, text).
public func pngTextChunks(_ path: String) throws -> [(String, String)] {
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    var chunks: [(String, String)] = []
    var i = 8
    while i + 12 <= bytes.count {
        let length = bytes[i..<(i + 4)].reduce(0) { $0 << 8 | Int($1) }
        let type = String(decoding: bytes[(i + 4)..<(i + 8)], as: UTF8.self)
        let body = Array(bytes[(i + 8)..<min(bytes.count, i + 8 + length)])
        if let zero = body.firstIndex(of: 0) {
            let key = String(decoding: body[..<zero], as: UTF8.self)
            if type == "tEXt" {
                chunks.append((key, String(body[(zero + 1)...].map { Character(Unicode.Scalar($0)) })))
            } else if type == "iTXt" && body.count > zero + 2 && body[zero + 1] == 0 {
                // Keyword, 0, compression flag (0), method, language tag, 0, translated keyword, 0, text.
                var rest = body[(zero + 3)...]
                for _ in 0..<2 { rest = rest[(rest.firstIndex(of: 0).map { $0 + 1 } ?? rest.endIndex)...] }
                chunks.append((key, String(decoding: rest, as: UTF8.self)))
            }
        }
        i += 12 + length
    }
    return chunks
}
