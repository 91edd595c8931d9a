// libFuzzer target: HF and timm config.json and preprocessor_config.json, read with the
// golden HF model's weights, named by SWIFTVIT_FUZZ_WEIGHTS (the first input byte picks
// which file gets the input).
import Foundation
import ViTVision

let weights = ProcessInfo.processInfo.environment["SWIFTVIT_FUZZ_WEIGHTS"]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count > 0, let weights else { return 0 }
    let bytes = Data(bytes: start + 1, count: count - 1)
    let folder = "\(scratchFolder)/model"
    try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    if !FileManager.default.fileExists(atPath: "\(folder)/model.safetensors") {
        try? FileManager.default.createSymbolicLink(atPath: "\(folder)/model.safetensors", withDestinationPath: weights)
    }
    let config = "\(folder)/config.json", preprocessor = "\(folder)/preprocessor_config.json"
    if start.load(as: UInt8.self) & 1 == 0 {
        _ = FileManager.default.createFile(atPath: config, contents: bytes)
        try? FileManager.default.removeItem(atPath: preprocessor)
    } else {
        _ = FileManager.default.createFile(
            atPath: config,
            contents: Data(
                #"{"hidden_size": 96, "num_hidden_layers": 2, "num_attention_heads": 3, "intermediate_size": 384, "image_size": 64, "patch_size": 8, "id2label": {"0": "a", "1": "b", "2": "c", "3": "d", "4": "e", "5": "f", "6": "g"}}"#
                    .utf8))
        _ = FileManager.default.createFile(atPath: preprocessor, contents: bytes)
    }
    _ = try? ImageClassifier.load(path: folder)
    return 0
}
