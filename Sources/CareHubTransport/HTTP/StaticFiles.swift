import Foundation

/// Serves the files of a web root with `GET`/`HEAD`, confined to it by ``WebRoot``, with
/// `ETag`/`Last-Modified` validators and `304 Not Modified` for a client whose copy is current.
///
/// HTML pages are `Cache-Control: no-store`, everything else `no-cache` (kept, but revalidated).
/// A page that may be stored is one a browser may keep in its back/forward cache when the user
/// navigates away: Chromium then keeps the page's WebSocket open, silent, so the hub never learns
/// that the user left (a nurse stays online to her colleagues), and Back shows the page as it was.
struct StaticFiles: Sendable {
    /// The root with every symbolic link resolved.
    let root: String

    /// Content types by file extension; a file with none of these is answered 415.
    static let contentTypes: [String: String] = [
        "html": "text/html", "htm": "text/html", "css": "text/css", "js": "text/javascript",
        "mjs": "text/javascript", "json": "application/json", "txt": "text/plain", "xml": "application/xml",
        "svg": "image/svg+xml", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
        "ico": "image/x-icon", "webp": "image/webp", "woff": "font/woff", "woff2": "font/woff2", "ttf": "font/ttf",
        "otf": "font/otf", "map": "application/json", "wasm": "application/wasm", "pdf": "application/pdf",
    ]

    func respond(to request: HTTPRequest) -> HTTPResponse {
        guard let path = WebRoot.file(for: request.path, in: root) else { return .error(404, "Not found") }
        let name = path.split(separator: "/").last ?? ""
        let suffix = name.contains(".") ? name.split(separator: ".").last.map { $0.lowercased() } ?? "" : ""
        guard let contentType = Self.contentTypes[suffix] else { return .error(415, "Unsupported media type") }
        guard let file = HTTPFile(path: path) else { return .error(404, "Not found") }
        var headers: HTTPHeaders = [
            "ETag": file.entityTag, "Last-Modified": HTTPDate.format(file.modified),
            "Cache-Control": Self.cacheControl(contentType: contentType),
        ]
        if Self.isCurrent(file, request.headers) { return HTTPResponse(status: 304, headers: headers) }
        headers["Content-Type"] = contentType
        return HTTPResponse(status: 200, headers: headers, body: .file(file))
    }

    /// `no-store` for an HTML page, `no-cache` for anything else.
    static func cacheControl(contentType: String) -> String {
        contentType == "text/html" ? "no-store" : "no-cache"
    }

    /// True when the client's cached copy is `file` as it is: by `If-None-Match` when it sends
    /// one, else by `If-Modified-Since`.
    static func isCurrent(_ file: HTTPFile, _ headers: HTTPHeaders) -> Bool {
        if let tags = headers["if-none-match"] {
            return tags.split(separator: ",").contains { tag in
                let tag = tag.trimmingCharacters(in: .whitespaces)
                return tag == "*" || tag == file.entityTag || tag == "W/" + file.entityTag
            }
        }
        guard let since = headers["if-modified-since"].flatMap(HTTPDate.parse) else { return false }
        return file.modified <= since
    }
}
