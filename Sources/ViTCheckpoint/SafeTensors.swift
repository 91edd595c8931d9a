import Foundation
import ViTTensor

/// A problem with a checkpoint file; the description is one line naming the file.
public struct CheckpointError: ReportableError {
    public let path: String
    public let reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(path): \(reason)" }
}

/// Element types a safetensors file may hold that SwiftViT reads as Float32. I64 appears
/// as index buffers in BERT checkpoints (position_ids); its values convert exactly up to 2^24.
public enum TensorDType: String, Sendable {
    case float32 = "F32"
    case float16 = "F16"
    case bfloat16 = "BF16"
    case int64 = "I64"

    public var byteCount: Int {
        switch self {
        case .float32: 4
        case .float16, .bfloat16: 2
        case .int64: 8
        }
    }
}

/// A read-only, private memory map of a whole file; unmapped when released.
final class MemoryMap {
    let base: UnsafeMutableRawPointer
    let size: Int

    init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw CheckpointError(path: path, reason: "cannot open (\(String(cString: strerror(errno))))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw CheckpointError(path: path, reason: "not a regular file")
        }
        size = Int(info.st_size)
        guard size > 0 else {
            throw CheckpointError(path: path, reason: "empty file, not a safetensors checkpoint")
        }
        // Private and writable: pages are copied on write, so the file itself never changes.
        let mapped = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0)
        guard let mapped, mapped != MAP_FAILED else {
            throw CheckpointError(path: path, reason: "cannot map (\(String(cString: strerror(errno))))")
        }
        base = mapped
    }

    deinit { munmap(base, size) }
}

/// A safetensors file (https://github.com/huggingface/safetensors, format section):
/// 8 bytes little-endian header length N, N bytes of JSON, then the tensor bytes.
///
/// The file is memory-mapped and fully validated when opened: header length, JSON, dtype,
/// shape x dtype size = byte range, ranges inside the data area and not overlapping.
public final class SafeTensorsFile {
    /// Where a tensor lives in the file.
    public struct Entry: Sendable {
        public let dtype: TensorDType
        public let shape: [Int]
        /// Byte range relative to the start of the data area.
        public let range: Range<Int>
    }

    public let path: String
    /// String metadata (`__metadata__`).
    public let metadata: [String: String]
    public let entries: [String: Entry]
    private let map: MemoryMap
    private let dataStart: Int

    /// Tensor names, sorted.
    public var names: [String] { entries.keys.sorted() }

