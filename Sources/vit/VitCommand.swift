import ArgumentParser
import Foundation
import ViTCheckpoint
import ViTCore
import ViTData
import ViTImage
import ViTTensor
import ViTVision

/// The version printed by `vit --version`.
let swiftViTVersion = "0.1.0"

@main
struct Vit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vit",
        abstract: "Vision Transformers on the command line: classify, study and train on images, embed text.",
        version: swiftViTVersion,
        subcommands: [
            Classify.self, AttentionCommand.self, Embed.self, Generate.self, Train.self, Eval.self, DatasetCommand.self,
            Info.self, Preprocess.self, Bench.self,
        ])

    /// Runs the command; the libraries' and the command's own failures (each one line
    /// naming the file or value) print on stderr and exit 1; usage errors exit 64.
    static func runMain() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as ReportableError {
            printError(error.description)
            Foundation.exit(1)
        } catch {
            exit(withError: error)
        }
    }

    static func main() {
        // Tensors are allocated and freed every step: keep freed memory in the heap for reuse
        // instead of returning it to the kernel (which then faults fresh zero pages back in).
        _ = mallopt(-3, 32 << 20)  // M_MMAP_THRESHOLD: glibc's largest, 32 MiB
        _ = mallopt(-1, 1 << 30)  // M_TRIM_THRESHOLD
        runMain()
    }
}

/// glibc's mallopt (malloc.h, which the Glibc module does not export).
@_silgen_name("mallopt")
func mallopt(_ parameter: Int32, _ value: Int32) -> Int32

/// A failure of the command itself, described in one line for the user.
struct CLIFailure: ReportableError {
    let description: String
    init(_ description: String) { self.description = description }
}

func printError(_ message: String, prefix: String = "error") {
    FileHandle.standardError.write(Data("\(prefix): \(message)\n".utf8))
}
