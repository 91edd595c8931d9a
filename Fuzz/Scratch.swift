// Shared by the libFuzzer targets that read files: a scratch folder for this process.
import Foundation

/// A folder of this process's own under /dev/shm (or the temporary folder), made once.
let scratchFolder: String = {
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    let path = "\(base)/swiftvit-fuzz-\(getpid())"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}()

/// Writes the fuzzer's input (or any bytes) to a file in the scratch folder.
func writeScratch(_ name: String, _ bytes: Data) -> String {
    let path = "\(scratchFolder)/\(name)"
    _ = FileManager.default.createFile(atPath: path, contents: bytes)
    return path
}
