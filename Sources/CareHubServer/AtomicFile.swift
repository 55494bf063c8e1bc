import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Replaces a file so that a crash leaves either the old contents or the new, never a mix: a
/// temporary file beside it is created with `mode`, written, fsync'd and renamed into place, and
/// the directory is fsync'd so the rename itself is durable.
enum AtomicFile {
    /// A step that failed, with the system's reason.
    struct Failure: Error, CustomStringConvertible {
        let step: String
        let reason: String
        var description: String { "\(step): \(reason)" }
    }

    static func write(_ bytes: [UInt8], to path: String, mode: mode_t) throws {
        let directory = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        let temporary = (directory as NSString).appendingPathComponent(".\((path as NSString).lastPathComponent).partial")
        func failure(_ step: String) -> Failure { Failure(step: step, reason: String(cString: strerror(errno))) }
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw failure("cannot create a file in \(directory)") }
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            guard written > 0 else {
                let error = failure("write")
                close(fd)
                unlink(temporary)
                throw error
            }
            offset += written
        }
        // The creation mode is masked by the umask; set it exactly.
        guard fchmod(fd, mode) == 0, fsync(fd) == 0 else {
            let error = failure("fsync")
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let error = failure("rename")
            unlink(temporary)
            throw error
        }
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directoryFD >= 0 else { throw failure("open \(directory)") }
        defer { close(directoryFD) }
        guard fsync(directoryFD) == 0 else { throw failure("fsync \(directory)") }
    }
}
