import Foundation
import Testing
import ViTTestSupport

/// `vit embed` with the fetched all-MiniLM-L6-v2.
@Suite struct EmbedCLITests {
    let folder = makeTemporaryFolder()

    @Test func vectorsSimilarityAndBadInput() throws {
        let result = try runVit([
            "embed", "A cat on a sofa.", "A kitten sits on a couch.", "", "   ", "--format", "json",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [[String: Any]]
        #expect(lines.count == 4 && (lines[0]["embedding"] as! [NSNumber]).count == 384)
        let norm = (lines[2]["embedding"] as! [NSNumber]).reduce(0.0) { $0 + $1.doubleValue * $1.doubleValue }
        #expect(abs(norm - 1) < 1e-4, "embeddings are L2-normalized, also for empty text")

        let similarity = try runVit([
            "embed", "A cat on a sofa.", "A kitten sits on a couch.", "Stocks fell.", "--similarity",
        ])
        let rows = similarity.stdout.split(separator: "\n").map {
            try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [NSNumber]
        }
        #expect(rows.count == 3 && abs(rows[1][1].doubleValue - 1) < 1e-5)
        #expect(rows[0][1].doubleValue > 0.5 && rows[0][2].doubleValue < 0.3)

        // 100 KB of text is truncated to the model's 256 tokens; invalid UTF-8 is an error.
        let big = "\(folder)/big.txt", bad = "\(folder)/bad.txt"
        try Data(String(repeating: "word ", count: 20_000).utf8).write(to: URL(fileURLWithPath: big))
        #expect(try runVit(["embed", "--file", big]).status == 0)
        try Data([0x6F, 0x6B, 0x0A, 0xFF, 0xFE, 0x0A]).write(to: URL(fileURLWithPath: bad))
        let failure = try runVit(["embed", "--file", bad])
        #expect(failure.status == 1 && failure.stderr == "error: \(bad): line 2 is not valid UTF-8 text\n")
        #expect(try runVit(["embed"]).status == 64)
    }

    /// Files with CRLF, LF and CR line ends give the same texts, one per line (an empty
    /// line is a text; the end of the last line is not), and so the same vectors.
    @Test func lineEndsOfEveryKind() throws {
        var outputs: [String] = []
        for (name, end) in [("lf", "\n"), ("crlf", "\r\n"), ("cr", "\r")] {
            let path = "\(folder)/\(name).txt"
            try Data((["a red circle", "", "two words"].joined(separator: end) + end).utf8)
                .write(to: URL(fileURLWithPath: path))
            let run = try runVit(["embed", "--file", path])
            #expect(run.status == 0, "\(name): \(run.stderr)")
            outputs.append(run.stdout)
        }
        let texts = outputs[0].split(separator: "\n").map {
            (try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["text"] as! String
        }
        #expect(texts == ["a red circle", "", "two words"])
        #expect(outputs[1] == outputs[0] && outputs[2] == outputs[0])
    }

    /// More texts than one chunk (4096) are streamed in chunks: the JSON array holds every
    /// text in order, and a text in the second chunk gets the vector it gets alone (within
    /// 1e-5: other batches pad to other lengths). --similarity over more than 4096 texts is
    /// refused.
    @Test func manyTextsStreamInChunks() throws {
        let path = "\(folder)/many.txt"
        let texts = (0..<4100).map { "text number \($0)" }
        try Data((texts.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path))
        let run = try runVit(["embed", "--file", path, "--format", "json"])
        #expect(run.status == 0, "\(run.stderr)")
        let all = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as! [[String: Any]]
        #expect(all.map { $0["text"] as! String } == texts)
        let alone = try runVit(["embed", texts[4099]])
        let single = try JSONSerialization.jsonObject(with: Data(alone.stdout.utf8)) as! [String: Any]
        let expected = (single["embedding"] as! [NSNumber]).map(\.floatValue)
        let comparison = compare((all[4099]["embedding"] as! [NSNumber]).map(\.floatValue), expected, atol: 1e-5)
        #expect(comparison.passed, "\(comparison)")
        let similarity = try runVit(["embed", "--file", path, "--similarity"])
        #expect(similarity.status == 1)
        #expect(
            similarity.stderr
                == "error: --similarity takes at most 4096 texts (a matrix of their squares); there are more\n")
    }

    /// A thread count must be a whole number from 1 to 1024, in every command that takes one.
    @Test func threadCountsOutOfRangeAreRefused() throws {
        let commands: [[String]] = [
            ["embed", "x"], ["classify", repositoryPath("Images/bag.png")], ["eval"], ["bench"],
            ["train", "classifier", "-o", "\(folder)/never"], ["generate", "x", "-o", "\(folder)/never.png"],
            ["eval", "generator"],
        ]
        for command in commands {
            for value in ["0", "-1", "1025", "two"] {
                let run = try runVit(command + ["--threads", value])
                #expect(run.status == 64, "\(command) --threads \(value): exit \(run.status)")
                #expect(run.stderr.contains("--threads"), "\(command) --threads \(value): \(run.stderr)")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: "\(folder)/never"))
    }
}
