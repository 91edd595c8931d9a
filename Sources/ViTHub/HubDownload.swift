import Crypto
import Foundation
import ViTCheckpoint
import ViTTensor

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Downloads a model's files from the Hugging Face Hub (or `$HF_ENDPOINT`) into the hub
/// cache exactly as huggingface_hub lays them out, so that either side finds what the other
/// fetched: `blobs/ETAG` (the ETag is the SHA-256 of a large file), `snapshots/COMMIT/FILE`
/// as a relative symlink to the blob, `refs/REVISION` naming the commit. A blob is written
/// as `blobs/ETAG.incomplete` (resumed from where it stopped with a Range request) under a
/// lock in `.locks/`, checked, then renamed. The protocol follows huggingface_hub's
/// file_download (HEAD following only redirects on the same host, for X-Repo-Commit,
/// X-Linked-Etag / ETag and X-Linked-Size, then GET following every redirect).
public struct HubDownloader: Sendable {
    public let cache: HubCache
    /// The Hub's address, without a trailing slash.
    public let endpoint: String
    public let token: String?
    /// `HF_HUB_OFFLINE`: never touch the network.
    public let offline: Bool

    /// Progress of one file: (file name, bytes so far, total bytes when known).
    public typealias Progress = @Sendable (String, Int64, Int64?) -> Void

