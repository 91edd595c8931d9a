import Foundation
import Testing
import ViTCheckpoint
import ViTImage
import ViTTestSupport

/// The built `vit` binary, beside the test bundle in the build folder.
let vitBinary: String = {
    var folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = folder.appendingPathComponent("vit").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        folder = folder.deletingLastPathComponent()
    }
    return Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("vit").path
}()

struct RunResult {
    let status: Int32
    let stdout: String
    let stderr: String
}

func runVit(_ arguments: [String], environment: [String: String] = [:]) throws -> RunResult {
    try run(vitBinary, arguments, environment: environment)
}

/// Starts `vit` with `arguments` (its output discarded) and returns the running process;
/// `environment` adds to this process's environment.
func startVit(_ arguments: [String], environment: [String: String] = [:]) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: vitBinary)
    process.arguments = arguments
    if !environment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    return process
}

/// Runs a program to its end and collects its exit status and output; `environment` adds
/// to (or replaces entries of) this process's environment.
func run(_ program: String, _ arguments: [String], environment: [String: String] = [:]) throws -> RunResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program)
    process.arguments = arguments
    if !environment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return RunResult(
        status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
        stderr: String(decoding: stderr, as: UTF8.self))
}

@Suite struct CLITests {
    let folder = makeTemporaryFolder()

    @Test func helpAndVersion() throws {
        let help = try runVit(["--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("USAGE: vit <subcommand>"))
        #expect(help.stdout.contains("preprocess"))
        let version = try runVit(["--version"])
        #expect(version.status == 0)
        #expect(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0.1.0")
        let sub = try runVit(["preprocess", "--help"])
        #expect(sub.status == 0 && sub.stdout.contains("--profile"))
    }

    static let photos = ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "camera.png"]
    static let cases = photos.flatMap { photo in ["hf-vit", "timm-vit", "timm-deit"].map { (photo, $0) } }

    /// For every photo and profile, the output equals HF's ViTImageProcessorPil or timm's
    /// eval transform of the same photo, and the tensor is that image normalized.
    @Test(arguments: cases)
    func preprocessWritesTheModelInput(photo: String, profileName: String) throws {
        let stem = (photo as NSString).deletingPathExtension
        let png = "\(folder)/\(stem)-\(profileName).png"
        let tensor = "\(folder)/\(stem)-\(profileName).safetensors"
        let result = try runVit([
            "preprocess", repositoryPath("Images/\(photo)"), "--profile", profileName, "-o", png, "--tensor", tensor,
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let written = try Image.read(path: png)
        let golden = try Image.read(
            path: repositoryPath("Tests/ViTImageTests/Golden/profile/\(stem)-\(profileName).png"))
        #expect(written == golden)
        let file = try SafeTensorsFile(path: tensor)
        let pixels = try file.tensor("pixel_values")
        #expect(pixels.shape == [3, 224, 224])
        let profile = PreprocessProfile.named(profileName)!
        let expected = profile.normalizedTensor(golden)
        #expect(pixels.scalars == expected.scalars)
        #expect(file.metadata["preprocess"]?.contains(profileName) == true)
        let bytes = [UInt8](FileManager.default.contents(atPath: png)!)
        let text = Array("tEXtProfile\0\(profileName)".utf8)
        #expect(bytes.indices.contains { bytes[$0...].starts(with: text) })
    }

    func write(_ name: String, _ bytes: [UInt8]) -> String { writeFile(folder, name, bytes) }

    /// Each kind of bad image: exit 1, one line on stderr naming the file, no output file.
    @Test func badImagesFailCleanly() throws {
        let rgb8 = [UInt8](
            FileManager.default.contents(atPath: repositoryPath("Tests/ViTImageTests/Golden/decode/rgb8.png"))!)
        let rocket = [UInt8](FileManager.default.contents(atPath: repositoryPath("Images/rocket.jpg"))!)
        let cases: [(String, String)] = [
            (write("zero.png", []), "empty file"),
            (write("cut.png", Array(rgb8.prefix(200))), "PNG"),
            (write("cut.jpg", Array(rocket.prefix(rocket.count / 2))), "truncated JPEG"),
            (write("magic.png", [0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 1, 2, 3]), "not a PNG or JPEG"),
            (write("letter.jpg", Array("Dear reader,\nthis is text.\n".utf8)), "not a PNG or JPEG"),
            (write("bomb.png", pngHeaderOnly(width: 100_000, height: 100_000)), "100000x100000"),
            ("\(folder)/does-not-exist.png", "no such file"),
        ]
        for (path, text) in cases {
            let out = "\(folder)/out-\(URL(fileURLWithPath: path).lastPathComponent).png"
            let result = try runVit(["preprocess", path, "-o", out])
            #expect(result.status == 1, "\(path): exit \(result.status)")
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1, "\(result.stderr)")
            #expect(result.stderr.hasPrefix("error: \(path): "), "\(result.stderr)")
            #expect(result.stderr.contains(text), "\(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
        }
        // Nothing half-written is left behind.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder).filter {
            $0.hasPrefix(".") || $0.hasPrefix("out-")
        }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }

    @Test func usageErrorsExit64() throws {
        let image = repositoryPath("Images/chelsea.png")
        let unknown = try runVit(["preprocess", image, "--profile", "imagenet", "-o", "\(folder)/x.png"])
        #expect(unknown.status == 64)
        #expect(unknown.stderr.contains("unknown profile 'imagenet'"))
        let nothing = try runVit(["preprocess", image])
        #expect(nothing.status == 64)
        #expect(nothing.stderr.contains("nothing to write"))
        let missing = try runVit(["preprocess"])
        #expect(missing.status == 64)
        let bogus = try runVit(["frobnicate"])
        #expect(bogus.status == 64)
    }

    @Test func unwritableOutputFails() throws {
        let result = try runVit(["preprocess", repositoryPath("Images/camera.png"), "-o", "\(folder)/no/such/dir.png"])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("error: \(folder)/no/such/dir.png: cannot create the file"), "\(result.stderr)")
    }
}
