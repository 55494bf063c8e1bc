#if canImport(Glibc)
import Glibc
#endif

/// A regular file opened for a response body, read in chunks as the socket takes them.
///
/// The descriptor stays open until the last reference goes; reads go by offset (`pread`), so the
/// file is never loaded whole and the object holds no mutable state.
public final class HTTPFile: Sendable {
    private let descriptor: Int32
    /// Length in bytes when it was opened.
    public let size: Int
    /// Last modification, in whole seconds since 1970 (what `Last-Modified` can say).
    public let modified: Int
    /// A validator for `ETag`/`If-None-Match`: changes when the file's inode, length or
    /// modification time (to the nanosecond) does.
    public let entityTag: String

    /// Opens `path` (following links); nil unless it is a readable regular file.
    public init?(path: String) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        var status = stat()
        guard fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
            close(descriptor)
            return nil
        }
        self.descriptor = descriptor
        size = Int(status.st_size)
        modified = Int(status.st_mtim.tv_sec)
        let nanoseconds = UInt64(status.st_mtim.tv_sec) &* 1_000_000_000 &+ UInt64(status.st_mtim.tv_nsec)
        entityTag = "\"" + String(UInt64(status.st_ino), radix: 16) + "-" + String(size, radix: 16) + "-"
            + String(nanoseconds, radix: 16) + "\""
    }

    deinit { close(descriptor) }

    /// Reads up to `count` bytes at `offset` into `buffer`; the number read, 0 at the end, -1 on error.
    func read(into buffer: UnsafeMutableRawPointer, count: Int, at offset: Int) -> Int {
        while true {
            let read = pread(descriptor, buffer, count, off_t(offset))
            if read < 0 && errno == EINTR { continue }
            return read
        }
    }
}
