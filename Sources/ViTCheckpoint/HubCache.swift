import Foundation
import ViTTensor

/// The Hugging Face hub cache that transformers, timm and sentence-transformers share, read
/// as its layout is documented ("Hub Local Cache", huggingface.co/docs/hub/local-cache):
///
///     CACHE/models--ORG--NAME/refs/REVISION        the commit a branch or tag points at
///     CACHE/models--ORG--NAME/snapshots/COMMIT/F   a symlink to ../../blobs/ETAG
///     CACHE/models--ORG--NAME/blobs/ETAG           the file's bytes
public struct HubCache: Sendable {
    /// The cache folder.
    public let root: String

    /// The cache at `root`.
    public init(root: String) { self.root = root }

    /// The cache the Python libraries use: $HF_HUB_CACHE, else $HF_HOME/hub, else
    /// ~/.cache/huggingface/hub.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        if let cache = environment["HF_HUB_CACHE"], !cache.isEmpty {
            root = cache
        } else if let home = environment["HF_HOME"], !home.isEmpty {
            root = "\(home)/hub"
        } else {
            let user = environment["HOME"] ?? NSHomeDirectory()
            root = "\(user)/.cache/huggingface/hub"
        }
    }

    /// A model named on the Hub: "ORG/NAME" or "NAME", and a branch, tag or commit.
    public struct ModelName: Sendable, Equatable, CustomStringConvertible {
        public let repository: String
        public let revision: String

        /// Parses "ORG/NAME[@REVISION]"; nil unless every part is a valid Hub name (letters,
        /// digits, "-", "_", "." up to 96 characters, no "--" or ".." and no leading or
        /// trailing "-" or "."), so that no name reaches outside the cache.
        public init?(_ text: String) {
            let parts = text.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
            let repository = String(parts[0])
            let revision = parts.count == 2 ? String(parts[1]) : "main"
            let pieces = repository.split(separator: "/", omittingEmptySubsequences: false)
            guard (1...2).contains(pieces.count), pieces.allSatisfy({ Self.isValidPiece(String($0)) }),
                Self.isValidRevision(revision)
            else { return nil }
            self.repository = repository
            self.revision = revision
        }

        /// Whether `piece` is a valid part of a Hub name (also a safe file name).
        public static func isValidPiece(_ piece: String) -> Bool {
            let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
            return (1...96).contains(piece.count) && piece.allSatisfy(allowed.contains) && !piece.contains("--")
                && !piece.contains("..") && !piece.hasPrefix("-") && !piece.hasPrefix(".") && !piece.hasSuffix("-")
                && !piece.hasSuffix(".")
        }

        /// Branch and tag names may hold "/", as refs/ does; none of their parts may be "."
        /// or "..".
        static func isValidRevision(_ revision: String) -> Bool {
            let parts = revision.split(separator: "/", omittingEmptySubsequences: false)
            return !revision.isEmpty && revision.count <= 256
                && parts.allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }
                && !revision.unicodeScalars.contains { $0.value < 0x20 || $0 == "\\" }
        }

        /// True when the revision is a full commit hash.
        var isCommit: Bool { HubCache.isCommitHash(revision) }

        public var description: String { revision == "main" ? repository : "\(repository)@\(revision)" }
    }

    /// Whether `text` is a full commit hash: 40 lowercase hexadecimal digits.
    public static func isCommitHash(_ text: String) -> Bool {
        text.count == 40 && text.allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }

    /// The branches and tags under `folder`/refs (names may hold "/"), each with the
    /// commit it names, sorted by name.
    private func references(in folder: String) -> [(name: String, commit: String)] {
        let manager = FileManager.default
        guard let names = manager.enumerator(atPath: "\(folder)/refs") else { return [] }
        var references: [(name: String, commit: String)] = []
        for case let name as String in names {
            var isDirectory: ObjCBool = false
            guard manager.fileExists(atPath: "\(folder)/refs/\(name)", isDirectory: &isDirectory),
                !isDirectory.boolValue,
                let commit = try? String(contentsOfFile: "\(folder)/refs/\(name)", encoding: .utf8)
            else { continue }
            references.append((name, commit.trimmingCharacters(in: .whitespacesAndNewlines)))
        }
        return references.sorted { $0.name < $1.name }
    }

    /// The bytes of each blob under `folder`/blobs, by its name.
    private func blobSizes(in folder: String) -> [String: Int] {
        let manager = FileManager.default
        let blobs = (try? manager.contentsOfDirectory(atPath: "\(folder)/blobs")) ?? []
        return Dictionary(
            uniqueKeysWithValues: blobs.map {
                ($0, (try? manager.attributesOfItem(atPath: "\(folder)/blobs/\($0)"))?[.size] as? Int ?? 0)
            })
    }

    /// The folder of a model's cached files: models--ORG--NAME.
    public func folder(of repository: String) -> String {
        "\(root)/models--\(repository.replacingOccurrences(of: "/", with: "--"))"
    }

    /// The snapshot folder of a cached model at its revision (a branch or tag through
    /// refs/, or a commit), ready for the loaders.
    public func snapshot(_ name: ModelName) throws(FileError) -> String {
        let folder = folder(of: name.repository)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw FileError(path: nil, reason: "\(name.repository) is not in the Hugging Face cache (\(root))")
        }
        let commit: String
        if let reference = try? String(contentsOfFile: "\(folder)/refs/\(name.revision)", encoding: .utf8) {
            commit = reference.trimmingCharacters(in: .whitespacesAndNewlines)
            guard Self.isCommitHash(commit) else {
                throw FileError(path: "\(folder)/refs/\(name.revision)", reason: "not a commit hash")
            }
        } else if name.isCommit {
            commit = name.revision
        } else {
            throw FileError(
                path: nil,
                reason: "\(name.repository) has no revision '\(name.revision)' in the Hugging Face cache (\(root))")
        }
        let snapshot = "\(folder)/snapshots/\(commit)"
        guard FileManager.default.fileExists(atPath: snapshot, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw FileError(
                path: nil, reason: "\(name) (commit \(commit)) has no snapshot in the Hugging Face cache (\(root))")
        }
        return snapshot
    }

    /// A model in the cache: its name, the revisions it has (branch and tag names from
    /// refs/, each with its commit) and the bytes of its blobs.
    public struct CachedModel: Sendable {
        public let repository: String
        public let revisions: [(name: String, commit: String)]
        public let commits: [String]
        public let bytes: Int
    }

    /// Every cached model, sorted by name (datasets and spaces are left out).
    public func models() -> [CachedModel] {
        let manager = FileManager.default
        let entries = (try? manager.contentsOfDirectory(atPath: root)) ?? []
        return entries.filter { $0.hasPrefix("models--") }.sorted().map { entry in
            let folder = "\(root)/\(entry)"
            let repository = entry.dropFirst("models--".count).replacingOccurrences(of: "--", with: "/")
            let commits = ((try? manager.contentsOfDirectory(atPath: "\(folder)/snapshots")) ?? []).sorted()
            return CachedModel(
                repository: repository, revisions: references(in: folder), commits: commits,
                bytes: blobSizes(in: folder).values.reduce(0, +))
        }
    }

    /// Removes a cached model, or only one revision of it when `name` names one: its
    /// snapshot, the refs that point at it and the blobs no other snapshot links to (as
    /// huggingface_hub's delete_revisions does). Returns the bytes freed.
    public func remove(_ name: ModelName, wholeModel: Bool) throws(FileError) -> Int {
        let manager = FileManager.default
        let folder = folder(of: name.repository)
        guard manager.fileExists(atPath: folder) else {
            throw FileError(path: nil, reason: "\(name.repository) is not in the Hugging Face cache (\(root))")
        }
        func fail(_ what: String) -> FileError { FileError(path: folder, reason: "cannot remove \(what)") }
        if wholeModel {
            let bytes = blobSizes(in: folder).values.reduce(0, +)
            do { try manager.removeItem(atPath: folder) } catch { throw fail("the model") }
            return bytes
        }
        let snapshot = try self.snapshot(name)
        let commit = (snapshot as NSString).lastPathComponent
        // The blobs every other snapshot links to stay.
        var kept = Set<String>()
        let snapshots = "\(folder)/snapshots"
        for other in (try? manager.contentsOfDirectory(atPath: snapshots)) ?? [] where other != commit {
            for case let file as String in manager.enumerator(atPath: "\(snapshots)/\(other)")! {
                if let target = try? manager.destinationOfSymbolicLink(atPath: "\(snapshots)/\(other)/\(file)") {
                    kept.insert((target as NSString).lastPathComponent)
                }
            }
        }
        var freed = 0
        let sizes = blobSizes(in: folder)
        for case let file as String in manager.enumerator(atPath: snapshot)! {
            guard let target = try? manager.destinationOfSymbolicLink(atPath: "\(snapshot)/\(file)") else { continue }
            let blob = (target as NSString).lastPathComponent
            if !kept.contains(blob), let size = sizes[blob] {
                do { try manager.removeItem(atPath: "\(folder)/blobs/\(blob)") } catch { throw fail("blob \(blob)") }
                kept.insert(blob)  // counted once
                freed += size
            }
        }
        do { try manager.removeItem(atPath: snapshot) } catch { throw fail("snapshot \(commit)") }
        for reference in references(in: folder) where reference.commit == commit {
            try? manager.removeItem(atPath: "\(folder)/refs/\(reference.name)")
        }
        return freed
    }
}
