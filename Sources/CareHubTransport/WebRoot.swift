import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Maps request paths to files of a web root without leaving it: every symbolic link and `..`
/// is resolved first, and only a regular file whose real path lies inside the root's real path
/// is served.
enum WebRoot {
    /// `path` with every symbolic link, `.` and `..` resolved; nil if it does not exist.
    static func resolve(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The file to serve for the request path `path` (decoded, starting with `/`) from `root`
    /// (already resolved): a directory stands for its `index.html`. Nil when the path names
    /// nothing, or anything but a regular file inside the root.
    static func file(for path: String, in root: String) -> String? {
        guard path.hasPrefix("/"), !path.utf8.contains(0) else { return nil }
        guard var file = resolve(root + path) else { return nil }
        if isDirectory(file) {
            guard let index = resolve(file + "/index.html") else { return nil }
            file = index
        }
        let inside = root == "/" ? file.hasPrefix("/") : file.hasPrefix(root + "/")
        guard inside, isRegularFile(file) else { return nil }
        return file
    }

    private static func isDirectory(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR
    }

    private static func isRegularFile(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFREG
    }
}
