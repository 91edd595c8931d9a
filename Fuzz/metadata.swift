// libFuzzer target: a captioned folder's metadata.jsonl (beside one valid PNG, a.png).
import Foundation
import ViTData
import ViTImage

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMetadata(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let folder = "\(scratchFolder)/captioned"
    if !FileManager.default.fileExists(atPath: "\(folder)/a.png") {
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try? Image(width: 2, height: 2, channels: 3).writePNG(path: "\(folder)/a.png")
    }
    _ = FileManager.default.createFile(atPath: "\(folder)/metadata.jsonl", contents: Data(bytes: start, count: count))
    _ = try? CaptionedImages.folder(folder)
    return 0
}
