import Crypto
import Foundation
import Testing
import ViTTestSupport

/// Models fetched by name from a local server that answers as the Hub does (`HF_ENDPOINT`),
/// into a hub cache laid out as huggingface_hub lays it out.
@Suite struct HubDownloadCLITests {
    let cache = makeTemporaryFolder()
    let hfViT = repositoryPath("Tests/ViTVisionTests/Golden/hf-vit")
    let photo = repositoryPath("Images/chelsea.png")
    static let commit = String(repeating: "c3", count: 20)

    func vit(_ arguments: [String], server: HubTestServer, extra: [String: String] = [:]) throws -> RunResult {
        try runVit(
            arguments, environment: ["HF_HUB_CACHE": cache, "HF_ENDPOINT": server.endpoint].merging(extra) { $1 })
    }

    var modelFolder: String { "\(cache)/models--test-org--tiny-vit" }

    /// First use downloads and classifies as the folder does; the cache holds blobs named
    /// by ETag (the SHA-256 for the large file), relative snapshot links and refs/main; the
    /// second use needs no server.
    @Test func firstUseDownloadsThenWorksOffline() throws {
        let server = try HubTestServer()
        server.serve(hfViT, as: "test-org/tiny-vit", commit: Self.commit, large: ["model.safetensors"])
        let byFolder = try runVit(["classify", photo, "--model", hfViT])
        let named = try vit(["classify", photo, "--model", "test-org/tiny-vit"], server: server)
        #expect(named.status == 0, "\(named.stderr)")
        #expect(named.stdout == byFolder.stdout)
        let weights = try Data(contentsOf: URL(fileURLWithPath: "\(hfViT)/model.safetensors"))
        let hash = HubTestServer.sha256(weights)
        let link = "\(modelFolder)/snapshots/\(Self.commit)/model.safetensors"
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == "../../blobs/\(hash)")
        #expect(try String(contentsOfFile: "\(modelFolder)/refs/main", encoding: .utf8) == Self.commit)
        let config = try Data(contentsOf: URL(fileURLWithPath: "\(hfViT)/config.json"))
        #expect(FileManager.default.fileExists(atPath: "\(modelFolder)/blobs/\(HubTestServer.gitTag(config))"))