    public init(cache: HubCache, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.cache = cache
        var endpoint = environment["HF_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 } ?? "https://huggingface.co"
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        self.endpoint = endpoint
        token = environment["HF_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        offline = ["1", "ON", "YES", "TRUE"].contains((environment["HF_HUB_OFFLINE"] ?? "").uppercased())
    }

    /// A failure to fetch; one line naming the model or file.
    public struct DownloadError: ReportableError {
        public let description: String
    }

    /// What the Hub says about one file (huggingface_hub's HfFileMetadata).
    struct FileMetadata {
        var commit: String
        var etag: String
        var size: Int64?
    }

    /// Fetches the files the loaders need for `name` (a ViT's config.json,
    /// model.safetensors and preprocessor_config.json; a BERT or sentence-transformers
    /// model's weights, tokenizer files and pooling config) and returns the snapshot folder.
    public func fetch(_ name: HubCache.ModelName, progress: Progress = { _, _, _ in }) throws -> String {
        guard !offline else {
            throw DownloadError(
                description: "\(name) is not in the Hugging Face cache (\(cache.root)) and HF_HUB_OFFLINE is set")
        }
        let config = try metadata(name, file: "config.json", required: true)!
        let commit = config.commit
        try download(name, file: "config.json", metadata: config, progress: progress)
        let snapshot = "\(cache.folder(of: name.repository))/snapshots/\(commit)"
        let fields =
            (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(snapshot)/config.json"))))
            as? [String: Any] ?? [:]
        let modelType = fields["model_type"] as? String
        let isTimm = fields["architecture"] is String
        let files: [(String, Bool)]
        switch modelType {
        case "vit", "deit",
            nil where isTimm:
            files = [("model.safetensors", true), ("preprocessor_config.json", false)]
        case "bert":
            files = [
                ("model.safetensors", true), ("vocab.txt", true), ("tokenizer_config.json", false),
                ("special_tokens_map.json", false), ("modules.json", false), ("sentence_bert_config.json", false),
                ("1_Pooling/config.json", false),
            ]
        default:
            throw DownloadError(
                description:
                    "\(name): model_type '\(modelType ?? "none")' is not a model SwiftViT reads (a ViT or DeiT, a timm ViT, or a BERT text encoder)"
            )
        }
        // Every file of one fetch comes from the commit config.json came from.
        let pinned = HubCache.ModelName(commit: commit, of: name)
        for (file, required) in files {
            guard let meta = try metadata(pinned, file: file, required: required) else { continue }
            try download(pinned, file: file, metadata: meta, progress: progress)
        }
        if name.revision != commit {
            let reference = "\(cache.folder(of: name.repository))/refs/\(name.revision)"
            try FileManager.default.createDirectory(
                atPath: (reference as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try writeAtomically(Data(commit.utf8), toPath: reference)
        }
        return snapshot
    }

    func url(_ name: HubCache.ModelName, file: String) -> URL {
        let revision = name.revision.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? name.revision
        return URL(string: "\(endpoint)/\(name.repository)/resolve/\(revision)/\(file)")!
    }

    func request(_ url: URL, method: String) -> URLRequest {
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: 60)
        request.httpMethod = method
        request.setValue("identity", forHTTPHeaderField: "Accept-Encoding")
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        return request
    }

    /// The problem an HTTP status names, or nil for success.
    func statusProblem(_ status: Int, _ name: HubCache.ModelName, file: String) -> String? {
        switch status {
        case 200..<400: return nil
        case 401, 403:
            return
                "\(name): \(file): HTTP \(status), access denied (a private or gated model needs a token in HF_TOKEN)"
        case 404: return "\(name): \(file): HTTP 404, no such model, revision or file at \(endpoint)"
        default: return "\(name): \(file): HTTP \(status) from \(endpoint)"
        }
    }

    /// HEAD of a file without following redirects: its commit, ETag and size. nil when an
    /// optional file does not exist.
    func metadata(_ name: HubCache.ModelName, file: String, required: Bool) throws -> FileMetadata? {
        let response = try Transfer.run(request(url(name, file: file), method: "HEAD"), redirects: .sameHost)
        if response.status == 404 && !required { return nil }
        if let problem = statusProblem(response.status, name, file: file) { throw DownloadError(description: problem) }
        func header(_ key: String) -> String? { response.headers[key.lowercased()] }
        guard let commit = header("X-Repo-Commit"), HubCache.isCommitHash(commit) else {
            throw DownloadError(description: "\(name): \(file): the server sent no commit (X-Repo-Commit)")
        }
        guard var etag = header("X-Linked-Etag") ?? header("ETag") else {
            throw DownloadError(description: "\(name): \(file): the server sent no ETag")
        }
        if etag.hasPrefix("W/") { etag.removeFirst(2) }
        etag = etag.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        guard HubCache.ModelName.isValidPiece(etag) else {
            throw DownloadError(description: "\(name): \(file): the ETag '\(etag.prefix(80))' is not a file name")
        }
        let size = (header("X-Linked-Size") ?? header("Content-Length")).flatMap { Int64($0) }
        return FileMetadata(commit: commit, etag: etag, size: size)
    }

    /// Downloads one file into blobs/ (unless there) and links it into the snapshot.
    func download(
        _ name: HubCache.ModelName, file: String, metadata: FileMetadata, progress: Progress
    ) throws {
        let manager = FileManager.default
        let folder = cache.folder(of: name.repository)
        let blob = "\(folder)/blobs/\(metadata.etag)"
        try manager.createDirectory(atPath: "\(folder)/blobs", withIntermediateDirectories: true)
        if !manager.fileExists(atPath: blob) {
            let locks = "\(cache.root)/.locks/\((folder as NSString).lastPathComponent)"
            try manager.createDirectory(atPath: locks, withIntermediateDirectories: true)
            let lock = open("\(locks)/\(metadata.etag).lock", O_CREAT | O_RDWR, 0o644)
            guard lock >= 0 else { throw DownloadError(description: "\(locks): cannot create a lock file") }
            defer { close(lock) }
            flock(lock, LOCK_EX)
            defer { flock(lock, LOCK_UN) }
            // Another process may have finished it while this one waited.
            if !manager.fileExists(atPath: blob) {
                try downloadBlob(name, file: file, metadata: metadata, to: blob, progress: progress)
            }
        }
        let link = "\(folder)/snapshots/\(metadata.commit)/\(file)"
        try manager.createDirectory(
            atPath: (link as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let depth = file.split(separator: "/").count + 1
        let target = String(repeating: "../", count: depth) + "blobs/\(metadata.etag)"
        if (try? manager.destinationOfSymbolicLink(atPath: link)) != target {
            // Another process fetching the same model may make the same link at the same time:
            // the link that stands is right when it names the blob.
            try? manager.removeItem(atPath: link)
            if symlink(target, link) != 0 && (try? manager.destinationOfSymbolicLink(atPath: link)) != target {
                throw DownloadError(description: "\(link): cannot link the snapshot to its blob")
            }
        }
    }

    /// GET into blob.incomplete, continuing a part already there; checks the size and,
    /// when the ETag is a SHA-256 (large files), the hash; then renames it to the blob.
    func downloadBlob(
        _ name: HubCache.ModelName, file: String, metadata: FileMetadata, to blob: String, progress: Progress
    ) throws {
        let partial = "\(blob).incomplete"
        let manager = FileManager.default
        if !manager.fileExists(atPath: partial) { _ = manager.createFile(atPath: partial, contents: nil) }
        guard let handle = FileHandle(forUpdatingAtPath: partial) else {
            throw DownloadError(description: "\(partial): cannot write")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        var have: Int64 = 0
        // Hash what an earlier attempt left, 1 MiB at a time.
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
            have += Int64(chunk.count)
        }
        var request = request(url(name, file: file), method: "GET")
        if have > 0 { request.setValue("bytes=\(have)-", forHTTPHeaderField: "Range") }
        let started = have
        let response: Transfer.Response
        do {
            response = try Transfer.run(request, redirects: .all) { status, data in
                if status == 200 && have > 0 && have == started {
                    // The server ignored the range: start over.
                    try handle.truncate(atOffset: 0)
                    hasher = SHA256()
                    have = 0
                }
                try handle.write(contentsOf: data)
                hasher.update(data: data)
                have += Int64(data.count)
                progress(file, have, metadata.size)
            }
        } catch {
            try? handle.synchronize()
            let total = metadata.size.map { " of \($0)" } ?? ""
            throw DownloadError(
                description:
                    "\(name): \(file): the download stopped at \(have)\(total) bytes (\(error)); run again to resume")
        }
        if response.status == 416 && metadata.size == have {
            // The part was already whole.
        } else if let problem = statusProblem(response.status, name, file: file) {
            throw DownloadError(description: problem)
        }
        try handle.synchronize()
        if let size = metadata.size, size != have {
            throw DownloadError(description: "\(name): \(file): got \(have) bytes of \(size); run again to resume")
        }
        let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        if metadata.etag.count == 64 && metadata.etag.allSatisfy(\.isHexDigit) && digest != metadata.etag.lowercased() {
            try? manager.removeItem(atPath: partial)
            throw DownloadError(
                description:
                    "\(name): \(file): SHA-256 \(digest) does not match the ETag \(metadata.etag); nothing was kept")
        }
        guard rename(partial, blob) == 0 else {
            throw DownloadError(description: "\(blob): cannot rename the download into place")
        }
    }
}

extension HubCache.ModelName {
    /// The same repository at a commit.
    init(commit: String, of name: HubCache.ModelName) {
        self = HubCache.ModelName("\(name.repository)@\(commit)")!
    }
}

/// One HTTP request run to its end through URLSession, the body handed to `receive` as it
/// arrives (or dropped when `receive` is nil); redirects followed or not.
final class Transfer: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    struct Response {
        var status: Int
        /// Header names lowercased.
        var headers: [String: String]
    }

    /// Which redirects a transfer follows: all of them, or those that stay on the host asked
    /// (a renamed repository), not those to the Hub's file storage, whose response carries the
    /// file's metadata (as huggingface_hub's HEAD does).
    enum Redirects {
        case all, sameHost
    }

    let redirects: Redirects
    /// Dropped when the transfer ends, before `run` returns.
    var receive: ((Int, Data) throws -> Void)?
    let done = DispatchSemaphore(value: 0)
    var response = Response(status: 0, headers: [:])
    var failure: Error?

    init(redirects: Redirects, receive: @escaping (Int, Data) throws -> Void) {
        self.redirects = redirects
        self.receive = receive
    }

    /// Runs `request` and waits for its end; `receive` gets the body of a 2xx response as
    /// it arrives (it does not outlive the call: the transfer is over when this returns).
    static func run(
        _ request: URLRequest, redirects: Redirects, receive: (Int, Data) throws -> Void = { _, _ in }
    ) throws -> Response {
        let transfer = withoutActuallyEscaping(receive) { receive in
            let transfer = Transfer(redirects: redirects, receive: receive)
            let session = URLSession(configuration: .ephemeral, delegate: transfer, delegateQueue: nil)
            session.dataTask(with: request).resume()
            transfer.done.wait()
            transfer.receive = nil
            session.finishTasksAndInvalidate()
            return transfer
        }
        if let failure = transfer.failure {
            if let error = failure as? HubDownloader.DownloadError { throw error }
            throw HubDownloader.DownloadError(
                description: "\(request.url?.host ?? "the Hub"): \((failure as NSError).localizedDescription)")
        }
        return transfer.response
    }

    func urlSession(
        _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void
    ) {
        let sameHost =
            request.url?.host == task.originalRequest?.url?.host
            && request.url?.port == task.originalRequest?.url?.port
        completionHandler(redirects == .all || sameHost ? request : nil)
    }

    func urlSession(
        _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void
    ) {
        if let http = response as? HTTPURLResponse {
            var headers: [String: String] = [:]
            for (key, value) in http.allHeaderFields {
                if let key = key as? String, let value = value as? String { headers[key.lowercased()] = value }
            }
            self.response = Response(status: http.statusCode, headers: headers)
        }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        guard failure == nil, (200..<300).contains(response.status), let receive else { return }
        do { try receive(response.status, data) } catch {
            failure = HubDownloader.DownloadError(description: "cannot write the download: \(error)")
            dataTask.cancel()
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        if failure == nil, let error { failure = error }
        done.signal()
    }
}