    public init(path: String) throws {
        func fail(_ reason: String) -> CheckpointError { CheckpointError(path: path, reason: reason) }
        let map = try MemoryMap(path: path)
        self.map = map
        self.path = path
        guard map.size >= 8 else { throw fail("file is \(map.size) bytes, too short for a safetensors header") }
        var headerLength: UInt64 = 0
        withUnsafeMutableBytes(of: &headerLength) {
            $0.copyMemory(from: UnsafeRawBufferPointer(start: map.base, count: 8))
        }
        headerLength = UInt64(littleEndian: headerLength)
        guard headerLength <= UInt64(map.size - 8) else {
            throw fail("header length \(headerLength) runs past the end of the file (\(map.size) bytes)")
        }
        guard headerLength <= 100_000_000 else { throw fail("header length \(headerLength) is implausibly large") }
        let dataStart = 8 + Int(headerLength)
        self.dataStart = dataStart
        let header = Data(bytes: map.base + 8, count: Int(headerLength))
        guard let json = try? JSONSerialization.jsonObject(with: header),
            let object = json as? [String: Any]
        else {
            throw fail("header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        var entries: [String: Entry] = [:]
        let dataSize = map.size - dataStart
        for (name, value) in object {
            if name == "__metadata__" {
                guard let table = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (key, item) in table {
                    guard let text = item as? String else { throw fail("metadata value '\(key)' is not a string") }
                    metadata[key] = text
                }
                continue
            }
            guard let fields = value as? [String: Any] else { throw fail("tensor '\(name)' has no description") }
            guard let dtypeName = fields["dtype"] as? String else { throw fail("tensor '\(name)' has no dtype") }
            guard let dtype = TensorDType(rawValue: dtypeName) else {
                throw fail("tensor '\(name)' has unsupported dtype \(dtypeName) (F32, F16, BF16 and I64 are read)")
            }
            guard let shapeValues = fields["shape"] as? [Any],
                let shape = Self.integers(shapeValues), shape.allSatisfy({ $0 >= 0 })
            else {
                throw fail("tensor '\(name)' has an invalid shape")
            }
            guard let offsetValues = fields["data_offsets"] as? [Any],
                let offsets = Self.integers(offsetValues), offsets.count == 2,
                offsets[0] >= 0, offsets[0] <= offsets[1]
            else {
                throw fail("tensor '\(name)' has invalid data_offsets")
            }
            guard offsets[1] <= dataSize else {
                throw fail(
                    "tensor '\(name)' bytes \(offsets[0])..<\(offsets[1]) run past the end of the data (\(dataSize) bytes)"
                )
            }
            var elements = 1, overflow = false
            for d in shape {
                let (product, o) = elements.multipliedReportingOverflow(by: d)
                elements = product
                overflow = overflow || o
            }
            let (byteCount, o) = elements.multipliedReportingOverflow(by: dtype.byteCount)
            guard !overflow, !o, byteCount == offsets[1] - offsets[0] else {
                throw fail(
                    "tensor '\(name)' of shape \(shape) and dtype \(dtypeName) does not fill its \(offsets[1] - offsets[0]) bytes"
                )
            }
            entries[name] = Entry(dtype: dtype, shape: shape, range: offsets[0]..<offsets[1])
        }
        let ordered = entries.sorted { $0.value.range.lowerBound < $1.value.range.lowerBound }
        for (previous, next) in zip(ordered, ordered.dropFirst())
        where previous.value.range.upperBound > next.value.range.lowerBound && !next.value.range.isEmpty {
            throw fail("tensors '\(previous.key)' and '\(next.key)' overlap")
        }
        self.metadata = metadata
        self.entries = entries
    }

    private static func integers(_ values: [Any]) -> [Int]? {
        var out: [Int] = []
        for value in values {
            guard let number = value as? NSNumber, let int = Int(exactly: number.doubleValue) else { return nil }
            out.append(int)
        }
        return out
    }

    /// The tensor `name` as Float32. F32 data aligned to 4 bytes is used in place (no copy).
    public func tensor(_ name: String) throws -> Tensor {
        guard let entry = entries[name] else {
            throw CheckpointError(path: path, reason: "no tensor named '\(name)'")
        }
        let bytes = map.base + dataStart + entry.range.lowerBound
        let count = entry.shape.reduce(1, *)
        switch entry.dtype {
        case .float32:
            if Int(bitPattern: bytes) % MemoryLayout<Float>.alignment == 0 && count > 0 {
                let storage = TensorStorage(
                    borrowing: bytes.assumingMemoryBound(to: Float.self),
                    count: count, owner: map)
                return Tensor(shape: entry.shape, storage: storage)
            }
            let out = Tensor(shape: entry.shape)
            UnsafeMutableRawPointer(out.data).copyMemory(from: bytes, byteCount: count * 4)
            return out
        case .float16:
            let out = Tensor(shape: entry.shape)
            for i in 0..<count {
                out.data[i] = Float(
                    Float16(
                        bitPattern: UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))))
            }
            return out
        case .bfloat16:
            let out = Tensor(shape: entry.shape)
            for i in 0..<count {
                let bits = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                out.data[i] = Float(bitPattern: UInt32(bits) << 16)
            }
            return out
        case .int64:
            let out = Tensor(shape: entry.shape)
            for i in 0..<count {
                out.data[i] = Float(Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)))
            }
            return out
        }
    }

    /// Every tensor, by name.
    public func allTensors() throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for name in entries.keys { out[name] = try tensor(name) }
        return out
    }
}

/// Writes tensors as a safetensors file (F32, or F16 when `dtype` says so), atomically.
/// The header is padded with spaces so the data starts 8-byte aligned.
public func writeSafeTensors(
    _ tensors: [String: Tensor], metadata: [String: String] = [:],
    dtype: TensorDType = .float32, toPath path: String
) throws {
    precondition(dtype == .float32 || dtype == .float16, "writing \(dtype.rawValue) is not supported")
    var header: [String: Any] = [:]
    if !metadata.isEmpty { header["__metadata__"] = metadata }
    let names = tensors.keys.sorted()
    var offset = 0
    for name in names {
        let t = tensors[name]!
        let bytes = t.count * dtype.byteCount
        header[name] =
            ["dtype": dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + bytes]] as [String: Any]
        offset += bytes
    }
    var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    while (8 + json.count) % 8 != 0 { json.append(0x20) }
    var file = Data(capacity: 8 + json.count + offset)
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
    file.append(json)
    for name in names {
        let t = tensors[name]!
        switch dtype {
        case .float32:
            file.append(Data(bytes: t.data, count: t.count * 4))
        case .float16:
            var halves = [UInt16](repeating: 0, count: t.count)
            for i in 0..<t.count { halves[i] = Float16(t.data[i]).bitPattern.littleEndian }
            halves.withUnsafeBytes { file.append(contentsOf: $0) }
        case .bfloat16, .int64:
            break  // refused above
        }
    }
    try writeAtomically(file, toPath: path)
}