        let requests = server.log.count
        let again = try vit(["classify", photo, "--model", "test-org/tiny-vit"], server: server)
        #expect(again.status == 0 && again.stdout == byFolder.stdout, "\(again.stderr)")
        #expect(server.log.count == requests, "the second use asked the server: \(server.log.suffix(3))")
    }

    /// A renamed repository answers with a relative redirect to its new name, which the
    /// fetch follows (the large file's redirect to storage elsewhere it does not, for its
    /// metadata); the cache keeps the name asked for, as huggingface_hub's does.
    @Test func renamedRepositoryIsFollowed() throws {
        let server = try HubTestServer()
        server.serve(hfViT, as: "test-org/tiny-vit", commit: Self.commit, large: ["model.safetensors"])
        server.rename("old-org/tiny-vit", to: "test-org/tiny-vit")
        let byFolder = try runVit(["classify", photo, "--model", hfViT])
        let named = try vit(["classify", photo, "--model", "old-org/tiny-vit"], server: server)
        #expect(named.status == 0 && named.stdout == byFolder.stdout, "\(named.stderr)")
        #expect(FileManager.default.fileExists(atPath: "\(cache)/models--old-org--tiny-vit/refs/main"))
    }

    /// A timm folder by name (config.json with `architecture`, no model_type) is fetched and
    /// classifies as its folder does.
    @Test func timmModelByName() throws {
        let server = try HubTestServer()
        let timm = repositoryPath("Tests/ViTVisionTests/Golden/timm-vit")
        server.serve(timm, as: "test-org/tiny-timm", commit: Self.commit, large: ["model.safetensors"])
        let byFolder = try runVit(["classify", photo, "--model", timm])
        let named = try vit(["classify", photo, "--model", "test-org/tiny-timm"], server: server)
        #expect(named.status == 0 && named.stdout == byFolder.stdout, "\(named.stderr)")
    }

    /// A sentence-transformers model by name: its weights, tokenizer, modules and pooling
    /// files are fetched (and nothing else), and `vit embed` gives what the folder gives.
    @Test func sentenceEncoderByName() throws {
        let server = try HubTestServer()
        let miniLM = repositoryPath("Weights/all-MiniLM-L6-v2")
        server.serve(miniLM, as: "test-org/minilm", commit: Self.commit, large: ["model.safetensors"])
        let byFolder = try runVit(["embed", "a cat on a sofa", "--model", miniLM])
        let named = try vit(["embed", "a cat on a sofa", "--model", "test-org/minilm"], server: server)
        #expect(named.status == 0 && named.stdout == byFolder.stdout, "\(named.stderr)")
        let snapshot = "\(cache)/models--test-org--minilm/snapshots/\(Self.commit)"
        let fetched = (FileManager.default.enumerator(atPath: snapshot)?.compactMap { $0 as? String } ?? [])
            .filter { !$0.hasSuffix("1_Pooling") }.sorted()
        #expect(
            fetched == [
                "1_Pooling/config.json", "config.json", "model.safetensors", "modules.json",
                "sentence_bert_config.json",
                "special_tokens_map.json", "tokenizer_config.json", "vocab.txt",
            ])
    }

    /// A download cut halfway leaves its .incomplete part; the next fetch asks for the rest
    /// with a Range request and ends with the right bytes.
    @Test func cutDownloadResumes() throws {
        let server = try HubTestServer()
        server.serve(hfViT, as: "test-org/tiny-vit", commit: Self.commit, large: ["model.safetensors"])
        let weights = try Data(contentsOf: URL(fileURLWithPath: "\(hfViT)/model.safetensors"))
        server.cut("model.safetensors", after: weights.count / 2)
        let first = try vit(["fetch", "test-org/tiny-vit"], server: server)
        #expect(first.status == 1, "\(first.stdout)")
        #expect(first.stderr.contains("run again to resume"), "\(first.stderr)")
        let hash = HubTestServer.sha256(weights)
        let partial = "\(modelFolder)/blobs/\(hash).incomplete"
        let kept = (try FileManager.default.attributesOfItem(atPath: partial)[.size] as? Int) ?? 0
        #expect(kept == weights.count / 2)

        let second = try vit(["fetch", "test-org/tiny-vit"], server: server)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(server.log.contains { $0.hasSuffix("Range: bytes=\(kept)-") }, "\(server.log)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(modelFolder)/blobs/\(hash)")) == weights)
        #expect(!FileManager.default.fileExists(atPath: partial))
        #expect(second.stdout == "\(modelFolder)/snapshots/\(Self.commit)\n")
    }

    /// Bytes that do not hash to the ETag are refused and nothing of them stays in the cache.
    @Test func corruptedDownloadIsCaught() throws {
        let server = try HubTestServer()
        server.serve(hfViT, as: "test-org/tiny-vit", commit: Self.commit, large: ["model.safetensors"])
        server.corrupt("test-org/tiny-vit", file: "model.safetensors")
        let result = try vit(["classify", photo, "--model", "test-org/tiny-vit"], server: server)
        #expect(result.status == 1)
        #expect(result.stderr.contains("does not match the ETag"), "\(result.stderr)")
        let blobs = try FileManager.default.contentsOfDirectory(atPath: "\(modelFolder)/blobs")
        #expect(blobs.count == 1, "\(blobs)")  // config.json only
        #expect(
            !FileManager.default.fileExists(atPath: "\(modelFolder)/snapshots/\(Self.commit)/model.safetensors"))
    }

    /// 404 and 401 name their cause; a token in HF_TOKEN opens a private model; a model
    /// type SwiftViT does not read is refused before its weights are fetched.
    @Test func errorsAndTokens() throws {
        let server = try HubTestServer()
        server.serve(hfViT, as: "test-org/private-vit", commit: Self.commit, large: [], token: "hf_secret")
        let gpt = makeTemporaryFolder()
        try Data(#"{"model_type": "gpt2"}"#.utf8).write(to: URL(fileURLWithPath: "\(gpt)/config.json"))
        try Data(count: 1000).write(to: URL(fileURLWithPath: "\(gpt)/model.safetensors"))
        server.serve(gpt, as: "test-org/gpt", commit: Self.commit, large: ["model.safetensors"])

        let missing = try vit(["fetch", "test-org/private-vit@v2"], server: server, extra: ["HF_TOKEN": "hf_secret"])
        #expect(missing.status == 1 && missing.stderr.contains("HTTP 404"), "\(missing.stderr)")
        let denied = try vit(["fetch", "test-org/private-vit"], server: server)
        #expect(denied.status == 1 && denied.stderr.contains("HF_TOKEN"), "\(denied.stderr)")
        let allowed = try vit(["fetch", "test-org/private-vit"], server: server, extra: ["HF_TOKEN": "hf_secret"])
        #expect(allowed.status == 0, "\(allowed.stderr)")
        let other = try vit(["fetch", "test-org/gpt"], server: server)
        #expect(other.status == 1 && other.stderr.contains("model_type 'gpt2'"), "\(other.stderr)")
        #expect(!server.log.contains { $0.hasPrefix("GET /cdn/") }, "\(server.log)")
        let offline = try vit(
            ["classify", photo, "--model", "test-org/tiny-vit"], server: server, extra: ["HF_HUB_OFFLINE": "1"])
        #expect(
            offline.status == 1 && offline.stderr.contains("no such model in the Hugging Face cache"),
            "\(offline.stderr)")
        let unreachable = try runVit(
            ["fetch", "test-org/tiny-vit"], environment: ["HF_HUB_CACHE": cache, "HF_ENDPOINT": "http://127.0.0.1:9"])
        #expect(
            unreachable.status == 1 && unreachable.stderr.split(separator: "\n").count == 1, "\(unreachable.stderr)")
    }

    /// Two fetches of the same model at once leave one valid copy.
    @Test func concurrentFetchesLeaveOneCopy() throws {
        let server = try HubTestServer()
        server.serve(hfViT, as: "test-org/tiny-vit", commit: Self.commit, large: ["model.safetensors"])
        // Both at once, each reported whole (exit status and errors).
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            let result = try? runVit(
                ["fetch", "test-org/tiny-vit"], environment: ["HF_HUB_CACHE": cache, "HF_ENDPOINT": server.endpoint])
            #expect(result?.status == 0, "\(result?.stderr ?? "did not run")")
        }
        let weights = try Data(contentsOf: URL(fileURLWithPath: "\(hfViT)/model.safetensors"))
        let blobs = try FileManager.default.contentsOfDirectory(atPath: "\(modelFolder)/blobs").sorted()
        #expect(blobs.count == 3, "\(blobs)")  // config, preprocessor config, weights
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: "\(modelFolder)/blobs/\(HubTestServer.sha256(weights))"))
                == weights)
        let classify = try vit(["classify", photo, "--model", "test-org/tiny-vit"], server: server)
        #expect(classify.status == 0, "\(classify.stderr)")
    }
}
