import Crypto
import Foundation
import Testing
import ViTCheckpoint
import ViTTestSupport

/// Models named ORG/NAME[@REVISION] are read from a Hugging Face cache laid out as the Hub's
/// "local cache" page documents: blobs named by their hash, snapshot files as relative
/// symlinks to them, refs/ naming commits. Each named model must give exactly what its
/// folder gives.
@Suite struct HubCacheCLITests {
    let cache = makeTemporaryFolder()
    let hfViT = repositoryPath("Tests/ViTVisionTests/Golden/hf-vit")
    let timm = repositoryPath("Tests/ViTVisionTests/Golden/timm-vit")
    let miniLM = repositoryPath("Weights/all-MiniLM-L6-v2")
    let photo = repositoryPath("Images/chelsea.png")
    static let commitA = String(repeating: "a1", count: 20)
    static let commitB = String(repeating: "b2", count: 20)

    /// Adds every file under `source` to the cache as the snapshot `commit` of `repository`,
    /// and returns the bytes its new blobs hold.
    @discardableResult
    func add(_ source: String, as repository: String, commit: String, refs: [String]) throws -> Int {
        let manager = FileManager.default
        let folder = "\(cache)/models--\(repository.replacingOccurrences(of: "/", with: "--"))"
        try manager.createDirectory(atPath: "\(folder)/blobs", withIntermediateDirectories: true)
        var added = 0
        for case let file as String in manager.enumerator(atPath: source)! {
            var isDirectory: ObjCBool = false
            guard manager.fileExists(atPath: "\(source)/\(file)", isDirectory: &isDirectory), !isDirectory.boolValue
            else { continue }
            let data = try Data(contentsOf: URL(fileURLWithPath: "\(source)/\(file)"))
            let hash = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
            if !manager.fileExists(atPath: "\(folder)/blobs/\(hash)") {
                try data.write(to: URL(fileURLWithPath: "\(folder)/blobs/\(hash)"))
                added += data.count
            }
            let link = "\(folder)/snapshots/\(commit)/\(file)"
            try manager.createDirectory(
                atPath: (link as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            let depth = file.split(separator: "/").count + 1  // snapshots/COMMIT/[sub/]file
            try manager.createSymbolicLink(
                atPath: link, withDestinationPath: String(repeating: "../", count: depth) + "blobs/\(hash)")
        }
        for name in refs {
            let reference = "\(folder)/refs/\(name)"
            try manager.createDirectory(
                atPath: (reference as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try commit.write(toFile: reference, atomically: true, encoding: .utf8)
        }
        return added
    }

    func vit(_ arguments: [String]) throws -> RunResult {
        try runVit(arguments, environment: ["HF_HUB_CACHE": cache, "HF_HUB_OFFLINE": "1"])
    }

    @Test func namedModelsAreTheirFolders() throws {
        try add(hfViT, as: "test-org/tiny-vit", commit: Self.commitA, refs: ["main"])
        try add(timm, as: "test-org/tiny-vit", commit: Self.commitB, refs: ["v1", "releases/2"])
        try add(miniLM, as: "sentence-transformers/all-MiniLM-L6-v2", commit: Self.commitA, refs: ["main"])

        let byFolder = try vit(["classify", photo, "--model", hfViT, "--logits", "--format", "jsonl"])
        #expect(byFolder.status == 0, "\(byFolder.stderr)")
        for name in ["test-org/tiny-vit", "test-org/tiny-vit@main", "test-org/tiny-vit@\(Self.commitA)"] {
            let byName = try vit(["classify", photo, "--model", name, "--logits", "--format", "jsonl"])
            #expect(byName.status == 0 && byName.stdout == byFolder.stdout, "\(name): \(byName.stderr)")
        }
        let timmByFolder = try vit(["classify", photo, "--model", timm, "--top-k", "3"])
        for name in ["test-org/tiny-vit@v1", "test-org/tiny-vit@releases/2", "test-org/tiny-vit@\(Self.commitB)"] {
            let byName = try vit(["classify", photo, "--model", name, "--top-k", "3"])
            #expect(byName.status == 0 && byName.stdout == timmByFolder.stdout, "\(name): \(byName.stderr)")
        }
        let embedDefault = try vit(["embed", "a cat on a sofa"])
        let embedNamed = try vit(["embed", "a cat on a sofa", "--model", "sentence-transformers/all-MiniLM-L6-v2"])
        #expect(embedNamed.status == 0 && embedNamed.stdout == embedDefault.stdout, "\(embedNamed.stderr)")
        let info = try vit(["info", "test-org/tiny-vit@v1"])
        #expect(info.status == 0 && info.stdout.contains("snapshots/\(Self.commitB) (timm)"), "\(info.stdout)")
    }

    @Test func missingModelsAndRevisionsAreNamed() throws {
        try add(hfViT, as: "test-org/tiny-vit", commit: Self.commitA, refs: ["main"])
        let missing = try vit(["classify", photo, "--model", "test-org/missing"])
        #expect(missing.status == 1)
        #expect(
            missing.stderr
                == "error: test-org/missing: no such file or folder, and no such model in the Hugging Face cache (\(cache))\n"
        )
        let revision = try vit(["classify", photo, "--model", "test-org/tiny-vit@v9"])
        #expect(revision.status == 1)
        #expect(
            revision.stderr == "error: test-org/tiny-vit has no revision 'v9' in the Hugging Face cache (\(cache))\n")
        // A name that would leave the cache folder is not a name: it is read as a path.
        let escape = try vit(["classify", photo, "--model", "../tiny-vit"])
        #expect(escape.status == 1 && !escape.stderr.contains("Hugging Face"), "\(escape.stderr)")
    }

    /// `vit models` lists each model with its kind, revisions and the bytes of its blobs
    /// (shared files counted once).
    @Test func modelsAreListed() throws {
        let vitBytes =
            try add(hfViT, as: "test-org/tiny-vit", commit: Self.commitA, refs: ["main"])
            + add(timm, as: "test-org/tiny-vit", commit: Self.commitB, refs: ["v1"])
        let textBytes = try add(
            miniLM, as: "sentence-transformers/all-MiniLM-L6-v2", commit: Self.commitB, refs: ["main"])
        let listing = try vit(["models"])
        #expect(listing.status == 0, "\(listing.stderr)")
        let mb = { (bytes: Int) in String(format: "%.1f MB", Double(bytes) / 1e6) }
        #expect(
            listing.stdout == """
                cache: \(cache)
                sentence-transformers/all-MiniLM-L6-v2  sentence-transformers  \(mb(textBytes))  revisions: main (b2b2b2b2b2b2)
                test-org/tiny-vit  hf-vit  \(mb(vitBytes))  revisions: main (a1a1a1a1a1a1), v1 (b2b2b2b2b2b2)

                """)
    }

    /// Removing a revision frees the blobs only it links to (counted when they were added)
    /// and its refs; the other revision still gives what its folder gives.
    @Test func modelsAreRemoved() throws {
        let mb = { (bytes: Int) in String(format: "%.1f MB", Double(bytes) / 1e6) }
        let mainBytes = try add(hfViT, as: "test-org/tiny-vit", commit: Self.commitA, refs: ["main"])
        let timmOnly = try add(timm, as: "test-org/tiny-vit", commit: Self.commitB, refs: ["v1", "releases/2"])
        let revision = try vit(["models", "rm", "test-org/tiny-vit@v1"])
        #expect(revision.status == 0 && revision.stdout == "removed test-org/tiny-vit@v1 (\(mb(timmOnly)) freed)\n")
        for gone in ["v1", "releases/2"] {
            #expect(try vit(["classify", photo, "--model", "test-org/tiny-vit@\(gone)"]).status == 1)
        }
        let byFolder = try vit(["classify", photo, "--model", hfViT])
        let byName = try vit(["classify", photo, "--model", "test-org/tiny-vit"])
        #expect(byName.status == 0 && byName.stdout == byFolder.stdout, "\(byName.stderr)")
        let whole = try vit(["models", "rm", "test-org/tiny-vit"])
        #expect(whole.status == 0 && whole.stdout == "removed test-org/tiny-vit (\(mb(mainBytes)) freed)\n")
        #expect(try vit(["models"]).stdout == "cache: \(cache)\nno models\n")
        let again = try vit(["models", "rm", "test-org/tiny-vit"])
        #expect(
            again.status == 1
                && again.stderr == "error: test-org/tiny-vit is not in the Hugging Face cache (\(cache))\n")
    }

    @Test func cacheFolderFromTheEnvironment() {
        #expect(HubCache(environment: ["HF_HUB_CACHE": "/x", "HF_HOME": "/y"]).root == "/x")
        #expect(HubCache(environment: ["HF_HOME": "/y", "HOME": "/h"]).root == "/y/hub")
        #expect(HubCache(environment: ["HOME": "/h"]).root == "/h/.cache/huggingface/hub")
    }

    @Test func namesAreChecked() {
        #expect(HubCache.ModelName("google/vit-base-patch16-224")?.repository == "google/vit-base-patch16-224")
        #expect(HubCache.ModelName("google/vit-base-patch16-224")?.revision == "main")
        #expect(HubCache.ModelName("bert-base-uncased@v1.0")?.revision == "v1.0")
        #expect(HubCache.ModelName("timm/vit_base_patch16_224.augreg2_in21k_ft_in1k") != nil)
        for bad in ["", "a/b/c", "../x", "a/..", "a/-b", "a/b--c", "a/b.", "/abs", "a/b@", "a/b@../x", "a b/c"] {
            #expect(HubCache.ModelName(bad) == nil, "\(bad)")
        }
    }
}
