import ArgumentParser
import Foundation
import ViTCheckpoint
import ViTImage
import ViTTensor
import ViTVision

/// The version printed by `vit --version`.
let swiftViTVersion = "0.1.0"

@main
struct Vit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vit",
        abstract: "Vision Transformers on the command line: classify, preprocess and study images.",
        version: swiftViTVersion,
        subcommands: [Classify.self, AttentionCommand.self, Info.self, Preprocess.self, Bench.self])

    /// Runs the command; known failures print one line on stderr and exit 1.
    static func runMain() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as CLIFailure {
            printError(error.message)
            Foundation.exit(1)
        } catch {
            exit(withError: error)
        }
    }

    static func main() { runMain() }
}

/// A failure already described in one line for the user.
struct CLIFailure: Error {
    let message: String
    init(_ message: String) { self.message = message }
    init(_ error: Error) { self.message = "\(error)" }
}

/// Runs `body`, turning the libraries' file errors (each already one line naming the file)
/// into CLI failures; anything else propagates.
func reportingFileErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ModelError {
        throw CLIFailure(error)
    } catch let error as ImageError {
        throw CLIFailure(error)
    } catch let error as CheckpointError {
        throw CLIFailure(error)
    } catch let error as FileWriteError {
        throw CLIFailure(error)
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
}
