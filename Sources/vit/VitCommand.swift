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
            Info.self, Preprocess.self, Bench.self, Models.self, Fetch.self, Study.self,
        ])

    /// Runs the command; the libraries' and the command's own failures (each one line
    /// naming the file or value) print on stderr and exit 1; usage errors exit 64.
    static func runMain() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as ReportableError {
            waitIfInterrupted()
            printError(error.description)
            Foundation.exit(1)
        } catch {
            waitIfInterrupted()
            exit(withError: error)
        }
        waitIfInterrupted()
    }

    /// When SIGINT or SIGTERM is being handled, the work it broke off may end (or fail) on
    /// its own: the handler's cleanup and exit status come first.
    static func waitIfInterrupted() {
        while ScratchPaths.isInterrupted { pause() }
    }

    static func main() {
        // Tensors are allocated and freed every step: keep freed memory in the heap for reuse
        // instead of returning it to the kernel (which then faults fresh zero pages back in).
        _ = mallopt(-3, 32 << 20)  // M_MMAP_THRESHOLD: glibc's largest, 32 MiB
        _ = mallopt(-1, 1 << 30)  // M_TRIM_THRESHOLD
        installInterruptHandlers()
        runMain()
    }
}

/// Kept alive for the life of the process.
nonisolated(unsafe) private var interruptSources: [DispatchSourceSignal] = []

/// SIGINT and SIGTERM remove this process's temporary files and staging folders
/// (`ScratchPaths`), then exit with 128 + the signal (130, 143), as shells report.
func installInterruptHandlers() {
    for signalNumber in [SIGINT, SIGTERM] {
        signal(signalNumber, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
        source.setEventHandler {
            ScratchPaths.removeAll()
            _exit(128 + signalNumber)
        }
        source.resume()
        interruptSources.append(source)
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

extension ProductPrecision: ExpressibleByArgument {}

/// `--precision`, for the commands that run a model forward.
struct PrecisionOption: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Number format of the fully connected layers: fp32, or bf16 (weights and inputs rounded to bfloat16, sums and everything else in fp32; needs a CPU with AVX512-BF16).",
            valueName: "fp32|bf16"))
    var precision: ProductPrecision = .float32

    /// Sets the process's product precision; bf16 on a CPU without it is refused.
    func apply() throws {
        if precision == .bfloat16 && !Machine.hasBFloat16Products {
            throw CLIFailure("--precision bf16 needs a CPU with AVX512-BF16; this one (\(Machine.cpuName)) has none")
        }
        setProductPrecision(precision)
    }
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

/// Makes the folder `output` whole: `fill` writes into a staging folder beside it
/// (`ScratchPaths`), which then becomes `output` by one rename. An empty folder at `output`
/// is replaced; with `mergingIntoExisting`, the files go into an existing folder one by one
/// instead, never replacing a file there. A folder that is not empty (or a file) at `output`
/// is refused and nothing in it is touched. The staging folder is removed when `fill` fails
/// and on SIGINT or SIGTERM; leftovers of killed runs beside `output` are removed first.
func createFolderWhole(_ output: String, mergingIntoExisting: Bool = false, fill: (String) throws -> Void) throws {
    ScratchPaths.removeLeftovers(besides: output)
    let staging = ScratchPaths.stagingFolder(for: output)
    guard mkdir(staging, 0o755) == 0 else {
        throw CLIFailure("\(output): cannot create (\(String(cString: strerror(errno))))")
    }
    ScratchPaths.register(staging)
    defer {
        try? FileManager.default.removeItem(atPath: staging)
        ScratchPaths.unregister(staging)
    }
    try fill(staging)
    if rename(staging, output) == 0 {
        syncFolder(of: output)
        return
    }
    let renameError = errno
    var isDirectory: ObjCBool = false
    guard mergingIntoExisting, FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory),
        isDirectory.boolValue
    else {
        let reason =
            renameError == ENOTEMPTY || renameError == EEXIST || renameError == ENOTDIR
            ? "exists and is not an empty folder (nothing in it was changed)"
            : "cannot create (\(String(cString: strerror(renameError))))"
        throw CLIFailure("\(output): \(reason)")
    }
    for name in try FileManager.default.contentsOfDirectory(atPath: staging).sorted() {
        // link(2) never replaces an existing file.
        guard link("\(staging)/\(name)", "\(output)/\(name)") == 0 else {
            throw CLIFailure("\(output)/\(name): cannot write (\(String(cString: strerror(errno))))")
        }
    }
    syncFolder(of: "\(output)/.")
}
