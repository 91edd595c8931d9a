import Crypto
import Foundation

/// An HTTP/1.1 server on 127.0.0.1 that answers as the Hugging Face Hub does for
/// `/{repo}/resolve/{revision}/{file}`: X-Repo-Commit and an ETag on every file; for large
/// (LFS) files X-Linked-Etag (the SHA-256) and X-Linked-Size with a redirect to the bytes
/// elsewhere; Range requests; 401 without the token for private repos. One thread per
/// connection, `Connection: close`.
final class HubTestServer: @unchecked Sendable {
    struct HubFile {
        var body: Data
        var large: Bool
    }

    private let lock = NSLock()
    private var repositories: [String: (commit: String, files: [String: HubFile], token: String?)] = [:]
    private var requestLog: [String] = []
    /// Bytes of a body sent before the connection is dropped, by file name (once).
    private var cuts: [String: Int] = [:]
    private let sockets: [Int32]
    /// The Hub's port on 127.0.0.1; the large files' bytes are on `storagePort` at
    /// 127.0.0.2, another host, as the Hub's storage is.
    let port: UInt16, storagePort: UInt16
    /// Old repository names answered with a relative redirect to the new ones.
    private var renamed: [String: String] = [:]

    init() throws {
        let (hub, hubPort) = try Self.listen(on: "127.0.0.1")
        let (storage, storageAt) = try Self.listen(on: "127.0.0.2")
        (sockets, port, storagePort) = ([hub, storage], hubPort, storageAt)
        for socket in sockets {
            Thread { [self] in acceptLoop(socket) }.start()
        }
    }

    /// A listening socket on `host` at a free port.
    static func listen(on host: String) throws -> (Int32, UInt16) {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr(host)
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, Glibc.listen(fd, 16) == 0 else { throw CocoaError(.fileWriteUnknown) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, UInt16(bigEndian: address.sin_port))
    }

    /// Answers requests for `old` with a relative redirect to `new` (a renamed repository).
    func rename(_ old: String, to new: String) { lock.withLock { renamed[old] = new } }

    var endpoint: String { "http://127.0.0.1:\(port)" }

