import CZlib
import Foundation

/// Inflates gzip data (zlib) of at most `maxBytes` bytes once inflated; `path` names the
/// file in errors ("inflates to more than N bytes" when the limit is passed). With
/// `prefixOnly`, the first `maxBytes` bytes are the result (fewer when the data ends
/// sooner), and the rest is never inflated.
public func gunzip(_ data: Data, path: String, maxBytes: Int, prefixOnly: Bool = false) throws -> [UInt8] {
    var out: UnsafeMutablePointer<UInt8>?
    var size = 0
    var message = [CChar](repeating: 0, count: 256)
    let status = data.withUnsafeBytes { raw in
        cz_gunzip(
            raw.bindMemory(to: UInt8.self).baseAddress, raw.count, maxBytes, prefixOnly ? 1 : 0, &out, &size, &message,
            message.count)
    }
    guard status == 0, let out else {
        throw DatasetError(
            path: path,
            reason: String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
    defer { cz_free(out) }
    return Array(UnsafeBufferPointer(start: out, count: size))
}
