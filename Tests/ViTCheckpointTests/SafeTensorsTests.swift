import Foundation
import Testing
import ViTCheckpoint
import ViTTensor
import ViTTestSupport

@Suite struct SafeTensorsTests {
    let folder = makeTemporaryFolder()

    @Test func roundTripF32AndF16() throws {
        var rng = SeededGenerator(seed: 3)
        let a = Tensor.normal([3, 4, 5], using: &rng), b = Tensor(shape: [7], values: [0, 1, -2, 0.5, 65504, 1e-3, -0])
        let path = "\(folder)/t.safetensors"
        try writeSafeTensors(["a": a, "b": b], metadata: ["format_version": "1", "note": "x"], toPath: path)
        let file = try SafeTensorsFile(path: path)
        #expect(file.names == ["a", "b"])
        #expect(file.metadata == ["format_version": "1", "note": "x"])
        #expect(try file.tensor("a").scalars == a.scalars)
        #expect(try file.tensor("a").shape == [3, 4, 5])
        let half = "\(folder)/h.safetensors"
        try writeSafeTensors(["b": b], dtype: .float16, toPath: half)
        // These values are exact in float16, except 1e-3 -> 0.0010004 (nearest half).
        let back = try SafeTensorsFile(path: half).tensor("b").scalars
        #expect(back[0..<5] == b.scalars[0..<5])
        #expect(abs(back[5] - 0.001_000_404_4) < 1e-9)
    }

    /// Writing a file removes the temporary files that killed runs left beside it (their
    /// process id is not running), and nothing else; the write leaves no temporary file.
    @Test func atomicWritesRemoveLeftoversOfKilledRuns() throws {
        var deadPID: Int32 = 4_000_000
        while kill(deadPID, 0) == 0 || errno != ESRCH { deadPID -= 1 }
        let left = [".m.safetensors.\(deadPID).7.tmp", ".m.safetensors.\(deadPID).1234567.tmp"]
        let kept = [
            ".m.safetensors.\(getpid()).7.tmp", ".m.safetensors.x.7.tmp", ".other.safetensors.\(deadPID).7.tmp",
            "m.safetensors.\(deadPID).7.tmp",
        ]
        for name in left + kept { try Data("x".utf8).write(to: URL(fileURLWithPath: "\(folder)/\(name)")) }
        try writeSafeTensors(["a": Tensor(shape: [1], values: [1])], toPath: "\(folder)/m.safetensors")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        #expect(names == (kept + ["m.safetensors"]).sorted())
    }

    @Test func readsPyTorchFilesAsWritten() throws {
        // Written by the safetensors Python package (Tests/Reference/ops.py).
        let file = try SafeTensorsFile(path: repositoryPath("Tests/ViTTensorTests/Golden/ops.safetensors"))
        let x = try file.tensor("reduce0.x")
        #expect(x.shape == [2, 3, 5])
        #expect(file.entries["reduce0.x"]?.dtype == .float32)
    }

    @Test func halfAndBFloatDecodeByHand() throws {
        // F16 0x3C00 = 1, 0xC000 = -2, 0x3555 = 0.33325195; BF16 0x3F80 = 1, 0xC040 = -3.
        let header =
            #"{"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[6,10]}}"#
        let data: [UInt8] = [0x00, 0x3C, 0x00, 0xC0, 0x55, 0x35, 0x80, 0x3F, 0x40, 0xC0]
        let path = write("halves.safetensors", header: header, data: data)
        let file = try SafeTensorsFile(path: path)
        #expect(try file.tensor("h").scalars == [1, -2, 0.333_251_95])
        #expect(try file.tensor("b").scalars == [1, -3])
    }

    func write(_ name: String, header: String, data: [UInt8], declaredLength: UInt64? = nil) -> String {
        var bytes: [UInt8] = []
        withUnsafeBytes(of: (declaredLength ?? UInt64(header.utf8.count)).littleEndian) { bytes += $0 }
        bytes += Array(header.utf8) + data
        let path = "\(folder)/\(name)"
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    func expectError(_ path: String, containing text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try SafeTensorsFile(path: path)
            Issue.record("\(path) opened without an error", sourceLocation: sourceLocation)
        } catch let error as CheckpointError {
            #expect(error.description.hasPrefix(path), sourceLocation: sourceLocation)
            #expect(error.description.contains(text), "\(error)", sourceLocation: sourceLocation)
            #expect(!error.description.contains("\n"), sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    static let okEntry = #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#

    @Test func malformedFiles() throws {
        let eight = [UInt8](repeating: 0, count: 8)
        expectError("\(folder)/missing", containing: "cannot open")
        _ = FileManager.default.createFile(atPath: "\(folder)/zero", contents: Data())
        expectError("\(folder)/zero", containing: "empty file")
        _ = FileManager.default.createFile(atPath: "\(folder)/short", contents: Data([1, 2, 3]))
        expectError("\(folder)/short", containing: "too short")
        expectError(
            write("past", header: Self.okEntry, data: eight, declaredLength: 1 << 40), containing: "runs past the end")
        expectError(write("json", header: "{not json", data: []), containing: "not a JSON object")
        expectError(write("array", header: "[1, 2]", data: []), containing: "not a JSON object")
        expectError(
            write("dtype", header: #"{"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}"#, data: eight),
            containing: "unsupported dtype F64")
        expectError(
            write("range", header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: eight),
            containing: "run past the end of the data")
        expectError(
            write("size", header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: eight),
            containing: "does not fill")
        expectError(
            write(
                "overlap",
                header:
                    #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                data: eight),
            containing: "overlap")
        expectError(
            write("offsets", header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#, data: eight),
            containing: "invalid data_offsets")
        expectError(write("meta", header: #"{"__metadata__":{"a":1}}"#, data: []), containing: "not a string")
        // A file cut short after a valid header: the tensor's bytes are missing.
        let path = "\(folder)/full.safetensors"
        try writeSafeTensors(["w": Tensor(shape: [100], repeating: 1)], toPath: path)
        let bytes = FileManager.default.contents(atPath: path)!
        _ = FileManager.default.createFile(atPath: "\(folder)/cut", contents: bytes.prefix(bytes.count - 10))
        expectError("\(folder)/cut", containing: "run past the end of the data")
    }

    @Test func missingTensorIsNamed() throws {
        let file = try SafeTensorsFile(path: write("ok", header: Self.okEntry, data: [UInt8](repeating: 0, count: 8)))
        #expect(throws: CheckpointError.self) { try file.tensor("head.weight") }
        do { _ = try file.tensor("head.weight") } catch {
            #expect("\(error)".contains("no tensor named 'head.weight'"))
        }
    }
}