    /// Serves every file under `folder` as `repository` at `commit` (branch main); files
    /// named in `large` as LFS files.
    func serve(_ folder: String, as repository: String, commit: String, large: Set<String>, token: String? = nil) {
        var files: [String: HubFile] = [:]
        for case let file as String in FileManager.default.enumerator(atPath: folder)! {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: "\(folder)/\(file)", isDirectory: &isDirectory),
                !isDirectory.boolValue, let data = FileManager.default.contents(atPath: "\(folder)/\(file)")
            else { continue }
            files[file] = HubFile(body: data, large: large.contains(file))
        }
        lock.withLock { repositories[repository] = (commit, files, token) }
    }

    /// Replaces the bytes of one served file, keeping its ETag (a corrupted download).
    func corrupt(_ repository: String, file: String) {
        lock.withLock {
            var body = repositories[repository]!.files[file]!.body
            originalHashes[file] = Self.sha256(body)
            body[body.count / 2] ^= 0xFF
            repositories[repository]!.files[file]!.body = body
        }
    }
    /// The SHA-256 a corrupted file's ETag keeps.
    private var originalHashes: [String: String] = [:]

    /// Drops the connection after `bytes` bytes of the file's body, the next time it is sent.
    func cut(_ file: String, after bytes: Int) { lock.withLock { cuts[file] = bytes } }

    /// "METHOD PATH [Range: ...]" of every request so far.
    var log: [String] { lock.withLock { requestLog } }

    static func sha256(_ data: Data) -> String { SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined() }

    /// A git-style ETag for a small file: 40 hex digits from its content.
    static func gitTag(_ data: Data) -> String { String(sha256(Data("blob".utf8) + data).prefix(40)) }

    private func acceptLoop(_ socket: Int32) {
        while true {
            let client = accept(socket, nil, nil)
            guard client >= 0 else { return }
            Thread { [self] in handle(client) }.start()
        }
    }

    private func handle(_ client: Int32) {
        defer { close(client) }
        var request = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !request.contains(Data("\r\n\r\n".utf8)) {
            let n = recv(client, &buffer, buffer.count, 0)
            guard n > 0 else { return }
            request.append(contentsOf: buffer[0..<n])
        }
        let lines = String(decoding: request, as: UTF8.self).components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ")
        guard parts.count >= 2 else { return }
        let (method, path) = (String(parts[0]), String(parts[1]).removingPercentEncoding ?? String(parts[1]))
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces)
        }
        lock.withLock { requestLog.append("\(method) \(path)" + (headers["range"].map { " Range: \($0)" } ?? "")) }
        let (status, responseHeaders, body, cut) = respond(method: method, path: path, headers: headers)
        var head = "HTTP/1.1 \(status) \(status == 200 ? "OK" : "Status")\r\nConnection: close\r\n"
        for (key, value) in responseHeaders { head += "\(key): \(value)\r\n" }
        head += "Content-Length: \(body?.count ?? 0)\r\n\r\n"
        send(client, Data(head.utf8))
        if method == "GET", let body {
            send(client, cut.map { body.prefix($0) } ?? body)
        }
    }

    private func send(_ client: Int32, _ data: Data) {
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.send(client, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                guard n > 0 else { return }
                offset += n
            }
        }
    }

    /// (status, headers, body, bytes to send before dropping the connection).
    private func respond(method: String, path: String, headers: [String: String])
        -> (Int, [(String, String)], Data?, Int?)
    {
        lock.lock()
        defer { lock.unlock() }
        if path.hasPrefix("/cdn/") {
            // /cdn/REPO-with-dashes/FILE: the large file's bytes, with Range.
            let pieces = path.dropFirst("/cdn/".count).split(separator: "/", maxSplits: 1).map(String.init)
            guard pieces.count == 2,
                let repository = repositories.first(where: {
                    $0.key.replacingOccurrences(of: "/", with: "--") == pieces[0]
                }), let file = repository.value.files[pieces[1]]
            else { return (404, [], Data(), nil) }
            var body = file.body, status = 200
            var extra: [(String, String)] = []
            if let range = headers["range"], range.hasPrefix("bytes="), let start = Int(range.dropFirst(6).dropLast()) {
                guard start < body.count else { return (416, [], Data(), nil) }
                extra.append(("Content-Range", "bytes \(start)-\(body.count - 1)/\(body.count)"))
                body = body.subdata(in: start..<body.count)
                status = 206
            }
            let cut = cuts.removeValue(forKey: pieces[1])
            return (status, extra, body, cut)
        }
        // /REPO/resolve/REVISION/FILE, REPO being ORG/NAME.
        let components = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard components.count >= 5, components[2] == "resolve" else { return (404, [], Data(), nil) }
        let repositoryName = "\(components[0])/\(components[1])"
        if let new = renamed[repositoryName] {
            let rest = components[2...].joined(separator: "/")
            return (307, [("Location", "/\(new)/\(rest)")], Data(), nil)
        }
        let (revision, file) = (components[3], components[4...].joined(separator: "/"))
        guard let repository = repositories[repositoryName] else {
            return (401, [("X-Error-Code", "RepoNotFound")], Data(), nil)
        }
        if let token = repository.token, headers["authorization"] != "Bearer \(token)" {
            return (401, [], Data(), nil)
        }
        guard revision == "main" || revision == repository.commit, let served = repository.files[file] else {
            return (404, [("X-Error-Code", "EntryNotFound")], Data(), nil)
        }
        var responseHeaders = [("X-Repo-Commit", repository.commit)]
        if served.large {
            let hash = originalHashes[file] ?? Self.sha256(served.body)
            responseHeaders += [
                ("X-Linked-Etag", "\"\(hash)\""), ("X-Linked-Size", "\(served.body.count)"),
                ("ETag", "\"\(Self.gitTag(served.body))\""),
                (
                    "Location",
                    "http://127.0.0.2:\(storagePort)/cdn/\(repositoryName.replacingOccurrences(of: "/", with: "--"))/\(file)"
                ),
            ]
            return (302, responseHeaders, Data(), nil)
        }
        responseHeaders.append(("ETag", "\"\(Self.gitTag(served.body))\""))
        return (200, responseHeaders, served.body, nil)
    }
}
