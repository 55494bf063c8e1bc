@testable import CareHubTransport
import Foundation
import Testing

@Suite("web root confinement", .serialized)
struct WebRootTests {
    /// base/root (the web root, with links pointing out of it) and base/outside.
    struct Layout {
        let base = NSTemporaryDirectory() + "carehub-webroot-\(UUID().uuidString)"
        var root: String { base + "/root" }
        var outside: String { base + "/outside" }

        init() throws {
            let files = FileManager.default
            for directory in [root, root + "/sub", outside] {
                try files.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            try "<p>home</p>".write(toFile: root + "/index.html", atomically: true, encoding: .utf8)
            try "body{}".write(toFile: root + "/site.css", atomically: true, encoding: .utf8)
            try "<p>sub</p>".write(toFile: root + "/sub/index.html", atomically: true, encoding: .utf8)
            try "secret".write(toFile: outside + "/secret.txt", atomically: true, encoding: .utf8)
            try "<p>outside</p>".write(toFile: outside + "/index.html", atomically: true, encoding: .utf8)
            try files.createSymbolicLink(atPath: root + "/leak.txt", withDestinationPath: outside + "/secret.txt")
            try files.createSymbolicLink(atPath: root + "/passwd.txt", withDestinationPath: "/etc/passwd")
            try files.createSymbolicLink(atPath: root + "/outdir", withDestinationPath: outside)
            try files.createSymbolicLink(atPath: root + "/relative.txt", withDestinationPath: "../outside/secret.txt")
            try files.createSymbolicLink(atPath: root + "/alias.css", withDestinationPath: "site.css")
            try files.createSymbolicLink(atPath: base + "/linked-root", withDestinationPath: root)
        }

        func remove() { try? FileManager.default.removeItem(atPath: base) }
    }

    func status(_ port: Int, _ path: String) throws -> (status: String, body: String) {
        let response = try RawWebSocketClient(port: port).get(path)
        return (String(response.head.dropFirst("HTTP/1.1 ".count).prefix(3)), response.body)
    }

    @Test func linksAndTraversalOutOfTheRootAreNotFound() throws {
        let layout = try Layout()
        defer { layout.remove() }
        let harness = Harness { $0.staticRoot = layout.root }
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        for path in ["/leak.txt", "/passwd.txt", "/relative.txt", "/outdir/secret.txt", "/outdir/", "/outdir",
                     "/../outside/secret.txt", "/%2e%2e/outside/secret.txt", "/%2E%2E%2Foutside%2Fsecret.txt",
                     "/sub/../../outside/secret.txt", "/..%2f..%2f..%2fetc%2fpasswd"] {
            let answer = try status(port, path)
            #expect(answer.status == "404", "\(path) answered \(answer.status)")
            #expect(!answer.body.contains("secret") && !answer.body.contains("outside") && !answer.body.contains("root:"))
        }
    }

    @Test func filesInsideTheRootAreServed() throws {
        let layout = try Layout()
        defer { layout.remove() }
        // The configured root may itself be reached through a link.
        let harness = Harness { $0.staticRoot = layout.base + "/linked-root" }
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        #expect(try status(port, "/") == ("200", "<p>home</p>"))
        #expect(try status(port, "/index.html") == ("200", "<p>home</p>"))
        #expect(try status(port, "/site.css") == ("200", "body{}"))
        #expect(try status(port, "/alias.css") == ("200", "body{}"))
        #expect(try status(port, "/sub/") == ("200", "<p>sub</p>"))
        #expect(try status(port, "/sub/index.html?v=2") == ("200", "<p>sub</p>"))
        #expect(try status(port, "/nothing.html").status == "404")
        #expect(try RawWebSocketClient(port: port).get("/site.css").head.lowercased().contains("content-type: text/css"))
    }

    @Test func theResolverKeepsToTheRoot() throws {
        let layout = try Layout()
        defer { layout.remove() }
        let root = try #require(WebRoot.resolve(layout.root))
        #expect(WebRoot.file(for: "/site.css", in: root) == root + "/site.css")
        #expect(WebRoot.file(for: "/", in: root) == root + "/index.html")
        #expect(WebRoot.file(for: "/leak.txt", in: root) == nil)
        #expect(WebRoot.file(for: "/outdir/index.html", in: root) == nil)
        #expect(WebRoot.file(for: "/../outside/secret.txt", in: root) == nil)
        #expect(WebRoot.file(for: "site.css", in: root) == nil)
        // A sibling whose name starts with the root's is not inside it.
        try FileManager.default.createDirectory(atPath: layout.root + "-evil", withIntermediateDirectories: true)
        try "x".write(toFile: layout.root + "-evil/x.txt", atomically: true, encoding: .utf8)
        #expect(WebRoot.file(for: "/../root-evil/x.txt", in: root) == nil)
    }
}
