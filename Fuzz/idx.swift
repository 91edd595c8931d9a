// libFuzzer target: IDX files, plain or gzip (the first input byte picks whether the input
// is the images file or the labels file; the other is a valid one-image file).
import Foundation
import ViTData

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count > 0 else { return 0 }
    let bytes = Data(bytes: start + 1, count: count - 1)
    let folder = "\(scratchFolder)/idx"
    try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let images = Data([0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4])
    let labels = Data([0, 0, 8, 1, 0, 0, 0, 1, 0])
    let inputIsImages = start.load(as: UInt8.self) & 1 == 0
    _ = FileManager.default.createFile(
        atPath: "\(folder)/train-images-idx3-ubyte", contents: inputIsImages ? bytes : images)
    _ = FileManager.default.createFile(
        atPath: "\(folder)/train-labels-idx1-ubyte", contents: inputIsImages ? labels : bytes)
    _ = try? LabeledImages.idxFolder(folder, test: false)
    return 0
}
