// libFuzzer target: safetensors headers and tensors, and SwiftViT model metadata (config,
// labels, preprocessing) read from them.
import Foundation
import ViTCheckpoint
import ViTVision

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let path = writeScratch("model.safetensors", Data(bytes: start, count: count))
    guard let file = try? SafeTensorsFile(path: path) else { return 0 }
    _ = try? file.allTensors()
    _ = try? ImageClassifier.swiftViT(file: file, path: path)
    return 0
}
