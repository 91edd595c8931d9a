import ArgumentParser
import Foundation
import ViTCheckpoint
import ViTCore
import ViTData
import ViTImage
import ViTTensor
import ViTTraining
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

/// A thread count given on the command line: a whole number from 1 to 1024; anything
/// else is refused by the parser with the option's name.
struct ThreadCount: ExpressibleByArgument, CustomStringConvertible {
    let value: Int

    init(_ value: Int) { self.value = value }

    init?(argument: String) {
        guard let value = Int(argument), (1...1024).contains(value) else { return nil }
        self.value = value
    }

    var description: String { String(value) }
}

/// Sets the process's thread count when one was given.
func applyThreads(_ threads: ThreadCount?) {
    if let threads { setThreadCount(threads.value) }
}

/// The lines of a UTF-8 text file (`textLines`: LF, CRLF or CR line ends).
func readTextLines(_ path: String) throws -> [String] {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw CLIFailure("\(path): cannot read the file")
    }
    guard let text = String(data: data, encoding: .utf8) else { throw CLIFailure("\(path): not valid UTF-8 text") }
    return textLines(text)
}

/// `value` as one line of JSON with its keys sorted (Foundation's keyed encoding has no
/// fixed order on Linux; sorted keys make the same value the same bytes).
func sortedJSON<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// An epoch of training whose non-finite loss is reported with what is kept: the
/// checkpoint of the last finished epoch, if any.
func trainingEpoch<Result>(finished: Int, checkpoint: String, _ body: () throws -> Result) throws -> Result {
    do {
        return try body()
    } catch let error as NonFiniteLossError {
        let kept = finished > 0 ? "the checkpoint after epoch \(finished) is kept (\(checkpoint))" : "nothing was saved"
        throw CLIFailure("\(error); \(kept); a lower --learning-rate may help")
    }
}
