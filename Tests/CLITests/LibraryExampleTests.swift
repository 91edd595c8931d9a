import Foundation
import Testing
import ViTTestSupport

/// Examples/LibraryUse runs as its header says, from the repository's root.
@Suite struct LibraryExampleTests {
    @Test func classifiesLooksAndTrains() throws {
        let binary = URL(fileURLWithPath: vitBinary).deletingLastPathComponent().appendingPathComponent(
            "library-example")
        let output = makeTemporaryFolder() + "/colour.safetensors"
        let process = Process()
        process.executableURL = binary
        process.arguments = ["Images/ankle-boot.png", output]
        process.currentDirectoryURL = URL(fileURLWithPath: repositoryPath("."))
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(stderr)")

        let lines = stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "Images/ankle-boot.png:")
        #expect(lines.count > 1 && lines[1].hasPrefix("  Ankle boot   0.9"), "\(stdout)")
        let rollout = lines.drop { !$0.hasPrefix("attention rollout") }.dropFirst().prefix { $0.hasPrefix("  ") }
        #expect(rollout.count == 7 && rollout.allSatisfy { $0.count == 2 + 14 }, "\(stdout)")
        let accuracy = try #require(lines.last { $0.hasPrefix("test accuracy") }).split(separator: " ")[2]
        #expect(try #require(Double(accuracy)) > 0.9, "\(stdout)")

        let info = try runVit(["info", output])
        #expect(info.status == 0, "\(info.stderr)")
        #expect(info.stdout.contains("red, orange, yellow, green, cyan, blue, purple, white"), "\(info.stdout)")
    }
}
