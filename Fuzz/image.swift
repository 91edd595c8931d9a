// libFuzzer target: PNG and JPEG decoding (Fuzz/run.sh builds and runs it).
import Foundation
import ViTImage

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImage(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    _ = try? Image.decode(Data(bytes: start, count: count), name: "input", maxPixels: 1 << 22)
    return 0
}
